/*
 * stats_int: between stats_file.c (the file's life) and stats.c (the
 * counting).  Internal to the two.
 */
#ifndef SOCKSEAL_STATS_INT_H
#define SOCKSEAL_STATS_INT_H

struct stats_file;

/* Where counts go now: this process's file, its parent's, or NULL. */
struct stats_file *stats_cur(void);
/* This process's own file, or NULL (process-wide values go only there). */
struct stats_file *stats_own(void);

#endif
