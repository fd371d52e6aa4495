/*
 * hook_close: calls that end or copy an fd: close, shutdown, dup, dup2,
 * dup3, fcntl/fcntl64 (F_DUPFD, F_DUPFD_CLOEXEC), close_range, closefrom
 * (syscall() for the same numbers: hook_syscall.c).
 *
 * Closing the last fd of a session in this process sends the end-of-stream
 * mark first (or arms a reset for a failed session).  dup2/dup3 onto a
 * sealed fd close it implicitly, so they do the same for the target.
 *
 * The shim's own descriptors (kfds, standin.h) are not the program's: a
 * close, dup or fcntl of one fails with EBADF as on a number nothing holds,
 * close_range and closefrom go around them, and dup2 onto one moves it
 * first.  A kfd is inherited across exec exactly when one of the program's
 * fds on its stand-in is (hook_kfd_sync).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epoll.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "nofile.h"
#include "standin.h"
#include "hook.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/*
 * S's kfd (and state object) is close-on-exec unless one of the program's
 * fds on S is not: an exec'd image gets the socket exactly when it gets a
 * stand-in for it.
 */
void
hook_kfd_sync(struct session *s)
{
	int fds[64], n, i, fl, k, inherit = 0;

	if (s == NULL || (k = session_kfd(s, -1)) < 0)
		return;
	n = fdtab_fds_of(s, fds, 64);
	for (i = 0; i < n && !inherit; i++)
		if ((fl = real_fcntl(fds[i], F_GETFD, 0)) >= 0 &&
		    !(fl & FD_CLOEXEC))
			inherit = 1;
	if ((fl = real_fcntl(k, F_GETFD, 0)) >= 0 &&
	    ((fl & FD_CLOEXEC) != 0) == inherit)
		(void)real_fcntl(k, F_SETFD, inherit ? fl & ~FD_CLOEXEC :
		    fl | FD_CLOEXEC);
	/* The state object goes where the socket goes. */
	if ((k = session_sfd(s)) >= 0 && (fl = real_fcntl(k, F_GETFD, 0)) >= 0 &&
	    ((fl & FD_CLOEXEC) != 0) == inherit)
		(void)real_fcntl(k, F_SETFD, inherit ? fl & ~FD_CLOEXEC :
		    fl | FD_CLOEXEC);
}

void
hook_kfd_sync_all(void)
{
	enum { BATCH = 256 };
	int fds[BATCH], n, i, saved = errno;
	struct session *ss[BATCH];

	n = fdtab_snapshot(fds, ss, BATCH);
	for (i = 0; i < n; i++) {
		hook_kfd_sync(ss[i]);
		session_put(ss[i]);
	}
	errno = saved;
}

/* kfd_sync for FD's session, if it has one. */
static void
kfd_sync_fd(int fd)
{
	struct session *s;
	int saved = errno;

	if ((s = fdtab_get(fd)) != NULL) {
		hook_kfd_sync(s);
		session_put(s);
	}
	errno = saved;
}

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
	else
		hook_kfd_sync(s);
	epoll_closed(fd, s, last);
	session_put(s);
}

/* FD is one of the shim's: the program sees no such descriptor. */
static int
not_yours(void)
{
	errno = EBADF;
	return -1;
}

int
hook_close_fd(int fd)
{
	if (standin_is_kfd(fd))
		return not_yours();
	/* (A vfork() child's close is its own; the tables are its
	 * parent's, which keeps the fd.) */
	if ((fdtab_maybe(fd) || epoll_any() || epoll_pre_is(fd)) &&
	    !shim_foreign())
		close_fd(fd);
	return real_close(fd);
}

/*
 * The program dup2's onto FD2, which is a kfd: without the shim nothing
 * would be there, so the kfd moves first.  Above the program's own limit
 * the kernel would refuse the number: EBADF, as it would.
 */
static int
kfd_vacate(int fd2)
{
	struct session *s;
	struct rlimit rl;
	int k;

	if (nofile_get(&rl) == 0 && (rlim_t)fd2 >= rl.rlim_cur)
		return -EBADF;
	if ((s = fdtab_kfd_owner(fd2)) == NULL)
		return -EBUSY;          /* an epoll copy (kown): rare */
	if ((k = standin_dup(fd2)) < 0) {
		session_put(s);
		return -errno;
	}
	if (session_sfd(s) == fd2) {
		session_move_sfd(s, k);
	} else {
		epoll_kfd_moved(s, fd2, k);
		session_move_kfd(s, k);
	}
	standin_mark(fd2, false);
	session_put(s);
	return 0;
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

	if (newfd < 0 || shim_foreign())
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
		hook_kfd_sync(s);
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
	if (standin_is_kfd(fd))
		return not_yours();
	return dup_track(fd, real_dup(fd));
}

