/*
 * session_int: what the files of the session share.  Private to them;
 * session.h is the interface (and has the state machine and lock order).
 *
 *   session.c       core: mappings and their cache, handshakes in flight,
 *                   new/ref/put, the kernel fd, locks
 *   session_fail.c  failure: DEAD once, its code and words, logged, counted
 *   session_hold.c  holders: which processes hold a session (fork, exec)
 *   session_buf.c   the buffers: trim, compaction, the one pull from the
 *                   kernel into rbuf, the flush of tbuf
 *   session_hs.c    the handshake state machine
 *   session_hs_msg.c  its messages (PSK and identity suites)
 *   session_revoke.c  identities: a reload that removes a peer ends it
 *   session_rx.c    the receive path
 *   session_pipe_rx.c  its splice variant (session_recv_into)
 *   session_tx.c    the send path
 *   session_end.c   shutdown, close, exit: a connection's end
 *   session_poll.c  readiness (poll, epoll), FIONREAD, SO_ERROR
 */
#ifndef SOCKSEAL_SESSION_INT_H
#define SOCKSEAL_SESSION_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "init.h"
#include "noise.h"
#include "policy.h"
#include "reason.h"
#include "record.h"
#include "session.h"
#include "stats.h"

#define SESSION_PRIVLEN   4096          /* one page */
#define SESSION_HOLDERS   16

/* An ephemeral made ahead (session_eph.c), with DH(sk, dh_pk) if dh_set. */
struct ss_eph {
	uint8_t sk[NOISE_DHLEN], pk[NOISE_DHLEN];
	bool    dh_set;
	uint8_t dh_pk[NOISE_DHLEN], dh[NOISE_DHLEN];
};

/*
 * The session: one mapping (session.h, "Memory and processes").  Page 0
 * is this process's own view, copied at fork; the rest is MAP_SHARED by
 * every process holding the connection, and the buffers follow the struct
 * in the same mapping.  holders[] counts, per process, the fds it has on
 * the session (session_hold.c).  rx_lock, tx_lock and hold_lock are the
 * receive, transmit and holders locks of session.h's lock order.  Other
 * modules see none of this: they use session.h's accessors.
 */
struct session {
	/* Page 0: this process's own view. */
	union {
		struct {
			int refs;       /* atomic: references in this process */
			int nfds;       /* atomic: fds in this process's table */
			unsigned int fork_mark; /* fdtab's child handler */
			unsigned int fork_ticket; /* fdtab's last prepare */
			bool forked;    /* a fork happened while it lived */
			bool hs_counted; /* atomic: in this process's
					  * handshakes in flight */
			void *ep_watch; /* atomic: epoll.c's registrations
					 * of this session (see there) */
			int pollers;    /* atomic: threads in a kernel poll
					 * on it (ready.c) */
			int kfd;        /* the TCP socket (standin.h), this
					 * process's number; -1: the fd the
					 * caller passes is the socket */
			int pfd;        /* a program fd on the stand-in */
			ino_t sino;     /* the stand-in's inode */
			unsigned int tagflags; /* its tag's flags */
			int sfd;        /* the state object (session_state.c)
					 * this mapping is of, this process's
					 * number; -1: none */
			const struct policy_rule *rule; /* this image's */
			int stats_slot; /* stats_slot(rule): this image's */
			unsigned int auth_gen; /* the reload generation
					 * the peer's key was last found
					 * admitted in (session_revoke.c) */
			uint8_t *rbuf;  /* the buffers, at this process's */
			uint8_t *tbuf;  /* address of the mapping */
			uint8_t *early;
		};
		char pad[SESSION_PRIVLEN];
	};

