/*
 * epoll: readiness translation for epoll_ctl / epoll_wait / epoll_pwait /
 * epoll_pwait2.
 *
 * The kernel sees ciphertext; the program must see plaintext readiness.
 *
 * Shadows.  For each (epoll instance, sealed fd) registration the shim
 * keeps the program's events and data (struct ep_reg) and registers the fd
 * with the kernel under a tag of its own: EP_TAG in the high 32 bits, a
 * registration id in the low 32.  Ids are unique in the process and never
 * reused, so a stale kernel event can never name another registration.
 * The kernel is asked for what the session needs: during the handshake
 * what the handshake needs, afterwards what the program asked, minus
 * EPOLLIN while decrypted data is already waiting (level-triggered), plus
 * EPOLLOUT while sealed records are queued (session_poll_prep).  Unsealed
 * fds are never shadowed.
 *
 * THE RULE: no tagged event ever reaches the program.  Every array that
 * any epoll_wait-like call gets back from the kernel, on every path (the
 * fast path of a process that never registered a sealed fd included), is
 * scanned for the tag before the program sees it (epoll_filtered), and a
 * tagged event is either translated into the program's own data and events
 * or dropped.  A tag is resolved through the instance waited on, or, when
 * that instance does not know it (a dup'ed or inherited epoll fd, a wait
 * that began before the first sealed registration, an instance whose name
 * was closed while a copy lives on), through every instance the process
 * knows (ep_resolve), and the fd waited on becomes another name of the
 * instance found.  A tag nobody knows (a registration made by an image
 * before exec, or one whose socket lives on only in another process) is
 * dropped; its kernel registration may be another process's too, so the
 * shim leaves it alone, as the kernel would keep reporting it to a plain
 * program that closed its fd.
 *
 * Instances.  An instance (struct ep) is known by its names: every fd
 * number the program reaches it by (ep_names).  Closing a name forgets the
 * name; the instance itself lives on while it has shadows, since a copy of
 * the fd may still reach it (another dup, a child), and goes when its last
 * shadow goes.  A new sealed registration through an unknown number that
 * names a known instance (kcmp) joins it.
 *
 * O(ready), not O(registered).  A wait looks only at the shadows that have
 * news: the kernel reported them, or their session changed (the program
 * read, wrote, shut down or polled it: epoll_touch, called by the hooks
 * after each session call, puts every shadow of the session on its
 * instance's news list), or they were just added or modified.  A shadow
 * stays on the list while it must be looked at again at the next wait: its
 * handshake is in flight (its deadline bounds the wait), or it is
 * level-triggered with buffered readiness the program has not consumed.
 * Everything else waits in the kernel, as an unsealed fd does.  Closing a
 * sealed fd walks only that session's shadows (its watch list).  A session
 * shared with another process (fork) that reads or writes it there does
 * not touch this process's shadows: this process learns of it from the
 * kernel, as before.
 *
 * Flags keep their meaning.  EPOLLET: the kernel registration is
 * edge-triggered too, and buffered data is reported again only after an
 * ADD/MOD or when more was pulled from the kernel since the program was
 * last told (session_rx_gen).  That may be data that had arrived before
 * the report: an extra edge while data is readable, as TCP gives when
 * data arrives in several segments.  Never fewer edges: a reader that
 * trusts FIONREAD and waits for an edge when a read returns more (nginx)
 * must get one, and the shim cannot count what is still sealed in the
 * kernel.  EPOLLONESHOT: the kernel registration is
 * one-shot; an event the shim swallows re-arms it, an event reported
 * disables the shadow until the program's MOD.  EPOLLRDHUP is true once
 * the peer's end-of-stream mark (or its FIN) is in.  EPOLLERR/EPOLLHUP pass
 * through and a failed session reports EPOLLERR.  An event that turns out
 * to be nothing (half a record, a handshake step) is swallowed and the
 * wait resumes with the time left: epoll_wait never returns 0 early.
 *
 * Locks, in this order: ep_lock (names, the instance list) -> ep->lock
 * (one instance's shadows; held only while translating, never while the
 * kernel waits) -> ep_news_lock (every news list and every session's
 * watch list; a leaf, so epoll_touch may take it from any I/O path) ->
 * session locks, which are only ever try-locked from here.  fork() takes
 * them all in that order and the child re-initialises them.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utlist.h>
#include <uthash.h>

#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "epoll.h"
#include "epoll_int.h"

pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t ep_news_lock = PTHREAD_MUTEX_INITIALIZER;
struct ep_name *ep_names;           /* ep_lock */
struct ep *ep_all;                  /* ep_lock */
static int ep_count;                /* instances in ep_all; atomic */
/*
 * Which numbers may name an instance, lock-free (as fdtab_maybe): a close,
 * a new fd or a new epoll instance whose number names none costs one load
 * and never takes ep_lock, so no path that opens or closes an fd while
 * ep_lock is held (a signal handler, a sanitizer's report) can deadlock on
 * it.  Numbers from EP_NAMED_MAX on always take the lock.
 */
