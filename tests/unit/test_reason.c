/*
 * test_reason: the fixed reason codes (shim/reason.c) are what pipelines
 * and Prometheus labels match on: every code has a name, the names are
 * distinct snake_case ASCII, out-of-range values are "none", and the
 * failure range holds exactly the codes that say a connection failed.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "reason.h"

static void
test_names(void)
{
	int i, j;
	const char *n;

	for (i = 0; i < REASON_COUNT; i++) {
		n = reason_name(i);
		CHECK(n != NULL && *n != '\0');
		CHECK(i == REASON_NONE || strcmp(n, "none") != 0);
		CHECK(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n));
		for (j = 0; j < i; j++)
			CHECK(strcmp(n, reason_name(j)) != 0);
	}
	CHECK(strcmp(reason_name(-1), "none") == 0);
	CHECK(strcmp(reason_name(REASON_COUNT), "none") == 0);
	/* Names operators' alerts use: never renamed. */
	CHECK(strcmp(reason_name(REASON_WRONG_KEY), "wrong_key") == 0);
	CHECK(strcmp(reason_name(REASON_HANDSHAKE_TIMEOUT),
	    "handshake_timeout") == 0);
	CHECK(strcmp(reason_name(REASON_NO_PREFACE), "no_preface") == 0);
	CHECK(strcmp(reason_name(REASON_PEER_NOT_ALLOWED),
	    "peer_not_allowed") == 0);
	CHECK(strcmp(reason_name(REASON_CLOSED), "closed") == 0);
}

static void
test_failures(void)
{
	CHECK(!reason_is_failure(REASON_NONE));
	CHECK(!reason_is_failure(REASON_CLOSED));
	CHECK(!reason_is_failure(REASON_PLAINTEXT_PERMISSIVE));
	CHECK(reason_is_failure(REASON_HANDSHAKE_LIMIT));
	CHECK(reason_is_failure(REASON_WRONG_KEY));
	CHECK(reason_is_failure(REASON_HANDOFF));
	CHECK(!reason_is_failure(REASON_RELOAD_FAILED));
	CHECK(!reason_is_failure(REASON_COUNT));
}

int
main(void)
{
	test_names();
	test_failures();
	CHECK_DONE();
}
