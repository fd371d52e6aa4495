/*
 * reload: the policy in force, and its reload when the policy file or a key
 * file it names changes on disk.  No signal, no thread, no timer: every
 * connect or accept decision stat()s the files first, so a change is in
 * force for the next connection; a change younger than a tenth of a second
 * is waited for until it has settled (see reload.c).
 */
#ifndef SOCKSEAL_RELOAD_H
#define SOCKSEAL_RELOAD_H

#include <stdbool.h>
#include <sys/stat.h>

#include "policy.h"

/* What a connection decision needs, published as one pointer. */
struct reload_policy {
	const struct policy         *pol;
	bool                         accept;    /* does any accept rule seal? */
	const struct reload_policy  *prev;      /* the one it replaced: kept */
	unsigned                     gen;       /* 0 at start, +1 a reload */
};

/*
 * reload_start(path, err): load the policy at PATH (made absolute against
 * the current directory, so a later chdir() changes nothing), with ${VAR}
 * expanded from a copy of the environment taken now, and start watching
 * it.  Call once, from the shim's initialisation.  Returns 0, or a negative
 * errno with err set to "FILE:LINE: message".
 */
int reload_start(const char *path, char err[POLICY_ERRLEN]);

/*
 * reload_current(): the policy for a new connection; never NULL after
 * reload_start() succeeded.  Looks at the files first and reloads if they
 * changed (see reload.c).  The returned policy and its rules stay valid
 * for the life of the process.
 */
const struct reload_policy *reload_current(void);

/* reload_poll(): the same for a data call, which looks at the files at
 * most once a second and never waits (session_revoke.c). */
const struct reload_policy *reload_poll(void);

/* reload_peek(): the policy in force, never checking the files (a data
 * call asking whether a reload happened, session_revoke.c; adoption at
 * start, which runs on the policy just loaded). */
const struct reload_policy *reload_peek(void);

/* reload_path_in_force(): the policy file, as an absolute path. */
const char *reload_path_in_force(void);

/* reload_sandbox(): the process enters a sandbox: never look at the files
 * again (no syscall the program's own calls would not make).  Returns once
 * a check that another thread has under way is over. */
void reload_sandbox(void);

/*
 * Identity of a file as stat() (following symlinks) sees it, and whether
 * it is too recent to trust.  For reload.c and its unit test.
 */
struct reload_id {
	int             err;            /* stat()'s errno, 0 on success */
	dev_t           dev;
	ino_t           ino;
	off_t           size;
	struct timespec mtim, ctim;
};

/* reload_id_get(path, &id): stat PATH into ID (id.err set on failure). */
void reload_id_get(const char *path, struct reload_id *id);

/* reload_id_same(a, b): the same file, unchanged? */
bool reload_id_same(const struct reload_id *a, const struct reload_id *b);

/*
 * reload_id_racy(id, t0): was the file changed (ctime) too close to T0, the
 * real time before it was read (within a tenth of a second), for what was
 * read to be trusted as its settled content?  It is read again once older.
 */
bool reload_id_racy(const struct reload_id *id, const struct timespec *t0);

/* reload_fork_child(): in a forked child (init.c's handler): a check
 * another thread of the parent was running is gone. */
void reload_fork_child(void);

#endif
