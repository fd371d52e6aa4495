/*
 * fdtab: see fdtab.h.
 *
 * The byte map covers fds below FDTAB_FASTMAX; it is an anonymous mapping
 * made on the first insert, so a process that never seals anything pays
 * nothing and pages are only touched for fds that were sealed.  Entries for
 * larger fds live in the hash alone and are announced by fdtab_nbig.  The
 * same map marks the shim's own descriptors (kfds, standin.h) with a
 * second bit, so the interposed calls of an fd the shim does not own look
 * at one byte for both questions.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uthash.h>

#include "session.h"
#include "fdtab.h"
#include "tsan.h"

#define FDTAB_FASTMAX (1 << 20)

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define TSAN_UNLOCKED(m) do { \
	__tsan_mutex_pre_unlock((m), 0); \
	__tsan_mutex_post_unlock((m), 0); \
} while (0)
#else
#define TSAN_UNLOCKED(m) do { } while (0)
#endif

struct fdent {
	int             fd;
	struct session *s;
	UT_hash_handle  hh;
};

static pthread_rwlock_t fdtab_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct fdent *fdtab_head;
static unsigned char *fdtab_map;     /* atomic: made once, never freed */

#define MAP_SEALED 1u                   /* in the table */
#define MAP_KFD    2u                   /* one of the shim's descriptors */

