/*
 * splicer: programs that move a connection's bytes with splice(),
 * vmsplice() and tee() only (tests/integration/59-splice.sh), on
 * 127.0.0.1:PORT.
 *
 *   splicer serve PORT block|et N
 *       an echo server for N connections.  block: a child per connection,
 *       blocking sockets and pipes, socket -> pipe -> socket.  et: one
 *       process, non-blocking sockets and pipes, edge-triggered epoll,
 *       SPLICE_F_NONBLOCK, so that a stall means a readiness report was
 *       lost.  Each echo ends with shutdown(SHUT_WR) after the client's
 *       end.  Prints "served N BYTES".
 *   splicer client PORT IN OUT
 *       sends file IN with vmsplice() into a pipe and splice() on to the
 *       socket (a thread), then its end; receives with splice() socket ->
 *       pipe, tee() of that to a second pipe, splice() of the first to
 *       file OUT and read() of the copy to OUT.tee.  Prints "client SENT
 *       RECEIVED".
 *   splicer errors PORT
 *       against "serve PORT block 1": what splice, vmsplice and tee
 *       return where they refuse, must not wait, or move part; a line
 *       each.  Run plain and sealed, the outputs must be the same.
 *
 * A last argument "nnp": the work runs in a child forked after
 * prctl(PR_SET_NO_NEW_PRIVS), where the shim is in sandbox mode and has no
 * pipe of its own (it falls back: shim/shuttle.h).
 *
 * Exits 0 when everything ran as it should (errors: when it ran at all).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 65536

static int port;

static void
die(const char *what)
{
	fprintf(stderr, "splicer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int
dial(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

static int
listener(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0)
		die("listen");
	return fd;
}

/* Move exactly N bytes from pipe P to FD with splice (blocking). */
static void
splice_all(int p, int fd, size_t n, unsigned int flags)
{
	ssize_t m;

	while (n > 0) {
		m = splice(p, NULL, fd, NULL, n, flags);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			die("splice from pipe");
		n -= (size_t)m;
	}
}

/* --- serve ---------------------------------------------------------- */

static size_t
echo_blocking(int c)
{
	size_t total = 0;
	ssize_t n;
	int p[2];

	if (pipe(p) < 0)
		die("pipe");
	for (;;) {
		n = splice(c, NULL, p[1], NULL, CHUNK, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("splice from socket");
		if (n == 0)
			break;
		splice_all(p[0], c, (size_t)n, SPLICE_F_MOVE);
		total += (size_t)n;
	}
	if (shutdown(c, SHUT_WR) < 0)
		die("shutdown");
	/* Wait for the client's close: our end is then read. */
	while (read(c, &n, sizeof(n)) > 0)
		;
	close(c);
	return total;
}

struct econn {
	int fd, p[2];
	size_t inpipe, total;
	int eof, done;
};

/* Move what can move now, until nothing does (the edges are spent). */
static void
pump(struct econn *c)
{
	unsigned int fl = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
	int progress;
	ssize_t n;

	do {
		progress = 0;
		if (!c->eof) {
			n = splice(c->fd, NULL, c->p[1], NULL, CHUNK, fl);
			if (n > 0) {
				c->inpipe += (size_t)n;
				progress = 1;
			} else if (n == 0) {
				c->eof = 1;
				progress = 1;
			} else if (errno != EAGAIN)
				die("splice from socket (et)");
		}
		if (c->inpipe > 0) {
			n = splice(c->p[0], NULL, c->fd, NULL, c->inpipe, fl);
			if (n > 0) {
				c->inpipe -= (size_t)n;
				c->total += (size_t)n;
				progress = 1;
			} else if (n < 0 && errno != EAGAIN)
				die("splice to socket (et)");
		}
	} while (progress && !(c->eof && c->inpipe == 0));
	if (c->eof && c->inpipe == 0 && !c->done) {
		if (shutdown(c->fd, SHUT_WR) < 0)
			die("shutdown (et)");
		c->done = 1;
	}
}

static int
serve(int argc, char **argv)
{
	int ls, n, i, k, got = 0, ended = 0, ep, st;
	size_t total = 0;
	struct econn *cs;
	struct epoll_event ev, evs[16];
	pid_t pid;
	char b[64];

	if (argc < 5)
		return 2;
	n = atoi(argv[4]);
	ls = listener();
	if (strcmp(argv[3], "block") == 0) {
		for (i = 0; i < n; i++) {
			int c = accept(ls, NULL, NULL);

			if (c < 0)
				die("accept");
			if ((pid = fork()) < 0)
				die("fork");
			if (pid == 0) {
				size_t t = echo_blocking(c);

				fprintf(stderr, "echoed %zu\n", t);
				_exit(0);
			}
			close(c);
		}
		for (i = 0; i < n; i++) {
			if (wait(&st) < 0)
				die("wait");
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				return 1;
		}
		printf("served %d\n", n);
		return 0;
	}
	if ((cs = calloc((size_t)n, sizeof(*cs))) == NULL ||
	    (ep = epoll_create1(0)) < 0)
		die("epoll");
	ev.events = EPOLLIN;
	ev.data.u32 = ~0u;
	fcntl(ls, F_SETFL, O_NONBLOCK);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
		die("epoll_ctl");
	while (ended < n) {
		if ((k = epoll_wait(ep, evs, 16, -1)) < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < k; i++) {
			if (evs[i].data.u32 == ~0u) {
				int c;

				while (got < n &&
				    (c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					cs[got].fd = c;
					if (pipe2(cs[got].p, O_NONBLOCK) < 0)
						die("pipe2");
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					    EPOLLET;
					ev.data.u32 = (uint32_t)got;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						die("epoll_ctl");
					got++;
				}
				continue;
			}
			struct econn *c = &cs[evs[i].data.u32];

			if (c->done)
				continue;
			pump(c);
			if (c->done) {
				total += c->total;
				ended++;
			}
		}
	}
	/* The clients close after reading our end. */
	for (i = 0; i < n; i++) {
		fcntl(cs[i].fd, F_SETFL, 0);
		while (read(cs[i].fd, b, sizeof(b)) > 0)
			;
		close(cs[i].fd);
	}
	printf("served %d %zu\n", n, total);
	return 0;
}

/* --- client --------------------------------------------------------- */

struct sender {
	int fd;
	const char *buf;
	size_t len;
};

static void *
send_main(void *arg)
{
	struct sender *sd = arg;
	size_t off = 0;
	struct iovec v;
	ssize_t n;
	int p[2];

	if (pipe(p) < 0)
		die("pipe");
	while (off < sd->len) {
		v.iov_base = (void *)(sd->buf + off);
		v.iov_len = sd->len - off < CHUNK ? sd->len - off : CHUNK;
		n = vmsplice(p[1], &v, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("vmsplice");
		splice_all(p[0], sd->fd, (size_t)n, SPLICE_F_MORE);
		off += (size_t)n;
	}
	if (shutdown(sd->fd, SHUT_WR) < 0)
		die("shutdown");
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void
read_exact(int fd, char *b, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = read(fd, b, n)) <= 0)
			die("read");
		b += r;
		n -= (size_t)r;
	}
}

static void
write_all(int fd, const char *b, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = write(fd, b, n)) <= 0)
			die("write");
		b += r;
		n -= (size_t)r;
	}
}

