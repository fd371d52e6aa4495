/*
 * hook_close: calls that end or copy an fd: close, shutdown, dup, dup2,
 * dup3, fcntl/fcntl64 (F_DUPFD, F_DUPFD_CLOEXEC), close_range, closefrom,
 * and syscall() for the same numbers.
 *
 * Closing the last fd of a session in this process sends the end-of-stream
 * mark first (or arms a reset for a failed session).  dup2/dup3 onto a
 * sealed fd close it implicitly, so they do the same for the target.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "hook.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* FD is going away: run the session's close path if it was the last fd. */
static void
close_fd(int fd)
{
	struct session *s;
	bool last;

	epoll_pre_done(fd, NULL);
	if ((s = fdtab_take(fd, &last)) == NULL) {
		epoll_closed(fd, NULL, false);
		return;
	}
	if (last)
		session_close_last(s, fd);
	epoll_closed(fd, s, last);
	session_put(s);
}

int
hook_close_fd(int fd)
{
	if (fdtab_maybe(fd) || epoll_any() || epoll_pre_is(fd))
		close_fd(fd);
	return real_close(fd);
}

HOOK int
close(int fd)
{
	return hook_close_fd(fd);
}

HOOK int
shutdown(int fd, int how)
{
	struct session *s;
	int r;

	if ((s = fdtab_get(fd)) == NULL)
		return real_shutdown(fd, how);
	r = session_shutdown(s, fd, how, how != SHUT_WR && epoll_waited(s));
	epoll_touch(s);
	session_put(s);
	return (int)hook_ret(r);
}

/* NEWFD is a copy of FD: share FD's session, if any. */
static int
dup_track(int fd, int newfd)
{
	struct session *s;
	int saved = errno;

	if (newfd < 0)
		return newfd;
	if ((s = fdtab_get(fd)) != NULL) {
		if (fdtab_set(newfd, s) < 0) {
			/* Cannot track the copy: it must not carry plaintext. */
			session_put(s);
			real_close(newfd);
			errno = ENOMEM;
			return -1;
		}
		epoll_dup(newfd, s);
		session_put(s);
	} else if (fdtab_maybe(newfd)) {
		fdtab_drop(newfd);
	}
	errno = saved;
	return newfd;
}

HOOK int
dup(int fd)
{
	return dup_track(fd, real_dup(fd));
}

/* FD2 became a copy of another fd: if it is stderr, logs follow it. */
static int
dup_onto(int fd, int fd2)
{
	if (fd2 == STDERR_FILENO)
		log_stderr_moved();
	return fd2;
}

HOOK int
dup2(int fd, int fd2)
{
	if (fd != fd2 && (fdtab_maybe(fd2) || epoll_any()) &&
	    real_fcntl(fd, F_GETFD, 0) >= 0)
		close_fd(fd2);
	return dup_onto(fd, dup_track(fd, real_dup2(fd, fd2)));
}

HOOK int
dup3(int fd, int fd2, int flags)
{
	if (fd != fd2 && (fdtab_maybe(fd2) || epoll_any()) &&
	    real_fcntl(fd, F_GETFD, 0) >= 0)
		close_fd(fd2);
	return dup_onto(fd, dup_track(fd, real_dup3(fd, fd2, flags)));
}

static int
fcntl_common(int fd, int cmd, long arg)
{
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return dup_track(fd, real_fcntl(fd, cmd, arg));
	return real_fcntl(fd, cmd, arg);
}

HOOK int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

HOOK int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

HOOK int
close_range(unsigned int first, unsigned int last, int flags)
{
	enum { BATCH = 256 };
	int fds[BATCH], n, i;
	struct session *ss[BATCH];

	int found;

	/* Snapshot in batches until no sealed fd is left in the range. */
	if (!(flags & CLOSE_RANGE_CLOEXEC)) {
		do {
			found = 0;
			n = fdtab_snapshot(fds, ss, BATCH);
			for (i = 0; i < n; i++) {
				if ((unsigned int)fds[i] >= first &&
				    (unsigned int)fds[i] <= last) {
					close_fd(fds[i]);
					found++;
				}
				session_put(ss[i]);
			}
		} while (found > 0 && n == BATCH);
	}
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		epoll_closed_range(first, last);
	return real_close_range(first, last, flags);
}

HOOK void
closefrom(int lowfd)
{
	static void (*f)(int);

	(void)close_range((unsigned int)(lowfd < 0 ? 0 : lowfd), ~0U, 0);
	/* close_range did the work; closefrom only adds what it cannot
	 * fail at (it falls back to closing one by one in libc). */
	if (f == NULL)
		f = (void (*)(int))real_sym_lookup("closefrom");
	if (f != NULL)
		f(lowfd);
}

/*
 * syscall(): node (libuv) closes sockets with syscall(SYS_close, fd), which
 * bypasses close().  Only the numbers that end or copy an fd are looked
 * at; everything else goes to libc's syscall() with its six arguments.
 */
HOOK long
syscall(long n, ...)
{
	static long (*f)(long, ...);
	long a[6];
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (n) {
	case SYS_close:
		return hook_close_fd((int)a[0]);
	case SYS_close_range:
		return close_range((unsigned int)a[0], (unsigned int)a[1],
		    (int)a[2]);
	case SYS_dup:
		return dup((int)a[0]);
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_seccomp:
		hook_sandbox();
		break;
	default:
		break;
	}
	if (f == NULL &&
	    (f = (long (*)(long, ...))real_sym_lookup("syscall")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return f(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
