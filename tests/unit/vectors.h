/*
 * vectors: reading the cacophony vector file (shared/vectors/README.md) for
 * the Noise unit tests, test_noise.c (NNpsk0) and test_noise_ik.c (IKpsk2):
 * a JSON reader just big enough for it, hex decoding, vectors_each(),
 * which calls a function for every vector whose protocol name is listed,
 * and vectors_run(), which runs one vector's messages.
 * Header-only: each test is one file.
 */
#ifndef SOCKSEAL_TEST_VECTORS_H
#define SOCKSEAL_TEST_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "noise.h"


struct span { const char *p; size_t len; };

struct json { const char *p, *end; int err; };

#define MAXMSG 16

struct vector {
	struct span name, init_prologue, resp_prologue, init_psk, resp_psk;
	struct span init_e, resp_e, hash;
	struct span init_s, resp_s, init_rs;    /* IK: statics, pre-message */
	struct span payload[MAXMSG], ciphertext[MAXMSG];
	int nmsg;
};

static void
json_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' ||
	    *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

/* Consume C (after white space); sets err if it is not there. */
static int
json_eat(struct json *j, char c)
{
	json_ws(j);
	if (j->err || j->p >= j->end || *j->p != c) {
		j->err = 1;
		return 0;
	}
	j->p++;
	return 1;
}

/* Is the next character C?  Consumes it if so. */
static int
json_try(struct json *j, char c)
{
	json_ws(j);
	if (!j->err && j->p < j->end && *j->p == c) {
		j->p++;
		return 1;
	}
	return 0;
}

/* A string's raw contents (escapes are kept, not decoded: none needed). */
static struct span
json_string(struct json *j)
{
	struct span s = { NULL, 0 };

	if (!json_eat(j, '"'))
		return s;
	s.p = j->p;
	while (j->p < j->end && *j->p != '"')
		j->p += (*j->p == '\\') ? 2 : 1;
	if (j->p >= j->end) {
		j->err = 1;
		return s;
	}
	s.len = (size_t)(j->p - s.p);
	j->p++;
	return s;
}

static void
json_skip(struct json *j, int depth)
{
	json_ws(j);
	if (j->err || j->p >= j->end || depth > 32) {
		j->err = 1;
		return;
	}
	if (*j->p == '"') {
		json_string(j);
	} else if (json_try(j, '{')) {
		if (json_try(j, '}'))
			return;
		do {
			json_string(j);
			json_eat(j, ':');
			json_skip(j, depth + 1);
		} while (!j->err && json_try(j, ','));
		json_eat(j, '}');
	} else if (json_try(j, '[')) {
		if (json_try(j, ']'))
			return;
		do
			json_skip(j, depth + 1);
		while (!j->err && json_try(j, ','));
		json_eat(j, ']');
	} else {
		/* number, true, false, null */
		while (j->p < j->end && strchr(",]} \n\r\t", *j->p) == NULL)
			j->p++;
	}
}

