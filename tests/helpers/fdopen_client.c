/*
 * fdopen_client HOST PORT: connect, fdopen() the socket, fputs() each line of
 * stdin to it, shutdown the write side through fflush, then copy everything
 * the server sends back to stdout with fgets(), and fclose() the stream.
 * A plain program: the test runs it under the shim to check that stdio on a
 * sealed socket is sealed too.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char line[4096];
	FILE *f;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: fdopen_client HOST PORT\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	if ((f = fdopen(fd, "r+")) == NULL) {
		perror("fdopen");
		return 1;
	}
	while (fgets(line, sizeof(line), stdin) != NULL)
		fputs(line, f);
	if (fflush(f) != 0 || shutdown(fd, SHUT_WR) < 0) {
		perror("flush");
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stdout);
	if (ferror(f)) {
		perror("read");
		return 1;
	}
	return fclose(f) == 0 ? 0 : 1;
}
