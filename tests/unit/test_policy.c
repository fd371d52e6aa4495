/*
 * test_policy: the policy parser and matcher.  Keys are created at test time
 * in a mkdtemp directory; tests/fixtures/policy/ holds a policy with a
 * relative key path, and policy/example.policy is checked to parse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "keyfile.h"
#include "policy.h"

static char dir[] = "/tmp/test_policy.XXXXXX";
static char polpath[PATH_MAX];		/* dir/p.policy */

#include "policy_fixture.h"

static char root[PATH_MAX];		/* the source tree */
static uint8_t key_a[KEYFILE_KEYLEN], key_b[KEYFILE_KEYLEN];

#define KEYS "key a a.key\nkey b b.key\n"


static const struct policy_rule *
match4(const struct policy *p, enum policy_dir d, const char *a, int port)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, a, &s.sin_addr) != 1)
		abort();
	return policy_match(p, d, (struct sockaddr *)&s, sizeof(s));
}

static const struct policy_rule *
match6(const struct policy *p, enum policy_dir d, const char *a, int port)
{
	struct sockaddr_in6 s;

	memset(&s, 0, sizeof(s));
	s.sin6_family = AF_INET6;
	s.sin6_port = htons((uint16_t)port);
	if (inet_pton(AF_INET6, a, &s.sin6_addr) != 1)
		abort();
	return policy_match(p, d, (struct sockaddr *)&s, sizeof(s));
}

/* The line of the rule matched, or 0 for none. */
static int
line4(const struct policy *p, enum policy_dir d, const char *a, int port)
{
	const struct policy_rule *r = match4(p, d, a, port);

	return r ? r->line : 0;
}

static int
line6(const struct policy *p, enum policy_dir d, const char *a, int port)
{
	const struct policy_rule *r = match6(p, d, a, port);

	return r ? r->line : 0;
}