/* The byte map, made on first use; NULL if no memory. */
static unsigned char *
map_get(void)
{
	unsigned char *m = __atomic_load_n(&fdtab_map, __ATOMIC_ACQUIRE);
	void *p;

	if (m != NULL)
		return m;
	p = mmap(NULL, FDTAB_FASTMAX, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (!__atomic_compare_exchange_n(&fdtab_map, &m, p, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		munmap(p, FDTAB_FASTMAX);
		return m;
	}
	return p;
}
static int fdtab_nbig;               /* entries with fd >= FDTAB_FASTMAX */

/* The table's lock, told to ThreadSanitizer too (tsan.h). */
static void
tab_rdlock(void)
{
	pthread_rwlock_rdlock(&fdtab_lock);
	TSAN_ACQUIRE(&fdtab_lock);
}

static void
tab_wrlock(void)
{
	pthread_rwlock_wrlock(&fdtab_lock);
	TSAN_ACQUIRE(&fdtab_lock);
}

static void
tab_unlock(void)
{
	TSAN_RELEASE(&fdtab_lock);
	pthread_rwlock_unlock(&fdtab_lock);
}

bool
fdtab_maybe(int fd)
{
	unsigned char *map;

	if (fd < 0)
		return false;
	if (fd >= FDTAB_FASTMAX)
		return __atomic_load_n(&fdtab_nbig, __ATOMIC_ACQUIRE) > 0;
	map = __atomic_load_n(&fdtab_map, __ATOMIC_ACQUIRE);
	return map != NULL &&
	    (__atomic_load_n(&map[fd], __ATOMIC_ACQUIRE) & MAP_SEALED);
}

static void
fdtab_mark(int fd, unsigned char v)
{
	if (fd >= FDTAB_FASTMAX)
		__atomic_add_fetch(&fdtab_nbig, v ? 1 : -1, __ATOMIC_RELEASE);
	else if (v)
		__atomic_or_fetch(&fdtab_map[fd], MAP_SEALED, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&fdtab_map[fd], (unsigned char)~MAP_SEALED,
		    __ATOMIC_RELEASE);
}

bool
fdtab_is_kfd(int fd)
{
	unsigned char *map = __atomic_load_n(&fdtab_map, __ATOMIC_ACQUIRE);

	return fd >= 0 && fd < FDTAB_FASTMAX && map != NULL &&
	    (__atomic_load_n(&map[fd], __ATOMIC_ACQUIRE) & MAP_KFD);
}

int
fdtab_kfd_mark(int fd, bool on)
{
	unsigned char *map;

	if (fd < 0 || fd >= FDTAB_FASTMAX)
		return -EBADF;
	if ((map = on ? map_get() : __atomic_load_n(&fdtab_map,
	    __ATOMIC_ACQUIRE)) == NULL)
		return on ? -ENOMEM : 0;
	if (on)
		__atomic_or_fetch(&map[fd], MAP_KFD, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&map[fd], (unsigned char)~MAP_KFD,
		    __ATOMIC_RELEASE);
	return 0;
}

struct session *
fdtab_get(int fd)
{
	struct fdent *e;
	struct session *s = NULL;

	if (!fdtab_maybe(fd))
		return NULL;
	tab_rdlock();
	HASH_FIND_INT(fdtab_head, &fd, e);
	if (e != NULL) {
		s = e->s;
		session_ref(s);
	}
	tab_unlock();
	return s;
}

/* Remove FD's entry; caller holds the write lock.  Returns the entry. */
static struct fdent *
fdtab_unlink(int fd)
{
	struct fdent *e;

	HASH_FIND_INT(fdtab_head, &fd, e);
	if (e == NULL)
		return NULL;
	HASH_DEL(fdtab_head, e);
	fdtab_mark(fd, 0);
	return e;
}

int
fdtab_set(int fd, struct session *s)
{
	struct fdent *e, *old;

	if (fd < 0)
		return -EBADF;
	if ((e = malloc(sizeof(*e))) == NULL)
		return -ENOMEM;
	e->fd = fd;
	e->s = s;
	session_ref(s);

	if (map_get() == NULL) {
		session_put(s);
		free(e);
		return -ENOMEM;
	}
	tab_wrlock();
	old = fdtab_unlink(fd);
	(void)session_nfds_add(s, 1);
	HASH_ADD_INT(fdtab_head, fd, e);
	fdtab_mark(fd, 1);
	tab_unlock();
	session_hold(s, 1);

	if (old != NULL) {
		(void)session_nfds_add(old->s, -1);
		session_hold(old->s, -1);
		session_put(old->s);
		free(old);
	}
	return 0;
}

struct session *
fdtab_take(int fd, bool *last)
{
	struct fdent *e;
	struct session *s;

	*last = false;
	if (!fdtab_maybe(fd))
		return NULL;
	tab_wrlock();
	e = fdtab_unlink(fd);
	tab_unlock();
	if (e == NULL)
		return NULL;
	s = e->s;
	free(e);
	*last = session_nfds_add(s, -1) == 0;
	session_hold(s, -1);
	return s;
}

void
fdtab_drop(int fd)
{
	struct session *s;
	bool last;

	if ((s = fdtab_take(fd, &last)) == NULL)
		return;
	if (last)
		session_forgotten(s);
	session_put(s);
}

void
fdtab_fresh(int fd)
{
	struct session *s;

	if (fdtab_maybe(fd))
		fdtab_drop(fd);
	if (!fdtab_is_kfd(fd))
		return;
	/* A kfd was closed behind the shim's back (a raw close) and the
	 * number is something else now: its session has no socket any more,
	 * and fails closed on the stand-in. */
	if ((s = fdtab_kfd_owner(fd)) != NULL) {
		if (session_kfd(s, -1) == fd)
			session_kfd_lost(s);
		else
			session_sfd_lost(s);
		session_put(s);
	}
	(void)fdtab_kfd_mark(fd, false);
}

int
fdtab_snapshot(int *fds, struct session **ss, int max)
{
	struct fdent *e, *tmp;
	int n = 0;

	tab_rdlock();
	HASH_ITER(hh, fdtab_head, e, tmp) {
		if (n == max)
			break;
		fds[n] = e->fd;
		ss[n] = e->s;
		session_ref(e->s);
		n++;
	}
	tab_unlock();
	return n;
}

int
fdtab_fds_of(struct session *s, int *fds, int max)
{
	struct fdent *e, *tmp;
	int n = 0;

	tab_rdlock();
	HASH_ITER(hh, fdtab_head, e, tmp) {
		if (e->s == s && n < max)
			fds[n++] = e->fd;
	}
	tab_unlock();
	return n;
}

struct session *
fdtab_kfd_owner(int kfd)
{
	struct fdent *e, *tmp;
	struct session *s = NULL;

	tab_rdlock();
	HASH_ITER(hh, fdtab_head, e, tmp) {
		if (session_kfd(e->s, -1) == kfd || session_sfd(e->s) == kfd) {
			s = e->s;
			session_ref(s);
			break;
		}
	}
	tab_unlock();
	return s;
}

int
fdtab_find(struct session *s)
{
	struct fdent *e, *tmp;
	int fd = -1;

	tab_rdlock();
	HASH_ITER(hh, fdtab_head, e, tmp) {
		if (e->s == s) {
			fd = e->fd;
			break;
		}
	}
	tab_unlock();
	return fd;
}

/*
 * fork: no other thread may hold the table lock while the process is
 * copied, and the child holds every session it inherited.
 */
static void each_session(unsigned int *gen,
    void (*fn)(struct session *, void *), void *arg);

static unsigned int fdtab_fork_gen = 0x20000000u;  /* tickets (prepare) */

/* A fork may follow: every session is shared from now on (never recycled)
 * and counts a child that has not registered yet (session_fork_ticket()). */
static void
fork_ticket(struct session *s, void *gen)
{
	session_fork_ticket(s, *(unsigned int *)gen);
}

void
fdtab_fork_prepare(void)
{
	static unsigned int gen = 0x10000000u;

	tab_wrlock();
	if (++fdtab_fork_gen == 0)
		fdtab_fork_gen = 0x20000000u;
	each_session(&gen, fork_ticket, &fdtab_fork_gen);
}

void
fdtab_fork_parent(void)
{
	tab_unlock();
}

/* The ticket of the last prepare on S is settled (the child registered,
 * or the fork failed). */
static void
fork_settle(struct session *s, void *gen)
{
	session_fork_settle(s, *(unsigned int *)gen);
}

void
fdtab_fork_failed(void)
{
	static unsigned int gen = 0x60000000u;
	unsigned int t = __atomic_load_n(&fdtab_fork_gen, __ATOMIC_RELAXED);

	tab_rdlock();
	each_session(&gen, fork_settle, &t);
	tab_unlock();
}


/*
 * Call FN(s, arg) once per session in the table (several fds may share
 * one).  GEN, bumped here, marks the sessions done (session_mark(), this
 * process's own); each caller has its own range of GEN so their marks
 * never collide.
 */
static void
each_session(unsigned int *gen, void (*fn)(struct session *, void *),
    void *arg)
{
	struct fdent *e, *tmp;

	++*gen;
	HASH_ITER(hh, fdtab_head, e, tmp) {
		if (session_mark(e->s, *gen))
			continue;
		fn(e->s, arg);
	}
}

static void
forked_in_child(struct session *s, void *gen)
{
	/* Registered first, then the parent's count of unregistered
	 * children drops: never a moment when nobody holds it. */
	session_forked(s);
	fork_settle(s, gen);
}

void
fdtab_fork_child(void)
{
	static unsigned int gen;

	/*
	 * The lock was taken by the parent's thread; glibc's rwlock keeps the
	 * writer's TID, which the child's thread does not have: start afresh
	 * (the child has one thread).  ThreadSanitizer is told it was released.
	 */
	TSAN_UNLOCKED(&fdtab_lock);
	pthread_rwlock_init(&fdtab_lock, NULL);
	session_cache_forked();
	/* One holder entry per session, with this process's fd count; the
	 * mark is this process's own (session_mark()), so it is ours alone. */
	each_session(&gen, forked_in_child, &fdtab_fork_gen);
}

