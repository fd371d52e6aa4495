/*
 * fuzz_session_hs: the peer's half of a real handshake (op mode), built from
 * noise.c with the fixed key and the fixed ephemerals, or in identity mode
 * the peer's fixed identity (suites 3, 4, no PSK).
 *
 * fz_hs_as_initiator(): the session responds.  The peer sends the preface
 * and message 1 for f->suite; the session must accept exactly when the
 * rule's cipher= allows that suite (and the CPU has it), else reset.
 * fz_hs_as_responder(): the session initiates.  Its preface must name the
 * suite the rule picks; in identity mode it must prove the key the policy
 * gives it; bytes the program writes before the keys exist are kept and
 * sealed first.
 *
 * Either way, a valid handshake that fails aborts, and on success the
 * peer's cipher states (f->ptx, f->prx) are ready and f->peer_open is set.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "session.h"
#include "fuzz.h"
#include "fuzz_session_int.h"

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
void
fz_hs_as_initiator(struct fz *f)
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
	fz_feed(f, w, PREFACE_LEN + 2 + mlen);
	r = session_handshake(f->s, f->sfd, false);
	if (!rule_accepts(&f->rule, f->suite)) {
		FZ_ASSERT(r == -ECONNRESET);
		goto out;
	}
	FZ_ASSERT(r == 0 && session_state(f->s) == SESSION_OPEN);
	FZ_ASSERT(fz_peer_read(f, w, MSG2_WIRE));
	FZ_ASSERT(w[0] == 0 && w[1] == HS_MSGLEN);
	FZ_ASSERT(noise_hs_read2(&hs, w + 2, HS_MSGLEN, pl, &plen) == 0);
	noise_hs_split(&hs, &f->ptx, &f->prx);
	f->peer_open = true;
out:
	noise_hs_wipe(&hs);
}

/* The session initiates; the peer responds with the fixed key. */
void
fz_hs_as_responder(struct fz *f, size_t early)
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
		iov.iov_base = (void *)fz_tx_pat(0);
		iov.iov_len = early;
		FZ_ASSERT(session_send(f->s, f->sfd, &iov, 1, MSG_NOSIGNAL) ==
		    (ssize_t)early);
		f->tx_sent = early;
	}
	FZ_ASSERT(fz_peer_read(f, w, PREFACE_LEN + 2 + m1));
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
	fz_feed(f, w, MSG2_WIRE);
	FZ_ASSERT(session_handshake(f->s, f->sfd, false) == 0);
	noise_hs_split(&hs, &f->ptx, &f->prx);
	noise_hs_wipe(&hs);
	f->peer_open = true;
	fz_peer_pump(f);
}
