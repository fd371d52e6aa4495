/*
 * hook_epoll: epoll_create, epoll_create1, epoll_ctl, epoll_wait,
 * epoll_pwait, epoll_pwait2.  Programs that never register a sealed fd go
 * straight to libc after one atomic load, and what the kernel returns is
 * scanned once for the shim's tags (epoll_filtered: no tagged event ever
 * reaches the program, whatever path the wait took); the translation is
 * in epoll.c.
 */
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

#include "epoll.h"
#include "fdtab.h"
#include "real.h"
#include "session.h"
#include "hook.h"

/* A new epoll fd may reuse the number of one closed behind our back. */
static int
created(int fd)
{
	int saved = errno;

	if (fd >= 0 && epoll_any())
		epoll_closed(fd, NULL, false);
	errno = saved;
	return fd;
}

HOOK int
epoll_create(int size)
{
	return created(real_epoll_create(size));
}

HOOK int
epoll_create1(int flags)
{
	return created(real_epoll_create1(flags));
}

HOOK int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int r;

	if (!fdtab_maybe(fd) && !epoll_any())
		r = real_epoll_ctl(epfd, op, fd, ev);
	else
		r = (int)hook_ret(epoll_ctl_sealed(epfd, op, fd, ev));
	if (r == 0 && epoll_pre_is(fd)) {
		/* A TCP socket not connected yet: connect() may seal it. */
		epoll_pre_ctl(epfd, op, fd, ev);
	}
	return r;
}

/* now_ms() when the wait has a time limit to resume within, else 0. */
static uint64_t
start(long ms)
{
	return ms > 0 ? now_ms() : 0;
}

HOOK int
epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	long ms = timeout < 0 ? -1 : timeout;
	uint64_t t0;
	int r;

	if (epoll_any()) {
		r = epoll_wait_sealed(epfd, ev, max, ms, NULL, false);
		if (r != -2)
			return r;
	}
	t0 = start(ms);
	r = real_epoll_wait(epfd, ev, max, timeout);
	return epoll_filtered(epfd, ev, max, r, ms, t0, NULL, false);
}

HOOK int
epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
    const sigset_t *mask)
{
	long ms = timeout < 0 ? -1 : timeout;
	uint64_t t0;
	int r;

	if (epoll_any()) {
		r = epoll_wait_sealed(epfd, ev, max, ms, mask, true);
		if (r != -2)
			return r;
	}
	t0 = start(ms);
	r = real_epoll_pwait(epfd, ev, max, timeout, mask);
	return epoll_filtered(epfd, ev, max, r, ms, t0, mask, true);
}

HOOK int
epoll_pwait2(int epfd, struct epoll_event *ev, int max,
    const struct timespec *ts, const sigset_t *mask)
{
	long ms;
	uint64_t t0;
	int r;

	ms = ts == NULL ? -1 :
	    (long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	if (epoll_any()) {
		r = epoll_wait_sealed(epfd, ev, max, ms, mask, true);
		if (r != -2)
			return r;
	}
	t0 = start(ms);
	r = real_epoll_pwait2(epfd, ev, max, ts, mask);
	return epoll_filtered(epfd, ev, max, r, ms, t0, mask, true);
}
