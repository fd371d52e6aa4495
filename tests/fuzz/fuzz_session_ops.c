/*
 * fuzz_session_ops: op mode, the input decoded into operations.  After the
 * real handshake (fuzz_session_hs.c) the rest of the input is consumed
 * through a cursor (fz_take*: reads past the end give 0 or nothing), one
 * operation per byte: the low 3 bits pick it, the other bits and the
 * following bytes are its arguments:
 *
 *   0  junk: the next N bytes of input go on the wire unauthenticated
 *   1  seal a generated record of a given length (0: end-of-stream mark)
 *   2  seal a record whose plaintext is the next N bytes of input
 *   3  session_recv() with a size, MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL,
 *      1-2 iovecs
 *   4  session_send() of a generated stream; the peer opens and checks it
 *   5  session_shutdown(SHUT_RD / SHUT_WR / SHUT_RDWR)
 *   6  readiness: session_poll_prep/after, session_inq and SO_ERROR,
 *      checked by a read
 *   7  a tampered record, a replayed record, or the peer's TCP end
 *
 * The decoding is the seed corpus's meaning: changing it changes what every
 * stored op-mode input does.  The last FZ_TRACE operations are kept for
 * fz_report (fuzz_session_io.c).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "session.h"
#include "fuzz.h"
#include "fuzz_session_int.h"

/* ------------------------------------------------------------ input */

size_t
fz_take(struct fz *f, size_t n, const uint8_t **p)
{
	if (n > f->left)
		n = f->left;
	*p = f->in;
	f->in += n;
	f->left -= n;
	return n;
}

unsigned int
fz_take8(struct fz *f)
{
	const uint8_t *p;

	return fz_take(f, 1, &p) == 1 ? p[0] : 0;
}

unsigned int
fz_take16(struct fz *f)
{
	unsigned int hi = fz_take8(f);

	return hi << 8 | fz_take8(f);
}

/* ------------------------------------------------------------ operations */

/* Readiness must match what the next read does. */
void
fz_op_poll(struct fz *f)
{
	struct pollfd p = { .fd = f->sfd };
	short want = POLLIN | POLLOUT | POLLRDHUP, kev, rev;
	ssize_t n;
	int q;

	rev = session_poll_prep(f->s, want, &kev);
	p.events = kev;
	if (poll(&p, 1, 0) < 0)
		p.revents = 0;
	rev |= session_poll_after(f->s, f->sfd, want, p.revents);
	if (rev & POLLIN) {
		n = fz_recv(f, RECORD_MAXPT, MSG_DONTWAIT | MSG_PEEK, 1);
		FZ_ASSERT(n != -EAGAIN);
	}
	/* SO_ERROR: the failure once, then 0; nothing while alive. */
	if (session_state(f->s) == SESSION_DEAD) {
		(void)session_so_error(f->s, f->sfd);
		FZ_ASSERT(session_so_error(f->s, f->sfd) == 0);
	} else {
		FZ_ASSERT(session_so_error(f->s, f->sfd) == 0);
	}
	q = session_inq(f->s, f->sfd);
	if (q > 0 && f->opmode && !f->junk && !f->eos && !f->rd_shut &&
	    session_state(f->s) == SESSION_OPEN) {
		/* FIONREAD is exact: programs read that much and wait. */
		if ((size_t)q > sizeof(fz_rbuf))
			q = (int)sizeof(fz_rbuf);
		n = fz_recv(f, (size_t)q, MSG_DONTWAIT, 1);
		FZ_ASSERT(n == q);
	}
}

static void
op_send(struct fz *f, size_t len, int flags)
{
	struct iovec iov[2];
	uint8_t *buf = (uint8_t *)fz_tx_pat(f->tx_sent);
	ssize_t n;

	if (len > 2 * RECORD_MAXPT)
		len = 2 * RECORD_MAXPT;
	iov[0].iov_base = buf;
	iov[0].iov_len = len / 2;
	iov[1].iov_base = buf + len / 2;
	iov[1].iov_len = len - len / 2;
	n = session_send(f->s, f->sfd, iov, 2, flags | MSG_NOSIGNAL);
	FZ_ASSERT(n <= (ssize_t)len);
	if (n > 0)
		f->tx_sent += (uint64_t)n;
	fz_peer_pump(f);
}

static void
op_shutdown(struct fz *f, int how)
{
	/* Before OPEN, SHUT_WR finishes the handshake blocking: not here. */
	if (session_state(f->s) < SESSION_OPEN)
		return;
	if (how != SHUT_WR)
		f->rd_shut = true;
	(void)session_shutdown(f->s, f->sfd, how, false);
	fz_peer_pump(f);
}

static void
op_junk(struct fz *f, size_t n)
{
	const uint8_t *p;

	n = fz_take(f, n, &p);
	if (n > 0)
		fz_feed_unsealed(f, p, n);
}

void
fz_run_op(struct fz *f, unsigned int op)
{
	const uint8_t *p;
	size_t len;

	f->ops[f->nops++ % FZ_TRACE] = (uint8_t)op;
	switch (op & 7) {
	case 0:
		op_junk(f, fz_take8(f));
		break;
	case 1:
		len = fz_take16(f) % (RECORD_MAXPT + 1);
		if (op & 8)     /* near the largest record */
			len = RECORD_MAXPT - len % 32;
		fz_seal_feed(f, fz_pattern + op % FZ_PATTERN_PERIOD, len, -1);
		break;
	case 2:
		len = fz_take(f, fz_take8(f), &p);
		fz_seal_feed(f, p, len, -1);
		break;
	case 3:
		len = (fz_take8(f) + 1) * (op & 8 ? 256 : 1);
		(void)fz_recv(f, len, (op & 16 ? MSG_PEEK : 0) |
		    (op & 32 ? MSG_DONTWAIT : 0) | (op & 128 ? MSG_WAITALL : 0),
		    op & 64 ? 2 : 1);
		fz_peer_pump(f);
		break;
	case 4:
		op_send(f, fz_take16(f) * (op & 8 ? 3 : 1), op & 16 ? MSG_MORE : 0);
		break;
	case 5:
		op_shutdown(f, (int)(op >> 3) % 3);
		break;
	case 6:
		fz_op_poll(f);
		break;
	default:
		if (op & 8) {
			/* A replayed record. */
			if (f->last_len > 0)
				fz_feed_unsealed(f, fz_last, f->last_len);
		} else if (op & 16) {
			if (!f->tcp_end)
				shutdown(f->pfd, SHUT_WR);
			f->tcp_end = true;
		} else {
			len = fz_take8(f);
			fz_seal_feed(f, fz_pattern, len, (int)fz_take8(f));
		}
		break;
	}
}
