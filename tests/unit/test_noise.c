/*
 * test_noise: shim/noise.c against the cacophony vectors for
 * Noise_NNpsk0_25519_{ChaChaPoly,AESGCM}_SHA256 (messages 1 and 2, handshake
 * hash, every transport message), plus failure cases.
 *
 * Vectors: $SOCKSEAL_VECTORS, else ../shared/vectors/noise-cacophony.json
 * (CI keeps shared/ next to the clone; tests run from the repo root), and
 * always tests/fixtures/noise-nnpsk0-vectors.json, a verbatim copy of the
 * NNpsk0 entries, so the vector test never skips.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "check.h"

#define FIXTURE "tests/fixtures/noise-nnpsk0-vectors.json"
#define SHARED  "../shared/vectors/noise-cacophony.json"

#include "vectors.h"

/* ---- vector runs -------------------------------------------------------- */

#define BUFSZ 1024

static void
run_vector(const struct vector *v, int suite)
{
	struct noise_hs hi, hr;
	uint8_t pro_i[BUFSZ], pro_r[BUFSZ], psk_i[32], psk_r[32];
	uint8_t e_i[32], e_r[32];
	long lpi, lpr;

	lpi = unhex(v->init_prologue, pro_i, sizeof(pro_i));
	lpr = unhex(v->resp_prologue, pro_r, sizeof(pro_r));
	CHECK(lpi >= 0 && lpr >= 0);
	CHECK_INT_EQ(unhex(v->init_psk, psk_i, 32), 32);
	CHECK_INT_EQ(unhex(v->resp_psk, psk_r, 32), 32);
	CHECK_INT_EQ(unhex(v->init_e, e_i, 32), 32);
	CHECK_INT_EQ(unhex(v->resp_e, e_r, 32), 32);
	if (lpi < 0 || lpr < 0)
		return;
	CHECK_INT_EQ(noise_hs_init(&hi, suite, true, pro_i, (size_t)lpi, psk_i), 0);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, pro_r, (size_t)lpr, psk_r), 0);
	noise_hs_set_ephemeral(&hi, e_i);
	noise_hs_set_ephemeral(&hr, e_r);
	vectors_run(&hi, &hr, v, NULL, NULL);
}

/* Runs the NNpsk0 SHA256 vectors in PATH; returns how many ran, -1 if the
 * file could not be read. */
static int
run_file(const char *path)
{
	static const char *const names[] = {
		"Noise_NNpsk0_25519_ChaChaPoly_SHA256",
		"Noise_NNpsk0_25519_AESGCM_SHA256",
	};
	static const int suites[] = { NOISE_CHACHAPOLY, NOISE_AESGCM };

	return vectors_each(path, names, suites, 2, run_vector);
}

static void
test_vectors(void)
{
	const char *env = getenv("SOCKSEAL_VECTORS");
	const char *primary = env != NULL && *env != '\0' ? env : SHARED;
	int n;

	n = run_file(primary);
	if (n < 0) {
		/* An explicit path must exist; the default one may not. */
		CHECK(env == NULL || *env == '\0');
		fprintf(stderr, "test_noise: %s not readable, using %s only\n",
		    primary, FIXTURE);
	} else {
		CHECK_INT_EQ(n, 2);
	}
	CHECK_INT_EQ(run_file(FIXTURE), 2);
}

/* ---- handshakes with fresh ephemerals ----------------------------------- */

static const uint8_t prologue[8] = { 0x53, 0x4b, 0x53, 0x4c, 1, 1, 0, 0 };

static void
psk_fill(uint8_t psk[32], uint8_t seed)
{
	int i;

	for (i = 0; i < 32; i++)
		psk[i] = (uint8_t)(seed + i);
}

