/*
 * epoll_wait: the translated waits, and the filter every kernel result
 * passes through (no tagged event reaches the program).  Design: epoll.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <utlist.h>
#include <uthash.h>

#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "epoll.h"
#include "epoll_int.h"

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
 * Look at every shadow of EP with news (ep->lock held): bring the kernel
 * up to date and note buffered readiness on ep->pend.  *HSDL gets the
 * earliest handshake deadline (0: none).  Returns true when something is
 * ready without the kernel.
 */
static bool
ep_prep(struct ep *ep, uint64_t *hsdl)
{
	struct ep_reg *r, *tmp, *list = NULL, *keep = NULL;
	uint32_t rev;
	bool hs, edge, state;

	ep_mlock(&ep_news_lock);
	DL_FOREACH_SAFE2(ep->news, r, tmp, nnext) {
		DL_DELETE2(ep->news, r, nprev, nnext);
		r->news = false;
		r->cnext = list;
		list = r;
	}
	ep_munlock(&ep_news_lock);

	*hsdl = 0;
	for (r = list; r != NULL; r = tmp) {
		tmp = r->cnext;
		if (r->disabled)
			continue;       /* its MOD brings it back */
		hs = session_state(r->s) < SESSION_OPEN;
		if (hs && now_ms() >= session_hs_deadline(r->s)) {
			/* Its deadline passed: let the session fail it. */
			if ((rev = ep_event(ep, r, 0)) != 0) {
				ep_pend(ep, r, rev);
				continue;
			}
			hs = session_state(r->s) < SESSION_OPEN;
		}
		rev = ep_sync(ep, r) & (r->uev | EPOLLERR | EPOLLHUP);
		/*
		 * Edge-triggered: buffered data is news after an ADD/MOD, or
		 * when more was pulled from the kernel (or the socket shut
		 * down) since the program was last told.  The edge holds all
		 * that is true then, as TCP's does: the kernel's side too
		 * (a shutdown wakes a registration for EPOLLOUT alone).
		 */
		/* A shutdown wakes every registration (TCP's state change);
		 * new data only those that asked for it (TCP's data wake-up
		 * is keyed EPOLLIN), and the peer's end those that asked
		 * for EPOLLRDHUP (its FIN). */
		state = r->seen_st != session_st_gen(r->s);
		edge = state || r->report ||
		    (r->seen_gen != session_rx_gen(r->s) &&
		    ((r->uev & (EPOLLIN | EPOLLRDNORM)) || (rev & EPOLLRDHUP)));
		if ((r->uev & EPOLLET) && (state || (rev != 0 && edge)) &&
		    r->io_fd >= 0)
			rev |= (uint32_t)(unsigned short)session_poll_now(r->s,
			    r->io_fd, ep_want(r)) & (r->uev | EPOLLERR |
			    EPOLLHUP);
		if (rev != 0 && (!(r->uev & EPOLLET) || edge))
			ep_pend(ep, r, rev);
		if (hs) {
			if (*hsdl == 0 || session_hs_deadline(r->s) < *hsdl)
				*hsdl = session_hs_deadline(r->s);
			r->cnext = keep;
			keep = r;
		}
	}
	/* A handshake in flight is looked at on every wait: its deadline. */
	for (r = keep; r != NULL; r = r->cnext)
		ep_push(r);
	return ep->pend != NULL;
}

/*
 * Report what ep->pend holds into EV[OUT..MAX) (ep->lock held); returns
 * the new count.  Level-triggered readiness stays news until consumed.
 */
static int
ep_report(struct ep *ep, struct epoll_event *ev, int out, int max)
{
	struct ep_reg *r, *tmp;

	DL_FOREACH_SAFE2(ep->pend, r, tmp, pnext) {
		if (out >= max)
			break;
		if (r->disabled || r->pending == 0) {
			ep_unpend(ep, r);
			continue;
		}
		LOG(LOG_DEBUG, "fd %d: buffered events %#x", r->fd, r->pending);
		ev[out].events = r->pending;
		ev[out].data = r->udata;
		out++;
		ep_unpend(ep, r);
		r->report = false;
		r->seen_gen = session_rx_gen(r->s);
		r->seen_st = session_st_gen(r->s);
		if (r->uev & EPOLLONESHOT)
			ep_disarm(ep, r);
		else if (!(r->uev & EPOLLET))
			ep_push(r);
	}
	return out;
}

