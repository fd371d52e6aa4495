/*
 * shutdown_wake PORT MODE HOW: is a thread waiting on a connected TCP
 * socket woken when another thread calls shutdown(HOW) on it, as TCP wakes
 * it?  Programs stop a blocked reader this way (thread pools, Java-style
 * blocking I/O, a watchdog ending a stuck connection).
 *
 * The process listens on 127.0.0.1:PORT, connects to itself (a server
 * thread accepts, sends "hi" and then only reads), reads the "hi", and
 * then starts the waiter thread:
 *   read  read(fd, 100)
 *   recv  recv(fd, 100, 0)
 *   poll  poll(fd, POLLIN, -1)
 *   epoll epoll_wait on a level-triggered EPOLLIN registration
 * The main thread waits until the waiter is in the kernel
 * (/proc/self/task/TID/syscall names its call) and calls shutdown(fd, HOW)
 * (HOW: rd, rdwr).  It prints what each call returned:
 *   shutdown 0
 *   waiter read 0
 * or "waiter STALL" when the waiter is still blocked 5 s after the shutdown
 * (exit 1).  The output is the same under the shim as on plain TCP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int lfd, cfd;
static const char *mode;
static pid_t waiter_tid;
static volatile int waiter_done;
static char result[128];

static void *
server(void *arg)
{
	char b[4096];
	int s = accept(lfd, NULL, NULL);

	if (s < 0 || write(s, "hi", 2) != 2)
		exit(3);
	while (read(s, b, sizeof(b)) > 0)
		;
	for (;;)
		pause();
	return arg;
}

static void *
waiter(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct pollfd p = { .fd = cfd, .events = POLLIN };
	char b[100];
	ssize_t n;
	int ep, r;

	waiter_tid = (pid_t)syscall(SYS_gettid);
	if (strcmp(mode, "read") == 0) {
		n = read(cfd, b, sizeof(b));
		snprintf(result, sizeof(result), "read %zd %s", n,
		    n < 0 ? strerror(errno) : "");
	} else if (strcmp(mode, "recv") == 0) {
		n = recv(cfd, b, sizeof(b), 0);
		snprintf(result, sizeof(result), "recv %zd %s", n,
		    n < 0 ? strerror(errno) : "");
	} else if (strcmp(mode, "poll") == 0) {
		r = poll(&p, 1, -1);
		snprintf(result, sizeof(result), "poll %d%s%s%s%s", r,
		    p.revents & POLLIN ? " IN" : "",
		    p.revents & POLLOUT ? " OUT" : "",
		    p.revents & POLLERR ? " ERR" : "",
		    p.revents & POLLHUP ? " HUP" : "");
	} else {
		ep = epoll_create1(0);
		ev.data.fd = cfd;
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
			exit(3);
		r = epoll_wait(ep, &out, 1, -1);
		snprintf(result, sizeof(result), "epoll %d%s%s%s%s", r,
		    r == 1 && (out.events & EPOLLIN) ? " IN" : "",
		    r == 1 && (out.events & EPOLLOUT) ? " OUT" : "",
		    r == 1 && (out.events & EPOLLERR) ? " ERR" : "",
		    r == 1 && (out.events & EPOLLHUP) ? " HUP" : "");
	}
	__atomic_store_n(&waiter_done, 1, __ATOMIC_RELEASE);
	return arg;
}

/* Is thread TID blocked in a system call (not running our code)? */
static int
in_kernel(pid_t tid)
{
	char path[64], buf[64];
	FILE *f;
	int in = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL)
		in = strncmp(buf, "running", 7) != 0 && buf[0] != '-';
	fclose(f);
	return in;
}

static void
nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	pthread_t st, wt;
	char b[2];
	int one = 1, how, i, r;

	if (argc != 4)
		return 2;
	mode = argv[2];
	how = strcmp(argv[3], "rd") == 0 ? SHUT_RD : SHUT_RDWR;
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0) {
		perror("bind");
		return 3;
	}
	pthread_create(&st, NULL, server, NULL);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(cfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    read(cfd, b, 2) != 2) {
		perror("connect");
		return 3;
	}
	pthread_create(&wt, NULL, waiter, NULL);
	/* Until the waiter is blocked in its call (bounded: 5 s). */
	for (i = 0; i < 500 && (__atomic_load_n(&waiter_tid, __ATOMIC_RELAXED) == 0 ||
	    !in_kernel(waiter_tid)); i++)
		nap(10);
	nap(50);
	r = shutdown(cfd, how);
	printf("shutdown %d %s\n", r, r < 0 ? strerror(errno) : "");
	fflush(stdout);
	for (i = 0; i < 500 && !__atomic_load_n(&waiter_done, __ATOMIC_ACQUIRE); i++)
		nap(10);
	if (!__atomic_load_n(&waiter_done, __ATOMIC_ACQUIRE)) {
		printf("waiter STALL\n");
		fflush(stdout);
		_exit(1);
	}
	pthread_join(wt, NULL);
	printf("waiter %s\n", result);
	fflush(stdout);
	_exit(0);
}
