/*
 * startwarn: what the shim says once, when a program starts under it: key
 * and identity files that group or others may read (policy_exposed()).
 *
 * Once per program, not per process: a process whose parent runs this
 * shim too stays quiet (the parent said it), so a shell script or a
 * server running handlers under the shim does not repeat it per command.
 * The parent is asked through /proc/PPID/maps (does it map this library?);
 * an answer that cannot be had (another user's parent) counts as "no":
 * better said twice than never.  Only read at all when something is
 * exposed.  An image that came by exec from one that ran the shim (a
 * wrapper script's `exec prog`) stays quiet too: its statistics file says
 * so (stats_earlier_image()).
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "reason.h"
#include "policy.h"
#include "real.h"
#include "startwarn.h"
#include "stats.h"

/* This library's path as the loader mapped it, or NULL. */
static const char *
self_path(void)
{
	Dl_info di;

	if (dladdr((void *)startwarn_exposed, &di) == 0)
		return NULL;
	return di.dli_fname;
}

/* Does the parent process map the file PATH? */
static bool
parent_maps(const char *path)
{
	char file[48], buf[8192 + 1];
	size_t n = strlen(path), keep = 0;
	ssize_t got;
	bool found = false;
	int fd;

	if (n == 0 || n >= sizeof(buf) / 2)
		return false;
	snprintf(file, sizeof(file), "/proc/%d/maps", (int)getppid());
	if ((fd = real_open(file, O_RDONLY | O_CLOEXEC, 0)) < 0)
		return false;
	/* Keep the last N bytes of each chunk: a name split across two. */
	while (!found && (got = real_read(fd, buf + keep,
	    sizeof(buf) - 1 - keep)) > 0) {
		keep += (size_t)got;
		buf[keep] = '\0';
		found = strstr(buf, path) != NULL;
		if (keep > n) {
			memmove(buf, buf + keep - n, n);
			keep = n;
		}
	}
	real_close(fd);
	return found;
}

/* The first exposed file asks about the parent; every one then follows
 * that answer (-1 unasked, 0 warn, 1 quiet). */
static void
warn_one(void *ctx, const char *file, int line, const char *what)
{
	int *quiet = ctx;
	const char *me;

	if (*quiet < 0)
		*quiet = stats_earlier_image() || ((me = self_path()) != NULL &&
		    strchr(me, '/') != NULL && parent_maps(me));
	if (*quiet)
		return;
	LOG_WARN_CODE("key_exposed", REASON_KEY_EXPOSED, "%s:%d: %s", file,
	    line, what);
	/* The mark an image this process execs looks for. */
	stats_need(NULL);
}

void
startwarn_exposed(const struct policy *p)
{
	int quiet = -1;

	if (p != NULL)
		(void)policy_exposed(p, warn_one, &quiet);
}
