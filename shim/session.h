/*
 * session: one sealed TCP connection.  Owns the handshake state machine,
 * the record buffers, and the one send path and one receive path that every
 * interposed call funnels into.
 *
 * States (the initiator is the side that called connect()):
 *
 *   initiator:  HS_SEND1 --msg1 queued--> HS_WAIT2 --msg2 ok--> OPEN
 *   responder:  HS_WAIT1 --msg1 ok, msg2 queued--> OPEN
 *   any state   --auth failure, bad length, truncation, timeout--> DEAD
 *   HS_WAIT1    --permissive rule, no preface (peeked, not read)--> PLAIN
 *
 * A PLAIN session is a plaintext client on a `mode=permissive` accept rule:
 * every call goes to the kernel as if the shim were not there.  The
 * decision needs the client's first bytes; a client that sends nothing (a
 * server-first protocol) is taken as plaintext when the rule's handshake
 * timeout expires.
 *
 * The machine never blocks by itself: each step does non-blocking socket
 * I/O and returns -EAGAIN when it needs the network.  Callers that may
 * block (a blocking socket without MSG_DONTWAIT) pass may_block, and the
 * step then waits in poll() until the handshake deadline.  So the same code
 * serves blocking programs, non-blocking programs (the handshake advances
 * from their read/write/poll calls) and the poll translation in ready.c.
 *
 * Data path: session_send() seals the program's bytes into records in the
 * transmit buffer and writes them with one syscall per batch; ciphertext the
 * kernel did not take stays queued (the bytes count as sent, as with a
 * kernel socket buffer) and goes out first on the next call.
 * session_recv() reads large chunks into the receive buffer, opens records
 * in place and copies plaintext straight to the program: plaintext is
 * copied once.  After any failure the session is DEAD: nothing more is sent,
 * every call fails with ECONNRESET, close() resets the connection.
 *
 * Locks: rx_lock guards the receive side, tx_lock the transmit side, so one
 * thread may read while another writes.  The handshake holds both, taken
 * in the order rx_lock then tx_lock.  No session lock is held while the
 * fd table lock is taken (see fdtab.h).  hold_lock guards the holders
 * table only; it is a leaf, taken alone or inside rx_lock/tx_lock, and is
 * held across the liveness checks of holders (waitid(WNOHANG|WNOWAIT) and
 * kill(pid, 0): system calls that never block), never across I/O.
 */
#ifndef SOCKSEAL_SESSION_H
#define SOCKSEAL_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "noise.h"
#include "policy.h"

enum session_state {
	SESSION_HS_SEND1 = 0,
	SESSION_HS_WAIT2,
	SESSION_HS_WAIT1,
	SESSION_OPEN,
	SESSION_DEAD,
	SESSION_PLAIN,          /* permissive rule, plaintext client: untouched */
};

#define SESSION_PRIVLEN   4096          /* one page */
#define SESSION_HOLDERS   16

/*
 * Memory and processes.  A session is one mapping: its first page is
 * private to each process (copied at fork), the rest is MAP_SHARED, so a
 * connection inherited through fork() is one session in every process that
 * holds it: the same locks (process-shared, robust), the same nonces, the
 * same buffers.  Records stay in order and no nonce is used twice whoever
 * writes.  The buffers live in the same mapping, after the struct; their
 * pages are touched only as data flows.
 *
 * holders[] counts, per process, the fds it has on the session.  The
 * end-of-stream mark is sent when the last live holder closes its last fd
 * (or exits without closing): a process that closes its copy after fork()
 * (postgres, socat) or exits without touching it (redis BGSAVE) leaves the
 * stream alone.
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
		};
		char pad[SESSION_PRIVLEN];
	};

	/* Shared by every process holding the connection. */
	pthread_mutex_t  rx_lock;
	pthread_mutex_t  tx_lock;
	pthread_mutex_t  hold_lock;
	struct {
		pid_t pid;
		int   nfds;
	}                holders[SESSION_HOLDERS];
	int              fork_pending;  /* atomic: children forked that
	                                 * have not registered as holders */
	int              state;         /* atomic: enum session_state */
	bool             initiator;
	int              suite;
	const struct policy_rule *rule;
	char             peer[64];      /* printable peer address */
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
	uint64_t         hs_deadline;   /* ms, CLOCK_MONOTONIC */
	struct noise_hs *hs;            /* &hs_store during the handshake */
	struct noise_hs  hs_store;
	struct noise_cipher tx, rx;

	/* receive side (rx_lock) */
	uint8_t         *rbuf;          /* ciphertext [rstart, rend) */
	size_t           rstart, rend;
	uint8_t         *pt;            /* unread plaintext of the open record */
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
	uint8_t         *tbuf;          /* queued ciphertext [toff, tend) */
	size_t           toff, tend;
	bool             tx_shut;       /* end-of-stream mark queued */
	bool             shut_pending;  /* real SHUT_WR once the queue drains */
	uint8_t         *early;         /* plaintext written mid-handshake */
	size_t           early_len;
	size_t           tx_hiwat;      /* tbuf bytes touched since trimmed */
	uint64_t         tx_trimmed;    /* ms, last trim */
	uint64_t         wire_out;      /* bytes handed to the kernel */
	uint64_t         mark_at;       /* wire_out before our end-of-stream
	                                 * mark (end_was_clean) */
	bool             kclean;        /* atomic: the kernel's reset was
	                                 * TCP's clean end (end_was_clean) */

	uint64_t         bytes_in, bytes_out;
	uint64_t         t_start;       /* ms */
	dev_t            dev;           /* the socket's identity, for exit */
	ino_t            ino;
	size_t           maplen;        /* the whole mapping */
};

