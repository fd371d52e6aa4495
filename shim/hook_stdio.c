/*
 * hook_stdio: fdopen() on a sealed socket.
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

HOOK FILE *
fdopen(int fd, const char *mode)
{
	static const cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = NULL,
		.close = cookie_close,
	};
	struct session *s;
	FILE *f;

	if ((s = fdtab_get(fd)) == NULL)
		return real_fdopen(fd, mode);
	session_put(s);
	f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (f != NULL)
		setvbuf(f, NULL, _IOFBF, 16384);
	return f;
}

/*
 * An inherited sealed socket on fd 0, 1 or 2 (sshd, inetd-style servers,
 * socat EXEC) would be read and written by stdio through glibc's private
 * calls, in plaintext: the standard stream is replaced by one that goes
 * through the shim, before main() runs.
 */
static void
stdio_adopt(int fd)
{
	static const cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = NULL,
		.close = cookie_close,
	};
	FILE *f;

	switch (fd) {
	case 0:
		if ((f = fopencookie((void *)(intptr_t)0, "r", io)) != NULL)
			stdin = f;
		break;
	case 1:
		if ((f = fopencookie((void *)(intptr_t)1, "w", io)) != NULL)
			stdout = f;
		break;
	case 2:
		if ((f = fopencookie((void *)(intptr_t)2, "w", io)) != NULL) {
			setvbuf(f, NULL, _IONBF, 0);
			stderr = f;
		}
		break;
	default:
		break;
	}
}

__attribute__((constructor)) static void
stdio_ctor(void)
{
	int saved = errno;

	(void)shim_policy();
	(void)conn_adopt_inherited(stdio_adopt);
	errno = saved;
}
