/*
 * test_session: shim/session.c over real sockets, with the test as the wire
 * in the middle.
 *
 *   initiator session on A1 <-> A2  [test relays, observes, tampers]  B2 <-> B1 responder
 *
 * A1/A2 and B1/B2 are AF_UNIX stream socketpairs.  The handshake is driven
 * non-blocking (session_handshake(.., false) on both sides, relaying in
 * between) and blocking (threads).  Covered: wire format of the handshake
 * (preface, 58 and 50 bytes), both suites, data both ways with uneven
 * iovecs and record-boundary sizes, MSG_PEEK, short reads, MSG_WAITALL,
 * SHUT_WR end-of-stream, truncation, tampering, replay, wrong key, key
 * rotation, bad preface / version / suite / length, handshake timeout,
 * readiness of half and whole records, end-of-stream at close/exit,
 * rekey after 65536 records, and the count and bound of handshakes in
 * flight (SOCKSEAL_MAX_HANDSHAKES) on every way a handshake ends.
 *
 * Run from the repo root: build/tests/test_session.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "noise.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "session_int.h"        /* white-box: the session's fields */
#include "check.h"

#define PREFACE_LEN  8
#define MSG1_WIRE    58
#define MSG2_WIRE    50

/* ------------------------------------------------------------ keys, rules */

static struct policy_key keys[3];

static void
keys_init(void)
{
	static char *names[3] = { "k0", "k1", "k2" };
	int i;

	for (i = 0; i < 3; i++) {
		keys[i].name = names[i];
		keys[i].path = names[i];
		keys[i].resolved = names[i];
		keys[i].line = i + 1;
		randombytes_buf(keys[i].key, sizeof(keys[i].key));
	}
}

static void
rule_make(struct policy_rule *r, enum policy_dir dir, enum policy_cipher c,
    int k0, int k1)
{
	memset(r, 0, sizeof(*r));
	r->dir = dir;
	r->cipher = c;
	r->mode = POLICY_STRICT;
	r->timeout_ms = 5000;
	r->file = "test.policy";
	r->line = dir == POLICY_CONNECT ? 1 : 2;
	r->port_hi = 65535;
	r->keys[r->nkeys++] = &keys[k0];
	if (k1 >= 0)
		r->keys[r->nkeys++] = &keys[k1];
}

/* ------------------------------------------------------------------ wire */

struct dir {
	int      from, to;
	uint8_t  buf[1 << 18];
	size_t   off, len;
	uint64_t seen;      /* bytes read from FROM */
	bool     eof, shut;
};

struct wire {
	int a1, a2, b1, b2;
	struct session *sa, *sb;
	struct policy_rule ri, rr;
	struct dir ab, ba;
};

static void
nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static struct wire *
wire_new(void)
{
	struct wire *w = calloc(1, sizeof(*w));
	int p[2];

	if (w == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
		abort();
	w->a1 = p[0];
	w->a2 = p[1];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
		abort();
	w->b1 = p[0];
	w->b2 = p[1];
	nonblock(w->a1, true);
	nonblock(w->b1, true);
	nonblock(w->a2, true);
	nonblock(w->b2, true);
	w->ab.from = w->a2;
	w->ab.to = w->b2;
	w->ba.from = w->b2;
	w->ba.to = w->a2;
	return w;
}

/* Sessions on A1 (initiator, RI) and B1 (responder, RR). */
static void
wire_sessions(struct wire *w)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4242), .sin_addr.s_addr = htonl(0x7f000001) };

	w->sa = session_new(w->a1, &w->ri, true, (struct sockaddr *)&sin);
	w->sb = session_new(w->b1, &w->rr, false, (struct sockaddr *)&sin);
	if (w->sa == NULL || w->sb == NULL)
		abort();
}

static void
xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
wire_free(struct wire *w)
{
	session_put(w->sa);
	session_put(w->sb);
	xclose(&w->a1);
	xclose(&w->a2);
	xclose(&w->b1);
	xclose(&w->b2);
	free(w);
}

/* grab(fd, buf, cap): whatever is readable now (non-blocking fd); -1 on EOF
 * with nothing read. */
static ssize_t
grab(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 && got == 0)
			return -1;
		break;
	}
	return (ssize_t)got;
}

/* put(fd, buf, len): write it all (small amounts). */
static void
put(int fd, const uint8_t *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			poll(&p, 1, 1000);
		} else {
			fprintf(stderr, "put: %s\n", strerror(errno));
			return;
		}
	}
}

/* Relay one direction without blocking; propagate EOF as SHUT_WR.  Returns
 * bytes moved (read + written). */
