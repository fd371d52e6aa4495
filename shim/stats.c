/*
 * stats: see stats.h; the file's layout is stats_file.h.
 *
 * The file.  At start the shim makes DIR/PID.stats (DIR from
 * SOCKSEAL_STATS_DIR, else /run/sockseal, made mode 01777 if missing: any
 * user's programs count, and each file is its owner's), sizes it, maps it
 * MAP_SHARED and closes the descriptor: nothing stays in the program's fd
 * table, and a program that then enters a sandbox (seccomp, a chroot,
 * dropped privileges) keeps counting into the mapping.  A file left by an
 * earlier image of this process (exec keeps the pid) is taken over and
 * zeroed; one owned by somebody else, or anything but a regular file (a
 * symlink planted in the directory), is never used.  Without a file every
 * call here is a test of one pointer.
 *
 * Counting.  A relaxed atomic add to a word of the mapping: no system call
 * on the data path.  A rule's counters are in a slot named FILE:LINE, so
 * a reload that keeps a rule where it was keeps counting into the same
 * slot; a session remembers its slot number (stats_slot()), valid for the
 * life of this image.
 *
 * Fork.  The child's handler makes the child its own file (named for its
 * pid) with the slot names copied and the counters zeroed: what the parent
 * counted stays the parent's, the slot numbers sessions remember stay
 * right, and a forking server's children each show up.  A child that cannot
 * make one (a sandbox) counts into its parent's.  The handler uses only
 * system calls and plain stores (it runs after fork in a threaded parent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "keyfile.h"
#include "log.h"
#include "policy.h"
#include "real.h"
#include "stats.h"
#include "stats_file.h"

static struct stats_file *st;   /* NULL: no statistics */
static char st_dir[192];
static bool st_earlier;         /* an earlier image of this process made
                                 * the file (exec) */

static void
add(uint64_t *w, uint64_t n)
{
	__atomic_fetch_add(w, n, __ATOMIC_RELAXED);
}

/* "DIR/PID.stats" into BUF, by hand (the fork child). */
static int
stats_path(char *buf, size_t cap, pid_t pid)
{
	char num[16];
	size_t d = strlen(st_dir), n = 0, i;

	do
		num[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0 && n < sizeof(num));
	if (d + 1 + n + sizeof(STATS_SUFFIX) > cap)
		return -1;
	memcpy(buf, st_dir, d);
	buf[d++] = '/';
	for (i = 0; i < n; i++)
		buf[d++] = num[n - 1 - i];
	memcpy(buf + d, STATS_SUFFIX, sizeof(STATS_SUFFIX));
	return 0;
}

/* Field 22 of /proc/self/stat: when this process started, in ticks. */
static uint64_t
start_ticks(void)
{
	char buf[512];
	ssize_t n;
	int fd;

	if ((fd = real_open("/proc/self/stat", O_RDONLY | O_CLOEXEC, 0)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)real_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return stats_stat_start(buf);
}

uint64_t
stats_stat_start(const char *stat)
{
	const char *p;
	uint64_t v = 0;
	int field;

	/* After the command name in parentheses, which may hold anything. */
	if ((p = strrchr(stat, ')')) == NULL)
		return 0;
	for (field = 2; *p != '\0' && field < 22; p++)
		if (*p == ' ')
			field++;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

/* Is FD's file one an earlier image of this very process made (the same
 * pid and start time: this image came by exec)? */
static bool
earlier_image(int fd)
{
	struct stats_file h;

	if (pread(fd, &h, offsetof(struct stats_file, started), 0) !=
	    (ssize_t)offsetof(struct stats_file, started))
		return false;
	return memcmp(h.magic, STATS_MAGIC, sizeof(h.magic)) == 0 &&
	    h.pid == getpid() && h.start_ticks != 0 &&
	    h.start_ticks == start_ticks();
}

bool
stats_earlier_image(void)
{
	return st_earlier;
}

/* Make and map this process's file; NULL without one. */
static struct stats_file *
stats_map(pid_t pid)
{
	char path[sizeof(st_dir) + 32];
	struct stats_file *f;
	struct stat sb;
	void *m;
	int fd;

	if (stats_path(path, sizeof(path), pid) < 0)
		return NULL;
	fd = real_open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK, 0644);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_uid != geteuid()) {
		(void)real_close(fd);
		return NULL;
	}
	st_earlier = pid == getpid() && earlier_image(fd);
	if (ftruncate(fd, 0) != 0 ||
	    ftruncate(fd, (off_t)sizeof(*f)) != 0) {
		(void)real_close(fd);
		return NULL;
	}
	(void)fchmod(fd, 0644);         /* whatever the umask */
	m = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	(void)real_close(fd);
	if (m == MAP_FAILED)
		return NULL;
	f = m;
	f->version = STATS_VERSION;
	f->size = sizeof(*f);
	f->pid = pid;
	f->start_ticks = start_ticks();
	if (stat("/proc/self/exe", &sb) == 0) {
		f->exe_dev = sb.st_dev;
		f->exe_ino = sb.st_ino;
	}
	f->started = time(NULL);
	snprintf(f->program, sizeof(f->program), "%s",
	    program_invocation_short_name);
	return f;
}

