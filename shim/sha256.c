/*
 * sha256: see sha256.h.  One compression function per path, chosen once:
 *
 *   compress_ni   the SHA extensions (sha256rnds2, sha256msg1/2), x86-64
 *                 CPUs that report SHA, SSSE3 and SSE4.1 in CPUID; the
 *                 state is kept as the instructions want it, ABEF and CDGH
 *   compress_c    FIPS 180-4 section 6.2.2 as written
 *
 * Both take whole 64-byte blocks; sha256_update buffers the rest.  The unit
 * test (test_sha256) holds both to libsodium's SHA-256 and HMAC on every
 * length through several blocks, and to the FIPS and RFC 4231 examples.
 * Valgrind's CPU reports no SHA extensions, so under memcheck the C path
 * runs.
 */
#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SHA256_HAVE_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
	0x1f83d9ab, 0x5be0cd19,
};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
compress_c(uint32_t s[8], const uint8_t *p, size_t blocks)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
	int t;

	for (; blocks > 0; blocks--, p += SHA256_BLOCK) {
		for (t = 0; t < 16; t++)
			w[t] = be32(p + 4 * t);
		for (; t < 64; t++)
			w[t] = (ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^
			    (w[t - 2] >> 10)) + w[t - 7] +
			    (ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^
			    (w[t - 15] >> 3)) + w[t - 16];
		a = s[0], b = s[1], c = s[2], d = s[3];
		e = s[4], f = s[5], g = s[6], h = s[7];
		for (t = 0; t < 64; t++) {
			t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
			    ((e & f) ^ (~e & g)) + K[t] + w[t];
			t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
			    ((a & b) ^ (a & c) ^ (b & c));
			h = g, g = f, f = e, e = d + t1;
			d = c, c = b, b = a, a = t1 + t2;
		}
		s[0] += a, s[1] += b, s[2] += c, s[3] += d;
		s[4] += e, s[5] += f, s[6] += g, s[7] += h;
	}
	sodium_memzero(w, sizeof(w));
}

#ifdef SHA256_HAVE_NI
/*
 * Four rounds per step k: the schedule's words 4k..4k+3 in M[k] (k >= 4:
 * msg1 adds sigma0 of the next words, the add brings w[t-7], msg2 adds
 * sigma1 of the two before), plus K.  A sha256rnds2 does two rounds and
 * returns the new ABEF, the old one being the new CDGH: so the first call
 * writes into cdgh and the second, on the other two words, into abef.
 */
__attribute__((target("sha,sse4.1"))) static void
compress_ni(uint32_t s[8], const uint8_t *p, size_t blocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
	    0x0405060700010203ULL);
	__m128i abef, cdgh, save0, save1, t, m[16];
	int k;

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)s), 0xb1);
	cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(s + 4)),
	    0x1b);
	abef = _mm_alignr_epi8(t, cdgh, 8);
	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);
	for (; blocks > 0; blocks--, p += SHA256_BLOCK) {
		save0 = abef;
		save1 = cdgh;
		for (k = 0; k < 16; k++) {
			if (k < 4)
				m[k] = _mm_shuffle_epi8(_mm_loadu_si128(
				    (const __m128i *)(p + 16 * k)), bswap);
			else
				m[k] = _mm_sha256msg2_epu32(_mm_add_epi32(
				    _mm_sha256msg1_epu32(m[k - 4], m[k - 3]),
				    _mm_alignr_epi8(m[k - 1], m[k - 2], 4)),
				    m[k - 1]);
			t = _mm_add_epi32(m[k],
			    _mm_loadu_si128((const __m128i *)(K + 4 * k)));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, t);
			abef = _mm_sha256rnds2_epu32(abef, cdgh,
			    _mm_shuffle_epi32(t, 0x0e));
		}
		abef = _mm_add_epi32(abef, save0);
		cdgh = _mm_add_epi32(cdgh, save1);
	}
	t = _mm_shuffle_epi32(abef, 0x1b);
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);
	_mm_storeu_si128((__m128i *)s, _mm_blend_epi16(t, cdgh, 0xf0));
	_mm_storeu_si128((__m128i *)(s + 4), _mm_alignr_epi8(cdgh, t, 8));
	memset(m, 0, sizeof(m));
	__asm__ __volatile__("" : : "r"(m) : "memory");
}

