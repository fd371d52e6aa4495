/*
 * test_epoll: the epoll translation (shim/epoll.c, epoll_shadow.c,
 * epoll_wait.c, epoll_pre.c) through its internal API, with real epoll
 * instances and sealed sessions over loopback TCP (wire.h: the program fds
 * are stand-ins, the kernel registrations are on the kfds).
 *
 * The hooks are not linked: prog_ctl() and prog_wait() below make the
 * calls hook_epoll.c makes for epoll_ctl() and epoll_wait(), in the same
 * order, so what they return is what a program would get.  Every event
 * they return is checked against THE RULE (epoll.c): it never carries the
 * shim's tag (EP_TAG in the high 32 bits) and always carries data the
 * test registered.
 *
 * Covered: plaintext readiness level-triggered (a whole record is
 * readable, buffered plaintext the kernel no longer sees is readable,
 * half a record is not and the wait runs its full time), EPOLLOUT,
 * EPOLLET (new data once, again after MOD or more data), EPOLLONESHOT
 * (disabled until MOD; a swallowed event re-arms it), DEL, ADD/MOD/DEL
 * errors, unsealed fds in the same instance, a dup()ed epoll fd (the first
 * wait through it resolves the tags, and it keeps working after the
 * original is closed; a registration through a third copy joins the same
 * instance), tags nobody knows (dropped, never returned),
 * epoll_filtered on a crafted array, close of the last fd and of one of
 * two fds of a session, the handshake inside waits (its steps swallowed,
 * its deadline bounding the wait), and epoll_pre's notes (candidates,
 * ADD/MOD/DEL, detach/reattach, done).  Not covered here: waits already
 * blocked in another thread when the first sealed fd is registered, fork
 * and exec (tests/helpers/epoll_tags.c does those under the shim).
 *
 * Run from the repo root: build/tests/test_epoll.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "epoll.h"
#include "epoll_int.h"
#include "fdtab.h"
#include "log.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "check.h"
#include "wire.h"

#define D_A     0xa1a1a1a1a1a1ULL      /* the program's data for fds */
#define D_B     0xb2b2b2b2b2b2ULL
#define D_D     0xd4d4d4d4d4d4ULL
#define D_P     0x7070707070ULL

/* Events with data nobody registered, or the same data twice in a wait. */
static int unknown_returned;

#define prog_ctl wire_epoll_ctl

/* The program's epoll_wait(): THE RULE (wire.h), and only data the test
 * registered. */
static int
prog_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	int r = wire_epoll_wait(epfd, ev, max, timeout), i, j;

	for (i = 0; i < r; i++) {
		if (!ep_tagged(&ev[i]) && ev[i].data.u64 != D_A &&
		    ev[i].data.u64 != D_B && ev[i].data.u64 != D_D &&
		    ev[i].data.u64 != D_P) {
			unknown_returned++;
			fprintf(stderr, "unknown data returned: %#llx\n",
			    (unsigned long long)ev[i].data.u64);
		}
		/* one registration, one event per wait (as the kernel) */
		for (j = 0; j < i; j++) {
			if (ev[j].data.u64 == ev[i].data.u64) {
				unknown_returned++;
				fprintf(stderr, "data %#llx returned twice\n",
				    (unsigned long long)ev[i].data.u64);
			}
		}
	}
	return r;
}

/* The events the wait gave DATA (0: none), and how many carried it. */
static uint32_t
events_of(const struct epoll_event *ev, int n, uint64_t data, int *count)
{
	uint32_t e = 0;
	int i, c = 0;

	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 == data) {
			e |= ev[i].events;
			c++;
		}
	}
	if (count != NULL)
		*count = c;
	return e;
}

static int
kernel_tagged(int epfd)
{
	return wire_kernel_tagged(epfd, NULL);
}

/* Read A's plaintext until EAGAIN; returns the count (-1: not EAGAIN). */
static ssize_t
read_all(struct wire *w, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t r = -EAGAIN;

	while (got < cap && (r = wire_recv(w->sa, w->a, buf + got,
	    cap - got)) > 0)
		got += (size_t)r;
	return got < cap && r < 0 && r != -EAGAIN ? -1 : (ssize_t)got;
}

