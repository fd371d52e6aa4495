/*
 * cmd_identity: `sockseal-keytool identity FILE` (a new private key, the
 * host's identity) and `sockseal-keytool pub FILE` (its public key, safe to
 * share).  The forms are WireGuard's: an identity file is what `wg genkey`
 * writes, a public key what `wg pubkey` prints, so WireGuard key pairs work
 * as they are, either way round.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "subcommands.h"

/* Print PK as `wg pubkey` does: base64 and a newline. */
static void
print_pub(const uint8_t pk[KEYFILE_KEYLEN])
{
	char b64[KEYFILE_B64LEN];

	keyfile_base64(pk, b64);
	printf("%s\n", b64);
}

int
cmd_identity_main(int argc, char **argv)
{
	uint8_t sk[KEYFILE_KEYLEN], pk[KEYFILE_KEYLEN];
	int rc;

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: %s identity FILE\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	/* Clamped as wg genkey's are (X25519 clamps anyway). */
	randombytes_buf(sk, sizeof(sk));
	sk[0] &= 248;
	sk[31] = (uint8_t)((sk[31] & 127) | 64);
	(void)crypto_scalarmult_base(pk, sk);
	if ((rc = keyfile_create(argv[1], sk)) != 0) {
		sodium_memzero(sk, sizeof(sk));
		fprintf(stderr, "%s: %s: %s%s\n", KEYTOOL_PROG, argv[1],
		    strerror(-rc), rc == -EEXIST ?
		    " (refusing to overwrite a key)" : "");
		return KEYTOOL_FAIL;
	}
	sodium_memzero(sk, sizeof(sk));
	print_pub(pk);
	return KEYTOOL_OK;
}

int
cmd_pub_main(int argc, char **argv)
{
	uint8_t sk[KEYFILE_KEYLEN], pk[KEYFILE_KEYLEN];
	char err[128];

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: %s pub FILE\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	if (keyfile_read(argv[1], sk, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, argv[1], err);
		return KEYTOOL_FAIL;
	}
	(void)crypto_scalarmult_base(pk, sk);
	sodium_memzero(sk, sizeof(sk));
	print_pub(pk);
	return KEYTOOL_OK;
}
