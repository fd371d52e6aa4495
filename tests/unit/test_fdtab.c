/*
 * test_fdtab: shim/fdtab.c, the fd -> session table.
 *
 * Sessions are real (session_new on a socketpair, no I/O needed: the table
 * never does any), plus one sealed loopback wire (wire.h) for the kfd
 * lookups.  Covered: set/get/take/drop and their reference counts
 * (session refs, nfds, this process's holder entry), replacing a stale
 * entry, fdtab_maybe exactness below 1<<20 and its documented
 * approximation above (those numbers live in the hash only), the edges of
 * the byte map, snapshot, fds_of, find, kfd_owner, exec (carry.h) and fork
 * hand-over
 * counts, and a long random run of inserts and removes checked against a
 * model after every step.
 *
 * Run from the repo root: build/tests/test_fdtab.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "carry.h"
#include "fdtab.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "standin.h"
#include "check.h"
#include "wire.h"

#define FASTMAX (1 << 20)       /* fdtab.c's FDTAB_FASTMAX */

static struct policy_rule rule;
static int pairfd[2] = { -1, -1 };

/* A new session (one reference, ours), not in the table. */
static struct session *
mk(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct session *s = session_new(pairfd[0], &rule, true,
	    (struct sockaddr *)&sin);

	if (s == NULL)
		abort();
	return s;
}

static int
refs(const struct session *s)
{
	return __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE);
}

static int
nfds(const struct session *s)
{
	return __atomic_load_n(&s->nfds, __ATOMIC_ACQUIRE);
}

