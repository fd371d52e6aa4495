/*
 * stats: this process's counters, in its statistics file (stats_file.h)
 * for `sockseal stats`.  Counting is an atomic add into a shared mapping:
 * no system call, no lock.  Every function does nothing when the file
 * could not be made (no directory, no permission): statistics never stop
 * a program.
 */
#ifndef SOCKSEAL_STATS_H
#define SOCKSEAL_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct policy;
struct policy_rule;

/* stats_start(policy_path): where the file will be (once, at the shim's
 * start; no system call). */
void stats_start(const char *policy_path);

/* stats_need(p): this process has something to count or show: make its
 * file now if it has none (once; not in a sandbox), recording P's keys
 * (NULL: the policy in force). */
void stats_need(const struct policy *p);

/* The child of a fork: counts into its parent's file until it needs one
 * of its own (stats_need()). */
void stats_fork_child(void);

/* Did an earlier image of this process (before an exec) make its file?
 * (One that warned at start did: startwarn.c.) */
bool stats_earlier_image(void);

/* The process exits: remove its file. */
void stats_exit(void);

/* The policy now in force (at start and after each reload that changed
 * it): its keys, identities and peers by fingerprint and file age. */
void stats_policy(const struct policy *p, bool reloaded);
void stats_reload_failed(void);

/* The slot of RULE (a small number; -1: none), for stats_bytes(). */
int stats_slot(const struct policy_rule *rule);

void stats_handshakes(int delta);       /* in flight */
/* A handshake completed after HS_US microseconds: sealed, and live. */
void stats_conn_sealed(int slot, uint64_t hs_us);
/* A connection's outcome, once: RESULT (enum session_end) and REASON
 * (enum reason) when it failed, or how it ended. */
void stats_conn_ended(int slot, int result, int reason);
/* A sealed connection is gone: no longer live. */
void stats_conn_gone(int slot);
void stats_bytes(int slot, uint64_t in, uint64_t out);

#endif
