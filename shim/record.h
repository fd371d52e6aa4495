/*
 * record: the transport record layer of wire protocol v1 (DESIGN.md).  Pure:
 * buffers in, buffers out.
 *
 * A record on the wire is a 2-byte big-endian length L followed by L bytes
 * of Noise transport message (ciphertext + 16-byte tag), L <= 65535, so a
 * record carries 0..65519 plaintext bytes; 0 bytes is the end-of-stream mark.
 * Each direction's CipherState is rekeyed after every 65536 messages
 * (when its nonce reaches a multiple of 65536), by this module.
 */
#ifndef SOCKSEAL_RECORD_H
#define SOCKSEAL_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "noise.h"

#define RECORD_HDRLEN   2
#define RECORD_TAGLEN   NOISE_TAGLEN
#define RECORD_MAXPT    65519
#define RECORD_MAXCT    65535
#define RECORD_MAXWIRE  (RECORD_HDRLEN + RECORD_MAXCT)
#define RECORD_REKEY_INTERVAL 65536

/* Wire size of a record carrying LEN plaintext bytes. */
#define RECORD_WIRELEN(len) ((len) + RECORD_HDRLEN + RECORD_TAGLEN)

/*
 * record_seal(c, pt, len, out): encrypt LEN (<= RECORD_MAXPT) bytes and
 * write header + ciphertext to OUT (RECORD_WIRELEN(len) bytes).  PT may
 * equal OUT + RECORD_HDRLEN (in place).  Rekeys C when due.  Returns the
 * number of bytes written, RECORD_WIRELEN(len); or 0 if LEN is too large
 * (OUT untouched) or C cannot encrypt (no key, nonce exhausted; OUT then
 * holds no plaintext): treat 0 as a dead session.
 */
size_t record_seal(struct noise_cipher *c, const uint8_t *pt, size_t len,
    uint8_t *out);

/*
 * record_peek(buf, avail, &wirelen): is a whole record at BUF?  Returns 1 and
 * its total wire length, 0 if more bytes are needed, -EBADMSG if the length
 * field is impossible (< 16).
 */
int record_peek(const uint8_t *buf, size_t avail, size_t *wirelen);

/*
 * record_open(c, rec, wirelen, &pt, &ptlen): authenticate and decrypt the
 * whole record at REC (header included) in place; *pt points at the
 * plaintext inside REC, *ptlen is its length (0 = end-of-stream mark).
 * Rekeys C when due.  Returns 0 or -EBADMSG (tampered, replayed, reordered,
 * bad length; then *pt = NULL, *ptlen = 0 and C is unchanged); after
 * -EBADMSG the session must be treated as dead.
 */
int record_open(struct noise_cipher *c, uint8_t *rec, size_t wirelen,
    uint8_t **pt, size_t *ptlen);

/*
 * record_open_into(c, rec, wirelen, out): the same, decrypting into OUT
 * (room for wirelen - RECORD_WIRELEN(0) bytes; OUT may be REC + 2).
 * Returns the plaintext length (0: end of stream) or -EBADMSG, with C
 * unchanged and none of the record's plaintext in OUT.
 */
ssize_t record_open_into(struct noise_cipher *c, const uint8_t *rec,
    size_t wirelen, uint8_t *out);

#endif
