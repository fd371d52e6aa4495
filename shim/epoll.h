/*
 * epoll: readiness translation for epoll (design at the top of epoll.c).
 */
#ifndef SOCKSEAL_EPOLL_H
#define SOCKSEAL_EPOLL_H

#include <signal.h>
#include <stdbool.h>
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
 * epoll_closed(fd, s, last): FD is being closed.  If it is an epoll
 * instance, forget it.  If it is a fd of sealed session S: when LAST, the
 * kernel drops the registrations with the socket and so do we; otherwise
 * the registrations live on (a dup holds the socket) and are kept by id,
 * doing their I/O through another fd of S.
 */
void epoll_closed(int fd, struct session *s, bool last);

/* epoll_atfork(): install the fork handlers (constructor). */
void epoll_atfork(void);

#endif
