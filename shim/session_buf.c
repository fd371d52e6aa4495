/*
 * session_buf: a session's buffers.  The receive buffer holds up to
 * SESSION_RBUF bytes of ciphertext: room for several whole records, so one
 * read() takes a large chunk and the records in it are opened in place.
 * The transmit buffer holds one batch of at most SESSION_TBATCH records
 * plus room for the end-of-stream mark.  Both are in the session's mapping
 * (session.c); their pages are touched only as data flows, and given back
 * after a burst (buf_trim).
 *
 * Owns the buffers' room (compaction), their pages (trim), and their
 * kernel I/O: the one pull of ciphertext into rbuf (ss_rx_pull; what to
 * do in a sandbox stays with its callers, see there) and the flush of the
 * queued ciphertext in tbuf (ss_tx_flush).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "real.h"
#include "record.h"
#include "init.h"
#include "session.h"
#include "session_int.h"

#define SESSION_TRIM_MS 250     /* at most one trim per buffer per ... ms */

/* The buffers are part of the session's mapping. */
int
ss_rbuf_alloc(struct session *s)
{
	(void)s;
	return 0;
}

int
ss_tbuf_alloc(struct session *s)
{
	(void)s;
	return 0;
}

/*
 * Buffer pages after a burst.  The buffers' pages are touched only as data
 * flows, and a burst (a large response, a bulk copy) would leave up to half
 * a megabyte resident for as long as the connection lives.  So a buffer
 * that was filled beyond SESSION_TRIM_MIN gives its pages back to the
 * kernel (MADV_REMOVE: the mapping is shared memory, and the buffer's lock
 * is held by whichever process does it) when it is empty again and the
 * stream has paused: for rbuf, the last pull from the kernel did not fill
 * it (the kernel had nothing more); for tbuf, the queue was written out.
 * At most once every SESSION_TRIM_MS per buffer, so a steady stream pays a
 * few dozen page faults a few times a second, and a connection carrying
 * small messages never makes the call.  A burst that ends within
 * SESSION_TRIM_MS of the previous trim keeps its pages until the next
 * read, write or close.
 */

static void
buf_trim(uint8_t *buf, size_t len, size_t *hiwat, uint64_t *last)
{
	uintptr_t lo, hi;
	uint64_t now;
	int saved;

	if (*hiwat <= SESSION_TRIM_MIN || shim_in_sandbox())
		return;
	now = now_ms();
	if (now - *last < SESSION_TRIM_MS)
		return;
	/* Whole pages only: the neighbours' bytes share the end pages. */
	lo = PAGE_UP((uintptr_t)buf);
	hi = PAGE_UP((uintptr_t)buf + *hiwat);
	if (hi > PAGE_DOWN((uintptr_t)buf + len))
		hi = PAGE_DOWN((uintptr_t)buf + len);
	if (hi > lo) {
		saved = errno;
		(void)madvise((void *)lo, hi - lo, MADV_REMOVE);
		errno = saved;
	}
	*hiwat = 0;
	*last = now;
}

/*
 * A pull from the kernel put N more bytes of ciphertext at rend, into SPACE
 * bytes of room.  What every pull records: epoll hears of new data
 * (rx_gen), and whether the kernel may hold more (rx_more, the pull filled
 * the room).
 */
static void
rx_pulled(struct session *s, size_t n, size_t space)
{
	s->rend += n;
	if (s->rend > s->rx_hiwat)
		s->rx_hiwat = s->rend;
	__atomic_add_fetch(&s->rx_gen, 1, __ATOMIC_RELAXED);
	s->rx_more = n == space;
}

