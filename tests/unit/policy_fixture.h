/*
 * policy_fixture: a policy written to a temporary directory and loaded,
 * for test_policy.c and test_policy_ident.c.  Header-only: each test is
 * one file.  The caller makes DIR with mkdtemp() and sets POLPATH.
 */
#ifndef SOCKSEAL_TEST_POLICY_FIXTURE_H
#define SOCKSEAL_TEST_POLICY_FIXTURE_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "policy.h"

/* The includer defines: static char dir[] (a mkdtemp template) and
 * static char polpath[PATH_MAX] (dir/p.policy). */

/* Write TEXT to dir/p.policy and load it. */
static int
load(const char *text, struct policy **pp, char err[POLICY_ERRLEN])
{
	FILE *f = fopen(polpath, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		perror(polpath);
		exit(1);
	}
	err[0] = '\0';
	return policy_load(polpath, pp, err);
}

/* A policy that must load; aborts the test run if it does not. */
static struct policy *
load_ok(const char *text)
{
	char err[POLICY_ERRLEN];
	struct policy *p;

	if (load(text, &p, err) != 0) {
		fprintf(stderr, "unexpected policy error: %s\n", err);
		exit(1);
	}
	return p;
}

/*
 * Does TEXT fail with rc RC and "p.policy:LINE: ...WANT..."?  The keys a and
 * b are defined on lines 1 and 2 by the callers that need them.
 */
static bool
fails(const char *text, int rc, int line, const char *want)
{
	char err[POLICY_ERRLEN], prefix[PATH_MAX + 32];
	struct policy *p = NULL;
	int got;

	got = load(text, &p, err);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", polpath, line);
	if (got == rc && p == NULL && strncmp(err, prefix, strlen(prefix)) == 0 &&
	    strstr(err + strlen(prefix), want) != NULL)
		return true;
	fprintf(stderr, "  policy:\n%s  wanted rc %d, line %d, \"%s\"\n"
	    "  got rc %d: \"%s\"\n", text, rc, line, want, got, err);
	policy_free(p);
	return false;
}

#define FAILS(text, line, want) CHECK(fails(text, -EINVAL, line, want))

#endif
