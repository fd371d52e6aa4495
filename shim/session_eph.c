/*
 * session_eph: ephemerals made ahead, so that no X25519 a side can do
 * while it waits lies on a handshake's critical path.
 *
 * One spare per role and process: a fresh key pair made while this
 * process waits on a peer (an initiator after sending message 1, a
 * responder after sending message 2), taken by the next handshake in the
 * same role (a responder takes it at accept, into the session's
 * early_eph; a proxy sealed on both sides keeps one of each, so neither
 * role takes the DH the other made for its own peer).  With it,
 * if the same static key was the peer's last time too, DH(e, that key):
 * the initiator's es (rs is the server key peer= names) or the
 * responder's se (rs is the client's static key), for IKpsk2 (suites 3,
 * 4).  Only when the peer repeats, so a server whose clients alternate
 * spends no X25519 it throws away; noise_hs uses the DH only if its key
 * turns out to be rs.
 *
 * An ephemeral is never used twice: the spare is taken once, atomically
 * (0 empty, 1 busy, 2 ready), and a forked child drops its copy (the
 * parent keeps it).  A session's early_eph is wiped when the handshake ends.
 */
#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "session.h"
#include "session_int.h"

static struct spare {
	int            state;   /* atomic: 0 empty, 1 busy, 2 ready */
	struct ss_eph  e;
	bool           prev_set;        /* prev_pk: the last make's peer */
	uint8_t        prev_pk[NOISE_DHLEN];
} spares[2];                            /* [initiator] */

bool
ss_eph_take(bool initiator, struct ss_eph *out)
{
	struct spare *sp = &spares[initiator];
	int ready = 2;

	if (!__atomic_compare_exchange_n(&sp->state, &ready, 1, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	*out = sp->e;
	sodium_memzero(&sp->e, sizeof(sp->e));
	__atomic_store_n(&sp->state, 0, __ATOMIC_RELEASE);
	return true;
}

void
ss_eph_make(bool initiator, const uint8_t *peer_pk)
{
	struct spare *sp = &spares[initiator];
	int empty = 0;
	bool again;

	if (!__atomic_compare_exchange_n(&sp->state, &empty, 1, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	randombytes_buf(sp->e.sk, sizeof(sp->e.sk));
	(void)crypto_scalarmult_base(sp->e.pk, sp->e.sk);
	again = peer_pk != NULL && sp->prev_set &&
	    memcmp(sp->prev_pk, peer_pk, NOISE_DHLEN) == 0;
	/* A low-order key gives no DH: the handshake computes and fails. */
	sp->e.dh_set = again && crypto_scalarmult(sp->e.dh, sp->e.sk,
	    peer_pk) == 0;
	if (sp->e.dh_set)
		memcpy(sp->e.dh_pk, peer_pk, NOISE_DHLEN);
	sp->prev_set = peer_pk != NULL;
	if (peer_pk != NULL)
		memcpy(sp->prev_pk, peer_pk, NOISE_DHLEN);
	__atomic_store_n(&sp->state, 2, __ATOMIC_RELEASE);
}

void
ss_eph_drop(void)
{
	sodium_memzero(spares, sizeof(spares));
}

void
ss_eph_use(struct noise_hs *hs, const struct ss_eph *e)
{
	noise_hs_set_ephemeral_pair(hs, e->sk, e->pk);
	if (e->dh_set)
		noise_hs_set_e_dh(hs, e->dh_pk, e->dh);
}

void
ss_hs_take_early_e(struct session *s)
{
	if (!ss_eph_take(false, &s->early_eph)) {
		randombytes_buf(s->early_eph.sk, sizeof(s->early_eph.sk));
		(void)crypto_scalarmult_base(s->early_eph.pk, s->early_eph.sk);
		s->early_eph.dh_set = false;
	}
	s->early_e = true;
}

void
ss_hs_use_early_e(struct session *s)
{
	if (s->early_e)
		ss_eph_use(&s->hs_store, &s->early_eph);
}

void
ss_hs_drop_early_e(struct session *s)
{
	if (s->early_e) {
		sodium_memzero(&s->early_eph, sizeof(s->early_eph));
		s->early_e = false;
	}
}