static void
drain(struct wire *w)
{
	char buf[4096];

	while (wire_recv(w->sa, w->a, buf, sizeof(buf)) > 0)
		;
}

/* Level-triggered: plaintext readiness, buffered and half records. */
static void
test_level(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct epoll_event ev[8];
	uint8_t held[64];
	size_t heldlen, ct;
	char buf[64];
	uint64_t t0;
	int ep = epoll_create1(EPOLL_CLOEXEC), p[2], n, c;

	CHECK(ep >= 0);
	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p), 0);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), 0);
	CHECK(epoll_any());
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, D_P), 0);
	/* errors as the kernel gives them */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), -1);
	CHECK_INT_EQ(errno, EEXIST);
	CHECK_INT_EQ(epoll_ctl_sealed(ep, EPOLL_CTL_ADD, w->a, NULL), -EEXIST);
	CHECK_INT_EQ(epoll_ctl_sealed(ep, EPOLL_CTL_MOD, w->a, NULL), -EFAULT);
	CHECK_INT_EQ(epoll_ctl_sealed(ep, 77, w->a, &ev[0]), -EINVAL);
	ev[0].events = EPOLLIN | EPOLLEXCLUSIVE;
	CHECK_INT_EQ(epoll_ctl_sealed(ep, EPOLL_CTL_MOD, w->a, &ev[0]), -EINVAL);

	/* nothing yet: the wait runs its time (the stand-in itself would
	 * say POLLOUT|POLLHUP at once: the kernel must be asked about the
	 * kfd) */
	t0 = now_ms();
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 60), 0);
	CHECK(now_ms() - t0 >= 55);

	/* a whole record: readable, with the program's data; level: again */
	ct = wire_b_to_a(w, "hello", 5, SIZE_MAX, NULL, NULL);
	CHECK_INT_EQ(ct, RECORD_WIRELEN(5));
	wire_settle(w->sa, w->a);
	/* the kernel's own event is tagged: the translation matters */
	CHECK_INT_EQ(kernel_tagged(ep), 1);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, &c), EPOLLIN);
	CHECK_INT_EQ(c, 1);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);

	/* part read: the rest is plaintext in the session, none in the
	 * kernel, and still readable */
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, 2), 2);
	CHECK_INT_EQ(kernel_tagged(ep), 0);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	n = prog_wait(ep, ev, 8, 0);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 3);
	CHECK_MEM_EQ(buf, "llo", 3);
	t0 = now_ms();
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 60), 0);
	CHECK(now_ms() - t0 >= 55);

	/* half a record: the kernel says readable, the program is told
	 * nothing, and the wait is not cut short */
	ct = wire_b_to_a(w, "world!", 6, RECORD_WIRELEN(6) - 5, held, &heldlen);
	CHECK_INT_EQ(heldlen, 5);
	wire_settle(w->sa, w->a);
	t0 = now_ms();
	n = prog_wait(ep, ev, 8, 150);
	CHECK_INT_EQ(n, 0);
	CHECK(now_ms() - t0 >= 140);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), -EAGAIN);
	/* the rest arrives: readable */
	wire_release(w, held, heldlen);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 6);
	CHECK_MEM_EQ(buf, "world!", 6);

	/* an unsealed fd in the same instance: its events untouched */
	CHECK_INT_EQ(write(p[1], "z", 1), 1);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_P, NULL), EPOLLIN);
	CHECK_INT_EQ(read(p[0], buf, 1), 1);

	/* EPOLLOUT: an open session with nothing queued can write */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLOUT, D_A), 0);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLOUT);
	/* both at once */
	wire_b_to_a(w, "xy", 2, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(events_of(ev, n, D_A, &c), EPOLLIN | EPOLLOUT);
	CHECK_INT_EQ(c, 1);
	/* a small maxevents: the kernel's and the buffered ones both fit
	 * in later waits, one per call */
	CHECK_INT_EQ(write(p[1], "z", 1), 1);
	n = prog_wait(ep, ev, 1, 1000);
	CHECK_INT_EQ(n, 1);
	n = prog_wait(ep, ev, 1, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(read(p[0], buf, 1), 1);
	drain(w);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN, D_A), 0);

	/* DEL: nothing more, from the shim or the kernel */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_DEL, w->a, 0, 0), 0);
	wire_b_to_a(w, "gone", 4, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(kernel_tagged(ep), 0);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_DEL, w->a, 0, 0), -1);
	CHECK_INT_EQ(errno, ENOENT);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN, D_A), -1);
	CHECK_INT_EQ(errno, ENOENT);
	/* ADD again: data already buffered is reported at once */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), 0);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 4);

	/* the peer's end: EPOLLIN|EPOLLRDHUP, read returns 0 */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLRDHUP, D_A), 0);
	CHECK_INT_EQ(session_shutdown(w->sb, w->b, SHUT_WR, false), 0);
	wire_move(w->y, w->x, SIZE_MAX, 200);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL) & (EPOLLIN | EPOLLRDHUP),
	    EPOLLIN | EPOLLRDHUP);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 0);

	close(p[0]);
	close(p[1]);
	wire_free(w);
	wire_close_fd(ep);
}

