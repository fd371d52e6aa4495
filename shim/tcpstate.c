/*
 * tcpstate: what the kernel's TCP socket knows about the connection's end,
 * for the session's emulation of TCP's endings (session_poll.c).  One
 * getsockopt(TCP_INFO); kept apart because <linux/tcp.h>, which has the
 * fields we need, clashes with <netinet/tcp.h>.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include "real.h"
#include "tcpstate.h"

int
tcpstate_get(int fd, struct tcpstate *ts)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int saved = errno, r;

	memset(&ti, 0, sizeof(ti));
	r = real_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
	if (r < 0) {
		r = -errno;
		errno = saved;
		return r;
	}
	/* tcpi_bytes_acked arrived in Linux 4.1: older kernels give less. */
	if (len < offsetof(struct tcp_info, tcpi_bytes_acked) +
	    sizeof(ti.tcpi_bytes_acked))
		return -ENOPROTOOPT;
	ts->state = ti.tcpi_state;
	ts->acked = ti.tcpi_bytes_acked;
	return 0;
}