static void
test_syntax(void)
{
	const struct policy_rule *r;
	const struct policy_key *k;
	char ap[POLICY_ADDRPORTSLEN];
	struct policy *p;

	p = load_ok(
	    "# every form\n"					/* 1 */
	    "key a a.key\n"					/* 2 */
	    "key b " "b.key   # trailing comment\n"		/* 3 */
	    "\n"						/* 4 */
	    "connect 10.0.0.0/8:5432 key=a\n"			/* 5 */
	    "connect 10.1.2.3:1000-2000 key=a,b cipher=aesgcm timeout=2500\n"
	    "accept [fd00::]/8:* key=b,a cipher=chachapoly mode=permissive\n"
	    "accept [::1]:443 key=a mode=strict timeout=1\n"	/* 8 */
	    "connect *:* plain\n"				/* 9 */
	    "accept *:22 plain\n"				/* 10 */
	    "connect [::ffff:192.168.0.0]/112:80 key=a timeout=3600000\n"
	    "connect 0.0.0.0/0:65535 key=b\n");			/* 12 */

	CHECK_INT_EQ(policy_nkeys(p), 2);
	k = policy_key_at(p, 0);
	CHECK(strcmp(k->name, "a") == 0 && strcmp(k->path, "a.key") == 0);
	CHECK_INT_EQ(k->line, 2);
	CHECK_MEM_EQ(k->key, key_a, KEYFILE_KEYLEN);
	k = policy_key_at(p, 1);
	CHECK(strcmp(k->name, "b") == 0);
	CHECK_MEM_EQ(k->key, key_b, KEYFILE_KEYLEN);
	CHECK(policy_key_at(p, 2) == NULL);

	CHECK_INT_EQ(policy_nrules(p), 8);
	CHECK(policy_rule_at(p, 8) == NULL);

	r = policy_rule_at(p, 0);
	CHECK_INT_EQ(r->dir, POLICY_CONNECT);
	CHECK_INT_EQ(r->family, AF_INET);
	CHECK_INT_EQ(r->prefix, 8);
	CHECK_MEM_EQ(r->addr, "\x0a\0\0\0", 4);
	CHECK_INT_EQ(r->port_lo, 5432);
	CHECK_INT_EQ(r->port_hi, 5432);
	CHECK(!r->plain);
	CHECK_INT_EQ(r->nkeys, 1);
	CHECK(r->keys[0] == policy_key_at(p, 0));
	CHECK_INT_EQ(r->cipher, POLICY_CIPHER_DEFAULT);
	CHECK_INT_EQ(r->mode, POLICY_STRICT);
	CHECK_INT_EQ(r->timeout_ms, POLICY_TIMEOUT_DEF);
	CHECK(strcmp(r->file, polpath) == 0);
	CHECK_INT_EQ(r->line, 5);
	CHECK(strcmp(policy_format_addrports(r, ap), "10.0.0.0/8:5432") == 0);

	r = policy_rule_at(p, 1);
	CHECK_INT_EQ(r->prefix, 32);
	CHECK_MEM_EQ(r->addr, "\x0a\x01\x02\x03", 4);
	CHECK_INT_EQ(r->port_lo, 1000);
	CHECK_INT_EQ(r->port_hi, 2000);
	CHECK_INT_EQ(r->nkeys, 2);
	CHECK(strcmp(r->keys[0]->name, "a") == 0);
	CHECK(strcmp(r->keys[1]->name, "b") == 0);
	CHECK_INT_EQ(r->cipher, POLICY_CIPHER_AESGCM);
	CHECK_INT_EQ(r->timeout_ms, 2500);
	CHECK(strcmp(policy_format_addrports(r, ap), "10.1.2.3:1000-2000") == 0);

	r = policy_rule_at(p, 2);
	CHECK_INT_EQ(r->dir, POLICY_ACCEPT);
	CHECK_INT_EQ(r->family, AF_INET6);
	CHECK_INT_EQ(r->prefix, 8);
	CHECK(r->addr[0] == 0xfd && r->addr[1] == 0);
	CHECK_INT_EQ(r->port_lo, 0);
	CHECK_INT_EQ(r->port_hi, 65535);
	CHECK(strcmp(r->keys[0]->name, "b") == 0);	/* order kept */
	CHECK_INT_EQ(r->cipher, POLICY_CIPHER_CHACHAPOLY);
	CHECK_INT_EQ(r->mode, POLICY_PERMISSIVE);
	CHECK(strcmp(policy_format_addrports(r, ap), "[fd00::]/8:*") == 0);

	r = policy_rule_at(p, 3);
	CHECK_INT_EQ(r->prefix, 128);
	CHECK_INT_EQ(r->mode, POLICY_STRICT);
	CHECK_INT_EQ(r->timeout_ms, 1);
	CHECK(strcmp(policy_format_addrports(r, ap), "[::1]:443") == 0);

	r = policy_rule_at(p, 4);
	CHECK(r->plain);
	CHECK_INT_EQ(r->nkeys, 0);
	CHECK_INT_EQ(r->family, 0);
	CHECK_INT_EQ(r->port_lo, 0);
	CHECK_INT_EQ(r->port_hi, 65535);
	CHECK(strcmp(policy_format_addrports(r, ap), "*:*") == 0);

	r = policy_rule_at(p, 5);
	CHECK(r->plain);
	CHECK_INT_EQ(r->dir, POLICY_ACCEPT);
	CHECK_INT_EQ(r->port_lo, 22);

	/* An IPv4-mapped IPv6 rule is the IPv4 rule it stands for. */
	r = policy_rule_at(p, 6);
	CHECK_INT_EQ(r->family, AF_INET);
	CHECK_INT_EQ(r->prefix, 16);
	CHECK_MEM_EQ(r->addr, "\xc0\xa8\0\0", 4);
	CHECK_INT_EQ(r->timeout_ms, 3600000);

	r = policy_rule_at(p, 7);
	CHECK_INT_EQ(r->prefix, 0);
	CHECK_INT_EQ(r->port_lo, 65535);
	policy_free(p);

	/* Whitespace of every kind, CRLF, no final newline, keys defined
	 * after the rules that use them. */
	p = load_ok("\t \n"
	    "   # indented comment\r\n"
	    "\tconnect\t\t10.0.0.1:1  \t key=a\tcipher=aesgcm \r\n"
	    "accept\v[::]/0:2\fkey=b#comment right after\n"
	    "  key   a   a.key  \r\n"
	    "key b b.key#comment");
	CHECK_INT_EQ(policy_nrules(p), 2);
	CHECK_INT_EQ(policy_nkeys(p), 2);
	r = policy_rule_at(p, 0);
	CHECK_INT_EQ(r->line, 3);
	CHECK_INT_EQ(r->cipher, POLICY_CIPHER_AESGCM);
	CHECK_MEM_EQ(r->keys[0]->key, key_a, KEYFILE_KEYLEN);
	r = policy_rule_at(p, 1);
	CHECK_INT_EQ(r->line, 4);
	CHECK_MEM_EQ(r->keys[0]->key, key_b, KEYFILE_KEYLEN);
	policy_free(p);

	/* Empty and comment-only policies are valid and match nothing. */
	p = load_ok("");
	CHECK_INT_EQ(policy_nrules(p), 0);
	CHECK(match4(p, POLICY_CONNECT, "10.0.0.1", 1) == NULL);
	policy_free(p);
	p = load_ok("# nothing\n\n   \n");
	CHECK_INT_EQ(policy_nrules(p), 0);
	policy_free(p);

	/* Unused keys are read (and so validated) too. */
	p = load_ok("key a a.key\n");
	CHECK_INT_EQ(policy_nkeys(p), 1);
	CHECK_MEM_EQ(policy_key_at(p, 0)->key, key_a, KEYFILE_KEYLEN);
	policy_free(p);

	CHECK(strcmp(policy_dir_name(POLICY_CONNECT), "connect") == 0);
	CHECK(strcmp(policy_dir_name(POLICY_ACCEPT), "accept") == 0);
	CHECK(strcmp(policy_cipher_name(POLICY_CIPHER_CHACHAPOLY),
	    "chachapoly") == 0);
	CHECK(strcmp(policy_cipher_name(POLICY_CIPHER_AESGCM), "aesgcm") == 0);
	CHECK(strcmp(policy_cipher_name(POLICY_CIPHER_DEFAULT), "default") == 0);
}

