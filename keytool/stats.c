/*
 * stats: `sockseal stats [--json] [--dir DIR] [--keep] [-o FILE]`: the
 * counters of every live shimmed process (shim/stats.c writes them),
 * summed by program and rule, in the Prometheus text format or as JSON.
 * DIR: --dir, else $SOCKSEAL_STATS_DIR, else /run/sockseal.  -o FILE
 * writes FILE whole or not at all (a temporary file renamed over it), as
 * node_exporter's textfile collector wants.  Files of processes that are
 * gone are removed, unless --keep.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"
#include "stats_agg.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s stats [--json] [--dir DIR] [--keep] [-o FILE]\n"
	    "  the counters of the live processes under the shim, by "
	    "program and rule\n"
	    "  --json     JSON instead of the Prometheus text format\n"
	    "  --dir DIR  where the processes keep them (default: "
	    "$SOCKSEAL_STATS_DIR or " STATS_DIR_DEF ")\n"
	    "  --keep     do not remove the files of processes that are gone\n"
	    "  -o FILE    write FILE atomically (for node_exporter's textfile "
	    "collector)\n", LAUNCHER_PROG);
}

static int
write_out(const char *out, const struct agg *a, int json)
{
	char tmp[4096];
	FILE *f = stdout;
	int bad;

	if (out != NULL) {
		if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out,
		    (long)getpid()) >= (int)sizeof(tmp) ||
		    (f = fopen(tmp, "w")) == NULL) {
			fprintf(stderr, "%s: stats: %s: %s\n", LAUNCHER_PROG,
			    out, strerror(errno));
			return 1;
		}
	}
	if (json)
		stats_print_json(f, a);
	else
		stats_print_prom(f, a);
	bad = ferror(f) != 0;
	if (out == NULL)
		return fflush(f) != 0 || bad;
	if (fclose(f) != 0 || bad || rename(tmp, out) != 0) {
		fprintf(stderr, "%s: stats: %s: %s\n", LAUNCHER_PROG, out,
		    strerror(errno));
		(void)unlink(tmp);
		return 1;
	}
	return 0;
}

int
stats_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("SOCKSEAL_STATS_DIR"), *out = NULL;
	int c, json = 0, keep = 0, rc;
	struct agg a;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'k':
			keep = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (dir == NULL || *dir == '\0')
		dir = STATS_DIR_DEF;
	if (stats_scan(dir, keep, &a) < 0)
		return 1;
	rc = write_out(out, &a, json);
	stats_agg_free(&a);
	return rc;
}
