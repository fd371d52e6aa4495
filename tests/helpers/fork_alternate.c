/*
 * fork_alternate: one TCP connection written by two processes after fork().
 * A plain program: never linked to the shim (the tests run it sealed).
 *
 *   fork_alternate PORT MODE ROUNDS EXPECTED_FILE
 *
 * Connects to 127.0.0.1:PORT (blocking), writes the whole byte stream it is
 * about to send to EXPECTED_FILE first, then fork()s.  The stream is a
 * sequence of chunks; chunk k has a size in [1, 100000] and pseudo-random
 * contents, both derived from k, so the receiver can be checked with cmp.
 * Strict alternation between the processes uses two pipes: a process writes
 * its chunk completely, then passes the turn.
 *
 * MODE:
 *   alt        parent writes chunks 0,2,4..., child 1,3,5... (ROUNDS each);
 *              the child close()s its copy and exit(0)s; the parent waits
 *              for it, then close()s.
 *   alt_exit   as alt, but the child _exit(0)s without closing; after
 *              reaping it the parent writes ROUNDS more chunks alone and
 *              close()s.
 *   handoff    the parent close()s its copy right after fork() (as socat
 *              fork and postgres do); the child writes 2*ROUNDS chunks,
 *              close()s and exit(0)s; the parent waits.
 *   handoff_exit  as handoff, but the child ends with exit(0) without
 *              closing (the shim's exit path must end the stream).
 *   bystander  the child never touches the connection: the parent writes
 *              ROUNDS chunks, lets the child exit(0) (not _exit), reaps it,
 *              then writes ROUNDS more chunks and close()s.
 *
 * Exit status: 0 when every write succeeded in both processes (and the
 * child exited 0), 1 on an I/O error, 2 on usage errors.  Lines on stderr
 * say what failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXCHUNK 100000

static unsigned char buf[MAXCHUNK];

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Chunk K into buf; returns its size. */
static size_t
chunk(unsigned k)
{
	uint64_t st = mix(k + 0x9e3779b97f4a7c15ULL);
	size_t n, i;

	/* mostly spread over 1..100000, with some tiny ones */
	n = (k % 7 == 3) ? 1 + st % 64 : 1 + st % MAXCHUNK;
	for (i = 0; i < n; i += 8) {
		st = mix(st + i);
		memcpy(buf + i, &st, n - i < 8 ? n - i : 8);
	}
	return n;
}

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

static int
send_chunk(int fd, unsigned k, const char *who)
{
	size_t n = chunk(k);

	if (write_all(fd, buf, n) != 0) {
		fprintf(stderr, "fork_alternate: %s: write of chunk %u (%zu bytes)"
		    " failed: %s\n", who, k, n, strerror(errno));
		return -1;
	}
	return 0;
}

/* Pass the turn: one byte on the pipe. */
static void
give(int p)
{
	char c = 't';

	while (write(p, &c, 1) < 0 && errno == EINTR)
		;
}

/* Wait for the turn; 0, or -1 when the other process is gone. */
static int
take(int p)
{
	char c;
	ssize_t n;

	do
		n = read(p, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static int
reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fork_alternate: child ended with status 0x%x\n",
		    st);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	int fd, p2c[2], c2p[2], rc = 0;
	unsigned rounds, k, total;
	const char *mode;
	FILE *ex;
	pid_t pid;

	if (argc != 5) {
		fprintf(stderr, "usage: fork_alternate PORT "
		    "alt|alt_exit|handoff|handoff_exit|bystander ROUNDS EXPECTED\n");
		return 2;
	}
	mode = argv[2];
	rounds = (unsigned)atoi(argv[3]);
	if (strcmp(mode, "alt") && strcmp(mode, "alt_exit") &&
	    strcmp(mode, "handoff") && strcmp(mode, "handoff_exit") &&
	    strcmp(mode, "bystander")) {
		fprintf(stderr, "fork_alternate: unknown mode %s\n", mode);
		return 2;
	}
	total = strcmp(mode, "alt_exit") == 0 ? 3 * rounds : 2 * rounds;

	ex = fopen(argv[4], "wb");
	if (ex == NULL) {
		perror("fork_alternate: expected file");
		return 2;
	}
	for (k = 0; k < total; k++) {
		size_t n = chunk(k);

		if (fwrite(buf, 1, n, ex) != n) {
			perror("fork_alternate: expected file");
			return 2;
		}
	}
	fclose(ex);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("fork_alternate: connect");
		return 1;
	}
	if (pipe(p2c) != 0 || pipe(c2p) != 0) {
		perror("fork_alternate: pipe");
		return 2;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork_alternate: fork");
		return 1;
	}

	if (pid == 0) {
		close(p2c[1]);
		close(c2p[0]);
		if (!strcmp(mode, "alt") || !strcmp(mode, "alt_exit")) {
			for (k = 1; k < 2 * rounds; k += 2) {
				if (take(p2c[0]) != 0) {
					fprintf(stderr, "fork_alternate: child: "
					    "parent gone at chunk %u\n", k);
					_exit(1);
				}
				if (send_chunk(fd, k, "child") != 0)
					_exit(1);
				give(c2p[1]);
			}
			if (!strcmp(mode, "alt_exit"))
				_exit(0);       /* no close, no exit handlers */
			if (close(fd) != 0) {
				perror("fork_alternate: child: close");
				exit(1);
			}
			exit(0);
		}
		if (!strcmp(mode, "handoff") || !strcmp(mode, "handoff_exit")) {
			/* wait until the parent has closed its copy */
			if (take(p2c[0]) != 0)
				_exit(1);
			for (k = 0; k < total; k++)
				if (send_chunk(fd, k, "child") != 0)
					exit(1);
			if (!strcmp(mode, "handoff_exit"))
				exit(0);        /* the shim's exit path ends it */
			if (close(fd) != 0) {
				perror("fork_alternate: child: close");
				exit(1);
			}
			exit(0);
		}
		/* bystander: never touch fd; exit(0) when told */
		(void)take(p2c[0]);
		exit(0);
	}

	close(p2c[0]);
	close(c2p[1]);
	if (!strcmp(mode, "alt") || !strcmp(mode, "alt_exit")) {
		for (k = 0; k < 2 * rounds; k += 2) {
			if (send_chunk(fd, k, "parent") != 0) {
				rc = 1;
				break;
			}
			give(p2c[1]);
			if (take(c2p[0]) != 0) {
				fprintf(stderr, "fork_alternate: parent: child "
				    "gone after chunk %u\n", k);
				rc = 1;
				break;
			}
		}
		close(p2c[1]);
		if (reap(pid) != 0)
			rc = 1;
		for (k = 2 * rounds; rc == 0 && k < total; k++)
			if (send_chunk(fd, k, "parent") != 0)
				rc = 1;
	} else if (!strcmp(mode, "handoff") || !strcmp(mode, "handoff_exit")) {
		if (close(fd) != 0) {
			perror("fork_alternate: parent: close");
			rc = 1;
		}
		give(p2c[1]);
		close(p2c[1]);
		if (reap(pid) != 0)
			rc = 1;
		return rc;
	} else {
		for (k = 0; k < rounds; k++)
			if (send_chunk(fd, k, "parent") != 0) {
				rc = 1;
				break;
			}
		give(p2c[1]);
		close(p2c[1]);
		if (reap(pid) != 0)
			rc = 1;
		for (k = rounds; rc == 0 && k < total; k++)
			if (send_chunk(fd, k, "parent") != 0)
				rc = 1;
	}
	if (close(fd) != 0) {
		perror("fork_alternate: parent: close");
		rc = 1;
	}
	return rc;
}
