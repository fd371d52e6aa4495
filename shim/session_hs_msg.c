/*
 * session_hs_msg: the handshake's messages, as session_hs.c's machine sends
 * and reads them: the preface, message 1 and message 2, for the PSK suites
 * (1, 2: Noise NNpsk0, the key found by trial decryption of message 1) and
 * the identity suites (3, 4: Noise IKpsk2; the responder tries its
 * identities on message 1 and admits only the static keys peers= lists,
 * the initiator tries its PSKs on message 2).  Lengths are exact: anything
 * else is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "log.h"
#include "noise.h"
#include "session.h"
#include "session_int.h"
#include "reason.h"
#include "session_hs_msg.h"
#include "version.h"

/* The PSK of a rule without key=: 32 zero bytes (as WireGuard's). */
static const uint8_t zero_psk[NOISE_KEYLEN];

void
ss_hs_note_keys(struct session *s, const struct policy_key *k,
    const struct policy_identity *id)
{
	int n = 0;

	/* (The fingerprints were computed at load: no hashing here.) */
	s->key_used[0] = '\0';
	if (k != NULL)
		n = snprintf(s->key_used, sizeof(s->key_used), "key %.40s (%s)",
		    k->name, k->fpr);
	if (id != NULL && n >= 0 && (size_t)n < sizeof(s->key_used))
		snprintf(s->key_used + n, sizeof(s->key_used) - (size_t)n,
		    "%sidentity %.40s (%s)", n > 0 ? ", " : "", id->name,
		    id->fpr);
}

/* Message 1's length on the wire for S's suite. */
size_t
ss_hs_msg1_len(const struct session *s)
{
	return noise_suite_ik(s->suite) ? HS_IK1_LEN : HS_MSGLEN;
}


static void
preface_make(uint8_t p[PREFACE_LEN], int suite)
{
	p[0] = 'S'; p[1] = 'K'; p[2] = 'S'; p[3] = 'L';
	p[4] = SOCKSEAL_WIRE_VERSION; p[5] = (uint8_t)suite; p[6] = 0; p[7] = 0;
}

/*
 * Does RULE accept SUITE?  PSK suites (1, 2) need a key on the rule, the
 * identity suites (3, 4) an identity; cipher= picks the AEAD of either.
 */
static bool
ss_hs_suite_accepted(const struct policy_rule *rule, int suite)
{
	if (suite == NOISE_CHACHAPOLY || suite == NOISE_AESGCM) {
		if (rule->nkeys == 0)
			return false;
	} else if (noise_suite_ik(suite)) {
		if (rule->nids == 0)
			return false;
	} else
		return false;
	if (rule->cipher != POLICY_CIPHER_DEFAULT &&
	    (int)rule->cipher != noise_suite_aead(suite))
		return false;
	return noise_suite_available(suite);
}

/* Initiator: queue preface + message 1. */
int
ss_hs_send1(struct session *s)
{
	const struct policy_rule *rule = s->rule;
	bool aes = rule->cipher == POLICY_CIPHER_AESGCM;
	uint8_t *p;
	size_t mlen;
	int r;

	if (rule->nids > 0)
		s->suite = aes ? NOISE_IK_AESGCM : NOISE_IK_CHACHAPOLY;
	else
		s->suite = aes ? NOISE_AESGCM : NOISE_CHACHAPOLY;
	s->hs_live = true;
	p = s->tbuf;
	preface_make(p, s->suite);
	if (rule->nids > 0) {
		uint8_t tmp[NOISE_DHLEN];
		const uint8_t *ss;

		r = noise_hs_init_ik(&s->hs_store, s->suite, true, p,
		    PREFACE_LEN, rule->ids[0]->sk, rule->ids[0]->pk,
		    rule->peer->pk,
		    rule->nkeys > 0 ? rule->keys[0]->key : zero_psk);
		/* ss is the same for every connection of this pair. */
		if (r == 0 && (ss = policy_ss(rule->ids[0], rule->peer,
		    tmp)) != NULL)
			noise_hs_set_ss(&s->hs_store, ss);
		sodium_memzero(tmp, sizeof(tmp));
	} else
		r = noise_hs_init(&s->hs_store, s->suite, true, p, PREFACE_LEN,
		    rule->keys[0]->key);
	if (r < 0)
		return r;
	{
		struct ss_eph e;

		/* An ephemeral made during the previous handshake. */
		if (ss_eph_take(true, &e))
			ss_eph_use(&s->hs_store, &e);
		sodium_memzero(&e, sizeof(e));
	}
	if ((r = noise_hs_write1(&s->hs_store, NULL, 0, p + PREFACE_LEN + 2, &mlen)) < 0)
		return r;
	p[PREFACE_LEN] = (uint8_t)(mlen >> 8);
	p[PREFACE_LEN + 1] = (uint8_t)mlen;
	s->toff = 0;
	s->tend = PREFACE_LEN + 2 + mlen;
	return 0;
}

