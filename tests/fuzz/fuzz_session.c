/*
 * fuzz_session: one sealed session against a peer made of fuzz input (see
 * fuzz_session.h for the input format).
 *
 *   session (shim/session.c) on SFD  <-- AF_UNIX socketpair -->  PFD: peer
 *
 * Both ends are non-blocking and the harness is single-threaded, so no call
 * ever waits: the session's handshake advances from session_handshake(..,
 * false), session_recv() and the readiness calls, as in a non-blocking
 * program.  The peer's writes drain the session when the socket is full.
 *
 * Op mode (bit 0 of the first byte): the peer is built from noise.c and
 * record.c with the fixed key and fixed ephemerals, completes a real
 * handshake and then runs one operation per input byte (low 3 bits; the
 * other bits and following bytes are its arguments):
 *
 *   0  junk: the next N bytes of input go on the wire unauthenticated
 *   1  seal a generated record of a given length (0: end-of-stream mark)
 *   2  seal a record whose plaintext is the next N bytes of input
 *   3  session_recv() with a size, MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL, 1-2 iovecs
 *   4  session_send() of a generated stream; the peer opens and checks it
 *   5  session_shutdown(SHUT_RD / SHUT_WR / SHUT_RDWR)
 *   6  readiness: session_poll_prep/after, session_inq and SO_ERROR,
 *      checked by a read
 *   7  a tampered record, a replayed record, or the peer's TCP end
 *
 * The oracle: every byte the session delivers is the next byte of what the
 * peer sealed (authenticated data only, in order, nothing after the mark;
 * bytes sent as junk that happen to be the peer's next records under its
 * keys count as sealed, see feed_unsealed);
 * a read returns 0 only after the mark or SHUT_RD; without junk, all of it
 * arrives and the stream ends as the peer ended it; everything the session
 * sends opens with the peer's keys and is the program's stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "noise.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "fuzz.h"
#include "fuzz_session.h"

#define PREFACE_LEN  8
#define HS_MSGLEN    48
#define MSG1_WIRE    (PREFACE_LEN + 2 + HS_MSGLEN)
#define MSG2_WIRE    (2 + HS_MSGLEN)
#define IK1_LEN      96      /* identities: message 1 (e, s, its tag, tag) */
#define IK1_WIRE     (PREFACE_LEN + 2 + IK1_LEN)
#define FZ_MAXSENT   (1 << 20)           /* peer plaintext kept for the oracle */
#define FZ_INBUF     (4 * RECORD_MAXWIRE)
#define FZ_TRACE     24                  /* operations fz_report shows */

/* Test keys and ephemerals: constants, not secrets. */
static const uint8_t fz_key[NOISE_KEYLEN] = "sockseal fuzz key (not secret).";
static const uint8_t fz_wrong[NOISE_KEYLEN] = "sockseal fuzz, some other key..";
static const uint8_t fz_e_init[NOISE_DHLEN] = "fuzz initiator ephemeral secret";
static const uint8_t fz_e_resp[NOISE_DHLEN] = "fuzz responder ephemeral secret";
/* Identity mode (fuzz_session_init(.., true)): static keys. */
static const uint8_t fz_s_sess[NOISE_DHLEN] = "fuzz: the session's own identity";
static const uint8_t fz_s_peer[NOISE_DHLEN] = "fuzz: the peer's identity, fixed";
static const uint8_t fz_s_other[NOISE_DHLEN] = "fuzz: an identity nobody expects";
static const uint8_t fz_zero[NOISE_KEYLEN];
static uint8_t fz_pk_sess[NOISE_DHLEN], fz_pk_peer[NOISE_DHLEN];
static uint8_t fz_pk_other[NOISE_DHLEN];
static bool fz_ik;

struct fz {
	bool     initiator, opmode;
	int      sfd, pfd;
	struct session *s;
	struct policy_rule rule;
	struct policy_key keys[2];
	struct policy_identity ids[2];  /* identity mode */
	struct policy_peer peer;
	const struct policy_peer *peers[1];
	int      suite;                 /* what the initiating side proposes */

	const uint8_t *in;              /* input cursor */
	size_t   left;

	/* peer -> session */
	bool     peer_open;
	struct noise_cipher ptx, prx;
	size_t   sent_len, got;         /* plaintext sealed (fz_sent), delivered */
	bool     junk;                  /* unauthenticated bytes went out */
	bool     lost;                  /* the wire refused bytes */
	bool     eos;                   /* the peer sealed its mark ... */
	size_t   eos_at;                /* ... after this much plaintext */
	bool     tcp_end;               /* the peer shut its write side */
	bool     rd_shut;               /* the program did SHUT_RD */
	size_t   last_len;              /* the last sealed record (fz_last) */
	size_t   wire_len;              /* unsealed bytes since a boundary */
	bool     wire_bad;              /* ... held a record that fails */

