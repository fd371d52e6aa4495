/*
 * session_pipe_rx: the read side of splice (session_recv_into, session.h):
 * what is there is gathered as a peek gathers it (session_rx.c), offered to
 * the caller's drain, and only what it took is consumed.  The write side
 * is session_send_from, in session_tx.c beside the batch it fills.
 */
#include <errno.h>
#include <sys/socket.h>

#include "log.h"
#include "session.h"
#include "session_int.h"

/*
 * A read whose bytes go to DRAIN (splice to a pipe, rx_lock held): what is
 * there, gathered as a peek, is offered; only what DRAIN takes is consumed.
 */
static ssize_t
rx_into_locked(struct session *s, int fd, size_t max, session_drain_fn drain,
    void *arg)
{
	ssize_t n, k;
	int r;

	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	if (max == 0)
		return 0;
	if ((r = ss_rbuf_alloc(s)) < 0)
		return r;
	if ((n = ss_rx_gather(s, fd, max, 0)) <= 0)
		return n;
	if ((k = drain(arg, ss_pt(s), (size_t)n)) <= 0)
		return k < 0 ? k : -EAGAIN;
	s->pt_off += (size_t)k;
	s->ptlen -= (size_t)k;
	SS_BYTES_IN(s, k);
	if (s->ptlen == 0)
		ss_rx_refill_dry(s, fd);
	return k;
}

ssize_t
session_recv_into(struct session *s, int fd, size_t max,
    session_drain_fn drain, void *arg)
{
	ssize_t r;

	fd = session_kfd(s, fd);
	if ((r = ss_hs_from_call(s, fd, 0)) < 0)
		return ss_told(s, r);
	if (session_state(s) == SESSION_PLAIN)
		return -EXDEV;
	ss_lock(s, &s->rx_lock);
	r = ss_told(s, rx_into_locked(s, fd, max, drain, arg));
	ss_rx_trim(s);
	LOG(LOG_DEBUG, "fd %d: splice out %zu -> %zd (left %zu plain, %zu "
	    "sealed)", fd, max, r, s->ptlen, s->rend - s->rstart);
	ss_unlock(&s->rx_lock);
	return r;
}
