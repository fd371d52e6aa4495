/*
 * test_keyfile: key file parsing, reading, creation and fingerprints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "keyfile.h"

/* Bytes 0..31 and their standard base64. */
#define K0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* HMAC-SHA-256(bytes 0..31, "sockseal key fingerprint v1")[0:16], computed
 * independently with Python's hmac module. */
#define K0_FPR "SHA256:0M8YgzQZXuSOR9vY/yQf6w"

static uint8_t k0[KEYFILE_KEYLEN];
static char dir[] = "/tmp/test_keyfile.XXXXXX";

static int
parse(const char *s, uint8_t key[KEYFILE_KEYLEN])
{
	return keyfile_parse(s, strlen(s), key);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fwrite(text, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

static void
test_parse(void)
{
	uint8_t key[KEYFILE_KEYLEN];
	char big[200];

	memset(key, 0, sizeof(key));
	CHECK_INT_EQ(parse(K0_B64, key), 0);
	CHECK_MEM_EQ(key, k0, sizeof(k0));
	/* `wg genpsk` / `base64` output: trailing newline. */
	memset(key, 0, sizeof(key));
	CHECK_INT_EQ(parse(K0_B64 "\n", key), 0);
	CHECK_MEM_EQ(key, k0, sizeof(k0));
	CHECK_INT_EQ(parse(K0_B64 "\r\n", key), 0);
	CHECK_INT_EQ(parse("  \t" K0_B64 " \n\n", key), 0);
	CHECK_MEM_EQ(key, k0, sizeof(k0));
	CHECK_INT_EQ(parse("paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU=\n", key), 0);
	CHECK(key[0] == 0xa5 && key[31] == 0xa5);

	/* Wrong lengths. */
	CHECK_INT_EQ(parse("", key), -EINVAL);
	CHECK_INT_EQ(parse("\n", key), -EINVAL);
	/* unpadded */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", key), -EINVAL);
	/* 31 bytes: 44 characters, but too short a key */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", key), -EINVAL);
	/* 33 bytes */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", key), -EINVAL);
	/* 48 bytes */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v",
	    key), -EINVAL);
	/* 16 bytes (a fingerprint is not a key) */
	CHECK_INT_EQ(parse("0M8YgzQZXuSOR9vY/yQf6w==", key), -EINVAL);

	/* Garbage. */
	CHECK_INT_EQ(parse("this is not a key, it is a sentence here!!!=", key), -EINVAL);
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8=", key), -EINVAL);
	CHECK_INT_EQ(parse(K0_B64 "\n" K0_B64 "\n", key), -EINVAL);
	CHECK_INT_EQ(parse(K0_B64 "x", key), -EINVAL);
	/* URL-safe alphabet is not the standard one */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-_", key), -EINVAL);
	/* non-zero padding bits (non-canonical encoding) */
	CHECK_INT_EQ(parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", key), -EINVAL);
	/* Bytes >= 0x80 are no base64 digits (libsodium 1.0.18 decodes them
	 * all the same); found by fuzz_keyfile. */
	CHECK_INT_EQ(parse("  \tpaWlpaWlpaWlpaWl\x8c" "aWlpaWlpaWlpaWlpaWlpaWlpaU=\r\n\n",
	    key), -EINVAL);
	CHECK_INT_EQ(parse("\xff" "AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key),
	    -EINVAL);
	/* embedded NUL */
	CHECK_INT_EQ(keyfile_parse(K0_B64 "\0", sizeof(K0_B64), key), -EINVAL);
	memset(big, 'A', sizeof(big));
	CHECK_INT_EQ(keyfile_parse(big, sizeof(big), key), -EINVAL);
}

static void
test_read(void)
{
	uint8_t key[KEYFILE_KEYLEN];
	char path[256], err[128], big[4096];

	snprintf(path, sizeof(path), "%s/genpsk.key", dir);
	write_file(path, K0_B64 "\n", strlen(K0_B64) + 1);
	memset(key, 0, sizeof(key));
	CHECK_INT_EQ(keyfile_read(path, key, err, sizeof(err)), 0);
	CHECK_MEM_EQ(key, k0, sizeof(k0));

	snprintf(path, sizeof(path), "%s/short.key", dir);
	write_file(path, "AAECAwQF\n", 9);
	err[0] = '\0';
	CHECK_INT_EQ(keyfile_read(path, key, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not a base64 32-byte key") != NULL);
	CHECK(strstr(err, path) == NULL);	/* message without the path */

	/* A huge file that starts with a valid key is still refused. */
	snprintf(path, sizeof(path), "%s/big.key", dir);
	memset(big, ' ', sizeof(big));
	memcpy(big, K0_B64, strlen(K0_B64));
	big[sizeof(big) - 1] = 'A';
	write_file(path, big, sizeof(big));
	CHECK_INT_EQ(keyfile_read(path, key, err, sizeof(err)), -EINVAL);

	snprintf(path, sizeof(path), "%s/missing.key", dir);
	CHECK_INT_EQ(keyfile_read(path, key, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, strerror(ENOENT)) != NULL);

	CHECK_INT_EQ(keyfile_read(dir, key, err, sizeof(err)), -EISDIR);
}

static void
test_create(void)
{
	uint8_t key[KEYFILE_KEYLEN], other[KEYFILE_KEYLEN], back[KEYFILE_KEYLEN];
	char path[256], err[128], text[128];
	struct stat st;
	ssize_t n;
	int fd;

	memset(key, 0x5c, sizeof(key));
	memset(other, 0x3a, sizeof(other));
	umask(022);
	snprintf(path, sizeof(path), "%s/new.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key), 0);
	CHECK_INT_EQ(stat(path, &st), 0);
	CHECK_INT_EQ(st.st_mode & 07777, 0600);
	CHECK(S_ISREG(st.st_mode));
	CHECK_INT_EQ(st.st_size, 45);

	/* One line of base64 and a newline, the `wg genpsk` form. */
	fd = open(path, O_RDONLY);
	CHECK(fd != -1);
	n = read(fd, text, sizeof(text));
	close(fd);
	CHECK_INT_EQ(n, 45);
	CHECK(text[44] == '\n');
	CHECK(memchr(text, '\n', 44) == NULL);
	CHECK_INT_EQ(keyfile_parse(text, (size_t)n, back), 0);
	CHECK_MEM_EQ(back, key, sizeof(key));

	/* Refuses to overwrite; the old key survives. */
	CHECK_INT_EQ(keyfile_create(path, other), -EEXIST);
	CHECK_INT_EQ(keyfile_read(path, back, err, sizeof(err)), 0);
	CHECK_MEM_EQ(back, key, sizeof(key));

	/* Not even through a dangling symlink. */
	snprintf(text, sizeof(text), "%s/link.key", dir);
	CHECK_INT_EQ(symlink("dangling-target", text), 0);
	CHECK_INT_EQ(keyfile_create(text, key), -EEXIST);
	unlink(text);

	snprintf(path, sizeof(path), "%s/nodir/new.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key), -ENOENT);
}

static void
test_fingerprint(void)
{
	uint8_t a[KEYFILE_KEYLEN], b[KEYFILE_KEYLEN];
	char fa[KEYFILE_FPRLEN], fa2[KEYFILE_FPRLEN], fb[KEYFILE_FPRLEN];

	keyfile_fingerprint(k0, fa);
	CHECK(strcmp(fa, K0_FPR) == 0);
	CHECK_INT_EQ(strlen(fa), 7 + 22);

	memset(a, 0x11, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[31] ^= 1;
	keyfile_fingerprint(a, fa);
	keyfile_fingerprint(a, fa2);
	keyfile_fingerprint(b, fb);
	CHECK(strcmp(fa, fa2) == 0);
	CHECK(strcmp(fa, fb) != 0);
	CHECK(strncmp(fa, "SHA256:", 7) == 0);
	CHECK(strncmp(fb, "SHA256:", 7) == 0);
	/* The fingerprint does not reveal the key's base64. */
	CHECK(strstr(K0_B64, fa + 7) == NULL);
}

int
main(void)
{
	char cmd[64];
	int i;

	for (i = 0; i < KEYFILE_KEYLEN; i++)
		k0[i] = (uint8_t)i;
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_parse();
	test_read();
	test_create();
	test_fingerprint();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT_EQ(system(cmd), 0);
	CHECK_DONE();
}
