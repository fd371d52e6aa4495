/*
 * stats_scan: read the statistics files (shim/stats_file.h) of the live
 * shimmed processes and sum them by program and rule.
 *
 * A file is a live process's when its name, its pid field, the start time
 * of that pid (/proc/PID/stat) and the executable it runs (/proc/PID/exe)
 * all agree with the file: a number reused by another process, or a
 * process that exec'd another program without the shim, does not count.
 * The file must be root's or the process's user's (is_live).  Files of
 * processes that are gone are removed (not with --keep); a file
 * whose writer has not finished it (no magic yet) is left alone unless its
 * pid is gone.  Each file is read with one read() into a copy: counters
 * are words the writer adds to atomically, so each is whole; the key
 * table is taken only between two equal even generations.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats_agg.h"

/* When PID started, in clock ticks (field 22 of /proc/PID/stat); 0: gone. */
static uint64_t
pid_start(pid_t pid)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return stats_stat_start(buf);
}

/*
 * Is the writer of F (a file owned by OWNER) alive, and still the image
 * that wrote it?  A file is taken only from root or from the user the
 * process runs as: in the shared directory (mode 1777) one user cannot
 * pass counters off as another user's process.  (Root's files are
 * trusted whoever the process now runs as: a daemon that drops its
 * privileges in place keeps the file it made at start.)
 */
static int
is_live(const struct stats_file *f, uid_t owner)
{
	char path[64];
	struct stat sb;

	if (f->pid <= 0 || (kill(f->pid, 0) != 0 && errno != EPERM))
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld", (long)f->pid);
	if (owner != 0 && (stat(path, &sb) != 0 || sb.st_uid != owner))
		return 0;
	if (f->start_ticks != 0 && pid_start(f->pid) != f->start_ticks)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)f->pid);
	if (f->exe_ino != 0 && stat(path, &sb) == 0 &&
	    (sb.st_dev != f->exe_dev || sb.st_ino != f->exe_ino))
		return 0;
	return 1;
}

static void *
grow(void *p, size_t *cap, size_t n, size_t size)
{
	void *q;

	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 16;
	if ((q = realloc(p, *cap * size)) == NULL) {
		fprintf(stderr, "sockseal: stats: out of memory\n");
		exit(1);
	}
	memset((char *)q + n * size, 0, (*cap - n) * size);
	return q;
}

struct caps { size_t prog, rule, key; };

static struct agg_prog *
prog_of(struct agg *a, struct caps *c, const char *program)
{
	size_t i;

	for (i = 0; i < a->nprog; i++)
		if (strcmp(a->prog[i].program, program) == 0)
			return &a->prog[i];
	a->prog = grow(a->prog, &c->prog, a->nprog, sizeof(*a->prog));
	snprintf(a->prog[a->nprog].program, sizeof(a->prog->program), "%s",
	    program);
	return &a->prog[a->nprog++];
}

static struct agg_rule *
rule_of(struct agg *a, struct caps *c, const char *program,
    const struct stats_rule *r)
{
	size_t i;

	for (i = 0; i < a->nrule; i++)
		if (a->rule[i].dir == r->dir &&
		    strcmp(a->rule[i].program, program) == 0 &&
		    strcmp(a->rule[i].name, r->name) == 0)
			return &a->rule[i];
	a->rule = grow(a->rule, &c->rule, a->nrule, sizeof(*a->rule));
	snprintf(a->rule[a->nrule].program, sizeof(a->rule->program), "%s",
	    program);
	memcpy(a->rule[a->nrule].name, r->name, sizeof(r->name));
	a->rule[a->nrule].dir = r->dir;
	return &a->rule[a->nrule++];
}

static void
add_key(struct agg *a, struct caps *c, const char *program,
    const struct stats_key *k)
{
	struct agg_key *e;
	size_t i;

	for (i = 0; i < a->nkey; i++) {
		e = &a->key[i];
		if (strcmp(e->program, program) == 0 &&
		    strcmp(e->kind, k->kind) == 0 &&
		    strcmp(e->name, k->name) == 0 &&
		    strcmp(e->fpr, k->fpr) == 0) {
			if (k->mtime > e->mtime)
				e->mtime = k->mtime;
			return;
		}
	}
	a->key = grow(a->key, &c->key, a->nkey, sizeof(*a->key));
	e = &a->key[a->nkey++];
	snprintf(e->program, sizeof(e->program), "%s", program);
	memcpy(e->kind, k->kind, sizeof(e->kind));
	memcpy(e->name, k->name, sizeof(e->name));
	memcpy(e->fpr, k->fpr, sizeof(e->fpr));
	e->mtime = k->mtime;
}

