/*
 * test_record: shim/record.c: framing, seal/peek/open, in place, tampering,
 * replay, reordering, end-of-stream, and rekey every 65536 records, for
 * both suites, over ciphers from a real NNpsk0 handshake.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "record.h"
#include "check.h"

/* One session: the initiator's and the responder's ciphers. */
struct pair {
	struct noise_cipher itx, irx, rtx, rrx;
};

static void
pair_open(struct pair *p, int suite)
{
	static const uint8_t prologue[8] = { 0x53, 0x4b, 0x53, 0x4c, 1, 0, 0, 0 };
	struct noise_hs hi, hr;
	uint8_t psk[32], m1[48], m2[48], pay[1];
	size_t len, plen;
	uint8_t pro[8];

	memcpy(pro, prologue, 8);
	pro[5] = (uint8_t)suite;
	randombytes_buf(psk, sizeof(psk));
	CHECK_INT_EQ(noise_hs_init(&hi, suite, true, pro, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, pro, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &len), 0);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, len, pay, &plen), 0);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), 0);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, len, pay, &plen), 0);
	noise_hs_split(&hi, &p->itx, &p->irx);
	noise_hs_split(&hr, &p->rtx, &p->rrx);
	noise_hs_wipe(&hi);
	noise_hs_wipe(&hr);
	sodium_memzero(psk, sizeof(psk));
}

static void
pair_close(struct pair *p)
{
	noise_cipher_wipe(&p->itx);
	noise_cipher_wipe(&p->irx);
	noise_cipher_wipe(&p->rtx);
	noise_cipher_wipe(&p->rrx);
}

static uint8_t wire[RECORD_MAXWIRE], data[RECORD_MAXPT + 1];

static void
test_roundtrip(int suite)
{
	static const size_t sizes[] = { 0, 1, 2, 15, 16, 17, 1000,
	    RECORD_MAXPT - 1, RECORD_MAXPT };
	struct pair p;
	size_t i, n, wl, ptlen;
	uint8_t *pt;

	pair_open(&p, suite);
	randombytes_buf(data, sizeof(data));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		struct noise_cipher *tx = i % 2 ? &p.rtx : &p.itx;
		struct noise_cipher *rx = i % 2 ? &p.irx : &p.rrx;

		/* out of place */
		n = record_seal(tx, data, len, wire);
		CHECK_INT_EQ(n, RECORD_WIRELEN(len));
		CHECK_INT_EQ(wire[0] << 8 | wire[1], len + RECORD_TAGLEN);
		wl = 0;
		CHECK_INT_EQ(record_peek(wire, n, &wl), 1);
		CHECK_INT_EQ(wl, n);
		CHECK_INT_EQ(record_open(rx, wire, wl, &pt, &ptlen), 0);
		CHECK(pt == wire + RECORD_HDRLEN);
		CHECK_INT_EQ(ptlen, len);
		CHECK_MEM_EQ(pt, data, len);

		/* in place: the plaintext already sits at OUT + 2 */
		memcpy(wire + RECORD_HDRLEN, data, len);
		n = record_seal(tx, wire + RECORD_HDRLEN, len, wire);
		CHECK_INT_EQ(n, RECORD_WIRELEN(len));
		if (len >= 16)
			CHECK(memcmp(wire + RECORD_HDRLEN, data, len) != 0);
		CHECK_INT_EQ(record_open(rx, wire, n, &pt, &ptlen), 0);
		CHECK_INT_EQ(ptlen, len);
		CHECK_MEM_EQ(pt, data, len);
	}
	/* too large: nothing written, nonce not spent */
	{
		uint64_t n0 = p.itx.n;

		wire[0] = 0xee;
		CHECK_INT_EQ(record_seal(&p.itx, data, RECORD_MAXPT + 1, wire),
		    0);
		CHECK_INT_EQ(wire[0], 0xee);
		CHECK(p.itx.n == n0);
	}
	/* a cipher without a key seals nothing */
	{
		struct noise_cipher none;

		memset(&none, 0, sizeof(none));
		memcpy(wire + RECORD_HDRLEN, data, 100);
		CHECK_INT_EQ(record_seal(&none, wire + RECORD_HDRLEN, 100,
		    wire), 0);
		CHECK(sodium_is_zero(wire + RECORD_HDRLEN, 100 + 16));
	}
	pair_close(&p);
}

static void
test_eos(int suite)
{
	struct pair p;
	uint8_t rec[RECORD_WIRELEN(0)], *pt = NULL;
	size_t ptlen = 99;

	pair_open(&p, suite);
	CHECK_INT_EQ(record_seal(&p.itx, NULL, 0, rec), 18);
	CHECK_INT_EQ(rec[0], 0);
	CHECK_INT_EQ(rec[1], 16);
	CHECK_INT_EQ(record_open(&p.rrx, rec, sizeof(rec), &pt, &ptlen), 0);
	CHECK_INT_EQ(ptlen, 0);
	CHECK(pt == rec + RECORD_HDRLEN);
	pair_close(&p);
}