static size_t
pump_dir(struct dir *d)
{
	size_t moved = 0;
	ssize_t n;

	if (d->off == d->len)
		d->off = d->len = 0;
	while (!d->eof && d->len < sizeof(d->buf)) {
		n = read(d->from, d->buf + d->len, sizeof(d->buf) - d->len);
		if (n > 0) {
			d->len += (size_t)n;
			d->seen += (uint64_t)n;
			moved += (size_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else {
			break;
		}
	}
	while (d->off < d->len) {
		n = write(d->to, d->buf + d->off, d->len - d->off);
		if (n <= 0)
			break;
		d->off += (size_t)n;
		moved += (size_t)n;
	}
	if (d->eof && d->off == d->len && !d->shut) {
		shutdown(d->to, SHUT_WR);
		d->shut = true;
	}
	return moved;
}

static size_t
pump(struct wire *w)
{
	return pump_dir(&w->ab) + pump_dir(&w->ba);
}

/* Non-blocking handshake with the relay in between.  RA and RB get the last
 * results (0, -ECONNRESET, or -EAGAIN if it stalled). */
static void
handshake_nb(struct wire *w, int *ra, int *rb)
{
	int i;

	*ra = *rb = -EAGAIN;
	for (i = 0; i < 200; i++) {
		if (*ra == -EAGAIN)
			*ra = session_handshake(w->sa, w->a1, false);
		pump(w);
		if (*rb == -EAGAIN)
			*rb = session_handshake(w->sb, w->b1, false);
		pump(w);
		if (*ra != -EAGAIN && *rb != -EAGAIN)
			break;
	}
}

/* A wire with an open session pair (suite from RI's cipher). */
static struct wire *
open_pair(enum policy_cipher c)
{
	struct wire *w = wire_new();
	int ra, rb;

	rule_make(&w->ri, POLICY_CONNECT, c, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	wire_sessions(w);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(ra, 0);
	CHECK_INT_EQ(rb, 0);
	return w;
}

static ssize_t
send1(struct session *s, int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return session_send(s, fd, &iov, 1, flags);
}

static ssize_t
recv1(struct session *s, int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return session_recv(s, fd, &iov, 1, flags);
}

/* Receive exactly LEN bytes (non-blocking, pumping). */
static ssize_t
recv_all(struct wire *w, struct session *s, int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int idle = 0;

	while (got < len && idle < 1000) {
		n = recv1(s, fd, buf + got, len - got, 0);
		if (n > 0) {
			got += (size_t)n;
			idle = 0;
			continue;
		}
		if (n != -EAGAIN)
			return got > 0 ? (ssize_t)got : n;
		if (pump(w) == 0)
			idle++;
	}
	return (ssize_t)got;
}

/*
 * xfer: LEN bytes of DATA from session (S, SFD) to (D, DFD), the sender's
 * iovecs sized by cycling SPAT (at most SIOV per call, SBATCH calls between
 * pumps), the receiver's by RPAT.  Returns bytes received into OUT.
 */
static size_t
xfer(struct wire *w, struct session *s, int sfd, struct session *d, int dfd,
    const uint8_t *data, uint8_t *out, size_t len,
    const size_t *spat, int nspat, int siov, int sbatch,
    const size_t *rpat, int nrpat)
{
	struct iovec iov[16];
	size_t sent = 0, got = 0, o, c;
	int si = 0, ri = 0, cnt, b, idle = 0;
	ssize_t n;

	while (got < len && idle < 2000) {
		bool progress = false;

		for (b = 0; b < sbatch && sent < len; b++) {
			for (cnt = 0, o = sent; cnt < siov && o < len; cnt++) {
				c = spat[(si + cnt) % nspat];
				if (c > len - o)
					c = len - o;
				iov[cnt].iov_base = (void *)(data + o);
				iov[cnt].iov_len = c;
				o += c;
			}
			n = session_send(s, sfd, iov, cnt, MSG_NOSIGNAL);
			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				fprintf(stderr, "xfer: send: %zd\n", n);
				return got;
			}
			sent += (size_t)n;
			si += cnt;
			progress = true;
		}
		if (pump(w) > 0)
			progress = true;
		for (;;) {
			for (cnt = 0, o = got; cnt < 16 && o < len; cnt++) {
				c = rpat[(ri + cnt) % nrpat];
				if (c > len - o)
					c = len - o;
				iov[cnt].iov_base = out + o;
				iov[cnt].iov_len = c;
				o += c;
			}
			if (cnt == 0)
				break;
			n = session_recv(d, dfd, iov, cnt, 0);
			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				fprintf(stderr, "xfer: recv: %zd\n", n);
				return got;
			}
			got += (size_t)n;
			ri += cnt;
			progress = true;
		}
		idle = progress ? 0 : idle + 1;
	}
	return got;
}

static int
count_nonzero(const uint8_t *b, size_t n)
{
	size_t i;
	int c = 0;

	for (i = 0; i < n; i++)
		c += b[i] != 0;
	return c;
}

/* ------------------------------------------------------------------ tests */

static bool aes_ok;

static void
test_handshake_wire(enum policy_cipher c)
{
	struct wire *w = wire_new();
	uint8_t m[256];
	static const uint8_t pre[6] = { 0x53, 0x4b, 0x53, 0x4c, 0x01, 0 };
	uint8_t h1[NOISE_HASHLEN];
	ssize_t n;
	int r;

	rule_make(&w->ri, POLICY_CONNECT, c, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	wire_sessions(w);
	CHECK_INT_EQ(session_state(w->sa), SESSION_HS_SEND1);
	CHECK_INT_EQ(session_state(w->sb), SESSION_HS_WAIT1);

	/* Responder with nothing to read: EAGAIN, nothing sent. */
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -EAGAIN);
	CHECK_INT_EQ(grab(w->b2, m, sizeof(m)), 0);

	CHECK_INT_EQ(session_handshake(w->sa, w->a1, false), -EAGAIN);
	CHECK_INT_EQ(session_state(w->sa), SESSION_HS_WAIT2);
	/* Data calls before OPEN on a non-blocking socket: a read finds
	 * nothing (EAGAIN); a write is kept until the keys exist. */
	CHECK_INT_EQ(recv1(w->sa, w->a1, m, 10, 0), -EAGAIN);
	CHECK_INT_EQ(send1(w->sa, w->a1, "x", 1, 0), 1);

	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, MSG1_WIRE);
	CHECK_MEM_EQ(m, pre, 5);
	CHECK_INT_EQ(m[5], c == POLICY_CIPHER_AESGCM ? 2 : 1);
	CHECK_INT_EQ(m[6], 0);
	CHECK_INT_EQ(m[7], 0);
	CHECK_INT_EQ(m[8] << 8 | m[9], 48);
	/* Feed message 1 in two pieces: the responder waits for the rest. */
	put(w->b2, m, 5);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -EAGAIN);
	put(w->b2, m + 5, 20);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -EAGAIN);
	CHECK_INT_EQ(session_state(w->sb), SESSION_HS_WAIT1);
	put(w->b2, m + 25, (size_t)n - 25);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), 0);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	CHECK_INT_EQ(w->sb->suite, c == POLICY_CIPHER_AESGCM ? 2 : 1);

	n = grab(w->b2, m, sizeof(m));
	CHECK_INT_EQ(n, MSG2_WIRE);
	CHECK_INT_EQ(m[0] << 8 | m[1], 48);
	put(w->a2, m, (size_t)n);
	r = session_handshake(w->sa, w->a1, false);
	CHECK_INT_EQ(r, 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	/* The byte written mid-handshake is sealed and queued first. */
	CHECK_INT_EQ(w->sa->tend - w->sa->toff, RECORD_WIRELEN(1));
	CHECK_INT_EQ(w->sa->early_len, 0);
	/* Handshake done: no more handshake bytes on the wire. */
	CHECK_INT_EQ(grab(w->a2, m, sizeof(m)), 0);
	CHECK_INT_EQ(grab(w->b2, m, sizeof(m)), 0);
	/* Split ciphers line up: initiator tx is responder rx. */
	CHECK_MEM_EQ(w->sa->tx.k, w->sb->rx.k, NOISE_KEYLEN);
	CHECK_MEM_EQ(w->sa->rx.k, w->sb->tx.k, NOISE_KEYLEN);
	CHECK(memcmp(w->sa->tx.k, w->sa->rx.k, NOISE_KEYLEN) != 0);
	CHECK(!w->sa->hs_live && !w->sb->hs_live);
	memcpy(h1, w->sa->tx.k, sizeof(h1));
	/* A second handshake call on an open session is a no-op. */
	CHECK_INT_EQ(session_handshake(w->sa, w->a1, false), 0);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, true), 0);
	wire_free(w);
}

/* Blocking variant: both sides block, a relay thread in between. */
struct relay {
	struct wire *w;
	volatile int stop;
	pthread_t th;
};

static void *
relay_main(void *arg)
{
	struct relay *rl = arg;
	struct pollfd p[2];

	while (!__atomic_load_n(&rl->stop, __ATOMIC_ACQUIRE)) {
		p[0].fd = rl->w->a2;
		p[0].events = (short)(POLLIN |
		    (rl->w->ba.off < rl->w->ba.len ? POLLOUT : 0));
		p[1].fd = rl->w->b2;
		p[1].events = (short)(POLLIN |
		    (rl->w->ab.off < rl->w->ab.len ? POLLOUT : 0));
		poll(p, 2, 10);
		pump(rl->w);
	}
	return NULL;
}

static void
relay_start(struct relay *rl, struct wire *w)
{
	rl->w = w;
	rl->stop = 0;
	pthread_create(&rl->th, NULL, relay_main, rl);
}

static void
relay_stop(struct relay *rl)
{
	__atomic_store_n(&rl->stop, 1, __ATOMIC_RELEASE);
	pthread_join(rl->th, NULL);
}

struct hs_arg {
	struct session *s;
	int fd, r;
};

static void *
hs_thread(void *arg)
{
	struct hs_arg *a = arg;

	a->r = session_handshake(a->s, a->fd, true);
	return NULL;
}

struct bulk_arg {
	struct session *s;
	int fd;
	const uint8_t *data;
	size_t len;
	ssize_t r;
};

static void *
bulk_send_thread(void *arg)
{
	struct bulk_arg *a = arg;
	struct iovec iov[3];
	size_t off = 0, c;
	ssize_t n;

	while (off < a->len) {
		/* three uneven iovecs per call */
		c = a->len - off;
		iov[0].iov_base = (void *)(a->data + off);
		iov[0].iov_len = c < 13 ? c : 13;
		iov[1].iov_base = (void *)(a->data + off + iov[0].iov_len);
		iov[1].iov_len = c - iov[0].iov_len < 70001 ?
		    c - iov[0].iov_len : 70001;
		iov[2].iov_base = (void *)(a->data + off + iov[0].iov_len +
		    iov[1].iov_len);
		iov[2].iov_len = c - iov[0].iov_len - iov[1].iov_len;
		if (iov[2].iov_len > 99999)
			iov[2].iov_len = 99999;
		n = session_send(a->s, a->fd, iov, 3, MSG_NOSIGNAL);
		if (n <= 0) {
			a->r = n;
			return NULL;
		}
		off += (size_t)n;
	}
	a->r = (ssize_t)off;
	return NULL;
}

