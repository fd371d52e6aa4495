/*
 * carry: a session travels with its socket across exec (docs/handoff.md).
 *
 * The old image.  Before an exec or spawn (the exec gate, hook_exec.c),
 * each session this process holds either travels or stays behind:
 *   - it travels when the next image loads the shim, the session has a
 *     state object (session_state.c) and its kfd is inherited (one of the
 *     program's fds on its stand-in is not close-on-exec: hook_kfd_sync).
 *     The kfd and the state object go to the new image as they are: same
 *     keys, same counters, the queued and the unread bytes.
 *   - otherwise it stays behind.  For an exec of this very process that
 *     is a close of its last fds here: the holder entry goes, and if no
 *     other process holds the session, its end-of-stream mark is sent now
 *     (carry_exec_leave).  A spawned child (posix_spawn, vfork) takes
 *     nothing from its parent, which keeps holding.
 * A child about to run a travelling session is a holder before it runs:
 * its pid is registered by its parent after posix_spawn (fork_pending
 * covers the call itself), or by itself before exec after vfork.  So no
 * other holder ends the stream while the new image starts.
 *
 * The new image.  At start, before any fd is adopted (conn.c),
 * carry_inventory() finds the shim's descriptors among those inherited:
 * the sockets and the state objects at and above the kfd base, paired by
 * the socket's identity that the state object names.  They are hidden as
 * kfds at once.  A stand-in's tag then names its socket (by inode when the
 * kfd number is another process's: a stand-in received by SCM_RIGHTS, then
 * exec'd) and the session is attached (session_attach).  A pair that no
 * stand-in of this image names (the program, or posix_spawn's file actions,
 * closed or never passed the fd) is a connection this image does not hold:
 * carry_orphans() ends it here as a close would.
 * The inventory looks at every open fd (adopt.c finds them): where the
 * old image's kfds are depends on limits this image may not share (a
 * posix_spawn child starts with its parent's raised limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carry.h"
#include "conn.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "nextimage.h"
#include "real.h"
#include "session.h"
#include "standin.h"

struct carried {
	int   kfd, sfd;
	dev_t dev;
	ino_t ino;
	bool  taken;
};

/* What this image inherited: written at start (one thread), read after. */
static struct carried *carried;
static int ncarried;

struct found {
	int   fd;
	dev_t dev;
	ino_t ino;
};

/* Append to V (*n, *cap): false when out of memory. */
static bool
found_add(struct found **v, int *n, int *cap, int fd, dev_t dev, ino_t ino)
{
	struct found *nv;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		if ((nv = realloc(*v, (size_t)*cap * sizeof(**v))) == NULL)
			return false;
		*v = nv;
	}
	(*v)[*n].fd = fd;
	(*v)[*n].dev = dev;
	(*v)[*n].ino = ino;
	(*n)++;
	return true;
}

/* Pair the state objects with their sockets; close what belongs to none. */
static void
pair(struct found *socks, int nsocks, struct found *states, int nstates)
{
	int i, j;
	bool paired;

	if (nstates == 0 ||
	    (carried = calloc((size_t)nstates, sizeof(*carried))) == NULL)
		nstates = 0;
	for (i = 0; i < nstates; i++) {
		paired = false;
		for (j = 0; j < nsocks; j++) {
			if (socks[j].fd < 0 || socks[j].dev != states[i].dev ||
			    socks[j].ino != states[i].ino)
				continue;
			if (paired) {
				/* An epoll copy of the old image's (kown). */
				real_close(socks[j].fd);
			} else {
				carried[ncarried].kfd = socks[j].fd;
				carried[ncarried].sfd = states[i].fd;
				carried[ncarried].dev = states[i].dev;
				carried[ncarried].ino = states[i].ino;
				standin_mark(socks[j].fd, true);
				standin_mark(states[i].fd, true);
				ncarried++;
				paired = true;
			}
			socks[j].fd = -1;
		}
		if (!paired)
			real_close(states[i].fd);
	}
}

