/*
 * reload: see reload.h.
 *
 * When.  A connect or accept decision (reload_current()) looks at the
 * files first, so a change is in force for the next connection, on a
 * process that was idle for hours too: a few stat() calls, one for each
 * file, no read.  A busy process looks at most once every RELOAD_LOOK_NS
 * (a millisecond): a decision that comes sooner after the last look takes
 * the policy that look left in force.  So a change is in force for every
 * connection decided a millisecond after it, and a process making
 * thousands of connections a second stats its files a thousand times a
 * second at most instead of twice a connection (that was 12% of the
 * connection rate of a program whose connections no rule matches).  One
 * thread looks at a time (reload_lock()); a thread that decides meanwhile
 * waits for it (a futex, bounded) and then looks itself if the look under
 * way started more than RELOAD_LOOK_NS ago (it may have started before
 * the change).  The
 * thread that holds the check and re-enters from a signal handler does not
 * wait for itself: it decides with the policy in force.  A data call on an
 * identity session (reload_poll(), session_revoke.c) looks at most once a
 * second and never waits.  In a sandbox (reload_sandbox()) nothing is
 * looked at any more: the shim makes no syscall beyond the program's own
 * (reload_sandbox() waits for a check under way in another thread).
 *
 * What.  The watch list (reload_watch.c) is the policy file and every
 * file the policy in force read (keys, identities, peers' key files,
 * included files: their resolved paths), each with the identity stat()
 * gave after the last load: device, inode, size, mtime and ctime to the
 * nanosecond.  stat() follows symlinks, so a key replaced by rename (Vault
 * agent) or by the swap of a `..data` symlink (a Kubernetes Secret volume)
 * shows up as another inode.
 *
 * Settling.  A file being written in place (truncated, then written) must
 * not be read half-way: half a policy could be a valid one that seals less.
 * So a changed file is read only once its own ctime is RELOAD_SETTLE_NS in
 * the past.  ctime, not mtime: the kernel sets it on every write, truncate,
 * rename and chmod, and no program can set it back.  A decision that finds
 * a change younger than that waits until it has settled (at most
 * RELOAD_SETTLE_NS, once) and then reads it: the first connection after a
 * change waits up to a tenth of a second, and none runs on the old policy.
 * A file that is still being written after that wait keeps the policy in
 * force for this decision; the next one looks again.  The settling is
 * measured from the file, never from when a process first noticed it, so
 * an idle process is as current as a busy one.  A load reads only files
 * that were settled when it began; a file whose ctime is then within
 * RELOAD_SETTLE_NS of the load's start (one the new policy names for the
 * first time, or one written during the load) is "racy" (reload_id_racy())
 * and counts as changed at the next decision, which reads it again once
 * settled.  Re-reading costs little because a load that yields the same
 * policy (policy_equal()) is dropped, not published.  (A key file read
 * half-way is not a key: it fails, see below.)
 *
 * A change re-reads the whole policy with every key.  Success publishes a
 * new struct reload_policy with one release store; a failure keeps the
 * policy in force and logs the FILE:LINE error, once per distinct error.
 * The watch list then holds the files as the failed load found them, so
 * the next change is read at once; without one the load is tried again
 * after RELOAD_RETRY_NS, because a fix may be a key file that only the
 * failed policy names and the watch list does not know.
 *
 * Memory.  A session points into the policy it was made under (its rule,
 * the rule's keys and file name) for its whole life and may be shared with
 * forked children, so a superseded policy is never freed (nor wiped): it
 * stays on the chain reload_cur->prev, one policy, a few hundred bytes per
 * rule, per real change of the files.  Reads that change nothing leave
 * nothing behind.
 *
 * Threads and fork.  reload_cur, reload_due, reload_busy and
 * reload_waiters are atomics; everything else here (watch list, error
 * state) belongs to the holder of reload_busy.  A fork while another
 * thread holds it leaves the child with a busy flag nobody will clear: the
 * child's atfork handler clears it and forces a check.  Every state of
 * the watch list a fork can catch is consistent (one pointer store
 * replaces it); at worst the child leaks a list.
 *
 * ${VAR} in key paths is expanded from a copy of the environment made at
 * start: a program that later clears or edits its environment (daemons
 * do) still reloads the keys the operator configured.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "real.h"
#include "init.h"
#include "reason.h"
#include "reload.h"
#include "reload_watch.h"
#include "stats.h"

#define RELOAD_POLL_NS    1000000000ll  /* reload_poll(): once a second */
#define RELOAD_LOOK_NS       1000000ll  /* a decision: once a millisecond */
#define RELOAD_RETRY_NS    RELOAD_SETTLE_NS     /* a failed load again */
#define RELOAD_WAIT_NS     (3 * RELOAD_SETTLE_NS) /* for another's check */

