/*
 * test_stats: the statistics file (shim/stats.c) as `sockseal stats` reads
 * it: no file until there is something to count; counts land in the slot
 * of their rule; a rule on the same FILE:LINE keeps its slot; the keys in
 * force by fingerprint; a forked child counts into its parent's file until
 * it needs its own, which starts from the parent's slot names; an exec'd
 * image sees its earlier image's file; exit removes it; off means off.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "keyfile.h"
#include "policy.h"
#include "reason.h"
#include "session.h"
#include "stats.h"
#include "stats_file.h"

static char dir[] = "/tmp/test_stats.XXXXXX";

/* This process's file, mapped read-only (NULL if there is none). */
static const struct stats_file *
file_of(pid_t pid)
{
	char path[PATH_MAX];
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/%ld.stats", dir, (long)pid);
	if ((fd = open(path, O_RDONLY)) < 0)
		return NULL;
	m = mmap(NULL, sizeof(struct stats_file), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static struct policy_rule
rule_at(const char *file, int line, enum policy_dir d)
{
	struct policy_rule r;

	memset(&r, 0, sizeof(r));
	r.file = file;
	r.line = line;
	r.dir = d;
	return r;
}

static void
test_lifecycle(void)
{
	struct policy_rule a = rule_at("/etc/p", 3, POLICY_ACCEPT);
	struct policy_rule a2 = rule_at("/etc/p", 3, POLICY_ACCEPT);
	struct policy_rule c = rule_at("/etc/p", 2, POLICY_CONNECT);
	const struct stats_file *f;
	char key_path[PATH_MAX], pol_path[PATH_MAX], err[POLICY_ERRLEN];
	char fpr[KEYFILE_FPRLEN];
	uint8_t key[KEYFILE_KEYLEN];
	struct policy *p;
	FILE *fp;
	int sa, sc, st;
	pid_t kid;

	stats_start("/etc/p");
	CHECK(file_of(getpid()) == NULL);       /* nothing to count yet */
	CHECK(!stats_earlier_image());
	stats_handshakes(1);                    /* no file: nothing happens */

	sa = stats_slot(&a);                    /* a sealing rule: the file */
	CHECK((f = file_of(getpid())) != NULL);
	if (f == NULL)
		return;
	CHECK(memcmp(f->magic, STATS_MAGIC, 8) == 0);
	CHECK_INT_EQ(f->pid, getpid());
	CHECK(f->start_ticks != 0);
	CHECK(strcmp(f->program, "test_stats") == 0);
	CHECK(strcmp(f->policy, "/etc/p") == 0);
	CHECK(sa == 0);
	CHECK(strcmp(f->rules[sa].name, "/etc/p:3") == 0);
	CHECK_INT_EQ(f->rules[sa].dir, POLICY_ACCEPT);
	/* The same rule after a reload (another struct): the same slot. */
	CHECK_INT_EQ(stats_slot(&a2), sa);
	sc = stats_slot(&c);
	CHECK(sc == 1);
	CHECK_INT_EQ(f->nrules, 2);

	stats_conn_sealed(sa, 700);             /* under 1 ms */
	stats_conn_sealed(sa, 30000);           /* 25-50 ms */
	stats_bytes(sa, 14, 7);
	stats_conn_ended(sa, SESSION_END_OK, REASON_CLOSED);
	stats_conn_gone(sa);
	stats_conn_ended(sa, SESSION_END_FAILED, REASON_WRONG_KEY);
	stats_conn_ended(sc, SESSION_END_TIMEOUT, REASON_HANDSHAKE_TIMEOUT);
	stats_handshakes(1);
	CHECK_INT_EQ(f->rules[sa].sealed, 2);
	CHECK_INT_EQ(f->rules[sa].live, 1);
	CHECK_INT_EQ(f->rules[sa].hs_hist[0], 1);
	CHECK_INT_EQ(f->rules[sa].hs_hist[5], 1);
	CHECK_INT_EQ(f->rules[sa].hs_sum_us, 30700);
	CHECK_INT_EQ(f->rules[sa].bytes_in, 14);
	CHECK_INT_EQ(f->rules[sa].bytes_out, 7);
	CHECK_INT_EQ(f->rules[sa].ended[SESSION_END_OK][REASON_CLOSED], 1);
	CHECK_INT_EQ(f->rules[sa].ended[SESSION_END_FAILED][REASON_WRONG_KEY],
	    1);
	CHECK_INT_EQ(f->rules[sc].ended[SESSION_END_TIMEOUT]
	    [REASON_HANDSHAKE_TIMEOUT], 1);
	CHECK_INT_EQ(f->handshakes, 1);
	/* Out of range: ignored, never written elsewhere. */
	stats_bytes(-1, 1, 1);
	stats_bytes(STATS_RULES, 1, 1);
	CHECK_INT_EQ(f->rules[sa].bytes_in, 14);

	/* The keys in force: name, fingerprint, file age. */
	randombytes_buf(key, sizeof(key));
	snprintf(key_path, sizeof(key_path), "%s/k.key", dir);
	snprintf(pol_path, sizeof(pol_path), "%s/policy", dir);
	CHECK_INT_EQ(keyfile_create(key_path, key), 0);
	CHECK((fp = fopen(pol_path, "w")) != NULL);
	fprintf(fp, "key k %s\naccept *:1 key=k\n", key_path);
	fclose(fp);
	CHECK_INT_EQ(policy_load(pol_path, &p, err), 0);
	stats_policy(p, true);
	keyfile_fingerprint(key, fpr);
	CHECK_INT_EQ(f->nkeys, 1);
	CHECK(strcmp(f->keys[0].kind, "key") == 0);
	CHECK(strcmp(f->keys[0].name, "k") == 0);
	CHECK(strcmp(f->keys[0].fpr, fpr) == 0);
	CHECK(f->keys[0].mtime > 0);
	CHECK(f->keys_gen % 2 == 0 && f->keys_gen > 0);
	CHECK_INT_EQ(f->reloads, 1);
	stats_reload_failed();
	CHECK_INT_EQ(f->reload_failures, 1);
	policy_free(p);

	/* A forked child counts into its parent's file until it needs its
	 * own, which starts from the parent's slot names. */
	if ((kid = fork()) == 0) {
		const struct stats_file *mine;

		stats_fork_child();
		stats_bytes(sa, 100, 0);        /* into the parent's */
		if (file_of(getpid()) != NULL)
			_exit(10);
		CHECK_INT_EQ(stats_slot(&c), sc);       /* needs its own */
		if ((mine = file_of(getpid())) == NULL)
			_exit(11);
		if (strcmp(mine->rules[sa].name, "/etc/p:3") != 0 ||
		    mine->rules[sa].bytes_in != 0 || mine->nrules != 2)
			_exit(12);
		stats_bytes(sa, 5, 0);
		if (mine->rules[sa].bytes_in != 5)
			_exit(13);
		stats_exit();
		_exit(file_of(getpid()) == NULL ? 0 : 14);
	}
	CHECK(kid > 0);
	CHECK(waitpid(kid, &st, 0) == kid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_INT_EQ(f->rules[sa].bytes_in, 114);

	/* An exec'd image (the same pid and start time) sees this file. */
	CHECK(stats_earlier_image());

	stats_exit();
	CHECK(file_of(getpid()) == NULL);
	stats_bytes(sa, 1, 1);                  /* after exit: nothing */
}

int
main(void)
{
	char cmd[PATH_MAX];

	if (sodium_init() < 0 || mkdtemp(dir) == NULL) {
		perror("setup");
		return 1;
	}
	setenv("SOCKSEAL_STATS_DIR", dir, 1);
	test_lifecycle();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT_EQ(system(cmd), 0);
	CHECK_DONE();
}