/* Message 1 from a fresh initiator into M1 (48 bytes, empty payload). */
static void
make_msg1(int suite, const uint8_t psk[32], struct noise_hs *hi,
    uint8_t m1[48])
{
	size_t len = 0;

	CHECK_INT_EQ(noise_hs_init(hi, suite, true, prologue, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_write1(hi, NULL, 0, m1, &len), 0);
	CHECK_INT_EQ(len, 48);
}

static void
test_roundtrip(int suite)
{
	struct noise_hs hi, hr;
	struct noise_cipher itx, irx, rtx, rrx;
	uint8_t psk[32], m1[48], m2[48], hh_i[32], hh_r[32], pay[1];
	uint8_t buf[64 + NOISE_TAGLEN], ct[64 + NOISE_TAGLEN], ref[64];
	size_t len = 0, plen = 99;
	int i;

	psk_fill(psk, 7);
	make_msg1(suite, psk, &hi, m1);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, prologue, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), 0);
	CHECK_INT_EQ(plen, 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), 0);
	CHECK_INT_EQ(len, 48);
	plen = 99;
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, 48, pay, &plen), 0);
	CHECK_INT_EQ(plen, 0);
	noise_hs_hash(&hi, hh_i);
	noise_hs_hash(&hr, hh_r);
	CHECK_MEM_EQ(hh_i, hh_r, 32);
	noise_hs_split(&hi, &itx, &irx);
	noise_hs_split(&hr, &rtx, &rrx);
	CHECK_MEM_EQ(itx.k, rrx.k, 32);
	CHECK_MEM_EQ(irx.k, rtx.k, 32);
	CHECK(memcmp(itx.k, irx.k, 32) != 0);
	CHECK(itx.has_key && irx.has_key && itx.n == 0);

	/* the split erased the handshake's secrets */
	CHECK(sodium_is_zero(hi.ck, 32) && sodium_is_zero(hi.e_sk, 32) &&
	    sodium_is_zero(hi.psk, 32) && !hi.cs.has_key);

	/* in-place encryption in both directions */
	for (i = 0; i < 64; i++)
		ref[i] = (uint8_t)i;
	memcpy(buf, ref, 64);
	CHECK_INT_EQ(noise_cipher_encrypt(&itx, NULL, 0, buf, 64, buf), 0);
	CHECK(memcmp(buf, ref, 64) != 0);
	CHECK_INT_EQ(noise_cipher_decrypt(&rrx, NULL, 0, buf, 80, buf), 0);
	CHECK_MEM_EQ(buf, ref, 64);
	memcpy(buf, ref, 64);
	CHECK_INT_EQ(noise_cipher_encrypt(&rtx, ref, 3, buf, 64, buf), 0);
	memcpy(ct, buf, sizeof(ct));
	CHECK_INT_EQ(noise_cipher_decrypt(&irx, ref, 4, buf, 80, buf),
	    -EBADMSG);                        /* AD is authenticated */
	CHECK_INT_EQ(irx.n, 0);               /* n stays on failure */
	CHECK(sodium_is_zero(buf, 64));       /* libsodium wipes OUT */
	CHECK_INT_EQ(noise_cipher_decrypt(&irx, ref, 3, ct, 80, buf), 0);
	CHECK_MEM_EQ(buf, ref, 64);
	CHECK_INT_EQ(irx.n, 1);

	/* order: nothing more after the split */
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &len), -EINVAL);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, 48, pay, &plen), -EINVAL);

	noise_cipher_wipe(&itx);
	CHECK(!itx.has_key && sodium_is_zero(itx.k, 32));
	noise_cipher_wipe(&irx);
	noise_cipher_wipe(&rtx);
	noise_cipher_wipe(&rrx);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

static void
test_wrong_psk(int suite)
{
	struct noise_hs hi, hr;
	uint8_t psk[32], psk2[32], m1[48], pay[1];
	size_t plen;

	psk_fill(psk, 1);
	psk_fill(psk2, 1);
	psk2[31] ^= 1;
	make_msg1(suite, psk, &hi, m1);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, prologue, 8, psk2), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), -EBADMSG);
	/* a failed state cannot be used further */
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m1, &plen), -EINVAL);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), -EINVAL);

	/* a different prologue (e.g. another suite byte) fails too */
	{
		uint8_t p2[8];

		memcpy(p2, prologue, 8);
		p2[5] = 2;
		CHECK_INT_EQ(noise_hs_init(&hr, suite, false, p2, 8, psk), 0);
		CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen),
		    -EBADMSG);
	}
	/* a different suite fails too, where both are available */
	if (noise_suite_available(NOISE_AESGCM)) {
		int other = suite == NOISE_AESGCM ? NOISE_CHACHAPOLY :
		    NOISE_AESGCM;

		CHECK_INT_EQ(noise_hs_init(&hr, other, false, prologue, 8, psk),
		    0);
		CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen),
		    -EBADMSG);
	}
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

