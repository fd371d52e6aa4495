/*
 * hook_start: the shim's one constructor and one destructor.  Start-up
 * order: initialise (init.c: policy, keys, limits, fork handlers), then
 * adopt what this image inherited (conn.c), whose standard streams on a
 * sealed socket go through the shim (hook_stdio.c).  Exit: every session
 * still open ends its stream (init.c).
 */
#include "init.h"
#include "hook.h"

__attribute__((constructor)) static void
start(void)
{
	shim_start(hook_stdio_adopt);
}

__attribute__((destructor)) static void
stop(void)
{
	shim_exit();
}
