/*
 * stats_file: the statistics file's life in this process (stats.h; the
 * layout is stats_file.h): where it is, when it is made, fork, exec, exit.
 * The counting into it is stats.c's.
 *
 * When.  A process gets its file the first time it has something to count
 * or to show: a connection a sealing rule matches (stats_slot()), a
 * listen() while the policy has a sealing accept rule (a server waiting
 * for its first client shows what it has in force), entering a sandbox
 * (after which no file could be made), or a start-up warning (the mark an
 * exec'd image looks for: stats_earlier_image()).  Never at start: a file
 * costs a few hundred microseconds to make on a disk-backed /run, and most
 * processes a shimmed shell or service manager starts never seal anything.
 *
 * The file.  DIR/PID.stats (DIR from SOCKSEAL_STATS_DIR, else /run/sockseal,
 * made mode 01777 if missing: any user's programs count, and each file is
 * its owner's), sized, mapped MAP_SHARED and its descriptor closed at once:
 * nothing stays in the program's fd table, and a program that then enters
 * a sandbox (seccomp, a chroot, dropped privileges) keeps counting into
 * the mapping.  A file left by an earlier image of this process (exec
 * keeps the pid) is replaced (unlinked, made anew: see stats_map()); the
 * new one is made with O_EXCL, so nothing planted in the directory (a
 * symlink, another user's file) is ever written through.  Without a file every call here is a test of one pointer.
 *
 * Fork.  A child counts into its parent's file until it needs one of its
 * own (the same triggers), which starts with the parent's slot names, so
 * the slot numbers sessions remember stay right, and its counters at zero:
 * what was counted before stays where it was, and the sums are right.  The
 * parent's mapping is never unmapped (another thread may be counting into
 * it).  A child in a sandbox keeps its parent's.  The process-wide values
 * (keys, reloads) are written only into a file of the process's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "log.h"
#include "policy.h"
#include "real.h"
#include "reload.h"
#include "stats.h"
#include "stats_file.h"
#include "stats_int.h"

static struct stats_file *st;   /* where counts go (atomic); NULL: none */
static int st_state;            /* atomic: enum below */
static char st_dir[192];
static char st_policy[256];

/* ST_OFF: none in this process (not started, turned off, or it could not
 * be made); ST_NONE: none of its own yet. */
enum { ST_OFF = 0, ST_NONE, ST_MAKING, ST_OWN };

struct stats_file *
stats_cur(void)
{
	return __atomic_load_n(&st, __ATOMIC_ACQUIRE);
}

struct stats_file *
stats_own(void)
{
	return __atomic_load_n(&st_state, __ATOMIC_ACQUIRE) == ST_OWN ?
	    stats_cur() : NULL;
}

/* "DIR/PID.stats" into BUF, by hand (no allocation). */
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
	n = real_read(fd, buf, sizeof(buf) - 1);
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

/*
 * Did an earlier image of this very process make its file (the same pid
 * and start time: this image came by exec)?  Opened for reading only.
 */
bool
stats_earlier_image(void)
{
	char path[sizeof(st_dir) + 32];
	struct stats_file h;
	ssize_t n;
	int fd;

	if (st_dir[0] == '\0' || stats_path(path, sizeof(path), getpid()) < 0 ||
	    (fd = real_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK, 0)) < 0)
		return false;
	n = pread(fd, &h, offsetof(struct stats_file, started), 0);
	(void)real_close(fd);
	return n == (ssize_t)offsetof(struct stats_file, started) &&
	    memcmp(h.magic, STATS_MAGIC, sizeof(h.magic)) == 0 &&
	    h.pid == getpid() && h.start_ticks != 0 &&
	    h.start_ticks == start_ticks();
}

