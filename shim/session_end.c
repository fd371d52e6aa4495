/*
 * session_end: how a connection ends (docs/endings.md).  Owns
 * shutdown() (SHUT_WR sends our end-of-stream mark, SHUT_RD stays in the
 * shim), the last close and process exit in the last live process that
 * holds the connection (the mark, a bounded flush, or TCP's reset when
 * data is left unread).  The connection's end line in the log is
 * session_endlog.c's.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "log.h"
#include "real.h"
#include "record.h"
#include "init.h"
#include "session.h"
#include "reason.h"
#include "session_int.h"
#include "tcpstate.h"

#define CLOSE_WAIT_MS   2000    /* bound on flushing at close/exit */
#define HOW_UNSEEN      "socket closed where the shim could not see it"

/* Queue and flush the end-of-stream mark; tx_lock held.  FLAGS: more
 * send() flags (MSG_MORE when our FIN follows at once: fin_after_mark). */
static int
tx_eof(struct session *s, int fd, uint64_t deadline, int flags)
{
	int r;

	if (s->tx_shut || session_state(s) != SESSION_OPEN)
		return 0;
	if ((r = ss_tbuf_alloc(s)) < 0)
		return r;
	s->mark_at = s->wire_out + (s->tend - s->toff);
	s->tend += record_seal(&s->tx, NULL, 0, s->tbuf + s->tend);
	__atomic_store_n(&s->tx_shut, true, __ATOMIC_RELAXED);
	r = ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT | flags, deadline);
	if (r < 0 && r != -EAGAIN && r != -EINTR && r != -ETIMEDOUT) {
		/* TCP's FIN would have left the reset pending: so do we. */
		if (r == -ECONNRESET || r == -EPIPE)
			ss_rx_kerr(s, -r);
		ss_tx_broken(s, r);
	}
	return r;
}

/*
 * What TCP's shutdown(SHUT_RD) returns, ours staying in the shim: ENOTCONN
 * once the kernel's socket is closed (a reset, or both ends done), else 0.
 */
static int
shut_rd_answer(struct session *s, int fd)
{
	struct tcpstate ts;

	if (__atomic_load_n(&s->kerr, __ATOMIC_RELAXED) != 0)
		return -ENOTCONN;
	if (shim_in_sandbox() || tcpstate_get(fd, &ts) < 0)
		return 0;
	return ts.state == TCPSTATE_CLOSE ? -ENOTCONN : 0;
}

int
session_shutdown(struct session *s, int fd, int how, bool waited)
{
	bool queued = false, marked = false, wake = false;
	int r;

	fd = session_kfd(s, fd);
	if (session_state(s) == SESSION_PLAIN)
		return real_shutdown(fd, how) < 0 ? -errno : 0;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	/* After a reset TCP's socket is closed: ENOTCONN, and the waits on
	 * it are woken all the same (st_gen: see below). */
	if (session_state(s) == SESSION_DEAD) {
		__atomic_add_fetch(&s->st_gen, 1, __ATOMIC_RELAXED);
		return -ENOTCONN;
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		/* The mark needs keys: finish the handshake first (bounded). */
		if (session_state(s) < SESSION_OPEN)
			(void)session_handshake(s, fd, true);
		ss_lock(s, &s->tx_lock);
		marked = !s->tx_shut && session_state(s) == SESSION_OPEN;
		r = tx_eof(s, fd, session_fd_blocking(fd) ?
		    now_ms() + s->rule->timeout_ms : 0, 0);
		/* sent now, so the connection stood until our mark */
		marked = marked && r == 0;
		if (s->toff < s->tend && session_state(s) == SESSION_OPEN) {
			/* Still queued (non-blocking, or the peer is slow): the
			 * kernel's FIN waits for the queue to drain. */
			s->shut_pending = true;
			queued = true;
		}
		ss_unlock(&s->tx_lock);
		if (r < 0 && r != -EAGAIN)
			LOG(LOG_INFO, "end-of-stream to %s not sent yet: %s",
			    s->peer, strerror(-r));
	}
	/*
	 * Never waits for rx_lock: a reader blocked in the kernel holds it,
	 * and shutdown() from another thread is how programs wake one.  A
	 * thread that may be blocked in the kernel on it (a reader holding
	 * rx_lock, a poll or an epoll wait) is woken as TCP's SHUT_RD wakes
	 * it, by the kernel's (see below).
	 */
	if (how == SHUT_RD || how == SHUT_RDWR) {
		__atomic_store_n(&s->rd_shut, true, __ATOMIC_RELAXED);
		wake = waited ||
		    __atomic_load_n(&s->pollers, __ATOMIC_RELAXED) > 0;
		if (!wake && ss_trylock(s, &s->rx_lock) == 0)
			ss_unlock(&s->rx_lock);
		else
			wake = true;
	}
	/* TCP's shutdown wakes every wait on the socket (inet_shutdown's
	 * state change), so an edge-triggered registration reports what is
	 * true now: so do ours (st_gen is their edge). */
	__atomic_add_fetch(&s->st_gen, 1, __ATOMIC_RELAXED);
	/*
	 * SHUT_RD stays in the shim: a kernel socket shut for reading answers
	 * the peer's end-of-stream mark (data, to TCP) with a reset that
	 * destroys our unsent records.  Reads behave as TCP's all the same:
	 * what is there, then 0 without waiting (rx_locked).  Except when a
	 * thread waits in the kernel now: only the kernel's SHUT_RD wakes it
	 * (docs/endings.md has the price).
	 */
	if (wake)
		(void)real_shutdown(fd, SHUT_RD);
	if (how == SHUT_RD)
		return shut_rd_answer(s, fd);
	if (queued)
		return 0;
	if (real_shutdown(fd, SHUT_WR) == 0)
		return 0;
	/*
	 * Our mark is data to TCP: a peer that has closed answers it with a
	 * reset, which on loopback is in before our FIN (ENOTCONN).  TCP's
	 * shutdown sends a FIN, which draws no reset, and succeeds: so does
	 * ours (ready_diff: peer close, then our SHUT_WR).
	 */
	if (errno == ENOTCONN && marked)
		return 0;
	return -errno;
}

