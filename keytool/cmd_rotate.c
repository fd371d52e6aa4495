/*
 * cmd_rotate: `sockseal-keytool rotate POLICY KEY`: everything one host
 * needs to replace key KEY without dropping a connection, and the steps.
 *
 * A rule may list several keys: the accepting side accepts any of them,
 * the connecting side uses the first.  So a key is replaced in three
 * steps, each finished on every host before the next begins:
 *
 *   1. accept rules that name KEY also accept the new key;
 *   2. connect rules that name KEY use the new key first;
 *   3. KEY's file gets the new key, and the policy is what it was.
 *
 * rotate makes the new key beside KEY's file (FILE.new, mode 0600; one
 * that is already there is used, never overwritten: the new key is made
 * on one host and copied to the others) and writes the policy of each
 * step beside POLICY as POLICY.rotate-1, -2 and -3, so each step is one
 * rename that the shim picks up for new connections.  The new key is
 * named KEY.new, its path is KEY's as written plus ".new" (${VAR} kept).
 * Each file written is loaded back as the shim would load it.  The
 * policy itself and KEY's file are never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "keyfile.h"
#include "policy.h"
#include "subcommands.h"

#define ROTATE_STEPS 3

struct rotate {
	const char              *polpath;
	const struct policy     *pol;
	const struct policy_key *key;           /* the key replaced */
	char                    *newname;       /* KEY.new */
	char                    *newfile;       /* resolved path + .new */
	mode_t                   mode;          /* POLICY's */
};

/* Does rule R name key K? */
static bool
rule_names(const struct policy_rule *r, const struct policy_key *k)
{
	int i;

	for (i = 0; i < r->nkeys; i++)
		if (r->keys[i] == k)
			return true;
	return false;
}

/* The rule on line LINE, or NULL. */
static const struct policy_rule *
rule_on(const struct policy *p, int line)
{
	size_t i;

	for (i = 0; i < policy_nrules(p); i++)
		if (policy_rule_at(p, i)->line == line)
			return policy_rule_at(p, i);
	return NULL;
}

/*
 * Write LINE to F with NEW inserted into its key= list, right after KEY
 * (AFTER) or right before it.  The rest of the line is kept as it is.
 */
static void
put_keylist(FILE *f, const char *line, const char *key, const char *new,
    bool after)
{
	const char *w = line, *hash = strchr(line, '#'), *end, *s, *c;
	size_t klen = strlen(key);

	/* The word starting with key=, before any comment (the policy loaded,
	 * so there is one). */
	for (;;) {
		w = strstr(w, "key=");
		if (w == NULL || (hash != NULL && w > hash)) {
			fputs(line, f);
			return;
		}
		if (w == line || w[-1] == ' ' || w[-1] == '\t')
			break;
		w++;
	}
	end = w + strcspn(w, " \t\r\n#");
	fwrite(line, 1, (size_t)(w - line), f);
	fputs("key=", f);
	for (s = w + 4; s < end; s = c + 1) {
		size_t len;

		c = memchr(s, ',', (size_t)(end - s));
		if (c == NULL)
			c = end;
		len = (size_t)(c - s);
		if (s != w + 4)
			fputc(',', f);
		if (len == klen && memcmp(s, key, klen) == 0)
			fprintf(f, "%s,%s", after ? key : new,
			    after ? new : key);
		else
			fwrite(s, 1, len, f);
	}
	fputs(end, f);
}

/* One line of step STEP's policy (1 or 2); step 3 is the policy as is. */
static void
put_line(FILE *f, const struct rotate *rt, const char *line, int lineno,
    int step)
{
	const struct policy_rule *r = rule_on(rt->pol, lineno);

	if (lineno == rt->key->line) {
		fputs(line, f);
		if (line[strlen(line) - 1] != '\n')
			fputc('\n', f);
		fprintf(f, "key %s %s.new\t# sockseal-keytool rotate, step %d\n",
		    rt->newname, rt->key->path, step);
	} else if (r != NULL && rule_names(r, rt->key) &&
	    (r->dir == POLICY_ACCEPT || step == 2)) {
		put_keylist(f, line, rt->key->name, rt->newname,
		    r->dir == POLICY_ACCEPT);
	} else {
		fputs(line, f);
	}
}

/*
 * Write step STEP's policy to POLICY.rotate-STEP (written beside, renamed
 * into place, POLICY's mode) and load it back.  Returns 0, or 1 with a
 * message on stderr.
 */
static int
write_step(const struct rotate *rt, int step)
{
	char path[4096], tmp[4096 + 8], err[POLICY_ERRLEN], *line = NULL;
	struct policy *check;
	size_t cap = 0;
	int lineno = 0, fd, rc = 1;
	FILE *in, *out = NULL;

	snprintf(path, sizeof(path), "%s.rotate-%d", rt->polpath, step);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((in = fopen(rt->polpath, "re")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, rt->polpath,
		    strerror(errno));
		return 1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    rt->mode)) == -1 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, tmp,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		goto out;
	}
	while (getline(&line, &cap, in) != -1) {
		lineno++;
		if (step == ROTATE_STEPS)
			fputs(line, out);
		else
			put_line(out, rt, line, lineno, step);
	}
	if (ferror(in) || fflush(out) != 0 || fsync(fileno(out)) != 0 ||
	    fchmod(fileno(out), rt->mode) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, tmp,
		    strerror(errno));
		goto out;
	}
	if (policy_load(tmp, &check, err) != 0) {
		fprintf(stderr, "%s: step %d policy does not load (please "
		    "report): %s\n", KEYTOOL_PROG, step, err);
		goto out;
	}
	policy_free(check);
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (out != NULL)
		fclose(out);
	if (rc != 0)
		unlink(tmp);
	free(line);
	fclose(in);
	return rc;
}

