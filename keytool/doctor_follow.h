/*
 * doctor_follow: from the name an operator gives `sockseal doctor' to the
 * program that really runs, through #! interpreters, wrapper scripts and
 * version managers' shims.
 */
#ifndef SOCKSEAL_DOCTOR_FOLLOW_H
#define SOCKSEAL_DOCTOR_FOLLOW_H

#include <limits.h>
#include <stdbool.h>

#define DOCTOR_FOLLOW_MAX   8           /* scripts followed in a row */
#define DOCTOR_FOLLOW_NOTES 4
#define DOCTOR_FOLLOW_LINE  (4 * PATH_MAX + 256)

enum doctor_follow_end {
	DOCTOR_FOLLOW_PROGRAM,          /* prog: an ELF file, to be judged */
	DOCTOR_FOLLOW_NOTPROG,          /* prog: neither ELF nor a script */
	DOCTOR_FOLLOW_LOOP,             /* scripts run each other: why */
	DOCTOR_FOLLOW_DEEP,             /* more than DOCTOR_FOLLOW_MAX: why */
	DOCTOR_FOLLOW_ERROR,            /* not found or unreadable: why */
};

struct doctor_chain {
	char start[PATH_MAX];           /* the binary, found as execvp would */
	char prog[PATH_MAX];            /* where following ended */
	char hop[DOCTOR_FOLLOW_MAX][DOCTOR_FOLLOW_LINE];  /* "A is ... B" */
	int  nhops;
	char note[DOCTOR_FOLLOW_NOTES][DOCTOR_FOLLOW_LINE];  /* not followed */
	int  nnotes;
	bool shell_script;              /* ends in a shell running a script */
	char why[DOCTOR_FOLLOW_LINE];   /* for LOOP, DEEP and ERROR */
};

/*
 * Follow ARG (a path if it has a slash, else looked up on PATH) into C.
 * Runs a version manager (`pyenv which NAME', under a timeout, in its own
 * process group) only for a script that is that manager's shim.  Returns
 * how following ended (enum doctor_follow_end).
 */
int doctor_follow(const char *arg, struct doctor_chain *c);

#endif
