/*
 * session: the core of a session (see session.h for the state machine and
 * the lock order, session_int.h for the files the rest lives in).  Owns
 * the count of handshakes in flight, new/ref/put, the
 * kernel fd and the stand-in's tag, the session locks, and the accessors
 * other modules see a session through.  Failure is session_fail.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "real.h"
#include "init.h"
#include "session.h"
#include "reload.h"
#include "session_int.h"
#include "standin.h"
#include "stats.h"
#include "reason.h"
#include "tsan.h"

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

bool
session_fd_blocking(int fd)
{
	int fl = real_fcntl(fd, F_GETFL, 0);

	return fl >= 0 && (fl & O_NONBLOCK) == 0;
}

static void
session_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/*
 * Handshakes in flight in this process.  Until its handshake ends, a
 * session is held by a peer that has proved nothing, so their number is
 * bounded: beyond hs_limit a new session is born DEAD.  A session counts
 * while hs_counted (its private page) is set; ss_hs_uncount() clears it and
 * decrements exactly once, whichever path gets there first: hs_done,
 * hs_plain, ss_fail, the last session_put in this process, or a read
 * or write that finds the handshake ended by another process.  A forked
 * child recounts from the sessions it holds (ss_hs_forked, then
 * session_forked for each); an image that takes a session over counts it
 * if its handshake is under way (ss_attach).
 */
static int hs_inflight;
static int hs_limit = SESSION_MAX_HANDSHAKES;

/* In a forked child: sessions only other (now gone) threads referenced
 * never end here; count only those this process holds (session_forked). */
void
ss_hs_forked(void)
{
	__atomic_store_n(&hs_inflight, 0, __ATOMIC_RELAXED);
	/* The parent's ahead-made ephemeral is the parent's alone. */
	ss_eph_drop();
}

void
session_init(void)
{
	const char *v = getenv("SOCKSEAL_MAX_HANDSHAKES");
	char *end;
	long l;
	int saved = errno;

	if (v == NULL || *v == '\0')
		return;
	errno = 0;
	l = strtol(v, &end, 10);
	if (*end != '\0' || l < 0 || l > INT_MAX || errno != 0)
		LOG_WARN_CODE("setting", REASON_BAD_SETTING,
		    "SOCKSEAL_MAX_HANDSHAKES=%s is not a number >= 0; "
		    "using %d", v, hs_limit);
	else
		__atomic_store_n(&hs_limit, (int)l, __ATOMIC_RELAXED);
	errno = saved;
}

int
session_max_handshakes(void)
{
	return __atomic_load_n(&hs_limit, __ATOMIC_RELAXED);
}

int
session_handshakes(void)
{
	return __atomic_load_n(&hs_inflight, __ATOMIC_RELAXED);
}

/* Count S as a handshake in flight: false (not counted) over the limit,
 * if BOUNDED. */
bool
ss_hs_count(struct session *s, bool bounded)
{
	int max = session_max_handshakes();

	if (__atomic_add_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL) > max &&
	    max > 0 && bounded) {
		__atomic_sub_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL);
		return false;
	}
	__atomic_store_n(&s->hs_counted, true, __ATOMIC_RELEASE);
	stats_handshakes(1);
	return true;
}

void
ss_hs_uncount(struct session *s)
{
	if (__atomic_load_n(&s->hs_counted, __ATOMIC_ACQUIRE) &&
	    __atomic_exchange_n(&s->hs_counted, false, __ATOMIC_ACQ_REL)) {
		__atomic_sub_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL);
		stats_handshakes(-1);
	}
}

/* In a forked child, from session_forked (session_hold.c): S counts again
 * if its handshake was counted when the parent forked. */
void
ss_hs_recount(struct session *s)
{
	if (__atomic_load_n(&s->hs_counted, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&hs_inflight, 1, __ATOMIC_RELAXED);
		stats_handshakes(1);
	}
}

/*
 * libsodium is initialised by the first sealed connection, not at start:
 * its CPU feature probe executes cpuid, which traps to the hypervisor on a
 * virtual machine (tens of microseconds each here), and most processes a
 * shimmed shell or service manager starts never seal anything.
 * sodium_init() is thread-safe and idempotent; the flag only skips its lock.
 */
static bool
crypto_ready(void)
{
	static int ready;
	int saved = errno;

	if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
		return true;
	if (sodium_init() < 0) {
		LOG(LOG_ERROR, "libsodium failed to initialise: "
		    "refusing the connection");
		errno = saved;
		return false;
	}
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	errno = saved;
	return true;
}

