/*
 * policy_ident: public-key identities (DESIGN.md "Identities"):
 *
 *   identity NAME PATH      this host's private X25519 key, in the form of
 *                           `wg genkey` (a key file's form: keyfile.h)
 *   peer NAME PUBKEY|PATH   a known public key, `wg pubkey`'s form, written
 *                           here or in a file of its own
 *   include PATH            more key, identity and peer lines: a fleet's
 *                           peer list kept apart (a ConfigMap, a template)
 *
 * and the rule options that name them (identity=, peer=, peers=; parsed in
 * policy_rule.c).  Names are found and files read by policy_parse_finish(),
 * so a statement may follow the rules that use it.  An included file is
 * read at once, its lines parsed as its own (messages name it and its
 * line); paths in it, as everywhere, are relative to the policy file's
 * directory.  Includes nest INCLUDE_DEPTH deep; a file that includes
 * itself is refused.
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

static const struct policy_identity *
id_find(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nids; i++)
		if (strcmp(p->ids[i]->name, name) == 0)
			return p->ids[i];
	return NULL;
}

static const struct policy_peer *
peer_find(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->npeers; i++)
		if (strcmp(p->peers[i]->name, name) == 0)
			return p->peers[i];
	return NULL;
}

/* NAME then one more word (the value) and nothing after: 0 or -EINVAL. */
static int
two_words(struct policy *p, const char *stmt, char *rest, char **name,
    char **value, int lineno, char err[POLICY_ERRLEN])
{
	char *extra;

	if ((*name = next_word(&rest)) == NULL)
		return perr(p, lineno, err, "%s: missing NAME", stmt);
	if (!name_valid(*name, strlen(*name)))
		return perr(p, lineno, err, "%s: bad name `%.64s' (letters, "
		    "digits, `_', `-', `.'; at most %d)", stmt, *name,
		    NAME_MAX_LEN);
	if ((*value = next_word(&rest)) == NULL)
		return perr(p, lineno, err, "%s %s: missing %s", stmt, *name,
		    strcmp(stmt, "peer") == 0 ? "PUBKEY or PATH" : "PATH");
	if ((extra = next_word(&rest)) != NULL)
		return perr(p, lineno, err, "%s %s: unexpected `%.64s'", stmt,
		    *name, extra);
	return 0;
}

static const char *
cur_file(const struct policy *p)
{
	return p->cur != NULL ? p->cur : p->file;
}

int
parse_identity(struct policy *p, char *rest, int lineno,
    char err[POLICY_ERRLEN])
{
	const struct policy_identity *old;
	struct policy_identity *id;
	char *name, *path, where[PATH_MAX + 16];
	int rc;

	if ((rc = two_words(p, "identity", rest, &name, &path, lineno,
	    err)) != 0)
		return rc;
	if ((old = id_find(p, name)) != NULL)
		return perr(p, lineno, err, "duplicate identity `%s' (first "
		    "defined at %s)", name, perr_where(p, old->file, old->line,
		    where, sizeof(where)));
	if (grow(&p->ids, &p->capids, p->nids, sizeof(*p->ids)) != 0 ||
	    (id = calloc(1, sizeof(*id))) == NULL)
		return perr_nomem(p, lineno, err);
	id->line = lineno;
	id->file = cur_file(p);
	if ((id->name = strdup(name)) == NULL ||
	    (id->path = strdup(path)) == NULL) {
		free(id->name);
		free(id);
		return perr_nomem(p, lineno, err);
	}
	p->ids[p->nids++] = id;
	return 0;
}

int
parse_peer(struct policy *p, char *rest, int lineno, char err[POLICY_ERRLEN])
{
	const struct policy_peer *old;
	struct policy_peer *pe;
	char *name, *value, where[PATH_MAX + 16];
	uint8_t pk[POLICY_KEYLEN];
	bool inline_key;
	int rc;

	if ((rc = two_words(p, "peer", rest, &name, &value, lineno, err)) != 0)
		return rc;
	if ((old = peer_find(p, name)) != NULL)
		return perr(p, lineno, err, "duplicate peer `%s' (first "
		    "defined at %s)", name, perr_where(p, old->file, old->line,
		    where, sizeof(where)));
	/* A public key written here is 44 base64 characters; anything else
	 * is the path of a file that holds one. */
	inline_key = keyfile_parse(value, strlen(value), pk) == 0;
	if (grow(&p->peers, &p->cappeers, p->npeers, sizeof(*p->peers)) != 0 ||
	    (pe = calloc(1, sizeof(*pe))) == NULL)
		return perr_nomem(p, lineno, err);
	pe->line = lineno;
	pe->file = cur_file(p);
	if (inline_key)
		memcpy(pe->pk, pk, sizeof(pk));
	if ((pe->name = strdup(name)) == NULL ||
	    (!inline_key && (pe->path = strdup(value)) == NULL)) {
		free(pe->name);
		free(pe);
		return perr_nomem(p, lineno, err);
	}
	p->peers[p->npeers++] = pe;
	return 0;
}

