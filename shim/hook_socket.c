/*
 * hook_socket: socket, connect, accept, accept4, and the calls that reach a
 * sealed socket's options and names (getsockopt, setsockopt, ioctl,
 * getsockname, getpeername): on a sealed fd they go to the socket itself,
 * the kfd, never to the stand-in the program holds (standin.h).  On the
 * shim's own descriptors (a kfd) they fail with EBADF, as every libc call
 * of the program does.
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
#include "standin.h"
#include "stats.h"
#include "reload.h"
#include "init.h"
#include "hook.h"

HOOK int
socket(int domain, int type, int protocol)
{
	int fd = real_socket(domain, type, protocol);

	int saved = errno;

	/* A number closed behind our back may come back as a new socket. */
	if (fd >= 0)
		fdtab_fresh(fd);
	/* Registered with epoll before connect() seals it (nginx). */
	if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) &&
	    (type & 0xf) == SOCK_STREAM)
		epoll_pre_socket(fd);
	errno = saved;
	return fd;
}

/*
 * A server that listens while the policy seals accepted connections gets
 * its statistics file now (stats.c), so that what it has in force shows
 * before its first client.  Nothing else changes: listen() is the
 * kernel's.
 */
HOOK int
listen(int fd, int backlog)
{
	int r = real_listen(fd, backlog), saved = errno;
	const struct reload_policy *rp;

	if (r == 0 && (rp = shim_decide())->accept)
		stats_need(rp->pol);
	errno = saved;
	return r;
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

/* Run CALL with K the socket behind FD (its kfd when sealed), the
 * session referenced meanwhile; R gets the result, errno kept. */
#define ON_SOCKET(fd, k, r, call) do { \
	struct session *s_ = fdtab_get(fd); \
	int k = s_ != NULL ? session_kfd(s_, (fd)) : (fd), e_; \
	(r) = (call); \
	e_ = errno; \
	session_put(s_); \
	errno = e_; \
} while (0)

HOOK int
getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	int r;

	if (standin_is_kfd(fd))
		return hook_ebadf();
	if (!fdtab_maybe(fd))
		return real_getsockname(fd, sa, len);
	ON_SOCKET(fd, k, r, real_getsockname(k, sa, len));
	return r;
}

HOOK int
getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	int r;

	if (standin_is_kfd(fd))
		return hook_ebadf();
	if (!fdtab_maybe(fd))
		return real_getpeername(fd, sa, len);
	ON_SOCKET(fd, k, r, real_getpeername(k, sa, len));
	return r;
}

HOOK int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct session *s;
	int e, r;

	if (!fdtab_maybe(fd))
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_getsockopt(fd, level, name, val, len);
	if (level != SOL_SOCKET || name != SO_ERROR || val == NULL ||
	    len == NULL || *len < (socklen_t)sizeof(int) ||
	    (s = fdtab_get(fd)) == NULL) {
		ON_SOCKET(fd, k, r, real_getsockopt(k, level, name, val, len));
		return r;
	}
	e = session_so_error(s, fd);
	if (e == 0) {
		r = real_getsockopt(session_kfd(s, fd), level, name, val, len);
		e = errno;
		session_put(s);
		errno = e;
		return r;
	}
	session_put(s);
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
	int r;

	if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT &&
	    val != NULL && len >= (socklen_t)sizeof(int))
		return (int)hook_ret(conn_fastopen(fd, *(const int *)val != 0));
	if (!fdtab_maybe(fd))
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_setsockopt(fd, level, name, val, len);
	ON_SOCKET(fd, k, r, real_setsockopt(k, level, name, val, len));
	return r;
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
	if (!fdtab_maybe(fd))
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_ioctl(fd, req, arg);
	if (req != FIONREAD || (s = fdtab_get(fd)) == NULL) {
		ON_SOCKET(fd, k, n, real_ioctl(k, req, arg));
		/* O_NONBLOCK is kept on the stand-in too (see fcntl). */
		if (req == FIONBIO && n == 0)
			(void)real_ioctl(fd, req, arg);
		return n;
	}
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