	/* session -> peer */
	size_t   inlen;                 /* ciphertext in fz_inbuf */
	uint64_t tx_sent, tx_seen;      /* plaintext accepted / opened */
	bool     tx_eos;

	/* the last operations, for fz_report */
	uint8_t  ops[FZ_TRACE];
	unsigned int nops;
};

static struct fz fz_state;
static uint8_t fz_rbuf[2 * RECORD_MAXPT];       /* program's buffers */
static uint8_t fz_sent[FZ_MAXSENT];             /* plaintext the peer sealed */
static uint8_t fz_last[RECORD_MAXWIRE];         /* to replay */
static uint8_t fz_wire[2 * RECORD_MAXWIRE];     /* see feed_unsealed */
static uint8_t fz_inbuf[FZ_INBUF];              /* from the session */

/*
 * Generated streams: the program's outgoing stream at offset O is
 * PATTERN + O % PATTERN_PERIOD, so it is written and checked with memcpy
 * and memcmp (byte loops cost too much under coverage instrumentation).
 */
#define PATTERN_PERIOD 251
static uint8_t pattern[PATTERN_PERIOD + 2 * RECORD_MAXPT];

/* Transcript of peer -> session bytes, for seed generation. */
static uint8_t *fz_rec;
static size_t fz_rec_len, fz_rec_cap;

/* ------------------------------------------------------ deterministic RNG */

static uint64_t rng_ctr;

static void
rng_buf(void *buf, size_t n)
{
	uint8_t seed[randombytes_SEEDBYTES] = { 0 };

	memcpy(seed, &rng_ctr, sizeof(rng_ctr));
	rng_ctr++;
	randombytes_buf_deterministic(buf, n, seed);
}

static uint32_t
rng_random(void)
{
	uint32_t v;

	rng_buf(&v, sizeof(v));
	return v;
}

static const char *
rng_name(void)
{
	return "fuzz-deterministic";
}

static struct randombytes_implementation rng_impl = {
	.implementation_name = rng_name,
	.random = rng_random,
	.buf = rng_buf,
};

static int fuzz_session_seeds(const char *dir, bool initiator);

void
fuzz_session_init(bool initiator, bool identity)
{
	const char *v = getenv("SOCKSEAL_LOG"), *dir;
	char logerr[128];
	size_t i;
	int r;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i % PATTERN_PERIOD * 13 + 5);
	randombytes_set_implementation(&rng_impl);
	if (sodium_init() < 0)
		abort();
	fz_ik = identity;
	crypto_scalarmult_base(fz_pk_sess, fz_s_sess);
	crypto_scalarmult_base(fz_pk_peer, fz_s_peer);
	crypto_scalarmult_base(fz_pk_other, fz_s_other);
	if (log_init(logerr, sizeof(logerr)) < 0) {
		fprintf(stderr, "fuzz_session: %s\n", logerr);
		abort();
	}
	if (v == NULL)
		log_level = LOG_ERROR - 1;      /* quiet: failures are expected */
	if ((dir = getenv("FUZZ_WRITE_SEEDS")) != NULL) {
		if ((r = fuzz_session_seeds(dir, initiator)) < 0) {
			fprintf(stderr, "%s: %s\n", dir, strerror(-r));
			exit(1);
		}
		exit(0);
	}
}

/* ------------------------------------------------------------ helpers */

static size_t
take(struct fz *f, size_t n, const uint8_t **p)
{
	if (n > f->left)
		n = f->left;
	*p = f->in;
	f->in += n;
	f->left -= n;
	return n;
}

static unsigned int
take8(struct fz *f)
{
	const uint8_t *p;

	return take(f, 1, &p) == 1 ? p[0] : 0;
}

static unsigned int
take16(struct fz *f)
{
	unsigned int hi = take8(f);

	return hi << 8 | take8(f);
}

static const uint8_t *
tx_pat(uint64_t o)
{
	return pattern + o % PATTERN_PERIOD;
}

/* ------------------------------------------------------------ reading */

/*
 * Before an invariant about delivered bytes aborts: what the harness knew
 * and the last operations, so that a failure seen once (CI) can be read
 * without its input.
 */
