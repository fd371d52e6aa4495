/*
 * policy_util: what every part of the policy parser uses: FILE:LINE
 * messages, words, numbers, names, growing arrays (policy_int.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_int.h"

static int
vperr(const char *file, int lineno, char err[POLICY_ERRLEN], const char *fmt,
    va_list ap)
{
	int n;

	n = snprintf(err, POLICY_ERRLEN, "%s:%d: ", file, lineno);
	if (n < 0 || n >= POLICY_ERRLEN)
		return -EINVAL;
	vsnprintf(err + n, POLICY_ERRLEN - (size_t)n, fmt, ap);
	return -EINVAL;
}

int
perr(const struct policy *p, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vperr(p->cur != NULL ? p->cur : p->file, lineno, err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
perr_at(const char *file, int lineno, char err[POLICY_ERRLEN],
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vperr(file, lineno, err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *
perr_where(const struct policy *p, const char *file, int line, char *buf,
    size_t len)
{
	if (strcmp(file, p->cur != NULL ? p->cur : p->file) == 0)
		snprintf(buf, len, "line %d", line);
	else
		snprintf(buf, len, "%s:%d", file, line);
	return buf;
}

int
perr_nomem(const struct policy *p, int lineno, char err[POLICY_ERRLEN])
{
	perr(p, lineno, err, "out of memory");
	return -ENOMEM;
}

int
grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void **a = arr, *na;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 8;
	if ((na = reallocarray(*a, c, size)) == NULL)
		return -ENOMEM;
	*a = na;
	*cap = c;
	return 0;
}

bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * next_word(&s): the next whitespace-separated word of the NUL-terminated,
 * writable string *s (terminated in place), or NULL at the end.
 */
char *
next_word(char **s)
{
	char *w, *e;

	for (w = *s; is_space(*w); w++)
		;
	if (*w == '\0')
		return NULL;
	for (e = w; *e != '\0' && !is_space(*e); e++)
		;
	if (*e != '\0')
		*e++ = '\0';
	*s = e;
	return w;
}

/*
 * parse_uint(s, len, max, &v): LEN decimal digits (no sign, no spaces) with
 * a value of at most MAX.  Returns 0 or -EINVAL.
 */
int
parse_uint(const char *s, size_t len, uint32_t max, uint32_t *v)
{
	uint64_t acc = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (acc > max)
		return -EINVAL;
	*v = (uint32_t)acc;
	return 0;
}

bool
name_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    is_digit(c) || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

const struct policy_key *
key_find(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nkeys; i++)
		if (strcmp(p->keys[i]->name, name) == 0)
			return p->keys[i];
	return NULL;
}
