/*
 * session_int: what the files of the session share.  Private to them;
 * session.h is the interface (and has the state machine and lock order).
 *
 *   session.c       core: mappings and their cache, handshakes in flight,
 *                   new/ref/put, the kernel fd, locks, failure
 *   session_hold.c  holders: which processes hold a session (fork, exec)
 *   session_buf.c   the buffers: trim, compaction, the one pull from the
 *                   kernel into rbuf, the flush of tbuf
 *   session_hs.c    the handshake state machine
 *   session_rx.c    the receive path
 *   session_tx.c    the send path
 *   session_end.c   shutdown, close, exit: a connection's end
 *   session_poll.c  readiness (poll, epoll), FIONREAD, SO_ERROR
 */
#ifndef SOCKSEAL_SESSION_INT_H
#define SOCKSEAL_SESSION_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "record.h"
#include "init.h"
#include "session.h"

#define SESSION_RBUF    (3 * 65536 + 1024)
#define SESSION_TBATCH  4
#define SESSION_TBUF    (SESSION_TBATCH * RECORD_MAXWIRE + RECORD_WIRELEN(0))
#define SESSION_EARLY   65536   /* bytes a program may write mid-handshake */
#define SESSION_TRIM_MIN 16384 /* buffer bytes worth giving back (buf_trim) */
#define PAGE_DOWN(x)    ((x) & ~(uintptr_t)4095)
#define PAGE_UP(x)      PAGE_DOWN((x) + 4095)

/* session.c */

/* (Sandbox mode is the process's: shim_in_sandbox(), init.h.) */

/*
 * Take a session lock (ss_lock), try one (ss_trylock: 0 when taken),
 * release one (ss_unlock).  A robust mutex whose owner died fails the
 * session (unless it is hold_lock).
 */
void ss_lock(struct session *s, pthread_mutex_t *m);
int ss_trylock(struct session *s, pthread_mutex_t *m);
void ss_unlock(pthread_mutex_t *m);

/*
 * The session fails: DEAD, calls fail with ERR, logged once; RESULT (enum
 * session_end; ss_fail: SESSION_END_FAILED) and WHY are kept for the end
 * line.  The caller holds the lock(s) of the side that noticed.
 */
void ss_fail_as(struct session *s, int result, int err, const char *why);
void ss_fail(struct session *s, int err, const char *why);

/* S's handshake ended in this process: no longer counted (once). */
void ss_hs_uncount(struct session *s);
/* In a forked child (session_forked): S counts again if it was counted. */
void ss_hs_recount(struct session *s);

/* The stand-in's tag gets FLAG (standin.h), if it is still S's. */
void ss_tag(struct session *s, unsigned int flag);

/* A call of ours took the kernel's error E (kerr), the program not told. */
void ss_rx_kerr(struct session *s, int e);
/* A call returns R: a failed session's error, returned, is not pending. */
ssize_t ss_told(struct session *s, ssize_t r);

/* shutdown(SHUT_RD) sets it without rx_lock (it must never wait for a
 * blocked reader): read atomically. */
static inline bool
ss_rd_shut(const struct session *s)
{
	return __atomic_load_n(&s->rd_shut, __ATOMIC_RELAXED);
}

/* session_hold.c */

/* Is any other live process still holding S?  LEAVING: this process's
 * entry is dropped first (it holds no fd any more). */
bool ss_others_hold(struct session *s, bool leaving);

/* session_buf.c */

/* The buffers, ready for use: 0 or -errno (they are in the mapping). */
int ss_rbuf_alloc(struct session *s);
int ss_tbuf_alloc(struct session *s);
/* Make room after rend: for one whole record (ss_rbuf_compact), moving
 * the unread plaintext along too (ss_rbuf_compact_keep, MSG_PEEK). */
void ss_rbuf_compact(struct session *s);
void ss_rbuf_compact_keep(struct session *s);
/* Pull ciphertext from the kernel into rbuf after rend: recv(FLAGS), or
 * read() when FLAGS is 0.  What the call returned, errno as it left it. */
ssize_t ss_rx_pull(struct session *s, int fd, int flags);
/* After a read (rx_lock held): an emptied, paused rbuf gives back pages. */
void ss_rx_trim(struct session *s);
/* Wait for EVENTS on FD until DEADLINE (ms).  0, -ETIMEDOUT or -errno. */
int ss_wait_fd(int fd, short events, uint64_t deadline);
/* Write the queued ciphertext (tx_lock held): 0 when the queue is empty,
 * -EAGAIN, -EINTR, -ETIMEDOUT or the socket's error. */
int ss_tx_flush(struct session *s, int fd, int flags, uint64_t deadline);

/* session_hs.c */

/* Drive the handshake from a data call with the program's FLAGS. */
int ss_hs_from_call(struct session *s, int fd, int flags);
/* session_handshake without waiting for a lock: -EAGAIN if busy. */
int ss_handshake_try(struct session *s, int fd);

/* session_rx.c */

/* Open the next whole record if one is buffered (rx_lock held): 1, 0
 * (need more bytes) or <0 (the session failed).  See there for DST. */
int ss_rx_open_next(struct session *s, uint8_t *dst, size_t room,
    size_t *delivered);
/* Is a whole record (or plaintext, or the end) waiting?  rx_lock held. */
bool ss_rx_ready(struct session *s);
/* The bytes IOV holds. */
size_t ss_iov_total(const struct iovec *iov, int iovcnt);

/* session_tx.c */

/* The kernel refused our records with R (tx_lock held). */
void ss_tx_broken(struct session *s, int r);

#endif
