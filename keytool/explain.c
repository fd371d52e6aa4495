/*
 * explain: `sockseal explain [-f POLICY] [-v] connect|accept ADDR:PORT`.
 *
 * Loads the policy the shim would load and answers, for one connection,
 * the questions an operator asks when something is or is not sealed: which
 * rule matches (FILE:LINE and its text), why it matches, and what the shim
 * will do (seal with which keys and cipher, leave alone).  With -v it also
 * lists the earlier rules and why each did not match: the first match
 * wins, so an early rule can hide a later one.
 *
 * The matching is policy_rule_test(), the same test policy_match() runs in
 * the shim; explain checks that both agree.  ADDR is numeric: an IPv4
 * address, or an IPv6 address in brackets; IPv4-mapped IPv6 addresses
 * match IPv4 rules, as in the shim.  For accept, ADDR:PORT is the local
 * address a connection arrives on (the listening socket's).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "noise.h"
#include "policy.h"
#include "launcher.h"

#define EXPLAIN_MATCH   0
#define EXPLAIN_NOMATCH 1
#define EXPLAIN_USAGE   2

static void
explain_usage(FILE *f)
{
	fprintf(f, "usage: %s explain [-f POLICY] [-v] connect|accept ADDR:PORT\n"
	    "  ADDR: 10.0.0.5, or [fd00::5] (IPv6 in brackets)\n"
	    "  connect: ADDR:PORT is the remote end; accept: the local address\n"
	    "  the connection arrives on\n"
	    "  -v  also list the earlier rules and why they did not match\n",
	    LAUNCHER_PROG);
}

/* "1.2.3.4:80" or "[::1]:80" into SS.  0, or -EINVAL. */
static int
parse_addrport(const char *arg, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *end;
	unsigned long port;
	char *e;

	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		if ((end = strchr(arg, ']')) == NULL || end[1] != ':')
			return -EINVAL;
		colon = end + 1;
		arg++;
	} else {
		if ((colon = strrchr(arg, ':')) == NULL)
			return -EINVAL;
		end = colon;
	}
	if ((size_t)(end - arg) >= sizeof(host))
		return -EINVAL;
	memcpy(host, arg, (size_t)(end - arg));
	host[end - arg] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &e, 10);
	if (colon[1] == '\0' || *e != '\0' || errno != 0 || port > 65535)
		return -EINVAL;
	if (end != colon && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	if (end == colon && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	return -EINVAL;
}

/* Line LINENO of FILE, trimmed, into BUF ("?" if it cannot be read). */
static const char *
rule_text(const char *file, int lineno, char *buf, size_t len)
{
	char *line = NULL, *s, *e;
	size_t cap = 0;
	FILE *f;
	int n = 0;

	snprintf(buf, len, "?");
	if ((f = fopen(file, "r")) == NULL)
		return buf;
	while (getline(&line, &cap, f) != -1) {
		if (++n != lineno)
			continue;
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		e = s + strlen(s);
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' ||
		    e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		snprintf(buf, len, "%s", s);
		break;
	}
	free(line);
	fclose(f);
	return buf;
}

/* The rule's address part and port part, as the policy writes them. */
static void
rule_parts(const struct policy_rule *r, char addr[POLICY_ADDRPORTSLEN],
    const char **ports)
{
	char *colon;

	policy_format_addrports(r, addr);
	colon = strrchr(addr, ':');
	*colon = '\0';
	*ports = colon + 1;
}

/* Why R does not match (MISS), as a phrase. */
static void
miss_reason(const struct policy_rule *r, enum policy_miss miss,
    enum policy_dir dir, const char *host, unsigned port, char *buf,
    size_t len)
{
	char addr[POLICY_ADDRPORTSLEN];
	const char *ports;

	rule_parts(r, addr, &ports);
	switch (miss) {
	case POLICY_MISS_DIR:
		snprintf(buf, len, "an %s rule, this is %s",
		    policy_dir_name(r->dir), policy_dir_name(dir));
		break;
	case POLICY_MISS_FAMILY:
		snprintf(buf, len, "an %s rule, %s is %s",
		    r->family == AF_INET ? "IPv4" : "IPv6", host,
		    r->family == AF_INET ? "IPv6" : "IPv4");
		break;
	case POLICY_MISS_ADDR:
		snprintf(buf, len, "%s is not in %s", host, addr);
		break;
	case POLICY_MISS_PORT:
		snprintf(buf, len, "port %u is not in %s", port, ports);
		break;
	default:
		snprintf(buf, len, "matches");
		break;
	}
}

static void
print_keys(const struct policy_rule *r, int from, int to)
{
	char fpr[KEYFILE_FPRLEN];
	int i;

	for (i = from; i < to; i++) {
		keyfile_fingerprint(r->keys[i]->key, fpr);
		printf("%s%s (%s, %s)", i > from ? ", " : "", r->keys[i]->name,
		    r->keys[i]->resolved, fpr);
	}
}

/* NAME (fingerprint of its public key) for a peer or an identity. */
static void
print_pub(const char *name, const uint8_t pk[POLICY_KEYLEN])
{
	char fpr[KEYFILE_FPRLEN];

	keyfile_pub_fingerprint(pk, fpr);
	printf("%s (%s)", name, fpr);
}

/* An identity rule: who this side is, whom it requires, which PSK. */
static void
print_identities(const struct policy_rule *r)
{
	size_t i;
	int k;

	printf("  identity (Noise IKpsk2, suite %s): this host is ",
	    r->cipher == POLICY_CIPHER_AESGCM ? "4, aesgcm" :
	    r->dir == POLICY_CONNECT || r->cipher == POLICY_CIPHER_CHACHAPOLY ?
	    "3, chachapoly" : "3 or 4");
	for (k = 0; k < r->nids; k++) {
		printf("%s", k == 0 ? "" : k == 1 ? ", also (rotation) " : ", ");
		print_pub(r->ids[k]->name, r->ids[k]->pk);
	}
	if (r->dir == POLICY_CONNECT) {
		printf("\n  requires: the server holds the key of peer ");
		print_pub(r->peer->name, r->peer->pk);
	} else {
		printf("\n  admits only clients holding the key of peer ");
		for (i = 0; i < r->npeers; i++) {
			printf("%s", i ? ", " : "");
			print_pub(r->peers[i]->name, r->peers[i]->pk);
		}
	}
	printf("\n  pre-shared key: ");
	if (r->nkeys == 0)
		printf("none (32 zero bytes)");
	else if (r->dir == POLICY_CONNECT)
		print_keys(r, 0, r->nkeys);
	else
		print_keys(r, 0, 1);
	if (r->dir == POLICY_ACCEPT && r->nkeys > 0)
		printf("\n  PSK-only clients (suites 1, 2) also admitted with "
		    "key%s ", r->nkeys > 1 ? "s" : "");
	if (r->dir == POLICY_ACCEPT && r->nkeys > 0)
		print_keys(r, 0, r->nkeys);
	printf("\n");
}

/* What the shim does with a connection that R matched. */
static void
print_action(const struct policy_rule *r)
{
	bool aes = noise_suite_available(NOISE_AESGCM);

	if (r->plain) {
		printf("  will do: nothing: an explicit `plain` exemption, the "
		    "connection stays plaintext\n");
		return;
	}
	if (r->nids > 0) {
		printf("  will do: seal it with public-key identities\n");
		print_identities(r);
		printf("  cipher: %s", r->cipher == POLICY_CIPHER_DEFAULT ?
		    (r->dir == POLICY_CONNECT ? "proposes chachapoly" :
		    "chachapoly or aesgcm") : policy_cipher_name(r->cipher));
		if (r->dir == POLICY_ACCEPT)
			printf("\n  mode: %s", r->mode == POLICY_PERMISSIVE ?
			    "permissive: a client without the sockseal preface "
			    "is let through in plaintext" : "strict: a client "
			    "without the sockseal preface is refused");
	} else if (r->dir == POLICY_CONNECT) {
		printf("  will do: seal it: connect() runs the handshake with key ");
		print_keys(r, 0, 1);
		printf("\n  cipher: proposes %s", r->cipher == POLICY_CIPHER_AESGCM ?
		    "aesgcm" : "chachapoly");
		if (r->cipher == POLICY_CIPHER_AESGCM && !aes)
			printf(" (this CPU cannot run aesgcm: the handshake will "
			    "fail here)");
		if (r->nkeys > 1) {
			printf("\n  other keys, only used by accepting sides: ");
			print_keys(r, 1, r->nkeys);
		}
	} else {
		printf("  will do: seal it: the client must complete the "
		    "handshake with one of the keys ");
		print_keys(r, 0, r->nkeys);
		if (r->cipher != POLICY_CIPHER_DEFAULT)
			printf("\n  cipher: only %s", policy_cipher_name(r->cipher));
		else
			printf("\n  cipher: chachapoly or aesgcm%s",
			    aes ? "" : " (aesgcm not on this CPU: chachapoly only)");
		printf("\n  mode: %s", r->mode == POLICY_PERMISSIVE ?
		    "permissive: a client without the sockseal preface is "
		    "let through in plaintext" :
		    "strict: a client without the sockseal preface is refused");
	}
	printf("\n  handshake timeout: %u ms\n", r->timeout_ms);
}

/*
 * Print the verdict for DIR and SA; returns EXPLAIN_MATCH or
 * EXPLAIN_NOMATCH.
 */
static int
explain(const struct policy *p, const char *path, enum policy_dir dir,
    const struct sockaddr *sa, socklen_t salen, const char *arg, bool verbose)
{
	const struct policy_rule *r, *hit = NULL;
	char host[INET6_ADDRSTRLEN], why[256], text[512];
	char addr[POLICY_ADDRPORTSLEN];
	const char *ports;
	unsigned port;
	size_t i, skipped = 0;
	enum policy_miss miss;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, host,
			    sizeof(host));
			printf("%s: an IPv4-mapped IPv6 address: IPv4 rules see "
			    "it as %s\n", arg, host);
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		}
		port = ntohs(s6->sin6_port);
	}

	for (i = 0; i < policy_nrules(p) && hit == NULL; i++) {
		r = policy_rule_at(p, i);
		if ((miss = policy_rule_test(r, dir, sa, salen)) == POLICY_HIT) {
			hit = r;
			break;
		}
		if (miss == POLICY_MISS_DIR)
			continue;
		skipped++;
		if (verbose) {
			miss_reason(r, miss, dir, host, port, why, sizeof(why));
			printf("skipped %s:%d: %s: %s\n", r->file, r->line,
			    rule_text(r->file, r->line, text, sizeof(text)), why);
		}
	}
	if (hit != policy_match(p, dir, sa, salen)) {
		fprintf(stderr, "%s: internal error: explain and the matcher "
		    "disagree\n", LAUNCHER_PROG);
		return EXPLAIN_USAGE;
	}
	if (hit == NULL) {
		printf("no rule matches %s %s in %s: the connection is left "
		    "alone (plaintext)\n", policy_dir_name(dir), arg, path);
		return EXPLAIN_NOMATCH;
	}

	rule_parts(hit, addr, &ports);
	printf("%s:%d: %s\n", hit->file, hit->line,
	    rule_text(hit->file, hit->line, text, sizeof(text)));
	printf("  matches %s %s: %s rule; ", policy_dir_name(dir), arg,
	    policy_dir_name(hit->dir));
	if (hit->family == 0)
		printf("any address; ");
	else
		printf("%s is %s%s; ", host, strchr(addr, '/') ? "in " : "",
		    addr);
	if (hit->port_lo == 0 && hit->port_hi == 65535)
		printf("any port\n");
	else if (hit->port_lo == hit->port_hi)
		printf("port %u\n", port);
	else
		printf("port %u is in %s\n", port, ports);
	if (skipped > 0)
		printf("  first match wins: %zu earlier rule%s did not match%s\n",
		    skipped, skipped == 1 ? "" : "s",
		    verbose ? "" : " (-v: which and why)");
	print_action(hit);
	return EXPLAIN_MATCH;
}

