/*
 * aead_speed: the one-core libsodium AEAD ceiling for bench/run.sh.
 *
 *   aead_speed SIZE SECONDS REPS
 *
 * For ChaCha20-Poly1305 (IETF) and AES-256-GCM (when the CPU has AES-NI),
 * encrypts SIZE-byte messages in a loop for SECONDS, REPS times, after a
 * 0.1 s warm-up.  The nonce is incremented on every call, there is no
 * additional data: the shape of one sockseal record.  One line per run:
 *   aead=chachapoly size=16384 run=1 MBps=1571.2 Gbps=12.57
 * then the same for decryption (open, tag verified), the receiver's side:
 *   aead=chachapoly-open size=16384 run=1 MBps=1560.0 Gbps=12.48
 * (1 MB = 10^6 bytes, 1 Gbit = 10^9 bits).  Then the cost of one X25519
 * (crypto_scalarmult, what each DH token of a handshake costs):
 *   x25519 run=1 us=41.2
 * Pin it with taskset.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*enc_fn)(unsigned char *c, unsigned long long *clen,
		      const unsigned char *m, unsigned long long mlen,
		      const unsigned char *ad, unsigned long long adlen,
		      const unsigned char *nsec, const unsigned char *npub,
		      const unsigned char *k);

typedef int (*dec_fn)(unsigned char *m, unsigned long long *mlen,
		      unsigned char *nsec, const unsigned char *c,
		      unsigned long long clen, const unsigned char *ad,
		      unsigned long long adlen, const unsigned char *npub,
		      const unsigned char *k);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encrypt for about `secs`; return bytes per second of plaintext. */
static double run(enc_fn enc, size_t size, double secs)
{
	static unsigned char key[32], nonce[12];
	unsigned char *m = malloc(size), *c = malloc(size + 16);
	unsigned long long clen;
	randombytes_buf(key, sizeof key);
	memset(m, 0xa5, size);
	double t0 = now_s(), t;
	unsigned long long bytes = 0;
	do {
		for (int i = 0; i < 16; i++) {
			sodium_increment(nonce, sizeof nonce);
			enc(c, &clen, m, size, NULL, 0, NULL, nonce, key);
			bytes += size;
		}
		t = now_s();
	} while (t - t0 < secs);
	free(m);
	free(c);
	return (double)bytes / (t - t0);
}

/* Decrypt one valid record over and over for about `secs`; bytes/s of
 * plaintext, or 0 if verification ever fails. */
static double run_open(enc_fn enc, dec_fn dec, size_t size, double secs)
{
	static unsigned char key[32], nonce[12];
	unsigned char *m = malloc(size), *c = malloc(size + 16);
	unsigned long long clen, mlen;
	randombytes_buf(key, sizeof key);
	memset(m, 0xa5, size);
	enc(c, &clen, m, size, NULL, 0, NULL, nonce, key);
	double t0 = now_s(), t;
	unsigned long long bytes = 0;
	int bad = 0;
	do {
		for (int i = 0; i < 16; i++) {
			bad |= dec(m, &mlen, NULL, c, clen, NULL, 0, nonce, key);
			bytes += size;
		}
		t = now_s();
	} while (t - t0 < secs);
	free(m);
	free(c);
	return bad ? 0.0 : (double)bytes / (t - t0);
}

/* X25519 for about `secs`: microseconds per crypto_scalarmult. */
static double run_x25519(double secs)
{
	unsigned char sk[32], pk[32], out[32];
	unsigned long long n = 0;
	double t0 = now_s(), t;

	randombytes_buf(sk, sizeof sk);
	crypto_scalarmult_base(pk, sk);
	do {
		for (int i = 0; i < 16; i++) {
			if (crypto_scalarmult(out, sk, pk) != 0)
				return 0.0;
			pk[0] ^= out[0] & 1;    /* data-dependent: not hoisted */
			n++;
		}
		t = now_s();
	} while (t - t0 < secs);
	return (t - t0) * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s SIZE SECONDS REPS\n", argv[0]);
		return 2;
	}
	size_t size = (size_t)atol(argv[1]);
	double secs = atof(argv[2]);
	int reps = atoi(argv[3]);
	if (sodium_init() < 0 || size == 0 || reps <= 0)
		return 1;
	struct { const char *name; enc_fn fn; dec_fn dfn; int ok; } algs[] = {
		{ "chachapoly", crypto_aead_chacha20poly1305_ietf_encrypt,
		  crypto_aead_chacha20poly1305_ietf_decrypt, 1 },
		{ "aesgcm", crypto_aead_aes256gcm_encrypt, crypto_aead_aes256gcm_decrypt,
		  crypto_aead_aes256gcm_is_available() },
	};
	for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
		if (!algs[a].ok) {
			printf("aead=%s size=%zu unavailable\n", algs[a].name, size);
			continue;
		}
		run(algs[a].fn, size, 0.1);
		for (int r = 1; r <= reps; r++) {
			double bps = run(algs[a].fn, size, secs);
			printf("aead=%s size=%zu run=%d MBps=%.1f Gbps=%.2f\n",
			       algs[a].name, size, r, bps / 1e6, bps * 8 / 1e9);
			fflush(stdout);
		}
	}
	for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
		if (!algs[a].ok)
			continue;
		run_open(algs[a].fn, algs[a].dfn, size, 0.1);
		for (int r = 1; r <= reps; r++) {
			double bps = run_open(algs[a].fn, algs[a].dfn, size, secs);
			printf("aead=%s-open size=%zu run=%d MBps=%.1f Gbps=%.2f\n",
			       algs[a].name, size, r, bps / 1e6, bps * 8 / 1e9);
			fflush(stdout);
		}
	}
	run_x25519(0.1);
	for (int r = 1; r <= reps; r++) {
		printf("x25519 run=%d us=%.2f\n", r, run_x25519(secs));
		fflush(stdout);
	}
	return 0;
}
