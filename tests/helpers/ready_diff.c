/*
 * ready_diff: a randomized differential test of what a program observes on a
 * sealed connection against plain TCP.  An ordinary program (plain libc
 * calls, never linked with the shim), run under LD_PRELOAD of the shim.
 *
 *   ready_diff --sealed-port P1 --plain-port P2 [--seed N] [--count M]
 *              [--ops K] [--first I] [--seconds T] [--marker STR]
 *              [--without OP,...] [--data-after-shutdown]
 *              [--inject-short-read] [--keep-going] [--verbose]
 *
 * The process listens on 127.0.0.1:P1 and 127.0.0.1:P2.  The policy seals
 * P1 in both directions (connect and accept rules), so both ends of the
 * "sealed" connection run through the shim in this process; P2 has no rule
 * (plain TCP, the reference).  Each sequence I (I = first .. first+M-1, or
 * until T seconds have passed with --seconds) opens one connection to each
 * port and picks, from a PRNG seeded by (N, I), which end is observed (O)
 * and which is its peer (P).  Then K steps: each step draws one operation
 * from the same PRNG and applies it to the plain connection, then to the
 * sealed one, and compares what the program saw: return values, errno
 * names, bytes (count and content, checked against the expected stream
 * too), epoll_wait/poll readiness, FIONREAD.  The first difference prints
 * the seed, the sequence, the step, every operation so far and both
 * observations, and exits 1.  Exit 0 with "ready_diff: seed=N sequences=M
 * ops=X mismatches=0"; 2 on usage; 3 when the harness itself could not
 * make a step deterministic (see settle()).
 *
 * Operations: peer writes (1 byte .. 100 KiB), reads into small and large
 * buffers, readv with several iovecs, MSG_PEEK, FIONREAD, poll (POLLIN,
 * POLLOUT, POLLRDHUP on every slot, closed ones give POLLNVAL),
 * epoll_wait, EPOLL_CTL_ADD/MOD/DEL with LT/EPOLLET/EPOLLONESHOT and
 * EPOLLIN/EPOLLOUT/EPOLLRDHUP, dup (fcntl F_DUPFD into a chosen slot), dup2
 * onto a slot (open or not), close of any slot (the original too, while a
 * dup stays registered), our shutdown (WR, RD, RDWR), our writes and the
 * peer draining them, peer shutdown(SHUT_WR), peer close (after draining:
 * FIN; without: RST).  A pause in reading is simply several peer writes in
 * a row, which the generator makes likely.
 *
 * Determinism.  Plain TCP is the reference, so every observation must be
 * fixed by the operations alone, never by timing:
 * - After every step, settle() waits (bounded, 2 s) until every byte and
 *   FIN each end has written is in the other end's kernel, or the
 *   connection is gone, for both connections.  It asks the kernel through
 *   sock_diag (NETLINK_SOCK_DIAG, looked up by address and port, so it sees
 *   the TCP socket whatever the shim does with descriptors): sender's
 *   tcpi_notsent_bytes == 0 and receiver's tcpi_bytes_received >= the
 *   sender's tcpi_bytes_sent - tcpi_bytes_retrans, FIN sent => receiver in
 *   CLOSE_WAIT/LAST_ACK/CLOSING/TIME_WAIT.
 * - Outstanding data stays far below the socket buffers (SO_RCVBUFFORCE /
 *   SO_SNDBUFFORCE 1 MiB where permitted, TCP_NODELAY), so writes never
 *   block or come up short on plain TCP and the window never holds data back.
 * - Readiness: the plain connection is asked with timeout 0 (all its bytes
 *   are there); the sealed one with timeout 0 when plain reported nothing
 *   ("not ready" must hold now), and up to 2 s when plain reported
 *   something (it must come, and be the same set).
 * - Descriptor numbers: the sealed connection's slots are 100+i, the plain
 *   one's 300+i (F_DUPFD/dup2 onto exactly those numbers), so number reuse
 *   (a closed number registered again while a dup keeps the old
 *   registration) is the same on both.
 *
 * --without OP,...: never draw these operations (names in opname[], e.g.
 * peek,peer-reset), to look past one known difference at the others.
 * --data-after-shutdown: also let the peer write after the observed end
 * shut both directions.  TCP answers such data with a reset; a sealed
 * connection cannot tell it from the peer's end-of-stream mark (data to
 * TCP, where TCP's end is a FIN), so the shim lets it in and discards it
 * (docs/endings.md).  Off by default: that one known divergence.
 * --keep-going: report a mismatch and go on with the next sequence (the
 * summary counts them; exit 1 if any).
 * --inject-short-read: a negative control: the sealed side's reads ask for
 * one byte less than the plain side's, so a mismatch must be reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NSLOT        6
#define SEALED_BASE  100
#define PLAIN_BASE   300
#define MAXWRITE     (100 * 1024)
#define WIRE_CAP     (120 * 1024)       /* outstanding P->O, with overhead */
#define OWRITE_CAP   (64 * 1024)        /* outstanding O->P */
#define MAXREAD      (256 * 1024)
#define SETTLE_MS    2000
#define WAIT_MS      2000
#define OBSLEN       1024
#define MAXEV        16
#define RECOVH       18                 /* record overhead: 2 + 16 */

/* ------------------------------------------------------------- PRNG */

static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng;

static uint64_t
rnd(uint64_t n)         /* 0 .. n-1 */
{
	return n ? splitmix(&rng) % n : 0;
}

static bool
chance(int pct)
{
	return (int)rnd(100) < pct;
}

/* ------------------------------------------------------ the streams */

static uint64_t seed, cur_seq;
static const char *marker = "READY-DIFF-MARKER";

