/*
 * noise: Noise_NNpsk0_25519_{ChaChaPoly,AESGCM}_SHA256 and
 * Noise_IKpsk2_25519_{ChaChaPoly,AESGCM}_SHA256 (Noise revision 34), from
 * libsodium primitives only.  Pure: no I/O, no syscalls beyond what
 * libsodium does for random numbers.
 *
 * Initiator:  noise_hs_init[_ik](.., true, ..);  noise_hs_write1();  noise_hs_read2();
 * Responder:  noise_hs_init[_ik](.., false, ..); noise_hs_read1();   noise_hs_write2();
 * Both:       noise_hs_split() -> the sending and receiving CipherStates.
 *
 * Rekey policy (every 65536 messages) is the record layer's; this module
 * only provides noise_cipher_rekey().
 */
#ifndef SOCKSEAL_NOISE_H
#define SOCKSEAL_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define NOISE_KEYLEN   32
#define NOISE_HASHLEN  32
#define NOISE_DHLEN    32
#define NOISE_TAGLEN   16
#define NOISE_MSGLEN   65535   /* largest Noise message */

enum noise_suite {
	NOISE_CHACHAPOLY    = 1,        /* wire suite numbers (DESIGN.md) */
	NOISE_AESGCM        = 2,
	NOISE_IK_CHACHAPOLY = 3,        /* identities: IKpsk2 */
	NOISE_IK_AESGCM     = 4,
};

/* noise_suite_aead(suite): the AEAD of SUITE (NOISE_CHACHAPOLY or
 * NOISE_AESGCM); noise_suite_ik(suite): is it an identity suite? */
static inline int
noise_suite_aead(int suite)
{
	return suite == NOISE_AESGCM || suite == NOISE_IK_AESGCM ?
	    NOISE_AESGCM : NOISE_CHACHAPOLY;
}

static inline bool
noise_suite_ik(int suite)
{
	return suite == NOISE_IK_CHACHAPOLY || suite == NOISE_IK_AESGCM;
}

/*
 * For AES-GCM the expanded key schedule and GHASH powers are computed once
 * per key (gcm) instead of once per record: a 64-byte record then costs a
 * third of what crypto_aead_aes256gcm_encrypt() with a raw key costs.  The
 * state holds no pointers, so a noise_cipher may be copied and may live in
 * memory shared between processes.
 */
struct noise_cipher {
	crypto_aead_aes256gcm_state gcm;  /* AES-GCM only; from k */
	uint8_t  k[NOISE_KEYLEN];
	uint64_t n;
	int      suite;
	bool     has_key;
};

struct noise_hs {
	int      suite;
	bool     initiator;
	uint8_t  ck[NOISE_HASHLEN];
	uint8_t  h[NOISE_HASHLEN];
	struct noise_cipher cs;
	uint8_t  e_sk[NOISE_DHLEN], e_pk[NOISE_DHLEN];
	bool     e_set;
	uint8_t  re[NOISE_DHLEN];
	uint8_t  psk[NOISE_KEYLEN];
	int      step;  /* messages done (0, 1, 2); -1: failed or split */
	bool     ik;    /* IKpsk2: the static keys below take part */
	uint8_t  s_sk[NOISE_DHLEN], s_pk[NOISE_DHLEN];  /* this side's */
	uint8_t  rs[NOISE_DHLEN];       /* the peer's: initiator from the
	                                 * start, responder after message 1 */
	bool     s_read;                /* responder: message 1 read up to s */
	bool     ss_set;                /* initiator: ss given, not computed */
	uint8_t  ss[NOISE_DHLEN];       /* DH(s, rs), if ss_set */
	bool     e_dh_set;              /* IKpsk2: e_dh given, not computed */
	uint8_t  e_dh_pk[NOISE_DHLEN];  /* the static key it was made with */
	uint8_t  e_dh[NOISE_DHLEN];     /* DH(e, e_dh_pk), if e_dh_set */
};

/* noise_suite_available(suite): true where libsodium can run it here. */
bool noise_suite_available(int suite);

/*
 * noise_hs_init(hs, suite, initiator, prologue, plen, psk): InitializeSymmetric
 * with the protocol name of SUITE, MixHash(prologue), remember PSK.
 * Returns 0 or -EINVAL (unknown or unavailable suite).
 */
int noise_hs_init(struct noise_hs *hs, int suite, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t psk[NOISE_KEYLEN]);

/*
 * noise_hs_init_ik(hs, suite, initiator, prologue, plen, s_sk, s_pk, rs,
 * psk): the same for an identity suite (NOISE_IK_*): S_SK is this side's
 * static private key and S_PK its public key (NULL: computed here; a
 * caller that keeps it saves an X25519 per handshake); RS the responder's
 * static public key (the initiator's
 * pre-message knowledge; NULL for the responder, which mixes its own).
 * Message 1 (e, es, s, ss) carries the initiator's static key: 96 bytes
 * with an empty payload; message 2 (e, ee, se, psk) 48 bytes.  PSK is
 * mixed at message 2 only, so the responder may set it after message 1
 * and the initiator may try several on copies of HS (noise_hs_set_psk).
 * Returns 0 or -EINVAL.
 */
int noise_hs_init_ik(struct noise_hs *hs, int suite, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t s_sk[NOISE_DHLEN],
    const uint8_t s_pk[NOISE_DHLEN], const uint8_t rs[NOISE_DHLEN],
    const uint8_t psk[NOISE_KEYLEN]);