static void
arm_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	(void)real_setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/*
 * Closing, our mark all in the kernel: send TCP's FIN now, not at close(),
 * in the same segment (tx_eof sent the mark with MSG_MORE, which the
 * shutdown pushes).  Nothing may follow the mark, so no holder loses a
 * write.  The peer then has our end in one arrival, and TCP's close order is
 * plain TCP's: the side that closes first takes TIME_WAIT.  Before, our FIN
 * went out only after close_linger had seen the peer's mark, so the peer
 * (a server, mostly) closed first at the TCP level and held TIME_WAIT
 * sockets plain TCP would not give it.  Without the shutdown (a partial
 * flush), the held bytes go at close() with its FIN.  tx_lock held.
 */
static void
fin_after_mark(struct session *s, int fd)
{
	if (s->tx_shut && s->toff >= s->tend && !s->shut_pending &&
	    session_state(s) == SESSION_OPEN)
		(void)real_shutdown(fd, SHUT_WR);
}

/* The last close or the exit: what is queued, our mark if not sent yet,
 * then the FIN (bounded by CLOSE_WAIT_MS).  tx_lock held. */
static void
send_end(struct session *s, int fd)
{
	if (!s->tx_shut)
		(void)tx_eof(s, fd, now_ms() + CLOSE_WAIT_MS, MSG_MORE);
	else if (s->toff < s->tend)
		(void)ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT,
		    now_ms() + CLOSE_WAIT_MS);
	fin_after_mark(s, fd);
}

/*
 * The socket is about to be closed.  The peer's end-of-stream mark is data
 * to TCP, and a socket closed with unread data, or receiving data after
 * close, answers with a reset that throws away whatever we still had
 * queued for the peer.  So until the peer's mark has been seen: discard
 * what has arrived, and wait (bounded by DEADLINE) until the kernel has
 * delivered everything we sent, discarding arrivals meanwhile.  Once our
 * queue is empty a late reset can no longer lose data.
 */
static void
close_linger(struct session *s, int fd, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char scratch[4096];
	ssize_t n;
	int outq, i;

	if (s->rx_eof)
		return;
	for (;;) {
		for (i = 0; i < 256; i++) {
			n = real_recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
			if (n == 0)
				return;         /* the peer closed: no reset to fear */
			if (n < 0)
				break;
		}
		if (real_ioctl(fd, SIOCOUTQ, &outq) < 0 || outq == 0 ||
		    now_ms() >= deadline)
			return;
		(void)real_poll(&p, 1, 5);
	}
}

/*
 * The program closes (or exits) with stream data it has not read: TCP
 * answers that with a reset, not a FIN, and the peer's reads end in
 * ECONNRESET after what was in flight, its writes fail.  So must we:
 * sending our end-of-stream mark and discarding the data (close_linger)
 * made it a clean end on the peer's side.  Pulls what the kernel holds,
 * without waiting, and opens whole records: the peer's end-of-stream mark
 * alone is not data, half a record is.  rx_lock held.
 */