static void
fz_report(const struct fz *f, const char *what, ssize_t n, size_t cap,
    int flags, int niov)
{
	unsigned int i, k;

	fprintf(stderr, "fuzz_session: %s: n=%zd cap=%zu flags=0x%x niov=%d "
	    "got=%zu sent_len=%zu eos=%d eos_at=%zu junk=%d lost=%d "
	    "tcp_end=%d rd_shut=%d state=%d suite=%d initiator=%d\n", what, n,
	    cap, flags, niov, f->got, f->sent_len, f->eos, f->eos_at, f->junk,
	    f->lost, f->tcp_end, f->rd_shut, (int)session_state(f->s), f->suite,
	    f->initiator);
	fprintf(stderr, "fuzz_session: last operations (oldest first):");
	for (i = 0; i < FZ_TRACE; i++) {
		k = (f->nops + i) % FZ_TRACE;
		if (f->nops + i >= FZ_TRACE)
			fprintf(stderr, " %02x", f->ops[k]);
	}
	fprintf(stderr, "\n");
}

/* A session read into fz_rbuf, checked against what the peer sealed. */
static ssize_t
fz_recv(struct fz *f, size_t cap, int flags, int niov)
{
	struct iovec iov[2];
	ssize_t n;

	if (cap > sizeof(fz_rbuf))
		cap = sizeof(fz_rbuf);
	iov[0].iov_base = fz_rbuf;
	iov[0].iov_len = niov == 2 ? cap / 3 : cap;
	iov[1].iov_base = fz_rbuf + iov[0].iov_len;
	iov[1].iov_len = cap - iov[0].iov_len;
	n = session_recv(f->s, f->sfd, iov, niov, flags);
	FZ_ASSERT(n <= (ssize_t)cap);
	if (!f->opmode || session_state(f->s) == SESSION_PLAIN)
		return n;
	if (n > 0) {
		if (f->got + (size_t)n > f->sent_len)
			fz_report(f, "more delivered than sealed", n, cap, flags,
			    niov);
		FZ_ASSERT(f->got + (size_t)n <= f->sent_len);
		FZ_ASSERT(memcmp(fz_rbuf, fz_sent + f->got, (size_t)n) == 0);
		if (!(flags & MSG_PEEK))
			f->got += (size_t)n;
		FZ_ASSERT(!f->eos || f->got <= f->eos_at);
	} else if (n == 0 && cap > 0) {
		FZ_ASSERT(f->rd_shut || (f->eos && f->got == f->eos_at));
	}
	return n;
}

/* What the session sent: discarded in raw mode, opened and checked once the
 * peer has keys. */
static void
peer_pump(struct fz *f)
{
	size_t wl, off;
	uint8_t *pt;
	size_t ptlen;
	ssize_t n;
	int r;

	for (;;) {
		if (!f->peer_open)
			f->inlen = 0;
		n = read(f->pfd, fz_inbuf + f->inlen, sizeof(fz_inbuf) - f->inlen);
		if (n <= 0)
			return;
		f->inlen += (size_t)n;
		if (!f->peer_open)
			continue;
		for (off = 0; ; off += wl) {
			r = record_peek(fz_inbuf + off, f->inlen - off, &wl);
			FZ_ASSERT(r >= 0);
			if (r == 0)
				break;
			FZ_ASSERT(record_open(&f->prx, fz_inbuf + off, wl, &pt,
			    &ptlen) == 0);
			FZ_ASSERT(!f->tx_eos);
			if (ptlen == 0)
				f->tx_eos = true;
			FZ_ASSERT(memcmp(pt, tx_pat(f->tx_seen), ptlen) == 0);
			f->tx_seen += ptlen;
			FZ_ASSERT(f->tx_seen <= f->tx_sent);
		}
		memmove(fz_inbuf, fz_inbuf + off, f->inlen - off);
		f->inlen -= off;
	}
}

