/*
 * hook_passfd: a sealed descriptor passed with SCM_RIGHTS carries its
 * session (docs/handoff.md).
 *
 * The program passes its fd, which is a stand-in: a receiver gets the
 * stand-in, whose every call fails, unless it runs the shim and can find
 * the socket and the session.  So the sender's shim adds one descriptor
 * to the message, a parcel: a Unix SEQPACKET socket whose peer is gone
 * and whose one queued message names, for each sealed fd of the message
 * (by its index), the kfd and the state object (session_state.c), passed
 * in that message in turn.  The receiver's shim takes the parcel off the
 * end of the array before the program sees it, opens it, and attaches
 * each session to the stand-in it came with (session_attach): the same
 * session, so the sender may keep writing too, and no nonce is used twice.
 *
 * Only a process that opens the parcel holds the socket.  A receiver
 * without the shim holds the stand-ins and one more descriptor it did not
 * expect, the parcel; the socket itself stays queued inside it, reachable
 * only by a deliberate recvmsg() on a descriptor the program never asked
 * for (as a kfd is reachable by a raw system call: docs/standin.md).
 *
 * Until the receiver has attached it, a session counts the message in
 * flight, so that the sender's close does not end the stream
 * (session_in_flight).  A message never received keeps it counted: the
 * stream then ends by a truncation, never by a mark no holder sent.
 *
 * The receiver hands the kernel a control buffer one descriptor larger
 * than the program's, so the parcel fits whenever the program's own fds
 * do, and gives back what the program's buffer holds as the kernel would
 * (MSG_CTRUNC; descriptors that do not fit are closed).
 *
 * In a sandbox (init.h) neither side does any of this: the calls it needs
 * may be forbidden there.  A sealed fd passed from or to a sandboxed
 * process reaches the receiver as a bare stand-in, and fails closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "fdtab.h"
#include "hook.h"
#include "init.h"
#include "log.h"
#include "reason.h"
#include "real.h"
#include "session.h"
#include "standin.h"

#define PARCEL_MAX      64      /* sealed fds one message carries on */
#define PASS_CTL_MAX    65536   /* control buffers we enlarge */
#define PASS_CTL_STACK  1024    /* ... on the stack up to this */

static const uint8_t parcel_magic[16] = "sockseal parcel1";

struct parcel {
	uint8_t  magic[16];
	uint32_t n;
	struct {
		uint32_t idx;           /* in the message's descriptors */
		uint32_t flags;         /* the stand-in's tag (standin.h) */
	} e[PARCEL_MAX];
};

/* The descriptors of the SCM_RIGHTS messages in MSG, in the order the
 * kernel concatenates them: the count, *FDS each (at most MAX). */
static int
rights_of(const struct msghdr *msg, int **fds, int max)
{
	struct cmsghdr *c;
	int n = 0, k, i;

	for (c = CMSG_FIRSTHDR(msg); c != NULL;
	    c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k && n < max; i++)
			fds[n++] = (int *)CMSG_DATA(c) + i;
	}
	return n;
}

/* Send MSG with the parcel P (its fds FDS, NFDS) appended: the result. */
static ssize_t
send_with_parcel(int fd, const struct msghdr *msg, int flags,
    struct parcel *p, int *fds, int nfds)
{
	size_t at = CMSG_ALIGN(msg->msg_controllen);
	size_t clen = at + CMSG_SPACE(sizeof(int));
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 2 * PARCEL_MAX)];
	} pc;
	struct iovec v = { p, sizeof(*p) };
	struct msghdr pm = { 0 }, m = *msg;
	struct cmsghdr *c;
	char *ctl;
	int sp[2];
	ssize_t r;

	if ((ctl = calloc(1, clen)) == NULL)
		return -2;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		free(ctl);
		return -2;
	}
	pm.msg_iov = &v;
	pm.msg_iovlen = 1;
	pm.msg_control = pc.buf;
	pm.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	c = CMSG_FIRSTHDR(&pm);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	r = real_sendmsg(sp[0], &pm, MSG_NOSIGNAL);
	real_close(sp[0]);
	if (r < 0) {
		real_close(sp[1]);
		free(ctl);
		return -2;
	}
	memcpy(ctl, msg->msg_control, msg->msg_controllen);
	c = (struct cmsghdr *)(ctl + at);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &sp[1], sizeof(int));
	m.msg_control = ctl;
	m.msg_controllen = clen;
	r = real_sendmsg(fd, &m, flags);
	{
		int e = errno;

		real_close(sp[1]);
		free(ctl);
		errno = e;
	}
	return r;
}

