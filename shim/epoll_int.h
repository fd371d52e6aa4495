/*
 * epoll_int: what the three files of the epoll translation share
 * (epoll.c: instances and their names; epoll_shadow.c: registrations of
 * sealed fds; epoll_wait.c: waits).  The design is at the top of epoll.c.
 * Private to those files.
 */
#ifndef SOCKSEAL_EPOLL_INT_H
#define SOCKSEAL_EPOLL_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <uthash.h>

#include "tsan.h"

struct session;

#define EP_TAG          0x5e4a1ed0U     /* high half of the kernel data */
#define EP_FORCE        UINT32_MAX      /* kev: unknown, MOD on next sync */
#define EP_USER_BITS    (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | \
                         EPOLLRDNORM | EPOLLWRNORM)
#define EP_KCMP_MAX     64              /* instances compared with kcmp */
#define EP_CLOSE_MAX    16              /* instances per session at close */

struct ep;

struct ep_reg {
	int             fd;         /* the registered fd; for I/O, see io_fd */
	uint32_t        id;         /* in the kernel's data: never reused */
	bool            orphan;     /* fd closed, a dup keeps it registered */
	int             io_fd;      /* an fd of the session to do I/O with */
	int             kfd;        /* what the kernel has registered: the
	                             * session's kfd, or kown (standin.h) */
	int             kown;       /* a kfd copy of its own (a second fd of
	                             * the session in one instance), or -1 */
	pid_t           kown_pid;   /* the process that registered kown */
	struct session *s;          /* referenced */
	struct ep      *ep;         /* the instance */
	uint32_t        uev;        /* the program's events and flags */
	epoll_data_t    udata;      /* the program's data */
	uint32_t        kev;        /* what the kernel has */
	uint32_t        pending;    /* buffered readiness to report */
	bool            disabled;   /* EPOLLONESHOT fired: waits for MOD */
	bool            report;     /* EPOLLET: report buffered data once */
	unsigned int    seen_gen;   /* EPOLLET: session_rx_gen() last told */
	unsigned int    seen_st;    /* EPOLLET: session_st_gen() last told */
	bool            news;       /* on ep->news (ep_news_lock) */
	bool            pend;       /* on ep->pend (ep->lock) */
	struct ep_reg  *nprev, *nnext;  /* ep->news (ep_news_lock) */
	struct ep_reg  *cnext;          /* a wait's private copy of news */
	struct ep_reg  *pprev, *pnext;  /* ep->pend (ep->lock) */
	struct ep_reg  *wprev, *wnext;  /* the session's watch list,
	                                 * session_ep_watch() (ep_news_lock) */
	UT_hash_handle  hh;         /* ep->regs, by fd (live ones only) */
	UT_hash_handle  hid;        /* ep->ids, by id (all) */
};

struct ep {
	int             epfd;       /* a name, for epoll_ctl; -1: none */
	int             names;      /* ep_lock */
	int             refs;       /* atomic: ep_all + calls in progress */
	int             waiting;    /* atomic: threads in its kernel wait */
	pthread_mutex_t lock;
	struct ep_reg  *regs;       /* by fd */
	struct ep_reg  *ids;        /* by id */
	struct ep_reg  *news;       /* ep_news_lock */
	struct ep_reg  *pend;       /* buffered readiness not yet reported */
	struct ep      *prev, *next;    /* ep_all (ep_lock) */
};

struct ep_name {
	int             fd;
	struct ep      *ep;
	UT_hash_handle  hh;
};

/*
 * The epoll locks, told to ThreadSanitizer too (tsan.h): its epoll_wait
 * interceptor hides the locks taken inside it, and it reported the
 * accesses they guard as races.
 */
static inline void
ep_mlock(pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
	TSAN_ACQUIRE(m);
}

static inline void
ep_munlock(pthread_mutex_t *m)
{
	TSAN_RELEASE(m);
	pthread_mutex_unlock(m);
}

/* epoll.c's state: see the lock order at the top of epoll.c. */
extern pthread_mutex_t ep_lock;
extern pthread_mutex_t ep_news_lock;
extern struct ep_name *ep_names;
extern struct ep *ep_all;

static inline uint64_t
ep_tag(const struct ep_reg *r)
{
	return (uint64_t)EP_TAG << 32 | r->id;
}

static inline bool
ep_tagged(const struct epoll_event *e)
{
	return (uint32_t)(e->data.u64 >> 32) == EP_TAG;
}

/* Program events as poll bits (the values are the same). */
static inline short
ep_want(const struct ep_reg *r)
{
	return (short)(r->uev & EP_USER_BITS);
}

/*
 * The kernel events for R: what the session needs; edge-triggered
 * registrations always keep the program's EPOLLIN, so new data makes a new
 * edge even while decrypted data is still waiting.
 */
static inline uint32_t
ep_kevents(const struct ep_reg *r, short k)
{
	uint32_t ev = ((uint32_t)(unsigned short)k &
	    (EP_USER_BITS | EPOLLERR | EPOLLHUP)) |
	    (r->uev & (EPOLLET | EPOLLONESHOT));

	if (r->uev & EPOLLET)
		ev |= r->uev & (EPOLLIN | EPOLLRDNORM);
	return ev;
}

/* ep_put(ep): drop a reference; the last one frees EP. */
void ep_put(struct ep *ep);

/*
 * EP has no name and no shadow left: take it off the list (ep_lock held;
 * EP's lock not held).  Returns true when the caller must ep_put() the
 * list's reference.
 */
bool ep_unused(struct ep *ep);

/*
 * The instance EPFD names, referenced; when CREATE and it has no name yet,
 * the known instance it is a copy of, or a new one.
 */
struct ep *ep_get(int epfd, bool create);

/* Put R on its instance's news list (takes ep_news_lock). */
void ep_push(struct ep_reg *r);

/* ep_pend(ep, r, rev) / ep_unpend(ep, r): R has (or no longer has)
 * buffered readiness REV to report at the end of the wait (ep->lock). */
void ep_pend(struct ep *ep, struct ep_reg *r, uint32_t rev);
void ep_unpend(struct ep *ep, struct ep_reg *r);

/* Forget shadow R entirely (caller holds ep->lock). */
void ep_drop(struct ep *ep, struct ep_reg *r);

/* Bring R's kernel registration up to date; returns buffered readiness. */
uint32_t ep_sync(struct ep *ep, struct ep_reg *r);

/* ep_disarm(ep, r): EPOLLONESHOT fired for R: disabled until a MOD. */
void ep_disarm(struct ep *ep, struct ep_reg *r);

/*
 * Translate kernel events KEVENTS (0: none, e.g. a handshake deadline) for
 * shadow R into what the program is told, or 0 (ep->lock held).
 */
uint32_t ep_event(struct ep *ep, struct ep_reg *r, uint32_t kevents);

/*
 * ep_add(ep, epfd, op, fd, s, ev): shadow FD (session S) in EP with the
 * program's EV: OP is EPOLL_CTL_ADD for a new registration, EPOLL_CTL_MOD
 * to take over one the program made before FD was sealed (ep->lock held).
 * Returns 0 or -errno.
 */
int ep_add(struct ep *ep, int epfd, int op, int fd, struct session *s,
    const struct epoll_event *ev);

/* ep_name_add(fd, ep): FD is another name of EP (ep_lock held).  Returns 0
 * or -ENOMEM. */
int ep_name_add(int fd, struct ep *ep);

#endif
