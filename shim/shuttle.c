/*
 * shuttle: the shim's private pipe for emulated splices (shuttle.h).
 * sh_lock guards sh_fd and the shuttle's contents; it is taken under a
 * session's tx_lock or rx_lock, never the other way round, and nothing
 * waits while holding it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>

#include "init.h"
#include "log.h"
#include "real.h"
#include "standin.h"
#include "shuttle.h"

/* One session batch (SESSION_TBATCH records) fits. */
#define SHUTTLE_WANT    (256 * 1024)

static pthread_mutex_t sh_lock = PTHREAD_MUTEX_INITIALIZER;
static int sh_fd[2] = { -1, -1 };
static size_t sh_cap;

static void
sh_drop(void)
{
	if (sh_fd[0] >= 0)
		standin_close(sh_fd[0]);
	if (sh_fd[1] >= 0)
		standin_close(sh_fd[1]);
	sh_fd[0] = sh_fd[1] = -1;
}

/* The shuttle, made if need be (sh_lock held): false if there is none. */
static bool
sh_get(void)
{
	int p[2], c;

	if (sh_fd[0] >= 0)
		return true;
	if (shim_in_sandbox() || real_pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return false;
	sh_fd[0] = standin_hide(p[0], true);
	sh_fd[1] = standin_hide(p[1], true);
	real_close(p[0]);
	real_close(p[1]);
	if (sh_fd[0] < 0 || sh_fd[1] < 0) {
		sh_drop();
		return false;
	}
	(void)real_fcntl(sh_fd[1], F_SETPIPE_SZ, SHUTTLE_WANT);
	c = real_fcntl(sh_fd[1], F_GETPIPE_SZ, 0);
	sh_cap = c > 0 ? (size_t)c : 65536;
	return true;
}

/*
 * Read exactly N bytes, all the shuttle holds, into BUF (sh_lock held).
 * It cannot fall short; if it ever did, the shuttle would hand stale
 * bytes to the next call, so it goes and the call fails.
 */
static int
sh_empty_into(void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = real_read(sh_fd[0], (char *)buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		LOG(LOG_ERROR, "splice: the shim's pipe gave %zu of %zu bytes; "
		    "failing the call", got, n);
		sh_drop();
		return -EIO;
	}
	return 0;
}

ssize_t
shuttle_from_pipe(int pfd, void *buf, size_t n)
{
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	ssize_t r;
	int avail;

	pthread_mutex_lock(&sh_lock);
	if (sh_get()) {
		r = real_splice(pfd, NULL, sh_fd[1], NULL,
		    n < sh_cap ? n : sh_cap, SPLICE_F_NONBLOCK);
		if (r < 0)
			r = -errno;
		else if (r > 0 && sh_empty_into(buf, (size_t)r) < 0)
			r = -EIO;
	} else if (real_ioctl(pfd, FIONREAD, &avail) < 0) {
		r = -errno;
	} else if (avail > 0) {
		r = real_read(pfd, buf, (size_t)avail < n ? (size_t)avail : n);
		if (r < 0)
			r = -errno;
	} else {
		/* Empty: its end if nobody writes to it any more. */
		r = real_poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) &&
		    !(p.revents & POLLIN) ? 0 : -EAGAIN;
	}
	pthread_mutex_unlock(&sh_lock);
	return r;
}

ssize_t
shuttle_to_pipe(int pfd, void *buf, size_t n, unsigned int flags)
{
	ssize_t w, k, r;
	int fl;

	pthread_mutex_lock(&sh_lock);
	if (sh_get()) {
		if ((w = real_write(sh_fd[1], buf, n < sh_cap ? n : sh_cap)) < 0) {
			r = -errno;
			goto out;
		}
		k = real_splice(sh_fd[0], NULL, pfd, NULL, (size_t)w,
		    SPLICE_F_NONBLOCK | (flags & SPLICE_F_MORE));
		r = k < 0 ? -errno : k;
		if (k < 0)
			k = 0;
		/* Back out of the shuttle, onto the very bytes they copy (if
		 * that failed, the shuttle is gone; R is still what moved). */
		if (k < w)
			(void)sh_empty_into((char *)buf + k, (size_t)(w - k));
	} else if ((fl = real_fcntl(pfd, F_GETFL, 0)) < 0) {
		r = -errno;
	} else {
		if (!(fl & O_NONBLOCK) && n > PIPE_BUF)
			n = PIPE_BUF;
		r = real_write(pfd, buf, n);
		if (r < 0)
			r = -errno;
	}
out:
	pthread_mutex_unlock(&sh_lock);
	return r;
}

void
shuttle_prepare(void)
{
	int e = errno;

	pthread_mutex_lock(&sh_lock);
	(void)sh_get();
	pthread_mutex_unlock(&sh_lock);
	errno = e;
}

void
shuttle_fork_child(void)
{
	pthread_mutex_init(&sh_lock, NULL);
	sh_drop();
}