ssize_t
hook_passfd_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct session *ss[PARCEL_MAX];
	int *rights[256], kfds[2 * PARCEL_MAX];
	struct parcel p;
	int n, i, k;
	ssize_t r;

	if (msg == NULL || msg->msg_control == NULL || !standin_any() ||
	    msg->msg_controllen > PASS_CTL_MAX || shim_in_sandbox())
		return real_sendmsg(fd, msg, flags);
	n = rights_of(msg, rights, 256);
	memset(&p, 0, sizeof(p));
	for (i = 0, k = 0; i < n && p.n < PARCEL_MAX; i++) {
		struct session *s = fdtab_get(*rights[i]);

		if (s == NULL)
			continue;
		if (session_sfd(s) < 0 || session_kfd(s, -1) < 0) {
			/* Its state cannot travel: the receiver holds the
			 * stand-in only, and fails closed. */
			session_put(s);
			continue;
		}
		p.e[p.n].idx = (uint32_t)i;
		p.e[p.n].flags = session_tagflags(s);
		kfds[k++] = session_kfd(s, -1);
		kfds[k++] = session_sfd(s);
		ss[p.n++] = s;
	}
	if (p.n == 0)
		return real_sendmsg(fd, msg, flags);
	memcpy(p.magic, parcel_magic, sizeof(p.magic));
	for (i = 0; i < (int)p.n; i++) {
		session_shared(ss[i]);
		session_in_flight(ss[i], 1);
	}
	r = send_with_parcel(fd, msg, flags, &p, kfds, k);
	if (r == -2) {
		LOG_WARN_CODE("handoff", REASON_HANDOFF,
		    "a sealed descriptor passed with SCM_RIGHTS goes "
		    "without its session (no parcel: %s); the receiver "
		    "cannot use it", strerror(errno));
		r = real_sendmsg(fd, msg, flags);
	}
	{
		int e = errno;

		for (i = 0; i < (int)p.n; i++) {
			if (r < 0)
				session_in_flight(ss[i], -1);
			session_put(ss[i]);
		}
		errno = e;
	}
	return r;
}

/* Is FD one of our parcels?  Its type and the magic, peeked. */
static bool
is_parcel(int fd)
{
	uint8_t m[sizeof(parcel_magic)];
	int type = 0, dom = 0;
	socklen_t l = sizeof(type);
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 ||
	    type != SOCK_SEQPACKET)
		return false;
	l = sizeof(dom);
	if (real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 ||
	    dom != AF_UNIX)
		return false;
	return real_recv(fd, m, sizeof(m), MSG_PEEK | MSG_DONTWAIT) ==
	    (ssize_t)sizeof(m) && memcmp(m, parcel_magic, sizeof(m)) == 0;
}

/* A received kfd or state object, moved among the shim's descriptors. */
static int
hide(int fd)
{
	int k = standin_hide(fd, true);

	real_close(fd);
	return k;
}

/* The session of the socket KFD if this process has it already. */
static struct session *
known(int kfd)
{
	enum { BATCH = 256 };
	struct session *ss[BATCH], *found = NULL;
	int fds[BATCH], n, i;
	struct stat st;

	if (fstat(kfd, &st) < 0)
		return NULL;
	n = fdtab_snapshot(fds, ss, BATCH);
	for (i = 0; i < n; i++) {
		if (found == NULL && session_same_socket(ss[i], st.st_dev,
		    st.st_ino)) {
			found = ss[i];
			continue;
		}
		session_put(ss[i]);
	}
	return found;
}

/* Attach the session of stand-in PFD, whose socket and state came as
 * KFD and SFD (the receiver's numbers) tagged FLAGS. */
static void
take_one(int pfd, int kfd, int sfd, unsigned int flags)
{
	struct session *s;

	fdtab_fresh(pfd);
	if ((s = known(kfd)) != NULL) {
		/* Ours already (this process sent it to itself). */
		real_close(kfd);
		real_close(sfd);
	} else if ((kfd = hide(kfd)) < 0 || (sfd = hide(sfd)) < 0 ||
	    (s = session_attach(sfd, kfd, pfd, flags,
	    conn_rule_for(kfd))) == NULL) {
		LOG_WARN_CODE("handoff", REASON_HANDOFF,
		    "received sealed descriptor %d: its session "
		    "cannot be taken over; it stays closed", pfd);
		standin_close(kfd);
		standin_close(sfd);
		return;
	}
	if (fdtab_set(pfd, s) < 0)
		LOG_WARN_CODE("handoff", REASON_NO_MEMORY,
		    "received sealed descriptor %d: no memory to "
		    "track it; it stays closed", pfd);
	else
		LOG(LOG_INFO, "received sealed connection %s %s on fd %d",
		    session_initiator(s) ? "to" : "from", session_peer(s), pfd);
	session_in_flight(s, -1);
	hook_kfd_sync(s);
	session_put(s);
}

/* Open the parcel PARCEL: attach each session it names to its stand-in
 * among RIGHTS (N). */