/*
 * Identities, initiator: message 2 under each PSK the rule lists (the
 * responder mixes its first; a rotation lists both here first), on a
 * copy of the handshake each time.  0 or -EBADMSG.
 */
static int
hs_read2_ik(struct session *s, const uint8_t *m)
{
	const struct policy_rule *rule = s->rule;
	struct noise_hs t;
	uint8_t payload[1];
	size_t plen;
	int i, n = rule->nkeys > 0 ? rule->nkeys : 1;

	for (i = 0; i < n; i++) {
		t = s->hs_store;
		noise_hs_set_psk(&t, rule->nkeys > 0 ? rule->keys[i]->key :
		    zero_psk);
		if (noise_hs_read2(&t, m, HS_MSGLEN, payload, &plen) == 0 &&
		    plen == 0) {
			s->hs_store = t;
			sodium_memzero(&t, sizeof(t));
			snprintf(s->peer_id, sizeof(s->peer_id), "%s",
			    rule->peer->name);
			ss_auth_set(s, rule->peer->pk);
			ss_hs_note_keys(s, rule->nkeys > 0 ? rule->keys[i] :
			    NULL, rule->ids[0]);
			return 0;
		}
		noise_hs_wipe(&t);
	}
	return -EBADMSG;
}

/* Initiator: are message 2's first two bytes (buffered) not its length? */
bool
ss_hs_msg2_foreign(const struct session *s)
{
	const uint8_t *m = s->rbuf + s->rstart;

	return ((size_t)m[0] << 8 | m[1]) != HS_MSGLEN;
}

/* Initiator: message 2 is buffered; check it and split. */
int
ss_hs_recv2(struct session *s, struct hs_fail *f)
{
	uint8_t *m = s->rbuf + s->rstart;
	uint8_t payload[1];
	size_t plen;

	if (((size_t)m[0] << 8 | m[1]) != HS_MSGLEN) {
		HS_FAIL(f, REASON_BAD_HANDSHAKE,
		    "bad handshake message 2 length");
		return -EBADMSG;
	}
	if (noise_suite_ik(s->suite)) {
		if (hs_read2_ik(s, m + 2) < 0) {
			HS_FAIL(f, REASON_WRONG_PEER_KEY,
			    "handshake message 2 failed authentication "
			    "(the server does not hold the key peer= names, "
			    "or a wrong key)");
			return -EBADMSG;
		}
	} else if (noise_hs_read2(&s->hs_store, m + 2, HS_MSGLEN, payload,
	    &plen) < 0 || plen != 0) {
		HS_FAIL(f, REASON_WRONG_KEY,
		    "handshake message 2 failed authentication");
		return -EBADMSG;
	} else
		ss_hs_note_keys(s, s->rule->keys[0], NULL);
	s->rstart += HS_MSG2_WIRE;
	noise_hs_split(&s->hs_store, &s->tx, &s->rx);
	return 0;
}

/* Responder: check the preface (the first 8 bytes are buffered). */
int
ss_hs_preface(struct session *s, struct hs_fail *f)
{
	const uint8_t *p = s->rbuf + s->rstart;

	if (memcmp(p, "SKSL", 4) != 0) {
		HS_FAIL(f, REASON_NO_PREFACE,
		    "no sockseal preface (plaintext or foreign client)");
		return -EPROTO;
	}
	if (p[4] != SOCKSEAL_WIRE_VERSION) {
		HS_FAIL(f, REASON_BAD_VERSION, "unsupported protocol version");
		return -EPROTO;
	}
	if (p[6] != 0 || p[7] != 0) {
		HS_FAIL(f, REASON_BAD_PREFACE, "bad preface");
		return -EPROTO;
	}
	if (!ss_hs_suite_accepted(s->rule, p[5])) {
		HS_FAIL(f, REASON_SUITE_REFUSED,
		    "cipher suite not accepted by the rule");
		return -EPROTO;
	}
	s->suite = p[5];
	return 0;
}

/*
 * Identities, responder: message 1 under each of the rule's identities (a
 * rotation's new one first), the PSK its first key; then the initiator's
 * static key must be one peers= lists.  0, or -EBADMSG / -EACCES with *F.
 */
