/*
 * wire.h: sealed connections over loopback TCP for the unit tests of the
 * modules around the sessions (test_fdtab, test_epoll, test_ready), built
 * with the core's own calls the way conn_connect()/conn_accepted() build
 * them, without the hooks and without a policy file.
 *
 *   initiator A (program fd a) ~ kfd <-TCP-> x  [test relays]  y <-TCP-> kfd ~ B (fd b)
 *
 * a and b are the numbers the program would hold: with WIRE_STANDIN they
 * are stand-ins (standin_swap) and the sessions do their I/O on kfds, as
 * after a sealed connect/accept; without it the sessions work on a and b
 * themselves (kfd -1).  x and y are raw TCP sockets the test reads and
 * writes, so it can hold back half a record.  Each session is in the fd
 * table (fdtab_set) and the wire keeps a reference of its own too.
 *
 * wire_close_end() closes a sealed fd the way the close() hook does
 * (fdtab_take, end-of-stream mark on the last fd, epoll_closed), and
 * wire_epoll_ctl()/wire_epoll_wait() make the calls hook_epoll.c makes,
 * counting in wire_tags_returned every event that breaks THE RULE
 * (epoll.c: no tagged event ever reaches the program).
 * Everything is non-blocking and every wait is bounded.
 */
#ifndef SOCKSEAL_TEST_WIRE_H
#define SOCKSEAL_TEST_WIRE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "epoll.h"
#include "epoll_int.h"
#include "fdtab.h"
#include "policy.h"
#include "record.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "standin.h"

#define WIRE_UNUSED __attribute__((unused))

#define WIRE_STANDIN 1          /* program fds are stand-ins */

static struct policy_key wire_key = { .name = "k", .path = "k",
    .resolved = "k", .line = 1 };

static WIRE_UNUSED void
wire_keys_init(void)
{
	randombytes_buf(wire_key.key, sizeof(wire_key.key));
}

/*
 * The unit tests' start: SIGPIPE ignored, libsodium ready, the shim's log
 * quiet (TEST_VERBOSE=1: debug lines) and a fresh key.  Returns 0, or -1
 * when libsodium cannot start.
 */
static WIRE_UNUSED int
wire_test_start(void)
{
	const char *v = getenv("TEST_VERBOSE");

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return -1;
	log_level = v && *v == '1' ? LOG_DEBUG : LOG_ERROR - 1;
	wire_keys_init();
	return 0;
}

static WIRE_UNUSED void
wire_rule(struct policy_rule *r, enum policy_dir dir, int timeout_ms)
{
	memset(r, 0, sizeof(*r));
	r->dir = dir;
	r->cipher = POLICY_CIPHER_DEFAULT;
	r->mode = POLICY_STRICT;
	r->timeout_ms = timeout_ms;
	r->file = "wire.policy";
	r->line = dir == POLICY_CONNECT ? 1 : 2;
	r->port_hi = 65535;
	r->keys[r->nkeys++] = &wire_key;
}

static WIRE_UNUSED void
wire_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A connected loopback TCP pair, both non-blocking; 0 or -1. */
static WIRE_UNUSED int
wire_tcp_pair(int *c, int *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(sin);
	int lfd;

	*c = *s = -1;
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &l) < 0 ||
	    (*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(*c, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    (*s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		if (*c >= 0)
			close(*c);
		close(lfd);
		*c = *s = -1;
		return -1;
	}
	close(lfd);
	wire_nonblock(*c);
	wire_nonblock(*s);
	return 0;
}

struct wire {
	int a, x, y, b;
	struct session *sa, *sb;        /* the wire's own references */
	struct policy_rule ri, rr;
	bool standin;
};

/* Seal program fd FD as S (a stand-in when STANDIN), in the table. */
static WIRE_UNUSED struct session *
wire_seal(int fd, const struct policy_rule *rule, bool initiator,
    bool standin)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4242), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned int flags = initiator ? STANDIN_INIT | STANDIN_USED : 0;
	struct session *s;
	int kfd = fd;

	if (standin && (kfd = standin_swap(fd, AF_INET, flags)) < 0)
		return NULL;
	if ((s = session_new(kfd, rule, initiator,
	    (struct sockaddr *)&sin)) == NULL)
		abort();
	if (standin)
		session_set_kfd(s, kfd, fd, flags);
	if (fdtab_set(fd, s) < 0)
		abort();
	return s;
}

