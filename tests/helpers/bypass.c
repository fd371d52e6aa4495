/*
 * bypass: a program that tries every way around the shim on a sealed
 * connection (tests/integration/56-standin.sh).
 *
 *   bypass server PORT MARKER [--libc]    accept one connection
 *   bypass client PORT MARKER [--libc]    connect to 127.0.0.1:PORT
 *   bypass exec PORT MARKER               client; a child exec'd with an
 *                                         empty environment writes
 *   bypass system PORT MARKER             client; unsets LD_PRELOAD, then
 *                                         system() runs the bare child
 *   bypass execsuid PORT MARKER COPY      client; COPY, a set-user-ID copy
 *                                         of this program, is exec'd with
 *                                         the shim in its environment (the
 *                                         loader drops it) and writes
 *   bypass pass PORT MARKER               client; the fd goes by SCM_RIGHTS
 *                                         to a child exec'd without the shim
 *   bypass fds PORT                       descriptor numbers and identity
 *   (inherit FD MARKER, recvfd FD MARKER: the children's side)
 *
 * Each side first tries MARKER through the raw syscall instruction (write,
 * sendto, sendmsg, writev) and a raw read; every one must fail.  Then the
 * client sends "ping\n" with write() and the server answers "pong\n"; with
 * --libc both go through libc's syscall() (connect/accept4/write/read),
 * which the shim must route.  Prints one line per attempt and exits 0 only
 * if every bypass failed and the exchange worked.  Run without the shim
 * (the negative control) the raw calls succeed and the marker is on the
 * wire: exit 1.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self;
static int failures;

/* The syscall instruction itself: no libc, no interposer. */
static long
raw(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b),
	    "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2),
	    "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#else
#error "raw syscalls: x86_64 or aarch64"
#endif
}

/* A bypass attempt: it must fail (R < 0). */
static void
expect_fail(const char *what, long r)
{
	if (r < 0) {
		printf("%s: blocked (%s)\n", what, strerror((int)-r));
	} else {
		printf("%s: GOT THROUGH (%ld)\n", what, r);
		failures++;
	}
}

/* Every raw way to move MARKER, and a raw read. */
static void
raw_attempts(int fd, const char *marker)
{
	size_t len = strlen(marker);
	struct iovec v = { (void *)marker, len };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	char buf[256];
	long r;

	expect_fail("raw write", raw(SYS_write, fd, (long)marker, (long)len, 0, 0, 0));
	expect_fail("raw sendto", raw(SYS_sendto, fd, (long)marker, (long)len,
	    MSG_NOSIGNAL, 0, 0));
	expect_fail("raw sendmsg", raw(SYS_sendmsg, fd, (long)&m, MSG_NOSIGNAL,
	    0, 0, 0));
	expect_fail("raw writev", raw(SYS_writev, fd, (long)&v, 1, 0, 0, 0));
	/* EAGAIN would be the socket itself, with nothing to read yet. */
	r = raw(SYS_recvfrom, fd, (long)buf, sizeof(buf), MSG_DONTWAIT, 0, 0);
	expect_fail("raw recvfrom", r == -EAGAIN || r == 0 ? 1 : r);
	/* Blocking: the stand-in fails at once; data or a clean EOF would
	 * be a way through. */
	r = raw(SYS_read, fd, (long)buf, sizeof(buf), 0, 0, 0);
	expect_fail("raw read", r == 0 ? 1 : r);
}

static ssize_t
do_write(int fd, const void *b, size_t n, int libc)
{
	return libc ? syscall(SYS_write, fd, b, n) : write(fd, b, n);
}

static ssize_t
do_read(int fd, void *b, size_t n, int libc)
{
	return libc ? syscall(SYS_read, fd, b, n) : read(fd, b, n);
}

