/*
 * systemd_int: what the files of `sockseal systemd' share, internal to
 * them:
 *
 *   systemd.c          the options, --install and --remove
 *   systemd_dropin.c   the drop-in: UNIT, --credential, paths, its text
 *   systemd_check.c    the policy loaded as the service's shim will load it
 *
 * struct sd is the request: systemd.c fills it through systemd_dropin.c's
 * parsers, the other two read it.
 */
#ifndef SOCKSEAL_SYSTEMD_INT_H
#define SOCKSEAL_SYSTEMD_INT_H

#include <limits.h>
#include <stddef.h>

#include "launcher.h"

#define PROG        LAUNCHER_PROG
#define SD_MAXCRED  32
#define SD_UNITMAX  256         /* systemd's UNIT_NAME_MAX, with the NUL */

struct sd_cred {
	char            name[SD_UNITMAX];
	char            path[PATH_MAX];
};

struct sd {
	char            unit[SD_UNITMAX];
	char            policy[PATH_MAX];
	char            shim[PATH_MAX];
	size_t          ncred;
	struct sd_cred  cred[SD_MAXCRED];
};

/*
 * systemd_dropin_unit(arg, out): ARG as a service unit name into OUT,
 * ".service" added when it has no unit suffix.  0, or -EINVAL after saying
 * why on stderr.
 */
int systemd_dropin_unit(const char *arg, char out[SD_UNITMAX]);

/*
 * systemd_dropin_cred(arg, c): --credential NAME=PATH into C, PATH made
 * absolute and required to exist.  0, or 2 (malformed) or 1 (PATH) after
 * saying why on stderr.
 */
int systemd_dropin_cred(const char *arg, struct sd_cred *c);

/*
 * systemd_dropin_policy(in, out): the policy path IN, absolute, into OUT.
 * systemd_dropin_shim(out): the shim the launcher finds, into OUT.  Both
 * refuse a path a unit file cannot hold unquoted.  0, or -1 after saying
 * why on stderr.
 */
int systemd_dropin_policy(const char *in, char out[PATH_MAX]);
int systemd_dropin_shim(char out[PATH_MAX]);

/*
 * systemd_dropin_text(sd, len): the drop-in for SD, malloc'ed (the caller
 * frees it), its length in *LEN.  NULL: out of memory.
 */
char *systemd_dropin_text(const struct sd *sd, size_t *len);

/*
 * systemd_check(sd): load SD's policy as the service's shim would, its
 * ${CREDENTIALS_DIRECTORY}/NAME paths through SD's credentials, and warn
 * about credentials it does not use.  0, or -1 after saying why (FILE:LINE)
 * on stderr.  Leaves no temporary file behind.
 */
int systemd_check(const struct sd *sd);

#endif
