/*
 * test_conn: the connection decisions in shim/conn.c (conn_connect,
 * conn_accepted, conn_fastopen) with a real policy, over loopback.
 *
 * conn.c asks init.c for the policy, and init.c's constructor loads it
 * (SOCKSEAL_POLICY, else /etc/sockseal/policy, exiting on failure) before
 * main() runs.  So this test's own constructor, which runs first (a
 * constructor priority), opens the listeners on ephemeral ports, writes a
 * key and a policy naming those ports into a temporary directory and
 * points SOCKSEAL_POLICY at it.  The test process is then both sides: its
 * listeners accept what conn_connect() connects, and conn_accepted() seals
 * the accepted end per the accept rules, so handshakes complete without a
 * peer program.
 *
 * Covered: a sealed connect (non-blocking: -EINPROGRESS; blocking: 0 once
 * the handshake is done, -ECONNREFUSED when the peer is not sealed) swaps
 * the program's fd for a stand-in (a socket to fstat and getsockopt, its
 * own inode, the tag naming the kfd; raw write/read syscalls on it fail
 * EPIPE/ENOTCONN; session_kfd != fd and the socket lives on the kfd);
 * a second connect (-EALREADY, -EISCONN); a refused connect gives the
 * socket back; plain rules, unmatched ports, UDP, AF_UNIX and short
 * addresses pass through untouched (same inode, no session, plaintext on
 * the wire); IPv6 and IPv4-mapped destinations; MPTCP counts as TCP;
 * conn_accepted per accept rules (sealed, plain, unmatched, permissive
 * with a plaintext client) and the stale entry it drops; fast open kept
 * for plain connections only; the handshake bound; and a registration
 * made with epoll before connect() (epoll_pre) translated after it.
 * conn_adopt_inherited() (exec hand-over) is left to the integration tests
 * (43-exec, 56-standin): it needs an image started with the fds open.
 *
 * Run from the repo root: build/tests/test_conn.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "conn.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "policy.h"
#include "reload.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "standin.h"
#include "check.h"
#include "wire.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Listeners (made by the constructor) and their ports. */
enum { L_SEAL, L_PLAIN, L_NONE, L_PERM, L_MP, L_SEAL6, L_N };
static int lfd[L_N] = { -1, -1, -1, -1, -1, -1 };
static uint16_t lport[L_N];
static int refused_fd = -1;             /* bound, never listening */
static uint16_t refused_port;
static bool have_mptcp, have_v6;
static char tmpdir[] = "/tmp/test_conn.XXXXXX";
static char policy_path[sizeof(tmpdir) + 16], key_path[sizeof(tmpdir) + 16];

static int
listener(int family, int proto, bool do_listen, uint16_t *port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t l = family == AF_INET ? sizeof(*sin) : sizeof(*sin6);
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		sin6->sin6_addr = in6addr_loopback;
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, proto)) < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, l) < 0 ||
	    (do_listen && listen(fd, 16) < 0) ||
	    getsockname(fd, (struct sockaddr *)&ss, &l) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

/* Before init.c's constructor: the listeners, a key, the policy. */
__attribute__((constructor(101))) static void
test_setup(void)
{
	unsigned char key[32];
	char b64[64];
	FILE *f;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		_exit(1);
	}
	lfd[L_SEAL] = listener(AF_INET, 0, true, &lport[L_SEAL]);
	lfd[L_PLAIN] = listener(AF_INET, 0, true, &lport[L_PLAIN]);
	lfd[L_NONE] = listener(AF_INET, 0, true, &lport[L_NONE]);
	lfd[L_PERM] = listener(AF_INET, 0, true, &lport[L_PERM]);
	refused_fd = listener(AF_INET, 0, false, &refused_port);
	lfd[L_MP] = listener(AF_INET, IPPROTO_MPTCP, true, &lport[L_MP]);
	have_mptcp = lfd[L_MP] >= 0;
	lfd[L_SEAL6] = listener(AF_INET6, 0, true, &lport[L_SEAL6]);
	have_v6 = lfd[L_SEAL6] >= 0;
	if (lfd[L_SEAL] < 0 || lfd[L_PLAIN] < 0 || lfd[L_NONE] < 0 ||
	    lfd[L_PERM] < 0 || refused_fd < 0) {
		perror("listener");
		_exit(1);
	}
	if (sodium_init() < 0)
		_exit(1);
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(key_path, sizeof(key_path), "%s/k.key", tmpdir);
	snprintf(policy_path, sizeof(policy_path), "%s/policy", tmpdir);
	if ((f = fopen(key_path, "w")) == NULL)
		_exit(1);
	fprintf(f, "%s\n", b64);
	fclose(f);
	chmod(key_path, 0600);
	if ((f = fopen(policy_path, "w")) == NULL)
		_exit(1);
	fprintf(f, "key k %s\n", key_path);
	fprintf(f, "connect 127.0.0.1:%u plain\n", lport[L_PLAIN]);
	fprintf(f, "accept  127.0.0.1:%u plain\n", lport[L_PLAIN]);
	fprintf(f, "connect 127.0.0.1:%u key=k timeout=3000\n", lport[L_SEAL]);
	fprintf(f, "accept  127.0.0.1:%u key=k timeout=3000\n", lport[L_SEAL]);
	fprintf(f, "connect 127.0.0.1:%u key=k timeout=3000\n", refused_port);
	fprintf(f, "accept  127.0.0.1:%u key=k mode=permissive timeout=300\n",
	    lport[L_PERM]);
	if (have_mptcp) {
		fprintf(f, "connect 127.0.0.1:%u key=k\n", lport[L_MP]);
		fprintf(f, "accept  127.0.0.1:%u key=k\n", lport[L_MP]);
	}
	if (have_v6) {
		fprintf(f, "connect [::1]:%u key=k\n", lport[L_SEAL6]);
		fprintf(f, "accept  [::1]:%u key=k\n", lport[L_SEAL6]);
	}
	fclose(f);
	setenv("SOCKSEAL_POLICY", policy_path, 1);
}

