/*
 * conn: see conn.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/socket.h>

#include "epoll.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "reason.h"
#include "stats.h"
#include "policy.h"
#include "real.h"
#include "reload.h"
#include "session.h"
#include "standin.h"
#include "conn.h"

/*
 * fds whose program asked for TCP_FASTOPEN_CONNECT: a small sorted-free
 * bitmap, grown on demand under a lock (only setsockopt and connect on
 * such fds touch it).
 */
static pthread_mutex_t conn_tfo_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *conn_tfo;
static size_t conn_tfo_len;

int
conn_fastopen(int fd, bool on)
{
	size_t need = (size_t)fd / 8 + 1, n;
	unsigned char *p;

	if (fd < 0)
		return -EBADF;
	pthread_mutex_lock(&conn_tfo_lock);
	if (need > conn_tfo_len) {
		n = need < 64 ? 64 : need * 2;
		if ((p = realloc(conn_tfo, n)) == NULL) {
			pthread_mutex_unlock(&conn_tfo_lock);
			return -ENOMEM;
		}
		memset(p + conn_tfo_len, 0, n - conn_tfo_len);
		conn_tfo = p;
		conn_tfo_len = n;
	}
	if (on)
		conn_tfo[fd / 8] |= (unsigned char)(1u << (fd % 8));
	else
		conn_tfo[fd / 8] &= (unsigned char)~(1u << (fd % 8));
	pthread_mutex_unlock(&conn_tfo_lock);
	return 0;
}

void
conn_fork_child(void)
{
	pthread_mutex_init(&conn_tfo_lock, NULL);
}

/* Did the program ask for fast open on FD?  Clears the note. */
static bool
conn_fastopen_take(int fd)
{
	bool on = false;

	if (__atomic_load_n(&conn_tfo_len, __ATOMIC_RELAXED) == 0)
		return false;
	pthread_mutex_lock(&conn_tfo_lock);
	if ((size_t)fd / 8 < conn_tfo_len) {
		on = conn_tfo[fd / 8] & (1u << (fd % 8));
		conn_tfo[fd / 8] &= (unsigned char)~(1u << (fd % 8));
	}
	pthread_mutex_unlock(&conn_tfo_lock);
	return on;
}

/* Connect FD unsealed, with fast open if the program asked for it. */
static int
conn_plain(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	if (conn_fastopen_take(fd))
		(void)real_setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT,
		    &one, sizeof(one));
	epoll_pre_done(fd, NULL);
	return real_connect(fd, sa, len) < 0 ? -errno : 0;
}

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

/* Is FD a TCP stream socket (MPTCP included: TCP on the wire)? */
bool
conn_is_tcp(int fd)
{
	int type = 0, proto = 0;
	socklen_t l = sizeof(type);

	if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 ||
	    type != SOCK_STREAM)
		return false;
	l = sizeof(proto);
	if (real_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) < 0)
		return true;    /* old kernels: a stream INET socket is TCP */
	return proto == IPPROTO_TCP || proto == IPPROTO_MPTCP;
}

/* A sealing rule's connection refused before a session exists: logged
 * with its fields and code, and counted. */
static void
conn_refused(const struct policy_rule *rule, const struct sockaddr *peer,
    int code, const char *why)
{
	char addr[64], where[320];

	stats_conn_ended(stats_slot(rule), SESSION_END_REFUSED, code);
	if (LOG_WARN > log_level)
		return;
	log_addr(peer, addr, sizeof(addr));
	snprintf(where, sizeof(where), "%s:%d", rule->file, rule->line);
	{
		const struct log_kv kv[] = {
			{ "event", "conn_refused", 0 },
			{ "dir", policy_dir_name(rule->dir), 0 },
			{ "peer", addr, 0 },
			{ "rule", where, 0 },
			{ "result", "refused", 0 },
			{ "reason", reason_name(code), 0 },
			{ "detail", why, 0 },
		};

		LOG_KV(LOG_WARN, kv, (int)(sizeof(kv) / sizeof(kv[0])),
		    "%s %s (rule %s) refused: %s [reason=%s]",
		    rule->dir == POLICY_CONNECT ? "connect to" :
		    "connection from", addr, where, why, reason_name(code));
	}
}

