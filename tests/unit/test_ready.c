/*
 * test_ready: shim/ready.c, the poll/ppoll/select/pselect translation,
 * called as hook_poll.c calls it, over sealed loopback connections whose
 * program fds are stand-ins (wire.h) mixed with unsealed fds.
 *
 * A stand-in polled by the kernel says POLLOUT|POLLHUP at once, so every
 * check that a sealed fd is *not* ready also checks that the kernel was
 * asked about the kfd and not about the program's number.
 *
 * Covered: ready_has_sealed; whole records readable, half a record not
 * (the poll runs its full time instead of returning early), buffered
 * plaintext readable with nothing in the kernel; POLLOUT; unsealed fds'
 * answers untouched beside sealed ones; fd -1 entries; POLLNVAL for a
 * closed number beside a sealed fd and for a sealed number closed behind
 * the shim's back; timeouts 0, short and the handshake
 * deadline cutting a longer one; the handshake advanced by polls alone;
 * ppoll with a mask; more than the stack's 64 entries; select's sets
 * rewritten, its count, EBADF for a closed number, -2 when nothing is
 * sealed, fds at and beyond FD_SETSIZE ignored, and left_ms.
 *
 * Run from the repo root: build/tests/test_ready.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "fdtab.h"
#include "log.h"
#include "ready.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "check.h"
#include "wire.h"

/* hook_poll.c's poll(). */
static int
prog_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!ready_has_sealed(fds, n))
		return poll(fds, n, timeout);
	return ready_poll(fds, n, timeout < 0 ? -1 : timeout, NULL, false);
}

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
test_poll(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct pollfd p[4];
	uint8_t held[64];
	size_t hl;
	char buf[64];
	uint64_t t0;
	int u[2], r;

	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, u), 0);
	/* only sealed numbers count */
	p[0].fd = u[0];
	p[1].fd = -1;
	CHECK(!ready_has_sealed(p, 2));
	p[1].fd = w->a;
	CHECK(ready_has_sealed(p, 2));
	CHECK(!ready_has_sealed(p, 1));

	/* nothing to read: 0 after the whole timeout (the stand-in alone
	 * would have said POLLOUT|POLLHUP at once) */
	p[0] = (struct pollfd){ .fd = w->a, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = u[0], .events = POLLIN };
	p[2] = (struct pollfd){ .fd = -1, .events = POLLIN };
	t0 = now_ms();
	CHECK_INT_EQ(prog_poll(p, 3, 80), 0);
	CHECK(now_ms() - t0 >= 75);
	CHECK_INT_EQ(p[0].revents, 0);
	CHECK_INT_EQ(p[0].events, POLLIN);      /* the program's, restored */
	CHECK_INT_EQ(p[0].fd, w->a);
	CHECK_INT_EQ(p[1].revents, 0);
	/* timeout 0: at once */
	t0 = now_ms();
	CHECK_INT_EQ(prog_poll(p, 3, 0), 0);
	CHECK(now_ms() - t0 < 50);

	/* a whole record: POLLIN, and only on the sealed fd */
	wire_b_to_a(w, "hello", 5, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(prog_poll(p, 3, 1000), 1);
	CHECK_INT_EQ(p[0].revents, POLLIN);
	CHECK_INT_EQ(p[1].revents, 0);
	CHECK_INT_EQ(p[2].revents, 0);
	/* read part: the rest is buffered, none left in the kernel */
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, 3), 3);
	CHECK_INT_EQ(prog_poll(p, 3, 1000), 1);
	CHECK_INT_EQ(p[0].revents, POLLIN);
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 2);
	CHECK_MEM_EQ(buf, "lo", 2);

	/* half a record: nothing, for the whole time; then readable */
	wire_b_to_a(w, "partial", 7, 9, held, &hl);
	wire_settle(w->sa, w->a);
	t0 = now_ms();
	CHECK_INT_EQ(prog_poll(p, 3, 120), 0);
	CHECK(now_ms() - t0 >= 115);
	CHECK_INT_EQ(p[0].revents, 0);
	wire_release(w, held, hl);
	CHECK_INT_EQ(prog_poll(p, 3, 1000), 1);
	CHECK_INT_EQ(p[0].revents, POLLIN);
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 7);
	CHECK_MEM_EQ(buf, "partial", 7);

	/* mixed: the unsealed fd's answer is the kernel's, untouched */
	CHECK_INT_EQ(write(u[1], "u", 1), 1);
	p[1].events = POLLIN | POLLOUT;
	CHECK_INT_EQ(prog_poll(p, 3, 1000), 1);
	CHECK_INT_EQ(p[0].revents, 0);
	CHECK_INT_EQ(p[1].revents, POLLIN | POLLOUT);
	wire_b_to_a(w, "both", 4, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(prog_poll(p, 3, 1000), 2);
	CHECK_INT_EQ(p[0].revents, POLLIN);
	CHECK_INT_EQ(p[1].revents, POLLIN | POLLOUT);
	CHECK_INT_EQ(read(u[0], buf, 1), 1);
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 4);

	/* POLLOUT on an open session with nothing queued */
	p[0].events = POLLIN | POLLOUT;
	CHECK_INT_EQ(prog_poll(p, 1, 1000), 1);
	CHECK_INT_EQ(p[0].revents, POLLOUT);
	/* POLLNVAL for a closed number beside a sealed fd */
	{
		int dead = dup(u[0]);

		close(dead);
		p[0] = (struct pollfd){ .fd = w->a, .events = POLLOUT };
		p[1] = (struct pollfd){ .fd = dead, .events = POLLIN };
		r = prog_poll(p, 2, 1000);
		CHECK_INT_EQ(r, 2);
		CHECK_INT_EQ(p[0].revents, POLLOUT);
		CHECK_INT_EQ(p[1].revents, POLLNVAL);
	}

	/* ppoll with a signal mask */
	{
		sigset_t m;

		sigemptyset(&m);
		sigaddset(&m, SIGUSR1);
		p[0] = (struct pollfd){ .fd = w->a, .events = POLLOUT };
		CHECK_INT_EQ(ready_poll(p, 1, 1000, &m, true), 1);
		CHECK_INT_EQ(p[0].revents, POLLOUT);
		p[0].events = POLLIN;
		t0 = now_ms();
		CHECK_INT_EQ(ready_poll(p, 1, 60, &m, true), 0);
		CHECK(now_ms() - t0 >= 55);
	}
	/* POLLRDHUP and POLLIN after the peer's end mark; read gives 0 */
	p[0].events = POLLIN | POLLRDHUP;
	CHECK_INT_EQ(session_shutdown(w->sb, w->b, SHUT_WR, false), 0);
	wire_move(w->y, w->x, SIZE_MAX, 200);
	CHECK_INT_EQ(prog_poll(p, 1, 1000), 1);
	CHECK_INT_EQ(p[0].revents & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
	CHECK_INT_EQ(wire_recv(w->sa, w->a, buf, sizeof(buf)), 0);

	close(u[0]);
	close(u[1]);
	wire_free(w);
}

