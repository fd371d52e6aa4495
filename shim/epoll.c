/*
 * epoll: readiness translation for epoll_ctl / epoll_wait / epoll_pwait /
 * epoll_pwait2.
 *
 * The kernel sees ciphertext; the program must see plaintext readiness.
 * Design:
 *
 * - Registrations of sealed fds are shadowed.  For each (epoll instance,
 *   sealed fd) the shim keeps the program's events and data (struct
 *   ep_reg) and registers the fd with the kernel under its own data, a tag
 *   (EP_TAG in the high 32 bits, the fd in the low 32), and with the events
 *   the session needs: during the handshake what the handshake needs
 *   (POLLIN for the peer's message, POLLOUT for ours), afterwards what the
 *   program asked, minus EPOLLIN while decrypted data is already waiting,
 *   plus EPOLLOUT while sealed records are queued (session_poll_prep).
 *   Unsealed fds are never shadowed: their events go to and come from the
 *   kernel untouched.
 *
 * - epoll_wait first brings every shadowed registration up to date (a MOD
 *   only when the needed events changed) and collects those already ready
 *   from the session's buffers.  If any is, the kernel is asked with a zero
 *   timeout.  Kernel events carrying the tag are handed to the session
 *   (session_poll_after: the handshake steps, ciphertext is pulled in,
 *   queued records are flushed, all without blocking) and the program sees
 *   its own data with only the events its next call will find true.  An
 *   event that turns out to be nothing (half a record, a handshake step) is
 *   swallowed, and the wait resumes with the time left: epoll_wait never
 *   returns 0 early and never spins.
 *
 * - Flags keep their meaning.  EPOLLET: the kernel registration is
 *   edge-triggered too, and buffered data is reported again only after an
 *   ADD/MOD or a new kernel edge (a program that reads to EAGAIN drains the
 *   kernel as well, since the receive path reads it when the buffer is
 *   empty).  EPOLLONESHOT: the kernel registration is one-shot; an event
 *   the shim swallows re-arms it, an event reported disables the shadow
 *   until the program's MOD.  EPOLLRDHUP is true once the peer's
 *   end-of-stream mark (or its FIN) is in.  EPOLLERR/EPOLLHUP pass through
 *   and a failed session reports EPOLLERR.  EPOLLEXCLUSIVE is for
 *   listeners, which are never sealed.
 *
 * - Lifetime.  A registration disappears from the kernel when the last fd
 *   of its socket is closed; the close hook then drops the shadow too
 *   (epoll_closed).  An fd dup'ed and closed keeps both, as Linux does.
 *   Closing an epoll fd forgets its shadows.
 *
 * Locks: ep_lock (the instance registry) → ep->lock (one instance's
 * shadows) → session locks, which are only ever try-locked from here.
 * Threads may share an epoll instance; each wait holds the instance lock
 * only while translating, never while the kernel waits.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <uthash.h>

#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "epoll.h"

#define EP_TAG          0x5e4a1ed0U     /* high half of the kernel data */
/*
 * Kernel events fetched per wait, on the stack (3 KiB).  A program may allow
 * more (redis passes its whole fd table); asking the kernel for fewer loses
 * nothing, the rest stay ready for the next call, and no wait allocates.
 */
#define EP_STACK        256
#define EP_FORCE        UINT32_MAX      /* kev: unknown, MOD on next sync */
#define EP_USER_BITS    (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | \
                         EPOLLRDNORM | EPOLLWRNORM)

struct ep_reg {
	int             fd;         /* the registered fd; for I/O, see io_fd */
	uint32_t        id;         /* in the kernel's data: never reused */
	bool            orphan;     /* fd closed, a dup keeps it registered */
	int             io_fd;      /* an fd of the session to do I/O with */
	struct session *s;          /* referenced */
	uint32_t        uev;        /* the program's events and flags */
	epoll_data_t    udata;      /* the program's data */
	uint32_t        kev;        /* what the kernel has */
	uint32_t        pending;    /* buffered readiness to report */
	bool            disabled;   /* EPOLLONESHOT fired: waits for MOD */
	bool            report;     /* EPOLLET: report buffered data once */
	unsigned int    seen_gen;   /* EPOLLET: session_rx_gen() last told */
	UT_hash_handle  hh;         /* by fd (live registrations only) */
	UT_hash_handle  hid;        /* by id (all, orphans included) */
};

struct ep {
	int             epfd;
	int             refs;       /* registry + waits in progress */
	pthread_mutex_t lock;
	struct ep_reg  *regs;       /* by fd */
	struct ep_reg  *ids;        /* by id */
	uint32_t        next_id;
	UT_hash_handle  hh;
};

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep *ep_head;
static int ep_count;                /* instances with shadows; atomic */

