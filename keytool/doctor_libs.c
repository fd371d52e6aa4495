/*
 * doctor_libs: a program's dependency tree, as the loader would resolve it.
 *
 * A DT_NEEDED name with a slash is a path.  Otherwise the directories are,
 * in the loader's order: the object's DT_RUNPATH (or DT_RPATH) with
 * $ORIGIN expanded, LD_LIBRARY_PATH, /etc/ld.so.conf and the files it
 * includes, then the default directories.  The first file there that is
 * ELF of the program's class and machine is the library (the loader skips
 * the others).  The tree is walked depth first, each name once, at most
 * DOCTOR_LIBS_MAX names; a name that is not found is listed, not fatal.
 */
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <elf.h>

#include "doctor_libs.h"

/* The directories the loader searches, in order (a colon list). */
struct libpath {
	char   dirs[8192];
	size_t len;
};

static void
libpath_add(struct libpath *lp, const char *dir, size_t n, const char *origin)
{
	char buf[PATH_MAX];
	const char *o;

	if (n == 0 || n >= sizeof(buf))
		return;
	memcpy(buf, dir, n);
	buf[n] = '\0';
	/* $ORIGIN / ${ORIGIN}: the directory of the object itself. */
	if ((o = strstr(buf, "$ORIGIN")) != NULL ||
	    (o = strstr(buf, "${ORIGIN}")) != NULL) {
		char rest[PATH_MAX];

		snprintf(rest, sizeof(rest), "%s", o + (o[1] == '{' ? 9 : 7));
		snprintf(buf + (o - buf), sizeof(buf) - (size_t)(o - buf), "%s%s",
		    origin, rest);
	}
	if (lp->len + strlen(buf) + 2 < sizeof(lp->dirs))
		lp->len += (size_t)snprintf(lp->dirs + lp->len,
		    sizeof(lp->dirs) - lp->len, "%s:", buf);
}

static void
libpath_add_list(struct libpath *lp, const char *list, const char *origin)
{
	const char *s, *c;

	for (s = list; s != NULL && *s != '\0'; s = c ? c + 1 : NULL) {
		c = strchr(s, ':');
		libpath_add(lp, s, c ? (size_t)(c - s) : strlen(s), origin);
	}
}

/* /etc/ld.so.conf and the files it includes (one level of include). */
static void
libpath_add_conf(struct libpath *lp, const char *file, int depth)
{
	char *line = NULL, *s, *e;
	size_t cap = 0, i;
	glob_t g;
	FILE *f;

	if (depth > 2 || (f = fopen(file, "r")) == NULL)
		return;
	while (getline(&line, &cap, f) != -1) {
		if ((s = strchr(line, '#')) != NULL)
			*s = '\0';
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		for (e = s + strlen(s); e > s && (e[-1] == '\n' ||
		    e[-1] == ' ' || e[-1] == '\t'); )
			*--e = '\0';
		if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
			for (s += 8; *s == ' ' || *s == '\t'; s++)
				;
			if (glob(s, 0, NULL, &g) == 0) {
				for (i = 0; i < g.gl_pathc; i++)
					libpath_add_conf(lp, g.gl_pathv[i], depth + 1);
				globfree(&g);
			}
		} else if (*s == '/') {
			libpath_add(lp, s, strlen(s), "");
		}
	}
	free(line);
	fclose(f);
}

/* Find library NAME for the object at PATH as the loader would. */
static bool
lib_find(const struct doctor_elf *e, const char *path, const char *name,
    char out[PATH_MAX])
{
	struct libpath lp = { .len = 0 };
	char origin[PATH_MAX];
	const char *s, *c;
	char *slash;

	if (strchr(name, '/') != NULL) {
		snprintf(out, PATH_MAX, "%s", name);
		return access(out, R_OK) == 0;
	}
	snprintf(origin, sizeof(origin), "%s", path);
	if ((slash = strrchr(origin, '/')) != NULL)
		*slash = '\0';
	libpath_add_list(&lp, e->runpath, origin);
	libpath_add_list(&lp, getenv("LD_LIBRARY_PATH"), origin);
	libpath_add_conf(&lp, "/etc/ld.so.conf", 0);
	libpath_add_list(&lp, e->class == ELFCLASS64 ? "/lib64:/usr/lib64" :
	    "/lib32:/usr/lib32", "");
	libpath_add_list(&lp, "/lib:/usr/lib", "");
	for (s = lp.dirs; (c = strchr(s, ':')) != NULL; s = c + 1) {
		struct doctor_elf *l;
		int err;

		snprintf(out, PATH_MAX, "%.*s/%s", (int)(c - s), s, name);
		if (access(out, R_OK) != 0)
			continue;
		/* The loader skips objects of another class or machine. */
		if ((l = doctor_elf_open(out, &err)) == NULL)
			continue;
		if (l->class == e->class && l->machine == e->machine) {
			doctor_elf_free(l);
			return true;
		}
		doctor_elf_free(l);
	}
	return false;
}

/* Has NAME been walked already?  Records it if not (while there is room). */
static bool
libs_seen(struct doctor_libs *d, const char *name)
{
	int i;

	for (i = 0; i < d->nseen; i++)
		if (strcmp(d->seen[i], name) == 0)
			return true;
	if (d->nseen < DOCTOR_LIBS_MAX &&
	    (d->seen[d->nseen] = strdup(name)) != NULL)
		d->nseen++;
	return false;
}

void
doctor_libs_append(char *buf, size_t len, const char *word)
{
	size_t n = strlen(buf);

	if (n + strlen(word) + 2 < len)
		snprintf(buf + n, len - n, "%s%s", n ? " " : "", word);
}

#define ADD(d, list, name) \
	doctor_libs_append((d)->list, sizeof((d)->list), (name))

void
doctor_libs_walk(struct doctor_libs *d, const struct doctor_elf *e,
    const char *path)
{
	char lib[PATH_MAX];
	struct doctor_elf *l;
	int i, err;

	for (i = 0; i < e->nneeded; i++) {
		const char *name = e->needed[i];

		if (libs_seen(d, name))
			continue;
		if (strncmp(name, "liburing", 8) == 0) {
			d->uring = true;
			ADD(d, uring_in, name);
		}
		if (!lib_find(e, path, name, lib) ||
		    (l = doctor_elf_open(lib, &err)) == NULL) {
			ADD(d, missing, name);
			continue;
		}
		if (l->uring) {
			d->uring = true;
			ADD(d, uring_in, name);
		}
		if (l->sockets) {
			d->sockets = true;
			ADD(d, sockets_in, name);
		}
		if (l->dlopen) {
			d->dlopen = true;
			ADD(d, dlopen_in, name);
		}
		d->go |= l->go;
		doctor_libs_walk(d, l, lib);
		doctor_elf_free(l);
	}
}

void
doctor_libs_free(struct doctor_libs *d)
{
	int i;

	for (i = 0; i < d->nseen; i++)
		free(d->seen[i]);
	d->nseen = 0;
}
