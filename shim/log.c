/*
 * log: see log.h.  Formatting uses stack buffers and vsnprintf (no malloc
 * for ordinary messages); the line is written with the real write(), one
 * call per line, so it never re-enters the shim.
 *
 * Where a line goes: the log file when SOCKSEAL_LOG_FILE is set, else the
 * stderr the program started with.  Either target is checked by identity
 * (device and inode) before each write, because the program may have
 * closed the number and reused it for its own file or socket.  A log file
 * is then opened again (its fd was the shim's); a stderr is not (it was
 * the program's): the shim goes quiet instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdtab.h"
#include "real.h"
#include "log.h"

#define LOG_FD_FLOOR 500        /* the log file's fd lives at or above this */

int log_level = LOG_WARN;
static bool log_json;

/* What fd 2 was when the shim started: logs go there only while it is. */
static dev_t log_dev;
static ino_t log_ino;
static bool log_known;

/* SOCKSEAL_LOG_FILE: its absolute path, the fd (atomic) and identity. */
static char log_path[PATH_MAX];
static int log_fd = -1;
static dev_t log_fdev;
static ino_t log_fino;
static int log_reopening;       /* atomic: one thread reopens at a time */

void
log_stderr_moved(void)
{
	struct stat st;
	int saved = errno;

	log_known = fstat(STDERR_FILENO, &st) == 0;
	if (log_known) {
		log_dev = st.st_dev;
		log_ino = st.st_ino;
	}
	errno = saved;
}

/* The lowest fd number the log file may take: high, within RLIMIT_NOFILE. */
static int
log_fd_floor(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 2 * LOG_FD_FLOOR)
		return LOG_FD_FLOOR;
	return rl.rlim_cur > 16 ? (int)(rl.rlim_cur / 2) : 3;
}

/*
 * Open log_path (append, 0600, close-on-exec) and move it to a high fd.
 * Publishes fd and identity; returns the fd or -errno.
 */
static int
log_file_open(void)
{
	struct stat st;
	int fd, hi;

	fd = real_open(log_path,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	if ((hi = real_fcntl(fd, F_DUPFD_CLOEXEC, log_fd_floor())) >= 0) {
		(void)real_close(fd);
		fd = hi;
	}
	if (fstat(fd, &st) != 0) {
		hi = -errno;
		(void)real_close(fd);
		return hi;
	}
	log_fdev = st.st_dev;
	log_fino = st.st_ino;
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELEASE);
	return fd;
}

/* SOCKSEAL_LOG_FILE=PATH: open it now; on failure say so on stderr. */
static void
log_file_init(const char *path)
{
	char line[PATH_MAX + 128];
	int r, n;

	if (path == NULL || *path == '\0')
		return;
	if (snprintf(log_path, sizeof(log_path), "%s", path) >=
	    (int)sizeof(log_path)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	if ((r = log_file_open()) < 0)
		goto fail;
	/* Reopen by absolute path even after the program's chdir(). */
	if (realpath(path, line) != NULL && strlen(line) < sizeof(log_path))
		memcpy(log_path, line, strlen(line) + 1);
	return;
fail:
	log_path[0] = '\0';
	n = snprintf(line, sizeof(line), "sockseal[%ld]: error: log_init: "
	    "SOCKSEAL_LOG_FILE %s: %s; logging to stderr\n", (long)getpid(),
	    path, strerror(-r));
	if (n > 0 && !fdtab_maybe(STDERR_FILENO))
		(void)real_write(STDERR_FILENO, line, (size_t)n < sizeof(line) ?
		    (size_t)n : sizeof(line) - 1);
}

/* One log setting: V's index in NAMES (NULL-ended), or -1 with ERR set;
 * unset or empty is DEF. */
static int
log_setting(const char *var, const char *v, const char *const names[],
    int def, char *err, size_t errlen)
{
	char list[64] = "";
	int i;

	if (v == NULL || *v == '\0')
		return def;
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0)
			return i;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
		    "%s%s", i == 0 ? "" : names[i + 1] == NULL ? " or " : ", ",
		    names[i]);
	}
	snprintf(err, errlen, "%s=%.40s: unknown value (%s)", var, v, list);
	return -1;
}

