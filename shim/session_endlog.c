/*
 * session_endlog: a connection's one end line (conn_end) and the names it
 * uses, and the end's count in the statistics; session_end.c decides when.
 */
#include <errno.h>
#include <stdio.h>

#include "log.h"
#include "noise.h"
#include "policy.h"
#include "reason.h"
#include "session.h"
#include "session_int.h"
#include "stats.h"

const char *
session_suite_name(const struct session *s)
{
	if (session_state(s) == SESSION_PLAIN)
		return "plain";
	switch (s->suite) {
	case NOISE_CHACHAPOLY:
		return "chachapoly";
	case NOISE_AESGCM:
		return "aesgcm";
	case NOISE_IK_CHACHAPOLY:
		return "chachapoly+identity";
	case NOISE_IK_AESGCM:
		return "aesgcm+identity";
	default:
		return "none";
	}
}

/*
 * The connection's one end line (info): peer, rule, suite, result and why,
 * bytes each way, duration.  HOW says what ended it in this process
 * ("closed", "process exited").  Written once whichever process or path
 * gets here first (logged_end is in the shared part).
 */
const char *
session_end_name(int result)
{
	static const char *const results[] = { "ok", "failed", "refused",
	    "timeout" };

	return results[result & 3];
}

/* The end of a connection in this process: HOW_CODE (enum reason) and HOW
 * (the words). */
void
session_log_end(struct session *s, int how_code, const char *how)
{
	char rule[320], detail[128];
	const char *result, *suite = session_suite_name(s);
	unsigned long long ms = now_ms() - s->t_start;
	int st = session_state(s), code;

	if (__atomic_exchange_n(&s->logged_end, true, __ATOMIC_ACQ_REL))
		return;
	if (st == SESSION_DEAD) {
		result = session_end_name(s->end_result);
		code = s->reason;
		snprintf(detail, sizeof(detail), "%s", s->why);
	} else if (st < SESSION_OPEN) {
		result = session_end_name(SESSION_END_FAILED);
		code = REASON_CLOSED_IN_HANDSHAKE;
		snprintf(detail, sizeof(detail), "%s during the handshake", how);
	} else {
		result = session_end_name(SESSION_END_OK);
		code = st == SESSION_PLAIN ? REASON_PLAINTEXT_PERMISSIVE :
		    how_code;
		snprintf(detail, sizeof(detail), "%s%s", how,
		    st == SESSION_PLAIN ? "; plaintext client, permissive rule" :
		    "");
	}
	/* (A failure was counted when it happened: ss_fail_as.) */
	if (st != SESSION_DEAD)
		stats_conn_ended(s->stats_slot, st < SESSION_OPEN ?
		    SESSION_END_FAILED : SESSION_END_OK, code);
	if (s->was_open)
		stats_conn_gone(s->stats_slot);
	if (log_level < LOG_INFO)
		return;
	snprintf(rule, sizeof(rule), "%s:%d", s->rule->file, s->rule->line);
	{
		const struct log_kv kv[] = {
			{ "event", "conn_end", 0 },
			{ "dir", policy_dir_name(s->rule->dir), 0 },
			{ "peer", s->peer, 0 },
			{ "peer_id", s->peer_id, 0 },
			{ "rule", rule, 0 },
			{ "suite", suite, 0 },
			{ "result", result, 0 },
			{ "reason", reason_name(code), 0 },
			{ "detail", detail, 0 },
			{ "bytes_in", NULL, s->bytes_in },
			{ "bytes_out", NULL, s->bytes_out },
			{ "ms", NULL, ms },
			{ "keys", s->key_used, 0 },
		};

		LOG_KV(LOG_INFO, kv, (int)(sizeof(kv) / sizeof(kv[0])),
		    "closed connection %s %s%s%s (rule %s, %s): %llu bytes in, "
		    "%llu bytes out, %llu ms, %s (%s); %s%sprogram %s",
		    s->initiator ? "to" : "from", s->peer,
		    s->peer_id[0] != '\0' ? ", peer " : "", s->peer_id, rule,
		    suite,
		    (unsigned long long)s->bytes_in,
		    (unsigned long long)s->bytes_out, ms, result, detail,
		    s->key_used, s->key_used[0] != '\0' ? ", " : "",
		    program_invocation_short_name);
	}
}
