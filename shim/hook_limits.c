/*
 * hook_limits: RLIMIT_NOFILE as the program sees it (nofile.h): getrlimit,
 * setrlimit, prlimit (and their 64-bit names), sysconf(_SC_OPEN_MAX) and
 * getdtablesize.  Every other resource, and other processes' limits, pass
 * through.
 *
 * Not under ThreadSanitizer or AddressSanitizer: their runtimes read and
 * set the limits of the process they start in through these names before
 * the shim (or their own shadow memory) is ready.  Under them the program
 * sees the real, raised limits.
 */
#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

/* x86_64 and every 64-bit target: rlim_t is 64 bits either way. */
_Static_assert(sizeof(struct rlimit) == sizeof(struct rlimit64), "rlimit");

#include "nofile.h"
#include "real.h"
#include "hook.h"

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)

static bool
is_self(pid_t pid)
{
	return pid == 0 || pid == getpid();
}

/* prlimit for RLIMIT_NOFILE of this process, through the view. */
static int
view_prlimit(const struct rlimit *n, struct rlimit *o)
{
	struct rlimit old;
	int r;

	if ((r = nofile_get(&old)) < 0)
		return (int)hook_ret(r);
	if (n != NULL && (r = nofile_set(n)) < 0)
		return (int)hook_ret(r);
	if (o != NULL)
		*o = old;
	return 0;
}

HOOK int
getrlimit(__rlimit_resource_t res, struct rlimit *rl)
{
	if (res != RLIMIT_NOFILE)
		return real_prlimit(0, (int)res, NULL, rl);
	return view_prlimit(NULL, rl);
}

HOOK int
getrlimit64(__rlimit_resource_t res, struct rlimit64 *rl)
{
	return getrlimit(res, (struct rlimit *)rl);
}

HOOK int
setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	if (res != RLIMIT_NOFILE)
		return real_prlimit(0, (int)res, rl, NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnonnull-compare"
	if (rl == NULL) {       /* declared nonnull; the kernel says EFAULT */
		errno = EFAULT;
		return -1;
	}
#pragma GCC diagnostic pop
	return view_prlimit(rl, NULL);
}

HOOK int
setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl)
{
	return setrlimit(res, (const struct rlimit *)rl);
}

HOOK int
prlimit(pid_t pid, __rlimit_resource_t res, const struct rlimit *n,
    struct rlimit *o)
{
	if (res != RLIMIT_NOFILE || !is_self(pid))
		return real_prlimit(pid, (int)res, n, o);
	return view_prlimit(n, o);
}

HOOK int
prlimit64(pid_t pid, __rlimit_resource_t res, const struct rlimit64 *n,
    struct rlimit64 *o)
{
	return prlimit(pid, res, (const struct rlimit *)n, (struct rlimit *)o);
}

HOOK long
sysconf(int name)
{
	struct rlimit rl;

	if (name == _SC_OPEN_MAX && nofile_get(&rl) == 0)
		return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
	return real_sysconf(name);
}

HOOK int
getdtablesize(void)
{
	struct rlimit rl;

	if (nofile_get(&rl) == 0)
		return rl.rlim_cur > 0x7fffffff ? 0x7fffffff : (int)rl.rlim_cur;
	return (int)sysconf(_SC_OPEN_MAX);
}

#endif
