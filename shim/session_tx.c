/*
 * session_tx: the send path.  Every write-like call becomes one
 * session_send(): the program's bytes are sealed, a batch of records at a
 * time, into tbuf and written with one syscall per batch; what the kernel
 * did not take stays queued (the bytes count as sent, as in a kernel
 * socket buffer) and goes out first on the next call.  During the
 * handshake a non-blocking write is kept as plaintext (early) until the
 * keys exist.  A PLAIN session's writes go to the kernel as they are.
 * tx_lock guards it all (session.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "log.h"
#include "reason.h"
#include "real.h"
#include "record.h"
#include "init.h"
#include "session.h"
#include "session_int.h"

/*
 * Seal up to one batch of the program's bytes, starting at byte OFF of IOV,
 * into the (empty) transmit queue.  Returns the plaintext bytes sealed.
 */
static size_t
tx_seal_batch(struct session *s, const struct iovec *iov, int iovcnt,
    size_t off, size_t len)
{
	size_t sealed = 0, chunk, c, o;
	uint8_t *dst;
	int i, nrec = 0;

	/* Find the iovec holding byte OFF. */
	for (i = 0; i < iovcnt && off >= iov[i].iov_len; i++)
		off -= iov[i].iov_len;
	while (sealed < len && nrec < SESSION_TBATCH) {
		chunk = len - sealed < RECORD_MAXPT ? len - sealed : RECORD_MAXPT;
		dst = s->tbuf + s->tend;
		if (i < iovcnt && iov[i].iov_len - off >= chunk) {
			/* Contiguous: encrypt straight from the program's buffer. */
			s->tend += record_seal(&s->tx,
			    (const uint8_t *)iov[i].iov_base + off, chunk, dst);
			off += chunk;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
		} else {
			/* Gather into place, then encrypt in place. */
			for (o = 0; o < chunk; ) {
				c = iov[i].iov_len - off;
				if (c > chunk - o)
					c = chunk - o;
				memcpy(dst + RECORD_HDRLEN + o,
				    (const uint8_t *)iov[i].iov_base + off, c);
				o += c;
				off += c;
				if (off == iov[i].iov_len) {
					i++;
					off = 0;
				}
			}
			s->tend += record_seal(&s->tx, dst + RECORD_HDRLEN, chunk,
			    dst);
		}
		sealed += chunk;
		nrec++;
	}
	return sealed;
}

/*
 * The kernel refused our records (tx_lock held).  EPIPE or ECONNRESET: the
 * peer reset the connection.  TCP's reads still return what had arrived
 * before the reset, so the session does not die with it: the send side is
 * shut (nothing more is sent, later writes fail with EPIPE), and the
 * receive side ends by itself when it comes to the kernel's end (the
 * peer's mark: 0; none: ECONNRESET).  Killing the session threw away
 * authenticated data the program had not read yet (found by ready_diff).
 * Any other error fails the session.
 */
void
ss_tx_broken(struct session *s, int r)
{
	if (r != -EPIPE && r != -ECONNRESET) {
		ss_fail_errno(s, -r);
		return;
	}
	LOG(LOG_INFO, "connection %s %s: write failed (%s): nothing more is "
	    "sent", s->initiator ? "to" : "from", s->peer, strerror(-r));
	s->tx_shut = true;
	s->toff = s->tend;
}

/*
 * A write after our end (shutdown, or a write that failed): TCP returns the
 * socket's pending error first (the peer's reset, sk_err), then EPIPE with
 * SIGPIPE.  The pending error is ours if a call of ours took it (kerr),
 * else the kernel's: an empty send() returns it as TCP's write would.
 */
