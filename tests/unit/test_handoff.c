/*
 * test_handoff: the state object (shim/session_state.c) and its hand-off
 * to another holder (docs/handoff.md).
 *
 * A sealed loopback wire (wire.h, stand-ins) whose sessions are taken over
 * through their state objects, as an exec'd image or a receiver of
 * SCM_RIGHTS does (session_attach): a second mapping of the same object.
 * Covered:
 *   - counters continue: records written through the second mapping, then
 *     the first, then the second again, all open at the peer in order;
 *   - unread plaintext travels: what the shim had decrypted but the
 *     program had not read is read, exactly once, through the new mapping;
 *   - two processes, each with its own mapping, writing at once: every
 *     record opens at the peer (a nonce used twice would fail there), the
 *     counter is the sum, and nothing is lost or doubled;
 *   - what is refused: another connection's state object, one of the wrong
 *     size, one without the magic, a plain file; a state object cannot be
 *     resized (sealed);
 *   - an exec'd image whose inherited state cannot be mapped fails closed:
 *     the stand-in stays, its calls fail, the socket is let go (a child
 *     process runs the start-up adoption on a forged state object).
 *
 * Run from the repo root: build/tests/test_handoff.  TEST_VERBOSE=1 shows
 * the shim's log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "carry.h"
#include "conn.h"
#include "fdtab.h"
#include "log.h"
#include "policy.h"
#include "session.h"
#include "session_int.h"   /* white-box: the struct */
#include "standin.h"
#include "check.h"
#include "wire.h"

/*
 * init.c's constructor loads the policy (exiting without one) before
 * main(): this one runs first and gives it a policy that seals nothing
 * here (the wires' rules are their own).
 */
static char tmpdir[] = "/tmp/test_handoff.XXXXXX";
static char policy_path[sizeof(tmpdir) + 16];

__attribute__((constructor(101))) static void
policy_setup(void)
{
	FILE *f;

	if (mkdtemp(tmpdir) == NULL)
		abort();
	snprintf(policy_path, sizeof(policy_path), "%s/policy", tmpdir);
	if ((f = fopen(policy_path, "w")) == NULL)
		abort();
	fprintf(f, "connect 127.0.0.9:9 plain\n");
	fclose(f);
	setenv("SOCKSEAL_POLICY", policy_path, 1);
}

__attribute__((destructor)) static void
policy_cleanup(void)
{
	unlink(policy_path);
	rmdir(tmpdir);
}

/* A second mapping of S's state object, for copies of its kfd and sfd, as
 * another image would have them. */
static struct session *
take_over(struct session *s, const struct policy_rule *rule, int *kfd)
{
	int k = dup(session_kfd(s, -1)), f = dup(session_sfd(s));
	struct session *t;

	CHECK(k >= 0 && f >= 0);
	t = session_attach(f, k, -1, 0, rule);
	if (t == NULL) {
		close(k);
		close(f);
	}
	*kfd = k;
	return t;
}

/* Read exactly LEN bytes from S (fd FD) into BUF, pumping the wire. */
static bool
read_all(struct wire *w, struct session *s, int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int i;

	for (i = 0; i < 2000 && got < len; i++) {
		wire_pump(w);
		n = wire_recv(s, fd, buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || (n < 0 && n != -EAGAIN))
			return false;
		else
			(void)wire_readable(w->y, 2);
	}
	return got == len;
}

static void
test_counters_continue(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	struct session *t;
	uint8_t got[64];
	uint64_t n0;
	int k;

	CHECK(session_sfd(w->sa) >= 0 && session_sfd(w->sb) >= 0);
	CHECK_INT_EQ(wire_send(w->sa, w->a, "one", 3), 3);
	CHECK(read_all(w, w->sb, w->b, got, 3) && memcmp(got, "one", 3) == 0);
	n0 = w->sa->tx.n;
	t = take_over(w->sa, &w->ri, &k);
	CHECK(t != NULL);
	if (t == NULL) {
		wire_free(w);
		return;
	}
	/* Another mapping of the same object: the same session. */
	CHECK(t != w->sa);
	CHECK(t->tx.n == n0 && session_state(t) == SESSION_OPEN);
	CHECK(memcmp(t->tx.k, w->sa->tx.k, sizeof(t->tx.k)) == 0);
	CHECK_INT_EQ(wire_send(t, k, "two", 3), 3);
	CHECK(w->sa->tx.n == n0 + 1);
	CHECK(read_all(w, w->sb, w->b, got, 3) && memcmp(got, "two", 3) == 0);
	CHECK_INT_EQ(wire_send(w->sa, w->a, "three", 5), 5);
	CHECK(read_all(w, w->sb, w->b, got, 5) && memcmp(got, "three", 5) == 0);
	CHECK_INT_EQ(wire_send(t, k, "four", 4), 4);
	CHECK(read_all(w, w->sb, w->b, got, 4) && memcmp(got, "four", 4) == 0);
	CHECK(t->tx.n == n0 + 3);
	CHECK(session_state(w->sb) == SESSION_OPEN);
	/* This view goes; the session stays (the first one holds it). */
	session_put(t);
	CHECK(session_state(w->sa) == SESSION_OPEN);
	CHECK_INT_EQ(wire_send(w->sa, w->a, "five", 4), 4);
	CHECK(read_all(w, w->sb, w->b, got, 4) && memcmp(got, "five", 4) == 0);
	wire_free(w);
}

