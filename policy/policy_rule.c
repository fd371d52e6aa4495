/*
 * policy_rule: `connect` and `accept` rules: ADDR:PORTS and the options
 * (policy.h for the fields, DESIGN.md for the syntax).  A rule names its
 * keys, identities and peers; policy_parse_finish() finds them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_int.h"

/*
 * parse_prefix(s, max, &prefix): "/N" with 0 <= N <= max, or "" for max.
 * Returns 0 or -EINVAL.
 */
static int
parse_prefix(const char *s, uint32_t max, int *prefix)
{
	uint32_t v;

	if (*s == '\0') {
		*prefix = (int)max;
		return 0;
	}
	if (*s != '/' || parse_uint(s + 1, strlen(s + 1), max, &v) != 0)
		return -EINVAL;
	*prefix = (int)v;
	return 0;
}

static bool
host_bits_clear(const uint8_t *a, int alen, int prefix)
{
	int i;

	for (i = 0; i < alen; i++) {
		int bits = prefix - i * 8;
		uint8_t mask;

		if (bits >= 8)
			continue;
		mask = bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		if (a[i] & ~mask)
			return false;
	}
	return true;
}

const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* The ADDR part of ADDR:PORTS (without the ports). */
static int
parse_addr(struct policy *p, struct policy_rule *r, char *a, int lineno,
    char err[POLICY_ERRLEN])
{
	char *slash;
	int max;

	if (strcmp(a, "*") == 0) {
		r->family = 0;
		r->prefix = 0;
		return 0;
	}
	if (a[0] == '[') {
		char *close = strchr(a, ']');

		if (close == NULL)
			return perr(p, lineno, err, "missing `]' in `%.64s'", a);
		*close = '\0';
		if (inet_pton(AF_INET6, a + 1, r->addr) != 1)
			return perr(p, lineno, err, "bad IPv6 address `%.64s'",
			    a + 1);
		if (parse_prefix(close + 1, 128, &r->prefix) != 0)
			return perr(p, lineno, err, "bad prefix length "
			    "`%.64s' after [%.64s] (expected /0 to /128)",
			    close + 1, a + 1);
		r->family = AF_INET6;
		/* [::ffff:a.b.c.d]/N: the same as a.b.c.d/(N-96). */
		if (r->prefix >= 96 && memcmp(r->addr, v4mapped, 12) == 0) {
			memmove(r->addr, r->addr + 12, 4);
			memset(r->addr + 4, 0, 12);
			r->prefix -= 96;
			r->family = AF_INET;
		}
	} else {
		if (strchr(a, ':') != NULL)
			return perr(p, lineno, err, "IPv6 address `%.64s' must "
			    "be in brackets: [ADDR]:PORTS", a);
		if ((slash = strchr(a, '/')) != NULL)
			*slash = '\0';
		if (inet_pton(AF_INET, a, r->addr) != 1)
			return perr(p, lineno, err, "bad address `%.64s' "
			    "(expected *, IPv4 address or CIDR, or [IPv6] "
			    "address or CIDR)", a);
		if (slash != NULL)
			*slash = '/';
		if (parse_prefix(slash ? slash : "", 32, &r->prefix) != 0)
			return perr(p, lineno, err, "bad prefix length `%.64s' "
			    "(expected /0 to /32)", slash);
		r->family = AF_INET;
	}
	max = r->family == AF_INET ? 4 : 16;
	if (!host_bits_clear(r->addr, max, r->prefix))
		return perr(p, lineno, err, "address has bits set beyond its "
		    "/%d prefix", r->prefix);
	return 0;
}

