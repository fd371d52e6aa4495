/*
 * reload_watch: see reload_watch.h; the design is in reload.c ("What",
 * "Settling").  A file's identity is what stat() gives after following
 * symlinks: device, inode, size, mtime and ctime to the nanosecond, so a
 * key replaced by rename (Vault agent) or by the swap of a `..data` symlink
 * (a Kubernetes Secret volume) shows up as another inode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reload.h"
#include "reload_watch.h"

struct reload_watch {
	size_t n;
	struct {
		char            *path;
		struct reload_id id;
		bool             racy;
	} e[];
};

/*
 * Was a file changed at CT (its ctime, real ns) too recently, seen at NOW,
 * to be read: not yet RELOAD_SETTLE_NS old?  A ctime further ahead than
 * that (the clock was set back) cannot be judged and counts as settled:
 * waiting for it would stall every decision until the clock caught up.
 */
bool
reload_young(int64_t ct, int64_t now)
{
	return ct > now - RELOAD_SETTLE_NS && ct <= now + RELOAD_SETTLE_NS;
}

void
reload_id_get(const char *path, struct reload_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) != 0) {
		id->err = errno;
		return;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtim = st.st_mtim;
	id->ctim = st.st_ctim;
}

bool
reload_id_same(const struct reload_id *a, const struct reload_id *b)
{
	if (a->err != 0 || b->err != 0)
		return a->err == b->err;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec &&
	    a->ctim.tv_sec == b->ctim.tv_sec &&
	    a->ctim.tv_nsec == b->ctim.tv_nsec;
}

bool
reload_id_racy(const struct reload_id *id, const struct timespec *t0)
{
	/* A missing file is judged by its error, which has no time. */
	if (id->err != 0)
		return false;
	return reload_young(ns(&id->ctim), ns(t0));
}

void
reload_watch_free(struct reload_watch *w)
{
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->n; i++)
		free(w->e[i].path);
	free(w);
}

/* The watch list for P, loaded from files read no earlier than T0. */
struct reload_watch *
reload_watch_new(const char *policy_path, const struct policy *p,
    const struct timespec *t0)
{
	struct reload_watch *w;
	size_t i, n = policy_nfiles(p) + 1;

	if ((w = calloc(1, sizeof(*w) + n * sizeof(w->e[0]))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *path = i == 0 ? policy_path :
		    policy_file_at(p, i - 1);

		if ((w->e[i].path = strdup(path)) == NULL) {
			reload_watch_free(w);
			return NULL;
		}
		w->n++;
		reload_id_get(path, &w->e[i].id);
		w->e[i].racy = reload_id_racy(&w->e[i].id, t0);
	}
	return w;
}

/*
 * Has a file on W changed since it was read (or was it racy then)?
 * *NEWEST: the latest ctime among the changed files that exist, real ns
 * (left alone if none).
 */
bool
reload_changed(const struct reload_watch *w, int64_t *newest)
{
	struct reload_id id;
	bool changed = false;
	size_t i;

	for (i = 0; i < w->n; i++) {
		reload_id_get(w->e[i].path, &id);
		if (!w->e[i].racy && reload_id_same(&id, &w->e[i].id))
			continue;
		changed = true;
		if (id.err == 0 && ns(&id.ctim) > *newest)
			*newest = ns(&id.ctim);
	}
	return changed;
}

/* After a failed load: W as that load found the files, so that only a
 * change after it counts (a broken file is not read at every decision). */
void
reload_watch_restat(struct reload_watch *w, const struct timespec *t0)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		reload_id_get(w->e[i].path, &w->e[i].id);
		w->e[i].racy = reload_id_racy(&w->e[i].id, t0);
	}
}