/*
 * One tagged kernel event E for EP (ep->lock held): into *OUT the
 * program's event.  Returns 1 when there is one, 0 when it was swallowed,
 * -1 when EP does not know the tag.
 */
static int
ep_one(struct ep *ep, const struct epoll_event *e, struct epoll_event *out)
{
	struct ep_reg *r;
	uint32_t id = (uint32_t)e->data.u64, rev;

	HASH_FIND(hid, ep->ids, &id, sizeof(id), r);
	if (r == NULL)
		return -1;
	if (r->disabled)
		return 0;
	rev = ep_event(ep, r, e->events);
	ep_push(r);             /* its kernel registration may need a MOD */
	LOG(LOG_DEBUG, "fd %d: kernel events %#x -> %#x", r->fd, e->events,
	    rev);
	if (rev == 0)
		return 0;
	out->events = rev;
	out->data = r->udata;
	return 1;
}

/*
 * Tagged event E came through EPFD but its instance, if any, does not
 * know it: find the instance that does, make EPFD a name of it (when EPFD
 * has none yet), and translate.  Returns as ep_one(); -1 for a tag nobody
 * knows (dropped).
 */
static int
ep_resolve(int epfd, struct ep *skip, const struct epoll_event *e,
    struct epoll_event *out)
{
	struct ep_name *n;
	struct ep *ep, *found = NULL;
	struct ep_reg *r;
	uint32_t id = (uint32_t)e->data.u64;
	int ret = -1;

	ep_mlock(&ep_lock);
	DL_FOREACH(ep_all, ep) {
		if (ep == skip)
			continue;
		ep_mlock(&ep->lock);
		HASH_FIND(hid, ep->ids, &id, sizeof(id), r);
		ep_munlock(&ep->lock);
		if (r != NULL) {
			found = ep;
			break;
		}
	}
	if (found != NULL) {
		HASH_FIND_INT(ep_names, &epfd, n);
		if (n == NULL)
			(void)ep_name_add(epfd, found);
		__atomic_add_fetch(&found->refs, 1, __ATOMIC_ACQ_REL);
	}
	ep_munlock(&ep_lock);
	if (found != NULL) {
		ep_mlock(&found->lock);
		ret = ep_one(found, e, out);
		ep_munlock(&found->lock);
		ep_put(found);
	}
	if (ret < 0) {
		/* Nobody here knows it: made by the image before an exec, or
		 * its socket lives on only in another process.  Dropped: its
		 * kernel registration may belong to another process too, so
		 * it is not ours to delete. */
		LOG(LOG_DEBUG, "epoll fd %d: unknown registration %#" PRIx64
		    " dropped", epfd, e->data.u64);
	}
	return ret;
}

/*
 * Translate the N kernel events in EV in place (EP: the instance EPFD
 * names, or NULL); returns how many the program gets.  *STALE: how many
 * were tags nobody knows.
 */
static int
ep_translate(int epfd, struct ep *ep, struct epoll_event *ev, int n,
    int *stale)
{
	struct epoll_event e;
	int i, out = 0, r, foreign = 0;

	*stale = 0;
	if (ep != NULL)
		ep_mlock(&ep->lock);
	for (i = 0; i < n; i++) {
		e = ev[i];
		if (!ep_tagged(&e)) {
			ev[out++] = e;
			continue;
		}
		r = ep != NULL ? ep_one(ep, &e, &ev[out]) : -1;
		if (r > 0) {
			out++;
		} else if (r < 0) {
			/* Kept, tagged, for after the lock is released. */
			ev[out++] = e;
			foreign++;
		}
	}
	if (ep != NULL)
		ep_munlock(&ep->lock);
	if (foreign == 0)
		return out;
	n = out;
	for (i = 0, out = 0; i < n; i++) {
		e = ev[i];
		if (!ep_tagged(&e))
			ev[out++] = e;
		else if ((r = ep_resolve(epfd, ep, &e, &ev[out])) > 0)
			out++;
		else if (r < 0)
			++*stale;
	}
	return out;
}

