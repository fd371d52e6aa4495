/*
 * epoll_shadow: the shim's shadows of sealed fds' registrations (struct
 * ep_reg): epoll_ctl, the news lists that epoll_touch feeds, and the
 * per-registration translation of kernel events.  Design: epoll.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <utlist.h>
#include <uthash.h>

#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "standin.h"
#include "epoll.h"
#include "epoll_int.h"

static uint32_t ep_next_id;         /* atomic: never reused */

/* Put R on its instance's news list (takes ep_news_lock). */
void
ep_push(struct ep_reg *r)
{
	ep_mlock(&ep_news_lock);
	if (!r->news) {
		r->news = true;
		DL_APPEND2(r->ep->news, r, nprev, nnext);
	}
	ep_munlock(&ep_news_lock);
}

void
epoll_touch(struct session *s)
{
	struct ep_reg *r;

	if (s == NULL ||
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE) == NULL)
		return;
	ep_mlock(&ep_news_lock);
	DL_FOREACH2((struct ep_reg *)*session_ep_watch(s), r, wnext) {
		if (!r->news) {
			r->news = true;
			DL_APPEND2(r->ep->news, r, nprev, nnext);
		}
	}
	ep_munlock(&ep_news_lock);
}

bool
epoll_waited(struct session *s)
{
	struct ep_reg *r;
	bool waited = false;

	if (s == NULL ||
	    __atomic_load_n(session_ep_watch(s), __ATOMIC_ACQUIRE) == NULL)
		return false;
	ep_mlock(&ep_news_lock);
	DL_FOREACH2((struct ep_reg *)*session_ep_watch(s), r, wnext) {
		if (__atomic_load_n(&r->ep->waiting, __ATOMIC_RELAXED) > 0) {
			waited = true;
			break;
		}
	}
	ep_munlock(&ep_news_lock);
	return waited;
}

void
ep_pend(struct ep *ep, struct ep_reg *r, uint32_t rev)
{
	r->pending |= rev;
	if (!r->pend) {
		r->pend = true;
		DL_APPEND2(ep->pend, r, pprev, pnext);
	}
}

void
ep_unpend(struct ep *ep, struct ep_reg *r)
{
	if (r->pend) {
		r->pend = false;
		DL_DELETE2(ep->pend, r, pprev, pnext);
	}
	r->pending = 0;
}

/* Forget shadow R entirely (caller holds ep->lock). */
void
ep_drop(struct ep *ep, struct ep_reg *r)
{
	struct ep_reg *w;

	if (!r->orphan)
		HASH_DEL(ep->regs, r);
	HASH_DELETE(hid, ep->ids, r);
	ep_unpend(ep, r);
	ep_mlock(&ep_news_lock);
	if (r->news)
		DL_DELETE2(ep->news, r, nprev, nnext);
	w = *session_ep_watch(r->s);
	DL_DELETE2(w, r, wprev, wnext);
	__atomic_store_n(session_ep_watch(r->s), w, __ATOMIC_RELEASE);
	ep_munlock(&ep_news_lock);
	if (r->kown >= 0) {
		/* Its registration goes with it, here; a child that
		 * inherited it leaves the parent's alone. */
		if (r->kown_pid == getpid() && ep->epfd >= 0)
			(void)real_epoll_ctl(ep->epfd, EPOLL_CTL_DEL, r->kown,
			    NULL);
		standin_mark(r->kown, false);
		real_close(r->kown);
	}
	session_put(r->s);
	free(r);
}

/* Bring R's kernel registration up to date; returns buffered readiness. */
uint32_t
ep_sync(struct ep *ep, struct ep_reg *r)
{
	struct epoll_event kev;
	short k = 0, ready;
	uint32_t want;

	ready = session_poll_prep(r->s, ep_want(r), &k);
	want = ep_kevents(r, k);
	/* An orphan's registration cannot be changed any more (Linux has
	 * no handle on it either); it keeps what it had.  Nor a failed
	 * session's edge-triggered one: the kernel has nothing more to say,
	 * and a MOD would re-arm its edge, an event TCP never gives. */
	if (want != r->kev && !r->orphan && ep->epfd >= 0 &&
	    !((r->uev & EPOLLET) && session_state(r->s) == SESSION_DEAD)) {
		kev.events = want;
		kev.data.u64 = ep_tag(r);
		if (real_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, r->kfd, &kev) == 0)
			r->kev = want;
	}
	return (uint32_t)(unsigned short)ready;
}

void
ep_disarm(struct ep *ep, struct ep_reg *r)
{
	struct epoll_event kev = { .events = EPOLLONESHOT };

	kev.data.u64 = ep_tag(r);
	r->disabled = true;
	if (!r->orphan && ep->epfd >= 0 &&
	    real_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, r->kfd, &kev) == 0)
		r->kev = EPOLLONESHOT;
}