static void
test_unread_plaintext_travels(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	uint8_t msg[3000], got[3000];
	struct session *t;
	size_t i;
	int k;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	CHECK_INT_EQ(wire_send(w->sa, w->a, msg, sizeof(msg)), sizeof(msg));
	/* B reads 100 bytes: the rest of the record is decrypted, unread. */
	CHECK(read_all(w, w->sb, w->b, got, 100));
	CHECK(memcmp(got, msg, 100) == 0);
	CHECK(w->sb->ptlen == sizeof(msg) - 100);
	t = take_over(w->sb, &w->rr, &k);
	CHECK(t != NULL);
	if (t == NULL) {
		wire_free(w);
		return;
	}
	CHECK(t->ptlen == sizeof(msg) - 100);
	CHECK(read_all(w, t, k, got, sizeof(msg) - 100));
	CHECK(memcmp(got, msg + 100, sizeof(msg) - 100) == 0);
	/* Exactly once: nothing left for the first mapping either. */
	CHECK(w->sb->ptlen == 0);
	CHECK_INT_EQ(wire_recv(w->sb, w->b, got, sizeof(got)), -EAGAIN);
	session_put(t);
	wire_free(w);
}

#define PER_WRITER 300

/* Write PER_WRITER records "<tag><n>;" through S on FD. */
static int
write_tagged(struct session *s, int fd, char tag)
{
	char rec[16];
	int i, n, tries;
	ssize_t r;

	for (i = 0; i < PER_WRITER; i++) {
		n = snprintf(rec, sizeof(rec), "%c%03d;", tag, i);
		for (tries = 0; tries < 1000; tries++) {
			r = wire_send(s, fd, rec, (size_t)n);
			if (r == n)
				break;
			if (r != -EAGAIN)
				return -1;
			usleep(1000);
		}
		if (tries == 1000)
			return -1;
		if (i % 7 == 0)
			sched_yield();
	}
	return 0;
}

