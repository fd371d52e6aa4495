/*
 * systemd_dropin: the text of the drop-in `sockseal systemd' writes, and
 * the checks of what goes into it (the unit name, --credential NAME=PATH,
 * the paths).
 *
 * The drop-in sets what `sockseal --` would: LD_PRELOAD (the shim the
 * launcher finds, launcher_find_shim()) and SOCKSEAL_POLICY (absolute).
 * Each --credential becomes a LoadCredential=NAME:PATH, which the service
 * sees as $CREDENTIALS_DIRECTORY/NAME.  ExecPaths= names the shim: a unit
 * with NoExecPaths= (Debian's redis-server) could not map it otherwise,
 * and the loader ignores a preload it cannot map, which would run the
 * service unsealed; ExecPaths= of a missing file fails the start instead.
 * ReadWritePaths=-/run/sockseal keeps the shim's statistics directory
 * writable under ProtectSystem=strict ('-': a missing one is harmless).
 *
 * Values are written as systemd reads them: '%' doubled (specifiers);
 * paths with white space, quotes, backslashes or control characters are
 * refused rather than quoted.  UNIT is a .service unit with the characters
 * systemd allows; a NAME, the characters a credential name may have.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "systemd_int.h"

#define SD_STATS    "/run/sockseal"

/* Characters systemd allows in a unit name. */
static bool
unit_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr(":-_.\\@", c) != NULL;
}

/* Can PATH go into a unit file unquoted?  0, or -1 after saying why. */
static int
value_check(const char *what, const char *path)
{
	const char *s;

	for (s = path; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '"' ||
		    *s == '\'' || *s == '\\') {
			fprintf(stderr, "%s: systemd: %s %s: a path with white "
			    "space, quotes or backslashes is not supported\n",
			    PROG, what, path);
			return -1;
		}
	return 0;
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
	return value_check(what, out);
}

int
systemd_dropin_unit(const char *arg, char out[SD_UNITMAX])
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

int
systemd_dropin_cred(const char *arg, struct sd_cred *c)
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

int
systemd_dropin_policy(const char *in, char out[PATH_MAX])
{
	return path_arg("policy", in, out);
}

int
systemd_dropin_shim(char out[PATH_MAX])
{
	if (launcher_find_shim(out) != 0)
		return -1;
	return value_check("shim", out);
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

char *
systemd_dropin_text(const struct sd *sd, size_t *len)
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