/* The new key: FILE.new, made now or already there.  Returns 0 or 1. */
static int
new_key(const struct rotate *rt, uint8_t key[KEYFILE_KEYLEN], bool *made)
{
	char err[128];
	int rc;

	*made = false;
	randombytes_buf(key, KEYFILE_KEYLEN);
	if ((rc = keyfile_create(rt->newfile, key)) == 0) {
		*made = true;
		return 0;
	}
	if (rc != -EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, rt->newfile,
		    strerror(-rc));
		return 1;
	}
	if (keyfile_read(rt->newfile, key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s: %s (it is kept; remove it to make a "
		    "new key)\n", KEYTOOL_PROG, rt->newfile, err);
		return 1;
	}
	if (sodium_memcmp(key, rt->key->key, KEYFILE_KEYLEN) == 0) {
		fprintf(stderr, "%s: %s holds the key in use already\n",
		    KEYTOOL_PROG, rt->newfile);
		return 1;
	}
	return 0;
}

static void
print_plan(const struct rotate *rt, const char *newfpr, bool made)
{
	char oldfpr[KEYFILE_FPRLEN];
	const char *p = rt->polpath, *f = rt->key->resolved;

	keyfile_fingerprint(rt->key->key, oldfpr);
	printf("key %s: %s %s\n", rt->key->name, f, oldfpr);
	printf("new key %s: %s %s (%s)\n", rt->newname, rt->newfile, newfpr,
	    made ? "made now" : "already there, kept");
	printf("wrote %s.rotate-1, %s.rotate-2, %s.rotate-3\n\n", p, p, p);
	printf("Replace key %s without dropping a connection; finish each step "
	    "on every\nhost before the next (a running program takes a change "
	    "at its next connection):\n", rt->key->name);
	printf("  0. copy %s (mode 0600) to every host that uses key %s\n"
	    "     and run `%s rotate POLICY %s` there\n", rt->newfile,
	    rt->key->name, KEYTOOL_PROG, rt->key->name);
	printf("  1. accept both keys:        mv %s.rotate-1 %s\n", p, p);
	printf("  2. connect with the new:    mv %s.rotate-2 %s\n", p, p);
	printf("  3. retire the old key:      cp -p %s %s.tmp && mv %s.tmp %s\n"
	    "                               mv %s.rotate-3 %s && rm %s\n",
	    rt->newfile, f, f, f, p, p, rt->newfile);
}

int
cmd_rotate_main(int argc, char **argv)
{
	char err[POLICY_ERRLEN], fpr[KEYFILE_FPRLEN];
	uint8_t key[KEYFILE_KEYLEN];
	struct rotate rt;
	struct policy *p = NULL;
	struct stat st;
	bool made = false;
	size_t i;
	int step, rc = KEYTOOL_FAIL;

	if (argc != 3 || argv[1][0] == '\0' || argv[2][0] == '\0') {
		fprintf(stderr, "usage: %s rotate POLICY KEY\n", KEYTOOL_PROG);
		return KEYTOOL_USAGE;
	}
	memset(&rt, 0, sizeof(rt));
	rt.polpath = argv[1];
	if (policy_load(rt.polpath, &p, err) != 0) {
		fprintf(stderr, "%s\n", err);
		return KEYTOOL_FAIL;
	}
	rt.pol = p;
	for (i = 0; i < policy_nkeys(p); i++)
		if (strcmp(policy_key_at(p, i)->name, argv[2]) == 0)
			rt.key = policy_key_at(p, i);
	if (rt.key == NULL) {
		fprintf(stderr, "%s: %s defines no key `%s'\n", KEYTOOL_PROG,
		    rt.polpath, argv[2]);
		goto out;
	}
	if (asprintf(&rt.newname, "%s.new", rt.key->name) == -1 ||
	    asprintf(&rt.newfile, "%s.new", rt.key->resolved) == -1) {
		rt.newname = rt.newfile = NULL;
		fprintf(stderr, "%s: %s\n", KEYTOOL_PROG, strerror(ENOMEM));
		goto out;
	}
	for (i = 0; i < policy_nkeys(p); i++)
		if (strcmp(policy_key_at(p, i)->name, rt.newname) == 0) {
			fprintf(stderr, "%s: %s:%d: key %s is defined already: "
			    "a rotation in progress?  Finish it first (step 3 "
			    "restores the policy without it)\n", KEYTOOL_PROG,
			    rt.polpath, policy_key_at(p, i)->line, rt.newname);
			goto out;
		}
	if (stat(rt.polpath, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", KEYTOOL_PROG, rt.polpath,
		    strerror(errno));
		goto out;
	}
	rt.mode = st.st_mode & 0777;
	if (new_key(&rt, key, &made) != 0)
		goto out;
	for (step = 1; step <= ROTATE_STEPS; step++)
		if (write_step(&rt, step) != 0)
			goto out;
	keyfile_fingerprint(key, fpr);
	print_plan(&rt, fpr, made);
	rc = KEYTOOL_OK;
out:
	sodium_memzero(key, sizeof(key));
	free(rt.newname);
	free(rt.newfile);
	policy_free(p);
	return rc;
}