/* The handshake advances from polls alone; its deadline cuts a wait. */
static void
test_poll_handshake(void)
{
	struct wire *w = wire_new_hs(WIRE_STANDIN, 5000);
	struct pollfd p[2];
	int i, early = 0;
	bool out = false;
	uint64_t t0;

	for (i = 0; i < 100 && !out; i++) {
		p[0] = (struct pollfd){ .fd = w->a, .events = POLLOUT };
		p[1] = (struct pollfd){ .fd = w->b, .events = POLLIN };
		(void)ready_poll(p, 2, 20, NULL, false);
		if (p[0].revents & POLLOUT) {
			out = true;
			early += session_state(w->sa) != SESSION_OPEN;
		}
		early += p[1].revents != 0;
		wire_pump(w);
	}
	CHECK(out);
	CHECK_INT_EQ(early, 0);
	CHECK_INT_EQ(session_state(w->sa), SESSION_OPEN);
	CHECK_INT_EQ(session_state(w->sb), SESSION_OPEN);
	wire_free(w);

	/* an initiator whose peer never answers: failed at its deadline */
	w = wire_new_hs(WIRE_STANDIN, 150);
	p[0] = (struct pollfd){ .fd = w->a, .events = POLLIN };
	t0 = now_ms();
	CHECK_INT_EQ(ready_poll(p, 1, 3000, NULL, false), 1);
	CHECK(now_ms() - t0 < 2000);
	CHECK(now_ms() - t0 >= 140);
	CHECK(p[0].revents & POLLERR);
	CHECK_INT_EQ(session_state(w->sa), SESSION_DEAD);
	wire_free(w);
}

