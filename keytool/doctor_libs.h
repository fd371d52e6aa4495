/*
 * doctor_libs: the libraries a program loads, found as the dynamic loader
 * finds them, and what they add to the program's verdict.
 */
#ifndef SOCKSEAL_DOCTOR_LIBS_H
#define SOCKSEAL_DOCTOR_LIBS_H

#include <stdbool.h>

#include "doctor_elf.h"

#define DOCTOR_LIBS_MAX 256             /* objects in one dependency tree */

/* What the whole dependency tree of a program adds. */
struct doctor_libs {
	char   *seen[DOCTOR_LIBS_MAX];
	int     nseen;
	bool    uring, go, sockets, dlopen;
	char    sockets_in[512];        /* libraries importing socket calls */
	char    dlopen_in[512];         /* libraries importing dlopen */
	char    uring_in[256];
	char    missing[512];           /* DT_NEEDED names not found */
};

/*
 * Walk the DT_NEEDED tree of the program E at PATH (each library once,
 * found through RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.conf and the default
 * directories, skipping objects of another class or machine) into L,
 * which the caller zeroes first and frees with doctor_libs_free.
 */
void doctor_libs_walk(struct doctor_libs *l, const struct doctor_elf *e,
    const char *path);

void doctor_libs_free(struct doctor_libs *l);

/* Append WORD to the space-separated list BUF of size LEN (if it fits). */
void doctor_libs_append(char *buf, size_t len, const char *word);

#endif