/* The magic last: a reader takes the file from then on. */
static void
stats_publish(struct stats_file *f)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(f->magic, STATS_MAGIC, sizeof(f->magic));
}

void
stats_start(const char *policy_path)
{
	const char *d = getenv("SOCKSEAL_STATS_DIR");
	struct stats_file *f;
	int saved = errno;

	if (d == NULL || *d == '\0')
		d = STATS_DIR_DEF;
	if (strcmp(d, "off") == 0 || strlen(d) >= sizeof(st_dir))
		return;
	memcpy(st_dir, d, strlen(d) + 1);
	if (mkdir(st_dir, 01777) == 0)
		(void)chmod(st_dir, 01777);
	if ((f = stats_map(getpid())) == NULL) {
		LOG(LOG_DEBUG, "no statistics: %s: %s", st_dir, strerror(errno));
		errno = saved;
		return;
	}
	snprintf(f->policy, sizeof(f->policy), "%s", policy_path);
	stats_publish(f);
	st = f;
	errno = saved;
}

void
stats_fork_child(void)
{
	struct stats_file *p = st, *f;
	int i, saved = errno;

	/* In a sandbox a new file may be forbidden (seccomp may kill for
	 * an open()): the parent's it is. */
	if (p == NULL || shim_in_sandbox() ||
	    (f = stats_map(getpid())) == NULL) {
		errno = saved;
		return;
	}
	memcpy(f->policy, p->policy, sizeof(f->policy));
	f->loaded = p->loaded;
	f->nkeys = p->nkeys;
	memcpy(f->keys, p->keys, sizeof(f->keys));
	f->nrules = p->nrules;
	for (i = 0; i < STATS_RULES; i++) {
		f->rules[i].dir = p->rules[i].dir;
		memcpy(f->rules[i].name, p->rules[i].name,
		    sizeof(f->rules[i].name));
		f->rules[i].state = p->rules[i].state;
	}
	stats_publish(f);
	st = f;
	/* The parent's mapping stays mapped: a session may be counting
	 * into it in no thread of ours now, but munmap is not needed. */
	(void)munmap(p, sizeof(*p));
	errno = saved;
}

/* The process exits: its counters go with it (not in a sandbox, which
 * may kill a process for an unlink()). */
void
stats_exit(void)
{
	char path[sizeof(st_dir) + 32];
	struct stats_file *f = st;
	int saved = errno;

	if (f == NULL || f->pid != getpid() || shim_in_sandbox() ||
	    stats_path(path, sizeof(path), f->pid) < 0)
		return;
	st = NULL;
	(void)unlink(path);
	errno = saved;
}

static void
key_entry(struct stats_key *k, const char *kind, const char *name,
    const char *path, const uint8_t *key, bool pub)
{
	struct stat sb;

	snprintf(k->kind, sizeof(k->kind), "%s", kind);
	snprintf(k->name, sizeof(k->name), "%s", name);
	if (pub)
		keyfile_pub_fingerprint(key, k->fpr);
	else
		keyfile_fingerprint(key, k->fpr);
	k->mtime = path != NULL && stat(path, &sb) == 0 ? sb.st_mtime : 0;
}

