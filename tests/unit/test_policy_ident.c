/*
 * test_policy_ident: identity, peer and include statements and the rule
 * options identity=, peer= and peers= (policy/policy_ident.c): what loads,
 * with which keys, and every mistake refused at its FILE:LINE.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "keyfile.h"
#include "policy.h"

static char dir[] = "/tmp/test_policy_ident.XXXXXX";
static char polpath[PATH_MAX];

#include "policy_fixture.h"

/* Two hosts' keys: private (files), public (files and base64). */
static uint8_t sk_a[32], pk_a[32], sk_b[32], pk_b[32], pk_c[32], psk[32];
static char b64_b[64], b64_c[64];

static void
write_file(const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
key_file(const char *name, const uint8_t k[32])
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CHECK_INT_EQ(keyfile_create(path, k), 0);
}

/* Does TEXT fail with RC and a message that holds WANT (any file)? */
static bool
err_has(const char *text, int rc, const char *want)
{
	char err[POLICY_ERRLEN];
	struct policy *p = NULL;
	int got = load(text, &p, err);

	if (got == rc && p == NULL && strstr(err, want) != NULL)
		return true;
	fprintf(stderr, "  policy:\n%s  wanted rc %d, \"%s\"\n  got rc %d: "
	    "\"%s\"\n", text, rc, want, got, err);
	policy_free(p);
	return false;
}

static void
test_identities(void)
{
	const struct policy_rule *r;
	struct policy *p;
	char text[1024];

	/* connect: one identity, one peer (inline), no PSK */
	snprintf(text, sizeof(text), "identity me a.id\npeer srv %s\n"
	    "connect 127.0.0.1:7000 identity=me peer=srv\n", b64_b);
	p = load_ok(text);
	CHECK_INT_EQ(policy_nrules(p), 1);
	r = policy_rule_at(p, 0);
	CHECK_INT_EQ(r->nids, 1);
	CHECK_INT_EQ(r->nkeys, 0);
	CHECK_MEM_EQ(r->ids[0]->sk, sk_a, 32);
	CHECK_MEM_EQ(r->ids[0]->pk, pk_a, 32);
	CHECK(r->peer != NULL && strcmp(r->peer->name, "srv") == 0);
	CHECK_MEM_EQ(r->peer->pk, pk_b, 32);
	CHECK(r->peer->path == NULL);
	CHECK_INT_EQ(policy_nidentities(p), 1);
	CHECK_INT_EQ(policy_npeers(p), 1);
	policy_free(p);

	/* accept: rotation (new, old), peers from a file and inline, a PSK */
	snprintf(text, sizeof(text), "key k k.key\nidentity new b.id\n"
	    "identity old a.id\npeer x c.pub\npeer y %s\n"
	    "accept *:7000 identity=new,old peers=x,y key=k cipher=aesgcm\n",
	    b64_b);
	p = load_ok(text);
	r = policy_rule_at(p, 0);
	CHECK_INT_EQ(r->nids, 2);
	CHECK_MEM_EQ(r->ids[0]->pk, pk_b, 32);
	CHECK_MEM_EQ(r->ids[1]->pk, pk_a, 32);
	CHECK_INT_EQ(r->npeers, 2);
	CHECK_MEM_EQ(r->peers[0]->pk, pk_c, 32);
	CHECK(r->peers[0]->resolved != NULL &&
	    strstr(r->peers[0]->resolved, "/c.pub") != NULL);
	CHECK(policy_rule_admits(r, pk_c));
	CHECK(policy_rule_admits(r, pk_b));
	CHECK(!policy_rule_admits(r, pk_a));
	CHECK_INT_EQ(r->nkeys, 1);
	CHECK_INT_EQ(r->cipher, POLICY_CIPHER_AESGCM);
	/* the files read: key, two identities, one peer file */
	CHECK_INT_EQ(policy_nfiles(p), 4);
	CHECK(strstr(policy_file_at(p, 3), "/c.pub") != NULL);
	CHECK(policy_file_at(p, 4) == NULL);
	policy_free(p);

	/* PSK-only and identity rules side by side */
	snprintf(text, sizeof(text), "key k k.key\nidentity me a.id\n"
	    "peer srv b.pub\nconnect *:1 key=k\n"
	    "connect *:2 identity=me peer=srv key=k\n");
	p = load_ok(text);
	CHECK_INT_EQ(policy_rule_at(p, 0)->nids, 0);
	CHECK_INT_EQ(policy_rule_at(p, 1)->nids, 1);
	policy_free(p);
}