	/* Shared by every process holding the connection, whatever address
	 * it maps them at: no pointers from here on. */
	uint64_t         magic;         /* SESSION_MAGIC: a state object */
	pthread_mutex_t  rx_lock;
	pthread_mutex_t  tx_lock;
	pthread_mutex_t  hold_lock;
	struct {
		pid_t pid;
		int   nfds;
	}                holders[SESSION_HOLDERS];
	int              fork_pending;  /* atomic: children forked that
	                                 * have not registered as holders */
	int              in_flight;     /* atomic: copies in SCM_RIGHTS
	                                 * messages not yet received */
	int              state;         /* atomic: enum session_state */
	bool             initiator;
	int              suite;
	char             peer[64];      /* printable peer address */
	char             peer_id[72];   /* identities: the authenticated
	                                 * peer's name in the rule ("" if
	                                 * none) */
	char             key_used[256]; /* the key and identity this side
	                                 * used, "key k (SHA256:...)" and/or
	                                 * "identity srv (SHA256:...)", set
	                                 * when the handshake succeeds */
	bool             authed;        /* identities: auth_pk is the peer's
	                                 * static key, proven */
	bool             early_e;       /* responder: early_eph made before
	                                 * message 1, for its message 2 */
	struct ss_eph    early_eph;
	uint8_t          auth_pk[NOISE_DHLEN];
	int              err;           /* errno for calls on a DEAD session */
	bool             err_reported;  /* a call or SO_ERROR returned the
	                                 * error: no longer pending */
	int              kerr;          /* a kernel error (the peer's reset)
	                                 * a call of ours took that the
	                                 * program was not given: pending for
	                                 * poll, SO_ERROR, the last read */
	bool             rst_told;      /* a write gave the program the
	                                 * kernel's reset: nothing pending */
	bool             was_open;      /* the handshake had completed */
	bool             adopt_used;    /* adopted after exec with its
	                                 * handshake under way: fails at
	                                 * its first use */
	bool             logged_end;    /* atomic: the end line was written */
	int              end_result;    /* enum session_end, once DEAD */
	char             why[96];       /* why it failed, for the end line */
	int              reason;        /* enum reason, once DEAD */
	uint64_t         hs_deadline;   /* ms, CLOCK_MONOTONIC */
	bool             hs_live;       /* hs_store in use (the handshake) */
	struct noise_hs  hs_store;
	struct noise_cipher tx, rx;

	/* receive side (rx_lock) */
	size_t           rstart, rend;  /* ciphertext in rbuf */
	size_t           pt_off;        /* unread plaintext of the open
	                                 * record: rbuf + pt_off (ss_pt) */
	size_t           ptlen;
	bool             rx_eof;        /* end-of-stream mark received */
	bool             rd_shut;       /* program did shutdown(SHUT_RD) */
	bool             rx_more;       /* the last pull filled the buffer */
	unsigned int     rx_gen;        /* counts pulls from the kernel:
	                                 * epoll's edges for new data */
	unsigned int     st_gen;        /* atomic: counts shutdowns: edges
	                                 * for every registration */
	size_t           rx_hiwat;      /* rbuf bytes touched since trimmed */
	uint64_t         rx_trimmed;    /* ms, last trim */

	/* transmit side (tx_lock) */
	size_t           toff, tend;    /* queued ciphertext in tbuf */
	bool             tx_shut;       /* end-of-stream mark queued */
	bool             shut_pending;  /* real SHUT_WR once the queue drains */
	bool             ack_looked;    /* first program bytes sent:
	                                 * tx_ack_as_tcp() had its say (session_tx.c) */
	size_t           early_len;     /* plaintext written mid-handshake
	                                 * (in early) */
	size_t           tx_hiwat;      /* tbuf bytes touched since trimmed */
	uint64_t         tx_trimmed;    /* ms, last trim */
	uint64_t         wire_out;      /* bytes handed to the kernel */
	uint64_t         mark_at;       /* wire_out before our end-of-stream
	                                 * mark (end_was_clean) */
	bool             kclean;        /* atomic: the kernel's reset was
	                                 * TCP's clean end (end_was_clean) */

	uint64_t         bytes_in, bytes_out;
	uint64_t         t_start;       /* ms */
	uint64_t         t_start_us;    /* the same in us */
	dev_t            dev;           /* the socket's identity, for exit */
	ino_t            ino;
	size_t           maplen;        /* the whole mapping */
};

 /* "sockseal state object, v1" */
#define SESSION_MAGIC   0x31767473736b6373ull

/* The unread plaintext, at this process's address. */
static inline uint8_t *
ss_pt(const struct session *s)
{
	return s->rbuf + s->pt_off;
}

