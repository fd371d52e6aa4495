/*
 * reload: see reload.h.
 *
 * When.  reload_current() runs at every connect and accept decision.  It
 * reads CLOCK_MONOTONIC_COARSE (vDSO, no syscall) and compares it with
 * reload_due; only when a second has passed does one thread, the one that
 * wins reload_busy, look at the files.  Every other thread, and the winner
 * too once it is done, uses the policy that reload_cur points to.  Nothing
 * ever waits for the check.  In a sandbox (reload_sandbox()) nothing is
 * looked at any more: the shim makes no syscall beyond the program's own
 * (reload_sandbox() waits for a check under way in another thread).
 *
 * What.  The watch list is the policy file and every file the policy in
 * force read (keys, identities, peers' key files, included files: their
 * resolved paths), each with the identity stat() gave
 * after the last load: device, inode, size, mtime and ctime to the
 * nanosecond.  stat() follows symlinks, so a key replaced by rename (Vault
 * agent) or by the swap of a `..data` symlink (a Kubernetes Secret volume)
 * shows up as another inode.  A file whose ctime is within a second of the
 * moment its load began is "racy" (reload_id_racy()): a write in the same
 * clock tick as our read may leave its identity unchanged, so it counts as
 * changed until it is older.  Re-reading costs little because a load that
 * yields the same policy (policy_equal()) is dropped, not published.
 *
 * The policy file must also have settled: it is read only when a check
 * finds it as the previous check (a second earlier) left it, so a policy
 * being written in place (truncated, then written) is not read half-way;
 * half a policy could be a valid one that seals less.  (A key file read
 * half-way is not a key: it fails, see below.)  A writer slower than that,
 * or a change in the very tick of our read, is caught by the racy rule
 * and corrected a second later; writing the file elsewhere and renaming
 * it into place (README) avoids both.
 *
 * A change re-reads the whole policy with every key.  Success publishes a
 * new struct reload_policy with one release store; a failure keeps the
 * policy in force and logs the FILE:LINE error, once per distinct error,
 * and the next check (a second later) tries again: a fix may be a key file
 * the failed policy named but the watch list does not know.
 *
 * Memory.  A session points into the policy it was made under (its rule,
 * the rule's keys and file name) for its whole life and may be shared with
 * forked children, so a superseded policy is never freed (nor wiped): it
 * stays on the chain reload_cur->prev, one policy, a few hundred bytes per
 * rule, per real change of the files.  Reads that change nothing leave
 * nothing behind.
 *
 * Threads and fork.  reload_cur and reload_due are atomics; everything
 * else here (watch list, error state) belongs to the holder of reload_busy.
 * A fork while another thread holds it leaves the child with a busy flag
 * nobody will clear: the child's atfork handler clears it and forces a
 * check.  Every state of the watch list a fork can catch is consistent
 * (one pointer store replaces it); at worst the child leaks a list.
 *
 * ${VAR} in key paths is expanded from a copy of the environment made at
 * start: a program that later clears or edits its environment (daemons
 * do) still reloads the keys the operator configured.
 */
#include <errno.h>
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
#include "reload.h"

#define RELOAD_EVERY_NS 1000000000ull   /* at most one check per second */
#define RELOAD_RACY_S   1               /* see reload_id_racy() */

struct reload_watch {
	size_t n;
	struct {
		char            *path;
		struct reload_id id;
		bool             racy;
	} e[];
};

extern char **environ;

static char                        *reload_path;   /* absolute */
static char                       **reload_env;    /* environ at start */
static const struct reload_policy  *reload_cur;    /* atomic */
static uint64_t                     reload_due;    /* atomic, ns */
static bool                         reload_busy;   /* atomic flag */

/* The holder of reload_busy's state. */
static struct reload_watch *reload_watch;          /* atomic store */
static bool                 reload_failed, reload_force;
static struct reload_id     reload_seen;   /* the policy at the last check */
static char                 reload_err[POLICY_ERRLEN];

void
reload_id_get(const char *path, struct reload_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) != 0) {
		id->err = errno;
		return;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtim = st.st_mtim;
	id->ctim = st.st_ctim;
}