/* PORTS: `*`, `N` or `N-M`. */
static int
parse_ports(struct policy *p, struct policy_rule *r, const char *s, int lineno,
    char err[POLICY_ERRLEN])
{
	const char *dash;
	uint32_t lo, hi;

	if (strcmp(s, "*") == 0) {
		r->port_lo = 0;
		r->port_hi = 65535;
		return 0;
	}
	dash = strchr(s, '-');
	if (parse_uint(s, dash ? (size_t)(dash - s) : strlen(s), 65535, &lo)
	    != 0 || lo == 0)
		goto bad;
	hi = lo;
	if (dash != NULL && (parse_uint(dash + 1, strlen(dash + 1), 65535, &hi)
	    != 0 || hi == 0))
		goto bad;
	if (lo > hi)
		return perr(p, lineno, err, "port range `%.64s' is reversed", s);
	r->port_lo = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;

bad:
	return perr(p, lineno, err, "bad port `%.64s' (expected *, N or N-M, "
	    "1 to 65535)", s);
}

static int
parse_addrport(struct policy *p, struct policy_rule *r, char *w, int lineno,
    char err[POLICY_ERRLEN])
{
	char *colon;
	int rc;

	/* The ports follow the last colon, after any bracketed IPv6 part. */
	colon = strrchr(w, ':');
	if (w[0] == '[') {
		char *close = strchr(w, ']');

		if (close == NULL)
			return perr(p, lineno, err, "missing `]' in `%.64s'", w);
		if (colon == NULL || colon < close)
			return perr(p, lineno, err, "missing :PORTS after "
			    "`%.64s'", w);
	} else if (colon == NULL) {
		return perr(p, lineno, err, "expected ADDR:PORTS, got `%.64s'",
		    w);
	}
	*colon = '\0';
	if (colon[1] == '\0')
		return perr(p, lineno, err, "missing PORTS after `%.64s:'", w);
	if ((rc = parse_addr(p, r, w, lineno, err)) != 0)
		return rc;
	return parse_ports(p, r, colon + 1, lineno, err);
}