static bool
cpu_has_sha(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b & bit_SHA) != 0;
}
#endif

/* 1 accelerated, 0 portable, -1 not looked yet.  Atomic (benign race). */
static int accel = -1;
static bool forced_portable;

bool
sha256_accel(void)
{
	int v = __atomic_load_n(&accel, __ATOMIC_RELAXED);

	if (v < 0) {
#ifdef SHA256_HAVE_NI
		v = cpu_has_sha();
#else
		v = 0;
#endif
		__atomic_store_n(&accel, v, __ATOMIC_RELAXED);
	}
	return v == 1 && !__atomic_load_n(&forced_portable, __ATOMIC_RELAXED);
}

void
sha256_force_portable(bool on)
{
	__atomic_store_n(&forced_portable, on, __ATOMIC_RELAXED);
}

static void
compress(uint32_t s[8], const uint8_t *p, size_t blocks)
{
#ifdef SHA256_HAVE_NI
	if (sha256_accel()) {
		compress_ni(s, p, blocks);
		return;
	}
#endif
	compress_c(s, p, blocks);
}

void
sha256_init(struct sha256 *h)
{
	memcpy(h->s, H0, sizeof(h->s));
	h->n = 0;
}

void
sha256_update(struct sha256 *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t fill = (size_t)(h->n % SHA256_BLOCK), take;

	h->n += len;
	if (fill != 0) {
		take = SHA256_BLOCK - fill < len ? SHA256_BLOCK - fill : len;
		memcpy(h->buf + fill, p, take);
		p += take;
		len -= take;
		if (fill + take < SHA256_BLOCK)
			return;
		compress(h->s, h->buf, 1);
	}
	if (len >= SHA256_BLOCK) {
		compress(h->s, p, len / SHA256_BLOCK);
		p += len & ~(size_t)(SHA256_BLOCK - 1);
		len &= SHA256_BLOCK - 1;
	}
	if (len != 0)
		memcpy(h->buf, p, len);
}

void
sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN])
{
	uint8_t pad[SHA256_BLOCK + 8] = { 0x80 };
	uint64_t bits = h->n * 8;
	size_t fill = (size_t)(h->n % SHA256_BLOCK);
	size_t plen = (fill < 56 ? 56 : 120) - fill;
	int i;

	for (i = 0; i < 8; i++)
		pad[plen + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(h, pad, plen + 8);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h->s[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h->s[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h->s[i] >> 8);
		out[4 * i + 3] = (uint8_t)h->s[i];
	}
	sodium_memzero(h, sizeof(*h));
}

void
sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	struct sha256 h;

	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final(&h, out);
}

void
hmac_sha256_key(struct hmac_sha256_key *k, const uint8_t *key, size_t klen)
{
	uint8_t block[SHA256_BLOCK] = { 0 };
	int i;

	if (klen > SHA256_BLOCK)
		sha256(key, klen, block);
	else if (klen != 0)
		memcpy(block, key, klen);
	for (i = 0; i < SHA256_BLOCK; i++)
		block[i] ^= 0x36;
	sha256_init(&k->in);
	sha256_update(&k->in, block, sizeof(block));
	for (i = 0; i < SHA256_BLOCK; i++)
		block[i] ^= 0x36 ^ 0x5c;
	sha256_init(&k->out);
	sha256_update(&k->out, block, sizeof(block));
	sodium_memzero(block, sizeof(block));
}

void
hmac_sha256(const struct hmac_sha256_key *k, const void *a, size_t alen,
    const void *b, size_t blen, uint8_t out[SHA256_LEN])
{
	struct sha256 h = k->in;
	uint8_t inner[SHA256_LEN];

	sha256_update(&h, a, alen);
	if (blen != 0)
		sha256_update(&h, b, blen);
	sha256_final(&h, inner);
	h = k->out;
	sha256_update(&h, inner, sizeof(inner));
	sha256_final(&h, out);
	sodium_memzero(inner, sizeof(inner));
}
