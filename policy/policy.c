/*
 * policy: parser and matcher (see policy.h for the contract, DESIGN.md for
 * the syntax).
 *
 * This file: the policy's life cycle (init, lines, finish, free, compare)
 * and the key statement; reading files and paths are policy_load.c's,
 * messages and words policy_util.c's, rules policy_rule.c's, identities,
 * peers and include policy_ident.c's, matching policy_match.c's.
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
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"

#include "policy.h"
#include "policy_int.h"

_Static_assert(sizeof(((struct policy_key *)0)->fpr) >= KEYFILE_FPRLEN &&
    sizeof(((struct policy_identity *)0)->fpr) >= KEYFILE_FPRLEN,
    "room for a fingerprint");

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
	char *name, *path, *extra, where[PATH_MAX + 16];

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
		    "defined at %s)", name, perr_where(p, old->file, old->line,
		    where, sizeof(where)));

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
	k->file = p->cur != NULL ? p->cur : p->file;
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
	else if (strcmp(w, "identity") == 0)
		rc = parse_identity(p, rest, lineno, err);
	else if (strcmp(w, "peer") == 0)
		rc = parse_peer(p, rest, lineno, err);
	else if (strcmp(w, "include") == 0)
		rc = parse_include(p, rest, lineno, err);
	else if (p->depth > 0 && (strcmp(w, "connect") == 0 ||
	    strcmp(w, "accept") == 0))
		rc = perr(p, lineno, err, "%s: an included file holds key, "
		    "identity, peer and include lines only", w);
	else if (strcmp(w, "connect") == 0)
		rc = parse_rule(p, POLICY_CONNECT, rest, lineno, err);
	else if (strcmp(w, "accept") == 0)
		rc = parse_rule(p, POLICY_ACCEPT, rest, lineno, err);
	else
		rc = perr(p, lineno, err, "unknown statement `%.64s' (expected "
		    "key, identity, peer, include, connect or accept)", w);
	free(buf);
	return rc;
}

int
policy_parse_finish(struct policy *p, char err[POLICY_ERRLEN])
{
	char msg[128], what[NAME_MAX_LEN + 8];
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
				return perr_at(r->file, r->line, err,
				    "undefined key `%s'", name);
		}
		if ((rc = ident_resolve(p, r, &p->rulekeys[i], err)) != 0)
			return rc;
	}

	for (i = 0; i < p->nkeys; i++) {
		struct policy_key *k = p->keys[i];

		free(k->resolved);
		k->resolved = NULL;
		snprintf(what, sizeof(what), "key %s", k->name);
		if ((rc = expand_path(p, k->file, k->line, what, k->path,
		    &k->resolved, err)) != 0)
			return rc;
		if ((rc = keyfile_read(k->resolved, k->key, msg,
		    sizeof(msg))) != 0) {
			perr_at(k->file, k->line, err, "key %s: %s: %s",
			    k->name, k->resolved, msg);
			return rc;
		}
		keyfile_fingerprint(k->key, k->fpr);
	}
	if ((rc = ident_read(p, err)) != 0)
		return rc;
	p->finished = true;
	return 0;
}

void
policy_parse_env(struct policy *p, policy_env_fn env, void *ctx)
{
	p->env = env;
	p->envctx = ctx;
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
	    strcmp(a->file, b->file) == 0 &&
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
	return ident_rule_equal(a, b);
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
	for (i = 0; i < p->nrules; i++) {
		rule_names_free(&p->rulekeys[i]);
		free(p->rules[i].peers);
	}
	ident_free(p);
	for (i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p->keys);
	free(p->rules);
	free(p->rulekeys);
	free(p->file);
	free(p->dir);
	free(p);
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
