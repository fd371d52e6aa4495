/*
 * stats: see stats.h; the file's layout is stats_file.h, its life in
 * this process (made, forked, exec'd, removed) stats_file.c.
 *
 * Counting.  A relaxed atomic add to a word of the mapping: no system call
 * on the data path.  A rule's counters are in a slot named FILE:LINE, so
 * a reload that keeps a rule where it was keeps counting into the same
 * slot; a session remembers its slot number (stats_slot()), valid for the
 * life of this image.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keyfile.h"
#include "policy.h"
#include "reason.h"
#include "stats.h"
#include "stats_file.h"
#include "stats_int.h"

static void
add(uint64_t *w, uint64_t n)
{
	__atomic_fetch_add(w, n, __ATOMIC_RELAXED);
}

static void
key_entry(struct stats_key *k, const char *kind, const char *name,
    const char *path, const uint8_t *key, bool pub)
{
	struct stat sb;

	snprintf(k->kind, sizeof(k->kind), "%s", kind);
	snprintf(k->name, sizeof(k->name), "%s", name);
	if (pub)
		keyfile_pub_fingerprint(key, k->fpr);
	else
		keyfile_fingerprint(key, k->fpr);
	k->mtime = path != NULL && stat(path, &sb) == 0 ? sb.st_mtime : 0;
}

void
stats_policy(const struct policy *p, bool reloaded)
{
	static int writing;     /* a spin lock: a reload and stats_need() */
	struct stats_file *f = stats_own();
	size_t i, n = 0;
	int saved = errno;

	if (f == NULL)
		return;
	while (__atomic_exchange_n(&writing, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	__atomic_store_n(&f->keys_gen, f->keys_gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (i = 0; i < policy_nkeys(p) && n < STATS_KEYS; i++) {
		const struct policy_key *k = policy_key_at(p, i);

		key_entry(&f->keys[n++], "key", k->name, k->resolved, k->key,
		    false);
	}
	for (i = 0; i < policy_nidentities(p) && n < STATS_KEYS; i++) {
		const struct policy_identity *id = policy_identity_at(p, i);

		key_entry(&f->keys[n++], "identity", id->name, id->resolved,
		    id->pk, true);
	}
	for (i = 0; i < policy_npeers(p) && n < STATS_KEYS; i++) {
		const struct policy_peer *pe = policy_peer_at(p, i);

		key_entry(&f->keys[n++], "peer", pe->name, pe->resolved,
		    pe->pk, true);
	}
	f->nkeys = (uint32_t)n;
	f->loaded = time(NULL);
	if (reloaded)
		add(&f->reloads, 1);
	__atomic_store_n(&f->keys_gen, f->keys_gen + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&writing, 0, __ATOMIC_RELEASE);
	errno = saved;
}

void
stats_reload_failed(void)
{
	struct stats_file *f = stats_own();

	if (f != NULL)
		add(&f->reload_failures, 1);
}

static bool
slot_is(const struct stats_rule *r, const struct policy_rule *rule,
    const char *name)
{
	return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ==
	    STATS_SLOT_READY && r->dir == (uint32_t)rule->dir &&
	    strcmp(r->name, name) == 0;
}

/*
 * A slot claimed twice for one rule by two threads at once is harmless:
 * the reader adds slots of the same name.  The last slot is "other", for
 * the rules beyond the table.
 */
int
stats_slot(const struct policy_rule *rule)
{
	struct stats_file *f;
	struct stats_rule *r;
	char name[STATS_NAMELEN];
	uint32_t i, n;

	/* A sealing rule's connection: something to count. */
	stats_need(NULL);
	if ((f = stats_cur()) == NULL || rule == NULL)
		return -1;
	snprintf(name, sizeof(name), "%s:%d", rule->file, rule->line);
	n = __atomic_load_n(&f->nrules, __ATOMIC_ACQUIRE);
	for (i = 0; i < n && i < STATS_RULES - 1; i++)
		if (slot_is(&f->rules[i], rule, name))
			return (int)i;
	i = __atomic_fetch_add(&f->nrules, 1, __ATOMIC_ACQ_REL);
	if (i >= STATS_RULES - 1) {
		i = STATS_RULES - 1;
		r = &f->rules[i];
		if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ==
		    STATS_SLOT_READY)
			return (int)i;
		snprintf(name, sizeof(name), "other");
	}
	r = &f->rules[i];
	__atomic_store_n(&r->state, STATS_SLOT_BUSY, __ATOMIC_RELAXED);
	r->dir = (uint32_t)rule->dir;
	memcpy(r->name, name, sizeof(r->name));
	__atomic_store_n(&r->state, STATS_SLOT_READY, __ATOMIC_RELEASE);
	return (int)i;
}

/* Slot SLOT of the file counts go to now, or NULL. */
static struct stats_rule *
slot_of(int slot)
{
	struct stats_file *f = stats_cur();

	return f != NULL && slot >= 0 && slot < STATS_RULES ?
	    &f->rules[slot] : NULL;
}

void
stats_handshakes(int delta)
{
	struct stats_file *f = stats_cur();

	if (f != NULL)
		add(&f->handshakes, (uint64_t)(int64_t)delta);
}

void
stats_conn_sealed(int slot, uint64_t hs_us)
{
	static const uint64_t bound[STATS_HIST] = STATS_HIST_MS;
	struct stats_rule *r = slot_of(slot);
	int b;

	if (r == NULL)
		return;
	add(&r->sealed, 1);
	add(&r->live, 1);
	for (b = 0; b < STATS_HIST && hs_us > bound[b] * 1000; b++)
		;
	add(&r->hs_hist[b], 1);
	add(&r->hs_sum_us, hs_us);
}

void
stats_conn_ended(int slot, int result, int reason)
{
	struct stats_rule *r = slot_of(slot);

	if (r == NULL)
		return;
	if (reason < 0 || reason >= REASON_COUNT)
		reason = REASON_NONE;
	add(&r->ended[result & (STATS_RESULTS - 1)][reason], 1);
}

void
stats_conn_gone(int slot)
{
	struct stats_rule *r = slot_of(slot);

	if (r != NULL)
		add(&r->live, (uint64_t)-1);
}

void
stats_bytes(int slot, uint64_t in, uint64_t out)
{
	struct stats_rule *r = slot_of(slot);

	if (r == NULL)
		return;
	if (in > 0)
		add(&r->bytes_in, in);
	if (out > 0)
		add(&r->bytes_out, out);
}