void
carry_inventory(const int *fds, int nfds)
{
	struct found *socks = NULL, *states = NULL;
	int nsocks = 0, nstates = 0, csocks = 0, cstates = 0, i;
	struct stat st;
	dev_t dev;
	ino_t ino;

	for (i = 0; i < nfds; i++) {
		if (fstat(fds[i], &st) < 0)
			continue;
		if (S_ISSOCK(st.st_mode))
			(void)found_add(&socks, &nsocks, &csocks, fds[i],
			    st.st_dev, st.st_ino);
		else if (S_ISREG(st.st_mode) && st.st_nlink == 0 &&
		    session_state_identity(fds[i], &dev, &ino) == 0)
			(void)found_add(&states, &nstates, &cstates, fds[i],
			    dev, ino);
	}
	pair(socks, nsocks, states, nstates);
	free(socks);
	free(states);
}

bool
carry_any(void)
{
	return ncarried > 0;
}

int
carry_kfd_by_ino(unsigned int ino31)
{
	int i;

	for (i = 0; i < ncarried; i++)
		if (!carried[i].taken && carried[i].kfd >= 0 &&
		    ((unsigned int)(carried[i].ino & 0x7fffffff) | 1u) == ino31)
			return carried[i].kfd;
	return -1;
}

int
carry_take(int kfd)
{
	int i;

	for (i = 0; i < ncarried; i++) {
		if (carried[i].kfd == kfd && !carried[i].taken) {
			carried[i].taken = true;
			return carried[i].sfd;
		}
	}
	return -1;
}

void
carry_drop(int kfd)
{
	int i;

	for (i = 0; i < ncarried; i++) {
		if (carried[i].kfd != kfd)
			continue;
		carried[i].taken = true;
		standin_close(carried[i].sfd);
		carried[i].sfd = -1;
	}
}

void
carry_orphans(void)
{
	struct session *s;
	int i;

	for (i = 0; i < ncarried; i++) {
		if (carried[i].taken)
			continue;
		carried[i].taken = true;
		s = session_attach(carried[i].sfd, carried[i].kfd, -1, 0,
		    conn_rule_for(carried[i].kfd));
		if (s == NULL) {
			standin_close(carried[i].sfd);
			standin_close(carried[i].kfd);
			continue;
		}
		/* This image holds none of its fds: as their last close. */
		session_close_last(s, carried[i].kfd);
		session_put(s);
	}
	free(carried);
	carried = NULL;
	ncarried = 0;
}

/*
 * The exec gate's part (carry.h).  Before the call, the sessions this
 * process holds, once each, and whether each travels; after it, what that
 * meant.  No allocation: a vfork child runs this on its parent's heap.
 */
static bool
inherited(struct session *s)
{
	int k = session_kfd(s, -1), fl;

	return k >= 0 && (fl = real_fcntl(k, F_GETFD, 0)) >= 0 &&
	    !(fl & FD_CLOEXEC);
}

/* Is FD (a copy of S's stand-in or not) among DUPS? */
static bool
duped(struct session *s, const int *dups, int ndups)
{
	struct session *t;
	int i;
	bool hit = false;

	for (i = 0; i < ndups && !hit; i++) {
		if ((t = fdtab_get(dups[i])) == NULL)
			continue;
		hit = t == s;
		session_put(t);
	}
	return hit;
}

/*
 * A vfork() child's own fd table: its dup2s went past the tables (they are
 * its parent's).  Does one of its low fds, not close-on-exec, hold S's
 * stand-in (inetd style: dup2 onto 0 and 1, then exec)?
 */
#define VFORK_SCAN      64

