/*
 * session_revoke: a reload that takes a peer out of a rule ends that peer's
 * live connections (DESIGN.md "Identities"): its next read or write fails
 * with ECONNRESET, whether it was busy or idle meanwhile.
 *
 * A session whose handshake proved a static key (suites 3, 4) keeps it
 * (auth_pk, shared) and the reload generation it was last found admitted
 * in (auth_gen, this process's: each image has its own policy).  Every
 * data call on such a session compares that with the generation in force
 * (reload_poll(): the files are looked at, at most once a second, here
 * too, so that a forked child that makes no connection decision of its
 * own sees the reload): a few loads when nothing was reloaded.  After a reload, the connection is matched again
 * against the new policy, by the address its rule matched (the local one
 * for accept, the remote one for connect): it stays only if the rule it
 * matches now still names the key, in peers= (accept) or peer= (connect).
 * A rule gone, turned plain or PSK-only, counts as removed.  The check
 * needs one getsockname/getpeername, after a reload only; a sandboxed
 * process never reloads, so it never pays it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "log.h"
#include "real.h"
#include "reload.h"
#include "session.h"
#include "session_int.h"

void
ss_auth_set(struct session *s, const uint8_t pk[NOISE_DHLEN])
{
	memcpy(s->auth_pk, pk, NOISE_DHLEN);
	__atomic_store_n(&s->authed, true, __ATOMIC_RELEASE);
}

void
ss_auth_stale(struct session *s)
{
	__atomic_store_n(&s->auth_gen, ~0u, __ATOMIC_RELAXED);
}

/* Does rule R (this process's policy now) still admit the key? */
static bool
still_admitted(const struct session *s, const struct policy_rule *r)
{
	if (r == NULL || r->plain || r->nids == 0)
		return false;
	if (r->dir == POLICY_ACCEPT)
		return policy_rule_admits(r, s->auth_pk);
	return r->peer != NULL &&
	    sodium_memcmp(r->peer->pk, s->auth_pk, NOISE_DHLEN) == 0;
}

int
ss_revoke_check(struct session *s, int fd)
{
	const struct reload_policy *rp;
	const struct policy_rule *r;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	enum policy_dir dir;
	char why[160];
	int k;

	if (!__atomic_load_n(&s->authed, __ATOMIC_ACQUIRE) ||
	    (rp = reload_peek()) == NULL)
		return 0;
	/* A process that makes no connection decision (a forked server
	 * child) looks at the files here too, at most once a second. */
	rp = reload_poll();
	if (__atomic_load_n(&s->auth_gen, __ATOMIC_RELAXED) == rp->gen)
		return 0;
	if (session_state(s) == SESSION_DEAD)
		return -s->err;
	dir = s->rule->dir;
	k = session_kfd(s, fd);
	if ((dir == POLICY_ACCEPT ? real_getsockname(k, (struct sockaddr *)&ss,
	    &len) : real_getpeername(k, (struct sockaddr *)&ss, &len)) < 0) {
		/* Nothing to match (the socket is gone): its calls say so. */
		return 0;
	}
	r = policy_match(rp->pol, dir, (struct sockaddr *)&ss, len);
	if (still_admitted(s, r)) {
		__atomic_store_n(&s->auth_gen, rp->gen, __ATOMIC_RELAXED);
		return 0;
	}
	if (r == NULL || r->plain || r->nids == 0)
		snprintf(why, sizeof(why), "peer %s revoked by a policy "
		    "reload (no identity rule matches any more)", s->peer_id);
	else
		snprintf(why, sizeof(why), "peer %s revoked by a policy "
		    "reload (not in %s of rule %s:%d any more)", s->peer_id,
		    dir == POLICY_ACCEPT ? "peers=" : "peer=", r->file, r->line);
	ss_lock(s, &s->rx_lock);
	ss_lock(s, &s->tx_lock);
	if (session_state(s) != SESSION_DEAD)
		ss_fail_as(s, SESSION_END_REFUSED, REASON_REVOKED, ECONNRESET,
		    why);
	ss_unlock(&s->tx_lock);
	ss_unlock(&s->rx_lock);
	return -s->err;
}
