/*
 * noise_cipher: the Noise CipherState (k, n; spec section 5.1) of every
 * suite: the AEAD (ChaCha20-Poly1305 IETF, or AES-256-GCM with its key
 * schedule kept), the nonce encoding, Rekey(); and which suites this CPU
 * runs.  noise.h has the interface.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"

#define NONCE_MAX UINT64_MAX   /* reserved for Rekey() */

/* noise_suite_available(suite): true where libsodium can run it here. */
bool
noise_suite_available(int suite)
{
	/* Idempotent; is_available() only answers after sodium_init(). */
	if (sodium_init() < 0)
		return false;
	switch (suite) {
	case NOISE_CHACHAPOLY:
	case NOISE_IK_CHACHAPOLY:
		return true;
	case NOISE_AESGCM:
	case NOISE_IK_AESGCM:
		return crypto_aead_aes256gcm_is_available() == 1;
	default:
		return false;
	}
}

/* ---- CipherState ------------------------------------------------------- */

/* The 96-bit AEAD nonce: 4 zero bytes, then n (LE for ChaCha, BE for GCM). */
static void
nonce_encode(int suite, uint64_t n, uint8_t nonce[12])
{
	int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++) {
		uint8_t b = (uint8_t)(n >> (8 * i));

		if (suite == NOISE_AESGCM)
			nonce[11 - i] = b;
		else
			nonce[4 + i] = b;
	}
}

/* ENCRYPT(k, n, ad, pt) with C's key: OUT gets len + 16 bytes; OUT may
 * equal PT. */
static void
aead_encrypt(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
	uint8_t nonce[12];

	nonce_encode(c->suite, n, nonce);
	if (c->suite == NOISE_AESGCM)
		crypto_aead_aes256gcm_encrypt_afternm(out, NULL, pt, len, ad,
		    adlen, NULL, nonce, &c->gcm);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len,
		    ad, adlen, NULL, nonce, c->k);
}

/* DECRYPT(k, n, ad, ct) with C's key: 0 or -EBADMSG; OUT may equal CT. */
static int
aead_decrypt(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	uint8_t nonce[12];
	int rc;

	nonce_encode(c->suite, n, nonce);
	if (c->suite == NOISE_AESGCM)
		rc = crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, ct,
		    ctlen, ad, adlen, nonce, &c->gcm);
	else
		rc = crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL,
		    ct, ctlen, ad, adlen, nonce, c->k);
	return rc == 0 ? 0 : -EBADMSG;
}

/* cipher_setkey(c, k): C's key becomes K (K may be C's own k). */
static void
cipher_setkey(struct noise_cipher *c, const uint8_t k[NOISE_KEYLEN])
{
	memmove(c->k, k, NOISE_KEYLEN);
	if (c->suite == NOISE_AESGCM)
		crypto_aead_aes256gcm_beforenm(&c->gcm, c->k);
}

void
noise_cipher_init(struct noise_cipher *c, int suite,
    const uint8_t k[NOISE_KEYLEN])
{
	c->suite = suite;
	cipher_setkey(c, k);
	c->n = 0;
	c->has_key = true;
}

/*
 * noise_cipher_encrypt(c, ad, adlen, pt, len, out): EncryptWithAd; OUT gets
 * len + 16 bytes, in place allowed.  0, or -EINVAL (no key) / -EOVERFLOW
 * (nonce exhausted) with OUT zeroed.  Noise would pass plaintext through
 * when there is no key; in this protocol that only happens by mistake, so
 * fail closed instead.
 */
int
noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t len, uint8_t *out)
{
	int rc;

	if (!c->has_key) {
		rc = -EINVAL;
		goto err0;
	}
	if (c->n == NONCE_MAX) {
		rc = -EOVERFLOW;
		goto err0;
	}
	aead_encrypt(c, c->n, ad, adlen, pt, len, out);
	c->n++;

	/* Success! */
	return 0;

err0:
	/* Failure!  Never leave plaintext in OUT (it may be PT). */
	sodium_memzero(out, len + NOISE_TAGLEN);
	return rc;
}

/*
 * noise_cipher_decrypt(c, ad, adlen, ct, ctlen, out): DecryptWithAd; OUT gets
 * ctlen - 16 bytes, in place allowed.  0 or -EBADMSG; n advances on success.
 */
int
noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	if (!c->has_key || c->n == NONCE_MAX || ctlen < NOISE_TAGLEN)
		return -EBADMSG;
	if (aead_decrypt(c, c->n, ad, adlen, ct, ctlen, out))
		return -EBADMSG;
	c->n++;
	return 0;
}

/* noise_cipher_rekey(c): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 0^32);
 * n is unchanged (spec section 11.3). */
void
noise_cipher_rekey(struct noise_cipher *c)
{
	uint8_t buf[NOISE_KEYLEN + NOISE_TAGLEN];

	if (!c->has_key)
		return;
	memset(buf, 0, NOISE_KEYLEN);
	aead_encrypt(c, NONCE_MAX, NULL, 0, buf, NOISE_KEYLEN, buf);
	cipher_setkey(c, buf);
	sodium_memzero(buf, sizeof(buf));
}

/* noise_cipher_wipe(c): erase the key (and forget there was one). */
void
noise_cipher_wipe(struct noise_cipher *c)
{
	sodium_memzero(c, sizeof(*c));
}