static void
addr4(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static ino_t
ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_ino : 0;
}

static int
sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	return getsockopt(fd, level, name, &v, &l) == 0 ? v : -errno;
}

/* Accept one connection on listener L (waiting up to MS), non-blocking. */
static int
accept_one_ms(int l, int ms)
{
	struct pollfd p = { .fd = l, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static int
accept_one(int l)
{
	return accept_one_ms(l, 2000);
}

/* Accept and close whatever waits on listener L (the first wait MS). */
static void
drain_backlog(int l, int ms)
{
	int a;

	while ((a = accept_one_ms(l, ms)) >= 0) {
		close(a);
		ms = 0;
	}
}

/* Drive two sessions' handshakes (non-blocking) to the end. */
static bool
handshake2(struct session *a, int afd, struct session *b, int bfd)
{
	int ra = -EAGAIN, rb = -EAGAIN, i;
	struct pollfd p[2];

	for (i = 0; i < 500 && (ra == -EAGAIN || rb == -EAGAIN); i++) {
		if (ra == -EAGAIN)
			ra = session_handshake(a, afd, false);
		if (rb == -EAGAIN)
			rb = session_handshake(b, bfd, false);
		p[0].fd = session_kfd(a, afd);
		p[1].fd = session_kfd(b, bfd);
		p[0].events = p[1].events = POLLIN;
		(void)poll(p, 2, 5);
	}
	return ra == 0 && rb == 0;
}

static ssize_t
s_send(struct session *s, int fd, const char *str)
{
	return wire_send(s, fd, str, strlen(str));
}

/* Receive LEN bytes (bounded). */
static ssize_t
s_recv(struct session *s, int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;
	int i;

	for (i = 0; i < 400 && got < len; i++) {
		r = wire_recv(s, fd, buf + got, len - got);
		if (r > 0)
			got += (size_t)r;
		else if (r == -EAGAIN)
			(void)wire_readable(session_kfd(s, fd), 5);
		else
			break;
	}
	return (ssize_t)got;
}

/* The program's fd is a stand-in for S: every check of the swap. */
static void
check_standin(int fd, struct session *s, ino_t orig, int family,
    unsigned int flags)
{
	unsigned int tf = 99;
	int kfd = session_kfd(s, fd);
	char c = 'x';

	CHECK(kfd != fd);
	CHECK(kfd >= standin_base());
	CHECK(standin_is_kfd(kfd));
	CHECK(!standin_is_kfd(fd));
	/* the socket moved to the kfd; the number is another socket */
	CHECK(ino_of(kfd) == orig);
	CHECK(ino_of(fd) != 0 && ino_of(fd) != orig);
	CHECK_INT_EQ(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	CHECK_INT_EQ(sockopt(fd, SOL_SOCKET, SO_DOMAIN), family);
	CHECK_INT_EQ(sockopt(fd, SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
	CHECK_INT_EQ(standin_find(fd, &tf), kfd);
	CHECK_INT_EQ(tf, flags);
	/* what goes around the shim fails (a raw write is EPIPE, never a
	 * byte on the wire; a raw read ENOTCONN, never a clean 0) */
	errno = 0;
	CHECK_INT_EQ(syscall(SYS_write, fd, &c, 1), -1);
	CHECK_INT_EQ(errno, EPIPE);
	errno = 0;
	CHECK_INT_EQ(syscall(SYS_read, fd, &c, 1), -1);
	CHECK_INT_EQ(errno, ENOTCONN);
	errno = 0;
	CHECK_INT_EQ(syscall(SYS_sendto, fd, &c, 1, MSG_NOSIGNAL, NULL, 0), -1);
	CHECK_INT_EQ(errno, EPIPE);
	/* the stand-in never connects; the kfd is the connection */
	{
		struct sockaddr_storage ss;
		socklen_t l = sizeof(ss);

		CHECK_INT_EQ(getpeername(fd, (struct sockaddr *)&ss, &l), -1);
		CHECK_INT_EQ(errno, ENOTCONN);
		l = sizeof(ss);
		CHECK_INT_EQ(getpeername(kfd, (struct sockaddr *)&ss, &l), 0);
	}
}

/* The program's fd is its own socket still: nothing sealed it. */
static void
check_untouched(int fd, ino_t orig)
{
	unsigned int tf;

	CHECK(!fdtab_maybe(fd));
	CHECK(fdtab_get(fd) == NULL);
	CHECK(ino_of(fd) == orig);
	CHECK_INT_EQ(standin_find(fd, &tf), -1);
}

/* A non-blocking sealed connect; the accepted end sealed too. */
static void
test_connect_nonblocking(void)
{
	struct sockaddr_in sin;
	struct session *s, *t;
	char buf[64], peek[64];
	ino_t orig, sorig;
	int c, a, kfd, fl;
	ssize_t n;

	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	orig = ino_of(c);
	CHECK(orig != 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	s = fdtab_get(c);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	check_standin(c, s, orig, AF_INET, STANDIN_INIT | STANDIN_USED);
	CHECK(s->initiator);
	CHECK(session_state(s) == SESSION_HS_SEND1 ||
	    session_state(s) == SESSION_HS_WAIT2);
	CHECK_INT_EQ(s->pfd, c);
	kfd = session_kfd(s, c);
	/* the stand-in keeps the program's flags */
	fl = fcntl(c, F_GETFL);
	CHECK(fl >= 0 && (fl & O_NONBLOCK));
	CHECK(fcntl(c, F_GETFD) & FD_CLOEXEC);
	/* a second connect while the handshake runs */
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EALREADY);

	/* the accepted end: sealed as responder */
	a = accept_one(lfd[L_SEAL]);
	CHECK(a >= 0);
	sorig = ino_of(a);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(t != NULL);
	if (t == NULL) {
		session_put(s);
		wire_close_fd(c);
		return;
	}
	check_standin(a, t, sorig, AF_INET, 0);
	CHECK(!t->initiator);
	CHECK_INT_EQ(session_state(t), SESSION_HS_WAIT1);
	CHECK(t->rule != NULL && t->rule->dir == POLICY_ACCEPT);
	CHECK(s->rule != NULL && s->rule->dir == POLICY_CONNECT);

	CHECK(handshake2(s, c, t, a));
	CHECK_INT_EQ(session_state(s), SESSION_OPEN);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EISCONN);
	/* data: sealed on the wire, plaintext through the sessions */
	CHECK_INT_EQ(s_send(s, c, "ping"), 4);
	(void)wire_readable(session_kfd(t, a), 1000);
	n = recv(session_kfd(t, a), peek, sizeof(peek), MSG_PEEK);
	CHECK_INT_EQ(n, RECORD_WIRELEN(4));
	CHECK(memmem(peek, (size_t)(n > 0 ? n : 0), "ping", 4) == NULL);
	CHECK_INT_EQ(s_recv(t, a, buf, 4), 4);
	CHECK_MEM_EQ(buf, "ping", 4);
	CHECK_INT_EQ(s_send(t, a, "pong!"), 5);
	CHECK_INT_EQ(s_recv(s, c, buf, 5), 5);
	CHECK_MEM_EQ(buf, "pong!", 5);
	session_put(s);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(a);
	/* the kfds went with the last references */
	CHECK(!standin_is_kfd(kfd));
	CHECK(fcntl(kfd, F_GETFD) < 0);
}

/* A blocking sealed connect returns once the handshake is done. */
struct acc_arg {
	int lfd, fd, r;
	bool seal, garbage;
};

static void *
acceptor(void *arg)
{
	struct acc_arg *x = arg;
	struct session *t;
	char buf[256];

	x->r = -1;
	if ((x->fd = accept_one(x->lfd)) < 0)
		return NULL;
	if (!x->seal) {
		/* a plaintext server: takes message 1, answers nonsense */
		(void)wire_readable(x->fd, 2000);
		(void)read(x->fd, buf, sizeof(buf));
		if (x->garbage)
			(void)write(x->fd, "HTTP/1.0 400 Bad\r\n\r\n", 20);
		(void)shutdown(x->fd, SHUT_WR);
		x->r = 0;
		return NULL;
	}
	if ((x->r = conn_accepted(x->fd)) < 0 || (t = fdtab_get(x->fd)) == NULL)
		return NULL;
	fcntl(session_kfd(t, x->fd), F_SETFL, 0);       /* block */
	x->r = session_handshake(t, x->fd, true);
	session_put(t);
	return NULL;
}

static void
test_connect_blocking(void)
{
	struct sockaddr_in sin;
	struct acc_arg x = { .lfd = lfd[L_SEAL], .fd = -1, .seal = true };
	struct session *s, *t;
	pthread_t th;
	char buf[16];
	ino_t orig;
	int c, r;

	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM, 0);
	orig = ino_of(c);
	pthread_create(&th, NULL, acceptor, &x);
	r = conn_connect(c, (struct sockaddr *)&sin, sizeof(sin));
	pthread_join(th, NULL);
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(x.r, 0);
	s = fdtab_get(c);
	t = fdtab_get(x.fd);
	CHECK(s != NULL && t != NULL);
	if (s != NULL && t != NULL) {
		check_standin(c, s, orig, AF_INET, STANDIN_INIT | STANDIN_USED);
		CHECK_INT_EQ(session_state(s), SESSION_OPEN);
		CHECK_INT_EQ(session_state(t), SESSION_OPEN);
		CHECK(!(fcntl(c, F_GETFL) & O_NONBLOCK));
		CHECK_INT_EQ(s_send(s, c, "blk"), 3);
		CHECK_INT_EQ(s_recv(t, x.fd, buf, 3), 3);
		CHECK_MEM_EQ(buf, "blk", 3);
	}
	session_put(s);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(x.fd);

	/* the server is not sealed: the handshake fails, connect says
	 * ECONNREFUSED, and the fd stays a stand-in of a dead session */
	x = (struct acc_arg){ .lfd = lfd[L_SEAL], .fd = -1, .garbage = true };
	c = socket(AF_INET, SOCK_STREAM, 0);
	orig = ino_of(c);
	pthread_create(&th, NULL, acceptor, &x);
	r = conn_connect(c, (struct sockaddr *)&sin, sizeof(sin));
	pthread_join(th, NULL);
	CHECK_INT_EQ(r, -ECONNREFUSED);
	s = fdtab_get(c);
	CHECK(s != NULL);
	if (s != NULL) {
		CHECK_INT_EQ(session_state(s), SESSION_DEAD);
		CHECK(ino_of(c) != orig);
		CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin,
		    sizeof(sin)), -ECONNREFUSED);
		session_put(s);
	}
	wire_close_fd(c);
	close(x.fd);
}

/* Refused by TCP at once: the program gets its socket back. */
static void
test_connect_refused(void)
{
	struct sockaddr_in sin;
	int c, before[64], after[64], nb, na;
	ino_t orig;

	nb = standin_kfds(0, ~0u, before, 64);
	addr4(&sin, refused_port);
	c = socket(AF_INET, SOCK_STREAM, 0);
	orig = ino_of(c);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -ECONNREFUSED);
	check_untouched(c, orig);
	na = standin_kfds(0, ~0u, after, 64);
	CHECK_INT_EQ(na, nb);
	CHECK(na != nb || memcmp(before, after, (size_t)na * sizeof(int)) == 0);
	/* the socket is usable again: a plain connect elsewhere works */
	addr4(&sin, lport[L_NONE]);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	check_untouched(c, orig);
	close(c);
	c = accept_one(lfd[L_NONE]);
	CHECK(c >= 0);
	close(c);
}

