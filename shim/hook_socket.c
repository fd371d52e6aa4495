/*
 * hook_socket: socket, connect, accept, accept4, getsockopt.
 */
#include <errno.h>
#include <sys/socket.h>

#include "conn.h"
#include "fdtab.h"
#include "real.h"
#include "session.h"
#include "hook.h"

HOOK int
socket(int domain, int type, int protocol)
{
	int fd = real_socket(domain, type, protocol);

	/* A number closed behind our back may come back as a new socket. */
	if (fd >= 0 && fdtab_maybe(fd)) {
		int saved = errno;
		fdtab_drop(fd);
		errno = saved;
	}
	return fd;
}

HOOK int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return (int)hook_ret(conn_connect(fd, sa, len));
}

static int
accepted(int fd)
{
	int r;

	if (fd < 0)
		return fd;
	if ((r = conn_accepted(fd)) < 0) {
		real_close(fd);
		errno = -r;
		return -1;
	}
	return fd;
}

HOOK int
accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return accepted(real_accept(fd, sa, len));
}

HOOK int
accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	return accepted(real_accept4(fd, sa, len, flags));
}

HOOK int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct session *s;
	int e;

	if (level != SOL_SOCKET || name != SO_ERROR || val == NULL ||
	    len == NULL || *len < (socklen_t)sizeof(int) ||
	    (s = fdtab_get(fd)) == NULL)
		return real_getsockopt(fd, level, name, val, len);
	e = session_so_error(s);
	session_put(s);
	if (e == 0)
		return real_getsockopt(fd, level, name, val, len);
	*(int *)val = e;
	*len = sizeof(int);
	return 0;
}
