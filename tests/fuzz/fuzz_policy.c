/*
 * fuzz_policy: the policy parser and matcher.  The input is a policy file;
 * it is parsed as policy_load() does (line by line, a NUL byte refused)
 * but from the buffer, then finished (key files read), matched against a
 * set of addresses, and every rule's ADDR:PORTS is printed and parsed back.
 *
 * Key files: the policy file "is" FUZZDIR/fuzz.policy, and FUZZDIR holds
 * the keys the seeds name (keys/db.key, ${SOCKSEAL_KEYDIR}/web.key, ...).
 * keyfile_read() and policy_slurp() (include) are wrapped
 * (-Wl,--wrap=..., see the Makefile) so that a fuzzed path outside FUZZDIR
 * is never opened: a fuzzer running as root must not open devices.  The
 * directory's fleet.inc holds a key line, so an include is a real one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "keyfile.h"
#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __real_keyfile_read(const char *path, uint8_t key[KEYFILE_KEYLEN],
    char *err, size_t errlen);
int __wrap_keyfile_read(const char *path, uint8_t key[KEYFILE_KEYLEN],
    char *err, size_t errlen);
int __real_policy_slurp(const char *path, char **out, size_t *outlen);
int __wrap_policy_slurp(const char *path, char **out, size_t *outlen);

static char dir[] = "/tmp/fuzz_policy.XXXXXX";
static char file[sizeof(dir) + 16];

/* Key files the seeds name, relative to DIR; bytes 0..31 (public). */
static const char *const keyfiles[] = {
	"keys/db.key", "keys/db-old.key", "keys/fixture.key", "web.key",
	"k.key", "id.key", "peer.pub",
};
/* An include the seeds name. */
#define FLEET "fleet.inc"
#define FLEET_TEXT "peer fleet1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" \
    "key fk k.key\n"
#define K0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"

/* Outside DIR: never opened. */
static bool
outside(const char *path)
{
	size_t dl = strlen(dir);

	return strncmp(path, dir, dl) != 0 || path[dl] != '/' ||
	    strstr(path, "/..") != NULL;
}

int
__wrap_keyfile_read(const char *path, uint8_t key[KEYFILE_KEYLEN], char *err,
    size_t errlen)
{
	if (outside(path)) {
		snprintf(err, errlen, "outside the fuzz directory");
		return -ENOENT;
	}
	return __real_keyfile_read(path, key, err, errlen);
}

int
__wrap_policy_slurp(const char *path, char **out, size_t *outlen)
{
	if (outside(path))
		return -ENOENT;
	return __real_policy_slurp(path, out, outlen);
}