static void
test_two_processes_no_nonce_reuse(void)
{
	struct wire *w = wire_new(WIRE_STANDIN);
	static uint8_t got[2 * PER_WRITER * 5 + 1];
	uint64_t n0 = w->sa->tx.n;
	int status = -1, i, k, pfd[2];
	char tok[8], go;
	pid_t pid;

	CHECK_INT_EQ(pipe(pfd), 0);
	if ((pid = fork()) == 0) {
		struct session *t = take_over(w->sa, &w->ri, &k);

		/* Our own mapping, at our own address. */
		if (t == NULL || t == w->sa || read(pfd[0], &go, 1) != 1)
			_exit(2);
		_exit(write_tagged(t, k, 'C') == 0 ? 0 : 3);
	}
	CHECK(pid > 0);
	CHECK_INT_EQ(write(pfd[1], "g", 1), 1);
	CHECK_INT_EQ(write_tagged(w->sa, w->a, 'P'), 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Every record opens at the peer, in the order they were sealed. */
	CHECK(read_all(w, w->sb, w->b, got, 2 * PER_WRITER * 5));
	CHECK(session_state(w->sb) == SESSION_OPEN);
	CHECK(w->sa->tx.n == n0 + 2 * PER_WRITER);
	CHECK(w->sb->rx.n == w->sa->tx.n);
	got[sizeof(got) - 1] = '\0';
	for (i = 0; i < PER_WRITER; i++) {
		snprintf(tok, sizeof(tok), "P%03d;", i);
		CHECK(strstr((char *)got, tok) != NULL);
		snprintf(tok, sizeof(tok), "C%03d;", i);
		CHECK(strstr((char *)got, tok) != NULL);
	}
	close(pfd[0]);
	close(pfd[1]);
	wire_free(w);
}

/* A memfd of LEN bytes; with MAGIC, the state object's magic in it. */
static int
forged(size_t len, bool magic, dev_t dev, ino_t ino)
{
	int fd = memfd_create("forged", MFD_CLOEXEC);
	uint64_t m = SESSION_MAGIC;

	CHECK(fd >= 0 && ftruncate(fd, (off_t)len) == 0);
	if (magic) {
		CHECK(pwrite(fd, &m, sizeof(m), offsetof(struct session,
		    magic)) == (ssize_t)sizeof(m));
		CHECK(pwrite(fd, &dev, sizeof(dev), offsetof(struct session,
		    dev)) == (ssize_t)sizeof(dev));
		CHECK(pwrite(fd, &ino, sizeof(ino), offsetof(struct session,
		    ino)) == (ssize_t)sizeof(ino));
	}
	return fd;
}

static void
test_refused(void)
{
	struct wire *w = wire_new(WIRE_STANDIN), *v = wire_new(WIRE_STANDIN);
	int k = session_kfd(w->sa, -1), f;
	struct stat st;
	dev_t dev;
	ino_t ino;

	CHECK_INT_EQ(fstat(k, &st), 0);
	/* Another connection's state. */
	CHECK(session_attach(session_sfd(v->sa), k, -1, 0, &w->ri) == NULL);
	/* The wrong size, no magic, a plain file. */
	f = forged(ss_maplen() - 4096, true, st.st_dev, st.st_ino);
	CHECK(session_attach(f, k, -1, 0, &w->ri) == NULL);
	CHECK_INT_EQ(session_state_identity(f, &dev, &ino), -1);
	close(f);
	f = forged(ss_maplen(), false, st.st_dev, st.st_ino);
	CHECK(session_attach(f, k, -1, 0, &w->ri) == NULL);
	CHECK_INT_EQ(session_state_identity(f, &dev, &ino), -1);
	close(f);
	f = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(session_attach(f, k, -1, 0, &w->ri) == NULL);
	close(f);
	/* The real one names its socket; it cannot be resized. */
	CHECK_INT_EQ(session_state_identity(session_sfd(w->sa), &dev, &ino), 0);
	CHECK(dev == st.st_dev && ino == st.st_ino);
	CHECK(ftruncate(session_sfd(w->sa), 4096) < 0 && errno == EPERM);
	CHECK(session_state(w->sa) == SESSION_OPEN);
	wire_free(v);
	wire_free(w);
}

static void
no_stream(int fd)
{
	(void)fd;
}

/*
 * An image after exec inherits a stand-in, its kfd and a state object it
 * cannot map (forged: the right size, magic and socket, nothing else).  The
 * start-up adoption must fail closed: no session on the stand-in (its
 * calls fail as the stand-in's), the socket let go, and no plaintext.  Run
 * in a child, whose descriptors are its own.
 */
static void
test_unmappable_state_fails_closed(void)
{
	int status = -1, c, s, kfd, sfd, f;
	struct stat st;
	pid_t pid;
	char b;

	if ((pid = fork()) == 0) {
		int fail = 0;

		if (wire_tcp_pair(&c, &s) < 0)
			_exit(10);
		kfd = standin_swap(c, AF_INET, STANDIN_INIT | STANDIN_USED);
		if (kfd < 0 || fstat(kfd, &st) < 0)
			_exit(11);
		/* As inherited: the shim's marks are the old image's. */
		standin_mark(kfd, false);
		f = forged(ss_maplen(), true, st.st_dev, st.st_ino);
		if ((sfd = fcntl(f, F_DUPFD_CLOEXEC, standin_base())) < 0)
			_exit(12);
		close(f);
		(void)conn_adopt_inherited(no_stream);
		/* No session; the stand-in's own answers. */
		fail |= fdtab_get(c) != NULL;
		fail |= (read(c, &b, 1) >= 0 || errno != ENOTCONN) << 1;
		fail |= (write(c, "x", 1) >= 0 || errno != EPIPE) << 2;
		/* The socket and the state object were let go. */
		fail |= (fcntl(kfd, F_GETFD) >= 0) << 3;
		fail |= (fcntl(sfd, F_GETFD) >= 0) << 4;
		fail |= standin_is_kfd(kfd) << 5;
		/* The peer sees the end, and no byte of ours. */
		fail |= (!wire_readable(s, 2000) || read(s, &b, 1) != 0) << 6;
		_exit(fail);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_INT_EQ(WEXITSTATUS(status), 0);
}

int
main(void)
{
	if (wire_test_start() < 0)
		return 1;
	test_unmappable_state_fails_closed();
	test_counters_continue();
	test_unread_plaintext_travels();
	test_two_processes_no_nonce_reuse();
	test_refused();
	CHECK_INT_EQ(session_handshakes(), 0);
	CHECK_DONE();
}