/* Plain rules, unmatched ports, other kinds of socket: untouched. */
static void
test_passthrough(void)
{
	struct sockaddr_in sin;
	char buf[16];
	ino_t orig, aorig;
	int c, a, i, r, ports[2] = { lport[L_PLAIN], lport[L_NONE] };
	int ls[2] = { lfd[L_PLAIN], lfd[L_NONE] };

	for (i = 0; i < 2; i++) {
		addr4(&sin, (uint16_t)ports[i]);
		c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		orig = ino_of(c);
		r = conn_connect(c, (struct sockaddr *)&sin, sizeof(sin));
		CHECK(r == 0 || r == -EINPROGRESS);
		check_untouched(c, orig);
		a = accept_one(ls[i]);
		CHECK(a >= 0);
		aorig = ino_of(a);
		CHECK_INT_EQ(conn_accepted(a), 0);
		check_untouched(a, aorig);
		/* plaintext, byte for byte, both ways */
		{
			struct pollfd p = { .fd = c, .events = POLLOUT };

			CHECK_INT_EQ(poll(&p, 1, 1000), 1);
		}
		CHECK_INT_EQ(syscall(SYS_write, c, "plain", 5), 5);
		CHECK(wire_readable(a, 1000));
		CHECK_INT_EQ(read(a, buf, sizeof(buf)), 5);
		CHECK_MEM_EQ(buf, "plain", 5);
		CHECK_INT_EQ(write(a, "back", 4), 4);
		CHECK(wire_readable(c, 1000));
		CHECK_INT_EQ(read(c, buf, sizeof(buf)), 4);
		close(c);
		close(a);
	}

	/* UDP to a sealed port: not TCP */
	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_DGRAM, 0);
	orig = ino_of(c);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	check_untouched(c, orig);
	close(c);

	/* AF_UNIX */
	{
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int l;

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/sock", tmpdir);
		l = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK_INT_EQ(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
		CHECK_INT_EQ(listen(l, 1), 0);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		orig = ino_of(c);
		CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
		check_untouched(c, orig);
		a = accept(l, NULL, NULL);
		CHECK(a >= 0);
		aorig = ino_of(a);
		CHECK_INT_EQ(conn_accepted(a), 0);      /* not INET */
		check_untouched(a, aorig);
		close(a);
		close(c);
		close(l);
		unlink(sun.sun_path);
	}

	/* an address too short to match: the kernel's answer, untouched */
	c = socket(AF_INET, SOCK_STREAM, 0);
	orig = ino_of(c);
	addr4(&sin, lport[L_SEAL]);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, 8), -EINVAL);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, 1), -EINVAL);
	check_untouched(c, orig);
	close(c);
}

