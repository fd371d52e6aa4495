/*
 * test_sha256: shim/sha256.c against the standards' examples (FIPS 180-4's
 * "abc", the empty string, RFC 4231 case 2) and against libsodium's
 * SHA-256 and HMAC-SHA-256 on every length from 0 to 300 bytes, fed in
 * one piece and in random pieces, on both compression paths (the CPU's
 * SHA extensions when it has them, and the portable C).
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "sha256.h"

static void
hex(const char *s, uint8_t *out)
{
	size_t i;

	for (i = 0; s[2 * i] != '\0'; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

static void
test_examples(void)
{
	uint8_t got[SHA256_LEN], want[SHA256_LEN];
	struct hmac_sha256_key k;

	sha256("abc", 3, got);
	hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    want);
	CHECK_MEM_EQ(got, want, SHA256_LEN);
	sha256("", 0, got);
	hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    want);
	CHECK_MEM_EQ(got, want, SHA256_LEN);
	hmac_sha256_key(&k, (const uint8_t *)"Jefe", 4);
	hmac_sha256(&k, "what do ya want ", 16, "for nothing?", 12, got);
	hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    want);
	CHECK_MEM_EQ(got, want, SHA256_LEN);
}

static void
test_against_libsodium(void)
{
	static uint8_t data[300], key[140];
	uint8_t got[SHA256_LEN], want[SHA256_LEN];
	struct sha256 h;
	struct hmac_sha256_key k;
	crypto_auth_hmacsha256_state st;
	size_t len, off, piece, klen, split;
	int bad = 0, hbad = 0;

	randombytes_buf(data, sizeof(data));
	randombytes_buf(key, sizeof(key));
	for (len = 0; len <= sizeof(data); len++) {
		crypto_hash_sha256(want, data, len);
		sha256(data, len, got);
		bad += memcmp(got, want, SHA256_LEN) != 0;
		sha256_init(&h);
		for (off = 0; off < len; off += piece) {
			piece = 1 + randombytes_uniform(70);
			if (piece > len - off)
				piece = len - off;
			sha256_update(&h, data + off, piece);
		}
		sha256_final(&h, got);
		bad += memcmp(got, want, SHA256_LEN) != 0;

		klen = len % sizeof(key);
		split = len == 0 ? 0 : randombytes_uniform((uint32_t)len + 1);
		crypto_auth_hmacsha256_init(&st, key, klen);
		crypto_auth_hmacsha256_update(&st, data, len);
		crypto_auth_hmacsha256_final(&st, want);
		hmac_sha256_key(&k, key, klen);
		hmac_sha256(&k, data, split, data + split, len - split, got);
		hbad += memcmp(got, want, SHA256_LEN) != 0;
		/* the expanded key is reusable */
		hmac_sha256(&k, data, len, NULL, 0, got);
		hbad += memcmp(got, want, SHA256_LEN) != 0;
	}
	CHECK_INT_EQ(bad, 0);
	CHECK_INT_EQ(hbad, 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	printf("test_sha256: SHA extensions %s\n",
	    sha256_accel() ? "in use" : "not available: portable path only");
	test_examples();
	test_against_libsodium();
	sha256_force_portable(true);
	CHECK(!sha256_accel());
	test_examples();
	test_against_libsodium();
	sha256_force_portable(false);
	CHECK_DONE();
}