static void
test_tamper(int suite)
{
	struct noise_hs hi, hr, hi2, hr2;
	uint8_t psk[32], m1[48], m2[48], t[48], pay[1];
	size_t len, plen;
	int i, bad1 = 0, bad2 = 0;

	psk_fill(psk, 3);
	make_msg1(suite, psk, &hi, m1);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, prologue, 8, psk), 0);
	for (i = 0; i < 48 * 8; i++) {
		memcpy(t, m1, 48);
		t[i / 8] ^= (uint8_t)(1 << (i % 8));
		hr2 = hr;
		if (noise_hs_read1(&hr2, t, 48, pay, &plen) != -EBADMSG)
			bad1++;
	}
	CHECK_INT_EQ(bad1, 0);
	/* truncated, extended */
	hr2 = hr;
	CHECK_INT_EQ(noise_hs_read1(&hr2, m1, 47, pay, &plen), -EBADMSG);
	hr2 = hr;
	CHECK_INT_EQ(noise_hs_read1(&hr2, m1, 0, pay, &plen), -EBADMSG);

	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), 0);
	for (i = 0; i < 48 * 8; i++) {
		memcpy(t, m2, 48);
		t[i / 8] ^= (uint8_t)(1 << (i % 8));
		hi2 = hi;
		if (noise_hs_read2(&hi2, t, 48, pay, &plen) != -EBADMSG)
			bad2++;
	}
	CHECK_INT_EQ(bad2, 0);
	hi2 = hi;
	CHECK_INT_EQ(noise_hs_read2(&hi2, m2, 32, pay, &plen), -EBADMSG);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, 48, pay, &plen), 0);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
	noise_hs_wipe(&hi2);
	noise_hs_wipe(&hr2);
}

static void
test_order(void)
{
	struct noise_hs hi, hr;
	uint8_t psk[32], m[64], pay[1];
	size_t len, plen;
	struct noise_cipher tx, rx;

	psk_fill(psk, 5);
	CHECK(noise_suite_available(NOISE_CHACHAPOLY));
	CHECK_INT_EQ(noise_suite_available(NOISE_AESGCM),
	    crypto_aead_aes256gcm_is_available());
	CHECK(!noise_suite_available(0));
	CHECK(!noise_suite_available(5));
	CHECK(noise_suite_available(NOISE_IK_CHACHAPOLY));
	CHECK_INT_EQ(noise_hs_init(&hi, 5, true, prologue, 8, psk), -EINVAL);
	/* an identity suite needs the static keys (noise_hs_init_ik) */
	CHECK_INT_EQ(noise_hs_init(&hi, NOISE_IK_CHACHAPOLY, true, prologue, 8,
	    psk), -EINVAL);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m, &len), -EINVAL);

	CHECK_INT_EQ(noise_hs_init(&hi, NOISE_CHACHAPOLY, true, prologue, 8,
	    psk), 0);
	CHECK_INT_EQ(noise_hs_init(&hr, NOISE_CHACHAPOLY, false, prologue, 8,
	    psk), 0);
	CHECK_INT_EQ(noise_hs_read1(&hi, m, 48, pay, &plen), -EINVAL);
	CHECK_INT_EQ(noise_hs_write2(&hi, NULL, 0, m, &len), -EINVAL);
	CHECK_INT_EQ(noise_hs_read2(&hi, m, 48, pay, &plen), -EINVAL);
	CHECK_INT_EQ(noise_hs_write1(&hr, NULL, 0, m, &len), -EINVAL);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m, &len), -EINVAL);
	CHECK_INT_EQ(noise_hs_read2(&hr, m, 48, pay, &plen), -EINVAL);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, NOISE_MSGLEN, m, &len),
	    -EINVAL);                         /* payload too large */
	/* split before the handshake is done gives no usable keys */
	noise_hs_split(&hi, &tx, &rx);
	CHECK(!tx.has_key && !rx.has_key);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m, &len), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m, &len), -EINVAL);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

/* An initiator that sends a low-order ephemeral (knowing the psk): the
 * responder's ee DH must fail rather than derive a known key. */
static void
test_low_order(int suite)
{
	struct noise_hs hi, hr;
	uint8_t psk[32], m1[48], m2[48], pay[1];
	size_t len, plen;

	psk_fill(psk, 9);
	CHECK_INT_EQ(noise_hs_init(&hi, suite, true, prologue, 8, psk), 0);
	memset(hi.e_pk, 0, 32);   /* the identity point */
	hi.e_set = true;
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &len), 0);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, prologue, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), -EBADMSG);
	CHECK(sodium_is_zero(m2, 48));
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