extern char **environ;

static char                        *reload_path;   /* absolute */
static char                       **reload_env;    /* environ at start */
static const struct reload_policy  *reload_cur;    /* atomic */
static int64_t                      reload_due;    /* atomic, ns: poll */
static int64_t                      reload_looked; /* atomic, ns: decide */
static int                          reload_busy;   /* atomic, a futex */
static int                          reload_waiters;        /* atomic */
static __thread bool                reload_mine;   /* I hold reload_busy */

/* The holder of reload_busy's state. */
static struct reload_watch *reload_watch;          /* atomic store */
static bool                 reload_failed, reload_force;
static int64_t              reload_retry;  /* real ns: a failed load again */
static char                 reload_err[POLICY_ERRLEN];

/* The clock ID now, in ns: CLOCK_REALTIME to compare with ctimes. */
static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ns(&ts);
}

/* ${VAR} lookup in the copy of the environment made at start. */
static const char *
reload_getenv(const char *name, void *ctx)
{
	size_t n = strlen(name);
	char **e;

	for (e = reload_env; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int
reload_env_copy(void)
{
	size_t n = 0, i;

	while (environ != NULL && environ[n] != NULL)
		n++;
	if ((reload_env = calloc(n + 1, sizeof(*reload_env))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if ((reload_env[i] = strdup(environ[i])) == NULL)
			return -ENOMEM;
	return 0;
}

/* PATH made absolute against the current directory, in a new string. */
static char *
reload_abspath(const char *path)
{
	char cwd[4096], *out;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return strdup(path);
	if (asprintf(&out, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd,
	    path) == -1)
		return NULL;
	return out;
}

/* A new struct reload_policy for P, or NULL. */
static struct reload_policy *
reload_policy_new(const struct policy *p)
{
	struct reload_policy *rp;
	size_t i;

	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return NULL;
	rp->pol = p;
	for (i = 0; i < policy_nrules(p); i++) {
		const struct policy_rule *r = policy_rule_at(p, i);

		if (r->dir == POLICY_ACCEPT && !r->plain)
			rp->accept = true;
	}
	return rp;
}

static void
reload_fail(const char *err, const struct timespec *t0)
{
	if (!reload_failed || strcmp(err, reload_err) != 0) {
		const struct log_kv kv[] = {
			{ "event", "reload_fail", 0 },
			{ "reason", reason_name(REASON_RELOAD_FAILED), 0 },
			{ "policy", reload_path, 0 },
			{ "detail", err, 0 },
		};

		stats_reload_failed();
		LOG_KV(LOG_WARN, kv, 4, "policy reload failed, the last good "
		    "policy stays in force: %s [reason=%s]", err,
		    reason_name(REASON_RELOAD_FAILED));
	}
	reload_failed = true;
	snprintf(reload_err, sizeof(reload_err), "%s", err);
	reload_watch_restat(reload_watch, t0);
	reload_retry = ns(t0) + RELOAD_RETRY_NS;
}

/* Read the policy again; publish it if it differs from the one in force. */
static void
reload_run(void)
{
	const struct reload_policy *cur = reload_cur;
	struct reload_policy *rp = NULL;
	struct reload_watch *nw, *old;
	char err[POLICY_ERRLEN];
	struct timespec t0;
	struct policy *p;

	clock_gettime(CLOCK_REALTIME, &t0);
	if (policy_load_env(reload_path, reload_getenv, NULL, &p, err) != 0) {
		reload_fail(err, &t0);
		return;
	}
	if ((nw = reload_watch_new(reload_path, p, &t0)) == NULL)
		goto enomem;
	if (policy_equal(cur->pol, p)) {
		if (reload_failed)
			LOG(LOG_INFO, "policy %s is valid again (unchanged)",
			    reload_path);
		policy_free(p);
	} else {
		if ((rp = reload_policy_new(p)) == NULL)
			goto enomem;
		rp->prev = cur;
		rp->gen = cur->gen + 1;
		__atomic_store_n(&reload_cur, rp, __ATOMIC_RELEASE);
		stats_policy(p, true);
		LOG(LOG_INFO, "policy reloaded: %zu rules (%s)",
		    policy_nrules(p), reload_path);
	}
	reload_failed = false;
	reload_force = false;
	old = reload_watch;
	__atomic_store_n(&reload_watch, nw, __ATOMIC_RELEASE);
	reload_watch_free(old);
	return;

enomem:
	reload_watch_free(nw);
	policy_free(p);
	reload_force = true;
	snprintf(err, sizeof(err), "%s: %s", reload_path, strerror(ENOMEM));
	reload_fail(err, &t0);
}

/*
 * The clock at start, read with the system call rather than the vDSO: the
 * vDSO's first use faults in its code and two data pages, which on a
 * virtual machine costs more than a hundred system calls, and a process
 * that never opens a sealed connection (most of what a launcher starts)
 * would pay it for nothing.  See bench/README.md, "start".
 */
static void
clock_at_start(clockid_t id, struct timespec *ts)
{
	if (real_syscall6(SYS_clock_gettime, id, (long)ts, 0, 0, 0, 0) != 0)
		clock_gettime(id, ts);
}

/* Sleep for NSEC (a signal ends it early: the caller looks again). */
static void
reload_sleep(int64_t nsec)
{
	struct timespec ts = { nsec / 1000000000ll, nsec % 1000000000ll };

	nanosleep(&ts, NULL);
}

/*
 * Look at the files, reload if they changed (the holder of reload_busy).
 * MAY_WAIT: a decision, which waits for a young change to settle; a poll
 * leaves it to the next look.
 */
static void
reload_check(bool may_wait)
{
	int64_t newest = INT64_MIN, now = clock_ns(CLOCK_REALTIME);
	bool retry = (reload_failed || reload_force) && now >= reload_retry;

	if (!reload_changed(reload_watch, &newest) && !retry)
		return;
	if (newest != INT64_MIN && reload_young(newest, now)) {
		if (!may_wait)
			return;
		reload_sleep(newest + RELOAD_SETTLE_NS - now);
		newest = INT64_MIN;
		if (!reload_changed(reload_watch, &newest) && !retry)
			return;
		/* Still being written: the next decision looks again. */
		if (newest != INT64_MIN && reload_young(newest,
		    clock_ns(CLOCK_REALTIME)))
			return;
	}
	reload_run();
}

/*
 * Take reload_busy.  WAIT: for a thread that holds it (a futex wait, in
 * steps of 10 ms so that a lost wake-up costs little, RELOAD_WAIT_NS at
 * most).  Never for this thread itself (a signal handler interrupting its
 * check) and never in a poll.
 */
static bool
reload_lock(bool wait)
{
	struct timespec step = { 0, 10000000 };
	int64_t until = 0, now;
	int zero;

	if (reload_mine)
		return false;
	for (;;) {
		zero = 0;
		if (__atomic_compare_exchange_n(&reload_busy, &zero, 1, false,
		    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			reload_mine = true;
			return true;
		}
		if (!wait)
			return false;
		now = clock_ns(CLOCK_MONOTONIC_COARSE);
		if (until == 0)
			until = now + RELOAD_WAIT_NS;
		else if (now >= until)
			return false;
		__atomic_add_fetch(&reload_waiters, 1, __ATOMIC_SEQ_CST);
		real_syscall6(SYS_futex, (long)&reload_busy,
		    FUTEX_WAIT_PRIVATE, 1, (long)&step, 0, 0);
		__atomic_sub_fetch(&reload_waiters, 1, __ATOMIC_SEQ_CST);
	}
}

static void
reload_unlock(void)
{
	reload_mine = false;
	__atomic_store_n(&reload_busy, 0, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&reload_waiters, __ATOMIC_SEQ_CST) > 0)
		real_syscall6(SYS_futex, (long)&reload_busy,
		    FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0);
}

/* DECIDE: at every call, waiting for another thread's check and for a
 * young change; else (a poll) at most once a second, never waiting. */
static bool
reload_looked_lately(int64_t now)
{
	return now - __atomic_load_n(&reload_looked, __ATOMIC_ACQUIRE) <
	    RELOAD_LOOK_NS;
}

static void
reload_maybe(bool decide)
{
	int64_t now, fine = 0;
	int saved = errno;

	if (decide) {
		fine = clock_ns(CLOCK_MONOTONIC);
		if (reload_looked_lately(fine)) {
			errno = saved;
			return;
		}
	}
	now = clock_ns(CLOCK_MONOTONIC_COARSE);
	if (!decide && now < __atomic_load_n(&reload_due, __ATOMIC_RELAXED))
		return;
	if (!reload_lock(decide)) {
		errno = saved;
		return;
	}
	/* A look that began while this thread waited for the lock and less
	 * than RELOAD_LOOK_NS before this decision will do. */
	if (decide ? !reload_looked_lately(fine) :
	    now >= __atomic_load_n(&reload_due, __ATOMIC_RELAXED)) {
		__atomic_store_n(&reload_due, now + RELOAD_POLL_NS,
		    __ATOMIC_RELAXED);
		__atomic_store_n(&reload_looked, clock_ns(CLOCK_MONOTONIC),
		    __ATOMIC_RELEASE);
		reload_check(decide);
	}
	reload_unlock();
	errno = saved;
}

const struct reload_policy *
reload_current(void)
{
	if (!shim_in_sandbox())
		reload_maybe(true);
	return __atomic_load_n(&reload_cur, __ATOMIC_ACQUIRE);
}

const struct reload_policy *
reload_poll(void)
{
	if (!shim_in_sandbox())
		reload_maybe(false);
	return __atomic_load_n(&reload_cur, __ATOMIC_ACQUIRE);
}

const char *
reload_path_in_force(void)
{
	return reload_path;
}

const struct reload_policy *
reload_peek(void)
{
	return __atomic_load_n(&reload_cur, __ATOMIC_ACQUIRE);
}

void
reload_sandbox(void)
{
	/* (shim_in_sandbox() is already true: no new check starts.)  A
	 * check under way in another thread opens files: let it finish. */
	while (__atomic_load_n(&reload_busy, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* The child of a fork: a check another thread was running is gone. */
void
reload_fork_child(void)
{
	reload_mine = false;
	__atomic_store_n(&reload_waiters, 0, __ATOMIC_RELAXED);
	if (__atomic_load_n(&reload_busy, __ATOMIC_RELAXED)) {
		reload_force = true;
		__atomic_store_n(&reload_looked, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&reload_busy, 0, __ATOMIC_RELEASE);
	}
}

int
reload_start(const char *path, char err[POLICY_ERRLEN])
{
	struct reload_policy *rp;
	struct timespec t0, now;
	struct policy *p;
	int rc;

	if ((rc = reload_env_copy()) != 0 ||
	    (reload_path = reload_abspath(path)) == NULL) {
		rc = -ENOMEM;
		goto err0;
	}
	clock_at_start(CLOCK_REALTIME, &t0);
	if ((rc = policy_load_env(reload_path, reload_getenv, NULL, &p,
	    err)) != 0)
		return rc;
	if ((reload_watch = reload_watch_new(reload_path, p, &t0)) == NULL ||
	    (rp = reload_policy_new(p)) == NULL) {
		policy_free(p);
		rc = -ENOMEM;
		goto err0;
	}
	__atomic_store_n(&reload_cur, rp, __ATOMIC_RELEASE);
	clock_at_start(CLOCK_MONOTONIC_COARSE, &now);
	__atomic_store_n(&reload_due, ns(&now) + RELOAD_POLL_NS,
	    __ATOMIC_RELAXED);
	return 0;

err0:
	snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
	return rc;
}
