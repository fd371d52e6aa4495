/*
 * hook_spawn: posix_spawn and posix_spawnp.  glibc runs the child's file
 * actions and its exec itself, past every hook; the exec gate (carry.h)
 * is applied around the whole call (the parent waits while the child
 * execs: CLONE_VFORK), and the child is registered as a holder of what
 * travelled once the call returns its pid.
 *
 * A file action that dup2s a sealed fd (posix_spawn_file_actions_adddup2:
 * the connection onto the child's stdin and stdout) gives the child a copy
 * the fd tables never see, and the source is often close-on-exec (accept4
 * SOCK_CLOEXEC).  So the dup2 actions on sealed fds are remembered per
 * actions object, and their sessions travel with the spawn: the kfd and
 * state object are inherited for the call, then put back.
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>

#include "carry.h"
#include "fdtab.h"
#include "nextimage.h"
#include "real.h"
#include "session.h"
#include "hook.h"

#define DUPS_OBJ        32      /* actions objects remembered */
#define DUPS_PER        8       /* sealed dup2 sources per object */

static pthread_mutex_t dups_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const void *fa;
	int n;
	int fd[DUPS_PER];
} dups[DUPS_OBJ];

/* Forget what FA had (init, destroy). */
static void
dups_forget(const void *fa)
{
	int i;

	pthread_mutex_lock(&dups_lock);
	for (i = 0; i < DUPS_OBJ; i++)
		if (dups[i].fa == fa)
			dups[i].fa = NULL;
	pthread_mutex_unlock(&dups_lock);
}

/* FA dup2s FD, which is sealed. */
static void
dups_add(const void *fa, int fd)
{
	int i, slot = -1;

	pthread_mutex_lock(&dups_lock);
	for (i = 0; i < DUPS_OBJ; i++) {
		if (dups[i].fa == fa) {
			slot = i;
			break;
		}
		if (slot < 0 && dups[i].fa == NULL)
			slot = i;
	}
	if (slot >= 0) {
		if (dups[slot].fa != fa) {
			dups[slot].fa = fa;
			dups[slot].n = 0;
		}
		if (dups[slot].n < DUPS_PER)
			dups[slot].fd[dups[slot].n++] = fd;
	}
	pthread_mutex_unlock(&dups_lock);
}

/* The sealed fds FA dup2s, into OUT (DUPS_PER); the count. */
static int
dups_of(const void *fa, int *out)
{
	int i, n = 0;

	if (fa == NULL)
		return 0;
	pthread_mutex_lock(&dups_lock);
	for (i = 0; i < DUPS_OBJ; i++) {
		if (dups[i].fa == fa) {
			n = dups[i].n;
			memcpy(out, dups[i].fd, sizeof(int) * (size_t)n);
			break;
		}
	}
	pthread_mutex_unlock(&dups_lock);
	return n;
}

HOOK int
posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	dups_forget(fa);
	return real_posix_spawn_file_actions_init(fa);
}

HOOK int
posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	dups_forget(fa);
	return real_posix_spawn_file_actions_destroy(fa);
}

HOOK int
posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd,
    int newfd)
{
	int r = real_posix_spawn_file_actions_adddup2(fa, fd, newfd);

	if (r == 0 && fdtab_maybe(fd))
		dups_add(fa, fd);
	return r;
}

HOOK int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct carry_gate g;
	int d[DUPS_PER], nd = dups_of(fa, d), r;
	pid_t child = -1;

	if (!real_have_posix_spawn())
		return ENOSYS;
	carry_exec_prepare(&g, CARRY_SPAWN, path, envp, d, nd);
	r = real_posix_spawn(&child, path, fa, attr, argv, envp);
	hook_gate_done(&g, r == 0 ? child : -1);
	if (r == 0 && pid != NULL)
		*pid = child;
	return r;
}

HOOK int
posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct carry_gate g;
	int d[DUPS_PER], nd = dups_of(fa, d), r;
	char buf[4096];
	pid_t child = -1;

	if (!real_have_posix_spawnp())
		return ENOSYS;
	carry_exec_prepare(&g, CARRY_SPAWN, nextimage_find(file, envp, buf,
	    sizeof(buf)), envp, d, nd);
	r = real_posix_spawnp(&child, file, fa, attr, argv, envp);
	hook_gate_done(&g, r == 0 ? child : -1);
	if (r == 0 && pid != NULL)
		*pid = child;
	return r;
}
