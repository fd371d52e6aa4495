/*
 * cmd_gen: `sockseal-keytool gen FILE`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "subcommands.h"

int
cmd_gen_main(int argc, char **argv)
{
	uint8_t key[KEYFILE_KEYLEN];
	char fpr[KEYFILE_FPRLEN];
	int rc;

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: %s gen FILE\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	randombytes_buf(key, sizeof(key));
	if ((rc = keyfile_create(argv[1], key)) != 0) {
		sodium_memzero(key, sizeof(key));
		fprintf(stderr, "%s: %s: %s%s\n", KEYTOOL_PROG, argv[1],
		    strerror(-rc), rc == -EEXIST ?
		    " (refusing to overwrite a key)" : "");
		return KEYTOOL_FAIL;
	}
	keyfile_fingerprint(key, fpr);
	sodium_memzero(key, sizeof(key));
	printf("%s\n", fpr);
	return KEYTOOL_OK;
}
