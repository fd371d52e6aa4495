/*
 * test_session_eph: which X25519s a handshake does before its message
 * leaves (on the critical path) and which while it waits (ahead, for the
 * next handshake), counted by wrapping libsodium's crypto_scalarmult and
 * crypto_scalarmult_base in this executable.  A call counts as ahead when
 * the message the current step sends is already readable at the other
 * end of the socketpair.
 *
 * Warm (the same peers again), the identity suites need none before
 * message 1 (the spare ephemeral and its es made ahead, ss cached), two
 * before message 2 (es, ee; se made ahead) and two after it (ee, se); the
 * PSK suites none, one (ee) and one (ee).  A server whose clients
 * alternate makes no DH ahead it would throw away.  A forked child never
 * uses the ephemeral its parent made ahead.  Every handshake ends with
 * matching keys, so a wrong DH made ahead would show as a failure too.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "noise.h"
#include "policy.h"
#include "session.h"
#include "session_int.h"        /* white-box: the split keys */
#include "check.h"

#define PREFACE_LEN 8

/* ---------------------------------------------------------- the counting */

static int watch_fd = -1;       /* where the current step's message lands */
static int on_path, ahead;

static void
count(void)
{
	int n = 0;

	if (watch_fd >= 0 && ioctl(watch_fd, FIONREAD, &n) == 0 && n > 0)
		ahead++;
	else
		on_path++;
}

int
crypto_scalarmult(unsigned char *q, const unsigned char *n,
    const unsigned char *p)
{
	static int (*real)(unsigned char *, const unsigned char *,
	    const unsigned char *);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "crypto_scalarmult");
	count();
	return real(q, n, p);
}

int
crypto_scalarmult_base(unsigned char *q, const unsigned char *n)
{
	static int (*real)(unsigned char *, const unsigned char *);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "crypto_scalarmult_base");
	count();
	return real(q, n);
}

/* ------------------------------------------------------------ the rules */

static struct policy_identity id_srv, id_cli[2];
static struct policy_peer pe_srv, pe_cli[2];
static const struct policy_peer *peers[2];
static struct policy_key psk;

static void
ident(struct policy_identity *id, struct policy_peer *pe, char *name)
{
	id->name = pe->name = name;
	id->file = pe->file = "test.policy";
	randombytes_buf(id->sk, sizeof(id->sk));
	if (crypto_scalarmult_base(id->pk, id->sk) != 0)
		abort();
	memcpy(pe->pk, id->pk, sizeof(pe->pk));
}

static void
rule_base(struct policy_rule *r, enum policy_dir dir)
{
	memset(r, 0, sizeof(*r));
	r->dir = dir;
	r->mode = POLICY_STRICT;
	r->timeout_ms = 5000;
	r->file = "test.policy";
	r->port_hi = 65535;
}

static void
rules_ik(struct policy_rule *rc, struct policy_rule *ra, int client)
{
	rule_base(rc, POLICY_CONNECT);
	rc->nids = 1;
	rc->ids[0] = &id_cli[client];
	rc->peer = &pe_srv;
	rule_base(ra, POLICY_ACCEPT);
	ra->nids = 1;
	ra->ids[0] = &id_srv;
	ra->npeers = 2;
	ra->peers = peers;
}

static void
rules_psk(struct policy_rule *rc, struct policy_rule *ra)
{
	rule_base(rc, POLICY_CONNECT);
	rc->keys[rc->nkeys++] = &psk;
	rule_base(ra, POLICY_ACCEPT);
	ra->keys[ra->nkeys++] = &psk;
}

/* ------------------------------------------------------ one handshake */

struct counts {
	int send1, accept, recv1, recv2;        /* on the path, per step */
	int ahead;                              /* made for the next one */
	uint8_t e1[NOISE_DHLEN];                /* message 1's ephemeral */
};

/*
 * One handshake between sessions on the two ends of a socketpair, the
 * initiator under RC and the responder under RA, driven step by step;
 * the counts of each step in *C.  Checks that both end open with
 * matching keys.
 */
static void
handshake(const struct policy_rule *rc, const struct policy_rule *ra,
    struct counts *c)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4242), .sin_addr.s_addr = htonl(0x7f000001) };
	struct session *si, *sr;
	uint8_t m1[PREFACE_LEN + 2 + NOISE_DHLEN];
	int p[2];

	memset(c, 0, sizeof(*c));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p) < 0)
		abort();
	on_path = ahead = 0;
	watch_fd = p[1];
	si = session_new(p[0], rc, true, (struct sockaddr *)&sin);
	CHECK(si != NULL);
	CHECK_INT_EQ(session_handshake(si, p[0], false), -EAGAIN);
	c->send1 = on_path;
	c->ahead += ahead;
	CHECK_INT_EQ(recv(p[1], m1, sizeof(m1), MSG_PEEK), sizeof(m1));
	memcpy(c->e1, m1 + PREFACE_LEN + 2, NOISE_DHLEN);

	on_path = ahead = 0;
	watch_fd = p[0];
	sr = session_new(p[1], ra, false, (struct sockaddr *)&sin);
	CHECK(sr != NULL);
	c->accept = on_path;
	on_path = 0;
	CHECK_INT_EQ(session_handshake(sr, p[1], false), 0);
	c->recv1 = on_path;
	c->ahead += ahead;

	on_path = ahead = 0;
	watch_fd = p[1];
	CHECK_INT_EQ(session_handshake(si, p[0], false), 0);
	c->recv2 = on_path;
	c->ahead += ahead;
	watch_fd = -1;

	CHECK_INT_EQ(session_state(si), SESSION_OPEN);
	CHECK_INT_EQ(session_state(sr), SESSION_OPEN);
	CHECK_MEM_EQ(si->tx.k, sr->rx.k, NOISE_KEYLEN);
	CHECK_MEM_EQ(si->rx.k, sr->tx.k, NOISE_KEYLEN);
	session_put(si);
	session_put(sr);
	close(p[0]);
	close(p[1]);
}

