/*
 * doctor_script: read what a script runs from its text, for `sockseal
 * doctor`, without running it.
 *
 * The #! line: the interpreter is its first word.  For env (#!/usr/bin/env
 * [-S] [-i] [-u NAME] [NAME=VALUE...] PROG) the program is PROG, found on
 * PATH by the caller.  The kernel ignores setuid on scripts, so what a
 * script can do is what the program it ends in can do.
 *
 * A shell script is also read line by line for the two wrapper forms:
 *
 *   exec MANAGER exec "$program" "$@"    a version manager's shim (pyenv,
 *                                        rbenv, nodenv, goenv, asdf...):
 *                                        the caller asks MANAGER which
 *   [NAME=V...] exec [-a N] [env ...] PROG ARGS    a wrapper: PROG runs
 *
 * Only lines that start with such a command count (not `... && exec X'
 * or an exec with only redirections, `exec >log 2>&1').  Words are split
 * as the shell would for literal text: quotes removed, a backslash
 * quotes the next character, the command ends at an unquoted ; & | or #.
 * $0's directory in its usual spellings ("$(dirname "$0")", ${0%/\*}) is
 * expanded; any other $ or ` is left in the word, and the caller says it
 * cannot follow it.
 * Literal `export *_ROOT=VALUE' lines (PYENV_ROOT) are kept, for the
 * environment the manager is asked in.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "doctor_script.h"

#define WORDS_MAX 16

struct words {
	char w[WORDS_MAX][PATH_MAX];
	int  n;
};

static const char *const shells[] = { "sh", "bash", "dash", "zsh", "ksh",
    "ksh93", "mksh", "ash", "posh", "yash", NULL };
static const char *const managers[] = { "pyenv", "rbenv", "nodenv",
    "goenv", "plenv", "jenv", "phpenv", "asdf", NULL };

static const char *
base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s != NULL ? s + 1 : p;
}

static bool
in_list(const char *const *l, const char *w)
{
	for (; *l != NULL; l++)
		if (strcmp(*l, w) == 0)
			return true;
	return false;
}

/* NAME=VALUE, NAME a shell identifier. */
static bool
is_assign(const char *w)
{
	const char *p = w;

	if (*p != '_' && !(*p >= 'A' && *p <= 'Z') && !(*p >= 'a' && *p <= 'z'))
		return false;
	while (*p == '_' || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
		p++;
	return *p == '=';
}

/* A redirection: [N]>FILE, [N]<FILE, [N]>&M; 2 if its target is the next
 * word ("> FILE"), 1 if it is all in W, 0 if W is no redirection. */
static int
is_redir(const char *w)
{
	while (*w >= '0' && *w <= '9')
		w++;
	if (*w != '<' && *w != '>')
		return 0;
	while (*w == '<' || *w == '>' || *w == '&' || *w == '|')
		w++;
	return *w == '\0' ? 2 : 1;
}

/* Replace every FROM in LINE (of size LEN) by TO. */
static void
replace_all(char *line, size_t len, const char *from, const char *to)
{
	char rest[2 * PATH_MAX];
	char *p = line;
	size_t fl = strlen(from), tl = strlen(to);

	while ((p = strstr(p, from)) != NULL) {
		snprintf(rest, sizeof(rest), "%s", p + fl);
		if ((size_t)(p - line) + tl + strlen(rest) + 1 > len)
			return;
		memcpy(p, to, tl);
		memcpy(p + tl, rest, strlen(rest) + 1);
		p += tl;
	}
}

/* The first simple command of LINE as words, quotes removed. */
static void
split_words(const char *line, struct words *ws)
{
	const char *p = line;
	char q, *w;
	size_t n;

	ws->n = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n' || *p == '#' || *p == ';' ||
		    *p == '&' || *p == '|' || ws->n == WORDS_MAX)
			return;
		w = ws->w[ws->n++];
		n = 0;
		for (q = 0; *p != '\0' && *p != '\n'; p++) {
			if (q == 0 && (*p == ' ' || *p == '\t' || *p == ';' ||
			    *p == '|' || (*p == '&' && (n == 0 ||
			    (w[n - 1] != '>' && w[n - 1] != '<')))))
				break;
			if (q == 0 && (*p == '"' || *p == '\'')) {
				q = *p;
				continue;
			}
			if (q != 0 && *p == q) {
				q = 0;
				continue;
			}
			if (*p == '\\' && q != '\'' && p[1] != '\0' &&
			    p[1] != '\n')
				p++;
			if (n + 1 < PATH_MAX)
				w[n++] = *p;
		}
		w[n] = '\0';
	}
}

/* Skip redirections from word I on. */
static int
skip_redirs(const struct words *ws, int i)
{
	int r;

	while (i < ws->n && (r = is_redir(ws->w[i])) != 0)
		i += r;
	return i;
}

/* Skip env's options and assignments from word I on (env itself at I). */
static int
skip_env(const struct words *ws, int i)
{
	for (i++; i < ws->n; i++) {
		const char *w = ws->w[i];

		if (strcmp(w, "-u") == 0 || strcmp(w, "-C") == 0 ||
		    strcmp(w, "--unset") == 0 || strcmp(w, "--chdir") == 0)
			i++;
		else if (w[0] != '-' && !is_assign(w))
			break;
	}
	return i;
}