/* Read exactly LEN handshake bytes the session sent. */
static bool
peer_read(struct fz *f, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(f->pfd, buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* One non-blocking step of a program that reads: handshake, then read. */
static void
step(struct fz *f, int flags)
{
	if (session_state(f->s) < SESSION_OPEN)
		(void)session_handshake(f->s, f->sfd, false);
	(void)fz_recv(f, RECORD_MAXPT, flags | MSG_DONTWAIT, 1);
	peer_pump(f);
}

/* ------------------------------------------------------------ writing */

/* Put LEN bytes on the wire, letting the session read when it is full. */
static void
feed(struct fz *f, const uint8_t *buf, size_t len)
{
	int stalls = 0;
	ssize_t n;

	if (fz_rec != NULL) {
		size_t c = len < fz_rec_cap - fz_rec_len ? len :
		    fz_rec_cap - fz_rec_len;

		memcpy(fz_rec + fz_rec_len, buf, c);
		fz_rec_len += c;
	}
	if (f->tcp_end) {
		f->lost = true;
		return;
	}
	while (len > 0) {
		n = write(f->pfd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			stalls = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN) {
			f->lost = true;
			return;
		}
		if (stalls++ > 8) {
			f->lost = true;         /* the session stopped reading */
			return;
		}
		step(f, 0);
	}
}

/* The peer's plaintext PT reached the session authenticated: the oracle's. */
static void
sent_add(struct fz *f, const uint8_t *pt, size_t len)
{
	if (f->eos)
		return;
	memcpy(fz_sent + f->sent_len, pt, len);
	f->sent_len += len;
	if (len == 0) {
		f->eos = true;
		f->eos_at = f->sent_len;
	}
}

/*
 * Bytes the peer puts on the wire that it did not seal as its next record
 * here (junk, a replay, a tampered record, or a record behind an unfinished
 * one).  They are unauthenticated only as far as the session can tell:
 * the keys are the same from run to run (fixed ephemerals, a deterministic
 * RNG), so the fuzzer can splice in a record sealed in another run (the
 * raw-mode seeds are whole transcripts), and when it is the peer's next
 * record under the peer's keys the session rightly delivers it.  So the
 * wire since the last record boundary is kept, and every whole record in
 * it that opens with the peer's sending state counts as sealed, as
 * record_open on the session's side would judge it; the first that does
 * not open ends the tracking (the session fails there).
 */
static void
feed_unsealed(struct fz *f, const uint8_t *buf, size_t len)
{
	static uint8_t rec[RECORD_MAXWIRE];
	struct noise_cipher c;
	size_t off = 0, wl;
	uint8_t *pt;
	size_t ptlen;
	int r;

	/* What opens is at most LEN bytes of plaintext: it must fit. */
	if (f->sent_len + len > FZ_MAXSENT)
		return;
	f->junk = true;
	if (f->peer_open && !f->wire_bad) {
		memcpy(fz_wire + f->wire_len, buf, len);
		f->wire_len += len;
		while ((r = record_peek(fz_wire + off, f->wire_len - off,
		    &wl)) != 0) {
			if (r < 0)
				break;
			c = f->ptx;
			memcpy(rec, fz_wire + off, wl);
			if (record_open(&c, rec, wl, &pt, &ptlen) < 0)
				break;
			f->ptx = c;
			sent_add(f, pt, ptlen);
			off += wl;
		}
		if (r != 0) {
			f->wire_bad = true;
			f->wire_len = 0;
		} else {
			memmove(fz_wire, fz_wire + off, f->wire_len - off);
			f->wire_len -= off;
		}
		sodium_memzero(&c, sizeof(c));
	}
	feed(f, buf, len);
}

/*
 * Seal LEN bytes at PT as the peer's next record and send it; with TAMPER
 * >= 0, one bit of it flipped.  A record that does not start at a record
 * boundary of the wire (unfinished junk before it) or is tampered with is
 * sealed with a copy of the peer's state and goes as unsealed bytes.
 */
static void
seal_feed(struct fz *f, const uint8_t *pt, size_t len, int tamper)
{
	static uint8_t w[RECORD_MAXWIRE];
	struct noise_cipher c;
	size_t wl;

	if (!f->peer_open || f->sent_len + len > FZ_MAXSENT)
		return;
	if (tamper >= 0 || f->wire_len > 0 || f->wire_bad) {
		c = f->ptx;
		wl = record_seal(&c, pt, len, w);
		sodium_memzero(&c, sizeof(c));
		if (wl == 0)
			return;
		if (tamper >= 0)
			w[(size_t)tamper % wl] ^= (uint8_t)(1u << (tamper & 7));
		feed_unsealed(f, w, wl);
		return;
	}
	if ((wl = record_seal(&f->ptx, pt, len, w)) == 0)
		return;
	sent_add(f, pt, len);
	memcpy(fz_last, w, wl);
	f->last_len = wl;
	feed(f, w, wl);
}

/* ------------------------------------------------------------ handshake */

/* Preface: "SKSL", version 1, the suite, two zero bytes. */
static void
preface(uint8_t p[PREFACE_LEN], int suite)
{
	memcpy(p, "SKSL\001", 5);
	p[5] = (uint8_t)suite;
	p[6] = p[7] = 0;
}

static bool
rule_accepts(const struct policy_rule *r, int suite)
{
	return noise_suite_available(suite) &&
	    (r->cipher == POLICY_CIPHER_DEFAULT ||
	    (int)r->cipher == noise_suite_aead(suite));
}

/* The peer's handshake: the fixed key, or (identity mode) its identity. */
static int
peer_hs_init(struct noise_hs *hs, int suite, bool initiator,
    const uint8_t pre[PREFACE_LEN])
{
	if (!fz_ik)
		return noise_hs_init(hs, suite, initiator, pre, PREFACE_LEN,
		    fz_key);
	return noise_hs_init_ik(hs, suite, initiator, pre, PREFACE_LEN,
	    fz_s_peer, fz_pk_peer, initiator ? fz_pk_sess : NULL, fz_zero);
}

/* The session responds; the peer initiates with the fixed key. */
static void
hs_as_initiator(struct fz *f)
{
	struct noise_hs hs;
	uint8_t w[IK1_WIRE], pl[1];
	size_t mlen, plen;
	int r;

	preface(w, f->suite);
	if (peer_hs_init(&hs, f->suite, true, w) < 0)
		return;         /* suite unavailable on this CPU */
	noise_hs_set_ephemeral(&hs, fz_e_init);
	FZ_ASSERT(noise_hs_write1(&hs, NULL, 0, w + PREFACE_LEN + 2, &mlen) == 0);
	FZ_ASSERT(mlen == (fz_ik ? IK1_LEN : HS_MSGLEN));
	w[PREFACE_LEN] = 0;
	w[PREFACE_LEN + 1] = (uint8_t)mlen;
	feed(f, w, PREFACE_LEN + 2 + mlen);
	r = session_handshake(f->s, f->sfd, false);
	if (!rule_accepts(&f->rule, f->suite)) {
		FZ_ASSERT(r == -ECONNRESET);
		goto out;
	}
	FZ_ASSERT(r == 0 && session_state(f->s) == SESSION_OPEN);
	FZ_ASSERT(peer_read(f, w, MSG2_WIRE));
	FZ_ASSERT(w[0] == 0 && w[1] == HS_MSGLEN);
	FZ_ASSERT(noise_hs_read2(&hs, w + 2, HS_MSGLEN, pl, &plen) == 0);
	noise_hs_split(&hs, &f->ptx, &f->prx);
	f->peer_open = true;
out:
	noise_hs_wipe(&hs);
}

/* The session initiates; the peer responds with the fixed key. */
static void
hs_as_responder(struct fz *f, size_t early)
{
	struct noise_hs hs;
	struct iovec iov;
	uint8_t w[IK1_WIRE], pl[1];
	size_t mlen, plen, m1 = fz_ik ? IK1_LEN : HS_MSGLEN;
	bool aes = f->rule.cipher == POLICY_CIPHER_AESGCM;
	int suite = fz_ik ? (aes ? NOISE_IK_AESGCM : NOISE_IK_CHACHAPOLY) :
	    aes ? NOISE_AESGCM : NOISE_CHACHAPOLY;
	int r;

	r = session_handshake(f->s, f->sfd, false);
	if (!noise_suite_available(suite)) {
		FZ_ASSERT(r == -ECONNRESET);
		return;
	}
	FZ_ASSERT(r == -EAGAIN && session_state(f->s) == SESSION_HS_WAIT2);
	if (early > 0) {
		/* The program writes before the keys exist: kept, sealed first. */
		iov.iov_base = (void *)tx_pat(0);
		iov.iov_len = early;
		FZ_ASSERT(session_send(f->s, f->sfd, &iov, 1, MSG_NOSIGNAL) ==
		    (ssize_t)early);
		f->tx_sent = early;
	}
	FZ_ASSERT(peer_read(f, w, PREFACE_LEN + 2 + m1));
	FZ_ASSERT(memcmp(w, "SKSL\001", 5) == 0 && w[5] == suite &&
	    w[6] == 0 && w[7] == 0);
	FZ_ASSERT(w[PREFACE_LEN] == 0 && w[PREFACE_LEN + 1] == m1);
	FZ_ASSERT(peer_hs_init(&hs, suite, false, w) == 0);
	noise_hs_set_ephemeral(&hs, fz_e_resp);
	FZ_ASSERT(noise_hs_read1(&hs, w + PREFACE_LEN + 2, m1, pl,
	    &plen) == 0 && plen == 0);
	/* identities: the session proved the key the policy gives it */
	FZ_ASSERT(!fz_ik || memcmp(noise_hs_remote_static(&hs), fz_pk_sess,
	    NOISE_DHLEN) == 0);
	FZ_ASSERT(noise_hs_write2(&hs, NULL, 0, w + 2, &mlen) == 0);
	w[0] = 0;
	w[1] = (uint8_t)mlen;
	feed(f, w, MSG2_WIRE);
	FZ_ASSERT(session_handshake(f->s, f->sfd, false) == 0);
	noise_hs_split(&hs, &f->ptx, &f->prx);
	noise_hs_wipe(&hs);
	f->peer_open = true;
	peer_pump(f);
}

/* ------------------------------------------------------------ operations */

/* Readiness must match what the next read does. */
static void
op_poll(struct fz *f)
{
	struct pollfd p = { .fd = f->sfd };
	short want = POLLIN | POLLOUT | POLLRDHUP, kev, rev;
	ssize_t n;
	int q;

	rev = session_poll_prep(f->s, want, &kev);
	p.events = kev;
	if (poll(&p, 1, 0) < 0)
		p.revents = 0;
	rev |= session_poll_after(f->s, f->sfd, want, p.revents);
	if (rev & POLLIN) {
		n = fz_recv(f, RECORD_MAXPT, MSG_DONTWAIT | MSG_PEEK, 1);
		FZ_ASSERT(n != -EAGAIN);
	}
	/* SO_ERROR: the failure once, then 0; nothing while alive. */
	if (session_state(f->s) == SESSION_DEAD) {
		(void)session_so_error(f->s, f->sfd);
		FZ_ASSERT(session_so_error(f->s, f->sfd) == 0);
	} else {
		FZ_ASSERT(session_so_error(f->s, f->sfd) == 0);
	}
	q = session_inq(f->s, f->sfd);
	if (q > 0 && f->opmode && !f->junk && !f->eos && !f->rd_shut &&
	    session_state(f->s) == SESSION_OPEN) {
		/* FIONREAD is exact: programs read that much and wait. */
		if ((size_t)q > sizeof(fz_rbuf))
			q = (int)sizeof(fz_rbuf);
		n = fz_recv(f, (size_t)q, MSG_DONTWAIT, 1);
		FZ_ASSERT(n == q);
	}
}

static void
op_send(struct fz *f, size_t len, int flags)
{
	struct iovec iov[2];
	uint8_t *buf = (uint8_t *)tx_pat(f->tx_sent);
	ssize_t n;

	if (len > 2 * RECORD_MAXPT)
		len = 2 * RECORD_MAXPT;
	iov[0].iov_base = buf;
	iov[0].iov_len = len / 2;
	iov[1].iov_base = buf + len / 2;
	iov[1].iov_len = len - len / 2;
	n = session_send(f->s, f->sfd, iov, 2, flags | MSG_NOSIGNAL);
	FZ_ASSERT(n <= (ssize_t)len);
	if (n > 0)
		f->tx_sent += (uint64_t)n;
	peer_pump(f);
}

static void
op_shutdown(struct fz *f, int how)
{
	/* Before OPEN, SHUT_WR finishes the handshake blocking: not here. */
	if (session_state(f->s) < SESSION_OPEN)
		return;
	if (how != SHUT_WR)
		f->rd_shut = true;
	(void)session_shutdown(f->s, f->sfd, how, false);
	peer_pump(f);
}

static void
op_junk(struct fz *f, size_t n)
{
	const uint8_t *p;

	n = take(f, n, &p);
	if (n > 0)
		feed_unsealed(f, p, n);
}

static void
run_op(struct fz *f, unsigned int op)
{
	const uint8_t *p;
	size_t len;

	f->ops[f->nops++ % FZ_TRACE] = (uint8_t)op;
	switch (op & 7) {
	case 0:
		op_junk(f, take8(f));
		break;
	case 1:
		len = take16(f) % (RECORD_MAXPT + 1);
		if (op & 8)     /* near the largest record */
			len = RECORD_MAXPT - len % 32;
		seal_feed(f, pattern + op % PATTERN_PERIOD, len, -1);
		break;
	case 2:
		len = take(f, take8(f), &p);
		seal_feed(f, p, len, -1);
		break;
	case 3:
		len = (take8(f) + 1) * (op & 8 ? 256 : 1);
		(void)fz_recv(f, len, (op & 16 ? MSG_PEEK : 0) |
		    (op & 32 ? MSG_DONTWAIT : 0) | (op & 128 ? MSG_WAITALL : 0),
		    op & 64 ? 2 : 1);
		peer_pump(f);
		break;
	case 4:
		op_send(f, take16(f) * (op & 8 ? 3 : 1), op & 16 ? MSG_MORE : 0);
		break;
	case 5:
		op_shutdown(f, (int)(op >> 3) % 3);
		break;
	case 6:
		op_poll(f);
		break;
	default:
		if (op & 8) {
			/* A replayed record. */
			if (f->last_len > 0)
				feed_unsealed(f, fz_last, f->last_len);
		} else if (op & 16) {
			if (!f->tcp_end)
				shutdown(f->pfd, SHUT_WR);
			f->tcp_end = true;
		} else {
			len = take8(f);
			seal_feed(f, pattern, len, (int)take8(f));
		}
		break;
	}
}

/* ------------------------------------------------------------ one input */

static bool
fz_start(struct fz *f, const uint8_t *data, size_t size, bool initiator)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4242), .sin_addr.s_addr = htonl(0x7f000001) };
	unsigned int cfg = size > 0 ? data[0] : 0, c = (cfg >> 2) & 3;
	int sv[2];

	memset(f, 0, sizeof(*f));
	rng_ctr = 0;

	f->initiator = initiator;
	f->opmode = cfg & 1;
	f->suite = fz_ik ? (cfg & 2 ? NOISE_IK_AESGCM : NOISE_IK_CHACHAPOLY) :
	    cfg & 2 ? NOISE_AESGCM : NOISE_CHACHAPOLY;
	f->in = data + (size > 0);
	f->left = size - (size > 0);

	memcpy(f->keys[0].key, cfg & 16 && !initiator ? fz_wrong : fz_key,
	    NOISE_KEYLEN);
	memcpy(f->keys[1].key, fz_key, NOISE_KEYLEN);
	f->keys[0].name = f->keys[0].path = f->keys[0].resolved = "k0";
	f->keys[1].name = f->keys[1].path = f->keys[1].resolved = "k1";
	f->rule.dir = initiator ? POLICY_CONNECT : POLICY_ACCEPT;
	f->rule.cipher = c == 3 ? POLICY_CIPHER_DEFAULT : (enum policy_cipher)c;
	f->rule.mode = c == 3 && !initiator ? POLICY_PERMISSIVE : POLICY_STRICT;
	f->rule.timeout_ms = 60000;
	f->rule.file = "fuzz.policy";
	f->rule.line = 1;
	f->rule.port_hi = 65535;
	f->rule.keys[0] = &f->keys[0];
	f->rule.keys[1] = &f->keys[1];
	f->rule.nkeys = cfg & 16 && !initiator ? 2 : 1;
	if (fz_ik) {
		/* Identities without a PSK; bit 4 (responder): a rotation,
		 * another identity tried first. */
		bool rot = cfg & 16 && !initiator;

		memcpy(f->ids[0].sk, rot ? fz_s_other : fz_s_sess, NOISE_DHLEN);
		memcpy(f->ids[0].pk, rot ? fz_pk_other : fz_pk_sess, NOISE_DHLEN);
		memcpy(f->ids[1].sk, fz_s_sess, NOISE_DHLEN);
		memcpy(f->ids[1].pk, fz_pk_sess, NOISE_DHLEN);
		f->ids[0].name = f->ids[1].name = "me";
		f->rule.ids[0] = &f->ids[0];
		f->rule.ids[1] = &f->ids[1];
		f->rule.nids = rot ? 2 : 1;
		memcpy(f->peer.pk, fz_pk_peer, NOISE_DHLEN);
		f->peer.name = "peer";
		f->peers[0] = &f->peer;
		f->rule.nkeys = 0;
		if (initiator)
			f->rule.peer = &f->peer;
		else {
			f->rule.peers = f->peers;
			f->rule.npeers = 1;
		}
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) < 0)
		return false;
	f->sfd = sv[0];
	f->pfd = sv[1];
	f->s = session_new(f->sfd, &f->rule, initiator, (struct sockaddr *)&sin);
	if (f->s == NULL) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	return true;
}

