/*
 * systemd: `sockseal systemd UNIT [-f POLICY] [--credential NAME=PATH]...
 * [--install | --remove]`: a drop-in that seals a systemd service.
 *
 * The drop-in (printed, or written to DIR/UNIT.d/sockseal.conf, DIR being
 * $SOCKSEAL_SYSTEMD_DIR or /etc/systemd/system) sets what `sockseal --`
 * would: LD_PRELOAD (the shim the launcher finds, launcher_find_shim())
 * and SOCKSEAL_POLICY (absolute).  Each --credential becomes a
 * LoadCredential=NAME:PATH, which the service sees as
 * $CREDENTIALS_DIRECTORY/NAME.  ExecPaths= names the shim: a unit with
 * NoExecPaths= (Debian's redis-server) could not map it otherwise, and the
 * loader ignores a preload it cannot map, which would run the service
 * unsealed; ExecPaths= of a missing file fails the start instead.
 * ReadWritePaths=-/run/sockseal keeps the shim's statistics directory
 * writable under ProtectSystem=strict ('-': a missing one is harmless).
 *
 * The policy is checked first, with the launcher's loader, and a bad one
 * is an error (FILE:LINE).  Its ${CREDENTIALS_DIRECTORY}/NAME paths exist
 * only inside the service, so the check expands CREDENTIALS_DIRECTORY to a
 * temporary view: a directory of symlinks NAME -> PATH, removed after.
 * Messages name ${CREDENTIALS_DIRECTORY} instead of the view.  Warnings: a
 * credential no file of the policy reads through the view, and a file the
 * policy reads directly that a credential passes too (inside a hardened
 * service the direct path may be unreadable).
 *
 * Values are written as systemd reads them: '%' doubled (specifiers);
 * paths with white space, quotes, backslashes or control characters are
 * refused rather than quoted.  --install writes through a temporary file
 * and rename(), mode 0644, and leaves an identical file alone; --remove
 * deletes the file and the UNIT.d directory if that leaves it empty, and
 * succeeds (saying so) when there is nothing to remove.  Both run
 * `systemctl daemon-reload` only where systemd runs (/run/systemd/system).
 *
 * Exit status: 0 done, 1 error (policy, credential file, unit file,
 * daemon-reload), 2 usage (options, a bad UNIT or NAME=PATH).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy.h"
#include "launcher.h"

#define PROG        LAUNCHER_PROG
#define SD_DIR      "/etc/systemd/system"
#define SD_CONF     "sockseal.conf"
#define SD_RUNNING  "/run/systemd/system"
#define SD_STATS    "/run/sockseal"
#define SD_MAXCRED  32
#define SD_UNITMAX  256         /* systemd's UNIT_NAME_MAX, with the NUL */

extern char **environ;

struct sd_cred {
	char            name[SD_UNITMAX];
	char            path[PATH_MAX];
};

struct sd {
	char            unit[SD_UNITMAX];
	char            policy[PATH_MAX];
	char            shim[PATH_MAX];
	char            view[PATH_MAX]; /* "" until made */
	size_t          ncred;
	struct sd_cred  cred[SD_MAXCRED];
};

static void
systemd_usage(FILE *f)
{
	fprintf(f, "usage: %s systemd UNIT [-f POLICY] [--credential NAME=PATH]"
	    "...\n"
	    "           [--install | --remove]\n"
	    "  prints a drop-in that preloads the shim into the service UNIT\n"
	    "  (UNIT without a suffix: UNIT.service)\n"
	    "  -f POLICY     the policy (default: $SOCKSEAL_POLICY or "
	    LAUNCHER_POLICY_DEFAULT ")\n"
	    "  --credential  LoadCredential=NAME:PATH: the service reads the "
	    "file as\n"
	    "                ${CREDENTIALS_DIRECTORY}/NAME (NAME: letters, "
	    "digits, . _ - @ +)\n"
	    "  --install     write it to DIR/UNIT.d/" SD_CONF " (DIR: "
	    "$SOCKSEAL_SYSTEMD_DIR\n"
	    "                or " SD_DIR ") and run systemctl daemon-reload\n"
	    "  --remove      delete that file (exit 0 if there is none)\n",
	    PROG);
}

/* Characters systemd allows in a unit name. */
static bool
unit_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr(":-_.\\@", c) != NULL;
}

