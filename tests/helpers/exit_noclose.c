/*
 * exit_noclose: connect to 127.0.0.1:PORT, write data with write(), then end
 * the process WITHOUT closing the socket.  A plain program: never linked to
 * the shim (tests run it under LD_PRELOAD).
 *
 *   exit_noclose PORT HOW (-f FILE | -n BYTES)
 *     HOW: return   return from main (atexit handlers and destructors run)
 *          exit     exit(0)
 *          _exit    _exit(0) (no destructors, but the shim ends the stream: TCP FINs)
 *          kill     raise(SIGKILL) on itself
 *     -f FILE       send FILE's contents
 *     -n BYTES      send BYTES bytes of a fixed pattern (byte i = i * 7 + 3)
 *
 * Exit status 2 on a usage or I/O error (before the chosen ending).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: exit_noclose PORT return|exit|_exit|kill "
	    "(-f FILE | -n BYTES)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	unsigned char buf[65536];
	const char *how;
	long long want = -1, sent = 0;
	int fd, in = -1;
	size_t i, c;
	ssize_t n;

	if (argc != 5)
		usage();
	how = argv[2];
	if (strcmp(how, "return") && strcmp(how, "exit") &&
	    strcmp(how, "_exit") && strcmp(how, "kill"))
		usage();
	if (strcmp(argv[3], "-f") == 0) {
		if ((in = open(argv[4], O_RDONLY)) < 0) {
			perror(argv[4]);
			return 2;
		}
	} else if (strcmp(argv[3], "-n") == 0) {
		want = atoll(argv[4]);
	} else {
		usage();
	}

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		perror("socket");
		return 2;
	}
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("connect");
		return 2;
	}

	if (in >= 0) {
		while ((n = read(in, buf, sizeof(buf))) > 0) {
			if (write_all(fd, buf, (size_t)n) < 0) {
				perror("write");
				return 2;
			}
			sent += n;
		}
		if (n < 0) {
			perror("read");
			return 2;
		}
		close(in);
	} else {
		while (sent < want) {
			c = want - sent < (long long)sizeof(buf) ?
			    (size_t)(want - sent) : sizeof(buf);
			for (i = 0; i < c; i++)
				buf[i] = (unsigned char)((sent + (long long)i) *
				    7 + 3);
			if (write_all(fd, buf, c) < 0) {
				perror("write");
				return 2;
			}
			sent += (long long)c;
		}
	}
	fprintf(stderr, "exit_noclose: wrote %lld bytes, ending by %s\n", sent,
	    how);

	/* fd stays open on purpose in every variant */
	if (strcmp(how, "exit") == 0)
		exit(0);
	if (strcmp(how, "_exit") == 0)
		_exit(0);
	if (strcmp(how, "kill") == 0) {
		raise(SIGKILL);
		_exit(3);       /* not reached */
	}
	return 0;
}
