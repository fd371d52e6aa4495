/*
 * session_fail: a session fails (DEAD, once, with its result, reason code
 * and words kept for the end line, logged at warn with its fields and
 * counted in the statistics); the kernel's error taken by a call of ours
 * that the program was not given; the error once returned.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reason.h"
#include "session.h"
#include "session_int.h"
#include "stats.h"

/*
 * Caller holds the lock(s) of the side that noticed.  Logs once; RESULT and
 * WHY are kept for the connection's end line.
 */
void
ss_fail_as(struct session *s, int result, int reason, int err,
    const char *why)
{
	char rule[320];

	ss_hs_drop_early_e(s);
	if (session_state(s) == SESSION_DEAD)
		return;
	s->err = err;
	s->end_result = result;
	s->reason = reason;
	/* The program already had the reset from a write: not pending. */
	if (__atomic_load_n(&s->rst_told, __ATOMIC_RELAXED))
		__atomic_store_n(&s->err_reported, true, __ATOMIC_RELAXED);
	snprintf(s->why, sizeof(s->why), "%s", why);
	__atomic_store_n(&s->state, SESSION_DEAD, __ATOMIC_RELEASE);
	ss_hs_uncount(s);
	stats_conn_ended(s->stats_slot, result, reason);
	if (LOG_WARN > log_level)
		return;
	snprintf(rule, sizeof(rule), "%s:%d", s->rule->file, s->rule->line);
	{
		const struct log_kv kv[] = {
			{ "event", "conn_fail", 0 },
			{ "dir", policy_dir_name(s->rule->dir), 0 },
			{ "peer", s->peer, 0 },
			{ "peer_id", s->peer_id, 0 },
			{ "rule", rule, 0 },
			{ "result", session_end_name(result), 0 },
			{ "reason", reason_name(reason), 0 },
			{ "detail", why, 0 },
			{ "errno", strerrorname_np(err) != NULL ?
			    strerrorname_np(err) : "", 0 },
			{ "sealed", s->was_open ? "yes" : "no", 0 },
		};

		LOG_KV(LOG_WARN, kv, (int)(sizeof(kv) / sizeof(kv[0])),
		    "connection %s %s (rule %s) failed: %s [reason=%s]",
		    s->initiator ? "to" : "from", s->peer, rule, why,
		    reason_name(reason));
	}
}

void
ss_fail(struct session *s, int reason, int err, const char *why)
{
	ss_fail_as(s, SESSION_END_FAILED, reason, err, why);
}

void
ss_fail_errno(struct session *s, int err)
{
	ss_fail(s, err == ECONNRESET || err == EPIPE ? REASON_PEER_RESET :
	    err == ENOMEM ? REASON_NO_MEMORY : REASON_IO_ERROR, err,
	    strerror(err));
}

/* A call of ours took the kernel's error E, the program not told. */
void
ss_rx_kerr(struct session *s, int e)
{
	int none = 0;

	if (e != EAGAIN && e != EINTR && e != 0 &&
	    !__atomic_load_n(&s->rst_told, __ATOMIC_RELAXED))
		(void)__atomic_compare_exchange_n(&s->kerr, &none, e, false,
		    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* A call returned R: once a failed session's error is returned, it is no
 * longer pending (SO_ERROR 0, no POLLERR), as TCP's sk_err. */
ssize_t
ss_told(struct session *s, ssize_t r)
{
	if (r < 0 && r != -EAGAIN && r != -EINTR && r != -EOPNOTSUPP &&
	    session_state(s) == SESSION_DEAD)
		__atomic_store_n(&s->err_reported, true, __ATOMIC_RELAXED);
	return r;
}
