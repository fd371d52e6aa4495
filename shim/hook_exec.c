/*
 * hook_exec: fork(), clone() and the exec family, for the process model
 * (see session.h).  The fork bookkeeping is in the fork handlers (init.c,
 * fdtab.h), which fork(), forkpty() and glibc's internal forks all run;
 * fork() only settles a fork that failed, and clone() without CLONE_VM
 * (which runs no handler) runs them itself.  exec: the new
 * image does not carry this process's sessions, so the process stops
 * holding them (the new image adopts inherited sockets afresh, see
 * conn.c), and holds them again if exec fails.  glibc's execv, execvp,
 * execl… call execve internally, past any interposer, so each has a hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "fdtab.h"
#include "nextimage.h"
#include "standin.h"
#include "init.h"
#include "nofile.h"
#include "real.h"
#include "hook.h"

extern char **environ;

HOOK pid_t
fork(void)
{
	pid_t pid;

	if (!real_have_fork()) {
		errno = ENOSYS;
		return -1;
	}
	/* The bookkeeping is the fork handlers' (init.c), which every fork
	 * runs; only a failed one is settled here. */
	pid = real_fork();
	if (pid < 0) {
		int saved = errno;
		fdtab_fork_failed();
		errno = saved;
	}
	return pid;
}

/*
 * clone() that copies the process (no CLONE_VM) runs no fork handler:
 * it gets them here, the child's from a trampoline before FN.  Threads and
 * vfork-like copies share the memory and need none.
 */
struct clone_call {
	int (*fn)(void *);
	void *arg;
};

static int
clone_child(void *p)
{
	struct clone_call c = *(struct clone_call *)p;

	shim_fork_child();
	return c.fn(c.arg);
}

HOOK int
clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	struct clone_call c = { fn, arg };
	void *ptid, *tls, *ctid;
	va_list ap;
	int r, e;

	va_start(ap, arg);
	ptid = va_arg(ap, void *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, void *);
	va_end(ap);
	if (!real_have_clone()) {
		errno = ENOSYS;
		return -1;
	}
	if (flags & CLONE_VM)
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	shim_fork_prepare();
	/* (C lives on in the child's copy of this stack frame.) */
	r = real_clone(clone_child, stack, flags, &c, ptid, tls, ctid);
	e = errno;
	shim_fork_parent();
	if (r < 0)
		fdtab_fork_failed();
	errno = e;
	return r;
}

/*
 * Before an exec: does the new image run the shim (nextimage.h)?  If not,
 * every kfd becomes close-on-exec, so that image never holds the wire;
 * exec_gate_done() puts the flags back if the call returned (it failed, or
 * it was a spawn).  Returns whether the kfds were closed off.
 */
static bool
exec_gate(const char *path, char *const envp[])
{
	if (!standin_any())
		return false;
	if (nextimage_runs_shim(path, envp))
		return false;
	standin_cloexec_all();
	return true;
}

static void
exec_gate_done(bool gated)
{
	if (gated)
		hook_kfd_sync_all();
}

/* Call F with exec's bookkeeping around it (PATH: the file it runs). */
#define EXEC_WRAP(path, envp, call) do { \
	int r_, e_; \
	bool g_ = exec_gate((path), (envp)); \
	fdtab_exec(true); \
	nofile_exec(true); \
	r_ = (call); \
	e_ = errno; \
	nofile_exec(false); \
	fdtab_exec(false); \
	exec_gate_done(g_); \
	errno = e_; \
	return r_; \
} while (0)

HOOK int
execve(const char *path, char *const argv[], char *const envp[])
{
	if (!real_have_execve()) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(path, envp, real_execve(path, argv, envp));
}

HOOK int
execv(const char *path, char *const argv[])
{
	if (!real_have_execv()) {
		errno = ENOSYS;
		return -1;
	}
	EXEC_WRAP(path, environ, real_execv(path, argv));
}

HOOK int
execvp(const char *file, char *const argv[])
{
	if (!real_have_execvp()) {
		errno = ENOSYS;
		return -1;
	}
	char buf[4096];

	EXEC_WRAP(nextimage_find(file, environ, buf, sizeof(buf)), environ,
	    real_execvp(file, argv));
}

HOOK int
execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (!real_have_execvpe()) {
		errno = ENOSYS;
		return -1;
	}
	char buf[4096];

	EXEC_WRAP(nextimage_find(file, envp, buf, sizeof(buf)), envp,
	    real_execvpe(file, argv, envp));
}

