/*
 * sockseal: the launcher.
 *
 *   sockseal [-f POLICY] [-v[v]] [--] CMD [ARGS...]
 *   sockseal doctor BINARY...       (doctor.c)
 *   sockseal explain [-f POLICY] [-v] connect|accept ADDR:PORT   (explain.c)
 *   sockseal systemd UNIT [-f POLICY] [--credential NAME=PATH]...
 *       [--install | --remove]                               (systemd.c)
 *
 * A first argument "doctor", "explain", "stats", "systemd" or "help" is
 * the subcommand; a
 * program of that name runs with `sockseal -- doctor ...`.  -h/--help and
 * help print the usage on stdout (exit 0), --version the build
 * (version.h); an unknown option prints the usage on stderr (exit 2).
 *
 * Finds libsockseal.so in SOCKSEAL_SHIMDIR first when the build set it (a
 * package's fixed location, `make deb`), then relative to this executable's
 * directory DIR (from /proc/self/exe): DIR/../lib/sockseal/ (the installed
 * layout, `make install`), then DIR itself (the build tree); validates the policy the shim will load (so a bad
 * policy fails here, with FILE:LINE: message, rather than in the program),
 * puts the shim into LD_PRELOAD and execs CMD.
 *
 * LD_PRELOAD: the shim goes first, existing entries after it; but a
 * sanitizer runtime already first (libasan/libtsan must be the first object
 * loaded) stays first and the shim goes right after it.
 *
 * Exit status: CMD's, or 1 (setup or policy error), 2 (usage), 127 (CMD
 * cannot be executed).  Nothing is printed on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "launcher.h"
#include "version.h"

#define PROG           LAUNCHER_PROG
#define SHIM_NAME      "libsockseal.so"
#define POLICY_DEFAULT LAUNCHER_POLICY_DEFAULT

static void
usage(FILE *f)
{
	fprintf(f, "usage: %s [-f POLICY] [-v[v]] [--] CMD [ARGS...]\n"
	    "       %s doctor BINARY...\n"
	    "       %s explain [-f POLICY] [-v] connect|accept ADDR:PORT\n"
	    "       %s stats [--json] [--dir DIR] [--keep] [-o FILE]\n"
	    "       %s systemd UNIT [-f POLICY] [--credential NAME=PATH]... "
	    "[--install|--remove]\n"
	    "       %s -h|--help|help, %s --version\n"
	    "  -f POLICY  policy file (sets SOCKSEAL_POLICY; default: "
	    "$SOCKSEAL_POLICY or " POLICY_DEFAULT ")\n"
	    "  -v         SOCKSEAL_LOG=info (-vv: debug) unless already set\n"
	    "  doctor     can the shim reach each BINARY? (0 yes, 1 no)\n"
	    "  explain    which rule matches a connection, and what happens\n"
	    "  stats      counters of the processes under the shim "
	    "(Prometheus, --json)\n"
	    "  systemd    a drop-in that seals the service UNIT (prints it, or "
	    "installs it)\n"
	    "  a program named doctor, explain, stats, systemd or help: "
	    "%s -- NAME ...\n",
	    PROG, PROG, PROG, PROG, PROG, PROG, PROG, PROG);
}

const char *
launcher_policy_path(const char *f)
{
	const char *p = f != NULL ? f : getenv("SOCKSEAL_POLICY");

	return p != NULL && *p != '\0' ? p : POLICY_DEFAULT;
}

/*
 * abs_path(in, out): IN made absolute against the current directory, with
 * symlinks kept (not realpath()): the shim re-reads the policy when it
 * changes, and a policy reached through a symlink (a Kubernetes ConfigMap
 * volume swaps its `..data` link) must stay reached through it.  Returns 0
 * or -ENAMETOOLONG (or getcwd()'s error).
 */
static int
abs_path(const char *in, char out[PATH_MAX])
{
	char cwd[PATH_MAX];
	int n;

	if (in[0] == '/')
		n = snprintf(out, PATH_MAX, "%s", in);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -errno;
	else
		n = snprintf(out, PATH_MAX, "%s/%s",
		    strcmp(cwd, "/") == 0 ? "" : cwd, in);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/*
 * find_shim(out): the absolute path of libsockseal.so, looked for in
 * SOCKSEAL_SHIMDIR (if built with one), then in ../lib/sockseal/ from the
 * directory of /proc/self/exe (installed), then in that directory itself
 * (build tree).  Returns 0, or -ENOENT after printing what was tried.
 */
static int
find_shim(char out[PATH_MAX])
{
	char exe[PATH_MAX], cand[3][PATH_MAX + 32];
	char *slash;
	ssize_t n;
	int i, nc = 0;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) == -1) {
		int e = errno;

		fprintf(stderr, "%s: /proc/self/exe: %s\n", PROG, strerror(e));
		return -e;
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
#ifdef SOCKSEAL_SHIMDIR
	snprintf(cand[nc++], sizeof(cand[0]), "%s", SOCKSEAL_SHIMDIR "/"
	    SHIM_NAME);
#endif
	snprintf(cand[nc++], sizeof(cand[0]), "%s/../lib/sockseal/" SHIM_NAME,
	    exe);
	snprintf(cand[nc++], sizeof(cand[0]), "%s/" SHIM_NAME, exe);
	for (i = 0; i < nc; i++)
		if (realpath(cand[i], out) != NULL && access(out, R_OK) == 0)
			return 0;
	fprintf(stderr, "%s: cannot find %s (looked for", PROG, SHIM_NAME);
	for (i = 0; i < nc; i++)
		fprintf(stderr, "%s %s", i == 0 ? "" : i == nc - 1 ? " and" :
		    ",", cand[i]);
	fprintf(stderr, ")\n");
	return -ENOENT;
}