/*
 * session_new(fd, rule, initiator, peer): a session for the connected
 * socket FD matched by RULE, in HS_SEND1 (initiator) or HS_WAIT1.  Returns a
 * session with one reference, or NULL (ENOMEM).  When this process already
 * has session_max_handshakes() handshakes in flight the session is born
 * DEAD (logged): the connection fails as after a bad handshake.
 */
struct session *session_new(int fd, const struct policy_rule *rule,
    bool initiator, const struct sockaddr *peer);

/*
 * session_set_kfd(s, kfd, pfd, flags): S's socket is KFD, the stand-in the
 * program holds is PFD, tagged with FLAGS (standin.h).  From then on the
 * session does its I/O on KFD whatever fd its callers pass, and closes
 * KFD when its last reference in this process goes.
 */
void session_set_kfd(struct session *s, int kfd, int pfd, unsigned int flags);

/* session_kfd(s, fd): the descriptor to do S's kernel I/O with. */
static inline int
session_kfd(const struct session *s, int fd)
{
	return s->kfd >= 0 ? s->kfd : fd;
}

/* session_move_kfd(s, kfd): S's socket now lives on KFD (the program
 * dup2'ed onto the old one); the stand-in's tag follows. */
void session_move_kfd(struct session *s, int kfd);

/* session_adopt_as(s, flags): an exec'd image found S's stand-in tagged
 * with FLAGS: a handshake already under way cannot be resumed (fail
 * closed), a plaintext client stays plaintext. */
void session_adopt_as(struct session *s, unsigned int flags);

/*
 * Handshakes in flight.  A session counts from session_new() until its
 * handshake ends in this process, by whatever path: OPEN, PLAIN, DEAD, or
 * its last reference here dropped (the fd closed).  session_init() reads
 * SOCKSEAL_MAX_HANDSHAKES (default SESSION_MAX_HANDSHAKES, 0: no bound)
 * once at start; session_handshakes() is the current count.
 */
#define SESSION_MAX_HANDSHAKES 1024
void session_init(void);
int session_max_handshakes(void);
int session_handshakes(void);

void session_ref(struct session *s);
/* session_put(s): drop a reference; the last one in this process unmaps. */
void session_put(struct session *s);

/*
 * session_hold(s, delta): this process's fds on S change by DELTA (+1 when
 * an fd is added to the table, -1 when one leaves it).
 */
void session_hold(struct session *s, int delta);

/* session_cache_forked(): in a child right after fork(), before
 * session_forked() on each session it holds: drop the cache of ended
 * sessions' mappings (shared with the parent now) and restart the count of
 * handshakes in flight. */
void session_cache_forked(void);

/*
 * session_forked(s): in a child right after fork(): this process holds
 * S through the fds it inherited (its private nfds), and counts it if its
 * handshake is in flight.
 */
void session_forked(struct session *s);

/* session_hold_pid(s, pid, nfds): set PID's holder count on S (0: it holds
 * none any more). */
void session_hold_pid(struct session *s, pid_t pid, int nfds);