static void
test_handshake_blocking(enum policy_cipher c)
{
	struct wire *w = wire_new();
	struct relay rl;
	struct hs_arg a;
	struct bulk_arg ba;
	pthread_t th;
	size_t len = 1 << 20;
	uint8_t *data = malloc(len), *out = calloc(1, len);
	ssize_t n;
	int ra;

	rule_make(&w->ri, POLICY_CONNECT, c, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	nonblock(w->a1, false);
	nonblock(w->b1, false);
	wire_sessions(w);
	relay_start(&rl, w);
	a.s = w->sb;
	a.fd = w->b1;
	pthread_create(&th, NULL, hs_thread, &a);
	ra = session_handshake(w->sa, w->a1, true);
	pthread_join(th, NULL);
	CHECK_INT_EQ(ra, 0);
	CHECK_INT_EQ(a.r, 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);

	/* 1 MiB blocking, responder to initiator, MSG_WAITALL receive. */
	randombytes_buf(data, len);
	ba.s = w->sb;
	ba.fd = w->b1;
	ba.data = data;
	ba.len = len;
	pthread_create(&th, NULL, bulk_send_thread, &ba);
	n = recv1(w->sa, w->a1, out, len, MSG_WAITALL);
	pthread_join(th, NULL);
	CHECK_INT_EQ(ba.r, len);
	CHECK_INT_EQ(n, len);
	CHECK_MEM_EQ(out, data, len);

	/* Blocking read returns what one record holds (no WAITALL). */
	CHECK_INT_EQ(send1(w->sa, w->a1, "ping", 4, 0), 4);
	memset(out, 0, 16);
	CHECK_INT_EQ(recv1(w->sb, w->b1, out, 16, 0), 4);
	CHECK_MEM_EQ(out, "ping", 4);
	relay_stop(&rl);
	free(data);
	free(out);
	wire_free(w);
}

/* Blocking handshake with a peer that never answers: bounded by timeout. */
static void
test_handshake_timeout(void)
{
	struct wire *w = wire_new();
	uint64_t t0;
	int r;

	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	w->ri.timeout_ms = 300;
	w->rr.timeout_ms = 300;
	nonblock(w->a1, false);
	nonblock(w->b1, false);
	wire_sessions(w);
	t0 = now_ms();
	r = session_handshake(w->sa, w->a1, true);
	CHECK_INT_EQ(r, -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sa), SESSION_DEAD);
	CHECK(now_ms() - t0 >= 250 && now_ms() - t0 < 3000);
	r = session_handshake(w->sb, w->b1, true);
	CHECK_INT_EQ(r, -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	CHECK_INT_EQ(session_so_error(w->sa, w->a1), ECONNREFUSED);
	CHECK_INT_EQ(session_so_error(w->sa, w->a1), 0);   /* once */
	CHECK_INT_EQ(session_so_error(w->sb, w->b1), ECONNRESET);
	wire_free(w);
}

static void
test_data(enum policy_cipher c)
{
	static const size_t sizes[] = { 1, RECORD_MAXPT, RECORD_MAXPT + 1,
	    1 << 20 };
	static const size_t spat[] = { 1, 7, 4093, 65536, 100000, 3 };
	static const size_t rpat[] = { 3, 5000, 70000, 1, 65519 };
	static const size_t one[] = { 1 << 21 };
	struct wire *w = open_pair(c);
	size_t len = 1 << 20, i, got;
	uint8_t *data = malloc(len), *out = malloc(len);
	uint8_t ha[32], hb[32];
	uint64_t before;

	randombytes_buf(data, len);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		/* one call, one iovec: wire size is exact */
		memset(out, 0, n);
		before = w->ab.seen;
		got = xfer(w, w->sa, w->a1, w->sb, w->b1, data, out, n,
		    one, 1, 1, 1, one, 1);
		CHECK_INT_EQ(got, n);
		CHECK_MEM_EQ(out, data, n);
		if (n <= 4 * RECORD_MAXPT) {
			size_t full = n / RECORD_MAXPT, rest = n % RECORD_MAXPT;

			CHECK_INT_EQ(w->ab.seen - before,
			    full * RECORD_WIRELEN(RECORD_MAXPT) +
			    (rest ? RECORD_WIRELEN(rest) : 0));
		}
		/* and the other way, several uneven iovecs each side */
		memset(out, 0, n);
		got = xfer(w, w->sb, w->b1, w->sa, w->a1, data, out, n,
		    spat, 6, 5, 4, rpat, 5);
		CHECK_INT_EQ(got, n);
		crypto_hash_sha256(ha, data, n);
		crypto_hash_sha256(hb, out, n);
		CHECK_MEM_EQ(ha, hb, 32);
	}
	CHECK_INT_EQ(w->sa->bytes_out, 1 + 65519 + 65520 + (1 << 20));
	CHECK_INT_EQ(w->sb->bytes_in, w->sa->bytes_out);
	free(data);
	free(out);
	wire_free(w);
}

/* A splice source and sink (session_send_from, session_recv_into). */
struct src {
	const uint8_t *p;
	size_t len, off;
	int fail;
};

static ssize_t
src_fill(void *arg, void *buf, size_t n)
{
	struct src *s = arg;

	if (s->fail)
		return -s->fail;
	if (n > s->len - s->off)
		n = s->len - s->off;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

struct sink {
	uint8_t *p;
	size_t cap, got, take;
	int fail;
};

static ssize_t
sink_drain(void *arg, void *buf, size_t n)
{
	struct sink *k = arg;

	if (k->fail)
		return -k->fail;
	if (k->take != 0 && n > k->take)
		n = k->take;
	if (n > k->cap - k->got)
		n = k->cap - k->got;
	memcpy(k->p + k->got, buf, n);
	k->got += n;
	return (ssize_t)n;
}

/*
 * The splice paths: a source is read only when the session can take what
 * it gives, and a sink's refusal or partial take leaves the rest unread.
 */
static void
test_splice_paths(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	size_t len = 1 << 20;
	uint8_t *data = malloc(len), *out = malloc(len), buf[64];
	struct src src = { data, len, 0, 0 };
	struct sink sink = { out, len, 0, 0, 0 };
	uint64_t out0 = w->sa->bytes_out, in0 = w->sb->bytes_in;
	int rounds = 0;
	ssize_t n;

	randombytes_buf(data, len);
	src.fail = EAGAIN;
	CHECK_INT_EQ(session_send_from(w->sa, w->a1, 100, src_fill, &src, 0),
	    -EAGAIN);
	CHECK_INT_EQ(w->sa->bytes_out, out0);
	src.fail = 0;
	while ((src.off < len || sink.got < len) && rounds++ < 100000) {
		if (src.off < len) {
			n = session_send_from(w->sa, w->a1, len - src.off,
			    src_fill, &src, 0);
			CHECK(n > 0 || n == -EAGAIN);
		}
		pump(w);
		n = session_recv_into(w->sb, w->b1, len, sink_drain, &sink);
		CHECK(n > 0 || n == -EAGAIN);
	}
	CHECK_INT_EQ(sink.got, len);
	CHECK_MEM_EQ(out, data, len);
	CHECK_INT_EQ(w->sa->bytes_out - out0, len);
	CHECK_INT_EQ(w->sb->bytes_in - in0, len);
	/* an ended source: 0, nothing sent */
	CHECK_INT_EQ(session_send_from(w->sa, w->a1, 100, src_fill, &src, 0),
	    0);

	CHECK_INT_EQ(send1(w->sa, w->a1, "hello world", 11, 0), 11);
	pump(w);
	sink.got = 0;
	sink.take = 3;
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 100, sink_drain, &sink),
	    3);
	CHECK_MEM_EQ(out, "hel", 3);
	sink.fail = EAGAIN;
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 100, sink_drain, &sink),
	    -EAGAIN);
	sink.fail = EPIPE;
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 100, sink_drain, &sink),
	    -EPIPE);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 8);
	CHECK_MEM_EQ(buf, "lo world", 8);
	sink.fail = 0;
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 100, sink_drain, &sink),
	    -EAGAIN);
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 0, sink_drain, &sink), 0);
	/* the end of the stream */
	CHECK_INT_EQ(session_shutdown(w->sa, w->a1, SHUT_WR, false), 0);
	pump(w);
	CHECK_INT_EQ(session_recv_into(w->sb, w->b1, 100, sink_drain, &sink),
	    0);
	free(data);
	free(out);
	wire_free(w);
}

