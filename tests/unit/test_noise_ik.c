/*
 * test_noise_ik: shim/noise_ik.c, Noise_IKpsk2_25519_{ChaChaPoly,AESGCM}_SHA256
 * (suites 3 and 4), against the cacophony vectors bit for bit (messages 1
 * and 2, the handshake hash, every transport message), then the protocol's
 * own use: empty payloads give messages of exactly 96 and 48 bytes, the
 * responder learns the initiator's static key, and every wrong key, PSK or
 * byte fails the handshake where it should.
 *
 * Vectors: $SOCKSEAL_VECTORS, else ../shared/vectors/noise-cacophony.json,
 * and always tests/fixtures/noise-ikpsk2-vectors.json (a verbatim copy), so
 * the vector test never skips.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "check.h"

#define FIXTURE "tests/fixtures/noise-ikpsk2-vectors.json"
#define SHARED  "../shared/vectors/noise-cacophony.json"

#include "vectors.h"

#define BUFSZ 1024

static bool aes_ok;

/* How run_vector gives the DH(e, rs) of es and se: computed in the
 * handshake, made ahead, or made ahead for another key (unused). */
static enum { DH_COMPUTED, DH_AHEAD, DH_OTHER_KEY } dh_mode;

/* The protocol's prologue: a suite 3 preface. */
static const uint8_t prologue[8] = { 0x53, 0x4b, 0x53, 0x4c, 1, 3, 0, 0 };

/* After message 1 the responder knows the initiator's static key. */
static void
check_peer(struct noise_hs *hr, void *arg)
{
	const uint8_t *rs = noise_hs_remote_static(hr);

	CHECK(rs != NULL);
	if (rs != NULL)
		CHECK_MEM_EQ(rs, arg, 32);
}

static void
run_vector(const struct vector *v, int suite)
{
	struct noise_hs hi, hr;
	uint8_t pro_i[BUFSZ], pro_r[BUFSZ], psk_i[32], psk_r[32];
	uint8_t e_i[32], e_r[32], s_i[32], s_r[32], rs_i[32], pub[32];
	long lpi, lpr;

	if (suite == NOISE_IK_AESGCM && !aes_ok)
		return;
	lpi = unhex(v->init_prologue, pro_i, sizeof(pro_i));
	lpr = unhex(v->resp_prologue, pro_r, sizeof(pro_r));
	CHECK(lpi >= 0 && lpr >= 0);
	CHECK_INT_EQ(unhex(v->init_psk, psk_i, 32), 32);
	CHECK_INT_EQ(unhex(v->resp_psk, psk_r, 32), 32);
	CHECK_INT_EQ(unhex(v->init_e, e_i, 32), 32);
	CHECK_INT_EQ(unhex(v->resp_e, e_r, 32), 32);
	CHECK_INT_EQ(unhex(v->init_s, s_i, 32), 32);
	CHECK_INT_EQ(unhex(v->resp_s, s_r, 32), 32);
	CHECK_INT_EQ(unhex(v->init_rs, rs_i, 32), 32);
	if (lpi < 0 || lpr < 0)
		return;
	/* the vector's remote static is the responder's public key */
	crypto_scalarmult_base(pub, s_r);
	CHECK_MEM_EQ(pub, rs_i, 32);
	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, pro_i, (size_t)lpi,
	    s_i, NULL, rs_i, psk_i), 0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, pro_r, (size_t)lpr,
	    s_r, NULL, NULL, psk_r), 0);
	noise_hs_set_ephemeral(&hi, e_i);
	noise_hs_set_ephemeral(&hr, e_r);
	CHECK(noise_hs_remote_static(&hr) == NULL);
	crypto_scalarmult_base(pub, s_i);
	if (dh_mode != DH_COMPUTED) {
		/* es (initiator) and se (responder) made ahead: DH(e, rs),
		 * or a DH for another key, which must be left unused. */
		uint8_t dh[32], other[32], *ki = rs_i, *kr = pub;

		if (dh_mode == DH_OTHER_KEY) {
			memset(other, 9, sizeof(other));
			ki = kr = other;
		}
		CHECK_INT_EQ(crypto_scalarmult(dh, e_i, ki), 0);
		noise_hs_set_e_dh(&hi, ki, dh);
		CHECK_INT_EQ(crypto_scalarmult(dh, e_r, kr), 0);
		noise_hs_set_e_dh(&hr, kr, dh);
	}
	vectors_run(&hi, &hr, v, check_peer, pub);
}