#define EP_NAMED_MAX    65536
static uint8_t ep_named[EP_NAMED_MAX];

static bool
ep_name_maybe(int fd)
{
	return fd < 0 || fd >= EP_NAMED_MAX ||
	    __atomic_load_n(&ep_named[fd], __ATOMIC_ACQUIRE) != 0;
}

static void
ep_name_mark(int fd, bool on)
{
	if (fd >= 0 && fd < EP_NAMED_MAX)
		__atomic_store_n(&ep_named[fd], on, __ATOMIC_RELEASE);
}

bool
epoll_any(void)
{
	return __atomic_load_n(&ep_count, __ATOMIC_ACQUIRE) > 0;
}

void
ep_put(struct ep *ep)
{
	if (__atomic_sub_fetch(&ep->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* No names, no shadows (ep_unused), no call in progress. */
	pthread_mutex_destroy(&ep->lock);
	free(ep);
}

/*
 * EP has no name and no shadow left: take it off the list (ep_lock held;
 * EP's lock not held).  Returns true when the caller must ep_put() the
 * list's reference.
 */
bool
ep_unused(struct ep *ep)
{
	bool empty;

	if (ep->names > 0)
		return false;
	ep_mlock(&ep->lock);
	empty = ep->ids == NULL;
	ep_munlock(&ep->lock);
	if (!empty)
		return false;
	DL_DELETE(ep_all, ep);
	__atomic_sub_fetch(&ep_count, 1, __ATOMIC_ACQ_REL);
	return true;
}

static int
ep_kcmp(int a, int b)
{
#ifdef SYS_kcmp
	pid_t pid = getpid();

	/* KCMP_FILE is 0. */
	return (int)real_syscall6(SYS_kcmp, pid, pid, 0, a, b, 0);
#else
	(void)a;
	(void)b;
	return -1;
#endif
}

/* Name FD for EP (ep_lock held).  Returns 0 or -ENOMEM. */
int
ep_name_add(int fd, struct ep *ep)
{
	struct ep_name *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -ENOMEM;
	n->fd = fd;
	n->ep = ep;
	HASH_ADD_INT(ep_names, fd, n);
	ep_name_mark(fd, true);
	ep->names++;
	if (ep->epfd < 0)
		ep->epfd = fd;
	return 0;
}

/*
 * The instance EPFD names, referenced; when CREATE and it has no name yet,
 * the known instance it is a copy of, or a new one.
 */
struct ep *
ep_get(int epfd, bool create)
{
	struct ep_name *n;
	struct ep *ep = NULL, *e;
	int tries = 0;

	ep_mlock(&ep_lock);
	HASH_FIND_INT(ep_names, &epfd, n);
	if (n != NULL) {
		ep = n->ep;
	} else if (create) {
		DL_FOREACH(ep_all, e) {
			if (e->epfd < 0 || ++tries > EP_KCMP_MAX)
				continue;
			if (ep_kcmp(e->epfd, epfd) == 0) {
				ep = e;
				break;
			}
		}
		if (ep == NULL && (ep = calloc(1, sizeof(*ep))) != NULL) {
			ep->epfd = -1;
			ep->refs = 1;
			pthread_mutex_init(&ep->lock, NULL);
			DL_APPEND(ep_all, ep);
			__atomic_add_fetch(&ep_count, 1, __ATOMIC_ACQ_REL);
		}
		if (ep != NULL && ep_name_add(epfd, ep) < 0 && ep_unused(ep)) {
			ep_put(ep);
			ep = NULL;
		}
	}
	if (ep != NULL)
		__atomic_add_fetch(&ep->refs, 1, __ATOMIC_ACQ_REL);
	ep_munlock(&ep_lock);
	return ep;
}

/*
 * Close of FD (ep_lock held): if FD names an instance, forget the name.
 * Returns the instance if it is now unused (the caller puts it).
 */
static struct ep *
ep_unname(int fd)
{
	struct ep_name *n, *m, *tmp;
	struct ep *ep;

	HASH_FIND_INT(ep_names, &fd, n);
	if (n == NULL)
		return NULL;
	ep = n->ep;
	HASH_DEL(ep_names, n);
	ep_name_mark(fd, false);
	free(n);
	ep->names--;
	if (ep->epfd == fd) {
		ep->epfd = -1;
		if (ep->names > 0) {
			HASH_ITER(hh, ep_names, m, tmp) {
				if (m->ep == ep) {
					ep->epfd = m->fd;
					break;
				}
			}
		}
	}
	return ep_unused(ep) ? ep : NULL;
}

/*
 * The instances that shadow S, at most EP_CLOSE_MAX, into EPS (ep_lock
 * held: they stay alive while they do).  Returns how many.
 */
static int
ep_watchers(struct session *s, struct ep **eps)
{
	struct ep_reg *r;
	int n = 0, j;

	ep_mlock(&ep_news_lock);
	DL_FOREACH2((struct ep_reg *)*session_ep_watch(s), r, wnext) {
		for (j = 0; j < n && eps[j] != r->ep; j++)
			;
		if (j == n && n < EP_CLOSE_MAX)
			eps[n++] = r->ep;
	}
	ep_munlock(&ep_news_lock);
	return n;
}

void
epoll_closed(int fd, struct session *s, bool last)
{
	struct ep *eps[EP_CLOSE_MAX], *gone[EP_CLOSE_MAX + 1], *ep;
	struct ep_reg *r;
	int neps = 0, ngone = 0, other = -1, i;

	if (!epoll_any())
		return;
	if ((s == NULL ||
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE) == NULL) &&
	    !ep_name_maybe(fd))
		return;
	ep_mlock(&ep_lock);
	if ((ep = ep_unname(fd)) != NULL)
		gone[ngone++] = ep;
	if (s != NULL &&
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE)) {
		neps = ep_watchers(s, eps);
		/* Another fd of the session, for orphaned shadows' I/O. */
		if (!last && neps > 0)
			other = fdtab_find(s);
	}
	for (i = 0; i < neps; i++) {
		ep = eps[i];
		ep_mlock(&ep->lock);
		/* This instance's shadows of S change only under ep->lock,
		 * which is held; the walk itself needs ep_news_lock, and
		 * starts over after a drop (a shadow of another instance may
		 * go meanwhile).  A handled shadow no longer matches. */
		for (;;) {
			ep_mlock(&ep_news_lock);
			for (r = *session_ep_watch(s); r != NULL; r = r->wnext)
				if (r->ep == ep && (last || r->io_fd == fd ||
				    (r->fd == fd && !r->orphan)))
					break;
			ep_munlock(&ep_news_lock);
			if (r == NULL)
				break;
			if (last) {
				/* The kernel dropped it with the socket. */
				ep_drop(ep, r);
				continue;
			}
			if (r->fd == fd && !r->orphan) {
				/* Still registered under the closed number,
				 * which may now name another file: keep it
				 * only by id.  Its kernel registration cannot
				 * be changed once the number is gone, so it
				 * gets the program's own events now, while
				 * it still can: never less than asked. */
				if (!r->disabled && ep->epfd >= 0) {
					struct epoll_event kev;

					kev.events = ep_kevents(r, ep_want(r));
					kev.data.u64 = ep_tag(r);
					/* (A MOD re-arms an edge: only if it
					 * changes something.) */
					if (kev.events != r->kev &&
					    real_epoll_ctl(ep->epfd,
					    EPOLL_CTL_MOD, r->kfd, &kev) == 0)
						r->kev = kev.events;
				}
				HASH_DEL(ep->regs, r);
				r->orphan = true;
			}
			if (r->io_fd == fd)
				r->io_fd = other;
		}
		ep_munlock(&ep->lock);
		if (last && ngone <= EP_CLOSE_MAX && ep_unused(ep))
			gone[ngone++] = ep;
	}
	ep_munlock(&ep_lock);
	for (i = 0; i < ngone; i++)
		ep_put(gone[i]);
}