static bool
stand_in_below(struct session *s)
{
	struct stat st;
	int fd, fl;

	for (fd = 0; fd < VFORK_SCAN; fd++)
		if ((fl = real_fcntl(fd, F_GETFD, 0)) >= 0 &&
		    !(fl & FD_CLOEXEC) && fstat(fd, &st) == 0 &&
		    S_ISSOCK(st.st_mode) && session_stand_in_is(s, st.st_ino))
			return true;
	return false;
}

/* S's kfd and state object are inherited for this exec or spawn. */
static void
inherit(struct session *s)
{
	int fds[2] = { session_kfd(s, -1), session_sfd(s) }, i, fl;

	for (i = 0; i < 2; i++)
		if (fds[i] >= 0 && (fl = real_fcntl(fds[i], F_GETFD, 0)) >= 0 &&
		    (fl & FD_CLOEXEC))
			(void)real_fcntl(fds[i], F_SETFD, fl & ~FD_CLOEXEC);
}

void
carry_exec_prepare(struct carry_gate *g, enum carry_how how,
    const char *path, char *const envp[], const int *dups, int ndups)
{
	struct session *ss[CARRY_GATE_MAX];
	int fds[CARRY_GATE_MAX], n, i, j;
	pid_t me = getpid();
	bool travels, in;

	g->how = how;
	g->n = 0;
	g->gated = false;
	if (!standin_any())
		return;
	g->shim_image = nextimage_runs_shim(path, envp);
	n = fdtab_snapshot(fds, ss, CARRY_GATE_MAX);
	for (i = 0; i < n; i++) {
		for (j = 0; j < g->n && g->e[j].s != ss[i]; j++)
			;
		if (j < g->n) {
			session_put(ss[i]);
			continue;
		}
		g->e[g->n].s = ss[i];
		g->e[g->n].left = false;
		in = inherited(ss[i]);
		/* A copy made where the tables do not see it (posix_spawn's
		 * file actions, a vfork child's dup2) makes it inherited. */
		if (!in && g->shim_image && session_sfd(ss[i]) >= 0 &&
		    ((how == CARRY_SPAWN && duped(ss[i], dups, ndups)) ||
		    (how == CARRY_VFORK && stand_in_below(ss[i])))) {
			in = true;
			g->gated = true;        /* the flags go back after */
		}
		travels = in && g->shim_image && session_sfd(ss[i]) >= 0;
		g->e[g->n].travels = travels;
		if (travels) {
			inherit(ss[i]);     /* kfd and state object */
			session_shared(ss[i]);
		}
		if (how == CARRY_SPAWN && travels) {
			session_spawn_pending(ss[i], 1);
		} else if (how == CARRY_VFORK && travels) {
			session_hold_new(ss[i], me);
		} else if (how == CARRY_EXEC && !travels) {
			/*
			 * It ends in this process: as the close of its last
			 * fds here.  One the next image would have held, but
			 * cannot go on (no shim there, or no state object),
			 * is a truncation if nobody else holds it: never a
			 * clean end the program did not make.
			 */
			if (in && !session_others_hold(ss[i]))
				session_abandon(ss[i], "exec'd into an image "
				    "that does not load the shim");
			g->e[g->n].left = true;
			session_close_last(ss[i], fds[i]);
		}
		g->n++;
	}
	if (!g->shim_image) {
		/* That image must get no kfd at all (nextimage.h). */
		standin_cloexec_all();
		g->gated = true;
	}
}

void
carry_exec_done(struct carry_gate *g, pid_t child)
{
	int i;

	for (i = 0; i < g->n; i++) {
		if (g->how == CARRY_SPAWN && g->e[i].travels) {
			if (child > 0)
				session_hold_new(g->e[i].s, child);
			session_spawn_pending(g->e[i].s, -1);
		} else if (g->e[i].left) {
			/* The exec failed: this process holds it again (an
			 * end-of-stream mark sent meanwhile stays sent). */
			session_hold(g->e[i].s, session_nfds(g->e[i].s));
		}
		session_put(g->e[i].s);
	}
	g->n = 0;
}
