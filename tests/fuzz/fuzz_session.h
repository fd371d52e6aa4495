/*
 * fuzz_session: the harness shared by fuzz_handshake_initiator and
 * fuzz_handshake_responder.  One sealed session (shim/session.c) on one
 * end of an AF_UNIX socketpair; the fuzz input plays the peer on the other
 * end.  Input format (first byte = configuration):
 *
 *   bit 0     0: raw mode: the rest of the input is the peer's bytes as
 *                they are (preface, handshake messages, records);
 *             1: op mode: an in-process peer built from noise.c completes a
 *                real handshake with the fixed key, then the rest of the
 *                input is a list of operations (fuzz_session_ops.c).
 *   bit 1     suite the initiating side proposes (0 chachapoly, 1 aesgcm)
 *   bits 2-3  the rule's cipher= (0 default, 1 chachapoly, 2 aesgcm);
 *             3: default with mode=permissive (responder)
 *   bit 4     the rule lists a wrong key first (rotation, responder); for
 *             the initiator in op mode: write early data mid-handshake
 *   bits 5-7  raw mode: chunk size of the feed; op mode: unused
 *
 * The libsodium RNG is replaced by a deterministic one, reset for every
 * input, so a given input always produces the same bytes on the wire: a
 * raw-mode input may carry valid records (fuzz_session_transcript()).
 */
#ifndef SOCKSEAL_FUZZ_SESSION_H
#define SOCKSEAL_FUZZ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * fuzz_session_init(initiator, identity): once per process
 * (LLVMFuzzerInitialize).  IDENTITY: the rule and the peer use public-key
 * identities (suites 3, 4: the session's key and the peer's are fixed, no
 * PSK); bit 1 then picks suite 3 or 4, and bit 4 for a responder lists
 * another identity first (a rotation).
 * With FUZZ_WRITE_SEEDS=DIR in the environment, writes the seed corpus for
 * the role to DIR and exits.
 */
void fuzz_session_init(bool initiator, bool identity);

/*
 * fuzz_session_run(data, size, initiator): run one input against a session
 * in the given role.  Aborts when an invariant breaks: a valid handshake
 * that fails, plaintext that differs from what the peer sealed, a record
 * from the session the peer cannot open, a read returning 0 without the
 * end-of-stream mark, readiness that the next read contradicts.
 */
void fuzz_session_run(const uint8_t *data, size_t size, bool initiator);

#endif