static void
test_peek_short(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t buf[64], a[3], b[100];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	ssize_t n;

	CHECK_INT_EQ(send1(w->sa, w->a1, "hello world", 11, 0), 11);
	pump(w);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 5, MSG_PEEK), 5);
	CHECK_MEM_EQ(buf, "hello", 5);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), 11);
	CHECK_MEM_EQ(buf, "hello world", 11);
	/* peek into two iovecs */
	n = session_recv(w->sb, w->b1, iov, 2, MSG_PEEK);
	CHECK_INT_EQ(n, 11);
	CHECK_MEM_EQ(a, "hel", 3);
	CHECK_MEM_EQ(b, "lo world", 8);
	CHECK_INT_EQ(w->sb->bytes_in, 0);
	/* short reads */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 4, 0), 4);
	CHECK_MEM_EQ(buf, "hell", 4);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 1, MSG_PEEK), 1);
	CHECK_INT_EQ(buf[0], 'o');
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 3, 0), 3);
	CHECK_MEM_EQ(buf, "o w", 3);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 4);
	CHECK_MEM_EQ(buf, "orld", 4);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), -EAGAIN);
	/* zero-length read */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 0, 0), 0);

	/* two records buffered: a big read gets both (no WAITALL needed,
	 * but at least the first); drain fully */
	CHECK_INT_EQ(send1(w->sa, w->a1, "abc", 3, 0), 3);
	CHECK_INT_EQ(send1(w->sa, w->a1, "defg", 4, 0), 4);
	pump(w);
	memset(buf, 0, sizeof(buf));
	n = recv1(w->sb, w->b1, buf, sizeof(buf), 0);
	CHECK(n == 3 || n == 7);
	if (n == 3)
		n += recv1(w->sb, w->b1, buf + 3, sizeof(buf) - 3, 0);
	CHECK_INT_EQ(n, 7);
	CHECK_MEM_EQ(buf, "abcdefg", 7);
	/* MSG_DONTWAIT on an empty socket */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 1, MSG_DONTWAIT), -EAGAIN);
	/* unsupported flags */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 1, MSG_OOB), -EOPNOTSUPP);
	CHECK_INT_EQ(send1(w->sb, w->b1, buf, 1, MSG_OOB), -EOPNOTSUPP);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	wire_free(w);
}

static void
test_shutdown_eof(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	size_t len = 300000, got = 0;
	uint8_t *data = malloc(len), *out = malloc(len), buf[16];
	static const size_t pat[] = { 300000 };
	ssize_t n;
	int zeros_early = 0, i;
	uint64_t before;

	randombytes_buf(data, len);
	/* queue it all, then shut down: the receiver must see every byte,
	 * then 0 */
	got = 0;
	for (i = 0; got < len && i < 100000; i++) {
		n = send1(w->sa, w->a1, data + got, len - got, MSG_NOSIGNAL);
		if (n > 0)
			got += (size_t)n;
		else
			pump(w);
	}
	CHECK_INT_EQ(got, len);
	(void)pat;
	/* session_shutdown flushes the queue + mark with a bounded wait;
	 * the relay thread keeps the wire moving meanwhile */
	{
		struct relay rl;

		relay_start(&rl, w);
		CHECK_INT_EQ(session_shutdown(w->sa, w->a1, SHUT_WR, false), 0);
		relay_stop(&rl);
	}
	CHECK(w->sa->tx_shut);
	/* send after SHUT_WR: EPIPE */
	CHECK_INT_EQ(send1(w->sa, w->a1, "x", 1, MSG_NOSIGNAL), -EPIPE);
	before = w->ab.seen;
	got = 0;
	for (i = 0; i < 100000; i++) {
		n = recv1(w->sb, w->b1, out + got, len - got > 7777 ? 7777 :
		    len - got + 1, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (got < len)
				zeros_early++;
			break;
		}
		if (n != -EAGAIN)
			break;
		pump(w);
	}
	CHECK_INT_EQ(got, len);
	CHECK_INT_EQ(zeros_early, 0);
	CHECK_INT_EQ(n, 0);
	CHECK_MEM_EQ(out, data, len);
	CHECK(w->sb->rx_eof);
	/* 0 again, and the session is still usable the other way */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	CHECK_INT_EQ(send1(w->sb, w->b1, "reply", 5, 0), 5);
	pump(w);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv_all(w, w->sa, w->a1, buf, 5), 5);
	CHECK_MEM_EQ(buf, "reply", 5);
	/* readiness after the mark: readable (the read returns 0) */
	{
		short kev;

		CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev) & POLLIN,
		    POLLIN);
	}
	/* the responder's close sends its mark; the initiator sees 0 */
	session_close_last(w->sb, w->b1);
	xclose(&w->b1);
	pump(w);
	pump(w);
	CHECK_INT_EQ(recv1(w->sa, w->a1, buf, sizeof(buf), 0), 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	(void)before;
	free(data);
	free(out);
	wire_free(w);
}

/* The relay closes B2 after some data, without the end-of-stream mark. */
static void
test_truncation(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t data[5000], buf[8192], m[256];
	size_t got = 0;
	ssize_t n;
	int i;
	short kev;

	randombytes_buf(data, sizeof(data));
	CHECK_INT_EQ(send1(w->sa, w->a1, data, sizeof(data), 0), 5000);
	pump(w);
	xclose(&w->b2);
	for (i = 0; i < 10 && got < sizeof(data); i++) {
		n = recv1(w->sb, w->b1, buf + got, 1000, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK_INT_EQ(got, 5000);
	CHECK_MEM_EQ(buf, data, 5000);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(send1(w->sb, w->b1, "x", 1, MSG_NOSIGNAL), -ECONNRESET);
	CHECK_INT_EQ(session_shutdown(w->sb, w->b1, SHUT_WR, false) < 0 ||
	    !w->sb->tx_shut, 1);
	/* readable, hung up; the error was returned, so no longer pending
	 * (POLLERR), as TCP's after a reset */
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN | POLLOUT, &kev) &
	    (POLLIN | POLLERR | POLLHUP), POLLIN | POLLHUP);
	wire_free(w);

	/* truncation inside a record, the other direction */
	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(send1(w->sb, w->b1, data, 1000, 0), 1000);
	n = grab(w->b2, m, 100);
	CHECK_INT_EQ(n, 100);
	put(w->a2, m, (size_t)n);
	xclose(&w->a2);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sa, w->a1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sa), SESSION_DEAD);
	CHECK_INT_EQ(count_nonzero(buf, sizeof(buf)), 0);
	wire_free(w);

	/* truncation right after the handshake: no data at all */
	w = open_pair(POLICY_CIPHER_DEFAULT);
	xclose(&w->b2);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	wire_free(w);
}

/* Flip byte OFF of the second record (ciphertext or tag). */
static void
tamper_one(size_t off, uint8_t xor, bool waits)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t data[100], buf[200], m[512], sent_after[64];
	ssize_t n;

	memset(data, 'P', sizeof(data));
	CHECK_INT_EQ(send1(w->sa, w->a1, "first", 5, 0), 5);
	pump(w);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 5);
	CHECK_INT_EQ(send1(w->sa, w->a1, data, sizeof(data), 0), 100);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, RECORD_WIRELEN(100));
	m[off] ^= xor;
	put(w->b2, m, (size_t)n);
	memset(buf, 0, sizeof(buf));
	n = recv1(w->sb, w->b1, buf, sizeof(buf), 0);
	if (waits) {
		/* length now larger than what came: waits for more; then the
		 * relay ends the stream: truncation */
		CHECK_INT_EQ(n, -EAGAIN);
		xclose(&w->b2);
		n = recv1(w->sb, w->b1, buf, sizeof(buf), 0);
	}
	CHECK_INT_EQ(n, -ECONNRESET);
	CHECK_INT_EQ(count_nonzero(buf, sizeof(buf)), 0);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	/* dead: nothing more is sent, not even at close */
	CHECK_INT_EQ(send1(w->sb, w->b1, "x", 1, MSG_NOSIGNAL), -ECONNRESET);
	session_close_last(w->sb, w->b1);
	xclose(&w->b1);
	if (w->b2 >= 0) {
		n = grab(w->b2, sent_after, sizeof(sent_after));
		CHECK_INT_EQ(n, -1);    /* EOF, no bytes */
	}
	wire_free(w);
}

static void
test_tamper(void)
{
	tamper_one(RECORD_HDRLEN, 0x01, false);              /* first ct byte */
	tamper_one(RECORD_HDRLEN + 50, 0x80, false);         /* middle */
	tamper_one(RECORD_WIRELEN(100) - 1, 0x01, false);    /* tag */
	tamper_one(1, 0x04, false);  /* length 116 -> 112: wrong split */
	tamper_one(1, 0x74 ^ 0x05, false);  /* length 5 < 16: bad length */
	tamper_one(1, 0xff, true);   /* length 116 -> 139: waits, then EOF */
	tamper_one(0, 0xff, true);   /* length 65396: waits, then EOF */
}

