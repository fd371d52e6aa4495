/*
 * hook_exec: fork(), clone() and the exec family, for the process model
 * (see session.h).  The fork bookkeeping is in the fork handlers (init.c,
 * fdtab.h), which fork(), forkpty() and glibc's internal forks all run;
 * fork() only settles a fork that failed, and clone() without CLONE_VM
 * (which runs no handler) runs them itself.  exec and spawn: the sessions
 * whose sockets the next image inherits travel with them if it loads the
 * shim, the others stay behind (carry.h); an image without the shim gets
 * no kfd.  glibc's execv, execvp, execl… call execve internally, past any
 * interposer, so each has a hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "carry.h"
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
 * The exec gate is carry's (carry.h): before an exec, each session travels
 * with its socket into an image that runs the shim, or stays behind; an
 * image without the shim gets no kfd at all (every kfd close-on-exec).
 * After the call returned (it failed, or it was a spawn that made CHILD):
 * what that meant, and the kfds' flags back as the program's fds say.
 */
void
hook_gate_done(struct carry_gate *g, pid_t child)
{
	bool gated = g->gated;

	carry_exec_done(g, child);
	if (gated)
		hook_kfd_sync_all();
}

#define EXEC_WRAP(path, envp, call) do { \
	struct carry_gate g_; \
	int r_, e_; \
	carry_exec_prepare(&g_, shim_foreign() ? CARRY_VFORK : CARRY_EXEC, \
	    (path), (envp), NULL, 0); \
	nofile_exec(true); \
	r_ = (call); \
	e_ = errno; \
	nofile_exec(false); \
	hook_gate_done(&g_, -1); \
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
	struct carry_gate g;
	int r, e;

	if (!real_have_system()) {
		errno = ENOSYS;
		return -1;
	}
	carry_exec_prepare(&g, CARRY_SPAWN, cmd != NULL ? "/bin/sh" : NULL,
	    environ, NULL, 0);
	r = real_system(cmd);
	e = errno;
	hook_gate_done(&g, -1);
	errno = e;
	return r;
}

HOOK FILE *
popen(const char *cmd, const char *mode)
{
	struct carry_gate g;
	FILE *f;
	int e;

	if (!real_have_popen()) {
		errno = ENOSYS;
		return NULL;
	}
	carry_exec_prepare(&g, CARRY_SPAWN, "/bin/sh", environ, NULL, 0);
	f = real_popen(cmd, mode);
	e = errno;
	hook_gate_done(&g, -1);
	errno = e;
	return f;
}
