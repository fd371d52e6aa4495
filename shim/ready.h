/*
 * ready: readiness translation for poll, ppoll, select and pselect.
 *
 * The kernel sees ciphertext; the program must be told about plaintext.
 * For every sealed fd in the set, ready asks the session what is already
 * true from its buffers (decrypted bytes or a whole record waiting count as
 * readable; a half record does not) and what to ask the kernel instead:
 * during the handshake, what the handshake needs (POLLIN for the peer's
 * message, POLLOUT for our queued one), whatever the program asked.  After
 * the kernel answers, each sealed fd is advanced without blocking (the
 * handshake steps, ciphertext is pulled in, queued records are flushed) and
 * the program is told only what its next call will find true.  If nothing
 * the program asked for became true, the wait resumes with the time left,
 * so a poll() never returns early with nothing and never spins.
 * Unsealed fds in the same set keep the kernel's answer untouched.
 */
#ifndef SOCKSEAL_READY_H
#define SOCKSEAL_READY_H

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/select.h>

/* ready_has_sealed(fds, n): is any fd in the set possibly sealed? */
bool ready_has_sealed(const struct pollfd *fds, nfds_t n);

/*
 * ready_poll(fds, n, timeout_ms, mask): poll() (MASK NULL and !use_mask) or
 * ppoll() (use_mask) with translation.  timeout_ms < 0 waits for ever.
 * Returns as poll() does, errno set on -1.
 */
int ready_poll(struct pollfd *fds, nfds_t n, long timeout_ms,
    const sigset_t *mask, bool use_mask);

/*
 * ready_select(n, r, w, e, timeout_ms, mask, use_mask, &left_ms): select()
 * or pselect() over the same machinery.  Returns -2 (errno untouched) when
 * no fd in the sets is sealed: the caller then calls libc directly.
 * *left_ms gets the time left (for select's timeval update).
 */
int ready_select(int n, fd_set *r, fd_set *w, fd_set *e, long timeout_ms,
    const sigset_t *mask, bool use_mask, long *left_ms);

#endif