/* EPOLLET: new data once; again after MOD or when more arrives. */
static void
test_edge(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct epoll_event ev[8];
	char buf[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), n, c;

	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN | EPOLLET, D_A), 0);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 30), 0);
	wire_b_to_a(w, "one", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, &c), EPOLLIN);
	CHECK_INT_EQ(c, 1);
	/* not consumed, but told: no second edge */
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	/* a partial read pulls nothing new: still no edge */
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, 1), 1);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	/* more data: one new edge */
	wire_b_to_a(w, "two", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	/* MOD re-arms: buffered data is news again, once */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLET, D_A), 0);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	/* everything is there, in order */
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 5);
	CHECK_MEM_EQ(buf, "netwo", 5);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 30), 0);
	/* half a record makes no edge; its rest does */
	{
		uint8_t held[64];
		size_t hl;

		wire_b_to_a(w, "three", 5, 4, held, &hl);
		wire_settle(w->sa, w->a);
		CHECK_INT_EQ(prog_wait(ep, ev, 8, 80), 0);
		wire_release(w, held, hl);
		n = prog_wait(ep, ev, 8, 1000);
		CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
		CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
		CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 5);
	}
	wire_free(w);
	wire_close_fd(ep);
}

/* EPOLLONESHOT: one report, then nothing until MOD. */
static void
test_oneshot(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct epoll_event ev[8];
	uint8_t held[64];
	size_t hl;
	char buf[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), n;

	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN | EPOLLONESHOT,
	    D_A), 0);
	wire_b_to_a(w, "a", 1, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	/* disabled: neither the buffered data nor new data is reported */
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	wire_b_to_a(w, "b", 1, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	CHECK_INT_EQ(kernel_tagged(ep), 0);     /* disarmed in the kernel too */
	/* MOD re-arms: once more */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLONESHOT,
	    D_A), 0);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 2);
	CHECK_MEM_EQ(buf, "ab", 2);
	/* armed, empty: half a record is swallowed and re-arms the kernel's
	 * one-shot registration, so the rest still wakes the program */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLONESHOT,
	    D_A), 0);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 30), 0);
	wire_b_to_a(w, "half", 4, 3, held, &hl);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 80), 0);
	wire_release(w, held, hl);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 50), 0);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 4);
	wire_free(w);
	wire_close_fd(ep);
}

