/*
 * session_state: the state object, the memory a session is (session.h,
 * "Memory and processes"), and how another image takes it over.
 *
 * A session is one mapping of a memfd, the state object: page 0 is each
 * process's own view (made private again at once), the rest is shared by
 * every process that maps it: keys and counters, locks, buffers, the
 * unread plaintext.  The shared part holds no pointers (offsets only), so
 * processes may map it at different addresses.  The memfd stays open on a
 * descriptor of the shim's own, the sfd, placed and hidden like a kfd
 * (standin.h) and inherited exactly when the kfd is.  That is what lets a
 * live session travel with its socket (docs/handoff.md):
 *   - across exec, the new image finds the kfd and the sfd among the
 *     shim's descriptors it inherited (carry.c) and maps the same object;
 *   - through SCM_RIGHTS, the sender adds both to the message in a parcel
 *     and the receiver maps the object (hook_passfd.c).
 * Either way it is the same session, not a copy: one tx nonce counter
 * under one lock, whoever writes, so no nonce is ever used twice.
 *
 * The memfd is sealed against shrinking (a holder cannot make the others'
 * mapping fault) and checked before it is trusted: size, magic, and the
 * socket it was made for (dev/ino) must be the kfd's.
 *
 * Where no memfd can be had (a sandbox that forbids it, no descriptors
 * left), the mapping is anonymous as before: the session survives fork,
 * and an exec'd image or a receiver that cannot map it fails closed.
 *
 * Mappings of ended sessions this process alone ever had (no fork, never
 * shared) are kept for the next connection, with their memfd: mapping and
 * unmapping half a megabyte per connection costs more than the handshake
 * on some machines.  A forked child drops its copy of the cache at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "init.h"
#include "real.h"
#include "session.h"
#include "session_int.h"
#include "standin.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC             0x0001U
#define MFD_ALLOW_SEALING       0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS             1033
#define F_SEAL_SEAL             0x0001
#define F_SEAL_SHRINK           0x0002
#define F_SEAL_GROW             0x0004
#endif

#define SESSION_CACHE 16

/* Round up to a multiple of A (a power of two). */
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct session *cache[SESSION_CACHE];
static int ncache;

size_t
ss_maplen(void)
{
	return ALIGN_UP(ALIGN_UP(sizeof(struct session), 64) + SESSION_RBUF +
	    SESSION_TBUF + SESSION_EARLY, SESSION_PRIVLEN);
}

/* This process's view of the mapping at S, of state object SFD. */
static void
view_init(struct session *s, int sfd)
{
	s->refs = 1;
	s->kfd = -1;
	s->pfd = -1;
	s->sfd = sfd;
	s->rbuf = (uint8_t *)s + ALIGN_UP(sizeof(struct session), 64);
	s->tbuf = s->rbuf + SESSION_RBUF;
	s->early = s->tbuf + SESSION_TBUF;
}

/* A new memfd of LEN bytes, sealed at that size, on a hidden descriptor
 * of the shim's (close-on-exec); -1 if none can be had. */
static int
state_create(size_t len)
{
	struct rlimit rl;
	int fd, sfd, saved = errno;

	if (shim_in_sandbox())
		return -1;
	/* Growing a memfd past RLIMIT_FSIZE raises SIGXFSZ, which kills a
	 * program that keeps its default action: anonymous memory then. */
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)len)
		return -1;
	fd = memfd_create("sockseal-session", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto fail;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    real_fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) < 0 || (sfd = standin_hide(fd, true)) < 0) {
		real_close(fd);
		goto fail;
	}
	real_close(fd);
	errno = saved;
	return sfd;
fail:
	errno = saved;
	return -1;
}