#define SESSION_RBUF    (3 * 65536 + 1024)
#define SESSION_TBATCH  4
#define SESSION_TBUF    (SESSION_TBATCH * RECORD_MAXWIRE + RECORD_WIRELEN(0))
#define SESSION_EARLY   65536   /* bytes a program may write mid-handshake */
#define SESSION_TRIM_MIN 16384 /* buffer bytes worth giving back (buf_trim) */
#define PAGE_DOWN(x)    ((x) & ~(uintptr_t)4095)
#define PAGE_UP(x)      PAGE_DOWN((x) + 4095)

/* session.c */

/* Count S as a handshake in flight: false (not counted) if BOUNDED and
 * over the limit.  ss_hs_forked(): a forked child starts counting again. */
bool ss_hs_count(struct session *s, bool bounded);
void ss_hs_forked(void);

/* session_state.c */

/* The length of a session's mapping. */
size_t ss_maplen(void);
/* A fresh session's memory: the shared part zeroed, this process's view
 * set (one reference, no kfd, its state object if it has one); NULL if
 * none. */
struct session *ss_map(void);
/* This process's view goes (the mapping cached or unmapped). */
void ss_unmap(struct session *s);

/* (Sandbox mode is the process's: shim_in_sandbox(), init.h.) */

/*
 * Take a session lock (ss_lock), try one (ss_trylock: 0 when taken),
 * release one (ss_unlock).  A robust mutex whose owner died fails the
 * session (unless it is hold_lock).
 */
void ss_lock(struct session *s, pthread_mutex_t *m);
int ss_trylock(struct session *s, pthread_mutex_t *m);
void ss_unlock(pthread_mutex_t *m);

/* session_fail.c */

/*
 * The session fails: DEAD, calls fail with ERR, logged once; RESULT (enum
 * session_end; ss_fail: SESSION_END_FAILED), REASON (enum reason: the
 * fixed code) and WHY (the words) are kept for the end line.  The caller
 * holds the lock(s) of the side that noticed.  ss_fail_errno: the kernel's
 * error ERR, its code picked from it.
 */
void ss_fail_as(struct session *s, int result, int reason, int err,
    const char *why);
void ss_fail(struct session *s, int reason, int err, const char *why);
void ss_fail_errno(struct session *s, int err);

/* N plaintext bytes went to the program (in) or came from it (out): the
 * session's count and this process's statistics. */
#define SS_BYTES_IN(s, n) do { \
	uint64_t n_ = (uint64_t)(n); \
	__atomic_add_fetch(&(s)->bytes_in, n_, __ATOMIC_RELAXED); \
	stats_bytes((s)->stats_slot, n_, 0); \
} while (0)
#define SS_BYTES_OUT(s, n) do { \
	uint64_t n_ = (uint64_t)(n); \
	(s)->bytes_out += n_; \
	stats_bytes((s)->stats_slot, 0, n_); \
} while (0)

/* S's handshake ended in this process: no longer counted (once). */
void ss_hs_uncount(struct session *s);
/* In a forked child (session_forked): S counts again if it was counted. */
void ss_hs_recount(struct session *s);

/* The stand-in's tag gets FLAG (standin.h), if it is still S's. */
void ss_tag(struct session *s, unsigned int flag);

/* A call of ours took the kernel's error E (kerr), the program not told. */
void ss_rx_kerr(struct session *s, int e);
/* A call returns R: a failed session's error, returned, is not pending. */
ssize_t ss_told(struct session *s, ssize_t r);

/* shutdown(SHUT_RD) sets it without rx_lock (it must never wait for a
 * blocked reader): read atomically. */
static inline bool
ss_rd_shut(const struct session *s)
{
	return __atomic_load_n(&s->rd_shut, __ATOMIC_RELAXED);
}

/* session_eph.c: the process's spare ephemeral for a role: take it
 * (false: none ready), make one while waiting on PEER_PK's holder (NULL:
 * none known; its DH is made too if the same key came last time), or drop
 * both (a forked child); E into a handshake just initialised. */
bool ss_eph_take(bool initiator, struct ss_eph *out);
void ss_eph_make(bool initiator, const uint8_t *peer_pk);
void ss_eph_drop(void);
void ss_eph_use(struct noise_hs *hs, const struct ss_eph *e);
/* The responder's ephemeral, taken at accept (the spare, or made now),
 * goes into hs_store (after its init), or is wiped (handshake over). */
