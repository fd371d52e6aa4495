/*
 * hook_proc: hints that the program is entering a sandbox: prctl()
 * (PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS) and chroot().  From prctl on the
 * shim makes no syscall beyond those the program's own calls need (a
 * seccomp filter that allows the program's read/write/ppoll must not kill
 * it because of the shim), does not log and no longer reloads the policy;
 * from chroot on, whose paths are not the policy's, it stops the last two.  syscall(SYS_seccomp) is
 * caught in hook_close.c's syscall().
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "init.h"
#include "real.h"
#include "reload.h"
#include "session.h"
#include "shuttle.h"
#include "hook.h"

void
hook_sandbox(void)
{
	/* Splices in the sandbox need the shuttle, which it may forbid. */
	shuttle_prepare();
	shim_sandbox();
}

HOOK int
prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;
	int i;

	va_start(ap, option);
	for (i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP ||
	    (option == PR_SET_NO_NEW_PRIVS && a[0] == 1))
		hook_sandbox();
	return real_prctl(option, a[0], a[1], a[2], a[3]);
}

HOOK int
chroot(const char *path)
{
	shim_chrooted();
	return real_chroot(path);
}
