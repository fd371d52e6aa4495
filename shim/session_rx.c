/*
 * session_rx: the receive path.  Every read-like call becomes one
 * session_recv(): the handshake first if it is under way, then whole
 * records opened from rbuf (in place, or straight into the program's
 * buffer when one fits), and ciphertext pulled from the kernel when they
 * run out, so that a read returns what TCP's would: a short read only when
 * nothing more is there, MSG_PEEK all that is there, 0 only after the
 * peer's end-of-stream mark (or SHUT_RD).  A PLAIN session's reads go to
 * the kernel as they are.  rx_lock guards it all (session.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "reason.h"
#include "real.h"
#include "record.h"
#include "init.h"
#include "session.h"
#include "session_int.h"

/*
 * Everything before the reset that an earlier call of ours took from the
 * kernel (kerr) is read: now the reset itself, as TCP's read returns its
 * sk_err once the queue is empty.
 */
static ssize_t
rx_kerr_fail(struct session *s)
{
	int e = s->kerr;

	ss_fail_errno(s, e);
	return -e;
}

/* Copy LEN bytes from SRC into IOV starting at byte OFF of the iovec. */
static void
iov_put(const struct iovec *iov, int iovcnt, size_t off, const uint8_t *src,
    size_t len)
{
	int i;
	size_t c;

	for (i = 0; i < iovcnt && len > 0; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		c = iov[i].iov_len - off;
		if (c > len)
			c = len;
		memcpy((uint8_t *)iov[i].iov_base + off, src, c);
		src += c;
		len -= c;
		off = 0;
	}
}

size_t
ss_iov_total(const struct iovec *iov, int iovcnt)
{
	size_t t = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

/*
 * Open the next whole record if one is buffered.  1: opened (pt_off/ptlen
 * set, rx_eof for the mark), 0: need more bytes, <0: the session failed.
 * When DST is not NULL and the record's plaintext fits in ROOM bytes, the
 * record is decrypted straight into DST (the program's buffer: one pass
 * over the data instead of two) and *delivered is its length; otherwise in
 * place, and *delivered is 0.
 */
int
ss_rx_open_next(struct session *s, uint8_t *dst, size_t room,
    size_t *delivered)
{
	uint8_t *rec = s->rbuf + s->rstart;
	size_t wl;
	ssize_t n;
	int r;

	*delivered = 0;
	r = record_peek(rec, s->rend - s->rstart, &wl);
	if (r == 0)
		return 0;
	if (r < 0) {
		ss_fail(s, REASON_BAD_RECORD, ECONNRESET, "bad record length");
		return -ECONNRESET;
	}
	if (dst == NULL || wl - RECORD_WIRELEN(0) > room)
		dst = rec + RECORD_HDRLEN;
	if ((n = record_open_into(&s->rx, rec, wl, dst)) < 0) {
		ss_fail(s, REASON_RECORD_AUTH, ECONNRESET,
		    "record failed authentication (tampered, replayed or reordered)");
		return -ECONNRESET;
	}
	s->rstart += wl;
	if (n == 0)
		s->rx_eof = true;
	else if (dst == rec + RECORD_HDRLEN) {
		s->pt_off = (size_t)(dst - s->rbuf);
		s->ptlen = (size_t)n;
	} else
		*delivered = (size_t)n;
	return 1;
}

/* The contiguous part of IOV at byte OFF: its address and *room. */
static uint8_t *
iov_at(const struct iovec *iov, int iovcnt, size_t off, size_t *room)
{
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (off < iov[i].iov_len) {
			*room = iov[i].iov_len - off;
			return (uint8_t *)iov[i].iov_base + off;
		}
		off -= iov[i].iov_len;
	}
	*room = 0;
	return NULL;
}

/*
 * MSG_PEEK: open the next whole record in place and append its plaintext
 * to the unread plaintext, so that the peeked bytes stay contiguous (the
 * first record's tag and the next one's header are the gap it closes).
 * Returns ss_rx_open_next's result.
 */
static int
rx_peek_append(struct session *s)
{
	size_t pt = s->pt_off, ptlen = s->ptlen, c;
	int r;

	if (ptlen == 0)
		return ss_rx_open_next(s, NULL, 0, &c);
	if ((r = ss_rx_open_next(s, NULL, 0, &c)) <= 0 || s->rx_eof) {
		s->pt_off = pt;
		s->ptlen = ptlen;
		return r;
	}
	memmove(s->rbuf + pt + ptlen, ss_pt(s), s->ptlen);
	s->pt_off = pt;
	s->ptlen = ptlen + s->ptlen;
	return r;
}