/* Opening into another buffer (the program's): same bytes, nothing on error. */
static void
test_open_into(int suite)
{
	struct pair p;
	uint8_t pt[3000], rec[RECORD_WIRELEN(3000)], out[3000];
	struct noise_cipher save;
	size_t i;

	pair_open(&p, suite);
	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 7);
	CHECK_INT_EQ(record_seal(&p.itx, pt, sizeof(pt), rec),
	    sizeof(rec));
	save = p.rrx;
	rec[100] ^= 1;
	memset(out, 0, sizeof(out));
	CHECK_INT_EQ(record_open_into(&p.rrx, rec, sizeof(rec), out),
	    -EBADMSG);
	CHECK(p.rrx.n == save.n);
	CHECK(memcmp(out, pt, 64) != 0);
	rec[100] ^= 1;
	CHECK_INT_EQ(record_open_into(&p.rrx, rec, sizeof(rec), out),
	    sizeof(pt));
	CHECK_MEM_EQ(out, pt, sizeof(pt));
	CHECK(p.rrx.n == save.n + 1);
	/* the ciphertext is left as it was: not opened in place */
	CHECK(memcmp(rec + RECORD_HDRLEN, pt, 64) != 0);
	pair_close(&p);
}

static void
test_peek(void)
{
	uint8_t b[RECORD_MAXWIRE];
	size_t wl = 12345;

	memset(b, 0, sizeof(b));
	CHECK_INT_EQ(record_peek(b, 0, &wl), 0);
	CHECK_INT_EQ(record_peek(b, 1, &wl), 0);
	CHECK_INT_EQ(record_peek(b, 2, &wl), -EBADMSG);     /* L = 0 */
	b[1] = 15;
	CHECK_INT_EQ(record_peek(b, 2, &wl), -EBADMSG);     /* L = 15 */
	CHECK_INT_EQ(record_peek(b, 100, &wl), -EBADMSG);
	CHECK_INT_EQ(wl, 12345);                            /* untouched */
	b[1] = 16;
	CHECK_INT_EQ(record_peek(b, 2, &wl), 0);
	CHECK_INT_EQ(record_peek(b, 17, &wl), 0);
	CHECK_INT_EQ(record_peek(b, 18, &wl), 1);
	CHECK_INT_EQ(wl, 18);
	CHECK_INT_EQ(record_peek(b, 1000, &wl), 1);         /* more behind */
	CHECK_INT_EQ(wl, 18);
	b[0] = 0xff;
	b[1] = 0xff;
	CHECK_INT_EQ(record_peek(b, RECORD_MAXWIRE - 1, &wl), 0);
	CHECK_INT_EQ(record_peek(b, RECORD_MAXWIRE, &wl), 1);
	CHECK_INT_EQ(wl, RECORD_MAXWIRE);
	b[0] = 0x01;
	b[1] = 0x00;
	CHECK_INT_EQ(record_peek(b, 257, &wl), 0);
	CHECK_INT_EQ(record_peek(b, 258, &wl), 1);
	CHECK_INT_EQ(wl, 258);
}

static void
test_attacks(int suite)
{
	struct pair p;
	uint8_t a[RECORD_WIRELEN(10)], b[RECORD_WIRELEN(10)];
	uint8_t t[RECORD_WIRELEN(10)], msg[10], *pt;
	size_t ptlen, i;
	int bad = 0;

	pair_open(&p, suite);
	memcpy(msg, "0123456789", 10);
	CHECK_INT_EQ(record_seal(&p.itx, msg, 10, a), sizeof(a));
	CHECK_INT_EQ(record_seal(&p.itx, msg, 10, b), sizeof(b));

	/* every single-bit flip of A fails, and leaves the receiver as it was */
	for (i = 0; i < sizeof(a) * 8; i++) {
		memcpy(t, a, sizeof(t));
		t[i / 8] ^= (uint8_t)(1 << (i % 8));
		if (record_open(&p.rrx, t, sizeof(t), &pt, &ptlen) != -EBADMSG ||
		    pt != NULL || ptlen != 0 || p.rrx.n != 0)
			bad++;
	}
	CHECK_INT_EQ(bad, 0);
	/* wrong lengths */
	memcpy(t, a, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t) - 1, &pt, &ptlen),
	    -EBADMSG);
	CHECK_INT_EQ(record_open(&p.rrx, t, 17, &pt, &ptlen), -EBADMSG);
	CHECK_INT_EQ(record_open(&p.rrx, t, 0, &pt, &ptlen), -EBADMSG);
	/* the wrong direction's cipher */
	memcpy(t, a, sizeof(t));
	CHECK_INT_EQ(record_open(&p.irx, t, sizeof(t), &pt, &ptlen), -EBADMSG);

	/* reordered: B before A fails */
	memcpy(t, b, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t), &pt, &ptlen), -EBADMSG);
	CHECK(p.rrx.n == 0);
	/* in order works */
	memcpy(t, a, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t), &pt, &ptlen), 0);
	CHECK_INT_EQ(ptlen, 10);
	CHECK_MEM_EQ(pt, msg, 10);
	/* replayed: A again fails */
	memcpy(t, a, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t), &pt, &ptlen), -EBADMSG);
	memcpy(t, b, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t), &pt, &ptlen), 0);
	CHECK_MEM_EQ(pt, msg, 10);
	/* replayed: B again fails */
	memcpy(t, b, sizeof(t));
	CHECK_INT_EQ(record_open(&p.rrx, t, sizeof(t), &pt, &ptlen), -EBADMSG);
	CHECK(p.rrx.n == 2);
	pair_close(&p);
}

