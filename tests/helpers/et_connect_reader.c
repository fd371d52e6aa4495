/*
 * et_connect_reader: nginx's upstream read pattern without nginx.  A plain
 * program (never linked with the shim), run sealed under LD_PRELOAD against
 * a sealed server that sends BYTES and closes.
 *
 *   et_connect_reader PORT BYTES early|late [silent]
 *
 * early: the socket is registered with epoll (EPOLLIN|EPOLLOUT|EPOLLRDHUP|
 * EPOLLET) before connect(), as ngx_event_connect_peer does; late: after
 * connect().  At its first EPOLLOUT the program writes a request line, as
 * nginx does (silent: it never writes: a server-speaks-first protocol).
 * The reader then does what ngx_readv_chain does with
 * EPOLLRDHUP and FIONREAD: after each EPOLLIN, "available" is unknown; a
 * readv that fills all nine 4 KiB buffers asks FIONREAD how much is left,
 * and later reads count it down; when it reaches 0, or a read returns more
 * than it said (negative: "more arrived since", which on TCP raised an edge
 * of its own) or less than asked, the socket counts as drained and the
 * reader waits for the next edge -- unless EPOLLRDHUP was reported
 * (nginx's pending_eof), when it reads on to the end.  Every 256 KiB it pauses (nginx with its
 * buffers full), then resumes reading without waiting for an edge.
 *
 * Prints "got N of BYTES" and exits 0 when all BYTES and the end arrived;
 * "stall: ..." and 1 when no event came for 5 s before the end; 2 on a
 * setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NBUF    9
#define BUFSZ   4096
#define PAUSE_EVERY (256 * 1024)

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int
main(int argc, char **argv)
{
	static char bufs[NBUF][BUFSZ];
	struct iovec iov[NBUF];
	struct sockaddr_in sa;
	struct epoll_event ev, out;
	long long want, got = 0, next_pause = PAUSE_EVERY;
	int fd, ep, early, i, n, avail = -1, ready = 0, events = 0, eof = 0;
	int pending_eof = 0, wrote = argc == 5;
	ssize_t r;

	if (argc < 4 || argc > 5 ||
	    (strcmp(argv[3], "early") && strcmp(argv[3], "late")) ||
	    (argc == 5 && strcmp(argv[4], "silent"))) {
		fprintf(stderr, "usage: et_connect_reader PORT BYTES early|late "
		    "[silent]\n");
		return 2;
	}
	want = atoll(argv[2]);
	early = strcmp(argv[3], "early") == 0;
	for (i = 0; i < NBUF; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = BUFSZ;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    (ep = epoll_create1(0)) < 0) {
		perror("et_connect_reader: socket/epoll_create1");
		return 2;
	}
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = 0x1234;
	if (early && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("et_connect_reader: epoll_ctl");
		return 2;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS) {
		perror("et_connect_reader: connect");
		return 2;
	}
	if (!early && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		perror("et_connect_reader: epoll_ctl");
		return 2;
	}

	while (!eof) {
		if (!ready) {
			n = epoll_wait(ep, &out, 1, 5000);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				perror("et_connect_reader: epoll_wait");
				return 2;
			}
			if (n == 0) {
				printf("stall: got %lld of %lld, no event for 5 s "
				    "after %d events\n", got, want, events);
				return 1;
			}
			events++;
			if (out.data.u64 != 0x1234) {
				printf("stall: wrong event data %#llx\n",
				    (unsigned long long)out.data.u64);
				return 1;
			}
			if ((out.events & EPOLLOUT) && !wrote) {
				wrote = 1;
				if (write(fd, "GET /\r\n", 7) != 7) {
					printf("error: write: %s\n",
					    strerror(errno));
					return 1;
				}
			}
			if (!(out.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP |
			    EPOLLERR)))
				continue;
			ready = 1;
			avail = -1;
			if (out.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				pending_eof = 1;
		}
		if (got >= next_pause) {
			/* buffers full: stop reading for a while, then go on
			 * (still "ready": no edge is awaited) */
			next_pause += PAUSE_EVERY;
			pause_ms(30);
		}
		if (avail == 0 && !pending_eof) {
			ready = 0;
			continue;
		}
		r = readv(fd, iov, NBUF);
		if (r == 0) {
			eof = 1;
			break;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				ready = 0;
				continue;
			}
			printf("error: readv: %s after %lld of %lld\n",
			    strerror(errno), got, want);
			return 1;
		}
		got += r;
		if (avail >= 0) {
			avail -= (int)r;
			if (avail < 0) {
				avail = 0;
				ready = 0;
			}
		} else if (r == NBUF * BUFSZ) {
			if (ioctl(fd, FIONREAD, &avail) < 0) {
				perror("et_connect_reader: FIONREAD");
				return 2;
			}
		}
		if (r < NBUF * BUFSZ) {
			if (!pending_eof)
				ready = 0;
			avail = 0;
		}
	}
	printf("got %lld of %lld\n", got, want);
	return got == want ? 0 : 1;
}