int
conn_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	const struct policy_rule *rule;
	struct session *s;
	char why[128];
	int r, e, kfd;

	/*
	 * A second connect() on a sealed socket, to any address (hiredis does
	 * this to learn whether a non-blocking connect finished): answered
	 * from the session, first, whatever the policy says of the address:
	 * the program's fd is the stand-in, which must never connect.  (TCP
	 * would disconnect on AF_UNSPEC; a sealed socket does not.)
	 */
	if ((s = fdtab_get(fd)) != NULL) {
		r = session_state(s);
		e = session_so_error(s, fd);
		session_put(s);
		if (r == SESSION_OPEN || r == SESSION_PLAIN)
			return -EISCONN;
		if (r == SESSION_DEAD)
			return e ? -e : -ECONNREFUSED;
		return -EALREADY;
	}
	if (sa == NULL || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return conn_plain(fd, sa, len);
	rule = policy_match(shim_decide()->pol, POLICY_CONNECT, sa, len);
	if (rule == NULL || rule->plain || !conn_is_tcp(fd))
		return conn_plain(fd, sa, len);
	if (conn_fastopen_take(fd))
		LOG(LOG_DEBUG, "TCP fast open disabled for a sealed connection");

	/* Too many handshakes in flight: refuse before TCP's. */
	if (session_handshakes() >= session_max_handshakes() &&
	    session_max_handshakes() > 0) {
		snprintf(why, sizeof(why), "%d handshakes in flight "
		    "(SOCKSEAL_MAX_HANDSHAKES)", session_max_handshakes());
		conn_refused(rule, sa, REASON_HANDSHAKE_LIMIT, why);
		return -ENOBUFS;
	}
	/* The program never holds the wire: from here on its fd is the
	 * stand-in, and the socket connects on the shim's kfd. */
	epoll_pre_detach(fd);
	if ((kfd = standin_swap(fd, sa->sa_family, STANDIN_INIT | STANDIN_USED)) < 0) {
		epoll_pre_reattach(fd);
		snprintf(why, sizeof(why), "no descriptor for the sealed "
		    "socket: %s", strerror(-kfd));
		conn_refused(rule, sa, REASON_NO_DESCRIPTOR, why);
		return kfd == -EMFILE || kfd == -ENFILE ? kfd : -ENOBUFS;
	}
	r = real_connect(kfd, sa, len);
	e = errno;
	if (r < 0 && e != EINPROGRESS && e != EINTR) {
		standin_undo(fd, kfd);
		epoll_pre_reattach(fd);
		return -e;
	}
	if ((s = session_new(kfd, rule, true, sa)) == NULL) {
		/* The stand-in stays: nothing unsealed reaches the wire. */
		(void)real_shutdown(kfd, SHUT_RDWR);
		standin_mark(kfd, false);
		real_close(kfd);
		epoll_pre_done(fd, NULL);
		return -ENOMEM;
	}
	session_set_kfd(s, kfd, fd, STANDIN_INIT | STANDIN_USED);
	if (fdtab_set(fd, s) < 0) {
		(void)real_shutdown(kfd, SHUT_RDWR);
		session_put(s);
		epoll_pre_done(fd, NULL);
		return -ENOMEM;
	}
	/* Registered with epoll before connect(): translated from now on. */
	epoll_pre_done(fd, s);
	if (session_state(s) == SESSION_DEAD) {
		/* Over the limit after all (another thread won the race):
		 * the socket stays dead, and says why once. */
		session_err_reported_set(s);
		session_put(s);
		return -ENOBUFS;
	}
	if (r < 0) {
		/* The handshake starts when TCP's does. */
		session_put(s);
		return -e;
	}
	r = session_handshake(s, fd, session_fd_blocking(kfd));
	if (r == -EAGAIN) {
		session_put(s);
		return -EINPROGRESS;
	}
	if (r < 0) {
		session_err_reported_set(s);
		session_put(s);
		return -ECONNREFUSED;
	}
	session_put(s);
	return 0;
}

int
conn_accepted(int fd)
{
	const struct reload_policy *rp;
	const struct policy_rule *rule;
	struct sockaddr_storage local, peer;
	socklen_t l = sizeof(local), pl = sizeof(peer);
	struct session *s;
	int saved = errno, kfd;

	fdtab_fresh(fd);
	if (!(rp = shim_decide())->accept)
		return 0;
	if (real_getsockname(fd, (struct sockaddr *)&local, &l) < 0 ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
		errno = saved;
		return 0;
	}
	rule = policy_match(rp->pol, POLICY_ACCEPT,
	    (struct sockaddr *)&local, l);
	if (rule == NULL || rule->plain || !conn_is_tcp(fd)) {
		errno = saved;
		return 0;
	}
	if (real_getpeername(fd, (struct sockaddr *)&peer, &pl) < 0)
		memset(&peer, 0, sizeof(peer));
	if ((kfd = standin_swap(fd, local.ss_family, 0)) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "no descriptor for the sealed "
		    "socket: %s", strerror(-kfd));
		conn_refused(rule, (struct sockaddr *)&peer,
		    REASON_NO_DESCRIPTOR, why);
		return kfd;
	}
	if ((s = session_new(kfd, rule, false, (struct sockaddr *)&peer)) == NULL) {
		standin_mark(kfd, false);
		real_close(kfd);
		return -ENOMEM;
	}
	session_set_kfd(s, kfd, fd, 0);
	if (fdtab_set(fd, s) < 0) {
		session_put(s);
		return -ENOMEM;
	}
	session_put(s);
	errno = saved;
	return 0;
}