/* The same rules seen through IPv6: [::1] and a v4-mapped address. */
static void
test_v6(void)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct session *s, *t;
	ino_t orig;
	int c, a, r;
	char buf[8];

	/* ::ffff:127.0.0.1 on a dual-stack socket is 127.0.0.1 */
	s6.sin6_port = htons(lport[L_SEAL]);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
	c = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c >= 0) {
		orig = ino_of(c);
		r = conn_connect(c, (struct sockaddr *)&s6, sizeof(s6));
		CHECK_INT_EQ(r, -EINPROGRESS);
		s = fdtab_get(c);
		CHECK(s != NULL);
		a = accept_one(lfd[L_SEAL]);
		CHECK_INT_EQ(conn_accepted(a), 0);
		t = fdtab_get(a);
		CHECK(t != NULL);
		if (s != NULL && t != NULL) {
			check_standin(c, s, orig, AF_INET6,
			    STANDIN_INIT | STANDIN_USED);
			CHECK(handshake2(s, c, t, a));
		}
		session_put(s);
		session_put(t);
		wire_close_fd(c);
		wire_close_fd(a);
	}
	if (!have_v6) {
		printf("test_conn: no IPv6 loopback, [::1] cases skipped\n");
		return;
	}
	s6.sin6_port = htons(lport[L_SEAL6]);
	s6.sin6_addr = in6addr_loopback;
	c = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	orig = ino_of(c);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&s6, sizeof(s6)),
	    -EINPROGRESS);
	s = fdtab_get(c);
	a = accept_one(lfd[L_SEAL6]);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(s != NULL && t != NULL);
	if (s != NULL && t != NULL) {
		check_standin(c, s, orig, AF_INET6, STANDIN_INIT | STANDIN_USED);
		CHECK(handshake2(s, c, t, a));
		CHECK_INT_EQ(s_send(t, a, "six"), 3);
		CHECK_INT_EQ(s_recv(s, c, buf, 3), 3);
		CHECK_MEM_EQ(buf, "six", 3);
	}
	session_put(s);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(a);
}

