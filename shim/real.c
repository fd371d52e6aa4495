/*
 * real: resolution of the interposed libc symbols.  See real.h.
 *
 * dlsym() may call malloc and may take the loader lock; it never calls the
 * functions we interpose, so resolving lazily from inside a hook is safe.
 * A symbol that libc lacks (close_range on an old glibc) resolves to NULL
 * and its wrapper fails with ENOSYS instead of crashing the program.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <aio.h>
#include <sys/resource.h>

#include "real.h"

void *
real_sym_lookup(const char *name)
{
	void *p;
	int saved = errno;

	p = dlsym(RTLD_NEXT, name);
	errno = saved;
	return p;
}

/* REAL(ret, name, params, args): one lazily bound wrapper. */
#define REAL(ret, name, params, args)                                     \
	static ret (*p_##name) params;                                    \
	ret real_##name params                                            \
	{                                                                 \
		ret (*f) params = __atomic_load_n(&p_##name, __ATOMIC_ACQUIRE); \
		if (f == NULL) {                                          \
			f = (ret (*) params)real_sym_lookup(#name);              \
			if (f == NULL) {                                  \
				errno = ENOSYS;                           \
				return (ret)-1;                           \
			}                                                 \
			__atomic_store_n(&p_##name, f, __ATOMIC_RELEASE); \
		}                                                         \
		return f args;                                            \
	}

REAL(int, socket, (int domain, int type, int protocol), (domain, type, protocol))
REAL(int, connect, (int fd, const struct sockaddr *sa, socklen_t len), (fd, sa, len))
REAL(int, accept, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, accept4, (int fd, struct sockaddr *sa, socklen_t *len, int flags), (fd, sa, len, flags))
REAL(ssize_t, read, (int fd, void *buf, size_t len), (fd, buf, len))
REAL(ssize_t, write, (int fd, const void *buf, size_t len), (fd, buf, len))
REAL(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags))
REAL(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags))
REAL(ssize_t, recvfrom, (int fd, void *buf, size_t len, int flags, struct sockaddr *sa, socklen_t *salen), (fd, buf, len, flags, sa, salen))
REAL(ssize_t, sendto, (int fd, const void *buf, size_t len, int flags, const struct sockaddr *sa, socklen_t salen), (fd, buf, len, flags, sa, salen))
REAL(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
REAL(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))
REAL(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
REAL(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), (fd, iov, iovcnt))
REAL(ssize_t, sendfile, (int out, int in, off_t *off, size_t count), (out, in, off, count))
REAL(int, close, (int fd), (fd))
REAL(int, shutdown, (int fd, int how), (fd, how))
REAL(int, dup, (int fd), (fd))
REAL(int, dup2, (int fd, int fd2), (fd, fd2))
REAL(int, dup3, (int fd, int fd2, int flags), (fd, fd2, flags))
REAL(int, close_range, (unsigned int first, unsigned int last, int flags), (first, last, flags))
REAL(int, getsockopt, (int fd, int level, int name, void *val, socklen_t *len), (fd, level, name, val, len))
REAL(int, poll, (struct pollfd *fds, nfds_t n, int timeout), (fds, n, timeout))
REAL(int, ppoll, (struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask), (fds, n, ts, mask))
REAL(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv), (n, r, w, e, tv))
REAL(int, pselect, (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *mask), (n, r, w, e, ts, mask))
REAL(int, sendmmsg, (int fd, struct mmsghdr *v, unsigned int vlen, int flags), (fd, v, vlen, flags))
REAL(int, recvmmsg, (int fd, struct mmsghdr *v, unsigned int vlen, int flags, struct timespec *tmo), (fd, v, vlen, flags, tmo))
REAL(int, epoll_create, (int size), (size))
REAL(int, epoll_create1, (int flags), (flags))
REAL(int, epoll_ctl, (int epfd, int op, int fd, struct epoll_event *ev), (epfd, op, fd, ev))
REAL(int, epoll_wait, (int epfd, struct epoll_event *ev, int max, int ms), (epfd, ev, max, ms))
REAL(int, epoll_pwait, (int epfd, struct epoll_event *ev, int max, int ms, const sigset_t *mask), (epfd, ev, max, ms, mask))
REAL(int, epoll_pwait2, (int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask), (epfd, ev, max, ts, mask))
REAL(int, setsockopt, (int fd, int level, int name, const void *val, socklen_t len), (fd, level, name, val, len))
REAL(FILE *, fdopen, (int fd, const char *mode), (fd, mode))
REAL(int, getsockname, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, getpeername, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, prlimit, (pid_t pid, int res, const struct rlimit *n, struct rlimit *o), (pid, res, n, o))
REAL(int, vdprintf, (int fd, const char *fmt, va_list ap), (fd, fmt, ap))
REAL(ssize_t, pwritev2, (int fd, const struct iovec *iov, int n, off_t off, int flags), (fd, iov, n, off, flags))
REAL(ssize_t, preadv2, (int fd, const struct iovec *iov, int n, off_t off, int flags), (fd, iov, n, off, flags))
REAL(int, aio_read, (struct aiocb *cb), (cb))
REAL(int, aio_write, (struct aiocb *cb), (cb))
REAL(int, lio_listio, (int mode, struct aiocb *const list[], int n, struct sigevent *sev), (mode, list, n, sev))
REAL(ssize_t, splice, (int in, off_t *inoff, int out, off_t *outoff, size_t len, unsigned int flags), (in, inoff, out, outoff, len, flags))

/*
 * fcntl is variadic; every command we forward takes an int, a long or a
 * pointer, all of which travel in one integer register, so forwarding one
 * long is exact.  fcntl64 is the name glibc >= 2.28 binds under
 * _FILE_OFFSET_BITS=64; it is the same function with 64-bit locks, so the
 * shim always forwards to fcntl64 when libc has it.
 */
static int (*p_fcntl)(int, int, ...);

int
real_fcntl(int fd, int cmd, long arg)
{
	int (*f)(int, int, ...) = __atomic_load_n(&p_fcntl, __ATOMIC_ACQUIRE);

	if (f == NULL) {
		f = (int (*)(int, int, ...))real_sym_lookup("fcntl64");
		if (f == NULL)
			f = (int (*)(int, int, ...))real_sym_lookup("fcntl");
		if (f == NULL) {
			errno = ENOSYS;
			return -1;
		}
		__atomic_store_n(&p_fcntl, f, __ATOMIC_RELEASE);
	}
	return f(fd, cmd, arg);
}

/* ioctl is variadic with one pointer-sized argument for every request. */
static int (*p_ioctl)(int, unsigned long, ...);

int
real_ioctl(int fd, unsigned long req, void *arg)
{
	int (*f)(int, unsigned long, ...) = __atomic_load_n(&p_ioctl,
	    __ATOMIC_ACQUIRE);

	if (f == NULL) {
		f = (int (*)(int, unsigned long, ...))real_sym_lookup("ioctl");
		if (f == NULL) {
			errno = ENOSYS;
			return -1;
		}
		__atomic_store_n(&p_ioctl, f, __ATOMIC_RELEASE);
	}
	return f(fd, req, arg);
}

/* Bind NAME now, without calling it (a failed lookup stays NULL: lazy). */
#define RESOLVE(name)                                                     \
	__atomic_store_n(&p_##name,                                       \
	    (__typeof__(p_##name))real_sym_lookup(#name), __ATOMIC_RELEASE)

void
real_init(void)
{
	int saved = errno;

	/* Bind the symbols hooks use under a lock, so none resolves there. */
	RESOLVE(fcntl);
	RESOLVE(close);
	RESOLVE(dup);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(recv);
	RESOLVE(send);
	RESOLVE(poll);
	RESOLVE(shutdown);
	RESOLVE(getsockopt);
	errno = saved;
}