/*
 * The token ss, DH(s, rs), is the same for every handshake between two
 * static keys: a caller that keeps it saves an X25519 per handshake.
 * noise_hs_set_ss(hs, ss): the initiator's, before message 1.  The
 * responder reads message 1 in two steps: noise_hs_read1_static() up to
 * the initiator's static key (*rs points at it: 0, or -EBADMSG with HS
 * dead when it does not decrypt, e.g. under another identity), then
 * noise_hs_read1_finish() with that pair's SS (NULL: computed) and the
 * payload; noise_hs_read1() does both.  A responder can thus refuse an
 * unknown key before any further work.
 */
void noise_hs_set_ss(struct noise_hs *hs, const uint8_t ss[NOISE_DHLEN]);
int noise_hs_read1_static(struct noise_hs *hs, const uint8_t *msg,
    size_t mlen, const uint8_t **rs);
int noise_hs_read1_finish(struct noise_hs *hs, const uint8_t *msg,
    size_t mlen, const uint8_t ss[NOISE_DHLEN], uint8_t *payload,
    size_t *plen);

/* noise_hs_set_psk(hs, psk): the PSK that message 2 mixes (IKpsk2). */
void noise_hs_set_psk(struct noise_hs *hs, const uint8_t psk[NOISE_KEYLEN]);

/* noise_hs_remote_static(hs): the peer's static public key (IKpsk2: the
 * responder's after read1, the initiator's from init), or NULL. */
const uint8_t *noise_hs_remote_static(const struct noise_hs *hs);

/* noise_hs_set_ephemeral(hs, sk): use SK as the local ephemeral private key
 * (tests, vectors); without it a fresh one is generated.
 * noise_hs_set_ephemeral_pair(hs, sk, pk): the same with its public key,
 * made beforehand (a responder makes its ephemeral while the initiator's
 * message 1 is on its way). */
void noise_hs_set_ephemeral_pair(struct noise_hs *hs,
    const uint8_t sk[NOISE_DHLEN], const uint8_t pk[NOISE_DHLEN]);
void noise_hs_set_ephemeral(struct noise_hs *hs, const uint8_t sk[NOISE_DHLEN]);

/*
 * noise_hs_set_e_dh(hs, pk, dh): DH is DH(e, PK) for the ephemeral just
 * set, made beforehand (IKpsk2: the initiator's es and the responder's se
 * are DH(e, rs), and a side that knows rs ahead makes it while it waits).
 * Used only if PK turns out to be rs; otherwise the DH is computed.
 */
void noise_hs_set_e_dh(struct noise_hs *hs, const uint8_t pk[NOISE_DHLEN],
    const uint8_t dh[NOISE_DHLEN]);

/*
 * Message 1 (psk, e) and message 2 (e, ee), each followed by an encrypted
 * payload.  write: OUT gets 32 + plen + 16 bytes, *outlen set; returns 0 or
 * -EINVAL (wrong role/order, payload too large).  read: MSG of MLEN bytes;
 * the decrypted payload goes to PAYLOAD (room for mlen - 48 bytes), *plen
 * set; returns 0, -EBADMSG (authentication failed / too short) or -EINVAL.
 * A failed read leaves HS unusable (wipe it).
 */
int noise_hs_write1(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen);
int noise_hs_read1(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen);
int noise_hs_write2(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen);
int noise_hs_read2(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen);

/*
 * noise_hs_split(hs, tx, rx): Split() after message 2; TX is the cipher this
 * side sends with (initiator: first), RX the one it receives with.  Erases
 * the handshake's secrets (ck, ephemeral, psk); the hash stays readable.
 * Called at any other time, TX and RX get no key (encrypt/decrypt fail).
 */
void noise_hs_split(struct noise_hs *hs, struct noise_cipher *tx,
    struct noise_cipher *rx);

/* noise_hs_hash(hs, h): the handshake hash (valid after message 2). */
void noise_hs_hash(const struct noise_hs *hs, uint8_t h[NOISE_HASHLEN]);

/* noise_hs_wipe(hs): erase all secrets. */
void noise_hs_wipe(struct noise_hs *hs);

/*
 * noise_cipher_encrypt(c, ad, adlen, pt, len, out): EncryptWithAd; OUT gets
 * len + 16 bytes (OUT may equal PT: in place); n is incremented.  Returns 0,
 * or -EINVAL if C has no key and -EOVERFLOW if its nonce is exhausted
 * (2^64-1 is reserved for rekey): then OUT gets len + 16 zero bytes, never
 * plaintext, and n is unchanged.
 * noise_cipher_decrypt(c, ad, adlen, ct, ctlen, out): DecryptWithAd; OUT gets
 * ctlen - 16 bytes (in place allowed); returns 0 or -EBADMSG (also: no key,
 * nonce exhausted, ctlen < 16), and n is incremented only on success.  On
 * failure OUT's contents are unspecified (libsodium zeroes it; in place,
 * the ciphertext is lost).
 */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad,
    size_t adlen, const uint8_t *pt, size_t len, uint8_t *out);
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad,
    size_t adlen, const uint8_t *ct, size_t ctlen, uint8_t *out);

/* noise_cipher_init(c, suite, k): a CipherState with key K and n = 0. */
void noise_cipher_init(struct noise_cipher *c, int suite,
    const uint8_t k[NOISE_KEYLEN]);

/* noise_cipher_rekey(c): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 0^32). */
void noise_cipher_rekey(struct noise_cipher *c);

/* noise_cipher_wipe(c): erase the key. */
void noise_cipher_wipe(struct noise_cipher *c);

#endif
