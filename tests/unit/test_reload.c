/*
 * test_reload: file identities (reload_id_*) and the reload itself, in one
 * process without sockets: reload_current() is called the way the connect
 * and accept paths call it, and the policy it returns is inspected.  Every
 * decision looks at the files, so the first call after a change must
 * return the new policy: no retries, no sleeps before it.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "init.h"
#include "keyfile.h"
#include "policy.h"
#include "reload.h"

static char dir[] = "/tmp/test_reload.XXXXXX";

static void
path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Write TEXT to DIR/NAME: in place (truncate, write) or by rename. */
static void
put(const char *name, const char *text, bool in_place)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	path_in(path, sizeof(path), name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(in_place ? path : tmp, "w")) == NULL ||
	    fputs(text, f) == EOF || fclose(f) != 0 ||
	    (!in_place && rename(tmp, path) != 0)) {
		perror(path);
		exit(1);
	}
}

/* A key file's text for KEY. */
static void
key_text(const uint8_t key[KEYFILE_KEYLEN], char *out, size_t len)
{
	char b64[sodium_base64_ENCODED_LEN(KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), key, KEYFILE_KEYLEN,
	    sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, len, "%s\n", b64);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Does reload_current() stay RP over N calls 0.15 s apart (each past the
 * settling of the one before)? */
static bool
stays(const struct reload_policy *rp, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (reload_current() != rp)
			return false;
		sleep_ms(150);
	}
	return true;
}

/* The key bytes of the first rule's first key. */
static const uint8_t *
first_key(const struct reload_policy *rp)
{
	return policy_rule_at(rp->pol, 0)->keys[0]->key;
}

static void
test_ids(void)
{
	struct reload_id a, b, gone1, gone2;
	struct timespec t0;
	char p[PATH_MAX], q[PATH_MAX];

	path_in(p, sizeof(p), "id");
	path_in(q, sizeof(q), "id2");
	put("id", "one\n", true);
	reload_id_get(p, &a);
	reload_id_get(p, &b);
	CHECK_INT_EQ(a.err, 0);
	CHECK(reload_id_same(&a, &b));
	/* Another size. */
	put("id", "three\n", true);
	reload_id_get(p, &b);
	CHECK(!reload_id_same(&a, &b));
	/* Replaced by rename: another inode, whatever the times. */
	reload_id_get(p, &a);
	put("id", "other\n", false);
	reload_id_get(p, &b);
	CHECK(a.ino != b.ino);
	CHECK(!reload_id_same(&a, &b));
	/* Missing files: judged by the error alone. */
	reload_id_get(q, &gone1);
	reload_id_get(q, &gone2);
	CHECK_INT_EQ(gone1.err, ENOENT);
	CHECK(reload_id_same(&gone1, &gone2));
	CHECK(!reload_id_same(&gone1, &a) && !reload_id_same(&a, &gone1));
	/* Symlinks are followed: a link to the same file is that file. */
	CHECK_INT_EQ(symlink("id", q), 0);
	reload_id_get(q, &a);
	CHECK(reload_id_same(&a, &b));

	/* Racy: changed within a tenth of a second of the read, or after
	 * it; a ctime far ahead (the clock set back) cannot be judged. */
	clock_gettime(CLOCK_REALTIME, &t0);
	a.ctim = t0;
	CHECK(reload_id_racy(&a, &t0));
	a.ctim.tv_nsec = t0.tv_nsec >= 50000000 ? t0.tv_nsec - 50000000 : 0;
	CHECK(reload_id_racy(&a, &t0));
	a.ctim = t0;
	a.ctim.tv_sec--;
	CHECK(!reload_id_racy(&a, &t0));
	a.ctim.tv_sec = t0.tv_sec + 5;
	CHECK(!reload_id_racy(&a, &t0));
	CHECK(!reload_id_racy(&gone1, &t0));
}

/*
 * One reload_start() per process: a relative policy path, then key
 * changes in place and by symlink swap, a broken policy, a new rule.
 */
