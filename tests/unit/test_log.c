/*
 * test_log: shim/log.c: JSON string escaping (quotes, control characters,
 * valid and invalid UTF-8, shortening without cutting an escape), RFC 3339
 * timestamps, and SOCKSEAL_LOG_FILE with SOCKSEAL_LOG_FORMAT=json: lines
 * land in the file as JSON with the structured fields, on an fd out of the
 * program's way, and a program that closes that fd and reuses the number
 * never gets our lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "reason.h"
#include "check.h"

static void
check_json(const char *in, const char *want)
{
	char out[256];
	size_t n = log_json_str(out, sizeof(out), in);

	CHECK_INT_EQ(n, strlen(want));
	if (strcmp(out, want) != 0)
		fprintf(stderr, "json: got %s, want %s\n", out, want);
	CHECK(strcmp(out, want) == 0);
}

static void
test_json_escape(void)
{
	check_json("", "\"\"");
	check_json("plain text", "\"plain text\"");
	check_json("a\"b\\c", "\"a\\\"b\\\\c\"");
	check_json("line\nnext\ttab\x01", "\"line\\u000anext\\u0009tab\\u0001\"");
	check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92",
	    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\"");
	/* invalid UTF-8: stray bytes, overlong, surrogate, cut short */
	check_json("\xff", "\"\\ufffd\"");
	check_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	check_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	check_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	check_json("x\xe2\x82", "\"x\\ufffd\\ufffd\"");
}

static void
test_json_short(void)
{
	char out[16];
	size_t n;

	CHECK_INT_EQ(log_json_str(out, 2, "x"), 0);
	CHECK_INT_EQ(log_json_str(out, 3, "xyz"), 2);
	CHECK(strcmp(out, "\"\"") == 0);
	/* "ab then an escape that does not fit: stop before it, close. */
	n = log_json_str(out, 8, "ab\ncd");
	CHECK_INT_EQ(n, 4);
	CHECK(strcmp(out, "\"ab\"") == 0);
	n = log_json_str(out, sizeof(out), "0123456789abcdefghij");
	CHECK_INT_EQ(n, sizeof(out) - 1);
	CHECK(out[n - 1] == '"' && out[n] == '\0');
	/* a multi-byte character is never split */
	n = log_json_str(out, 6, "a\xe2\x82\xac");
	CHECK(strcmp(out, "\"a\"") == 0);
}

static void
test_rfc3339(void)
{
	static const struct {
		uint64_t ms;
		const char *want;
	} v[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 951782400000ULL, "2000-02-29T00:00:00.000Z" },
		{ 1709164799999ULL, "2024-02-28T23:59:59.999Z" },
		{ 1234567890123ULL, "2009-02-13T23:31:30.123Z" },
		{ 4102444800000ULL, "2100-01-01T00:00:00.000Z" },
	};
	char buf[LOG_TSLEN];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		log_rfc3339(v[i].ms, buf);
		if (strcmp(buf, v[i].want) != 0)
			fprintf(stderr, "rfc3339(%llu): %s, want %s\n",
			    (unsigned long long)v[i].ms, buf, v[i].want);
		CHECK(strcmp(buf, v[i].want) == 0);
	}
}

/* The whole of PATH into BUF (NUL-terminated). */
static size_t
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f != NULL) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

/* The fd (>= 3) open on PATH's file, or -1. */
static int
fd_of(const char *path)
{
	struct stat a, b;
	int fd;

	if (stat(path, &a) != 0)
		return -1;
	for (fd = 3; fd < 4096; fd++)
		if (fstat(fd, &b) == 0 && b.st_dev == a.st_dev &&
		    b.st_ino == a.st_ino)
			return fd;
	return -1;
}