/* MPTCP sockets are TCP on the wire: sealed both ways. */
static void
test_mptcp(void)
{
	struct sockaddr_in sin;
	struct session *s, *t;
	ino_t orig;
	int c, a;
	char buf[8];

	if (!have_mptcp) {
		printf("test_conn: no MPTCP here, its cases skipped\n");
		return;
	}
	addr4(&sin, lport[L_MP]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_MPTCP);
	CHECK(c >= 0);
	CHECK_INT_EQ(sockopt(c, SOL_SOCKET, SO_PROTOCOL), IPPROTO_MPTCP);
	orig = ino_of(c);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	s = fdtab_get(c);
	CHECK(s != NULL);
	a = accept_one(lfd[L_MP]);
	CHECK(a >= 0);
	CHECK_INT_EQ(sockopt(a, SOL_SOCKET, SO_PROTOCOL), IPPROTO_MPTCP);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(t != NULL);
	if (s != NULL && t != NULL) {
		/* the stand-in is plain TCP; the kfd is the MPTCP socket */
		check_standin(c, s, orig, AF_INET, STANDIN_INIT | STANDIN_USED);
		CHECK_INT_EQ(sockopt(session_kfd(s, c), SOL_SOCKET,
		    SO_PROTOCOL), IPPROTO_MPTCP);
		CHECK_INT_EQ(sockopt(session_kfd(t, a), SOL_SOCKET,
		    SO_PROTOCOL), IPPROTO_MPTCP);
		CHECK(handshake2(s, c, t, a));
		CHECK_INT_EQ(s_send(s, c, "mp"), 2);
		CHECK_INT_EQ(s_recv(t, a, buf, 2), 2);
		CHECK_MEM_EQ(buf, "mp", 2);
	}
	session_put(s);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(a);
	/* an MPTCP client of an unmatched port: untouched */
	addr4(&sin, lport[L_NONE]);
	c = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	orig = ino_of(c);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	check_untouched(c, orig);
	close(c);
	a = accept_one(lfd[L_NONE]);
	close(a);
}

