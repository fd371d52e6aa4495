/*
 * session_hold: which processes hold a session.  A session inherited
 * through fork() is one session in every process that has it (session.h,
 * "Memory and processes"); holders[] counts, per process, the fds it has
 * on it, under hold_lock.  Owns the holder entries, the registration of
 * forked children and the check, at close and exit, whether another live
 * process still carries the stream on (only the last one ends it); and the
 * per-session part of fdtab's bookkeeping: this process's fd count, the
 * fork tickets and the marks of fdtab's walks.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "session.h"
#include "session_int.h"

/*
 * Is PID alive?  In a sandbox we may not ask: assume so.  A child of ours
 * that has exited but is not reaped yet (a zombie) still answers kill(),
 * yet holds nothing: ask waitid() without reaping it (WNOWAIT), so the
 * program's own wait() still finds it.  A forked child that ends its copy
 * of a connection before the parent closes its own must leave the
 * connection's end (mark and log line) to the parent.
 */
static bool
pid_alive(pid_t pid)
{
	siginfo_t si;

	if (shim_in_sandbox())
		return true;
	si.si_pid = 0;
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == pid)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * Holder entries.  An entry with a pid and nfds 0 is a tombstone: that
 * process held S and let it go (closed its fds, exec'ed); tombstones are
 * reused when room is needed.  A child registers itself, in its fork
 * handler; until it has, the parent counts it in fork_pending (fdtab.h),
 * so no window exists where nobody seems to hold S.
 */

/*
 * PID's holder entry on S (hold_lock held), or -1.  With GROW, a free
 * entry, or else that of a process that is gone or a tombstone, becomes
 * PID's.
 */
static int
holder_slot(struct session *s, pid_t pid, bool grow)
{
	int i, slot = -1;

	for (i = 0; i < SESSION_HOLDERS; i++) {
		if (s->holders[i].pid == pid)
			return i;
		if (slot < 0 && s->holders[i].pid == 0)
			slot = i;
	}
	for (i = 0; grow && slot < 0 && i < SESSION_HOLDERS; i++)
		if (s->holders[i].nfds <= 0 || !pid_alive(s->holders[i].pid))
			slot = i;
	if (!grow || slot < 0)
		return -1;
	s->holders[slot].pid = pid;
	s->holders[slot].nfds = 0;
	return slot;
}

/* Set PID's count on S to NFDS (0 leaves a tombstone); hold_lock held. */
static void
holder_set(struct session *s, int slot, int nfds)
{
	if (slot < 0)
		return;
	s->holders[slot].nfds = nfds > 0 ? nfds : 0;
}

void
session_hold(struct session *s, int delta)
{
	int slot, saved = errno;

	ss_lock(s, &s->hold_lock);
	slot = holder_slot(s, getpid(), delta > 0);
	if (slot >= 0)
		holder_set(s, slot, s->holders[slot].nfds + delta);
	ss_unlock(&s->hold_lock);
	errno = saved;
}

void
session_hold_pid(struct session *s, pid_t pid, int nfds)
{
	int saved = errno;

	ss_lock(s, &s->hold_lock);
	holder_set(s, holder_slot(s, pid, nfds > 0), nfds);
	ss_unlock(&s->hold_lock);
	errno = saved;
}

void
session_hold_new(struct session *s, pid_t pid)
{
	int i, saved = errno;

	ss_lock(s, &s->hold_lock);
	for (i = 0; i < SESSION_HOLDERS; i++)
		if (s->holders[i].pid == pid)
			break;
	/* Registered already (its image got there first): its count. */
	if (i == SESSION_HOLDERS)
		holder_set(s, holder_slot(s, pid, true), 1);
	ss_unlock(&s->hold_lock);
	errno = saved;
}

void
session_spawn_pending(struct session *s, int d)
{
	__atomic_add_fetch(&s->fork_pending, d, __ATOMIC_ACQ_REL);
}

bool
session_others_hold(struct session *s)
{
	return ss_others_hold(s, false);
}

void
session_in_flight(struct session *s, int d)
{
	if (__atomic_add_fetch(&s->in_flight, d, __ATOMIC_ACQ_REL) < 0)
		__atomic_store_n(&s->in_flight, 0, __ATOMIC_RELEASE);
}

void
session_forked(struct session *s)
{
	s->forked = true;
	ss_hs_recount(s);
	session_hold_pid(s, getpid(), __atomic_load_n(&s->nfds,
	    __ATOMIC_ACQUIRE));
}

int
session_nfds_add(struct session *s, int delta)
{
	return __atomic_add_fetch(&s->nfds, delta, __ATOMIC_ACQ_REL);
}

int
session_nfds(const struct session *s)
{
	return __atomic_load_n(&s->nfds, __ATOMIC_ACQUIRE);
}

void
session_fork_ticket(struct session *s, unsigned int gen)
{
	s->forked = true;
	s->fork_ticket = gen;
	__atomic_add_fetch(&s->fork_pending, 1, __ATOMIC_ACQ_REL);
}

void
session_fork_settle(struct session *s, unsigned int gen)
{
	if (s->fork_ticket != gen)
		return;
	s->fork_ticket = 0;
	__atomic_sub_fetch(&s->fork_pending, 1, __ATOMIC_ACQ_REL);
}

/* The mark is in the private page: each process's walks have their own. */
bool
session_mark(struct session *s, unsigned int gen)
{
	if (s->fork_mark == gen)
		return true;
	s->fork_mark = gen;
	return false;
}

/*
 * Is any other live process still holding S?  Drops this process's entry
 * first when LEAVING (it holds no fd any more).
 */
bool
ss_others_hold(struct session *s, bool leaving)
{
	pid_t me = getpid();
	bool others = false;
	int i, saved = errno;

	/* A child forked a moment ago may not have registered yet, nor a
	 * receiver of a message that carries it. */
	if (__atomic_load_n(&s->fork_pending, __ATOMIC_ACQUIRE) > 0 ||
	    __atomic_load_n(&s->in_flight, __ATOMIC_ACQUIRE) > 0)
		others = true;
	ss_lock(s, &s->hold_lock);
	for (i = 0; i < SESSION_HOLDERS; i++) {
		if (s->holders[i].pid == 0)
			continue;
		if (s->holders[i].pid == me) {
			if (leaving)
				s->holders[i].nfds = 0;
			continue;
		}
		if (!pid_alive(s->holders[i].pid)) {
			s->holders[i].pid = 0;
			s->holders[i].nfds = 0;
		} else if (s->holders[i].nfds > 0) {
			others = true;
		}
	}
	ss_unlock(&s->hold_lock);
	errno = saved;
	return others;
}
