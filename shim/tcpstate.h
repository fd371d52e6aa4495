/*
 * tcpstate: the kernel's view of a TCP socket (TCP_INFO), for emulating
 * TCP's endings over sealed records.
 */
#ifndef SOCKSEAL_TCPSTATE_H
#define SOCKSEAL_TCPSTATE_H

#include <stdint.h>

#define TCPSTATE_CLOSE 7        /* TCP_CLOSE in the kernel's numbering */

struct tcpstate {
	int      state;         /* TCP_ESTABLISHED (1) … TCP_CLOSE (7) … */
	uint64_t acked;         /* bytes the peer acknowledged; the
	                         * initiator's count includes its SYN */
};

/* tcpstate_get(fd, ts): 0, or -errno (errno kept). */
int tcpstate_get(int fd, struct tcpstate *ts);

#endif
