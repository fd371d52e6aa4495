/*
 * noise_ik: Noise_IKpsk2_25519_{ChaChaPoly,AESGCM}_SHA256 (suites 3 and 4,
 * DESIGN.md "Identities"), Noise revision 34 sections 7.5 and 9:
 *
 *     <- s                  pre-message: MixHash(rs) after the prologue
 *     ...
 *     -> e, es, s, ss       e: MixHash(e.pub), MixKey(e.pub) (psk mode);
 *                           es: MixKey(DH(e, rs)); s: EncryptAndHash(s.pub);
 *                           ss: MixKey(DH(s, rs))
 *     <- e, ee, se, psk     ee: MixKey(DH(e, re)); se: MixKey(DH(e, rs))
 *                           (initiator: DH(s, re)); psk: MixKeyAndHash(psk)
 *
 * each message followed by EncryptAndHash(payload), as in noise.c, whose
 * SymmetricState steps this file uses (noise_int.h).  Message 1 proves the
 * initiator holds its static key (ss) and that it knows the responder's
 * (es); message 2 proves the responder holds its own (se) and the PSK.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "noise_int.h"

static const char proto_ik_chachapoly[] =
    "Noise_IKpsk2_25519_ChaChaPoly_SHA256";
static const char proto_ik_aesgcm[] = "Noise_IKpsk2_25519_AESGCM_SHA256";

/* The encrypted static key in message 1: s.pub and its tag. */
#define IK_SLEN (NOISE_DHLEN + NOISE_TAGLEN)

int
noise_hs_init_ik(struct noise_hs *hs, int suite, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t s_sk[NOISE_DHLEN],
    const uint8_t s_pk[NOISE_DHLEN], const uint8_t rs[NOISE_DHLEN],
    const uint8_t psk[NOISE_KEYLEN])
{
	int rc;

	sodium_memzero(hs, sizeof(*hs));
	hs->step = -1;
	if (!noise_suite_ik(suite) || !noise_suite_available(suite) ||
	    s_sk == NULL || (initiator && rs == NULL))
		return -EINVAL;
	if ((rc = ns_init(hs, suite == NOISE_IK_AESGCM ? proto_ik_aesgcm :
	    proto_ik_chachapoly, noise_suite_aead(suite), initiator, prologue,
	    plen, psk)) != 0)
		return rc;
	hs->ik = true;
	memcpy(hs->s_sk, s_sk, NOISE_DHLEN);
	if (s_pk != NULL)
		memcpy(hs->s_pk, s_pk, NOISE_DHLEN);
	else if (crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0) {
		noise_hs_wipe(hs);
		return -EINVAL;
	}
	/* <- s: both mix the responder's static public key. */
	if (initiator) {
		memcpy(hs->rs, rs, NOISE_DHLEN);
		ns_mix_hash(hs, hs->rs, NOISE_DHLEN);
	} else
		ns_mix_hash(hs, hs->s_pk, NOISE_DHLEN);
	return 0;
}

void
noise_hs_set_ss(struct noise_hs *hs, const uint8_t ss[NOISE_DHLEN])
{
	memcpy(hs->ss, ss, NOISE_DHLEN);
	hs->ss_set = true;
}

void
noise_hs_set_e_dh(struct noise_hs *hs, const uint8_t pk[NOISE_DHLEN],
    const uint8_t dh[NOISE_DHLEN])
{
	memcpy(hs->e_dh_pk, pk, NOISE_DHLEN);
	memcpy(hs->e_dh, dh, NOISE_DHLEN);
	hs->e_dh_set = true;
}

void
noise_hs_set_psk(struct noise_hs *hs, const uint8_t psk[NOISE_KEYLEN])
{
	memcpy(hs->psk, psk, NOISE_KEYLEN);
}

const uint8_t *
noise_hs_remote_static(const struct noise_hs *hs)
{
	if (!hs->ik || (!hs->initiator && hs->step < 1))
		return NULL;
	return hs->rs;
}

static bool
ik_payload_fits(size_t plen)
{
	return ns_payload_fits(plen + IK_SLEN);
}

/* A failed step: HS is dead and OUT holds nothing of it. */
static int
ik_fail(struct noise_hs *hs, uint8_t *out, size_t outlen, int rc)
{
	hs->step = -1;
	if (out != NULL)
		sodium_memzero(out, outlen);
	return rc;
}

/* Token ss: MixKey(DH(s, rs)), or of the DH given (SS not NULL). */
static int
ik_mix_ss(struct noise_hs *hs, const uint8_t *ss)
{
	if (ss == NULL)
		return ns_mix_dh(hs, hs->s_sk, hs->rs);
	ns_mix_key(hs, ss, NOISE_DHLEN);
	return 0;
}

/* Tokens es (initiator) and se (responder): MixKey(DH(e, rs)), made
 * ahead if given for this rs. */