/* A version manager's shim: MANAGER exec PROGRAM from word I. */
static bool
note_manager(struct doctor_script *s, const char *path,
    const struct words *ws, int i)
{
	const char *m = ws->w[i], *prog;

	if (strchr(m, '$') != NULL || !in_list(managers, base(m)) ||
	    i + 2 >= ws->n || strcmp(ws->w[i + 1], "exec") != 0)
		return false;
	prog = ws->w[i + 2];
	if (strcmp(prog, "$program") == 0 || strcmp(prog, "${program}") == 0)
		prog = base(path);
	else if (strchr(prog, '$') != NULL || strchr(prog, '`') != NULL ||
	    strchr(prog, '/') != NULL)
		return false;
	snprintf(s->manager, sizeof(s->manager), "%s", m);
	snprintf(s->manager_name, sizeof(s->manager_name), "%.*s",
	    (int)sizeof(s->manager_name) - 1, base(m));
	snprintf(s->program, sizeof(s->program), "%.*s",
	    (int)sizeof(s->program) - 1, prog);
	return true;
}

/* One line of a shell script. */
static void
note_line(struct doctor_script *s, const char *path, const char *dir,
    char *line, size_t len)
{
	static const char *const dirnames[] = { "\"$(dirname \"$0\")\"",
	    "$(dirname \"$0\")", "$(dirname $0)", "\"${0%/*}\"", "${0%/*}",
	    "`dirname \"$0\"`", "`dirname $0`", NULL };
	static struct words ws;         /* 64 KiB: not on the stack */
	const char *const *d;
	int i = 0, k;

	for (d = dirnames; *d != NULL; d++)
		replace_all(line, len, *d, dir);
	split_words(line, &ws);
	if (ws.n == 2 && strcmp(ws.w[0], "export") == 0 &&
	    is_assign(ws.w[1]) && strstr(ws.w[1], "_ROOT=") != NULL &&
	    strpbrk(ws.w[1], "$`") == NULL && s->nenv < DOCTOR_SCRIPT_MAX_ENV) {
		snprintf(s->env[s->nenv++], PATH_MAX, "%s", ws.w[1]);
		return;
	}
	while (i < ws.n && is_assign(ws.w[i]))
		i++;
	if (i >= ws.n || strcmp(ws.w[i], "exec") != 0)
		return;
	for (i++; i < ws.n && ws.w[i][0] == '-'; i++) {
		if (strcmp(ws.w[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(ws.w[i], "-a") == 0)
			i++;
	}
	i = skip_redirs(&ws, i);
	if (i < ws.n && strcmp(base(ws.w[i]), "env") == 0)
		i = skip_redirs(&ws, skip_env(&ws, i));
	if (i >= ws.n || ws.w[i][0] == '\0')
		return;                 /* exec >log 2>&1: no program */
	if (s->manager[0] == '\0' && note_manager(s, path, &ws, i))
		return;
	for (k = 0; k < s->nexec; k++)
		if (strcmp(s->exec[k], ws.w[i]) == 0)
			return;
	if (s->nexec == DOCTOR_SCRIPT_MAX_EXEC) {
		s->exec_more = true;
		return;
	}
	snprintf(s->exec[s->nexec++], PATH_MAX, "%s", ws.w[i]);
}

/* The #! line (without "#!"): the interpreter and, for env, its program. */
static int
parse_shebang(struct doctor_script *s, const char *line)
{
	static struct words ws;
	const char *p = line, *e;
	int i;

	while (*p == ' ' || *p == '\t')
		p++;
	for (e = p; *e != '\0' && *e != ' ' && *e != '\t' && *e != '\n'; e++)
		;
	if (e == p)
		return -ENOEXEC;
	snprintf(s->interp, sizeof(s->interp), "%.*s", (int)(e - p), p);
	if (strcmp(base(s->interp), "env") == 0) {
		/* env splits -S's string; without -S the kernel passes the
		 * rest as one word, which env takes as the program (and
		 * fails on, if it holds a space): split it either way. */
		split_words(e, &ws);
		for (i = 0; i < ws.n; i++) {
			const char *w = ws.w[i];

			if (strcmp(w, "-u") == 0 || strcmp(w, "-C") == 0)
				i++;
			else if (strncmp(w, "-S", 2) == 0 && w[2] != '\0') {
				snprintf(s->env_name, sizeof(s->env_name),
				    "%s", w + 2);
				break;
			} else if (w[0] != '-' && !is_assign(w)) {
				snprintf(s->env_name, sizeof(s->env_name),
				    "%s", w);
				break;
			}
		}
	}
	s->shell = in_list(shells, base(s->env_name[0] != '\0' ? s->env_name :
	    s->interp));
	return 0;
}

int
doctor_script_parse(const char *path, const char *text, size_t len,
    struct doctor_script *s)
{
	char line[2 * PATH_MAX], dir[PATH_MAX];
	const char *p = text, *end = text + len, *nl;
	char *slash;
	size_t n;
	int rc;

	memset(s, 0, sizeof(*s));
	if (len < 3 || text[0] != '#' || text[1] != '!')
		return -ENOEXEC;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		if (p == text) {
			if ((rc = parse_shebang(s, line + 2)) != 0)
				return rc;
			if (!s->shell)
				return 0;
		} else {
			note_line(s, path, dir, line, sizeof(line));
		}
	}
	return 0;
}
