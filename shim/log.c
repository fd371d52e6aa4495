/*
 * log: see log.h.  Formatting uses a stack buffer and vsnprintf (no malloc
 * for ordinary messages); the line is written with the real write() so it
 * never re-enters the shim.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdtab.h"
#include "real.h"
#include "log.h"

int log_level = LOG_WARN;

/* What fd 2 was when the shim started: logs go there only while it is. */
static dev_t log_dev;
static ino_t log_ino;
static bool log_known;

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

void
log_init(void)
{
	const char *v = getenv("SOCKSEAL_LOG");

	log_stderr_moved();

	if (v == NULL)
		return;
	if (strcmp(v, "error") == 0)
		log_level = LOG_ERROR;
	else if (strcmp(v, "warn") == 0)
		log_level = LOG_WARN;
	else if (strcmp(v, "info") == 0)
		log_level = LOG_INFO;
	else if (strcmp(v, "debug") == 0)
		log_level = LOG_DEBUG;
}

void
log_write(int lvl, const char *func, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	struct stat st;
	struct rlimit rl;
	int saved = errno;
	int n, m;
	va_list ap;

	n = snprintf(line, sizeof(line), "sockseal[%ld]: %s: %s: ",
	    (long)getpid(), names[lvl & 3], func);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		goto out;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* Never into a sealed socket (an inherited stderr): that would be
	 * plaintext on the wire. */
	if (fdtab_maybe(STDERR_FILENO))
		goto out;
	/*
	 * Only into the stderr the program started with: a program that
	 * closed it and reused the number must not find our lines in its
	 * file or socket.  And a file past RLIMIT_FSIZE would raise SIGXFSZ.
	 */
	if (fstat(STDERR_FILENO, &st) != 0 || !log_known ||
	    st.st_dev != log_dev || st.st_ino != log_ino)
		goto out;
	if (S_ISREG(st.st_mode) &&
	    getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)st.st_size + (rlim_t)n > rl.rlim_cur)
		goto out;
	(void)real_write(STDERR_FILENO, line, (size_t)n);
out:
	errno = saved;
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
