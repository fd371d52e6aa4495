/*
 * ready: see ready.h for the design.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "epoll.h"
#include "fdtab.h"
#include "real.h"
#include "session.h"
#include "ready.h"

#define READY_STACK 64

bool
ready_has_sealed(const struct pollfd *fds, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (fdtab_maybe(fds[i].fd))
			return true;
	return false;
}

static int
kernel_poll(struct pollfd *fds, nfds_t n, long ms, const sigset_t *mask,
    bool use_mask)
{
	struct timespec ts;

	if (!use_mask)
		return real_poll(fds, n, ms > 0x7fffffffL ? 0x7fffffff : (int)ms);
	if (ms < 0)
		return real_ppoll(fds, n, NULL, mask);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	return real_ppoll(fds, n, &ts, mask);
}

int
ready_poll(struct pollfd *fds, nfds_t n, long timeout_ms, const sigset_t *mask,
    bool use_mask)
{
	struct session *ss_stack[READY_STACK], **ss = ss_stack;
	short want_stack[READY_STACK], *want = want_stack;
	short pre_stack[READY_STACK], *pre = pre_stack;
	int ofd_stack[READY_STACK], *ofd = ofd_stack;
	uint64_t deadline = 0, now, hsdl;
	long ms;
	nfds_t i;
	int r, count, e = 0;
	short kev;
	bool immediate;

	if (n > READY_STACK) {
		ss = calloc(n, sizeof(*ss));
		want = calloc(n, sizeof(*want));
		pre = calloc(n, sizeof(*pre));
		ofd = calloc(n, sizeof(*ofd));
		if (ss == NULL || want == NULL || pre == NULL || ofd == NULL) {
			free(ss);
			free(want);
			free(pre);
			free(ofd);
			return kernel_poll(fds, n, timeout_ms, mask, use_mask);
		}
	}
	for (i = 0; i < n; i++) {
		ss[i] = fdtab_get(fds[i].fd);
		want[i] = fds[i].events;
		ofd[i] = fds[i].fd;
	}
	if (timeout_ms >= 0)
		deadline = now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		immediate = false;
		hsdl = 0;
		for (i = 0; i < n; i++) {
			if (ss[i] == NULL)
				continue;
			pre[i] = session_poll_prep(ss[i], want[i], &kev);
			fds[i].events = kev;
			if (pre[i])
				immediate = true;
			if (session_state(ss[i]) < SESSION_OPEN &&
			    (hsdl == 0 || session_hs_deadline(ss[i]) < hsdl))
				hsdl = session_hs_deadline(ss[i]);
		}
		now = now_ms();
		if (immediate)
			ms = 0;
		else if (timeout_ms < 0)
			ms = -1;
		else
			ms = deadline > now ? (long)(deadline - now) : 0;
		/* Wake up for a handshake deadline, to fail it on time. */
		if (hsdl != 0 && (ms < 0 || (uint64_t)ms > (hsdl > now ? hsdl - now : 0)))
			ms = hsdl > now ? (long)(hsdl - now) : 0;

		/* Counted while blocked: a shutdown() elsewhere wakes us.  The
		 * kernel is asked about the socket, not the stand-in. */
		for (i = 0; i < n; i++) {
			if (ss[i] == NULL)
				continue;
			fds[i].fd = session_kfd(ss[i], ofd[i]);
			if (ms != 0)
				session_pollers_add(ss[i], 1);
		}
		r = kernel_poll(fds, n, ms, mask, use_mask);
		e = errno;
		for (i = 0; i < n; i++)
			fds[i].fd = ofd[i];
		for (i = 0; ms != 0 && i < n; i++)
			if (ss[i] != NULL)
				session_pollers_add(ss[i], -1);
		if (r < 0) {
			for (i = 0; i < n; i++)
				fds[i].events = want[i];
			count = -1;
			break;
		}
		count = 0;
		for (i = 0; i < n; i++) {
			if (ss[i] != NULL) {
				short rev = pre[i] | session_poll_after(ss[i],
				    fds[i].fd, want[i], fds[i].revents);
				rev |= fds[i].revents & POLLNVAL;
				fds[i].revents = rev &
				    (want[i] | POLLERR | POLLHUP | POLLNVAL);
				fds[i].events = want[i];
			}
			if (fds[i].revents)
				count++;
		}
		if (count > 0 || (timeout_ms >= 0 && now_ms() >= deadline))
			break;
		for (i = 0; i < n; i++)
			if (ss[i] == NULL)
				fds[i].revents = 0;
	}
	for (i = 0; i < n; i++) {
		epoll_touch(ss[i]);
		session_put(ss[i]);
	}
	if (ss != ss_stack) {
		free(ss);
		free(want);
		free(pre);
		free(ofd);
	}
	if (count < 0)
		errno = e;
	return count;
}

int
ready_select(int n, fd_set *r, fd_set *w, fd_set *e, long timeout_ms,
    const sigset_t *mask, bool use_mask, long *left_ms)
{
	struct pollfd stack[READY_STACK], *p = stack;
	nfds_t np = 0, i;
	uint64_t t0 = now_ms();
	bool sealed = false;
	int fd, ret, cnt;
	short ev;

	for (fd = 0; fd < n && fd < FD_SETSIZE; fd++) {
		if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) ||
		    (e && FD_ISSET(fd, e))) {
			np++;
			if (fdtab_maybe(fd))
				sealed = true;
		}
	}
	if (!sealed)
		return -2;
	if (np > READY_STACK && (p = calloc(np, sizeof(*p))) == NULL)
		return -2;
	for (fd = 0, i = 0; fd < n && fd < FD_SETSIZE; fd++) {
		ev = 0;
		if (r && FD_ISSET(fd, r))
			ev |= POLLIN;
		if (w && FD_ISSET(fd, w))
			ev |= POLLOUT;
		if (e && FD_ISSET(fd, e))
			ev |= POLLPRI;
		if (ev == 0)
			continue;
		p[i].fd = fd;
		p[i].events = ev;
		p[i].revents = 0;
		i++;
	}
	ret = ready_poll(p, np, timeout_ms, mask, use_mask);
	if (ret >= 0) {
		for (i = 0; i < np; i++) {
			if (p[i].revents & POLLNVAL) {
				ret = -1;
				errno = EBADF;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (r) FD_ZERO(r);
		if (w) FD_ZERO(w);
		if (e) FD_ZERO(e);
		cnt = 0;
		for (i = 0; i < np; i++) {
			ev = p[i].revents;
			if (r && (p[i].events & POLLIN) &&
			    (ev & (POLLIN | POLLHUP | POLLERR))) {
				FD_SET(p[i].fd, r);
				cnt++;
			}
			if (w && (p[i].events & POLLOUT) &&
			    (ev & (POLLOUT | POLLERR))) {
				FD_SET(p[i].fd, w);
				cnt++;
			}
			if (e && (p[i].events & POLLPRI) && (ev & POLLPRI)) {
				FD_SET(p[i].fd, e);
				cnt++;
			}
		}
		ret = cnt;
	}
	if (left_ms != NULL) {
		uint64_t spent = now_ms() - t0;
		*left_ms = timeout_ms < 0 ? -1 :
		    (spent >= (uint64_t)timeout_ms ? 0 : timeout_ms - (long)spent);
	}
	if (p != stack) {
		int saved = errno;
		free(p);
		errno = saved;
	}
	return ret;
}