/* Terminate the strings of a copy the writer may be writing. */
static void
terminate(struct stats_file *f)
{
	size_t i;

	f->program[sizeof(f->program) - 1] = '\0';
	f->policy[sizeof(f->policy) - 1] = '\0';
	for (i = 0; i < STATS_KEYS; i++) {
		f->keys[i].kind[sizeof(f->keys[i].kind) - 1] = '\0';
		f->keys[i].name[sizeof(f->keys[i].name) - 1] = '\0';
		f->keys[i].fpr[sizeof(f->keys[i].fpr) - 1] = '\0';
	}
	for (i = 0; i < STATS_RULES; i++)
		f->rules[i].name[sizeof(f->rules[i].name) - 1] = '\0';
}

/* Read FD's file into F: 1 whole and consistent enough, 0 not (yet). */
static int
read_file(int fd, struct stats_file *f)
{
	uint32_t g1;
	int tries;

	for (tries = 0; tries < 5; tries++) {
		if (pread(fd, f, sizeof(*f), 0) != (ssize_t)sizeof(*f))
			return 0;
		if (memcmp(f->magic, STATS_MAGIC, sizeof(f->magic)) != 0 ||
		    f->version != STATS_VERSION || f->size != sizeof(*f))
			return 0;
		g1 = f->keys_gen;
		if (g1 % 2 == 0 && pread(fd, &g1, sizeof(g1),
		    offsetof(struct stats_file, keys_gen)) == sizeof(g1) &&
		    g1 == f->keys_gen)
			break;
		usleep(1000);
	}
	if (tries == 5)
		f->nkeys = 0;           /* rewritten all along: leave it out */
	terminate(f);
	return 1;
}

static void
add_file(struct agg *a, struct caps *c, const struct stats_file *f)
{
	struct agg_prog *p = prog_of(a, c, f->program);
	uint32_t i, n = f->nrules < STATS_RULES ? f->nrules : STATS_RULES;
	size_t k, j;

	if (p->processes < sizeof(p->pids) / sizeof(p->pids[0]))
		p->pids[p->processes] = f->pid;
	p->processes++;
	p->handshakes += (int64_t)f->handshakes;
	p->reloads += f->reloads;
	p->reload_failures += f->reload_failures;
	if (f->loaded >= p->loaded) {
		p->loaded = f->loaded;
		memcpy(p->policy, f->policy, sizeof(p->policy));
	}
	for (i = 0; i < f->nkeys && i < STATS_KEYS; i++)
		add_key(a, c, f->program, &f->keys[i]);
	if (f->nrules >= STATS_RULES)
		n = STATS_RULES;
	for (i = 0; i < n; i++) {
		const struct stats_rule *r = &f->rules[i];
		struct agg_rule *g;

		if (r->state != STATS_SLOT_READY)
			continue;
		g = rule_of(a, c, f->program, r);
		g->sealed += r->sealed;
		g->live += (int64_t)r->live;
		for (k = 0; k < STATS_RESULTS; k++)
			for (j = 0; j < REASON_COUNT; j++)
				g->ended[k][j] += r->ended[k][j];
		for (k = 0; k <= STATS_HIST; k++)
			g->hs_hist[k] += r->hs_hist[k];
		g->hs_sum_us += r->hs_sum_us;
		g->bytes_in += r->bytes_in;
		g->bytes_out += r->bytes_out;
	}
}

/* NAME is "PID.stats"?  The pid, or 0. */
static pid_t
name_pid(const char *name)
{
	char *end;
	long v;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	v = strtol(name, &end, 10);
	return strcmp(end, STATS_SUFFIX) == 0 && v > 0 && v < (1l << 22) ?
	    (pid_t)v : 0;
}

int
stats_scan(const char *dir, int keep, struct agg *a)
{
	struct stats_file *f;
	struct caps c = { 0, 0, 0 };
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int dfd, fd;
	pid_t pid;

	memset(a, 0, sizeof(*a));
	a->now = time(NULL);
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;       /* nothing has run under the shim */
		fprintf(stderr, "sockseal: stats: %s: %s\n", dir,
		    strerror(errno));
		return -1;
	}
	if ((f = malloc(sizeof(*f))) == NULL) {
		closedir(d);
		fprintf(stderr, "sockseal: stats: out of memory\n");
		return -1;
	}
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if ((pid = name_pid(de->d_name)) == 0)
			continue;
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
		    !read_file(fd, f)) {
			close(fd);
			/* Not finished: its writer's, unless it is gone. */
			if (!keep && kill(pid, 0) != 0 && errno == ESRCH &&
			    unlinkat(dfd, de->d_name, 0) == 0)
				a->removed++;
			continue;
		}
		close(fd);
		if (f->pid != pid || !is_live(f, sb.st_uid)) {
			if (!keep && unlinkat(dfd, de->d_name, 0) == 0)
				a->removed++;
			continue;
		}
		add_file(a, &c, f);
	}
	closedir(d);
	free(f);
	return 0;
}

void
stats_agg_free(struct agg *a)
{
	free(a->prog);
	free(a->rule);
	free(a->key);
	memset(a, 0, sizeof(*a));
}
