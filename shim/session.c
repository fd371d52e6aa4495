/*
 * session: see session.h for the state machine and the lock order.
 *
 * Buffers.  The receive buffer holds up to SESSION_RBUF bytes of ciphertext:
 * room for several whole records, so one read() takes a large chunk and the
 * records in it are opened in place.  The transmit buffer holds one batch of
 * at most SESSION_TBATCH records plus room for the end-of-stream mark.
 * Both are allocated on first use.
 *
 * Handshake I/O is always non-blocking (MSG_DONTWAIT); a caller allowed to
 * block waits in poll() up to the rule's deadline.  Data I/O uses the
 * program's own blocking mode and flags, so a blocking read blocks in the
 * kernel exactly where the program expects it to.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "real.h"
#include "record.h"
#include "session.h"
#include "standin.h"
#include "tcpstate.h"
#include "tsan.h"

#define SESSION_RBUF    (3 * 65536 + 1024)
#define SESSION_TBATCH  4
#define SESSION_TBUF    (SESSION_TBATCH * RECORD_MAXWIRE + RECORD_WIRELEN(0))
#define PREFACE_LEN     8
#define HS_MSGLEN       (NOISE_DHLEN + NOISE_TAGLEN)        /* 48 */
#define HS_MSG1_WIRE    (PREFACE_LEN + 2 + HS_MSGLEN)       /* 58 */
#define HS_MSG2_WIRE    (2 + HS_MSGLEN)                     /* 50 */
#define CLOSE_WAIT_MS   2000    /* bound on flushing at close/exit */
#define SESSION_EARLY   65536   /* bytes a program may write mid-handshake */
#define SESSION_TRIM_MIN 16384 /* buffer bytes worth giving back (buf_trim) */
#define SESSION_TRIM_MS 250     /* at most one trim per buffer per ... ms */
#define PAGE_DOWN(x)    ((x) & ~(uintptr_t)4095)
#define PAGE_UP(x)      PAGE_DOWN((x) + 4095)
#define HOW_UNSEEN      "socket closed where the shim could not see it"

/* Set when the program enters a sandbox (seccomp, chroot): from then on
 * the shim makes no syscall the program's own call would not. */
static bool session_sandboxed;

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* Round up to a multiple of A (a power of two). */
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))

/*
 * Mappings of ended sessions this process alone ever had (no fork while
 * they lived), kept for the next connection: mapping and unmapping half a
 * megabyte per connection costs more than the handshake on some machines.
 * A forked child drops its copy of the cache at once (it must never reuse
 * a mapping its parent may reuse too).
 */
#define SESSION_CACHE 16

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void *cache[SESSION_CACHE];
static int ncache;

/*
 * Handshakes in flight in this process.  Until its handshake ends, a
 * session is held by a peer that has proved nothing, so their number is
 * bounded: beyond hs_limit a new session is born DEAD.  A session counts
 * while hs_counted (its private page) is set; hs_uncount() clears it and
 * decrements exactly once, whichever path gets there first: hs_done,
 * hs_plain, session_fail, the last session_put in this process, or a read
 * or write that finds the handshake ended by another process.  A forked
 * child recounts from the sessions it holds (session_cache_forked, then
 * session_forked for each).
 */
static int hs_inflight;
static int hs_limit = SESSION_MAX_HANDSHAKES;

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
		LOG(LOG_WARN, "SOCKSEAL_MAX_HANDSHAKES=%s is not a number >= 0; "
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

/* Count S as a handshake in flight: false (not counted) over the limit. */
static bool
hs_count(struct session *s)
{
	int max = session_max_handshakes();

	if (__atomic_add_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL) > max &&
	    max > 0) {
		__atomic_sub_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL);
		return false;
	}
	__atomic_store_n(&s->hs_counted, true, __ATOMIC_RELEASE);
	return true;
}

static void
hs_uncount(struct session *s)
{
	if (__atomic_load_n(&s->hs_counted, __ATOMIC_ACQUIRE) &&
	    __atomic_exchange_n(&s->hs_counted, false, __ATOMIC_ACQ_REL))
		__atomic_sub_fetch(&hs_inflight, 1, __ATOMIC_ACQ_REL);
}

static size_t
session_maplen(void)
{
	return ALIGN_UP(ALIGN_UP(sizeof(struct session), 64) + SESSION_RBUF +
	    SESSION_TBUF + SESSION_EARLY, SESSION_PRIVLEN);
}

static void *
session_map(void)
{
	size_t len = session_maplen();
	void *p = NULL;

	pthread_mutex_lock(&cache_lock);
	if (ncache > 0)
		p = cache[--ncache];
	pthread_mutex_unlock(&cache_lock);
	if (p != NULL) {
		/* Keys and state are gone; buffers are overwritten before use. */
		memset(p, 0, sizeof(struct session));
		return p;
	}
	/* All shared, then page 0 made private again. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mmap(p, SESSION_PRIVLEN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

static void
session_unmap(struct session *s)
{
	size_t len = s->maplen;

	if (!s->forked) {
		/* A cached mapping keeps no pages a burst filled. */
		if ((s->rx_hiwat > SESSION_TRIM_MIN ||
		    s->tx_hiwat > SESSION_TRIM_MIN) && !session_sandboxed) {
			uintptr_t lo = PAGE_UP((uintptr_t)s + sizeof(*s));
			int saved = errno;

			(void)madvise((void *)lo, (uintptr_t)s + len - lo,
			    MADV_REMOVE);
			errno = saved;
		}
		sodium_memzero((uint8_t *)s + SESSION_PRIVLEN,
		    sizeof(struct session) - SESSION_PRIVLEN);
		pthread_mutex_lock(&cache_lock);
		if (ncache < SESSION_CACHE) {
			cache[ncache++] = s;
			s = NULL;
		}
		pthread_mutex_unlock(&cache_lock);
		if (s == NULL)
			return;
	}
	munmap(s, len);
}

void
session_cache_forked(void)
{
	/* In the child: these mappings are shared with the parent now. */
	while (ncache > 0)
		munmap(cache[--ncache], session_maplen());
	pthread_mutex_init(&cache_lock, NULL);
	/* Sessions only other (now gone) threads referenced never end
	 * here: count only those this process holds (session_forked). */
	__atomic_store_n(&hs_inflight, 0, __ATOMIC_RELAXED);
}

static void session_fail(struct session *s, int err, const char *why);

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
	size_t head = ALIGN_UP(sizeof(struct session), 64);
	struct session *s;
	struct stat st;
	char why[96];
	void *p;

	if (!crypto_ready() || (p = session_map()) == NULL)
		return NULL;
	s = p;
	s->maplen = session_maplen();
	s->refs = 1;
	s->kfd = -1;
	s->pfd = -1;
	s->tagflags = 0;
	session_mutex_init(&s->rx_lock);
	session_mutex_init(&s->tx_lock);
	session_mutex_init(&s->hold_lock);
	s->rbuf = (uint8_t *)p + head;
	s->tbuf = s->rbuf + SESSION_RBUF;
	s->early = s->tbuf + SESSION_TBUF;
	s->initiator = initiator;
	s->state = initiator ? SESSION_HS_SEND1 : SESSION_HS_WAIT1;
	s->rule = rule;
	s->err = ECONNRESET;
	s->t_start = now_ms();
	s->hs_deadline = s->t_start + rule->timeout_ms;
	log_addr(peer, s->peer, sizeof(s->peer));
	if (fstat(fd, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	if (!hs_count(s)) {
		snprintf(why, sizeof(why), "refused: %d handshakes in flight "
		    "(SOCKSEAL_MAX_HANDSHAKES)", session_max_handshakes());
		session_fail(s, ECONNRESET, why);
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
	hs_uncount(s);
	if (s->kfd >= 0) {
		standin_mark(s->kfd, false);
		(void)real_close(s->kfd);
		s->kfd = -1;
	}
	/* Other processes may still hold it: only this view goes away. */
	session_unmap(s);
}

/* The descriptor for S's kernel I/O, whichever fd the caller has. */
static inline int
sfd(const struct session *s, int fd)
{
	return session_kfd(s, fd);
}

void
session_set_kfd(struct session *s, int kfd, int pfd, unsigned int flags)
{
	struct stat st;

	s->kfd = kfd;
	s->pfd = pfd;
	s->tagflags = flags;
	s->sino = fstat(pfd, &st) == 0 ? st.st_ino : 0;
	standin_mark(kfd, true);
}

/* The stand-in's tag gets FLAG too, if its program fd is still it (an
 * exec'd image must not take a used connection for a fresh one). */
static void
session_tag(struct session *s, unsigned int flag)
{
	struct stat st;
	int saved = errno;

	if (s->kfd < 0 || (s->tagflags & flag) || session_sandboxed)
		return;
	s->tagflags |= flag;
	if (fstat(s->pfd, &st) == 0 && st.st_ino == s->sino && s->sino != 0)
		(void)standin_retag(s->pfd, s->kfd, s->tagflags);
	errno = saved;
}

void
session_move_kfd(struct session *s, int kfd)
{
	s->kfd = kfd;
	s->tagflags |= 0x10;    /* force the retag below */
	session_tag(s, 0);
	s->tagflags &= ~0x10u;
}

static bool rx_ready(struct session *s);

/* shutdown(SHUT_RD) sets it without rx_lock (it must never wait for a
 * blocked reader): read atomically. */
static inline bool
rd_shut(const struct session *s)
{
	return __atomic_load_n(&s->rd_shut, __ATOMIC_RELAXED);
}

static void
sunlock(pthread_mutex_t *m)
{
	TSAN_RELEASE(m);
	pthread_mutex_unlock(m);
}

/*
 * Take a session lock.  A robust mutex whose owner died (a process killed
 * mid-call) cannot be trusted to guard consistent state: the session fails.
 */
static void
slock(struct session *s, pthread_mutex_t *m)
{
	int r = pthread_mutex_lock(m);

	TSAN_ACQUIRE(m);
	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		if (m != &s->hold_lock)
			session_fail(s, ECONNRESET,
			    "a process died while using the connection");
	}
}

/* Try a session lock: 0 when taken. */
static int
stry(struct session *s, pthread_mutex_t *m)
{
	int r = pthread_mutex_trylock(m);

	if (r == 0 || r == EOWNERDEAD)
		TSAN_ACQUIRE(m);

	if (r == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		if (m != &s->hold_lock)
			session_fail(s, ECONNRESET,
			    "a process died while using the connection");
		r = 0;
	}
	return r;
}

void
session_sandbox(void)
{
	session_sandboxed = true;
}

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

	if (session_sandboxed)
		return true;
	si.si_pid = 0;
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == pid)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * Holder entries.  An entry with a pid and nfds 0 is a tombstone: that
 * process held S and let it go (closed its fds, exec'ed).  It stays so
 * that the parent's registration of a new child (session_hold_child),
 * which races with the child, never brings back an entry the child has
 * already dropped; tombstones are reused when room is needed.
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

	slock(s, &s->hold_lock);
	slot = holder_slot(s, getpid(), delta > 0);
	if (slot >= 0)
		holder_set(s, slot, s->holders[slot].nfds + delta);
	sunlock(&s->hold_lock);
	errno = saved;
}