/* dup2/dup3's checks: -1 with errno set when the call must not go on. */
static int
dup_onto_check(int fd, int fd2)
{
	int r;

	if (standin_is_kfd(fd))
		return not_yours();
	if (fd != fd2 && standin_is_kfd(fd2) && (r = kfd_vacate(fd2)) < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}

/* FD2 became a copy of another fd: if it is stderr, logs follow it; a
 * standard stream on a sealed fd goes through the shim. */
static int
dup_onto(int fd, int fd2)
{
	if (fd2 == STDERR_FILENO)
		log_stderr_moved();
	if (fd2 >= 0 && fd2 <= 2)
		hook_stdio_moved(fd2);
	return fd2;
}

HOOK int
dup2(int fd, int fd2)
{
	if (dup_onto_check(fd, fd2) < 0)
		return -1;
	if (fd != fd2 && (fdtab_maybe(fd2) || epoll_any()) && !shim_foreign() && !shim_foreign() &&
	    real_fcntl(fd, F_GETFD, 0) >= 0)
		close_fd(fd2);
	return dup_onto(fd, dup_track(fd, real_dup2(fd, fd2)));
}

HOOK int
dup3(int fd, int fd2, int flags)
{
	if (dup_onto_check(fd, fd2) < 0)
		return -1;
	if (fd != fd2 && (fdtab_maybe(fd2) || epoll_any()) && !shim_foreign() && !shim_foreign() &&
	    real_fcntl(fd, F_GETFD, 0) >= 0)
		close_fd(fd2);
	return dup_onto(fd, dup_track(fd, real_dup3(fd, fd2, flags)));
}

/*
 * fcntl on a sealed fd: the descriptor's own flags (F_GETFD/F_SETFD) and
 * copies are the stand-in's; the file's status flags, owner and signal are
 * the socket's, and O_NONBLOCK is kept on both so that the stand-in fails
 * as the socket would block or not.
 */
static int
fcntl_common(int fd, int cmd, long arg)
{
	struct session *s;
	int r, e;

	if (standin_is_kfd(fd))
		return not_yours();
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return dup_track(fd, real_fcntl(fd, cmd, arg));
	if (!fdtab_maybe(fd))
		return real_fcntl(fd, cmd, arg);
	if (cmd == F_GETFD)
		return real_fcntl(fd, cmd, arg);
	if (cmd == F_SETFD) {
		r = real_fcntl(fd, cmd, arg);
		kfd_sync_fd(fd);
		return r;
	}
	if ((s = fdtab_get(fd)) == NULL)
		return real_fcntl(fd, cmd, arg);
	r = real_fcntl(session_kfd(s, fd), cmd, arg);
	e = errno;
	if (cmd == F_SETFL && r == 0)
		(void)real_fcntl(fd, cmd, arg);
	session_put(s);
	errno = e;
	return r;
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

/* Apply the kernel's close_range to [FIRST, LAST] minus the shim's own
 * descriptors. */
static int
close_gaps(unsigned int first, unsigned int last, int flags)
{
	enum { BATCH = 256 };
	int k[BATCH], n, i, r = 0;
	unsigned int lo = first;

	for (;;) {
		n = standin_kfds(lo, last, k, BATCH);
		for (i = 0; i < n; i++) {
			if ((unsigned int)k[i] > lo &&
			    real_close_range(lo, (unsigned int)k[i] - 1, flags) < 0)
				r = -1;
			lo = (unsigned int)k[i] + 1;
			if (lo == 0)            /* k was ~0U */
				return r;
		}
		if (n < BATCH)
			break;
	}
	if (lo <= last && real_close_range(lo, last, flags) < 0)
		r = -1;
	return r;
}

HOOK int
close_range(unsigned int first, unsigned int last, int flags)
{
	enum { BATCH = 256 };
	int fds[BATCH], n, i, r, e;
	struct session *ss[BATCH];
	int found;

	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	/* Snapshot in batches until no sealed fd is left in the range
	 * (not in a vfork() child: the tables are its parent's). */
	if (!(flags & CLOSE_RANGE_CLOEXEC) && !shim_foreign()) {
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
	if (!(flags & CLOSE_RANGE_CLOEXEC) && !shim_foreign())
		epoll_closed_range(first, last);
	r = close_gaps(first, last, flags);
	e = errno;
	if (flags & CLOSE_RANGE_CLOEXEC) {
		n = fdtab_snapshot(fds, ss, BATCH);
		for (i = 0; i < n; i++) {
			hook_kfd_sync(ss[i]);
			session_put(ss[i]);
		}
	}
	errno = e;
	return r;
}

HOOK void
closefrom(int lowfd)
{
	struct dirent *d;
	DIR *dir;
	int fd, saved = errno;

	if (close_range((unsigned int)(lowfd < 0 ? 0 : lowfd), ~0U, 0) == 0 ||
	    errno != ENOSYS) {
		errno = saved;
		return;
	}
	/* No close_range (an old kernel): one by one, as libc would. */
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			fd = atoi(d->d_name);
			if (d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
			    fd >= lowfd && fd != dirfd(dir))
				(void)hook_close_fd(fd);
		}
		closedir(dir);
	}
	errno = saved;
}
