/*
 * cmd_check: `sockseal-keytool check POLICY`.  Loads the policy exactly as
 * the shim does (policy_load), so a policy that passes here is one the shim
 * accepts.  Output, one line per rule on stdout:
 *
 *   DIR ADDR:PORTS key=NAME(FPR)[,NAME(FPR)] cipher=C [mode=M] timeout=MS FILE:LINE
 *   DIR ADDR:PORTS plain FILE:LINE
 *
 * C is chachapoly or aesgcm: a connect rule's default is chachapoly; an
 * accept rule without cipher= takes both suites the CPU can run and shows
 * none (every value shown is one the parser accepts).  mode only applies
 * to accept rules.  Then, on success, one line: "POLICY: ok: ..." with
 * what was checked.  Warnings (stderr, exit status still 0): a key file
 * readable by group or others, a key no rule uses, a policy without
 * rules, a rule an earlier one hides (check_dead.c).  A sealing rule
 * hidden by a plain one is an error (exit 1): it would send plaintext.
 */
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include "check_dead.h"
#include "keyfile.h"
#include "policy.h"
#include "subcommands.h"

/* The cipher= to show, or NULL (an accept rule's default: both). */
static const char *
cipher_name(const struct policy_rule *r)
{
	if (r->cipher != POLICY_CIPHER_DEFAULT)
		return policy_cipher_name(r->cipher);
	return r->dir == POLICY_CONNECT ? "chachapoly" : NULL;
}

static void
print_rule(const struct policy_rule *r)
{
	char ap[POLICY_ADDRPORTSLEN], fpr[KEYFILE_FPRLEN];
	int i;

	printf("%s %s", policy_dir_name(r->dir),
	    policy_format_addrports(r, ap));
	if (r->plain) {
		printf(" plain %s:%d\n", r->file, r->line);
		return;
	}
	if (r->nids > 0) {
		printf(" identity=");
		for (i = 0; i < r->nids; i++) {
			keyfile_pub_fingerprint(r->ids[i]->pk, fpr);
			printf("%s%s(%s)", i ? "," : "", r->ids[i]->name, fpr);
		}
		if (r->peer != NULL) {
			keyfile_pub_fingerprint(r->peer->pk, fpr);
			printf(" peer=%s(%s)", r->peer->name, fpr);
		}
		for (i = 0; i < (int)r->npeers; i++) {
			keyfile_pub_fingerprint(r->peers[i]->pk, fpr);
			printf("%s%s(%s)", i ? "," : " peers=",
			    r->peers[i]->name, fpr);
		}
	}
	if (r->nkeys > 0)
		printf(" key=");
	for (i = 0; i < r->nkeys; i++) {
		keyfile_fingerprint(r->keys[i]->key, fpr);
		printf("%s%s(%s)", i ? "," : "", r->keys[i]->name, fpr);
	}
	if (cipher_name(r) != NULL)
		printf(" cipher=%s", cipher_name(r));
	if (r->dir == POLICY_ACCEPT)
		printf(" mode=%s",
		    r->mode == POLICY_PERMISSIVE ? "permissive" : "strict");
	printf(" timeout=%u %s:%d\n", r->timeout_ms, r->file, r->line);
}

static bool
key_used(const struct policy *p, const struct policy_key *k)
{
	size_t i;
	int j;

	for (i = 0; i < policy_nrules(p); i++) {
		const struct policy_rule *r = policy_rule_at(p, i);

		for (j = 0; j < r->nkeys; j++)
			if (r->keys[j] == k)
				return true;
	}
	return false;
}

static void
warn_exposed(void *ctx, const char *file, int line, const char *what)
{
	(void)ctx;
	fprintf(stderr, "%s:%d: warning: %s\n", file, line, what);
}

static void
warn_keys(const struct policy *p, const char *file)
{
	size_t i;

	(void)policy_exposed(p, warn_exposed, NULL);
	for (i = 0; i < policy_nkeys(p); i++) {
		const struct policy_key *k = policy_key_at(p, i);

		if (!key_used(p, k))
			fprintf(stderr, "%s:%d: warning: key %s is not used by "
			    "any rule\n", file, k->line, k->name);
	}
	if (policy_nrules(p) == 0)
		fprintf(stderr, "%s: warning: no rules: no connection will be "
		    "sealed\n", file);
}

/* What was checked, on success: "POLICY: ok: 3 rules (2 sealing, 1
 * plain), 2 keys, 1 identity, 2 peers, 4 files read". */
static void
print_summary(const struct policy *p, const char *file)
{
	size_t i, plain = 0, n = policy_nrules(p);

	for (i = 0; i < n; i++)
		plain += policy_rule_at(p, i)->plain;
	printf("%s: ok: %zu rule%s (%zu sealing, %zu plain), %zu key%s, "
	    "%zu identit%s, %zu peer%s, %zu file%s read\n", file, n,
	    n == 1 ? "" : "s", n - plain, plain, policy_nkeys(p),
	    policy_nkeys(p) == 1 ? "" : "s", policy_nidentities(p),
	    policy_nidentities(p) == 1 ? "y" : "ies", policy_npeers(p),
	    policy_npeers(p) == 1 ? "" : "s", policy_nfiles(p) + 1,
	    policy_nfiles(p) == 0 ? "" : "s");
}

int
cmd_check_main(int argc, char **argv)
{
	char err[POLICY_ERRLEN];
	struct policy *p;
	size_t i;
	int errors;

	if (argc != 2 || argv[1][0] == '\0') {
		fprintf(stderr, "usage: %s check POLICY\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	if (policy_load(argv[1], &p, err) != 0) {
		fprintf(stderr, "%s\n", err);
		return KEYTOOL_FAIL;
	}
	for (i = 0; i < policy_nrules(p); i++)
		print_rule(policy_rule_at(p, i));
	warn_keys(p, argv[1]);
	if ((errors = check_dead_rules(p)) == 0)
		print_summary(p, argv[1]);
	policy_free(p);
	if (fflush(stdout) != 0) {
		perror(KEYTOOL_PROG ": stdout");
		return KEYTOOL_FAIL;
	}
	return errors == 0 ? KEYTOOL_OK : KEYTOOL_FAIL;
}
