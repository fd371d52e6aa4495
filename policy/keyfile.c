/*
 * keyfile: read, write and fingerprint sockseal key files (see keyfile.h).
 * Every buffer that held key material is wiped before it is released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fileio.h"
#include "keyfile.h"

/* Longest key file we read: the key, whitespace and some slack. */
#define KEYFILE_MAXFILE 256

/* sockseal's fingerprint label (keyfile.h). */
static const char fpr_label[] = "sockseal key fingerprint v1";
static const char pub_label[] = "sockseal public key fingerprint v1";

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

/* Standard base64 alphabet and padding. */
static bool
is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

int
keyfile_parse(const char *text, size_t len, uint8_t key[KEYFILE_KEYLEN])
{
	uint8_t tmp[KEYFILE_KEYLEN + 3];
	const char *end;
	size_t binlen, i;
	int rc = -EINVAL;

	while (len > 0 && is_space(text[0])) {
		text++;
		len--;
	}
	while (len > 0 && is_space(text[len - 1]))
		len--;
	/* Padded standard base64 of 32 bytes is exactly 44 characters. */
	if (len != sodium_base64_ENCODED_LEN(KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL) - 1)
		goto out;
	/* libsodium 1.0.18 decodes bytes >= 0x80 as if they were digits. */
	for (i = 0; i < len; i++)
		if (!is_b64(text[i]))
			goto out;
	if (sodium_base642bin(tmp, sizeof(tmp), text, len, NULL, &binlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	if (end != text + len || binlen != KEYFILE_KEYLEN)
		goto out;
	memcpy(key, tmp, KEYFILE_KEYLEN);
	rc = 0;
out:
	sodium_memzero(tmp, sizeof(tmp));
	return rc;
}

int
keyfile_read(const char *path, uint8_t key[KEYFILE_KEYLEN], char *err,
    size_t errlen)
{
	const struct fileio *io = fileio();
	char buf[KEYFILE_MAXFILE + 1];
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	if ((fd = io->open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0)) == -1) {
		rc = -errno;
		snprintf(err, errlen, "%s", strerror(-rc));
		goto err0;
	}
	/* Read one byte more than we accept, to notice an oversized file. */
	while (len < sizeof(buf)) {
		n = io->read(fd, buf + len, sizeof(buf) - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			snprintf(err, errlen, "%s", strerror(-rc));
			goto err1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > KEYFILE_MAXFILE || keyfile_parse(buf, len, key) != 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "not a base64 32-byte key");
		goto err1;
	}
	rc = 0;

err1:
	sodium_memzero(buf, sizeof(buf));
	io->close(fd);
err0:
	return rc;
}

/* Write all of BUF to FD.  Returns 0 or a negative errno. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
keyfile_create(const char *path, const uint8_t key[KEYFILE_KEYLEN])
{
	char b64[sodium_base64_ENCODED_LEN(KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL) + 1];
	size_t len;
	int fd, rc;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
	    0600)) == -1) {
		rc = -errno;
		goto err0;
	}
	sodium_bin2base64(b64, sizeof(b64) - 1, key, KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL);
	len = strlen(b64);
	b64[len++] = '\n';
	if ((rc = write_all(fd, b64, len)) != 0)
		goto err1;
	if (fsync(fd) == -1) {
		rc = -errno;
		goto err1;
	}
	if (close(fd) == -1) {
		rc = -errno;
		fd = -1;
		goto err1;
	}
	sodium_memzero(b64, sizeof(b64));
	return 0;

err1:
	/* We created the file: do not leave a truncated key behind. */
	if (fd != -1)
		close(fd);
	unlink(path);
	sodium_memzero(b64, sizeof(b64));
err0:
	return rc;
}

/* HMAC-SHA-256(key, LABEL), its first 16 bytes in unpadded base64. */
static void fingerprint(const uint8_t key[KEYFILE_KEYLEN], const char *label,
    size_t labellen, char out[KEYFILE_FPRLEN]);

void
keyfile_fingerprint(const uint8_t key[KEYFILE_KEYLEN], char out[KEYFILE_FPRLEN])
{
	fingerprint(key, fpr_label, sizeof(fpr_label) - 1, out);
}

void
keyfile_pub_fingerprint(const uint8_t pk[KEYFILE_KEYLEN],
    char out[KEYFILE_FPRLEN])
{
	fingerprint(pk, pub_label, sizeof(pub_label) - 1, out);
}

void
keyfile_base64(const uint8_t key[KEYFILE_KEYLEN], char out[KEYFILE_B64LEN])
{
	sodium_bin2base64(out, KEYFILE_B64LEN, key, KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL);
}

static void
fingerprint(const uint8_t key[KEYFILE_KEYLEN], const char *label,
    size_t labellen, char out[KEYFILE_FPRLEN])
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	static const char prefix[] = "SHA256:";

	crypto_auth_hmacsha256(mac, (const unsigned char *)label, labellen,
	    key);
	memcpy(out, prefix, sizeof(prefix));
	sodium_bin2base64(out + sizeof(prefix) - 1,
	    KEYFILE_FPRLEN - (sizeof(prefix) - 1), mac, 16,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	sodium_memzero(mac, sizeof(mac));
}