/*
 * The one pull from the kernel into rbuf (rx_lock held): into the room
 * after rend (the caller makes room first if it must, ss_rbuf_compact or
 * _keep, and decides what no room means), with recv(FLAGS), or read() when
 * FLAGS is 0.  Returns what the call returned, errno as the call left it;
 * the bytes a pull brought are recorded (rx_pulled).
 *
 * What to do in a sandbox (where the filter may allow read() alone, see
 * ss_tx_flush) stays with the callers, because they do not agree and one
 * rule here would change what the shim does there: the poll path
 * (session_poll_after) pulls with read(), as the kernel said readable;
 * rx_locked's top-up and its look before a short read, rx_peek_locked's
 * look, rx_unread and session_inq make no pull at all; the pull a read or
 * peek waits for goes by the program's flags, sandbox or not (read() when
 * it may block, else recv() with MSG_DONTWAIT, as after SHUT_RD), and
 * hs_fill pulls with recv() all the same; rx_mark_seen is not reached in
 * one (end_was_clean).
 */
ssize_t
ss_rx_pull(struct session *s, int fd, int flags)
{
	size_t space = SESSION_RBUF - s->rend;
	ssize_t n;

	if (flags != 0)
		n = real_recv(fd, s->rbuf + s->rend, space, flags);
	else
		n = real_read(fd, s->rbuf + s->rend, space);
	if (n > 0)
		rx_pulled(s, (size_t)n, space);
	return n;
}

/* After a read (rx_lock held): an emptied, paused buffer gives back its pages. */
void
ss_rx_trim(struct session *s)
{
	if (s->rstart != s->rend || s->ptlen != 0 || s->rx_more)
		return;
	s->rstart = s->rend = 0;
	buf_trim(s->rbuf, SESSION_RBUF, &s->rx_hiwat, &s->rx_trimmed);
}

/* Make room for at least one whole record after rend. */
void
ss_rbuf_compact(struct session *s)
{
	if (s->rstart == s->rend) {
		s->rstart = s->rend = 0;
		return;
	}
	if (SESSION_RBUF - s->rend >= RECORD_MAXWIRE)
		return;
	memmove(s->rbuf, s->rbuf + s->rstart, s->rend - s->rstart);
	s->rend -= s->rstart;
	s->rstart = 0;
}

/* Make room after rend, moving the unread plaintext along (MSG_PEEK). */
void
ss_rbuf_compact_keep(struct session *s)
{
	size_t base;

	if (s->ptlen == 0) {
		ss_rbuf_compact(s);
		return;
	}
	if (SESSION_RBUF - s->rend >= RECORD_MAXWIRE)
		return;
	base = s->pt_off;
	memmove(s->rbuf, ss_pt(s), s->rend - base);
	s->pt_off = 0;
	s->rstart -= base;
	s->rend -= base;
}

/* Wait for EVENTS on FD until DEADLINE (ms).  0, -ETIMEDOUT or -errno. */
int
ss_wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int r;

	for (;;) {
		now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		r = real_poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Write the queued ciphertext.  FLAGS go to send() (0: write()).  With
 * DEADLINE non-zero, waits for writability until then.  Returns 0 when the
 * queue is empty, -EAGAIN, -EINTR or the socket's error.
 */
int
ss_tx_flush(struct session *s, int fd, int flags, uint64_t deadline)
{
	ssize_t n;
	int r;

	if (s->tend > s->tx_hiwat)
		s->tx_hiwat = s->tend;
	while (s->toff < s->tend) {
		/* In a sandbox only write() may be allowed. */
		if (flags != 0 && !shim_in_sandbox())
			n = real_send(fd, s->tbuf + s->toff, s->tend - s->toff,
			    flags);
		else
			n = real_write(fd, s->tbuf + s->toff, s->tend - s->toff);
		if (n > 0) {
			s->toff += (size_t)n;
			s->wire_out += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EAGAIN && deadline != 0) {
			if ((r = ss_wait_fd(fd, POLLOUT, deadline)) < 0)
				return r;
			continue;
		}
		return -errno;
	}
	s->toff = s->tend = 0;
	buf_trim(s->tbuf, SESSION_TBUF, &s->tx_hiwat, &s->tx_trimmed);
	if (s->shut_pending) {
		/* The FIN must follow our last record, never overtake it. */
		s->shut_pending = false;
		(void)real_shutdown(fd, SHUT_WR);
	}
	return 0;
}
