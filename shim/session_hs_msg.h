/*
 * session_hs_msg: the handshake's messages (session_hs_msg.c), for the
 * machine in session_hs.c.  Internal to the two.
 */
#ifndef SOCKSEAL_SESSION_HS_MSG_H
#define SOCKSEAL_SESSION_HS_MSG_H

#include <stddef.h>

#include "noise.h"

struct session;

#define PREFACE_LEN     8
#define HS_MSGLEN       (NOISE_DHLEN + NOISE_TAGLEN)        /* 48 */
#define HS_MSG1_WIRE    (PREFACE_LEN + 2 + HS_MSGLEN)       /* 58 */
#define HS_MSG2_WIRE    (2 + HS_MSGLEN)                     /* 50 */
/* Identities (suites 3, 4): message 1 carries the initiator's static key
 * (e, s and its tag, the payload's tag); message 2 is as long as NN's. */
#define HS_IK1_LEN      (2 * NOISE_DHLEN + 2 * NOISE_TAGLEN) /* 96 */
#define HS_IK1_WIRE     (PREFACE_LEN + 2 + HS_IK1_LEN)      /* 106 */

/* Room for a reason that names a key (a refused peer's fingerprint). */
#define HS_WHYLEN       160

/* Why a step failed: the words, and the code (enum reason). */
struct hs_fail {
	const char *why;
	int         reason;
	char        buf[HS_WHYLEN];     /* words that name a key */
};
#define HS_FAIL(f, code, text) ((f)->reason = (code), (f)->why = (text))

/* Message 1's length (after its 2-byte frame) for S's suite. */
size_t ss_hs_msg1_len(const struct session *s);

/* Initiator: queue the preface and message 1 (S's rule picks the suite). */
int ss_hs_send1(struct session *s);
/* Initiator: message 2's first 2 bytes are buffered; are they something
 * else than its length (not a sockseal server)? */
bool ss_hs_msg2_foreign(const struct session *s);
/* Initiator: message 2 is buffered; check it and split.  0 or -EBADMSG,
 * *F set. */
int ss_hs_recv2(struct session *s, struct hs_fail *f);
/* Responder: the 8 preface bytes are buffered; check them (suite set).
 * 0 or -EPROTO, *F set. */
int ss_hs_preface(struct session *s, struct hs_fail *f);
/* Responder: message 1 is buffered after the preface; authenticate it,
 * queue message 2 and split.  0, -EBADMSG, or -EACCES (an identity that
 * peers= does not list: F->why names it by fingerprint). */
int ss_hs_recv1(struct session *s, struct hs_fail *f);

#endif
