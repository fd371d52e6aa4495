/*
 * fdtab: which fds carry a sealed session.
 *
 * A uthash table fd -> session behind one rwlock (the "table lock"), with a
 * lock-free byte map in front of it: fdtab_maybe(fd) is one atomic load, so
 * the interposed calls on fds the shim does not own cost a single lookup and
 * take no lock (and are safe from signal handlers).
 *
 * Each table entry holds one reference on its session, and counts in its
 * fd count for this process (session_nfds_add(); several fds after dup()).
 * Lookups return a new reference, so a session stays valid while a call
 * uses it even if another thread closes the fd meanwhile.
 *
 * Lock order: table lock, then nothing: the table lock is never held across
 * I/O, crypto or a session lock.
 */
#ifndef SOCKSEAL_FDTAB_H
#define SOCKSEAL_FDTAB_H

#include <stdbool.h>
#include <sys/types.h>

struct session;

/* fdtab_maybe(fd): might FD have a session?  Lock-free; false is exact. */
bool fdtab_maybe(int fd);

/*
 * fdtab_fresh(fd): FD was just returned by a call that makes a new fd:
 * whatever the number meant before is gone (a stale session entry, or a
 * kfd closed behind the shim's back, whose session then fails closed).
 * One byte looked at when the number meant nothing.
 */
void fdtab_fresh(int fd);

/*
 * fdtab_is_kfd(fd): is FD one of the shim's own descriptors (standin.h)?
 * The same one-byte look as fdtab_maybe.  fdtab_kfd_mark(fd, on): FD is
 * (no longer) one; returns 0, or -ENOMEM / -EBADF (FD at or past 1 << 20).
 */
bool fdtab_is_kfd(int fd);
int fdtab_kfd_mark(int fd, bool on);

/* fdtab_get(fd): FD's session with a new reference, or NULL. */
struct session *fdtab_get(int fd);

/*
 * fdtab_set(fd, s): make FD refer to S (taking a reference, nfds++).  Any
 * stale entry FD had is dropped first (see fdtab_drop).  Returns 0 or
 * -ENOMEM.
 */
int fdtab_set(int fd, struct session *s);

/*
 * fdtab_take(fd): remove FD's entry and return its reference (the caller
 * owns it and must session_put() it), or NULL.  *last is set when FD was the
 * last fd of the session in this process.
 */
struct session *fdtab_take(int fd, bool *last);

/*
 * fdtab_drop(fd): forget FD without any I/O: the kernel closed it behind
 * the shim's back (or a new socket reuses the number).
 */
void fdtab_drop(int fd);

/*
 * Fork (init.c's handlers, for every way a process is copied: fork(),
 * forkpty(), glibc's internal forks, clone() without CLONE_VM).
 * fdtab_fork_prepare(): the table is locked, and each session is marked
 * shared (never recycled) and counts one child not yet registered
 * (session_fork_ticket()), so a parent that closes its copy at once leaves
 * the stream to the child.  fdtab_fork_parent(): unlocked.
 * fdtab_fork_child(): the child registers as a holder of each session and
 * settles the count.  fdtab_fork_failed(): no child came: the counts are
 * settled (the fork() wrapper, on failure).
 */
void fdtab_fork_prepare(void);
void fdtab_fork_parent(void);
void fdtab_fork_child(void);
void fdtab_fork_failed(void);


/* fdtab_fds_of(s, fds, max): S's fds in the table (at most MAX). */
int fdtab_fds_of(struct session *s, int *fds, int max);

/* fdtab_kfd_owner(kfd): the session whose socket or state object is
 * KFD, referenced, or NULL. */
struct session *fdtab_kfd_owner(int kfd);

/* fdtab_find(s): some fd of session S in the table, or -1. */
int fdtab_find(struct session *s);

/*
 * fdtab_snapshot(fds, ss, max): up to MAX (fd, referenced session) pairs,
 * for the exit path.  Returns the count.
 */
int fdtab_snapshot(int *fds, struct session **ss, int max);

#endif