/* A sealed number closed behind the shim's back (no stand-in: the
 * kernel polls the number itself): POLLNVAL, as for any closed fd. */
static void
test_poll_nval_sealed(void)
{
	struct wire *w = wire_new(0);
	struct pollfd p[2];
	fd_set r;

	CHECK_INT_EQ(session_kfd(w->sa, w->a), w->a);
	close(w->a);                    /* syscall(SYS_close) as it were */
	CHECK(fdtab_maybe(w->a));
	p[0] = (struct pollfd){ .fd = w->a, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = w->b, .events = POLLOUT };
	CHECK_INT_EQ(prog_poll(p, 2, 1000), 2);
	CHECK_INT_EQ(p[0].revents, POLLNVAL);
	CHECK_INT_EQ(p[1].revents, POLLOUT);
	FD_ZERO(&r);
	FD_SET(w->a, &r);
	errno = 0;
	CHECK_INT_EQ(ready_select(w->a + 1, &r, NULL, NULL, 1000, NULL, false,
	    NULL), -1);
	CHECK_INT_EQ(errno, EBADF);
	fdtab_drop(w->a);
	w->a = -1;
	wire_free(w);

	/* the same during the handshake */
	w = wire_new_hs(0, 5000);
	close(w->a);
	p[0] = (struct pollfd){ .fd = w->a, .events = POLLOUT };
	CHECK_INT_EQ(prog_poll(p, 1, 1000), 1);
	CHECK(p[0].revents & POLLNVAL);
	fdtab_drop(w->a);
	w->a = -1;
	wire_free(w);
}

/* More entries than ready.c keeps on its stack. */
static void
test_poll_many(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct pollfd p[100];
	int u[2], i, bad = 0;

	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, u), 0);
	for (i = 0; i < 100; i++)
		p[i] = (struct pollfd){ .fd = u[0], .events = POLLIN };
	p[70] = (struct pollfd){ .fd = w->a, .events = POLLIN };
	wire_b_to_a(w, "many", 4, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	CHECK_INT_EQ(prog_poll(p, 100, 1000), 1);
	for (i = 0; i < 100; i++)
		bad += p[i].revents != (i == 70 ? POLLIN : 0) ||
		    p[i].fd != (i == 70 ? w->a : u[0]);
	CHECK_INT_EQ(bad, 0);
	close(u[0]);
	close(u[1]);
	wire_free(w);
}