void
session_hold_pid(struct session *s, pid_t pid, int nfds)
{
	int saved = errno;

	slock(s, &s->hold_lock);
	holder_set(s, holder_slot(s, pid, nfds > 0), nfds);
	sunlock(&s->hold_lock);
	errno = saved;
}

void
session_hold_child(struct session *s, pid_t pid, int nfds)
{
	int i, saved = errno;

	slock(s, &s->hold_lock);
	for (i = 0; i < SESSION_HOLDERS; i++)
		if (s->holders[i].pid == pid)
			break;
	/* An entry (even a tombstone) means the child got there first. */
	if (i == SESSION_HOLDERS)
		holder_set(s, holder_slot(s, pid, nfds > 0), nfds);
	sunlock(&s->hold_lock);
	errno = saved;
}

void
session_forked(struct session *s)
{
	s->forked = true;
	if (__atomic_load_n(&s->hs_counted, __ATOMIC_RELAXED))
		__atomic_add_fetch(&hs_inflight, 1, __ATOMIC_RELAXED);
	session_hold_pid(s, getpid(), __atomic_load_n(&s->nfds,
	    __ATOMIC_ACQUIRE));
}

/*
 * Is any other live process still holding S?  Drops this process's entry
 * first when LEAVING (it holds no fd any more).
 */
static bool
others_hold(struct session *s, bool leaving)
{
	pid_t me = getpid();
	bool others = false;
	int i, saved = errno;

	/* A child forked a moment ago may not have registered yet. */
	if (__atomic_load_n(&s->fork_pending, __ATOMIC_ACQUIRE) > 0)
		others = true;
	slock(s, &s->hold_lock);
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
	sunlock(&s->hold_lock);
	errno = saved;
	return others;
}

/*
 * Caller holds the lock(s) of the side that noticed.  Logs once; RESULT and
 * WHY are kept for the connection's end line.
 */
static void
session_fail_as(struct session *s, int result, int err, const char *why)
{
	if (session_state(s) == SESSION_DEAD)
		return;
	s->err = err;
	s->end_result = result;
	/* The program already had the reset from a write: not pending. */
	if (__atomic_load_n(&s->rst_told, __ATOMIC_RELAXED))
		__atomic_store_n(&s->err_reported, true, __ATOMIC_RELAXED);
	snprintf(s->why, sizeof(s->why), "%s", why);
	__atomic_store_n(&s->state, SESSION_DEAD, __ATOMIC_RELEASE);
	hs_uncount(s);
	LOG(LOG_WARN, "connection %s %s (rule %s:%d) failed: %s",
	    s->initiator ? "to" : "from", s->peer, s->rule->file,
	    s->rule->line, why);
}

static void
session_fail(struct session *s, int err, const char *why)
{
	session_fail_as(s, SESSION_END_FAILED, err, why);
}

/* The buffers are part of the session's mapping. */
static int
rbuf_alloc(struct session *s)
{
	(void)s;
	return 0;
}

static int
tbuf_alloc(struct session *s)
{
	(void)s;
	return 0;
}

/*
 * Buffer pages after a burst.  The buffers' pages are touched only as data
 * flows, and a burst (a large response, a bulk copy) would leave up to half
 * a megabyte resident for as long as the connection lives.  So a buffer
 * that was filled beyond SESSION_TRIM_MIN gives its pages back to the
 * kernel (MADV_REMOVE: the mapping is shared memory, and the buffer's lock
 * is held by whichever process does it) when it is empty again and the
 * stream has paused: for rbuf, the last pull from the kernel did not fill
 * it (the kernel had nothing more); for tbuf, the queue was written out.
 * At most once every SESSION_TRIM_MS per buffer, so a steady stream pays a
 * few dozen page faults a few times a second, and a connection carrying
 * small messages never makes the call.  A burst that ends within
 * SESSION_TRIM_MS of the previous trim keeps its pages until the next
 * read, write or close.
 */

static void
buf_trim(uint8_t *buf, size_t len, size_t *hiwat, uint64_t *last)
{
	uintptr_t lo, hi;
	uint64_t now;
	int saved;

	if (*hiwat <= SESSION_TRIM_MIN || session_sandboxed)
		return;
	now = now_ms();
	if (now - *last < SESSION_TRIM_MS)
		return;
	/* Whole pages only: the neighbours' bytes share the end pages. */
	lo = PAGE_UP((uintptr_t)buf);
	hi = PAGE_UP((uintptr_t)buf + *hiwat);
	if (hi > PAGE_DOWN((uintptr_t)buf + len))
		hi = PAGE_DOWN((uintptr_t)buf + len);
	if (hi > lo) {
		saved = errno;
		(void)madvise((void *)lo, hi - lo, MADV_REMOVE);
		errno = saved;
	}
	*hiwat = 0;
	*last = now;
}

/*
 * What a failed session reports, as TCP does after a reset: readable and
 * writable (the next call fails at once), hung up, POLLRDHUP if asked, and
 * POLLERR while its error is pending: not yet returned by a call or
 * SO_ERROR (TCP's sk_err).
 */
static short
dead_events(const struct session *s, short want)
{
	short ev = (short)(want & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM |
	    POLLRDHUP)) | POLLHUP;

	if (!__atomic_load_n(&s->err_reported, __ATOMIC_RELAXED))
		ev |= POLLERR;
	return ev;
}

/*
 * An open session whose pull took a kernel error (the peer's reset) while
 * data was still to be read: TCP's socket says POLLERR (and the rest of a
 * reset) until the error is returned; the kernel's does not any more, the
 * pull consumed it.
 */
static short
kerr_events(const struct session *s, short want)
{
	if (__atomic_load_n(&s->kerr, __ATOMIC_RELAXED) == 0 ||
	    __atomic_load_n(&s->err_reported, __ATOMIC_RELAXED))
		return 0;
	return (short)(want & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM |
	    POLLRDHUP)) | POLLHUP | POLLERR;
}

