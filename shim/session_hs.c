/*
 * session_hs: the handshake state machine (session.h has the states):
 * the preface, messages 1 and 2, the permissive rule's peek for a
 * plaintext client, and the entries that drive the machine from a
 * handshake call, a readiness path or a data call.
 *
 * Handshake I/O is always non-blocking (MSG_DONTWAIT); a caller allowed to
 * block waits in poll() up to the rule's deadline.  Data I/O uses the
 * program's own blocking mode and flags, so a blocking read blocks in the
 * kernel exactly where the program expects it to.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "log.h"
#include "noise.h"
#include "real.h"
#include "record.h"
#include "session.h"
#include "session_int.h"
#include "standin.h"
#include "stats.h"
#include "reason.h"
#include "session_hs_msg.h"

/*
 * Handshake input: have at least NEED bytes in the receive buffer.
 * 0, -EAGAIN, -ETIMEDOUT, -ECONNRESET (peer closed) or -errno.
 */
static int
hs_fill(struct session *s, int fd, size_t need, bool may_block)
{
	ssize_t n;
	int r;

	ss_tag(s, STANDIN_USED);
	while (s->rend - s->rstart < need) {
		n = ss_rx_pull(s, fd, MSG_DONTWAIT);
		if (n > 0) {
			/* Records may follow message 2 in the same pull. */
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (now_ms() >= s->hs_deadline)
			return -ETIMEDOUT;
		if (!may_block)
			return -EAGAIN;
		if ((r = ss_wait_fd(fd, POLLIN, s->hs_deadline)) < 0)
			return r;
	}
	return 0;
}

static void
hs_done(struct session *s)
{
	size_t off, chunk;

	noise_hs_wipe(&s->hs_store);
	ss_hs_drop_early_e(s);
	s->hs_live = false;
	/* Bytes the program wrote during the handshake go first. */
	for (off = 0; off < s->early_len; off += chunk) {
		chunk = s->early_len - off;
		if (chunk > RECORD_MAXPT)
			chunk = RECORD_MAXPT;
		s->tend += record_seal(&s->tx, s->early + off, chunk,
		    s->tbuf + s->tend);
	}
	if (s->early_len > 0) {
		sodium_memzero(s->early, s->early_len);
		s->early_len = 0;
	}
	s->was_open = true;
	__atomic_store_n(&s->state, SESSION_OPEN, __ATOMIC_RELEASE);
	ss_hs_uncount(s);
	stats_conn_sealed(s->stats_slot, now_us() - s->t_start_us);
	LOG(LOG_INFO, "sealed connection %s %s%s%s (rule %s:%d, %s; %s)",
	    s->initiator ? "to" : "from", s->peer,
	    s->peer_id[0] != '\0' ? ", peer " : "", s->peer_id,
	    s->rule->file, s->rule->line, session_suite_name(s),
	    s->key_used);
}

/*
 * Permissive accept rule: is the client speaking sockseal?  Peeks (never
 * reads) its first bytes.  1: the preface is there, 0: plaintext (or it
 * sent nothing before the deadline, or closed), -EAGAIN, -errno.
 */
static int
hs_peek_preface(struct session *s, int fd, bool may_block)
{
	/* Any version: a sealed client we cannot serve is refused, never
	 * handed to the program as plaintext. */
	static const uint8_t magic[4] = { 'S', 'K', 'S', 'L' };
	uint8_t b[PREFACE_LEN];
	ssize_t n;
	int r;

	for (;;) {
		n = real_recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n > 0) {
			if (memcmp(b, magic, (size_t)n < sizeof(magic) ?
			    (size_t)n : sizeof(magic)) != 0)
				return 0;
			if ((size_t)n >= sizeof(magic))
				return 1;
		} else if (errno == EINTR) {
			continue;
		} else if (errno != EAGAIN) {
			return -errno;
		}
		if (now_ms() >= s->hs_deadline)
			return 0;
		if (!may_block)
			return -EAGAIN;
		if (n > 0) {
			/* A partial preface: readable already, so pause. */
			(void)real_poll(NULL, 0, 10);
			continue;
		}
		if ((r = ss_wait_fd(fd, POLLIN, s->hs_deadline)) < 0 &&
		    r != -ETIMEDOUT)
			return r;
	}
}

