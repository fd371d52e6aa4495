/*
 * session_poll: readiness, as TCP's socket would report it.  Owns the
 * translation for poll and epoll (ready.c, epoll*.c): what buffered state
 * alone makes true (session_poll_prep), what the kernel's answer means for
 * the session (session_poll_after), an edge's full view (session_poll_now);
 * and the two other questions whose answers must be TCP's: FIONREAD
 * (session_inq, exact) and SO_ERROR (session_so_error, once).  A reset
 * that only answered our end-of-stream mark is a clean end (end_was_clean).
 * The readiness paths never wait for a session lock (a blocked reader or
 * writer may hold it): they try it; session_inq takes rx_lock as a read.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "log.h"
#include "real.h"
#include "record.h"
#include "init.h"
#include "session.h"
#include "session_int.h"
#include "tcpstate.h"

/*
 * What a failed session reports, as TCP does after a reset: readable and
 * writable (the next call fails at once), hung up, POLLRDHUP if asked, and
 * POLLERR while its error is pending: not yet returned by a call or
 * SO_ERROR (TCP's sk_err).
 */
static short
dead_events(const struct session *s, short want)
{
	short ev = (short)(want & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM |
	    POLLRDHUP)) | POLLHUP;

	if (!__atomic_load_n(&s->err_reported, __ATOMIC_RELAXED))
		ev |= POLLERR;
	return ev;
}

/*
 * An open session whose pull took a kernel error (the peer's reset) while
 * data was still to be read: TCP's socket says POLLERR (and the rest of a
 * reset) until the error is returned; the kernel's does not any more, the
 * pull consumed it.
 */
static short
kerr_events(const struct session *s, short want)
{
	if (__atomic_load_n(&s->kerr, __ATOMIC_RELAXED) == 0 ||
	    __atomic_load_n(&s->err_reported, __ATOMIC_RELAXED))
		return 0;
	return (short)(want & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM |
	    POLLRDHUP)) | POLLHUP | POLLERR;
}

/*
 * Endings (docs/endings.md).  Our end-of-stream mark is data to TCP, where
 * TCP's end is a FIN: a peer that has closed answers the mark with a
 * reset, where a FIN draws none.  So a reset after our mark is TCP's clean end when it is the
 * mark's alone:
 *   - the peer ended its stream with its own mark (one closing with unread
 *     data resets without it, as TCP does), and
 *   - it had acknowledged every byte we sent before our mark (bytes that
 *     arrived after its close draw TCP's reset too; the peer's kernel
 *     answers them with the reset, never an acknowledgement).
 * Then the kernel's pending error is taken (SO_ERROR) and never shown: no
 * POLLERR, SO_ERROR 0, reads end at 0, as after TCP's exchange of FINs.
 * Looks only when the kernel reports an error on a session that sent its
 * mark; the locks are tried, never waited for (then: not now).
 */
static bool rx_mark_seen(struct session *s, int fd);

static bool
end_was_clean(struct session *s, int fd)
{
	struct tcpstate ts;
	uint64_t need = 0;
	bool ok = false;
	socklen_t len = sizeof(int);
	int e, saved;

	if (__atomic_load_n(&s->kclean, __ATOMIC_ACQUIRE))
		return true;
	if (session_state(s) != SESSION_OPEN || shim_in_sandbox() ||
	    !__atomic_load_n(&s->tx_shut, __ATOMIC_RELAXED))
		return false;
	if (ss_trylock(s, &s->tx_lock) == 0) {
		ok = s->toff == s->tend;
		need = s->mark_at;
		ss_unlock(&s->tx_lock);
	}
	if (!ok || ss_trylock(s, &s->rx_lock) != 0)
		return false;
	ok = rx_mark_seen(s, fd) && s->kerr == 0;
	ss_unlock(&s->rx_lock);
	if (!ok || tcpstate_get(fd, &ts) < 0 || ts.state != TCPSTATE_CLOSE ||
	    ts.acked < need)
		return false;
	saved = errno;
	(void)real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
	errno = saved;
	__atomic_store_n(&s->kclean, true, __ATOMIC_RELEASE);
	LOG(LOG_DEBUG, "fd %d: the peer's reset answered our end-of-stream "
	    "mark: a clean end", fd);
	return true;
}