static void
test_replay(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t buf[64], m[256];
	ssize_t n;

	CHECK_INT_EQ(send1(w->sa, w->a1, "once", 4, 0), 4);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, RECORD_WIRELEN(4));
	put(w->b2, m, (size_t)n);
	put(w->b2, m, (size_t)n);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 4, 0), 4);
	CHECK_MEM_EQ(buf, "once", 4);
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(count_nonzero(buf, sizeof(buf)), 0);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	wire_free(w);

	/* reorder: two records swapped */
	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(send1(w->sa, w->a1, "r1", 2, 0), 2);
	CHECK_INT_EQ(send1(w->sa, w->a1, "r2", 2, 0), 2);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, 2 * RECORD_WIRELEN(2));
	put(w->b2, m + RECORD_WIRELEN(2), RECORD_WIRELEN(2));
	put(w->b2, m, RECORD_WIRELEN(2));
	memset(buf, 0, sizeof(buf));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(count_nonzero(buf, sizeof(buf)), 0);
	wire_free(w);

	/* a responder record reflected back to the responder */
	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(send1(w->sb, w->b1, "mirror", 6, 0), 6);
	n = grab(w->b2, m, sizeof(m));
	put(w->b2, m, (size_t)n);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	wire_free(w);
}

static void
test_wrong_key(void)
{
	struct wire *w = wire_new();
	uint8_t m[256];
	int ra, rb, i;

	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 1, -1);
	wire_sessions(w);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(rb, -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	CHECK_INT_EQ(ra, -EAGAIN);      /* still waiting for message 2 */
	CHECK_INT_EQ(session_state(w->sa), SESSION_HS_WAIT2);
	/* the dead responder sent nothing */
	CHECK_INT_EQ(grab(w->b2, m, sizeof(m)), 0);
	session_close_last(w->sb, w->b1);
	xclose(&w->b1);
	for (i = 0; i < 5; i++)
		pump(w);
	CHECK(w->ba.seen == 0);
	CHECK_INT_EQ(session_handshake(w->sa, w->a1, false), -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sa), SESSION_DEAD);
	{
		uint8_t buf[8];

		CHECK_INT_EQ(recv1(w->sa, w->a1, buf, sizeof(buf), 0),
		    -ECONNRESET);
	}
	wire_free(w);

	/* rotation: the responder accepts either of two keys */
	w = wire_new();
	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 2, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 1, 2);
	wire_sessions(w);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(ra, 0);
	CHECK_INT_EQ(rb, 0);
	CHECK_INT_EQ(send1(w->sa, w->a1, "rot", 3, 0), 3);
	pump(w);
	memset(m, 0, 4);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, m, 3), 3);
	CHECK_MEM_EQ(m, "rot", 3);
	wire_free(w);

	/* ... and the first of two */
	w = wire_new();
	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 1, 2);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 1, 2);
	wire_sessions(w);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(ra, 0);
	CHECK_INT_EQ(rb, 0);
	wire_free(w);

	/* neither of two */
	w = wire_new();
	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 1, 2);
	wire_sessions(w);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(rb, -ECONNRESET);
	wire_free(w);
}

/* Deliver message 1 with byte IDX set to VAL (or the rule's cipher
 * restricted); the responder must fail and send nothing. */
static void
bad_msg1(int idx, int val, enum policy_cipher ic, enum policy_cipher rc)
{
	struct wire *w = wire_new();
	uint8_t m[256];
	ssize_t n;

	rule_make(&w->ri, POLICY_CONNECT, ic, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, rc, 0, -1);
	wire_sessions(w);
	CHECK_INT_EQ(session_handshake(w->sa, w->a1, false), -EAGAIN);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, MSG1_WIRE);
	/* (A random byte may hold VAL already: the message must change.) */
	if (idx >= 0)
		m[idx] = m[idx] == (uint8_t)val ? (uint8_t)(val ^ 1) :
		    (uint8_t)val;
	put(w->b2, m, (size_t)n);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -ECONNRESET);
	CHECK_INT_EQ(session_state(w->sb), SESSION_DEAD);
	CHECK_INT_EQ(grab(w->b2, m, sizeof(m)), 0);
	wire_free(w);
}

static void
test_bad_preface(void)
{
	bad_msg1(0, 'X', POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(3, 'X', POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(4, 2, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(5, 0, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(5, 3, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(6, 1, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(7, 1, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(9, 49, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(8, 1, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(20, 0x55, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	bad_msg1(MSG1_WIRE - 1, 0, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	/* suite 1 changed to 2 in flight: prologue mismatch */
	if (aes_ok)
		bad_msg1(5, 2, POLICY_CIPHER_DEFAULT, POLICY_CIPHER_DEFAULT);
	/* rule restricts the suite */
	if (aes_ok) {
		bad_msg1(-1, 0, POLICY_CIPHER_CHACHAPOLY, POLICY_CIPHER_AESGCM);
		bad_msg1(-1, 0, POLICY_CIPHER_AESGCM, POLICY_CIPHER_CHACHAPOLY);
	}

	/* plaintext client: strict responder fails */
	{
		struct wire *w = wire_new();

		rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
		rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
		wire_sessions(w);
		put(w->b2, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18);
		CHECK_INT_EQ(session_handshake(w->sb, w->b1, false),
		    -ECONNRESET);
		wire_free(w);
	}
	/* message 1 cut short, then the peer closes */
	{
		struct wire *w = wire_new();
		uint8_t m[256];
		ssize_t n;

		rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
		rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
		wire_sessions(w);
		session_handshake(w->sa, w->a1, false);
		n = grab(w->a2, m, sizeof(m));
		put(w->b2, m, (size_t)n - 10);
		CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -EAGAIN);
		xclose(&w->b2);
		CHECK_INT_EQ(session_handshake(w->sb, w->b1, false),
		    -ECONNRESET);
		wire_free(w);
	}
	/* message 2 tampered: the initiator fails */
	{
		struct wire *w = wire_new();
		uint8_t m[256];
		ssize_t n;

		rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
		rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
		wire_sessions(w);
		session_handshake(w->sa, w->a1, false);
		pump(w);
		CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), 0);
		n = grab(w->b2, m, sizeof(m));
		CHECK_INT_EQ(n, MSG2_WIRE);
		m[30] ^= 4;
		put(w->a2, m, (size_t)n);
		CHECK_INT_EQ(session_handshake(w->sa, w->a1, false),
		    -ECONNRESET);
		CHECK_INT_EQ(grab(w->a2, m, sizeof(m)), 0);
		wire_free(w);
	}
	/* message 2 with a bad length */
	{
		struct wire *w = wire_new();
		uint8_t m[256];
		ssize_t n;

		rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
		rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
		wire_sessions(w);
		session_handshake(w->sa, w->a1, false);
		pump(w);
		CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), 0);
		n = grab(w->b2, m, sizeof(m));
		m[1] = 47;
		put(w->a2, m, (size_t)n);
		CHECK_INT_EQ(session_handshake(w->sa, w->a1, false),
		    -ECONNRESET);
		wire_free(w);
	}
}

/* LEN bytes sealed by A, in B's kernel buffer, no session of B involved. */
static void
deliver(struct wire *w, const uint8_t *data, size_t len)
{
	uint8_t m[1024];
	ssize_t n;

	CHECK_INT_EQ(send1(w->sa, w->a1, data, len, 0), (ssize_t)len);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, (ssize_t)RECORD_WIRELEN(len));
	if (n > 0)
		put(w->b2, m, (size_t)n);
}

/*
 * Short reads and edges.  A read that returns less than asked tells an
 * edge-triggered program that nothing more is there, so nothing may be left
 * in the kernel whose edge was already taken.  After a pull that drained
 * the kernel, a read does not ask the kernel again (that recv() would fail
 * with EAGAIN on every read of an event-driven program): data that came
 * later raises an edge of its own.  Once the poll path took an edge without
 * pulling (a whole record was already buffered), the read must look.
 */
static void
test_short_read_edges(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t a[100], b[200], buf[1000];

	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));

	/* A arrives and the poll path pulls it: the kernel is drained. */
	deliver(w, a, sizeof(a));
	CHECK(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN);
	/* B arrives later, before the read, and no edge has been taken for
	 * it: the kernel holds it, so TCP's read would return both, and so
	 * must ours (a short read here is what ready_diff caught). */
	deliver(w, b, sizeof(b));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 300);
	CHECK_MEM_EQ(buf, a, 100);
	CHECK_MEM_EQ(buf + 100, b, 200);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -EAGAIN);

	/* A again, pulled by the poll path; then B, whose edge the poll path
	 * takes while A is still buffered (so it does not pull): one read
	 * must return both. */
	deliver(w, a, sizeof(a));
	CHECK(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN);
	deliver(w, b, sizeof(b));
	CHECK(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 300);
	CHECK_MEM_EQ(buf, a, 100);
	CHECK_MEM_EQ(buf + 100, b, 200);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -EAGAIN);

	/* A read made the last pull (no poll path involved): the next short
	 * read still looks, and takes B with the rest of A. */
	deliver(w, a, sizeof(a));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 40, 0), 40);
	deliver(w, b, sizeof(b));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf + 40, sizeof(buf) - 40, 0), 260);
	CHECK_MEM_EQ(buf, a, 100);
	CHECK_MEM_EQ(buf + 100, b, 200);
	wire_free(w);
}