struct session *
session_new(int fd, const struct policy_rule *rule, bool initiator,
    const struct sockaddr *peer)
{
	struct session *s;
	struct stat st;
	char why[96];

	if (!crypto_ready() || (s = ss_map()) == NULL)
		return NULL;
	s->rule = rule;
	s->stats_slot = stats_slot(rule);
	/* The generation RULE's policy is of (the one just looked up). */
	s->auth_gen = reload_peek() != NULL ? reload_peek()->gen : 0;
	s->magic = SESSION_MAGIC;
	s->maplen = ss_maplen();
	session_mutex_init(&s->rx_lock);
	session_mutex_init(&s->tx_lock);
	session_mutex_init(&s->hold_lock);
	s->initiator = initiator;
	s->state = initiator ? SESSION_HS_SEND1 : SESSION_HS_WAIT1;
	/* A responder's ephemeral: the one made ahead, or made now while
	 * the initiator makes its message 1. */
	if (!initiator)
		ss_hs_take_early_e(s);
	s->err = ECONNRESET;
	s->t_start_us = now_us();
	s->t_start = s->t_start_us / 1000;
	s->hs_deadline = s->t_start + rule->timeout_ms;
	log_addr(peer, s->peer, sizeof(s->peer));
	if (fstat(fd, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	if (!ss_hs_count(s, true)) {
		snprintf(why, sizeof(why), "refused: %d handshakes in flight "
		    "(SOCKSEAL_MAX_HANDSHAKES)", session_max_handshakes());
		ss_fail(s, REASON_HANDSHAKE_LIMIT, ECONNRESET, why);
	}
	return s;
}

void
session_ref(struct session *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void
session_put(struct session *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	ss_hs_uncount(s);
	if (s->kfd >= 0) {
		standin_mark(s->kfd, false);
		(void)real_close(s->kfd);
		s->kfd = -1;
	}
	/* Other processes may still hold it: only this view goes away. */
	ss_unmap(s);
}

void
session_set_kfd(struct session *s, int kfd, int pfd, unsigned int flags)
{
	struct stat st;

	int fl;

	s->kfd = kfd;
	s->pfd = pfd;
	s->tagflags = flags;
	s->sino = fstat(pfd, &st) == 0 ? st.st_ino : 0;
	standin_mark(kfd, true);
	/* The state object is inherited exactly when the socket is. */
	if (s->sfd >= 0 && (fl = real_fcntl(kfd, F_GETFD, 0)) >= 0 &&
	    !(fl & FD_CLOEXEC))
		(void)real_fcntl(s->sfd, F_SETFD, 0);
}

/* The stand-in's tag gets FLAG too, if its program fd is still it (an
 * exec'd image must not take a used connection for a fresh one). */
void
ss_tag(struct session *s, unsigned int flag)
{
	struct stat st;
	int saved = errno;

	if (s->kfd < 0 || (s->tagflags & flag) || shim_in_sandbox())
		return;
	s->tagflags |= flag;
	if (fstat(s->pfd, &st) == 0 && st.st_ino == s->sino && s->sino != 0)
		(void)standin_retag(s->pfd, s->kfd, s->tagflags);
	errno = saved;
}

void
session_kfd_lost(struct session *s)
{
	s->kfd = -1;
}

void
session_move_kfd(struct session *s, int kfd)
{
	s->kfd = kfd;
	s->tagflags |= 0x10;    /* force the retag below */
	ss_tag(s, 0);
	s->tagflags &= ~0x10u;
}

void
ss_unlock(pthread_mutex_t *m)
{
	TSAN_RELEASE(m);
	pthread_mutex_unlock(m);
}

/*
 * Take a session lock.  A robust mutex whose owner died (a process killed
 * mid-call) cannot be trusted to guard consistent state: the session fails.
 */
void
ss_lock(struct session *s, pthread_mutex_t *m)
{
	int r = pthread_mutex_lock(m);

	TSAN_ACQUIRE(m);
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		if (m != &s->hold_lock)
			ss_fail(s, REASON_PROCESS_DIED, ECONNRESET,
			    "a process died while using the connection");
	}
}

/* Try a session lock: 0 when taken. */
int
ss_trylock(struct session *s, pthread_mutex_t *m)
{
	int r = pthread_mutex_trylock(m);

	if (r == 0 || r == EOWNERDEAD)
		TSAN_ACQUIRE(m);

	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		if (m != &s->hold_lock)
			ss_fail(s, REASON_PROCESS_DIED, ECONNRESET,
			    "a process died while using the connection");
		r = 0;
	}
	return r;
}

/* What other modules may see of a session (session.h). */
int
session_kfd(const struct session *s, int fd)
{
	return s->kfd >= 0 ? s->kfd : fd;
}

int
session_stand_in(const struct session *s)
{
	return s->pfd;
}

bool
session_stand_in_is(const struct session *s, ino_t ino)
{
	return s->sino != 0 && s->sino == ino;
}

bool
session_same_socket(const struct session *s, dev_t dev, ino_t ino)
{
	return s->dev == dev && s->ino == ino;
}

unsigned int
session_tagflags(const struct session *s)
{
	return s->tagflags;
}

bool
session_initiator(const struct session *s)
{
	return s->initiator;
}

const char *
session_peer(const struct session *s)
{
	return s->peer;
}

int
session_state(const struct session *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

uint64_t
session_hs_deadline(const struct session *s)
{
	return s->hs_deadline;
}

unsigned int
session_st_gen(const struct session *s)
{
	return __atomic_load_n(&s->st_gen, __ATOMIC_RELAXED);
}

unsigned int
session_rx_gen(const struct session *s)
{
	return __atomic_load_n(&s->rx_gen, __ATOMIC_RELAXED);
}

void
session_pollers_add(struct session *s, int d)
{
	__atomic_add_fetch(&s->pollers, d, __ATOMIC_RELAXED);
}

void **
session_ep_watch(struct session *s)
{
	return &s->ep_watch;
}

void
session_err_reported_set(struct session *s)
{
	s->err_reported = true;
}
