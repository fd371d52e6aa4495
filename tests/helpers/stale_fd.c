/*
 * stale_fd HOST PORT FILE: connect (sealed, under the shim), send a line,
 * then close the socket with a raw system call that no interposer sees,
 * open FILE (which gets the same fd number), write a known text into it
 * with write() and read it back with read().  Exit 0 when the file holds
 * exactly that text: the shim must not treat the new fd as the old sealed
 * socket.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static long
raw_close(int fd)
{
	long ret;

	__asm__ volatile ("syscall" : "=a"(ret) : "a"((long)SYS_close), "D"((long)fd)
	    : "rcx", "r11", "memory");
	return ret;
}

int
main(int argc, char **argv)
{
	static const char text[] = "a file, not a socket\n";
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[64];
	int fd, f;
	ssize_t n;

	if (argc != 4)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	if (write(fd, "hello\n", 6) != 6) {
		perror("write socket");
		return 1;
	}
	if (raw_close(fd) != 0)
		return 1;
	if ((f = open(argv[3], O_RDWR | O_CREAT | O_TRUNC, 0600)) != fd) {
		fprintf(stderr, "open gave fd %d, not %d\n", f, fd);
		return 3;
	}
	if ((n = write(f, text, sizeof(text) - 1)) != (ssize_t)sizeof(text) - 1) {
		perror("write file");
		return 1;
	}
	if (lseek(f, 0, SEEK_SET) != 0 ||
	    (n = read(f, buf, sizeof(buf))) != (ssize_t)sizeof(text) - 1 ||
	    memcmp(buf, text, sizeof(text) - 1) != 0) {
		fprintf(stderr, "read back %zd bytes\n", n);
		return 1;
	}
	return close(f) == 0 ? 0 : 1;
}
