/*
 * test_protocol: PROTOCOL.md's worked examples against shim/noise.c,
 * shim/noise_ik.c and shim/record.c.  Every value of the blocks between
 * `worked-example: begin` and `end` markers (suites 1 and 2 in section 13,
 * the identity suites 3 and 4 in section 15) is recomputed here from the
 * examples' fixed inputs, and the blocks must hold exactly the values
 * computed (suites 2 and 4 only where this CPU runs AES-256-GCM).  The python peer checks the same
 * block independently (sockseal_peer.py --check-example).
 *
 * PROTOCOL.md: $SOCKSEAL_PROTOCOL_MD, else ./PROTOCOL.md (make unit runs
 * from the repository root).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"
#include "record.h"
#include "check.h"

#define MAXVALS  200
#define MAXVAL   128
#define NAMELEN  48

struct value {
	char    name[NAMELEN];
	uint8_t b[MAXVAL];
	size_t  len;
	bool    used;
};

static struct value doc[MAXVALS];
static int ndoc;

static const char pt_i[] = "hello, responder";
static const char pt_r[] = "hello, initiator";

/* Append the hex word W to V; 0 or -1. */
static int
value_add_hex(struct value *v, const char *w, size_t wlen)
{
	size_t n;

	if (sodium_hex2bin(v->b + v->len, MAXVAL - v->len, w, wlen, NULL, &n,
	    NULL) != 0 || n * 2 != wlen)
		return -1;
	v->len += n;
	return 0;
}

/*
 * One line of the block: "NAME HEX", or " HEX" continuing the last value.
 * Returns 0, or -1 for a line that is neither.
 */
static int
parse_line(char *line)
{
	char *w1, *w2, *save = NULL;
	bool cont = line[0] == ' ' || line[0] == '\t';

	if ((w1 = strtok_r(line, " \t\r\n", &save)) == NULL)
		return 0;
	w2 = strtok_r(NULL, " \t\r\n", &save);
	if (strtok_r(NULL, " \t\r\n", &save) != NULL)
		return -1;
	if (cont)
		return ndoc == 0 || w2 != NULL ? -1 :
		    value_add_hex(&doc[ndoc - 1], w1, strlen(w1));
	if (ndoc == MAXVALS || strlen(w1) >= NAMELEN)
		return -1;
	snprintf(doc[ndoc].name, NAMELEN, "%s", w1);
	ndoc++;
	return w2 == NULL ? 0 : value_add_hex(&doc[ndoc - 1], w2, strlen(w2));
}