/* Byte OFF of stream DIR (0: P->O, 1: O->P) of the current sequence. */
static void
stream_fill(int dir, uint64_t off, uint8_t *buf, size_t n)
{
	size_t ml = strlen(marker), i;
	uint64_t x, w = 0, wi = UINT64_MAX;

	for (i = 0; i < n; i++, off++) {
		if (off % 4096 < ml) {
			buf[i] = (uint8_t)marker[off % 4096];
			continue;
		}
		if (off / 8 != wi) {
			wi = off / 8;
			x = seed ^ (cur_seq << 20) ^ ((uint64_t)dir << 62) ^
			    (wi * 0x2545f4914f6cdd1dULL);
			w = splitmix(&x);
		}
		buf[i] = (uint8_t)(w >> (8 * (off % 8)));
	}
}

/* ------------------------------------------------------------ sock_diag */

static int nlfd = -1;

/* The kernel's TCP states (include/net/tcp_states.h), as sock_diag gives them. */
enum {
	ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1,
	ST_FIN_WAIT2, ST_TIME_WAIT, ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK,
	ST_LISTEN, ST_CLOSING
};

struct tstate {
	bool     found;
	int      state;
	bool     info;
	uint32_t notsent, wqueue;
	uint64_t sent, retrans, received;
};

/* The TCP socket with local address SRC and remote DST. */
static int
diag_get(const struct sockaddr_in *src, const struct sockaddr_in *dst,
    struct tstate *t)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	static uint8_t buf[8192];
	struct nlmsghdr *h;
	struct inet_diag_msg *m;
	struct rtattr *a;
	ssize_t n;
	int len;

	memset(t, 0, sizeof(*t));
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_INET;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	req.r.idiag_states = ~0U;
	req.r.id.idiag_sport = src->sin_port;
	req.r.id.idiag_dport = dst->sin_port;
	req.r.id.idiag_src[0] = src->sin_addr.s_addr;
	req.r.id.idiag_dst[0] = dst->sin_addr.s_addr;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (send(nlfd, &req, sizeof(req), 0) < 0)
		return -errno;
	n = recv(nlfd, buf, sizeof(buf), 0);
	if (n < 0)
		return -errno;
	for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	    h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			return e == -ENOENT ? 0 : e;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		m = NLMSG_DATA(h);
		/* An exact lookup falls back to the listener: that is "gone". */
		if (m->idiag_state == ST_LISTEN ||
		    m->id.idiag_dport != dst->sin_port)
			return 0;
		t->found = true;
		t->state = m->idiag_state;
		t->wqueue = m->idiag_wqueue;
		len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (struct rtattr *)(m + 1); RTA_OK(a, len);
		    a = RTA_NEXT(a, len)) {
			struct tcp_info ti;
			size_t l = RTA_PAYLOAD(a);

			if (a->rta_type != INET_DIAG_INFO)
				continue;
			memset(&ti, 0, sizeof(ti));
			memcpy(&ti, RTA_DATA(a), l < sizeof(ti) ? l : sizeof(ti));
			t->info = true;
			t->notsent = ti.tcpi_notsent_bytes;
			t->sent = ti.tcpi_bytes_sent;
			t->retrans = ti.tcpi_bytes_retrans;
			t->received = ti.tcpi_bytes_received;
		}
		return 0;
	}
	return 0;
}

static bool
fin_sent(int st)
{
	return st == ST_FIN_WAIT1 || st == ST_FIN_WAIT2 ||
	    st == ST_CLOSING || st == ST_LAST_ACK || st == ST_TIME_WAIT;
}

static bool
fin_got(int st)
{
	return st == ST_CLOSE_WAIT || st == ST_LAST_ACK ||
	    st == ST_CLOSING || st == ST_TIME_WAIT;
}

/* Has everything S (sender) wrote reached R (receiver)? */
static bool
dir_settled(const struct tstate *s, const struct tstate *r)
{
	if (!s->found)
		return !r->found || r->state == ST_TIME_WAIT;
	if (s->state == ST_TIME_WAIT)
		return true;
	if (!r->found)
		return false;           /* a reset is on its way to S */
	if (!s->info)
		return true;            /* a timewait-style socket: sends nothing */
	if (s->notsent != 0)
		return false;
	if (!r->info)
		return s->wqueue == 0;
	if (r->received < s->sent - s->retrans)
		return false;
	if (fin_sent(s->state) && !fin_got(r->state))
		return false;
	return true;
}

/* ------------------------------------------------------------ the model */

struct conn {
	const char *name;
	int base;
	int lfd;
	int port;
	int o, p;                       /* o: slot 0 at first; p: peer fd */
	int ep;
	struct sockaddr_in oa, pa;      /* O's and P's local addresses */
	int oa_ok;
};

static struct conn C[2];                /* 0: plain (reference), 1: sealed */
static bool inject_short, verbose, keep_going, data_after_shut;
static uint64_t nmismatch;
static jmp_buf next_seq;

/* What both connections agree on (updated from the plain side's results). */
static struct {
	uint64_t p_wr, o_rd, o_wr, p_rd, wire_out;
	bool p_shut, p_closed, o_shwr, o_shrd, o_gone;
	bool open[NSLOT];
	uint32_t gen;
} M;

enum opk {
	OP_PW, OP_RD, OP_RV, OP_PK, OP_FN, OP_PL, OP_EW, OP_EA, OP_EM, OP_ED,
	OP_DU, OP_D2, OP_CL, OP_PSW, OP_PCL, OP_PCLR, OP_OSH, OP_OW, OP_PD,
	OP_N
};

struct op {
	int k;
	int slot, slot2;
	size_t n;
	uint32_t ev;
	int niov;
	size_t iov[5];
	short pev[NSLOT];
	int how;
};

/* Names for --without. */
static const char *const opname[OP_N] = {
	[OP_PW] = "peer-write", [OP_RD] = "read", [OP_RV] = "readv",
	[OP_PK] = "peek", [OP_FN] = "fionread", [OP_PL] = "poll",
	[OP_EW] = "epoll-wait", [OP_EA] = "epoll-add", [OP_EM] = "epoll-mod",
	[OP_ED] = "epoll-del", [OP_DU] = "dup", [OP_D2] = "dup2",
	[OP_CL] = "close", [OP_PSW] = "peer-shutdown", [OP_PCL] = "peer-close",
	[OP_PCLR] = "peer-reset", [OP_OSH] = "shutdown", [OP_OW] = "write",
	[OP_PD] = "peer-drain",
};
static bool without[OP_N];

