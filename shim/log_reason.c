/*
 * log_reason: warnings with a fixed code (log.h LOG_WARN_CODE), on top of
 * log_write(): the words as the caller formats them, the code as a field.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "reason.h"

void
log_warn_code(const char *func, const char *event, int code,
    const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;
	const struct log_kv kv[] = {
		{ "event", event, 0 },
		{ "reason", reason_name(code), 0 },
	};

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	log_write(LOG_WARN, func, kv, 2, "%s [reason=%s]", msg,
	    reason_name(code));
	errno = saved;
}
