/*
 * conn: the decisions made when a TCP connection starts: does a policy rule
 * seal it, and if so, make its session.  Called by the socket hooks.
 */
#ifndef SOCKSEAL_CONN_H
#define SOCKSEAL_CONN_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * conn_connect(fd, sa, len): connect() for FD.  Unmatched or `plain`
 * destinations and non-TCP sockets are passed through untouched.  For a
 * sealed destination: a blocking connect returns once the handshake is done
 * (-ECONNREFUSED if it failed); a non-blocking one returns -EINPROGRESS and
 * the handshake advances from the program's later calls.  Returns 0 or
 * -errno.
 */
int conn_connect(int fd, const struct sockaddr *sa, socklen_t len);

/*
 * conn_accepted(fd): FD was just returned by accept()/accept4(): drop any
 * stale state for the number and, if an accept rule seals the local address,
 * attach a responder session.  Returns 0, or -errno when the connection
 * must be refused (the caller closes FD).
 */
int conn_accepted(int fd);

/*
 * conn_fastopen(fd, on): the program set TCP_FASTOPEN_CONNECT.  Remembered
 * for FD and applied by conn_connect() only if the destination is not
 * sealed (a sealed connection's first bytes are the handshake).  Returns 0.
 */
int conn_fastopen(int fd, bool on);

/*
 * conn_adopt_inherited(adopted): at start, give sessions to the connected
 * TCP sockets this image inherited that a rule seals (exec hand-over: sshd,
 * inetd-style servers, socat EXEC,nofork); ADOPTED is called with each fd.
 * Sessions the previous image passed on with their state (carry.h) go on
 * where they were.  Returns how many (adopt.c).
 */
int conn_adopt_inherited(void (*adopted)(int fd));

/* conn_is_tcp(fd): is FD a TCP stream socket (MPTCP included)? */
bool conn_is_tcp(int fd);

/* conn_rule_for(kfd): this image's rule sealing the connection on KFD
 * (accept rules first, then connect rules), or a stand-in rule that only
 * names it as inherited: for sessions that came from elsewhere (adopt.c,
 * carry.c, hook_passfd.c).  Never NULL. */
struct policy_rule;
const struct policy_rule *conn_rule_for(int kfd);

/* conn_fork_child(): in a forked child: conn's lock is free again. */
void conn_fork_child(void);

#endif
