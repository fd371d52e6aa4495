/*
 * fuzz.h: what every fuzz target shares.  FZ_ASSERT(c) aborts with the
 * condition when an invariant the target checks is broken, so libFuzzer
 * records the input as a crash.
 */
#ifndef SOCKSEAL_FUZZ_H
#define SOCKSEAL_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s\n", \
		    __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

#endif