/*
 * MSG_PEEK (rx_lock held): all that is there up to WANT bytes, as TCP's
 * peek returns, not one record's worth: the whole records behind the
 * unread plaintext are opened and appended to it, and what the kernel holds
 * is taken without waiting (waiting, per the socket, only when nothing is
 * there at all).  Nothing is consumed: the bytes are the first of ss_pt().
 * Returns their count (at most WANT), or -errno.
 */
ssize_t
ss_rx_gather(struct session *s, int fd, size_t want, int flags)
{
	size_t have, space;
	int kflags = ss_rd_shut(s) ? MSG_DONTWAIT : flags & MSG_DONTWAIT;
	bool drained = false;
	ssize_t n;
	int r;

	for (;;) {
		while (s->ptlen < want && !s->rx_eof) {
			if ((r = rx_peek_append(s)) < 0) {
				if (s->ptlen > 0)
					goto out;
				return r;
			}
			if (r == 0)
				break;
		}
		have = s->ptlen;
		if (have >= want || s->rx_eof ||
		    (have > 0 && (drained || shim_in_sandbox())))
			goto out;
		/* Our handshake message 2 may still be queued (see rx_locked). */
		if (ss_trylock(s, &s->tx_lock) == 0) {
			r = s->toff < s->tend ? ss_tx_flush(s, fd,
			    MSG_NOSIGNAL | MSG_DONTWAIT, 0) : 0;
			ss_unlock(&s->tx_lock);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				ss_fail_errno(s, -r);
				return r;
			}
		}
		ss_rbuf_compact_keep(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			goto out;
		n = ss_rx_pull(s, fd, have > 0 ? MSG_DONTWAIT : kflags);
		if (n > 0) {
			drained = !s->rx_more;
			continue;
		}
		/* An end without the mark: the read that comes to it fails. */
		if (n == 0) {
			if (have > 0)
				goto out;
			if (s->kerr != 0)
				return rx_kerr_fail(s);
			if (ss_rd_shut(s))
				goto out;
			ss_fail(s, REASON_TRUNCATED, ECONNRESET,
			    "connection ended without end-of-stream mark (truncated)");
			return -ECONNRESET;
		}
		r = -errno;
		if (have > 0)
			ss_rx_kerr(s, -r);
		if (have > 0 || (ss_rd_shut(s) && r == -EAGAIN))
			goto out;
		if (r != -EAGAIN && r != -EINTR)
			ss_fail_errno(s, -r);
		return r;
	}
out:
	return (ssize_t)(s->ptlen < want ? s->ptlen : want);
}

static ssize_t
rx_peek_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	ssize_t n = ss_rx_gather(s, fd, ss_iov_total(iov, iovcnt), flags);

	if (n > 0)
		iov_put(iov, iovcnt, 0, ss_pt(s), (size_t)n);
	return n;
}

/*
 * The buffer ran dry exactly at the end of a read while the kernel may
 * hold more (the last pull filled the buffer): refill now, without
 * waiting, so what the kernel holds is never stranded behind an edge that
 * already passed (rx_gen tells epoll it is new).  rx_lock held.
 */
void
ss_rx_refill_dry(struct session *s, int fd)
{
	ssize_t n;

	if (s->rx_more && !ss_rx_ready(s) && !shim_in_sandbox()) {
		ss_rbuf_compact(s);
		n = ss_rx_pull(s, fd, MSG_DONTWAIT);
		if (n <= 0)
			s->rx_more = false;
	}
}