static void
expect(const struct counts *c, int send1, int recv1, int recv2, int made)
{
	CHECK_INT_EQ(c->send1, send1);
	CHECK_INT_EQ(c->accept, 0);
	CHECK_INT_EQ(c->recv1, recv1);
	CHECK_INT_EQ(c->recv2, recv2);
	CHECK_INT_EQ(c->ahead, made);
}

/* ---------------------------------------------------------------- tests */

static void
test_identity_warm(void)
{
	struct policy_rule rc, ra;
	struct counts c;
	int i;

	ss_eph_drop();
	rules_ik(&rc, &ra, 0);
	for (i = 0; i < 3; i++)
		handshake(&rc, &ra, &c);
	/* Warm: es and se made ahead, ss cached: 0, 2 (es, ee), 2 (ee, se);
	 * ahead: an ephemeral and its DH on each side. */
	for (i = 0; i < 3; i++) {
		handshake(&rc, &ra, &c);
		expect(&c, 0, 2, 2, 4);
	}
}

static void
test_identity_alternating(void)
{
	struct policy_rule rc[2], ra;
	struct counts c;
	int i;

	ss_eph_drop();
	rules_ik(&rc[0], &ra, 0);
	rules_ik(&rc[1], &ra, 1);
	for (i = 0; i < 2; i++)
		handshake(&rc[i % 2], &ra, &c);
	/* The server's next client is never its last: it computes se on
	 * the path (es, ee, se) and makes only an ephemeral ahead; the
	 * clients' server is the same, so their es is still made ahead. */
	for (i = 0; i < 4; i++) {
		handshake(&rc[i % 2], &ra, &c);
		expect(&c, 0, 3, 2, 3);
	}
}

static void
test_psk_warm(void)
{
	struct policy_rule rc, ra;
	struct counts c;
	int i;

	ss_eph_drop();
	rules_psk(&rc, &ra);
	handshake(&rc, &ra, &c);
	for (i = 0; i < 3; i++) {
		handshake(&rc, &ra, &c);
		expect(&c, 0, 1, 1, 2);
	}
}

/* A cold start makes everything on the path (and the roles do not take
 * each other's spare). */
static void
test_cold(void)
{
	struct policy_rule rc, ra;
	struct counts c;

	ss_eph_drop();
	rules_psk(&rc, &ra);
	handshake(&rc, &ra, &c);
	/* e (initiator); e at accept, ee; ee */
	CHECK_INT_EQ(c.send1, 1);
	CHECK_INT_EQ(c.accept, 1);
	CHECK_INT_EQ(c.recv1, 1);
	CHECK_INT_EQ(c.recv2, 1);
}

/* A forked child drops the parent's spares: its message 1 carries an
 * ephemeral of its own, and the parent's next one is not the child's. */
static void
test_fork(void)
{
	struct policy_rule rc, ra;
	struct counts c, cc;
	int p[2], st;
	pid_t pid;

	ss_eph_drop();
	rules_ik(&rc, &ra, 0);
	handshake(&rc, &ra, &c);
	handshake(&rc, &ra, &c);
	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		ss_hs_forked();
		handshake(&rc, &ra, &cc);
		/* No spare: e, es on the path. */
		if (write(p[1], &cc, sizeof(cc)) != sizeof(cc) ||
		    check_fail != 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	CHECK(pid > 0);
	CHECK_INT_EQ(read(p[0], &cc, sizeof(cc)), sizeof(cc));
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	CHECK_INT_EQ(cc.send1, 2);
	CHECK_INT_EQ(cc.accept, 1);
	handshake(&rc, &ra, &c);
	CHECK_INT_EQ(c.send1, 0);
	CHECK(memcmp(c.e1, cc.e1, NOISE_DHLEN) != 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	session_init();
	randombytes_buf(psk.key, sizeof(psk.key));
	psk.name = psk.path = psk.resolved = "k0";
	ident(&id_srv, &pe_srv, "server");
	ident(&id_cli[0], &pe_cli[0], "client0");
	ident(&id_cli[1], &pe_cli[1], "client1");
	peers[0] = &pe_cli[0];
	peers[1] = &pe_cli[1];
	test_cold();
	test_psk_warm();
	test_identity_warm();
	test_identity_alternating();
	test_fork();
	CHECK_DONE();
}
