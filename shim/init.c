/*
 * init: see init.h.
 *
 * Exit: a program that returns from main() or calls exit() with sealed
 * sockets still open must end each stream with the end-of-stream mark, or
 * its peer would read a truncation error.  shim_exit() (the destructor,
 * hook_start.c) does that for every session this process still has in the
 * table.  _exit() skips destructors, but not TCP's FIN: its hook
 * (hook_start.c) ends the streams too, without flushing stdio, as _exit()
 * does not.  Death by signal runs nothing, and the peer then sees a
 * truncation, as it should.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "epoll.h"
#include "fdtab.h"
#include "log.h"
#include "fileio.h"
#include "policy.h"
#include "real.h"
#include "reload.h"
#include "shuttle.h"
#include "startwarn.h"
#include "stats.h"
#include "session.h"
#include "conn.h"
#include "nofile.h"
#include "init.h"
#include "version.h"

#define DEFAULT_POLICY "/etc/sockseal/policy"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* The shim reads its policy and keys past its own hooks. */
static const struct fileio init_fileio = { real_open, real_read, real_close };

/* The process whose memory this is (see shim_foreign). */
static pid_t shim_pid;

/* Set once the program enters a sandbox (shim_sandbox): atomic. */
static bool shim_sandboxed;

void
shim_sandbox(void)
{
	/* The last moment a statistics file can be made. */
	stats_need(NULL);
	__atomic_store_n(&shim_sandboxed, true, __ATOMIC_RELEASE);
	/* A policy check under way opens files: let it finish before the
	 * filter that may forbid them goes in.  Nothing is logged after. */
	reload_sandbox();
	log_level = -1;
}

void
shim_chrooted(void)
{
	stats_need(NULL);
	reload_sandbox();
	log_level = -1;
}

bool
shim_in_sandbox(void)
{
	return __atomic_load_n(&shim_sandboxed, __ATOMIC_ACQUIRE);
}

/*
 * The fork handlers, the only ones: locks are taken in the order of the
 * modules' lock rules (epoll's, then the fd table's), released in the
 * parent, and re-initialised in the child, which then registers as a
 * holder of the sessions it inherited (fdtab.h).
 */
void
shim_fork_prepare(void)
{
	epoll_fork_prepare();
	fdtab_fork_prepare();
}

void
shim_fork_parent(void)
{
	fdtab_fork_parent();
	epoll_fork_parent();
}

void
shim_fork_child(void)
{
	shim_pid = getpid();
	fdtab_fork_child();
	epoll_fork_child();
	reload_fork_child();
	stats_fork_child();
	conn_fork_child();
	nofile_fork_child();
	shuttle_fork_child();
}

bool
shim_foreign(void)
{
	pid_t p = __atomic_load_n(&shim_pid, __ATOMIC_RELAXED);

	return p != 0 && p != getpid();
}

/*
 * A start-up error the program must not run past: a line in the log, in
 * its format and file; and, when that is a file, the same said as text on
 * stderr too, where whoever started the program looks.
 */
static void
init_die(const char *msg)
{
	char line[POLICY_ERRLEN + 64];
	int n;

	log_write(LOG_ERROR, NULL, NULL, 0, "%s", msg);
	n = snprintf(line, sizeof(line), "sockseal[%ld]: error: %s\n",
	    (long)getpid(), msg);
	if (n > 0 && log_to_file())
		(void)real_write(STDERR_FILENO, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	_exit(1);
}

static void
init_run(void)
{
	char err[POLICY_ERRLEN];
	const char *path;
	int saved = errno;

	real_init();
	fileio_set(&init_fileio);
	nofile_init();
	if (log_init(err, sizeof(err)) < 0)
		init_die(err);
	session_init();
	shim_pid = getpid();
	pthread_atfork(shim_fork_prepare, shim_fork_parent, shim_fork_child);
	path = getenv("SOCKSEAL_POLICY");
	if (path == NULL || *path == '\0')
		path = DEFAULT_POLICY;
	if (reload_start(path, err) < 0)
		init_die(err);
	LOG(LOG_DEBUG, "policy %s: %zu rules; %s", path,
	    policy_nrules(reload_peek()->pol), sockseal_ident());
	stats_start(reload_path_in_force());
	/* A secret others can read, said once per program, at its start. */
	startwarn_exposed(reload_peek()->pol);
	errno = saved;
}

const struct reload_policy *
shim_decide(void)
{
	pthread_once(&init_once, init_run);
	return reload_current();
}

const struct policy *
shim_policy_loaded(void)
{
	pthread_once(&init_once, init_run);
	return reload_peek()->pol;
}

void
shim_start(void (*adopted)(int fd))
{
	int saved = errno;

	pthread_once(&init_once, init_run);
	(void)conn_adopt_inherited(adopted);
	errno = saved;
}

void
shim_exit(bool flush)
{
	enum { BATCH = 256 };
	int fds[BATCH], n, i;
	struct session *ss[BATCH];
	int saved = errno;

	n = fdtab_snapshot(fds, ss, BATCH);
	/* exit() flushes stdio after the destructors: streams that write to
	 * a sealed socket must get their bytes out before the end mark. */
	if (n > 0 && flush)
		(void)fflush(NULL);
	for (i = 0; i < n; i++) {
		session_exit(ss[i], fds[i]);
		session_put(ss[i]);
	}
	stats_exit();
	errno = saved;
}