/* libsodium's own ENCRYPT(k, n, "", pt[32]) into ref[48]: the reference. */
static void
ref_encrypt(int suite, const uint8_t k[32], uint64_t n, const uint8_t pt[32],
    uint8_t ref[48])
{
	uint8_t nonce[12];
	int i;

	/* 4 zero bytes, then n: LE for ChaChaPoly, BE for AESGCM */
	memset(nonce, 0, 12);
	for (i = 0; i < 8; i++)
		nonce[suite == NOISE_AESGCM ? 11 - i : 4 + i] =
		    (uint8_t)(n >> (8 * i));
	if (suite == NOISE_AESGCM)
		crypto_aead_aes256gcm_encrypt(ref, NULL, pt, 32, NULL, 0,
		    NULL, nonce, k);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt(ref, NULL, pt, 32,
		    NULL, 0, NULL, nonce, k);
}

/* Nonce encoding, rekey, exhausted nonce, no key: against libsodium directly. */
static void
test_cipher(int suite)
{
	struct noise_cipher c, d;
	uint8_t k[32], ref[32 + 16], out[32 + 16], pt[32];
	int i;

	for (i = 0; i < 32; i++) {
		k[i] = (uint8_t)(0xa0 + i);
		pt[i] = (uint8_t)i;
	}
	noise_cipher_init(&c, suite, k);
	c.n = 0x0102030405060708ULL;

	ref_encrypt(suite, k, 0x0102030405060708ULL, pt, ref);
	CHECK_INT_EQ(noise_cipher_encrypt(&c, NULL, 0, pt, 32, out), 0);
	CHECK_MEM_EQ(out, ref, 48);
	CHECK(c.n == 0x0102030405060709ULL);

	/* rekey: k' = ENCRYPT(k, 2^64-1, "", 0^32)[0..32), n unchanged */
	memset(pt, 0, 32);
	ref_encrypt(suite, k, UINT64_MAX, pt, ref);
	noise_cipher_rekey(&c);
	CHECK_MEM_EQ(c.k, ref, 32);
	CHECK(c.n == 0x0102030405060709ULL);

	/* the next record is sealed with k' (and AES-GCM's schedule of k') */
	memcpy(k, ref, 32);
	for (i = 0; i < 32; i++)
		pt[i] = (uint8_t)(0x30 + i);
	ref_encrypt(suite, k, 0x0102030405060709ULL, pt, ref);
	CHECK_INT_EQ(noise_cipher_encrypt(&c, NULL, 0, pt, 32, out), 0);
	CHECK_MEM_EQ(out, ref, 48);
	d = c;
	d.n--;
	CHECK_INT_EQ(noise_cipher_decrypt(&d, NULL, 0, ref, 48, out), 0);
	CHECK_MEM_EQ(out, pt, 32);

	/* 2^64-2 is the last usable nonce; 2^64-1 is refused both ways */
	c.n = UINT64_MAX - 1;
	memset(pt, 0x55, 32);
	CHECK_INT_EQ(noise_cipher_encrypt(&c, NULL, 0, pt, 32, out), 0);
	CHECK(c.n == UINT64_MAX);
	memcpy(out, pt, 32);
	CHECK_INT_EQ(noise_cipher_encrypt(&c, NULL, 0, out, 32, out),
	    -EOVERFLOW);
	CHECK(sodium_is_zero(out, 48));       /* no plaintext left behind */
	CHECK(c.n == UINT64_MAX);
	d = c;
	CHECK_INT_EQ(noise_cipher_decrypt(&d, NULL, 0, ref, 48, out),
	    -EBADMSG);

	/* no key: fail closed */
	memset(&d, 0, sizeof(d));
	memcpy(out, pt, 32);
	CHECK_INT_EQ(noise_cipher_encrypt(&d, NULL, 0, out, 32, out), -EINVAL);
	CHECK(sodium_is_zero(out, 48));
	CHECK_INT_EQ(noise_cipher_decrypt(&d, NULL, 0, ref, 48, out),
	    -EBADMSG);
	/* shorter than a tag */
	c.n = 0;
	CHECK_INT_EQ(noise_cipher_decrypt(&c, NULL, 0, ref, 15, out),
	    -EBADMSG);
	noise_cipher_wipe(&c);
}

int
main(void)
{
	int suites[2] = { NOISE_CHACHAPOLY, NOISE_AESGCM };
	int i;

	if (sodium_init() < 0) {
		fprintf(stderr, "sodium_init failed\n");
		return 1;
	}
	/* The vectors need both suites; CI hardware must have AES-NI. */
	CHECK(noise_suite_available(NOISE_AESGCM));

	test_vectors();
	test_order();
	for (i = 0; i < 2; i++) {
		if (!noise_suite_available(suites[i]))
			continue;
		test_roundtrip(suites[i]);
		test_wrong_psk(suites[i]);
		test_tamper(suites[i]);
		test_low_order(suites[i]);
		test_cipher(suites[i]);
	}
	CHECK_DONE();
}
