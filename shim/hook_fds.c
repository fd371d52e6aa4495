/*
 * hook_fds: calls that return a new fd.  An fd the shim tracked may have
 * been closed where no interposer sees it (glibc's internal closes, a
 * raw syscall); when the number comes back as something else, its stale
 * session must go, or the shim would treat a file or pipe as a sealed
 * socket.  Each hook costs one atomic load on the returned number.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "epoll.h"
#include "fdtab.h"
#include "real.h"
#include "hook.h"

/* NEW is a fresh fd: forget whatever the number meant before. */
static int
fresh(int fd)
{
	int saved = errno;

	if (fd >= 0)
		fdtab_fresh(fd);
	if (fd >= 0 && epoll_any())
		epoll_closed(fd, NULL, false);
	errno = saved;
	return fd;
}

/* open's mode: the variadic argument, there only with O_CREAT or O_TMPFILE. */
static mode_t
open_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

HOOK int
open(const char *path, int flags, ...)
{
	mode_t mode;
	va_list ap;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fresh(real_open(path, flags, mode));
}

HOOK int
open64(const char *path, int flags, ...)
{
	mode_t mode;
	va_list ap;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fresh(real_open64(path, flags, mode));
}

HOOK int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;
	va_list ap;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fresh(real_openat(dirfd, path, flags, mode));
}

HOOK int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;
	va_list ap;

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return fresh(real_openat64(dirfd, path, flags, mode));
}

HOOK int
creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

HOOK int
creat64(const char *path, mode_t mode)
{
	return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

static int
pair(int r, int fds[2])
{
	if (r == 0) {
		fresh(fds[0]);
		fresh(fds[1]);
	}
	return r;
}

HOOK int
pipe(int fds[2])
{
	return pair(real_pipe(fds), fds);
}

HOOK int
pipe2(int fds[2], int flags)
{
	return pair(real_pipe2(fds, flags), fds);
}

HOOK int
socketpair(int domain, int type, int proto, int fds[2])
{
	return pair(real_socketpair(domain, type, proto, fds), fds);
}

HOOK int
eventfd(unsigned int initval, int flags)
{
	return fresh(real_eventfd(initval, flags));
}

static FILE *
fresh_file(FILE *f)
{
	if (f != NULL)
		(void)fresh(fileno(f));
	return f;
}

HOOK FILE *
fopen(const char *path, const char *mode)
{
	return fresh_file(real_fopen(path, mode));
}

HOOK FILE *
fopen64(const char *path, const char *mode)
{
	return fresh_file(real_fopen64(path, mode));
}