static ssize_t
tx_after_shut(struct session *s, int fd, int flags)
{
	int e = EPIPE;

	if (s->kerr != 0 &&
	    !__atomic_exchange_n(&s->err_reported, true, __ATOMIC_RELAXED)) {
		e = s->kerr;
	} else if (!shim_in_sandbox() &&
	    real_send(fd, "", 0, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN) {
		e = errno;
		if (e == ECONNRESET)
			__atomic_store_n(&s->rst_told, true, __ATOMIC_RELAXED);
	}
	if (e == EPIPE && !(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	return -e;
}

/*
 * The program's first bytes are out (tx_lock held).  The handshake
 * leaves TCP's delayed-ACK state where a plain connection's would not
 * be.  A socket that sends data soon after it received some
 * counts it as a reply ("pingpong") and from then on delays its ACKs (up
 * to 40 ms), counting on replies to carry them.  Over plain TCP, a
 * program's first write before any data arrived is no reply: TCP has no
 * receive time to measure from.  Under the shim that write always follows
 * handshake data, so it counts: a server that speaks first (rsync's
 * daemon greeting, SMTP, FTP) delays the ACK of the client's first bytes,
 * and a client that writes twice in a row without TCP_NODELAY waits that
 * long under Nagle.  So once the program's first bytes are out, if it had
 * read nothing before them, TCP_QUICKACK leaves pingpong mode, as plain
 * TCP never entered it; the kernel goes on from the program's own traffic.
 */
static void
tx_ack_as_tcp(struct session *s, int fd)
{
	int one = 1;

	s->ack_looked = true;
	if (__atomic_load_n(&s->bytes_in, __ATOMIC_RELAXED) == 0 &&
	    session_state(s) == SESSION_OPEN && !shim_in_sandbox())
		(void)real_setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
}

/*
 * Where a write's bytes come from when they are not in the program's
 * memory (splice from a pipe): FILL moves up to N bytes into BUF without
 * waiting, once the session can take them all (session_send_from).
 */
struct tx_src {
	session_fill_fn fill;
	void *arg;
	uint8_t *buf;
	size_t max;
};

static ssize_t
tx_locked(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags, const struct tx_src *src)
{
	size_t len = ss_iov_total(iov, iovcnt), total = 0, batch;
	int kflags = flags & (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
	struct iovec v;
	ssize_t n;
	int r;

	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	if (s->tx_shut)
		return tx_after_shut(s, fd, flags);
	if ((r = ss_tbuf_alloc(s)) < 0)
		return r;
	/* Whatever an earlier call left queued goes first. */
	if ((r = ss_tx_flush(s, fd, kflags, 0)) < 0)
		goto err;
	if (src != NULL) {
		/* The queue is empty: the first batch is taken whole. */
		if ((n = src->fill(src->arg, src->buf, src->max)) <= 0)
			return n;
		v.iov_base = src->buf;
		v.iov_len = (size_t)n;
		iov = &v;
		iovcnt = 1;
		len = (size_t)n;
	}
	while (total < len) {
		batch = tx_seal_batch(s, iov, iovcnt, total, len - total);
		total += batch;
		r = ss_tx_flush(s, fd, kflags, 0);
		if (r < 0) {
			/* The batch is sealed and queued: it counts as sent. */
			if (r == -EAGAIN || r == -EINTR) {
				SS_BYTES_OUT(s, batch);
				return (ssize_t)total;
			}
			/*
			 * Not on an error: the batch is not sent, so only
			 * the batches before it were (a write into a reset
			 * connection is EPIPE, as on TCP, not a success for
			 * bytes that went nowhere).
			 */
			total -= batch;
			goto err;
		}
		SS_BYTES_OUT(s, batch);
	}
	if (!s->ack_looked)
		tx_ack_as_tcp(s, fd);
	return (ssize_t)total;
err:
	if (r == -EAGAIN || r == -EINTR)
		return total > 0 ? (ssize_t)total : r;
	/* The reset our pull took is what the first failing call returns,
	 * as TCP's sk_err; the kernel, its error taken, says EPIPE. */
	if (r == -EPIPE && s->kerr != 0 &&
	    !__atomic_exchange_n(&s->err_reported, true, __ATOMIC_RELAXED))
		r = -s->kerr;
	else if (r == -ECONNRESET || r == -EPIPE)
		__atomic_store_n(&s->rst_told, true, __ATOMIC_RELAXED);
	ss_tx_broken(s, r);
	return total > 0 ? (ssize_t)total : r;
}

/* A PLAIN session's write (tx_lock held): what was queued, then this. */
static ssize_t
plain_send(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov,
	    .msg_iovlen = (size_t)iovcnt };
	ssize_t n;
	int r;

	if ((r = ss_tx_flush(s, fd, flags & (MSG_DONTWAIT | MSG_NOSIGNAL),
	    0)) < 0)
		return r;
	n = flags ? real_sendmsg(fd, &m, flags) : real_writev(fd, iov, iovcnt);
	if (n < 0)
		return -errno;
	SS_BYTES_OUT(s, n);
	return n;
}

/*
 * A non-blocking write during the handshake: keep up to SESSION_EARLY bytes
 * of plaintext until the keys exist (hs_done seals them first).
 */
static ssize_t
tx_early(struct session *s, const struct iovec *iov, int iovcnt,
    const struct tx_src *src)
{
	size_t room, c, total = 0;
	ssize_t r;
	int i;

	ss_lock(s, &s->tx_lock);
	if (session_state(s) == SESSION_OPEN) {
		/* It finished meanwhile: the caller should just retry. */
		r = -EAGAIN;
		goto out;
	}
	if (src != NULL) {
		room = SESSION_EARLY - s->early_len;
		r = room == 0 ? -EAGAIN : src->fill(src->arg,
		    s->early + s->early_len, room < src->max ? room : src->max);
		if (r > 0) {
			s->early_len += (size_t)r;
			SS_BYTES_OUT(s, r);
		}
		goto out;
	}
	for (i = 0; i < iovcnt; i++) {
		room = SESSION_EARLY - s->early_len;
		c = iov[i].iov_len < room ? iov[i].iov_len : room;
		memcpy(s->early + s->early_len, iov[i].iov_base, c);
		s->early_len += c;
		total += c;
		if (c < iov[i].iov_len)
			break;
	}
	r = total > 0 ? (ssize_t)total : -EAGAIN;
	if (total > 0)
		SS_BYTES_OUT(s, total);
out:
	ss_unlock(&s->tx_lock);
	return r;
}

ssize_t
session_send(struct session *s, int fd, const struct iovec *iov, int iovcnt,
    int flags)
{
	ssize_t r;

	fd = session_kfd(s, fd);
	if (flags & MSG_OOB) {
		LOG_WARN_CODE("unsupported", REASON_UNSUPPORTED,
		    "MSG_OOB unsupported on a sealed socket");
		return -EOPNOTSUPP;
	}
	if ((r = ss_hs_from_call(s, fd, flags)) < 0) {
		if (r == -EAGAIN)
			r = tx_early(s, iov, iovcnt, NULL);
		return ss_told(s, r);
	}
	ss_lock(s, &s->tx_lock);
	if (session_state(s) == SESSION_PLAIN)
		r = plain_send(s, fd, iov, iovcnt, flags);
	else
		r = ss_told(s, tx_locked(s, fd, iov, iovcnt, flags, NULL));
	LOG(LOG_DEBUG, "fd %d: write %zu -> %zd (queued %zu)", fd,
	    ss_iov_total(iov, iovcnt), r, s->tend - s->toff);
	ss_unlock(&s->tx_lock);
	return r;
}

ssize_t
session_send_from(struct session *s, int fd, size_t max,
    session_fill_fn fill, void *arg, int flags)
{
	struct tx_src src = { fill, arg, NULL, max };
	ssize_t r;

	fd = session_kfd(s, fd);
	if (max == 0)
		return 0;
	if ((r = ss_hs_from_call(s, fd, flags)) < 0) {
		if (r == -EAGAIN)
			r = tx_early(s, NULL, 0, &src);
		return ss_told(s, r);
	}
	if (session_state(s) == SESSION_PLAIN)
		return -EXDEV;
	if (src.max > SESSION_TBATCH * RECORD_MAXPT)
		src.max = SESSION_TBATCH * RECORD_MAXPT;
	if ((src.buf = malloc(src.max)) == NULL)
		return -ENOMEM;
	ss_lock(s, &s->tx_lock);
	r = ss_told(s, tx_locked(s, fd, NULL, 0, flags, &src));
	LOG(LOG_DEBUG, "fd %d: splice in %zu -> %zd (queued %zu)", fd, max, r,
	    s->tend - s->toff);
	ss_unlock(&s->tx_lock);
	free(src.buf);
	return r;
}