static bool
is_sep(char c)
{
	return c == ' ' || c == ':' || c == '\t' || c == '\n';
}

/* Is the LD_PRELOAD entry [w, w+len) a sanitizer runtime? */
static bool
is_sanitizer(const char *w, size_t len)
{
	static const char *const names[] = {
		"libasan.so", "libtsan.so", "libclang_rt.asan", "libclang_rt.tsan",
	};
	const char *base = w;
	size_t i, blen, nlen;

	for (i = 0; i < len; i++)
		if (w[i] == '/')
			base = w + i + 1;
	blen = len - (size_t)(base - w);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		nlen = strlen(names[i]);
		/* libasan.so, libasan.so.8, libclang_rt.asan-x86_64.so */
		if (blen >= nlen && memcmp(base, names[i], nlen) == 0)
			return true;
	}
	return false;
}

/*
 * preload_value(shim, old): the new LD_PRELOAD, malloc'ed, or NULL when out
 * of memory.
 */
static char *
preload_value(const char *shim, const char *old)
{
	const char *w, *e;
	char *out;

	for (w = old ? old : ""; is_sep(*w); w++)
		;
	if (*w == '\0')
		return strdup(shim);
	for (e = w; *e != '\0' && !is_sep(*e); e++)
		;
	if (is_sanitizer(w, (size_t)(e - w))) {
		if (asprintf(&out, "%.*s %s%s", (int)(e - w), w, shim, e) == -1)
			return NULL;
	} else if (asprintf(&out, "%s %s", shim, w) == -1) {
		return NULL;
	}
	return out;
}

/* For the subcommands (launcher.h): the same search and the same paths. */
int
launcher_find_shim(char out[PATH_MAX])
{
	return find_shim(out);
}

int
launcher_abs_path(const char *in, char out[PATH_MAX])
{
	return abs_path(in, out);
}

static const struct option long_opts[] = {
	{ "help",    no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
warn_exposed(void *ctx, const char *file, int line, const char *what)
{
	(void)ctx;
	fprintf(stderr, "%s: %s:%d: warning: %s\n", PROG, file, line, what);
}

int
main(int argc, char **argv)
{
	char shim[PATH_MAX], polabs[PATH_MAX], err[POLICY_ERRLEN];
	const char *polpath;
	struct policy *p;
	char *preload;
	int c, e, verbose = 0;
	bool have_f = false;

	if (argc > 1 && strcmp(argv[1], "doctor") == 0)
		return doctor_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "explain") == 0)
		return explain_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "stats") == 0)
		return stats_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "systemd") == 0)
		return systemd_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "+f:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if ((e = abs_path(optarg, polabs)) != 0) {
				fprintf(stderr, "%s: %s: %s\n", PROG, optarg,
				    strerror(-e));
				return 1;
			}
			have_f = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			sockseal_print_version(stdout, PROG);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: missing command\n", PROG);
		usage(stderr);
		return 2;
	}

	if (find_shim(shim) != 0)
		return 1;
	if (strpbrk(shim, " :\t\n") != NULL) {
		fprintf(stderr, "%s: %s: LD_PRELOAD cannot carry a path with "
		    "spaces or colons\n", PROG, shim);
		return 1;
	}

	/* Fail fast on the policy the shim is about to load. */
	polpath = launcher_policy_path(have_f ? polabs : NULL);
	if (policy_load(polpath, &p, err) != 0) {
		if (access(polpath, F_OK) != 0)
			fprintf(stderr, "%s: no policy: %s\n  give one with -f "
			    "POLICY or SOCKSEAL_POLICY (see sockseal-policy(5))"
			    "\n", PROG, err);
		else
			fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Once, here: the program's shim says it again in its log. */
	(void)policy_exposed(p, warn_exposed, NULL);
	if (verbose)
		fprintf(stderr, "%s: policy %s: %zu rules, %zu keys; "
		    "preloading %s\n", PROG, polpath, policy_nrules(p),
		    policy_nkeys(p), shim);
	policy_free(p);

	if ((preload = preload_value(shim, getenv("LD_PRELOAD"))) == NULL ||
	    setenv("LD_PRELOAD", preload, 1) != 0 ||
	    (have_f && setenv("SOCKSEAL_POLICY", polabs, 1) != 0) ||
	    (verbose && setenv("SOCKSEAL_LOG", verbose > 1 ? "debug" : "info",
	    0) != 0)) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
		free(preload);
		return 1;
	}
	free(preload);

	execvp(argv[optind], argv + optind);
	fprintf(stderr, "%s: %s: %s\n", PROG, argv[optind], strerror(errno));
	return 127;
}