HOOK int
fexecve(int fd, char *const argv[], char *const envp[])
{
	if (!real_have_fexecve()) {
		errno = ENOSYS;
		return -1;
	}
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	EXEC_WRAP(path, envp, real_fexecve(fd, argv, envp));
}

/* Collect execl's arguments (up to the NULL) into an array. */
static char **
exec_args(const char *arg0, va_list ap, char ***envp)
{
	size_t n = 1, cap = 16;
	char **v, **nv, *a;

	if ((v = malloc(cap * sizeof(*v))) == NULL)
		return NULL;
	v[0] = (char *)arg0;
	do {
		a = va_arg(ap, char *);
		if (n == cap) {
			cap *= 2;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				return NULL;
			}
			v = nv;
		}
		v[n++] = a;
	} while (a != NULL);
	if (envp != NULL)
		*envp = va_arg(ap, char **);
	return v;
}

/* Free execl's argument array V after exec returned R, keeping errno. */
static int
exec_done(char **v, int r)
{
	int e = errno;

	free(v);
	errno = e;
	return r;
}

HOOK int
execl(const char *path, const char *arg, ...)
{
	char **v;
	va_list ap;

	va_start(ap, arg);
	v = exec_args(arg, ap, NULL);
	va_end(ap);
	if (v == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return exec_done(v, execv(path, v));
}

HOOK int
execlp(const char *file, const char *arg, ...)
{
	char **v;
	va_list ap;

	va_start(ap, arg);
	v = exec_args(arg, ap, NULL);
	va_end(ap);
	if (v == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return exec_done(v, execvp(file, v));
}

HOOK int
execle(const char *path, const char *arg, ...)
{
	char **v, **envp = NULL;
	va_list ap;

	va_start(ap, arg);
	v = exec_args(arg, ap, &envp);
	va_end(ap);
	if (v == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return exec_done(v, execve(path, v, envp));
}

/*
 * posix_spawn and posix_spawnp: glibc runs the child's exec itself, past
 * the exec hooks; the gate is applied around the whole call (the parent
 * waits while the child execs, CLONE_VFORK).
 */
HOOK int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	bool g;
	int r;

	if (!real_have_posix_spawn())
		return ENOSYS;
	g = exec_gate(path, envp);
	r = real_posix_spawn(pid, path, fa, attr, argv, envp);
	exec_gate_done(g);
	return r;
}

HOOK int
posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	char buf[4096];
	bool g;
	int r;

	if (!real_have_posix_spawnp())
		return ENOSYS;
	g = exec_gate(nextimage_find(file, envp, buf, sizeof(buf)), envp);
	r = real_posix_spawnp(pid, file, fa, attr, argv, envp);
	exec_gate_done(g);
	return r;
}

/*
 * execveat, system and popen: the last two run /bin/sh through glibc's
 * own spawn, past every other hook, with the program's environment; the
 * gate is applied around them as for posix_spawn.
 */
HOOK int
execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
    int flags)
{
	char buf[4096];
	const char *p = path;

	if (!real_have_execveat()) {
		errno = ENOSYS;
		return -1;
	}
	if ((flags & AT_EMPTY_PATH) && *path == '\0')
		p = snprintf(buf, sizeof(buf), "/proc/self/fd/%d", dirfd) <
		    (int)sizeof(buf) ? buf : NULL;
	else if (path[0] != '/' && dirfd != AT_FDCWD)
		p = snprintf(buf, sizeof(buf), "/proc/self/fd/%d/%s", dirfd,
		    path) < (int)sizeof(buf) ? buf : NULL;
	EXEC_WRAP(p, envp, real_execveat(dirfd, path, argv, envp, flags));
}

HOOK int
system(const char *cmd)
{
	bool g;
	int r, e;

	if (!real_have_system()) {
		errno = ENOSYS;
		return -1;
	}
	g = cmd != NULL && exec_gate("/bin/sh", environ);
	r = real_system(cmd);
	e = errno;
	exec_gate_done(g);
	errno = e;
	return r;
}

HOOK FILE *
popen(const char *cmd, const char *mode)
{
	FILE *f;
	bool g;
	int e;

	if (!real_have_popen()) {
		errno = ENOSYS;
		return NULL;
	}
	g = exec_gate("/bin/sh", environ);
	f = real_popen(cmd, mode);
	e = errno;
	exec_gate_done(g);
	errno = e;
	return f;
}
