/*
 * nofile: RLIMIT_NOFILE as the program sees it, and as it really is.
 *
 * Each sealed connection costs the process one more descriptor, the kfd
 * (standin.h), which lives at or above the soft limit the program sees, so
 * the program's own numbers, and a server that sizes itself from its limit
 * (redis's maxclients, nginx's worker_connections), are what they would be
 * without the shim.  To make room the real soft limit is three times the
 * program's, for a kfd and a state object per sealed fd (and the hard
 * limit too where the process may raise it); the
 * program sees and sets its own view through getrlimit, setrlimit,
 * prlimit, sysconf(_SC_OPEN_MAX) and getdtablesize (hook_limits.c).  Where
 * the real limit cannot be raised, kfds take the upper two thirds of the
 * program's range and such a server serves a third as many sealed clients.
 */
#ifndef SOCKSEAL_NOFILE_H
#define SOCKSEAL_NOFILE_H

#include <stdbool.h>
#include <sys/resource.h>

/* nofile_init(): take the program's view and raise the real limits. */
void nofile_init(void);

/* nofile_kfd_base(): the lowest number a kfd should take. */
int nofile_kfd_base(void);

/* nofile_get(&rl) / nofile_set(&rl): the program's view; 0 or -errno. */
int nofile_get(struct rlimit *rl);
int nofile_set(const struct rlimit *rl);

/* nofile_exec(leaving): around exec: the new image gets the program's own
 * limits (it raises them again if it runs the shim). */
void nofile_exec(bool leaving);

/* nofile_fork_child(): in a forked child: the lock is free again. */
void nofile_fork_child(void);

#endif