/* Read the worked-example block of PATH into doc[]; 0 or -1. */
static int
parse_doc(const char *path)
{
	char line[512];
	bool inside = false;
	FILE *f;
	int rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "<!-- worked-example: begin", 26) == 0) {
			inside = true;
		} else if (strncmp(line, "<!-- worked-example: end", 24) == 0) {
			if (!inside) {
				rc = -1;
				break;
			}
			inside = false;         /* another block may follow */
			rc = 0;
		} else if (inside && strncmp(line, "```", 3) != 0 &&
		    parse_line(line) != 0) {
			fprintf(stderr, "%s: bad line in the example: %s",
			    path, line);
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Compare the computed value sN.NAME with the document's. */
static void
expect(int suite, const char *name, const uint8_t *b, size_t len)
{
	char full[NAMELEN];
	int i;

	snprintf(full, sizeof(full), "s%d.%s", suite, name);
	for (i = 0; i < ndoc; i++)
		if (strcmp(doc[i].name, full) == 0)
			break;
	if (i == ndoc) {
		fprintf(stderr, "PROTOCOL.md lacks %s\n", full);
		CHECK(i < ndoc);
		return;
	}
	doc[i].used = true;
	CHECK_INT_EQ(doc[i].len, len);
	if (doc[i].len == len && memcmp(doc[i].b, b, len) != 0)
		fprintf(stderr, "PROTOCOL.md: %s differs from noise.c/record.c\n",
		    full);
	CHECK(doc[i].len == len && memcmp(doc[i].b, b, len) == 0);
}

/* Seal PT with C and expect the record under NAME; the peer's RX opens it. */
static void
expect_record(int suite, const char *name, struct noise_cipher *c,
    struct noise_cipher *rx, const char *pt, size_t len)
{
	uint8_t rec[RECORD_WIRELEN(64)], *out;
	size_t outlen;

	CHECK_INT_EQ(record_seal(c, (const uint8_t *)pt, len, rec),
	    RECORD_WIRELEN(len));
	expect(suite, name, rec, RECORD_WIRELEN(len));
	if (rx == NULL)
		return;
	CHECK_INT_EQ(record_open(rx, rec, RECORD_WIRELEN(len), &out, &outlen),
	    0);
	CHECK_INT_EQ(outlen, len);
	CHECK(len == 0 || memcmp(out, pt, len) == 0);
}

/*
 * After message 2 (HI, HR the two sides): the handshake hash, the split
 * keys, one record each way and both end-of-stream marks.  *FIRST, if not
 * NULL, gets the initiator's sending cipher as it was at nonce 0.
 */
static void
expect_transport(int suite, struct noise_hs *hi, struct noise_hs *hr,
    struct noise_cipher *first)
{
	struct noise_cipher itx, irx, rtx, rrx;
	uint8_t h[32];

	noise_hs_hash(hi, h);
	expect(suite, "handshake_hash", h, 32);
	noise_hs_hash(hr, h);
	expect(suite, "handshake_hash", h, 32);
	noise_hs_split(hi, &itx, &irx);
	noise_hs_split(hr, &rtx, &rrx);
	expect(suite, "k_initiator_to_responder", itx.k, 32);
	expect(suite, "k_responder_to_initiator", rtx.k, 32);
	CHECK_MEM_EQ(itx.k, rrx.k, 32);
	CHECK_MEM_EQ(rtx.k, irx.k, 32);
	if (first != NULL)
		*first = itx;
	expect(suite, "plaintext_i", (const uint8_t *)pt_i, strlen(pt_i));
	expect_record(suite, "record_i_n0", &itx, &rrx, pt_i, strlen(pt_i));
	expect(suite, "plaintext_r", (const uint8_t *)pt_r, strlen(pt_r));
	expect_record(suite, "record_r_n0", &rtx, &irx, pt_r, strlen(pt_r));
	expect_record(suite, "eos_i_n1", &itx, &rrx, "", 0);
	expect_record(suite, "eos_r_n1", &rtx, &irx, "", 0);
}

static void
example(int suite)
{
	const char *name = suite == NOISE_AESGCM ?
	    "Noise_NNpsk0_25519_AESGCM_SHA256" :
	    "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
	uint8_t psk[32], ie[32], re[32], h0[32] = { 0 }, pre[8], wire[58];
	uint8_t m1[48], m2[48], pay[1];
	struct noise_hs hi, hr;
	struct noise_cipher c;
	size_t len, plen;
	int i;

	for (i = 0; i < 32; i++) {
		psk[i] = (uint8_t)i;
		ie[i] = (uint8_t)(0x20 + i);
		re[i] = (uint8_t)(0x40 + i);
	}
	expect(suite, "psk", psk, 32);
	expect(suite, "init_e_private", ie, 32);
	expect(suite, "resp_e_private", re, 32);
	if (strlen(name) <= 32)
		memcpy(h0, name, strlen(name));
	else
		crypto_hash_sha256(h0, (const uint8_t *)name, strlen(name));
	expect(suite, "h0", h0, 32);
	memcpy(pre, "SKSL\x01\x00\x00\x00", 8);
	pre[5] = (uint8_t)suite;
	expect(suite, "preface", pre, 8);

	CHECK_INT_EQ(noise_hs_init(&hi, suite, true, pre, 8, psk), 0);
	CHECK_INT_EQ(noise_hs_init(&hr, suite, false, pre, 8, psk), 0);
	expect(suite, "h_prologue", hi.h, 32);
	noise_hs_set_ephemeral(&hi, ie);
	noise_hs_set_ephemeral(&hr, re);
	expect(suite, "init_e_public", hi.e_pk, 32);
	expect(suite, "resp_e_public", hr.e_pk, 32);

	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &len), 0);
	CHECK_INT_EQ(len, 48);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 48, pay, &plen), 0);
	expect(suite, "message1", m1, 48);
	memcpy(wire, pre, 8);
	wire[8] = 0;
	wire[9] = 48;
	memcpy(wire + 10, m1, 48);
	expect(suite, "initiator_first_bytes", wire, 58);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), 0);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, 48, pay, &plen), 0);
	expect(suite, "message2", m2, 48);
	wire[0] = 0;
	wire[1] = 48;
	memcpy(wire + 2, m2, 48);
	expect(suite, "responder_first_bytes", wire, 50);
	expect_transport(suite, &hi, &hr, &c);

	/* The first rekey: after the record with nonce 65535. */
	c.n = RECORD_REKEY_INTERVAL - 1;
	expect_record(suite, "record_i_n65535", &c, NULL, pt_i, strlen(pt_i));
	expect(suite, "k_initiator_to_responder_rekeyed", c.k, 32);
	expect_record(suite, "record_i_n65536", &c, NULL, pt_i, strlen(pt_i));
}

/* The identity example (PROTOCOL.md section 15): suite 3 with the zero
 * PSK, suite 4 with 00..1f; identities 60..7f and 80..9f. */
