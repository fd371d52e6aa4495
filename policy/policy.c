/*
 * policy: parser and matcher (see policy.h for the contract, DESIGN.md for
 * the syntax).
 *
 * Parsing is line by line into a growing array of rules and an array of
 * individually allocated keys (so rule->keys[] pointers stay valid while the
 * array grows).  A rule names its keys; the names are kept beside the rule
 * (struct policy.rulekeys) and resolved in policy_parse_finish(), so a key
 * may be defined after the rules that use it.  finish also expands ${VAR}
 * in key paths, makes relative paths relative to the policy file's
 * directory and reads every key file.
 *
 * Once finished the policy is never written again; policy_match() only
 * reads it, so it takes no lock, allocates nothing and makes no syscall.
 *
 * Words are separated by any whitespace; `#` starts a comment that runs to
 * the end of the line (so key paths cannot contain `#` or whitespace).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"

#include "fileio.h"
#include "policy.h"

/* A policy file larger than this is refused (a mistake, not a policy). */
#define POLICY_MAX_FILE (16u << 20)

#define NAME_MAX_LEN   64
#define TIMEOUT_MAX    3600000u

/* Key names of one rule, until policy_parse_finish() resolves them. */
struct rule_names {
	char *name[POLICY_MAXKEYS];
};

struct policy {
	char                *file;      /* as given to policy_parse_init() */
	char                *dir;       /* its directory, NULL if none given */
	struct policy_key  **keys;
	size_t               nkeys, capkeys;
	struct policy_rule  *rules;
	struct rule_names   *rulekeys;  /* parallel to rules */
	size_t               nrules, caprules;
	policy_env_fn        env;       /* ${VAR} lookup; NULL: getenv() */
	void                *envctx;
	bool                 finished;
};

/* Write "FILE:LINE: message" into err; returns -EINVAL for convenience. */
static int perr(const struct policy *p, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
perr(const struct policy *p, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, POLICY_ERRLEN, "%s:%d: ", p->file, lineno);
	if (n < 0 || n >= POLICY_ERRLEN)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err + n, POLICY_ERRLEN - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * next_word(&s): the next whitespace-separated word of the NUL-terminated,
 * writable string *s (terminated in place), or NULL at the end.
 */
static char *
next_word(char **s)
{
	char *w, *e;

	for (w = *s; is_space(*w); w++)
		;
	if (*w == '\0')
		return NULL;
	for (e = w; *e != '\0' && !is_space(*e); e++)
		;
	if (*e != '\0')
		*e++ = '\0';
	*s = e;
	return w;
}

/*
 * parse_uint(s, len, max, &v): LEN decimal digits (no sign, no spaces) with
 * a value of at most MAX.  Returns 0 or -EINVAL.
 */
static int
parse_uint(const char *s, size_t len, uint32_t max, uint32_t *v)
{
	uint64_t acc = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (acc > max)
		return -EINVAL;
	*v = (uint32_t)acc;
	return 0;
}

static bool
name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    is_digit(c) || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static const struct policy_key *
key_find(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nkeys; i++)
		if (strcmp(p->keys[i]->name, name) == 0)
			return p->keys[i];
	return NULL;
}

struct policy *
policy_parse_init(const char *file)
{
	struct policy *p;
	const char *slash;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto err0;
	if ((p->file = strdup(file)) == NULL)
		goto err1;
	if ((slash = strrchr(file, '/')) != NULL) {
		size_t n = slash == file ? 1 : (size_t)(slash - file);

		if ((p->dir = strndup(file, n)) == NULL)
			goto err1;
	}
	return p;

err1:
	policy_free(p);
err0:
	return NULL;
}

