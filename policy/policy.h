/*
 * policy: the policy file parser and matcher, shared by the shim, the key
 * tool and the launcher.  Syntax: ../README.md and DESIGN.md.
 *
 * A policy is parsed line by line (policy_parse_init / policy_parse_line /
 * policy_parse_finish, as wireguard-tools' config.c does), then every key
 * it names is read.  Errors are reported as "FILE:LINE: message" in a
 * caller-supplied buffer; nothing is printed.  policy_load() does all of it
 * for a file on disk.
 *
 * The policy is immutable once loaded: policy_match() takes no lock and may
 * be called from any thread.
 */
#ifndef SOCKSEAL_POLICY_H
#define SOCKSEAL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define POLICY_KEYLEN      32
#define POLICY_MAXKEYS     8      /* keys on one rule */
#define POLICY_ERRLEN      512
#define POLICY_TIMEOUT_DEF 10000  /* ms */

enum policy_dir { POLICY_CONNECT = 0, POLICY_ACCEPT = 1 };

/* Suite numbers are the wire protocol's (DESIGN.md): 1 and 2. */
enum policy_cipher {
	POLICY_CIPHER_DEFAULT    = 0, /* connect: chachapoly; accept: any usable */
	POLICY_CIPHER_CHACHAPOLY = 1,
	POLICY_CIPHER_AESGCM     = 2,
};

enum policy_mode { POLICY_STRICT = 0, POLICY_PERMISSIVE = 1 };

struct policy_key {
	char    *name;
	char    *path;                 /* as written in the policy */
	char    *resolved;             /* the file read by policy_parse_finish():
	                                  ${VAR} expanded, relative paths joined
	                                  to the policy file's directory */
	uint8_t  key[POLICY_KEYLEN];
	char     fpr[64];              /* keyfile_fingerprint(key): computed
	                                  once, at load (logs, statistics) */
	const char *file;              /* the file of the `key` statement */
	int      line;                 /* its line */
};

/* `identity NAME PATH`: this host's private X25519 key (wg genkey's form). */
struct policy_identity {
	char    *name;
	char    *path, *resolved;      /* as for keys */
	uint8_t  sk[POLICY_KEYLEN];
	uint8_t  pk[POLICY_KEYLEN];    /* its public key */
	char     fpr[64];              /* keyfile_pub_fingerprint(pk) */
	const char *file;
	int      line;
};

/* `peer NAME PUBKEY|PATH`: a known public key (wg pubkey's form), written
 * in the policy or read from PATH. */
struct policy_peer {
	char    *name;
	char    *path, *resolved;      /* NULL for a key written inline */
	uint8_t  pk[POLICY_KEYLEN];
	const char *file;
	int      line;
	/* policy_ss()'s cache: DH(identity, pk), filled on first use (the
	 * one part of a loaded policy that is written; atomics). */
	struct {
		const struct policy_identity *id;
		int      ready;        /* 0 empty, 1 being written, 2 ready */
		uint8_t  ss[POLICY_KEYLEN];
	} ss_cache[2];
};

struct policy_rule {
	enum policy_dir    dir;
	int                family;     /* 0 (`*`), AF_INET or AF_INET6 */
	uint8_t            addr[16];   /* network order; 4 bytes used for IPv4 */
	int                prefix;     /* prefix length in bits */
	uint16_t           port_lo, port_hi;
	bool               plain;      /* explicit exemption: no keys */
	int                nkeys;
	const struct policy_key *keys[POLICY_MAXKEYS]; /* first = connect key */
	int                nids;       /* identity=: suites 3, 4 (0: PSK only) */
	const struct policy_identity *ids[POLICY_MAXKEYS]; /* first: current */
	const struct policy_peer *peer;   /* connect: peer= */
	size_t             npeers;     /* accept: peers= */
	const struct policy_peer **peers;
	enum policy_cipher cipher;
	enum policy_mode   mode;
	uint32_t           timeout_ms;
	const char        *file;       /* policy file path (owned by policy) */
	int                line;
};

struct policy;

/*
 * policy_env_fn(name, ctx): the value of the environment variable NAME for
 * ${NAME} in key paths, or NULL if it is unset.
 */
typedef const char *(*policy_env_fn)(const char *name, void *ctx);

/*
 * policy_parse_init(file): start a policy read from FILE (the name is only
 * used in messages and rule->file).  Returns NULL on allocation failure.
 */
struct policy *policy_parse_init(const char *file);

/*
 * policy_parse_line(p, line, lineno, err): parse one line (without or with its
 * trailing newline).  Returns 0, or -EINVAL (-ENOMEM) with err set to
 * "FILE:LINE: message".  A rule may name keys defined on later lines.
 */
int policy_parse_line(struct policy *p, const char *line, int lineno,
    char err[POLICY_ERRLEN]);

/*
 * policy_parse_finish(p, err): check cross-references (every key a rule names
 * is defined) and read every key file.  ${VAR} in key paths is expanded from
 * the environment (an unset variable is an error); a relative path is taken
 * relative to the directory of FILE as given to policy_parse_init().
 * Returns 0, or a negative errno with err set to "FILE:LINE: message" (the
 * line of the statement at fault).  Until it succeeds, policy_match()
 * matches nothing.
 */
int policy_parse_finish(struct policy *p, char err[POLICY_ERRLEN]);

