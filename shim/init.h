/*
 * init: the shim's one-time set-up and its exit path.
 *
 * Everything the shim needs from the environment and the file system — log
 * level, policy, keys — is read once, in the constructor (or by the first
 * hook that needs it, if another library's constructor calls in first), so
 * a later setuid(), chroot() or environment wipe changes nothing.  A policy
 * or key that cannot be read stops the program: exit status 1 and
 * "FILE:LINE: message" on stderr.
 */
#ifndef SOCKSEAL_INIT_H
#define SOCKSEAL_INIT_H

#include <stdbool.h>

struct policy;

/* shim_policy(): the loaded policy (initialising if needed); never NULL. */
const struct policy *shim_policy(void);

/* shim_has_accept_rules(): does any accept rule seal?  (Skips syscalls on
 * accept() when none does.) */
bool shim_has_accept_rules(void);

#endif