/* A call of ours took the kernel's error E, the program not told. */
static void
rx_kerr(struct session *s, int e)
{
	int none = 0;

	if (e != EAGAIN && e != EINTR && e != 0 &&
	    !__atomic_load_n(&s->rst_told, __ATOMIC_RELAXED))
		(void)__atomic_compare_exchange_n(&s->kerr, &none, e, false,
		    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * Everything before the reset that an earlier call of ours took from the
 * kernel (kerr) is read: now the reset itself, as TCP's read returns its
 * sk_err once the queue is empty.
 */
static ssize_t
rx_kerr_fail(struct session *s)
{
	int e = s->kerr;

	session_fail(s, e, strerror(e));
	return -e;
}

/* A call returned R: once a failed session's error is returned, it is no
 * longer pending (SO_ERROR 0, no POLLERR), as TCP's sk_err. */
static ssize_t
told(struct session *s, ssize_t r)
{
	if (r < 0 && r != -EAGAIN && r != -EINTR && r != -EOPNOTSUPP &&
	    session_state(s) == SESSION_DEAD)
		__atomic_store_n(&s->err_reported, true, __ATOMIC_RELAXED);
	return r;
}

/*
 * Endings (docs/endings.md).  Our end-of-stream mark is data to TCP, where
 * TCP's end is a FIN: a peer that has closed answers the mark with a
 * reset, where a FIN draws none.  So a reset after our mark is TCP's clean end when it is the
 * mark's alone:
 *   - the peer ended its stream with its own mark (one closing with unread
 *     data resets without it, as TCP does), and
 *   - it had acknowledged every byte we sent before our mark (bytes that
 *     arrived after its close draw TCP's reset too; the peer's kernel
 *     answers them with the reset, never an acknowledgement).
 * Then the kernel's pending error is taken (SO_ERROR) and never shown: no
 * POLLERR, SO_ERROR 0, reads end at 0, as after TCP's exchange of FINs.
 * Looks only when the kernel reports an error on a session that sent its
 * mark; the locks are tried, never waited for (then: not now).
 */
static bool rx_mark_seen(struct session *s, int fd);

static bool
end_was_clean(struct session *s, int fd)
{
	struct tcpstate ts;
	uint64_t need = 0;
	bool ok = false;
	socklen_t len = sizeof(int);
	int e, saved;

	if (__atomic_load_n(&s->kclean, __ATOMIC_ACQUIRE))
		return true;
	if (session_state(s) != SESSION_OPEN || session_sandboxed ||
	    !__atomic_load_n(&s->tx_shut, __ATOMIC_RELAXED))
		return false;
	if (stry(s, &s->tx_lock) == 0) {
		ok = s->toff == s->tend;
		need = s->mark_at;
		sunlock(&s->tx_lock);
	}
	if (!ok || stry(s, &s->rx_lock) != 0)
		return false;
	ok = rx_mark_seen(s, fd) && s->kerr == 0;
	sunlock(&s->rx_lock);
	if (!ok || tcpstate_get(fd, &ts) < 0 || ts.state != TCPSTATE_CLOSE ||
	    ts.acked < need)
		return false;
	saved = errno;
	(void)real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
	errno = saved;
	__atomic_store_n(&s->kclean, true, __ATOMIC_RELEASE);
	LOG(LOG_DEBUG, "fd %d: the peer's reset answered our end-of-stream "
	    "mark: a clean end", fd);
	return true;
}

/*
 * A pull from the kernel put N more bytes of ciphertext at rend, into SPACE
 * bytes of room.  What every pull records: epoll hears of new data
 * (rx_gen), and whether the kernel may hold more (rx_more, the pull filled
 * the room).
 */
static void
rx_pulled(struct session *s, size_t n, size_t space)
{
	s->rend += n;
	if (s->rend > s->rx_hiwat)
		s->rx_hiwat = s->rend;
	__atomic_add_fetch(&s->rx_gen, 1, __ATOMIC_RELAXED);
	s->rx_more = n == space;
}

/* After a read (rx_lock held): an emptied, paused buffer gives back its pages. */
static void
rx_trim(struct session *s)
{
	if (s->rstart != s->rend || s->ptlen != 0 || s->rx_more)
		return;
	s->rstart = s->rend = 0;
	buf_trim(s->rbuf, SESSION_RBUF, &s->rx_hiwat, &s->rx_trimmed);
}

/* Make room for at least one whole record after rend. */
static void
rbuf_compact(struct session *s)
{
	if (s->rstart == s->rend) {
		s->rstart = s->rend = 0;
		return;
	}
	if (SESSION_RBUF - s->rend >= RECORD_MAXWIRE)
		return;
	memmove(s->rbuf, s->rbuf + s->rstart, s->rend - s->rstart);
	s->rend -= s->rstart;
	s->rstart = 0;
}

/* Wait for EVENTS on FD until DEADLINE (ms).  0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		r = real_poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Write the queued ciphertext.  FLAGS go to send() (0: write()).  With
 * DEADLINE non-zero, waits for writability until then.  Returns 0 when the
 * queue is empty, -EAGAIN, -EINTR or the socket's error.
 */
static int
tx_flush(struct session *s, int fd, int flags, uint64_t deadline)
{
	ssize_t n;
	int r;

	if (s->tend > s->tx_hiwat)
		s->tx_hiwat = s->tend;
	while (s->toff < s->tend) {
		/* In a sandbox only write() may be allowed. */
		if (flags != 0 && !session_sandboxed)
			n = real_send(fd, s->tbuf + s->toff, s->tend - s->toff,
			    flags);
		else
			n = real_write(fd, s->tbuf + s->toff, s->tend - s->toff);
		if (n > 0) {
			s->toff += (size_t)n;
			s->wire_out += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EAGAIN && deadline != 0) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
				return r;
			continue;
		}
		return -errno;
	}
	s->toff = s->tend = 0;
	buf_trim(s->tbuf, SESSION_TBUF, &s->tx_hiwat, &s->tx_trimmed);
	if (s->shut_pending) {
		/* The FIN must follow our last record, never overtake it. */
		s->shut_pending = false;
		(void)real_shutdown(fd, SHUT_WR);
	}
	return 0;
}

/*
 * Handshake input: have at least NEED bytes in the receive buffer.
 * 0, -EAGAIN, -ETIMEDOUT, -ECONNRESET (peer closed) or -errno.
 */
static int
hs_fill(struct session *s, int fd, size_t need, bool may_block)
{
	ssize_t n;
	int r;

	session_tag(s, STANDIN_USED);
	while (s->rend - s->rstart < need) {
		n = real_recv(fd, s->rbuf + s->rend, SESSION_RBUF - s->rend,
		    MSG_DONTWAIT);
		if (n > 0) {
			/* Records may follow message 2 in the same pull. */
			rx_pulled(s, (size_t)n, SESSION_RBUF - s->rend);
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (now_ms() >= s->hs_deadline)
			return -ETIMEDOUT;
		if (!may_block)
			return -EAGAIN;
		if ((r = wait_fd(fd, POLLIN, s->hs_deadline)) < 0)
			return r;
	}
	return 0;
}

static void
preface_make(uint8_t p[PREFACE_LEN], int suite)
{
	p[0] = 'S'; p[1] = 'K'; p[2] = 'S'; p[3] = 'L';
	p[4] = 1; p[5] = (uint8_t)suite; p[6] = 0; p[7] = 0;
}

static bool
suite_accepted(const struct policy_rule *rule, int suite)
{
	if (suite != NOISE_CHACHAPOLY && suite != NOISE_AESGCM)
		return false;
	if (rule->cipher != POLICY_CIPHER_DEFAULT && (int)rule->cipher != suite)
		return false;
	return noise_suite_available(suite);
}

/* Initiator: queue preface + message 1. */
static int
hs_send1(struct session *s)
{
	const struct policy_rule *rule = s->rule;
	uint8_t *p;
	size_t mlen;
	int r;

	s->suite = rule->cipher == POLICY_CIPHER_AESGCM ? NOISE_AESGCM :
	    NOISE_CHACHAPOLY;
	s->hs = &s->hs_store;
	p = s->tbuf;
	preface_make(p, s->suite);
	r = noise_hs_init(s->hs, s->suite, true, p, PREFACE_LEN,
	    rule->keys[0]->key);
	if (r < 0)
		return r;
	if ((r = noise_hs_write1(s->hs, NULL, 0, p + PREFACE_LEN + 2, &mlen)) < 0)
		return r;
	p[PREFACE_LEN] = (uint8_t)(mlen >> 8);
	p[PREFACE_LEN + 1] = (uint8_t)mlen;
	s->toff = 0;
	s->tend = PREFACE_LEN + 2 + mlen;
	return 0;
}

/* Initiator: message 2 is buffered; check it and split. */
static int
hs_recv2(struct session *s, const char **why)
{
	uint8_t *m = s->rbuf + s->rstart;
	uint8_t payload[1];
	size_t plen;

	if (((size_t)m[0] << 8 | m[1]) != HS_MSGLEN) {
		*why = "bad handshake message 2 length";
		return -EBADMSG;
	}
	if (noise_hs_read2(s->hs, m + 2, HS_MSGLEN, payload, &plen) < 0 ||
	    plen != 0) {
		*why = "handshake message 2 failed authentication";
		return -EBADMSG;
	}
	s->rstart += HS_MSG2_WIRE;
	noise_hs_split(s->hs, &s->tx, &s->rx);
	return 0;
}

/* Responder: check the preface (the first 8 bytes are buffered). */
static int
hs_preface(struct session *s, const char **why)
{
	const uint8_t *p = s->rbuf + s->rstart;

	if (memcmp(p, "SKSL", 4) != 0) {
		*why = "no sockseal preface (plaintext or foreign client)";
		return -EPROTO;
	}
	if (p[4] != 1) {
		*why = "unsupported protocol version";
		return -EPROTO;
	}
	if (p[6] != 0 || p[7] != 0) {
		*why = "bad preface";
		return -EPROTO;
	}
	if (!suite_accepted(s->rule, p[5])) {
		*why = "cipher suite not accepted by the rule";
		return -EPROTO;
	}
	s->suite = p[5];
	return 0;
}

/*
 * Responder: message 1 is buffered after the preface; find the key by trial
 * decryption, queue message 2 and split.
 */
static int
hs_recv1(struct session *s, const char **why)
{
	const struct policy_rule *rule = s->rule;
	uint8_t *p = s->rbuf + s->rstart;
	uint8_t payload[1], *out;
	size_t plen, mlen;
	int i;

	if (((size_t)p[PREFACE_LEN] << 8 | p[PREFACE_LEN + 1]) != HS_MSGLEN) {
		*why = "bad handshake message 1 length";
		return -EBADMSG;
	}
	s->hs = &s->hs_store;
	for (i = 0; i < rule->nkeys; i++) {
		if (noise_hs_init(s->hs, s->suite, false, p, PREFACE_LEN,
		    rule->keys[i]->key) < 0) {
			*why = "cipher suite unavailable";
			return -EBADMSG;
		}
		if (noise_hs_read1(s->hs, p + PREFACE_LEN + 2, HS_MSGLEN,
		    payload, &plen) == 0 && plen == 0)
			break;
		noise_hs_wipe(s->hs);
	}
	if (i == rule->nkeys) {
		*why = "handshake message 1 failed authentication (wrong key?)";
		return -EBADMSG;
	}
	s->rstart += HS_MSG1_WIRE;
	out = s->tbuf;
	if (noise_hs_write2(s->hs, NULL, 0, out + 2, &mlen) < 0) {
		*why = "cannot write handshake message 2";
		return -EBADMSG;
	}
	out[0] = (uint8_t)(mlen >> 8);
	out[1] = (uint8_t)mlen;
	s->toff = 0;
	s->tend = 2 + mlen;
	noise_hs_split(s->hs, &s->tx, &s->rx);
	LOG(LOG_DEBUG, "peer %s used key %s", s->peer, rule->keys[i]->name);
	return 0;
}

static void
hs_done(struct session *s)
{
	size_t off, chunk;

	noise_hs_wipe(s->hs);
	s->hs = NULL;
	/* Bytes the program wrote during the handshake go first. */
	for (off = 0; off < s->early_len; off += chunk) {
		chunk = s->early_len - off;
		if (chunk > RECORD_MAXPT)
			chunk = RECORD_MAXPT;
		s->tend += record_seal(&s->tx, s->early + off, chunk,
		    s->tbuf + s->tend);
	}
	if (s->early_len > 0) {
		sodium_memzero(s->early, s->early_len);
		s->early_len = 0;
	}
	s->was_open = true;
	__atomic_store_n(&s->state, SESSION_OPEN, __ATOMIC_RELEASE);
	hs_uncount(s);
	LOG(LOG_INFO, "sealed connection %s %s (rule %s:%d, %s)",
	    s->initiator ? "to" : "from", s->peer, s->rule->file,
	    s->rule->line, s->suite == NOISE_AESGCM ? "aesgcm" : "chachapoly");
}

/*
 * Permissive accept rule: is the client speaking sockseal?  Peeks (never
 * reads) its first bytes.  1: the preface is there, 0: plaintext (or it
 * sent nothing before the deadline, or closed), -EAGAIN, -errno.
 */
static int
hs_peek_preface(struct session *s, int fd, bool may_block)
{
	/* Any version: a sealed client we cannot serve is refused, never
	 * handed to the program as plaintext. */
	static const uint8_t magic[4] = { 'S', 'K', 'S', 'L' };
	uint8_t b[PREFACE_LEN];
	ssize_t n;
	int r;

	for (;;) {
		n = real_recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n > 0) {
			if (memcmp(b, magic, (size_t)n < sizeof(magic) ?
			    (size_t)n : sizeof(magic)) != 0)
				return 0;
			if ((size_t)n >= sizeof(magic))
				return 1;
		} else if (errno == EINTR) {
			continue;
		} else if (errno != EAGAIN) {
			return -errno;
		}
		if (now_ms() >= s->hs_deadline)
			return 0;
		if (!may_block)
			return -EAGAIN;
		if (n > 0) {
			/* A partial preface: readable already, so pause. */
			(void)real_poll(NULL, 0, 10);
			continue;
		}
		if ((r = wait_fd(fd, POLLIN, s->hs_deadline)) < 0 &&
		    r != -ETIMEDOUT)
			return r;
	}
}

/* Permissive and plaintext: hand the connection back to the program. */
static void
hs_plain(struct session *s)
{
	/* What the program wrote meanwhile goes out first, as it is. */
	if (s->early_len > 0) {
		memcpy(s->tbuf, s->early, s->early_len);
		s->toff = 0;
		s->tend = s->early_len;
		s->early_len = 0;
	}
	__atomic_store_n(&s->state, SESSION_PLAIN, __ATOMIC_RELEASE);
	hs_uncount(s);
	session_tag(s, STANDIN_PLAIN);
	LOG(LOG_INFO, "plaintext connection from %s accepted (rule %s:%d is "
	    "permissive)", s->peer, s->rule->file, s->rule->line);
}

void
session_adopt_as(struct session *s, unsigned int flags)
{
	s->tagflags = flags;
	if (flags & STANDIN_PLAIN) {
		__atomic_store_n(&s->state, SESSION_PLAIN, __ATOMIC_RELEASE);
		hs_uncount(s);
	} else if (flags & STANDIN_USED) {
		/* Failed at its first use, not now: an exec'd image that
		 * only inherits it (a bystander) must leave it alone. */
		s->adopt_used = true;
	}
}

/* One pass of the machine; both locks held. */
static int
hs_run(struct session *s, int fd, bool may_block)
{
	const char *why = NULL;
	uint64_t dl = may_block ? s->hs_deadline : 0;
	int r, result = SESSION_END_FAILED;

	if ((r = rbuf_alloc(s)) < 0 || (r = tbuf_alloc(s)) < 0)
		return r;
	if (s->adopt_used && session_state(s) < SESSION_OPEN) {
		session_fail(s, ECONNRESET, "its handshake or sealed bytes "
		    "began before exec; the new image cannot continue it");
		return -ECONNRESET;
	}
	if (session_state(s) < SESSION_OPEN && now_ms() >= s->hs_deadline &&
	    !(session_state(s) == SESSION_HS_WAIT1 &&
	    s->rule->mode == POLICY_PERMISSIVE && s->rend == s->rstart)) {
		r = -ETIMEDOUT;
		goto io_fail;
	}
	for (;;) {
		switch (session_state(s)) {
		case SESSION_HS_SEND1:
			if ((r = hs_send1(s)) < 0) {
				why = "cannot start handshake";
				goto fail;
			}
			__atomic_store_n(&s->state, SESSION_HS_WAIT2,
			    __ATOMIC_RELEASE);
			break;
		case SESSION_HS_WAIT2:
			r = tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, dl);
			if (r == 0)
				r = hs_fill(s, fd, HS_MSG2_WIRE, may_block);
			if (r == -EAGAIN || r == -EINTR)
				return r;
			if (r < 0)
				goto io_fail;
			if ((r = hs_recv2(s, &why)) < 0)
				goto fail;
			hs_done(s);
			return 0;
		case SESSION_HS_WAIT1:
			if (s->rule->mode == POLICY_PERMISSIVE && s->rend == s->rstart) {
				r = hs_peek_preface(s, fd, may_block);
				if (r == 0) {
					hs_plain(s);
					return 0;
				}
				if (r == -EAGAIN || r == -EINTR)
					return r;
				if (r < 0)
					goto io_fail;
			}
			r = hs_fill(s, fd, PREFACE_LEN, may_block);
			if (r == 0) {
				if ((r = hs_preface(s, &why)) < 0) {
					result = SESSION_END_REFUSED;
					goto fail;
				}
				r = hs_fill(s, fd, HS_MSG1_WIRE, may_block);
			}
			if (r == -EAGAIN || r == -EINTR)
				return r;
			if (r < 0)
				goto io_fail;
			if ((r = hs_recv1(s, &why)) < 0)
				goto fail;
			hs_done(s);
			/* Message 2 is queued; send it now if we can. */
			r = tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, dl);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				why = "cannot send handshake message 2";
				goto fail;
			}
			return 0;
		case SESSION_OPEN:
		case SESSION_PLAIN:
			return 0;
		default:
			return -s->err;
		}
	}