static void
cleanup(void)
{
	char path[sizeof(dir) + 32];
	size_t i;

	for (i = 0; i < sizeof(keyfiles) / sizeof(keyfiles[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, keyfiles[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/" FLEET, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/keys", dir);
	rmdir(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[sizeof(dir) + 32];
	size_t i;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		goto fail;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/keys", dir);
	if (mkdir(path, 0700) < 0)
		goto fail;
	for (i = 0; i < sizeof(keyfiles) / sizeof(keyfiles[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, keyfiles[i]);
		if ((f = fopen(path, "w")) == NULL)
			goto fail;
		fputs(K0_B64, f);
		if (fclose(f) != 0)
			goto fail;
	}
	snprintf(path, sizeof(path), "%s/" FLEET, dir);
	if ((f = fopen(path, "w")) == NULL)
		goto fail;
	fputs(FLEET_TEXT, f);
	if (fclose(f) != 0)
		goto fail;
	setenv("SOCKSEAL_KEYDIR", dir, 1);
	snprintf(file, sizeof(file), "%s/fuzz.policy", dir);
	return 0;
fail:
	perror("fuzz_policy: setup");
	exit(1);
}

/* An error message starts with "FILE:LINE: " (the policy, or a file it
 * included: all are in DIR) and fits its buffer. */
static void
check_err(const char *err, int rc)
{
	FZ_ASSERT(rc < 0);
	FZ_ASSERT(memchr(err, '\0', POLICY_ERRLEN) != NULL);
	FZ_ASSERT(strncmp(err, dir, strlen(dir)) == 0);
	FZ_ASSERT(strncmp(err, file, strlen(file)) == 0 ?
	    err[strlen(file)] == ':' : strchr(err, ':') != NULL);
}

/* R's ADDR:PORTS, printed and parsed back, is R's. */
static void
check_format(const struct policy_rule *r)
{
	char buf[POLICY_ADDRPORTSLEN], line[POLICY_ADDRPORTSLEN + 32];
	char err[POLICY_ERRLEN];
	const struct policy_rule *b;
	struct policy *p;

	policy_format_addrports(r, buf);
	FZ_ASSERT(memchr(buf, '\0', sizeof(buf)) != NULL);
	snprintf(line, sizeof(line), "%s %s plain", policy_dir_name(r->dir),
	    buf);
	FZ_ASSERT((p = policy_parse_init(file)) != NULL);
	if (policy_parse_line(p, line, 1, err) != 0) {
		fprintf(stderr, "`%s': %s\n", line, err);
		abort();
	}
	FZ_ASSERT(policy_parse_finish(p, err) == 0);
	FZ_ASSERT(policy_nrules(p) == 1);
	b = policy_rule_at(p, 0);
	FZ_ASSERT(b->dir == r->dir && b->family == r->family);
	FZ_ASSERT(b->prefix == r->prefix);
	FZ_ASSERT(memcmp(b->addr, r->addr, r->family == AF_INET6 ? 16 :
	    r->family == AF_INET ? 4 : 0) == 0);
	FZ_ASSERT(b->port_lo == r->port_lo && b->port_hi == r->port_hi);
	FZ_ASSERT(r->port_lo <= r->port_hi);
	FZ_ASSERT(r->plain == (r->nkeys == 0 && r->nids == 0));
	/* identities: a connect rule reaches one peer, an accept rule
	 * admits a list; neither without identity= */
	FZ_ASSERT(r->nids == 0 ? r->peer == NULL && r->npeers == 0 :
	    r->dir == POLICY_CONNECT ? r->peer != NULL && r->npeers == 0 &&
	    r->nids == 1 : r->peer == NULL && r->npeers > 0);
	policy_free(p);
	(void)policy_cipher_name(r->cipher);
}

/* Whatever matches SA (port PORT) is a rule for D covering PORT. */
static void
check_match1(const struct policy *p, int d, const void *sa, socklen_t len,
    uint16_t port, bool finished)
{
	const struct policy_rule *r;

	r = policy_match(p, d, sa, len);
	FZ_ASSERT(r == NULL || (finished && (int)r->dir == d &&
	    r->port_lo <= port && port <= r->port_hi));
}

static void
check_match(const struct policy *p, bool finished)
{
	static const char *const v4[] = { "10.1.2.3", "127.0.0.1", "0.0.0.0",
	    "192.168.7.10", "255.255.255.255" };
	static const char *const v6[] = { "::1", "fd00::5", "::ffff:10.1.2.3",
	    "2001:db8::1", "::" };
	static const uint16_t ports[] = { 0, 22, 443, 5432, 9100, 65535 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	size_t i, j;
	int d;

	for (d = POLICY_CONNECT; d <= POLICY_ACCEPT; d++) {
		for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
			sin.sin_port = sin6.sin6_port = htons(ports[i]);
			for (j = 0; j < 5; j++) {
				inet_pton(AF_INET, v4[j], &sin.sin_addr);
				inet_pton(AF_INET6, v6[j], &sin6.sin6_addr);
				check_match1(p, d, &sin, sizeof(sin), ports[i],
				    finished);
				check_match1(p, d, &sin6, sizeof(sin6), ports[i],
				    finished);
			}
		}
		/* Too short, or not an internet address: no match. */
		FZ_ASSERT(policy_match(p, d, (struct sockaddr *)&sin, 4) == NULL);
		sin6.sin6_family = AF_UNIX;
		FZ_ASSERT(policy_match(p, d, (struct sockaddr *)&sin6,
		    sizeof(sin6)) == NULL);
		sin6.sin6_family = AF_INET6;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[POLICY_ERRLEN], *line;
	const uint8_t *nl;
	struct policy *p;
	size_t off = 0, len, i;
	int lineno = 0, rc = 0;

	if ((p = policy_parse_init(file)) == NULL)
		return 0;
	/* policy_load(): lines with their newline, a NUL byte refused. */
	while (off < size && rc == 0) {
		nl = memchr(data + off, '\n', size - off);
		len = nl != NULL ? (size_t)(nl - (data + off)) + 1 : size - off;
		lineno++;
		if (memchr(data + off, '\0', len) != NULL)
			break;
		if ((line = malloc(len + 1)) == NULL)
			break;
		memcpy(line, data + off, len);
		line[len] = '\0';
		memset(err, 0xa5, sizeof(err));
		if ((rc = policy_parse_line(p, line, lineno, err)) != 0)
			check_err(err, rc);
		free(line);
		off += len;
	}
	if (off == size && rc == 0) {
		memset(err, 0xa5, sizeof(err));
		if ((rc = policy_parse_finish(p, err)) != 0)
			check_err(err, rc);
	}
	/* Only a finished policy matches anything. */
	check_match(p, off == size && rc == 0);
	if (off == size && rc == 0) {
		for (i = 0; i < policy_nrules(p); i++)
			check_format(policy_rule_at(p, i));
		for (i = 0; i < policy_nkeys(p); i++)
			FZ_ASSERT(policy_key_at(p, i)->resolved != NULL);
	}
	policy_free(p);
	return 0;
}
