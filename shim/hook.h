/*
 * hook: shared by the hook_*.c files, the only files that export symbols.
 * An interposer looks the fd up (one atomic load for fds the shim does not
 * own), forwards to the real function or to the session, and converts the
 * internal -errno convention to libc's at the boundary.
 */
#ifndef SOCKSEAL_HOOK_H
#define SOCKSEAL_HOOK_H

#include <errno.h>
#include <sys/types.h>

#define HOOK __attribute__((visibility("default")))

/* hook_ret(r): R >= 0 passes; -E sets errno = E and returns -1. */
static inline ssize_t
hook_ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* hook_ebadf(): -1 with EBADF: what a call on one of the shim's own
 * descriptors gets (standin.h), as on a number nothing holds. */
static inline int
hook_ebadf(void)
{
	errno = EBADF;
	return -1;
}

/* hook_close_fd(fd): close() as the hook does it (end-of-stream mark if
 * FD is the session's last fd), for the stdio cookie's close. */
int hook_close_fd(int fd);

/* hook_stdio_adopt(fd): FD (0, 1 or 2) is a sealed socket: its standard
 * stream goes through the shim (hook_stdio.c). */
void hook_stdio_adopt(int fd);

/* hook_stdio_moved(fd): FD (0, 1 or 2) became a copy of a sealed fd: its
 * standard stream goes through the shim from now on. */
void hook_stdio_moved(int fd);

/* hook_passfd_sendmsg(fd, msg, flags), hook_passfd_recvmsg(fd, msg,
 * flags): sendmsg and recvmsg on a socket the shim does not seal, with
 * control messages: a sealed fd passed with SCM_RIGHTS carries its session
 * (hook_passfd.c). */
struct msghdr;
ssize_t hook_passfd_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t hook_passfd_recvmsg(int fd, struct msghdr *msg, int flags);

/* hook_gate_done(g, child): after an exec or spawn the gate (carry.h)
 * prepared returned; CHILD if a spawn made one, else -1 (hook_exec.c). */
struct carry_gate;
void hook_gate_done(struct carry_gate *g, pid_t child);

/* hook_kfd_sync(s): S's kfd and state object are close-on-exec unless one
 * of the program's fds on S is not (hook_close.c). */
struct session;
void hook_kfd_sync(struct session *s);

/* hook_kfd_sync_all(): every kfd's close-on-exec as its program fds'
 * (hook_close.c): after an exec or spawn that made them all close-on-exec
 * (nextimage.h) returned. */
void hook_kfd_sync_all(void);

/* hook_sandbox(): the program enters a sandbox (see hook_proc.c). */
void hook_sandbox(void);

#endif