int
parse_include(struct policy *p, char *rest, int lineno,
    char err[POLICY_ERRLEN])
{
	const char *saved = p->cur;
	char *path, *extra, *file = NULL, *buf = NULL, **nf;
	size_t len, i;
	int rc;

	if ((path = next_word(&rest)) == NULL)
		return perr(p, lineno, err, "include: missing PATH");
	if ((extra = next_word(&rest)) != NULL)
		return perr(p, lineno, err, "include: unexpected `%.64s' after "
		    "PATH", extra);
	if (p->depth >= INCLUDE_DEPTH)
		return perr(p, lineno, err, "include %s: nested more than %d "
		    "deep", path, INCLUDE_DEPTH);
	if ((rc = expand_path(p, cur_file(p), lineno, "include", path, &file,
	    err)) != 0)
		return rc;
	if (strcmp(file, p->file) == 0)
		goto loop;
	for (i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i], file) == 0)
			goto loop;
	if ((rc = policy_slurp(file, &buf, &len)) != 0) {
		perr(p, lineno, err, "include %s: %s", file, strerror(-rc));
		free(file);
		return rc;
	}
	if ((nf = reallocarray(p->files, p->nfiles + 1, sizeof(*nf))) == NULL) {
		free(file);
		free(buf);
		return perr_nomem(p, lineno, err);
	}
	p->files = nf;
	p->files[p->nfiles++] = file;
	p->cur = file;
	p->depth++;
	rc = policy_parse_buf(p, buf, len, err);
	p->depth--;
	p->cur = saved;
	free(buf);
	return rc;
loop:
	rc = perr(p, lineno, err, "include %s: already read (an include "
	    "loop?)", file);
	free(file);
	return rc;
}

int
ident_resolve(struct policy *p, struct policy_rule *r,
    const struct rule_names *rn, char err[POLICY_ERRLEN])
{
	const struct policy_peer *pe;
	size_t i;
	int j;

	for (j = 0; j < r->nids; j++)
		if ((r->ids[j] = id_find(p, rn->id[j])) == NULL)
			return perr_at(r->file, r->line, err, "undefined "
			    "identity `%s'", rn->id[j]);
	if (rn->peer != NULL && (r->peer = peer_find(p, rn->peer)) == NULL)
		return perr_at(r->file, r->line, err, "undefined peer `%s'",
		    rn->peer);
	if (r->npeers == 0)
		return 0;
	free(r->peers);
	if ((r->peers = calloc(r->npeers, sizeof(*r->peers))) == NULL) {
		perr_at(r->file, r->line, err, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < r->npeers; i++) {
		if ((pe = peer_find(p, rn->peers[i])) == NULL)
			return perr_at(r->file, r->line, err, "undefined peer "
			    "`%s'", rn->peers[i]);
		r->peers[i] = pe;
	}
	return 0;
}

/* Read one identity or peer file into KEY; 0 or a negative errno. */
static int
read_one(struct policy *p, const char *file, int line, const char *what,
    const char *path, char **resolved, uint8_t key[POLICY_KEYLEN],
    char err[POLICY_ERRLEN])
{
	char msg[128];
	int rc;

	free(*resolved);
	*resolved = NULL;
	if ((rc = expand_path(p, file, line, what, path, resolved, err)) != 0)
		return rc;
	if ((rc = keyfile_read(*resolved, key, msg, sizeof(msg))) != 0)
		perr_at(file, line, err, "%s: %s: %s", what, *resolved, msg);
	return rc;
}

int
ident_read(struct policy *p, char err[POLICY_ERRLEN])
{
	char what[NAME_MAX_LEN + 16];
	size_t i;
	int rc;

	for (i = 0; i < p->nids; i++) {
		struct policy_identity *id = p->ids[i];

		snprintf(what, sizeof(what), "identity %s", id->name);
		if ((rc = read_one(p, id->file, id->line, what, id->path,
		    &id->resolved, id->sk, err)) != 0)
			return rc;
		/* X25519 clamps any 32 bytes (wg genkey's are clamped). */
		(void)crypto_scalarmult_base(id->pk, id->sk);
		keyfile_pub_fingerprint(id->pk, id->fpr);
	}
	for (i = 0; i < p->npeers; i++) {
		struct policy_peer *pe = p->peers[i];

		if (pe->path == NULL)
			continue;
		snprintf(what, sizeof(what), "peer %s", pe->name);
		if ((rc = read_one(p, pe->file, pe->line, what, pe->path,
		    &pe->resolved, pe->pk, err)) != 0)
			return rc;
	}
	return 0;
}

void
ident_free(struct policy *p)
{
	size_t i;

	for (i = 0; i < p->nids; i++) {
		sodium_memzero(p->ids[i]->sk, sizeof(p->ids[i]->sk));
		free(p->ids[i]->name);
		free(p->ids[i]->path);
		free(p->ids[i]->resolved);
		free(p->ids[i]);
	}
	for (i = 0; i < p->npeers; i++) {
		sodium_memzero(p->peers[i]->ss_cache,
		    sizeof(p->peers[i]->ss_cache));
		free(p->peers[i]->name);
		free(p->peers[i]->path);
		free(p->peers[i]->resolved);
		free(p->peers[i]);
	}
	free(p->ids);
	free(p->peers);
}

static bool
peer_equal(const struct policy_peer *a, const struct policy_peer *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a->name, b->name) == 0 &&
	    memcmp(a->pk, b->pk, sizeof(a->pk)) == 0;
}

