/*
 * shuttle: the shim's own pipe, through which spliced bytes move between a
 * program's pipe and a session with exact counts (hook_splice.c).
 *
 * A pipe cannot give bytes back, and a write into a pipe may take fewer
 * than asked for: so neither end of an emulated splice can be read or
 * written by guess.  Both moves go through the shuttle, a private pipe
 * that is empty whenever its lock is free:
 *   from a pipe: splice(pipe -> shuttle, SPLICE_F_NONBLOCK) takes what the
 *     pipe holds (the kernel counts it), then read() empties the shuttle;
 *   to a pipe: write() into the empty shuttle, splice(shuttle -> pipe,
 *     SPLICE_F_NONBLOCK) moves what the pipe takes, and what it did not
 *     take is read back out of the shuttle (it is a copy: nothing is lost).
 * Neither ever waits; the caller waits for the program's pipe first,
 * outside every lock.  The shuttle is made on first use, or just before
 * the program enters a sandbox (two descriptors among the shim's own,
 * close-on-exec), and made again in a forked child, which must not share
 * it with its parent.
 *
 * Without one (a sandbox, where the shim makes no new pipe, or no
 * descriptor left), the moves fall back to what is exact enough alone:
 * FIONREAD, then read() of at most that; write() of everything on a
 * non-blocking pipe (the kernel counts), of at most PIPE_BUF bytes, which
 * a pipe that polled writable always takes whole, on a blocking one.
 */
#ifndef SOCKSEAL_SHUTTLE_H
#define SOCKSEAL_SHUTTLE_H

#include <sys/types.h>

/* shuttle_from_pipe(pfd, buf, n): up to N bytes from pipe PFD into BUF,
 * not waiting: the count, 0 at the pipe's end, -EAGAIN if it is empty,
 * or -errno. */
ssize_t shuttle_from_pipe(int pfd, void *buf, size_t n);

/* shuttle_to_pipe(pfd, buf, n, flags): up to N bytes of BUF into pipe PFD,
 * not waiting (FLAGS: SPLICE_F_MORE passes): the count, -EAGAIN if it is
 * full, or -errno (-EPIPE, with SIGPIPE, when nobody reads it).  BUF is
 * written to, with the bytes it already holds. */
ssize_t shuttle_to_pipe(int pfd, void *buf, size_t n, unsigned int flags);

/* shuttle_prepare(): make the shuttle now, the program about to enter a
 * sandbox (hook_sandbox), where the shim makes no new pipe. */
void shuttle_prepare(void);

/* shuttle_fork_child(): in a forked child: the parent's shuttle goes (a
 * child in its parent's sandbox falls back for good). */
void shuttle_fork_child(void);

#endif