/*
 * policy_parse_env(p, env, ctx): look ${VAR} up with ENV(VAR, CTX) instead
 * of getenv() (the shim expands from the environment it started with).
 * ENV NULL restores getenv().  Call before policy_parse_finish().
 */
void policy_parse_env(struct policy *p, policy_env_fn env, void *ctx);

/*
 * policy_load(path, &p, err): read, parse and finish the policy at PATH.
 * Returns 0 and a new policy in *p, or a negative errno with err set
 * ("PATH: strerror" when the file cannot be read).  policy_load_env() is
 * the same with ${VAR} looked up by ENV (policy_parse_env()).
 */
int policy_load(const char *path, struct policy **pp, char err[POLICY_ERRLEN]);
int policy_load_env(const char *path, policy_env_fn env, void *ctx,
    struct policy **pp, char err[POLICY_ERRLEN]);

/*
 * policy_equal(a, b): do A and B make the same decisions with the same keys
 * and name the same FILE:LINE for each rule?  (Key paths are not compared:
 * only what the keys are.)
 */
bool policy_equal(const struct policy *a, const struct policy *b);

/*
 * policy_match(p, dir, sa, salen): the first rule for DIR that matches the
 * address, or NULL.  For POLICY_CONNECT, SA is the remote address; for
 * POLICY_ACCEPT, the local address the connection arrived on.  Only AF_INET
 * and AF_INET6 addresses match; IPv4-mapped IPv6 addresses match IPv4 rules.
 * A `plain` rule is returned as such (rule->plain): the caller leaves the
 * connection alone.  Lock-free, no allocation, no syscalls.
 */
const struct policy_rule *policy_match(const struct policy *p,
    enum policy_dir dir, const struct sockaddr *sa, socklen_t salen);

/*
 * policy_rule_test(r, dir, sa, salen): does rule R match, and if not, the
 * first part that does not (for `sockseal explain`).  Same rules as
 * policy_match(), which returns the first rule for which this is
 * POLICY_HIT.  An address that is neither IPv4 nor IPv6 is a
 * POLICY_MISS_FAMILY.
 */
enum policy_miss {
	POLICY_HIT = 0,
	POLICY_MISS_DIR,        /* a rule for the other direction */
	POLICY_MISS_FAMILY,     /* IPv4 rule, IPv6 address, or the reverse */
	POLICY_MISS_ADDR,       /* address outside the rule's CIDR */
	POLICY_MISS_PORT,       /* port outside the rule's range */
};
enum policy_miss policy_rule_test(const struct policy_rule *r,
    enum policy_dir dir, const struct sockaddr *sa, socklen_t salen);

/* Rules in file order, for the key tool and tests. */
size_t policy_nrules(const struct policy *p);
const struct policy_rule *policy_rule_at(const struct policy *p, size_t i);
size_t policy_nkeys(const struct policy *p);
const struct policy_key *policy_key_at(const struct policy *p, size_t i);
size_t policy_nidentities(const struct policy *p);
const struct policy_identity *policy_identity_at(const struct policy *p,
    size_t i);
size_t policy_npeers(const struct policy *p);
const struct policy_peer *policy_peer_at(const struct policy *p, size_t i);

/*
 * policy_ss(id, pe, tmp): X25519(ID's private key, PE's public key), the
 * Noise token ss of every handshake between the two: the cached value, or
 * computed into TMP (and cached, for a rule's first two identities).  NULL
 * for a low-order key.  Thread-safe, lock-free.
 */
const uint8_t *policy_ss(const struct policy_identity *id,
    const struct policy_peer *pe, uint8_t tmp[POLICY_KEYLEN]);

/* policy_rule_admits(r, pk): is PK one of the keys R's peers= lists? */
bool policy_rule_admits(const struct policy_rule *r,
    const uint8_t pk[POLICY_KEYLEN]);

/*
 * Every file the policy read besides the policy itself (included files,
 * keys, identities, peer key files), for reload's watch list: their
 * number, and the I-th.
 */
size_t policy_nfiles(const struct policy *p);
const char *policy_file_at(const struct policy *p, size_t i);

/*
 * policy_exposed(p, fn, ctx): FN(CTX, FILE, LINE, WHAT) for every key and
 * identity file that group or others may read, FILE:LINE its statement,
 * WHAT "key NAME: PATH is readable by others (mode 0644); chmod 600 it".
 * Returns how many.  For keytool check, the launcher and the shim's start.
 */
typedef void policy_exposed_fn(void *ctx, const char *file, int line,
    const char *what);
size_t policy_exposed(const struct policy *p, policy_exposed_fn *fn,
    void *ctx);

/* policy_free(p): wipes keys, frees everything; NULL is a no-op. */
void policy_free(struct policy *p);

/*
 * policy_format_addrports(r, buf): R's ADDR:PORTS as a policy would write it
 * (`*:*`, `10.0.0.0/8:5432`, `[fd00::]/8:1000-2000`; a full-length prefix is
 * left out), for messages.  Returns BUF.
 */
#define POLICY_ADDRPORTSLEN 80
const char *policy_format_addrports(const struct policy_rule *r,
    char buf[POLICY_ADDRPORTSLEN]);

/* "connect"/"accept", "chachapoly"/"aesgcm"/"default", for messages. */
const char *policy_dir_name(enum policy_dir d);
const char *policy_cipher_name(enum policy_cipher c);

#endif