static void
test_errors(void)
{
	char err[POLICY_ERRLEN], path[PATH_MAX + 16];
	struct policy *p = NULL;

	/* Statements. */
	FAILS("\n\nlisten *:1 key=a\n", 3, "unknown statement `listen'");
	FAILS("Connect *:1 key=a\n", 1, "unknown statement");
	FAILS("key\n", 1, "missing NAME");
	FAILS("\nkey a\n", 2, "missing PATH");
	FAILS("key a a.key extra\n", 1, "unexpected `extra'");
	FAILS("key a,b a.key\n", 1, "bad name");
	FAILS("key a=b a.key\n", 1, "bad name");
	FAILS(KEYS "# x\nkey a b.key\n", 4, "duplicate key `a' (first defined "
	    "at line 1)");

	/* ADDR:PORTS. */
	FAILS(KEYS "connect\n", 3, "missing ADDR:PORTS");
	FAILS(KEYS "connect   # only a comment\n", 3, "missing ADDR:PORTS");
	FAILS(KEYS "connect 10.0.0.1 key=a\n", 3, "expected ADDR:PORTS");
	FAILS(KEYS "connect 10.0.0.1: key=a\n", 3, "missing PORTS");
	FAILS(KEYS "connect key=a\n", 3, "expected ADDR:PORTS");
	FAILS(KEYS "connect ::1:80 key=a\n", 3, "must be in brackets");
	FAILS(KEYS "connect 256.0.0.1:80 key=a\n", 3, "bad address `256.0.0.1'");
	FAILS(KEYS "connect 10.0.0:80 key=a\n", 3, "bad address");
	FAILS(KEYS "connect db.example.com:80 key=a\n", 3, "bad address");
	FAILS(KEYS "connect 10.0.0.0/33:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect 10.0.0.0/:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect 10.0.0.0/-1:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect 10.0.0.0/8x:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect 10.1.0.0/8:80 key=a\n", 3, "bits set beyond its /8");
	FAILS(KEYS "connect 10.0.0.1/31:80 key=a\n", 3, "bits set beyond");
	FAILS(KEYS "connect [::1:80 key=a\n", 3, "missing `]'");
	FAILS(KEYS "connect [::1] key=a\n", 3, "missing :PORTS");
	FAILS(KEYS "connect [::1]/64 key=a\n", 3, "missing :PORTS");
	FAILS(KEYS "connect [::g]:80 key=a\n", 3, "bad IPv6 address `::g'");
	FAILS(KEYS "connect [10.0.0.1]:80 key=a\n", 3, "bad IPv6 address");
	FAILS(KEYS "connect [fd00::]/129:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect [fd00::]8:80 key=a\n", 3, "bad prefix length");
	FAILS(KEYS "connect [fd00::1]/8:80 key=a\n", 3, "bits set beyond its /8");
	FAILS(KEYS "connect [fe80::1%eth0]:80 key=a\n", 3, "bad IPv6 address");
	FAILS(KEYS "connect */8:80 key=a\n", 3, "bad address");
	FAILS(KEYS "connect 10.0.0.1:0 key=a\n", 3, "bad port `0'");
	FAILS(KEYS "connect 10.0.0.1:65536 key=a\n", 3, "bad port `65536'");
	FAILS(KEYS "connect 10.0.0.1:99999999999 key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:http key=a\n", 3, "bad port `http'");
	FAILS(KEYS "connect 10.0.0.1:+80 key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:80- key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:-80 key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:0-80 key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:1-2-3 key=a\n", 3, "bad port");
	FAILS(KEYS "connect 10.0.0.1:2000-1000 key=a\n", 3, "port range "
	    "`2000-1000' is reversed");
	FAILS(KEYS "connect *:** key=a\n", 3, "bad port");

	/* Options. */
	FAILS(KEYS "connect *:1\n", 3, "connect rule needs key=NAME or identity=NAME (or plain)");
	FAILS(KEYS "accept *:1 cipher=aesgcm\n", 3, "accept rule needs key=NAME");
	FAILS(KEYS "connect *:1 key=\n", 3, "key= needs a key name");
	FAILS(KEYS "connect *:1 key=a,\n", 3, "bad key name `'");
	FAILS(KEYS "connect *:1 key=a,,b\n", 3, "bad key name");
	FAILS(KEYS "connect *:1 key=a,a\n", 3, "key `a' listed twice");
	FAILS(KEYS "connect *:1 key=a key=b\n", 3, "key= given twice");
	FAILS(KEYS "connect *:1 key=a,b,c,d,e,f,g,h,i\n", 3, "too many keys");
	FAILS(KEYS "connect *:1 key=a cipher=aes\n", 3, "unknown cipher `aes'");
	FAILS(KEYS "connect *:1 key=a cipher=\n", 3, "unknown cipher");
	FAILS(KEYS "connect *:1 key=a cipher=aesgcm cipher=aesgcm\n", 3,
	    "cipher= given twice");
	FAILS(KEYS "connect *:1 key=a mode=strict\n", 3, "mode= is only allowed "
	    "on accept rules");
	FAILS(KEYS "accept *:1 key=a mode=lax\n", 3, "unknown mode `lax'");
	FAILS(KEYS "accept *:1 key=a mode=strict mode=strict\n", 3,
	    "mode= given twice");
	FAILS(KEYS "connect *:1 key=a timeout=0\n", 3, "bad timeout `0'");
	FAILS(KEYS "connect *:1 key=a timeout=3600001\n", 3, "bad timeout");
	FAILS(KEYS "connect *:1 key=a timeout=10s\n", 3, "bad timeout `10s'");
	FAILS(KEYS "connect *:1 key=a timeout=-5\n", 3, "bad timeout");
	FAILS(KEYS "connect *:1 key=a timeout=\n", 3, "bad timeout");
	FAILS(KEYS "connect *:1 key=a timeout=99999999999999999999\n", 3,
	    "bad timeout");
	FAILS(KEYS "connect *:1 key=a foo=bar\n", 3, "unknown option `foo='");
	FAILS(KEYS "connect *:1 key=a strict\n", 3, "unexpected `strict'");
	FAILS(KEYS "connect *:1 key=a KEY=b\n", 3, "unknown option `KEY='");
	FAILS(KEYS "connect *:1 plain key=a\n", 3, "plain cannot be combined");
	FAILS(KEYS "connect *:1 key=a plain\n", 3, "plain cannot be combined");
	FAILS(KEYS "connect *:1 plain cipher=aesgcm\n", 3, "plain cannot be "
	    "combined");
	FAILS(KEYS "accept *:1 plain mode=permissive\n", 3, "plain cannot be "
	    "combined");
	FAILS(KEYS "accept *:1 plain timeout=5\n", 3, "plain cannot be combined");
	FAILS(KEYS "accept *:1 plain plain\n", 3, "plain given twice");
	FAILS(KEYS "connect *:1 plains\n", 3, "unexpected `plains'");

	/* Cross-references and key files, at finish: at the right line. */
	FAILS(KEYS "connect *:1 key=a\n\nconnect *:2 key=a,zz\n", 5,
	    "undefined key `zz'");
	FAILS("connect *:1 key=a\nkey b b.key\n", 1, "undefined key `a'");
	snprintf(path, sizeof(path), "%s/missing.key", dir);
	CHECK(fails(KEYS "key m missing.key\n", -ENOENT, 3, path));
	CHECK(fails(KEYS "key m missing.key\n", -ENOENT, 3, strerror(ENOENT)));
	CHECK(fails(KEYS "\nkey g garbage.key\n", -EINVAL, 4,
	    "key g: "));
	CHECK(fails(KEYS "\nkey g garbage.key\n", -EINVAL, 4,
	    "not a base64 32-byte key"));
	CHECK(fails("key d .\n", -EISDIR, 1, "key d: "));
	unsetenv("SOCKSEAL_TEST_UNSET");
	FAILS(KEYS "key e ${SOCKSEAL_TEST_UNSET}/a.key\n", 3,
	    "environment variable SOCKSEAL_TEST_UNSET is not set");
	FAILS("key e ${HOME\n", 1, "unterminated ${");
	FAILS("key e ${}/a.key\n", 1, "bad variable name");
	setenv("SOCKSEAL_TEST_EMPTY", "", 1);
	FAILS("key e ${SOCKSEAL_TEST_EMPTY}\n", 1, "empty after expansion");

	/* The policy file itself. */
	snprintf(path, sizeof(path), "%s/nonexistent.policy", dir);
	CHECK_INT_EQ(policy_load(path, &p, err), -ENOENT);
	CHECK(p == NULL);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	CHECK(strstr(err, ": No such file or directory") != NULL);
	CHECK_INT_EQ(policy_load(dir, &p, err), -EISDIR);
	CHECK(p == NULL);

	/* A NUL byte in a line is refused rather than cutting the line. */
	{
		FILE *f = fopen(polpath, "w");

		CHECK(f != NULL);
		fputs(KEYS, f);
		fwrite("connect *:1 key=a\0 plain\n", 1, 25, f);
		fclose(f);
		CHECK(policy_load(polpath, &p, err) == -EINVAL);
		CHECK(strstr(err, ":3: NUL byte") != NULL);
	}

	/*
	 * The file is read whole (read(2), not stdio): a policy read in many
	 * pieces parses as one, and one beyond 16 MiB is refused outright.
	 */
	{
		FILE *f = fopen(polpath, "w");
		size_t i;

		CHECK(f != NULL);
		fputs(KEYS, f);
		for (i = 0; i < 2000; i++)	/* about 60 KiB of comments */
			fputs("# a comment line to make the file long\n", f);
		fputs("connect 10.0.0.0/8:1 key=a\n", f);
		fputs("accept *:2 key=b", f);	/* no final newline */
		fclose(f);
		CHECK_INT_EQ(policy_load(polpath, &p, err), 0);
		if (p != NULL) {
			CHECK(policy_nrules(p) == 2);
			CHECK(policy_rule_at(p, 0) != NULL &&
			    policy_rule_at(p, 0)->line == 2003);
			CHECK(policy_rule_at(p, 1) != NULL &&
			    policy_rule_at(p, 1)->line == 2004);
			policy_free(p);
			p = NULL;
		}
		CHECK((f = fopen(polpath, "w")) != NULL);
		fputs(KEYS, f);
		CHECK(fseek(f, 16L << 20, SEEK_SET) == 0);
		fputs("\n", f);
		fclose(f);
		CHECK_INT_EQ(policy_load(polpath, &p, err), -EFBIG);
		CHECK(p == NULL);
		CHECK(strstr(err, "File too large") != NULL);
	}
}