/* `key NAME PATH` */
static int
parse_key(struct policy *p, char *rest, int lineno, char err[POLICY_ERRLEN])
{
	struct policy_key *k, **nk;
	const struct policy_key *old;
	char *name, *path, *extra;

	if ((name = next_word(&rest)) == NULL)
		return perr(p, lineno, err, "key: missing NAME and PATH");
	if (!name_valid(name, strlen(name)))
		return perr(p, lineno, err, "key: bad name `%.64s' "
		    "(letters, digits, `_', `-', `.'; at most %d)",
		    name, NAME_MAX_LEN);
	if ((path = next_word(&rest)) == NULL)
		return perr(p, lineno, err, "key %s: missing PATH", name);
	if ((extra = next_word(&rest)) != NULL)
		return perr(p, lineno, err, "key %s: unexpected `%.64s' after "
		    "PATH", name, extra);
	if ((old = key_find(p, name)) != NULL)
		return perr(p, lineno, err, "duplicate key `%s' (first "
		    "defined at line %d)", name, old->line);

	if (p->nkeys == p->capkeys) {
		size_t cap = p->capkeys ? p->capkeys * 2 : 8;

		if ((nk = reallocarray(p->keys, cap, sizeof(*nk))) == NULL)
			goto enomem;
		p->keys = nk;
		p->capkeys = cap;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto enomem;
	k->line = lineno;
	if ((k->name = strdup(name)) == NULL || (k->path = strdup(path)) == NULL) {
		free(k->name);
		free(k);
		goto enomem;
	}
	p->keys[p->nkeys++] = k;
	return 0;

enomem:
	perr(p, lineno, err, "out of memory");
	return -ENOMEM;
}

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

static const uint8_t v4mapped[12] = {
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

/* key=NAME[,NAME2...] */
static int
parse_keylist(struct policy *p, struct policy_rule *r, struct rule_names *rn,
    const char *list, int lineno, char err[POLICY_ERRLEN])
{
	const char *s = list, *comma;
	int i;

	if (*list == '\0')
		return perr(p, lineno, err, "key= needs a key name");
	for (;;) {
		size_t len;

		comma = strchr(s, ',');
		len = comma ? (size_t)(comma - s) : strlen(s);
		if (!name_valid(s, len))
			return perr(p, lineno, err, "bad key name `%.*s' in "
			    "key=", (int)(len > 64 ? 64 : len), s);
		if (r->nkeys == POLICY_MAXKEYS)
			return perr(p, lineno, err, "too many keys in key= "
			    "(at most %d)", POLICY_MAXKEYS);
		for (i = 0; i < r->nkeys; i++)
			if (strlen(rn->name[i]) == len &&
			    memcmp(rn->name[i], s, len) == 0)
				return perr(p, lineno, err, "key `%.*s' listed "
				    "twice in key=", (int)len, s);
		if ((rn->name[r->nkeys] = strndup(s, len)) == NULL) {
			perr(p, lineno, err, "out of memory");
			return -ENOMEM;
		}
		r->nkeys++;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return 0;
}

/* Option words after ADDR:PORTS. */
static int
parse_option(struct policy *p, struct policy_rule *r, struct rule_names *rn,
    const char *w, unsigned *seen, int lineno, char err[POLICY_ERRLEN])
{
	enum { S_KEY = 1, S_CIPHER = 2, S_MODE = 4, S_TIMEOUT = 8, S_PLAIN = 16 };
	static const struct {
		const char *prefix;
		unsigned    bit;
	} opts[] = {
		{ "key=", S_KEY }, { "cipher=", S_CIPHER }, { "mode=", S_MODE },
		{ "timeout=", S_TIMEOUT }, { "plain", S_PLAIN },
	};
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
			return perr(p, lineno, err, "unknown option `%.*s=' "
			    "(expected key=, cipher=, mode=, timeout= or plain)",
			    (int)(eq - w > 64 ? 64 : eq - w), w);
		return perr(p, lineno, err, "unexpected `%.64s' (expected "
		    "key=, cipher=, mode=, timeout= or plain)", w);
	}
	if (*seen & bit)
		return perr(p, lineno, err, "%s given twice",
		    bit == S_PLAIN ? "plain" : opts[i].prefix);
	*seen |= bit;
	if ((*seen & S_PLAIN) && (*seen & ~(unsigned)S_PLAIN))
		return perr(p, lineno, err, "plain cannot be combined with "
		    "key=, cipher=, mode= or timeout=");

	switch (bit) {
	case S_KEY:
		return parse_keylist(p, r, rn, v, lineno, err);
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

static void
rule_names_free(struct rule_names *rn)
{
	int i;

	for (i = 0; i < POLICY_MAXKEYS; i++) {
		free(rn->name[i]);
		rn->name[i] = NULL;
	}
}

/* `connect|accept ADDR:PORTS options...` */
static int
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
	r.file = p->file;
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
	if (!r.plain && r.nkeys == 0) {
		rc = perr(p, lineno, err, "%s rule needs key=NAME (or plain)",
		    policy_dir_name(dir));
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

int
policy_parse_line(struct policy *p, const char *line, int lineno,
    char err[POLICY_ERRLEN])
{
	char *buf, *rest, *w, *hash;
	int rc;

	if (p->finished)
		return perr(p, lineno, err, "policy already finished");
	if ((buf = strdup(line)) == NULL) {
		perr(p, lineno, err, "out of memory");
		return -ENOMEM;
	}
	if ((hash = strchr(buf, '#')) != NULL)
		*hash = '\0';
	rest = buf;
	if ((w = next_word(&rest)) == NULL)
		rc = 0;
	else if (strcmp(w, "key") == 0)
		rc = parse_key(p, rest, lineno, err);
	else if (strcmp(w, "connect") == 0)
		rc = parse_rule(p, POLICY_CONNECT, rest, lineno, err);
	else if (strcmp(w, "accept") == 0)
		rc = parse_rule(p, POLICY_ACCEPT, rest, lineno, err);
	else
		rc = perr(p, lineno, err, "unknown statement `%.64s' (expected "
		    "key, connect or accept)", w);
	free(buf);
	return rc;
}

/*
 * expand_path(p, k, &out, err): K's path with ${VAR} expanded and, if
 * relative, prefixed by the policy file's directory.  Returns 0 and a new
 * string in *out, or a negative errno with err set.
 */
static int
expand_path(const struct policy *p, const struct policy_key *k, char **out,
    char err[POLICY_ERRLEN])
{
	char buf[PATH_MAX];
	size_t n = 0, len;
	const char *s = k->path, *val;
	char var[128];

	while (*s != '\0') {
		if (s[0] == '$' && s[1] == '{') {
			const char *end = strchr(s + 2, '}');

			if (end == NULL)
				return perr(p, k->line, err, "key %s: unterminated "
				    "${ in path `%.128s'", k->name, k->path);
			len = (size_t)(end - (s + 2));
			if (len == 0 || len >= sizeof(var))
				return perr(p, k->line, err, "key %s: bad "
				    "variable name in path `%.128s'", k->name,
				    k->path);
			memcpy(var, s + 2, len);
			var[len] = '\0';
			val = p->env ? p->env(var, p->envctx) : getenv(var);
			if (val == NULL)
				return perr(p, k->line, err, "key %s: environment "
				    "variable %s is not set", k->name, var);
			s = end + 1;
			len = strlen(val);
		} else {
			val = s;
			len = 1;
			s++;
		}
		if (n + len >= sizeof(buf))
			goto toolong;
		memcpy(buf + n, val, len);
		n += len;
	}
	buf[n] = '\0';
	if (n == 0)
		return perr(p, k->line, err, "key %s: path `%.128s' is empty "
		    "after expansion", k->name, k->path);

	if (buf[0] != '/' && p->dir != NULL) {
		size_t dl = strlen(p->dir);
		bool root = strcmp(p->dir, "/") == 0;

		if (dl + 1 + n >= sizeof(buf))
			goto toolong;
		memmove(buf + dl + (root ? 0 : 1), buf, n + 1);
		memcpy(buf, p->dir, dl);
		if (!root)
			buf[dl] = '/';
	}
	if ((*out = strdup(buf)) == NULL) {
		perr(p, k->line, err, "out of memory");
		return -ENOMEM;
	}
	return 0;

toolong:
	return perr(p, k->line, err, "key %s: path `%.128s' is too long",
	    k->name, k->path);
}

int
policy_parse_finish(struct policy *p, char err[POLICY_ERRLEN])
{
	char msg[128];
	size_t i;
	int j, rc;

	if (p->finished)
		return 0;

	/* Cross-references first: they need no I/O. */
	for (i = 0; i < p->nrules; i++) {
		struct policy_rule *r = &p->rules[i];

		for (j = 0; j < r->nkeys; j++) {
			const char *name = p->rulekeys[i].name[j];

			if ((r->keys[j] = key_find(p, name)) == NULL)
				return perr(p, r->line, err, "undefined key "
				    "`%s'", name);
		}
	}

	for (i = 0; i < p->nkeys; i++) {
		struct policy_key *k = p->keys[i];

		free(k->resolved);
		k->resolved = NULL;
		if ((rc = expand_path(p, k, &k->resolved, err)) != 0)
			return rc;
		if ((rc = keyfile_read(k->resolved, k->key, msg,
		    sizeof(msg))) != 0) {
			perr(p, k->line, err, "key %s: %s: %s", k->name,
			    k->resolved, msg);
			return rc;
		}
	}
	p->finished = true;
	return 0;
}

void
policy_parse_env(struct policy *p, policy_env_fn env, void *ctx)
{
	p->env = env;
	p->envctx = ctx;
}

int
policy_load(const char *path, struct policy **pp, char err[POLICY_ERRLEN])
{
	return policy_load_env(path, NULL, NULL, pp, err);
}

/*
 * Read all of PATH into a new NUL-terminated buffer.  The policy is read with
 * read(2), not stdio: every preloaded process reads it at start, and a stdio
 * stream costs a 4 KiB buffer (a fresh heap page) and more of libc mapped in.
 */
static int
slurp(const char *path, char **out, size_t *outlen)
{
	const struct fileio *io = fileio();
	size_t len = 0, cap = 4096;
	char *buf, *nb;
	ssize_t n;
	int fd, rc;

	if ((fd = io->open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0)) < 0)
		return -errno;
	if ((buf = malloc(cap)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (;;) {
		if (cap - len < 2) {
			if (cap >= POLICY_MAX_FILE) {
				rc = -EFBIG;
				goto fail;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		n = io->read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	io->close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;

fail:
	free(buf);
	io->close(fd);
	return rc;
}

int
policy_load_env(const char *path, policy_env_fn env, void *ctx,
    struct policy **pp, char err[POLICY_ERRLEN])
{
	struct policy *p;
	char *buf = NULL, *line, *nl, save;
	size_t len = 0;
	int lineno = 0, rc;

	*pp = NULL;
	if ((rc = slurp(path, &buf, &len)) != 0) {
		snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if ((p = policy_parse_init(path)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
		goto err1;
	}
	policy_parse_env(p, env, ctx);
	for (line = buf; line < buf + len; line = nl) {
		lineno++;
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		nl = nl != NULL ? nl + 1 : buf + len;
		if (memchr(line, '\0', (size_t)(nl - line)) != NULL) {
			rc = perr(p, lineno, err, "NUL byte in line");
			goto err2;
		}
		/* The parser takes a string: end this line for it. */
		save = *nl;
		*nl = '\0';
		rc = policy_parse_line(p, line, lineno, err);
		*nl = save;
		if (rc != 0)
			goto err2;
	}
	if ((rc = policy_parse_finish(p, err)) != 0)
		goto err2;
	free(buf);
	*pp = p;
	return 0;

err2:
	policy_free(p);
err1:
	free(buf);
	return rc;
}

/* Does the rule's address part match the 4- or 16-byte address A? */
static bool
addr_match(const struct policy_rule *r, int family, const uint8_t *a)
{
	int full, bits;

	if (r->family == 0)
		return true;
	if (r->family != family)
		return false;
	full = r->prefix / 8;
	bits = r->prefix % 8;
	if (memcmp(r->addr, a, (size_t)full) != 0)
		return false;
	if (bits != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits));

		if ((r->addr[full] ^ a[full]) & mask)
			return false;
	}
	return true;
}

/*
 * The address and port of SA, as rules see them (every length the kernel
 * accepts for the family): an IPv4-mapped IPv6
 * address becomes IPv4.  Returns the family (AF_INET, AF_INET6) with A
 * (4 or 16 bytes) and *PORT set, or 0 for anything else.
 */
#ifndef SIN6_LEN_RFC2133
#define SIN6_LEN_RFC2133 24
#endif

static int
addr_norm(const struct sockaddr *sa, socklen_t salen, uint8_t a[16],
    uint16_t *port)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;

	if (sa == NULL || salen < (socklen_t)sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(s4)) {
		memcpy(&s4, sa, sizeof(s4));
		memcpy(a, &s4.sin_addr, 4);
		*port = ntohs(s4.sin_port);
		return AF_INET;
	}
	/* The kernel takes a sockaddr_in6 without its scope id (RFC 2133's
	 * 24 bytes) too: so does the match. */
	if (sa->sa_family == AF_INET6 && salen >= (socklen_t)SIN6_LEN_RFC2133) {
		memset(&s6, 0, sizeof(s6));
		memcpy(&s6, sa, salen < (socklen_t)sizeof(s6) ? salen :
		    sizeof(s6));
		*port = ntohs(s6.sin6_port);
		if (memcmp(s6.sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
			memcpy(a, s6.sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(a, s6.sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

static enum policy_miss
rule_test(const struct policy_rule *r, enum policy_dir dir, int family,
    const uint8_t *a, uint16_t port)
{
	if (r->dir != dir)
		return POLICY_MISS_DIR;
	if (r->family != 0 && r->family != family)
		return POLICY_MISS_FAMILY;
	if (!addr_match(r, family, a))
		return POLICY_MISS_ADDR;
	if (port < r->port_lo || port > r->port_hi)
		return POLICY_MISS_PORT;
	return POLICY_HIT;
}

enum policy_miss
policy_rule_test(const struct policy_rule *r, enum policy_dir dir,
    const struct sockaddr *sa, socklen_t salen)
{
	uint8_t a[16];
	uint16_t port;
	int family;

	if ((family = addr_norm(sa, salen, a, &port)) == 0)
		return POLICY_MISS_FAMILY;
	return rule_test(r, dir, family, a, port);
}

const struct policy_rule *
policy_match(const struct policy *p, enum policy_dir dir,
    const struct sockaddr *sa, socklen_t salen)
{
	uint8_t a[16];
	uint16_t port;
	int family;
	size_t i;

	if (p == NULL || !p->finished ||
	    (family = addr_norm(sa, salen, a, &port)) == 0)
		return NULL;
	for (i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (rule_test(r, dir, family, a, port) == POLICY_HIT)
			return r;
	}
	return NULL;
}

size_t
policy_nrules(const struct policy *p)
{
	return p->nrules;
}

const struct policy_rule *
policy_rule_at(const struct policy *p, size_t i)
{
	return i < p->nrules ? &p->rules[i] : NULL;
}

size_t
policy_nkeys(const struct policy *p)
{
	return p->nkeys;
}

const struct policy_key *
policy_key_at(const struct policy *p, size_t i)
{
	return i < p->nkeys ? p->keys[i] : NULL;
}

/* Same name, key bytes and line?  (Constant time in the key bytes.) */
static bool
key_equal(const struct policy_key *a, const struct policy_key *b)
{
	return strcmp(a->name, b->name) == 0 && a->line == b->line &&
	    sodium_memcmp(a->key, b->key, sizeof(a->key)) == 0;
}

static bool
rule_equal(const struct policy_rule *a, const struct policy_rule *b)
{
	int i;

	if (a->dir != b->dir || a->family != b->family ||
	    memcmp(a->addr, b->addr, sizeof(a->addr)) != 0 ||
	    a->prefix != b->prefix || a->port_lo != b->port_lo ||
	    a->port_hi != b->port_hi || a->plain != b->plain ||
	    a->nkeys != b->nkeys || a->cipher != b->cipher ||
	    a->mode != b->mode || a->timeout_ms != b->timeout_ms ||
	    a->line != b->line || strcmp(a->file, b->file) != 0)
		return false;
	for (i = 0; i < a->nkeys; i++)
		if (!key_equal(a->keys[i], b->keys[i]))
			return false;
	return true;
}

bool
policy_equal(const struct policy *a, const struct policy *b)
{
	size_t i;

	if (a->finished != b->finished || a->nrules != b->nrules ||
	    a->nkeys != b->nkeys)
		return false;
	for (i = 0; i < a->nkeys; i++)
		if (!key_equal(a->keys[i], b->keys[i]))
			return false;
	for (i = 0; i < a->nrules; i++)
		if (!rule_equal(&a->rules[i], &b->rules[i]))
			return false;
	return true;
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nkeys; i++) {
		struct policy_key *k = p->keys[i];

		sodium_memzero(k->key, sizeof(k->key));
		free(k->name);
		free(k->path);
		free(k->resolved);
		free(k);
	}
	for (i = 0; i < p->nrules; i++)
		rule_names_free(&p->rulekeys[i]);
	free(p->keys);
	free(p->rules);
	free(p->rulekeys);
	free(p->file);
	free(p->dir);
	free(p);
}

const char *
policy_format_addrports(const struct policy_rule *r,
    char buf[POLICY_ADDRPORTSLEN])
{
	char a[INET6_ADDRSTRLEN], pfx[8] = "", ports[16];

	if (r->port_lo == 0 && r->port_hi == 65535)
		snprintf(ports, sizeof(ports), "*");
	else if (r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), "%u", r->port_lo);
	else
		snprintf(ports, sizeof(ports), "%u-%u", r->port_lo, r->port_hi);

	if (r->family == 0) {
		snprintf(buf, POLICY_ADDRPORTSLEN, "*:%s", ports);
		return buf;
	}
	if (inet_ntop(r->family, r->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	if (r->prefix != (r->family == AF_INET ? 32 : 128))
		snprintf(pfx, sizeof(pfx), "/%d", r->prefix);
	if (r->family == AF_INET)
		snprintf(buf, POLICY_ADDRPORTSLEN, "%s%s:%s", a, pfx, ports);
	else
		snprintf(buf, POLICY_ADDRPORTSLEN, "[%s]%s:%s", a, pfx, ports);
	return buf;
}

const char *
policy_dir_name(enum policy_dir d)
{
	return d == POLICY_ACCEPT ? "accept" : "connect";
}

const char *
policy_cipher_name(enum policy_cipher c)
{
	switch (c) {
	case POLICY_CIPHER_CHACHAPOLY:
		return "chachapoly";
	case POLICY_CIPHER_AESGCM:
		return "aesgcm";
	default:
		return "default";
	}
}