static inline int
session_state(const struct session *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

/*
 * session_handshake(s, fd, may_block): advance the handshake.  Returns 0
 * once OPEN, -EAGAIN when it needs the network and may not block, or
 * -ECONNRESET (the session is now DEAD; the reason was logged).
 */
int session_handshake(struct session *s, int fd, bool may_block);

/*
 * session_recv(s, fd, iov, iovcnt, flags): the receive path.  FLAGS are the
 * program's (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT honoured).  Returns bytes
 * copied (0 only after the peer's end-of-stream mark or SHUT_RD), or
 * -errno (-EAGAIN, -EINTR, -ECONNRESET, …).
 */
ssize_t session_recv(struct session *s, int fd, const struct iovec *iov,
    int iovcnt, int flags);

/*
 * session_send(s, fd, iov, iovcnt, flags): the send path.  FLAGS are the
 * program's (MSG_DONTWAIT, MSG_NOSIGNAL, MSG_MORE honoured).  Returns bytes
 * accepted, or -errno.  -EPIPE after shutdown(SHUT_WR) (SIGPIPE raised
 * unless MSG_NOSIGNAL).
 */
ssize_t session_send(struct session *s, int fd, const struct iovec *iov,
    int iovcnt, int flags);

/*
 * session_shutdown(s, fd, how, waited): send the end-of-stream mark for
 * SHUT_WR / SHUT_RDWR, then the real shutdown().  WAITED: a thread may be
 * blocked in an epoll wait that covers S (epoll_waited()), which only the
 * kernel's own SHUT_RD wakes.  Returns 0 or -errno.
 */
int session_shutdown(struct session *s, int fd, int how, bool waited);

/*
 * session_close_last(s, fd): FD, the last fd of S in this process, is about
 * to be closed: send the end-of-stream mark (bounded wait), or arm a reset
 * (SO_LINGER 0) when the session is DEAD.
 */
void session_close_last(struct session *s, int fd);

/*
 * session_exit(s, fd): the process is exiting with FD still open: send the
 * end-of-stream mark if FD is still the session's socket.  Never blocks on
 * a lock another thread holds.
 */
void session_exit(struct session *s, int fd);

/*
 * session_forgotten(s): the last fd of S in this process was closed where
 * no interposer saw it (the number came back as something else): if no
 * other process holds S, it has ended; log its end line.
 */
void session_forgotten(struct session *s);


/*
 * How a connection ended, in its one end-of-connection log line (info):
 * ok, failed, refused (the responder refused what the initiator sent: no
 * preface, another version, a suite the rule does not accept) or timeout
 * (the handshake did not finish in time).
 */
enum session_end { SESSION_END_OK = 0, SESSION_END_FAILED,
	SESSION_END_REFUSED, SESSION_END_TIMEOUT };

/* session_so_error(s): the pending error for getsockopt(SO_ERROR), once. */
int session_so_error(struct session *s, int fd);

/*
 * Readiness, for ready.c.  session_poll_prep(s, want, &kev) returns the
 * events true from buffered state alone and sets KEV to what to ask the
 * kernel.  session_poll_after(s, fd, want, krev) takes the kernel's answer
 * for KEV, advances the session without blocking and returns the events to
 * report (a subset of WANT plus POLLERR/POLLHUP).
 */
short session_poll_prep(struct session *s, short want, short *kev);
short session_poll_after(struct session *s, int fd, short want, short krev);

/*
 * session_inq(s): plaintext bytes a read could return now without waiting
 * (FIONREAD/SIOCINQ), or -errno on a dead session.
 */
int session_inq(struct session *s, int fd);

/* session_st_gen(s): changes whenever the program shuts the socket down:
 * TCP's state change wakes every registration, whatever it asked for. */
static inline unsigned int
session_st_gen(const struct session *s)
{
	return __atomic_load_n(&s->st_gen, __ATOMIC_RELAXED);
}

/* session_poll_now(s, fd, want): all that is true of S now, the kernel's
 * socket asked too (one poll): an edge as TCP's wake-ups report it. */
short session_poll_now(struct session *s, int fd, short want);

/* session_rx_gen(s): changes whenever ciphertext is pulled from the
 * kernel (epoll's edge-triggered registrations report it as new data, as
 * TCP's data wake-ups do). */
static inline unsigned int
session_rx_gen(const struct session *s)
{
	return __atomic_load_n(&s->rx_gen, __ATOMIC_RELAXED);
}

/* session_fd_blocking(fd): is FD in blocking mode (F_GETFL)? */
bool session_fd_blocking(int fd);

/* now_ms(): CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);

#endif