/* The line API directly: errors name the file given to init. */
static void
test_line_api(void)
{
	char err[POLICY_ERRLEN], line[PATH_MAX + 32];
	struct sockaddr_in s4;
	struct policy *p;

	CHECK((p = policy_parse_init("mem.policy")) != NULL);
	snprintf(line, sizeof(line), "key a %s/a.key\n", dir);
	CHECK_INT_EQ(policy_parse_line(p, line, 1, err), 0);
	CHECK_INT_EQ(policy_parse_line(p, "connect *:7 key=a", 2, err), 0);
	CHECK_INT_EQ(policy_parse_line(p, "connect *:8 key=q", 3, err), 0);
	CHECK_INT_EQ(policy_parse_line(p, "bogus", 42, err), -EINVAL);
	CHECK(strcmp(err, "mem.policy:42: unknown statement `bogus' (expected "
	    "key, identity, peer, include, connect or accept)") == 0);

	/* Not finished: nothing matches yet. */
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(7);
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s4,
	    sizeof(s4)) == NULL);
	CHECK_INT_EQ(policy_parse_finish(p, err), -EINVAL);
	CHECK(strcmp(err, "mem.policy:3: undefined key `q'") == 0);
	policy_free(p);

	CHECK((p = policy_parse_init("mem.policy")) != NULL);
	CHECK_INT_EQ(policy_parse_line(p, line, 1, err), 0);
	CHECK_INT_EQ(policy_parse_line(p, "connect *:7 key=a", 2, err), 0);
	CHECK_INT_EQ(policy_parse_finish(p, err), 0);
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s4,
	    sizeof(s4)) == policy_rule_at(p, 0));
	policy_free(p);
	policy_free(NULL);
}