void
stats_policy(const struct policy *p, bool reloaded)
{
	struct stats_file *f = st;
	size_t i, n = 0;
	int saved = errno;

	if (f == NULL)
		return;
	__atomic_store_n(&f->keys_gen, f->keys_gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (i = 0; i < policy_nkeys(p) && n < STATS_KEYS; i++) {
		const struct policy_key *k = policy_key_at(p, i);

		key_entry(&f->keys[n++], "key", k->name, k->resolved, k->key,
		    false);
	}
	for (i = 0; i < policy_nidentities(p) && n < STATS_KEYS; i++) {
		const struct policy_identity *id = policy_identity_at(p, i);

		key_entry(&f->keys[n++], "identity", id->name, id->resolved,
		    id->pk, true);
	}
	for (i = 0; i < policy_npeers(p) && n < STATS_KEYS; i++) {
		const struct policy_peer *pe = policy_peer_at(p, i);

		key_entry(&f->keys[n++], "peer", pe->name, pe->resolved,
		    pe->pk, true);
	}
	f->nkeys = (uint32_t)n;
	f->loaded = time(NULL);
	if (reloaded)
		add(&f->reloads, 1);
	__atomic_store_n(&f->keys_gen, f->keys_gen + 1, __ATOMIC_RELEASE);
	errno = saved;
}

void
stats_reload_failed(void)
{
	if (st != NULL)
		add(&st->reload_failures, 1);
}

static bool
slot_is(const struct stats_rule *r, const struct policy_rule *rule,
    const char *name)
{
	return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ==
	    STATS_SLOT_READY && r->dir == (uint32_t)rule->dir &&
	    strcmp(r->name, name) == 0;
}

/*
 * A slot claimed twice for one rule by two threads at once is harmless:
 * the reader adds slots of the same name.  The last slot is "other", for
 * the rules beyond the table.
 */
int
stats_slot(const struct policy_rule *rule)
{
	struct stats_file *f = st;
	struct stats_rule *r;
	char name[STATS_NAMELEN];
	uint32_t i, n;

	if (f == NULL || rule == NULL)
		return -1;
	snprintf(name, sizeof(name), "%s:%d", rule->file, rule->line);
	n = __atomic_load_n(&f->nrules, __ATOMIC_ACQUIRE);
	for (i = 0; i < n && i < STATS_RULES - 1; i++)
		if (slot_is(&f->rules[i], rule, name))
			return (int)i;
	i = __atomic_fetch_add(&f->nrules, 1, __ATOMIC_ACQ_REL);
	if (i >= STATS_RULES - 1) {
		i = STATS_RULES - 1;
		r = &f->rules[i];
		if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) ==
		    STATS_SLOT_READY)
			return (int)i;
		snprintf(name, sizeof(name), "other");
	}
	r = &f->rules[i];
	__atomic_store_n(&r->state, STATS_SLOT_BUSY, __ATOMIC_RELAXED);
	r->dir = (uint32_t)rule->dir;
	memcpy(r->name, name, sizeof(r->name));
	__atomic_store_n(&r->state, STATS_SLOT_READY, __ATOMIC_RELEASE);
	return (int)i;
}

void
stats_handshakes(int delta)
{
	if (st != NULL)
		add(&st->handshakes, (uint64_t)(int64_t)delta);
}

void
stats_conn_sealed(int slot, uint64_t hs_us)
{
	static const uint64_t bound[STATS_HIST] = STATS_HIST_MS;
	struct stats_rule *r;
	int b;

	if (st == NULL || slot < 0 || slot >= STATS_RULES)
		return;
	r = &st->rules[slot];
	add(&r->sealed, 1);
	add(&r->live, 1);
	for (b = 0; b < STATS_HIST && hs_us > bound[b] * 1000; b++)
		;
	add(&r->hs_hist[b], 1);
	add(&r->hs_sum_us, hs_us);
}

void
stats_conn_ended(int slot, int result, int reason)
{
	struct stats_rule *r;

	if (st == NULL || slot < 0 || slot >= STATS_RULES)
		return;
	r = &st->rules[slot];
	if (reason < 0 || reason >= REASON_COUNT)
		reason = REASON_NONE;
	add(&r->ended[result & (STATS_RESULTS - 1)][reason], 1);
}

void
stats_conn_gone(int slot)
{
	if (st != NULL && slot >= 0 && slot < STATS_RULES)
		add(&st->rules[slot].live, (uint64_t)-1);
}

void
stats_bytes(int slot, uint64_t in, uint64_t out)
{
	struct stats_rule *r;

	if (st == NULL || slot < 0 || slot >= STATS_RULES)
		return;
	r = &st->rules[slot];
	if (in > 0)
		add(&r->bytes_in, in);
	if (out > 0)
		add(&r->bytes_out, out);
}
