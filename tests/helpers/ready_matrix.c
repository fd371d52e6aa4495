/*
 * ready_matrix: does poll/select/epoll readiness match what the next call
 * does?  An ordinary program (plain libc calls, never linked with the shim)
 * run sealed under LD_PRELOAD against tests/programs/ready_driver.py, which
 * speaks the wire protocol itself and cuts records where it is told to over
 * a plain control connection.
 *
 *   ready_matrix DATAPORT CTLPORT LISTENPORT
 *
 * DATAPORT: the driver's sealed port (connect rule); CTLPORT: its plain
 * control port (no rule); LISTENPORT: where this program listens (accept
 * rule).  Prints "ok N - what" / "not ok N - what (details)" per check and
 * "# checks: N failed: M"; exits 1 on any failure.  Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

static int ctl = -1, nchecks, nfailed;
static int dport, lport;
static int ep = -1;

/* ------------------------------------------------------------ reporting */

static void
check(int cond, const char *what, const char *fmt, ...)
{
	char det[512] = "";
	va_list ap;

	nchecks++;
	if (cond) {
		printf("ok %d - %s\n", nchecks, what);
	} else {
		nfailed++;
		va_start(ap, fmt);
		vsnprintf(det, sizeof(det), fmt, ap);
		va_end(ap);
		printf("not ok %d - %s (%s)\n", nchecks, what, det);
	}
	fflush(stdout);
}

static void
note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	printf("# FATAL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d %s)\n# checks: %d failed: %d\n", errno, strerror(errno),
	    nchecks, nfailed + 1);
	fflush(stdout);
	exit(1);
}

/* ------------------------------------------------------------- control */

static void
ctl_send(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(ctl, line, (size_t)n) != n)
		die("control write");
}

/* Read one reply line into BUF; returns 1 for "ok", 0 otherwise. */
static int
ctl_reply(char *buf, size_t len)
{
	size_t o = 0;
	ssize_t n;

	while (o + 1 < len) {
		n = read(ctl, buf + o, 1);
		if (n <= 0)
			die("control read");
		if (buf[o] == '\n')
			break;
		o++;
	}
	buf[o] = 0;
	return strncmp(buf, "ok", 2) == 0;
}

static char last_reply[140000];