static void
test_match(void)
{
	const struct policy_rule *r;
	struct sockaddr_un su;
	struct sockaddr_in s4;
	struct policy *p;

	p = load_ok(KEYS
	    "connect 10.1.2.3:5432 plain\n"			/* 3 */
	    "connect 10.0.0.0/8:5432 key=a\n"			/* 4 */
	    "connect 10.0.0.0/8:5000-5999 key=b\n"		/* 5 */
	    "connect 192.168.1.64/26:80 key=a\n"		/* 6 */
	    "connect 172.16.0.1/32:80 key=a\n"			/* 7 */
	    "connect [fd00::]/8:443 key=a\n"			/* 8 */
	    "connect [2001:db8::1]:443 key=a\n"		/* 9 */
	    "connect [2001:db8:1::]/127:443 key=a\n"		/* 10 */
	    "connect 0.0.0.0/0:9999 key=a\n"			/* 11 */
	    "connect [::]/0:9999 key=b\n"			/* 12 */
	    "connect *:7777 key=a\n"				/* 13 */
	    "accept 10.0.0.0/8:5432 key=b mode=permissive\n"	/* 14 */
	    "accept *:1-1024 key=a\n");				/* 15 */

	/* First match wins: the plain exemption shadows the /8 rule. */
	r = match4(p, POLICY_CONNECT, "10.1.2.3", 5432);
	CHECK(r != NULL && r->plain && r->line == 3);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.1.2.4", 5432), 4);
	/* ...and the 5432 rule shadows the range rule for 5432. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.9.9.9", 5431), 5);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.9.9.9", 5433), 5);

	/* /8 boundaries. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.0", 5432), 4);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.255.255.255", 5432), 4);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "9.255.255.255", 5432), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "11.0.0.0", 5432), 0);
	/* Port range boundaries. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.1", 5000), 5);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.1", 5999), 5);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.1", 4999), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.1", 6000), 0);
	/* A prefix that is not a multiple of 8: .64 to .127. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "192.168.1.63", 80), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "192.168.1.64", 80), 6);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "192.168.1.127", 80), 6);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "192.168.1.128", 80), 0);
	/* /32 */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "172.16.0.1", 80), 7);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "172.16.0.0", 80), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "172.16.0.2", 80), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "172.16.0.1", 81), 0);

	/* IPv6 CIDR and /128. */
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "fd00::", 443), 8);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "fdff:ffff::1", 443), 8);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "fc00::1", 443), 0);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "fe00::", 443), 0);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2001:db8::1", 443), 9);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2001:db8::2", 443), 0);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2001:db8:1::", 443), 10);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2001:db8:1::1", 443), 10);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2001:db8:1::2", 443), 0);

	/* /0 matches all of its family, and only its family. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "0.0.0.0", 9999), 11);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "255.255.255.255", 9999), 11);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::", 9999), 12);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "ffff::ffff", 9999), 12);
	/* IPv4-mapped addresses are IPv4: they match IPv4 rules, not [::]/0. */
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:1.2.3.4", 9999), 11);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:10.1.2.3", 5432), 3);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:10.1.2.4", 5432), 4);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:192.168.1.64", 80), 6);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:11.0.0.0", 5432), 0);
	/* ...but IPv4-compatible (::a.b.c.d) and NAT64 addresses are not. */
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::10.1.2.4", 5432), 0);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "64:ff9b::10.1.2.4", 5432), 0);

	/* `*` matches both families. */
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "8.8.8.8", 7777), 13);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "2a00::1", 7777), 13);
	CHECK_INT_EQ(line6(p, POLICY_CONNECT, "::ffff:8.8.8.8", 7777), 13);

	/* accept and connect rules are separate. */
	r = match4(p, POLICY_ACCEPT, "10.1.2.3", 5432);
	CHECK(r != NULL && r->line == 14 && r->dir == POLICY_ACCEPT);
	CHECK(r != NULL && r->mode == POLICY_PERMISSIVE);
	CHECK_INT_EQ(line4(p, POLICY_ACCEPT, "10.1.2.3", 5433), 0);
	CHECK_INT_EQ(line4(p, POLICY_ACCEPT, "10.1.2.3", 80), 15);
	CHECK_INT_EQ(line6(p, POLICY_ACCEPT, "::1", 1), 15);
	CHECK_INT_EQ(line6(p, POLICY_ACCEPT, "::1", 1024), 15);
	CHECK_INT_EQ(line6(p, POLICY_ACCEPT, "::1", 1025), 0);
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.1.2.3", 80), 0);
	CHECK_INT_EQ(line4(p, POLICY_ACCEPT, "8.8.8.8", 7777), 0);

	/* Other families, short addresses, NULL: no match. */
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&su,
	    sizeof(su)) == NULL);
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = htons(7777);
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s4,
	    sizeof(s4)) != NULL);
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s4,
	    sizeof(s4) - 1) == NULL);
	CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s4, 0) == NULL);
	CHECK(policy_match(p, POLICY_CONNECT, NULL, sizeof(s4)) == NULL);
	/* A sockaddr_in6 of 24 to 27 bytes (no scope id) is one the kernel
	 * connects to, so it matches; 23 is refused by both. */
	{
		struct sockaddr_in6 s6;
		socklen_t l6;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons(7777);
		s6.sin6_addr.s6_addr[15] = 1;
		s6.sin6_scope_id = 0xffffffff;   /* beyond the short lengths */
		for (l6 = 24; l6 <= sizeof(s6); l6++)
			CHECK(policy_match(p, POLICY_CONNECT,
			    (struct sockaddr *)&s6, l6) != NULL);
		CHECK(policy_match(p, POLICY_CONNECT, (struct sockaddr *)&s6,
		    23) == NULL);
	}
	CHECK(policy_match(NULL, POLICY_CONNECT, (struct sockaddr *)&s4,
	    sizeof(s4)) == NULL);
	policy_free(p);

	/* With no rule for a direction, nothing matches in it. */
	p = load_ok(KEYS "accept *:* key=a\n");
	CHECK_INT_EQ(line4(p, POLICY_CONNECT, "1.2.3.4", 1), 0);
	CHECK_INT_EQ(line4(p, POLICY_ACCEPT, "1.2.3.4", 1), 3);
	CHECK_INT_EQ(line4(p, POLICY_ACCEPT, "1.2.3.4", 65535), 3);
	policy_free(p);
}

