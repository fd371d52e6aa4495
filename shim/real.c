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
#include <stdbool.h>
#include <stddef.h>
#include <aio.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>

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

/*
 * REAL(ret, name, params, args): one lazily bound wrapper, failing with
 * ENOSYS and (ret)-1 when libc lacks NAME; REAL_FAIL gives the failure
 * value (NULL for the functions that return a pointer).
 */
#define REAL(ret, name, params, args) REAL_FAIL(ret, (ret)-1, name, params, args)
#define REAL_FAIL(ret, fail, name, params, args)                          \
	static ret (*p_##name) params;                                    \
	ret real_##name params                                            \
	{                                                                 \
		ret (*f) params = __atomic_load_n(&p_##name, __ATOMIC_ACQUIRE); \
		if (f == NULL) {                                          \
			f = (ret (*) params)real_sym_lookup(#name);              \
			if (f == NULL) {                                  \
				errno = ENOSYS;                           \
				return fail;                              \
			}                                                 \
			__atomic_store_n(&p_##name, f, __ATOMIC_RELEASE); \
		}                                                         \
		return f args;                                            \
	}

/*
 * BIND(f, name): F = p_NAME, looked up and stored first if need be; false
 * if libc lacks NAME.  For the hand-written wrappers of variadic functions
 * and for REAL_HAVE.
 */
#define BIND(f, name)                                                     \
	(((f) = __atomic_load_n(&p_##name, __ATOMIC_ACQUIRE)) != NULL ||  \
	 (((f) = (__typeof__(f))real_sym_lookup(#name)) != NULL &&        \
	  (__atomic_store_n(&p_##name, (f), __ATOMIC_RELEASE), true)))

/* REAL_HAVE(name): real_have_NAME(), see real.h. */
#define REAL_HAVE(name)                                                   \
	bool real_have_##name(void)                                       \
	{                                                                 \
		__typeof__(p_##name) f;                                   \
		return BIND(f, name);                                     \
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
REAL_FAIL(FILE *, NULL, fdopen, (int fd, const char *mode), (fd, mode))
REAL(int, getsockname, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, listen, (int fd, int backlog), (fd, backlog))
REAL(int, getpeername, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, prlimit, (pid_t pid, int res, const struct rlimit *n, struct rlimit *o), (pid, res, n, o))
REAL(int, vdprintf, (int fd, const char *fmt, va_list ap), (fd, fmt, ap))
REAL(ssize_t, pwritev2, (int fd, const struct iovec *iov, int n, off_t off, int flags), (fd, iov, n, off, flags))
REAL(ssize_t, preadv2, (int fd, const struct iovec *iov, int n, off_t off, int flags), (fd, iov, n, off, flags))
REAL(int, aio_read, (struct aiocb *cb), (cb))
REAL(int, aio_write, (struct aiocb *cb), (cb))
REAL(int, lio_listio, (int mode, struct aiocb *const list[], int n, struct sigevent *sev), (mode, list, n, sev))
REAL(ssize_t, splice, (int in, off_t *inoff, int out, off_t *outoff, size_t len, unsigned int flags), (in, inoff, out, outoff, len, flags))
REAL(ssize_t, vmsplice, (int fd, const struct iovec *iov, size_t n, unsigned int flags), (fd, iov, n, flags))
REAL(ssize_t, tee, (int in, int out, size_t len, unsigned int flags), (in, out, len, flags))

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

/* Calls that return a new fd (hook_fds.c). */
REAL(int, pipe, (int fds[2]), (fds))
REAL(int, pipe2, (int fds[2], int flags), (fds, flags))
REAL(int, socketpair, (int domain, int type, int proto, int fds[2]), (domain, type, proto, fds))
REAL(int, eventfd, (unsigned int initval, int flags), (initval, flags))
REAL_FAIL(FILE *, NULL, fopen, (const char *path, const char *mode), (path, mode))
REAL_FAIL(FILE *, NULL, fopen64, (const char *path, const char *mode), (path, mode))

/*
 * open and openat are variadic; the mode travels as an int whether or not
 * the flags ask for it (libc reads it only with O_CREAT or O_TMPFILE).
 */
static int (*p_open)(const char *, int, ...);
static int (*p_open64)(const char *, int, ...);
static int (*p_openat)(int, const char *, int, ...);
static int (*p_openat64)(int, const char *, int, ...);

int
real_open(const char *path, int flags, mode_t mode)
{
	int (*f)(const char *, int, ...);

	if (!BIND(f, open)) {
		errno = ENOSYS;
		return -1;
	}
	return f(path, flags, mode);
}

int
real_open64(const char *path, int flags, mode_t mode)
{
	int (*f)(const char *, int, ...);

	if (!BIND(f, open64)) {
		errno = ENOSYS;
		return -1;
	}
	return f(path, flags, mode);
}

int
real_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int (*f)(int, const char *, int, ...);

	if (!BIND(f, openat)) {
		errno = ENOSYS;
		return -1;
	}
	return f(dirfd, path, flags, mode);
}

int
real_openat64(int dirfd, const char *path, int flags, mode_t mode)
{
	int (*f)(int, const char *, int, ...);

	if (!BIND(f, openat64)) {
		errno = ENOSYS;
		return -1;
	}
	return f(dirfd, path, flags, mode);
}

/* The process (hook_exec.c). */
REAL(pid_t, fork, (void), ())
REAL(int, execve, (const char *path, char *const argv[], char *const envp[]), (path, argv, envp))
REAL(int, execv, (const char *path, char *const argv[]), (path, argv))
REAL(int, execvp, (const char *file, char *const argv[]), (file, argv))
REAL(int, execvpe, (const char *file, char *const argv[], char *const envp[]), (file, argv, envp))
REAL(int, fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))

/* clone is variadic: PTID, TLS and CTID follow ARG, all pointers. */
static int (*p_clone)(int (*)(void *), void *, int, void *, ...);

int
real_clone(int (*fn)(void *), void *stack, int flags, void *arg, void *ptid,
    void *tls, void *ctid)
{
	int (*f)(int (*)(void *), void *, int, void *, ...);

	if (!BIND(f, clone)) {
		errno = ENOSYS;
		return -1;
	}
	return f(fn, stack, flags, arg, ptid, tls, ctid);
}

REAL_HAVE(fork)
REAL_HAVE(clone)
REAL_HAVE(execve)
REAL_HAVE(execv)
REAL_HAVE(execvp)
REAL_HAVE(execvpe)
REAL_HAVE(fexecve)

REAL(int, posix_spawn, (pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]), (pid, path, fa, attr, argv, envp))
REAL(int, posix_spawnp, (pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]), (pid, file, fa, attr, argv, envp))
REAL_FAIL(int, ENOSYS, posix_spawn_file_actions_init, (posix_spawn_file_actions_t *fa), (fa))
REAL_FAIL(int, ENOSYS, posix_spawn_file_actions_destroy, (posix_spawn_file_actions_t *fa), (fa))
REAL_FAIL(int, ENOSYS, posix_spawn_file_actions_adddup2, (posix_spawn_file_actions_t *fa, int fd, int newfd), (fa, fd, newfd))
REAL_HAVE(posix_spawn)
REAL_HAVE(posix_spawnp)
REAL(int, execveat, (int dirfd, const char *path, char *const argv[], char *const envp[], int flags), (dirfd, path, argv, envp, flags))
REAL(int, system, (const char *cmd), (cmd))
REAL_FAIL(FILE *, NULL, popen, (const char *cmd, const char *mode), (cmd, mode))
REAL_HAVE(execveat)
REAL_HAVE(system)
REAL_HAVE(popen)

/* Limits and sandbox hints (hook_limits.c, hook_proc.c). */
REAL(long, sysconf, (int name), (name))
REAL(int, chroot, (const char *path), (path))

/* prctl is variadic: four unsigned longs follow OPTION. */
static int (*p_prctl)(int, ...);

int
real_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
    unsigned long a5)
{
	int (*f)(int, ...);

	if (!BIND(f, prctl)) {
		errno = ENOSYS;
		return -1;
	}
	return f(option, a2, a3, a4, a5);
}

/* syscall is variadic: six longs follow N, as the kernel takes them. */
static long (*p_syscall)(long, ...);

long
real_syscall6(long n, long a0, long a1, long a2, long a3, long a4, long a5)
{
	long (*f)(long, ...);

	if (!BIND(f, syscall)) {
		errno = ENOSYS;
		return -1;
	}
	return f(n, a0, a1, a2, a3, a4, a5);
}

REAL_HAVE(syscall)

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
	RESOLVE(open);          /* the log file's reopening (log.c) */
	RESOLVE(syscall);       /* kcmp under ep_lock (epoll.c) */
	errno = saved;
}

/* _exit() and _Exit(): they do not return, so no REAL(). */
static void (*p__exit)(int);

void
real__exit(int status)
{
	void (*f)(int);

	if (BIND(f, _exit))
		f(status);
	for (;;)
		(void)syscall(SYS_exit_group, status);
}