static bool
rx_unread(struct session *s, int fd)
{
	size_t space, c;
	ssize_t n;
	int r;

	for (;;) {
		if (s->ptlen > 0)
			return true;
		if (s->rx_eof)
			return false;
		if ((r = ss_rx_open_next(s, NULL, 0, &c)) < 0)
			return false;   /* the session failed: it resets anyway */
		if (r > 0)
			continue;
		if (shim_in_sandbox())
			return s->rstart != s->rend;
		ss_rbuf_compact(s);
		space = SESSION_RBUF - s->rend;
		if (space == 0)
			return true;
		n = ss_rx_pull(s, fd, MSG_DONTWAIT);
		if (n <= 0)
			return s->rstart != s->rend;
	}
}

/* rx_unread, if the receive lock is free (a reader thread may hold it). */
static bool
closes_unread(struct session *s, int fd)
{
	bool r = false;

	if (session_state(s) == SESSION_OPEN &&
	    ss_trylock(s, &s->rx_lock) == 0) {
		r = rx_unread(s, fd);
		ss_unlock(&s->rx_lock);
	}
	if (r) {
		LOG(LOG_INFO, "connection %s %s closed with data unread: reset, "
		    "as TCP does", s->initiator ? "to" : "from", s->peer);
		arm_reset(fd);
	}
	return r;
}

void
session_close_last(struct session *s, int fd)
{
	int saved = errno;

	fd = session_kfd(s, fd);
	if (ss_others_hold(s, true)) {
		/* Another process carries the stream on (fork). */
		LOG(LOG_DEBUG, "connection %s %s left to another process",
		    s->initiator ? "to" : "from", s->peer);
		errno = saved;
		return;
	}
	if (closes_unread(s, fd)) {
		session_log_end(s, REASON_CLOSED_UNREAD,
		    "closed with data unread (reset)");
		errno = saved;
		return;
	}
	if (session_state(s) == SESSION_OPEN) {
		ss_lock(s, &s->tx_lock);
		send_end(s, fd);
		ss_unlock(&s->tx_lock);
		if (ss_trylock(s, &s->rx_lock) == 0) {
			close_linger(s, fd, now_ms() + CLOSE_WAIT_MS);
			ss_unlock(&s->rx_lock);
		}
	}
	if (session_state(s) == SESSION_DEAD)
		arm_reset(fd);
	session_log_end(s, REASON_CLOSED, "closed");
	errno = saved;
}

void
session_exit(struct session *s, int fd)
{
	const char *how = "process exited";
	int how_code = REASON_EXITED;
	struct stat st;
	int saved = errno;

	fd = session_kfd(s, fd);
	/*
	 * Only the last live process holding the connection ends it: a
	 * forked child exiting must not speak on its parent's connection.
	 */
	if (ss_others_hold(s, true))
		goto out;
	if (session_state(s) != SESSION_OPEN)
		goto end;
	/* The fd may have been closed behind our back and reused. */
	if (fstat(fd, &st) != 0 || st.st_dev != s->dev || st.st_ino != s->ino) {
		how = HOW_UNSEEN;
		how_code = REASON_UNSEEN_CLOSE;
		goto end;
	}
	if (closes_unread(s, fd)) {
		how = "process exited with data unread (reset)";
		how_code = REASON_EXITED_UNREAD;
		goto end;
	}
	if (ss_trylock(s, &s->tx_lock) != 0)
		goto end;
	send_end(s, fd);
	ss_unlock(&s->tx_lock);
	if (ss_trylock(s, &s->rx_lock) == 0) {
		close_linger(s, fd, now_ms() + CLOSE_WAIT_MS);
		ss_unlock(&s->rx_lock);
	}
end:
	session_log_end(s, how_code, how);
out:
	errno = saved;
}

void
session_abandon(struct session *s, const char *why)
{
	int saved = errno;

	ss_lock(s, &s->rx_lock);
	ss_lock(s, &s->tx_lock);
	ss_fail(s, REASON_HANDOFF, ECONNRESET, why);
	ss_unlock(&s->tx_lock);
	ss_unlock(&s->rx_lock);
	errno = saved;
}

void
session_forgotten(struct session *s)
{
	int saved = errno;

	if (!ss_others_hold(s, true))
		session_log_end(s, REASON_UNSEEN_CLOSE, HOW_UNSEEN);
	errno = saved;
}
