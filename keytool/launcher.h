/*
 * launcher: what the `sockseal` launcher (sockseal.c) shares with its
 * subcommands, each in its own file:
 *
 *   sockseal doctor BINARY...                       doctor.c, doctor_*.c
 *   sockseal explain [-f POLICY] [-v] connect|accept ADDR:PORT   explain.c
 *   sockseal stats [--json] [--dir DIR] [--keep] [-o FILE]
 *                                               stats.c, stats_scan.c, _out.c
 *   sockseal systemd UNIT [-f POLICY] [--credential NAME=PATH]...
 *       [--install | --remove]                     systemd.c, systemd_*.c
 *
 * Each *_main(argc, argv) gets the arguments from the subcommand name on
 * (argv[0] is "doctor", ...) and returns the exit status.
 */
#ifndef SOCKSEAL_LAUNCHER_H
#define SOCKSEAL_LAUNCHER_H

#include <limits.h>

#define LAUNCHER_PROG           "sockseal"
#define LAUNCHER_POLICY_DEFAULT "/etc/sockseal/policy"

/*
 * doctor BINARY...: can the shim reach each BINARY (followed through
 * scripts, wrappers and version managers' shims)?  Prints a block per
 * BINARY: a verdict line, then the reasons.  0: every one can be sealed
 * or has nothing to seal, 1: one cannot, 2: usage or error.
 */
int doctor_main(int argc, char **argv);

/*
 * explain [-f POLICY] [-v] connect|accept ADDR:PORT: which rule of the
 * policy (-f, else $SOCKSEAL_POLICY, else the default) matches and what the
 * shim will do.  0: a rule matched, 1: none did, 2: usage or error.
 */
int explain_main(int argc, char **argv);

/*
 * stats [--json] [--dir DIR] [--keep] [-o FILE]: the live shimmed
 * processes' counters by program and rule (stats.c).  0, 1 error, 2 usage.
 */
int stats_main(int argc, char **argv);

/*
 * systemd UNIT [-f POLICY] [--credential NAME=PATH]... [--install|--remove]:
 * a drop-in that preloads the shim into the service UNIT, printed or
 * installed (or removed).  0: done, 1: error, 2: usage.
 */
int systemd_main(int argc, char **argv);

/*
 * launcher_find_shim(out): the absolute path of libsockseal.so, found as
 * the launcher finds it (sockseal.c).  Returns 0, or a negative errno
 * after saying on stderr what was looked for.
 */
int launcher_find_shim(char out[PATH_MAX]);

/*
 * launcher_abs_path(in, out): IN made absolute against the current
 * directory, symlinks kept (the form SOCKSEAL_POLICY gets from -f).
 * Returns 0 or a negative errno.
 */
int launcher_abs_path(const char *in, char out[PATH_MAX]);

/* launcher_policy_path(f): F if given, else $SOCKSEAL_POLICY, else the
 * default: the policy the shim would load. */
const char *launcher_policy_path(const char *f);

#endif