int
log_init(char *err, size_t errlen)
{
	static const char *const formats[] = { "text", "json", NULL };
	static const char *const levels[] = { "error", "warn", "info",
	    "debug", NULL };
	int f, l;

	log_stderr_moved();
	f = log_setting("SOCKSEAL_LOG_FORMAT", getenv("SOCKSEAL_LOG_FORMAT"),
	    formats, 0, err, errlen);
	log_json = f == 1;
	log_file_init(getenv("SOCKSEAL_LOG_FILE"));
	if (f < 0)
		return -1;
	l = log_setting("SOCKSEAL_LOG", getenv("SOCKSEAL_LOG"), levels,
	    LOG_WARN, err, errlen);
	if (l < 0)
		return -1;
	log_level = l;
	return 0;
}

bool
log_to_file(void)
{
	return log_path[0] != '\0';
}

/*
 * The fd to write to (its fstat in *ST), or -1: the log file (opened again
 * if its number was taken from us), else the original stderr.
 */
static int
log_target(struct stat *st)
{
	int fd;

	if (log_path[0] != '\0') {
		fd = __atomic_load_n(&log_fd, __ATOMIC_ACQUIRE);
		if (fd >= 0 && fstat(fd, st) == 0 && st->st_dev == log_fdev &&
		    st->st_ino == log_fino)
			return fd;
		/* Closed behind our back: never write to what is there now. */
		if (__atomic_exchange_n(&log_reopening, 1, __ATOMIC_ACQUIRE))
			return -1;
		fd = log_file_open();
		__atomic_store_n(&log_reopening, 0, __ATOMIC_RELEASE);
		return fd >= 0 && fstat(fd, st) == 0 ? fd : -1;
	}
	/* Never into a sealed socket (an inherited stderr): that would be
	 * plaintext on the wire. */
	if (fdtab_maybe(STDERR_FILENO))
		return -1;
	/*
	 * Only into the stderr the program started with: a program that
	 * closed it and reused the number must not find our lines in its
	 * file or socket.
	 */
	if (fstat(STDERR_FILENO, st) != 0 || !log_known ||
	    st->st_dev != log_dev || st->st_ino != log_ino)
		return -1;
	return STDERR_FILENO;
}

/* A line being built in a fixed buffer; once full, appends are dropped. */
struct lbuf {
	char   *p;
	size_t  cap, len;
};

static void
lbuf_vprintf(struct lbuf *b, const char *fmt, va_list ap)
{
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);

	if (n > 0)
		b->len += (size_t)n < b->cap - b->len ? (size_t)n :
		    b->cap - b->len - 1;
}

