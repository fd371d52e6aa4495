/*
 * cmd_show: `sockseal-keytool show [--identity|--pub] FILE`: a fingerprint,
 * never a secret.  A key file, an identity and a public key look alike (32
 * bytes in base64), so the kind is the caller's to say:
 *   show FILE             the fingerprint of the pre-shared key in FILE
 *   show --identity FILE  the identity's public key and its fingerprint
 *   show --pub FILE|KEY   the fingerprint of a public key, in a file or
 *                         written out (the logs name peers by it)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "subcommands.h"

static int
usage(void)
{
	fprintf(stderr, "usage: %s show [--identity|--pub] FILE\n",
	    KEYTOOL_PROG);
	return KEYTOOL_USAGE;
}

int
cmd_show_main(int argc, char **argv)
{
	uint8_t key[KEYFILE_KEYLEN], pk[KEYFILE_KEYLEN];
	char fpr[KEYFILE_FPRLEN], err[128], b64[KEYFILE_B64LEN];
	const char *kind = NULL, *arg;

	if (argc == 3 && (strcmp(argv[1], "--identity") == 0 ||
	    strcmp(argv[1], "--pub") == 0))
		kind = argv[1] + 2;
	else if (argc != 2)
		return usage();
	arg = argv[argc - 1];
	if (arg[0] == '\0')
		return usage();
	if (kind != NULL && strcmp(kind, "pub") == 0 &&
	    keyfile_parse(arg, strlen(arg), key) == 0) {
		/* a public key written out, as in a peer line */
	} else if (keyfile_read(arg, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, arg, err);
		return KEYTOOL_FAIL;
	}
	if (kind == NULL) {
		keyfile_fingerprint(key, fpr);
		printf("%s\n", fpr);
	} else if (strcmp(kind, "identity") == 0) {
		(void)crypto_scalarmult_base(pk, key);
		keyfile_base64(pk, b64);
		keyfile_pub_fingerprint(pk, fpr);
		printf("public key %s\nfingerprint %s\n", b64, fpr);
	} else {
		keyfile_pub_fingerprint(key, fpr);
		printf("%s\n", fpr);
	}
	sodium_memzero(key, sizeof(key));
	return KEYTOOL_OK;
}
