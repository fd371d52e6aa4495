/*
 * startwarn: the warnings the shim gives once, when a program starts.
 */
#ifndef SOCKSEAL_STARTWARN_H
#define SOCKSEAL_STARTWARN_H

struct policy;

/* startwarn_exposed(p): warn about P's key and identity files that group
 * or others may read, unless the parent process runs the shim too. */
void startwarn_exposed(const struct policy *p);

#endif