/* Permissive and plaintext: hand the connection back to the program. */
static void
hs_plain(struct session *s)
{
	/* What the program wrote meanwhile goes out first, as it is. */
	if (s->early_len > 0) {
		memcpy(s->tbuf, s->early, s->early_len);
		s->toff = 0;
		s->tend = s->early_len;
		s->early_len = 0;
	}
	ss_hs_drop_early_e(s);
	__atomic_store_n(&s->state, SESSION_PLAIN, __ATOMIC_RELEASE);
	ss_hs_uncount(s);
	ss_tag(s, STANDIN_PLAIN);
	LOG(LOG_INFO, "plaintext connection from %s accepted (rule %s:%d is "
	    "permissive)", s->peer, s->rule->file, s->rule->line);
}

void
session_adopt_as(struct session *s, unsigned int flags)
{
	s->tagflags = flags;
	if (flags & STANDIN_PLAIN) {
		__atomic_store_n(&s->state, SESSION_PLAIN, __ATOMIC_RELEASE);
		ss_hs_uncount(s);
	} else if (flags & STANDIN_USED) {
		/* Failed at its first use, not now: an exec'd image that
		 * only inherits it (a bystander) must leave it alone. */
		s->adopt_used = true;
	}
}

/* One pass of the machine; both locks held. */
static int
hs_run(struct session *s, int fd, bool may_block)
{
	struct hs_fail f = { NULL, REASON_LOCAL_ERROR, "" };
	uint64_t dl = may_block ? s->hs_deadline : 0;
	int r, result = SESSION_END_FAILED;

	if ((r = ss_rbuf_alloc(s)) < 0 || (r = ss_tbuf_alloc(s)) < 0)
		return r;
	if (s->adopt_used && session_state(s) < SESSION_OPEN) {
		ss_fail(s, REASON_HANDOFF, ECONNRESET, "its handshake or "
		    "sealed bytes began before exec; the new image cannot "
		    "continue it");
		return -ECONNRESET;
	}
	if (session_state(s) < SESSION_OPEN && now_ms() >= s->hs_deadline &&
	    !(session_state(s) == SESSION_HS_WAIT1 &&
	    s->rule->mode == POLICY_PERMISSIVE && s->rend == s->rstart)) {
		r = -ETIMEDOUT;
		goto io_fail;
	}
	for (;;) {
		switch (session_state(s)) {
		case SESSION_HS_SEND1:
			if ((r = ss_hs_send1(s)) < 0) {
				HS_FAIL(&f, REASON_LOCAL_ERROR,
				    "cannot start handshake");
				goto fail;
			}
			__atomic_store_n(&s->state, SESSION_HS_WAIT2,
			    __ATOMIC_RELEASE);
			break;
		case SESSION_HS_WAIT2:
			r = ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, dl);
			if (r == 0) {
				/* Message 1 is out: while the responder works,
				 * the next connection's ephemeral. */
				ss_eph_make(true, s->rule->nids > 0 &&
				    s->rule->peer != NULL ?
				    s->rule->peer->pk : NULL);
				r = hs_fill(s, fd, 2, may_block);
			}
			/* A server that speaks first (a banner) is not
			 * sealed: say so now, not at the timeout. */
			if (r == 0 && ss_hs_msg2_foreign(s)) {
				HS_FAIL(&f, REASON_NOT_SOCKSEAL,
				    "bad handshake message 2 length: the "
				    "server's answer is not a sockseal handshake "
				    "(a plain server that speaks first, or "
				    "another protocol)");
				goto fail;
			}
			if (r == 0)
				r = hs_fill(s, fd, HS_MSG2_WIRE, may_block);
			if (r == -EAGAIN || r == -EINTR)
				return r;
			if (r < 0)
				goto io_fail;
			if ((r = ss_hs_recv2(s, &f)) < 0)
				goto fail;
			hs_done(s);
			return 0;
		case SESSION_HS_WAIT1:
			if (s->rule->mode == POLICY_PERMISSIVE && s->rend == s->rstart) {
				r = hs_peek_preface(s, fd, may_block);
				if (r == 0) {
					hs_plain(s);
					return 0;
				}
				if (r == -EAGAIN || r == -EINTR)
					return r;
				if (r < 0)
					goto io_fail;
			}
			r = hs_fill(s, fd, PREFACE_LEN, may_block);
			if (r == 0) {
				if ((r = ss_hs_preface(s, &f)) < 0) {
					result = SESSION_END_REFUSED;
					goto fail;
				}
				r = hs_fill(s, fd, PREFACE_LEN + 2 +
				    ss_hs_msg1_len(s), may_block);
			}
			if (r == -EAGAIN || r == -EINTR)
				return r;
			if (r < 0)
				goto io_fail;
			if ((r = ss_hs_recv1(s, &f)) < 0) {
				if (r == -EACCES)
					result = SESSION_END_REFUSED;
				goto fail;
			}
			hs_done(s);
			/* Message 2 is queued; send it now if we can. */
			r = ss_tx_flush(s, fd, MSG_NOSIGNAL | MSG_DONTWAIT, dl);
			if (r < 0 && r != -EAGAIN && r != -EINTR) {
				HS_FAIL(&f, REASON_LOCAL_ERROR,
				    "cannot send handshake message 2");
				goto fail;
			}
			/* While the initiator reads it: the next accept's
			 * ephemeral. */
			ss_eph_make(false, s->authed ? s->auth_pk : NULL);
			return 0;
		case SESSION_OPEN:
		case SESSION_PLAIN:
			return 0;
		default:
			return -s->err;
		}
	}