bool
epoll_any(void)
{
	return __atomic_load_n(&ep_count, __ATOMIC_ACQUIRE) > 0;
}

static void
ep_put(struct ep *ep)
{
	struct ep_reg *r, *tmp;

	if (__atomic_sub_fetch(&ep->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	HASH_CLEAR(hh, ep->regs);
	HASH_ITER(hid, ep->ids, r, tmp) {
		HASH_DELETE(hid, ep->ids, r);
		session_put(r->s);
		free(r);
	}
	pthread_mutex_destroy(&ep->lock);
	free(ep);
}

/* The instance for EPFD, referenced; created when CREATE. */
static struct ep *
ep_get(int epfd, bool create)
{
	struct ep *ep;

	pthread_mutex_lock(&ep_lock);
	HASH_FIND_INT(ep_head, &epfd, ep);
	if (ep == NULL && create && (ep = calloc(1, sizeof(*ep))) != NULL) {
		ep->epfd = epfd;
		ep->refs = 1;
		pthread_mutex_init(&ep->lock, NULL);
		HASH_ADD_INT(ep_head, epfd, ep);
		__atomic_add_fetch(&ep_count, 1, __ATOMIC_ACQ_REL);
	}
	if (ep != NULL)
		__atomic_add_fetch(&ep->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&ep_lock);
	return ep;
}

static uint64_t
ep_tag(const struct ep_reg *r)
{
	return (uint64_t)EP_TAG << 32 | r->id;
}

/* Forget shadow R entirely (caller holds ep->lock). */
static void
ep_drop(struct ep *ep, struct ep_reg *r)
{
	if (!r->orphan)
		HASH_DEL(ep->regs, r);
	HASH_DELETE(hid, ep->ids, r);
	session_put(r->s);
	free(r);
}

/*
 * The kernel events for R: what the session needs; edge-triggered
 * registrations always keep the program's EPOLLIN, so new data makes a new
 * edge even while decrypted data is still waiting.
 */
static uint32_t
ep_kevents(const struct ep_reg *r, short k)
{
	uint32_t ev = ((uint32_t)(unsigned short)k &
	    (EP_USER_BITS | EPOLLERR | EPOLLHUP)) |
	    (r->uev & (EPOLLET | EPOLLONESHOT));

	if (r->uev & EPOLLET)
		ev |= r->uev & (EPOLLIN | EPOLLRDNORM);
	return ev;
}

/* Program events as poll bits (the values are the same). */
static short
ep_want(const struct ep_reg *r)
{
	return (short)(r->uev & EP_USER_BITS);
}

/* Bring R's kernel registration up to date; returns buffered readiness. */
static uint32_t
ep_sync(struct ep *ep, struct ep_reg *r)
{
	struct epoll_event kev;
	short k = 0, ready;
	uint32_t want;

	ready = session_poll_prep(r->s, ep_want(r), &k);
	want = ep_kevents(r, k);
	/* An orphan's registration cannot be changed any more (Linux has
	 * no handle on it either); it keeps what it had. */
	if (want != r->kev && !r->orphan) {
		kev.events = want;
		kev.data.u64 = ep_tag(r);
		if (real_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, r->fd, &kev) == 0)
			r->kev = want;
	}
	return (uint32_t)(unsigned short)ready;
}

static void
ep_disarm(struct ep *ep, struct ep_reg *r)
{
	struct epoll_event kev = { .events = EPOLLONESHOT };

	kev.data.u64 = ep_tag(r);
	r->disabled = true;
	if (!r->orphan &&
	    real_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, r->fd, &kev) == 0)
		r->kev = EPOLLONESHOT;
}

