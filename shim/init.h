/*
 * init: the shim's one-time set-up and its exit path.
 *
 * Everything the shim needs from the environment and the file system — log
 * level, policy, keys — is read first in the constructor (or by the first
 * hook that needs it, if another library's constructor calls in first), so
 * a later chroot() or environment wipe changes nothing.  A policy or key
 * that cannot be read then stops the program: exit status 1 and
 * "FILE:LINE: message" on stderr.  Later changes of the files are picked up
 * for new connections (reload.c); a bad change keeps the policy in force.
 */
#ifndef SOCKSEAL_INIT_H
#define SOCKSEAL_INIT_H

#include <stdbool.h>

struct policy;

/* shim_decide(): the policy for a new connection, a connect or accept
 * decision (initialising if needed, reloading if the files changed, see
 * reload.h); never NULL.  It stays valid for the life of the process. */
const struct reload_policy *shim_decide(void);

/* shim_policy_loaded(): the policy in force, without looking at the files
 * (adoption at start, which runs on the policy just read). */
const struct policy *shim_policy_loaded(void);

/*
 * Start and exit, in this order (hook_start.c's constructor and
 * destructor, the shim's only ones): shim_start(adopted) initialises (as
 * the first hook would: policy, keys, limits, fork handlers), then adopts
 * the sealed sockets this image inherited, telling ADOPTED each fd.
 * shim_exit(flush) ends the stream of every session still open (see the
 * top of init.c), after flushing stdio if FLUSH (exit(), not _exit()).
 */
void shim_start(void (*adopted)(int fd));
void shim_exit(bool flush);

/*
 * Sandbox mode, the process's one switch: shim_sandbox() when the program
 * enters a sandbox that may forbid system calls (seccomp, no_new_privs:
 * hook_proc.c); from then on shim_in_sandbox() is true, the shim makes no
 * system call beyond what the program's own call needs, stops reloading
 * and stops logging.  shim_chrooted(): the program chroot()ed, which
 * forbids no call but moves every path: the shim stops reloading and
 * logging only (dovecot's login processes chroot, then hand connections
 * on: docs/handoff.md).
 */
void shim_sandbox(void);
bool shim_in_sandbox(void);
void shim_chrooted(void);

/*
 * Processes.  shim_fork_prepare/parent/child(): the fork handlers
 * (pthread_atfork; also run by the clone() hook around a copy that
 * bypasses them).  shim_foreign(): is this a process whose memory is
 * another's (a vfork() child, or a copy made by a raw clone that ran no
 * handler)?  The hooks then leave the shim's tables alone: they are the
 * parent's.
 */
void shim_fork_prepare(void);
void shim_fork_parent(void);
void shim_fork_child(void);
bool shim_foreign(void);

#endif