int
explain_main(int argc, char **argv)
{
	char err[POLICY_ERRLEN];
	struct sockaddr_storage ss;
	const char *fopt = NULL, *path;
	struct policy *p;
	enum policy_dir dir;
	socklen_t len;
	bool verbose = false;
	int c, rc;

	static const struct option long_opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:vh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fopt = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			explain_usage(stdout);
			return EXPLAIN_MATCH;
		default:
			explain_usage(stderr);
			return EXPLAIN_USAGE;
		}
	}
	if (argc - optind != 2) {
		explain_usage(stderr);
		return EXPLAIN_USAGE;
	}
	if (strcmp(argv[optind], "connect") == 0) {
		dir = POLICY_CONNECT;
	} else if (strcmp(argv[optind], "accept") == 0) {
		dir = POLICY_ACCEPT;
	} else {
		fprintf(stderr, "%s explain: connect or accept, not %s\n",
		    LAUNCHER_PROG, argv[optind]);
		return EXPLAIN_USAGE;
	}
	if (parse_addrport(argv[optind + 1], &ss, &len) != 0) {
		fprintf(stderr, "%s explain: %s: expected ADDR:PORT with a "
		    "numeric address (10.0.0.5:5432, [fd00::5]:443)\n",
		    LAUNCHER_PROG, argv[optind + 1]);
		return EXPLAIN_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "%s: libsodium failed to initialise\n",
		    LAUNCHER_PROG);
		return EXPLAIN_USAGE;
	}
	path = launcher_policy_path(fopt);
	if (policy_load(path, &p, err) != 0) {
		fprintf(stderr, "%s\n", err);
		return EXPLAIN_USAGE;
	}
	rc = explain(p, path, dir, (struct sockaddr *)&ss, len,
	    argv[optind + 1], verbose);
	policy_free(p);
	return rc;
}