int
session_so_error(struct session *s, int fd)
{
	int e = 0;

	fd = session_kfd(s, fd);
	/* The kernel's error, if it is our mark's reset, is taken here. */
	(void)end_was_clean(s, fd);

	if (session_state(s) == SESSION_DEAD && !s->err_reported) {
		s->err_reported = true;
		e = s->initiator && !s->was_open ? ECONNREFUSED : s->err;
	} else if (session_state(s) == SESSION_OPEN && s->kerr != 0 &&
	    !s->err_reported) {
		/* The peer's reset, taken by our pull: pending as on TCP. */
		s->err_reported = true;
		e = s->kerr;
	}
	return e;
}

/* Is a whole empty record (only the mark can be one; a forgery fails on
 * the read) buffered behind unread data?  rx_lock held. */
static bool
rx_mark_buffered(struct session *s)
{
	size_t off, wl;

	if (s->rbuf == NULL)
		return false;
	for (off = s->rstart; off < s->rend; off += wl) {
		if (record_peek(s->rbuf + off, s->rend - off, &wl) <= 0)
			return false;
		if (wl == RECORD_WIRELEN(0))
			return true;
	}
	return false;
}

/*
 * Has the peer ended its stream?  True once the end-of-stream mark was
 * opened, or when a whole empty record (which can only be the mark; a
 * forgery fails on the read) is buffered behind unread data.  rx_lock held.
 */
static bool
rx_hup(struct session *s)
{
	/* As TCP's RCV_SHUTDOWN: the peer's end, or our own SHUT_RD. */
	return s->rx_eof || ss_rd_shut(s) || rx_mark_buffered(s);
}

/*
 * Has the peer's end-of-stream mark come (rx_lock held)?  Takes what the
 * kernel still holds first, without waiting: after a reset its queue is
 * still there to read, the mark in it.  A pull's error is kept (kerr): the
 * kernel gave it to us, not to the program.
 */
static bool
rx_mark_seen(struct session *s, int fd)
{
	size_t space;
	ssize_t got;

	while (!s->rx_eof) {
		ss_rbuf_compact_keep(s);
		if ((space = SESSION_RBUF - s->rend) == 0)
			break;
		got = ss_rx_pull(s, fd, MSG_DONTWAIT);
		if (got <= 0) {
			if (got < 0)
				ss_rx_kerr(s, errno);
			break;
		}
	}
	return s->rx_eof || rx_mark_buffered(s);
}

/*
 * POLLHUP for both directions shut by the program: SHUT_RD stays in the
 * shim (see session_shutdown), so the kernel cannot say it; TCP does
 * (RCV_SHUTDOWN and SEND_SHUTDOWN).  Read without locks: two flags that
 * only ever go from false to true.
 */
static short
both_shut(const struct session *s)
{
	return ss_rd_shut(s) &&
	    __atomic_load_n(&s->tx_shut, __ATOMIC_RELAXED) ? POLLHUP : 0;
}

