/*
 * systemd_check: the policy of `sockseal systemd', loaded before anything
 * is printed or installed, with the launcher's loader, as the service's
 * shim will load it; a bad one is an error (FILE:LINE).
 *
 * Its ${CREDENTIALS_DIRECTORY}/NAME paths exist only inside the service,
 * so the check expands CREDENTIALS_DIRECTORY to a temporary view: a
 * directory of symlinks NAME -> PATH, one per --credential, removed after.
 * Messages name ${CREDENTIALS_DIRECTORY} instead of the view.  Warnings: a
 * credential no file of the policy reads through the view, and a file the
 * policy reads directly that a credential passes too (inside a hardened
 * service the direct path may be unreadable).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "systemd_int.h"

/* The request and its view of the credentials. */
struct sd_view {
	const struct sd *sd;
	char            dir[PATH_MAX];  /* "" until made */
};

/* ${VAR} for the check: CREDENTIALS_DIRECTORY is the view (unset without
 * credentials, as in the service), the rest this environment's. */
static const char *
view_getenv(const char *name, void *ctx)
{
	const struct sd_view *v = ctx;

	if (strcmp(name, "CREDENTIALS_DIRECTORY") == 0)
		return v->sd->ncred > 0 ? v->dir : NULL;
	return getenv(name);
}

static void
view_remove(struct sd_view *v)
{
	char link[PATH_MAX + SD_UNITMAX];
	size_t i;

	if (v->dir[0] == '\0')
		return;
	for (i = 0; i < v->sd->ncred; i++) {
		snprintf(link, sizeof(link), "%s/%s", v->dir,
		    v->sd->cred[i].name);
		(void)unlink(link);
	}
	(void)rmdir(v->dir);
	v->dir[0] = '\0';
}

/* The view: a new directory of symlinks NAME -> PATH.  0 or -1. */
static int
view_make(struct sd_view *v)
{
	const struct sd *sd = v->sd;
	char link[PATH_MAX + SD_UNITMAX];
	const char *tmp = getenv("TMPDIR");
	size_t i;

	if (sd->ncred == 0)
		return 0;
	if ((size_t)snprintf(v->dir, sizeof(v->dir), "%s/sockseal-creds."
	    "XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp") >=
	    sizeof(v->dir) || mkdtemp(v->dir) == NULL) {
		fprintf(stderr, "%s: systemd: temporary directory: %s\n", PROG,
		    strerror(errno));
		v->dir[0] = '\0';
		return -1;
	}
	for (i = 0; i < sd->ncred; i++) {
		snprintf(link, sizeof(link), "%s/%s", v->dir, sd->cred[i].name);
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
say(const struct sd_view *v, const char *prefix, const char *msg)
{
	size_t vl = strlen(v->dir);
	const char *s = msg, *hit;

	fprintf(stderr, "%s", prefix);
	while (vl > 0 && (hit = strstr(s, v->dir)) != NULL) {
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
check_credentials(const struct sd_view *v, const struct policy *p)
{
	const struct sd *sd = v->sd;
	char want[PATH_MAX + SD_UNITMAX], a[PATH_MAX], b[PATH_MAX];
	size_t i, j, vl = strlen(v->dir);
	const char *f;
	bool used;

	for (i = 0; i < sd->ncred; i++) {
		snprintf(want, sizeof(want), "%s/%s", v->dir, sd->cred[i].name);
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
		if (strncmp(f, v->dir, vl) == 0 && f[vl] == '/')
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

int
systemd_check(const struct sd *sd)
{
	struct sd_view v = { .sd = sd };
	char err[POLICY_ERRLEN];
	struct policy *p;
	int rc = -1;

	if (view_make(&v) != 0)
		goto out;
	if (policy_load_env(sd->policy, view_getenv, &v, &p, err) != 0) {
		if (access(sd->policy, F_OK) != 0)
			fprintf(stderr, "%s: no policy: %s\n  give one with -f "
			    "POLICY or SOCKSEAL_POLICY (see sockseal-policy(5))"
			    "\n", PROG, err);
		else
			say(&v, "", err);
		if (sd->ncred == 0 && strstr(err, "CREDENTIALS_DIRECTORY"))
			fprintf(stderr, "  a service gets it from its "
			    "credentials: --credential NAME=PATH\n");
		goto out;
	}
	(void)policy_exposed(p, warn_exposed, &v);
	check_credentials(&v, p);
	policy_free(p);
	rc = 0;
out:
	view_remove(&v);
	return rc;
}