static void
test_paths(void)
{
	char err[POLICY_ERRLEN], fx[PATH_MAX + 64], cwd[PATH_MAX], sub[PATH_MAX + 8];
	struct policy *p;
	uint8_t k0[KEYFILE_KEYLEN];
	int i;

	for (i = 0; i < KEYFILE_KEYLEN; i++)
		k0[i] = (uint8_t)i;

	/* ${VAR} expansion, with absolute and relative results. */
	setenv("SOCKSEAL_TEST_DIR", dir, 1);
	setenv("SOCKSEAL_TEST_SUB", "sub", 1);
	setenv("SOCKSEAL_TEST_NAME", "b", 1);
	p = load_ok("key a ${SOCKSEAL_TEST_DIR}/a.key\n"
	    "key b ${SOCKSEAL_TEST_SUB}/${SOCKSEAL_TEST_NAME}.key\n"
	    "key c sub/$HOME.key\n");		/* `$' without `{' is literal */
	CHECK_MEM_EQ(policy_key_at(p, 0)->key, key_a, KEYFILE_KEYLEN);
	CHECK(strcmp(policy_key_at(p, 0)->path,
	    "${SOCKSEAL_TEST_DIR}/a.key") == 0);
	snprintf(sub, sizeof(sub), "%s/a.key", dir);
	CHECK(strcmp(policy_key_at(p, 0)->resolved, sub) == 0);
	CHECK_MEM_EQ(policy_key_at(p, 1)->key, key_b, KEYFILE_KEYLEN);
	snprintf(sub, sizeof(sub), "%s/sub/b.key", dir);
	CHECK(strcmp(policy_key_at(p, 1)->resolved, sub) == 0);
	CHECK_MEM_EQ(policy_key_at(p, 2)->key, key_a, KEYFILE_KEYLEN);
	policy_free(p);

	/* Relative key paths are relative to the policy, not the cwd: the
	 * fixture, loaded by absolute path from / ... */
	snprintf(fx, sizeof(fx), "%s/tests/fixtures/policy/relative.policy",
	    root);
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT_EQ(chdir("/"), 0);
	CHECK_INT_EQ(policy_load(fx, &p, err), 0);
	if (p != NULL) {
		CHECK_MEM_EQ(policy_key_at(p, 0)->key, k0, KEYFILE_KEYLEN);
		CHECK_INT_EQ(line4(p, POLICY_CONNECT, "10.0.0.1", 5432), 5);
		policy_free(p);
	}
	/* ... and by a relative path from the tree's root. */
	CHECK_INT_EQ(chdir(root), 0);
	CHECK_INT_EQ(policy_load("tests/fixtures/policy/relative.policy", &p,
	    err), 0);
	if (p != NULL) {
		CHECK(strcmp(policy_key_at(p, 0)->resolved,
		    "tests/fixtures/policy/keys/fixture.key") == 0);
		CHECK_MEM_EQ(policy_key_at(p, 0)->key, k0, KEYFILE_KEYLEN);
		policy_free(p);
	}
	CHECK_INT_EQ(chdir(cwd), 0);
}