/*
 * MSG_PEEK returns all that is there up to the buffer's size, as TCP's peek
 * does, not one record's worth: records already buffered, records still in
 * the kernel, and plaintext a read left over (ready_diff found peeks that
 * stopped at the first record).
 */
static void
test_peek_records(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t a[100], b[200], c[50], buf[1000], ab[350];
	struct iovec iov[3] = { { buf, 7 }, { buf + 100, 250 },
	    { buf + 400, 500 } };

	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	randombytes_buf(c, sizeof(c));
	memcpy(ab, a, 100);
	memcpy(ab + 100, b, 200);
	memcpy(ab + 300, c, 50);

	/* A pulled by the poll path, B still in the kernel */
	deliver(w, a, sizeof(a));
	CHECK(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN);
	deliver(w, b, sizeof(b));
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), 300);
	CHECK_MEM_EQ(buf, ab, 300);
	/* both buffered now; a peek smaller than both, then C too */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 150, MSG_PEEK), 150);
	CHECK_MEM_EQ(buf, ab, 150);
	deliver(w, c, sizeof(c));
	CHECK_INT_EQ(session_recv(w->sb, w->b1, iov, 3, MSG_PEEK), 350);
	CHECK_MEM_EQ(buf, ab, 7);
	CHECK_MEM_EQ(buf + 100, ab + 7, 250);
	CHECK_MEM_EQ(buf + 400, ab + 257, 93);
	CHECK_INT_EQ(w->sb->bytes_in, 0);
	/* a read leaves part behind; a peek sees the rest, a read takes it */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 120, 0), 120);
	CHECK_MEM_EQ(buf, ab, 120);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), 230);
	CHECK_MEM_EQ(buf, ab + 120, 230);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 230);
	CHECK_MEM_EQ(buf, ab + 120, 230);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), -EAGAIN);
	CHECK_INT_EQ(w->sb->bytes_in, 350);
	wire_free(w);
}

/*
 * FIONREAD counts every whole record, also when a read left the rest of a
 * big record in place early in the buffer (it pinned the buffer, and the
 * records behind that did not fit went uncounted: ready_diff).
 */
static void
test_inq_pinned(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	static uint8_t data[65519], buf[65536];
	size_t sizes[] = { 60000, 65519, 65519, 10000 };
	int i, j;

	randombytes_buf(data, sizeof(data));
	CHECK_INT_EQ(send1(w->sa, w->a1, data, sizes[0], 0), (ssize_t)sizes[0]);
	for (j = 0; j < 4; j++)
		pump(w);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 50000, 0), 50000);
	for (i = 1; i < 4; i++) {
		CHECK_INT_EQ(send1(w->sa, w->a1, data, sizes[i], 0),
		    (ssize_t)sizes[i]);
		for (j = 0; j < 4; j++)
			pump(w);
	}
	CHECK_INT_EQ(session_inq(w->sb, w->b1), 10000 + 65519 * 2 + 10000);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 65536);
	CHECK_MEM_EQ(buf, data + 50000, 10000);
	CHECK_MEM_EQ(buf + 10000, data, 55536);
	CHECK_INT_EQ(session_inq(w->sb, w->b1), 151038 - 65536);
	wire_free(w);
}

/*
 * A write whose records the kernel refuses (the peer reset the connection:
 * EPIPE) fails, as on TCP: it did report the bytes as written while the
 * session died with them unsent (found by ready_diff: peer close, our
 * write, the peer's reset, our next write).  And what had arrived before
 * is still read: the failed write killed the session and dropped it.
 */
static void
test_send_error(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t data[1228];

	randombytes_buf(data, sizeof(data));
	CHECK_INT_EQ(send1(w->sa, w->a1, data, 100, MSG_NOSIGNAL), 100);
	/* B's bytes reach A's socket, unread */
	CHECK_INT_EQ(send1(w->sb, w->b1, "before", 6, 0), 6);
	pump(w);
	/* the far end of the initiator's wire goes away */
	xclose(&w->a2);
	w->ab.from = w->ba.to = -1;
	CHECK_INT_EQ(send1(w->sa, w->a1, data, sizeof(data), MSG_NOSIGNAL),
	    -EPIPE);
	CHECK_INT_EQ(w->sa->bytes_out, 100);
	CHECK_INT_EQ(send1(w->sa, w->a1, data, 10, MSG_NOSIGNAL), -EPIPE);
	/* what arrived before the reset is still read, as on TCP; then the
	 * end without a mark is a truncation */
	CHECK_INT_EQ(recv1(w->sa, w->a1, data, sizeof(data), 0), 6);
	CHECK_MEM_EQ(data, "before", 6);
	CHECK_INT_EQ(recv1(w->sa, w->a1, data, sizeof(data), 0), -ECONNRESET);
	wire_free(w);
}

/* Readiness: half a record is not readable, a whole one is. */
static void
test_poll(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t data[1000], m[2048], buf[1000];
	short kev, ev;
	ssize_t n;

	randombytes_buf(data, sizeof(data));
	kev = 0;
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), 0);
	CHECK(kev & POLLIN);
	CHECK_INT_EQ(send1(w->sa, w->a1, data, sizeof(data), 0), 1000);
	n = grab(w->a2, m, sizeof(m));
	CHECK_INT_EQ(n, RECORD_WIRELEN(1000));
	put(w->b2, m, 500);
	/* the kernel says readable; the session reads the half: not ready */
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN,
	    0);
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), 0);
	CHECK(kev & POLLIN);
	/* and a read agrees */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -EAGAIN);
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN,
	    0);
	/* one byte short */
	put(w->b2, m + 500, (size_t)n - 501);
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLIN, POLLIN) & POLLIN,
	    0);
	put(w->b2, m + n - 1, 1);
	ev = session_poll_after(w->sb, w->b1, POLLIN, POLLIN);
	CHECK_INT_EQ(ev & (POLLIN | POLLERR), POLLIN);
	/* now buffered: prep alone says readable, kernel not asked */
	kev = 0;
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), POLLIN);
	CHECK_INT_EQ(kev & POLLIN, 0);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, 10, 0), 10);
	/* decrypted plaintext still waiting counts as readable */
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), POLLIN);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf + 10, sizeof(buf) - 10, 0), 990);
	CHECK_MEM_EQ(buf, data, 1000);
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), 0);
	/* writability comes from the kernel */
	kev = 0;
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLOUT, &kev), 0);
	CHECK(kev & POLLOUT);
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLOUT, POLLOUT) &
	    POLLOUT, POLLOUT);
	/* kernel EOF without the mark: readable (the read reports it) */
	xclose(&w->b2);
	ev = session_poll_after(w->sb, w->b1, POLLIN, POLLIN | POLLHUP);
	CHECK(ev & POLLIN);
	/* the read that finds the truncation returns its error: failed, no
	 * longer pending (POLLERR), hung up, as TCP's after a reset */
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev) &
	    (POLLIN | POLLERR | POLLHUP), POLLIN | POLLHUP);
	CHECK_INT_EQ(session_so_error(w->sb, w->b1), 0);
	wire_free(w);

	/* during the handshake: readiness drives it */
	w = wire_new();
	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	wire_sessions(w);
	kev = 0;
	CHECK_INT_EQ(session_poll_prep(w->sa, POLLOUT, &kev), 0);
	CHECK(kev & POLLOUT);
	CHECK_INT_EQ(session_poll_after(w->sa, w->a1, POLLOUT, POLLOUT), 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_HS_WAIT2);
	kev = 0;
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLIN, &kev), 0);
	CHECK(kev & POLLIN);
	pump(w);
	ev = session_poll_after(w->sb, w->b1, POLLIN | POLLOUT, POLLIN);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	CHECK_INT_EQ(ev & POLLIN, 0);   /* no data yet */
	pump(w);
	ev = session_poll_after(w->sa, w->a1, POLLOUT, POLLIN);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	CHECK_INT_EQ(ev & POLLOUT, POLLOUT);
	wire_free(w);
}