/* conn_accepted: stale entries, permissive rules. */
static void
test_accepted(void)
{
	struct sockaddr_in sin;
	struct session *stale, *t, *s2;
	struct policy_rule r;
	char buf[32];
	ino_t aorig;
	int c, a, i, n;

	/* a stale entry under the number (closed behind the shim's back)
	 * goes, on an unmatched port as on a sealed one */
	wire_rule(&r, POLICY_CONNECT, 5000);
	addr4(&sin, lport[L_NONE]);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	a = accept_one(lfd[L_NONE]);
	stale = session_new(a, &r, true, (struct sockaddr *)&sin);
	CHECK_INT_EQ(fdtab_set(a, stale), 0);
	aorig = ino_of(a);
	CHECK_INT_EQ(conn_accepted(a), 0);
	check_untouched(a, aorig);
	CHECK_INT_EQ(stale->nfds, 0);
	CHECK_INT_EQ(stale->refs, 1);
	close(a);
	close(c);

	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	a = accept_one(lfd[L_SEAL]);
	CHECK_INT_EQ(fdtab_set(a, stale), 0);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(t != NULL && t != stale);
	CHECK_INT_EQ(stale->nfds, 0);
	CHECK_INT_EQ(stale->refs, 1);
	s2 = fdtab_get(c);
	if (t != NULL && s2 != NULL)
		CHECK(handshake2(s2, c, t, a));
	session_put(s2);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(a);
	session_put(stale);

	/* permissive: the accepted end has a session; a plaintext client
	 * (no connect rule for the port) is served plaintext */
	addr4(&sin, lport[L_PERM]);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK(fdtab_get(c) == NULL);
	a = accept_one(lfd[L_PERM]);
	aorig = ino_of(a);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(t != NULL);
	if (t != NULL) {
		check_standin(a, t, aorig, AF_INET, 0);
		CHECK_INT_EQ(session_state(t), SESSION_HS_WAIT1);
		CHECK(t->rule->mode == POLICY_PERMISSIVE);
		CHECK_INT_EQ(write(c, "GET / HTTP/1.0\r\n", 16), 16);
		for (i = 0, n = 0; i < 200 && n <= 0; i++) {
			n = (int)wire_recv(t, a, buf, sizeof(buf));
			if (n == -EAGAIN)
				(void)wire_readable(session_kfd(t, a), 5);
		}
		CHECK_INT_EQ(n, 16);
		CHECK_MEM_EQ(buf, "GET / HTTP/1.0\r\n", 16);
		CHECK_INT_EQ(session_state(t), SESSION_PLAIN);
		CHECK_INT_EQ(s_send(t, a, "200"), 3);
		CHECK(wire_readable(c, 1000));
		CHECK_INT_EQ(read(c, buf, sizeof(buf)), 3);
		CHECK_MEM_EQ(buf, "200", 3);
	}
	session_put(t);
	wire_close_fd(a);
	close(c);
}