/* A dup()ed epoll fd, and tags nobody knows. */
static void
test_dup_epfd(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct epoll_event ev[8], kev;
	char buf[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), ep2, ep3, p[2], n;
	uint64_t t0;

	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), 0);
	ep2 = dup(ep);
	CHECK(ep2 >= 0);
	/* the shim does not know ep2 yet: the program's wait on it goes to
	 * the kernel, and the filter must resolve the tag */
	CHECK_INT_EQ(epoll_wait_sealed(ep2, ev, 8, 0, NULL, false), -2);
	wire_b_to_a(w, "dup", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep2, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	/* ... and made ep2 a name of the instance */
	n = epoll_wait_sealed(ep2, ev, 8, 0, NULL, false);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	/* the original closed: the copy still reports buffered plaintext */
	wire_close_fd(ep);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, 1), 1);
	CHECK_INT_EQ(kernel_tagged(ep2), 0);
	n = prog_wait(ep2, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 2);
	/* registrations through the copy work */
	CHECK_INT_EQ(prog_ctl(ep2, EPOLL_CTL_MOD, w->a, EPOLLIN | EPOLLOUT, D_A), 0);
	n = prog_wait(ep2, ev, 8, 1000);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLOUT);
	/* a new registration through yet another copy joins the instance
	 * (kcmp), so waits through ep2 see it without a lookup */
	{
		struct wire *w2 = wire_new(WIRE_STANDIN);
		int ep4 = dup(ep2);

		CHECK_INT_EQ(prog_ctl(ep4, EPOLL_CTL_ADD, w2->a, EPOLLIN, D_B), 0);
		wire_b_to_a(w2, "k", 1, SIZE_MAX, NULL, NULL);
		wire_settle(w2->sa, w2->a);
		n = epoll_wait_sealed(ep2, ev, 8, 1000, NULL, false);
		CHECK_INT_EQ(events_of(ev, n, D_B, NULL), EPOLLIN);
		CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLOUT);
		CHECK_INT_EQ(prog_ctl(ep2, EPOLL_CTL_DEL, w2->a, 0, 0), 0);
		wire_close_fd(ep4);
		wire_free(w2);
	}
	CHECK_INT_EQ(prog_ctl(ep2, EPOLL_CTL_DEL, w->a, 0, 0), 0);

	/* a tag no instance knows (an image before exec made it): dropped,
	 * and the wait runs its time rather than return it or return early */
	ep3 = epoll_create1(EPOLL_CLOEXEC);
	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p), 0);
	kev.events = EPOLLIN;
	kev.data.u64 = (uint64_t)EP_TAG << 32 | 0xfffffff0u;
	CHECK_INT_EQ(epoll_ctl(ep3, EPOLL_CTL_ADD, p[0], &kev), 0);
	CHECK_INT_EQ(write(p[1], "q", 1), 1);
	CHECK_INT_EQ(kernel_tagged(ep3), 1);
	CHECK_INT_EQ(prog_wait(ep3, ev, 8, 0), 0);
	t0 = now_ms();
	CHECK_INT_EQ(prog_wait(ep3, ev, 8, 80), 0);
	CHECK(now_ms() - t0 >= 75);
	/* with a program registration beside it, only that one comes back */
	CHECK_INT_EQ(prog_ctl(ep3, EPOLL_CTL_ADD, p[1], EPOLLOUT, D_P), 0);
	n = prog_wait(ep3, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_P, NULL), EPOLLOUT);

	/* epoll_filtered on an array: tagged ones out, order kept */
	{
		struct epoll_event a[4] = {
			{ .events = EPOLLIN, .data.u64 = D_P },
			{ .events = EPOLLIN, .data.u64 = (uint64_t)EP_TAG << 32 | 0xfffffff1u },
			{ .events = EPOLLOUT, .data.u64 = D_B },
			{ .events = EPOLLIN, .data.u64 = (uint64_t)EP_TAG << 32 | 0xfffffff2u },
		};

		errno = 1234;
		CHECK_INT_EQ(epoll_filtered(ep3, a, 4, 4, 0, 0, NULL, false), 2);
		CHECK(a[0].data.u64 == D_P && a[0].events == EPOLLIN);
		CHECK(a[1].data.u64 == D_B && a[1].events == EPOLLOUT);
		/* nothing tagged: unchanged, errno untouched */
		CHECK_INT_EQ(epoll_filtered(ep3, a, 4, 2, 0, 0, NULL, false), 2);
		CHECK_INT_EQ(epoll_filtered(ep3, a, 4, -1, 0, 0, NULL, false), -1);
		CHECK_INT_EQ(errno, 1234);
	}
	close(p[0]);
	close(p[1]);
	wire_close_fd(ep3);
	wire_close_fd(ep2);
	wire_free(w);
}