/* close and exit send the end-of-stream mark; exit only on the same socket */
static void
test_close_exit(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t buf[64], m[64];
	int p[2];
	ssize_t n;

	CHECK_INT_EQ(send1(w->sa, w->a1, "bye", 3, 0), 3);
	session_close_last(w->sa, w->a1);
	xclose(&w->a1);
	pump(w);
	pump(w);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, buf, 3), 3);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	wire_free(w);

	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(send1(w->sa, w->a1, "exit", 4, 0), 4);
	session_exit(w->sa, w->a1);
	xclose(&w->a1);
	pump(w);
	pump(w);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, buf, 4), 4);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	wire_free(w);

	/* the fd number now names another socket: exit must not write there */
	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p), 0);
	CHECK_INT_EQ(dup2(p[0], w->a1), w->a1);
	session_exit(w->sa, w->a1);
	n = grab(p[1], m, sizeof(m));
	CHECK_INT_EQ(n, 0);
	close(p[0]);
	close(p[1]);
	pump(w);
	pump(w);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	wire_free(w);
}

/*
 * After shutdown(SHUT_RD), TCP's reads return what is queued and what
 * arrives later, and 0 without waiting when nothing is there; a peek
 * likewise (ready_diff: reads returned 0 with data waiting); poll says
 * POLLRDHUP.
 */
static void
test_shutdown_rd(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t buf[64];
	short kev;

	CHECK_INT_EQ(send1(w->sa, w->a1, "queued", 6, 0), 6);
	pump(w);
	CHECK_INT_EQ(session_shutdown(w->sb, w->b1, SHUT_RD, false), 0);
	/* readable, and RDHUP as on TCP (RCV_SHUTDOWN) */
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLIN | POLLRDHUP,
	    POLLIN) & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), 6);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 6);
	CHECK_MEM_EQ(buf, "queued", 6);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), MSG_PEEK), 0);
	CHECK_INT_EQ(send1(w->sa, w->a1, "late", 4, 0), 4);
	pump(w);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 4);
	CHECK_MEM_EQ(buf, "late", 4);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	/* Not hung up while it may still write; both ways shut: POLLHUP,
	 * as TCP's SHUTDOWN_MASK (ready_diff: HUP missing after SHUT_RDWR). */
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLOUT, &kev) & POLLHUP, 0);
	CHECK_INT_EQ(session_shutdown(w->sb, w->b1, SHUT_WR, false), 0);
	CHECK_INT_EQ(session_poll_prep(w->sb, POLLOUT, &kev) & POLLHUP, POLLHUP);
	CHECK_INT_EQ(session_poll_after(w->sb, w->b1, POLLIN, 0) & POLLHUP,
	    POLLHUP);
	wire_free(w);
}

/*
 * Closing with data unread is a reset on TCP, not a clean end: no
 * end-of-stream mark goes out, so the peer's read ends in ECONNRESET
 * (ready_diff: the peer saw a clean EOF).  The peer's mark alone is not
 * unread data: that close stays clean.
 */
static void
test_close_unread(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	uint8_t buf[64];
	int i;

	CHECK_INT_EQ(send1(w->sa, w->a1, "sent", 4, 0), 4);
	CHECK_INT_EQ(send1(w->sb, w->b1, "unread", 6, 0), 6);
	pump(w);
	session_close_last(w->sa, w->a1);
	xclose(&w->a1);
	for (i = 0; i < 4; i++)
		pump(w);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, buf, 4), 4);
	CHECK_MEM_EQ(buf, "sent", 4);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -ECONNRESET);
	wire_free(w);

	w = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(session_shutdown(w->sb, w->b1, SHUT_WR, false), 0);
	pump(w);
	CHECK_INT_EQ(send1(w->sa, w->a1, "bye", 3, 0), 3);
	session_close_last(w->sa, w->a1);
	xclose(&w->a1);
	for (i = 0; i < 4; i++)
		pump(w);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, buf, 3), 3);
	CHECK_MEM_EQ(buf, "bye", 3);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	wire_free(w);
}

/*
 * Regression candidates (see the report of branch sesstest):
 *
 * 1. Message 2 could not be written at once (send buffer full: EAGAIN), the
 *    responder is OPEN with message 2 queued, and the program then only
 *    reads / polls for POLLIN.  Nothing on the receive path or in the
 *    POLLIN readiness path flushes the queue, so the initiator never gets
 *    message 2 and both sides wait until the handshake timeout.
 */
static void
test_msg2_queued_then_read(void)
{
	struct wire *w = wire_new();
	uint8_t junk[4096], m[256], buf[16];
	size_t filled = 0;
	ssize_t n;
	short kev, ev;
	int i, ra = -EAGAIN;

	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, 0, -1);
	wire_sessions(w);
	memset(junk, 0, sizeof(junk));
	/* fill B1's send buffer with bytes the test will throw away */
	while ((n = write(w->b1, junk, sizeof(junk))) > 0)
		filled += (size_t)n;
	CHECK(filled > 0);
	CHECK_INT_EQ(session_handshake(w->sa, w->a1, false), -EAGAIN);
	n = grab(w->a2, m, sizeof(m));
	put(w->b2, m, (size_t)n);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), 0);
	CHECK(w->sb->toff < w->sb->tend);       /* message 2 queued */
	/* discard the filler: the kernel now has room */
	while (filled > 0 && (n = read(w->b2, junk, sizeof(junk))) > 0)
		filled -= (size_t)n;
	CHECK_INT_EQ(filled, 0);
	/* the program reads, and polls for POLLIN, as a server does */
	for (i = 0; i < 20 && ra == -EAGAIN; i++) {
		CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), -EAGAIN);
		kev = 0;
		ev = session_poll_prep(w->sb, POLLIN, &kev);
		(void)ev;
		{
			struct pollfd p = { .fd = w->b1, .events = kev };

			p.revents = 0;
			poll(&p, 1, 0);
			session_poll_after(w->sb, w->b1, POLLIN, p.revents);
		}
		pump(w);
		ra = session_handshake(w->sa, w->a1, false);
	}
	CHECK_INT_EQ(ra, 0);    /* FAILS: message 2 never leaves B1 */
	wire_free(w);
}

/*
 * 2. shutdown(SHUT_WR) could not flush before its deadline (-ETIMEDOUT):
 *    tx_shut is set and data + mark stay queued.  close() flushes them
 *    (session_close_last), but process exit (session_exit) only flushes when
 *    !tx_shut, so a program that exits without close() loses the queued
 *    records and its peer sees a truncation.
 */
