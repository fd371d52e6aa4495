/*
 * fuzz_identity_responder: a session in the responder role against a peer
 * (the initiator) made of fuzz input: raw handshake and record bytes, or a
 * real handshake followed by operations (fuzz_session.h has the format).
 * With public-key identities (suites 3, 4: Noise IKpsk2).
 * FUZZ_WRITE_SEEDS=DIR writes the seed corpus to DIR and exits.
 */
#include "fuzz_session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_session_init(false, true);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_session_run(data, size, false);
	return 0;
}
