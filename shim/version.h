/*
 * version: what a build of sockseal is.  Every binary carries it (the shim
 * too: `strings libsockseal.so | grep 'sockseal '`), so an operator can
 * tell which build a host runs.
 */
#ifndef SOCKSEAL_VERSION_H
#define SOCKSEAL_VERSION_H

#include <stdio.h>

/* The preface's version byte (DESIGN.md, wire protocol v1): what the
 * handshake sends and accepts, and what --version reports. */
#define SOCKSEAL_WIRE_VERSION 1

/* "sockseal VERSION (build BUILD)": BUILD is `git describe --always
 * --dirty`, or "unknown" outside a git checkout. */
const char *sockseal_ident(void);

/* PROG VERSION (build BUILD, wire protocol 1), one line on F. */
void sockseal_print_version(FILE *f, const char *prog);

#endif
