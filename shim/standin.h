/*
 * standin: the program never holds the wire (docs/standin.md).
 *
 * Once a rule seals a connection, the fd number the program holds refers
 * to a stand-in: a never-connected TCP socket of the same family, on which
 * every call that goes around the shim fails (write EPIPE, read ENOTCONN).
 * The TCP socket itself moves to a descriptor of the shim's own, the kfd,
 * placed out of the program's way (at or above the descriptor limit the
 * program sees: hook_limits.c raises the real one), and reached only
 * through the session.
 *
 * A stand-in carries a tag so that an exec'd image running the shim finds
 * its kfd: TCP_NOTSENT_LOWAT holds STANDIN_MAGIC, flags and the kfd number,
 * TCP_USER_TIMEOUT the kfd's inode (31 bits), both harmless on a socket
 * that never connects.
 */
#ifndef SOCKSEAL_STANDIN_H
#define SOCKSEAL_STANDIN_H

#include <stdbool.h>
#include <sys/types.h>

#include "fdtab.h"

/* Tag flags. */
#define STANDIN_INIT    1u      /* the program connect()ed (initiator) */
#define STANDIN_USED    2u      /* handshake bytes moved: cannot restart */
#define STANDIN_PLAIN   4u      /* permissive rule, plaintext client */

/* standin_init(): the limits and the kfd base (the constructor). */
void standin_init(void);

/* standin_base(): the lowest number a kfd takes. */
int standin_base(void);

/*
 * standin_swap(fd, family, flags): FD is a TCP socket of FAMILY (AF_INET,
 * AF_INET6) that a rule seals: move it to a kfd and put a stand-in of the
 * same family tagged FLAGS on FD (same close-on-exec, same O_NONBLOCK).
 * Returns the kfd, or -errno with FD untouched.
 */
int standin_swap(int fd, int family, unsigned int flags);

/* standin_undo(fd, kfd): put the socket back on FD (a sealed connect()
 * that failed at once); KFD is closed. */
void standin_undo(int fd, int kfd);

/*
 * standin_find(fd, &flags): FD is a tagged stand-in whose kfd is open in
 * this process (an image after exec): returns the kfd, or -1.
 */
int standin_find(int fd, unsigned int *flags);

/* standin_retag(fd, kfd, flags): FD's stand-in tag names KFD with FLAGS. */
int standin_retag(int fd, int kfd, unsigned int flags);

/* standin_is_kfd(fd): is FD one of the shim's kfds?  The byte fdtab_maybe
 * looks at (fdtab.h). */
static inline bool
standin_is_kfd(int fd)
{
	return fdtab_is_kfd(fd);
}

/* standin_mark(kfd, on): KFD is (no longer) a kfd of this process. */
void standin_mark(int kfd, bool on);

/* standin_close(fd): close FD, one of the shim's descriptors (a kfd or a
 * state object), and forget it; errno kept. */
void standin_close(int fd);

/* standin_any(): has this process ever had a kfd?  (A cheap filter.) */
bool standin_any(void);

/* standin_kfds(first, last, out, max): the kfds in [FIRST, LAST], in
 * order; returns the count (at most MAX). */
int standin_kfds(unsigned int first, unsigned int last, int *out, int max);

/* standin_cloexec_all(): every kfd of this process becomes close-on-exec
 * (an exec into an image without the shim: nextimage.h). */
void standin_cloexec_all(void);

/* standin_hide(fd, cloexec): a copy of FD among the shim's descriptors
 * (at the base, marked), close-on-exec if CLOEXEC; -1 (errno). */
int standin_hide(int fd, bool cloexec);

/* standin_dup(kfd): another kfd for the same socket (close-on-exec as KFD). */
int standin_dup(int kfd);

#endif
