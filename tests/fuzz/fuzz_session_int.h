/*
 * fuzz_session_int.h: what the files of the session harness share (private
 * to tests/fuzz/fuzz_session*.c; the targets see only fuzz_session.h).
 *
 *   fuzz_session.c        one input: configuration, raw mode, the end
 *   fuzz_session_env.c    the fixed world: deterministic RNG, test keys,
 *                         the generated stream, fuzz_session_init
 *   fuzz_session_io.c     bytes crossing the socketpair, checked both ways
 *   fuzz_session_seal.c   the peer's records and what counts as sealed
 *   fuzz_session_hs.c     the peer's half of the handshake
 *   fuzz_session_ops.c    op mode: the input cursor and the operations
 *   fuzz_session_seeds.c  FUZZ_WRITE_SEEDS: the seed corpus, transcripts
 *
 * Everything is global and single-threaded: one input at a time.
 */
#ifndef SOCKSEAL_FUZZ_SESSION_INT_H
#define SOCKSEAL_FUZZ_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "noise.h"
#include "policy.h"
#include "record.h"

#define PREFACE_LEN  8
#define HS_MSGLEN    48
#define MSG1_WIRE    (PREFACE_LEN + 2 + HS_MSGLEN)
#define MSG2_WIRE    (2 + HS_MSGLEN)
#define IK1_LEN      96      /* identities: message 1 (e, s, its tag, tag) */
#define IK1_WIRE     (PREFACE_LEN + 2 + IK1_LEN)
#define FZ_MAXSENT   (1 << 20)           /* peer plaintext the oracle keeps */
#define FZ_INBUF     (4 * RECORD_MAXWIRE)
#define FZ_TRACE     24                  /* operations fz_report shows */

/* One input's state: the session, its rule, the peer, the oracle. */
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

/* ---- fuzz_session_env.c */

/* Test keys and ephemerals: constants, not secrets. */
extern const uint8_t fz_key[NOISE_KEYLEN], fz_wrong[NOISE_KEYLEN];
extern const uint8_t fz_e_init[NOISE_DHLEN], fz_e_resp[NOISE_DHLEN];
/* Identity mode (fuzz_session_init(.., true)): static keys. */
extern const uint8_t fz_s_sess[NOISE_DHLEN], fz_s_peer[NOISE_DHLEN];
extern const uint8_t fz_s_other[NOISE_DHLEN];
extern const uint8_t fz_zero[NOISE_KEYLEN];
extern uint8_t fz_pk_sess[NOISE_DHLEN], fz_pk_peer[NOISE_DHLEN];
extern uint8_t fz_pk_other[NOISE_DHLEN];
extern bool fz_ik;

/*
 * Generated streams: the program's outgoing stream at offset O is
 * fz_pattern + O % FZ_PATTERN_PERIOD, so it is written and checked with
 * memcpy and memcmp (byte loops cost too much under coverage
 * instrumentation).  fz_tx_pat(o): where offset O of that stream starts.
 */
#define FZ_PATTERN_PERIOD 251
extern uint8_t fz_pattern[FZ_PATTERN_PERIOD + 2 * RECORD_MAXPT];
const uint8_t *fz_tx_pat(uint64_t o);

/* fz_rng_reset(): the deterministic RNG starts over (once per input). */
void fz_rng_reset(void);

/* ---- fuzz_session_io.c */

extern uint8_t fz_rbuf[2 * RECORD_MAXPT];       /* program's buffers */

/*
 * fz_recv(f, cap, flags, niov): a session read of up to CAP bytes into
 * fz_rbuf over NIOV (1, 2) iovecs; returns what session_recv() returned.
 * In op mode, aborts when the bytes are not the next ones the peer sealed
 * or a 0 comes before the mark or SHUT_RD.
 */
ssize_t fz_recv(struct fz *f, size_t cap, int flags, int niov);

/*
 * fz_peer_pump(f): read what the session sent; discarded until the peer has
 * keys, then every record must open and be the program's stream.
 */
void fz_peer_pump(struct fz *f);

/* fz_peer_read(f, buf, len): exactly LEN handshake bytes; false if short. */
bool fz_peer_read(struct fz *f, uint8_t *buf, size_t len);

/* fz_step(f, flags): one non-blocking step of a program that reads. */
void fz_step(struct fz *f, int flags);

/*
 * fz_feed(f, buf, len): put LEN bytes on the wire (and in the transcript,
 * fz_rec), letting the session read when the socket is full; sets f->lost
 * when the wire refuses them.
 */
void fz_feed(struct fz *f, const uint8_t *buf, size_t len);

/* ---- fuzz_session_seal.c */

extern uint8_t fz_sent[FZ_MAXSENT];             /* plaintext the peer sealed */
extern uint8_t fz_last[RECORD_MAXWIRE];         /* to replay */

/*
 * fz_feed_unsealed(f, buf, len): send bytes the peer did not seal as its
 * next record; whole records among them that open with the peer's state
 * still count as sealed.
 */
void fz_feed_unsealed(struct fz *f, const uint8_t *buf, size_t len);

/*
 * fz_seal_feed(f, pt, len, tamper): seal LEN bytes at PT as the peer's next
 * record and send it; TAMPER >= 0 flips one bit of it.
 */
void fz_seal_feed(struct fz *f, const uint8_t *pt, size_t len, int tamper);

/* ---- fuzz_session_hs.c */

/* The session responds; the peer initiates with the fixed key. */
void fz_hs_as_initiator(struct fz *f);

/* The session initiates; the peer responds.  EARLY: bytes the program
 * writes before the keys exist. */
void fz_hs_as_responder(struct fz *f, size_t early);

/* ---- fuzz_session_ops.c */

/*
 * fz_take(f, n, &p): up to N bytes of input at *P, consumed; returns how
 * many.  fz_take8, fz_take16: the next byte, the next two (high first),
 * 0 past the end.
 */
size_t fz_take(struct fz *f, size_t n, const uint8_t **p);
unsigned int fz_take8(struct fz *f);
unsigned int fz_take16(struct fz *f);

/* fz_run_op(f, op): one operation, its arguments from the input. */
void fz_run_op(struct fz *f, unsigned int op);

/* fz_op_poll(f): readiness, checked against the next read. */
void fz_op_poll(struct fz *f);

/* ---- fuzz_session_seeds.c */

/* Transcript of peer -> session bytes, for seed generation (fz_feed). */
extern uint8_t *fz_rec;
extern size_t fz_rec_len, fz_rec_cap;

/*
 * fz_seeds_write(dir, initiator): the seed corpus of the role in DIR.
 * Returns 0 or -errno.
 */
int fz_seeds_write(const char *dir, bool initiator);

#endif
