/*
 * noise_int: the SymmetricState and token steps that noise.c (NNpsk0) and
 * noise_ik.c (IKpsk2) share.  Internal to the two.
 */
#ifndef SOCKSEAL_NOISE_INT_H
#define SOCKSEAL_NOISE_INT_H

#include "noise.h"

int ns_init(struct noise_hs *hs, const char *name, int aead, bool initiator,
    const uint8_t *prologue, size_t plen, const uint8_t psk[NOISE_KEYLEN]);
void ns_mix_hash(struct noise_hs *hs, const uint8_t *data, size_t len);
void ns_mix_key(struct noise_hs *hs, const uint8_t *ikm, size_t len);
void ns_mix_key_and_hash(struct noise_hs *hs, const uint8_t *ikm, size_t len);
int ns_encrypt_and_hash(struct noise_hs *hs, const uint8_t *pt, size_t len,
    uint8_t *out);
int ns_decrypt_and_hash(struct noise_hs *hs, const uint8_t *ct, size_t ctlen,
    uint8_t *out);
/* Token e, writing (fresh ephemeral unless set) and reading; both with
 * the psk-mode MixKey(e.pub). */
void ns_write_e(struct noise_hs *hs, uint8_t out[NOISE_DHLEN]);
void ns_read_e(struct noise_hs *hs, const uint8_t in[NOISE_DHLEN]);
int ns_mix_dh(struct noise_hs *hs, const uint8_t sk[NOISE_DHLEN],
    const uint8_t pk[NOISE_DHLEN]);
bool ns_payload_fits(size_t plen);
int ns_read_check(struct noise_hs *hs, bool initiator, int step,
    const uint8_t *msg, size_t mlen, size_t extra);

int ns_ik_write1(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen);
int ns_ik_read1(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen);
int ns_ik_write2(struct noise_hs *hs, const uint8_t *payload, size_t plen,
    uint8_t *out, size_t *outlen);
int ns_ik_read2(struct noise_hs *hs, const uint8_t *msg, size_t mlen,
    uint8_t *payload, size_t *plen);

#endif
