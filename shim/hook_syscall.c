/*
 * hook_syscall: libc's syscall(), for the numbers the shim interposes by
 * name (see the comment on syscall() below), and the fork handlers around
 * a clone that copies the process on this stack.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdtab.h"
#include "init.h"
#include "real.h"
#include "hook.h"

/*
 * syscall(): node (libuv) closes sockets with syscall(SYS_close, fd), which
 * bypasses close(), and other programs read and write that way.  The
 * numbers that end, copy, connect, accept or move bytes on an fd go to the
 * shim's own functions of the same name (on an unsealed fd those are the
 * kernel's); everything else goes to libc's syscall() with its six
 * arguments.  (A raw syscall instruction reaches the stand-in and fails.)
 */
HOOK long
syscall(long n, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (n) {
	case SYS_close:
		return hook_close_fd((int)a[0]);
	case SYS_close_range:
		return close_range((unsigned int)a[0], (unsigned int)a[1],
		    (int)a[2]);
	case SYS_dup:
		return dup((int)a[0]);
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_fcntl:
		return fcntl((int)a[0], (int)a[1], a[2]);
	case SYS_read:
		return read((int)a[0], (void *)a[1], (size_t)a[2]);
	case SYS_write:
		return write((int)a[0], (const void *)a[1], (size_t)a[2]);
	case SYS_readv:
		return readv((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_writev:
		return writev((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_recvfrom:
		return recvfrom((int)a[0], (void *)a[1], (size_t)a[2],
		    (int)a[3], (struct sockaddr *)a[4], (socklen_t *)a[5]);
	case SYS_sendto:
		return sendto((int)a[0], (const void *)a[1], (size_t)a[2],
		    (int)a[3], (const struct sockaddr *)a[4], (socklen_t)a[5]);
	case SYS_recvmsg:
		return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendmsg:
		return sendmsg((int)a[0], (const struct msghdr *)a[1],
		    (int)a[2]);
	case SYS_recvmmsg:
		return recvmmsg((int)a[0], (struct mmsghdr *)a[1],
		    (unsigned int)a[2], (int)a[3], (struct timespec *)a[4]);
	case SYS_sendmmsg:
		return sendmmsg((int)a[0], (struct mmsghdr *)a[1],
		    (unsigned int)a[2], (int)a[3]);
	case SYS_connect:
		return connect((int)a[0], (const struct sockaddr *)a[1],
		    (socklen_t)a[2]);
	case SYS_accept:
		return accept((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2]);
	case SYS_accept4:
		return accept4((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2], (int)a[3]);
	case SYS_shutdown:
		return shutdown((int)a[0], (int)a[1]);
	case SYS_getsockopt:
		return getsockopt((int)a[0], (int)a[1], (int)a[2],
		    (void *)a[3], (socklen_t *)a[4]);
	case SYS_setsockopt:
		return setsockopt((int)a[0], (int)a[1], (int)a[2],
		    (const void *)a[3], (socklen_t)a[4]);
	case SYS_getsockname:
		return getsockname((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2]);
	case SYS_getpeername:
		return getpeername((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2]);
	case SYS_ioctl:
		return ioctl((int)a[0], (unsigned long)a[1], (void *)a[2]);
	case SYS_poll:
		return poll((struct pollfd *)a[0], (nfds_t)a[1], (int)a[2]);
	case SYS_epoll_ctl:
		return epoll_ctl((int)a[0], (int)a[1], (int)a[2],
		    (struct epoll_event *)a[3]);
	case SYS_epoll_wait:
		return epoll_wait((int)a[0], (struct epoll_event *)a[1],
		    (int)a[2], (int)a[3]);
	case SYS_epoll_pwait:
		return epoll_pwait((int)a[0], (struct epoll_event *)a[1],
		    (int)a[2], (int)a[3], (const sigset_t *)a[4]);
	case SYS_sendfile:
		return sendfile((int)a[0], (int)a[1], (off_t *)a[2],
		    (size_t)a[3]);
	case SYS_splice:
		return splice((int)a[0], (off_t *)a[1], (int)a[2],
		    (off_t *)a[3], (size_t)a[4], (unsigned int)a[5]);
	case SYS_vmsplice:
		return vmsplice((int)a[0], (const struct iovec *)a[1],
		    (size_t)a[2], (unsigned int)a[3]);
	case SYS_tee:
		return tee((int)a[0], (int)a[1], (size_t)a[2],
		    (unsigned int)a[3]);
	case SYS_seccomp:
		hook_sandbox();
		break;
	case SYS_clone:
		/* A copy of the process on this stack (no new stack, no
		 * CLONE_VM): the fork handlers run around it, as for fork(). */
		if (!(a[0] & CLONE_VM) && a[1] == 0) {
			long r;
			int e;

			if (!real_have_syscall()) {
				errno = ENOSYS;
				return -1;
			}
			shim_fork_prepare();
			r = real_syscall6(n, a[0], a[1], a[2], a[3], a[4],
			    a[5]);
			e = errno;
			if (r == 0) {
				shim_fork_child();
			} else {
				shim_fork_parent();
				if (r < 0)
					fdtab_fork_failed();
			}
			errno = e;
			return r;
		}
		break;
	default:
		break;
	}
	return real_syscall6(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
