/*
 * tsan: annotations for ThreadSanitizer builds (SAN=tsan), nothing otherwise.
 *
 * ThreadSanitizer runs the program's blocking calls (poll) with its own
 * interceptors ignored, so it would not see the locks the shim takes
 * inside them: the shim says them explicitly, acquiring after it locks and
 * releasing before it unlocks.
 */
#ifndef SOCKSEAL_TSAN_H
#define SOCKSEAL_TSAN_H

#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(m) __tsan_acquire(m)
#define TSAN_RELEASE(m) __tsan_release(m)
#else
#define TSAN_ACQUIRE(m) do { } while (0)
#define TSAN_RELEASE(m) do { } while (0)
#endif

#endif
