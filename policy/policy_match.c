/*
 * policy_match: which rule a connection matches, and ADDR:PORTS written out
 * for messages.  Only reads a finished policy: no lock, no allocation, no
 * system call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"
#include "policy_int.h"

/* Does the rule's address part match the 4- or 16-byte address A? */
static bool
addr_match(const struct policy_rule *r, int family, const uint8_t *a)
{
	int full, bits;

	if (r->family == 0)
		return true;
	if (r->family != family)
		return false;
	full = r->prefix / 8;
	bits = r->prefix % 8;
	if (memcmp(r->addr, a, (size_t)full) != 0)
		return false;
	if (bits != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits));

		if ((r->addr[full] ^ a[full]) & mask)
			return false;
	}
	return true;
}

/*
 * The address and port of SA, as rules see them (every length the kernel
 * accepts for the family): an IPv4-mapped IPv6
 * address becomes IPv4.  Returns the family (AF_INET, AF_INET6) with A
 * (4 or 16 bytes) and *PORT set, or 0 for anything else.
 */
#ifndef SIN6_LEN_RFC2133
#define SIN6_LEN_RFC2133 24
#endif

static int
addr_norm(const struct sockaddr *sa, socklen_t salen, uint8_t a[16],
    uint16_t *port)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;

	if (sa == NULL || salen < (socklen_t)sizeof(sa_family_t))
		return 0;
	if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(s4)) {
		memcpy(&s4, sa, sizeof(s4));
		memcpy(a, &s4.sin_addr, 4);
		*port = ntohs(s4.sin_port);
		return AF_INET;
	}
	/* The kernel takes a sockaddr_in6 without its scope id (RFC 2133's
	 * 24 bytes) too: so does the match. */
	if (sa->sa_family == AF_INET6 && salen >= (socklen_t)SIN6_LEN_RFC2133) {
		memset(&s6, 0, sizeof(s6));
		memcpy(&s6, sa, salen < (socklen_t)sizeof(s6) ? salen :
		    sizeof(s6));
		*port = ntohs(s6.sin6_port);
		if (memcmp(s6.sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
			memcpy(a, s6.sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(a, s6.sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

static enum policy_miss
rule_test(const struct policy_rule *r, enum policy_dir dir, int family,
    const uint8_t *a, uint16_t port)
{
	if (r->dir != dir)
		return POLICY_MISS_DIR;
	if (r->family != 0 && r->family != family)
		return POLICY_MISS_FAMILY;
	if (!addr_match(r, family, a))
		return POLICY_MISS_ADDR;
	if (port < r->port_lo || port > r->port_hi)
		return POLICY_MISS_PORT;
	return POLICY_HIT;
}

enum policy_miss
policy_rule_test(const struct policy_rule *r, enum policy_dir dir,
    const struct sockaddr *sa, socklen_t salen)
{
	uint8_t a[16];
	uint16_t port;
	int family;

	if ((family = addr_norm(sa, salen, a, &port)) == 0)
		return POLICY_MISS_FAMILY;
	return rule_test(r, dir, family, a, port);
}

const struct policy_rule *
policy_match(const struct policy *p, enum policy_dir dir,
    const struct sockaddr *sa, socklen_t salen)
{
	uint8_t a[16];
	uint16_t port;
	int family;
	size_t i;

	if (p == NULL || !p->finished ||
	    (family = addr_norm(sa, salen, a, &port)) == 0)
		return NULL;
	for (i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (rule_test(r, dir, family, a, port) == POLICY_HIT)
			return r;
	}
	return NULL;
}

const char *
policy_format_addrports(const struct policy_rule *r,
    char buf[POLICY_ADDRPORTSLEN])
{
	char a[INET6_ADDRSTRLEN], pfx[8] = "", ports[16];

	if (r->port_lo == 0 && r->port_hi == 65535)
		snprintf(ports, sizeof(ports), "*");
	else if (r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), "%u", r->port_lo);
	else
		snprintf(ports, sizeof(ports), "%u-%u", r->port_lo, r->port_hi);

	if (r->family == 0) {
		snprintf(buf, POLICY_ADDRPORTSLEN, "*:%s", ports);
		return buf;
	}
	if (inet_ntop(r->family, r->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	if (r->prefix != (r->family == AF_INET ? 32 : 128))
		snprintf(pfx, sizeof(pfx), "/%d", r->prefix);
	if (r->family == AF_INET)
		snprintf(buf, POLICY_ADDRPORTSLEN, "%s%s:%s", a, pfx, ports);
	else
		snprintf(buf, POLICY_ADDRPORTSLEN, "[%s]%s:%s", a, pfx, ports);
	return buf;
}
