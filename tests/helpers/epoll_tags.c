/*
 * epoll_tags PORT MARKER SCENARIO: run under the shim with a policy that
 * seals 127.0.0.1:PORT both ways.  A server thread accepts sealed
 * connections and, per connection, waits for one byte, then writes
 * "MARKER-<n>\n"; the main thread connects and watches the connections
 * with epoll through the path SCENARIO names.  Every event the program
 * gets must carry data it registered (never the shim's own kernel tag,
 * 0x5e4a1ed0 in the high half), and the payload must arrive whole.
 *
 * Scenarios (each a way a tagged kernel event could reach the program):
 *   early    a thread already blocked in epoll_wait when the process's
 *            first sealed fd is registered (the wait took the fast path)
 *   dup      register through the epoll fd, wait through a dup() of it
 *   closed   register, dup the epoll fd, close the original, wait on the
 *            copy: buffered plaintext must still be reported
 *   thread   another thread closes the epoll fd while this one waits
 *   range    close_range() over the epoll fd; a new instance reuses the
 *            number, and registrations on it work
 *   fork     the child waits on the instance it inherited
 *   exec     exec this program ("child" mode) with the epoll fd inherited:
 *            the new image's waits must never see a tag
 * Exit 0 when every check held; prints "ok SCENARIO events=N".
 */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG_HI 0x5e4a1ed0U
#define NCONN 4

static int port;
static const char *marker;
static int lfd;
static int events_seen;