static int
run_file(const char *path)
{
	static const char *const names[] = {
		"Noise_IKpsk2_25519_ChaChaPoly_SHA256",
		"Noise_IKpsk2_25519_AESGCM_SHA256",
	};
	static const int suites[] = { NOISE_IK_CHACHAPOLY, NOISE_IK_AESGCM };

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
		CHECK(env == NULL || *env == '\0');
		fprintf(stderr, "test_noise_ik: %s not readable, using %s only\n",
		    primary, FIXTURE);
	} else {
		CHECK_INT_EQ(n, 2);
	}
	CHECK_INT_EQ(run_file(FIXTURE), 2);
	/* The same bytes with es and se made ahead, right or for another
	 * key. */
	for (dh_mode = DH_AHEAD; dh_mode <= DH_OTHER_KEY; dh_mode++)
		CHECK_INT_EQ(run_file(FIXTURE), 2);
	dh_mode = DH_COMPUTED;
}

/*
 * A DH made ahead for rs is what es and se use: a wrong value under the
 * right key breaks message 1 (initiator) or message 2 (responder).
 */
static void
test_e_dh_used(int suite)
{
	struct noise_hs hi, hr;
	uint8_t si[32], pi[32], sr[32], pr[32], ei[32], er[32], bad[32];
	uint8_t m1[128], m2[64], pay[128];
	size_t l1, l2, pl;
	int side;

	randombytes_buf(si, 32);
	randombytes_buf(sr, 32);
	crypto_scalarmult_base(pi, si);
	crypto_scalarmult_base(pr, sr);
	memset(bad, 0x5a, sizeof(bad));
	for (side = 0; side < 2; side++) {
		randombytes_buf(ei, 32);
		randombytes_buf(er, 32);
		CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, si,
		    pi, pr, bad), 0);
		CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, prologue, 8, sr,
		    pr, NULL, bad), 0);
		noise_hs_set_ephemeral(&hi, ei);
		noise_hs_set_ephemeral(&hr, er);
		if (side == 0)
			noise_hs_set_e_dh(&hi, pr, bad);
		else
			noise_hs_set_e_dh(&hr, pi, bad);
		CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
		CHECK_INT_EQ(noise_hs_read1(&hr, m1, l1, pay, &pl),
		    side == 0 ? -EBADMSG : 0);
		if (side == 1) {
			CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &l2), 0);
			CHECK_INT_EQ(noise_hs_read2(&hi, m2, l2, pay, &pl),
			    -EBADMSG);
		}
		noise_hs_wipe(&hi);
		noise_hs_wipe(&hr);
	}
	/* A new ephemeral set after the DH drops it. */
	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, si, pi, pr,
	    bad), 0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, prologue, 8, sr, pr,
	    NULL, bad), 0);
	noise_hs_set_ephemeral(&hi, ei);
	noise_hs_set_e_dh(&hi, pr, bad);
	noise_hs_set_ephemeral(&hi, ei);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, l1, pay, &pl), 0);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

/* ---- the protocol's use: fresh ephemerals, empty payloads --------------- */


struct party {
	uint8_t sk[32], pk[32];
};

static void
party_new(struct party *p)
{
	randombytes_buf(p->sk, 32);
	crypto_scalarmult_base(p->pk, p->sk);
}

/*
 * One handshake: I (knowing R_PUB as the responder's key, PSK_I) against
 * R (its key R_SK, PSK_R).  Returns the first failing step (1: read1,
 * 2: read2) or 0, with the transport checked both ways on success.
 */