static void
test_log_file_json(void)
{
	char dir[] = "/tmp/test_log.XXXXXX", path[64], buf[4096], err[128];
	const struct log_kv kv[] = {
		{ "event", "conn_end", 0 },
		{ "peer", "[::1]:5432", 0 },
		{ "bytes_in", NULL, 12345 },
	};
	struct stat st;
	int fd, p[2], flags;
	char c;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/log", dir);
	setenv("SOCKSEAL_LOG_FILE", path, 1);
	setenv("SOCKSEAL_LOG_FORMAT", "json", 1);
	setenv("SOCKSEAL_LOG", "info", 1);
	CHECK_INT_EQ(log_init(err, sizeof(err)), 0);
	CHECK_INT_EQ(log_level, LOG_INFO);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	fd = fd_of(path);
	CHECK(fd >= 500);
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);

	LOG_KV(LOG_INFO, kv, 3, "closed \"%s\"", "x");
	LOG(LOG_DEBUG, "not at info");
	slurp(path, buf, sizeof(buf));
	CHECK(strncmp(buf, "{\"ts\":\"", 7) == 0);
	CHECK(strstr(buf, "\"level\":\"info\",\"fn\":\"test_log_file_json\","
	    "\"program\":\"test_log\",\"msg\":\"closed \\\"x\\\"\",\"event\":\"conn_end\","
	    "\"peer\":\"[::1]:5432\",\"bytes_in\":12345}\n") != NULL);
	CHECK(strstr(buf, "not at info") == NULL);

	/* A warning with its code: the field, and the words end with it. */
	LOG_WARN_CODE("conn_refused", REASON_HANDSHAKE_LIMIT, "refused %d", 4);
	slurp(path, buf, sizeof(buf));
	CHECK(strstr(buf, "\"msg\":\"refused 4 [reason=handshake_limit]\","
	    "\"event\":\"conn_refused\",\"reason\":\"handshake_limit\"}\n")
	    != NULL);

	/* The program closes our fd and reuses the number for a pipe. */
	CHECK(pipe(p) == 0);
	CHECK(dup2(p[1], fd) == fd);
	LOG(LOG_WARN, "after the reuse");
	flags = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, flags | O_NONBLOCK);
	CHECK(read(p[0], &c, 1) == -1 && errno == EAGAIN);
	slurp(path, buf, sizeof(buf));
	CHECK(strstr(buf, "\"level\":\"warn\"") != NULL &&
	    strstr(buf, "\"msg\":\"after the reuse\"}") != NULL);
	CHECK(fd_of(path) >= 500 && fd_of(path) != fd);
	close(p[0]);
	close(p[1]);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* Unknown values are an error at start, naming the setting and what is
 * valid; unset or empty is the default. */
static void
test_settings(void)
{
	static const struct { const char *log, *fmt, *msg; int level; } t[] = {
		{ NULL, NULL, NULL, LOG_WARN },
		{ "", "", NULL, LOG_WARN },
		{ "debug", "text", NULL, LOG_DEBUG },
		{ "error", "json", NULL, LOG_ERROR },
		{ "INFO", NULL, "SOCKSEAL_LOG=INFO: unknown value (error, warn, "
		    "info or debug)", -1 },
		{ "verbose", NULL, "SOCKSEAL_LOG=verbose: unknown value", -1 },
		{ "info", "JSON", "SOCKSEAL_LOG_FORMAT=JSON: unknown value (text "
		    "or json)", -1 },
	};
	char err[128];
	size_t i;

	unsetenv("SOCKSEAL_LOG_FILE");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].log != NULL)
			setenv("SOCKSEAL_LOG", t[i].log, 1);
		else
			unsetenv("SOCKSEAL_LOG");
		if (t[i].fmt != NULL)
			setenv("SOCKSEAL_LOG_FORMAT", t[i].fmt, 1);
		else
			unsetenv("SOCKSEAL_LOG_FORMAT");
		log_level = LOG_WARN;
		err[0] = '\0';
		CHECK_INT_EQ(log_init(err, sizeof(err)), t[i].msg ? -1 : 0);
		if (t[i].msg != NULL) {
			CHECK(strncmp(err, t[i].msg, strlen(t[i].msg)) == 0);
			if (strncmp(err, t[i].msg, strlen(t[i].msg)) != 0)
				fprintf(stderr, "got: %s\n", err);
		} else
			CHECK_INT_EQ(log_level, t[i].level);
	}
	unsetenv("SOCKSEAL_LOG");
	unsetenv("SOCKSEAL_LOG_FORMAT");
}

int
main(void)
{
	test_settings();
	test_json_escape();
	test_json_short();
	test_rfc3339();
	test_log_file_json();
	CHECK_DONE();
}
