/*
 * fuzz_session_seeds: FUZZ_WRITE_SEEDS=DIR (fuzz_session_init) writes the
 * seed corpus of the role to DIR: a few op-mode inputs (op-NN), and for
 * each its raw-mode twin (raw-NN), the same first byte with bit 0 cleared
 * followed by every byte the peer put on the wire when the op-mode input
 * ran.  The environment is deterministic (fuzz_session_env.c), so a raw
 * seed replays a real handshake and valid records.  The transcript is
 * recorded by fz_feed (fuzz_session_io.c) while fz_rec is set.
 */
#include <errno.h>
#include <stdio.h>

#include "fuzz_session.h"
#include "fuzz_session_int.h"

uint8_t *fz_rec;
size_t fz_rec_len, fz_rec_cap;

/*
 * The raw-mode input equivalent to the op-mode input DATA: its first byte
 * with bit 0 cleared, then every byte the peer put on the wire.  Up to CAP
 * bytes in OUT; returns the length.
 */
static size_t
fuzz_session_transcript(const uint8_t *data, size_t size, bool initiator,
    uint8_t *out, size_t cap)
{
	if (size == 0 || cap < 2 || !(data[0] & 1))
		return 0;
	out[0] = data[0] & ~1u;
	fz_rec = out + 1;
	fz_rec_cap = cap - 1;
	fz_rec_len = 0;
	fuzz_session_run(data, size, initiator);
	fz_rec = NULL;
	return fz_rec_len + 1;
}

static int
seed_write(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "we")) == NULL)
		return -errno;
	fwrite(b, 1, n, fp);
	return fclose(fp) == 0 ? 0 : -EIO;
}

int
fz_seeds_write(const char *dir, bool initiator)
{
	/* Op-mode inputs; each is also written as its raw transcript. */
	static const struct { uint8_t b[32]; size_t n; } seeds[] = {
		{ { 0x01 }, 1 },
		{ { 0x01, 1, 0, 100, 3, 200, 1, 0, 0, 3, 10 }, 11 },
		{ { 0x03, 2, 5, 'h', 'e', 'l', 'l', 'o', 0x33, 10, 1, 0, 0 }, 13 },
		{ { 0x05, 1, 4, 0, 3, 0x3b, 255, 0x7b, 255, 6, 1, 0, 0 }, 13 },
		{ { 0x09, 1, 1, 0, 6, 3, 0, 4, 1, 0, 6, 0x0d, 3, 4 }, 14 },
		{ { 0x0d, 1, 0, 40, 6, 0x13, 5, 3, 40, 0x05, 3, 5 }, 12 },
		{ { 0x11, 1, 0, 8, 0x0f, 3, 20, 1, 0, 0 }, 10 },
		{ { 0x91, 4, 2, 0, 0x15, 1, 0, 1, 7, 4, 2, 3, 10 }, 13 },
		{ { 0x01, 0, 3, 'x', 'y', 'z', 1, 0, 5, 3, 10 }, 11 },
		{ { 0x01, 1, 0, 5, 0x17, 3, 10, 1, 0, 0 }, 10 },
		{ { 0x01, 1, 0, 5, 0x0e, 3, 10 }, 7 },
	};
	static uint8_t out[1 << 18];
	char name[64];
	size_t i, n;
	int r;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		snprintf(name, sizeof(name), "op-%02zu", i);
		if ((r = seed_write(dir, name, seeds[i].b, seeds[i].n)) < 0)
			return r;
		n = fuzz_session_transcript(seeds[i].b, seeds[i].n, initiator,
		    out, sizeof(out));
		snprintf(name, sizeof(name), "raw-%02zu", i);
		if (n > 0 && (r = seed_write(dir, name, out, n)) < 0)
			return r;
	}
	return 0;
}
