/*
 * fuzz_session_env: the fixed world every input of the session harness runs
 * in, so that a given input always produces the same bytes on the wire.
 *
 * - libsodium's RNG is replaced by a deterministic one: the buffer for call
 *   N is randombytes_buf_deterministic() seeded with N, and the counter
 *   starts over for every input (fz_rng_reset, from fuzz_session.c).
 * - The keys, ephemerals and identities are constants; the public halves
 *   are derived once at init.
 * - The program's outgoing stream is a fixed pattern (fz_tx_pat).
 * - SIGPIPE is ignored, the log is quiet unless SOCKSEAL_LOG is set.
 *
 * fuzz_session_init() also hands over to fuzz_session_seeds.c when
 * FUZZ_WRITE_SEEDS is set.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "fuzz_session.h"
#include "fuzz_session_int.h"

const uint8_t fz_key[NOISE_KEYLEN] = "sockseal fuzz key (not secret).";
const uint8_t fz_wrong[NOISE_KEYLEN] = "sockseal fuzz, some other key..";
const uint8_t fz_e_init[NOISE_DHLEN] = "fuzz initiator ephemeral secret";
const uint8_t fz_e_resp[NOISE_DHLEN] = "fuzz responder ephemeral secret";
const uint8_t fz_s_sess[NOISE_DHLEN] = "fuzz: the session's own identity";
const uint8_t fz_s_peer[NOISE_DHLEN] = "fuzz: the peer's identity, fixed";
const uint8_t fz_s_other[NOISE_DHLEN] = "fuzz: an identity nobody expects";
const uint8_t fz_zero[NOISE_KEYLEN];
uint8_t fz_pk_sess[NOISE_DHLEN], fz_pk_peer[NOISE_DHLEN];
uint8_t fz_pk_other[NOISE_DHLEN];
bool fz_ik;

uint8_t fz_pattern[FZ_PATTERN_PERIOD + 2 * RECORD_MAXPT];

const uint8_t *
fz_tx_pat(uint64_t o)
{
	return fz_pattern + o % FZ_PATTERN_PERIOD;
}

/* ------------------------------------------------------ deterministic RNG */

static uint64_t rng_ctr;

void
fz_rng_reset(void)
{
	rng_ctr = 0;
}

static void
rng_buf(void *buf, size_t n)
{
	uint8_t seed[randombytes_SEEDBYTES] = { 0 };

	memcpy(seed, &rng_ctr, sizeof(rng_ctr));
	rng_ctr++;
	randombytes_buf_deterministic(buf, n, seed);
}

static uint32_t
rng_random(void)
{
	uint32_t v;

	rng_buf(&v, sizeof(v));
	return v;
}

static const char *
rng_name(void)
{
	return "fuzz-deterministic";
}

static struct randombytes_implementation rng_impl = {
	.implementation_name = rng_name,
	.random = rng_random,
	.buf = rng_buf,
};

/* ------------------------------------------------------------ init */

void
fuzz_session_init(bool initiator, bool identity)
{
	const char *v = getenv("SOCKSEAL_LOG"), *dir;
	char logerr[128];
	size_t i;
	int r;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < sizeof(fz_pattern); i++)
		fz_pattern[i] = (uint8_t)(i % FZ_PATTERN_PERIOD * 13 + 5);
	randombytes_set_implementation(&rng_impl);
	if (sodium_init() < 0)
		abort();
	fz_ik = identity;
	crypto_scalarmult_base(fz_pk_sess, fz_s_sess);
	crypto_scalarmult_base(fz_pk_peer, fz_s_peer);
	crypto_scalarmult_base(fz_pk_other, fz_s_other);
	if (log_init(logerr, sizeof(logerr)) < 0) {
		fprintf(stderr, "fuzz_session: %s\n", logerr);
		abort();
	}
	if (v == NULL)
		log_level = LOG_ERROR - 1;      /* quiet: failures are expected */
	if ((dir = getenv("FUZZ_WRITE_SEEDS")) != NULL) {
		if ((r = fz_seeds_write(dir, initiator)) < 0) {
			fprintf(stderr, "%s: %s\n", dir, strerror(-r));
			exit(1);
		}
		exit(0);
	}
}