/* Read until LINE has come in whole; 0 if it did. */
static int
expect_line(int fd, const char *line, int libc)
{
	char buf[64];
	size_t got = 0, want = strlen(line);
	ssize_t n;

	while (got < want) {
		n = do_read(fd, buf + got, want - got, libc);
		if (n <= 0) {
			printf("read: %s\n", n == 0 ? "EOF" : strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	if (memcmp(buf, line, want) != 0) {
		printf("read: unexpected bytes\n");
		return -1;
	}
	return 0;
}

static int
dial(int port, int libc)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = libc ? (int)syscall(SYS_connect, fd, &sa, sizeof(sa)) :
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (fd < 0 || r < 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

/* The client's exchange after its attempts. */
static int
client_exchange(int fd, int libc)
{
	if (do_write(fd, "ping\n", 5, libc) != 5) {
		perror("write");
		return -1;
	}
	return expect_line(fd, "pong\n", libc);
}

static int
run_server(int port, const char *marker, int libc)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4) < 0) {
		perror("listen");
		return 2;
	}
	fd = libc ? (int)syscall(SYS_accept4, l, NULL, NULL, 0) :
	    accept(l, NULL, NULL);
	if (fd < 0) {
		perror("accept");
		return 2;
	}
	raw_attempts(fd, marker);
	if (expect_line(fd, "ping\n", libc) < 0 ||
	    do_write(fd, "pong\n", 5, libc) != 5)
		failures++;
	close(fd);
	close(l);
	return failures ? 1 : 0;
}

/* Run this program again as ARGV with an empty environment (no shim). */
static pid_t
spawn_bare(char *const argv[])
{
	char *const envp[] = { NULL };
	pid_t pid = fork();

	if (pid == 0) {
		execve(self, argv, envp);
		_exit(127);
	}
	return pid;
}

static int
child_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/*
 * A process without the shim tries FD with plain libc, then looks for any
 * connected socket among all its descriptors (the shim's own, if one had
 * come with it) and writes the marker there too.
 */
static int
bare_attempts(int fd, const char *marker)
{
	struct sockaddr_storage ss;
	char buf[64], name[64];
	size_t len = strlen(marker);
	socklen_t l;
	struct dirent *d;
	DIR *dir;
	int o;

	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			o = atoi(d->d_name);
			if (d->d_name[0] < '0' || d->d_name[0] > '9' || o == dirfd(dir))
				continue;
			l = sizeof(ss);
			if (getpeername(o, (struct sockaddr *)&ss, &l) < 0 ||
			    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
				continue;
			snprintf(name, sizeof(name), "connected socket on fd %d", o);
			expect_fail(name, send(o, marker, len, MSG_NOSIGNAL) < 0 ?
			    -errno : 1);
		}
		closedir(dir);
	}

	expect_fail("write", write(fd, marker, len) < 0 ? -errno : 1);
	expect_fail("send", send(fd, marker, len, MSG_NOSIGNAL) < 0 ? -errno : 1);
	/* An error, never data and never a clean EOF. */
	expect_fail("read", read(fd, buf, sizeof(buf)) < 0 ? -errno : 1);
	return failures ? 1 : 0;
}

/*
 * The shim's own descriptors (a socket this program never opened, listed
 * in /proc/self/fd) are hidden from its libc calls: write, getpeername,
 * close and fcntl say EBADF; a dup2 onto one succeeds (it moves out of the
 * way, or EBADF above the limit), and FD's connection keeps working.
 */