static void
stale_fails(struct noise_cipher *tx, struct noise_cipher *stale)
{
	uint8_t rec[RECORD_WIRELEN(3)], *pt;
	struct noise_cipher t = *tx;   /* don't disturb the real sender */
	size_t ptlen;

	CHECK_INT_EQ(record_seal(&t, (const uint8_t *)"abc", 3, rec),
	    sizeof(rec));
	CHECK_INT_EQ(record_open(stale, rec, sizeof(rec), &pt, &ptlen),
	    -EBADMSG);
	noise_cipher_wipe(&t);
}

/*
 * One record TX -> RX, checking the keys stay in sync.  At the record that
 * brings n to a multiple of 65536, checks both keys changed to Rekey(k),
 * and that a receiver that did not rekey fails on the next record (which
 * has the very nonce it expects: only the key differs).
 */
static int
rekey_step(struct noise_cipher *tx, struct noise_cipher *rx, uint64_t i,
    struct noise_cipher *stale)
{
	uint8_t rec[RECORD_WIRELEN(8)], copy[RECORD_WIRELEN(8)], msg[8], *pt;
	uint8_t k_before[NOISE_KEYLEN];
	struct noise_cipher want;
	size_t ptlen;
	int j, fail = 0;
	bool due = (tx->n + 1) % RECORD_REKEY_INTERVAL == 0;

	for (j = 0; j < 8; j++)
		msg[j] = (uint8_t)(i >> (8 * j));
	memcpy(k_before, tx->k, NOISE_KEYLEN);
	if (record_seal(tx, msg, 8, rec) != sizeof(rec))
		fail++;
	memcpy(copy, rec, sizeof(rec));
	if (due) {
		*stale = *rx;   /* a receiver without rekey */
		want = *rx;
		want.n++;
		noise_cipher_rekey(&want);
		CHECK(memcmp(tx->k, k_before, NOISE_KEYLEN) != 0);
		CHECK_MEM_EQ(tx->k, want.k, NOISE_KEYLEN);
		CHECK(tx->n % RECORD_REKEY_INTERVAL == 0 && tx->n != 0);
	} else if (memcmp(tx->k, k_before, NOISE_KEYLEN) != 0) {
		fail++;
	}
	memcpy(k_before, rx->k, NOISE_KEYLEN);
	if (record_open(rx, rec, sizeof(rec), &pt, &ptlen) != 0 ||
	    ptlen != 8 || memcmp(pt, msg, 8) != 0)
		fail++;
	if (memcmp(tx->k, rx->k, NOISE_KEYLEN) != 0 || tx->n != rx->n)
		fail++;
	if (due) {
		CHECK(memcmp(rx->k, k_before, NOISE_KEYLEN) != 0);
		/* the stale receiver can open this one, not the next */
		CHECK_INT_EQ(noise_cipher_decrypt(stale, NULL, 0,
		    copy + RECORD_HDRLEN, sizeof(copy) - RECORD_HDRLEN,
		    copy + RECORD_HDRLEN), 0);
		CHECK(stale->n == rx->n);
		CHECK(memcmp(stale->k, rx->k, NOISE_KEYLEN) != 0);
		stale_fails(tx, stale);
	}
	return fail;
}

static void
test_rekey(int suite)
{
	struct pair p;
	struct noise_cipher stale_r, stale_i;
	uint64_t i, total = RECORD_REKEY_INTERVAL + 10;
	int fail = 0;

	pair_open(&p, suite);
	memset(&stale_r, 0, sizeof(stale_r));
	memset(&stale_i, 0, sizeof(stale_i));
	for (i = 0; i < total; i++) {
		fail += rekey_step(&p.itx, &p.rrx, i, &stale_r);
		fail += rekey_step(&p.rtx, &p.irx, i, &stale_i);
	}
	CHECK_INT_EQ(fail, 0);
	/* Rekey does not reset n */
	CHECK(p.itx.n == total && p.rrx.n == total);
	CHECK(p.rtx.n == total && p.irx.n == total);

	/* the next interval boundary (jump the counters there) */
	p.itx.n = p.rrx.n = 2 * (uint64_t)RECORD_REKEY_INTERVAL - 2;
	for (i = 0; i < 4; i++)
		fail += rekey_step(&p.itx, &p.rrx, i, &stale_r);
	CHECK_INT_EQ(fail, 0);
	pair_close(&p);
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
	CHECK(noise_suite_available(NOISE_AESGCM));
	test_peek();
	for (i = 0; i < 2; i++) {
		if (!noise_suite_available(suites[i]))
			continue;
		test_open_into(suites[i]);
		test_roundtrip(suites[i]);
		test_eos(suites[i]);
		test_attacks(suites[i]);
		test_rekey(suites[i]);
	}
	CHECK_DONE();
}