static char *oplog;
static size_t oplog_len, oplog_cap;

static void
oplog_add(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	size_t l;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = strlen(line);
	if (oplog_len + l + 2 > oplog_cap) {
		oplog_cap = (oplog_cap + l + 2) * 2;
		oplog = realloc(oplog, oplog_cap);
		if (oplog == NULL)
			abort();
	}
	memcpy(oplog + oplog_len, line, l);
	oplog_len += l;
	oplog[oplog_len++] = '\n';
	oplog[oplog_len] = 0;
}

static const char *
en(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static void
evstr(uint32_t ev, char *out, size_t len)
{
	static const struct { uint32_t b; const char *n; } t[] = {
		{ EPOLLIN, "IN" }, { EPOLLOUT, "OUT" }, { EPOLLRDHUP, "RDHUP" },
		{ EPOLLPRI, "PRI" }, { EPOLLERR, "ERR" }, { EPOLLHUP, "HUP" },
		{ EPOLLET, "ET" }, { EPOLLONESHOT, "ONESHOT" },
		{ EPOLLRDNORM, "RDNORM" }, { EPOLLWRNORM, "WRNORM" },
	};
	size_t i, o = 0;

	out[0] = 0;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!(ev & t[i].b))
			continue;
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "|" : "",
		    t[i].n);
		ev &= ~t[i].b;
	}
	if (ev)
		snprintf(out + o, len - o, "%s0x%x", o ? "|" : "", ev);
	if (!out[0])
		snprintf(out, len, "0");
}

static void
pevstr(short ev, char *out, size_t len)
{
	static const struct { short b; const char *n; } t[] = {
		{ POLLIN, "IN" }, { POLLOUT, "OUT" }, { POLLRDHUP, "RDHUP" },
		{ POLLPRI, "PRI" }, { POLLERR, "ERR" }, { POLLHUP, "HUP" },
		{ POLLNVAL, "NVAL" },
	};
	size_t i, o = 0;

	out[0] = 0;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!(ev & t[i].b))
			continue;
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "|" : "",
		    t[i].n);
		ev &= ~t[i].b;
	}
	if (ev)
		snprintf(out + o, len - o, "%s0x%x", o ? "|" : "", ev);
	if (!out[0])
		snprintf(out, len, "0");
}

static void
op_str(const struct op *op, char *out, size_t len)
{
	char e[128];
	size_t o;
	int i;

	switch (op->k) {
	case OP_PW: snprintf(out, len, "peer write %zu", op->n); break;
	case OP_RD: snprintf(out, len, "read s%d %zu", op->slot, op->n); break;
	case OP_RV:
		o = (size_t)snprintf(out, len, "readv s%d", op->slot);
		for (i = 0; i < op->niov; i++)
			o += (size_t)snprintf(out + o, len - o, " %zu", op->iov[i]);
		break;
	case OP_PK: snprintf(out, len, "recv s%d %zu MSG_PEEK", op->slot, op->n); break;
	case OP_FN: snprintf(out, len, "ioctl s%d FIONREAD", op->slot); break;
	case OP_PL:
		o = (size_t)snprintf(out, len, "poll");
		for (i = 0; i < NSLOT; i++) {
			if (op->pev[i] < 0)
				continue;
			pevstr(op->pev[i], e, sizeof(e));
			o += (size_t)snprintf(out + o, len - o, " s%d:%s", i, e);
		}
		break;
	case OP_EW: snprintf(out, len, "epoll_wait"); break;
	case OP_EA: case OP_EM:
		evstr(op->ev, e, sizeof(e));
		snprintf(out, len, "epoll_ctl %s s%d %s data=%d",
		    op->k == OP_EA ? "ADD" : "MOD", op->slot, e, op->how);
		break;
	case OP_ED: snprintf(out, len, "epoll_ctl DEL s%d", op->slot); break;
	case OP_DU: snprintf(out, len, "dup s%d -> s%d", op->slot, op->slot2); break;
	case OP_D2: snprintf(out, len, "dup2 s%d -> s%d", op->slot, op->slot2); break;
	case OP_CL: snprintf(out, len, "close s%d", op->slot); break;
	case OP_PSW: snprintf(out, len, "peer shutdown SHUT_WR"); break;
	case OP_PCL: snprintf(out, len, "peer drain + close"); break;
	case OP_PCLR: snprintf(out, len, "peer close (unread data: RST)"); break;
	case OP_OSH:
		snprintf(out, len, "shutdown s%d %s", op->slot,
		    op->how == SHUT_WR ? "SHUT_WR" : op->how == SHUT_RD ?
		    "SHUT_RD" : "SHUT_RDWR");
		break;
	case OP_OW: snprintf(out, len, "write s%d %zu", op->slot, op->n); break;
	case OP_PD: snprintf(out, len, "peer drain"); break;
	default: snprintf(out, len, "?"); break;
	}
}

/* -------------------------------------------------------------- helpers */

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stdout, "ready_diff: error: ");
	vfprintf(stdout, fmt, ap);
	fprintf(stdout, " (seed=%llu seq=%llu)\n", (unsigned long long)seed,
	    (unsigned long long)cur_seq);
	va_end(ap);
	exit(3);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
bufs(int fd)
{
	int v = 1 << 20, one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int
listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	int fd, one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket: %s", strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bufs(fd);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0)
		die("listen on %d: %s", port, strerror(errno));
	return fd;
}

struct acc { int lfd, fd; };

/* The accepting side: accept, then let the shim finish its handshake. */
static void *
acceptor(void *arg)
{
	struct acc *a = arg;
	struct pollfd p;

	a->fd = accept(a->lfd, NULL, NULL);
	if (a->fd >= 0) {
		bufs(a->fd);
		p.fd = a->fd;
		p.events = POLLOUT;
		(void)poll(&p, 1, 5000);
	}
	return NULL;
}

