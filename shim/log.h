/*
 * log: the shim's one logging macro.  Lines go to stderr as
 * "sockseal[PID]: level: func: message\n", one write() per line, errno
 * preserved.  The level comes from SOCKSEAL_LOG (error|warn|info|debug;
 * default warn), read once by log_init() in the constructor.  Nothing is
 * formatted unless the level is enabled, so the macro costs one compare on
 * the fast path.
 *
 * SOCKSEAL_LOG_FILE=PATH sends the lines to PATH instead (appended; created
 * with mode 0600).  The file is opened once, at init, and kept on a high fd
 * number (close-on-exec) out of the program's way; if the program closes
 * that number behind our back (closefrom, close_range) and it comes back as
 * something else, the file is opened again, never written through the
 * program's fd.
 *
 * SOCKSEAL_LOG_FORMAT=json makes each line one JSON object:
 *   {"ts":"2026-01-02T03:04:05.678Z","pid":N,"level":"info","fn":"...",
 *    "program":"...","msg":"..."} plus the structured fields a caller
 * passes (LOG_KV).
 * Without it (or =text) the line is the text form above, and the fields
 * are left out: the message says the same in words.
 */
#ifndef SOCKSEAL_LOG_H
#define SOCKSEAL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

#define LOG(lvl, ...) do { \
	if ((lvl) <= log_level) \
		log_write((lvl), __func__, NULL, 0, __VA_ARGS__); \
} while (0)

/* LOG_KV(lvl, kv, nkv, fmt, ...): with structured fields for JSON. */
#define LOG_KV(lvl, kv, nkv, ...) do { \
	if ((lvl) <= log_level) \
		log_write((lvl), __func__, (kv), (nkv), __VA_ARGS__); \
} while (0)

/* One structured field: a string (str != NULL) or an unsigned number. */
struct log_kv {
	const char         *key;
	const char         *str;
	unsigned long long  num;
};

/*
 * log_init(err, errlen): read SOCKSEAL_LOG, SOCKSEAL_LOG_FORMAT and
 * SOCKSEAL_LOG_FILE.  An unknown value of the first two is an error (-1,
 * ERR says which and what is valid: the program must not start, as with a
 * bad policy), the others in force as far as they could be read; unset or
 * empty is the default.  A log file that cannot be opened is reported once
 * on stderr and logging stays on stderr.  log_to_file(): is a log file in
 * use?
 */
int log_init(char *err, size_t errlen);
bool log_to_file(void);

/*
 * log_stderr_moved(): the program made something else its stderr with
 * dup2/dup3 (a daemon redirecting to its log file): log there from now on.
 * A number closed and reused otherwise (open() returning 2) is not
 * followed: the shim stops logging rather than write into the program's
 * file or socket.
 */
void log_stderr_moved(void);

/*
 * log_write(lvl, func, kv, nkv, fmt, ...): format and write one line; keeps
 * errno.  KV (NKV entries, may be NULL) only appear in JSON lines.
 * FUNC NULL: a start-up message (text: no function name; JSON: fn "start").
 */
void log_write(int lvl, const char *func, const struct log_kv *kv, int nkv,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * LOG_WARN_CODE(event, code, fmt, ...): a warning with its fixed code
 * (enum reason): JSON gets "event" and "reason", text ends in
 * " [reason=CODE]".
 */
#define LOG_WARN_CODE(event, code, ...) do { \
	if (LOG_WARN <= log_level) \
		log_warn_code(__func__, (event), (code), __VA_ARGS__); \
} while (0)
void log_warn_code(const char *func, const char *event, int code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* log_addr(sa, buf, len): "1.2.3.4:80" / "[::1]:80" into BUF; returns BUF. */
struct sockaddr;
char *log_addr(const struct sockaddr *sa, char *buf, unsigned long len);

/*
 * log_json_str(dst, cap, s): S as a JSON string with its quotes, into DST
 * (CAP bytes, NUL-terminated).  Control characters, quotes and backslashes
 * are escaped; bytes that are not valid UTF-8 become U+FFFD, so the line
 * stays valid JSON whatever a path or message holds.  Never cuts inside an
 * escape: when S does not fit it is shortened.  Returns the length written
 * (without the NUL), or 0 if not even "" fits.  No allocation.
 */
size_t log_json_str(char *dst, size_t cap, const char *s);

/*
 * log_rfc3339(ms, buf): the UTC time MS milliseconds after the epoch as
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" into BUF (at least LOG_TSLEN bytes).
 * Pure arithmetic: no locale, no time zone files, async-signal-safe.
 */
#define LOG_TSLEN 40
char *log_rfc3339(uint64_t ms, char buf[LOG_TSLEN]);

#endif
