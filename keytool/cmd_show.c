/*
 * cmd_show: `sockseal-keytool show FILE`: the fingerprint, never the key.
 */
#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

#include "keyfile.h"
#include "subcommands.h"

int
cmd_show_main(int argc, char **argv)
{
	uint8_t key[KEYFILE_KEYLEN];
	char fpr[KEYFILE_FPRLEN], err[128];

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: %s show FILE\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	if (keyfile_read(argv[1], key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, argv[1], err);
		return KEYTOOL_FAIL;
	}
	keyfile_fingerprint(key, fpr);
	sodium_memzero(key, sizeof(key));
	printf("%s\n", fpr);
	return KEYTOOL_OK;
}
