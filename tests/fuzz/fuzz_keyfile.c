/*
 * fuzz_keyfile: the key file reader.  The input is a key file's contents;
 * it is decoded from the buffer (keyfile_parse) and read from a file
 * (keyfile_read, through a memfd, so no directory is touched), and both
 * must agree.  A key that decodes must be the base64 of itself (the text
 * between the whitespace is exactly its encoding), survive keyfile_create()
 * and a second read unchanged, and get a fingerprint.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "fuzz.h"
#include "keyfile.h"

#define KEYFILE_MAXFILE 256     /* keyfile.c reads no more than this */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char memfd_path[64];
static char dir[] = "/tmp/fuzz_keyfile.XXXXXX";

static void
cleanup(void)
{
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		abort();
	if ((memfd = memfd_create("fuzz_keyfile", MFD_CLOEXEC)) < 0 ||
	    mkdtemp(dir) == NULL) {
		perror("fuzz_keyfile: setup");
		exit(1);
	}
	atexit(cleanup);
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	return 0;
}

static bool
is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

/* The accepted key's text is its own canonical base64. */
static void
check_canonical(const uint8_t *data, size_t size, const uint8_t *key)
{
	char b64[sodium_base64_ENCODED_LEN(KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL)];
	size_t a = 0, z = size;

	while (a < z && is_space(data[a]))
		a++;
	while (z > a && is_space(data[z - 1]))
		z--;
	sodium_bin2base64(b64, sizeof(b64), key, KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL);
	FZ_ASSERT(z - a == strlen(b64));
	FZ_ASSERT(memcmp(data + a, b64, z - a) == 0);
}

/* keyfile_create() then keyfile_read() gives the key back. */
static void
check_roundtrip(const uint8_t *key)
{
	char path[sizeof(dir) + 8], err[128], fpr[KEYFILE_FPRLEN];
	uint8_t back[KEYFILE_KEYLEN];

	snprintf(path, sizeof(path), "%s/k", dir);
	FZ_ASSERT(keyfile_create(path, key) == 0);
	FZ_ASSERT(keyfile_create(path, key) == -EEXIST);
	FZ_ASSERT(keyfile_read(path, back, err, sizeof(err)) == 0);
	FZ_ASSERT(memcmp(back, key, KEYFILE_KEYLEN) == 0);
	unlink(path);
	keyfile_fingerprint(key, fpr);
	FZ_ASSERT(strncmp(fpr, "SHA256:", 7) == 0 && strlen(fpr) < sizeof(fpr));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t k1[KEYFILE_KEYLEN], k2[KEYFILE_KEYLEN];
	char err[128];
	int r1, r2;

	r1 = keyfile_parse((const char *)data, size, k1);
	FZ_ASSERT(r1 == 0 || r1 == -EINVAL);

	if (ftruncate(memfd, 0) < 0 ||
	    pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	r2 = keyfile_read(memfd_path, k2, err, sizeof(err));
	FZ_ASSERT(r2 == 0 || r2 == -EINVAL);
	FZ_ASSERT(r2 == 0 || err[0] != '\0');
	/* The file reader is the buffer parser plus a size limit. */
	FZ_ASSERT(r2 == (size > KEYFILE_MAXFILE ? -EINVAL : r1));
	if (r1 == 0) {
		check_canonical(data, size, k1);
		if (r2 == 0)
			FZ_ASSERT(memcmp(k1, k2, KEYFILE_KEYLEN) == 0);
		check_roundtrip(k1);
	}
	return 0;
}
