/*
 * policy_int: what the policy module's files share (policy.c: the
 * statements' life cycle and keys; policy_load.c: files and paths;
 * policy_util.c: messages and words; policy_rule.c: connect and accept
 * rules; policy_ident.c: identities, peers and include; policy_match.c:
 * matching and formatting).  Private to them.
 */
#ifndef SOCKSEAL_POLICY_INT_H
#define SOCKSEAL_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* A policy file larger than this is refused (a mistake, not a policy). */
#define POLICY_MAX_FILE (16u << 20)

#define NAME_MAX_LEN   64
#define TIMEOUT_MAX    3600000u

#define INCLUDE_DEPTH  4

/* The names one rule gives, until policy_parse_finish() resolves them. */
struct rule_names {
	char  *name[POLICY_MAXKEYS];    /* key= */
	char  *id[POLICY_MAXKEYS];      /* identity= */
	char  *peer;                    /* peer= (connect) */
	char **peers;                   /* peers= (accept) */
};

struct policy {
	char                *file;      /* as given to policy_parse_init() */
	char                *dir;       /* its directory, NULL if none given */
	const char          *cur;       /* the file whose lines are parsed now
	                                 * (an include's), for messages */
	int                  depth;     /* includes being read */
	char               **files;     /* included files read (owned) */
	size_t               nfiles;
	struct policy_key  **keys;
	size_t               nkeys, capkeys;
	struct policy_identity **ids;
	size_t               nids, capids;
	struct policy_peer **peers;
	size_t               npeers, cappeers;
	struct policy_rule  *rules;
	struct rule_names   *rulekeys;  /* parallel to rules */
	size_t               nrules, caprules;
	policy_env_fn        env;       /* ${VAR} lookup; NULL: getenv() */
	void                *envctx;
	bool                 finished;
};

/* Write "FILE:LINE: message" into err; returns -EINVAL for convenience. */

/* Write "FILE:LINE: message" into err (FILE: the one being parsed);
 * returns -EINVAL for convenience.  perr_at(): another file's line. */
int perr(const struct policy *p, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int perr_at(const char *file, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "first defined at line N" (in the file being parsed) or "at FILE:N",
 * for a duplicate's message: into BUF of LEN. */
const char *perr_where(const struct policy *p, const char *file, int line,
    char *buf, size_t len);
/* "out of memory" at LINENO: -ENOMEM. */
int perr_nomem(const struct policy *p, int lineno, char err[POLICY_ERRLEN]);

bool is_space(char c);
bool is_digit(char c);
/* The next whitespace-separated word of the writable string *s, or NULL. */
char *next_word(char **s);
/* LEN decimal digits with a value of at most MAX: 0 or -EINVAL. */
int parse_uint(const char *s, size_t len, uint32_t max, uint32_t *v);
/* A key, identity or peer name: letters, digits, `_', `-', `.'. */
bool name_valid(const char *s, size_t len);
const struct policy_key *key_find(const struct policy *p, const char *name);
/* Grow the array *ARR of *CAP elements of SIZE to hold N + 1: 0 or -ENOMEM. */
int grow(void *arr, size_t *cap, size_t n, size_t size);
/* A comma-separated list of names for OPT= into OUT[MAX] (*N set). */
int parse_namelist(struct policy *p, const char *opt, const char *list,
    char **out, int max, int *n, int lineno, char err[POLICY_ERRLEN]);

/*
 * PATH of the statement WHAT at FILE:LINE with ${VAR} expanded and, if
 * relative, prefixed by the policy file's directory: 0 and a new string
 * in *out, or a negative errno with err set.
 */
int expand_path(const struct policy *p, const char *file, int line,
    const char *what, const char *path, char **out, char err[POLICY_ERRLEN]);

/* policy_rule.c */
extern const uint8_t v4mapped[12];      /* ::ffff:0:0/96 */
int parse_rule(struct policy *p, enum policy_dir dir, char *rest, int lineno,
    char err[POLICY_ERRLEN]);
void rule_names_free(struct rule_names *rn);

/* policy_ident.c */
int parse_identity(struct policy *p, char *rest, int lineno,
    char err[POLICY_ERRLEN]);
int parse_peer(struct policy *p, char *rest, int lineno,
    char err[POLICY_ERRLEN]);
int parse_include(struct policy *p, char *rest, int lineno,
    char err[POLICY_ERRLEN]);
/* Rule R (names RN): its identities and peers found; 0 or -EINVAL. */
int ident_resolve(struct policy *p, struct policy_rule *r,
    const struct rule_names *rn, char err[POLICY_ERRLEN]);
/* Read every identity and peer file: 0 or a negative errno. */
int ident_read(struct policy *p, char err[POLICY_ERRLEN]);
void ident_free(struct policy *p);
bool ident_rule_equal(const struct policy_rule *a, const struct policy_rule *b);

/* policy.c: read a file whole (the policy, an include). */
int policy_slurp(const char *path, char **out, size_t *outlen);
/* Parse the lines of BUF (LEN bytes) as FILE's. */
int policy_parse_buf(struct policy *p, char *buf, size_t len,
    char err[POLICY_ERRLEN]);

#endif
