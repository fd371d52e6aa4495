/*
 * carry: a session travels with its socket across exec (carry.c has the
 * design, docs/handoff.md the whole of it).
 */
#ifndef SOCKSEAL_CARRY_H
#define SOCKSEAL_CARRY_H

#include <stdbool.h>
#include <sys/types.h>

/* The new image, at start (conn_adopt_inherited). */

/* carry_inventory(fds, n): among the N open FDS, find the kfds and state
 * objects this image inherited, pair them and hide them; before any fd is
 * adopted. */
void carry_inventory(const int *fds, int n);
/* carry_any(): did this image inherit any? */
bool carry_any(void);
/* carry_kfd_by_ino(ino31): the inherited kfd whose inode (the 31 bits a
 * stand-in's tag holds) is INO31, not taken yet; -1. */
int carry_kfd_by_ino(unsigned int ino31);
/* carry_take(kfd): the state object inherited with KFD (taken: the
 * caller attaches it or closes it); -1 if none. */
int carry_take(int kfd);
/* carry_drop(kfd): KFD goes back to the program (standin_undo): its
 * state object is closed. */
void carry_drop(int kfd);
/* carry_orphans(): after adoption, what no stand-in of this image named
 * ends here as a close of its last fds would. */
void carry_orphans(void);

/* The old image: the exec gate (hook_exec.c). */

enum carry_how {
	CARRY_EXEC,     /* this process execs */
	CARRY_VFORK,    /* a vfork() child execs (shim_foreign) */
	CARRY_SPAWN,    /* posix_spawn, system, popen: a child execs */
};

#define CARRY_GATE_MAX  256

struct session;
struct carry_gate {
	enum carry_how how;
	bool shim_image;        /* the next image loads the shim */
	bool gated;             /* every kfd was made close-on-exec */
	int n;
	struct {
		struct session *s;
		bool travels;
		bool left;
	} e[CARRY_GATE_MAX];
};

/*
 * carry_exec_prepare(g, how, path, envp, dups, ndups): before an exec
 * (HOW) of PATH with ENVP: each session travels (the next image loads the
 * shim and inherits its kfd) or stays behind (an exec: this process stops
 * holding it; the last holder ends it).  An image without the shim gets no
 * kfd.  DUPS (NDUPS) are program fds a spawn's file actions dup2: their
 * sessions are inherited even if the fds are close-on-exec.
 * carry_exec_done(g, child): after the call returned (it failed, or a
 * spawn made CHILD, or -1): the spawned child holds what travelled; a
 * failed exec holds again what it left.  If G->gated, the caller puts
 * the kfds' close-on-exec flags back (hook_kfd_sync_all): the gate
 * changed them.
 */
void carry_exec_prepare(struct carry_gate *g, enum carry_how how,
    const char *path, char *const envp[], const int *dups, int ndups);
void carry_exec_done(struct carry_gate *g, pid_t child);

#endif