/* A ${VAR} lookup that knows one variable, for policy_load_env(). */
static const char *
test_env(const char *name, void *ctx)
{
	return strcmp(name, "SOCKSEAL_TEST_ONLY") == 0 ? (const char *)ctx :
	    NULL;
}

/* policy_load_env(): ${VAR} from the caller's lookup, never getenv(). */
static void
test_env_lookup(void)
{
	char err[POLICY_ERRLEN], want[PATH_MAX + 64];
	struct policy *p = NULL;
	FILE *f;

	CHECK((f = fopen(polpath, "w")) != NULL);
	if (f == NULL)
		return;
	fputs("# the lookup, not the environment\n"
	    "key a ${SOCKSEAL_TEST_ONLY}/a.key\n"
	    "key b ${HOME}/b.key\n"
	    "connect *:1 key=a\n", f);
	fclose(f);
	CHECK(getenv("HOME") != NULL);
	CHECK_INT_EQ(policy_load_env(polpath, test_env, dir, &p, err), -EINVAL);
	CHECK(p == NULL);
	snprintf(want, sizeof(want), "%s:3: key b: environment variable HOME "
	    "is not set", polpath);
	CHECK(strcmp(err, want) == 0);

	CHECK((f = fopen(polpath, "w")) != NULL);
	if (f == NULL)
		return;
	fputs("key a ${SOCKSEAL_TEST_ONLY}/a.key\nconnect *:1 key=a\n", f);
	fclose(f);
	unsetenv("SOCKSEAL_TEST_ONLY");
	CHECK_INT_EQ(policy_load_env(polpath, test_env, dir, &p, err), 0);
	if (p != NULL) {
		CHECK_MEM_EQ(policy_key_at(p, 0)->key, key_a, KEYFILE_KEYLEN);
		policy_free(p);
	}
	/* Plain policy_load() uses the environment, where it is unset. */
	CHECK_INT_EQ(policy_load(polpath, &p, err), -EINVAL);
	CHECK(strstr(err, ":1: key a: environment variable SOCKSEAL_TEST_ONLY "
	    "is not set") != NULL);
}