short
session_poll_prep(struct session *s, short want, short *kev)
{
	short ready = 0, rd = want & (POLLIN | POLLRDNORM);
	short wr = want & (POLLOUT | POLLWRNORM);
	int st = session_state(s);

	*kev = want & ~(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
	if (st == SESSION_PLAIN) {
		*kev = want;
		if (ss_trylock(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				*kev |= POLLOUT;
			ss_unlock(&s->tx_lock);
		}
		return 0;
	}
	if (st == SESSION_DEAD)
		return dead_events(s, want);
	if (st != SESSION_OPEN) {
		/* Watch for what the handshake needs, not what was asked. */
		*kev |= st == SESSION_HS_SEND1 ? POLLOUT : POLLIN;
		if (ss_trylock(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				*kev |= POLLOUT;
			ss_unlock(&s->tx_lock);
		}
		return 0;
	}
	if (rd || (want & POLLRDHUP)) {
		if (ss_trylock(s, &s->rx_lock) == 0) {
			if (rd && ss_rx_ready(s))
				ready |= rd;
			else
				*kev |= rd;
			if ((want & POLLRDHUP) && rx_hup(s))
				ready |= POLLRDHUP;
			ss_unlock(&s->rx_lock);
		} else {
			*kev |= rd;
		}
	}
	if (ss_trylock(s, &s->tx_lock) == 0) {
		/* Queued ciphertext goes out when the kernel can take it,
		 * whatever the program is waiting for. */
		*kev |= s->toff < s->tend ? POLLOUT : wr;
		ss_unlock(&s->tx_lock);
	} else {
		*kev |= wr;
	}
	return ready | both_shut(s) | kerr_events(s, want);
}

short
session_poll_after(struct session *s, int fd, short want, short krev)
{
	short rd = want & (POLLIN | POLLRDNORM);
	short wr = want & (POLLOUT | POLLWRNORM);
	short out = krev & ~(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
	short kev;
	ssize_t n;
	int r;

	fd = session_kfd(s, fd);
	if (session_state(s) == SESSION_PLAIN) {
		if ((krev & POLLOUT) && ss_trylock(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend)
				(void)ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0);
			if (s->toff < s->tend)
				krev &= ~(POLLOUT | POLLWRNORM);
			ss_unlock(&s->tx_lock);
		}
		return krev & (want | POLLERR | POLLHUP | POLLNVAL);
	}
	if (session_state(s) != SESSION_OPEN && session_state(s) != SESSION_DEAD) {
		if (krev == 0 && now_ms() < s->hs_deadline)
			return 0;
		r = ss_handshake_try(s, fd);
		if (r == -EAGAIN || r == -EINTR)
			return 0;
		if (r < 0)
			return dead_events(s, want);
		/* Open now: report what is true without asking the kernel. */
		out = session_poll_prep(s, want, &kev);
		if (wr && ss_trylock(s, &s->tx_lock) == 0) {
			if (s->toff >= s->tend)
				out |= wr;
			ss_unlock(&s->tx_lock);
		}
		return out;
	}
	if (session_state(s) == SESSION_DEAD)
		return dead_events(s, want);
	if ((krev & POLLERR) && end_was_clean(s, fd)) {
		krev &= (short)~POLLERR;
		out &= (short)~POLLERR;
	}

	if (rd && (krev & (POLLIN | POLLRDNORM | POLLHUP | POLLERR))) {
		if (ss_trylock(s, &s->rx_lock) == 0) {
			if (!ss_rx_ready(s) && ss_rbuf_alloc(s) == 0) {
				ss_rbuf_compact(s);
				/* The kernel said readable; in a sandbox
				 * read() is what the filter allows. */
				n = ss_rx_pull(s, fd, shim_in_sandbox() ? 0 :
				    MSG_DONTWAIT);
				/* 0 or an error: the next read reports it. */
				if (n < 0)
					ss_rx_kerr(s, errno);
				if (n <= 0 && !(n < 0 && errno == EAGAIN))
					out |= rd;
			} else {
				/* The kernel's edge is taken here without a
				 * pull: the next short read must look. */
				s->rx_more = true;
			}
			if (ss_rx_ready(s))
				out |= rd;
			if ((want & POLLRDHUP) && rx_hup(s))
				out |= POLLRDHUP;
			ss_unlock(&s->rx_lock);
		} else {
			out |= krev & rd;
		}
	} else if ((rd || (want & POLLRDHUP)) &&
	    ss_trylock(s, &s->rx_lock) == 0) {
		/* Woken for something else (writability, our shutdown): TCP
		 * reports all that is true, buffered plaintext included. */
		if (rd && ss_rx_ready(s))
			out |= rd;
		if ((want & POLLRDHUP) && rx_hup(s))
			out |= POLLRDHUP;
		ss_unlock(&s->rx_lock);
	}
	if (krev & (POLLOUT | POLLWRNORM)) {
		if (ss_trylock(s, &s->tx_lock) == 0) {
			if (s->toff < s->tend && s->tbuf != NULL) {
				r = ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, 0);
				if (r < 0 && r != -EAGAIN && r != -EINTR) {
					if (r == -ECONNRESET || r == -EPIPE)
						ss_rx_kerr(s, -r);
					ss_tx_broken(s, r);
				}
			}
			if (s->toff >= s->tend)
				out |= wr;
			ss_unlock(&s->tx_lock);
		} else {
			out |= krev & wr;
		}
	}
	if (session_state(s) == SESSION_DEAD)
		out |= dead_events(s, want);
	return out | both_shut(s) | kerr_events(s, want);
}

/*
 * All that is true of S now, as TCP's wake-up reports it: what the session
 * knows, and what the kernel's socket says (room to write, a hang-up, a
 * reset).  For an edge the session's own news made.  One poll(), and no
 * pull: taking the kernel's data here would hide it from the other
 * registrations of the socket, which the kernel reports in the same wait
 * (an edge for that data comes with them).  None in a sandbox (its filter
 * may not allow it: then the session's view alone, the kernel's own edges
 * bringing the rest).
 */
short
session_poll_now(struct session *s, int fd, short want)
{
	struct pollfd p;
	short ready, kev = 0, out;
	bool queued = true;
	int saved;

	fd = session_kfd(s, fd);
	ready = session_poll_prep(s, want, &kev);
	if (shim_in_sandbox() || session_state(s) != SESSION_OPEN)
		return ready;
	p.fd = fd;
	p.events = (short)(want & (POLLOUT | POLLWRNORM | POLLRDHUP));
	saved = errno;
	if (real_poll(&p, 1, 0) != 1)
		p.revents = 0;
	errno = saved;
	if ((p.revents & POLLERR) && end_was_clean(s, fd))
		p.revents &= (short)~POLLERR;
	/* The kernel's RDHUP: the peer's FIN (after its mark) or reset is
	 * in, as TCP's RDHUP says, pulled or not. */
	out = ready | (p.revents & (POLLERR | POLLHUP)) |
	    (p.revents & want & POLLRDHUP);
	if (p.revents & (POLLOUT | POLLWRNORM)) {
		if (ss_trylock(s, &s->tx_lock) == 0) {
			queued = s->toff < s->tend;
			ss_unlock(&s->tx_lock);
		}
		if (!queued)
			out |= p.revents & (POLLOUT | POLLWRNORM);
	}
	return out;
}

int
session_inq(struct session *s, int fd)
{
	size_t off, wl, n, space;
	ssize_t got;
	int r;

	fd = session_kfd(s, fd);
	/* TCP's FIONREAD fails only on a listener: after a reset it is 0. */
	if (session_state(s) == SESSION_DEAD)
		return 0;
	if (session_state(s) == SESSION_PLAIN)
		return real_ioctl(fd, FIONREAD, &r) < 0 ? -errno : r;
	ss_lock(s, &s->rx_lock);
	/*
	 * Programs read exactly what FIONREAD says and then wait for the
	 * next edge (nginx), and some treat more than they expect as the
	 * start of the next request: the count must be exact.  Pull what the
	 * kernel holds first, without waiting; if the buffer fills, what is
	 * left behind is refilled when the program drains the buffer, and
	 * epoll reports it as new data (rx_gen).
	 */
	for (;;) {
		/*
		 * Make room, moving unread plaintext along: left where it
		 * was, a read that took most of a record pinned the buffer
		 * and records behind went uncounted (ready_diff).
		 */
		ss_rbuf_compact_keep(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			break;
		if (shim_in_sandbox() || session_state(s) != SESSION_OPEN)
			break;
		got = ss_rx_pull(s, fd, MSG_DONTWAIT);
		if (got <= 0) {
			if (got < 0)
				ss_rx_kerr(s, errno);
			s->rx_more = false;
			break;
		}
		if (!s->rx_more)
			break;
	}
	n = s->ptlen;
	if (session_state(s) == SESSION_OPEN) {
		/* Whole records still sealed count by their plaintext length. */
		for (off = s->rstart; off < s->rend; off += wl) {
			r = record_peek(s->rbuf + off, s->rend - off, &wl);
			if (r <= 0)
				break;
			n += wl - RECORD_HDRLEN - RECORD_TAGLEN;
		}
	}
	ss_unlock(&s->rx_lock);
	return n > 0x7fffffff ? 0x7fffffff : (int)n;
}
