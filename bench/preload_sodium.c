/*
 * preload_sodium.so: a reference for the start-cost row of bench/run.sh.
 * It links libsodium and calls sodium_init() from its constructor and does
 * nothing else, so "LD_PRELOAD=preload_sodium.so /bin/true" costs what the
 * dynamic loader and libsodium cost any preloaded crypto library; the rest
 * of the shim's start cost is sockseal's own (policy, keys, symbol binding).
 */
#include <sodium.h>

__attribute__((constructor)) static void preload_sodium_init(void)
{
	if (sodium_init() < 0)
		return;
}
