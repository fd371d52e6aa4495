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

/* epoll_closed(fd): FD is being closed: if it is an epoll instance, forget
 * it; if it is the last fd of sealed session S (S may be NULL), drop its
 * registrations. */
void epoll_closed(int fd, struct session *s);

#endif
