/*
 * hook_libcio: the other ways libc moves bytes on an fd: dprintf and
 * vdprintf (which write through glibc's private calls), pwritev2/preadv2
 * and their 64-bit names, and POSIX AIO.
 *
 * On a sealed fd the first two are the shim's send and receive paths;
 * pwritev2/preadv2 with offset -1 are writev/readv with flags (a socket
 * has no offset: any other is ESPIPE, as the kernel says).  AIO on a
 * sealed fd fails at submission with EOPNOTSUPP: glibc would run it in a
 * helper thread through its private calls, which reach the stand-in.
 */
#include <aio.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "reason.h"
#include "real.h"
#include "session.h"
#include "standin.h"
#include "hook.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

HOOK int
vdprintf(int fd, const char *fmt, va_list ap)
{
	struct session *s;
	struct iovec v;
	ssize_t r = 0;
	size_t off = 0;
	char *buf;
	int n;

	if (!fdtab_maybe(fd))
		return real_vdprintf(fd, fmt, ap);
	if ((n = vasprintf(&buf, fmt, ap)) < 0)
		return -1;
	if ((s = fdtab_get(fd)) == NULL) {
		r = real_write(fd, buf, (size_t)n);
		free(buf);
		return r < 0 ? -1 : (int)r;
	}
	/* All of it, as stdio's write loop would. */
	while (off < (size_t)n) {
		v.iov_base = buf + off;
		v.iov_len = (size_t)n - off;
		if ((r = session_send(s, fd, &v, 1, 0)) < 0 && r != -EINTR)
			break;
		if (r > 0)
			off += (size_t)r;
	}
	epoll_touch(s);
	session_put(s);
	free(buf);
	if (r < 0 && off < (size_t)n)
		return (int)hook_ret(r);
	return n;
}

HOOK int
dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return r;
}

/* pwritev2/preadv2 on sealed S: offset -1 only; RWF_NOWAIT as DONTWAIT. */
static ssize_t
v2(struct session *s, int fd, const struct iovec *iov, int n, off_t off,
    int flags, bool out)
{
	int f = (flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0;
	ssize_t r;

	if (off != -1)
		r = -ESPIPE;
	else if (out)
		r = session_send(s, fd, iov, n, f);
	else
		r = session_recv(s, fd, iov, n, f);
	epoll_touch(s);
	session_put(s);
	return hook_ret(r);
}

HOOK ssize_t
pwritev2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	struct session *s;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_pwritev2(fd, iov, n, off, flags);
	return v2(s, fd, iov, n, off, flags, true);
}

HOOK ssize_t
pwritev64v2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	return pwritev2(fd, iov, n, off, flags);
}

HOOK ssize_t
preadv2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	struct session *s;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_preadv2(fd, iov, n, off, flags);
	return v2(s, fd, iov, n, off, flags, false);
}

HOOK ssize_t
preadv64v2(int fd, const struct iovec *iov, int n, off_t off, int flags)
{
	return preadv2(fd, iov, n, off, flags);
}

/* AIO on a sealed fd: refused at submission (see the top). */
static bool
aio_sealed(const struct aiocb *cb)
{
	if (cb == NULL || !fdtab_maybe(cb->aio_fildes))
		return false;
	LOG_WARN_CODE("unsupported", REASON_UNSUPPORTED,
	    "fd %d: POSIX AIO on a sealed socket is not supported; "
	    "refusing it", cb->aio_fildes);
	errno = EOPNOTSUPP;
	return true;
}

HOOK int
aio_read(struct aiocb *cb)
{
	return aio_sealed(cb) ? -1 : real_aio_read(cb);
}

HOOK int
aio_write(struct aiocb *cb)
{
	return aio_sealed(cb) ? -1 : real_aio_write(cb);
}

/* (The 64-bit names take struct aiocb64: the same layout on 64-bit
 * targets, where off_t is 64 bits.) */
_Static_assert(sizeof(struct aiocb) == sizeof(struct aiocb64), "aiocb64");

HOOK int
aio_read64(struct aiocb64 *cb)
{
	return aio_read((struct aiocb *)cb);
}

HOOK int
aio_write64(struct aiocb64 *cb)
{
	return aio_write((struct aiocb *)cb);
}

HOOK int
lio_listio(int mode, struct aiocb *const list[], int n, struct sigevent *sev)
{
	int i;

	for (i = 0; i < n; i++)
		if (list[i] != NULL && list[i]->aio_lio_opcode != LIO_NOP &&
		    aio_sealed(list[i]))
			return -1;
	return real_lio_listio(mode, list, n, sev);
}

HOOK int
lio_listio64(int mode, struct aiocb64 *const list[], int n,
    struct sigevent *sev)
{
	return lio_listio(mode, (struct aiocb *const *)list, n, sev);
}
