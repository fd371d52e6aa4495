/*
 * fuzz_session_seal: the peer's records, and the oracle's account of what
 * the peer sealed (fz_sent: the plaintext the session may deliver, in
 * order; f->eos and f->eos_at: the end-of-stream mark).
 *
 * fz_seal_feed() seals with the peer's sending state (f->ptx) and counts
 * the plaintext as sealed; a record that is tampered with, or that would
 * follow unfinished junk, is sealed with a copy of the state and goes out
 * through fz_feed_unsealed() instead.  fz_last keeps the last sealed record
 * for a replay.
 */
#include <string.h>

#include <sodium.h>

#include "fuzz_session_int.h"

uint8_t fz_sent[FZ_MAXSENT];
uint8_t fz_last[RECORD_MAXWIRE];
static uint8_t fz_wire[2 * RECORD_MAXWIRE];     /* see fz_feed_unsealed */

/* The peer's plaintext PT reached the session authenticated: the oracle's. */
static void
sent_add(struct fz *f, const uint8_t *pt, size_t len)
{
	if (f->eos)
		return;
	memcpy(fz_sent + f->sent_len, pt, len);
	f->sent_len += len;
	if (len == 0) {
		f->eos = true;
		f->eos_at = f->sent_len;
	}
}

/*
 * Bytes the peer puts on the wire that it did not seal as its next record
 * here (junk, a replay, a tampered record, or a record behind an unfinished
 * one).  They are unauthenticated only as far as the session can tell:
 * the keys are the same from run to run (fixed ephemerals, a deterministic
 * RNG), so the fuzzer can splice in a record sealed in another run (the
 * raw-mode seeds are whole transcripts), and when it is the peer's next
 * record under the peer's keys the session rightly delivers it.  So the
 * wire since the last record boundary is kept, and every whole record in
 * it that opens with the peer's sending state counts as sealed, as
 * record_open on the session's side would judge it; the first that does
 * not open ends the tracking (the session fails there).
 */
void
fz_feed_unsealed(struct fz *f, const uint8_t *buf, size_t len)
{
	static uint8_t rec[RECORD_MAXWIRE];
	struct noise_cipher c;
	size_t off = 0, wl;
	uint8_t *pt;
	size_t ptlen;
	int r;

	/* What opens is at most LEN bytes of plaintext: it must fit. */
	if (f->sent_len + len > FZ_MAXSENT)
		return;
	f->junk = true;
	if (f->peer_open && !f->wire_bad) {
		memcpy(fz_wire + f->wire_len, buf, len);
		f->wire_len += len;
		while ((r = record_peek(fz_wire + off, f->wire_len - off,
		    &wl)) != 0) {
			if (r < 0)
				break;
			c = f->ptx;
			memcpy(rec, fz_wire + off, wl);
			if (record_open(&c, rec, wl, &pt, &ptlen) < 0)
				break;
			f->ptx = c;
			sent_add(f, pt, ptlen);
			off += wl;
		}
		if (r != 0) {
			f->wire_bad = true;
			f->wire_len = 0;
		} else {
			memmove(fz_wire, fz_wire + off, f->wire_len - off);
			f->wire_len -= off;
		}
		sodium_memzero(&c, sizeof(c));
	}
	fz_feed(f, buf, len);
}

/*
 * Seal LEN bytes at PT as the peer's next record and send it; with TAMPER
 * >= 0, one bit of it flipped.  A record that does not start at a record
 * boundary of the wire (unfinished junk before it) or is tampered with is
 * sealed with a copy of the peer's state and goes as unsealed bytes.
 */
void
fz_seal_feed(struct fz *f, const uint8_t *pt, size_t len, int tamper)
{
	static uint8_t w[RECORD_MAXWIRE];
	struct noise_cipher c;
	size_t wl;

	if (!f->peer_open || f->sent_len + len > FZ_MAXSENT)
		return;
	if (tamper >= 0 || f->wire_len > 0 || f->wire_bad) {
		c = f->ptx;
		wl = record_seal(&c, pt, len, w);
		sodium_memzero(&c, sizeof(c));
		if (wl == 0)
			return;
		if (tamper >= 0)
			w[(size_t)tamper % wl] ^= (uint8_t)(1u << (tamper & 7));
		fz_feed_unsealed(f, w, wl);
		return;
	}
	if ((wl = record_seal(&f->ptx, pt, len, w)) == 0)
		return;
	sent_add(f, pt, len);
	memcpy(fz_last, w, wl);
	f->last_len = wl;
	fz_feed(f, w, wl);
}