static int
handshake(int suite, const struct party *i, const uint8_t r_pub[32],
    const uint8_t psk_i[32], const struct party *r, const uint8_t psk_r[32],
    uint8_t peer_seen[32])
{
	struct noise_hs hi, hr;
	struct noise_cipher itx, irx, rtx, rrx;
	uint8_t m1[128], m2[64], pay[128], rec[64], out[64];
	size_t l1, l2, pl;
	int rc = 0;

	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, i->sk, i->pk,
	    r_pub, psk_i), 0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, prologue, 8, r->sk, NULL,
	    NULL, psk_r), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
	CHECK_INT_EQ(l1, 96);
	if (noise_hs_read1(&hr, m1, l1, pay, &pl) != 0) {
		rc = 1;
		goto out;
	}
	CHECK_INT_EQ(pl, 0);
	memcpy(peer_seen, noise_hs_remote_static(&hr), 32);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &l2), 0);
	CHECK_INT_EQ(l2, 48);
	if (noise_hs_read2(&hi, m2, l2, pay, &pl) != 0) {
		rc = 2;
		goto out;
	}
	noise_hs_split(&hi, &itx, &irx);
	noise_hs_split(&hr, &rtx, &rrx);
	CHECK_INT_EQ(noise_cipher_encrypt(&itx, NULL, 0, (const uint8_t *)"ping",
	    4, rec), 0);
	CHECK_INT_EQ(noise_cipher_decrypt(&rrx, NULL, 0, rec, 20, out), 0);
	CHECK_MEM_EQ(out, "ping", 4);
	CHECK_INT_EQ(noise_cipher_encrypt(&rtx, NULL, 0, (const uint8_t *)"pong",
	    4, rec), 0);
	CHECK_INT_EQ(noise_cipher_decrypt(&irx, NULL, 0, rec, 20, out), 0);
	CHECK_MEM_EQ(out, "pong", 4);
out:
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
	return rc;
}

static void
test_roles(int suite)
{
	struct party a, b, c;
	uint8_t zero[32] = { 0 }, psk[32], psk2[32], seen[32];

	party_new(&a);
	party_new(&b);
	party_new(&c);
	randombytes_buf(psk, 32);
	randombytes_buf(psk2, 32);
	/* no PSK (all zero), and with one: the responder sees A's key */
	CHECK_INT_EQ(handshake(suite, &a, b.pk, zero, &b, zero, seen), 0);
	CHECK_MEM_EQ(seen, a.pk, 32);
	CHECK_INT_EQ(handshake(suite, &a, b.pk, psk, &b, psk, seen), 0);
	CHECK_MEM_EQ(seen, a.pk, 32);
	CHECK_INT_EQ(handshake(suite, &c, b.pk, psk, &b, psk, seen), 0);
	CHECK_MEM_EQ(seen, c.pk, 32);
	/* the initiator expects C where B answers: message 1 fails at B */
	CHECK_INT_EQ(handshake(suite, &a, c.pk, psk, &b, psk, seen), 1);
	/* a different PSK: message 1 passes (psk2 is at message 2), the
	 * initiator refuses message 2 */
	CHECK_INT_EQ(handshake(suite, &a, b.pk, psk, &b, psk2, seen), 2);
	CHECK_INT_EQ(handshake(suite, &a, b.pk, zero, &b, psk, seen), 2);
}

/* The initiator tries message 2 under each of its PSKs, on copies. */
static void
test_psk_trial(int suite)
{
	struct party a, b;
	struct noise_hs hi, hr, t;
	uint8_t old[32], new[32], m1[128], m2[64], pay[64];
	const uint8_t *keys[2] = { new, old };
	size_t l1, l2, pl;
	int k, ok = -1;

	party_new(&a);
	party_new(&b);
	randombytes_buf(old, 32);
	randombytes_buf(new, 32);
	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, a.sk, NULL, b.pk,
	    new), 0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, prologue, 8, b.sk, NULL,
	    NULL, old), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, l1, pay, &pl), 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &l2), 0);
	for (k = 0; k < 2 && ok < 0; k++) {
		t = hi;
		noise_hs_set_psk(&t, keys[k]);
		if (noise_hs_read2(&t, m2, l2, pay, &pl) == 0)
			ok = k;
		noise_hs_wipe(&t);
	}
	CHECK_INT_EQ(ok, 1);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

/* A responder with two identities tries each on message 1. */
static void
test_identity_trial(int suite)
{
	struct party a, oldid, newid;
	struct noise_hs hi, t;
	uint8_t zero[32] = { 0 }, m1[128], pay[64];
	const struct party *ids[2] = { &newid, &oldid };
	size_t l1, pl;
	int k, ok = -1;

	party_new(&a);
	party_new(&oldid);
	party_new(&newid);
	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, a.sk, NULL,
	    oldid.pk, zero), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
	for (k = 0; k < 2 && ok < 0; k++) {
		CHECK_INT_EQ(noise_hs_init_ik(&t, suite, false, prologue, 8,
		    ids[k]->sk, NULL, NULL, zero), 0);
		if (noise_hs_read1(&t, m1, l1, pay, &pl) == 0)
			ok = k;
		noise_hs_wipe(&t);
	}
	CHECK_INT_EQ(ok, 1);
	noise_hs_wipe(&hi);
}