int
epoll_ctl_sealed(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct epoll_event kev;
	struct session *s;
	struct ep_reg *r;
	struct ep *ep;
	short k = 0;
	int ret;

	s = fdtab_get(fd);
	ep = ep_get(epfd, s != NULL && op == EPOLL_CTL_ADD);
	if (ep == NULL) {
		session_put(s);
		return real_epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
	}
	pthread_mutex_lock(&ep->lock);
	HASH_FIND_INT(ep->regs, &fd, r);
	if (r != NULL && r->s != s) {
		/* A shadow of a socket this number no longer names. */
		ep_drop(ep, r);
		r = NULL;
	}
	if (s == NULL || (op == EPOLL_CTL_MOD && r == NULL)) {
		/* Unsealed, or registered before it was sealed: untouched. */
		ret = real_epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
		goto out;
	}
	switch (op) {
	case EPOLL_CTL_ADD:
		if (r != NULL) {
			ret = -EEXIST;
			goto out;
		}
		if (ev == NULL) {
			ret = -EFAULT;
			goto out;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			ret = -ENOMEM;
			goto out;
		}
		r->fd = r->io_fd = fd;
		r->id = ep->next_id++;
		r->s = s;
		session_ref(s);
		r->uev = ev->events & ~EPOLLEXCLUSIVE;
		r->udata = ev->data;
		r->report = true;
		(void)session_poll_prep(s, ep_want(r), &k);
		kev.events = ep_kevents(r, k);
		kev.data.u64 = ep_tag(r);
		if (real_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &kev) < 0) {
			ret = -errno;
			session_put(s);
			free(r);
			goto out;
		}
		r->kev = kev.events;
		HASH_ADD_INT(ep->regs, fd, r);
		HASH_ADD(hid, ep->ids, id, sizeof(r->id), r);
		ret = 0;
		break;
	case EPOLL_CTL_MOD:
		if (ev == NULL) {
			ret = -EFAULT;
			goto out;
		}
		if (ev->events & EPOLLEXCLUSIVE) {
			ret = -EINVAL;
			goto out;
		}
		r->uev = ev->events;
		r->udata = ev->data;
		r->disabled = false;
		r->report = true;
		r->kev = EP_FORCE;      /* force the MOD: it re-arms the edge */
		(void)ep_sync(ep, r);
		ret = r->kev != EP_FORCE ? 0 : -errno;
		break;
	case EPOLL_CTL_DEL:
		if (r != NULL)
			ep_drop(ep, r);
		ret = real_epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
		break;
	default:
		ret = -EINVAL;
		break;
	}
out:
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	session_put(s);
	return ret;
}

static int
kernel_wait(int epfd, struct epoll_event *ev, int max, long ms,
    const sigset_t *mask, bool use_mask)
{
	if (ms > 0x7fffffffL)
		ms = 0x7fffffff;
	if (use_mask)
		return real_epoll_pwait(epfd, ev, max, (int)ms, mask);
	return real_epoll_wait(epfd, ev, max, (int)ms);
}

/*
 * Translate kernel events KEVENTS (0: none, e.g. a handshake deadline) for
 * shadow R into what the program is told, or 0.
 */
static uint32_t
ep_event(struct ep_reg *r, uint32_t kevents)
{
	uint32_t rev;

	if (r->io_fd < 0)
		return 0;
	rev = (uint32_t)(unsigned short)session_poll_after(r->s, r->io_fd,
	    ep_want(r), (short)(kevents & 0xffff));
	rev |= r->pending;
	r->pending = 0;
	rev &= (r->uev & EP_USER_BITS) | EPOLLERR | EPOLLHUP;
	if (r->uev & EPOLLONESHOT) {
		if (rev != 0)
			r->disabled = true;
		else if (kevents != 0)
			r->kev = EP_FORCE;  /* the kernel disarmed it: re-arm */
	}
	if (rev != 0) {
		r->report = false;
		r->seen_gen = session_rx_gen(r->s);
	}
	return rev;
}

