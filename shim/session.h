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
 * Locks: the receive lock guards the receive side, the transmit lock the
 * transmit side, so one thread may read while another writes.  The
 * handshake holds both, taken in the order receive then transmit.  No
 * session lock is held while the fd table lock is taken (see fdtab.h).
 * The holders lock guards the holders table only; it is a leaf, taken
 * alone or inside the receive or transmit lock, and is held across the
 * liveness checks of holders (waitid(WNOHANG|WNOWAIT) and kill(pid, 0):
 * system calls that never block), never across I/O.
 */
#ifndef SOCKSEAL_SESSION_H
#define SOCKSEAL_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "policy.h"

enum session_state {
	SESSION_HS_SEND1 = 0,
	SESSION_HS_WAIT2,
	SESSION_HS_WAIT1,
	SESSION_OPEN,
	SESSION_DEAD,
	SESSION_PLAIN,          /* permissive rule, plaintext client: untouched */
};

/*
 * Memory and processes.  A session is one mapping: its first page is
 * private to each process (copied at fork), the rest is MAP_SHARED, so a
 * connection inherited through fork() is one session in every process that
 * holds it: the same locks (process-shared, robust), the same nonces, the
 * same buffers.  Records stay in order and no nonce is used twice whoever
 * writes.  The buffers live in the same mapping; their pages are touched
 * only as data flows.
 *
 * The session counts, per process, the fds that process has on it (its
 * holders).  The end-of-stream mark is sent when the last live holder
 * closes its last fd (or exits without closing): a process that closes its
 * copy after fork() (postgres, socat) or exits without touching it (redis
 * BGSAVE) leaves the stream alone.
 *
 * The struct is private to the session module: other modules hold
 * pointers and use the functions below.
 */
struct session;

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

/* session_kfd(s, fd): the descriptor to do S's kernel I/O with: its
 * socket as session_set_kfd() set it, or FD when none was set. */
int session_kfd(const struct session *s, int fd);

/* session_stand_in(s): the program fd on S's stand-in, session_set_kfd()'s
 * PFD (-1 before it; the fd may have been closed since). */
int session_stand_in(const struct session *s);

/* session_stand_in_is(s, ino): is INO (fstat) S's stand-in's inode? */
bool session_stand_in_is(const struct session *s, ino_t ino);

/* session_same_socket(s, dev, ino): is DEV/INO (fstat) the identity of the
 * socket S was made for (session_new()'s FD)? */
bool session_same_socket(const struct session *s, dev_t dev, ino_t ino);

/* session_tagflags(s): the flags of S's stand-in tag (standin.h). */
unsigned int session_tagflags(const struct session *s);

/* session_initiator(s): did this side connect()? */
bool session_initiator(const struct session *s);

/* session_peer(s): S's peer address, printable (for log lines); valid as
 * long as S is referenced. */
const char *session_peer(const struct session *s);

/* session_kfd_lost(s): S's kfd was closed behind the shim's back and its
 * number reused: S does its I/O on the stand-in from now on (it fails)
 * and closes nothing at its end. */
void session_kfd_lost(struct session *s);

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

/*
 * The state object (session_state.c): the memfd a session is, on a hidden
 * descriptor of the shim's (the sfd), so that another image maps the same
 * session.  session_sfd(s): S's sfd in this process, -1 if it has none
 * (anonymous memory: it cannot travel).  session_sfd_lost(s): it was
 * closed behind the shim's back.  session_move_sfd(s, fd): it now lives
 * on FD (the program dup2'ed onto the old number).
 */
int session_sfd(const struct session *s);
/* session_shared(s): S's state object goes to another process (a spawn,
 * a message): this process never recycles its mapping. */
void session_shared(struct session *s);
void session_sfd_lost(struct session *s);
void session_move_sfd(struct session *s, int sfd);

/* session_state_identity(sfd, &dev, &ino): SFD is a state object; the
 * identity of the socket it was made for.  0, or -1 if it is not one. */
int session_state_identity(int sfd, dev_t *dev, ino_t *ino);

/*
 * session_attach(sfd, kfd, pfd, flags, rule): take over the session whose
 * state object is SFD (inherited through exec, or received), for the
 * socket KFD, with PFD the program's fd on its stand-in tagged FLAGS and
 * RULE this image's rule for it.  The same session, not a copy: keys,
 * counters, queued bytes and unread plaintext as the other holders see
 * them.  This process holds it from now on with the fds fdtab_set() gives
 * it.  NULL if SFD is not S's state object for KFD or cannot be mapped:
 * the caller fails closed.
 */
struct session *session_attach(int sfd, int kfd, int pfd, unsigned int flags,
    const struct policy_rule *rule);

/* session_hold_new(s, pid): PID (a child spawned with S's socket) holds
 * S, unless it registered itself already. */
void session_hold_new(struct session *s, pid_t pid);

/* session_spawn_pending(s, d): a child being spawned with S's socket
 * (posix_spawn) is (D 1) or is no longer (D -1) about to hold it. */
void session_spawn_pending(struct session *s, int d);

/* session_others_hold(s): does another live process hold S? */
bool session_others_hold(struct session *s);

/* session_abandon(s, why): S cannot go on (the process holding it alone
 * becomes an image that cannot continue it): it fails, and its end is a
 * reset, never a clean end of stream. */