/* Raw mode: the input is the peer's byte stream, fed in chunks. */
static void
fz_raw(struct fz *f, unsigned int cfg)
{
	static const size_t chunks[8] = { 1, 2, 7, 16, 58, 256, 4096, 65536 };
	size_t chunk = chunks[cfg >> 5];
	const uint8_t *p;
	size_t n;
	int i = 0;

	if (f->initiator)
		(void)session_handshake(f->s, f->sfd, false);
	while ((n = take(f, chunk, &p)) > 0) {
		feed(f, p, n);
		step(f, i++ % 3 == 2 ? MSG_PEEK : 0);
		if (i % 4 == 0)
			op_poll(f);
	}
}

/* The peer ends the TCP stream; the session must end it as the peer did. */
static void
fz_finish(struct fz *f)
{
	ssize_t n = -EAGAIN;
	int i;

	peer_pump(f);
	if (!f->tcp_end)
		shutdown(f->pfd, SHUT_WR);
	f->tcp_end = true;
	for (i = 0; i < 64; i++) {
		if (session_state(f->s) < SESSION_OPEN)
			(void)session_handshake(f->s, f->sfd, false);
		n = fz_recv(f, sizeof(fz_rbuf), MSG_DONTWAIT, 1);
		if (n <= 0 && n != -EAGAIN && n != -EINTR)
			break;
	}
	if (f->opmode && f->peer_open && !f->junk && !f->lost && !f->rd_shut &&
	    (f->sent_len > 0 || f->eos)) {
		/* Everything sealed arrived, and the end is the peer's. */
		FZ_ASSERT(f->got == (f->eos ? f->eos_at : f->sent_len));
		FZ_ASSERT(n == (f->eos ? 0 : -ECONNRESET));
	}
	peer_pump(f);
	session_put(f->s);
	close(f->sfd);
	close(f->pfd);
}

