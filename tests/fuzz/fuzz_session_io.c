/*
 * fuzz_session_io: the bytes that cross the socketpair, and the checks on
 * them in both directions.
 *
 *   session (shim/session.c) on SFD  <-- AF_UNIX socketpair -->  PFD: peer
 *
 * Both ends are non-blocking and the harness is single-threaded, so no call
 * ever waits: fz_feed() lets the session read (fz_step) when the socket is
 * full, and gives up after a few stalls (f->lost).
 *
 * Towards the program, fz_recv() checks that every byte the session
 * delivers is the next byte of what the peer sealed (fz_sent, kept by
 * fuzz_session_seal.c), and that a 0 comes only after the mark or SHUT_RD.
 * Towards the peer, fz_peer_pump() opens every record the session sent and
 * checks it is the program's stream, in order, nothing after the mark.
 * Everything the peer writes is also copied to the transcript (fz_rec)
 * when fuzz_session_seeds.c records one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "session.h"
#include "fuzz.h"
#include "fuzz_session_int.h"

uint8_t fz_rbuf[2 * RECORD_MAXPT];
static uint8_t fz_inbuf[FZ_INBUF];              /* from the session */

/*
 * Before an invariant about delivered bytes aborts: what the harness knew
 * and the last operations, so that a failure seen once (CI) can be read
 * without its input.
 */
static void
fz_report(const struct fz *f, const char *what, ssize_t n, size_t cap,
    int flags, int niov)
{
	unsigned int i, k;

	fprintf(stderr, "fuzz_session: %s: n=%zd cap=%zu flags=0x%x niov=%d "
	    "got=%zu sent_len=%zu eos=%d eos_at=%zu junk=%d lost=%d "
	    "tcp_end=%d rd_shut=%d state=%d suite=%d initiator=%d\n", what, n,
	    cap, flags, niov, f->got, f->sent_len, f->eos, f->eos_at, f->junk,
	    f->lost, f->tcp_end, f->rd_shut, (int)session_state(f->s), f->suite,
	    f->initiator);
	fprintf(stderr, "fuzz_session: last operations (oldest first):");
	for (i = 0; i < FZ_TRACE; i++) {
		k = (f->nops + i) % FZ_TRACE;
		if (f->nops + i >= FZ_TRACE)
			fprintf(stderr, " %02x", f->ops[k]);
	}
	fprintf(stderr, "\n");
}

/* A session read into fz_rbuf, checked against what the peer sealed. */
ssize_t
fz_recv(struct fz *f, size_t cap, int flags, int niov)
{
	struct iovec iov[2];
	ssize_t n;

	if (cap > sizeof(fz_rbuf))
		cap = sizeof(fz_rbuf);
	iov[0].iov_base = fz_rbuf;
	iov[0].iov_len = niov == 2 ? cap / 3 : cap;
	iov[1].iov_base = fz_rbuf + iov[0].iov_len;
	iov[1].iov_len = cap - iov[0].iov_len;
	n = session_recv(f->s, f->sfd, iov, niov, flags);
	FZ_ASSERT(n <= (ssize_t)cap);
	if (!f->opmode || session_state(f->s) == SESSION_PLAIN)
		return n;
	if (n > 0) {
		if (f->got + (size_t)n > f->sent_len)
			fz_report(f, "more delivered than sealed", n, cap, flags,
			    niov);
		FZ_ASSERT(f->got + (size_t)n <= f->sent_len);
		FZ_ASSERT(memcmp(fz_rbuf, fz_sent + f->got, (size_t)n) == 0);
		if (!(flags & MSG_PEEK))
			f->got += (size_t)n;
		FZ_ASSERT(!f->eos || f->got <= f->eos_at);
	} else if (n == 0 && cap > 0) {
		FZ_ASSERT(f->rd_shut || (f->eos && f->got == f->eos_at));
	}
	return n;
}

/* What the session sent: discarded in raw mode, opened and checked once the
 * peer has keys. */
void
fz_peer_pump(struct fz *f)
{
	size_t wl, off;
	uint8_t *pt;
	size_t ptlen;
	ssize_t n;
	int r;

	for (;;) {
		if (!f->peer_open)
			f->inlen = 0;
		n = read(f->pfd, fz_inbuf + f->inlen, sizeof(fz_inbuf) - f->inlen);
		if (n <= 0)
			return;
		f->inlen += (size_t)n;
		if (!f->peer_open)
			continue;
		for (off = 0; ; off += wl) {
			r = record_peek(fz_inbuf + off, f->inlen - off, &wl);
			FZ_ASSERT(r >= 0);
			if (r == 0)
				break;
			FZ_ASSERT(record_open(&f->prx, fz_inbuf + off, wl, &pt,
			    &ptlen) == 0);
			FZ_ASSERT(!f->tx_eos);
			if (ptlen == 0)
				f->tx_eos = true;
			FZ_ASSERT(memcmp(pt, fz_tx_pat(f->tx_seen), ptlen) == 0);
			f->tx_seen += ptlen;
			FZ_ASSERT(f->tx_seen <= f->tx_sent);
		}
		memmove(fz_inbuf, fz_inbuf + off, f->inlen - off);
		f->inlen -= off;
	}
}

/* Read exactly LEN handshake bytes the session sent. */
bool
fz_peer_read(struct fz *f, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(f->pfd, buf + got, len - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* One non-blocking step of a program that reads: handshake, then read. */
void
fz_step(struct fz *f, int flags)
{
	if (session_state(f->s) < SESSION_OPEN)
		(void)session_handshake(f->s, f->sfd, false);
	(void)fz_recv(f, RECORD_MAXPT, flags | MSG_DONTWAIT, 1);
	fz_peer_pump(f);
}

/* Put LEN bytes on the wire, letting the session read when it is full. */
void
fz_feed(struct fz *f, const uint8_t *buf, size_t len)
{
	int stalls = 0;
	ssize_t n;

	if (fz_rec != NULL) {
		size_t c = len < fz_rec_cap - fz_rec_len ? len :
		    fz_rec_cap - fz_rec_len;

		memcpy(fz_rec + fz_rec_len, buf, c);
		fz_rec_len += c;
	}
	if (f->tcp_end) {
		f->lost = true;
		return;
	}
	while (len > 0) {
		n = write(f->pfd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			stalls = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN) {
			f->lost = true;
			return;
		}
		if (stalls++ > 8) {
			f->lost = true;         /* the session stopped reading */
			return;
		}
		fz_step(f, 0);
	}
}