static void
test_exit_after_timed_out_shutdown(void)
{
	struct wire *w = open_pair(POLICY_CIPHER_DEFAULT);
	size_t len = 1 << 20, sent = 0, got = 0;
	uint8_t *data = malloc(len), *out = malloc(len), buf[16];
	ssize_t n;
	int i;

	randombytes_buf(data, len);
	w->ri.timeout_ms = 50;  /* bounds shutdown's flush */
	/* fill the wire without relaying */
	for (i = 0; i < 1000 && sent < len; i++) {
		n = send1(w->sa, w->a1, data + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	CHECK(sent > 0 && sent < len);
	session_shutdown(w->sa, w->a1, SHUT_WR, false);
	CHECK(w->sa->tx_shut);
	CHECK(w->sa->toff < w->sa->tend);
	/* exit with the socket still open; a relay thread drains meanwhile */
	{
		struct relay rl;

		relay_start(&rl, w);
		session_exit(w->sa, w->a1);
		relay_stop(&rl);
	}
	xclose(&w->a1);
	for (i = 0; i < 100000 && got < sent; i++) {
		n = recv1(w->sb, w->b1, out + got, sent - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n == -EAGAIN)
			pump(w);
		else
			break;
	}
	CHECK_INT_EQ(got, sent);        /* FAILS: the tail is lost */
	CHECK_MEM_EQ(out, data, got);
	pump(w);
	CHECK_INT_EQ(recv1(w->sb, w->b1, buf, sizeof(buf), 0), 0);
	free(data);
	free(out);
	wire_free(w);
}

/* More than 65536 records one way: both ends rekey and data still flows. */
static void
test_rekey(enum policy_cipher c, size_t count)
{
	static const size_t one[] = { 1 };
	static const size_t big[] = { 1 << 20 };
	struct wire *w = open_pair(c);
	uint8_t *data = malloc(count), *out = calloc(1, count);
	uint8_t k0[NOISE_KEYLEN], buf[64];
	size_t got;

	randombytes_buf(data, count);
	memcpy(k0, w->sa->tx.k, sizeof(k0));
	got = xfer(w, w->sa, w->a1, w->sb, w->b1, data, out, count,
	    one, 1, 1, 128, big, 1);
	CHECK_INT_EQ(got, count);
	CHECK_MEM_EQ(out, data, count);
	CHECK_INT_EQ(w->sa->tx.n, count);
	CHECK_INT_EQ(w->sb->rx.n, count);
	CHECK(memcmp(k0, w->sa->tx.k, sizeof(k0)) != 0);
	CHECK_MEM_EQ(w->sa->tx.k, w->sb->rx.k, NOISE_KEYLEN);
	/* and a big record after the rekey, plus the other direction */
	CHECK_INT_EQ(send1(w->sa, w->a1, "after", 5, 0), 5);
	CHECK_INT_EQ(send1(w->sb, w->b1, "back", 4, 0), 4);
	pump(w);
	CHECK_INT_EQ(recv_all(w, w->sb, w->b1, buf, 5), 5);
	CHECK_MEM_EQ(buf, "after", 5);
	CHECK_INT_EQ(recv_all(w, w->sa, w->a1, buf, 4), 4);
	CHECK_MEM_EQ(buf, "back", 4);
	free(data);
	free(out);
	wire_free(w);
}

/* A wire whose sessions are new: the responder takes key RKEY and gives
 * up after TIMEOUT ms. */
static struct wire *
hs_wire(int rkey, int timeout)
{
	struct wire *w = wire_new();

	rule_make(&w->ri, POLICY_CONNECT, POLICY_CIPHER_DEFAULT, 0, -1);
	rule_make(&w->rr, POLICY_ACCEPT, POLICY_CIPHER_DEFAULT, rkey, -1);
	w->rr.timeout_ms = timeout;
	wire_sessions(w);
	return w;
}

/*
 * Handshakes in flight: each way a handshake ends (open, failed, timed
 * out, fd closed, fork) takes it off the count exactly once, and beyond
 * SOCKSEAL_MAX_HANDSHAKES a new session is born dead.
 */
static void
test_handshake_count(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int base = session_handshakes(), ra, rb, st;
	struct session *extra[2];
	struct wire *w, *w2;
	pid_t pid;

	/* completed */
	w = hs_wire(0, 5000);
	CHECK_INT_EQ(session_handshakes(), base + 2);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(ra, 0);
	CHECK_INT_EQ(session_handshakes(), base);
	wire_free(w);
	CHECK_INT_EQ(session_handshakes(), base);

	/* failed (wrong key), then the waiting initiator dropped unfinished */
	w = hs_wire(1, 5000);
	handshake_nb(w, &ra, &rb);
	CHECK_INT_EQ(rb, -ECONNRESET);
	CHECK_INT_EQ(session_handshakes(), base + 1);
	wire_free(w);
	CHECK_INT_EQ(session_handshakes(), base);

	/* timed out */
	w = hs_wire(0, 1);
	usleep(5000);
	CHECK_INT_EQ(session_handshake(w->sb, w->b1, false), -ECONNRESET);
	CHECK_INT_EQ(session_handshakes(), base + 1);
	session_ref(w->sa);             /* a second reference: still counted */
	session_put(w->sa);
	CHECK_INT_EQ(session_handshakes(), base + 1);
	wire_free(w);
	CHECK_INT_EQ(session_handshakes(), base);

	/* fork: the child counts what it holds, and ends it on its own */
	w = hs_wire(0, 5000);
	w2 = open_pair(POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(session_handshakes(), base + 2);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		session_cache_forked();
		session_forked(w->sa);
		session_forked(w->sb);
		session_forked(w2->sa);
		session_forked(w2->sb);
		st = session_handshakes() == 2;
		handshake_nb(w, &ra, &rb);
		st = st && ra == 0 && rb == 0 && session_handshakes() == 0;
		_exit(st ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The child opened them: this process's count drops on next use. */
	CHECK_INT_EQ(session_handshakes(), base + 2);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	CHECK_INT_EQ(recv1(w->sa, w->a1, &st, 1, MSG_DONTWAIT), -EAGAIN);
	CHECK_INT_EQ(session_handshakes(), base + 1);
	wire_free(w);
	wire_free(w2);
	CHECK_INT_EQ(session_handshakes(), base);

	/* the bound */
	setenv("SOCKSEAL_MAX_HANDSHAKES", "3", 1);
	session_init();
	CHECK_INT_EQ(session_max_handshakes(), 3);
	w = hs_wire(0, 5000);
	w2 = hs_wire(0, 5000);
	CHECK_INT_EQ(session_handshakes(), base + 3);
	CHECK(session_state(w2->sa) == SESSION_HS_SEND1);
	CHECK_INT_EQ(session_state(w2->sb), SESSION_DEAD);
	CHECK_INT_EQ(recv1(w2->sb, w2->b1, &st, 1, 0), -ECONNRESET);
	/* one ends: room for one more */
	session_put(w->sb);
	w->sb = NULL;
	CHECK_INT_EQ(session_handshakes(), base + 2);
	extra[0] = session_new(w->b1, &w->rr, false, (struct sockaddr *)&sin);
	extra[1] = session_new(w->b1, &w->rr, false, (struct sockaddr *)&sin);
	CHECK(extra[0] != NULL && extra[1] != NULL);
	CHECK_INT_EQ(session_state(extra[0]), SESSION_HS_WAIT1);
	CHECK_INT_EQ(session_state(extra[1]), SESSION_DEAD);
	session_put(extra[0]);
	session_put(extra[1]);
	wire_free(w);
	wire_free(w2);
	CHECK_INT_EQ(session_handshakes(), base);
	/* 0: no bound; junk: the value stays */
	setenv("SOCKSEAL_MAX_HANDSHAKES", "0", 1);
	session_init();
	setenv("SOCKSEAL_MAX_HANDSHAKES", "12x", 1);
	session_init();
	CHECK_INT_EQ(session_max_handshakes(), 0);
	w = hs_wire(0, 5000);
	w2 = hs_wire(0, 5000);
	CHECK_INT_EQ(session_state(w2->sb), SESSION_HS_WAIT1);
	wire_free(w);
	wire_free(w2);
	CHECK_INT_EQ(session_handshakes(), base);
	unsetenv("SOCKSEAL_MAX_HANDSHAKES");
}

int
main(void)
{
	const char *v = getenv("TEST_VERBOSE");

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	log_level = v && *v == '1' ? LOG_DEBUG : LOG_ERROR - 1;
	keys_init();
	aes_ok = noise_suite_available(NOISE_AESGCM);
	if (!aes_ok)
		printf("test_session: AES-256-GCM unavailable here, aesgcm "
		    "cases skipped\n");

	test_handshake_wire(POLICY_CIPHER_CHACHAPOLY);
	if (aes_ok)
		test_handshake_wire(POLICY_CIPHER_AESGCM);
	test_handshake_blocking(POLICY_CIPHER_CHACHAPOLY);
	if (aes_ok)
		test_handshake_blocking(POLICY_CIPHER_AESGCM);
	test_handshake_timeout();
	test_data(POLICY_CIPHER_CHACHAPOLY);
	if (aes_ok)
		test_data(POLICY_CIPHER_AESGCM);
	test_peek_short();
	test_splice_paths();
	test_shutdown_eof();
	test_truncation();
	test_tamper();
	test_replay();
	test_wrong_key();
	test_bad_preface();
	test_poll();
	test_short_read_edges();
	test_peek_records();
	test_send_error();
	test_inq_pinned();
	test_close_exit();
	test_close_unread();
	test_shutdown_rd();
	test_msg2_queued_then_read();
	test_exit_after_timed_out_shutdown();
	test_handshake_count();
	CHECK_INT_EQ(session_handshakes(), 0);
	test_rekey(POLICY_CIPHER_CHACHAPOLY, 70000);
	if (aes_ok)
		test_rekey(POLICY_CIPHER_AESGCM, 70000);
	CHECK_DONE();
}