void
epoll_dup(int fd, struct session *s)
{
	struct ep *eps[EP_CLOSE_MAX], *ep;
	struct ep_reg *r, *other;
	int neps = 0, i;

	if (!epoll_any() || s == NULL ||
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE) == NULL)
		return;
	ep_mlock(&ep_lock);
	neps = ep_watchers(s, eps);
	for (i = 0; i < neps; i++) {
		ep = eps[i];
		ep_mlock(&ep->lock);
		HASH_FIND_INT(ep->regs, &fd, other);
		ep_mlock(&ep_news_lock);
		for (r = *session_ep_watch(s); r != NULL && other == NULL;
		    r = r->wnext) {
			if (r->ep != ep || !r->orphan || r->fd != fd)
				continue;
			/* The number names the same file again: the
			 * kernel's (file, number) registration is reachable
			 * through it, and so is the shadow. */
			r->orphan = false;
			if (r->io_fd < 0)
				r->io_fd = fd;
			HASH_ADD_INT(ep->regs, fd, r);
			break;
		}
		ep_munlock(&ep_news_lock);
		ep_munlock(&ep->lock);
	}
	ep_munlock(&ep_lock);
}

void
epoll_kfd_moved(struct session *s, int old, int kfd)
{
	struct ep *eps[EP_CLOSE_MAX], *ep;
	struct epoll_event kev;
	struct ep_reg *r;
	int neps, i;

	if (!epoll_any() || s == NULL ||
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE) == NULL)
		return;
	ep_mlock(&ep_lock);
	neps = ep_watchers(s, eps);
	for (i = 0; i < neps; i++) {
		ep = eps[i];
		ep_mlock(&ep->lock);
		ep_mlock(&ep_news_lock);
		for (r = *session_ep_watch(s); r != NULL; r = r->wnext) {
			if (r->ep != ep || r->kfd != old || ep->epfd < 0)
				continue;
			/* The kernel keys it by number: register it anew
			 * under the new one, the same tag and events. */
			kev.events = r->kev == EP_FORCE ? ep_kevents(r,
			    ep_want(r)) : r->kev;
			kev.data.u64 = ep_tag(r);
			(void)real_epoll_ctl(ep->epfd, EPOLL_CTL_DEL, old, NULL);
			if (real_epoll_ctl(ep->epfd, EPOLL_CTL_ADD, kfd, &kev) == 0)
				r->kev = kev.events;
			r->kfd = kfd;
		}
		ep_munlock(&ep_news_lock);
		ep_munlock(&ep->lock);
	}
	ep_munlock(&ep_lock);
}