static void
die(const char *what)
{
	fprintf(stderr, "epoll_tags: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
check_event(const struct epoll_event *e, uint64_t lo, uint64_t hi)
{
	if ((uint32_t)(e->data.u64 >> 32) == TAG_HI) {
		fprintf(stderr, "epoll_tags: FAIL: tagged event %#" PRIx64
		    " reached the program\n", e->data.u64);
		exit(1);
	}
	if (e->data.u64 < lo || e->data.u64 >= hi) {
		fprintf(stderr, "epoll_tags: FAIL: event data %#" PRIx64
		    " was never registered\n", e->data.u64);
		exit(1);
	}
	events_seen++;
}

static void *
server(void *arg)
{
	char line[128], c;
	int i, fd, n;

	(void)arg;
	for (i = 0; i < NCONN; i++) {
		if ((fd = accept(lfd, NULL, NULL)) < 0)
			die("accept");
		if (read(fd, &c, 1) != 1)
			die("server read");
		n = snprintf(line, sizeof(line), "%s-%d\n", marker, (int)c);
		if (write(fd, line, (size_t)n) != n)
			die("server write");
		close(fd);
	}
	return NULL;
}

static int
dial(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd;

	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

static void
reg(int epfd, int fd, uint64_t data, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u64 = data };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl ADD");
}

/* Wait on EPFD (up to 10 s) until FD, registered with DATA, is readable,
 * then read and check connection N's line. */
static void
await_line(int epfd, int fd, uint64_t data, int n)
{
	struct epoll_event ev[8];
	char buf[256], want[128];
	int i, k, got = 0, tries;
	ssize_t r;

	snprintf(want, sizeof(want), "%s-%d\n", marker, n);
	for (tries = 0; tries < 100 && !got; tries++) {
		k = epoll_wait(epfd, ev, 8, 100);
		if (k < 0 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < k; i++) {
			check_event(&ev[i], data, data + 1);
			got = 1;
		}
	}
	if (!got) {
		fprintf(stderr, "epoll_tags: FAIL: fd %d never reported\n", fd);
		exit(1);
	}
	/* Up to the newline: the server's close may not end the stream
	 * (after fork its accepted fd lives on in the child too). */
	for (k = 0; k < (int)sizeof(buf) - 1; k += (int)r) {
		if ((r = recv(fd, buf + k, sizeof(buf) - 1 - (size_t)k, 0)) <= 0)
			die("recv");
		if (memchr(buf + k, '\n', (size_t)r) != NULL) {
			k += (int)r;
			break;
		}
	}
	buf[k] = '\0';
	if (strcmp(buf, want) != 0) {
		fprintf(stderr, "epoll_tags: FAIL: read '%s', not '%s'\n", buf,
		    want);
		exit(1);
	}
}

/*
 * Until thread TID sits in an epoll wait in the kernel (its
 * /proc/self/task/TID/syscall names epoll_wait or epoll_pwait), at most
 * 10 s: the scenarios need the wait to have begun, not a guess at when.
 */
static void
await_in_epoll(pid_t tid)
{
	char path[64], buf[64];
	FILE *f;
	long nr;
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	for (i = 0; i < 10000; i++) {
		if ((f = fopen(path, "r")) != NULL) {
			nr = -1;
			if (fgets(buf, sizeof(buf), f) != NULL)
				nr = strtol(buf, NULL, 10);
			fclose(f);
			if (nr == SYS_epoll_wait || nr == SYS_epoll_pwait)
				return;
		}
		usleep(1000);
	}
	fprintf(stderr, "epoll_tags: FAIL: thread %d never waited in epoll\n",
	    (int)tid);
	exit(1);
}

struct early { int epfd; int n; pid_t tid; struct epoll_event ev[8]; };

static void *
early_waiter(void *arg)
{
	struct early *w = arg;

	__atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	do
		w->n = epoll_wait(w->epfd, w->ev, 8, 10000);
	while (w->n < 0 && errno == EINTR);
	return NULL;
}

static void
scenario_early(void)
{
	struct early w = { 0 };
	pthread_t t;
	int fd, i;

	if ((w.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	if (pthread_create(&t, NULL, early_waiter, &w) != 0)
		die("pthread_create");
	while (__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE) == 0)
		usleep(1000);
	/* Dialling registers nothing: the first sealed registration is the
	 * reg() below, made while the waiter is blocked in the kernel. */
	fd = dial();
	await_in_epoll(w.tid);
	reg(w.epfd, fd, 1000, EPOLLIN);
	if (write(fd, "\1", 1) != 1)
		die("write");
	pthread_join(t, NULL);
	if (w.n <= 0) {
		fprintf(stderr, "epoll_tags: FAIL: early wait returned %d\n",
		    w.n);
		exit(1);
	}
	for (i = 0; i < w.n; i++)
		check_event(&w.ev[i], 1000, 1001);
	await_line(w.epfd, fd, 1000, 1);
	close(fd);
	close(w.epfd);
}

static void
scenario_dup(bool close_orig)
{
	int epfd, ep2, fd;

	if ((epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	fd = dial();
	reg(epfd, fd, 2000, EPOLLIN);
	if ((ep2 = dup(epfd)) < 0)
		die("dup");
	if (close_orig)
		close(epfd);
	if (write(fd, "\2", 1) != 1)
		die("write");
	/* Let the reply arrive, then pull it into the shim with a peek so
	 * it is buffered plaintext the kernel no longer shows. */
	usleep(100000);
	await_line(ep2, fd, 2000, 2);
	close(fd);
	close(ep2);
	if (!close_orig)
		close(epfd);
}

struct closer { int epfd; pid_t waiter; };

static void *
closer(void *arg)
{
	struct closer *c = arg;

	await_in_epoll(c->waiter);
	close(c->epfd);
	return NULL;
}

static void
scenario_thread(void)
{
	struct closer c;
	struct epoll_event ev[8];
	pthread_t t;
	int fd, k, i;

	if ((c.epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	fd = dial();
	reg(c.epfd, fd, 3000, EPOLLIN);
	c.waiter = (pid_t)syscall(SYS_gettid);
	if (pthread_create(&t, NULL, closer, &c) != 0)
		die("pthread_create");
	k = epoll_wait(c.epfd, ev, 8, 500);
	for (i = 0; i < k; i++)
		check_event(&ev[i], 3000, 3001);
	pthread_join(t, NULL);
	/* A new instance gets the closed number: it must work as new. */
	if ((c.epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	if (write(fd, "\3", 1) != 1)
		die("write");
	reg(c.epfd, fd, 3001, EPOLLIN);
	await_line(c.epfd, fd, 3001, 3);
	close(fd);
	close(c.epfd);
}

static void
scenario_range(void)
{
	int epfd, ep2, fd;

	if ((epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	fd = dial();
	reg(epfd, fd, 4000, EPOLLIN);
	if (syscall(SYS_close_range, (unsigned)epfd, (unsigned)epfd, 0) < 0 &&
	    close_range((unsigned)epfd, (unsigned)epfd, 0) < 0)
		die("close_range");
	if ((ep2 = epoll_create1(0)) < 0)
		die("epoll_create1");
	reg(ep2, fd, 4001, EPOLLIN | EPOLLET);
	if (write(fd, "\4", 1) != 1)
		die("write");
	await_line(ep2, fd, 4001, 4);
	close(fd);
	close(ep2);
}

static void
scenario_fork(void)
{
	int epfd, fd, st;
	pid_t pid;

	if ((epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	fd = dial();
	reg(epfd, fd, 5000, EPOLLIN);
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		if (write(fd, "\5", 1) != 1)
			die("write");
		await_line(epfd, fd, 5000, 5);
		printf("child events=%d\n", events_seen);
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "epoll_tags: FAIL: fork child status %#x\n", st);
		exit(1);
	}
	events_seen++;
	close(fd);
	close(epfd);
}

/* The exec'd image: EPFD holds a sealed registration made by the image
 * before; FD is its socket, adopted by the new image's shim.  Waits must
 * never return a tag. */
static int
exec_child(int epfd, int fd)
{
	struct epoll_event ev[8];
	int k, i, rounds;

	for (rounds = 0; rounds < 20; rounds++) {
		k = epoll_wait(epfd, ev, 8, 20);
		if (k < 0)
			die("child epoll_wait");
		for (i = 0; i < k; i++)
			if ((uint32_t)(ev[i].data.u64 >> 32) == TAG_HI) {
				fprintf(stderr, "epoll_tags: FAIL: exec'd image "
				    "got tagged event %#" PRIx64 "\n",
				    ev[i].data.u64);
				return 1;
			}
	}
	(void)fd;
	printf("ok exec-child rounds=%d\n", rounds);
	return 0;
}

static void
scenario_exec(const char *self)
{
	char a[16], b[16];
	int epfd, fd, st;
	pid_t pid;

	if ((epfd = epoll_create1(0)) < 0)
		die("epoll_create1");
	fd = dial();
	reg(epfd, fd, 6000, EPOLLIN);
	if (write(fd, "\6", 1) != 1)
		die("write");
	usleep(100000);         /* the reply is in the kernel: level-ready */
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		snprintf(a, sizeof(a), "%d", epfd);
		snprintf(b, sizeof(b), "%d", fd);
		execl(self, self, "child", a, b, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0) {
		fprintf(stderr, "epoll_tags: FAIL: exec child status %#x\n", st);
		exit(1);
	}
	events_seen++;
	/* The parent still has both; its own wait still translates. */
	await_line(epfd, fd, 6000, 6);
	close(fd);
	close(epfd);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *sc;
	pthread_t t;
	int one = 1;

	if (argc == 4 && strcmp(argv[1], "child") == 0)
		return exec_child(atoi(argv[2]), atoi(argv[3]));
	if (argc != 4) {
		fprintf(stderr, "usage: epoll_tags PORT MARKER SCENARIO\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	port = atoi(argv[1]);
	marker = argv[2];
	sc = argv[3];
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 16) < 0)
		die("listen");
	if (pthread_create(&t, NULL, server, NULL) != 0)
		die("pthread_create");
	pthread_detach(t);

	if (strcmp(sc, "early") == 0)
		scenario_early();
	else if (strcmp(sc, "dup") == 0)
		scenario_dup(false);
	else if (strcmp(sc, "closed") == 0)
		scenario_dup(true);
	else if (strcmp(sc, "thread") == 0)
		scenario_thread();
	else if (strcmp(sc, "range") == 0)
		scenario_range();
	else if (strcmp(sc, "fork") == 0)
		scenario_fork();
	else if (strcmp(sc, "exec") == 0)
		scenario_exec("/proc/self/exe");
	else {
		fprintf(stderr, "epoll_tags: unknown scenario %s\n", sc);
		return 2;
	}
	printf("ok %s events=%d\n", sc, events_seen);
	return 0;
}
