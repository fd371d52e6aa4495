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

	if (fd >= 0 && fdtab_maybe(fd))
		fdtab_drop(fd);
	if (fd >= 0 && epoll_any())
		epoll_closed(fd, NULL, false);
	errno = saved;
	return fd;
}

#define RESOLVE(var, name) \
	((var) != NULL || ((var) = real_sym_lookup(name)) != NULL)

static int
open_common(const char *sym, void **slot, const char *path, int flags,
    va_list ap)
{
	mode_t mode = 0;
	int (*f)(const char *, int, ...);

	if (flags & (O_CREAT | __O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	if (!RESOLVE(*slot, sym)) {
		errno = ENOSYS;
		return -1;
	}
	f = (int (*)(const char *, int, ...))*slot;
	return fresh(f(path, flags, mode));
}

HOOK int
open(const char *path, int flags, ...)
{
	static void *p;
	va_list ap;
	int r;

	va_start(ap, flags);
	r = open_common("open", &p, path, flags, ap);
	va_end(ap);
	return r;
}

HOOK int
open64(const char *path, int flags, ...)
{
	static void *p;
	va_list ap;
	int r;

	va_start(ap, flags);
	r = open_common("open64", &p, path, flags, ap);
	va_end(ap);
	return r;
}

static int
openat_common(const char *sym, void **slot, int dirfd, const char *path,
    int flags, va_list ap)
{
	mode_t mode = 0;
	int (*f)(int, const char *, int, ...);

	if (flags & (O_CREAT | __O_TMPFILE))
		mode = (mode_t)va_arg(ap, int);
	if (!RESOLVE(*slot, sym)) {
		errno = ENOSYS;
		return -1;
	}
	f = (int (*)(int, const char *, int, ...))*slot;
	return fresh(f(dirfd, path, flags, mode));
}

HOOK int
openat(int dirfd, const char *path, int flags, ...)
{
	static void *p;
	va_list ap;
	int r;

	va_start(ap, flags);
	r = openat_common("openat", &p, dirfd, path, flags, ap);
	va_end(ap);
	return r;
}

HOOK int
openat64(int dirfd, const char *path, int flags, ...)
{
	static void *p;
	va_list ap;
	int r;

	va_start(ap, flags);
	r = openat_common("openat64", &p, dirfd, path, flags, ap);
	va_end(ap);
	return r;
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
	static void *p;

	if (!RESOLVE(p, "pipe")) {
		errno = ENOSYS;
		return -1;
	}
	return pair(((int (*)(int *))p)(fds), fds);
}

HOOK int
pipe2(int fds[2], int flags)
{
	static void *p;

	if (!RESOLVE(p, "pipe2")) {
		errno = ENOSYS;
		return -1;
	}
	return pair(((int (*)(int *, int))p)(fds, flags), fds);
}

HOOK int
socketpair(int domain, int type, int proto, int fds[2])
{
	static void *p;

	if (!RESOLVE(p, "socketpair")) {
		errno = ENOSYS;
		return -1;
	}
	return pair(((int (*)(int, int, int, int *))p)(domain, type, proto,
	    fds), fds);
}

HOOK int
eventfd(unsigned int initval, int flags)
{
	static void *p;

	if (!RESOLVE(p, "eventfd")) {
		errno = ENOSYS;
		return -1;
	}
	return fresh(((int (*)(unsigned int, int))p)(initval, flags));
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
	static void *p;

	if (!RESOLVE(p, "fopen")) {
		errno = ENOSYS;
		return NULL;
	}
	return fresh_file(((FILE *(*)(const char *, const char *))p)(path,
	    mode));
}

HOOK FILE *
fopen64(const char *path, const char *mode)
{
	static void *p;

	if (!RESOLVE(p, "fopen64")) {
		errno = ENOSYS;
		return NULL;
	}
	return fresh_file(((FILE *(*)(const char *, const char *))p)(path,
	    mode));
}