bool
reload_id_same(const struct reload_id *a, const struct reload_id *b)
{
	if (a->err != 0 || b->err != 0)
		return a->err == b->err;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

bool
reload_id_racy(const struct reload_id *id, const struct timespec *t0)
{
	/* A missing file is judged by its error, which has no time. */
	if (id->err != 0)
		return false;
	return id->ctim.tv_sec >= t0->tv_sec - RELOAD_RACY_S;
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

static void
reload_watch_free(struct reload_watch *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n; i++)
		free(w->e[i].path);
	free(w);
}

/* The watch list for P, loaded from files read no earlier than T0. */
static struct reload_watch *
reload_watch_new(const struct policy *p, const struct timespec *t0)
{
	struct reload_watch *w;
	size_t i, n = policy_nfiles(p) + 1;

	if ((w = calloc(1, sizeof(*w) + n * sizeof(w->e[0]))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *path = i == 0 ? reload_path :
		    policy_file_at(p, i - 1);

		if ((w->e[i].path = strdup(path)) == NULL) {
			reload_watch_free(w);
			return NULL;
		}
		w->n++;
		reload_id_get(path, &w->e[i].id);
		w->e[i].racy = reload_id_racy(&w->e[i].id, t0);
	}
	return w;
}

static bool
reload_changed(const struct reload_watch *w)
{
	struct reload_id id;
	size_t i;

	for (i = 0; i < w->n; i++) {
		if (w->e[i].racy)
			return true;
		reload_id_get(w->e[i].path, &id);
		if (!reload_id_same(&id, &w->e[i].id))
			return true;
	}
	return false;
}

/* Is the policy file as the previous check saw it? */
static bool
reload_settled(void)
{
	struct reload_id id;
	bool same;

	reload_id_get(reload_path, &id);
	same = reload_id_same(&id, &reload_seen);
	reload_seen = id;
	return same;
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
reload_fail(const char *err)
{
	if (!reload_failed || strcmp(err, reload_err) != 0)
		LOG(LOG_WARN, "policy reload failed, the last good policy stays "
		    "in force: %s", err);
	reload_failed = true;
	snprintf(reload_err, sizeof(reload_err), "%s", err);
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
		reload_fail(err);
		return;
	}
	if ((nw = reload_watch_new(p, &t0)) == NULL)
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
	reload_fail(err);
}

static uint64_t
ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static uint64_t
reload_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ns(&ts);
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

/* At most once a second, in one thread: reload if the files changed. */
static void
reload_maybe(void)
{
	uint64_t now = reload_now();
	int saved;

	if (now < __atomic_load_n(&reload_due, __ATOMIC_RELAXED) ||
	    __atomic_test_and_set(&reload_busy, __ATOMIC_ACQUIRE))
		return;
	if (now >= __atomic_load_n(&reload_due, __ATOMIC_RELAXED)) {
		__atomic_store_n(&reload_due, now + RELOAD_EVERY_NS,
		    __ATOMIC_RELAXED);
		saved = errno;
		if (reload_settled() && (reload_failed || reload_force ||
		    reload_changed(reload_watch)))
			reload_run();
		errno = saved;
	}
	__atomic_clear(&reload_busy, __ATOMIC_RELEASE);
}

const struct reload_policy *
reload_current(void)
{
	if (!shim_in_sandbox())
		reload_maybe();
	return __atomic_load_n(&reload_cur, __ATOMIC_ACQUIRE);
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
	if (__atomic_load_n(&reload_busy, __ATOMIC_RELAXED)) {
		reload_force = true;
		__atomic_clear(&reload_busy, __ATOMIC_RELEASE);
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
	if ((reload_watch = reload_watch_new(p, &t0)) == NULL ||
	    (rp = reload_policy_new(p)) == NULL) {
		policy_free(p);
		rc = -ENOMEM;
		goto err0;
	}
	reload_seen = reload_watch->e[0].id;
	__atomic_store_n(&reload_cur, rp, __ATOMIC_RELEASE);
	clock_at_start(CLOCK_MONOTONIC_COARSE, &now);
	__atomic_store_n(&reload_due, ns(&now) + RELOAD_EVERY_NS,
	    __ATOMIC_RELAXED);
	return 0;

err0:
	snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
	return rc;
}
