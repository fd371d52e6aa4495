/*
 * noise: Noise_NNpsk0_25519_{ChaChaPoly,AESGCM}_SHA256, Noise revision 34.
 *
 * SymmetricState (ck, h, cs) as in the spec, section 5.2 (the CipherState
 * of section 5.1 is noise_cipher.c's); HKDF (section 4.3) from
 * HMAC-SHA-256 (sha256.c: the CPU's SHA extensions where it has them).
 * The handshake runs the NNpsk0 pattern only:
 *
 *     -> psk, e        MixKeyAndHash(psk); e: MixHash(e.pub), MixKey(e.pub)
 *     <- e, ee         e: MixHash(e.pub), MixKey(e.pub); ee: MixKey(DH(e, re))
 *
 * (the extra MixKey(e.pub) is the psk-mode rule of section 9.2), each message
 * followed by EncryptAndHash(payload).  hs->step counts the messages done;
 * a failed read or a split sets it to -1 so the state cannot be reused.
 *
 * Pure: no I/O; libsodium may read its random source for fresh ephemerals.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "noise_int.h"
#include "sha256.h"

static const char proto_chachapoly[] = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
static const char proto_aesgcm[]     = "Noise_NNpsk0_25519_AESGCM_SHA256";

/* ---- SymmetricState ---------------------------------------------------- */

/* HKDF(ck, ikm) with 2 outputs, or 3 if OUT3 is not NULL (section 4.3).
 * The outputs share temp_key's expanded HMAC key (sha256.h). */
