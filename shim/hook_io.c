/*
 * hook_io: every call that moves bytes.  Read-like calls funnel into
 * session_recv(), write-like calls into session_send(); fds without a
 * session go straight to libc.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "reason.h"
#include "real.h"
#include "session.h"
#include "standin.h"
#include "hook.h"

extern void __chk_fail(void) __attribute__((noreturn));
/* The fortified variants glibc's headers call under _FORTIFY_SOURCE. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen,
    int flags, struct sockaddr *sa, socklen_t *salen);

static ssize_t
io_recv(struct session *s, int fd, const struct iovec *iov, int n, int flags)
{
	ssize_t r = session_recv(s, fd, iov, n, flags);

	epoll_touch(s);
	session_put(s);
	return hook_ret(r);
}

static ssize_t
io_send(struct session *s, int fd, const struct iovec *iov, int n, int flags)
{
	ssize_t r = session_send(s, fd, iov, n, flags);

	epoll_touch(s);
	session_put(s);
	return hook_ret(r);
}

HOOK ssize_t
read(int fd, void *buf, size_t len)
{
	struct session *s;
	struct iovec v = { buf, len };

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_read(fd, buf, len);
	return io_recv(s, fd, &v, 1, 0);
}

HOOK ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		__chk_fail();
	return read(fd, buf, len);
}

HOOK ssize_t
write(int fd, const void *buf, size_t len)
{
	struct session *s;
	struct iovec v = { (void *)buf, len };

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_write(fd, buf, len);
	return io_send(s, fd, &v, 1, 0);
}

/* MSG_ERRQUEUE: the kernel socket's own error queue, as recvmsg() below
 * reads it (never stream bytes).  Drops S's reference. */
static ssize_t
errqueue_recvfrom(struct session *s, int fd, void *buf, size_t len,
    int flags, struct sockaddr *sa, socklen_t *salen)
{
	ssize_t r = real_recvfrom(session_kfd(s, fd), buf, len, flags, sa,
	    salen);
	int saved = errno;

	session_put(s);
	errno = saved;
	return r;
}

HOOK ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct session *s;
	struct iovec v = { buf, len };

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_recv(fd, buf, len, flags);
	if (flags & MSG_ERRQUEUE)
		return errqueue_recvfrom(s, fd, buf, len, flags, NULL, NULL);
	return io_recv(s, fd, &v, 1, flags);
}

HOOK ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen)
		__chk_fail();
	return recv(fd, buf, len, flags);
}

HOOK ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct session *s;
	struct iovec v = { (void *)buf, len };

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_send(fd, buf, len, flags);
	return io_send(s, fd, &v, 1, flags);
}

HOOK ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *sa,
    socklen_t *salen)
{
	struct session *s;
	struct iovec v = { buf, len };

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_recvfrom(fd, buf, len, flags, sa, salen);
	if (flags & MSG_ERRQUEUE)
		return errqueue_recvfrom(s, fd, buf, len, flags, sa, salen);
	/* As for any connected TCP socket, no source address is returned. */
	if (sa != NULL && salen != NULL)
		*salen = 0;
	return io_recv(s, fd, &v, 1, flags);
}

HOOK ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *sa, socklen_t *salen)
{
	if (len > buflen)
		__chk_fail();
	return recvfrom(fd, buf, len, flags, sa, salen);
}

/*
 * TCP Fast Open with a destination (sendto, sendmsg, sendmmsg) would put
 * the data in the SYN, before any handshake: FD connects normally instead
 * (sealed or not, the policy decides), and the send follows.  Returns 0,
 * or -errno when the connect failed.
 */
static int
fastopen_connect(int fd, const struct sockaddr *sa, socklen_t salen)
{
	int r = conn_connect(fd, sa, salen);

	return r == -EINPROGRESS ? 0 : r;
}

HOOK ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *sa, socklen_t salen)
{
	struct session *s;
	struct iovec v = { (void *)buf, len };
	int r;

	if ((flags & MSG_FASTOPEN) && sa != NULL && !fdtab_maybe(fd)) {
		if ((r = fastopen_connect(fd, sa, salen)) < 0)
			return hook_ret(r);
		flags &= ~MSG_FASTOPEN;
		if ((s = fdtab_get(fd)) == NULL)
			return standin_is_kfd(fd) ? hook_ebadf() :
			    real_send(fd, buf, len, flags);
		return io_send(s, fd, &v, 1, flags);
	}
	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_sendto(fd, buf, len, flags, sa, salen);
	return io_send(s, fd, &v, 1, flags);
}

HOOK ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct session *s;
	ssize_t r;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    hook_passfd_recvmsg(fd, msg, flags);
	/* The error queue holds the kernel's notes (ICMP errors, timestamps,
	 * zerocopy completions), never stream bytes: the socket's own, as on
	 * TCP (socat reads it after a failed connect). */
	if (flags & MSG_ERRQUEUE) {
		r = real_recvmsg(session_kfd(s, fd), msg, flags);
		session_put(s);
		return r;
	}
	msg->msg_namelen = 0;
	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	r = io_recv(s, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
	return r;
}

