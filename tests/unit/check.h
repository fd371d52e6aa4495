/*
 * check.h: the unit tests' harness (after OpenSSH regress/unittests).
 *   CHECK(cond)            record a failure with file:line if cond is false
 *   CHECK_INT_EQ(a, b)     integers, both values shown on failure
 *   CHECK_MEM_EQ(a, b, n)  byte strings
 *   CHECK_DONE()           print "N passed, N failed" and return from main
 */
#ifndef SOCKSEAL_CHECK_H
#define SOCKSEAL_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_pass, check_fail;

#define CHECK(c) do { \
	if (c) check_pass++; \
	else { check_fail++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } \
} while (0)

#define CHECK_INT_EQ(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ == check_b_) check_pass++; \
	else { check_fail++; \
		fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
		    __FILE__, __LINE__, #a, #b, check_a_, check_b_); } \
} while (0)

#define CHECK_MEM_EQ(a, b, n) do { \
	if (memcmp((a), (b), (n)) == 0) check_pass++; \
	else { check_fail++; \
		fprintf(stderr, "%s:%d: memory %s == %s failed (%zu bytes)\n", \
		    __FILE__, __LINE__, #a, #b, (size_t)(n)); } \
} while (0)

#define CHECK_DONE() do { \
	printf("%s: %d passed, %d failed\n", __FILE__, check_pass, check_fail); \
	return check_fail ? 1 : 0; \
} while (0)

#endif
