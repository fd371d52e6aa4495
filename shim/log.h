/*
 * log: the shim's one logging macro.  Lines go to stderr as
 * "sockseal[PID]: func: message\n", one write() per line, errno preserved.
 * The level comes from SOCKSEAL_LOG (error|warn|info|debug; default warn),
 * read once by log_init() in the constructor.  Nothing is formatted unless
 * the level is enabled, so the macro costs one compare on the fast path.
 */
#ifndef SOCKSEAL_LOG_H
#define SOCKSEAL_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

#define LOG(lvl, ...) do { \
	if ((lvl) <= log_level) \
		log_write((lvl), __func__, __VA_ARGS__); \
} while (0)

/* log_init(): read SOCKSEAL_LOG.  Unknown values keep the default. */
void log_init(void);

/*
 * log_stderr_moved(): the program made something else its stderr with
 * dup2/dup3 (a daemon redirecting to its log file): log there from now on.
 * A number closed and reused otherwise (open() returning 2) is not
 * followed: the shim stops logging rather than write into the program's
 * file or socket.
 */
void log_stderr_moved(void);

/* log_write(lvl, func, fmt, ...): format and write one line; keeps errno. */
void log_write(int lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_addr(sa, buf, len): "1.2.3.4:80" / "[::1]:80" into BUF; returns BUF. */
struct sockaddr;
char *log_addr(const struct sockaddr *sa, char *buf, unsigned long len);

#endif
