/*
 * leakpaths: each of the ways glibc and the kernel offer to move bytes
 * that no plain write() hook sees, used on a connection to an echo server
 * (tests/integration/57-leakpaths.sh).
 *
 *   leakpaths MODE HOST PORT MARKER
 *
 * MODE sends "MARKER MODE\n" through its path and reads the echo back with
 * read(); exit 0 when the echo is exact (or, for aio, when the path either
 * worked or failed with an error), 77 when the system lacks the feature
 * (MPTCP), 1 otherwise.  Modes: stdio-dup2, fdopen-early, dprintf,
 * pwritev2, aio, fastopen-sendmsg, fastopen-sendmmsg, v6short, mptcp.
 */
#include <aio.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static struct sockaddr_storage dst;
static socklen_t dstlen;

static void
resolve(const char *host, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

	memset(&dst, 0, sizeof(dst));
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		dstlen = sizeof(*s6);
	} else {
		inet_pton(AF_INET, host, &s4->sin_addr);
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		dstlen = sizeof(*s4);
	}
}

static int
sock(int proto)
{
	int fd = socket(dst.ss_family, SOCK_STREAM, proto);

	if (fd < 0 && proto == IPPROTO_MPTCP) {
		printf("no MPTCP here: %s\n", strerror(errno));
		exit(77);
	}
	if (fd < 0) {
		perror("socket");
		exit(2);
	}
	return fd;
}

static int
dial(int proto, socklen_t len)
{
	int fd = sock(proto);

	if (connect(fd, (struct sockaddr *)&dst, len) < 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

/* Read LINE back from FD; 0 if exact. */
static int
echoed(int fd, const char *line)
{
	size_t want = strlen(line), got = 0;
	char buf[512];
	ssize_t n;

	while (got < want) {
		n = read(fd, buf + got, want - got);
		if (n <= 0) {
			fprintf(stderr, "echo: %s after %zu bytes\n",
			    n == 0 ? "EOF" : strerror(errno), got);
			return 1;
		}
		got += (size_t)n;
	}
	if (memcmp(buf, line, want) != 0) {
		fprintf(stderr, "echo: different bytes\n");
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *mode;
	char line[256];
	struct iovec v;
	int fd, r;

	if (argc != 5) {
		fprintf(stderr, "usage: leakpaths MODE HOST PORT MARKER\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	mode = argv[1];
	resolve(argv[2], atoi(argv[3]));
	snprintf(line, sizeof(line), "%s %s\n", argv[4], mode);
	v.iov_base = line;
	v.iov_len = strlen(line);

	if (strcmp(mode, "stdio-dup2") == 0) {
		int out = dup(1);

		fd = dial(0, dstlen);
		printf("%s", "");               /* stdout exists before */
		if (dup2(fd, 1) < 0)
			return 2;
		printf("%s", line);
		if (fflush(stdout) != 0)
			return 1;
		r = echoed(fd, line);
		dup2(out, 1);
		return r;
	}
	if (strcmp(mode, "fdopen-early") == 0) {
		FILE *f;

		fd = sock(0);
		if ((f = fdopen(fd, "r+")) == NULL)
			return 2;
		if (connect(fd, (struct sockaddr *)&dst, dstlen) < 0)
			return 2;
		if (fileno(f) != fd) {
			fprintf(stderr, "fileno %d, not %d\n", fileno(f), fd);
			return 1;
		}
		fputs(line, f);
		if (fflush(f) != 0)
			return 1;
		return echoed(fd, line);
	}
	if (strcmp(mode, "dprintf") == 0) {
		fd = dial(0, dstlen);
		if (dprintf(fd, "%s", line) != (int)strlen(line))
			return 1;
		return echoed(fd, line);
	}
	if (strcmp(mode, "pwritev2") == 0) {
		char buf[256] = { 0 };
		struct iovec in = { buf, strlen(line) };
		size_t got = 0;
		ssize_t n;

		fd = dial(0, dstlen);
		if (pwritev2(fd, &v, 1, 0, 0) >= 0 || errno != ESPIPE) {
			fprintf(stderr, "pwritev2 at offset 0: not ESPIPE\n");
			return 1;
		}
		if (pwritev2(fd, &v, 1, -1, 0) != (ssize_t)v.iov_len)
			return 1;
		while (got < v.iov_len) {
			in.iov_base = buf + got;
			in.iov_len = v.iov_len - got;
			if ((n = preadv2(fd, &in, 1, -1, 0)) <= 0)
				return 1;
			got += (size_t)n;
		}
		return memcmp(buf, line, v.iov_len) != 0;
	}
	if (strcmp(mode, "aio") == 0) {
		struct aiocb cb;
		const struct aiocb *l[1] = { &cb };

		fd = dial(0, dstlen);
		memset(&cb, 0, sizeof(cb));
		cb.aio_fildes = fd;
		cb.aio_buf = line;
		cb.aio_nbytes = strlen(line);
		if (aio_write(&cb) < 0) {
			printf("aio_write: failed: %s\n", strerror(errno));
			/* The connection still works by the usual calls. */
			if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
				return 1;
			return echoed(fd, line);
		}
		aio_suspend(l, 1, NULL);
		if ((r = aio_error(&cb)) != 0) {
			printf("aio_write: failed later: %s\n", strerror(r));
			return r > 0 ? 0 : 1;
		}
		if (aio_return(&cb) != (ssize_t)strlen(line))
			return 1;
		printf("aio_write: worked\n");
		return echoed(fd, line);
	}
	if (strcmp(mode, "fastopen-sendmsg") == 0 ||
	    strcmp(mode, "fastopen-sendmmsg") == 0) {
		struct msghdr m = { .msg_name = &dst, .msg_namelen = dstlen,
		    .msg_iov = &v, .msg_iovlen = 1 };
		struct mmsghdr mm = { .msg_hdr = m };

		fd = sock(0);
		if (strcmp(mode, "fastopen-sendmsg") == 0)
			r = (int)sendmsg(fd, &m, MSG_FASTOPEN);
		else
			r = sendmmsg(fd, &mm, 1, MSG_FASTOPEN) == 1 ?
			    (int)mm.msg_len : -1;
		if (r != (int)v.iov_len) {
			fprintf(stderr, "%s: %d (%s)\n", mode, r, strerror(errno));
			return 1;
		}
		return echoed(fd, line);
	}
	if (strcmp(mode, "v6short") == 0) {
		fd = dial(0, 24);       /* a sockaddr_in6 without scope id */
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			return 1;
		return echoed(fd, line);
	}
	if (strcmp(mode, "mptcp") == 0) {
		fd = dial(IPPROTO_MPTCP, dstlen);
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			return 1;
		return echoed(fd, line);
	}
	fprintf(stderr, "leakpaths: unknown mode %s\n", mode);
	return 2;
}