/* Map state object SFD (or anonymous memory: -1) with page 0 private. */
static void *
state_map(int sfd, size_t len)
{
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, sfd >= 0 ? MAP_SHARED :
	    MAP_SHARED | MAP_ANONYMOUS, sfd, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mmap(p, SESSION_PRIVLEN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

struct session *
ss_map(void)
{
	size_t len = ss_maplen();
	struct session *s = NULL;
	int sfd;

	pthread_mutex_lock(&cache_lock);
	if (ncache > 0)
		s = cache[--ncache];
	pthread_mutex_unlock(&cache_lock);
	if (s != NULL) {
		/* Keys and state are gone; buffers are overwritten before use. */
		sfd = s->sfd;
		memset(s, 0, sizeof(struct session));
		view_init(s, sfd);
		return s;
	}
	sfd = state_create(len);
	if ((s = state_map(sfd, len)) == NULL && sfd >= 0) {
		/* No memfd mapping: anonymous memory, which cannot travel. */
		standin_close(sfd);
		sfd = -1;
		s = state_map(-1, len);
	}
	if (s == NULL)
		return NULL;
	view_init(s, sfd);
	return s;
}

void
ss_unmap(struct session *s)
{
	size_t len = s->maplen;

	if (!s->forked) {
		/* A cached mapping keeps no pages a burst filled. */
		if ((s->rx_hiwat > SESSION_TRIM_MIN ||
		    s->tx_hiwat > SESSION_TRIM_MIN) && !shim_in_sandbox()) {
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
	standin_close(s->sfd);
	munmap(s, len);
}

void
session_cache_forked(void)
{
	/* In the child: these mappings are shared with the parent now. */
	while (ncache > 0) {
		ncache--;
		standin_close(cache[ncache]->sfd);
		munmap(cache[ncache], ss_maplen());
	}
	pthread_mutex_init(&cache_lock, NULL);
	ss_hs_forked();
}

int
session_sfd(const struct session *s)
{
	return s->sfd;
}

void
session_shared(struct session *s)
{
	s->forked = true;
}

void
session_sfd_lost(struct session *s)
{
	s->sfd = -1;
}

void
session_move_sfd(struct session *s, int sfd)
{
	s->sfd = sfd;
}

/* Is SFD a state object?  Its size and magic, without mapping it. */
static bool
state_looks_right(int sfd, struct stat *st)
{
	uint64_t magic = 0;

	return fstat(sfd, st) == 0 && S_ISREG(st->st_mode) &&
	    (size_t)st->st_size == ss_maplen() &&
	    pread(sfd, &magic, sizeof(magic), offsetof(struct session,
	    magic)) == (ssize_t)sizeof(magic) && magic == SESSION_MAGIC;
}

int
session_state_identity(int sfd, dev_t *dev, ino_t *ino)
{
	struct stat st;
	int saved = errno;

	if (!state_looks_right(sfd, &st) ||
	    pread(sfd, dev, sizeof(*dev), offsetof(struct session, dev)) !=
	    (ssize_t)sizeof(*dev) ||
	    pread(sfd, ino, sizeof(*ino), offsetof(struct session, ino)) !=
	    (ssize_t)sizeof(*ino)) {
		errno = saved;
		return -1;
	}
	errno = saved;
	return 0;
}

struct session *
session_attach(int sfd, int kfd, int pfd, unsigned int flags,
    const struct policy_rule *rule)
{
	size_t len = ss_maplen();
	struct session *s;
	struct stat st, kst;
	int saved = errno;

	if (!state_looks_right(sfd, &st) || fstat(kfd, &kst) < 0 ||
	    (s = state_map(sfd, len)) == NULL) {
		errno = saved;
		return NULL;
	}
	if (s->magic != SESSION_MAGIC || s->maplen != len ||
	    s->dev != kst.st_dev || s->ino != kst.st_ino) {
		munmap(s, len);
		errno = saved;
		return NULL;
	}
	view_init(s, sfd);
	s->rule = rule;
	s->stats_slot = stats_slot(rule);
	/* This image's policy judges the peer at its first data call. */
	ss_auth_stale(s);
	/* Others map it too: never cached, never recycled here. */
	s->forked = true;
	s->kfd = kfd;
	s->pfd = pfd;
	s->tagflags = flags;
	if (pfd >= 0 && fstat(pfd, &st) == 0)
		s->sino = st.st_ino;
	standin_mark(kfd, true);
	standin_mark(sfd, true);
	if (session_state(s) < SESSION_OPEN) {
		(void)ss_hs_count(s, false);
		/* Not begun (sshd's re-exec): its time starts here. */
		if (!(flags & STANDIN_USED))
			s->hs_deadline = now_ms() + rule->timeout_ms;
	}
	/* What this pid held before exec is now what this image holds. */
	session_hold_pid(s, getpid(), 0);
	errno = saved;
	return s;
}
