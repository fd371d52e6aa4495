/*
 * keytool: sockseal-keytool's main: a table of subcommands (as
 * wireguard-tools' wg.c), each in its own cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "subcommands.h"

static const struct {
	const char *name;
	int       (*main)(int, char **);
	const char *args;
	const char *description;
} subcommands[] = {
	{ "gen",   cmd_gen_main,   "FILE",
	  "write a new random key to FILE (mode 0600, never overwrites)" },
	{ "show",  cmd_show_main,  "[--identity|--pub] FILE",
	  "print the fingerprint of the key in FILE (never the key); of an "
	  "identity's public key, or of a public key" },
	{ "identity", cmd_identity_main, "FILE",
	  "write a new private key (this host's identity) to FILE (mode 0600, "
	  "never overwrites); print its public key" },
	{ "pub",   cmd_pub_main,   "FILE",
	  "print the public key of the identity in FILE (safe to share)" },
	{ "check", cmd_check_main, "POLICY",
	  "validate POLICY and every key it names; summarize its rules" },
	{ "rotate", cmd_rotate_main, "POLICY KEY",
	  "make a new key for KEY and the policies of a zero-downtime "
	  "rotation" },
};

#define NSUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s SUBCOMMAND [ARGS]\n\n", KEYTOOL_PROG);
	for (i = 0; i < NSUBCOMMANDS; i++)
		fprintf(f, "  %-8s %-23s %s\n", subcommands[i].name,
		    subcommands[i].args, subcommands[i].description);
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return KEYTOOL_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return KEYTOOL_OK;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: cannot initialise libsodium\n",
		    KEYTOOL_PROG);
		return KEYTOOL_FAIL;
	}
	for (i = 0; i < NSUBCOMMANDS; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown subcommand `%s'\n", KEYTOOL_PROG, argv[1]);
	usage(stderr);
	return KEYTOOL_USAGE;
}