io_fail:
	switch (r) {
	case -ETIMEDOUT:
		why = "handshake timed out";
		result = SESSION_END_TIMEOUT;
		break;
	case -ECONNRESET:
		why = "peer closed the connection during the handshake";
		break;
	default:
		why = strerror(-r);
		break;
	}
fail:
	session_fail_as(s, result, ECONNRESET, why ? why : strerror(-r));
	return -ECONNRESET;
}

int
session_handshake(struct session *s, int fd, bool may_block)
{
	int r;

	fd = sfd(s, fd);
	if (session_state(s) == SESSION_OPEN || session_state(s) == SESSION_PLAIN)
		return 0;
	slock(s, &s->rx_lock);
	slock(s, &s->tx_lock);
	r = hs_run(s, fd, may_block);
	sunlock(&s->tx_lock);
	sunlock(&s->rx_lock);
	return r;
}

/*
 * The same, for readiness paths (poll, epoll) that must never wait for a
 * lock a blocked reader or writer holds: -EAGAIN if the session is busy.
 */
static int
session_handshake_try(struct session *s, int fd)
{
	int r;

	if (session_state(s) == SESSION_OPEN)
		return 0;
	if (stry(s, &s->rx_lock) != 0)
		return -EAGAIN;
	if (stry(s, &s->tx_lock) != 0) {
		sunlock(&s->rx_lock);
		return -EAGAIN;
	}
	r = hs_run(s, fd, false);
	sunlock(&s->tx_lock);
	sunlock(&s->rx_lock);
	return r;
}

/* Drive the handshake from a data call with the program's FLAGS. */
static int
hs_from_call(struct session *s, int fd, int flags)
{
	int st = session_state(s);
	bool may_block;

	if (st == SESSION_OPEN || st == SESSION_PLAIN || st == SESSION_DEAD) {
		/* Another process (after fork) may have ended it. */
		hs_uncount(s);
		return st == SESSION_DEAD ? -s->err : 0;
	}
	may_block = !(flags & MSG_DONTWAIT) && session_fd_blocking(fd);
	return session_handshake(s, fd, may_block);
}

/* Copy LEN bytes from SRC into IOV starting at byte OFF of the iovec. */
static void
iov_put(const struct iovec *iov, int iovcnt, size_t off, const uint8_t *src,
    size_t len)
{
	int i;
	size_t c;

	for (i = 0; i < iovcnt && len > 0; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		c = iov[i].iov_len - off;
		if (c > len)
			c = len;
		memcpy((uint8_t *)iov[i].iov_base + off, src, c);
		src += c;
		len -= c;
		off = 0;
	}
}

static size_t
iov_total(const struct iovec *iov, int iovcnt)
{
	size_t t = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

/*
 * Open the next whole record if one is buffered.  1: opened (s->pt/ptlen
 * set, rx_eof for the mark), 0: need more bytes, <0: the session failed.
 * When DST is not NULL and the record's plaintext fits in ROOM bytes, the
 * record is decrypted straight into DST (the program's buffer: one pass
 * over the data instead of two) and *delivered is its length; otherwise in
 * place, and *delivered is 0.
 */
static int
rx_open_next(struct session *s, uint8_t *dst, size_t room, size_t *delivered)
{
	uint8_t *rec = s->rbuf + s->rstart;
	size_t wl;
	ssize_t n;
	int r;

	*delivered = 0;
	r = record_peek(rec, s->rend - s->rstart, &wl);
	if (r == 0)
		return 0;
	if (r < 0) {
		session_fail(s, ECONNRESET, "bad record length");
		return -ECONNRESET;
	}
	if (dst == NULL || wl - RECORD_WIRELEN(0) > room)
		dst = rec + RECORD_HDRLEN;
	if ((n = record_open_into(&s->rx, rec, wl, dst)) < 0) {
		session_fail(s, ECONNRESET,
		    "record failed authentication (tampered, replayed or reordered)");
		return -ECONNRESET;
	}
	s->rstart += wl;
	if (n == 0)
		s->rx_eof = true;
	else if (dst == rec + RECORD_HDRLEN) {
		s->pt = dst;
		s->ptlen = (size_t)n;
	} else
		*delivered = (size_t)n;
	return 1;
}

/* The contiguous part of IOV at byte OFF: its address and *room. */
static uint8_t *
iov_at(const struct iovec *iov, int iovcnt, size_t off, size_t *room)
{
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (off < iov[i].iov_len) {
			*room = iov[i].iov_len - off;
			return (uint8_t *)iov[i].iov_base + off;
		}
		off -= iov[i].iov_len;
	}
	*room = 0;
	return NULL;
}

/*
 * MSG_PEEK: open the next whole record in place and append its plaintext
 * to the unread plaintext, so that the peeked bytes stay contiguous (the
 * first record's tag and the next one's header are the gap it closes).
 * Returns rx_open_next's result.
 */
static int
rx_peek_append(struct session *s)
{
	uint8_t *pt = s->pt;
	size_t ptlen = s->ptlen, c;
	int r;

	if (ptlen == 0)
		return rx_open_next(s, NULL, 0, &c);
	if ((r = rx_open_next(s, NULL, 0, &c)) <= 0 || s->rx_eof) {
		s->pt = pt;
		s->ptlen = ptlen;
		return r;
	}
	memmove(pt + ptlen, s->pt, s->ptlen);
	s->pt = pt;
	s->ptlen = ptlen + s->ptlen;
	return r;
}

/* Make room after rend, moving the unread plaintext along (MSG_PEEK). */
static void
rbuf_compact_keep(struct session *s)
{
	size_t base;

	if (s->ptlen == 0) {
		rbuf_compact(s);
		return;
	}
	if (SESSION_RBUF - s->rend >= RECORD_MAXWIRE)
		return;
	base = (size_t)(s->pt - s->rbuf);
	memmove(s->rbuf, s->pt, s->rend - base);
	s->pt = s->rbuf;
	s->rstart -= base;
	s->rend -= base;
}