/* Every byte of both messages is covered; a short message is refused. */
static void
test_tamper(int suite)
{
	struct party a, b;
	struct noise_hs hi, hr, t;
	uint8_t zero[32] = { 0 }, m1[128], m2[64], bad[128], pay[128];
	size_t l1, l2, pl, i;
	int fails = 0;

	party_new(&a);
	party_new(&b);
	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, prologue, 8, a.sk, NULL, b.pk,
	    zero), 0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, prologue, 8, b.sk, NULL,
	    NULL, zero), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &l1), 0);
	for (i = 0; i < l1; i++) {
		t = hr;
		memcpy(bad, m1, l1);
		bad[i] ^= 0x01;
		fails += noise_hs_read1(&t, bad, l1, pay, &pl) != 0;
	}
	CHECK_INT_EQ(fails, (int)l1);
	t = hr;
	CHECK_INT_EQ(noise_hs_read1(&t, m1, 95, pay, &pl), -EBADMSG);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, l1, pay, &pl), 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &l2), 0);
	fails = 0;
	for (i = 0; i < l2; i++) {
		t = hi;
		memcpy(bad, m2, l2);
		bad[i] ^= 0x80;
		fails += noise_hs_read2(&t, bad, l2, pay, &pl) != 0;
	}
	CHECK_INT_EQ(fails, (int)l2);
	t = hi;
	CHECK_INT_EQ(noise_hs_read2(&t, m2, 47, pay, &pl), -EBADMSG);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, l2, pay, &pl), 0);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
}

/* Wrong use: suites, missing keys, order; a low-order static key. */
static void
test_misuse(void)
{
	struct party a, b;
	struct noise_hs h;
	uint8_t zero[32] = { 0 }, m[128], pay[8];
	size_t l, pl;

	party_new(&a);
	party_new(&b);
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_CHACHAPOLY, true, prologue, 8,
	    a.sk, NULL, b.pk, zero), -EINVAL);
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_IK_CHACHAPOLY, true, prologue, 8,
	    a.sk, NULL, NULL, zero), -EINVAL);
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_IK_CHACHAPOLY, false, prologue,
	    8, NULL, NULL, NULL, zero), -EINVAL);
	CHECK_INT_EQ(noise_hs_write1(&h, NULL, 0, m, &l), -EINVAL);
	/* the responder cannot write first, the initiator cannot read 1 */
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_IK_CHACHAPOLY, false, prologue,
	    8, b.sk, NULL, NULL, zero), 0);
	CHECK_INT_EQ(noise_hs_write1(&h, NULL, 0, m, &l), -EINVAL);
	CHECK_INT_EQ(noise_hs_write2(&h, NULL, 0, m, &l), -EINVAL);
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_IK_CHACHAPOLY, true, prologue, 8,
	    a.sk, NULL, b.pk, zero), 0);
	CHECK_INT_EQ(noise_hs_read1(&h, m, 96, pay, &pl), -EINVAL);
	/* a responder key of all zeros (low order): es gives no secret */
	CHECK_INT_EQ(noise_hs_init_ik(&h, NOISE_IK_CHACHAPOLY, true, prologue, 8,
	    a.sk, NULL, zero, zero), 0);
	CHECK_INT_EQ(noise_hs_write1(&h, NULL, 0, m, &l), -EBADMSG);
	noise_hs_wipe(&h);
}

int
main(void)
{
	static const int suites[] = { NOISE_IK_CHACHAPOLY, NOISE_IK_AESGCM };
	int i;

	if (sodium_init() < 0)
		return 1;
	aes_ok = noise_suite_available(NOISE_IK_AESGCM);
	if (!aes_ok)
		printf("test_noise_ik: AES-256-GCM unavailable here, suite 4 "
		    "skipped\n");
	test_vectors();
	for (i = 0; i < 2; i++) {
		if (suites[i] == NOISE_IK_AESGCM && !aes_ok)
			continue;
		test_roles(suites[i]);
		test_psk_trial(suites[i]);
		test_identity_trial(suites[i]);
		test_tamper(suites[i]);
		test_e_dh_used(suites[i]);
	}
	test_misuse();
	CHECK_DONE();
}