/* TCP_FASTOPEN_CONNECT: applied to plain connections only. */
static void
test_fastopen(void)
{
	struct sockaddr_in sin;
	struct session *s;
	int c, a;

	CHECK_INT_EQ(conn_fastopen(-1, true), -EBADF);
	addr4(&sin, lport[L_NONE]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_fastopen(c, true), 0);
	CHECK_INT_EQ(sockopt(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT), 0);
	(void)conn_connect(c, (struct sockaddr *)&sin, sizeof(sin));
	CHECK_INT_EQ(sockopt(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT), 1);
	close(c);
	/* (with a cookie cached, the kernel defers the SYN to the first
	 * write: nothing to accept then) */
	drain_backlog(lfd[L_NONE], 200);
	/* switched off again: not applied */
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_fastopen(c, true), 0);
	CHECK_INT_EQ(conn_fastopen(c, false), 0);
	(void)conn_connect(c, (struct sockaddr *)&sin, sizeof(sin));
	CHECK_INT_EQ(sockopt(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT), 0);
	close(c);
	a = accept_one(lfd[L_NONE]);
	close(a);
	/* sealed: never (the first bytes are the handshake), and the note
	 * does not outlive the connect */
	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_fastopen(c, true), 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	s = fdtab_get(c);
	CHECK(s != NULL);
	if (s != NULL)
		CHECK_INT_EQ(sockopt(session_kfd(s, c), IPPROTO_TCP,
		    TCP_FASTOPEN_CONNECT), 0);
	session_put(s);
	wire_close_fd(c);
	a = accept_one(lfd[L_SEAL]);
	close(a);
	/* the next socket on the number, plain: no fast open either */
	addr4(&sin, lport[L_NONE]);
	a = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(a, c);
	(void)conn_connect(a, (struct sockaddr *)&sin, sizeof(sin));
	CHECK_INT_EQ(sockopt(a, IPPROTO_TCP, TCP_FASTOPEN_CONNECT), 0);
	close(a);
	drain_backlog(lfd[L_NONE], 1000);
}

/* SOCKSEAL_MAX_HANDSHAKES: refused before TCP's, the fd untouched. */
static void
test_handshake_bound(void)
{
	struct sockaddr_in sin;
	int c, c2, a, base = session_handshakes();
	ino_t orig;
	char v[16];

	snprintf(v, sizeof(v), "%d", base + 1);
	setenv("SOCKSEAL_MAX_HANDSHAKES", v, 1);
	session_init();
	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	CHECK_INT_EQ(session_handshakes(), base + 1);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	orig = ino_of(c2);
	CHECK_INT_EQ(conn_connect(c2, (struct sockaddr *)&sin, sizeof(sin)),
	    -ENOBUFS);
	check_untouched(c2, orig);
	/* a plain connection is not bounded */
	addr4(&sin, lport[L_NONE]);
	CHECK(conn_connect(c2, (struct sockaddr *)&sin, sizeof(sin)) != -ENOBUFS);
	close(c2);
	a = accept_one(lfd[L_NONE]);
	close(a);
	wire_close_fd(c);
	CHECK_INT_EQ(session_handshakes(), base);
	a = accept_one(lfd[L_SEAL]);
	close(a);
	snprintf(v, sizeof(v), "%d", SESSION_MAX_HANDSHAKES);
	setenv("SOCKSEAL_MAX_HANDSHAKES", v, 1);
	session_init();
	unsetenv("SOCKSEAL_MAX_HANDSHAKES");
	CHECK_INT_EQ(session_max_handshakes(), SESSION_MAX_HANDSHAKES);
}