static void
example_ik(int suite)
{
	const char *name = suite == NOISE_IK_AESGCM ?
	    "Noise_IKpsk2_25519_AESGCM_SHA256" :
	    "Noise_IKpsk2_25519_ChaChaPoly_SHA256";
	uint8_t psk[32] = { 0 }, ie[32], re[32], is[32], rs[32], ipub[32];
	uint8_t rpub[32], h0[32] = { 0 }, pre[8], wire[106], buf[40];
	uint8_t m1[96], m2[48], pay[1], h[32];
	struct noise_hs hi, hr;
	size_t len, plen;
	int i;

	for (i = 0; i < 32; i++) {
		if (suite == NOISE_IK_AESGCM)
			psk[i] = (uint8_t)i;
		ie[i] = (uint8_t)(0x20 + i);
		re[i] = (uint8_t)(0x40 + i);
		is[i] = (uint8_t)(0x60 + i);
		rs[i] = (uint8_t)(0x80 + i);
	}
	crypto_scalarmult_base(ipub, is);
	crypto_scalarmult_base(rpub, rs);
	expect(suite, "psk", psk, 32);
	expect(suite, "init_s_private", is, 32);
	expect(suite, "resp_s_private", rs, 32);
	expect(suite, "init_e_private", ie, 32);
	expect(suite, "resp_e_private", re, 32);
	expect(suite, "init_s_public", ipub, 32);
	expect(suite, "resp_s_public", rpub, 32);
	if (strlen(name) <= 32)
		memcpy(h0, name, strlen(name));
	else
		crypto_hash_sha256(h0, (const uint8_t *)name, strlen(name));
	expect(suite, "h0", h0, 32);
	memcpy(pre, "SKSL\x01\x00\x00\x00", 8);
	pre[5] = (uint8_t)suite;
	expect(suite, "preface", pre, 8);
	memcpy(buf, h0, 32);
	memcpy(buf + 32, pre, 8);
	crypto_hash_sha256(h, buf, 40);
	expect(suite, "h_prologue", h, 32);

	CHECK_INT_EQ(noise_hs_init_ik(&hi, suite, true, pre, 8, is, NULL, rpub, psk),
	    0);
	CHECK_INT_EQ(noise_hs_init_ik(&hr, suite, false, pre, 8, rs, NULL, NULL, psk),
	    0);
	expect(suite, "h_premessage", hi.h, 32);
	expect(suite, "h_premessage", hr.h, 32);
	noise_hs_set_ephemeral(&hi, ie);
	noise_hs_set_ephemeral(&hr, re);
	expect(suite, "init_e_public", hi.e_pk, 32);
	expect(suite, "resp_e_public", hr.e_pk, 32);

	CHECK_INT_EQ(noise_hs_write1(&hi, NULL, 0, m1, &len), 0);
	CHECK_INT_EQ(len, 96);
	CHECK_INT_EQ(noise_hs_read1(&hr, m1, 96, pay, &plen), 0);
	CHECK(noise_hs_remote_static(&hr) != NULL &&
	    memcmp(noise_hs_remote_static(&hr), ipub, 32) == 0);
	expect(suite, "message1", m1, 96);
	memcpy(wire, pre, 8);
	wire[8] = 0;
	wire[9] = 96;
	memcpy(wire + 10, m1, 96);
	expect(suite, "initiator_first_bytes", wire, 106);
	expect(suite, "h_message1", hi.h, 32);
	expect(suite, "ck_message1", hi.ck, 32);
	expect(suite, "h_message1", hr.h, 32);
	expect(suite, "ck_message1", hr.ck, 32);
	CHECK_INT_EQ(noise_hs_write2(&hr, NULL, 0, m2, &len), 0);
	CHECK_INT_EQ(noise_hs_read2(&hi, m2, 48, pay, &plen), 0);
	expect(suite, "message2", m2, 48);
	wire[0] = 0;
	wire[1] = 48;
	memcpy(wire + 2, m2, 48);
	expect(suite, "responder_first_bytes", wire, 50);
	expect_transport(suite, &hi, &hr, NULL);
}

int
main(void)
{
	const char *path = getenv("SOCKSEAL_PROTOCOL_MD");
	int i, suite;

	if (sodium_init() < 0)
		return 1;
	if (path == NULL)
		path = "PROTOCOL.md";
	CHECK_INT_EQ(parse_doc(path), 0);
	CHECK(ndoc > 0);
	for (suite = NOISE_CHACHAPOLY; suite <= NOISE_AESGCM; suite++) {
		if (!noise_suite_available(suite)) {
			printf("suite %d unavailable here: its example is not "
			    "checked\n", suite);
			continue;
		}
		example(suite);
	}
	for (suite = NOISE_IK_CHACHAPOLY; suite <= NOISE_IK_AESGCM; suite++) {
		if (!noise_suite_available(suite)) {
			printf("suite %d unavailable here: its example is not "
			    "checked\n", suite);
			continue;
		}
		example_ik(suite);
	}
	for (i = 0; i < ndoc; i++) {
		if (doc[i].used || ((strncmp(doc[i].name, "s2.", 3) == 0 ||
		    strncmp(doc[i].name, "s4.", 3) == 0) &&
		    !noise_suite_available(NOISE_AESGCM)))
			continue;
		fprintf(stderr, "PROTOCOL.md: %s is not checked\n", doc[i].name);
		CHECK(doc[i].used);
	}
	CHECK_DONE();
}