/*
 * MSG_PEEK (rx_lock held): all that is there up to the iovec's size, as
 * TCP's peek returns, not one record's worth: the whole records behind the
 * unread plaintext are opened and appended to it, and what the kernel holds
 * is taken without waiting (waiting, per the socket, only when nothing is
 * there at all).  Nothing is consumed.
 */
static ssize_t
rx_peek_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t want = iov_total(iov, iovcnt), have, space;
	int kflags = rd_shut(s) ? MSG_DONTWAIT : flags & MSG_DONTWAIT;
	bool drained = false;
	ssize_t n;
	int r;

	for (;;) {
		while (s->ptlen < want && !s->rx_eof) {
			if ((r = rx_peek_append(s)) < 0) {
				if (s->ptlen > 0)
					goto out;
				return r;
			}
			if (r == 0)
				break;
		}
		have = s->ptlen;
		if (have >= want || s->rx_eof ||
		    (have > 0 && (drained || session_sandboxed)))
			goto out;
		/* Our handshake message 2 may still be queued (see rx_locked). */
		if (stry(s, &s->tx_lock) == 0) {
			r = s->toff < s->tend ?
			    tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0) : 0;
			sunlock(&s->tx_lock);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				session_fail(s, -r, strerror(-r));
				return r;
			}
		}
		rbuf_compact_keep(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			goto out;
		if (have > 0)
			n = real_recv(fd, s->rbuf + s->rend, space, MSG_DONTWAIT);
		else if (kflags)
			n = real_recv(fd, s->rbuf + s->rend, space, kflags);
		else
			n = real_read(fd, s->rbuf + s->rend, space);
		if (n > 0) {
			rx_pulled(s, (size_t)n, space);
			drained = !s->rx_more;
			continue;
		}
		/* An end without the mark: the read that comes to it fails. */
		if (n == 0) {
			if (have > 0)
				goto out;
			if (s->kerr != 0)
				return rx_kerr_fail(s);
			if (rd_shut(s))
				goto out;
			session_fail(s, ECONNRESET,
			    "connection ended without end-of-stream mark (truncated)");
			return -ECONNRESET;
		}
		r = -errno;
		if (have > 0)
			rx_kerr(s, -r);
		if (have > 0 || (rd_shut(s) && r == -EAGAIN))
			goto out;
		if (r != -EAGAIN && r != -EINTR)
			session_fail(s, -r, strerror(-r));
		return r;
	}
out:
	have = s->ptlen < want ? s->ptlen : want;
	iov_put(iov, iovcnt, 0, s->pt, have);
	return (ssize_t)have;
}

static ssize_t
rx_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t want = iov_total(iov, iovcnt), total = 0, c, space, room = 0;
	int kflags = flags & MSG_DONTWAIT;
	uint8_t *dst;
	bool drained = false, topup;
	ssize_t n;
	int r;

	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	if (want == 0)
		return 0;
	if ((r = rbuf_alloc(s)) < 0)
		return r;
	if (flags & MSG_PEEK)
		return rx_peek_locked(s, fd, iov, iovcnt, flags);
	/*
	 * After shutdown(SHUT_RD) TCP still returns what is queued and what
	 * arrives later, and 0, without waiting, when nothing is there.  The
	 * kernel socket is not shut for reading (session_shutdown): look at
	 * it without waiting.
	 */
	if (rd_shut(s))
		kflags = MSG_DONTWAIT;
	for (;;) {
		/* Deliver what is buffered, opening whole records in place. */
		while (total < want) {
			if (s->ptlen > 0) {
				c = s->ptlen < want - total ? s->ptlen : want - total;
				iov_put(iov, iovcnt, total, s->pt, c);
				total += c;
				s->pt += c;
				s->ptlen -= c;
				s->bytes_in += c;
				continue;
			}
			if (s->rx_eof)
				break;
			dst = iov_at(iov, iovcnt, total, &room);
			if ((r = rx_open_next(s, dst, room, &c)) < 0)
				return total > 0 ? (ssize_t)total : r;
			if (r == 0)
				break;
			total += c;
			s->bytes_in += c;
		}
		if (total == want || s->rx_eof) {
			/*
			 * The buffer ran dry exactly at the end of the read
			 * while the kernel may hold more (the last pull filled
			 * the buffer): refill now, without waiting, so what the
			 * kernel holds is never stranded behind an edge that
			 * already passed (rx_gen tells epoll it is new).
			 */
			if (total == want && s->rx_more && !rx_ready(s) &&
			    !session_sandboxed) {
				rbuf_compact(s);
				space = SESSION_RBUF - s->rend;
				n = real_recv(fd, s->rbuf + s->rend, space,
				    MSG_DONTWAIT);
				if (n > 0) {
					rx_pulled(s, (size_t)n, space);
				} else {
					s->rx_more = false;
				}
			}
			return (ssize_t)total;
		}
		/*
		 * A short read must mean what it means on TCP, that nothing
		 * more is there (edge-triggered programs such as nginx then
		 * wait for the next edge): before returning one, take what
		 * the kernel holds, without waiting.  Only a pull made by
		 * this very read that did not fill the buffer (drained) says
		 * the kernel is empty now.  An earlier pull says nothing
		 * about data that arrived after it: skipping the look when
		 * the poll path had made the last pull returned A
		 * alone while the kernel already held B, which TCP's read
		 * would have returned with it (tests/helpers/ready_diff.c
		 * found it: a peer write after an epoll_wait that reported
		 * buffered data, then a large read).  So the look costs one
		 * recv() that fails with EAGAIN when nothing came, as the
		 * program's own next read would on TCP.
		 */
		topup = total > 0 && !(flags & MSG_WAITALL);
		if (topup && (drained || session_sandboxed))
			return (ssize_t)total;

		/*
		 * Our handshake message 2 may still be queued (the kernel took
		 * none of it): a program that only reads must still send it.
		 */
		if (stry(s, &s->tx_lock) == 0) {
			r = s->toff < s->tend ?
			    tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0) : 0;
			sunlock(&s->tx_lock);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				session_fail(s, -r, strerror(-r));
				return r;
			}
		}

		/* Need more ciphertext from the kernel. */
		rbuf_compact(s);
		space = SESSION_RBUF - s->rend;
		if (topup)
			n = real_recv(fd, s->rbuf + s->rend, space, MSG_DONTWAIT);
		else if (kflags)
			n = real_recv(fd, s->rbuf + s->rend, space, kflags);
		else
			n = real_read(fd, s->rbuf + s->rend, space);
		if (n > 0) {
			rx_pulled(s, (size_t)n, space);
			drained = !s->rx_more;
			continue;
		}
		if (n == 0) {
			if (s->kerr != 0 && total == 0)
				return rx_kerr_fail(s);
			if (rd_shut(s))
				return (ssize_t)total;
			session_fail(s, ECONNRESET,
			    "connection ended without end-of-stream mark (truncated)");
			return total > 0 ? (ssize_t)total : -ECONNRESET;
		}
		r = -errno;
		if (total > 0)
			rx_kerr(s, -r);
		if (total > 0 || (rd_shut(s) && r == -EAGAIN))
			return (ssize_t)total;
		if (r != -EAGAIN && r != -EINTR)
			session_fail(s, -r, strerror(-r));
		return r;
	}
}