/* Close: of one of two fds of a session, then of the last. */
static void
test_close(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct epoll_event ev[8];
	char buf[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), d, n, p[2];

	/* a dup of the sealed fd, tracked as the dup hook does */
	d = dup(w->a);
	CHECK_INT_EQ(fdtab_set(d, w->sa), 0);
	epoll_dup(d, w->sa);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), 0);
	/* the kernel knows the kfd once per instance: the second gets a
	 * copy of its own */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, d, EPOLLIN, D_D), 0);
	wire_b_to_a(w, "two", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 2);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(events_of(ev, n, D_D, NULL), EPOLLIN);
	/* close a: d holds the socket, so a's registration lives on as on
	 * Linux (the file is still open), doing its I/O through d */
	wire_close_end(&w->a);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(events_of(ev, n, D_D, NULL), EPOLLIN);
	CHECK_INT_EQ(events_of(ev, n, D_A, NULL), EPOLLIN);
	CHECK_INT_EQ(wire_recv(w->sa, d, buf, sizeof(buf)), 3);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 40), 0);
	/* the number comes back as another file: its own registration */
	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p), 0);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, D_P), 0);
	CHECK_INT_EQ(write(p[1], "x", 1), 1);
	n = prog_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(events_of(ev, n, D_P, NULL), EPOLLIN);
	CHECK_INT_EQ(read(p[0], buf, 1), 1);
	/* close d, the last: every shadow goes, and the kernel's
	 * registrations with the kfd (the wire's own reference goes first:
	 * the program holds none) */
	CHECK(w->sa->ep_watch != NULL);
	session_put(w->sa);
	w->sa = NULL;
	wire_close_fd(d);
	CHECK(!fdtab_maybe(d));
	wire_b_to_a(w, "late", 4, SIZE_MAX, NULL, NULL);
	CHECK_INT_EQ(kernel_tagged(ep), 0);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 40), 0);
	wire_close_fd(p[0]);
	close(p[1]);
	wire_close_fd(ep);
	wire_free(w);
}

/* The handshake inside waits: its steps are not events; the deadline
 * bounds the wait. */
static void
test_handshake(void)
{
	struct wire *w = wire_new_hs(WIRE_STANDIN, 5000);
	struct epoll_event ev[8];
	int ep = epoll_create1(EPOLL_CLOEXEC), n, i, early = 0;
	bool a_out = false;
	uint64_t t0;

	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLOUT, D_A), 0);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->b, EPOLLIN, D_B), 0);
	for (i = 0; i < 100 && !a_out; i++) {
		n = prog_wait(ep, ev, 8, 20);
		if (events_of(ev, n, D_A, NULL) & EPOLLOUT) {
			a_out = true;
			early += session_state(w->sa) != SESSION_OPEN;
		}
		early += events_of(ev, n, D_B, NULL) != 0;  /* no data yet */
		wire_pump(w);
	}
	CHECK(a_out);
	CHECK_INT_EQ(early, 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	/* the responder finished from the waits alone */
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	wire_free(w);

	/* a peer that never answers: the wait ends at the deadline with
	 * the failure, not at its own (longer) timeout */
	w = wire_new_hs(WIRE_STANDIN, 150);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, w->a, EPOLLIN, D_A), 0);
	t0 = now_ms();
	n = prog_wait(ep, ev, 8, 3000);
	CHECK_INT_EQ(n, 1);
	CHECK(events_of(ev, n, D_A, NULL) & EPOLLERR);
	CHECK(now_ms() - t0 < 2000);
	CHECK_INT_EQ(session_state(w->sa), SESSION_DEAD);
	wire_free(w);
	wire_close_fd(ep);
}

