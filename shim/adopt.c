/*
 * adopt: the connections an image inherited (exec), taken over at start.
 *
 * First the shim's own descriptors the previous image passed on (carry.c:
 * kfds and state objects), then every fd below the program's limit: a
 * stand-in whose tag names an inherited kfd is the previous image's
 * sealed connection, and a connected TCP socket that a rule seals is a
 * connection a parent without the shim handed over.  Last, the carried
 * sessions no stand-in named end here (carry_orphans).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carry.h"
#include "conn.h"
#include "fdtab.h"
#include "init.h"
#include "log.h"
#include "reason.h"
#include "policy.h"
#include "real.h"
#include "session.h"
#include "standin.h"

/* The rule of a carried session no rule of this image names: only its
 * end is logged against it. */
static const struct policy_rule inherited_rule = {
	.dir = POLICY_ACCEPT,
	.timeout_ms = 10000,
	.file = "(inherited)",
	.line = 0,
};

/* Does RULE seal? */
static bool
seals(const struct policy_rule *rule)
{
	return rule != NULL && !rule->plain;
}

/* This image's rule for the connection on KFD: accept rules against the
 * local address unless it is ours (INITIATOR 1), then connect rules
 * against the peer unless it is theirs (0); -1: either.  *INIT: which. */
static const struct policy_rule *
rule_of(int kfd, int initiator, bool *init)
{
	const struct policy_rule *rule = NULL;
	struct sockaddr_storage local, peer;
	socklen_t l = sizeof(local), pl = sizeof(peer);

	*init = false;
	if (real_getsockname(kfd, (struct sockaddr *)&local, &l) < 0 ||
	    real_getpeername(kfd, (struct sockaddr *)&peer, &pl) < 0)
		return NULL;
	if (initiator != 1)
		rule = policy_match(shim_policy_loaded(), POLICY_ACCEPT,
		    (struct sockaddr *)&local, l);
	if (!seals(rule) && initiator != 0) {
		rule = policy_match(shim_policy_loaded(), POLICY_CONNECT,
		    (struct sockaddr *)&peer, pl);
		*init = true;
	}
	return rule;
}

const struct policy_rule *
conn_rule_for(int kfd)
{
	const struct policy_rule *rule;
	bool init;

	rule = rule_of(kfd, -1, &init);
	return seals(rule) ? rule : &inherited_rule;
}

/*
 * A carried session for the stand-in FD tagged FLAGS, on KFD with state
 * object SFD: attached, or failed closed when this image cannot continue
 * it.  1 (adopted), 0 or -errno.
 */
static int
adopt_carried(int fd, int kfd, int sfd, unsigned int flags,
    const struct policy_rule *rule, struct session **seen, int *nseen)
{
	const char *why = NULL;
	struct session *s;

	if (!seals(rule)) {
		rule = &inherited_rule;
		why = "no rule of this image seals it";
	}
	if ((s = session_attach(sfd, kfd, fd, flags, rule)) == NULL) {
		LOG_WARN_CODE("handoff", REASON_HANDOFF,
		    "inherited sealed connection on fd %d: its state "
		    "cannot be taken over; it stays closed", fd);
		standin_close(sfd);
		standin_close(kfd);
		return 0;
	}
	if (why != NULL)
		session_abandon(s, why);
	if (fdtab_set(fd, s) < 0) {
		session_put(s);
		return -ENOMEM;
	}
	LOG(LOG_INFO, "took over sealed connection %s %s on fd %d (rule %s:%d)",
	    session_initiator(s) ? "to" : "from", session_peer(s), fd,
	    rule->file, rule->line);
	if (*nseen < 64)
		seen[(*nseen)++] = s;
	session_put(s);
	return 1;
}

/*
 * Adopt FD, a socket this image inherited (exec), if a rule seals it.
 *
 * A stand-in (its tag names a kfd this image inherited too) is the
 * previous image's sealed connection.  With its state object (carry.h)
 * the same session goes on here, in the state it was in; without one, a
 * handshake not begun (sshd's re-exec, before any byte) starts afresh, one
 * under way cannot be resumed and fails closed at its first use, and a
 * permissive rule's plaintext client stays plaintext.  If no rule of this
 * image seals a fresh one, the program gets its socket back.
 *
 * A connected TCP socket (a parent without the shim handed it over: inetd,
 * socat EXEC) that a rule seals gets a stand-in and a session that starts
 * its handshake on the program's first use.  Accept rules are tried first,
 * against the local address (a server's accepted connection, as sshd and
 * inetd hand over); then connect rules, against the peer.
 *
 * Several fds on one socket (dup'ed onto 0 and 1) share one session.
 */