/* A PLAIN session's read: the kernel's, as it is (counted, no lock). */
static ssize_t
plain_recv(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	n = flags ? real_recvmsg(fd, &m, flags) : real_readv(fd, iov, iovcnt);
	if (n < 0)
		return -errno;
	if (!(flags & MSG_PEEK))
		__atomic_add_fetch(&s->bytes_in, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

ssize_t
session_recv(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	ssize_t r;

	fd = sfd(s, fd);
	if (flags & (MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC)) {
		LOG(LOG_WARN, "recv flags 0x%x unsupported on a sealed socket",
		    flags);
		return -EOPNOTSUPP;
	}
	if ((r = hs_from_call(s, fd, flags)) < 0)
		return told(s, r);
	if (session_state(s) == SESSION_PLAIN)
		return plain_recv(s, fd, iov, iovcnt, flags);
	slock(s, &s->rx_lock);
	r = told(s, rx_locked(s, fd, iov, iovcnt, flags));
	rx_trim(s);
	LOG(LOG_DEBUG, "fd %d: read %zu -> %zd (left %zu plain, %zu sealed)",
	    fd, iov_total(iov, iovcnt), r, s->ptlen, s->rend - s->rstart);
	sunlock(&s->rx_lock);
	return r;
}

/*
 * Seal up to one batch of the program's bytes, starting at byte OFF of IOV,
 * into the (empty) transmit queue.  Returns the plaintext bytes sealed.
 */
static size_t
tx_seal_batch(struct session *s, const struct iovec *iov, int iovcnt,
    size_t off, size_t len)
{
	size_t sealed = 0, chunk, c, o;
	uint8_t *dst;
	int i, nrec = 0;

	/* Find the iovec holding byte OFF. */
	for (i = 0; i < iovcnt && off >= iov[i].iov_len; i++)
		off -= iov[i].iov_len;
	while (sealed < len && nrec < SESSION_TBATCH) {
		chunk = len - sealed < RECORD_MAXPT ? len - sealed : RECORD_MAXPT;
		dst = s->tbuf + s->tend;
		if (i < iovcnt && iov[i].iov_len - off >= chunk) {
			/* Contiguous: encrypt straight from the program's buffer. */
			s->tend += record_seal(&s->tx,
			    (const uint8_t *)iov[i].iov_base + off, chunk, dst);
			off += chunk;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		} else {
			/* Gather into place, then encrypt in place. */
			for (o = 0; o < chunk; ) {
				c = iov[i].iov_len - off;
				if (c > chunk - o)
					c = chunk - o;
				memcpy(dst + RECORD_HDRLEN + o,
				    (const uint8_t *)iov[i].iov_base + off, c);
				o += c;
				off += c;
				if (off == iov[i].iov_len) {
					i++;
					off = 0;
				}
			}
			s->tend += record_seal(&s->tx, dst + RECORD_HDRLEN, chunk,
			    dst);
		}
		sealed += chunk;
		nrec++;
	}
	return sealed;
}

/*
 * The kernel refused our records (tx_lock held).  EPIPE or ECONNRESET: the
 * peer reset the connection.  TCP's reads still return what had arrived
 * before the reset, so the session does not die with it: the send side is
 * shut (nothing more is sent, later writes fail with EPIPE), and the
 * receive side ends by itself when it comes to the kernel's end (the
 * peer's mark: 0; none: ECONNRESET).  Killing the session threw away
 * authenticated data the program had not read yet (found by ready_diff).
 * Any other error fails the session.
 */
static void
tx_broken(struct session *s, int r)
{
	if (r != -EPIPE && r != -ECONNRESET) {
		session_fail(s, -r, strerror(-r));
		return;
	}
	LOG(LOG_INFO, "connection %s %s: write failed (%s): nothing more is "
	    "sent", s->initiator ? "to" : "from", s->peer, strerror(-r));
	s->tx_shut = true;
	s->toff = s->tend;
}

/*
 * A write after our end (shutdown, or a write that failed): TCP returns the
 * socket's pending error first (the peer's reset, sk_err), then EPIPE with
 * SIGPIPE.  The pending error is ours if a call of ours took it (kerr),
 * else the kernel's: an empty send() returns it as TCP's write would.
 */
static ssize_t
tx_after_shut(struct session *s, int fd, int flags)
{
	int e = EPIPE;

	if (s->kerr != 0 &&
	    !__atomic_exchange_n(&s->err_reported, true, __ATOMIC_RELAXED)) {
		e = s->kerr;
	} else if (!session_sandboxed &&
	    real_send(fd, "", 0, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN) {
		e = errno;
		if (e == ECONNRESET)
			__atomic_store_n(&s->rst_told, true, __ATOMIC_RELAXED);
	}
	if (e == EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return -e;
}

static ssize_t
tx_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t len = iov_total(iov, iovcnt), total = 0, batch;
	int kflags = flags & (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
	int r;

	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	if (s->tx_shut)
		return tx_after_shut(s, fd, flags);
	if ((r = tbuf_alloc(s)) < 0)
		return r;
	/* Whatever an earlier call left queued goes first. */
	if ((r = tx_flush(s, fd, kflags, 0)) < 0)
		goto err;
	while (total < len) {
		batch = tx_seal_batch(s, iov, iovcnt, total, len - total);
		total += batch;
		s->bytes_out += batch;
		r = tx_flush(s, fd, kflags, 0);
		if (r < 0) {
			/* The batch is sealed and queued: it counts as sent. */
			if (r == -EAGAIN || r == -EINTR)
				return (ssize_t)total;
			/*
			 * Not on an error: the batch is not sent, so only
			 * the batches before it were (a write into a reset
			 * connection is EPIPE, as on TCP, not a success for
			 * bytes that went nowhere).
			 */
			total -= batch;
			s->bytes_out -= batch;
			goto err;
		}
	}
	return (ssize_t)total;
err:
	if (r == -EAGAIN || r == -EINTR)
		return total > 0 ? (ssize_t)total : r;
	/* The reset our pull took is what the first failing call returns,
	 * as TCP's sk_err; the kernel, its error taken, says EPIPE. */
	if (r == -EPIPE && s->kerr != 0 &&
	    !__atomic_exchange_n(&s->err_reported, true, __ATOMIC_RELAXED))
		r = -s->kerr;
	else if (r == -ECONNRESET || r == -EPIPE)
		__atomic_store_n(&s->rst_told, true, __ATOMIC_RELAXED);
	tx_broken(s, r);
	return total > 0 ? (ssize_t)total : r;
}

/* A PLAIN session's write (tx_lock held): what was queued, then this. */
static ssize_t
plain_send(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t n;
	int r;

	if ((r = tx_flush(s, fd, flags & (MSG_DONTWAIT | MSG_NOSIGNAL), 0)) < 0)
		return r;
	n = flags ? real_sendmsg(fd, &m, flags) : real_writev(fd, iov, iovcnt);
	if (n < 0)
		return -errno;
	s->bytes_out += (uint64_t)n;
	return n;
}

/*
 * A non-blocking write during the handshake: keep up to SESSION_EARLY bytes
 * of plaintext until the keys exist (hs_done seals them first).
 */
static ssize_t
tx_early(struct session *s, const struct iovec *iov, int iovcnt)
{
	size_t room, c, total = 0;
	ssize_t r;
	int i;

	slock(s, &s->tx_lock);
	if (session_state(s) == SESSION_OPEN) {
		/* It finished meanwhile: the caller should just retry. */
		r = -EAGAIN;
		goto out;
	}
	for (i = 0; i < iovcnt; i++) {
		room = SESSION_EARLY - s->early_len;
		c = iov[i].iov_len < room ? iov[i].iov_len : room;
		memcpy(s->early + s->early_len, iov[i].iov_base, c);
		s->early_len += c;
		total += c;
		if (c < iov[i].iov_len)
			break;
	}
	r = total > 0 ? (ssize_t)total : -EAGAIN;
	if (total > 0)
		s->bytes_out += total;
out:
	sunlock(&s->tx_lock);
	return r;
}

ssize_t
session_send(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	ssize_t r;

	fd = sfd(s, fd);
	if (flags & MSG_OOB) {
		LOG(LOG_WARN, "MSG_OOB unsupported on a sealed socket");
		return -EOPNOTSUPP;
	}
	if ((r = hs_from_call(s, fd, flags)) < 0) {
		if (r == -EAGAIN)
			r = tx_early(s, iov, iovcnt);
		return told(s, r);
	}
	slock(s, &s->tx_lock);
	if (session_state(s) == SESSION_PLAIN)
		r = plain_send(s, fd, iov, iovcnt, flags);
	else
		r = told(s, tx_locked(s, fd, iov, iovcnt, flags));
	LOG(LOG_DEBUG, "fd %d: write %zu -> %zd (queued %zu)", fd,
	    iov_total(iov, iovcnt), r, s->tend - s->toff);
	sunlock(&s->tx_lock);
	return r;
}

/* Queue and flush the end-of-stream mark; tx_lock held. */
static int
tx_eof(struct session *s, int fd, uint64_t deadline)
{
	int r;

	if (s->tx_shut || session_state(s) != SESSION_OPEN)
		return 0;
	if ((r = tbuf_alloc(s)) < 0)
		return r;
	s->mark_at = s->wire_out + (s->tend - s->toff);
	s->tend += record_seal(&s->tx, NULL, 0, s->tbuf + s->tend);
	__atomic_store_n(&s->tx_shut, true, __ATOMIC_RELAXED);
	r = tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, deadline);
	if (r < 0 && r != -EAGAIN && r != -EINTR && r != -ETIMEDOUT) {
		/* TCP's FIN would have left the reset pending: so do we. */
		if (r == -ECONNRESET || r == -EPIPE)
			rx_kerr(s, -r);
		tx_broken(s, r);
	}
	return r;
}

/*
 * What TCP's shutdown(SHUT_RD) returns, ours staying in the shim: ENOTCONN
 * once the kernel's socket is closed (a reset, or both ends done), else 0.
 */
static int
shut_rd_answer(struct session *s, int fd)
{
	struct tcpstate ts;

	if (__atomic_load_n(&s->kerr, __ATOMIC_RELAXED) != 0)
		return -ENOTCONN;
	if (session_sandboxed || tcpstate_get(fd, &ts) < 0)
		return 0;
	return ts.state == TCPSTATE_CLOSE ? -ENOTCONN : 0;
}

int
session_shutdown(struct session *s, int fd, int how, bool waited)
{
	bool queued = false, marked = false, wake = false;
	int r;

	fd = sfd(s, fd);
	if (session_state(s) == SESSION_PLAIN)
		return real_shutdown(fd, how) < 0 ? -errno : 0;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	/* After a reset TCP's socket is closed: ENOTCONN, and the waits on
	 * it are woken all the same (st_gen: see below). */
	if (session_state(s) == SESSION_DEAD) {
		__atomic_add_fetch(&s->st_gen, 1, __ATOMIC_RELAXED);
		return -ENOTCONN;
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		/* The mark needs keys: finish the handshake first (bounded). */
		if (session_state(s) < SESSION_OPEN)
			(void)session_handshake(s, fd, true);
		slock(s, &s->tx_lock);
		marked = !s->tx_shut && session_state(s) == SESSION_OPEN;
		r = tx_eof(s, fd, session_fd_blocking(fd) ?
		    now_ms() + s->rule->timeout_ms : 0);
		/* sent now, so the connection stood until our mark */
		marked = marked && r == 0;
		if (s->toff < s->tend && session_state(s) == SESSION_OPEN) {
			/* Still queued (non-blocking, or the peer is slow): the
			 * kernel's FIN waits for the queue to drain. */
			s->shut_pending = true;
			queued = true;
		}
		sunlock(&s->tx_lock);
		if (r < 0 && r != -EAGAIN)
			LOG(LOG_INFO, "end-of-stream to %s not sent yet: %s",
			    s->peer, strerror(-r));
	}
	/*
	 * Never waits for rx_lock: a reader blocked in the kernel holds it,
	 * and shutdown() from another thread is how programs wake one.  A
	 * thread that may be blocked in the kernel on it (a reader holding
	 * rx_lock, a poll or an epoll wait) is woken as TCP's SHUT_RD wakes
	 * it, by the kernel's (see below).
	 */
	if (how == SHUT_RD || how == SHUT_RDWR) {
		__atomic_store_n(&s->rd_shut, true, __ATOMIC_RELAXED);
		wake = waited ||
		    __atomic_load_n(&s->pollers, __ATOMIC_RELAXED) > 0;
		if (!wake && stry(s, &s->rx_lock) == 0)
			sunlock(&s->rx_lock);
		else
			wake = true;
	}
	/* TCP's shutdown wakes every wait on the socket (inet_shutdown's
	 * state change), so an edge-triggered registration reports what is
	 * true now: so do ours (st_gen is their edge). */
	__atomic_add_fetch(&s->st_gen, 1, __ATOMIC_RELAXED);
	/*
	 * SHUT_RD stays in the shim: a kernel socket shut for reading answers
	 * the peer's end-of-stream mark (data, to TCP) with a reset that
	 * destroys our unsent records.  Reads behave as TCP's all the same:
	 * what is there, then 0 without waiting (rx_locked).  Except when a
	 * thread waits in the kernel now: only the kernel's SHUT_RD wakes it
	 * (docs/endings.md has the price).
	 */
	if (wake)
		(void)real_shutdown(fd, SHUT_RD);
	if (how == SHUT_RD)
		return shut_rd_answer(s, fd);
	if (queued)
		return 0;
	if (real_shutdown(fd, SHUT_WR) == 0)
		return 0;
	/*
	 * Our mark is data to TCP: a peer that has closed answers it with a
	 * reset, which on loopback is in before our FIN (ENOTCONN).  TCP's
	 * shutdown sends a FIN, which draws no reset, and succeeds: so does
	 * ours (ready_diff: peer close, then our SHUT_WR).
	 */
	if (errno == ENOTCONN && marked)
		return 0;
	return -errno;
}

static const char *
session_suite_name(const struct session *s)
{
	if (session_state(s) == SESSION_PLAIN)
		return "plain";
	if (s->suite == NOISE_AESGCM)
		return "aesgcm";
	return s->suite == NOISE_CHACHAPOLY ? "chachapoly" : "none";
}

/*
 * The connection's one end line (info): peer, rule, suite, result and why,
 * bytes each way, duration.  HOW says what ended it in this process
 * ("closed", "process exited").  Written once whichever process or path
 * gets here first (logged_end is in the shared part).
 */
static void
session_log_end(struct session *s, const char *how)
{
	static const char *const results[] = { "ok", "failed", "refused",
	    "timeout" };
	char rule[320], reason[128];
	const char *result, *suite = session_suite_name(s);
	unsigned long long ms = now_ms() - s->t_start;
	int st = session_state(s);

	if (log_level < LOG_INFO ||
	    __atomic_exchange_n(&s->logged_end, true, __ATOMIC_ACQ_REL))
		return;
	if (st == SESSION_DEAD) {
		result = results[s->end_result & 3];
		snprintf(reason, sizeof(reason), "%s", s->why);
	} else if (st < SESSION_OPEN) {
		result = results[SESSION_END_FAILED];
		snprintf(reason, sizeof(reason), "%s during the handshake", how);
	} else {
		result = results[SESSION_END_OK];
		snprintf(reason, sizeof(reason), "%s%s", how, st == SESSION_PLAIN ?
		    "; plaintext client, permissive rule" : "");
	}
	snprintf(rule, sizeof(rule), "%s:%d", s->rule->file, s->rule->line);
	{
		const struct log_kv kv[] = {
			{ "event", "conn_end", 0 },
			{ "dir", policy_dir_name(s->rule->dir), 0 },
			{ "peer", s->peer, 0 },
			{ "rule", rule, 0 },
			{ "suite", suite, 0 },
			{ "result", result, 0 },
			{ "reason", reason, 0 },
			{ "bytes_in", NULL, s->bytes_in },
			{ "bytes_out", NULL, s->bytes_out },
			{ "ms", NULL, ms },
		};

		LOG_KV(LOG_INFO, kv, (int)(sizeof(kv) / sizeof(kv[0])),
		    "closed connection %s %s (rule %s, %s): %llu bytes in, "
		    "%llu bytes out, %llu ms, %s (%s)",
		    s->initiator ? "to" : "from", s->peer, rule, suite,
		    (unsigned long long)s->bytes_in,
		    (unsigned long long)s->bytes_out, ms, result, reason);
	}
}

static void
arm_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/*
 * The socket is about to be closed.  The peer's end-of-stream mark is data
 * to TCP, and a socket closed with unread data, or receiving data after
 * close, answers with a reset that throws away whatever we still had
 * queued for the peer.  So until the peer's mark has been seen: discard
 * what has arrived, and wait (bounded by DEADLINE) until the kernel has
 * delivered everything we sent, discarding arrivals meanwhile.  Once our
 * queue is empty a late reset can no longer lose data.
 */
static void
close_linger(struct session *s, int fd, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char scratch[4096];
	ssize_t n;
	int outq, i;

	if (s->rx_eof)
		return;
	for (;;) {
		for (i = 0; i < 256; i++) {
			n = real_recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
			if (n == 0)
				return;         /* the peer closed: no reset to fear */
			if (n < 0)
				break;
		}
		if (ioctl(fd, SIOCOUTQ, &outq) < 0 || outq == 0 ||
		    now_ms() >= deadline)
			return;
		(void)real_poll(&p, 1, 5);
	}
}

/*
 * The program closes (or exits) with stream data it has not read: TCP
 * answers that with a reset, not a FIN, and the peer's reads end in
 * ECONNRESET after what was in flight, its writes fail.  So must we:
 * sending our end-of-stream mark and discarding the data (close_linger)
 * made it a clean end on the peer's side.  Pulls what the kernel holds,
 * without waiting, and opens whole records: the peer's end-of-stream mark
 * alone is not data, half a record is.  rx_lock held.
 */
static bool
rx_unread(struct session *s, int fd)
{
	size_t space, c;
	ssize_t n;
	int r;

	for (;;) {
		if (s->ptlen > 0)
			return true;
		if (s->rx_eof)
			return false;
		if ((r = rx_open_next(s, NULL, 0, &c)) < 0)
			return false;   /* the session failed: it resets anyway */
		if (r > 0)
			continue;
		if (session_sandboxed)
			return s->rstart != s->rend;
		rbuf_compact(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			return true;
		n = real_recv(fd, s->rbuf + s->rend, space, MSG_DONTWAIT);
		if (n <= 0)
			return s->rstart != s->rend;
		rx_pulled(s, (size_t)n, space);
	}
}

/* rx_unread, if the receive lock is free (a reader thread may hold it). */
static bool
closes_unread(struct session *s, int fd)
{
	bool r = false;

	if (session_state(s) == SESSION_OPEN && stry(s, &s->rx_lock) == 0) {
		r = rx_unread(s, fd);
		sunlock(&s->rx_lock);
	}
	if (r) {
		LOG(LOG_INFO, "connection %s %s closed with data unread: reset, "
		    "as TCP does", s->initiator ? "to" : "from", s->peer);
		arm_reset(fd);
	}
	return r;
}

void
session_close_last(struct session *s, int fd)
{
	int saved = errno;

	fd = sfd(s, fd);
	if (others_hold(s, true)) {
		/* Another process carries the stream on (fork). */
		LOG(LOG_DEBUG, "connection %s %s left to another process",
		    s->initiator ? "to" : "from", s->peer);
		errno = saved;
		return;
	}
	if (closes_unread(s, fd)) {
		session_log_end(s, "closed with data unread (reset)");
		errno = saved;
		return;
	}
	if (session_state(s) == SESSION_OPEN) {
		slock(s, &s->tx_lock);
		if (!s->tx_shut)
			(void)tx_eof(s, fd, now_ms() + CLOSE_WAIT_MS);
		else if (s->toff < s->tend)
			(void)tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT,
			    now_ms() + CLOSE_WAIT_MS);
		sunlock(&s->tx_lock);
		if (stry(s, &s->rx_lock) == 0) {
			close_linger(s, fd, now_ms() + CLOSE_WAIT_MS);
			sunlock(&s->rx_lock);
		}
	}
	if (session_state(s) == SESSION_DEAD)
		arm_reset(fd);
	session_log_end(s, "closed");
	errno = saved;
}

void
session_exit(struct session *s, int fd)
{
	const char *how = "process exited";
	struct stat st;
	int saved = errno;

	fd = sfd(s, fd);
	/*
	 * Only the last live process holding the connection ends it: a
	 * forked child exiting must not speak on its parent's connection.
	 */
	if (others_hold(s, true))
		goto out;
	if (session_state(s) != SESSION_OPEN)
		goto end;
	/* The fd may have been closed behind our back and reused. */
	if (fstat(fd, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino) {
		how = HOW_UNSEEN;
		goto end;
	}
	if (closes_unread(s, fd)) {
		how = "process exited with data unread (reset)";
		goto end;
	}
	if (stry(s, &s->tx_lock) != 0)
		goto end;
	if (!s->tx_shut)
		(void)tx_eof(s, fd, now_ms() + CLOSE_WAIT_MS);
	else if (s->toff < s->tend)
		(void)tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT,
		    now_ms() + CLOSE_WAIT_MS);
	sunlock(&s->tx_lock);
	if (stry(s, &s->rx_lock) == 0) {
		close_linger(s, fd, now_ms() + CLOSE_WAIT_MS);
		sunlock(&s->rx_lock);
	}
end:
	session_log_end(s, how);
out:
	errno = saved;
}

void
session_forgotten(struct session *s)
{
	int saved = errno;

	if (!others_hold(s, true))
		session_log_end(s, HOW_UNSEEN);
	errno = saved;
}

int
session_so_error(struct session *s, int fd)
{
	int e = 0;

	fd = sfd(s, fd);
	/* The kernel's error, if it is our mark's reset, is taken here. */
	(void)end_was_clean(s, fd);

	if (session_state(s) == SESSION_DEAD && !s->err_reported) {
		s->err_reported = true;
		e = s->initiator && !s->was_open ? ECONNREFUSED : s->err;
	} else if (session_state(s) == SESSION_OPEN && s->kerr != 0 &&
	    !s->err_reported) {
		/* The peer's reset, taken by our pull: pending as on TCP. */
		s->err_reported = true;
		e = s->kerr;
	}
	return e;
}

/* Is a whole empty record (only the mark can be one; a forgery fails on
 * the read) buffered behind unread data?  rx_lock held. */
static bool
rx_mark_buffered(struct session *s)
{
	size_t off, wl;

	if (s->rbuf == NULL)
		return false;
	for (off = s->rstart; off < s->rend; off += wl) {
		if (record_peek(s->rbuf + off, s->rend - off, &wl) <= 0)
			return false;
		if (wl == RECORD_WIRELEN(0))
			return true;
	}
	return false;
}

/*
 * Has the peer ended its stream?  True once the end-of-stream mark was
 * opened, or when a whole empty record (which can only be the mark; a
 * forgery fails on the read) is buffered behind unread data.  rx_lock held.
 */
static bool
rx_hup(struct session *s)
{
	/* As TCP's RCV_SHUTDOWN: the peer's end, or our own SHUT_RD. */
	return s->rx_eof || rd_shut(s) || rx_mark_buffered(s);
}

/*
 * Has the peer's end-of-stream mark come (rx_lock held)?  Takes what the
 * kernel still holds first, without waiting: after a reset its queue is
 * still there to read, the mark in it.  A pull's error is kept (kerr): the
 * kernel gave it to us, not to the program.
 */
static bool
rx_mark_seen(struct session *s, int fd)
{
	size_t space;
	ssize_t got;

	while (!s->rx_eof) {
		rbuf_compact_keep(s);
		if ((space = SESSION_RBUF - s->rend) == 0)
			break;
		got = real_recv(fd, s->rbuf + s->rend, space, MSG_DONTWAIT);
		if (got <= 0) {
			if (got < 0)
				rx_kerr(s, errno);
			break;
		}
		rx_pulled(s, (size_t)got, space);
	}
	return s->rx_eof || rx_mark_buffered(s);
}

/* Is a whole record (or plaintext, or the end) waiting?  rx_lock held. */
static bool
rx_ready(struct session *s)
{
	size_t wl;

	if (s->ptlen > 0 || s->rx_eof || rd_shut(s))
		return true;
	return s->rbuf != NULL &&
	    record_peek(s->rbuf + s->rstart, s->rend - s->rstart, &wl) != 0;
}

/*
 * POLLHUP for both directions shut by the program: SHUT_RD stays in the
 * shim (see session_shutdown), so the kernel cannot say it; TCP does
 * (RCV_SHUTDOWN and SEND_SHUTDOWN).  Read without locks: two flags that
 * only ever go from false to true.
 */
static short
both_shut(const struct session *s)
{
	return rd_shut(s) &&
	    __atomic_load_n(&s->tx_shut, __ATOMIC_RELAXED) ? POLLHUP : 0;
}

short
session_poll_prep(struct session *s, short want, short *kev)
{
	short ready = 0, rd = want & (POLLIN | POLLRDNORM);
	short wr = want & (POLLOUT | POLLWRNORM);
	int st = session_state(s);

	*kev = want & ~(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
	if (st == SESSION_PLAIN) {
		*kev = want;
		if (stry(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				*kev |= POLLOUT;
			sunlock(&s->tx_lock);
		}
		return 0;
	}
	if (st == SESSION_DEAD)
		return dead_events(s, want);
	if (st != SESSION_OPEN) {
		/* Watch for what the handshake needs, not what was asked. */
		*kev |= st == SESSION_HS_SEND1 ? POLLOUT : POLLIN;
		if (stry(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				*kev |= POLLOUT;
			sunlock(&s->tx_lock);
		}
		return 0;
	}
	if (rd || (want & POLLRDHUP)) {
		if (stry(s, &s->rx_lock) == 0) {
			if (rd && rx_ready(s))
				ready |= rd;
			else
				*kev |= rd;
			if ((want & POLLRDHUP) && rx_hup(s))
				ready |= POLLRDHUP;
			sunlock(&s->rx_lock);
		} else {
			*kev |= rd;
		}
	}
	if (stry(s, &s->tx_lock) == 0) {
		/* Queued ciphertext goes out when the kernel can take it,
		 * whatever the program is waiting for. */
		*kev |= s->toff < s->tend ? POLLOUT : wr;
		sunlock(&s->tx_lock);
	} else {
		*kev |= wr;
	}
	return ready | both_shut(s) | kerr_events(s, want);
}

short
session_poll_after(struct session *s, int fd, short want, short krev)
{
	short rd = want & (POLLIN | POLLRDNORM);
	short wr = want & (POLLOUT | POLLWRNORM);
	short out = krev & ~(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
	short kev;
	ssize_t n;
	int r;

	fd = sfd(s, fd);
	if (session_state(s) == SESSION_PLAIN) {
		if ((krev & POLLOUT) && stry(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				(void)tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0);
			if (s->toff < s->tend)
				krev &= ~(POLLOUT | POLLWRNORM);
			sunlock(&s->tx_lock);
		}
		return krev & (want | POLLERR | POLLHUP | POLLNVAL);
	}
	if (session_state(s) != SESSION_OPEN && session_state(s) != SESSION_DEAD) {
		if (krev == 0 && now_ms() < s->hs_deadline)
			return 0;
		r = session_handshake_try(s, fd);
		if (r == -EAGAIN || r == -EINTR)
			return 0;
		if (r < 0)
			return dead_events(s, want);
		/* Open now: report what is true without asking the kernel. */
		out = session_poll_prep(s, want, &kev);
		if (wr && stry(s, &s->tx_lock) == 0) {
			if (s->toff >= s->tend)
				out |= wr;
			sunlock(&s->tx_lock);
		}
		return out;
	}
	if (session_state(s) == SESSION_DEAD)
		return dead_events(s, want);
	if ((krev & POLLERR) && end_was_clean(s, fd)) {
		krev &= (short)~POLLERR;
		out &= (short)~POLLERR;
	}

	if (rd && (krev & (POLLIN | POLLRDNORM | POLLHUP | POLLERR))) {
		if (stry(s, &s->rx_lock) == 0) {
			if (!rx_ready(s) && rbuf_alloc(s) == 0) {
				rbuf_compact(s);
				/* The kernel said readable; in a sandbox
				 * read() is what the filter allows. */
				if (session_sandboxed)
					n = real_read(fd, s->rbuf + s->rend,
					    SESSION_RBUF - s->rend);
				else
					n = real_recv(fd, s->rbuf + s->rend,
					    SESSION_RBUF - s->rend, MSG_DONTWAIT);
				if (n > 0)
					rx_pulled(s, (size_t)n, SESSION_RBUF -
					    s->rend);
				/* 0 or an error: the next read reports it. */
				if (n < 0)
					rx_kerr(s, errno);
				if (n <= 0 && !(n < 0 && errno == EAGAIN))
					out |= rd;
			} else {
				/* The kernel's edge is taken here without a
				 * pull: the next short read must look. */
				s->rx_more = true;
			}
			if (rx_ready(s))
				out |= rd;
			if ((want & POLLRDHUP) && rx_hup(s))
				out |= POLLRDHUP;
			sunlock(&s->rx_lock);
		} else {
			out |= krev & rd;
		}
	} else if ((rd || (want & POLLRDHUP)) && stry(s, &s->rx_lock) == 0) {
		/* Woken for something else (writability, our shutdown): TCP
		 * reports all that is true, buffered plaintext included. */
		if (rd && rx_ready(s))
			out |= rd;
		if ((want & POLLRDHUP) && rx_hup(s))
			out |= POLLRDHUP;
		sunlock(&s->rx_lock);
	}
	if (krev & (POLLOUT | POLLWRNORM)) {
		if (stry(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend && s->tbuf != NULL) {
				r = tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0);
				if (r < 0 && r != -EAGAIN && r != -EINTR) {
					if (r == -ECONNRESET || r == -EPIPE)
						rx_kerr(s, -r);
					tx_broken(s, r);
				}
			}
			if (s->toff >= s->tend)
				out |= wr;
			sunlock(&s->tx_lock);
		} else {
			out |= krev & wr;
		}
	}
	if (session_state(s) == SESSION_DEAD)
		out |= dead_events(s, want);
	return out | both_shut(s) | kerr_events(s, want);
}

/*
 * All that is true of S now, as TCP's wake-up reports it: what the session
 * knows, and what the kernel's socket says (room to write, a hang-up, a
 * reset).  For an edge the session's own news made.  One poll(), and no
 * pull: taking the kernel's data here would hide it from the other
 * registrations of the socket, which the kernel reports in the same wait
 * (an edge for that data comes with them).  None in a sandbox (its filter
 * may not allow it: then the session's view alone, the kernel's own edges
 * bringing the rest).
 */
short
session_poll_now(struct session *s, int fd, short want)
{
	struct pollfd p;
	short ready, kev = 0, out;
	bool queued = true;
	int saved;

	fd = sfd(s, fd);
	ready = session_poll_prep(s, want, &kev);
	if (session_sandboxed || session_state(s) != SESSION_OPEN)
		return ready;
	p.fd = fd;
	p.events = (short)(want & (POLLOUT | POLLWRNORM | POLLRDHUP));
	saved = errno;
	if (real_poll(&p, 1, 0) != 1)
		p.revents = 0;
	errno = saved;
	if ((p.revents & POLLERR) && end_was_clean(s, fd))
		p.revents &= (short)~POLLERR;
	/* The kernel's RDHUP: the peer's FIN (after its mark) or reset is
	 * in, as TCP's RDHUP says, pulled or not. */
	out = ready | (p.revents & (POLLERR | POLLHUP)) |
	    (p.revents & want & POLLRDHUP);
	if (p.revents & (POLLOUT | POLLWRNORM)) {
		if (stry(s, &s->tx_lock) == 0) {
			queued = s->toff < s->tend;
			sunlock(&s->tx_lock);
		}
		if (!queued)
			out |= p.revents & (POLLOUT | POLLWRNORM);
	}
	return out;
}

int
session_inq(struct session *s, int fd)
{
	size_t off, wl, n, space;
	ssize_t got;
	int r;

	fd = sfd(s, fd);
	/* TCP's FIONREAD fails only on a listener: after a reset it is 0. */
	if (session_state(s) == SESSION_DEAD)
		return 0;
	if (session_state(s) == SESSION_PLAIN)
		return real_ioctl(fd, FIONREAD, &r) < 0 ? -errno : r;
	slock(s, &s->rx_lock);
	/*
	 * Programs read exactly what FIONREAD says and then wait for the
	 * next edge (nginx), and some treat more than they expect as the
	 * start of the next request: the count must be exact.  Pull what the
	 * kernel holds first, without waiting; if the buffer fills, what is
	 * left behind is refilled when the program drains the buffer, and
	 * epoll reports it as new data (rx_gen).
	 */
	for (;;) {
		/*
		 * Make room, moving unread plaintext along: left where it
		 * was, a read that took most of a record pinned the buffer
		 * and records behind went uncounted (ready_diff).
		 */
		rbuf_compact_keep(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			break;
		if (session_sandboxed || session_state(s) != SESSION_OPEN)
			break;
		got = real_recv(fd, s->rbuf + s->rend, space, MSG_DONTWAIT);
		if (got <= 0) {
			if (got < 0)
				rx_kerr(s, errno);
			s->rx_more = false;
			break;
		}
		rx_pulled(s, (size_t)got, space);
		if (!s->rx_more)
			break;
	}
	n = s->ptlen;
	if (session_state(s) == SESSION_OPEN) {
		/* Whole records still sealed count by their plaintext length. */
		for (off = s->rstart; off < s->rend; off += wl) {
			r = record_peek(s->rbuf + off, s->rend - off, &wl);
			if (r <= 0)
				break;
			n += wl - RECORD_HDRLEN - RECORD_TAGLEN;
		}
	}
	sunlock(&s->rx_lock);
	return n > 0x7fffffff ? 0x7fffffff : (int)n;
}
