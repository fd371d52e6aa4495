/*
 * epoll_pre: registrations made before a socket was sealed.
 *
 * nginx (and libevent, and others) add a new socket to epoll right after
 * socket() and before connect(): at that moment it is not sealed, so the
 * registration is the program's own, and without this module it would
 * stay so after connect() sealed the socket: the program would get the
 * kernel's ciphertext readiness, and an edge-triggered reader that stops
 * at a short read would wait for an edge that never comes while the shim
 * holds its data (nginx in front of a sealed upstream stalled this way).
 *
 * So every TCP socket made by socket() is a candidate until connect() (or
 * close) decides it, and the program's epoll_ctl calls on a candidate are
 * noted (epoll fd, events, data).  Candidacy is one byte per fd number,
 * lock-free, so socket(), close() and epoll_ctl() pay one atomic store or
 * load; only an epoll_ctl on a candidate, and the connect() or close() that
 * decides one with notes, take pre_lock.  Numbers from PRE_MAX on are not
 * candidates (a process holding that many fds): their early registrations
 * stay the program's own, as before this module, which readiness can get
 * wrong but which never carries a byte.  When connect() seals the socket, its
 * noted registrations leave the kernel before the stand-in takes the
 * number (epoll_pre_detach: the kernel keys them by file and number, and
 * the socket moves to the shim's kfd), and each becomes a shadow
 * registered on the kfd; when connect() leaves it plain, the notes go.  Notes are few
 * and short-lived, kept in one hash behind pre_lock (a leaf lock: taken
 * alone, or before ep_lock when converting).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <utlist.h>
#include <uthash.h>

#include "log.h"
#include "reason.h"
#include "real.h"
#include "session.h"
#include "epoll.h"
#include "epoll_int.h"

struct pre_reg {
	int             epfd;
	uint32_t        events;
	epoll_data_t    data;
	struct pre_reg *next;
};

struct pre {
	int             fd;
	struct pre_reg *regs;
	UT_hash_handle  hh;
};

#define PRE_MAX 65536

static pthread_mutex_t pre_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pre *pre_head;            /* notes, by fd */
static uint8_t pre_cand[PRE_MAX];       /* atomic: candidates */

static void
pre_free(struct pre *p)
{
	struct pre_reg *r, *t;

	LL_FOREACH_SAFE(p->regs, r, t)
		free(r);
	free(p);
}

/* Take FD's entry out of the table (pre_lock held), or NULL. */
static struct pre *
pre_take(int fd)
{
	struct pre *p;

	HASH_FIND_INT(pre_head, &fd, p);
	if (p != NULL)
		HASH_DEL(pre_head, p);
	return p;
}

bool
epoll_pre_is(int fd)
{
	return fd >= 0 && fd < PRE_MAX &&
	    __atomic_load_n(&pre_cand[fd], __ATOMIC_ACQUIRE) != 0;
}

void
epoll_pre_socket(int fd)
{
	struct pre *old;

	if (fd < 0 || fd >= PRE_MAX)
		return;
	if (epoll_pre_is(fd)) {
		/* The number was closed behind our back: its notes go. */
		ep_mlock(&pre_lock);
		old = pre_take(fd);
		ep_munlock(&pre_lock);
		if (old != NULL)
			pre_free(old);
	}
	__atomic_store_n(&pre_cand[fd], 1, __ATOMIC_RELEASE);
}

void
epoll_pre_ctl(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct pre_reg *r, **rp;
	struct pre *p;

	if (!epoll_pre_is(fd))
		return;
	ep_mlock(&pre_lock);
	HASH_FIND_INT(pre_head, &fd, p);
	if (p == NULL) {
		if (op == EPOLL_CTL_DEL || (p = calloc(1, sizeof(*p))) == NULL)
			goto out;       /* (no memory: untracked, as before) */
		p->fd = fd;
		HASH_ADD_INT(pre_head, fd, p);
	}
	for (rp = &p->regs; *rp != NULL && (*rp)->epfd != epfd; rp = &(*rp)->next)
		;
	r = *rp;
	if (op == EPOLL_CTL_DEL) {
		if (r != NULL) {
			*rp = r->next;
			free(r);
		}
		goto out;
	}
	if (ev == NULL || (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD))
		goto out;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			goto out;
		r->epfd = epfd;
		r->next = p->regs;
		p->regs = r;
	}
	r->events = ev->events & ~EPOLLEXCLUSIVE;
	r->data = ev->data;
out:
	ep_munlock(&pre_lock);
}

/* Each noted registration of FD, to the kernel with OP (the program's
 * own events and data). */
static void
pre_kernel(int fd, int op)
{
	struct epoll_event ev;
	struct pre_reg *r;
	struct pre *p;

	if (!epoll_pre_is(fd))
		return;
	ep_mlock(&pre_lock);
	HASH_FIND_INT(pre_head, &fd, p);
	if (p != NULL) {
		LL_FOREACH(p->regs, r) {
			ev.events = r->events;
			ev.data = r->data;
			(void)real_epoll_ctl(r->epfd, op, fd, &ev);
		}
	}
	ep_munlock(&pre_lock);
}

void
epoll_pre_detach(int fd)
{
	pre_kernel(fd, EPOLL_CTL_DEL);
}

void
epoll_pre_reattach(int fd)
{
	pre_kernel(fd, EPOLL_CTL_ADD);
}

void
epoll_pre_done(int fd, struct session *s)
{
	struct pre_reg *r;
	struct epoll_event ev;
	struct pre *p;
	struct ep *ep;
	int e;

	if (!epoll_pre_is(fd))
		return;
	__atomic_store_n(&pre_cand[fd], 0, __ATOMIC_RELEASE);
	ep_mlock(&pre_lock);
	p = pre_take(fd);
	ep_munlock(&pre_lock);
	if (p == NULL)
		return;
	LL_FOREACH(p->regs, r) {
		if (s == NULL)
			break;
		if ((ep = ep_get(r->epfd, true)) == NULL)
			continue;
		ev.events = r->events;
		ev.data = r->data;
		ep_mlock(&ep->lock);
		e = ep_add(ep, r->epfd, EPOLL_CTL_ADD, fd, s, &ev);
		ep_munlock(&ep->lock);
		ep_put(ep);
		if (e < 0)
			LOG_WARN_CODE("epoll", REASON_EPOLL,
			    "fd %d: its epoll registration (epoll fd "
			    "%d) made before connect() cannot be translated: "
			    "%s", fd, r->epfd, strerror(-e));
		else
			LOG(LOG_DEBUG, "fd %d: epoll registration on %d made "
			    "before connect() now translated", fd, r->epfd);
	}
	pre_free(p);
}