static int
conn_adopt(int fd, struct session **seen, int *nseen)
{
	const struct policy_rule *rule = NULL;
	struct sockaddr_storage local, peer;
	socklen_t l = sizeof(local), pl = sizeof(peer);
	struct session *s;
	struct stat st;
	unsigned int flags = 0;
	bool initiator = false, tagged;
	int i, kfd, sfd = -1;

	if (standin_is_kfd(fd) || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	kfd = standin_find(fd, &flags);
	tagged = kfd >= 0;
	if (tagged && fstat(kfd, &st) < 0)
		return 0;
	for (i = 0; i < *nseen; i++) {
		if (!session_same_socket(seen[i], st.st_dev, st.st_ino))
			continue;
		/* Another fd on the socket itself: it gets the stand-in. */
		if (!tagged) {
			int fdfl = real_fcntl(fd, F_GETFD, 0);

			if (real_dup3(session_stand_in(seen[i]), fd,
			    fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
				return -errno;
		}
		return fdtab_set(fd, seen[i]) < 0 ? -ENOMEM : 1;
	}
	if (!tagged)
		kfd = fd;
	if (!conn_is_tcp(kfd) ||
	    real_getsockname(kfd, (struct sockaddr *)&local, &l) < 0 ||
	    real_getpeername(kfd, (struct sockaddr *)&peer, &pl) < 0)
		return 0;
	rule = rule_of(kfd, !tagged ? -1 : (flags & STANDIN_INIT) ? 1 : 0,
	    &initiator);
	if (tagged)
		sfd = carry_take(kfd);
	if (!seals(rule) && tagged &&
	    !(flags & (STANDIN_USED | STANDIN_PLAIN))) {
		/* Not sealed here, and it never moved a sealed byte: the
		 * program's. */
		if (sfd >= 0)
			carry_drop(kfd);
		standin_undo(fd, kfd);
		return 0;
	}
	/* The previous image's session goes on, here. */
	if (sfd >= 0)
		return adopt_carried(fd, kfd, sfd, flags, rule, seen, nseen);
	if (!seals(rule)) {
		/* One that did stays on its stand-in, whose every call
		 * fails. */
		if (tagged)
			LOG_WARN_CODE("handoff", REASON_HANDOFF,
			    "inherited sealed connection on fd %d: "
			    "no rule of this image seals it; it stays closed",
			    fd);
		return 0;
	}
	if (!tagged) {
		if ((kfd = standin_swap(fd, local.ss_family,
		    initiator ? STANDIN_INIT : 0)) < 0)
			return kfd;
		flags = initiator ? STANDIN_INIT : 0;
	}
	if ((s = session_new(kfd, rule, initiator, (struct sockaddr *)&peer)) == NULL)
		return -ENOMEM;
	session_set_kfd(s, kfd, fd, flags);
	session_adopt_as(s, flags);
	if (fdtab_set(fd, s) < 0) {
		session_put(s);
		return -ENOMEM;
	}
	LOG(LOG_INFO, "adopted inherited connection %s %s on fd %d (rule %s:%d)",
	    initiator ? "to" : "from", session_peer(s), fd, rule->file,
	    rule->line);
	if (*nseen < 64)
		seen[(*nseen)++] = s;
	session_put(s);
	return 1;
}

/*
 * Which fds are open at start, once, for the inventory and the adoption.
 * Opening /proc/self/fd costs a hundred microseconds on its first use in a
 * process (procfs builds the process's directory), which every preloaded
 * program would pay at every exec.  poll() with no events answers for
 * OPEN_CHUNK numbers at once (POLLNVAL: not open), so below a soft
 * RLIMIT_NOFILE of OPEN_POLL_MAX (the default is 1024 on most systems)
 * the fds are found with a few calls and /proc is not opened.  Above the
 * soft limit the scan goes on while it finds open fds: the shim's own
 * descriptors the old image passed on live there (carry.c), packed from
 * the kfd base up.
 */
#define OPEN_CHUNK	256
#define OPEN_POLL_MAX	4096
#define OPEN_MAX	(1 << 20)

struct fdlist {
	int *fd;
	int n, cap;
};

static bool
fdlist_add(struct fdlist *l, int fd)
{
	int *nv;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((nv = realloc(l->fd, (size_t)l->cap * sizeof(int))) == NULL)
			return false;
		l->fd = nv;
	}
	l->fd[l->n++] = fd;
	return true;
}

/* The open fds below LIMIT, and above it while chunks have any; -1 if
 * poll() fails. */
static int
open_by_poll(struct fdlist *l, int limit)
{
	struct pollfd p[OPEN_CHUNK];
	int lo, i, open;

	for (lo = 0; lo < OPEN_MAX; lo += OPEN_CHUNK) {
		for (i = 0; i < OPEN_CHUNK; i++) {
			p[i].fd = lo + i;
			p[i].events = 0;
			p[i].revents = 0;
		}
		if (real_poll(p, OPEN_CHUNK, 0) < 0)
			return -1;
		for (i = 0, open = 0; i < OPEN_CHUNK; i++)
			if (!(p[i].revents & POLLNVAL)) {
				open++;
				(void)fdlist_add(l, p[i].fd);
			}
		if (open == 0 && lo + OPEN_CHUNK >= limit)
			break;
	}
	return 0;
}

static void
open_fds(struct fdlist *l)
{
	struct dirent *d;
	struct rlimit rl;
	DIR *dir;
	int dfd;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur <= OPEN_POLL_MAX &&
	    open_by_poll(l, (int)rl.rlim_cur) == 0)
		return;
	l->n = 0;
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		dfd = dirfd(dir);
		while ((d = readdir(dir)) != NULL)
			if (d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
			    atoi(d->d_name) != dfd)
				(void)fdlist_add(l, atoi(d->d_name));
		closedir(dir);
		return;
	}
	/* No /proc (a chroot): the low fds are where inherited ones live. */
	l->n = 0;
	(void)open_by_poll(l, OPEN_CHUNK);
}

int
conn_adopt_inherited(void (*adopted)(int fd))
{
	struct session *seen[64];
	struct fdlist l = { 0 };
	int i, nseen = 0, n = 0;

	if (policy_nrules(shim_policy_loaded()) == 0)
		return 0;
	open_fds(&l);
	carry_inventory(l.fd, l.n);
	for (i = 0; i < l.n; i++) {
		if (conn_adopt(l.fd[i], seen, &nseen) > 0) {
			adopted(l.fd[i]);
			n++;
		}
	}
	carry_orphans();
	free(l.fd);
	return n;
}
