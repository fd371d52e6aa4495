/*
 * hook_splice: splice() with a sealed socket at one end, emulated; vmsplice()
 * and tee() kept off the shim's descriptors.
 *
 * The kernel cannot splice a sealed connection: the socket carries records,
 * not the program's bytes, and the program holds a stand-in (standin.h).
 * So splice(pipe -> sealed socket) seals what it takes from the pipe and
 * splice(sealed socket -> pipe) puts opened plaintext into the pipe, as
 * sendfile() does for files (hook_io.c), with splice's own rules kept:
 *
 *  - exact counts: a byte leaves the pipe only once the session has taken
 *    it, and leaves the session only once the pipe has (session_send_from,
 *    session_recv_into, through the shuttle: shuttle.h);
 *  - waiting: first for the pipe, unless SPLICE_F_NONBLOCK or the pipe's
 *    O_NONBLOCK says not to (the kernel then returns EAGAIN without
 *    touching the socket), outside every lock; then for the socket per its
 *    own O_NONBLOCK, as the kernel does (SPLICE_F_NONBLOCK is about the
 *    pipe).  A move that another reader or writer of the pipe raced away
 *    waits again;
 *  - the kernel's errors for what it refuses: EINVAL when neither end is a
 *    pipe, ESPIPE for an offset on a pipe, EINVAL for one on the socket;
 *    EPIPE (with SIGPIPE) into a pipe nobody reads, and at a sealed
 *    socket's end what write() gets; 0 at the pipe's end or the stream's;
 *  - readiness: epoll_touch after every call, as for read and write, so
 *    that plaintext left behind (the pipe was full) is reported again.
 *
 * A PLAIN session (a permissive rule's plaintext peer) is spliced by the
 * kernel on its kfd.  vmsplice() and tee() move bytes between pipes and
 * memory only: on a stand-in the kernel refuses them as on any socket,
 * and a kfd gets EBADF like every other call on it.
 *
 * Not the same as the kernel's: a signal during the wait for the pipe gives
 * EINTR even under SA_RESTART (poll is never restarted).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "epoll.h"
#include "fdtab.h"
#include "real.h"
#include "session.h"
#include "shuttle.h"
#include "standin.h"
#include "hook.h"

/* The flags splice(2) knows. */
#define SPLICE_ALL      (SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | \
    SPLICE_F_GIFT)

struct splice_ctx {
	int pfd;                /* the program's pipe */
	unsigned int flags;     /* the program's splice flags */
	bool raced;             /* the pipe, polled ready, was not */
};

/* 0 if FD is a pipe, -EINVAL if it is something else, -EBADF if closed. */
static int
pipe_end(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return S_ISFIFO(st.st_mode) ? 0 : -EINVAL;
}

static bool
pipe_nonblock(int fd, unsigned int flags)
{
	int fl;

	if (flags & SPLICE_F_NONBLOCK)
		return true;
	fl = real_fcntl(fd, F_GETFL, 0);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/*
 * Wait until pipe FD polls EVENTS, or only look if NONBLOCK: 0, -EAGAIN or
 * -EINTR.  Its end (POLLHUP, POLLERR) counts as ready: the move says what
 * it means (0, or EPIPE).
 */
static int
pipe_wait(int fd, short events, bool nonblock)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	r = real_poll(&p, 1, nonblock ? 0 : -1);
	if (r < 0)
		return -errno;
	return r == 0 ? -EAGAIN : 0;
}

static ssize_t
fill_cb(void *arg, void *buf, size_t n)
{
	struct splice_ctx *c = arg;
	ssize_t r = shuttle_from_pipe(c->pfd, buf, n);

	if (r == -EAGAIN)
		c->raced = true;
	return r;
}

static ssize_t
drain_cb(void *arg, void *buf, size_t n)
{
	struct splice_ctx *c = arg;
	ssize_t r = shuttle_to_pipe(c->pfd, buf, n, c->flags);

	if (r == -EAGAIN)
		c->raced = true;
	return r;
}

/* The kernel's splice, its result as -errno. */
static ssize_t
kernel_splice(int in, int out, size_t len, unsigned int flags)
{
	ssize_t r = real_splice(in, NULL, out, NULL, len, flags);

	return r < 0 ? -errno : r;
}

/* splice(IN, a pipe -> OUT, sealed by S). */
static ssize_t
into_sealed(struct session *s, int in, off_t *inoff, int out, off_t *outoff,
    size_t len, unsigned int flags)
{
	struct splice_ctx c = { .pfd = in, .flags = flags };
	bool nb;
	ssize_t r;

	if ((r = pipe_end(in)) < 0)
		return r;
	if (inoff != NULL)
		return -ESPIPE;
	if (outoff != NULL)
		return -EINVAL;
	nb = pipe_nonblock(in, flags);
	do {
		if ((r = pipe_wait(in, POLLIN, nb)) < 0)
			return r;
		c.raced = false;
		r = session_send_from(s, out, len, fill_cb, &c,
		    (flags & SPLICE_F_MORE) ? MSG_MORE : 0);
		if (r == -EXDEV)
			return kernel_splice(in, session_kfd(s, out), len, flags);
	} while (r == -EAGAIN && c.raced && !nb);
	return r;
}

/* splice(IN, sealed by S -> OUT, a pipe). */
static ssize_t
from_sealed(struct session *s, int in, off_t *inoff, int out, off_t *outoff,
    size_t len, unsigned int flags)
{
	struct splice_ctx c = { .pfd = out, .flags = flags };
	bool nb;
	ssize_t r;

	if ((r = pipe_end(out)) < 0)
		return r;
	if (outoff != NULL)
		return -ESPIPE;
	if (inoff != NULL)
		return -EINVAL;
	nb = pipe_nonblock(out, flags);
	do {
		if ((r = pipe_wait(out, POLLOUT, nb)) < 0)
			return r;
		c.raced = false;
		r = session_recv_into(s, in, len, drain_cb, &c);
		if (r == -EXDEV)
			return kernel_splice(session_kfd(s, in), out, len, flags);
	} while (r == -EAGAIN && c.raced && !nb);
	return r;
}

HOOK ssize_t
splice(int in, off_t *inoff, int out, off_t *outoff, size_t len,
    unsigned int flags)
{
	struct session *s = fdtab_get(out);
	bool to_sealed = s != NULL;
	int e = errno;
	ssize_t r;

	if (!to_sealed && (s = fdtab_get(in)) == NULL) {
		if (standin_is_kfd(in) || standin_is_kfd(out))
			return hook_ebadf();
		return real_splice(in, inoff, out, outoff, len, flags);
	}
	/* The kernel's first checks, before it looks at the fds. */
	if (len == 0)
		r = 0;
	else if (flags & ~SPLICE_ALL)
		r = -EINVAL;
	else if (to_sealed)
		r = into_sealed(s, in, inoff, out, outoff, len, flags);
	else
		r = from_sealed(s, in, inoff, out, outoff, len, flags);
	epoll_touch(s);
	session_put(s);
	if (r >= 0)
		errno = e;
	return hook_ret(r);
}

HOOK ssize_t
vmsplice(int fd, const struct iovec *iov, size_t n, unsigned int flags)
{
	if (standin_is_kfd(fd))
		return hook_ebadf();
	return real_vmsplice(fd, iov, n, flags);
}

HOOK ssize_t
tee(int in, int out, size_t len, unsigned int flags)
{
	if (standin_is_kfd(in) || standin_is_kfd(out))
		return hook_ebadf();
	return real_tee(in, out, len, flags);
}