static void
test_include(void)
{
	const struct policy_rule *r;
	struct policy *p;
	char text[1024], want[PATH_MAX + 64];

	snprintf(text, sizeof(text), "# the fleet\npeer web1 %s\n"
	    "include fleet2.inc\n", b64_b);
	write_file("fleet.inc", text);
	snprintf(text, sizeof(text), "peer web2 %s\n", b64_c);
	write_file("fleet2.inc", text);
	p = load_ok("identity me a.id\ninclude fleet.inc\n"
	    "accept *:7000 identity=me peers=web1,web2\n");
	r = policy_rule_at(p, 0);
	CHECK_INT_EQ(r->npeers, 2);
	CHECK_MEM_EQ(r->peers[0]->pk, pk_b, 32);
	CHECK_MEM_EQ(r->peers[1]->pk, pk_c, 32);
	snprintf(want, sizeof(want), "%s/fleet.inc", dir);
	CHECK(strcmp(r->peers[0]->file, want) == 0);
	CHECK_INT_EQ(r->peers[0]->line, 2);
	/* the included files are watched for reload too */
	CHECK_INT_EQ(policy_nfiles(p), 3);
	CHECK(strcmp(policy_file_at(p, 0), want) == 0);
	policy_free(p);

	/* a mistake inside an include names the included file */
	write_file("bad.inc", "peer ok b.pub\npeer\n");
	{
		char err[POLICY_ERRLEN];

		CHECK(load("include bad.inc\n", &p, err) == -EINVAL && p == NULL);
		snprintf(want, sizeof(want), "%s/bad.inc:2: peer: missing NAME",
		    dir);
		CHECK(strcmp(err, want) == 0);
		if (strcmp(err, want) != 0)
			fprintf(stderr, "  got \"%s\"\n", err);
	}
	write_file("rules.inc", "connect *:1 plain\n");
	CHECK(err_has("include fleet.inc\ninclude rules.inc\n", -EINVAL,
	    "rules.inc:1: connect: an included file holds key, identity, peer "
	    "and include lines only"));
	write_file("loop.inc", "include loop.inc\n");
	CHECK(err_has("include loop.inc\n", -EINVAL, "loop.inc:1: include "));
	CHECK(err_has("include loop.inc\n", -EINVAL, "already read"));
	CHECK(err_has("include missing.inc\n", -ENOENT,
	    "p.policy:1: include "));
	FAILS("include\n", 1, "include: missing PATH");
	FAILS("include a b\n", 1, "unexpected `b'");
}