/* This process's holder count on S (0 without an entry). */
static int
held(const struct session *s)
{
	pid_t me = getpid();
	int i;

	for (i = 0; i < SESSION_HOLDERS; i++)
		if (s->holders[i].pid == me)
			return s->holders[i].nfds;
	return 0;
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

static void
test_set_get_take(void)
{
	struct session *s = mk(), *s2 = mk(), *g;
	int fds[4], n;
	bool last = true;

	/* Numbers, not files: none of these needs to be open. */
	CHECK(!fdtab_maybe(700));
	CHECK(fdtab_get(700) == NULL);
	CHECK(fdtab_take(700, &last) == NULL);
	CHECK(!last);
	CHECK(!fdtab_maybe(-1));
	CHECK(fdtab_get(-1) == NULL);
	CHECK_INT_EQ(fdtab_set(-1, s), -EBADF);
	CHECK_INT_EQ(fdtab_set(-5, s), -EBADF);
	CHECK_INT_EQ(refs(s), 1);
	CHECK_INT_EQ(nfds(s), 0);

	CHECK_INT_EQ(fdtab_set(700, s), 0);
	CHECK(fdtab_maybe(700));
	CHECK(!fdtab_maybe(699) && !fdtab_maybe(701));
	CHECK_INT_EQ(refs(s), 2);       /* ours + the entry's */
	CHECK_INT_EQ(nfds(s), 1);
	CHECK_INT_EQ(held(s), 1);
	g = fdtab_get(700);
	CHECK(g == s);
	CHECK_INT_EQ(refs(s), 3);       /* the lookup's own */
	session_put(g);
	CHECK_INT_EQ(refs(s), 2);
	CHECK(fdtab_get(699) == NULL);

	/* A second fd on the session (dup). */
	CHECK_INT_EQ(fdtab_set(701, s), 0);
	CHECK_INT_EQ(refs(s), 3);
	CHECK_INT_EQ(nfds(s), 2);
	CHECK_INT_EQ(held(s), 2);
	n = fdtab_fds_of(s, fds, 4);
	CHECK_INT_EQ(n, 2);
	qsort(fds, (size_t)n, sizeof(int), cmp_int);
	CHECK(n == 2 && fds[0] == 700 && fds[1] == 701);
	CHECK_INT_EQ(fdtab_fds_of(s, fds, 1), 1);
	CHECK(fds[0] == 700 || fds[0] == 701);
	CHECK_INT_EQ(fdtab_fds_of(s2, fds, 4), 0);
	n = fdtab_find(s);
	CHECK(n == 700 || n == 701);
	CHECK_INT_EQ(fdtab_find(s2), -1);

	/* Setting the same number again on the same session: one entry. */
	CHECK_INT_EQ(fdtab_set(701, s), 0);
	CHECK_INT_EQ(refs(s), 3);
	CHECK_INT_EQ(nfds(s), 2);
	CHECK_INT_EQ(held(s), 2);

	/* A new session on 700 replaces the stale entry. */
	CHECK_INT_EQ(fdtab_set(700, s2), 0);
	CHECK(fdtab_get(700) == s2);
	session_put(s2);
	CHECK_INT_EQ(refs(s), 2);
	CHECK_INT_EQ(nfds(s), 1);
	CHECK_INT_EQ(held(s), 1);
	CHECK_INT_EQ(refs(s2), 2);
	CHECK_INT_EQ(nfds(s2), 1);
	CHECK_INT_EQ(fdtab_find(s), 701);
	CHECK_INT_EQ(fdtab_find(s2), 700);

	/* take: the entry's reference goes to the caller. */
	g = fdtab_take(701, &last);
	CHECK(g == s);
	CHECK(last);
	CHECK(!fdtab_maybe(701));
	CHECK(fdtab_get(701) == NULL);
	CHECK_INT_EQ(refs(s), 2);
	CHECK_INT_EQ(nfds(s), 0);
	CHECK_INT_EQ(held(s), 0);
	session_put(g);
	CHECK_INT_EQ(refs(s), 1);
	g = fdtab_take(701, &last);
	CHECK(g == NULL);
	CHECK(!last);

	/* take of one of two fds: not the last. */
	CHECK_INT_EQ(fdtab_set(702, s2), 0);
	g = fdtab_take(700, &last);
	CHECK(g == s2 && !last);
	CHECK_INT_EQ(nfds(s2), 1);
	session_put(g);
	CHECK_INT_EQ(refs(s2), 2);

	/* drop: forgotten without I/O; the reference goes too. */
	fdtab_drop(702);
	CHECK(!fdtab_maybe(702));
	CHECK_INT_EQ(refs(s2), 1);
	CHECK_INT_EQ(nfds(s2), 0);
	CHECK_INT_EQ(held(s2), 0);
	fdtab_drop(702);                /* nothing there: a no-op */
	CHECK_INT_EQ(refs(s2), 1);
	fdtab_drop(-1);

	session_put(s);
	session_put(s2);
}

/* Numbers from 1<<20 live in the hash alone: maybe() may say yes for a
 * number without an entry while any such entry exists, never no for one
 * with an entry. */
static void
test_big_numbers(void)
{
	struct session *s = mk(), *t = mk(), *g;
	const int b1 = FASTMAX + 7, b2 = FASTMAX + 100000, edge = FASTMAX - 1;
	struct session *ss[8];
	int fds[8], n, i, found;
	bool last;

	CHECK(!fdtab_maybe(b1) && !fdtab_maybe(b2) && !fdtab_maybe(INT_MAX));
	CHECK(!fdtab_maybe(FASTMAX));

	/* The last number of the byte map is exact. */
	CHECK_INT_EQ(fdtab_set(edge, s), 0);
	CHECK(fdtab_maybe(edge));
	CHECK(!fdtab_maybe(edge - 1));
	CHECK(!fdtab_maybe(FASTMAX));   /* no big entry yet */
	CHECK(fdtab_get(edge) == s);
	session_put(s);

	CHECK_INT_EQ(fdtab_set(b1, s), 0);
	CHECK(fdtab_maybe(b1));
	CHECK(fdtab_maybe(b2));         /* the approximation */
	CHECK(fdtab_maybe(FASTMAX));
	CHECK(fdtab_get(b2) == NULL);   /* ... that the lookup corrects */
	CHECK(!fdtab_maybe(12345));     /* small numbers stay exact */
	g = fdtab_get(b1);
	CHECK(g == s);
	session_put(g);
	CHECK_INT_EQ(nfds(s), 2);

	CHECK_INT_EQ(fdtab_set(b2, t), 0);
	CHECK_INT_EQ(fdtab_set(INT_MAX, t), 0);
	g = fdtab_get(INT_MAX);
	CHECK(g == t);
	session_put(g);
	CHECK_INT_EQ(nfds(t), 2);
	/* Replacing a big entry keeps one count for the number. */
	CHECK_INT_EQ(fdtab_set(b2, s), 0);
	CHECK_INT_EQ(nfds(t), 1);
	CHECK_INT_EQ(nfds(s), 3);

	/* snapshot and fds_of see big numbers too */
	n = fdtab_snapshot(fds, ss, 8);
	CHECK_INT_EQ(n, 4);
	for (i = 0, found = 0; i < n; i++) {
		if (fds[i] == b1 || fds[i] == b2 || fds[i] == edge)
			found += ss[i] == s;
		else if (fds[i] == INT_MAX)
			found += ss[i] == t;
		session_put(ss[i]);
	}
	CHECK_INT_EQ(found, 4);
	CHECK_INT_EQ(fdtab_fds_of(s, fds, 8), 3);

	/* Taking one big entry leaves the others announced. */
	g = fdtab_take(b1, &last);
	CHECK(g == s && !last);
	session_put(g);
	CHECK(fdtab_maybe(b1));         /* b2 and INT_MAX remain */
	CHECK(fdtab_get(b1) == NULL);
	fdtab_drop(b2);
	CHECK(fdtab_maybe(b1));
	g = fdtab_take(INT_MAX, &last);
	CHECK(g == t && last);
	session_put(g);
	/* None left: exact again. */
	CHECK(!fdtab_maybe(b1) && !fdtab_maybe(b2) && !fdtab_maybe(INT_MAX));
	CHECK(!fdtab_maybe(FASTMAX));
	CHECK(fdtab_maybe(edge));
	g = fdtab_take(edge, &last);
	CHECK(g == s && last);
	session_put(g);
	CHECK_INT_EQ(refs(s), 1);
	CHECK_INT_EQ(refs(t), 1);
	CHECK_INT_EQ(nfds(s), 0);
	CHECK_INT_EQ(nfds(t), 0);
	session_put(s);
	session_put(t);
}

static void
test_snapshot(void)
{
	struct session *s[3] = { mk(), mk(), mk() }, *ss[64];
	int fds[64], want[40], n, i, k;

	for (i = 0; i < 40; i++) {
		want[i] = 1000 + i * 3;
		CHECK_INT_EQ(fdtab_set(want[i], s[i % 3]), 0);
	}
	CHECK_INT_EQ(refs(s[0]), 1 + 14);
	/* A bounded snapshot: exactly MAX pairs, each referenced. */
	n = fdtab_snapshot(fds, ss, 10);
	CHECK_INT_EQ(n, 10);
	CHECK_INT_EQ(refs(s[0]) + refs(s[1]) + refs(s[2]), 3 + 40 + 10);
	for (i = 0; i < n; i++)
		session_put(ss[i]);
	CHECK_INT_EQ(fdtab_snapshot(fds, ss, 0), 0);
	/* The whole table: every fd once, with its own session. */
	n = fdtab_snapshot(fds, ss, 64);
	CHECK_INT_EQ(n, 40);
	for (i = 0, k = 0; i < n; i++) {
		int idx = (fds[i] - 1000) / 3;

		k += idx >= 0 && idx < 40 && fds[i] == want[idx] &&
		    ss[i] == s[idx % 3];
		session_put(ss[i]);
	}
	CHECK_INT_EQ(k, 40);
	qsort(fds, (size_t)n, sizeof(int), cmp_int);
	CHECK_MEM_EQ(fds, want, sizeof(want));
	CHECK_INT_EQ(fdtab_fds_of(s[1], fds, 64), 13);
	CHECK_INT_EQ(fdtab_fds_of(s[1], fds, 5), 5);
	for (i = 0; i < 40; i++)
		fdtab_drop(want[i]);
	CHECK_INT_EQ(fdtab_snapshot(fds, ss, 64), 0);
	for (i = 0; i < 3; i++) {
		CHECK_INT_EQ(refs(s[i]), 1);
		CHECK_INT_EQ(nfds(s[i]), 0);
		session_put(s[i]);
	}
}

/*
 * A kfd closed behind the shim's back whose number comes back as another
 * file (a raw close, then an open): fdtab_fresh, which every call that
 * makes an fd runs, forgets it, and its session fails closed on the
 * stand-in instead of writing into the new file.
 */
static void
test_kfd_lost(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	int ka = session_kfd(w->sa, -1), nul = open("/dev/null", O_RDONLY);

	CHECK(ka >= 0 && nul >= 0 && standin_is_kfd(ka));
	CHECK_INT_EQ((int)syscall(SYS_dup2, nul, ka), ka);  /* past the shim */
	fdtab_fresh(ka);
	CHECK(!standin_is_kfd(ka));
	CHECK_INT_EQ(session_kfd(w->sa, w->a), w->a);
	CHECK(fdtab_kfd_owner(ka) == NULL);
	close(ka);
	close(nul);
	wire_free(w);
}

/* A real sealed connection: its kfd, its stand-in, the table. */
static void
test_kfd_owner(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct session *g;
	int ka = session_kfd(w->sa, -1), kb = session_kfd(w->sb, -1), d;
	bool last;

	CHECK(ka >= 0 && kb >= 0 && ka != w->a && kb != w->b);
	CHECK(ka >= standin_base() && kb >= standin_base());
	CHECK(standin_is_kfd(ka) && standin_is_kfd(kb));
	CHECK(!standin_is_kfd(w->a));
	g = fdtab_kfd_owner(ka);
	CHECK(g == w->sa);
	CHECK_INT_EQ(refs(w->sa), 3);   /* wire + table + lookup */
	session_put(g);
	g = fdtab_kfd_owner(kb);
	CHECK(g == w->sb);
	session_put(g);
	/* The program's number is not a kfd; nor a number nobody has. */
	CHECK(fdtab_kfd_owner(w->a) == NULL);
	CHECK(fdtab_kfd_owner(w->x) == NULL);
	/* A dup of the program fd: the same owner, two fds. */
	d = dup(w->a);
	CHECK_INT_EQ(fdtab_set(d, w->sa), 0);
	CHECK_INT_EQ(nfds(w->sa), 2);
	g = fdtab_kfd_owner(ka);
	CHECK(g == w->sa);
	session_put(g);
	/* Only sessions in the table count. */
	g = fdtab_take(d, &last);
	CHECK(g == w->sa && !last);
	session_put(g);
	close(d);
	g = fdtab_take(w->a, &last);
	CHECK(g == w->sa && last);
	CHECK(fdtab_kfd_owner(ka) == NULL);
	CHECK(fdtab_get(w->a) == NULL);
	/* Back in the table: found again. */
	CHECK_INT_EQ(fdtab_set(w->a, g), 0);
	session_put(g);
	g = fdtab_kfd_owner(ka);
	CHECK(g == w->sa);
	session_put(g);
	wire_free(w);
	/* The last reference closed the kfds and unmarked them. */
	CHECK(!standin_is_kfd(ka) && !standin_is_kfd(kb));
	CHECK(fcntl(ka, F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(kb, F_GETFD) < 0 && errno == EBADF);
}

/* exec of an image the sessions do not travel to (carry.h): this process
 * stops holding them, and holds them again if the exec failed. */
static void
test_exec(void)
{
	struct session *s = mk(), *t = mk();
	static struct carry_gate g;

	CHECK_INT_EQ(fdtab_set(800, s), 0);
	CHECK_INT_EQ(fdtab_set(801, s), 0);
	CHECK_INT_EQ(fdtab_set(802, t), 0);
	CHECK_INT_EQ(held(s), 2);
	carry_exec_prepare(&g, CARRY_EXEC, "/nonexistent/image", NULL, NULL,
	    0);
	CHECK_INT_EQ(g.n, 2);
	CHECK(!g.e[0].travels && !g.e[1].travels);
	CHECK_INT_EQ(held(s), 0);
	CHECK_INT_EQ(held(t), 0);
	CHECK_INT_EQ(nfds(s), 2);       /* the table itself is unchanged */
	carry_exec_done(&g, -1);
	CHECK_INT_EQ(held(s), 2);
	CHECK_INT_EQ(held(t), 1);
	fdtab_drop(800);
	fdtab_drop(801);
	fdtab_drop(802);
	CHECK_INT_EQ(held(s), 0);
	session_put(s);
	session_put(t);
}

/* fork: the child registers as a holder, the pending count settles once. */
static void
test_fork(void)
{
	struct session *s = mk(), *t = mk();
	pid_t pid;
	int st, i, slot;

	CHECK_INT_EQ(fdtab_set(900, s), 0);
	CHECK_INT_EQ(fdtab_set(901, s), 0);
	CHECK_INT_EQ(fdtab_set(902, t), 0);
	CHECK(!s->forked);

	/* A fork that fails: settled once, however often it is told. */
	fdtab_fork_prepare();
	fdtab_fork_parent();
	CHECK(s->forked && t->forked);
	CHECK_INT_EQ(s->fork_pending, 1);   /* once per session, not per fd */
	CHECK_INT_EQ(t->fork_pending, 1);
	fdtab_fork_failed();
	CHECK_INT_EQ(s->fork_pending, 0);
	CHECK_INT_EQ(t->fork_pending, 0);
	fdtab_fork_failed();
	CHECK_INT_EQ(s->fork_pending, 0);

	/* A real fork. */
	fflush(stdout);
	fflush(stderr);
	fdtab_fork_prepare();
	pid = fork();
	if (pid == 0) {
		bool ok;

		fdtab_fork_child();
		/* the child holds both sessions with its own fd counts, and
		 * the table works (its lock was re-initialised) */
		ok = held(s) == 2 && held(t) == 1 && s->fork_pending == 0 &&
		    t->fork_pending == 0;
		ok = ok && fdtab_set(903, t) == 0 && held(t) == 2;
		fdtab_drop(903);
		_exit(ok ? 0 : 1);
	}
	fdtab_fork_parent();
	CHECK(pid > 0);
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT_EQ(s->fork_pending, 0);   /* the child settled it */
	CHECK_INT_EQ(t->fork_pending, 0);
	for (i = 0, slot = -1; i < SESSION_HOLDERS; i++)
		if (s->holders[i].pid == pid)
			slot = i;
	CHECK(slot >= 0);
	CHECK(slot >= 0 && s->holders[slot].nfds == 2);
	/* The parent's own count is untouched. */
	CHECK_INT_EQ(held(s), 2);
	CHECK_INT_EQ(held(t), 1);
	/* The table is usable after fork_parent (unlocked). */
	CHECK_INT_EQ(fdtab_set(903, t), 0);
	fdtab_drop(903);
	fdtab_drop(900);
	fdtab_drop(901);
	fdtab_drop(902);
	session_put(s);
	session_put(t);
}

/* Many inserts and removes, checked against a model after each step. */
#define CHURN_N   512
#define CHURN_S   4

static uint32_t
rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static int
churn_fd(int i)
{
	/* a few slots far into the hash-only range */
	return i < CHURN_N - 16 ? 3 + i * 7 : FASTMAX + (i * 9973);
}

static void
test_churn(void)
{
	struct session *s[CHURN_S], *g;
	int model[CHURN_N], count[CHURN_S], i, k, step, bad = 0, fd;
	uint32_t x = 0x9e3779b9u;
	bool last;

	for (k = 0; k < CHURN_S; k++) {
		s[k] = mk();
		count[k] = 0;
	}
	for (i = 0; i < CHURN_N; i++)
		model[i] = -1;
	for (step = 0; step < 20000; step++) {
		i = (int)(rnd(&x) % CHURN_N);
		fd = churn_fd(i);
		switch (rnd(&x) % 4) {
		case 0: case 1:         /* set (maybe replacing) */
			k = (int)(rnd(&x) % CHURN_S);
			if (fdtab_set(fd, s[k]) != 0) {
				bad++;
				break;
			}
			if (model[i] >= 0)
				count[model[i]]--;
			model[i] = k;
			count[k]++;
			break;
		case 2:                 /* take */
			g = fdtab_take(fd, &last);
			if (model[i] < 0) {
				bad += g != NULL;
				session_put(g);
				break;
			}
			count[model[i]]--;
			bad += g != s[model[i]] || last != (count[model[i]] == 0);
			model[i] = -1;
			session_put(g);
			break;
		default:                /* drop */
			fdtab_drop(fd);
			if (model[i] >= 0)
				count[model[i]]--;
			model[i] = -1;
			break;
		}
		/* the touched number, exactly */
		g = fdtab_get(fd);
		bad += g != (model[i] >= 0 ? s[model[i]] : NULL);
		session_put(g);
		if (fd < FASTMAX)
			bad += fdtab_maybe(fd) != (model[i] >= 0);
		else if (model[i] >= 0)
			bad += !fdtab_maybe(fd);
		/* every count, every so often the whole table */
		for (k = 0; k < CHURN_S; k++)
			bad += nfds(s[k]) != count[k] || held(s[k]) != count[k] ||
			    refs(s[k]) != 1 + count[k];
		if (step % 1000 == 0) {
			for (i = 0; i < CHURN_N; i++) {
				g = fdtab_get(churn_fd(i));
				bad += g != (model[i] >= 0 ? s[model[i]] : NULL);
				session_put(g);
			}
		}
	}
	CHECK_INT_EQ(bad, 0);
	for (k = 0; k < CHURN_S; k++) {
		int fds[CHURN_N];

		CHECK_INT_EQ(fdtab_fds_of(s[k], fds, CHURN_N), count[k]);
	}
	for (i = 0; i < CHURN_N; i++)
		fdtab_drop(churn_fd(i));
	for (k = 0; k < CHURN_S; k++) {
		CHECK_INT_EQ(nfds(s[k]), 0);
		CHECK_INT_EQ(refs(s[k]), 1);
		session_put(s[k]);
	}
	CHECK(!fdtab_maybe(FASTMAX + 9973 * (CHURN_N - 1)));
}

int
main(void)
{
	int nfds0 = wire_nfds();

	if (wire_test_start() < 0)
		return 1;
	wire_rule(&rule, POLICY_CONNECT, 5000);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairfd) < 0)
		return 1;

	test_set_get_take();
	test_big_numbers();
	test_snapshot();
	test_kfd_owner();
	test_kfd_lost();
	test_exec();
	test_fork();
	test_churn();
	{
		int fds[4];
		struct session *ss[4];

		CHECK_INT_EQ(fdtab_snapshot(fds, ss, 4), 0);   /* nothing left */
	}
	close(pairfd[0]);
	close(pairfd[1]);
	CHECK_INT_EQ(wire_nfds(), nfds0);       /* every fd cleaned up */
	CHECK_DONE();
}
