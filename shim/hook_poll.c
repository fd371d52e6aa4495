/*
 * hook_poll: poll, ppoll, select, pselect and the fortified __poll_chk.
 * Sets without a sealed fd go straight to libc; the others go through
 * ready.c's translation.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

/* glibc declares poll()'s array write-only (__attr_access), so gcc warns
 * when the hook reads the events the program put there. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "ready.h"
#include "real.h"
#include "hook.h"

extern void __chk_fail(void) __attribute__((noreturn));
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

static long
ts_ms(const struct timespec *ts)
{
	if (ts == NULL)
		return -1;
	return (long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
}

HOOK int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!ready_has_sealed(fds, n))
		return real_poll(fds, n, timeout);
	return ready_poll(fds, n, timeout < 0 ? -1 : timeout, NULL, false);
}

HOOK int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		__chk_fail();
	return poll(fds, n, timeout);
}

HOOK int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *mask)
{
	if (!ready_has_sealed(fds, n))
		return real_ppoll(fds, n, ts, mask);
	return ready_poll(fds, n, ts_ms(ts), mask, true);
}

HOOK int
select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	long ms = tv == NULL ? -1 :
	    (long)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
	long left;
	int ret;

	ret = ready_select(n, r, w, e, ms, NULL, false, &left);
	if (ret == -2)
		return real_select(n, r, w, e, tv);
	if (tv != NULL && left >= 0) {
		tv->tv_sec = left / 1000;
		tv->tv_usec = (left % 1000) * 1000;
	}
	return ret;
}

HOOK int
pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
    const sigset_t *mask)
{
	int ret;

	ret = ready_select(n, r, w, e, ts_ms(ts), mask, true, NULL);
	if (ret == -2)
		return real_pselect(n, r, w, e, ts, mask);
	return ret;
}
