/*
 * fuzz_session: one sealed session against a peer made of fuzz input (see
 * fuzz_session.h for the input format, fuzz_session_int.h for the files).
 *
 *   session (shim/session.c) on SFD  <-- AF_UNIX socketpair -->  PFD: peer
 *
 * One input: fz_start() decodes the configuration byte into the session's
 * rule (role, cipher=, mode=, keys or identities) and opens the pair; then
 * either raw mode, the rest of the input fed as the peer's byte stream in
 * chunks while the program reads and polls (fz_raw), or op mode, a real
 * handshake (fuzz_session_hs.c) and one operation per input byte
 * (fuzz_session_ops.c); fz_finish() ends the peer's TCP stream and reads
 * until the session ends.  The session's handshake advances from
 * session_handshake(.., false), session_recv() and the readiness calls, as
 * in a non-blocking program.
 *
 * The oracle: every byte the session delivers is the next byte of what the
 * peer sealed (authenticated data only, in order, nothing after the mark;
 * bytes sent as junk that happen to be the peer's next records under its
 * keys count as sealed, see fz_feed_unsealed);
 * a read returns 0 only after the mark or SHUT_RD; without junk, all of it
 * arrives and the stream ends as the peer ended it (checked here, at the
 * end); everything the session sends opens with the peer's keys and is the
 * program's stream (fz_peer_pump).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "session.h"
#include "fuzz.h"
#include "fuzz_session.h"
#include "fuzz_session_int.h"

static struct fz fz_state;

static bool
fz_start(struct fz *f, const uint8_t *data, size_t size, bool initiator)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4242), .sin_addr.s_addr = htonl(0x7f000001) };
	unsigned int cfg = size > 0 ? data[0] : 0, c = (cfg >> 2) & 3;
	int sv[2];

	memset(f, 0, sizeof(*f));
	fz_rng_reset();

	f->initiator = initiator;
	f->opmode = cfg & 1;
	f->suite = fz_ik ? (cfg & 2 ? NOISE_IK_AESGCM : NOISE_IK_CHACHAPOLY) :
	    cfg & 2 ? NOISE_AESGCM : NOISE_CHACHAPOLY;
	f->in = data + (size > 0);
	f->left = size - (size > 0);

	memcpy(f->keys[0].key, cfg & 16 && !initiator ? fz_wrong : fz_key,
	    NOISE_KEYLEN);
	memcpy(f->keys[1].key, fz_key, NOISE_KEYLEN);
	f->keys[0].name = f->keys[0].path = f->keys[0].resolved = "k0";
	f->keys[1].name = f->keys[1].path = f->keys[1].resolved = "k1";
	f->rule.dir = initiator ? POLICY_CONNECT : POLICY_ACCEPT;
	f->rule.cipher = c == 3 ? POLICY_CIPHER_DEFAULT : (enum policy_cipher)c;
	f->rule.mode = c == 3 && !initiator ? POLICY_PERMISSIVE : POLICY_STRICT;
	f->rule.timeout_ms = 60000;
	f->rule.file = "fuzz.policy";
	f->rule.line = 1;
	f->rule.port_hi = 65535;
	f->rule.keys[0] = &f->keys[0];
	f->rule.keys[1] = &f->keys[1];
	f->rule.nkeys = cfg & 16 && !initiator ? 2 : 1;
	if (fz_ik) {
		/* Identities without a PSK; bit 4 (responder): a rotation,
		 * another identity tried first. */
		bool rot = cfg & 16 && !initiator;

		memcpy(f->ids[0].sk, rot ? fz_s_other : fz_s_sess, NOISE_DHLEN);
		memcpy(f->ids[0].pk, rot ? fz_pk_other : fz_pk_sess, NOISE_DHLEN);
		memcpy(f->ids[1].sk, fz_s_sess, NOISE_DHLEN);
		memcpy(f->ids[1].pk, fz_pk_sess, NOISE_DHLEN);
		f->ids[0].name = f->ids[1].name = "me";
		f->rule.ids[0] = &f->ids[0];
		f->rule.ids[1] = &f->ids[1];
		f->rule.nids = rot ? 2 : 1;
		memcpy(f->peer.pk, fz_pk_peer, NOISE_DHLEN);
		f->peer.name = "peer";
		f->peers[0] = &f->peer;
		f->rule.nkeys = 0;
		if (initiator)
			f->rule.peer = &f->peer;
		else {
			f->rule.peers = f->peers;
			f->rule.npeers = 1;
		}
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) < 0)
		return false;
	f->sfd = sv[0];
	f->pfd = sv[1];
	f->s = session_new(f->sfd, &f->rule, initiator, (struct sockaddr *)&sin);
	if (f->s == NULL) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	return true;
}

/* Raw mode: the input is the peer's byte stream, fed in chunks. */
static void
fz_raw(struct fz *f, unsigned int cfg)
{
	static const size_t chunks[8] = { 1, 2, 7, 16, 58, 256, 4096, 65536 };
	size_t chunk = chunks[cfg >> 5];
	const uint8_t *p;
	size_t n;
	int i = 0;

	if (f->initiator)
		(void)session_handshake(f->s, f->sfd, false);
	while ((n = fz_take(f, chunk, &p)) > 0) {
		fz_feed(f, p, n);
		fz_step(f, i++ % 3 == 2 ? MSG_PEEK : 0);
		if (i % 4 == 0)
			fz_op_poll(f);
	}
}

/* The peer ends the TCP stream; the session must end it as the peer did. */
static void
fz_finish(struct fz *f)
{
	ssize_t n = -EAGAIN;
	int i;

	fz_peer_pump(f);
	if (!f->tcp_end)
		shutdown(f->pfd, SHUT_WR);
	f->tcp_end = true;
	for (i = 0; i < 64; i++) {
		if (session_state(f->s) < SESSION_OPEN)
			(void)session_handshake(f->s, f->sfd, false);
		n = fz_recv(f, sizeof(fz_rbuf), MSG_DONTWAIT, 1);
		if (n <= 0 && n != -EAGAIN && n != -EINTR)
			break;
	}
	if (f->opmode && f->peer_open && !f->junk && !f->lost && !f->rd_shut &&
	    (f->sent_len > 0 || f->eos)) {
		/* Everything sealed arrived, and the end is the peer's. */
		FZ_ASSERT(f->got == (f->eos ? f->eos_at : f->sent_len));
		FZ_ASSERT(n == (f->eos ? 0 : -ECONNRESET));
	}
	fz_peer_pump(f);
	session_put(f->s);
	close(f->sfd);
	close(f->pfd);
}

void
fuzz_session_run(const uint8_t *data, size_t size, bool initiator)
{
	struct fz *f = &fz_state;
	unsigned int cfg = size > 0 ? data[0] : 0;

	if (!fz_start(f, data, size, initiator))
		return;
	if (!f->opmode) {
		fz_raw(f, cfg);
	} else {
		if (initiator)
			fz_hs_as_responder(f, cfg & 16 ? (cfg >> 5) * 9000 + 1 : 0);
		else
			fz_hs_as_initiator(f);
		while (f->left > 0)
			fz_run_op(f, fz_take8(f));
	}
	fz_finish(f);
}