int
epoll_wait_sealed(int epfd, struct epoll_event *events, int max,
    long timeout_ms, const sigset_t *mask, bool use_mask)
{
	struct epoll_event kbuf[EP_STACK];
	struct ep_reg *r, *tmp;
	struct ep *ep;
	uint64_t deadline = 0, now, hsdl;
	uint32_t rev;
	long ms;
	uint32_t id;
	int n, i, out, e = 0, kmax = max < EP_STACK ? max : EP_STACK;
	bool immediate;

	if (max <= 0 || events == NULL)
		return -2;
	if ((ep = ep_get(epfd, false)) == NULL)
		return -2;
	if (timeout_ms >= 0)
		deadline = now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		/* Bring the kernel up to date; note what buffers have. */
		immediate = false;
		hsdl = 0;
		pthread_mutex_lock(&ep->lock);
		HASH_ITER(hid, ep->ids, r, tmp) {
			if (r->disabled)
				continue;
			if (session_state(r->s) < SESSION_OPEN &&
			    now_ms() >= r->s->hs_deadline) {
				/* Its deadline passed: let the session fail it. */
				if ((rev = ep_event(r, 0)) != 0) {
					r->pending = rev;
					immediate = true;
					continue;
				}
			}
			rev = ep_sync(ep, r) & (r->uev | EPOLLERR | EPOLLHUP);
			/* Edge-triggered: buffered data is news after an
			 * ADD/MOD, or when more was pulled from the kernel
			 * since the program was last told. */
			if (rev != 0 && (!(r->uev & EPOLLET) || r->report ||
			    r->seen_gen != session_rx_gen(r->s))) {
				r->pending = rev;
				immediate = true;
			}
			if (session_state(r->s) < SESSION_OPEN &&
			    (hsdl == 0 || r->s->hs_deadline < hsdl))
				hsdl = r->s->hs_deadline;
		}
		pthread_mutex_unlock(&ep->lock);

		now = now_ms();
		if (immediate)
			ms = 0;
		else if (timeout_ms < 0)
			ms = -1;
		else
			ms = deadline > now ? (long)(deadline - now) : 0;
		if (hsdl != 0) {
			long left = hsdl > now ? (long)(hsdl - now) : 0;
			if (ms < 0 || ms > left)
				ms = left;
		}

		n = kernel_wait(epfd, kbuf, kmax, ms, mask, use_mask);
		if (n < 0) {
			e = errno;
			out = -1;
			break;
		}

		out = 0;
		pthread_mutex_lock(&ep->lock);
		for (i = 0; i < n; i++) {
			if ((uint32_t)(kbuf[i].data.u64 >> 32) != EP_TAG) {
				events[out++] = kbuf[i];
				continue;
			}
			id = (uint32_t)kbuf[i].data.u64;
			HASH_FIND(hid, ep->ids, &id, sizeof(id), r);
			if (r == NULL || r->disabled)
				continue;       /* dropped meanwhile */
			rev = ep_event(r, kbuf[i].events);
			LOG(LOG_DEBUG, "fd %d: kernel events %#x -> %#x",
			    r->fd, kbuf[i].events, rev);
			if (rev == 0)
				continue;
			events[out].events = rev;
			events[out].data = r->udata;
			out++;
		}
		/* Buffered readiness the kernel could not know about. */
		HASH_ITER(hid, ep->ids, r, tmp) {
			if (out >= max)
				break;
			if (r->pending == 0 || r->disabled)
				continue;
			LOG(LOG_DEBUG, "fd %d: buffered events %#x", r->fd,
			    r->pending);
			events[out].events = r->pending;
			events[out].data = r->udata;
			out++;
			r->pending = 0;
			r->report = false;
			r->seen_gen = session_rx_gen(r->s);
			if (r->uev & EPOLLONESHOT)
				ep_disarm(ep, r);
		}
		pthread_mutex_unlock(&ep->lock);

		if (out > 0 || (timeout_ms >= 0 && now_ms() >= deadline))
			break;
	}
	ep_put(ep);
	if (out < 0)
		errno = e;
	return out;
}

void
epoll_closed(int fd, struct session *s, bool last)
{
	struct ep *ep, *tmp, *gone = NULL;
	struct ep_reg *r, *rt;
	int other;

	if (!epoll_any())
		return;
	/* Another fd of the session, for orphaned shadows' I/O. */
	other = s != NULL && !last ? fdtab_find(s) : -1;
	pthread_mutex_lock(&ep_lock);
	HASH_ITER(hh, ep_head, ep, tmp) {
		if (ep->epfd == fd) {
			HASH_DEL(ep_head, ep);
			__atomic_sub_fetch(&ep_count, 1, __ATOMIC_ACQ_REL);
			gone = ep;
			continue;
		}
		if (s == NULL)
			continue;
		pthread_mutex_lock(&ep->lock);
		HASH_ITER(hid, ep->ids, r, rt) {
			if (r->s != s)
				continue;
			if (last) {
				/* The kernel dropped it with the socket. */
				ep_drop(ep, r);
			} else if (r->io_fd == fd || r->fd == fd) {
				if (r->fd == fd && !r->orphan) {
					/* Still registered under the closed
					 * number, which may now name another
					 * file: keep it only by id. */
					HASH_DEL(ep->regs, r);
					r->orphan = true;
				}
				r->io_fd = other;
			}
		}
		pthread_mutex_unlock(&ep->lock);
	}
	pthread_mutex_unlock(&ep_lock);
	if (gone != NULL)
		ep_put(gone);
}

static void
ep_prefork(void)
{
	pthread_mutex_lock(&ep_lock);
}

static void
ep_postfork_parent(void)
{
	pthread_mutex_unlock(&ep_lock);
}

static void
ep_postfork_child(void)
{
	pthread_mutex_init(&ep_lock, NULL);
}

void
epoll_atfork(void)
{
	pthread_atfork(ep_prefork, ep_postfork_parent, ep_postfork_child);
}