static int
span_is(struct span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* ["..", ..]: keeps the first string. */
static struct span
json_first_string(struct json *j)
{
	struct span first = { NULL, 0 };
	int n = 0;

	if (!json_eat(j, '['))
		return first;
	if (json_try(j, ']'))
		return first;
	do {
		struct span s = json_string(j);

		if (n++ == 0)
			first = s;
	} while (!j->err && json_try(j, ','));
	json_eat(j, ']');
	return first;
}

/* [{"payload": .., "ciphertext": ..}, ..] */
static void
json_messages(struct json *j, struct vector *v)
{
	if (!json_eat(j, '[') || json_try(j, ']'))
		return;
	do {
		json_eat(j, '{');
		if (v->nmsg >= MAXMSG) {
			j->err = 1;
			return;
		}
		if (!json_try(j, '}')) {
			do {
				struct span k = json_string(j);

				json_eat(j, ':');
				if (span_is(k, "payload"))
					v->payload[v->nmsg] = json_string(j);
				else if (span_is(k, "ciphertext"))
					v->ciphertext[v->nmsg] = json_string(j);
				else
					json_skip(j, 0);
			} while (!j->err && json_try(j, ','));
			json_eat(j, '}');
		}
		v->nmsg++;
	} while (!j->err && json_try(j, ','));
	json_eat(j, ']');
}

static void
json_vector(struct json *j, struct vector *v)
{
	memset(v, 0, sizeof(*v));
	json_eat(j, '{');
	if (json_try(j, '}'))
		return;
	do {
		struct span k = json_string(j);

		json_eat(j, ':');
		if (span_is(k, "protocol_name"))
			v->name = json_string(j);
		else if (span_is(k, "init_prologue"))
			v->init_prologue = json_string(j);
		else if (span_is(k, "resp_prologue"))
			v->resp_prologue = json_string(j);
		else if (span_is(k, "init_psks"))
			v->init_psk = json_first_string(j);
		else if (span_is(k, "resp_psks"))
			v->resp_psk = json_first_string(j);
		else if (span_is(k, "init_ephemeral"))
			v->init_e = json_string(j);
		else if (span_is(k, "resp_ephemeral"))
			v->resp_e = json_string(j);
		else if (span_is(k, "init_static"))
			v->init_s = json_string(j);
		else if (span_is(k, "resp_static"))
			v->resp_s = json_string(j);
		else if (span_is(k, "init_remote_static"))
			v->init_rs = json_string(j);
		else if (span_is(k, "handshake_hash"))
			v->hash = json_string(j);
		else if (span_is(k, "messages"))
			json_messages(j, v);
		else
			json_skip(j, 0);
	} while (!j->err && json_try(j, ','));
	json_eat(j, '}');
}

/* Hex span to bytes: the length, or -1 if malformed or longer than MAX. */
static long
unhex(struct span s, uint8_t *out, size_t max)
{
	size_t binlen;

	if (s.len % 2 != 0 || s.len / 2 > max)
		return -1;
	if (sodium_hex2bin(out, max, s.p, s.len, NULL, &binlen, NULL) != 0 ||
	    binlen != s.len / 2)
		return -1;
	return (long)binlen;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f;
	char *buf = NULL;
	long sz;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc((size_t)sz + 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[sz] = '\0';
	*len = (size_t)sz;
out:
	fclose(f);
	return buf;
}

#define VEC_BUFSZ 1024

/*
 * Run V's messages between HI and HR (initialised, ephemerals set): 1 and
 * 2 by the handshake, the handshake hash after 2 (on both sides, and after
 * the split), then each transport message in turn, every ciphertext and
 * plaintext compared.  AFTER1(hr, arg), if not NULL, runs after message 1.
 * Wipes HI and HR.
 */
static void
vectors_run(struct noise_hs *hi, struct noise_hs *hr, const struct vector *v,
    void (*after1)(struct noise_hs *, void *), void *arg)
{
	struct noise_cipher itx, irx, rtx, rrx;
	uint8_t hash[32], h_i[32], h_r[32];
	uint8_t pt[VEC_BUFSZ], ct[VEC_BUFSZ], out[VEC_BUFSZ + 128];
	uint8_t got[VEC_BUFSZ + 128];
	long lpt, lct;
	size_t outlen, gotlen;
	int m;

	memset(&itx, 0, sizeof(itx));
	irx = rtx = rrx = itx;
	CHECK_INT_EQ(unhex(v->hash, hash, 32), 32);
	CHECK(v->nmsg >= 2);
	for (m = 0; m < v->nmsg; m++) {
		lpt = unhex(v->payload[m], pt, sizeof(pt));
		lct = unhex(v->ciphertext[m], ct, sizeof(ct));
		CHECK(lpt >= 0 && lct >= 0);
		if (lpt < 0 || lct < 0)
			break;
		outlen = 0;
		gotlen = (size_t)-1;
		if (m == 0) {
			CHECK_INT_EQ(noise_hs_write1(hi, pt, (size_t)lpt, out,
			    &outlen), 0);
			CHECK_INT_EQ(noise_hs_read1(hr, out, outlen, got,
			    &gotlen), 0);
			if (after1 != NULL)
				after1(hr, arg);
		} else if (m == 1) {
			CHECK_INT_EQ(noise_hs_write2(hr, pt, (size_t)lpt, out,
			    &outlen), 0);
			CHECK_INT_EQ(noise_hs_read2(hi, out, outlen, got,
			    &gotlen), 0);
			noise_hs_hash(hi, h_i);
			noise_hs_hash(hr, h_r);
			CHECK_MEM_EQ(h_i, hash, 32);
			CHECK_MEM_EQ(h_r, hash, 32);
			noise_hs_split(hi, &itx, &irx);
			noise_hs_split(hr, &rtx, &rrx);
			/* the hash survives split */
			noise_hs_hash(hi, h_i);
			CHECK_MEM_EQ(h_i, hash, 32);
		} else {
			/* even: initiator -> responder; odd: the reverse */
			struct noise_cipher *tx = m % 2 ? &rtx : &itx;
			struct noise_cipher *rx = m % 2 ? &irx : &rrx;

			CHECK_INT_EQ(noise_cipher_encrypt(tx, NULL, 0, pt,
			    (size_t)lpt, out), 0);
			outlen = (size_t)lpt + NOISE_TAGLEN;
			/* in place on the receiving side */
			memcpy(got, out, outlen);
			CHECK_INT_EQ(noise_cipher_decrypt(rx, NULL, 0, got,
			    outlen, got), 0);
			gotlen = outlen - NOISE_TAGLEN;
		}
		CHECK_INT_EQ(outlen, lct);
		CHECK_MEM_EQ(out, ct, (size_t)lct);
		CHECK_INT_EQ(gotlen, lpt);
		CHECK_MEM_EQ(got, pt, (size_t)lpt);
	}
	noise_hs_wipe(hi);
	noise_hs_wipe(hr);
	noise_cipher_wipe(&itx);
	noise_cipher_wipe(&irx);
	noise_cipher_wipe(&rtx);
	noise_cipher_wipe(&rrx);
}

/*
 * Calls RUN(v, suite) for every vector of PATH named NAMES[i], with
 * SUITES[i]; returns how many ran, -1 if the file could not be read.
 */
static int
vectors_each(const char *path, const char *const *names, const int *suites,
    int nnames, void (*run)(const struct vector *, int))
{
	struct json j;
	struct vector v;
	char *buf;
	size_t len;
	int ran = 0, i;

	if ((buf = slurp(path, &len)) == NULL)
		return -1;
	j.p = buf;
	j.end = buf + len;
	j.err = 0;
	/* {"vectors": [ {..}, .. ]} */
	json_eat(&j, '{');
	while (!j.err) {
		struct span k = json_string(&j);

		json_eat(&j, ':');
		if (!span_is(k, "vectors")) {
			json_skip(&j, 0);
		} else if (json_eat(&j, '[') && !json_try(&j, ']')) {
			do {
				json_vector(&j, &v);
				if (j.err)
					break;
				for (i = 0; i < nnames; i++)
					if (span_is(v.name, names[i])) {
						run(&v, suites[i]);
						ran++;
					}
			} while (!j.err && json_try(&j, ','));
			json_eat(&j, ']');
		}
		if (!json_try(&j, ','))
			break;
	}
	json_eat(&j, '}');
	CHECK(!j.err);
	if (j.err)
		fprintf(stderr, "%s: JSON parse error at offset %ld\n", path,
		    (long)(j.p - buf));
	free(buf);
	return ran;
}

#endif
