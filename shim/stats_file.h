/*
 * stats_file: the layout of a process's statistics file, written by the
 * shim (stats.c) and read by `sockseal stats` (keytool/stats.c).  Both are
 * built from the same tree, and the reader refuses a file whose magic,
 * version or size is not its own, so the layout may change between
 * releases (bump STATS_VERSION).
 *
 * One file per process: DIR/PID.stats (DIR: $SOCKSEAL_STATS_DIR, default
 * /run/sockseal), mode 0644, made at the shim's start and mapped shared;
 * the file descriptor is closed at once.  Every counter is a 64-bit word
 * changed with an atomic add (relaxed): the reader sees each one whole,
 * never a consistent set, which Prometheus counters do not need.  The
 * slots and the key table are text written once before they are marked
 * ready (a release store of the state or an even generation); the reader
 * takes only what is ready.
 *
 * The file is the process's while pid (and start time, against reuse of
 * the number) is alive and runs the same executable; the shim removes it
 * when the process exits, and `sockseal stats` the files of processes
 * that died or exec'd another program without the shim.
 */
#ifndef SOCKSEAL_STATS_FILE_H
#define SOCKSEAL_STATS_FILE_H

#include <stdint.h>

#include "reason.h"

#define STATS_MAGIC     "SKSLSTAT"
#define STATS_VERSION   1
#define STATS_DIR_DEF   "/run/sockseal"
#define STATS_SUFFIX    ".stats"

#define STATS_RULES     32      /* rule slots; the last is "other" */
#define STATS_KEYS      32      /* keys, identities, peers in force */
#define STATS_RESULTS   4       /* enum session_end */
#define STATS_NAMELEN   224     /* "FILE:LINE" */
#define STATS_HIST      13      /* handshake time buckets, + the rest */

/* The upper bounds of the handshake time buckets, in milliseconds. */
#define STATS_HIST_MS { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, \
	5000, 10000 }

enum stats_slot_state { STATS_SLOT_FREE = 0, STATS_SLOT_BUSY,
	STATS_SLOT_READY };

struct stats_rule {
	uint32_t state;                 /* enum stats_slot_state */
	uint32_t dir;                   /* enum policy_dir */
	char     name[STATS_NAMELEN];   /* "FILE:LINE" ("other": overflow) */
	uint64_t sealed;                /* handshakes completed */
	uint64_t live;                  /* sealed and not ended (a gauge
	                                 * in two's complement: after a
	                                 * fork one process may end what
	                                 * another sealed) */
	uint64_t ended[STATS_RESULTS][REASON_COUNT];   /* by result, code */
	uint64_t hs_hist[STATS_HIST + 1];       /* not cumulative */
	uint64_t hs_sum_us;
	uint64_t bytes_in, bytes_out;   /* the program's plaintext */
};

struct stats_key {
	char     kind[12];              /* "key", "identity", "peer" */
	char     name[64];
	char     fpr[64];               /* SHA256:... */
	int64_t  mtime;                 /* the file's, Unix seconds (0:
	                                 * written inline) */
};

struct stats_file {
	char     magic[8];              /* STATS_MAGIC */
	uint32_t version;               /* STATS_VERSION */
	uint32_t size;                  /* sizeof(struct stats_file) */
	int32_t  pid;
	uint32_t pad0;
	uint64_t start_ticks;           /* /proc/PID/stat field 22 */
	uint64_t exe_dev, exe_ino;      /* /proc/PID/exe: an exec into
	                                 * another program leaves the file
	                                 * to the reader to remove */
	int64_t  started;               /* Unix seconds */
	char     program[64];           /* program_invocation_short_name */
	char     policy[256];           /* the policy file in force */
	uint64_t handshakes;            /* in flight: a gauge */
	uint64_t reloads;               /* successful, changed something */
	uint64_t reload_failures;
	int64_t  loaded;                /* the policy in force since, Unix s */
	uint32_t keys_gen;              /* odd while the table is written */
	uint32_t nkeys;
	struct stats_key keys[STATS_KEYS];
	uint32_t nrules;                /* slots claimed (may exceed) */
	uint32_t pad1;
	struct stats_rule rules[STATS_RULES];
};

/* stats_stat_start(text): field 22 of a /proc/PID/stat line (when the
 * process started, in clock ticks); 0 if it cannot be read. */
uint64_t stats_stat_start(const char *stat);

#endif