/* OPT=NAME[,NAME2...] into OUT[MAX], *N names (policy_int.h). */
int
parse_namelist(struct policy *p, const char *opt, const char *list,
    char **out, int max, int *n, int lineno, char err[POLICY_ERRLEN])
{
	/* "key" names keys, "identity" identities, "peers" peers. */
	const char *noun = strcmp(opt, "peers") == 0 ? "peer" : opt;
	const char *s = list, *comma;
	size_t len;
	int i;

	if (*list == '\0')
		return perr(p, lineno, err, "%s= needs a%s %s name", opt,
		    *noun == 'i' ? "n" : "", noun);
	for (;;) {
		comma = strchr(s, ',');
		len = comma ? (size_t)(comma - s) : strlen(s);
		if (!name_valid(s, len))
			return perr(p, lineno, err, "bad %s name `%.*s' in %s=",
			    noun, (int)(len > 64 ? 64 : len), s, opt);
		if (*n == max)
			return perr(p, lineno, err, "too many %s in %s= (at "
			    "most %d)", *noun == 'i' ? "identities" :
			    *noun == 'k' ? "keys" : "peers", opt, max);
		for (i = 0; i < *n; i++)
			if (strlen(out[i]) == len && memcmp(out[i], s, len) == 0)
				return perr(p, lineno, err, "%s `%.*s' listed "
				    "twice in %s=", noun, (int)len, s, opt);
		if ((out[*n] = strndup(s, len)) == NULL)
			return perr_nomem(p, lineno, err);
		(*n)++;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return 0;
}

/* peers=NAME[,NAME...]: any number, into rn->peers (NULL-terminated). */
static int
parse_peers(struct policy *p, struct policy_rule *r, struct rule_names *rn,
    const char *list, int lineno, char err[POLICY_ERRLEN])
{
	size_t n = 1, i;
	const char *c;
	int k = 0, rc;

	for (c = list; *c != '\0'; c++)
		n += *c == ',';
	if (n > (1u << 20))
		return perr(p, lineno, err, "too many names in peers=");
	if ((rn->peers = calloc(n + 1, sizeof(*rn->peers))) == NULL)
		return perr_nomem(p, lineno, err);
	rc = parse_namelist(p, "peers", list, rn->peers, (int)n, &k, lineno,
	    err);
	r->npeers = (size_t)k;
	for (i = (size_t)k; i <= n; i++)
		rn->peers[i] = NULL;
	return rc;
}

/* Option words after ADDR:PORTS. */
static int
parse_option(struct policy *p, struct policy_rule *r, struct rule_names *rn,
    const char *w, unsigned *seen, int lineno, char err[POLICY_ERRLEN])
{
	enum { S_KEY = 1, S_CIPHER = 2, S_MODE = 4, S_TIMEOUT = 8, S_PLAIN = 16,
	    S_ID = 32, S_PEER = 64, S_PEERS = 128 };
	static const struct {
		const char *prefix;
		unsigned    bit;
	} opts[] = {
		{ "key=", S_KEY }, { "cipher=", S_CIPHER }, { "mode=", S_MODE },
		{ "timeout=", S_TIMEOUT }, { "plain", S_PLAIN },
		{ "identity=", S_ID }, { "peer=", S_PEER }, { "peers=", S_PEERS },
	};
	static const char expected[] = "(expected key=, identity=, peer=, "
	    "peers=, cipher=, mode=, timeout= or plain)";
	const char *v = NULL;
	unsigned bit = 0;
	uint32_t ms;
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		size_t n = strlen(opts[i].prefix);

		if (opts[i].bit == S_PLAIN ? strcmp(w, "plain") == 0 :
		    strncmp(w, opts[i].prefix, n) == 0) {
			bit = opts[i].bit;
			v = w + n;
			break;
		}
	}
	if (bit == 0) {
		const char *eq = strchr(w, '=');

		if (eq != NULL)
			return perr(p, lineno, err, "unknown option `%.*s=' %s",
			    (int)(eq - w > 64 ? 64 : eq - w), w, expected);
		return perr(p, lineno, err, "unexpected `%.64s' %s", w,
		    expected);
	}
	if (*seen & bit)
		return perr(p, lineno, err, "%s given twice",
		    bit == S_PLAIN ? "plain" : opts[i].prefix);
	*seen |= bit;
	if ((*seen & S_PLAIN) && (*seen & ~(unsigned)S_PLAIN))
		return perr(p, lineno, err, "plain cannot be combined with "
		    "other options");

	switch (bit) {
	case S_KEY:
		return parse_namelist(p, "key", v, rn->name, POLICY_MAXKEYS,
		    &r->nkeys, lineno, err);
	case S_ID: {
		int rc = parse_namelist(p, "identity", v, rn->id,
		    POLICY_MAXKEYS, &r->nids, lineno, err);

		if (rc != 0)
			return rc;
		if (r->dir == POLICY_CONNECT && r->nids > 1)
			return perr(p, lineno, err, "identity= on a connect "
			    "rule names one identity (several are for an "
			    "accept rule's rotation)");
		return 0;
	}
	case S_PEER:
		if (r->dir != POLICY_CONNECT)
			return perr(p, lineno, err, "peer= is for connect "
			    "rules (an accept rule lists peers=)");
		if (!name_valid(v, strlen(v)))
			return perr(p, lineno, err, "bad name `%.64s' in peer= "
			    "(one peer)", v);
		if ((rn->peer = strdup(v)) == NULL)
			return perr_nomem(p, lineno, err);
		return 0;
	case S_PEERS:
		if (r->dir != POLICY_ACCEPT)
			return perr(p, lineno, err, "peers= is for accept "
			    "rules (a connect rule names its peer=)");
		return parse_peers(p, r, rn, v, lineno, err);
	case S_CIPHER:
		if (strcmp(v, "chachapoly") == 0)
			r->cipher = POLICY_CIPHER_CHACHAPOLY;
		else if (strcmp(v, "aesgcm") == 0)
			r->cipher = POLICY_CIPHER_AESGCM;
		else
			return perr(p, lineno, err, "unknown cipher `%.64s' "
			    "(expected chachapoly or aesgcm)", v);
		return 0;
	case S_MODE:
		if (r->dir != POLICY_ACCEPT)
			return perr(p, lineno, err, "mode= is only allowed on "
			    "accept rules");
		if (strcmp(v, "strict") == 0)
			r->mode = POLICY_STRICT;
		else if (strcmp(v, "permissive") == 0)
			r->mode = POLICY_PERMISSIVE;
		else
			return perr(p, lineno, err, "unknown mode `%.64s' "
			    "(expected strict or permissive)", v);
		return 0;
	case S_TIMEOUT:
		if (parse_uint(v, strlen(v), TIMEOUT_MAX, &ms) != 0 || ms == 0)
			return perr(p, lineno, err, "bad timeout `%.64s' "
			    "(expected 1 to %u milliseconds)", v, TIMEOUT_MAX);
		r->timeout_ms = ms;
		return 0;
	default:
		r->plain = true;
		return 0;
	}
}

