/*
 * record: transport records of wire protocol v1 (DESIGN.md, items 4, 7, 8).
 *
 *     +--------+----------------------------------------+
 *     | L (BE) | Noise transport message: ct || tag (L) |
 *     +--------+----------------------------------------+
 *
 * The AD is empty: the length is authenticated implicitly, since a changed L
 * moves the tag.  Replay and reordering fail because each side's nonce is
 * implicit and advances only on success.  After the encryption or
 * decryption that brings a CipherState's n to a multiple of
 * RECORD_REKEY_INTERVAL, the CipherState is rekeyed (n keeps counting).
 */
#include <errno.h>

#include "noise.h"
#include "record.h"

static void
rekey_if_due(struct noise_cipher *c)
{
	if (c->n % RECORD_REKEY_INTERVAL == 0)
		noise_cipher_rekey(c);
}

/*
 * record_seal(c, pt, len, out): encrypt LEN (<= RECORD_MAXPT) bytes and
 * write header + ciphertext to OUT (RECORD_WIRELEN(len) bytes); PT may equal
 * OUT + RECORD_HDRLEN.  Returns RECORD_WIRELEN(len), or 0 if LEN is too large
 * (OUT untouched) or C cannot encrypt (no key, nonce exhausted: OUT holds no
 * plaintext).
 */
size_t
record_seal(struct noise_cipher *c, const uint8_t *pt, size_t len,
    uint8_t *out)
{
	size_t ctlen = len + RECORD_TAGLEN;

	if (len > RECORD_MAXPT)
		return 0;
	out[0] = (uint8_t)(ctlen >> 8);
	out[1] = (uint8_t)ctlen;
	if (noise_cipher_encrypt(c, NULL, 0, pt, len, out + RECORD_HDRLEN) != 0)
		return 0;
	rekey_if_due(c);
	return RECORD_WIRELEN(len);
}

/*
 * record_peek(buf, avail, &wirelen): 1 and the record's wire length if a
 * whole record is at BUF, 0 if more bytes are needed, -EBADMSG if the
 * length field is < 16.
 */
int
record_peek(const uint8_t *buf, size_t avail, size_t *wirelen)
{
	size_t l;

	if (avail < RECORD_HDRLEN)
		return 0;
	l = (size_t)buf[0] << 8 | buf[1];
	if (l < RECORD_TAGLEN)
		return -EBADMSG;
	if (avail < RECORD_HDRLEN + l)
		return 0;
	*wirelen = RECORD_HDRLEN + l;
	return 1;
}

/*
 * record_open_into(c, rec, wirelen, out): authenticate and decrypt the
 * record at REC into OUT (room for wirelen - 18 bytes; OUT may be REC + 2).
 * Returns the plaintext length (0: end of stream) or -EBADMSG, with C
 * unchanged and no plaintext of the record in OUT.
 */
ssize_t
record_open_into(struct noise_cipher *c, const uint8_t *rec, size_t wirelen,
    uint8_t *out)
{
	size_t l;

	if (wirelen < RECORD_WIRELEN(0) || wirelen > RECORD_MAXWIRE)
		return -EBADMSG;
	l = (size_t)rec[0] << 8 | rec[1];
	if (l != wirelen - RECORD_HDRLEN)
		return -EBADMSG;
	if (noise_cipher_decrypt(c, NULL, 0, rec + RECORD_HDRLEN, l, out) != 0)
		return -EBADMSG;
	rekey_if_due(c);
	return (ssize_t)(l - RECORD_TAGLEN);
}

/*
 * record_open(c, rec, wirelen, &pt, &ptlen): authenticate and decrypt the
 * record at REC in place; *pt = REC + 2, *ptlen its length (0: end of
 * stream).  0 or -EBADMSG (then *pt = NULL, *ptlen = 0 and C unchanged).
 */
int
record_open(struct noise_cipher *c, uint8_t *rec, size_t wirelen,
    uint8_t **pt, size_t *ptlen)
{
	ssize_t n;

	*pt = NULL;
	*ptlen = 0;
	if ((n = record_open_into(c, rec, wirelen, rec + RECORD_HDRLEN)) < 0)
		return (int)n;
	*pt = rec + RECORD_HDRLEN;
	*ptlen = (size_t)n;
	return 0;
}
