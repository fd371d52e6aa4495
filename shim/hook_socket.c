/*
 * hook_socket: socket, connect, accept, accept4, getsockopt.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "epoll.h"
#include "conn.h"
#include "fdtab.h"
#include "log.h"
#include "real.h"
#include "session.h"
#include "hook.h"

HOOK int
socket(int domain, int type, int protocol)
{
	int fd = real_socket(domain, type, protocol);

	int saved = errno;

	/* A number closed behind our back may come back as a new socket. */
	if (fd >= 0 && fdtab_maybe(fd))
		fdtab_drop(fd);
	/* Registered with epoll before connect() seals it (nginx). */
	if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) &&
	    (type & 0xf) == SOCK_STREAM)
		epoll_pre_socket(fd);
	errno = saved;
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
	e = session_so_error(s, fd);
	session_put(s);
	if (e == 0)
		return real_getsockopt(fd, level, name, val, len);
	*(int *)val = e;
	*len = sizeof(int);
	return 0;
}

/*
 * TCP_FASTOPEN_CONNECT would put the first write, our handshake message,
 * into the SYN before any policy decision: it is remembered and applied at
 * connect() only when the destination is not sealed.
 */
HOOK int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT &&
	    val != NULL && len >= (socklen_t)sizeof(int))
		return (int)hook_ret(conn_fastopen(fd, *(const int *)val != 0));
	return real_setsockopt(fd, level, name, val, len);
}

HOOK int
ioctl(int fd, unsigned long req, ...)
{
	struct session *s;
	va_list ap;
	void *arg;
	int n;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if ((req != FIONREAD) || (s = fdtab_get(fd)) == NULL)
		return real_ioctl(fd, req, arg);
	/* FIONREAD/SIOCINQ: plaintext a read would return now. */
	n = session_inq(s, fd);
	epoll_touch(s);
	session_put(s);
	LOG(LOG_DEBUG, "fd %d: FIONREAD -> %d", fd, n);
	if (n < 0)
		return (int)hook_ret(n);
	*(int *)arg = n;
	return 0;
}
