/*
 * doctor_verdict: the verdict block `sockseal doctor' prints for one
 * binary, from where following it ended (doctor_follow).
 */
#ifndef SOCKSEAL_DOCTOR_VERDICT_H
#define SOCKSEAL_DOCTOR_VERDICT_H

#include "doctor_follow.h"

#define DOCTOR_CAN     0        /* can be sealed, or nothing to seal */
#define DOCTOR_CANNOT  1
#define DOCTOR_ERROR   2        /* usage, or the binary cannot be read */

/*
 * Print the block for chain C, which doctor_follow ended with END, on
 * stdout (an error, DOCTOR_ERROR, on stderr instead).  Returns the
 * binary's exit status, DOCTOR_CAN, DOCTOR_CANNOT or DOCTOR_ERROR.
 */
int doctor_verdict(const struct doctor_chain *c, int end);

#endif