void
fuzz_session_run(const uint8_t *data, size_t size, bool initiator)
{
	struct fz *f = &fz_state;
	unsigned int cfg = size > 0 ? data[0] : 0;

	if (!fz_start(f, data, size, initiator))
		return;
	if (!f->opmode) {
		fz_raw(f, cfg);
	} else {
		if (initiator)
			hs_as_responder(f, cfg & 16 ? (cfg >> 5) * 9000 + 1 : 0);
		else
			hs_as_initiator(f);
		while (f->left > 0)
			run_op(f, take8(f));
	}
	fz_finish(f);
}

/*
 * The raw-mode input equivalent to the op-mode input DATA: its first byte
 * with bit 0 cleared, then every byte the peer put on the wire.  Up to CAP
 * bytes in OUT; returns the length.
 */
static size_t
fuzz_session_transcript(const uint8_t *data, size_t size, bool initiator,
    uint8_t *out, size_t cap)
{
	if (size == 0 || cap < 2 || !(data[0] & 1))
		return 0;
	out[0] = data[0] & ~1u;
	fz_rec = out + 1;
	fz_rec_cap = cap - 1;
	fz_rec_len = 0;
	fuzz_session_run(data, size, initiator);
	fz_rec = NULL;
	return fz_rec_len + 1;
}

