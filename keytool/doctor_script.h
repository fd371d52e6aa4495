/*
 * doctor_script: what a script says it runs, read from its text: the #!
 * interpreter (through env), and for a shell script the program a wrapper
 * execs or the version manager a shim asks (pyenv, rbenv, nodenv, asdf).
 * Parsing only: no file is opened and nothing is run here.
 */
#ifndef SOCKSEAL_DOCTOR_SCRIPT_H
#define SOCKSEAL_DOCTOR_SCRIPT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define DOCTOR_SCRIPT_MAX_EXEC 4        /* distinct exec targets kept */
#define DOCTOR_SCRIPT_MAX_ENV  4        /* export X_ROOT=... kept */

struct doctor_script {
	char interp[PATH_MAX];          /* #! interpreter, as written */
	char env_name[PATH_MAX];        /* #!/usr/bin/env [opts] NAME: NAME */
	bool shell;                     /* the interpreter is a POSIX shell */
	/* Programs run by `exec PROG ...' lines, as written ($0's directory
	 * expanded); a target that still holds a $ or ` depends on the
	 * script's variables and cannot be followed. */
	char exec[DOCTOR_SCRIPT_MAX_EXEC][PATH_MAX];
	int  nexec;
	bool exec_more;                 /* more distinct targets than kept */
	/* A version manager's shim: `exec MANAGER exec "$program" "$@"'. */
	char manager[PATH_MAX];         /* as written ("" if not a shim) */
	char manager_name[32];          /* its base name: "pyenv" */
	char program[NAME_MAX + 1];     /* the program asked for */
	char env[DOCTOR_SCRIPT_MAX_ENV][PATH_MAX];   /* NAME=VALUE */
	int  nenv;
};

/*
 * Parse TEXT (LEN bytes, the start of the file at PATH, which the names
 * $0 and "$program" stand for) into S.  Returns 0 for a #! script, or
 * -ENOEXEC if TEXT does not start with #! and an interpreter.
 */
int doctor_script_parse(const char *path, const char *text, size_t len,
    struct doctor_script *s);

#endif