static void
test_reload(void)
{
	uint8_t k1[KEYFILE_KEYLEN], k2[KEYFILE_KEYLEN], k3[KEYFILE_KEYLEN];
	char text[128], err[POLICY_ERRLEN], cwd[PATH_MAX], pol[PATH_MAX * 2];
	char a[PATH_MAX], b[PATH_MAX];
	const struct reload_policy *rp, *rp2;

	randombytes_buf(k1, sizeof(k1));
	randombytes_buf(k2, sizeof(k2));
	randombytes_buf(k3, sizeof(k3));
	key_text(k1, text, sizeof(text));
	put("app.key", text, true);
	path_in(a, sizeof(a), "v1");
	CHECK_INT_EQ(mkdir(a, 0700), 0);
	put("v1/link.key", text, true);
	path_in(a, sizeof(a), "..data");
	CHECK_INT_EQ(symlink("v1", a), 0);
	path_in(a, sizeof(a), "link.key");
	CHECK_INT_EQ(symlink("..data/link.key", a), 0);
	setenv("TEST_RELOAD_DIR", dir, 1);
	put("policy", "key app ${TEST_RELOAD_DIR}/app.key\n"
	    "key link link.key\n"
	    "connect 10.0.0.1:1 key=app\n"
	    "connect 10.0.0.2:1 key=link\n", false);

	/* Relative to the current directory at start, not later. */
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT_EQ(chdir(dir), 0);
	CHECK_INT_EQ(reload_start("policy", err), 0);
	CHECK_INT_EQ(chdir("/"), 0);
	unsetenv("TEST_RELOAD_DIR");
	rp = reload_current();
	CHECK(rp != NULL && rp->pol != NULL);
	if (rp == NULL || rp->pol == NULL)
		return;
	snprintf(pol, sizeof(pol), "%s/policy", dir);
	CHECK(strcmp(policy_rule_at(rp->pol, 0)->file, pol) == 0);
	CHECK(!rp->accept);
	CHECK_MEM_EQ(first_key(rp), k1, KEYFILE_KEYLEN);

	/* In place, same size, right away (the same clock tick as the
	 * start's read, most likely): the next decision has it, after
	 * waiting for it to settle. */
	key_text(k2, text, sizeof(text));
	put("app.key", text, true);
	rp2 = reload_current();
	CHECK(rp2 != rp);
	CHECK_MEM_EQ(first_key(rp2), k2, KEYFILE_KEYLEN);
	/* The old policy stays valid for sessions made under it. */
	CHECK_MEM_EQ(first_key(rp), k1, KEYFILE_KEYLEN);
	rp = rp2;

	/* Kubernetes: a new directory and a new ..data symlink renamed over
	 * the old one. */
	key_text(k3, text, sizeof(text));
	path_in(a, sizeof(a), "v2");
	CHECK_INT_EQ(mkdir(a, 0700), 0);
	put("v2/link.key", text, true);
	path_in(a, sizeof(a), "..data_tmp");
	path_in(b, sizeof(b), "..data");
	CHECK_INT_EQ(symlink("v2", a), 0);
	CHECK_INT_EQ(rename(a, b), 0);
	rp2 = reload_current();
	CHECK(rp2 != rp);
	CHECK_MEM_EQ(policy_rule_at(rp2->pol, 1)->keys[0]->key, k3,
	    KEYFILE_KEYLEN);
	rp = rp2;

	/* Nothing changes: re-reads of racy files publish nothing. */
	CHECK(stays(rp, 6));

	/* An idle process: the first decision long after a change (past
	 * any second-long window) has it. */
	sleep_ms(1200);
	put("policy", "key app ${TEST_RELOAD_DIR}/app.key\n"
	    "key link link.key\n"
	    "connect 10.0.0.1:1 key=app\n", false);
	sleep_ms(1200);
	rp2 = reload_current();
	CHECK(rp2 != rp);
	CHECK_INT_EQ(policy_nrules(rp2->pol), 1);
	rp = rp2;

	/* Broken: the last good policy stays. */
	put("policy", "key app app.key\n"
	    "connect 10.0.0.1:1 key=app\n"
	    "acept *:1 key=app\n", false);
	CHECK(stays(rp, 6));

	/* Fixed, with an accept rule now; ${VAR} is expanded as the
	 * environment was at start. */
	put("policy", "key app ${TEST_RELOAD_DIR}/app.key\n"
	    "connect 10.0.0.1:1 key=app\n"
	    "accept *:1 key=app\n", false);
	rp2 = reload_current();
	CHECK(rp2 != rp);
	CHECK(rp2->accept);
	CHECK_INT_EQ(policy_nrules(rp2->pol), 2);
	CHECK_MEM_EQ(first_key(rp2), k2, KEYFILE_KEYLEN);

	/* A sandbox: no more looking at the files, though the change is
	 * a valid policy that a decision outside would take. */
	shim_sandbox();
	rp = rp2;
	put("policy", "key app ${TEST_RELOAD_DIR}/app.key\n"
	    "connect 10.0.0.1:1 key=app\n", false);
	CHECK(stays(rp, 5));
	CHECK_INT_EQ(chdir(cwd), 0);
}

int
main(void)
{
	char cmd[PATH_MAX];

	if (sodium_init() < 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "cannot initialise libsodium or make a tmpdir\n");
		return 1;
	}
	test_ids();
	test_reload();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_INT_EQ(system(cmd), 0);
	CHECK_DONE();
}