/* ------------------------------------------------------------ seeds */

static int
seed_write(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "we")) == NULL)
		return -errno;
	fwrite(b, 1, n, fp);
	return fclose(fp) == 0 ? 0 : -EIO;
}

static int
fuzz_session_seeds(const char *dir, bool initiator)
{
	/* Op-mode inputs; each is also written as its raw transcript. */
	static const struct { uint8_t b[32]; size_t n; } seeds[] = {
		{ { 0x01 }, 1 },
		{ { 0x01, 1, 0, 100, 3, 200, 1, 0, 0, 3, 10 }, 11 },
		{ { 0x03, 2, 5, 'h', 'e', 'l', 'l', 'o', 0x33, 10, 1, 0, 0 }, 13 },
		{ { 0x05, 1, 4, 0, 3, 0x3b, 255, 0x7b, 255, 6, 1, 0, 0 }, 13 },
		{ { 0x09, 1, 1, 0, 6, 3, 0, 4, 1, 0, 6, 0x0d, 3, 4 }, 14 },
		{ { 0x0d, 1, 0, 40, 6, 0x13, 5, 3, 40, 0x05, 3, 5 }, 12 },
		{ { 0x11, 1, 0, 8, 0x0f, 3, 20, 1, 0, 0 }, 10 },
		{ { 0x91, 4, 2, 0, 0x15, 1, 0, 1, 7, 4, 2, 3, 10 }, 13 },
		{ { 0x01, 0, 3, 'x', 'y', 'z', 1, 0, 5, 3, 10 }, 11 },
		{ { 0x01, 1, 0, 5, 0x17, 3, 10, 1, 0, 0 }, 10 },
		{ { 0x01, 1, 0, 5, 0x0e, 3, 10 }, 7 },
	};
	static uint8_t out[1 << 18];
	char name[64];
	size_t i, n;
	int r;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		snprintf(name, sizeof(name), "op-%02zu", i);
		if ((r = seed_write(dir, name, seeds[i].b, seeds[i].n)) < 0)
			return r;
		n = fuzz_session_transcript(seeds[i].b, seeds[i].n, initiator,
		    out, sizeof(out));
		snprintf(name, sizeof(name), "raw-%02zu", i);
		if (n > 0 && (r = seed_write(dir, name, out, n)) < 0)
			return r;
	}
	return 0;
}