/* Registered with epoll before connect(): translated after it. */
static void
test_epoll_before_connect(void)
{
	struct sockaddr_in sin;
	struct epoll_event ev[8];
	struct session *s = NULL, *t = NULL;
	int ep = epoll_create1(EPOLL_CLOEXEC), c, a = -1, i, n, untagged = -1;
	int early = 0;
	bool out = false;
	char buf[8];

	addr4(&sin, lport[L_SEAL]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	epoll_pre_socket(c);                    /* as the socket() hook */
	CHECK_INT_EQ(wire_epoll_ctl(ep, EPOLL_CTL_ADD, c, EPOLLOUT | EPOLLIN,
	    0xc0c0), 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	CHECK(!epoll_pre_is(c));
	s = fdtab_get(c);
	CHECK(s != NULL && s->ep_watch != NULL);   /* now a shadow */
	a = accept_one(lfd[L_SEAL]);
	CHECK_INT_EQ(conn_accepted(a), 0);
	t = fdtab_get(a);
	CHECK(t != NULL);
	if (s == NULL || t == NULL)
		goto out;
	/* the program's waits drive the initiator; writable only once open */
	for (i = 0; i < 200 && !out; i++) {
		(void)session_handshake(t, a, false);
		n = wire_epoll_wait(ep, ev, 8, 10);
		if (n > 0) {
			CHECK(ev[0].data.u64 == 0xc0c0);
			if (ev[0].events & EPOLLOUT) {
				out = true;
				early += session_state(s) != SESSION_OPEN;
			}
		}
	}
	CHECK(out);
	CHECK_INT_EQ(early, 0);
	CHECK_INT_EQ(session_state(t), SESSION_OPEN);
	/* ciphertext arrives on the kfd: the kernel has only tagged events
	 * for it (the early registration left with the socket) */
	CHECK_INT_EQ(s_send(t, a, "pre"), 3);
	(void)wire_readable(session_kfd(s, c), 1000);
	CHECK(wire_kernel_tagged(ep, &untagged) >= 1);
	CHECK_INT_EQ(untagged, 0);
	n = wire_epoll_wait(ep, ev, 8, 1000);
	CHECK(n == 1 && (ev[0].events & EPOLLIN) && ev[0].data.u64 == 0xc0c0);
	CHECK_INT_EQ(s_recv(s, c, buf, 3), 3);
	CHECK_MEM_EQ(buf, "pre", 3);
out:
	session_put(s);
	session_put(t);
	wire_close_fd(c);
	wire_close_fd(a);
	wire_close_fd(ep);
	CHECK_INT_EQ(wire_tags_returned, 0);
}

/*
 * Regression (found by this test): a second connect() on a sealed fd to an
 * address no rule seals went to conn_plain() before the "already sealed"
 * check, and so connected the stand-in itself: the program's number became
 * a plaintext TCP connection that raw writes reached (TCP says EALREADY or
 * EISCONN and connects nothing).
 */
static void
test_second_connect_elsewhere(void)
{
	struct sockaddr_in sin, other;
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct session *s;
	int c, a, r;

	addr4(&sin, lport[L_SEAL]);
	addr4(&other, lport[L_NONE]);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK_INT_EQ(conn_connect(c, (struct sockaddr *)&sin, sizeof(sin)),
	    -EINPROGRESS);
	r = conn_connect(c, (struct sockaddr *)&other, sizeof(other));
	CHECK(r == -EALREADY || r == -EISCONN);
	s = fdtab_get(c);
	CHECK(s != NULL);
	/* the stand-in stays unconnected; nothing reaches the other port */
	CHECK_INT_EQ(getpeername(c, (struct sockaddr *)&ss, &l), -1);
	CHECK_INT_EQ(syscall(SYS_write, c, "LEAK", 4), -1);
	a = accept_one_ms(lfd[L_NONE], 300);
	CHECK(a < 0);
	if (a >= 0)
		close(a);
	session_put(s);
	wire_close_fd(c);
	drain_backlog(lfd[L_SEAL], 200);
}

int
main(void)
{
	const char *v = getenv("TEST_VERBOSE");
	int i, nfds0 = wire_nfds();

	signal(SIGPIPE, SIG_IGN);
	log_level = v && *v == '1' ? LOG_DEBUG : LOG_ERROR - 1;
	wire_keys_init();
	/* init.c loaded our policy (its constructor ran after ours) */
	CHECK(policy_nrules(shim_decide()->pol) >= 6);
	CHECK(shim_decide()->accept);

	test_connect_nonblocking();
	test_connect_blocking();
	test_connect_refused();
	test_passthrough();
	test_v6();
	test_mptcp();
	test_accepted();
	test_fastopen();
	test_handshake_bound();
	test_epoll_before_connect();
	test_second_connect_elsewhere();
	CHECK_INT_EQ(session_handshakes(), 0);
	{
		int fds[4];
		struct session *ss[4];

		CHECK_INT_EQ(fdtab_snapshot(fds, ss, 4), 0);
	}
	CHECK_INT_EQ(wire_nfds(), nfds0);       /* every fd cleaned up */

	for (i = 0; i < L_N; i++)
		if (lfd[i] >= 0)
			close(lfd[i]);
	close(refused_fd);
	unlink(key_path);
	unlink(policy_path);
	rmdir(tmpdir);
	CHECK_DONE();
}