/* Send a command and wait for its reply; 1 if "ok". */
static int
cmd(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_send("%s", line);
	if (!ctl_reply(last_reply, sizeof(last_reply))) {
		note("driver: '%s' -> %s", line, last_reply);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------- helpers */

static struct sockaddr_in
lo(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static void
set_nb(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl");
}

static void
set_tmo(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A sealed connection to the driver, handshake done (blocking connect),
 * then made non-blocking.  The driver knows it as ID. */
static int
sealed_conn(const char *id)
{
	struct sockaddr_in a = lo(dport);
	char rep[256];
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	set_tmo(fd, 10);
	ctl_send("hs %s", id);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("sealed connect %s", id);
	if (!ctl_reply(rep, sizeof(rep)))
		die("driver hs %s: %s", id, rep);
	set_nb(fd);
	return fd;
}

/* Per-connection expected stream offset (pattern 'a' + off % 26). */
struct stream {
	int     fd;
	size_t  off;
};

static int
pattern_ok(const unsigned char *b, size_t n, size_t off)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != (unsigned char)('a' + (off + i) % 26))
			return 0;
	return 1;
}

/* Read exactly N bytes (non-blocking fd, polling up to 3 s). */
static ssize_t
read_n(struct stream *s, unsigned char *buf, size_t n, int *bad)
{
	size_t got = 0;
	ssize_t r;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	*bad = 0;
	while (got < n) {
		r = read(s->fd, buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno != EAGAIN)
			return -1;
		if (poll(&p, 1, 3000) <= 0)
			break;
	}
	if (!pattern_ok(buf, got, s->off))
		*bad = 1;
	s->off += got;
	return (ssize_t)got;
}

/* epoll_wait into EV; returns the count (or -1). */
static int
ewait(struct epoll_event *ev, int max, int ms)
{
	int n;

	do
		n = epoll_wait(ep, ev, max, ms);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Find the event whose data.u64 is KEY; its events, or 0. */
static uint32_t
find_ev(struct epoll_event *ev, int n, uint64_t key)
{
	int i;

	for (i = 0; i < n; i++)
		if (ev[i].data.u64 == key)
			return ev[i].events;
	return 0;
}

/* A short description of events for the details. */
static const char *
evs(struct epoll_event *ev, int n)
{
	static char buf[512];
	size_t o = 0;
	int i;

	buf[0] = 0;
	o += (size_t)snprintf(buf, sizeof(buf), "n=%d", n);
	for (i = 0; i < n && i < 8 && o < sizeof(buf) - 64; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " [%#llx:%#x]",
		    (unsigned long long)ev[i].data.u64, ev[i].events);
	return buf;
}

static int
poll1(int fd, short events, int ms, short *rev)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n = poll(&p, 1, ms);

	*rev = p.revents;
	return n;
}

static int
select_rd(int fd, int ms)
{
	fd_set r;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	FD_ZERO(&r);
	FD_SET(fd, &r);
	if (select(fd + 1, &r, NULL, NULL, &tv) < 0)
		return -1;
	return FD_ISSET(fd, &r) ? 1 : 0;
}

static int
select_wr(int fd, int ms)
{
	fd_set w;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	FD_ZERO(&w);
	FD_SET(fd, &w);
	if (select(fd + 1, NULL, &w, NULL, &tv) < 0)
		return -1;
	return FD_ISSET(fd, &w) ? 1 : 0;
}

static void
ep_add(int fd, uint32_t events, uint64_t u64)
{
	struct epoll_event e = { .events = events };

	e.data.u64 = u64;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
		die("epoll_ctl ADD %d", fd);
}

/* ---------------------------------------------------------------- tests */

#define K_A  0x8000000000000001ULL
#define K_C  0xdeadbeefcafe0003ULL
#define K_D  0x0123456789abcdefULL
#define K_E  0xfffffffffffffff5ULL
#define K_F  0x7ULL
#define K_G  0x5555555555555555ULL
#define K_H  0xaaaaaaaaaaaaaaabULL
#define K_I  0x1000000000000009ULL
#define K_J  0x300000000000000bULL

static unsigned char buf[70000];

/* Level-triggered epoll, poll, select and FIONREAD around a half record
 * and around plaintext left over after a short read. */
static void
t_level(void)
{
	struct epoll_event ev[8];
	struct stream A = { .fd = sealed_conn("A") };
	ssize_t r;
	int n, bad, e, inq = -1;
	short rev;

	note("level-triggered: half record, leftover plaintext");
	ep_add(A.fd, EPOLLIN, K_A);
	check(cmd("rec A 1000 500"), "driver sent half a 1000-byte record", "%s", last_reply);
	n = ewait(ev, 8, 200);
	check(find_ev(ev, n, K_A) == 0, "LT: half a record is not EPOLLIN", "%s", evs(ev, n));
	r = read(A.fd, buf, sizeof(buf));
	e = errno;
	check(r == -1 && e == EAGAIN, "half a record: read() is EAGAIN", "r=%zd errno=%d", r, e);
	n = poll1(A.fd, POLLIN, 200, &rev);
	check(n == 0, "half a record: poll() POLLIN times out", "n=%d revents=%#x", n, rev);
	n = select_rd(A.fd, 200);
	check(n == 0, "half a record: select() not readable", "r=%d", n);
	check(ioctl(A.fd, FIONREAD, &inq) == 0 && inq == 0,
	    "half a record: FIONREAD is 0", "inq=%d", inq);

	check(cmd("rest A"), "driver sent the rest of the record", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == K_A,
	    "LT: whole record -> one EPOLLIN, data.u64 intact", "%s", evs(ev, n));
	r = read(A.fd, buf, 10);
	check(r == 10 && pattern_ok(buf, 10, A.off), "short read of 10 bytes", "r=%zd", r);
	A.off += r > 0 ? (size_t)r : 0;

	n = ewait(ev, 8, 0);
	check(n == 1 && find_ev(ev, n, K_A) == EPOLLIN,
	    "LT: leftover plaintext -> EPOLLIN again at once", "%s", evs(ev, n));
	n = poll1(A.fd, POLLIN, 0, &rev);
	check(n == 1 && rev == POLLIN, "leftover plaintext: poll() POLLIN", "n=%d revents=%#x", n, rev);
	n = select_rd(A.fd, 0);
	check(n == 1, "leftover plaintext: select() readable", "r=%d", n);
	inq = -1;
	check(ioctl(A.fd, FIONREAD, &inq) == 0 && inq == 990,
	    "leftover plaintext: FIONREAD is 990", "inq=%d", inq);

	r = read_n(&A, buf, 990, &bad);
	check(r == 990 && !bad, "read the remaining 990 bytes", "r=%zd bad=%d", r, bad);
	r = read(A.fd, buf, sizeof(buf));
	e = errno;
	check(r == -1 && e == EAGAIN, "drained: read() is EAGAIN", "r=%zd errno=%d", r, e);
	n = ewait(ev, 8, 200);
	check(find_ev(ev, n, K_A) == 0, "LT: drained -> no event", "%s", evs(ev, n));

	/* Two records in one segment, the second cut: one whole is readable,
	 * reading it leaves half a record, which is not. */
	check(cmd("rec A 100") && cmd("rec A 200 100"), "driver sent a record and a half", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(find_ev(ev, n, K_A) == EPOLLIN, "LT: record + half -> EPOLLIN", "%s", evs(ev, n));
	r = read_n(&A, buf, 100, &bad);
	check(r == 100 && !bad, "read the whole record", "r=%zd", r);
	r = read(A.fd, buf, sizeof(buf));
	e = errno;
	check(r == -1 && e == EAGAIN, "then half a record: read() is EAGAIN", "r=%zd errno=%d", r, e);
	n = ewait(ev, 8, 200);
	check(find_ev(ev, n, K_A) == 0, "LT: then no event for the half record", "%s", evs(ev, n));
	check(cmd("rest A"), "driver sent the rest", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(find_ev(ev, n, K_A) == EPOLLIN, "LT: rest arrived -> EPOLLIN", "%s", evs(ev, n));
	r = read_n(&A, buf, 200, &bad);
	check(r == 200 && !bad, "read the 200-byte record", "r=%zd", r);
	n = select_wr(A.fd, 1000);
	check(n == 1, "open session: select() writable", "r=%d", n);
	epoll_ctl(ep, EPOLL_CTL_DEL, A.fd, NULL);
	close(A.fd);
}

struct tag {
	int     magic;
	int     fd;
};

/* Edge-triggered epoll, registered with data.ptr. */
static void
t_edge(void)
{
	struct epoll_event ev[8], e = { .events = EPOLLIN | EPOLLET };
	struct stream B = { .fd = sealed_conn("B") };
	static struct tag tb = { .magic = 0x7a6b };
	ssize_t r, tot;
	int n, bad;

	note("edge-triggered (data.ptr)");
	tb.fd = B.fd;
	e.data.ptr = &tb;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, B.fd, &e) < 0)
		die("epoll_ctl ADD B");
	check(cmd("rec B 1000"), "driver sent a 1000-byte record", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.ptr == &tb && ev[0].events == EPOLLIN &&
	    ((struct tag *)ev[0].data.ptr)->magic == 0x7a6b,
	    "ET: one EPOLLIN, data.ptr intact", "%s", evs(ev, n));
	n = ewait(ev, 8, 200);
	check(n == 0, "ET: unread, no new data -> no second event", "%s", evs(ev, n));
	r = read(B.fd, buf, 10);
	check(r == 10 && pattern_ok(buf, 10, B.off), "ET: short read of 10", "r=%zd", r);
	B.off += r > 0 ? (size_t)r : 0;
	n = ewait(ev, 8, 200);
	check(n == 0, "ET: partial read -> no new event", "%s", evs(ev, n));
	check(cmd("rec B 100"), "driver sent another record", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.ptr == &tb && (ev[0].events & EPOLLIN),
	    "ET: new data -> a new event", "%s", evs(ev, n));
	tot = 0;
	for (;;) {
		r = read(B.fd, buf + tot, 64);
		if (r <= 0)
			break;
		tot += r;
	}
	check(tot == 1090 && r < 0 && errno == EAGAIN && pattern_ok(buf, (size_t)tot, B.off),
	    "ET: read to EAGAIN gets all 1090 bytes", "tot=%zd r=%zd errno=%d", tot, r, errno);
	B.off += (size_t)tot;
	n = ewait(ev, 8, 200);
	check(n == 0, "ET: drained -> no event", "%s", evs(ev, n));
	check(cmd("rec B 50 20"), "driver sent part of a record", "%s", last_reply);
	n = ewait(ev, 8, 200);
	check(n == 0, "ET: part of a record -> no event", "%s", evs(ev, n));
	check(cmd("rest B"), "driver sent the rest", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.ptr == &tb, "ET: record completed -> event", "%s", evs(ev, n));
	r = read_n(&B, buf, 50, &bad);
	check(r == 50 && !bad, "ET: read the 50 bytes", "r=%zd", r);
	epoll_ctl(ep, EPOLL_CTL_DEL, B.fd, NULL);
	close(B.fd);
}

/* EPOLLONESHOT: one event, then nothing until MOD re-arms. */
static void
t_oneshot(void)
{
	struct epoll_event ev[8], e;
	struct stream C = { .fd = sealed_conn("C") };
	ssize_t r;
	int n, bad;

	note("EPOLLONESHOT");
	ep_add(C.fd, EPOLLIN | EPOLLONESHOT, K_C);
	check(cmd("rec C 1000"), "driver sent a record", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_C && ev[0].events == EPOLLIN,
	    "ONESHOT: one EPOLLIN", "%s", evs(ev, n));
	r = read(C.fd, buf, 10);
	check(r == 10, "ONESHOT: short read", "r=%zd", r);
	C.off += r > 0 ? (size_t)r : 0;
	n = ewait(ev, 8, 200);
	check(n == 0, "ONESHOT: fired, buffered data -> no event", "%s", evs(ev, n));
	check(cmd("rec C 100"), "driver sent another record", "%s", last_reply);
	n = ewait(ev, 8, 300);
	check(n == 0, "ONESHOT: fired, new data -> no event", "%s", evs(ev, n));
	e.events = EPOLLIN | EPOLLONESHOT;
	e.data.u64 = K_C ^ 0x10;
	check(epoll_ctl(ep, EPOLL_CTL_MOD, C.fd, &e) == 0, "ONESHOT: MOD re-arms", "errno=%d", errno);
	n = ewait(ev, 8, 1000);
	check(n == 1 && ev[0].data.u64 == (K_C ^ 0x10) && ev[0].events == EPOLLIN,
	    "ONESHOT: after MOD, buffered data -> event with the new data", "%s", evs(ev, n));
	n = ewait(ev, 8, 200);
	check(n == 0, "ONESHOT: disabled again", "%s", evs(ev, n));
	r = read_n(&C, buf, 1090, &bad);
	check(r == 1090 && !bad, "ONESHOT: read all 1090 bytes", "r=%zd bad=%d", r, bad);
	e.data.u64 = K_C;
	check(epoll_ctl(ep, EPOLL_CTL_MOD, C.fd, &e) == 0, "ONESHOT: MOD re-arms again", "errno=%d", errno);
	n = ewait(ev, 8, 200);
	check(n == 0, "ONESHOT: armed, nothing buffered -> no event", "%s", evs(ev, n));
	check(cmd("rec C 5"), "driver sent 5 bytes", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_C, "ONESHOT: armed, new record -> event", "%s", evs(ev, n));
	r = read_n(&C, buf, 5, &bad);
	check(r == 5 && !bad, "ONESHOT: read 5", "r=%zd", r);
	epoll_ctl(ep, EPOLL_CTL_DEL, C.fd, NULL);
	close(C.fd);
}

/* Non-blocking connect; message 2 held back by the driver. */
static void
t_handshake(void)
{
	struct epoll_event ev[8];
	struct sockaddr_in a = lo(dport);
	int fd, r, e, n, so = -1;
	socklen_t sl = sizeof(so);
	short rev;

	note("handshake in flight (non-blocking connect)");
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket");
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	e = errno;
	check(r == -1 && e == EINPROGRESS, "non-blocking connect: EINPROGRESS", "r=%d errno=%d", r, e);
	check(cmd("accept D"), "driver accepted", "%s", last_reply);
	ep_add(fd, EPOLLOUT, K_D);
	n = ewait(ev, 8, 300);
	check(find_ev(ev, n, K_D) == 0, "handshake: no EPOLLOUT before message 2", "%s", evs(ev, n));
	n = poll1(fd, POLLOUT, 200, &rev);
	check(n == 0, "handshake: poll() POLLOUT times out before message 2", "n=%d revents=%#x", n, rev);
	n = select_wr(fd, 200);
	check(n == 0, "handshake: select() not writable before message 2", "r=%d", n);
	check(cmd("hs1 D"), "message 1 went out while the program polled", "%s", last_reply);
	check(cmd("msg2 D"), "driver sent message 2", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_D && ev[0].events == EPOLLOUT,
	    "handshake done: EPOLLOUT", "%s", evs(ev, n));
	check(getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == 0,
	    "handshake done: SO_ERROR 0", "so=%d", so);
	r = (int)write(fd, "hello", 5);
	check(r == 5, "write after the handshake", "r=%d errno=%d", r, errno);
	check(cmd("recv D 5") && strcmp(last_reply, "ok 68656c6c6f") == 0,
	    "driver received \"hello\" sealed", "%s", last_reply);
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	cmd("close D");

	/* The same with poll() only. */
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket");
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	e = errno;
	check(r == -1 && e == EINPROGRESS, "non-blocking connect (poll): EINPROGRESS", "r=%d errno=%d", r, e);
	check(cmd("accept D2"), "driver accepted", "%s", last_reply);
	n = poll1(fd, POLLOUT, 300, &rev);
	check(n == 0, "handshake (poll only): no POLLOUT before message 2", "n=%d revents=%#x", n, rev);
	check(cmd("hs1 D2") && cmd("msg2 D2"), "driver completed the handshake", "%s", last_reply);
	n = poll1(fd, POLLOUT, 3000, &rev);
	check(n == 1 && rev == POLLOUT, "handshake (poll only): POLLOUT after message 2", "n=%d revents=%#x", n, rev);
	so = -1;
	check(getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == 0,
	    "handshake (poll only): SO_ERROR 0", "so=%d", so);
	close(fd);
	cmd("close D2");
}

/* A bad message 2: EPOLLERR, SO_ERROR ECONNREFUSED, calls fail. */
static void
t_bad_msg2(void)
{
	struct epoll_event ev[8];
	struct sockaddr_in a = lo(dport);
	int fd, r, e, n, so = -1;
	socklen_t sl = sizeof(so);
	uint32_t got;

	note("bad message 2");
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket");
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	check(r == -1 && errno == EINPROGRESS, "bad msg2: connect EINPROGRESS", "r=%d errno=%d", r, errno);
	check(cmd("accept E"), "driver accepted", "%s", last_reply);
	ep_add(fd, EPOLLOUT | EPOLLIN, K_E);
	n = ewait(ev, 8, 300);
	check(find_ev(ev, n, K_E) == 0, "bad msg2: nothing before message 2", "%s", evs(ev, n));
	check(cmd("hs1 E") && cmd("badmsg2 E"), "driver sent a flipped message 2", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	got = find_ev(ev, n, K_E);
	check((got & EPOLLERR) != 0, "bad msg2: EPOLLERR reported", "%s", evs(ev, n));
	check(getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == ECONNREFUSED,
	    "bad msg2: SO_ERROR is ECONNREFUSED", "so=%d", so);
	r = (int)read(fd, buf, 10);
	e = errno;
	check(r == -1 && (e == ECONNRESET || e == ECONNREFUSED), "bad msg2: read fails", "r=%d errno=%d", r, e);
	r = (int)send(fd, "x", 1, MSG_NOSIGNAL);
	e = errno;
	check(r == -1, "bad msg2: send fails", "r=%d errno=%d", r, e);
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	cmd("close E");
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { (void)sig; alarmed = 1; }

/* Accepted socket: the program writes before message 1 arrived. */
static void
t_accept_early(int lfd)
{
	struct epoll_event ev[8];
	struct sigaction sa;
	struct stream F;
	short rev;
	ssize_t r;
	int n, e, bad;

	note("accepted socket writes before message 1");
	check(cmd("dial F %d", lport), "driver connected to our listener", "%s", last_reply);
	n = poll1(lfd, POLLIN, 3000, &rev);
	F.fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	F.off = 0;
	check(F.fd >= 0, "accept4 (non-blocking)", "fd=%d errno=%d", F.fd, errno);
	if (F.fd < 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarmed = 0;
	alarm(5);
	r = write(F.fd, "early-bird", 10);
	e = errno;
	alarm(0);
	check(!alarmed && (r == 10 || (r == -1 && e == EAGAIN)),
	    "write before message 1: accepted or EAGAIN, never blocks", "r=%zd errno=%d alarmed=%d", r, e, alarmed);
	ep_add(F.fd, EPOLLIN, K_F);
	n = ewait(ev, 8, 200);
	check(find_ev(ev, n, K_F) == 0, "accepted, no message 1: no EPOLLIN", "%s", evs(ev, n));
	check(cmd("msg1 F"), "driver sent message 1", "%s", last_reply);
	n = ewait(ev, 8, 300);
	check(find_ev(ev, n, K_F) == 0, "message 1 only: no EPOLLIN (no data)", "%s", evs(ev, n));
	check(cmd("wait2 F"), "driver got message 2 (sent while polling)", "%s", last_reply);
	if (r == 10)
		check(cmd("recv F 10") && strcmp(last_reply, "ok 6561726c792d62697264") == 0,
		    "driver got the early write sealed", "%s", last_reply);
	else    /* EAGAIN: nothing was accepted, nothing to deliver */
		check(1, "driver got the early write sealed (write was EAGAIN: nothing to get)", "");
	check(cmd("rec F 20"), "driver sent a record", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_F && ev[0].events == EPOLLIN,
	    "accepted: EPOLLIN with data.u64 7", "%s", evs(ev, n));
	r = read_n(&F, buf, 20, &bad);
	check(r == 20 && !bad, "accepted: read 20", "r=%zd", r);
	epoll_ctl(ep, EPOLL_CTL_DEL, F.fd, NULL);
	close(F.fd);
	cmd("close F");
}

/* End-of-stream mark versus a bare FIN. */
static void
t_rdhup(void)
{
	struct epoll_event ev[8];
	struct stream G = { .fd = sealed_conn("G") }, H = { .fd = sealed_conn("H") };
	ssize_t r;
	short rev;
	int n, e, bad;

	note("EPOLLRDHUP, end-of-stream and truncation");
	ep_add(G.fd, EPOLLIN | EPOLLRDHUP, K_G);
	check(cmd("rec G 10") && cmd("eos G"), "driver sent 10 bytes and end-of-stream (no FIN)", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && (find_ev(ev, n, K_G) & EPOLLIN), "data + end-of-stream: EPOLLIN", "%s", evs(ev, n));
	r = read_n(&G, buf, 10, &bad);
	check(r == 10 && !bad, "read the 10 bytes", "r=%zd", r);
	n = ewait(ev, 8, 1000);
	check(n == 1 && find_ev(ev, n, K_G) == (EPOLLIN | EPOLLRDHUP),
	    "end-of-stream: EPOLLIN|EPOLLRDHUP", "%s", evs(ev, n));
	n = poll1(G.fd, POLLIN | POLLRDHUP, 1000, &rev);
	check(n == 1 && rev == (POLLIN | POLLRDHUP), "end-of-stream: poll() POLLIN|POLLRDHUP",
	    "n=%d revents=%#x", n, rev);
	r = read(G.fd, buf, sizeof(buf));
	check(r == 0, "end-of-stream: read returns 0", "r=%zd errno=%d", r, errno);
	epoll_ctl(ep, EPOLL_CTL_DEL, G.fd, NULL);
	close(G.fd);

	/* end-of-stream alone, before any read on a fresh registration */
	{
		struct stream G2 = { .fd = sealed_conn("G2") };

		ep_add(G2.fd, EPOLLIN | EPOLLRDHUP, K_G ^ 2);
		check(cmd("eos G2"), "driver sent only end-of-stream (no FIN)", "%s", last_reply);
		n = ewait(ev, 8, 3000);
		check(n == 1 && find_ev(ev, n, K_G ^ 2) == (EPOLLIN | EPOLLRDHUP),
		    "end-of-stream before any read: EPOLLIN|EPOLLRDHUP", "%s", evs(ev, n));
		r = read(G2.fd, buf, sizeof(buf));
		check(r == 0, "then read returns 0", "r=%zd errno=%d", r, errno);
		epoll_ctl(ep, EPOLL_CTL_DEL, G2.fd, NULL);
		close(G2.fd);
	}

	ep_add(H.fd, EPOLLIN | EPOLLRDHUP, K_H);
	check(cmd("rec H 10") && cmd("fin H"), "driver sent 10 bytes and a bare FIN", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && (find_ev(ev, n, K_H) & EPOLLIN), "truncation: EPOLLIN", "%s", evs(ev, n));
	r = read_n(&H, buf, 10, &bad);
	check(r == 10 && !bad, "truncation: the 10 bytes first", "r=%zd", r);
	n = ewait(ev, 8, 1000);
	check(n == 1 && (find_ev(ev, n, K_H) & (EPOLLIN | EPOLLERR)),
	    "truncation: readable (the next read fails)", "%s", evs(ev, n));
	r = read(H.fd, buf, sizeof(buf));
	e = errno;
	check(r == -1 && e == ECONNRESET, "truncation: read fails with ECONNRESET", "r=%zd errno=%d", r, e);
	r = read(H.fd, buf, sizeof(buf));
	e = errno;
	check(r == -1 && e == ECONNRESET, "truncation: and again (never 0)", "r=%zd errno=%d", r, e);
	epoll_ctl(ep, EPOLL_CTL_DEL, H.fd, NULL);
	close(H.fd);
	cmd("close G");
	cmd("close G2");
	cmd("close H");
}

/* Close and dup while registered; two fds ready with ptr and u64 data. */
static void
t_lifetime(void)
{
	struct epoll_event ev[8], e;
	struct stream I = { .fd = sealed_conn("I") };
	struct stream J = { .fd = sealed_conn("J") };
	struct stream K, J2;
	static struct tag tk = { .magic = 0x4b4b };
	int n, bad, oldj;
	ssize_t r;

	note("lifetime: close, dup, fd number reuse");
	ep_add(I.fd, EPOLLIN, K_I);
	close(I.fd);
	cmd("rec I 10");    /* the peer has closed: may fail, either is fine */
	n = ewait(ev, 8, 300);
	check(find_ev(ev, n, K_I) == 0, "closed while registered: no event for it", "%s", evs(ev, n));
	cmd("close I");

	ep_add(J.fd, EPOLLIN, K_J);
	J2.fd = dup(J.fd);
	J2.off = 0;
	oldj = J.fd;
	close(J.fd);
	check(cmd("rec J 10"), "driver sent on the dup'ed connection", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_J && ev[0].events == EPOLLIN,
	    "dup keeps the registration: EPOLLIN, data intact", "%s", evs(ev, n));
	r = read_n(&J2, buf, 10, &bad);
	check(r == 10 && !bad, "read through the dup", "r=%zd bad=%d", r, bad);

	/* A new sealed socket takes the closed number; not registered. */
	K.fd = sealed_conn("K");
	K.off = 0;
	note("old fd %d, dup %d, new socket %d", oldj, J2.fd, K.fd);
	check(cmd("rec K 30"), "driver sent on the socket with the reused number", "%s", last_reply);
	usleep(100000);
	check(cmd("rec J 7"), "driver sent more on the dup'ed connection", "%s", last_reply);
	n = ewait(ev, 8, 3000);
	check(n == 1 && ev[0].data.u64 == K_J && ev[0].events == EPOLLIN,
	    "number reused: dup still reports EPOLLIN, data intact", "%s", evs(ev, n));
	r = read_n(&J2, buf, 7, &bad);
	check(r == 7 && !bad, "number reused: the dup reads its own 7 bytes", "r=%zd bad=%d errno=%d", r, bad, errno);
	r = read_n(&K, buf, 30, &bad);
	check(r == 30 && !bad, "number reused: the new socket reads its own 30 bytes",
	    "r=%zd bad=%d errno=%d", r, bad, errno);
	epoll_ctl(ep, EPOLL_CTL_DEL, J2.fd, NULL);
	close(J2.fd);
	close(K.fd);
	cmd("close J");
	cmd("close K");

	/* two fds ready at once: data.ptr and data.u64 come back intact */
	{
		struct stream L = { .fd = sealed_conn("L") }, M = { .fd = sealed_conn("M") };
		int i, seen_l = 0, seen_m = 0;

		tk.fd = L.fd;
		e.events = EPOLLIN;
		e.data.ptr = &tk;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, L.fd, &e) < 0)
			die("ADD L");
		ep_add(M.fd, EPOLLIN, 0xffffffff00000001ULL);
		check(cmd("rec L 3") && cmd("rec M 4"), "driver sent on two connections", "%s", last_reply);
		usleep(100000);
		n = ewait(ev, 8, 3000);
		if (n == 1) {   /* the second may come on the next wait */
			struct epoll_event ev2[8];
			int n2 = ewait(ev2, 8, 1000);
			for (i = 0; i < n2 && n < 8; i++)
				ev[n++] = ev2[i];
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &tk && ev[i].events == EPOLLIN)
				seen_l++;
			else if (ev[i].data.u64 == 0xffffffff00000001ULL && ev[i].events == EPOLLIN)
				seen_m++;
		}
		check(n == 2 && seen_l == 1 && seen_m == 1,
		    "two ready fds: data.ptr and data.u64 both intact", "%s", evs(ev, n));
		r = read_n(&L, buf, 3, &bad);
		check(r == 3 && !bad, "read L", "r=%zd", r);
		r = read_n(&M, buf, 4, &bad);
		check(r == 4 && !bad, "read M", "r=%zd", r);
		close(L.fd);
		close(M.fd);
		n = ewait(ev, 8, 200);
		check(n == 0, "both closed: no events", "%s", evs(ev, n));
		cmd("close L");
		cmd("close M");
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in a;
	int lfd, one = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: ready_matrix DATAPORT CTLPORT LISTENPORT\n");
		return 2;
	}
	dport = atoi(argv[1]);
	lport = atoi(argv[3]);
	signal(SIGPIPE, SIG_IGN);
	alarm(0);

	if ((ctl = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	a = lo(atoi(argv[2]));
	if (connect(ctl, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("control connect");
	set_tmo(ctl, 30);

	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a = lo(lport);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0)
		die("listen on %d", lport);

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");

	t_level();
	t_edge();
	t_oneshot();
	t_handshake();
	t_bad_msg2();
	t_accept_early(lfd);
	t_rdhup();
	t_lifetime();

	cmd("quit");
	printf("# checks: %d failed: %d\n", nchecks, nfailed);
	return nfailed ? 1 : 0;
}