/*
 * A wait that got nothing but tags nobody knows: a level-triggered stale
 * registration (an image before exec made it, or its socket lives on in
 * another process only) that the kernel reports again at once and that
 * the shim may not delete.  Waiting on would spin; instead the next kernel
 * wait comes after STALE_PAUSE_US, so such a registration costs a
 * millisecond of latency and a thousand wake-ups a second, not a core.
 */
#define STALE_PAUSE_US 1000

static void
stale_pause(long ms)
{
	struct timespec ts = { 0, STALE_PAUSE_US * 1000L };

	if (ms == 0)
		return;
	if (ms > 0 && ms * 1000 < STALE_PAUSE_US)
		ts.tv_nsec = ms * 1000000L;
	(void)nanosleep(&ts, NULL);
}

static bool
ep_any_tagged(const struct epoll_event *ev, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (ep_tagged(&ev[i]))
			return true;
	return false;
}

int
epoll_wait_sealed(int epfd, struct epoll_event *events, int max,
    long timeout_ms, const sigset_t *mask, bool use_mask)
{
	struct ep *ep;
	uint64_t deadline = 0, now, hsdl;
	long ms;
	int n, out, e = 0, stale = 0;
	bool immediate, pause = false;

	if (max <= 0 || events == NULL)
		return -2;
	if ((ep = ep_get(epfd, false)) == NULL)
		return -2;
	if (timeout_ms >= 0)
		deadline = now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		ep_mlock(&ep->lock);
		immediate = ep_prep(ep, &hsdl);
		ep_munlock(&ep->lock);

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

		if (pause && !immediate)
			stale_pause(ms);
		/* Counted while blocked: a shutdown() elsewhere wakes us. */
		if (ms != 0)
			__atomic_add_fetch(&ep->waiting, 1, __ATOMIC_RELAXED);
		n = kernel_wait(epfd, events, max, ms, mask, use_mask);
		if (n < 0)
			e = errno;
		if (ms != 0)
			__atomic_sub_fetch(&ep->waiting, 1, __ATOMIC_RELAXED);
		if (n < 0) {
			out = -1;
			break;
		}
		out = ep_translate(epfd, ep, events, n, &stale);
		pause = out == 0 && n > 0 && stale == n;
		/* Buffered readiness the kernel could not know about. */
		ep_mlock(&ep->lock);
		out = ep_report(ep, events, out, max);
		ep_munlock(&ep->lock);

		if (out > 0 || (timeout_ms >= 0 && now_ms() >= deadline))
			break;
	}
	ep_put(ep);
	if (out < 0)
		errno = e;
	return out;
}

int
epoll_filtered(int epfd, struct epoll_event *events, int max, int n,
    long timeout_ms, uint64_t t0, const sigset_t *mask, bool use_mask)
{
	uint64_t now;
	long left;
	int saved = errno, r, stale, got;

	for (;;) {
		if (n <= 0 || !ep_any_tagged(events, n)) {
			if (n < 0)
				errno = saved;
			return n;
		}
		got = n;
		n = ep_translate(epfd, NULL, events, n, &stale);
		if (n > 0 || timeout_ms == 0)
			return n;
		/* Everything was swallowed: wait on with the time left, now
		 * through the instance the tags named. */
		left = -1;
		if (timeout_ms > 0) {
			now = now_ms();
			if (now >= t0 + (uint64_t)timeout_ms)
				return 0;
			left = (long)(t0 + (uint64_t)timeout_ms - now);
		}
		r = epoll_wait_sealed(epfd, events, max, left, mask, use_mask);
		if (r != -2)
			return r;
		if (stale == got)
			stale_pause(left);
		n = kernel_wait(epfd, events, max, left, mask, use_mask);
		saved = errno;
	}
}
