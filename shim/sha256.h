/*
 * sha256: SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) for the Noise
 * handshake's hashing (noise.c).  The same bytes as libsodium's, faster:
 * on a CPU with the x86 SHA extensions the compression runs on them
 * (about four times libsodium's C), elsewhere on portable C.  A handshake
 * hashes some sixty blocks per side, about a tenth of its CPU before this.
 *
 * An HMAC key is expanded once (its inner and outer states after the
 * padded key block) and used for several messages: HKDF's outputs share
 * one key, saving two compressions per output.
 *
 * Nothing here depends on secret data for its timing or memory access.
 */
#ifndef SOCKSEAL_SHA256_H
#define SOCKSEAL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN   32
#define SHA256_BLOCK 64

struct sha256 {
	uint32_t s[8];
	uint64_t n;                     /* bytes hashed */
	uint8_t  buf[SHA256_BLOCK];     /* n % 64 of them wait here */
};

struct hmac_sha256_key {
	struct sha256 in, out;          /* after the ipad / opad block */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
void sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/* KEY of KLEN bytes (hashed first if over a block, as RFC 2104 says). */
void hmac_sha256_key(struct hmac_sha256_key *k, const uint8_t *key,
    size_t klen);
/* HMAC(key, a || b); B may be NULL with BLEN 0. */
void hmac_sha256(const struct hmac_sha256_key *k, const void *a, size_t alen,
    const void *b, size_t blen, uint8_t out[SHA256_LEN]);

/* sha256_accel(): does the compression run on the CPU's SHA extensions?
 * sha256_force_portable(on): tests only, to check both paths. */
bool sha256_accel(void);
void sha256_force_portable(bool on);

#endif