static void
lbuf_printf(struct lbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
lbuf_printf(struct lbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lbuf_vprintf(b, fmt, ap);
	va_end(ap);
}

static void
lbuf_json(struct lbuf *b, const char *s)
{
	b->len += log_json_str(b->p + b->len, b->cap - b->len, s);
}

static const char *const log_names[] = { "error", "warn", "info", "debug" };

static void
log_format_json(struct lbuf *b, int lvl, const char *func, const char *msg,
    const struct log_kv *kv, int nkv)
{
	struct timespec ts;
	char t[LOG_TSLEN];
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	lbuf_printf(b, "{\"ts\":\"%s\",\"pid\":%ld,\"level\":\"%s\",\"fn\":",
	    log_rfc3339((uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000, t), (long)getpid(),
	    log_names[lvl & 3]);
	lbuf_json(b, func != NULL ? func : "start");
	lbuf_printf(b, ",\"program\":");
	lbuf_json(b, program_invocation_short_name);
	lbuf_printf(b, ",\"msg\":");
	lbuf_json(b, msg);
	for (i = 0; i < nkv; i++) {
		lbuf_printf(b, ",");
		lbuf_json(b, kv[i].key);
		lbuf_printf(b, ":");
		if (kv[i].str != NULL)
			lbuf_json(b, kv[i].str);
		else
			lbuf_printf(b, "%llu", kv[i].num);
	}
}

void
log_write(int lvl, const char *func, const struct log_kv *kv, int nkv,
    const char *fmt, ...)
{
	char msg[1024], line[1536];
	struct lbuf b = { .p = line, .cap = sizeof(line) - 2 };
	struct stat st;
	struct rlimit rl;
	int saved = errno, fd;
	va_list ap;

	va_start(ap, fmt);
	if (log_json) {
		if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
			msg[0] = '\0';
		log_format_json(&b, lvl, func, msg, kv, nkv);
		line[b.len++] = '}';
	} else {
		struct timespec ts;
		char t[LOG_TSLEN];

		clock_gettime(CLOCK_REALTIME, &ts);
		lbuf_printf(&b, "%s sockseal[%ld]: %s: ",
		    log_rfc3339((uint64_t)ts.tv_sec * 1000 +
		    (uint64_t)ts.tv_nsec / 1000000, t), (long)getpid(),
		    log_names[lvl & 3]);
		if (func != NULL)
			lbuf_printf(&b, "%s: ", func);
		lbuf_vprintf(&b, fmt, ap);
	}
	va_end(ap);
	line[b.len++] = '\n';
	if ((fd = log_target(&st)) < 0)
		goto out;
	/* A file past RLIMIT_FSIZE would raise SIGXFSZ. */
	if (S_ISREG(st.st_mode) &&
	    getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)st.st_size + (rlim_t)b.len > rl.rlim_cur)
		goto out;
	(void)real_write(fd, line, b.len);
out:
	errno = saved;
}

/*
 * The length of the valid UTF-8 sequence at U (2 to 4 bytes), or 0 when
 * it is not one: a stray continuation byte, an overlong form, a surrogate,
 * a code point past U+10FFFF, or a sequence cut short.
 */
static size_t
log_utf8_len(const unsigned char *u)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte's range rules out overlong forms and surrogates. */
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (u[1] < lo || u[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return n;
}

size_t
log_json_str(char *dst, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];
	size_t len = 0, n, i;

	if (cap < 3)
		return 0;
	dst[len++] = '"';
	while (*u != '\0') {
		n = 1;
		if (*u == '"' || *u == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*u;
			i = 2;
		} else if (*u < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*u >> 4];
			esc[5] = hex[*u & 15];
			i = 6;
		} else if (*u < 0x80) {
			esc[0] = (char)*u;
			i = 1;
		} else if ((n = log_utf8_len(u)) > 0) {
			memcpy(esc, u, n);
			i = n;
		} else {
			memcpy(esc, "\\ufffd", 6);
			i = 6;
			n = 1;
		}
		/* Room for it, the closing quote and the NUL? */
		if (len + i + 2 > cap)
			break;
		memcpy(dst + len, esc, i);
		len += i;
		u += n;
	}
	dst[len++] = '"';
	dst[len] = '\0';
	return len;
}

char *
log_rfc3339(uint64_t ms, char buf[LOG_TSLEN])
{
	/* Days since 1970-01-01 to a civil date, in 400-year eras that
	 * start on March 1st (the leap day falls at an era year's end). */
	uint64_t secs = ms / 1000, z = secs / 86400 + 719468;
	uint64_t era = z / 146097, doe = z % 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153;
	uint64_t d = doy - (153 * mp + 2) / 5 + 1;
	uint64_t m = mp < 10 ? mp + 3 : mp - 9;
	uint64_t y = yoe + era * 400 + (m <= 2);
	uint64_t sod = secs % 86400;

	snprintf(buf, LOG_TSLEN, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
	    (unsigned)y, (unsigned char)m, (unsigned char)d,
	    (unsigned char)(sod / 3600), (unsigned char)(sod / 60 % 60),
	    (unsigned char)(sod % 60), (unsigned short)(ms % 1000));
	return buf;
}

char *
log_addr(const struct sockaddr *sa, char *buf, unsigned long len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa == NULL || len == 0) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
	return buf;
}