int
ep_add(struct ep *ep, int epfd, int op, int fd, struct session *s,
    const struct epoll_event *ev)
{
	struct epoll_event kev;
	struct ep_reg *r, *w;
	short k = 0;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->fd = r->io_fd = fd;
	r->kfd = session_kfd(s, fd);
	r->kown = -1;
	r->id = __atomic_fetch_add(&ep_next_id, 1, __ATOMIC_RELAXED);
	r->s = s;
	r->ep = ep;
	r->uev = ev->events & ~EPOLLEXCLUSIVE;
	r->udata = ev->data;
	r->report = true;
	(void)session_poll_prep(s, ep_want(r), &k);
	kev.events = ep_kevents(r, k);
	kev.data.u64 = ep_tag(r);
	if (real_epoll_ctl(epfd, op, r->kfd, &kev) < 0) {
		int e = errno;

		/* Another fd of the session is registered already: the
		 * kernel knows the socket once per number, so this one gets
		 * a number of its own. */
		if (e != EEXIST || op != EPOLL_CTL_ADD || r->kfd == fd ||
		    (r->kown = standin_dup(r->kfd)) < 0 ||
		    real_epoll_ctl(epfd, op, r->kown, &kev) < 0) {
			e = r->kown >= 0 ? errno : e;
			if (r->kown >= 0) {
				standin_mark(r->kown, false);
				real_close(r->kown);
			}
			free(r);
			return -e;
		}
		r->kfd = r->kown;
		r->kown_pid = getpid();
	}
	session_ref(s);
	r->kev = kev.events;
	HASH_ADD_INT(ep->regs, fd, r);
	HASH_ADD(hid, ep->ids, id, sizeof(r->id), r);
	ep_mlock(&ep_news_lock);
	w = *session_ep_watch(s);
	DL_APPEND2(w, r, wprev, wnext);
	__atomic_store_n(session_ep_watch(s), w, __ATOMIC_RELEASE);
	r->news = true;
	DL_APPEND2(ep->news, r, nprev, nnext);
	ep_munlock(&ep_news_lock);
	return 0;
}

int
epoll_ctl_sealed(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct session *s;
	struct ep_reg *r;
	struct ep *ep;
	int ret;

	s = fdtab_get(fd);
	ep = ep_get(epfd, s != NULL && op == EPOLL_CTL_ADD);
	if (ep == NULL) {
		session_put(s);
		return real_epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
	}
	ep_mlock(&ep->lock);
	HASH_FIND_INT(ep->regs, &fd, r);
	if (r != NULL && r->s != s) {
		/* A shadow of a socket this number no longer names. */
		ep_drop(ep, r);
		r = NULL;
	}
	if (s == NULL || (op != EPOLL_CTL_ADD && r == NULL)) {
		/* Unsealed, or registered before it was sealed: untouched. */
		ret = real_epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
		goto out;
	}
	switch (op) {
	case EPOLL_CTL_ADD:
		if (r != NULL)
			ret = -EEXIST;
		else if (ev == NULL)
			ret = -EFAULT;
		else
			ret = ep_add(ep, epfd, EPOLL_CTL_ADD, fd, s, ev);
		break;
	case EPOLL_CTL_MOD:
		if (ev == NULL) {
			ret = -EFAULT;
			break;
		}
		if (ev->events & EPOLLEXCLUSIVE) {
			ret = -EINVAL;
			break;
		}
		r->uev = ev->events;
		r->udata = ev->data;
		r->disabled = false;
		r->report = true;
		ep_unpend(ep, r);
		r->kev = EP_FORCE;      /* force the MOD: it re-arms the edge */
		{
			struct epoll_event kev;
			short k = 0;

			(void)session_poll_prep(s, ep_want(r), &k);
			kev.events = ep_kevents(r, k);
			kev.data.u64 = ep_tag(r);
			if (real_epoll_ctl(epfd, EPOLL_CTL_MOD, r->kfd, &kev) < 0) {
				ret = -errno;
				break;
			}
			r->kev = kev.events;
		}
		ep_push(r);
		ret = 0;
		break;
	case EPOLL_CTL_DEL:
		ret = real_epoll_ctl(epfd, op, r->kfd, ev) < 0 ? -errno : 0;
		if (r->kown >= 0)
			r->kown_pid = 0;        /* deleted already */
		ep_drop(ep, r);
		break;
	default:
		ret = -EINVAL;
		break;
	}
out:
	ep_munlock(&ep->lock);
	ep_put(ep);
	session_put(s);
	return ret;
}

/*
 * Translate kernel events KEVENTS (0: none, e.g. a handshake deadline) for
 * shadow R into what the program is told, or 0 (ep->lock held).
 */
uint32_t
ep_event(struct ep *ep, struct ep_reg *r, uint32_t kevents)
{
	uint32_t rev;

	if (r->io_fd < 0)
		return 0;
	rev = (uint32_t)(unsigned short)session_poll_after(r->s, r->io_fd,
	    ep_want(r), (short)(kevents & 0xffff));
	rev |= r->pending;
	ep_unpend(ep, r);
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
		r->seen_st = session_st_gen(r->s);
	}
	return rev;
}