static void
test_errors(void)
{
	char text[512];

	FAILS("identity\n", 1, "identity: missing NAME");
	FAILS("identity me\n", 1, "identity me: missing PATH");
	FAILS("identity b@d a.id\n", 1, "bad name");
	FAILS("identity me a.id x\n", 1, "unexpected `x'");
	FAILS("identity me a.id\nidentity me b.id\n", 2,
	    "duplicate identity `me' (first defined at line 1)");
	FAILS("peer p\n", 1, "peer p: missing PUBKEY or PATH");
	FAILS("peer p b.pub\npeer p c.pub\n", 2, "duplicate peer `p'");
	FAILS("identity me garbage.id\npeer s b.pub\n"
	    "connect *:1 identity=me peer=s\n", 1, "identity me: ");
	CHECK(fails("identity me nothere.id\npeer s b.pub\n"
	    "connect *:1 identity=me peer=s\n", -ENOENT, 1, "No such file"));
	/* a public key one character short is a path, and no file */
	snprintf(text, sizeof(text), "identity me a.id\npeer s %.43s\n"
	    "connect *:1 identity=me peer=s\n", b64_b);
	CHECK(fails(text, -ENOENT, 2, "peer s: "));

	FAILS("identity me a.id\nconnect *:1 identity=me\n", 2,
	    "needs peer=NAME");
	FAILS("identity me a.id\nsee\n", 2, "unknown statement");
	FAILS("identity me a.id\npeer s b.pub\naccept *:1 identity=me\n", 3,
	    "needs peers=NAME");
	FAILS("identity me a.id\npeer s b.pub\naccept *:1 identity=me peer=s\n",
	    3, "peer= is for connect rules");
	FAILS("identity me a.id\npeer s b.pub\n"
	    "connect *:1 identity=me peers=s\n", 3, "peers= is for accept");
	FAILS("identity me a.id\npeer s b.pub\n"
	    "connect *:1 identity=me,me2 peer=s\n", 3, "names one identity");
	FAILS("key k k.key\npeer s b.pub\nconnect *:1 key=k peer=s\n", 3,
	    "peer= needs identity=NAME");
	FAILS("key k k.key\npeer s b.pub\naccept *:1 key=k peers=s\n", 3,
	    "peers= needs identity=NAME");
	FAILS("peer s b.pub\nconnect *:1 identity=me peer=s\n", 2,
	    "undefined identity `me'");
	FAILS("identity me a.id\nconnect *:1 identity=me peer=s\n", 2,
	    "undefined peer `s'");
	FAILS("identity me a.id\npeer s b.pub\naccept *:1 identity=me "
	    "peers=s,t\n", 3, "undefined peer `t'");
	FAILS("identity me a.id\npeer s b.pub\naccept *:1 identity=me "
	    "peers=s,s\n", 3, "peer `s' listed twice in peers=");
	FAILS("identity me a.id\npeer s b.pub\naccept *:1 identity= "
	    "peers=s\n", 3, "identity= needs an identity name");
	FAILS("identity me a.id\npeer s b.pub\n"
	    "connect *:1 identity=me peer=s plain\n", 3, "plain cannot");
}

static void
test_equal(void)
{
	char text[512];
	struct policy *a, *b;

	snprintf(text, sizeof(text), "identity me a.id\npeer s b.pub\n"
	    "connect *:1 identity=me peer=s\n");
	a = load_ok(text);
	b = load_ok(text);
	CHECK(policy_equal(a, b));
	policy_free(b);
	/* the same names, another peer key: not the same policy */
	snprintf(text, sizeof(text), "identity me a.id\npeer s c.pub\n"
	    "connect *:1 identity=me peer=s\n");
	b = load_ok(text);
	CHECK(!policy_equal(a, b));
	policy_free(b);
	snprintf(text, sizeof(text), "identity me b.id\npeer s b.pub\n"
	    "connect *:1 identity=me peer=s\n");
	b = load_ok(text);
	CHECK(!policy_equal(a, b));
	policy_free(a);
	policy_free(b);
}

int
main(void)
{
	char path[PATH_MAX + 16];
	size_t n;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	snprintf(polpath, sizeof(polpath), "%s/p.policy", dir);
	randombytes_buf(sk_a, 32);
	randombytes_buf(sk_b, 32);
	randombytes_buf(psk, 32);
	crypto_scalarmult_base(pk_a, sk_a);
	crypto_scalarmult_base(pk_b, sk_b);
	randombytes_buf(pk_c, 32);
	key_file("a.id", sk_a);
	key_file("b.id", sk_b);
	key_file("b.pub", pk_b);
	key_file("c.pub", pk_c);
	key_file("k.key", psk);
	write_file("garbage.id", "not a key\n");
	sodium_bin2base64(b64_b, sizeof(b64_b), pk_b, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b64_c, sizeof(b64_c), pk_c, 32,
	    sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64_b);
	CHECK_INT_EQ(n, 44);

	test_identities();
	test_include();
	test_errors();
	test_equal();

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CHECK_INT_EQ(system(path), 0);
	CHECK_DONE();
}