void
epoll_closed_range(unsigned int first, unsigned int last)
{
	struct ep_name *n, *tmp;
	struct ep *gone[EP_CLOSE_MAX], *ep;
	int ngone = 0, i;
	bool more = true;

	if (!epoll_any())
		return;
	while (more) {
		more = false;
		ep_mlock(&ep_lock);
		HASH_ITER(hh, ep_names, n, tmp) {
			if ((unsigned int)n->fd < first || (unsigned int)n->fd > last)
				continue;
			if (ngone == EP_CLOSE_MAX) {
				more = true;
				break;
			}
			if ((ep = ep_unname(n->fd)) != NULL)
				gone[ngone++] = ep;
		}
		ep_munlock(&ep_lock);
		for (i = 0; i < ngone; i++)
			ep_put(gone[i]);
		ngone = 0;
	}
}

void
epoll_fork_prepare(void)
{
	struct ep *ep;

	ep_mlock(&ep_lock);
	DL_FOREACH(ep_all, ep)
		ep_mlock(&ep->lock);
	ep_mlock(&ep_news_lock);
}

void
epoll_fork_parent(void)
{
	struct ep *ep;

	ep_munlock(&ep_news_lock);
	DL_FOREACH(ep_all, ep)
		ep_munlock(&ep->lock);
	ep_munlock(&ep_lock);
}

void
epoll_fork_child(void)
{
	struct ep *ep;

	pthread_mutex_init(&ep_news_lock, NULL);
	DL_FOREACH(ep_all, ep)
		pthread_mutex_init(&ep->lock, NULL);
	pthread_mutex_init(&ep_lock, NULL);
}
