/*
 * reload_watch: the files a policy was read from, as stat() saw them
 * after the load, and whether they changed since (reload_watch.c).  The
 * settling rule lives here too: a file is read only once its own ctime is
 * RELOAD_SETTLE_NS in the past.  Internal to reload.c (and its test).
 */
#ifndef SOCKSEAL_RELOAD_WATCH_H
#define SOCKSEAL_RELOAD_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

#define RELOAD_SETTLE_NS   100000000ll  /* a change is read this old */

struct reload_watch;

static inline int64_t
ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000ll + (int64_t)ts->tv_nsec;
}

/* Was a file changed at CT (its ctime, real ns) too recently, seen at NOW,
 * to be read? */
bool reload_young(int64_t ct, int64_t now);

/* The watch list for P (loaded from POLICY_PATH and the files it names),
 * read no earlier than T0; NULL without memory. */
struct reload_watch *reload_watch_new(const char *policy_path,
    const struct policy *p, const struct timespec *t0);
void reload_watch_free(struct reload_watch *w);

/* Has a file on W changed since it was read (or was it racy then)?
 * *NEWEST: the latest ctime among the changed files that exist, real ns
 * (left alone if none). */
bool reload_changed(const struct reload_watch *w, int64_t *newest);

/* After a failed load: W as that load found the files. */
void reload_watch_restat(struct reload_watch *w, const struct timespec *t0);

#endif