/* A new wire, its sessions in the handshake (TIMEOUT_MS for both). */
static WIRE_UNUSED struct wire *
wire_new_hs(int flags, int timeout_ms)
{
	struct wire *w = calloc(1, sizeof(*w));

	if (w == NULL || wire_tcp_pair(&w->a, &w->x) < 0 ||
	    wire_tcp_pair(&w->b, &w->y) < 0)
		abort();
	w->standin = flags & WIRE_STANDIN;
	wire_rule(&w->ri, POLICY_CONNECT, timeout_ms);
	wire_rule(&w->rr, POLICY_ACCEPT, timeout_ms);
	w->sa = wire_seal(w->a, &w->ri, true, w->standin);
	w->sb = wire_seal(w->b, &w->rr, false, w->standin);
	if (w->sa == NULL || w->sb == NULL)
		abort();
	return w;
}

/* Wait up to MS for FD to be readable. */
static WIRE_UNUSED bool
wire_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* Move what is readable now from FROM to TO (at most MAX bytes; short
 * waits); returns the count. */
static WIRE_UNUSED size_t
wire_move(int from, int to, size_t max, int wait_ms)
{
	uint8_t buf[65536];
	size_t moved = 0, c, off;
	ssize_t n, m;

	while (moved < max) {
		c = max - moved < sizeof(buf) ? max - moved : sizeof(buf);
		n = read(from, buf, c);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN && wait_ms > 0 &&
			    wire_readable(from, wait_ms)) {
				wait_ms = 0;
				continue;
			}
			break;
		}
		for (off = 0; off < (size_t)n; off += (size_t)m) {
			m = write(to, buf + off, (size_t)n - off);
			if (m < 0) {
				struct pollfd p = { .fd = to, .events = POLLOUT };

				if (errno != EAGAIN)
					return moved;
				poll(&p, 1, 100);
				m = 0;
			}
		}
		moved += (size_t)n;
	}
	return moved;
}

/* Relay both ways, all that is there. */
static WIRE_UNUSED size_t
wire_pump(struct wire *w)
{
	return wire_move(w->x, w->y, SIZE_MAX, 0) +
	    wire_move(w->y, w->x, SIZE_MAX, 0);
}

/* Drive both handshakes without blocking; true when both are OPEN. */
static WIRE_UNUSED bool
wire_handshake(struct wire *w)
{
	int ra = -EAGAIN, rb = -EAGAIN, i;

	for (i = 0; i < 400 && (ra == -EAGAIN || rb == -EAGAIN); i++) {
		if (ra == -EAGAIN)
			ra = session_handshake(w->sa, w->a, false);
		if (wire_pump(w) == 0 && i > 0)
			(void)wire_readable(w->y, 5);
		wire_pump(w);
		if (rb == -EAGAIN)
			rb = session_handshake(w->sb, w->b, false);
		if (wire_pump(w) == 0 && i > 0)
			(void)wire_readable(w->x, 5);
		wire_pump(w);
	}
	return ra == 0 && rb == 0;
}

/* An open wire (aborts if the handshake fails: every test needs it). */
static WIRE_UNUSED struct wire *
wire_new(int flags)
{
	struct wire *w = wire_new_hs(flags, 5000);

	if (!wire_handshake(w)) {
		fprintf(stderr, "wire: handshake failed\n");
		abort();
	}
	return w;
}

static WIRE_UNUSED ssize_t
wire_send(struct session *s, int fd, const void *buf, size_t len)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };
	ssize_t r = session_send(s, fd, &v, 1, MSG_NOSIGNAL);

	epoll_touch(s);         /* as the hooks do after each call */
	return r;
}

static WIRE_UNUSED ssize_t
wire_recv(struct session *s, int fd, void *buf, size_t len)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };
	ssize_t r = session_recv(s, fd, &v, 1, MSG_DONTWAIT);

	epoll_touch(s);
	return r;
}

/*
 * B sends LEN bytes of BUF; the ciphertext is read off y and LIMIT bytes of
 * it (SIZE_MAX: all) written on to x, the rest kept in HELD (its length
 * in *HELDLEN) for wire_release().  Returns the ciphertext length.
 */
