/*
 * policy_load: the policy's files: a policy or an included file read whole,
 * its lines handed to the parser, and the paths in it (${VAR} expanded,
 * relative to the policy's directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "policy.h"
#include "policy_int.h"

/* expand_path(): see policy_int.h. */
int
expand_path(const struct policy *p, const char *file, int line,
    const char *what, const char *path, char **out, char err[POLICY_ERRLEN])
{
	char buf[PATH_MAX];
	size_t n = 0, len;
	const char *s = path, *val;
	char var[128];

	while (*s != '\0') {
		if (s[0] == '$' && s[1] == '{') {
			const char *end = strchr(s + 2, '}');

			if (end == NULL)
				return perr_at(file, line, err, "%s: unterminated "
				    "${ in path `%.128s'", what, path);
			len = (size_t)(end - (s + 2));
			if (len == 0 || len >= sizeof(var))
				return perr_at(file, line, err, "%s: bad "
				    "variable name in path `%.128s'", what,
				    path);
			memcpy(var, s + 2, len);
			var[len] = '\0';
			val = p->env ? p->env(var, p->envctx) : getenv(var);
			if (val == NULL)
				return perr_at(file, line, err, "%s: environment "
				    "variable %s is not set", what, var);
			s = end + 1;
			len = strlen(val);
		} else {
			val = s;
			len = 1;
			s++;
		}
		if (n + len >= sizeof(buf))
			goto toolong;
		memcpy(buf + n, val, len);
		n += len;
	}
	buf[n] = '\0';
	if (n == 0)
		return perr_at(file, line, err, "%s: path `%.128s' is empty "
		    "after expansion", what, path);

	if (buf[0] != '/' && p->dir != NULL) {
		size_t dl = strlen(p->dir);
		bool root = strcmp(p->dir, "/") == 0;

		if (dl + 1 + n >= sizeof(buf))
			goto toolong;
		memmove(buf + dl + (root ? 0 : 1), buf, n + 1);
		memcpy(buf, p->dir, dl);
		if (!root)
			buf[dl] = '/';
	}
	if ((*out = strdup(buf)) == NULL) {
		perr_at(file, line, err, "out of memory");
		return -ENOMEM;
	}
	return 0;

toolong:
	return perr_at(file, line, err, "%s: path `%.128s' is too long",
	    what, path);
}

int
policy_load(const char *path, struct policy **pp, char err[POLICY_ERRLEN])
{
	return policy_load_env(path, NULL, NULL, pp, err);
}

/*
 * Read all of PATH into a new NUL-terminated buffer.  The policy is read with
 * read(2), not stdio: every preloaded process reads it at start, and a stdio
 * stream costs a 4 KiB buffer (a fresh heap page) and more of libc mapped in.
 */
int
policy_slurp(const char *path, char **out, size_t *outlen)
{
	const struct fileio *io = fileio();
	size_t len = 0, cap = 4096;
	char *buf, *nb;
	ssize_t n;
	int fd, rc;

	if ((fd = io->open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0)) < 0)
		return -errno;
	if ((buf = malloc(cap)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (;;) {
		if (cap - len < 2) {
			if (cap >= POLICY_MAX_FILE) {
				rc = -EFBIG;
				goto fail;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		n = io->read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	io->close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;

fail:
	free(buf);
	io->close(fd);
	return rc;
}

int
policy_parse_buf(struct policy *p, char *buf, size_t len,
    char err[POLICY_ERRLEN])
{
	char *line, *nl, save;
	int lineno = 0, rc;

	for (line = buf; line < buf + len; line = nl) {
		lineno++;
		nl = memchr(line, '\n', (size_t)(buf + len - line));
		nl = nl != NULL ? nl + 1 : buf + len;
		if (memchr(line, '\0', (size_t)(nl - line)) != NULL)
			return perr(p, lineno, err, "NUL byte in line");
		/* The parser takes a string: end this line for it. */
		save = *nl;
		*nl = '\0';
		rc = policy_parse_line(p, line, lineno, err);
		*nl = save;
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
policy_load_env(const char *path, policy_env_fn env, void *ctx,
    struct policy **pp, char err[POLICY_ERRLEN])
{
	struct policy *p;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	*pp = NULL;
	if ((rc = policy_slurp(path, &buf, &len)) != 0) {
		snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if ((p = policy_parse_init(path)) == NULL) {
		rc = -ENOMEM;
		snprintf(err, POLICY_ERRLEN, "%s: %s", path, strerror(-rc));
		goto err1;
	}
	policy_parse_env(p, env, ctx);
	if ((rc = policy_parse_buf(p, buf, len, err)) != 0 ||
	    (rc = policy_parse_finish(p, err)) != 0)
		goto err2;
	free(buf);
	*pp = p;
	return 0;

err2:
	policy_free(p);
err1:
	free(buf);
	return rc;
}

/* One secret file: FN if group or others may read it. */
static size_t
exposed_one(const char *kind, const char *name, const char *path,
    const char *file, int line, policy_exposed_fn *fn, void *ctx)
{
	char what[POLICY_ERRLEN];
	struct stat st;

	if (stat(path, &st) != 0 || (st.st_mode & (S_IRGRP | S_IROTH)) == 0)
		return 0;
	snprintf(what, sizeof(what), "%s %s: %s is readable by %s (mode "
	    "%04o); chmod 600 it", kind, name, path,
	    (st.st_mode & S_IROTH) ? "others" : "group",
	    (unsigned)(st.st_mode & 07777));
	fn(ctx, file, line, what);
	return 1;
}

size_t
policy_exposed(const struct policy *p, policy_exposed_fn *fn, void *ctx)
{
	size_t i, n = 0;

	for (i = 0; i < policy_nkeys(p); i++) {
		const struct policy_key *k = policy_key_at(p, i);

		n += exposed_one("key", k->name, k->resolved, k->file, k->line,
		    fn, ctx);
	}
	for (i = 0; i < policy_nidentities(p); i++) {
		const struct policy_identity *id = policy_identity_at(p, i);

		n += exposed_one("identity", id->name, id->resolved, id->file,
		    id->line, fn, ctx);
	}
	return n;
}
