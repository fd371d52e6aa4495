/*
 * echo_server: a single-threaded, level-triggered epoll echo server for the
 * benchmarks in bench/run.sh.
 *
 *   echo_server ADDR PORT MAX_SECONDS
 *
 * Listens on ADDR:PORT (IPv4), echoes every byte back, keeps no state for a
 * connection unless a write was short (then the rest is kept and EPOLLIN is
 * dropped until EPOLLOUT flushes it).  Prints "LISTENING port" once bound.
 * Ends by itself after MAX_SECONDS (alarm) so a lost harness leaves nothing
 * behind.  It never links the shim; bench/run.sh preloads it when the server
 * side must be sealed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536

struct pending {
	size_t len, off;
	char buf[];
};

static struct pending *pend[MAXFD];
static char iobuf[65536];

static void conn_close(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	if (fd < MAXFD) {
		free(pend[fd]);
		pend[fd] = NULL;
	}
}

static int set_events(int ep, int fd, unsigned ev)
{
	struct epoll_event e = { .events = ev, .data.fd = fd };
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

/* Write what is pending; 0 when flushed, 1 when still pending, -1 on error. */
static int flush_pending(int ep, int fd)
{
	struct pending *p = pend[fd];
	while (p->off < p->len) {
		ssize_t w = write(fd, p->buf + p->off, p->len - p->off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		p->off += (size_t)w;
	}
	free(p);
	pend[fd] = NULL;
	return set_events(ep, fd, EPOLLIN) < 0 ? -1 : 0;
}

static void on_readable(int ep, int fd)
{
	for (;;) {
		ssize_t r = read(fd, iobuf, sizeof iobuf);
		if (r == 0) {
			conn_close(ep, fd);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(ep, fd);
			return;
		}
		size_t off = 0;
		while (off < (size_t)r) {
			ssize_t w = write(fd, iobuf + off, (size_t)r - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_close(ep, fd);
				return;
			}
			if (w < 0) {
				size_t rest = (size_t)r - off;
				struct pending *p = malloc(sizeof *p + rest);
				if (!p) {
					conn_close(ep, fd);
					return;
				}
				p->len = rest;
				p->off = 0;
				memcpy(p->buf, iobuf + off, rest);
				pend[fd] = p;
				if (set_events(ep, fd, EPOLLOUT) < 0)
					conn_close(ep, fd);
				return;
			}
			off += (size_t)w;
		}
		if ((size_t)r < sizeof iobuf)
			return;	/* level-triggered: anything left wakes us again */
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s ADDR PORT MAX_SECONDS\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)atoi(argv[3]));

	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "echo_server: bad address %s\n", argv[1]);
		return 2;
	}
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(ls, 4096) < 0) {
		perror("echo_server: listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = { .events = EPOLLIN, .data.fd = ls };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e) < 0) {
		perror("echo_server: epoll");
		return 1;
	}
	printf("LISTENING %s\n", argv[2]);
	fflush(stdout);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_server: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				for (;;) {
					int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0)
						break;
					if (c >= MAXFD) {
						close(c);
						continue;
					}
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) < 0)
						close(c);
				}
				continue;
			}
			if (pend[fd]) {
				if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
					int r = flush_pending(ep, fd);
					if (r < 0)
						conn_close(ep, fd);
				}
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(ep, fd);
		}
	}
}