static void
test_select(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	fd_set r, wr, e;
	long left = 12345;
	uint64_t t0;
	int u[2], n, dead;
	char buf[16];

	CHECK_INT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, u), 0);
	n = (w->a > u[1] ? w->a : u[1]) + 1;

	/* no sealed fd in the sets: the caller goes to libc */
	FD_ZERO(&r);
	FD_SET(u[0], &r);
	CHECK_INT_EQ(ready_select(n, &r, NULL, NULL, 0, NULL, false, &left), -2);
	CHECK_INT_EQ(left, 12345);
	CHECK(FD_ISSET(u[0], &r));
	/* the sealed fd beyond N is not in the set */
	FD_SET(w->a, &r);
	CHECK_INT_EQ(ready_select(w->a, &r, NULL, NULL, 0, NULL, false, NULL), -2);

	/* nothing ready: 0, sets emptied, the whole time, left 0 */
	FD_ZERO(&r);
	FD_SET(w->a, &r);
	FD_SET(u[0], &r);
	t0 = now_ms();
	CHECK_INT_EQ(ready_select(n, &r, NULL, NULL, 70, NULL, false, &left), 0);
	CHECK(now_ms() - t0 >= 65);
	CHECK(!FD_ISSET(w->a, &r) && !FD_ISSET(u[0], &r));
	CHECK_INT_EQ(left, 0);

	/* read and write sets, sealed and not: bits and count */
	wire_b_to_a(w, "sel", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	FD_ZERO(&r);
	FD_ZERO(&wr);
	FD_ZERO(&e);
	FD_SET(w->a, &r);
	FD_SET(u[0], &r);
	FD_SET(w->a, &wr);
	FD_SET(u[1], &wr);
	FD_SET(w->a, &e);
	CHECK_INT_EQ(ready_select(n, &r, &wr, &e, 1000, NULL, false, &left), 3);
	CHECK(FD_ISSET(w->a, &r));
	CHECK(!FD_ISSET(u[0], &r));
	CHECK(FD_ISSET(w->a, &wr));
	CHECK(FD_ISSET(u[1], &wr));
	CHECK(!FD_ISSET(w->a, &e));
	CHECK(left > 0 && left <= 1000);
	/* a timeout < 0 waits for ever: left stays -1 */
	FD_ZERO(&r);
	FD_SET(w->a, &r);
	CHECK_INT_EQ(ready_select(n, &r, NULL, NULL, -1, NULL, false, &left), 1);
	CHECK_INT_EQ(left, -1);
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 3);

	/* N past FD_SETSIZE: only the set's own bits are looked at (the
	 * memory after the set is all ones: read as bits, those would be
	 * thousands of closed fds and EBADF) */
	wire_b_to_a(w, "big", 3, SIZE_MAX, NULL, NULL);
	wire_settle(w->sa, w->a);
	{
		struct {
			fd_set set;
			unsigned char guard[4096 / 8];
		} big;

		memset(big.guard, 0xff, sizeof(big.guard));
		FD_ZERO(&big.set);
		FD_SET(w->a, &big.set);
		CHECK_INT_EQ(ready_select(FD_SETSIZE + 4096, &big.set, NULL,
		    NULL, 1000, NULL, false, NULL), 1);
		CHECK(FD_ISSET(w->a, &big.set));
		CHECK_INT_EQ(big.guard[0], 0xff);       /* not written either */
		CHECK_INT_EQ(big.guard[sizeof(big.guard) - 1], 0xff);
	}
	CHECK_INT_EQ(read_all(w, buf, sizeof(buf)), 3);
	/* FD_SETSIZE itself and a full set */
	FD_ZERO(&r);
	FD_SET(w->a, &r);
	FD_SET(FD_SETSIZE - 1, &r);     /* not open: EBADF */
	CHECK_INT_EQ(ready_select(FD_SETSIZE, &r, NULL, NULL, 0, NULL, false,
	    NULL), -1);
	CHECK_INT_EQ(errno, EBADF);

	/* a closed number beside a sealed fd: EBADF, as select says */
	dead = dup(u[0]);
	close(dead);
	FD_ZERO(&r);
	FD_SET(w->a, &r);
	FD_SET(dead, &r);
	errno = 0;
	CHECK_INT_EQ(ready_select(n > dead ? n : dead + 1, &r, NULL, NULL, 100,
	    NULL, false, NULL), -1);
	CHECK_INT_EQ(errno, EBADF);

	/* pselect's mask */
	{
		sigset_t m;

		sigemptyset(&m);
		FD_ZERO(&wr);
		FD_SET(w->a, &wr);
		CHECK_INT_EQ(ready_select(n, NULL, &wr, NULL, 1000, &m, true,
		    NULL), 1);
		CHECK(FD_ISSET(w->a, &wr));
	}
	close(u[0]);
	close(u[1]);
	wire_free(w);
}

int
main(void)
{
	int nfds0 = wire_nfds();

	if (wire_test_start() < 0)
		return 1;

	test_poll();
	test_poll_handshake();
	test_poll_nval_sealed();
	test_poll_many();
	test_select();
	CHECK_INT_EQ(session_handshakes(), 0);
	CHECK_INT_EQ(wire_nfds(), nfds0);       /* every fd cleaned up */
	CHECK_DONE();
}