/* epoll_pre: registrations made before a socket is decided. */
static void
test_pre(void)
{
	struct epoll_event ev[8], kev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), c, s, n;

	CHECK_INT_EQ(wire_tcp_pair(&c, &s), 0);
	CHECK(!epoll_pre_is(c));
	CHECK(!epoll_pre_is(-1));
	epoll_pre_socket(70000);                /* beyond PRE_MAX: never */
	CHECK(!epoll_pre_is(70000));
	epoll_pre_socket(c);
	CHECK(epoll_pre_is(c));
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_ADD, c, EPOLLIN, D_A), 0);
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_MOD, c, EPOLLIN | EPOLLOUT, D_D), 0);
	/* detach: the noted registration leaves the kernel */
	epoll_pre_detach(c);
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, c, &kev), -1);
	CHECK_INT_EQ(errno, ENOENT);
	/* reattach: back, with the last events and data noted (the MOD) */
	epoll_pre_reattach(c);
	n = epoll_wait(ep, ev, 8, 1000);
	CHECK_INT_EQ(n, 1);
	CHECK(n == 1 && ev[0].data.u64 == D_D && ev[0].events == EPOLLOUT);
	/* DEL forgets the note: detach leaves a new registration alone */
	CHECK_INT_EQ(prog_ctl(ep, EPOLL_CTL_DEL, c, 0, 0), 0);
	kev.data.u64 = D_P;
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, c, &kev), 0);
	epoll_pre_detach(c);
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, c, &kev), 0);
	/* a new socket() on the number drops stale notes */
	epoll_pre_ctl(ep, EPOLL_CTL_MOD, c, &kev);
	epoll_pre_socket(c);
	epoll_pre_detach(c);
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, c, &kev), 0);
	/* done unsealed: no longer a candidate, the registration the
	 * program's own */
	epoll_pre_ctl(ep, EPOLL_CTL_MOD, c, &kev);
	epoll_pre_done(c, NULL);
	CHECK(!epoll_pre_is(c));
	epoll_pre_detach(c);                    /* not a candidate: no-op */
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, c, &kev), 0);
	CHECK_INT_EQ(write(s, "k", 1), 1);
	n = epoll_wait(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].data.u64 == D_P);
	close(c);
	close(s);
	wire_close_fd(ep);
}

/*
 * Regression (found by this test): a level-triggered kernel event with a
 * tag nobody knows is dropped, and the wait went straight back to the
 * kernel, which reports it again at once: the wait spun on the CPU until
 * its timeout (for ever with -1).  Now it pauses between such waits
 * (epoll_wait.c, stale_pause): the check is that the wait spends most of
 * its time asleep, a ratio with a wide margin (a spin is all CPU).
 */
static void
test_unknown_tag_spin(void)
{
	struct epoll_event ev[8], kev = { .events = EPOLLIN };
	struct timespec c0, c1, w0, w1;
	int ep = epoll_create1(EPOLL_CLOEXEC), p[2];
	double cpu, wall;

	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p), 0);
	kev.data.u64 = (uint64_t)EP_TAG << 32 | 0xfffffff3u;
	CHECK_INT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &kev), 0);
	CHECK_INT_EQ(write(p[1], "q", 1), 1);
	clock_gettime(CLOCK_MONOTONIC, &w0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	CHECK_INT_EQ(prog_wait(ep, ev, 8, 200), 0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	clock_gettime(CLOCK_MONOTONIC, &w1);
	cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
	    (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
	wall = (double)(w1.tv_sec - w0.tv_sec) * 1e3 +
	    (double)(w1.tv_nsec - w0.tv_nsec) / 1e6;
	printf("test_epoll: a %.0f ms wait on an unknown tag used %.0f ms of "
	    "CPU\n", wall, cpu);
	CHECK(cpu < wall * 0.6);
	close(p[0]);
	close(p[1]);
	wire_close_fd(ep);
}

int
main(void)
{
	int nfds0 = wire_nfds();

	if (wire_test_start() < 0)
		return 1;

	test_pre();
	test_level();
	test_edge();
	test_oneshot();
	test_dup_epfd();
	test_close();
	test_handshake();
	test_unknown_tag_spin();
	CHECK_INT_EQ(wire_tags_returned, 0);
	CHECK_INT_EQ(unknown_returned, 0);
	CHECK_INT_EQ(session_handshakes(), 0);
	CHECK_INT_EQ(wire_nfds(), nfds0);       /* every fd cleaned up */
	CHECK_DONE();
}