HOOK ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct session *s;
	struct msghdr m;
	int r;

	if ((flags & MSG_FASTOPEN) && msg != NULL && msg->msg_name != NULL &&
	    !fdtab_maybe(fd)) {
		if ((r = fastopen_connect(fd, msg->msg_name, msg->msg_namelen)) < 0)
			return hook_ret(r);
		m = *msg;
		m.msg_name = NULL;
		m.msg_namelen = 0;
		return sendmsg(fd, &m, flags & ~MSG_FASTOPEN);
	}
	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    hook_passfd_sendmsg(fd, msg, flags);
	if (msg->msg_controllen != 0) {
		session_put(s);
		LOG_WARN_CODE("unsupported", REASON_UNSUPPORTED,
		    "control messages unsupported on a sealed socket");
		errno = EOPNOTSUPP;
		return -1;
	}
	return io_send(s, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
}

HOOK ssize_t
readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct session *s;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_readv(fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		session_put(s);
		errno = EINVAL;
		return -1;
	}
	return io_recv(s, fd, iov, iovcnt, 0);
}

HOOK ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct session *s;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_writev(fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		session_put(s);
		errno = EINVAL;
		return -1;
	}
	return io_send(s, fd, iov, iovcnt, 0);
}

/* Where sendfile's bytes come from: the file at *off, or at its position. */
struct file_src {
	int    in;
	off_t *off;
};

static ssize_t
file_fill(void *arg, void *buf, size_t n)
{
	struct file_src *f = arg;
	ssize_t r;

	r = f->off != NULL ? pread(f->in, buf, n, *f->off) :
	    real_read(f->in, buf, n);
	if (r < 0)
		return -errno;
	if (f->off != NULL)
		*f->off += r;
	return r;
}

/*
 * sendfile onto a sealed socket, emulated: the file is read only when the
 * session can seal what it gives (session_send_from), so the offset, or
 * the file position, advances by exactly what was sent.
 */
static ssize_t
sendfile_sealed(struct session *s, int out, int in, off_t *off, size_t count)
{
	struct file_src f = { in, off };
	int e = errno;
	ssize_t r;

	r = session_send_from(s, out, count, file_fill, &f, 0);
	if (r == -EXDEV) {      /* PLAIN: the kernel's sendfile, on the socket */
		r = real_sendfile(session_kfd(s, out), in, off, count);
		if (r < 0)
			r = -errno;
	}
	epoll_touch(s);
	session_put(s);
	if (r >= 0)
		errno = e;
	return hook_ret(r);
}

HOOK ssize_t
sendfile(int out, int in, off_t *off, size_t count)
{
	struct session *s;

	if ((s = fdtab_get(out)) == NULL)
		return standin_is_kfd(out) ? hook_ebadf() :
		    real_sendfile(out, in, off, count);
	return sendfile_sealed(s, out, in, off, count);
}

HOOK ssize_t
sendfile64(int out, int in, off_t *off, size_t count)
{
	return sendfile(out, in, off, count);
}

HOOK int
sendmmsg(int fd, struct mmsghdr *v, unsigned int vlen, int flags)
{
	struct session *s;
	unsigned int i;
	ssize_t r = 0;

	if ((flags & MSG_FASTOPEN) && vlen > 0 && v != NULL &&
	    v[0].msg_hdr.msg_name != NULL && !fdtab_maybe(fd)) {
		int c;

		if ((c = fastopen_connect(fd, v[0].msg_hdr.msg_name,
		    v[0].msg_hdr.msg_namelen)) < 0)
			return (int)hook_ret(c);
		/* (TCP ignores the names once connected.) */
		flags &= ~MSG_FASTOPEN;
	}
	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_sendmmsg(fd, v, vlen, flags);
	for (i = 0; i < vlen; i++) {
		if (v[i].msg_hdr.msg_controllen != 0) {
			r = -EOPNOTSUPP;
			break;
		}
		r = session_send(s, fd, v[i].msg_hdr.msg_iov,
		    (int)v[i].msg_hdr.msg_iovlen, flags);
		if (r < 0)
			break;
		v[i].msg_len = (unsigned int)r;
	}
	epoll_touch(s);
	session_put(s);
	if (i > 0)
		return (int)i;
	return (int)hook_ret(r);
}

HOOK int
recvmmsg(int fd, struct mmsghdr *v, unsigned int vlen, int flags,
    struct timespec *tmo)
{
	struct session *s;
	unsigned int i;
	ssize_t r = 0;

	if ((s = fdtab_get(fd)) == NULL)
		return standin_is_kfd(fd) ? hook_ebadf() :
		    real_recvmmsg(fd, v, vlen, flags, tmo);
	/* The first message waits as the socket does; the rest never do. */
	for (i = 0; i < vlen; i++) {
		v[i].msg_hdr.msg_namelen = 0;
		v[i].msg_hdr.msg_controllen = 0;
		v[i].msg_hdr.msg_flags = 0;
		r = session_recv(s, fd, v[i].msg_hdr.msg_iov,
		    (int)v[i].msg_hdr.msg_iovlen,
		    (flags & ~MSG_WAITFORONE) | (i > 0 ? MSG_DONTWAIT : 0));
		if (r <= 0)
			break;
		v[i].msg_len = (unsigned int)r;
	}
	epoll_touch(s);
	session_put(s);
	if (i > 0)
		return (int)i;
	return (int)hook_ret(r);
}