void ss_hs_take_early_e(struct session *s);
void ss_hs_use_early_e(struct session *s);
void ss_hs_drop_early_e(struct session *s);

/* session_end.c: the suite's name for logs ("chachapoly", "aesgcm",
 * "chachapoly+identity", "aesgcm+identity", "plain"). */
const char *session_suite_name(const struct session *s);
/* session_endlog.c: the connection's end line in this process, once:
 * HOW_CODE (enum reason) and HOW (the words); counts the end too. */
void session_log_end(struct session *s, int how_code, const char *how);

/* session_revoke.c: S's peer (identities) is still admitted by the policy
 * in force in this process; else S fails: 0 or -ECONNRESET.  No lock held.
 * ss_auth_set(): the handshake proved PK; ss_auth_stale(): check again at
 * the next data call (an image that attached S). */
int ss_revoke_check(struct session *s, int fd);
void ss_auth_set(struct session *s, const uint8_t pk[NOISE_DHLEN]);
/* session_hs_msg.c: note the PSK (NULL: the zero one) and identity (NULL:
 * none) this side's handshake used, for the log lines. */
void ss_hs_note_keys(struct session *s, const struct policy_key *k,
    const struct policy_identity *id);
void ss_auth_stale(struct session *s);

/* session_hold.c */

/* Is any other live process still holding S?  LEAVING: this process's
 * entry is dropped first (it holds no fd any more). */
bool ss_others_hold(struct session *s, bool leaving);

/* session_buf.c */

/* The buffers, ready for use: 0 or -errno (they are in the mapping). */
int ss_rbuf_alloc(struct session *s);
int ss_tbuf_alloc(struct session *s);
/* Make room after rend: for one whole record (ss_rbuf_compact), moving
 * the unread plaintext along too (ss_rbuf_compact_keep, MSG_PEEK). */
void ss_rbuf_compact(struct session *s);
void ss_rbuf_compact_keep(struct session *s);
/* Pull ciphertext from the kernel into rbuf after rend: recv(FLAGS), or
 * read() when FLAGS is 0.  What the call returned, errno as it left it. */
ssize_t ss_rx_pull(struct session *s, int fd, int flags);
/* After a read (rx_lock held): an emptied, paused rbuf gives back pages. */
void ss_rx_trim(struct session *s);
/* Wait for EVENTS on FD until DEADLINE (ms).  0, -ETIMEDOUT or -errno. */
int ss_wait_fd(int fd, short events, uint64_t deadline);
/* Write the queued ciphertext (tx_lock held): 0 when the queue is empty,
 * -EAGAIN, -EINTR, -ETIMEDOUT or the socket's error. */
int ss_tx_flush(struct session *s, int fd, int flags, uint64_t deadline);

/* session_hs.c */

/* Drive the handshake from a data call with the program's FLAGS. */
int ss_hs_from_call(struct session *s, int fd, int flags);
/* session_handshake without waiting for a lock: -EAGAIN if busy. */
int ss_handshake_try(struct session *s, int fd);

/* session_rx.c */
/* MSG_PEEK's gathering (rx_lock held): up to WANT bytes of plaintext made
 * contiguous at ss_pt(), waiting per FLAGS only when nothing is there;
 * their count, or -errno.  Nothing is consumed. */
ssize_t ss_rx_gather(struct session *s, int fd, size_t want, int flags);
/* The buffer ran dry at the end of a read: refill it without waiting if
 * the kernel may hold more (rx_lock held). */
void ss_rx_refill_dry(struct session *s, int fd);

/* Open the next whole record if one is buffered (rx_lock held): 1, 0
 * (need more bytes) or <0 (the session failed).  See there for DST. */
int ss_rx_open_next(struct session *s, uint8_t *dst, size_t room,
    size_t *delivered);
/* Is a whole record (or plaintext, or the end) waiting?  rx_lock held. */
bool ss_rx_ready(struct session *s);
/* The bytes IOV holds. */
size_t ss_iov_total(const struct iovec *iov, int iovcnt);

/* session_tx.c */

/* The kernel refused our records with R (tx_lock held). */
void ss_tx_broken(struct session *s, int r);

#endif