static int
ik_mix_e_rs(struct noise_hs *hs)
{
	if (hs->e_dh_set && memcmp(hs->e_dh_pk, hs->rs, NOISE_DHLEN) == 0) {
		ns_mix_key(hs, hs->e_dh, NOISE_DHLEN);
		return 0;
	}
	return ns_mix_dh(hs, hs->e_sk, hs->rs);
}

int
ns_ik_write1(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen)
{
	size_t len = NOISE_DHLEN + IK_SLEN + plen + NOISE_TAGLEN;
	int rc;

	if (!hs->initiator || hs->step != 0 || !ik_payload_fits(plen))
		return -EINVAL;
	ns_write_e(hs, out);
	if ((rc = ik_mix_e_rs(hs)) != 0 ||
	    (rc = ns_encrypt_and_hash(hs, hs->s_pk, NOISE_DHLEN,
	    out + NOISE_DHLEN)) != 0 ||
	    (rc = ik_mix_ss(hs, hs->ss_set ? hs->ss : NULL)) != 0 ||
	    (rc = ns_encrypt_and_hash(hs, payload, plen,
	    out + NOISE_DHLEN + IK_SLEN)) != 0)
		return ik_fail(hs, out, len, rc);
	*outlen = len;
	hs->step = 1;
	return 0;
}

int
noise_hs_read1_static(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    const uint8_t **rs)
{
	uint8_t k[NOISE_DHLEN];
	int rc;

	if (!hs->ik || hs->s_read)
		return -EINVAL;
	if ((rc = ns_read_check(hs, false, 0, msg, mlen, IK_SLEN)) != 0)
		return rc;
	ns_read_e(hs, msg);
	if ((rc = ns_mix_dh(hs, hs->s_sk, hs->re)) != 0 ||
	    (rc = ns_decrypt_and_hash(hs, msg + NOISE_DHLEN, IK_SLEN, k)) != 0)
		return ik_fail(hs, NULL, 0, rc);
	memcpy(hs->rs, k, NOISE_DHLEN);
	hs->s_read = true;
	*rs = hs->rs;
	return 0;
}

int
noise_hs_read1_finish(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    const uint8_t ss[NOISE_DHLEN], uint8_t *payload, size_t *plen)
{
	int rc;

	if (!hs->ik || !hs->s_read || hs->step != 0 ||
	    mlen < NOISE_DHLEN + IK_SLEN + NOISE_TAGLEN)
		return -EINVAL;
	if ((rc = ik_mix_ss(hs, ss)) != 0 ||
	    (rc = ns_decrypt_and_hash(hs, msg + NOISE_DHLEN + IK_SLEN,
	    mlen - NOISE_DHLEN - IK_SLEN, payload)) != 0)
		return ik_fail(hs, NULL, 0, rc);
	*plen = mlen - NOISE_DHLEN - IK_SLEN - NOISE_TAGLEN;
	hs->step = 1;
	return 0;
}

int
ns_ik_read1(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen)
{
	const uint8_t *rs;
	int rc;

	if ((rc = noise_hs_read1_static(hs, msg, mlen, &rs)) != 0)
		return rc;
	return noise_hs_read1_finish(hs, msg, mlen, NULL, payload, plen);
}

int
ns_ik_write2(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen)
{
	size_t len = NOISE_DHLEN + plen + NOISE_TAGLEN;
	int rc;

	if (hs->initiator || hs->step != 1 || !ns_payload_fits(plen))
		return -EINVAL;
	ns_write_e(hs, out);
	if ((rc = ns_mix_dh(hs, hs->e_sk, hs->re)) != 0 ||
	    (rc = ik_mix_e_rs(hs)) != 0)
		return ik_fail(hs, out, len, rc);
	ns_mix_key_and_hash(hs, hs->psk, NOISE_KEYLEN);
	if ((rc = ns_encrypt_and_hash(hs, payload, plen,
	    out + NOISE_DHLEN)) != 0)
		return ik_fail(hs, out, len, rc);
	*outlen = len;
	hs->step = 2;
	return 0;
}

int
ns_ik_read2(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen)
{
	int rc;

	if ((rc = ns_read_check(hs, true, 1, msg, mlen, 0)) != 0)
		return rc;
	ns_read_e(hs, msg);
	if ((rc = ns_mix_dh(hs, hs->e_sk, hs->re)) != 0 ||
	    (rc = ns_mix_dh(hs, hs->s_sk, hs->re)) != 0)
		return ik_fail(hs, NULL, 0, rc);
	ns_mix_key_and_hash(hs, hs->psk, NOISE_KEYLEN);
	if ((rc = ns_decrypt_and_hash(hs, msg + NOISE_DHLEN,
	    mlen - NOISE_DHLEN, payload)) != 0)
		return ik_fail(hs, NULL, 0, rc);
	*plen = mlen - NOISE_DHLEN - NOISE_TAGLEN;
	hs->step = 2;
	return 0;
}