/*
 * unit_name(arg, out): ARG as a service unit name, ".service" added when
 * it has no unit suffix.  0, or -EINVAL after saying why.
 */
static int
unit_name(const char *arg, char out[SD_UNITMAX])
{
	static const char *const other[] = { ".socket", ".target", ".timer",
	    ".mount", ".automount", ".swap", ".path", ".slice", ".scope",
	    ".device" };
	const char *s, *why = NULL, *at;
	size_t i, n = strlen(arg);

	for (s = arg; *s != '\0' && why == NULL; s++)
		if (!unit_char(*s))
			why = *s == '/' ? "a unit name has no '/'" :
			    "characters systemd allows: letters, digits, : - _ . "
			    "\\ @";
	if (why == NULL && (n == 0 || arg[0] == '.' || arg[0] == '@'))
		why = "empty name";
	if (why == NULL && strstr(arg, "..") != NULL)
		why = "'..' in the name";
	if (why == NULL && (at = strchr(arg, '@')) != NULL &&
	    strchr(at + 1, '@') != NULL)
		why = "more than one '@'";
	for (i = 0; why == NULL && i < sizeof(other) / sizeof(other[0]); i++)
		if (n > strlen(other[i]) &&
		    strcmp(arg + n - strlen(other[i]), other[i]) == 0)
			why = "not a .service unit";
	if (why == NULL) {
		bool has = n > 8 && strcmp(arg + n - 8, ".service") == 0;

		if ((size_t)snprintf(out, SD_UNITMAX, "%s%s", arg,
		    has ? "" : ".service") >= SD_UNITMAX)
			why = "longer than systemd allows";
	}
	if (why == NULL)
		return 0;
	fprintf(stderr, "%s: systemd: bad unit name `%s': %s\n", PROG, arg, why);
	return -EINVAL;
}

/* Can PATH go into a unit file unquoted? */
static bool
value_ok(const char *path)
{
	const char *s;

	for (s = path; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '"' ||
		    *s == '\'' || *s == '\\')
			return false;
	return true;
}

/* An absolute path for a unit file into OUT; 0 or -1 after saying why. */
static int
path_arg(const char *what, const char *in, char out[PATH_MAX])
{
	int e;

	if ((e = launcher_abs_path(in, out)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, in, strerror(-e));
		return -1;
	}
	if (!value_ok(out)) {
		fprintf(stderr, "%s: systemd: %s %s: a path with white space, "
		    "quotes or backslashes is not supported\n", PROG, what, out);
		return -1;
	}
	return 0;
}

/* --credential NAME=PATH into C.  0, or 2 (malformed) or 1 (PATH) after
 * saying why. */