void session_abandon(struct session *s, const char *why);

/* session_in_flight(s, d): copies of S in SCM_RIGHTS messages not yet
 * received change by D; while there are any, another process may be
 * about to hold S (no other end-of-stream mark than its). */
void session_in_flight(struct session *s, int d);

/* session_cache_forked(): in a child right after fork(), before
 * session_forked() on each session it holds: drop the cache of ended
 * sessions' mappings (shared with the parent now) and restart the count of
 * handshakes in flight. */
void session_cache_forked(void);

/*
 * session_forked(s): in a child right after fork(): this process holds
 * S through the fds it inherited (its count of them, session_nfds()), and
 * counts it if its handshake is in flight.
 */
void session_forked(struct session *s);

/* session_hold_pid(s, pid, nfds): set PID's holder count on S (0: it holds
 * none any more). */
void session_hold_pid(struct session *s, pid_t pid, int nfds);

/* session_nfds_add(s, delta): this process's fds on S in the fd table
 * change by DELTA (fdtab.c; atomic); returns the new count. */
int session_nfds_add(struct session *s, int delta);

/* session_nfds(s): this process's fds on S in the fd table (atomic). */
int session_nfds(const struct session *s);

/*
 * Fork bookkeeping, for fdtab.c's handlers (fdtab.h).
 * session_fork_ticket(s, gen): a fork may follow (the prepare handler): S
 * is shared from now on (its mapping is never recycled) and counts one
 * child that has not registered as a holder yet, under ticket GEN.
 * session_fork_settle(s, gen): that ticket is settled (the child
 * registered, or the fork failed); nothing unless GEN is S's last ticket.
 */
void session_fork_ticket(struct session *s, unsigned int gen);
void session_fork_settle(struct session *s, unsigned int gen);

/* session_mark(s, gen): mark S with GEN in this process (fdtab.c's walks
 * visit each session once, however many fds it has); returns whether it
 * was marked GEN already. */
bool session_mark(struct session *s, unsigned int gen);

/* session_state(s): S's state now (enum session_state; an acquire load). */
int session_state(const struct session *s);

/* session_hs_deadline(s): when S's handshake must be done (ms,
 * CLOCK_MONOTONIC, as now_ms()); set once, by session_new(). */
uint64_t session_hs_deadline(const struct session *s);

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
 * Splice (hook_splice.c): bytes that move between the session and a pipe,
 * never through the program's memory.
 *
 * session_send_from(s, fd, max, fill, arg, flags): a write of up to MAX
 * bytes that FILL(arg, buf, n) provides, called once the session can take
 * all N (<= MAX) bytes at once; FILL moves at most N bytes into BUF without
 * waiting and returns how many (0: its source ended), or -errno with
 * nothing moved.  Returns what FILL gave (all sealed, or kept during the
 * handshake as a write's are), or -errno with FILL not called or failed.
 *
 * session_recv_into(s, fd, max, drain, arg): a read of up to MAX bytes
 * (waiting as a read does) offered to DRAIN(arg, buf, n), which takes some
 * without waiting and returns how many, or -errno; only those are consumed.
 *
 * Both return -EXDEV for a PLAIN session: the caller splices the kernel
 * socket (session_kfd) itself.
 */
typedef ssize_t (*session_fill_fn)(void *arg, void *buf, size_t n);
typedef ssize_t (*session_drain_fn)(void *arg, void *buf, size_t n);
ssize_t session_send_from(struct session *s, int fd, size_t max,
    session_fill_fn fill, void *arg, int flags);
ssize_t session_recv_into(struct session *s, int fd, size_t max,
    session_drain_fn drain, void *arg);

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

/* "ok", "failed", "refused", "timeout". */
const char *session_end_name(int result);

/* session_so_error(s): the pending error for getsockopt(SO_ERROR), once. */
int session_so_error(struct session *s, int fd);

/* session_err_reported_set(s): a call returned S's error to the program
 * (connect() on a session that failed): it is no longer pending for
 * SO_ERROR or poll. */
void session_err_reported_set(struct session *s);

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
unsigned int session_st_gen(const struct session *s);

/* session_poll_now(s, fd, want): all that is true of S now, the kernel's
 * socket asked too (one poll): an edge as TCP's wake-ups report it. */
short session_poll_now(struct session *s, int fd, short want);

/* session_rx_gen(s): changes whenever ciphertext is pulled from the
 * kernel (epoll's edge-triggered registrations report it as new data, as
 * TCP's data wake-ups do). */
unsigned int session_rx_gen(const struct session *s);

/* session_pollers_add(s, d): the threads of this process blocked in a
 * kernel poll on S change by D (ready.c, around its wait): while there are
 * any, session_shutdown(SHUT_RD) wakes them through the kernel. */
void session_pollers_add(struct session *s, int d);

/* session_ep_watch(s): the slot where epoll.c keeps the head of its list of
 * S's registrations in this process (NULL: none).  epoll.c owns the list
 * and its locking, and reads and writes the slot atomically. */
void **session_ep_watch(struct session *s);

/* session_fd_blocking(fd): is FD in blocking mode (F_GETFL)? */
bool session_fd_blocking(int fd);

/* now_ms(): CLOCK_MONOTONIC in milliseconds. */
uint64_t now_ms(void);
/* now_us(): the same in microseconds. */
uint64_t now_us(void);

#endif