static void
setnb(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl O_NONBLOCK: %s", strerror(errno));
}

static int
slotfd(const struct conn *c, int slot)
{
	return c->base + slot;
}

static void
conn_open(struct conn *c, bool observe_client)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)c->port) };
	struct acc ac = { .lfd = c->lfd, .fd = -1 };
	pthread_t th;
	socklen_t l;
	int cfd, ofd, i;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((cfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket: %s", strerror(errno));
	bufs(cfd);
	if (pthread_create(&th, NULL, acceptor, &ac) != 0)
		die("pthread_create");
	if (connect(cfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("%s: connect: %s", c->name, strerror(errno));
	pthread_join(th, NULL);
	if (ac.fd < 0)
		die("%s: accept failed", c->name);
	ofd = observe_client ? cfd : ac.fd;
	c->p = observe_client ? ac.fd : cfd;
	for (i = 0; i < NSLOT; i++)
		(void)close(slotfd(c, i));
	if (dup2(ofd, slotfd(c, 0)) != slotfd(c, 0))
		die("%s: dup2 to %d: %s", c->name, slotfd(c, 0), strerror(errno));
	close(ofd);
	c->o = slotfd(c, 0);
	setnb(c->o);
	setnb(c->p);
	l = sizeof(c->oa);
	if (getsockname(c->o, (struct sockaddr *)&c->oa, &l) < 0)
		die("getsockname: %s", strerror(errno));
	l = sizeof(c->pa);
	if (getsockname(c->p, (struct sockaddr *)&c->pa, &l) < 0)
		die("getsockname: %s", strerror(errno));
	if ((c->ep = epoll_create1(0)) < 0)
		die("epoll_create1: %s", strerror(errno));
}

static void
conn_close(struct conn *c)
{
	int i;

	close(c->ep);
	for (i = 0; i < NSLOT; i++)
		(void)close(slotfd(c, i));
	if (c->p >= 0)
		close(c->p);
	c->p = -1;
}

/* Wait until both directions of C have settled (see the top). */
static void
settle(struct conn *c)
{
	struct tstate o, p;
	uint64_t end = now_ms() + SETTLE_MS;
	struct timespec ts = { 0, 200000 };
	int r;

	for (;;) {
		if ((r = diag_get(&c->oa, &c->pa, &o)) < 0 ||
		    (r = diag_get(&c->pa, &c->oa, &p)) < 0)
			die("sock_diag: %s", strerror(-r));
		if (dir_settled(&o, &p) && dir_settled(&p, &o))
			return;
		if (now_ms() > end)
			die("%s: not settled after %d ms: O state %d notsent %u "
			    "sent %llu recv %llu; P state %d notsent %u sent %llu "
			    "recv %llu", c->name, SETTLE_MS, o.state, o.notsent,
			    (unsigned long long)o.sent,
			    (unsigned long long)o.received, p.state, p.notsent,
			    (unsigned long long)p.sent,
			    (unsigned long long)p.received);
		nanosleep(&ts, NULL);
	}
}

/* ---------------------------------------------------------- generation */

static int
open_slot(void)
{
	int s[NSLOT], n = 0, i;

	for (i = 0; i < NSLOT; i++)
		if (M.open[i])
			s[n++] = i;
	return n ? s[rnd((uint64_t)n)] : -1;
}

static int
free_slot(void)
{
	int i;

	for (i = 0; i < NSLOT; i++)
		if (!M.open[i])
			return i;
	return -1;
}

static int
any_slot(int pct_open)
{
	int s = open_slot();

	return s >= 0 && chance(pct_open) ? s : (int)rnd(NSLOT);
}

static size_t
rsize(size_t max)
{
	size_t n;

	switch (rnd(3)) {
	case 0: n = 1 + rnd(16); break;
	case 1: n = 17 + rnd(4096 - 16); break;
	default: n = 4097 + rnd(max > 4097 ? max - 4096 : 1); break;
	}
	return n > max ? max : n;
}

static uint32_t
rev(void)
{
	uint32_t ev = 0;

	if (chance(75)) ev |= EPOLLIN;
	if (chance(40)) ev |= EPOLLOUT;
	if (chance(35)) ev |= EPOLLRDHUP;
	if (ev == 0) ev = EPOLLIN;
	if (chance(35)) ev |= EPOLLET;
	if (chance(25)) ev |= EPOLLONESHOT;
	return ev;
}

static size_t
wire(size_t n)
{
	return n + RECOVH * ((n + 65518) / 65519);
}

/* Steps before which nothing ends the stream (per sequence). */
static uint64_t term_at, cur_step;

static int
nopen(void)
{
	int i, n = 0;

	for (i = 0; i < NSLOT; i++)
		n += M.open[i];
	return n;
}

static void
gen(struct op *op, bool *again)
{
	static int w[OP_N] = {
		[OP_PW] = 16, [OP_RD] = 14, [OP_RV] = 5, [OP_PK] = 4,
		[OP_FN] = 4, [OP_PL] = 8, [OP_EW] = 14, [OP_EA] = 7,
		[OP_EM] = 5, [OP_ED] = 2, [OP_DU] = 3, [OP_D2] = 2,
		[OP_CL] = 2, [OP_PSW] = 1, [OP_PCL] = 1, [OP_PCLR] = 1,
		[OP_OSH] = 1, [OP_OW] = 4, [OP_PD] = 3,
	};
	int tot = 0, k, i, r;
	size_t room;

	memset(op, 0, sizeof(*op));
	*again = false;
	if (M.o_gone) {
		op->k = OP_PD;
		return;
	}
	for (k = 0; k < OP_N; k++) {
		if (without[k])
			w[k] = 0;
		tot += w[k];
	}
	r = (int)rnd((uint64_t)tot);
	for (k = 0; k < OP_N && r >= w[k]; k++)
		r -= w[k];
	op->k = k;
	op->slot = any_slot(95);
	if (cur_step < term_at && (k == OP_PSW || k == OP_PCL ||
	    k == OP_PCLR || k == OP_OSH || (k == OP_CL && nopen() == 1))) {
		*again = true;
		return;
	}
	switch (k) {
	case OP_PW:
		room = WIRE_CAP > M.wire_out ? WIRE_CAP - M.wire_out : 0;
		if (M.p_shut || M.p_closed || room < 64 ||
		    (M.o_shwr && M.o_shrd && !data_after_shut)) {
			*again = true;
			return;
		}
		op->n = rsize(MAXWRITE);
		while (wire(op->n) > room)
			op->n /= 2;
		if (op->n == 0)
			*again = true;
		break;
	case OP_RD: case OP_PK:
		op->n = rsize(MAXREAD);
		break;
	case OP_RV:
		op->niov = 2 + (int)rnd(4);
		for (i = 0; i < op->niov; i++)
			op->iov[i] = rsize(MAXREAD / 8);
		break;
	case OP_PL:
		for (i = 0; i < NSLOT; i++) {
			op->pev[i] = -1;
			if (M.open[i] ? chance(80) : chance(10)) {
				op->pev[i] = 0;
				if (chance(75)) op->pev[i] |= POLLIN;
				if (chance(40)) op->pev[i] |= POLLOUT;
				if (chance(35)) op->pev[i] |= POLLRDHUP;
			}
		}
		break;
	case OP_EA: case OP_EM:
		op->ev = rev();
		op->how = (int)++M.gen;
		break;
	case OP_DU:
		if ((op->slot2 = free_slot()) < 0 || !M.open[op->slot])
			*again = true;
		break;
	case OP_D2:
		op->slot2 = (int)rnd(NSLOT);
		break;
	case OP_CL:
		op->slot = open_slot();
		break;
	case OP_PSW:
		if (M.p_shut || M.p_closed)
			*again = true;
		break;
	case OP_PCL:
		if (M.p_closed)
			*again = true;
		break;
	case OP_PCLR:
		if (M.p_closed || M.o_wr == M.p_rd)
			*again = true;
		break;
	case OP_OSH:
		r = (int)rnd(5);
		op->how = r < 3 ? SHUT_WR : r == 3 ? SHUT_RD : SHUT_RDWR;
		break;
	case OP_OW:
		if (M.o_wr - M.p_rd + 8192 > OWRITE_CAP) {
			*again = true;
			return;
		}
		op->n = 1 + rnd(chance(50) ? 64 : 8192);
		break;
	case OP_PD:
		if (M.p_closed)
			*again = true;
		break;
	}
}

/* ----------------------------------------------------------- execution */

struct res {
	char obs[OBSLEN];
	struct epoll_event ev[MAXEV];   /* epoll_wait: what it returned */
	int nev;
	ssize_t r;                      /* main return value */
	int nfds;                       /* poll/epoll: how many ready */
	uint8_t *data;                  /* bytes the call returned */
	size_t dlen;
	bool content_bad;               /* bytes differ from the stream */
};

static uint8_t *rbuf[2], *wbuf, *ebuf;

/*
 * The one divergence from TCP that epoll(7) allows: an edge-triggered
 * registration may report again while data is readable ("multiple events
 * can be generated upon receipt of multiple chunks of data"; which chunks
 * TCP makes is up to segmentation).  The shim gives such an edge when it
 * pulls data from the kernel after a report, because it cannot tell sealed
 * bytes that arrived before the report from later ones, and must never
 * give fewer edges than TCP (nginx waits for one when a read returns more
 * than FIONREAD said); the end-of-stream mark is such data too.  Likewise
 * EPOLLOUT: TCP's write-space wake-ups follow the bytes in flight and the
 * send buffer's state, and sealing changes both (records are larger than
 * their plaintext), so one may come where plain TCP's did not.  An edge
 * reports what is true at that moment, as TCP's every wake-up does.  So an
 * extra event is accepted only on a registration that is EPOLLET without
 * EPOLLONESHOT, when it holds EPOLLIN, EPOLLRDHUP or EPOLLOUT (what made
 * it), and its events are exactly what plain TCP's socket has now of what
 * the registration asked for, with EPOLLERR and EPOLLHUP.
 * Registrations by data, as the program last set them (plain side).
 */
#define REGS 4096
static struct { uint32_t how; uint32_t ev; } regs_seen[REGS];

static void
reg_note(uint32_t how, uint32_t ev)
{
	regs_seen[how % REGS].how = how;
	regs_seen[how % REGS].ev = ev;
}

/*
 * The divergence DESIGN.md requires: "A failed session is dead: ... the
 * program's later calls fail", and an end without the mark is "never a
 * clean 0".  So once a sealed call has failed with ECONNRESET or EPIPE,
 * later reads and writes may fail with either where TCP, whose error was
 * consumed, returns 0 or the other errno.
 */
static bool sealed_failed;

static bool
is_io(int k)
{
	return k == OP_RD || k == OP_RV || k == OP_PK || k == OP_OW;
}

static bool
failed_stays_failed_ok(const struct op *op, const struct res *rp,
    const struct res *rs)
{
	bool serr = strcmp(rs->obs, "-1 ECONNRESET") == 0 ||
	    strcmp(rs->obs, "-1 EPIPE") == 0;

	if (!sealed_failed || !is_io(op->k) || !serr)
		return false;
	return strcmp(rp->obs, "0") == 0 || strcmp(rp->obs, "-1 ECONNRESET") == 0 ||
	    strcmp(rp->obs, "-1 EPIPE") == 0;
}

static bool
extra_et_edge_ok(const struct conn *c, const struct res *rp,
    const struct res *rs)
{
	struct pollfd pf = { .events = POLLIN | POLLOUT | POLLRDHUP };
	int i = 0, j, k;
	uint32_t how, ev, now = 0, x;
	bool open = false;

	/* What is true on plain TCP's socket now (any open slot). */
	for (k = 0; k < NSLOT && !open; k++) {
		pf.fd = slotfd(c, k);
		pf.revents = 0;
		if (poll(&pf, 1, 0) == 1 && !(pf.revents & POLLNVAL)) {
			now = (uint32_t)pf.revents;
			open = true;
		}
	}
	if (!open)
		return false;
	for (j = 0; j < rs->nev; j++) {
		if (i < rp->nev && rp->ev[i].events == rs->ev[j].events &&
		    rp->ev[i].data.u64 == rs->ev[j].data.u64) {
			i++;
			continue;
		}
		how = (uint32_t)rs->ev[j].data.u64;
		ev = regs_seen[how % REGS].how == how ?
		    regs_seen[how % REGS].ev : 0;
		x = rs->ev[j].events;
		if (!(ev & EPOLLET) || (ev & EPOLLONESHOT) ||
		    !(x & (EPOLLIN | EPOLLRDHUP | EPOLLOUT)) ||
		    x != (now & (ev | EPOLLERR | EPOLLHUP)))
			return false;
	}
	return i == rp->nev;
}

static void
obsf(struct res *r, const char *fmt, ...)
{
	size_t l = strlen(r->obs);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->obs + l, OBSLEN - l, fmt, ap);
	va_end(ap);
}

static void
check_stream(struct res *r, int dir, uint64_t off, const uint8_t *d, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	stream_fill(dir, off, ebuf, n);
	if (memcmp(ebuf, d, n) == 0)
		return;
	for (i = 0; i < n && ebuf[i] == d[i]; i++)
		;
	r->content_bad = true;
	obsf(r, " [bytes differ from the stream at offset %llu]",
	    (unsigned long long)(off + i));
}

static int
ev_cmp(const void *a, const void *b)
{
	const struct epoll_event *x = a, *y = b;

	return x->data.u64 < y->data.u64 ? -1 : x->data.u64 > y->data.u64;
}

/* Peer: read all that is there (content checked against stream 1). */
static void
peer_drain(struct conn *c, struct res *r, int side, uint64_t *got)
{
	ssize_t n;
	uint64_t tot = 0;

	for (;;) {
		n = recv(c->p, rbuf[side], 65536, MSG_DONTWAIT);
		if (n > 0) {
			check_stream(r, 1, M.p_rd + tot, rbuf[side], (size_t)n);
			tot += (size_t)n;
			continue;
		}
		if (n == 0)
			obsf(r, "peer read %llu then EOF",
			    (unsigned long long)tot);
		else
			obsf(r, "peer read %llu then %s",
			    (unsigned long long)tot, en(errno));
		break;
	}
	*got = tot;
}

static void
run(struct conn *c, int side, const struct op *op, int ref_nfds,
    struct res *r)
{
	int fd = slotfd(c, op->slot), e, i, n, t;
	struct iovec iov[5];
	struct epoll_event ev, evs[MAXEV];
	struct pollfd pf[NSLOT];
	uint8_t *b = rbuf[side];
	size_t off, want, o;
	ssize_t x;
	char s[128];
	uint64_t got;

	memset(r, 0, sizeof(*r));
	r->data = b;
	errno = 0;
	switch (op->k) {
	case OP_PW:
		stream_fill(0, M.p_wr, wbuf, op->n);
		x = write(c->p, wbuf, op->n);
		if (x < 0) {
			obsf(r, "peer write -1 %s", en(errno));
			break;
		}
		obsf(r, "peer write %zd", x);
		r->r = x;
		off = (size_t)x;
		while (off < op->n) {
			struct pollfd p = { .fd = c->p, .events = POLLOUT };

			if (poll(&p, 1, WAIT_MS) <= 0)
				break;
			x = write(c->p, wbuf + off, op->n - off);
			if (x < 0 && errno != EAGAIN)
				break;
			if (x > 0)
				off += (size_t)x;
		}
		if (off < op->n)
			obsf(r, " (only %zu in all)", off);
		r->r = (ssize_t)off;
		break;
	case OP_RD:
		want = op->n;
		if (side == 1 && inject_short && want > 1)
			want--;
		x = read(fd, b, want);
		goto reported;
	case OP_PK:
		x = recv(fd, b, op->n, MSG_PEEK);
		goto reported;
	case OP_RV:
		/* Gaps between the iovecs: the gathered bytes are compared. */
		for (i = 0, o = 0; i < op->niov; i++) {
			iov[i].iov_base = ebuf + o;
			iov[i].iov_len = op->iov[i];
			o += op->iov[i] + 7;
		}
		x = readv(fd, iov, op->niov);
		for (i = 0, o = 0; x > 0 && i < op->niov && o < (size_t)x; i++) {
			size_t l = op->iov[i] < (size_t)x - o ? op->iov[i] :
			    (size_t)x - o;

			memcpy(b + o, iov[i].iov_base, l);
			o += l;
		}
	reported:
		e = errno;
		r->r = x;
		if (x < 0) {
			obsf(r, "-1 %s", en(e));
		} else {
			obsf(r, "%zd", x);
			r->dlen = (size_t)x;
			check_stream(r, 0, M.o_rd, b, (size_t)x);
		}
		break;
	case OP_FN:
		n = -1;
		x = ioctl(fd, FIONREAD, &n);
		if (x < 0)
			obsf(r, "-1 %s", en(errno));
		else
			obsf(r, "%d", n);
		r->r = x;
		break;
	case OP_PL:
		for (i = 0, n = 0; i < NSLOT; i++) {
			if (op->pev[i] < 0)
				continue;
			pf[n].fd = slotfd(c, i);
			pf[n].events = op->pev[i];
			pf[n].revents = 0;
			n++;
		}
		t = side == 1 && ref_nfds > 0 ? WAIT_MS : 0;
		x = poll(pf, (nfds_t)n, t);
		if (x < 0) {
			obsf(r, "-1 %s", en(errno));
			break;
		}
		r->nfds = (int)x;
		obsf(r, "%zd", x);
		for (i = 0; i < n; i++) {
			pevstr(pf[i].revents, s, sizeof(s));
			obsf(r, " s%d:%s", pf[i].fd - c->base, s);
		}
		break;
	case OP_EW:
		t = side == 1 && ref_nfds > 0 ? WAIT_MS : 0;
		n = epoll_wait(c->ep, evs, MAXEV, t);
		if (n < 0) {
			obsf(r, "-1 %s", en(errno));
			break;
		}
		r->nfds = n;
		qsort(evs, (size_t)n, sizeof(evs[0]), ev_cmp);
		memcpy(r->ev, evs, (size_t)n * sizeof(evs[0]));
		r->nev = n;
		obsf(r, "%d", n);
		for (i = 0; i < n; i++) {
			evstr(evs[i].events, s, sizeof(s));
			obsf(r, " [s%d data=%u %s]", (int)(evs[i].data.u64 >> 32),
			    (unsigned)evs[i].data.u64, s);
		}
		break;
	case OP_EA: case OP_EM:
		ev.events = op->ev;
		ev.data.u64 = ((uint64_t)op->slot << 32) | (uint32_t)op->how;
		if (side == 0)
			reg_note((uint32_t)op->how, op->ev);
		x = epoll_ctl(c->ep, op->k == OP_EA ? EPOLL_CTL_ADD :
		    EPOLL_CTL_MOD, fd, &ev);
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		break;
	case OP_ED:
		x = epoll_ctl(c->ep, EPOLL_CTL_DEL, fd, NULL);
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		break;
	case OP_DU:
		x = fcntl(fd, F_DUPFD, slotfd(c, op->slot2));
		if (x >= 0 && x != slotfd(c, op->slot2))
			die("%s: F_DUPFD gave %zd, not %d", c->name, x,
			    slotfd(c, op->slot2));
		obsf(r, x < 0 ? "-1 %s" : "ok", en(errno));
		r->r = x;
		break;
	case OP_D2:
		x = dup2(fd, slotfd(c, op->slot2));
		obsf(r, x < 0 ? "-1 %s" : "ok", en(errno));
		r->r = x;
		break;
	case OP_CL:
		x = close(fd);
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		r->r = x;
		break;
	case OP_PSW:
		x = shutdown(c->p, SHUT_WR);
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		break;
	case OP_PCL:
		peer_drain(c, r, side, &got);
		r->r = (ssize_t)got;
		x = close(c->p);
		c->p = -1;
		obsf(r, x < 0 ? "; close -1 %s" : "; close 0", en(errno));
		break;
	case OP_PCLR:
		x = close(c->p);
		c->p = -1;
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		break;
	case OP_OSH:
		x = shutdown(fd, op->how);
		obsf(r, x < 0 ? "-1 %s" : "0", en(errno));
		break;
	case OP_OW:
		stream_fill(1, M.o_wr, wbuf, op->n);
		x = send(fd, wbuf, op->n, MSG_NOSIGNAL);
		if (x < 0)
			obsf(r, "-1 %s", en(errno));
		else
			obsf(r, "%zd", x);
		r->r = x;
		break;
	case OP_PD:
		if (c->p < 0) {
			obsf(r, "peer closed");
			break;
		}
		peer_drain(c, r, side, &got);
		r->r = (ssize_t)got;
		break;
	}
}

/* After both ran and agreed: the model follows the plain side. */
static void
model_update(const struct op *op, const struct res *r)
{
	size_t w;
	int i;

	switch (op->k) {
	case OP_PW:
		if (r->r > 0) {
			M.p_wr += (size_t)r->r;
			M.wire_out += wire((size_t)r->r);
		}
		break;
	case OP_RD: case OP_RV:
		if (r->r > 0) {
			M.o_rd += (size_t)r->r;
			w = (size_t)r->r;
			M.wire_out = M.wire_out > w ? M.wire_out - w : 0;
		}
		if (M.o_rd == M.p_wr)
			M.wire_out = 0;
		break;
	case OP_DU:
		if (r->r >= 0)
			M.open[op->slot2] = true;
		break;
	case OP_D2:
		if (r->r >= 0)
			M.open[op->slot2] = true;
		break;
	case OP_CL:
		if (r->r == 0)
			M.open[op->slot] = false;
		break;
	case OP_PSW:
		M.p_shut = true;
		break;
	case OP_PCL:
		M.p_rd += (uint64_t)r->r;
		M.p_closed = true;
		break;
	case OP_PCLR:
		M.p_closed = true;
		break;
	case OP_OSH:
		if (op->how != SHUT_RD)
			M.o_shwr = true;
		if (op->how != SHUT_WR)
			M.o_shrd = true;
		break;
	case OP_OW:
		if (r->r > 0)
			M.o_wr += (size_t)r->r;
		break;
	case OP_PD:
		M.p_rd += (uint64_t)r->r;
		break;
	}
	for (i = 0; i < NSLOT && !M.open[i]; i++)
		;
	if (i == NSLOT)
		M.o_gone = true;
}

static void
mismatch(uint64_t step, const char *ops, const struct res *rp,
    const struct res *rs, const char *why)
{
	printf("MISMATCH seed=%llu sequence=%llu step=%llu: %s\n",
	    (unsigned long long)seed, (unsigned long long)cur_seq,
	    (unsigned long long)step, why);
	printf("  plain:  %s\n  sealed: %s\n", rp->obs, rs->obs);
	printf("  operations so far (observed end and peer of sequence %llu):\n%s",
	    (unsigned long long)cur_seq, ops);
	printf("  reproduce: ready_diff --seed %llu --first %llu --count 1 "
	    "(same --ops)\n", (unsigned long long)seed,
	    (unsigned long long)cur_seq);
	fflush(stdout);
	nmismatch++;
	if (keep_going)
		longjmp(next_seq, 1);
	printf("ready_diff: seed=%llu mismatches=1\n", (unsigned long long)seed);
	fflush(stdout);
	exit(1);
}

static uint64_t total_ops;

static void
sequence(uint64_t k_ops)
{
	struct op op;
	struct res rp, rs;
	bool again, client;
	uint64_t step, x = seed * 0x9e3779b97f4a7c15ULL + cur_seq;
	char s[256];
	int i;

	rng = splitmix(&x);
	memset(&M, 0, sizeof(M));
	M.open[0] = true;
	oplog_len = 0;
	if (oplog)
		oplog[0] = 0;
	client = chance(50);
	term_at = k_ops / 3 + rnd(k_ops * 2 / 3 + 1);
	oplog_add("    observed end: the %s", client ? "connecting side" :
	    "accepting side");
	sealed_failed = false;
	for (i = 0; i < 2; i++) {
		conn_open(&C[i], client);
		settle(&C[i]);
	}
	if (setjmp(next_seq) != 0)
		goto out;
	for (step = 0; step < k_ops; step++) {
		cur_step = step;
		do
			gen(&op, &again);
		while (again);
		op_str(&op, s, sizeof(s));
		oplog_add("    %3llu %s", (unsigned long long)step, s);
		run(&C[0], 0, &op, 0, &rp);
		run(&C[1], 1, &op, rp.nfds, &rs);
		settle(&C[0]);
		settle(&C[1]);
		total_ops++;
		oplog_add("          plain saw: %s", rp.obs);
		if (verbose)
			printf("seq %llu step %llu: %s\n  plain:  %s\n  sealed: %s\n",
			    (unsigned long long)cur_seq,
			    (unsigned long long)step, s, rp.obs, rs.obs);
		if (strcmp(rp.obs, rs.obs) != 0 &&
		    !(op.k == OP_EW && extra_et_edge_ok(&C[0], &rp, &rs)) &&
		    !failed_stays_failed_ok(&op, &rp, &rs))
			mismatch(step, oplog, &rp, &rs, "observations differ");
		if (is_io(op.k) && (strcmp(rs.obs, "-1 ECONNRESET") == 0 ||
		    strcmp(rs.obs, "-1 EPIPE") == 0))
			sealed_failed = true;
		if (rp.dlen != rs.dlen || memcmp(rp.data, rs.data, rp.dlen) != 0)
			mismatch(step, oplog, &rp, &rs, "bytes differ");
		if (rp.content_bad)
			mismatch(step, oplog, &rp, &rs,
			    "plain TCP itself returned the wrong bytes (harness bug)");
		model_update(&op, &rp);
		if (M.o_gone && op.k == OP_PD)
			break;
	}
out:
	for (i = 0; i < 2; i++)
		conn_close(&C[i]);
}

static void
usage(void)
{
	fprintf(stderr, "usage: ready_diff --sealed-port P1 --plain-port P2 "
	    "[--seed N] [--count M] [--ops K] [--first I] [--seconds T] "
	    "[--marker STR] [--without OP,...] [--data-after-shutdown] "
	    "[--inject-short-read] [--keep-going] [--verbose]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	uint64_t count = 200, k_ops = 60, first = 0, secs = 0, i, t0;
	int i_arg;

	seed = 1;
	C[0].name = "plain";
	C[1].name = "sealed";
	C[0].port = C[1].port = 0;
	for (i_arg = 1; i_arg < argc; i_arg++) {
		const char *a = argv[i_arg], *v = i_arg + 1 < argc ?
		    argv[i_arg + 1] : NULL;

		if (strcmp(a, "--inject-short-read") == 0) {
			inject_short = true;
			continue;
		}
		if (strcmp(a, "--keep-going") == 0) {
			keep_going = true;
			continue;
		}
		if (strcmp(a, "--data-after-shutdown") == 0) {
			data_after_shut = true;
			continue;
		}
		if (strcmp(a, "--verbose") == 0) {
			verbose = true;
			continue;
		}
		if (v == NULL)
			usage();
		i_arg++;
		if (strcmp(a, "--sealed-port") == 0)
			C[1].port = atoi(v);
		else if (strcmp(a, "--plain-port") == 0)
			C[0].port = atoi(v);
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 0);
		else if (strcmp(a, "--count") == 0)
			count = strtoull(v, NULL, 0);
		else if (strcmp(a, "--ops") == 0)
			k_ops = strtoull(v, NULL, 0);
		else if (strcmp(a, "--first") == 0)
			first = strtoull(v, NULL, 0);
		else if (strcmp(a, "--seconds") == 0)
			secs = strtoull(v, NULL, 0);
		else if (strcmp(a, "--marker") == 0)
			marker = v;
		else if (strcmp(a, "--without") == 0) {
			char *l = strdup(v), *t, *save = NULL;
			int k;

			for (t = strtok_r(l, ",", &save); t != NULL;
			    t = strtok_r(NULL, ",", &save)) {
				for (k = 0; k < OP_N && strcmp(t, opname[k]); k++)
					;
				if (k == OP_N)
					usage();
				without[k] = true;
			}
			free(l);
		}
		else
			usage();
	}
	if (C[0].port <= 0 || C[1].port <= 0 || strlen(marker) > 1024)
		usage();
	signal(SIGPIPE, SIG_IGN);
	C[0].base = PLAIN_BASE;
	C[1].base = SEALED_BASE;
	C[0].p = C[1].p = -1;
	rbuf[0] = malloc(MAXREAD);
	rbuf[1] = malloc(MAXREAD);
	wbuf = malloc(MAXWRITE);
	ebuf = malloc(MAXREAD + 64);
	if (!rbuf[0] || !rbuf[1] || !wbuf || !ebuf)
		die("malloc");
	if ((nlfd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) < 0)
		die("netlink socket: %s", strerror(errno));
	C[0].lfd = listen_on(C[0].port);
	C[1].lfd = listen_on(C[1].port);
	t0 = now_ms();
	for (i = 0; secs ? now_ms() - t0 < secs * 1000 : i < count; i++) {
		cur_seq = first + i;
		sequence(k_ops);
	}
	printf("ready_diff: seed=%llu first=%llu sequences=%llu ops=%llu "
	    "mismatches=%llu\n", (unsigned long long)seed,
	    (unsigned long long)first, (unsigned long long)i,
	    (unsigned long long)total_ops, (unsigned long long)nmismatch);
	return nmismatch ? 1 : 0;
}
