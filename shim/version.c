/*
 * version: see version.h.  The Makefile passes SOCKSEAL_VERSION and
 * SOCKSEAL_BUILD for this file alone (and rebuilds it when they change:
 * $(B)/build-id).
 */
#include "version.h"

#ifndef SOCKSEAL_VERSION
#define SOCKSEAL_VERSION "0.0.0"
#endif
#ifndef SOCKSEAL_BUILD
#define SOCKSEAL_BUILD "unknown"
#endif

/* Whole, so that `strings` finds it in the shim. */
static const char ident[] = "sockseal " SOCKSEAL_VERSION
    " (build " SOCKSEAL_BUILD ")";

const char *
sockseal_ident(void)
{
	return ident;
}

void
sockseal_print_version(FILE *f, const char *prog)
{
	fprintf(f, "%s %s (build %s, wire protocol %d)\n", prog,
	    SOCKSEAL_VERSION, SOCKSEAL_BUILD, SOCKSEAL_WIRE_VERSION);
}
