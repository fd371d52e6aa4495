/*
 * keytool: sockseal-keytool's main: a table of subcommands (as
 * wireguard-tools' wg.c), each in its own cmd_<name>.c.
 *
 * The conventions every subcommand gets from here: -h/--help prints its
 * usage on stdout (exit 0); an option it does not take prints its usage on
 * stderr (exit 2); "--" ends the options (a FILE may then start with -).
 * The subcommand sees its operands and its own options, in order.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "subcommands.h"
#include "version.h"

static const struct {
	const char *name;
	int       (*main)(int, char **);
	const char *args;
	const char *description;
	const char *opts[3];    /* the options it takes */
} subcommands[] = {
	{ "gen",   cmd_gen_main,   "FILE",
	  "write a new random key to FILE (mode 0600, never overwrites)",
	  { NULL } },
	{ "show",  cmd_show_main,  "[--identity|--pub] FILE",
	  "print the fingerprint of the key in FILE (never the key); of an "
	  "identity's public key, or of a public key",
	  { "--identity", "--pub" } },
	{ "identity", cmd_identity_main, "FILE",
	  "write a new private key (this host's identity) to FILE (mode 0600, "
	  "never overwrites); print its public key",
	  { NULL } },
	{ "pub",   cmd_pub_main,   "FILE",
	  "print the public key of the identity in FILE (safe to share)",
	  { NULL } },
	{ "check", cmd_check_main, "POLICY",
	  "validate POLICY and every key it names; summarize its rules",
	  { NULL } },
	{ "rotate", cmd_rotate_main, "POLICY KEY",
	  "make a new key for KEY and the policies of a zero-downtime "
	  "rotation",
	  { NULL } },
};

#define NSUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s SUBCOMMAND [ARGS]\n"
	    "       %s SUBCOMMAND -h|--help, %s -h|--help|help, %s --version\n"
	    "\n", KEYTOOL_PROG, KEYTOOL_PROG, KEYTOOL_PROG, KEYTOOL_PROG);
	for (i = 0; i < NSUBCOMMANDS; i++)
		fprintf(f, "  %-8s %-23s %s\n", subcommands[i].name,
		    subcommands[i].args, subcommands[i].description);
}

static void
sub_usage(FILE *f, size_t i)
{
	fprintf(f, "usage: %s %s %s\n  %s\n", KEYTOOL_PROG,
	    subcommands[i].name, subcommands[i].args,
	    subcommands[i].description);
}

static bool
takes(size_t i, const char *opt)
{
	size_t k;

	for (k = 0; k < sizeof(subcommands[i].opts) /
	    sizeof(subcommands[i].opts[0]) && subcommands[i].opts[k] != NULL; k++)
		if (strcmp(subcommands[i].opts[k], opt) == 0)
			return true;
	return false;
}

/* Subcommand I with ARGV[1..]: the conventions above, then its main. */
static int
sub_run(size_t i, int argc, char **argv)
{
	char *args[argc + 1];
	bool operands = false;
	int k, n = 0;

	args[n++] = argv[0];
	for (k = 1; k < argc; k++) {
		const char *a = argv[k];

		if (!operands && strcmp(a, "--") == 0) {
			operands = true;
			continue;
		}
		if (!operands && a[0] == '-' && a[1] != '\0') {
			if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
				sub_usage(stdout, i);
				return KEYTOOL_OK;
			}
			if (!takes(i, a)) {
				fprintf(stderr, "%s %s: unknown option `%s'\n",
				    KEYTOOL_PROG, subcommands[i].name, a);
				sub_usage(stderr, i);
				return KEYTOOL_USAGE;
			}
		}
		args[n++] = argv[k];
	}
	args[n] = NULL;
	return subcommands[i].main(n, args);
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
	if (strcmp(argv[1], "--version") == 0) {
		sockseal_print_version(stdout, KEYTOOL_PROG);
		return KEYTOOL_OK;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: cannot initialise libsodium\n",
		    KEYTOOL_PROG);
		return KEYTOOL_FAIL;
	}
	for (i = 0; i < NSUBCOMMANDS; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return sub_run(i, argc - 1, argv + 1);
	if (argv[1][0] == '-')
		fprintf(stderr, "%s: unknown option `%s'\n", KEYTOOL_PROG,
		    argv[1]);
	else
		fprintf(stderr, "%s: unknown subcommand `%s'\n", KEYTOOL_PROG,
		    argv[1]);
	usage(stderr);
	return KEYTOOL_USAGE;
}