static int
cred_arg(const char *arg, struct sd_cred *c)
{
	const char *eq = strchr(arg, '='), *s;
	size_t n = eq != NULL ? (size_t)(eq - arg) : 0;
	struct stat st;

	for (s = arg; s < arg + n; s++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-@+", *s) == NULL)
			break;
	if (eq == NULL || n == 0 || n >= sizeof(c->name) || s != eq ||
	    (n <= 2 && strncmp(arg, "..", n) == 0) || eq[1] == '\0') {
		fprintf(stderr, "%s: systemd: --credential %s: want NAME=PATH, "
		    "NAME of letters, digits, . _ - @ +\n", PROG, arg);
		return 2;
	}
	memcpy(c->name, arg, n);
	c->name[n] = '\0';
	if (path_arg("credential", eq + 1, c->path) != 0)
		return 1;
	if (stat(c->path, &st) != 0) {
		fprintf(stderr, "%s: systemd: credential %s: %s: %s\n", PROG,
		    c->name, c->path, strerror(errno));
		return 1;
	}
	return 0;
}

/* ${VAR} for the check: CREDENTIALS_DIRECTORY is the view (unset without
 * credentials, as in the service), the rest this environment's. */
static const char *
view_getenv(const char *name, void *ctx)
{
	const struct sd *sd = ctx;

	if (strcmp(name, "CREDENTIALS_DIRECTORY") == 0)
		return sd->ncred > 0 ? sd->view : NULL;
	return getenv(name);
}

static void
view_remove(struct sd *sd)
{
	char link[PATH_MAX + SD_UNITMAX];
	size_t i;

	if (sd->view[0] == '\0')
		return;
	for (i = 0; i < sd->ncred; i++) {
		snprintf(link, sizeof(link), "%s/%s", sd->view, sd->cred[i].name);
		(void)unlink(link);
	}
	(void)rmdir(sd->view);
	sd->view[0] = '\0';
}

/* The view: a new directory of symlinks NAME -> PATH.  0 or -1. */
static int
view_make(struct sd *sd)
{
	char link[PATH_MAX + SD_UNITMAX];
	const char *tmp = getenv("TMPDIR");
	size_t i;

	if (sd->ncred == 0)
		return 0;
	if ((size_t)snprintf(sd->view, sizeof(sd->view), "%s/sockseal-creds."
	    "XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp") >=
	    sizeof(sd->view) || mkdtemp(sd->view) == NULL) {
		fprintf(stderr, "%s: systemd: temporary directory: %s\n", PROG,
		    strerror(errno));
		sd->view[0] = '\0';
		return -1;
	}
	for (i = 0; i < sd->ncred; i++) {
		snprintf(link, sizeof(link), "%s/%s", sd->view, sd->cred[i].name);
		if (symlink(sd->cred[i].path, link) != 0) {
			fprintf(stderr, "%s: systemd: credential %s: %s\n", PROG,
			    sd->cred[i].name, errno == EEXIST ? "given twice" :
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* MSG with the view's path shown as ${CREDENTIALS_DIRECTORY}, on stderr. */
static void
say(const struct sd *sd, const char *prefix, const char *msg)
{
	size_t vl = strlen(sd->view);
	const char *s = msg, *hit;

	fprintf(stderr, "%s", prefix);
	while (vl > 0 && (hit = strstr(s, sd->view)) != NULL) {
		fprintf(stderr, "%.*s${CREDENTIALS_DIRECTORY}", (int)(hit - s), s);
		s = hit + vl;
	}
	fprintf(stderr, "%s\n", s);
}

static void
warn_exposed(void *ctx, const char *file, int line, const char *what)
{
	char buf[PATH_MAX + POLICY_ERRLEN];

	snprintf(buf, sizeof(buf), "%s:%d: warning: %s", file, line, what);
	say(ctx, PROG ": ", buf);
}

/* Credentials the policy does not read through the view, and files it
 * reads directly that a credential passes too. */
static void
check_credentials(const struct sd *sd, const struct policy *p)
{
	char want[PATH_MAX + SD_UNITMAX], a[PATH_MAX], b[PATH_MAX];
	size_t i, j, vl = strlen(sd->view);
	const char *f;
	bool used;

	for (i = 0; i < sd->ncred; i++) {
		snprintf(want, sizeof(want), "%s/%s", sd->view, sd->cred[i].name);
		used = false;
		for (j = 0; j < policy_nfiles(p) && !used; j++)
			used = strcmp(policy_file_at(p, j), want) == 0;
		if (!used)
			fprintf(stderr, "%s: systemd: warning: credential %s (%s)"
			    " is not used: the policy names no "
			    "${CREDENTIALS_DIRECTORY}/%s\n", PROG,
			    sd->cred[i].name, sd->cred[i].path,
			    sd->cred[i].name);
	}
	for (j = 0; j < policy_nfiles(p); j++) {
		f = policy_file_at(p, j);
		if (strncmp(f, sd->view, vl) == 0 && f[vl] == '/')
			continue;
		if (realpath(f, a) == NULL)
			continue;
		for (i = 0; i < sd->ncred; i++)
			if (realpath(sd->cred[i].path, b) != NULL &&
			    strcmp(a, b) == 0)
				fprintf(stderr, "%s: systemd: warning: the policy "
				    "reads %s directly, which credential %s "
				    "passes too: name it ${CREDENTIALS_DIRECTORY}"
				    "/%s in the policy (the service may not be "
				    "able to read %s)\n", PROG, f,
				    sd->cred[i].name, sd->cred[i].name, f);
	}
}

/* Load the policy as the service's shim would.  0 or -1 (said). */
static int
policy_check(struct sd *sd)
{
	char err[POLICY_ERRLEN];
	struct policy *p;
	int rc = -1;

	if (view_make(sd) != 0)
		goto out;
	if (policy_load_env(sd->policy, view_getenv, sd, &p, err) != 0) {
		if (access(sd->policy, F_OK) != 0)
			fprintf(stderr, "%s: no policy: %s\n  give one with -f "
			    "POLICY or SOCKSEAL_POLICY (see sockseal-policy(5))"
			    "\n", PROG, err);
		else
			say(sd, "", err);
		if (sd->ncred == 0 && strstr(err, "CREDENTIALS_DIRECTORY"))
			fprintf(stderr, "  a service gets it from its "
			    "credentials: --credential NAME=PATH\n");
		goto out;
	}
	(void)policy_exposed(p, warn_exposed, sd);
	check_credentials(sd, p);
	policy_free(p);
	rc = 0;
out:
	view_remove(sd);
	return rc;
}

/* S with '%' doubled (systemd's specifiers). */
static void
put(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '%')
			fputc('%', f);
		fputc(*s, f);
	}
}

/* The drop-in's text, malloc'ed, or NULL (out of memory). */
static char *
dropin_text(const struct sd *sd, size_t *len)
{
	char *buf = NULL;
	FILE *f;
	size_t i;

	if ((f = open_memstream(&buf, len)) == NULL)
		return NULL;
	fprintf(f, "# Written by `%s systemd' (sockseal(1)) for %s:\n"
	    "# it preloads the sockseal shim, which seals the TCP connections "
	    "that\n# the policy names.  Environment=LD_PRELOAD replaces an "
	    "LD_PRELOAD\n# the unit sets itself.\n"
	    "# Remove with: %s systemd %s --remove\n"
	    "# (or delete this file, then: systemctl daemon-reload)\n"
	    "[Service]\nEnvironment=LD_PRELOAD=", PROG, sd->unit, PROG,
	    sd->unit);
	put(f, sd->shim);
	fprintf(f, "\nEnvironment=SOCKSEAL_POLICY=");
	put(f, sd->policy);
	if (sd->ncred > 0)
		fprintf(f, "\n# key files: ${CREDENTIALS_DIRECTORY}/NAME in the "
		    "service");
	for (i = 0; i < sd->ncred; i++) {
		fprintf(f, "\nLoadCredential=%s:", sd->cred[i].name);
		put(f, sd->cred[i].path);
	}
	fprintf(f, "\n# lets the loader map the shim under NoExecPaths=; if the "
	    "shim is\n# missing, the service does not start (rather than run "
	    "unsealed)\nExecPaths=");
	put(f, sd->shim);
	fprintf(f, "\n# the shim's statistics under ProtectSystem=strict\n"
	    "ReadWritePaths=-" SD_STATS "\n");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* DIR/UNIT.d and DIR/UNIT.d/sockseal.conf.  0 or -1 (said). */
static int
dropin_path(const struct sd *sd, char ddir[PATH_MAX], char file[PATH_MAX])
{
	const char *dir = getenv("SOCKSEAL_SYSTEMD_DIR");

	if (dir == NULL || *dir == '\0')
		dir = SD_DIR;
	if ((size_t)snprintf(ddir, PATH_MAX, "%s/%s.d", dir, sd->unit) >=
	    PATH_MAX || (size_t)snprintf(file, PATH_MAX, "%s/" SD_CONF,
	    ddir) >= PATH_MAX) {
		fprintf(stderr, "%s: systemd: %s: %s\n", PROG, dir,
		    strerror(ENAMETOOLONG));
		return -1;
	}
	return 0;
}

/* systemctl daemon-reload where systemd runs.  0 or 1 (said). */
static int
daemon_reload(void)
{
	char *argv[] = { "systemctl", "daemon-reload", NULL };
	pid_t pid;
	int e, st;

	if (access(SD_RUNNING, F_OK) != 0) {
		printf("systemd is not running here (no " SD_RUNNING "): run "
		    "`systemctl daemon-reload' where it runs\n");
		return 0;
	}
	fflush(stdout);
	if ((e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ)) != 0) {
		fprintf(stderr, "%s: systemctl: %s\n", PROG, strerror(e));
		return 1;
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			fprintf(stderr, "%s: systemctl: %s\n", PROG,
			    strerror(errno));
			return 1;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: systemctl daemon-reload failed\n", PROG);
		return 1;
	}
	printf("ran systemctl daemon-reload\n");
	return 0;
}

/* Is FILE's content TEXT already? */
static bool
same_content(const char *file, const char *text, size_t len)
{
	char *buf;
	bool same = false;
	FILE *f;

	if ((f = fopen(file, "re")) == NULL)
		return false;
	if ((buf = malloc(len + 1)) != NULL)
		same = fread(buf, 1, len + 1, f) == len &&
		    memcmp(buf, text, len) == 0;
	free(buf);
	fclose(f);
	return same;
}

static int
install(const struct sd *sd, const char *text, size_t len)
{
	char ddir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 32];
	int fd;

	if (dropin_path(sd, ddir, file) != 0)
		return 1;
	if (same_content(file, text, len)) {
		printf("%s is up to date: nothing to do\n", file);
		return 0;
	}
	if (mkdir(ddir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", PROG, ddir, strerror(errno));
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s/." SD_CONF ".XXXXXX", ddir);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, tmp, strerror(errno));
		return 1;
	}
	if (fchmod(fd, 0644) != 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, tmp, strerror(errno));
		(void)close(fd);
		goto err;
	}
	if (close(fd) != 0 || rename(tmp, file) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, file, strerror(errno));
		goto err;
	}
	printf("wrote %s\n", file);
	if (daemon_reload() != 0)
		return 1;
	printf("next: systemctl restart %s\n", sd->unit);
	return 0;
err:
	(void)unlink(tmp);
	return 1;
}

static int
uninstall(const struct sd *sd)
{
	char ddir[PATH_MAX], file[PATH_MAX];

	if (dropin_path(sd, ddir, file) != 0)
		return 1;
	if (unlink(file) != 0) {
		if (errno == ENOENT) {
			printf("nothing to remove: %s does not exist\n", file);
			return 0;
		}
		fprintf(stderr, "%s: %s: %s\n", PROG, file, strerror(errno));
		return 1;
	}
	printf("removed %s\n", file);
	if (rmdir(ddir) == 0)
		printf("removed %s (it was empty)\n", ddir);
	if (daemon_reload() != 0)
		return 1;
	printf("next: systemctl restart %s (it runs without the shim then)\n",
	    sd->unit);
	return 0;
}

static const struct option long_opts[] = {
	{ "credential", required_argument, NULL, 'c' },
	{ "install",    no_argument,       NULL, 'i' },
	{ "remove",     no_argument,       NULL, 'r' },
	{ "help",       no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
systemd_main(int argc, char **argv)
{
	static struct sd sd;            /* PATH_MAX buffers: not the stack */
	const char *pol = NULL;
	char *text;
	size_t len;
	int c, action = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			pol = optarg;
			break;
		case 'c':
			if (sd.ncred == SD_MAXCRED) {
				fprintf(stderr, "%s: systemd: more than %d "
				    "credentials\n", PROG, SD_MAXCRED);
				return 1;
			}
			if ((rc = cred_arg(optarg, &sd.cred[sd.ncred])) != 0)
				return rc;
			sd.ncred++;
			break;
		case 'i':
		case 'r':
			if (action != 0 && action != c) {
				fprintf(stderr, "%s: systemd: --install or "
				    "--remove, not both\n", PROG);
				systemd_usage(stderr);
				return 2;
			}
			action = c;
			break;
		case 'h':
			systemd_usage(stdout);
			return 0;
		default:
			systemd_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: systemd: %s\n", PROG, argc - optind == 0 ?
		    "missing UNIT" : "one UNIT only");
		systemd_usage(stderr);
		return 2;
	}
	if (unit_name(argv[optind], sd.unit) != 0)
		return 2;
	if (action == 'r')
		return uninstall(&sd);

	if (launcher_find_shim(sd.shim) != 0)
		return 1;
	if (!value_ok(sd.shim)) {
		fprintf(stderr, "%s: systemd: shim %s: a path with white space, "
		    "quotes or backslashes is not supported\n", PROG, sd.shim);
		return 1;
	}
	if (path_arg("policy", launcher_policy_path(pol), sd.policy) != 0 ||
	    policy_check(&sd) != 0)
		return 1;
	if ((text = dropin_text(&sd, &len)) == NULL) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(ENOMEM));
		return 1;
	}
	if (action == 'i') {
		rc = install(&sd, text, len);
	} else {
		rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ?
		    0 : 1;
		if (rc != 0)
			fprintf(stderr, "%s: stdout: %s\n", PROG,
			    strerror(errno));
	}
	free(text);
	return rc;
}
