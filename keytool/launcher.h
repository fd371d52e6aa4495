/*
 * launcher: what the `sockseal` launcher (sockseal.c) shares with its
 * subcommands, each in its own file:
 *
 *   sockseal doctor BINARY...                       doctor.c, doctor_*.c
 *   sockseal explain [-f POLICY] [-v] connect|accept ADDR:PORT   explain.c
 *
 * Each *_main(argc, argv) gets the arguments from the subcommand name on
 * (argv[0] is "doctor", ...) and returns the exit status.
 */
#ifndef SOCKSEAL_LAUNCHER_H
#define SOCKSEAL_LAUNCHER_H

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

/* launcher_policy_path(f): F if given, else $SOCKSEAL_POLICY, else the
 * default: the policy the shim would load. */
const char *launcher_policy_path(const char *f);

#endif