/* Make and map this process's file; NULL without one. */
static struct stats_file *
stats_map(pid_t pid)
{
	char path[sizeof(st_dir) + 32];
	struct stats_file *f;
	struct rlimit rl;
	struct stat sb;
	void *m;
	int fd;

	if (stats_path(path, sizeof(path), pid) < 0)
		return NULL;
	/*
	 * A file of that name (an earlier image's: exec keeps the pid) is
	 * unlinked, never truncated: a forked child of that image may still
	 * count into its mapping, which stays valid on an unlinked file but
	 * would fault (SIGBUS) past a truncation.  The new one is made with
	 * O_EXCL (no symlink, no file planted meanwhile) and its blocks
	 * allocated now: a full file system fails here, not as a SIGBUS at
	 * the first count.
	 */
	/* (A file past RLIMIT_FSIZE would raise SIGXFSZ: none then.) */
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)sizeof(*f))
		return NULL;
	(void)unlink(path);
	fd = real_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    fallocate(fd, 0, 0, (off_t)sizeof(*f)) != 0) {
		(void)real_close(fd);
		(void)unlink(path);
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

	if (d == NULL || *d == '\0')
		d = STATS_DIR_DEF;
	if (strcmp(d, "off") == 0 || strlen(d) >= sizeof(st_dir))
		return;
	memcpy(st_dir, d, strlen(d) + 1);
	snprintf(st_policy, sizeof(st_policy), "%s", policy_path);
	__atomic_store_n(&st_state, ST_NONE, __ATOMIC_RELEASE);
}

/* Make this process's own file, starting from P's slot names (the
 * parent's mapping, or NULL). */
static struct stats_file *
stats_make(const struct stats_file *p)
{
	struct stats_file *f;
	int i;

	if (mkdir(st_dir, 01777) == 0)
		(void)chmod(st_dir, 01777);
	if ((f = stats_map(getpid())) == NULL)
		return NULL;
	memcpy(f->policy, st_policy, sizeof(f->policy));
	if (p != NULL) {
		for (i = 0; i < STATS_RULES; i++) {
			f->rules[i].dir = p->rules[i].dir;
			memcpy(f->rules[i].name, p->rules[i].name,
			    sizeof(f->rules[i].name));
			f->rules[i].state = __atomic_load_n(&p->rules[i].state,
			    __ATOMIC_ACQUIRE);
		}
		f->nrules = __atomic_load_n(&p->nrules, __ATOMIC_ACQUIRE);
	}
	stats_publish(f);
	return f;
}

void
stats_need(const struct policy *pol)
{
	struct stats_file *f;
	int none = ST_NONE, saved;

	if (__atomic_load_n(&st_state, __ATOMIC_ACQUIRE) != ST_NONE ||
	    shim_in_sandbox() ||
	    !__atomic_compare_exchange_n(&st_state, &none, ST_MAKING, false,
	    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	saved = errno;
	if ((f = stats_make(__atomic_load_n(&st, __ATOMIC_ACQUIRE))) == NULL) {
		LOG(LOG_DEBUG, "no statistics: %s: %s", st_dir, strerror(errno));
		__atomic_store_n(&st_state, ST_OFF, __ATOMIC_RELEASE);
		errno = saved;
		return;
	}
	__atomic_store_n(&st, f, __ATOMIC_RELEASE);
	__atomic_store_n(&st_state, ST_OWN, __ATOMIC_RELEASE);
	if (pol == NULL && reload_peek() != NULL)
		pol = reload_peek()->pol;       /* (NULL before the shim's start) */
	if (pol != NULL)
		stats_policy(pol, false);
	errno = saved;
}

void
stats_fork_child(void)
{
	/* The parent's file until the child needs its own (stats_need()). */
	if (st_dir[0] != '\0')
		__atomic_store_n(&st_state, ST_NONE, __ATOMIC_RELAXED);
}

/* The process exits: its counters go with it (not in a sandbox, which
 * may kill a process for an unlink()). */
void
stats_exit(void)
{
	char path[sizeof(st_dir) + 32];
	struct stats_file *f = st;
	int saved = errno;

	if (f == NULL || __atomic_load_n(&st_state, __ATOMIC_ACQUIRE) !=
	    ST_OWN || f->pid != getpid() || shim_in_sandbox() ||
	    stats_path(path, sizeof(path), f->pid) < 0)
		return;
	__atomic_store_n(&st, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&st_state, ST_OFF, __ATOMIC_RELEASE);
	(void)unlink(path);
	errno = saved;
}
