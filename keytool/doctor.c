/*
 * doctor: `sockseal doctor BINARY...`: can the shim reach these programs?
 *
 * Each BINARY (a path if it has a slash, else looked up on PATH, as
 * execvp would) gets a block of its own on stdout, headed by its verdict
 * line, the blocks separated by an empty line.  The work is in:
 *
 *   doctor_follow.c   from BINARY to the program that runs: #!
 *                     interpreters, env, wrapper scripts that exec a
 *                     program, version managers' shims (pyenv, rbenv...)
 *   doctor_script.c   what a script's text says it runs
 *   doctor_elf.c      reading one ELF file
 *   doctor_libs.c     its libraries, found as the loader finds them
 *   doctor_verdict.c  the verdict and the block
 *
 * Exit status: 0 if every BINARY can be sealed or has nothing to seal,
 * 1 if any cannot be sealed, 2 for a usage error or a BINARY that cannot
 * be found or read (the others are still judged; the highest wins).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor_follow.h"
#include "doctor_verdict.h"
#include "launcher.h"

static int
usage(bool help)
{
	fprintf(help ? stdout : stderr, "usage: %s doctor BINARY...\n"
	    "  says whether the shim can reach each BINARY (found on PATH "
	    "unless it has a /),\n  following scripts, wrappers and version "
	    "manager shims to the program they run:\n  exit 0 every one can "
	    "be sealed (or has nothing to seal), 1 one cannot,\n  2 usage or "
	    "error\n", LAUNCHER_PROG);
	return help ? DOCTOR_CAN : DOCTOR_ERROR;
}

int
doctor_main(int argc, char **argv)
{
	struct doctor_chain *c;
	int first = 1, i, rc = DOCTOR_CAN, one, end;
	bool printed = false, dashdash = false;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0))
		return usage(true);
	/* Options anywhere before "--" are unknown; an empty name too. */
	for (i = 1; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0 && i == 1) {
			dashdash = true;
			first = 2;
		} else if ((!dashdash && argv[i][0] == '-') ||
		    argv[i][0] == '\0') {
			return usage(false);
		}
	}
	if (first == argc)
		return usage(false);
	if ((c = malloc(sizeof(*c))) == NULL) {
		perror(LAUNCHER_PROG " doctor");
		return DOCTOR_ERROR;
	}
	for (i = first; i < argc; i++) {
		memset(c, 0, sizeof(*c));
		end = doctor_follow(argv[i], c);
		if (printed && end != DOCTOR_FOLLOW_ERROR)
			putchar('\n');
		one = doctor_verdict(c, end);
		printed |= end != DOCTOR_FOLLOW_ERROR;
		if (one > rc)
			rc = one;
		fflush(stdout);
	}
	free(c);
	return rc;
}
