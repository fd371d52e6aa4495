/*
 * check_dead: rules a policy can never match (keytool check).
 */
#ifndef SOCKSEAL_CHECK_DEAD_H
#define SOCKSEAL_CHECK_DEAD_H

struct policy;

/* check_dead_rules(p): warn on stderr about every rule an earlier one
 * hides (a duplicate, or shadowed); returns how many of them are errors
 * (a sealing rule behind a plain one). */
int check_dead_rules(const struct policy *p);

#endif
