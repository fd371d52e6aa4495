/*
 * subcommands: the sockseal-keytool subcommands, one file each
 * (cmd_<name>.c), dispatched by keytool.c.
 *
 * Each cmd_<name>_main(argc, argv) gets the arguments from the subcommand
 * name on (argv[0] is "gen", "show", ...) and returns the process exit
 * status: 0 success, 1 failure (message on stderr), 2 usage error.
 */
#ifndef SOCKSEAL_SUBCOMMANDS_H
#define SOCKSEAL_SUBCOMMANDS_H

#define KEYTOOL_PROG "sockseal-keytool"

/* Exit statuses shared by the subcommands. */
#define KEYTOOL_OK    0
#define KEYTOOL_FAIL  1
#define KEYTOOL_USAGE 2

/* gen FILE: write a new random key to FILE (never overwrites); prints its
 * fingerprint on stdout. */
int cmd_gen_main(int argc, char **argv);

/* show [--identity|--pub] FILE: print the fingerprint of the key in FILE
 * (of an identity's public key, of a public key), never the key. */
int cmd_show_main(int argc, char **argv);

/* identity FILE: a new private key in FILE (never overwrites); prints its
 * public key.  pub FILE: prints the public key of the identity in FILE. */
int cmd_identity_main(int argc, char **argv);
int cmd_pub_main(int argc, char **argv);

/* check POLICY: load POLICY and every key it names; print one line per rule
 * on stdout, errors as FILE:LINE: message and warnings on stderr. */
int cmd_check_main(int argc, char **argv);

/* rotate POLICY KEY: make KEY's file.new (or use the one there) and write
 * POLICY.rotate-1..3, the policies of a zero-downtime rotation; print the
 * steps. */
int cmd_rotate_main(int argc, char **argv);

#endif