static void
hkdf(const uint8_t ck[NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
    uint8_t out1[NOISE_HASHLEN], uint8_t out2[NOISE_HASHLEN],
    uint8_t out3[NOISE_HASHLEN])
{
	static const uint8_t one = 1, two = 2, three = 3;
	uint8_t temp_key[NOISE_HASHLEN];
	struct hmac_sha256_key k;

	hmac_sha256_key(&k, ck, NOISE_HASHLEN);
	hmac_sha256(&k, ikm, ikmlen, NULL, 0, temp_key);
	hmac_sha256_key(&k, temp_key, NOISE_HASHLEN);
	hmac_sha256(&k, &one, 1, NULL, 0, out1);
	hmac_sha256(&k, out1, NOISE_HASHLEN, &two, 1, out2);
	if (out3 != NULL)
		hmac_sha256(&k, out2, NOISE_HASHLEN, &three, 1, out3);
	sodium_memzero(temp_key, sizeof(temp_key));
	sodium_memzero(&k, sizeof(k));
}

/* h = HASH(h || data) into NEWH (which may be hs->h). */
static void
hash_with(const uint8_t h[NOISE_HASHLEN], const uint8_t *data, size_t len,
    uint8_t newh[NOISE_HASHLEN])
{
	struct sha256 st;

	sha256_init(&st);
	sha256_update(&st, h, NOISE_HASHLEN);
	if (len != 0)
		sha256_update(&st, data, len);
	sha256_final(&st, newh);
}

void
ns_mix_hash(struct noise_hs *hs, const uint8_t *data, size_t len)
{
	hash_with(hs->h, data, len, hs->h);
}

void
ns_mix_key(struct noise_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[NOISE_HASHLEN];

	hkdf(hs->ck, ikm, len, hs->ck, temp_k, NULL);
	noise_cipher_init(&hs->cs, hs->suite, temp_k);
	sodium_memzero(temp_k, sizeof(temp_k));
}

void
ns_mix_key_and_hash(struct noise_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_h[NOISE_HASHLEN], temp_k[NOISE_HASHLEN];

	hkdf(hs->ck, ikm, len, hs->ck, temp_h, temp_k);
	ns_mix_hash(hs, temp_h, sizeof(temp_h));
	noise_cipher_init(&hs->cs, hs->suite, temp_k);
	sodium_memzero(temp_h, sizeof(temp_h));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* EncryptAndHash: OUT gets len + 16 bytes (cs always has a key here). */
int
ns_encrypt_and_hash(struct noise_hs *hs, const uint8_t *pt, size_t len,
    uint8_t *out)
{
	int rc;

	if ((rc = noise_cipher_encrypt(&hs->cs, hs->h, NOISE_HASHLEN, pt, len,
	    out)) != 0)
		return rc;
	ns_mix_hash(hs, out, len + NOISE_TAGLEN);
	return 0;
}

/* DecryptAndHash: h must absorb the ciphertext, which OUT may overwrite. */
int
ns_decrypt_and_hash(struct noise_hs *hs, const uint8_t *ct, size_t ctlen,
    uint8_t *out)
{
	uint8_t newh[NOISE_HASHLEN];
	int rc;

	hash_with(hs->h, ct, ctlen, newh);
	if ((rc = noise_cipher_decrypt(&hs->cs, hs->h, NOISE_HASHLEN, ct, ctlen,
	    out)) != 0)
		return rc;
	memcpy(hs->h, newh, NOISE_HASHLEN);
	return 0;
}

/* ---- HandshakeState ---------------------------------------------------- */

/*
 * noise_hs_init(hs, suite, initiator, prologue, plen, psk): InitializeSymmetric
 * with the protocol name of SUITE, MixHash(prologue), remember PSK.
 * Returns 0 or -EINVAL (unknown or unavailable suite).
 */
int
noise_hs_init(struct noise_hs *hs, int suite, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t psk[NOISE_KEYLEN])
{
	sodium_memzero(hs, sizeof(*hs));
	hs->step = -1;
	if ((suite != NOISE_CHACHAPOLY && suite != NOISE_AESGCM) ||
	    !noise_suite_available(suite))
		return -EINVAL;
	return ns_init(hs, suite == NOISE_AESGCM ? proto_aesgcm :
	    proto_chachapoly, suite, initiator, prologue, plen, psk);
}

/*
 * InitializeSymmetric(NAME) with AEAD (NOISE_CHACHAPOLY or NOISE_AESGCM),
 * MixHash(prologue), PSK remembered; HS otherwise zeroed by the caller.
 */
int
ns_init(struct noise_hs *hs, const char *name, int aead, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t psk[NOISE_KEYLEN])
{
	size_t namelen = strlen(name);
	int suite = aead;

	hs->step = -1;
	if (psk == NULL || (prologue == NULL && plen != 0))
		return -EINVAL;

	/* h = name zero-padded if it fits in HASHLEN, else HASH(name). */
	if (namelen <= NOISE_HASHLEN)
		memcpy(hs->h, name, namelen);
	else
		sha256(name, namelen, hs->h);
	memcpy(hs->ck, hs->h, NOISE_HASHLEN);
	hs->suite = suite;
	hs->initiator = initiator;
	ns_mix_hash(hs, prologue, plen);
	memcpy(hs->psk, psk, NOISE_KEYLEN);
	hs->step = 0;
	return 0;
}

/* noise_hs_set_ephemeral(hs, sk): use SK as the local ephemeral private key
 * (tests, vectors); without it a fresh one is generated. */
void
noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t sk[NOISE_DHLEN])
{
	memcpy(hs->e_sk, sk, NOISE_DHLEN);
	/* Clamping makes the result non-zero: this cannot fail. */
	(void)crypto_scalarmult_base(hs->e_pk, hs->e_sk);
	hs->e_set = true;
	/* A DH made ahead was made with another ephemeral. */
	hs->e_dh_set = false;
	sodium_memzero(hs->e_dh, sizeof(hs->e_dh));
}

void
noise_hs_set_ephemeral_pair(struct noise_hs *hs, const uint8_t sk[NOISE_DHLEN],
    const uint8_t pk[NOISE_DHLEN])
{
	memcpy(hs->e_sk, sk, NOISE_DHLEN);
	memcpy(hs->e_pk, pk, NOISE_DHLEN);
	hs->e_set = true;
	hs->e_dh_set = false;
	sodium_memzero(hs->e_dh, sizeof(hs->e_dh));
}

/* Token e, writing side: e.pub to OUT, MixHash, and MixKey (psk mode). */
void
ns_write_e(struct noise_hs *hs, uint8_t out[NOISE_DHLEN])
{
	if (!hs->e_set) {
		randombytes_buf(hs->e_sk, NOISE_DHLEN);
		(void)crypto_scalarmult_base(hs->e_pk, hs->e_sk);
		hs->e_set = true;
	}
	memcpy(out, hs->e_pk, NOISE_DHLEN);
	ns_mix_hash(hs, hs->e_pk, NOISE_DHLEN);
	ns_mix_key(hs, hs->e_pk, NOISE_DHLEN);
}

/* Token e, reading side. */
void
ns_read_e(struct noise_hs *hs, const uint8_t in[NOISE_DHLEN])
{
	memcpy(hs->re, in, NOISE_DHLEN);
	ns_mix_hash(hs, hs->re, NOISE_DHLEN);
	ns_mix_key(hs, hs->re, NOISE_DHLEN);
}

/* Tokens ee, es, se, ss: MixKey(DH(SK, PK)); -EBADMSG for a low-order
 * peer key. */
int
ns_mix_dh(struct noise_hs *hs, const uint8_t sk[NOISE_DHLEN],
    const uint8_t pk[NOISE_DHLEN])
{
	uint8_t dh[NOISE_DHLEN];
	int rc = 0;

	if (crypto_scalarmult(dh, sk, pk) != 0)
		rc = -EBADMSG;
	else
		ns_mix_key(hs, dh, NOISE_DHLEN);
	sodium_memzero(dh, sizeof(dh));
	return rc;
}

static int
mix_ee(struct noise_hs *hs)
{
	return ns_mix_dh(hs, hs->e_sk, hs->re);
}

bool
ns_payload_fits(size_t plen)
{
	return plen <= NOISE_MSGLEN - NOISE_DHLEN - NOISE_TAGLEN;
}

/* Checks shared by the reads (EXTRA: bytes beyond e and the payload's
 * tag); marks HS dead on a bad message. */
int
ns_read_check(struct noise_hs *hs, bool initiator, int step,
    const uint8_t *msg, size_t mlen, size_t extra)
{
	if (hs->initiator != initiator || hs->step != step)
		return -EINVAL;
	if (msg == NULL || mlen < NOISE_DHLEN + NOISE_TAGLEN + extra ||
	    mlen > NOISE_MSGLEN) {
		hs->step = -1;
		return -EBADMSG;
	}
	return 0;
}

/*
 * noise_hs_write1(hs, payload, plen, out, outlen): initiator's message 1
 * (psk, e, payload); OUT gets 32 + plen + 16 bytes.  0 or -EINVAL.
 */
int
noise_hs_write1(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen)
{
	int rc;

	if (hs->ik)
		return ns_ik_write1(hs, payload, plen, out, outlen);
	if (!hs->initiator || hs->step != 0 || !ns_payload_fits(plen))
		return -EINVAL;
	ns_mix_key_and_hash(hs, hs->psk, NOISE_KEYLEN);
	ns_write_e(hs, out);
	if ((rc = ns_encrypt_and_hash(hs, payload, plen, out + NOISE_DHLEN)) != 0)
		return rc;
	*outlen = NOISE_DHLEN + plen + NOISE_TAGLEN;
	hs->step = 1;
	return 0;
}

/*
 * noise_hs_read1(hs, msg, mlen, payload, plen): responder reads message 1;
 * PAYLOAD gets mlen - 48 bytes.  0, -EBADMSG (HS dead) or -EINVAL.
 */
int
noise_hs_read1(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen)
{
	int rc;

	if (hs->ik)
		return ns_ik_read1(hs, msg, mlen, payload, plen);
	if ((rc = ns_read_check(hs, false, 0, msg, mlen, 0)) != 0)
		return rc;
	ns_mix_key_and_hash(hs, hs->psk, NOISE_KEYLEN);
	ns_read_e(hs, msg);
	if ((rc = ns_decrypt_and_hash(hs, msg + NOISE_DHLEN, mlen - NOISE_DHLEN,
	    payload)) != 0) {
		hs->step = -1;
		return rc;
	}
	*plen = mlen - NOISE_DHLEN - NOISE_TAGLEN;
	hs->step = 1;
	return 0;
}

/*
 * noise_hs_write2(hs, payload, plen, out, outlen): responder's message 2
 * (e, ee, payload).  0, -EINVAL, or -EBADMSG (peer's e is a low-order point).
 */
int
noise_hs_write2(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen)
{
	int rc;

	if (hs->ik)
		return ns_ik_write2(hs, payload, plen, out, outlen);
	if (hs->initiator || hs->step != 1 || !ns_payload_fits(plen))
		return -EINVAL;
	ns_write_e(hs, out);
	if ((rc = mix_ee(hs)) != 0 ||
	    (rc = ns_encrypt_and_hash(hs, payload, plen, out + NOISE_DHLEN)) != 0) {
		hs->step = -1;
		sodium_memzero(out, NOISE_DHLEN + plen + NOISE_TAGLEN);
		return rc;
	}
	*outlen = NOISE_DHLEN + plen + NOISE_TAGLEN;
	hs->step = 2;
	return 0;
}

/*
 * noise_hs_read2(hs, msg, mlen, payload, plen): initiator reads message 2.
 * 0, -EBADMSG (HS dead) or -EINVAL.
 */
int
noise_hs_read2(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen)
{
	int rc;

	if (hs->ik)
		return ns_ik_read2(hs, msg, mlen, payload, plen);
	if ((rc = ns_read_check(hs, true, 1, msg, mlen, 0)) != 0)
		return rc;
	ns_read_e(hs, msg);
	if ((rc = mix_ee(hs)) != 0 ||
	    (rc = ns_decrypt_and_hash(hs, msg + NOISE_DHLEN, mlen - NOISE_DHLEN,
	    payload)) != 0) {
		hs->step = -1;
		return rc;
	}
	*plen = mlen - NOISE_DHLEN - NOISE_TAGLEN;
	hs->step = 2;
	return 0;
}

/*
 * noise_hs_split(hs, tx, rx): Split(); initiator sends with the first
 * CipherState.  Erases ck, ephemeral (and its DH made ahead), psk, the
 * static secrets and cs; keeps h.  Out of order:
 * TX and RX are left without a key.
 */
void
noise_hs_split(struct noise_hs *hs, struct noise_cipher *tx,
    struct noise_cipher *rx)
{
	uint8_t k1[NOISE_HASHLEN], k2[NOISE_HASHLEN];

	sodium_memzero(tx, sizeof(*tx));
	sodium_memzero(rx, sizeof(*rx));
	if (hs->step != 2)
		return;
	hkdf(hs->ck, NULL, 0, k1, k2, NULL);
	noise_cipher_init(tx, hs->suite, hs->initiator ? k1 : k2);
	noise_cipher_init(rx, hs->suite, hs->initiator ? k2 : k1);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));

	sodium_memzero(hs->ck, sizeof(hs->ck));
	noise_cipher_wipe(&hs->cs);
	sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
	sodium_memzero(hs->psk, sizeof(hs->psk));
	sodium_memzero(hs->s_sk, sizeof(hs->s_sk));
	sodium_memzero(hs->ss, sizeof(hs->ss));
	sodium_memzero(hs->e_dh, sizeof(hs->e_dh));
	hs->step = -1;
}

/* noise_hs_hash(hs, h): the handshake hash (valid after message 2). */
void
noise_hs_hash(const struct noise_hs *hs, uint8_t h[NOISE_HASHLEN])
{
	memcpy(h, hs->h, NOISE_HASHLEN);
}

/* noise_hs_wipe(hs): erase all secrets. */
void
noise_hs_wipe(struct noise_hs *hs)
{
	sodium_memzero(hs, sizeof(*hs));
	hs->step = -1;
}