static int
client(int argc, char **argv)
{
	struct sender sd;
	pthread_t t;
	struct stat st;
	char *in, *copy, teename[4096];
	size_t got = 0, c;
	ssize_t n, m;
	int fd, out, teeout, p[2], q[2];

	if (argc < 5)
		return 2;
	if ((fd = open(argv[3], O_RDONLY)) < 0 || fstat(fd, &st) < 0)
		die(argv[3]);
	sd.len = (size_t)st.st_size;
	if ((in = malloc(sd.len + 1)) == NULL || (copy = malloc(CHUNK)) == NULL)
		die("malloc");
	read_exact(fd, in, sd.len);
	close(fd);
	snprintf(teename, sizeof(teename), "%s.tee", argv[4]);
	if ((out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
	    (teeout = open(teename, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die("open output");
	if (pipe(p) < 0 || pipe(q) < 0)
		die("pipe");
	sd.fd = dial();
	sd.buf = in;
	if (pthread_create(&t, NULL, send_main, &sd) != 0)
		die("pthread_create");
	for (;;) {
		n = splice(sd.fd, NULL, p[1], NULL, CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("splice from socket");
		if (n == 0)
			break;
		/* Both pipes are empty here: the copy is whole at once or in
		 * a few steps. */
		for (c = 0; c < (size_t)n; c += (size_t)m)
			if ((m = tee(p[0], q[1], (size_t)n - c, 0)) <= 0)
				die("tee");
		splice_all(p[0], out, (size_t)n, 0);
		read_exact(q[0], copy, (size_t)n);
		write_all(teeout, copy, (size_t)n);
		got += (size_t)n;
	}
	pthread_join(t, NULL);
	close(sd.fd);
	if (close(out) < 0 || close(teeout) < 0)
		die("close output");
	printf("client %zu %zu\n", sd.len, got);
	return got == sd.len ? 0 : 1;
}

/* --- errors --------------------------------------------------------- */

static void
say(const char *what, ssize_t r)
{
	if (r < 0)
		printf("%s: -1 %s\n", what, strerrorname_np(errno));
	else
		printf("%s: %zd\n", what, r);
	fflush(stdout);
}

/* Send MSG and wait until its echo can be read (not reading it). */
static void
echo_wait(int fd, const char *msg)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	write_all(fd, msg, strlen(msg));
	if (poll(&pf, 1, 10000) != 1)
		die("no echo");
}

static int
errors(void)
{
	char b[16384];
	off_t o = 0;
	struct iovec v = { .iov_base = b, .iov_len = 1 };
	struct pollfd pf;
	int fd, p[2], q[2], e[2];
	ssize_t r;

	signal(SIGPIPE, SIG_IGN);
	fd = dial();
	if (pipe(p) < 0 || pipe(q) < 0 || pipe(e) < 0)
		die("pipe");
	say("socket to socket", splice(fd, NULL, fd, NULL, 10, 0));
	say("offset on the pipe (in)", splice(p[0], &o, fd, NULL, 1, 0));
	say("offset on the socket (out)", splice(p[0], NULL, fd, &o, 1, 0));
	say("offset on the pipe (out)", splice(fd, NULL, p[1], &o, 1, 0));
	say("offset on the socket (in)", splice(fd, &o, p[1], NULL, 1, 0));
	say("length 0 (in)", splice(p[0], NULL, fd, NULL, 0, 0));
	say("length 0 (out)", splice(fd, NULL, p[1], NULL, 0, 0));
	say("vmsplice on the socket", vmsplice(fd, &v, 1, 0));
	say("tee from the socket", tee(fd, p[1], 1, 0));
	say("tee to the socket", tee(p[0], fd, 1, 0));

	/* Nothing to read, a non-blocking socket. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	say("nothing there", splice(fd, NULL, p[1], NULL, 10, 0));
	say("empty pipe, SPLICE_F_NONBLOCK", splice(p[0], NULL, fd, NULL, 10,
	    SPLICE_F_NONBLOCK));
	fcntl(fd, F_SETFL, 0);

	/* A full pipe: EAGAIN with SPLICE_F_NONBLOCK, the data left alone. */
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	memset(b, 'f', sizeof(b));
	while (write(p[1], b, sizeof(b)) > 0)
		;
	fcntl(p[1], F_SETFL, 0);
	echo_wait(fd, "hello");
	say("full pipe, SPLICE_F_NONBLOCK", splice(fd, NULL, p[1], NULL, 10,
	    SPLICE_F_NONBLOCK));
	pf.fd = fd;
	pf.events = POLLIN;
	say("  still readable", poll(&pf, 1, 0));
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	while (read(p[0], b, sizeof(b)) > 0)
		;
	fcntl(p[0], F_SETFL, 0);
	say("then with room", splice(fd, NULL, p[1], NULL, 10, 0));
	r = read(p[0], b, sizeof(b));
	say("  read from the pipe", r);
	printf("  \"%.*s\"\n", (int)(r > 0 ? r : 0), b);

	/* A pipe nobody reads: EPIPE, nothing consumed. */
	close(q[0]);
	echo_wait(fd, "x");
	say("pipe without a reader", splice(fd, NULL, q[1], NULL, 10, 0));
	r = read(fd, b, sizeof(b));
	say("  read() then", r);
	printf("  \"%.*s\"\n", (int)(r > 0 ? r : 0), b);

	/* A part of what is there: the rest stays and is reported. */
	write_all(fd, "0123456789", 10);
	pf.revents = 0;
	if (poll(&pf, 1, 10000) != 1)
		die("no echo");
	usleep(200000);         /* the whole echo, not its first segment */
	say("4 of 10", splice(fd, NULL, p[1], NULL, 4, 0));
	say("  still readable", poll(&pf, 1, 0));
	say("  the rest", splice(fd, NULL, p[1], NULL, 100, 0));
	r = read(p[0], b, sizeof(b));
	printf("  \"%.*s\"\n", (int)(r > 0 ? r : 0), b);

	/* From a pipe: what it holds; its end. */
	write_all(p[1], "abc", 3);
	say("pipe to socket", splice(p[0], NULL, fd, NULL, 100, 0));
	read_exact(fd, b, 3);
	printf("  \"%.3s\"\n", b);
	close(e[1]);
	say("pipe at its end", splice(e[0], NULL, fd, NULL, 100, 0));

	/* Our end, then the server's. */
	shutdown(fd, SHUT_WR);
	say("socket at its end", splice(fd, NULL, p[1], NULL, 100, 0));
	write_all(p[1], "z", 1);
	say("after shutdown", splice(p[0], NULL, fd, NULL, 1, 0));
	close(fd);
	say("closed", splice(fd, NULL, p[1], NULL, 1, 0));
	return 0;
}

/* Go on in a child forked in sandbox mode; the parent waits and exits
 * with its status. */
static void
sandboxed(void)
{
	pid_t pid;
	int st;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("prctl");
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0)
		return;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid");
	exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
}

int
main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[argc - 1], "nnp") == 0) {
		argv[--argc] = NULL;
		sandboxed();
	}
	if (argc < 3)
		goto usage;
	port = atoi(argv[2]);
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc, argv);
	if (strcmp(argv[1], "client") == 0)
		return client(argc, argv);
	if (strcmp(argv[1], "errors") == 0)
		return errors();
usage:
	fprintf(stderr, "usage: splicer serve PORT block|et N | "
	    "client PORT IN OUT | errors PORT  [nnp]\n");
	return 2;
}