static WIRE_UNUSED size_t
wire_b_to_a(struct wire *w, const void *buf, size_t len, size_t limit,
    uint8_t *held, size_t *heldlen)
{
	uint8_t ct[4 * RECORD_MAXWIRE];
	size_t got = 0, want = RECORD_WIRELEN(len), part, off;
	ssize_t n;

	if (len > RECORD_MAXPT || wire_send(w->sb, w->b, buf, len) != (ssize_t)len)
		return 0;
	while (got < want && wire_readable(w->y, 1000)) {
		n = read(w->y, ct + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	part = limit < got ? limit : got;
	for (off = 0; off < part; ) {
		n = write(w->x, ct + off, part - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (heldlen != NULL) {
		*heldlen = got - part;
		if (held != NULL)
			memcpy(held, ct + part, got - part);
	}
	return got;
}

/* Write held bytes on to x. */
static WIRE_UNUSED void
wire_release(struct wire *w, const uint8_t *held, size_t len)
{
	ssize_t n;

	while (len > 0 && (n = write(w->x, held, len)) > 0) {
		held += n;
		len -= (size_t)n;
	}
}

/* hook_epoll.c's epoll_ctl(). */
static WIRE_UNUSED int
wire_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	int r;

	if (!fdtab_maybe(fd) && !epoll_any())
		r = epoll_ctl(epfd, op, fd, &ev);
	else if ((r = epoll_ctl_sealed(epfd, op, fd, &ev)) < 0) {
		errno = -r;
		r = -1;
	}
	if (r == 0 && epoll_pre_is(fd))
		epoll_pre_ctl(epfd, op, fd, &ev);
	return r;
}

static int wire_tags_returned;

/* hook_epoll.c's epoll_wait(), THE RULE checked on what it returns. */
static WIRE_UNUSED int
wire_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	long ms = timeout < 0 ? -1 : timeout;
	uint64_t t0;
	int r = -2, i;

	if (epoll_any())
		r = epoll_wait_sealed(epfd, ev, max, ms, NULL, false);
	if (r == -2) {
		t0 = ms > 0 ? now_ms() : 0;
		r = epoll_wait(epfd, ev, max, timeout);
		r = epoll_filtered(epfd, ev, max, r, ms, t0, NULL, false);
	}
	for (i = 0; i < r; i++) {
		if (ep_tagged(&ev[i])) {
			wire_tags_returned++;
			fprintf(stderr, "tagged event returned: %#llx\n",
			    (unsigned long long)ev[i].data.u64);
		}
	}
	return r;
}

/* How many of the kernel's own events (no translation) carry a tag, and
 * (in *UNTAGGED) how many do not. */
static WIRE_UNUSED int
wire_kernel_tagged(int epfd, int *untagged)
{
	struct epoll_event ev[16];
	int n, i, t = 0;

	n = epoll_wait(epfd, ev, 16, 0);
	for (i = 0; i < n; i++)
		t += ep_tagged(&ev[i]);
	if (untagged != NULL)
		*untagged = n < 0 ? 0 : n - t;
	return t;
}

/* Give the kernel a moment to deliver loopback bytes to FD's socket. */
static WIRE_UNUSED void
wire_settle(struct session *s, int fd)
{
	(void)wire_readable(session_kfd(s, fd), 200);
}

/* How many fds this process has open (a test must leave none behind). */
static WIRE_UNUSED int
wire_nfds(void)
{
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	char path[64], link[128];
	ssize_t l;

	if (dir == NULL)
		return -1;
	/* The state objects of cached mappings stay (session_state.c). */
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		link[l > 0 ? l : 0] = '\0';
		n += strncmp(link, "/memfd:sockseal-session", 23) != 0;
	}
	closedir(dir);
	return n;
}

/* Close FD (a sealed fd or not) the way the close() hook does. */
static WIRE_UNUSED void
wire_close_fd(int fd)
{
	struct session *s;
	bool last;

	if (fd < 0)
		return;
	epoll_pre_done(fd, NULL);
	if ((s = fdtab_take(fd, &last)) != NULL) {
		if (last)
			session_close_last(s, fd);
		epoll_closed(fd, s, last);
		session_put(s);
	} else {
		epoll_closed(fd, NULL, false);
	}
	close(fd);
}

static WIRE_UNUSED void
wire_close_end(int *fd)
{
	wire_close_fd(*fd);
	*fd = -1;
}

static WIRE_UNUSED void
wire_free(struct wire *w)
{
	wire_close_end(&w->a);
	wire_close_end(&w->b);
	if (w->x >= 0)
		close(w->x);
	if (w->y >= 0)
		close(w->y);
	session_put(w->sa);
	session_put(w->sb);
	free(w);
}

#endif
