/*
 * keyfile: sockseal key files.  A key file is 32 bytes in standard base64
 * (44 characters) followed by a newline, the form of `wg genpsk` and
 * `head -c32 /dev/urandom | base64`; an identity (a private X25519 key,
 * `wg genkey`) and a public key (`wg pubkey`) have the same form.  Leading/trailing whitespace around the
 * base64 text is tolerated; anything else is refused.
 */
#ifndef SOCKSEAL_KEYFILE_H
#define SOCKSEAL_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_KEYLEN  32
#define KEYFILE_FPRLEN  64     /* buffer size for keyfile_fingerprint() */
#define KEYFILE_B64LEN  45     /* the base64 form and its NUL */

/*
 * keyfile_read(path, key, err, errlen): read and decode the key at PATH.
 * Returns 0, or a negative errno with a message (without the path) in err:
 * -ENOENT/-EACCES etc. from open, -EINVAL "not a base64 32-byte key".
 */
int keyfile_read(const char *path, uint8_t key[KEYFILE_KEYLEN],
    char *err, size_t errlen);

/*
 * keyfile_parse(text, len, key): decode key file contents.  Returns 0 or
 * -EINVAL.
 */
int keyfile_parse(const char *text, size_t len, uint8_t key[KEYFILE_KEYLEN]);

/*
 * keyfile_create(path, key): write KEY to a new file at PATH, mode 0600,
 * O_EXCL (refuses to overwrite: -EEXIST).  Returns 0 or a negative errno.
 */
int keyfile_create(const char *path, const uint8_t key[KEYFILE_KEYLEN]);

/*
 * keyfile_fingerprint(key, out): a printable fingerprint that identifies the
 * key without revealing it: "SHA256:" + the first 16 bytes of
 * HMAC-SHA-256(key, "sockseal key fingerprint v1") in unpadded base64.
 */
void keyfile_fingerprint(const uint8_t key[KEYFILE_KEYLEN],
    char out[KEYFILE_FPRLEN]);

/*
 * keyfile_pub_fingerprint(pk, out): the same for a public key (a peer's,
 * or an identity's own), under another label ("sockseal public key
 * fingerprint v1"), so that a PSK and a public key never share one.  Logs
 * name peers, known or not, by it.
 */
void keyfile_pub_fingerprint(const uint8_t pk[KEYFILE_KEYLEN],
    char out[KEYFILE_FPRLEN]);

/* keyfile_base64(key, out): KEY in standard base64 (44 characters), the
 * form of `wg pubkey` for a public key. */
void keyfile_base64(const uint8_t key[KEYFILE_KEYLEN], char out[KEYFILE_B64LEN]);

#endif