void
rule_names_free(struct rule_names *rn)
{
	size_t i;

	for (i = 0; i < POLICY_MAXKEYS; i++) {
		free(rn->name[i]);
		free(rn->id[i]);
		rn->name[i] = rn->id[i] = NULL;
	}
	free(rn->peer);
	rn->peer = NULL;
	for (i = 0; rn->peers != NULL && rn->peers[i] != NULL; i++)
		free(rn->peers[i]);
	free(rn->peers);
	rn->peers = NULL;
}

/* `connect|accept ADDR:PORTS options...` */
int
parse_rule(struct policy *p, enum policy_dir dir, char *rest, int lineno,
    char err[POLICY_ERRLEN])
{
	struct policy_rule r;
	struct rule_names rn;
	unsigned seen = 0;
	char *w;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&rn, 0, sizeof(rn));
	r.dir = dir;
	r.cipher = POLICY_CIPHER_DEFAULT;
	r.mode = POLICY_STRICT;
	r.timeout_ms = POLICY_TIMEOUT_DEF;
	r.file = p->cur != NULL ? p->cur : p->file;
	r.line = lineno;

	if ((w = next_word(&rest)) == NULL) {
		rc = perr(p, lineno, err, "%s: missing ADDR:PORTS",
		    policy_dir_name(dir));
		goto err0;
	}
	if ((rc = parse_addrport(p, &r, w, lineno, err)) != 0)
		goto err0;
	while ((w = next_word(&rest)) != NULL)
		if ((rc = parse_option(p, &r, &rn, w, &seen, lineno, err)) != 0)
			goto err0;
	if (!r.plain && r.nkeys == 0 && r.nids == 0) {
		rc = perr(p, lineno, err, "%s rule needs key=NAME or "
		    "identity=NAME (or plain)", policy_dir_name(dir));
		goto err0;
	}
	if (r.nids > 0 && dir == POLICY_CONNECT && rn.peer == NULL) {
		rc = perr(p, lineno, err, "connect rule with identity= needs "
		    "peer=NAME (the server it must reach)");
		goto err0;
	}
	if (r.nids > 0 && dir == POLICY_ACCEPT && r.npeers == 0) {
		rc = perr(p, lineno, err, "accept rule with identity= needs "
		    "peers=NAME[,NAME...] (the clients it admits)");
		goto err0;
	}
	if (r.nids == 0 && (rn.peer != NULL || r.npeers > 0)) {
		rc = perr(p, lineno, err, "%s needs identity=NAME (this "
		    "host's own key)", rn.peer != NULL ? "peer=" : "peers=");
		goto err0;
	}

	if (p->nrules == p->caprules) {
		size_t cap = p->caprules ? p->caprules * 2 : 16;
		struct policy_rule *nr;
		struct rule_names *nn;

		if ((nr = reallocarray(p->rules, cap, sizeof(*nr))) == NULL)
			goto enomem;
		p->rules = nr;
		if ((nn = reallocarray(p->rulekeys, cap, sizeof(*nn))) == NULL)
			goto enomem;
		p->rulekeys = nn;
		p->caprules = cap;
	}
	p->rules[p->nrules] = r;
	p->rulekeys[p->nrules] = rn;
	p->nrules++;
	return 0;

enomem:
	rc = -ENOMEM;
	perr(p, lineno, err, "out of memory");
err0:
	rule_names_free(&rn);
	return rc;
}
