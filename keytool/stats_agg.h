/*
 * stats_agg: what `sockseal stats` gathered from the statistics files of
 * the live shimmed processes (stats_scan.c), summed by program and rule,
 * for the printers (stats_out.c).  Internal to the two.
 */
#ifndef SOCKSEAL_STATS_AGG_H
#define SOCKSEAL_STATS_AGG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "stats_file.h"

struct agg_rule {
	char     program[64];
	char     name[STATS_NAMELEN];
	uint32_t dir;
	uint64_t sealed;
	int64_t  live;
	uint64_t ended[STATS_RESULTS][REASON_COUNT];
	uint64_t hs_hist[STATS_HIST + 1];
	uint64_t hs_sum_us;
	uint64_t bytes_in, bytes_out;
};

struct agg_key {
	char     program[64];
	char     kind[12], name[64], fpr[64];
	int64_t  mtime;                 /* the newest seen; 0 inline */
};

struct agg_prog {
	char     program[64];
	unsigned processes;
	int64_t  handshakes;
	uint64_t reloads, reload_failures;
	char     policy[256];           /* the last process's */
	int64_t  loaded;                /* the newest */
	int32_t  pids[64];              /* the first of its processes */
};

struct agg {
	time_t           now;
	unsigned         removed;       /* dead processes' files */
	size_t           nprog, nrule, nkey;
	struct agg_prog *prog;
	struct agg_rule *rule;
	struct agg_key  *key;
};

/* Read every live process's file in DIR into A (files of dead ones are
 * removed unless KEEP).  0, or -1 with a message on stderr. */
int stats_scan(const char *dir, int keep, struct agg *a);
void stats_agg_free(struct agg *a);

/* The Prometheus text exposition format, or JSON, on F. */
void stats_print_prom(FILE *f, const struct agg *a);
void stats_print_json(FILE *f, const struct agg *a);

#endif