static int
hs_read1_ik(struct session *s, const uint8_t *p, struct hs_fail *f)
{
	const struct policy_rule *rule = s->rule;
	const uint8_t *psk = rule->nkeys > 0 ? rule->keys[0]->key : zero_psk;
	const uint8_t *m1 = p + PREFACE_LEN + 2, *rs = NULL, *ss;
	const struct policy_peer *pe;
	char fpr[KEYFILE_FPRLEN];
	uint8_t payload[1], tmp[NOISE_DHLEN];
	size_t plen, i;
	int k, r;

	/* Up to the initiator's static key: it decrypts under our identity
	 * only (es), so the identity it was meant for is found here. */
	for (k = 0; k < rule->nids; k++) {
		if (noise_hs_init_ik(&s->hs_store, s->suite, false, p,
		    PREFACE_LEN, rule->ids[k]->sk, rule->ids[k]->pk, NULL,
		    psk) < 0) {
			HS_FAIL(f, REASON_SUITE_REFUSED,
			    "cipher suite unavailable");
			return -EBADMSG;
		}
		ss_hs_use_early_e(s);
		if (noise_hs_read1_static(&s->hs_store, m1, HS_IK1_LEN, &rs) == 0)
			break;
		noise_hs_wipe(&s->hs_store);
	}
	if (k == rule->nids) {
		HS_FAIL(f, REASON_WRONG_PEER_KEY,
		    "handshake message 1 failed authentication (the "
		    "client expects another server key)");
		return -EBADMSG;
	}
	/* Admitted?  Asked before any more work: an unknown key costs no
	 * further X25519.  (Nothing is admitted before message 1's tag,
	 * which only a holder of that key's private half can make.) */
	for (i = 0, pe = NULL; i < rule->npeers && pe == NULL; i++)
		if (sodium_memcmp(rule->peers[i]->pk, rs, NOISE_DHLEN) == 0)
			pe = rule->peers[i];
	if (pe == NULL) {
		keyfile_pub_fingerprint(rs, fpr);
		snprintf(f->buf, HS_WHYLEN, "unknown client key %s (not in "
		    "peers=)", fpr);
		HS_FAIL(f, REASON_PEER_NOT_ALLOWED, f->buf);
		noise_hs_wipe(&s->hs_store);
		return -EACCES;
	}
	ss = policy_ss(rule->ids[k], pe, tmp);
	r = noise_hs_read1_finish(&s->hs_store, m1, HS_IK1_LEN, ss, payload,
	    &plen);
	sodium_memzero(tmp, sizeof(tmp));
	if (r != 0 || plen != 0) {
		HS_FAIL(f, REASON_WRONG_KEY,
		    "handshake message 1 failed authentication (the client "
		    "does not hold the key it presents, or a wrong key)");
		noise_hs_wipe(&s->hs_store);
		return -EBADMSG;
	}
	snprintf(s->peer_id, sizeof(s->peer_id), "%s", pe->name);
	ss_auth_set(s, rs);
	ss_hs_note_keys(s, rule->nkeys > 0 ? rule->keys[0] : NULL,
	    rule->ids[k]);
	LOG(LOG_DEBUG, "peer %s is %s (identity %s)", s->peer, pe->name,
	    rule->ids[k]->name);
	return 0;
}

/*
 * Responder: message 1 is buffered after the preface; find the key by trial
 * decryption (or the identity, and check the peer), queue message 2 and
 * split.
 */
int
ss_hs_recv1(struct session *s, struct hs_fail *f)
{
	const struct policy_rule *rule = s->rule;
	uint8_t *p = s->rbuf + s->rstart;
	uint8_t payload[1], *out;
	size_t plen, mlen, want = ss_hs_msg1_len(s);
	int i = 0, r;

	if (((size_t)p[PREFACE_LEN] << 8 | p[PREFACE_LEN + 1]) != want) {
		HS_FAIL(f, REASON_BAD_HANDSHAKE,
		    "bad handshake message 1 length");
		return -EBADMSG;
	}
	s->hs_live = true;
	if (noise_suite_ik(s->suite)) {
		if ((r = hs_read1_ik(s, p, f)) < 0)
			return r;
	} else {
		for (i = 0; i < rule->nkeys; i++) {
			if (noise_hs_init(&s->hs_store, s->suite, false, p,
			    PREFACE_LEN, rule->keys[i]->key) < 0) {
				HS_FAIL(f, REASON_SUITE_REFUSED,
				    "cipher suite unavailable");
				return -EBADMSG;
			}
			ss_hs_use_early_e(s);
			if (noise_hs_read1(&s->hs_store, p + PREFACE_LEN + 2,
			    HS_MSGLEN, payload, &plen) == 0 && plen == 0)
				break;
			noise_hs_wipe(&s->hs_store);
		}
		if (i == rule->nkeys) {
			HS_FAIL(f, REASON_WRONG_KEY,
			    "handshake message 1 failed authentication "
			    "(wrong key?)");
			return -EBADMSG;
		}
		LOG(LOG_DEBUG, "peer %s used key %s", s->peer,
		    rule->keys[i]->name);
		ss_hs_note_keys(s, rule->keys[i], NULL);
	}
	s->rstart += PREFACE_LEN + 2 + want;
	out = s->tbuf;
	if (noise_hs_write2(&s->hs_store, NULL, 0, out + 2, &mlen) < 0) {
		HS_FAIL(f, REASON_LOCAL_ERROR,
		    "cannot write handshake message 2");
		return -EBADMSG;
	}
	out[0] = (uint8_t)(mlen >> 8);
	out[1] = (uint8_t)mlen;
	s->toff = 0;
	s->tend = 2 + mlen;
	noise_hs_split(&s->hs_store, &s->tx, &s->rx);
	return 0;
}