/* Same identities (by key), the same peers in the same order? */
bool
ident_rule_equal(const struct policy_rule *a, const struct policy_rule *b)
{
	size_t i;
	int j;

	if (a->nids != b->nids || a->npeers != b->npeers ||
	    !peer_equal(a->peer, b->peer))
		return false;
	for (j = 0; j < a->nids; j++)
		if (strcmp(a->ids[j]->name, b->ids[j]->name) != 0 ||
		    sodium_memcmp(a->ids[j]->sk, b->ids[j]->sk,
		    sizeof(a->ids[j]->sk)) != 0)
			return false;
	for (i = 0; i < a->npeers; i++)
		if (!peer_equal(a->peers[i], b->peers[i]))
			return false;
	return true;
}

size_t
policy_nidentities(const struct policy *p)
{
	return p->nids;
}

const struct policy_identity *
policy_identity_at(const struct policy *p, size_t i)
{
	return i < p->nids ? p->ids[i] : NULL;
}

size_t
policy_npeers(const struct policy *p)
{
	return p->npeers;
}

const struct policy_peer *
policy_peer_at(const struct policy *p, size_t i)
{
	return i < p->npeers ? p->peers[i] : NULL;
}

const uint8_t *
policy_ss(const struct policy_identity *id, const struct policy_peer *cpe,
    uint8_t tmp[POLICY_KEYLEN])
{
	/* The cache is the one mutable part of a loaded policy. */
	struct policy_peer *pe = (struct policy_peer *)cpe;
	size_t i;
	int z;

	for (i = 0; i < 2; i++)
		if (__atomic_load_n(&pe->ss_cache[i].ready, __ATOMIC_ACQUIRE) ==
		    2 && pe->ss_cache[i].id == id)
			return pe->ss_cache[i].ss;
	if (crypto_scalarmult(tmp, id->sk, pe->pk) != 0)
		return NULL;
	for (i = 0; i < 2; i++) {
		z = 0;
		if (__atomic_compare_exchange_n(&pe->ss_cache[i].ready, &z, 1,
		    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			memcpy(pe->ss_cache[i].ss, tmp, POLICY_KEYLEN);
			pe->ss_cache[i].id = id;
			__atomic_store_n(&pe->ss_cache[i].ready, 2,
			    __ATOMIC_RELEASE);
			break;
		}
	}
	return tmp;
}

bool
policy_rule_admits(const struct policy_rule *r,
    const uint8_t pk[POLICY_KEYLEN])
{
	size_t i;

	for (i = 0; i < r->npeers; i++)
		if (sodium_memcmp(r->peers[i]->pk, pk, POLICY_KEYLEN) == 0)
			return true;
	return false;
}

size_t
policy_nfiles(const struct policy *p)
{
	size_t i, n = p->nfiles + p->nkeys + p->nids;

	for (i = 0; i < p->npeers; i++)
		n += p->peers[i]->resolved != NULL;
	return n;
}

const char *
policy_file_at(const struct policy *p, size_t i)
{
	size_t j;

	if (i < p->nfiles)
		return p->files[i];
	i -= p->nfiles;
	if (i < p->nkeys)
		return p->keys[i]->resolved;
	i -= p->nkeys;
	if (i < p->nids)
		return p->ids[i]->resolved;
	i -= p->nids;
	for (j = 0; j < p->npeers; j++)
		if (p->peers[j]->resolved != NULL && i-- == 0)
			return p->peers[j]->resolved;
	return NULL;
}