static void
open_parcel(int parcel, int **rights, int n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 2 * PARCEL_MAX)];
	} pc;
	struct parcel p;
	struct iovec v = { &p, sizeof(p) };
	struct msghdr m = { 0 };
	struct cmsghdr *c;
	int got = 0, *fds = NULL, i;
	ssize_t r;

	m.msg_iov = &v;
	m.msg_iovlen = 1;
	m.msg_control = pc.buf;
	m.msg_controllen = sizeof(pc.buf);
	r = real_recvmsg(parcel, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	real_close(parcel);
	if (r < (ssize_t)offsetof(struct parcel, e))
		return;
	for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			fds = (int *)CMSG_DATA(c);
			got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		}
	}
	for (i = 0; i < (int)p.n && i < PARCEL_MAX; i++) {
		if (2 * i + 1 >= got)
			break;
		if (p.e[i].idx < (uint32_t)n)
			take_one(*rights[p.e[i].idx], fds[2 * i], fds[2 * i + 1],
			    p.e[i].flags);
		else {
			real_close(fds[2 * i]);
			real_close(fds[2 * i + 1]);
		}
	}
	for (i = 2 * i; i < got; i++)
		real_close(fds[i]);
}

/*
 * Copy the control messages of M (the kernel's, in our buffer) into the
 * program's MSG as the kernel would have into a buffer of its size.
 */
static void
give_back(struct msghdr *msg, struct msghdr *m)
{
	char *dst = msg->msg_control;
	size_t room = msg->msg_controllen, used = 0, len, space;
	struct cmsghdr *c, *d;
	int k, fit, i;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		len = c->cmsg_len;
		space = CMSG_ALIGN(len);
		if (used + len <= room) {
			memcpy(dst + used, c, len);
			used += space < room - used ? space : room - used;
			continue;
		}
		msg->msg_flags |= MSG_CTRUNC;
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* As many descriptors as fit; the rest are closed. */
			k = (int)((len - CMSG_LEN(0)) / sizeof(int));
			fit = room - used >= CMSG_LEN(0) ? (int)((room - used -
			    CMSG_LEN(0)) / sizeof(int)) : 0;
			for (i = fit; i < k; i++)
				real_close(((int *)CMSG_DATA(c))[i]);
			if (fit > 0) {
				d = (struct cmsghdr *)(dst + used);
				memcpy(d, c, CMSG_LEN(sizeof(int) * (size_t)fit));
				d->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)fit);
				space = CMSG_SPACE(sizeof(int) * (size_t)fit);
				used += space < room - used ? space : room - used;
			}
		} else if (room - used >= sizeof(struct cmsghdr)) {
			memcpy(dst + used, c, room - used);
			((struct cmsghdr *)(dst + used))->cmsg_len = room - used;
			used = room;
		}
		/* Nothing after a truncated one. */
		for (c = CMSG_NXTHDR(m, c); c != NULL; c = CMSG_NXTHDR(m, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS)
				for (i = 0; i < (int)((c->cmsg_len -
				    CMSG_LEN(0)) / sizeof(int)); i++)
					real_close(((int *)CMSG_DATA(c))[i]);
		break;
	}
	msg->msg_controllen = used;
}

ssize_t
hook_passfd_recvmsg(int fd, struct msghdr *msg, int flags)
{
	union {
		struct cmsghdr align;
		char buf[PASS_CTL_STACK];
	} small;
	struct msghdr m;
	struct cmsghdr *c, *last = NULL;
	int *rights[256], n, parcel;
	size_t clen;
	char *ctl = small.buf;
	ssize_t r;

	if (msg == NULL || msg->msg_control == NULL ||
	    msg->msg_controllen == 0 || msg->msg_controllen > PASS_CTL_MAX ||
	    shim_in_sandbox())
		return real_recvmsg(fd, msg, flags);
	/* The common sizes on the stack: every recvmsg with a control
	 * buffer comes here (UDP's too), not only fd passing. */
	clen = CMSG_ALIGN(msg->msg_controllen) + CMSG_SPACE(sizeof(int));
	if (clen > sizeof(small.buf) && (ctl = malloc(clen)) == NULL)
		return real_recvmsg(fd, msg, flags);
	m = *msg;
	m.msg_control = ctl;
	m.msg_controllen = clen;
	if ((r = real_recvmsg(fd, &m, flags)) < 0) {
		int e = errno;

		if (ctl != small.buf)
			free(ctl);
		errno = e;
		return r;
	}
	msg->msg_namelen = m.msg_namelen;
	msg->msg_flags = m.msg_flags;
	n = rights_of(&m, rights, 256);
	for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			last = c;
	if (n > 0 && is_parcel(parcel = *rights[n - 1])) {
		/* Off the end of the array, then opened (a peek's copy is
		 * only closed: the read that follows gets it again). */
		last->cmsg_len -= sizeof(int);
		if (flags & MSG_PEEK)
			real_close(parcel);
		else
			open_parcel(parcel, rights, n - 1);
	}
	give_back(msg, &m);
	if (ctl != small.buf)
		free(ctl);
	return r;
}