io_fail:
	switch (r) {
	case -ETIMEDOUT:
		/* The client's side names what is likely wrong: a server
		 * that reads and never answers does not speak sockseal. */
		HS_FAIL(&f, REASON_HANDSHAKE_TIMEOUT, s->initiator ?
		    "handshake timed out: no answer from the "
		    "server; it is probably not speaking sockseal (not sealed, "
		    "or no accept rule there matches this connection)" :
		    "handshake timed out");
		result = SESSION_END_TIMEOUT;
		break;
	case -ECONNRESET:
		HS_FAIL(&f, REASON_PEER_CLOSED, s->initiator ?
		    "peer closed the connection during the "
		    "handshake: a wrong key (the server's log says), or a "
		    "server that is not sealed or whose rules do not match "
		    "this connection" :
		    "peer closed the connection during the handshake");
		break;
	default:
		HS_FAIL(&f, -r == EPIPE ? REASON_PEER_CLOSED :
		    REASON_IO_ERROR, strerror(-r));
		break;
	}
fail:
	ss_fail_as(s, result, f.reason, ECONNRESET,
	    f.why != NULL ? f.why : strerror(-r));
	return -ECONNRESET;
}

int
session_handshake(struct session *s, int fd, bool may_block)
{
	int r;

	fd = session_kfd(s, fd);
	if (session_state(s) == SESSION_OPEN || session_state(s) == SESSION_PLAIN)
		return 0;
	ss_lock(s, &s->rx_lock);
	ss_lock(s, &s->tx_lock);
	r = hs_run(s, fd, may_block);
	ss_unlock(&s->tx_lock);
	ss_unlock(&s->rx_lock);
	return r;
}

/*
 * The same, for readiness paths (poll, epoll) that must never wait for a
 * lock a blocked reader or writer holds: -EAGAIN if the session is busy.
 */
int
ss_handshake_try(struct session *s, int fd)
{
	int r;

	if (session_state(s) == SESSION_OPEN)
		return 0;
	if (ss_trylock(s, &s->rx_lock) != 0)
		return -EAGAIN;
	if (ss_trylock(s, &s->tx_lock) != 0) {
		ss_unlock(&s->rx_lock);
		return -EAGAIN;
	}
	r = hs_run(s, fd, false);
	ss_unlock(&s->tx_lock);
	ss_unlock(&s->rx_lock);
	return r;
}

/* Drive the handshake from a data call with the program's FLAGS. */
int
ss_hs_from_call(struct session *s, int fd, int flags)
{
	int st = session_state(s);
	bool may_block;

	if (st == SESSION_OPEN || st == SESSION_PLAIN || st == SESSION_DEAD) {
		/* Another process (after fork) may have ended it. */
		ss_hs_uncount(s);
		if (st == SESSION_DEAD)
			return -s->err;
		/* Identities: is the peer still admitted (a reload)? */
		return st == SESSION_OPEN ? ss_revoke_check(s, fd) : 0;
	}
	may_block = !(flags & MSG_DONTWAIT) && session_fd_blocking(fd);
	return session_handshake(s, fd, may_block);
}
