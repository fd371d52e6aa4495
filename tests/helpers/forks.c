/*
 * forks: copies of a process made around the fork() symbol, with a sealed
 * connection open (tests/integration/58-forks.sh), against an echo server
 * on 127.0.0.1:PORT.
 *
 *   forks vfork PORT     a vfork() child closes its copy of the fd and
 *                        exits; the parent's connection goes on
 *   forks clone PORT     a clone() child (no CLONE_VM) uses connection A
 *                        after the parent closed its copy and opened B;
 *                        both exchanges must be exact
 *   forks sysclone PORT  the same with syscall(SYS_clone, SIGCHLD, 0, …)
 *
 * Exits 0 when every exchange was exact.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;

static int
dial(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

/* Send LINE and read it back; 0 if exact. */
static int
echo(int fd, const char *line)
{
	size_t want = strlen(line), got = 0;
	char buf[256];
	ssize_t n;

	if (write(fd, line, want) != (ssize_t)want) {
		fprintf(stderr, "write: %s\n", strerror(errno));
		return 1;
	}
	while (got < want) {
		if ((n = read(fd, buf + got, want - got)) <= 0) {
			fprintf(stderr, "read: %s\n", n == 0 ? "EOF" : strerror(errno));
			return 1;
		}
		got += (size_t)n;
	}
	return memcmp(buf, line, want) != 0;
}

static int conn_a;

/* The copy's part: after the parent closed A and opened B, use A. */
static int
child_part(void *arg)
{
	int i, bad = 0;

	(void)arg;
	usleep(300 * 1000);
	for (i = 0; i < 20; i++)
		bad |= echo(conn_a, "child on A\n");
	close(conn_a);
	_exit(bad);
}

static int
wait_child(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, __WALL) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
main(int argc, char **argv)
{
	int fd, b, i, rc;
	volatile int bad = 0;    /* (vfork) */
	pid_t pid;

	if (argc != 3)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	port = atoi(argv[2]);
	if (strcmp(argv[1], "vfork") == 0) {
		fd = dial();
		bad |= echo(fd, "before vfork\n");
		if ((pid = vfork()) == 0) {
			close(fd);
			_exit(0);
		}
		rc = wait_child(pid);
		for (i = 0; i < 20; i++)
			bad |= echo(fd, "parent after vfork\n");
		close(fd);
		printf("vfork child %d, parent %s\n", rc, bad ? "FAILED" : "ok");
		return bad || rc != 0;
	}
	if (strcmp(argv[1], "clone") == 0 || strcmp(argv[1], "sysclone") == 0) {
		conn_a = dial();
		bad |= echo(conn_a, "A before the copy\n");
		if (argv[1][0] == 'c') {
			size_t sz = 256 * 1024;
			char *stack = malloc(sz);

			pid = clone(child_part, stack + sz, SIGCHLD, NULL);
		} else {
			pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
			if (pid == 0)
				child_part(NULL);
		}
		if (pid < 0) {
			perror("clone");
			return 2;
		}
		/* The parent lets A go at once and makes a new connection,
		 * which must not take A's state while the child uses it. */
		close(conn_a);
		b = dial();
		for (i = 0; i < 40; i++) {
			bad |= echo(b, "parent on B\n");
			usleep(20 * 1000);
		}
		close(b);
		rc = wait_child(pid);
		printf("%s child %d, parent %s\n", argv[1], rc,
		    bad ? "FAILED" : "ok");
		return bad || rc != 0;
	}
	return 2;
}
