/*
 * check_dead: rules that can never match, for `sockseal-keytool check`.
 * The first matching rule wins (DESIGN.md), so a rule is dead when an
 * earlier rule of its direction matches every address and port it does:
 * a duplicate when the two match the same set, shadowed otherwise.  The
 * dangerous case is a sealing rule behind a `plain` one (`accept *:*
 * plain` first): what the operator meant to seal goes out as plaintext,
 * and that is an error; the rest are warnings.  Only single rules are
 * compared: a rule covered by several earlier ones together is not found.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "check_dead.h"

/* Is every address B matches one A matches?  (`*` is family 0: both.) */
static bool
addr_covers(const struct policy_rule *a, const struct policy_rule *b)
{
	int full, bits;

	if (a->family == 0)
		return true;
	if (b->family != a->family || b->prefix < a->prefix)
		return false;
	full = a->prefix / 8;
	bits = a->prefix % 8;
	if (memcmp(a->addr, b->addr, (size_t)full) != 0)
		return false;
	return bits == 0 || ((a->addr[full] ^ b->addr[full]) &
	    (uint8_t)(0xff << (8 - bits))) == 0;
}

static bool
covers(const struct policy_rule *a, const struct policy_rule *b)
{
	return a->dir == b->dir && a->port_lo <= b->port_lo &&
	    b->port_hi <= a->port_hi && addr_covers(a, b);
}

int
check_dead_rules(const struct policy *p)
{
	char ap[POLICY_ADDRPORTSLEN];
	size_t i, j, n = policy_nrules(p);
	int errors = 0;

	for (j = 1; j < n; j++) {
		const struct policy_rule *b = policy_rule_at(p, j), *a = NULL;

		for (i = 0; i < j && a == NULL; i++)
			if (covers(policy_rule_at(p, i), b))
				a = policy_rule_at(p, i);
		if (a == NULL)
			continue;
		(void)policy_format_addrports(a, ap);
		if (a->plain && !b->plain) {
			fprintf(stderr, "%s:%d: error: this rule never matches: "
			    "`%s %s plain' at %s:%d matches all it does first, "
			    "so those connections go unsealed\n", b->file,
			    b->line, policy_dir_name(a->dir), ap, a->file,
			    a->line);
			errors++;
		} else if (covers(b, a))
			fprintf(stderr, "%s:%d: warning: duplicate of the rule "
			    "at %s:%d (%s %s), which matches first: this one "
			    "never matches\n", b->file, b->line, a->file,
			    a->line, policy_dir_name(a->dir), ap);
		else
			fprintf(stderr, "%s:%d: warning: this rule never "
			    "matches: the rule at %s:%d (%s %s) matches all it "
			    "does first\n", b->file, b->line, a->file, a->line,
			    policy_dir_name(a->dir), ap);
	}
	return errors;
}
