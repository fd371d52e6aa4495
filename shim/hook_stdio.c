/*
 * hook_stdio: fdopen() on a sealed socket, and the standard streams on
 * one (inherited, or dup2'ed onto 0, 1 or 2).
 *
 * glibc's stdio reads, writes and closes through private aliases that no
 * interposer sees, so a FILE made by the real fdopen() would move plaintext
 * on a sealed socket and fclose() would close it behind the shim's back.
 * For a sealed fd the shim returns a fopencookie() stream whose functions
 * are the shim's own receive, send and close paths.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "epoll.h"
#include "conn.h"
#include "fdtab.h"
#include "init.h"
#include "real.h"
#include "session.h"
#include "hook.h"

static ssize_t
cookie_read(void *c, char *buf, size_t len)
{
	int fd = (int)(intptr_t)c;
	struct iovec v = { buf, len };
	struct session *s;
	ssize_t r;

	if ((s = fdtab_get(fd)) == NULL)
		return real_read(fd, buf, len);
	r = session_recv(s, fd, &v, 1, 0);
	epoll_touch(s);
	session_put(s);
	return hook_ret(r);
}

static ssize_t
cookie_write(void *c, const char *buf, size_t len)
{
	int fd = (int)(intptr_t)c;
	struct iovec v = { (void *)buf, len };
	struct session *s;
	ssize_t r;

	if ((s = fdtab_get(fd)) == NULL)
		return real_write(fd, buf, len);
	r = session_send(s, fd, &v, 1, 0);
	epoll_touch(s);
	session_put(s);
	return hook_ret(r);
}

static int
cookie_close(void *c)
{
	return hook_close_fd((int)(intptr_t)c);
}

static const cookie_io_functions_t stdio_io = {
	.read = cookie_read,
	.write = cookie_write,
	.seek = NULL,
	.close = cookie_close,
};

/*
 * A stream on FD whose I/O is the shim's.  Its _fileno is FD, so fileno()
 * answers as for the program's own stream (glibc marks a cookie stream -2
 * and reaches it only through the cookie's functions).
 */
static FILE *
cookie_stream(int fd, const char *mode)
{
	FILE *f = fopencookie((void *)(intptr_t)fd, mode, stdio_io);

	if (f != NULL)
		f->_fileno = fd;
	return f;
}

/*
 * fdopen() on a sealed fd, and on a TCP socket not yet connected (its
 * connect() may seal it, after the stream exists), gives a stream through
 * the shim; on an unsealed connection its calls are the kernel's.
 */
HOOK FILE *
fdopen(int fd, const char *mode)
{
	FILE *f;

	if (!fdtab_maybe(fd) && !epoll_pre_is(fd))
		return real_fdopen(fd, mode);
	if ((f = cookie_stream(fd, mode)) != NULL)
		setvbuf(f, NULL, _IOFBF, 16384);
	return f;
}

/*
 * A sealed socket on fd 0, 1 or 2 would be read and written by stdio
 * through glibc's private calls, in plaintext: the standard stream is
 * replaced by one that goes through the shim.  Output the old stream still
 * buffered moves to the new one, as it would have gone to the new fd.
 */
void
hook_stdio_adopt(int fd)
{
	FILE *f, **std;
	const char *mode;
	size_t pending = 0;
	char *keep = NULL;

	switch (fd) {
	case 0: std = &stdin; mode = "r"; break;
	case 1: std = &stdout; mode = "w"; break;
	case 2: std = &stderr; mode = "w"; break;
	default: return;
	}
	if ((f = cookie_stream(fd, mode)) == NULL)
		return;
	if (fd == 2)
		setvbuf(f, NULL, _IONBF, 0);
	if (fd != 0 && *std != NULL && (*std)->_IO_write_ptr > (*std)->_IO_write_base) {
		pending = (size_t)((*std)->_IO_write_ptr - (*std)->_IO_write_base);
		if ((keep = malloc(pending)) != NULL) {
			memcpy(keep, (*std)->_IO_write_base, pending);
			(*std)->_IO_write_ptr = (*std)->_IO_write_base;
		}
	}
	*std = f;
	if (keep != NULL) {
		(void)fwrite(keep, 1, pending, f);
		free(keep);
	}
}

void
hook_stdio_moved(int fd)
{
	int saved = errno;

	if (fd >= 0 && fd <= 2 && fdtab_maybe(fd))
		hook_stdio_adopt(fd);
	errno = saved;
}