static int
shim_fds_hidden(int fd)
{
	struct sockaddr_storage ss;
	struct dirent *d;
	struct stat st;
	socklen_t l;
	int o, r, ok = 1, hidden = 0, nul = open("/dev/null", O_RDONLY);
	DIR *dir = opendir("/proc/self/fd");

	while (dir != NULL && (d = readdir(dir)) != NULL) {
		o = atoi(d->d_name);
		if (d->d_name[0] < '0' || d->d_name[0] > '9' || o <= 2 ||
		    o == fd || o == nul || o == dirfd(dir) ||
		    fstat(o, &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		hidden++;
		l = sizeof(ss);
		ok &= write(o, "x", 1) < 0 && errno == EBADF;
		ok &= getpeername(o, (struct sockaddr *)&ss, &l) < 0 &&
		    errno == EBADF;
		ok &= fcntl(o, F_GETFD) < 0 && errno == EBADF;
		ok &= close(o) < 0 && errno == EBADF;
		r = dup2(nul, o);
		ok &= r == o || (r < 0 && errno == EBADF);
		if (r == o)
			close(o);
	}
	if (dir != NULL)
		closedir(dir);
	close(nul);
	printf("shim descriptors seen %d, hidden %s\n", hidden, ok ? "ok" : "NO");
	return ok && hidden >= 1;
}

static int
run_fds(int port)
{
	int lowest, fd, next, v, ok = 1;
	struct rlimit before, after;
	struct sockaddr_in sa;
	socklen_t l;
	struct stat st;

	getrlimit(RLIMIT_NOFILE, &before);
	lowest = open("/dev/null", O_RDONLY);
	close(lowest);
	fd = dial(port, 0);
	next = open("/dev/null", O_RDONLY);
	printf("lowest free %d, socket %d, next %d\n", lowest, fd, next);
	ok &= fd == lowest && next == fd + 1;
	ok &= fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	l = sizeof(v);
	ok &= getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_STREAM;
	ok &= getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_INET;
	ok &= getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l) == 0 &&
	    v == IPPROTO_TCP;
	l = sizeof(sa);
	ok &= getpeername(fd, (struct sockaddr *)&sa, &l) == 0 &&
	    ntohs(sa.sin_port) == port;
	l = sizeof(sa);
	ok &= getsockname(fd, (struct sockaddr *)&sa, &l) == 0 &&
	    sa.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && sa.sin_port != 0;
	v = 1;
	ok &= setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) == 0;
	l = sizeof(v);
	ok &= getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) == 0 && v == 1;
	ok &= fcntl(fd, F_SETFL, O_NONBLOCK) == 0 &&
	    (fcntl(fd, F_GETFL) & O_NONBLOCK) && fcntl(fd, F_SETFL, 0) == 0;
	getrlimit(RLIMIT_NOFILE, &after);
	printf("limit %llu/%llu -> %llu/%llu\n",
	    (unsigned long long)before.rlim_cur, (unsigned long long)before.rlim_max,
	    (unsigned long long)after.rlim_cur, (unsigned long long)after.rlim_max);
	ok &= before.rlim_cur == after.rlim_cur && before.rlim_max == after.rlim_max;
	ok &= sysconf(_SC_OPEN_MAX) == (long)before.rlim_cur;
	ok &= shim_fds_hidden(fd);
	if (client_exchange(fd, 0) < 0)
		ok = 0;
	printf("identity %s\n", ok ? "ok" : "WRONG");
	close(next);
	close(fd);
	return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
	int port, fd, libc, sv[2];
	char fdbuf[16];
	pid_t pid;

	self = argv[0];
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3) {
		fprintf(stderr, "usage: see the top of bypass.c\n");
		return 2;
	}
	libc = argc > 4 && strcmp(argv[4], "--libc") == 0;
	if (strcmp(argv[1], "inherit") == 0)
		return bare_attempts(atoi(argv[2]), argv[3]);
	if (strcmp(argv[1], "recvfd") == 0) {
		char c, cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec v = { &c, 1 };
		struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1,
		    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;

		if (recvmsg(atoi(argv[2]), &m, 0) != 1 ||
		    (cm = CMSG_FIRSTHDR(&m)) == NULL ||
		    cm->cmsg_type != SCM_RIGHTS) {
			printf("recvfd: no descriptor\n");
			return 2;
		}
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		return bare_attempts(fd, argv[3]);
	}
	port = atoi(argv[2]);
	if (strcmp(argv[1], "fds") == 0)
		return run_fds(port);
	if (argc < 4) {
		fprintf(stderr, "usage: see the top of bypass.c\n");
		return 2;
	}
	if (strcmp(argv[1], "server") == 0)
		return run_server(port, argv[3], libc);
	fd = dial(port, libc);
	if (strcmp(argv[1], "client") == 0) {
		raw_attempts(fd, argv[3]);
	} else if (strcmp(argv[1], "exec") == 0) {
		char *args[] = { (char *)self, "inherit", fdbuf, argv[3], NULL };

		snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
		pid = spawn_bare(args);
		if (child_status(pid) != 0)
			failures++;
	} else if (strcmp(argv[1], "system") == 0) {
		/* The program drops the shim from its environment, then runs
		 * a command through system() (glibc spawns /bin/sh itself). */
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "'%s' inherit %d '%s'", self, fd,
		    argv[3]);
		unsetenv("LD_PRELOAD");
		if (system(cmd) != 0)
			failures++;
	} else if (strcmp(argv[1], "execsuid") == 0 && argc > 4) {
		/* ARGV[4]: a set-user-ID copy of this program; the shim stays
		 * in the environment, but the loader will drop it. */
		char *args[] = { argv[4], "inherit", fdbuf, argv[3], NULL };

		snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
		if ((pid = fork()) == 0) {
			execv(argv[4], args);
			_exit(127);
		}
		if (child_status(pid) != 0)
			failures++;
	} else if (strcmp(argv[1], "pass") == 0) {
		char *args[] = { (char *)self, "recvfd", fdbuf, argv[3], NULL };
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec v = { "x", 1 };
		struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1,
		    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			return 2;
		snprintf(fdbuf, sizeof(fdbuf), "%d", sv[1]);
		pid = spawn_bare(args);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
		if (sendmsg(sv[0], &m, 0) != 1) {
			perror("sendmsg");
			failures++;
		}
		if (child_status(pid) != 0)
			failures++;
	} else {
		fprintf(stderr, "bypass: unknown mode %s\n", argv[1]);
		return 2;
	}
	if (client_exchange(fd, libc) < 0)
		failures++;
	close(fd);
	printf("%s\n", failures ? "FAILED" : "all bypasses blocked");
	return failures ? 1 : 0;
}
