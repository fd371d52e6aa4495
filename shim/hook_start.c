/*
 * hook_start: the shim's one constructor and one destructor.  Start-up
 * order: initialise (init.c: policy, keys, limits, fork handlers), then
 * adopt what this image inherited (conn.c), whose standard streams on a
 * sealed socket go through the shim (hook_stdio.c).  Exit: every session
 * still open ends its stream (init.c): at exit() (the destructor) and at
 * _exit(), whose FIN TCP sends all the same (dash exits that way; so do
 * forked children).  A vfork() child's _exit() is its own: the tables
 * are its parent's.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "init.h"
#include "real.h"
#include "hook.h"

__attribute__((constructor)) static void
start(void)
{
	shim_start(hook_stdio_adopt);
}

__attribute__((destructor)) static void
stop(void)
{
	shim_exit(true);
}

HOOK void
_exit(int status)
{
	if (!shim_foreign())
		shim_exit(false);
	real__exit(status);
}

HOOK void
_Exit(int status)
{
	_exit(status);
}