static ssize_t
rx_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t want = ss_iov_total(iov, iovcnt), total = 0, c, room = 0;
	int kflags = flags & MSG_DONTWAIT;
	uint8_t *dst;
	bool drained = false, topup;
	ssize_t n;
	int r;

	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	if (want == 0)
		return 0;
	if ((r = ss_rbuf_alloc(s)) < 0)
		return r;
	if (flags & MSG_PEEK)
		return rx_peek_locked(s, fd, iov, iovcnt, flags);
	/*
	 * After shutdown(SHUT_RD) TCP still returns what is queued and what
	 * arrives later, and 0, without waiting, when nothing is there.  The
	 * kernel socket is not shut for reading (session_shutdown): look at
	 * it without waiting.
	 */
	if (ss_rd_shut(s))
		kflags = MSG_DONTWAIT;
	for (;;) {
		/* Deliver what is buffered, opening whole records in place. */
		while (total < want) {
			if (s->ptlen > 0) {
				c = s->ptlen < want - total ? s->ptlen : want - total;
				iov_put(iov, iovcnt, total, ss_pt(s), c);
				total += c;
				s->pt_off += c;
				s->ptlen -= c;
				SS_BYTES_IN(s, c);
				continue;
			}
			if (s->rx_eof)
				break;
			dst = iov_at(iov, iovcnt, total, &room);
			if ((r = ss_rx_open_next(s, dst, room, &c)) < 0)
				return total > 0 ? (ssize_t)total : r;
			if (r == 0)
				break;
			total += c;
			SS_BYTES_IN(s, c);
		}
		if (total == want || s->rx_eof) {
			if (total == want)
				ss_rx_refill_dry(s, fd);
			return (ssize_t)total;
		}
		/*
		 * A short read must mean what it means on TCP, that nothing
		 * more is there (edge-triggered programs such as nginx then
		 * wait for the next edge): before returning one, take what
		 * the kernel holds, without waiting.  Only a pull made by
		 * this very read that did not fill the buffer (drained) says
		 * the kernel is empty now.  An earlier pull says nothing
		 * about data that arrived after it: skipping the look when
		 * the poll path had made the last pull returned A
		 * alone while the kernel already held B, which TCP's read
		 * would have returned with it (tests/helpers/ready_diff.c
		 * found it: a peer write after an epoll_wait that reported
		 * buffered data, then a large read).  So the look costs one
		 * recv() that fails with EAGAIN when nothing came, as the
		 * program's own next read would on TCP.
		 */
		topup = total > 0 && !(flags & MSG_WAITALL);
		if (topup && (drained || shim_in_sandbox()))
			return (ssize_t)total;

		/*
		 * Our handshake message 2 may still be queued (the kernel took
		 * none of it): a program that only reads must still send it.
		 */
		if (ss_trylock(s, &s->tx_lock) == 0) {
			r = s->toff < s->tend ? ss_tx_flush(s, fd,
			    MSG_NOSIGNAL | MSG_DONTWAIT, 0) : 0;
			ss_unlock(&s->tx_lock);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				ss_fail_errno(s, -r);
				return r;
			}
		}

		/* Need more ciphertext from the kernel. */
		ss_rbuf_compact(s);
		n = ss_rx_pull(s, fd, topup ? MSG_DONTWAIT : kflags);
		if (n > 0) {
			drained = !s->rx_more;
			continue;
		}
		if (n == 0) {
			if (s->kerr != 0 && total == 0)
				return rx_kerr_fail(s);
			if (ss_rd_shut(s))
				return (ssize_t)total;
			ss_fail(s, REASON_TRUNCATED, ECONNRESET,
			    "connection ended without end-of-stream mark (truncated)");
			return total > 0 ? (ssize_t)total : -ECONNRESET;
		}
		r = -errno;
		if (total > 0)
			ss_rx_kerr(s, -r);
		if (total > 0 || (ss_rd_shut(s) && r == -EAGAIN))
			return (ssize_t)total;
		if (r != -EAGAIN && r != -EINTR)
			ss_fail_errno(s, -r);
		return r;
	}
}

/* A PLAIN session's read: the kernel's, as it is (counted, no lock). */
static ssize_t
plain_recv(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	n = flags ? real_recvmsg(fd, &m, flags) : real_readv(fd, iov, iovcnt);
	if (n < 0)
		return -errno;
	if (!(flags & MSG_PEEK))
		SS_BYTES_IN(s, n);
	return n;
}

ssize_t
session_recv(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	ssize_t r;

	fd = session_kfd(s, fd);
	if (flags & (MSG_OOB | MSG_ERRQUEUE | MSG_TRUNC)) {
		LOG_WARN_CODE("unsupported", REASON_UNSUPPORTED,
		    "recv flags 0x%x unsupported on a sealed socket",
		    flags);
		return -EOPNOTSUPP;
	}
	if ((r = ss_hs_from_call(s, fd, flags)) < 0)
		return ss_told(s, r);
	if (session_state(s) == SESSION_PLAIN)
		return plain_recv(s, fd, iov, iovcnt, flags);
	ss_lock(s, &s->rx_lock);
	r = ss_told(s, rx_locked(s, fd, iov, iovcnt, flags));
	ss_rx_trim(s);
	LOG(LOG_DEBUG, "fd %d: read %zu -> %zd (left %zu plain, %zu sealed)",
	    fd, ss_iov_total(iov, iovcnt), r, s->ptlen, s->rend - s->rstart);
	ss_unlock(&s->rx_lock);
	/* A read that waited may end after a reload revoked the peer: its
	 * bytes are not delivered. */
	if (r > 0 && ss_revoke_check(s, fd) < 0)
		return ss_told(s, -ECONNRESET);
	return r;
}

/* Is a whole record (or plaintext, or the end) waiting?  rx_lock held. */
bool
ss_rx_ready(struct session *s)
{
	size_t wl;

	if (s->ptlen > 0 || s->rx_eof || ss_rd_shut(s))
		return true;
	return s->rbuf != NULL &&
	    record_peek(s->rbuf + s->rstart, s->rend - s->rstart, &wl) != 0;
}
