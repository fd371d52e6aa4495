/*
 * epoll: readiness translation for epoll (design at the top of epoll.c).
 */
#ifndef SOCKSEAL_EPOLL_H
#define SOCKSEAL_EPOLL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct session;

/* epoll_any(): has any sealed fd ever been registered?  Lock-free. */
bool epoll_any(void);

/*
 * epoll_ctl_sealed(epfd, op, fd, ev): epoll_ctl() when FD is sealed, or
 * was registered while sealed.  Returns 0 or -errno.
 */
int epoll_ctl_sealed(int epfd, int op, int fd, struct epoll_event *ev);

/*
 * epoll_wait_sealed(epfd, events, max, timeout_ms, mask, use_mask): the
 * translated wait; returns -2 (errno untouched) when EPFD has no sealed
 * registration, so the caller uses libc directly.  Otherwise as
 * epoll_wait(): a count, or -1 with errno set.
 */
int epoll_wait_sealed(int epfd, struct epoll_event *events, int max,
    long timeout_ms, const sigset_t *mask, bool use_mask);

/*
 * epoll_filtered(epfd, events, max, n, timeout_ms, t0, mask, use_mask):
 * the program's own epoll_wait-like call returned N into EVENTS.  Every
 * such result passes through here: tagged events (the shim's own kernel
 * registrations) are translated or dropped, never returned.  T0 is
 * now_ms() before the call when timeout_ms > 0 (the wait resumes with the
 * time left when everything was swallowed).  Returns the count for the
 * program, or N unchanged (errno untouched) when nothing was tagged.
 */
int epoll_filtered(int epfd, struct epoll_event *events, int max, int n,
    long timeout_ms, uint64_t t0, const sigset_t *mask, bool use_mask);

/*
 * epoll_touch(s): session S changed (the program read, wrote, shut down or
 * polled it): its shadows are looked at by the next wait.  Lock-free and
 * one load when S has no shadow; errno untouched.
 */
void epoll_touch(struct session *s);

/* epoll_waited(s): is a thread blocked in the kernel's wait of an epoll
 * instance that shadows S (it would miss a change the kernel does not
 * see)?  Takes ep_news_lock. */
bool epoll_waited(struct session *s);

/*
 * Registrations made before a socket was sealed (epoll_pre.c).
 * epoll_pre_socket(fd): socket() made TCP socket FD: a candidate.
 * epoll_pre_is(fd): is FD a candidate?  One atomic load.
 * epoll_pre_ctl(epfd, op, fd, ev): the program's successful epoll_ctl.
 * epoll_pre_done(fd, s): connect() sealed FD as session S (its noted
 * registrations become shadows), or left it plain or closed it (S NULL).
 * epoll_pre_detach(fd): the noted registrations leave the kernel (FD's
 * socket is about to move to a kfd); epoll_pre_reattach(fd): they come
 * back (the sealed connect() failed at once and FD has its socket again).
 */
void epoll_pre_socket(int fd);
bool epoll_pre_is(int fd);
void epoll_pre_ctl(int epfd, int op, int fd, const struct epoll_event *ev);
void epoll_pre_done(int fd, struct session *s);
void epoll_pre_detach(int fd);
void epoll_pre_reattach(int fd);

/*
 * epoll_closed(fd, s, last): FD is being closed.  If it is an epoll
 * instance, forget it.  If it is a fd of sealed session S: when LAST, the
 * kernel drops the registrations with the socket and so do we; otherwise
 * the registrations live on (a dup holds the socket) and are kept by id,
 * doing their I/O through another fd of S.
 */
void epoll_closed(int fd, struct session *s, bool last);

/* epoll_dup(fd, s): FD became a copy of a fd of session S (dup, dup2,
 * F_DUPFD): a registration still held under that number comes back. */
void epoll_dup(int fd, struct session *s);

/* epoll_kfd_moved(s, old, kfd): S's socket moves from kfd OLD to KFD (the
 * program dup2'ed onto OLD): its kernel registrations follow. */
void epoll_kfd_moved(struct session *s, int old, int kfd);

/* epoll_closed_range(first, last): close_range() closes these numbers:
 * forget the epoll instances they name. */
void epoll_closed_range(unsigned int first, unsigned int last);

/* Fork (init.c's handlers): every epoll lock is taken in order before
 * the copy, released in the parent, re-initialised in the child. */
void epoll_fork_prepare(void);
void epoll_fork_parent(void);
void epoll_fork_child(void);

#endif