/* policy_equal(): the same decisions, keys and lines, or not. */
static void
test_equal(void)
{
	static const char base[] = KEYS "connect 10.0.0.0/8:5432 key=a,b "
	    "cipher=aesgcm timeout=5\naccept *:80 key=b mode=permissive\n";
	static const char *differ[] = {
		KEYS "connect 10.0.0.0/8:5432 key=b,a cipher=aesgcm timeout=5\n"
		    "accept *:80 key=b mode=permissive\n",
		KEYS "connect 10.0.0.0/8:5432 key=a,b cipher=aesgcm timeout=6\n"
		    "accept *:80 key=b mode=permissive\n",
		KEYS "connect 10.0.0.0/8:5433 key=a,b cipher=aesgcm timeout=5\n"
		    "accept *:80 key=b mode=permissive\n",
		KEYS "connect 10.0.0.0/8:5432 key=a,b cipher=aesgcm timeout=5\n"
		    "accept *:80 key=b\n",
		KEYS "connect 10.0.0.0/8:5432 key=a,b cipher=aesgcm timeout=5\n"
		    "accept *:80 key=a mode=permissive\n",
		/* the same rules one line further down */
		KEYS "\nconnect 10.0.0.0/8:5432 key=a,b cipher=aesgcm "
		    "timeout=5\naccept *:80 key=b mode=permissive\n",
		/* key b now names a file holding key a */
		"key a a.key\nkey b sub/$HOME.key\nconnect 10.0.0.0/8:5432 "
		    "key=a,b cipher=aesgcm timeout=5\naccept *:80 key=b "
		    "mode=permissive\n",
		KEYS "connect 10.0.0.0/8:5432 key=a,b cipher=aesgcm timeout=5\n",
	};
	struct policy *p, *q;
	size_t i;

	p = load_ok(base);
	q = load_ok(base);
	CHECK(policy_equal(p, q));
	policy_free(q);
	/* Another path to the same key bytes is the same policy. */
	q = load_ok("key a a.key\nkey b sub/b.key\nconnect 10.0.0.0/8:5432 "
	    "key=a,b cipher=aesgcm timeout=5\naccept *:80 key=b "
	    "mode=permissive\n");
	CHECK(policy_equal(p, q));
	policy_free(q);
	for (i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		q = load_ok(differ[i]);
		if (policy_equal(p, q) || policy_equal(q, p))
			fprintf(stderr, "  equal but should differ: %s", differ[i]);
		CHECK(!policy_equal(p, q) && !policy_equal(q, p));
		policy_free(q);
	}
	policy_free(p);
}

/* policy/example.policy is valid syntax (its keys do not exist here). */
static void
test_example(void)
{
	char path[PATH_MAX + 32], err[POLICY_ERRLEN];
	struct policy *p;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, bad = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/policy/example.policy", root);
	CHECK((f = fopen(path, "r")) != NULL);
	if (f == NULL)
		return;
	CHECK((p = policy_parse_init(path)) != NULL);
	while (getline(&line, &cap, f) != -1)
		if (policy_parse_line(p, line, ++lineno, err) != 0) {
			fprintf(stderr, "%s\n", err);
			bad++;
		}
	CHECK_INT_EQ(bad, 0);
	CHECK_INT_EQ(policy_nrules(p), 11);
	CHECK_INT_EQ(policy_nkeys(p), 4);
	CHECK_INT_EQ(policy_nidentities(p), 2);
	CHECK_INT_EQ(policy_npeers(p), 3);
	free(line);
	fclose(f);
	policy_free(p);
}

/* The source tree: the first ancestor of this executable holding the
 * fixtures (build/tests/ or build/asan/tests/). */
static int
find_root(void)
{
	char probe[PATH_MAX + 64];
	ssize_t n;
	char *s;

	if ((n = readlink("/proc/self/exe", root, sizeof(root) - 1)) == -1)
		return -1;
	root[n] = '\0';
	while ((s = strrchr(root, '/')) != NULL) {
		*s = '\0';
		snprintf(probe, sizeof(probe),
		    "%s/tests/fixtures/policy/relative.policy", root);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	return -1;
}

int
main(void)
{
	char path[PATH_MAX + 16];
	int i;

	if (find_root() != 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "cannot find the source tree or make a tmpdir\n");
		return 1;
	}
	for (i = 0; i < KEYFILE_KEYLEN; i++) {
		key_a[i] = (uint8_t)(0xa0 + i);
		key_b[i] = (uint8_t)(0x10 + i);
	}
	snprintf(polpath, sizeof(polpath), "%s/p.policy", dir);
	snprintf(path, sizeof(path), "%s/a.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key_a), 0);
	snprintf(path, sizeof(path), "%s/b.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key_b), 0);
	snprintf(path, sizeof(path), "%s/sub", dir);
	CHECK_INT_EQ(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/sub/b.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key_b), 0);
	snprintf(path, sizeof(path), "%s/sub/$HOME.key", dir);
	CHECK_INT_EQ(keyfile_create(path, key_a), 0);
	snprintf(path, sizeof(path), "%s/garbage.key", dir);
	{
		FILE *f = fopen(path, "w");

		CHECK(f != NULL && fputs("garbage\n", f) != EOF);
		if (f != NULL)
			fclose(f);
	}

	test_syntax();
	test_errors();
	test_line_api();
	test_match();
	test_paths();
	test_env_lookup();
	test_equal();
	test_example();

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CHECK_INT_EQ(system(path), 0);
	CHECK_DONE();
}
