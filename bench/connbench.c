/*
 * connbench: the TCP client of bench/run.sh.  Blocking sockets, TCP_NODELAY,
 * SO_RCVTIMEO/SO_SNDTIMEO bounded by TIMEOUT_S.  Talks to an echo server.
 *
 *   connbench conn HOST PORT N TIMEOUT_S
 *       N sequential socket, connect, send 1 byte, recv 1 byte, close.
 *       Latency per connection is socket() to the echoed byte.
 *   connbench ping HOST PORT N SIZE TIMEOUT_S
 *       one connection, 200 warm-up then N round trips of SIZE bytes.
 *   connbench hold HOST PORT N TIMEOUT_S
 *       prints "BASE", waits for SIGUSR1 (so the caller can read VmRSS
 *       first), opens N connections with a 1-byte echo on each, prints
 *       "READY n", then waits for SIGUSR1 or SIGTERM and closes them all.
 *
 * conn and ping print one line of key=value pairs:
 *   mode=.. n=.. ok=.. err=.. secs=.. per_s=.. median_us=.. p99_us=.. min_us=..
 * The exit status is 0 when every operation succeeded, 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in dst;
static struct timeval tmo;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int dial(void)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
	if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int echo1(int fd)
{
	char c = 'x';
	return send_all(fd, &c, 1) == 0 && recv_all(fd, &c, 1) == 0 && c == 'x' ? 0 : -1;
}

static void report(const char *mode, long n, long ok, double secs, double *lat)
{
	double med = 0, p99 = 0, mn = 0;
	if (ok > 0) {
		qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
		med = lat[ok / 2];
		p99 = lat[(long)((double)(ok - 1) * 0.99)];
		mn = lat[0];
	}
	printf("mode=%s n=%ld ok=%ld err=%ld secs=%.3f per_s=%.1f median_us=%.1f p99_us=%.1f min_us=%.1f\n",
	       mode, n, ok, n - ok, secs, secs > 0 ? (double)ok / secs : 0.0, med, p99, mn);
}

static int run_conn(long n)
{
	double *lat = calloc((size_t)n, sizeof *lat);
	long ok = 0, fails_in_row = 0;
	double t0 = now_us();
	for (long i = 0; i < n && fails_in_row < 20; i++) {
		double a = now_us();
		int fd = dial();
		if (fd < 0 || echo1(fd) < 0) {
			if (fd >= 0)
				close(fd);
			fails_in_row++;
			continue;
		}
		close(fd);
		fails_in_row = 0;
		lat[ok++] = now_us() - a;
	}
	double secs = (now_us() - t0) / 1e6;
	report("conn", n, ok, secs, lat);
	return ok == n ? 0 : 1;
}

static int run_ping(long n, size_t size)
{
	char *buf = malloc(size), *back = malloc(size);
	double *lat = calloc((size_t)n, sizeof *lat);
	memset(buf, 'p', size);
	int fd = dial();
	if (fd < 0) {
		perror("connbench: connect");
		report("ping", n, 0, 0, lat);
		return 1;
	}
	for (int i = 0; i < 200; i++)
		if (send_all(fd, buf, size) < 0 || recv_all(fd, back, size) < 0) {
			perror("connbench: warm-up");
			report("ping", n, 0, 0, lat);
			return 1;
		}
	long ok = 0;
	double t0 = now_us();
	for (long i = 0; i < n; i++) {
		double a = now_us();
		if (send_all(fd, buf, size) < 0 || recv_all(fd, back, size) < 0)
			break;
		lat[ok++] = now_us() - a;
	}
	double secs = (now_us() - t0) / 1e6;
	close(fd);
	report("ping", n, ok, secs, lat);
	return ok == n ? 0 : 1;
}

static int run_hold(long n, int timeout_s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	struct timespec wait = { .tv_sec = timeout_s };

	int *fds = calloc((size_t)n, sizeof *fds);
	printf("BASE %d\n", (int)getpid());
	fflush(stdout);
	if (sigtimedwait(&set, NULL, &wait) != SIGUSR1)
		return 1;
	long ok = 0;
	for (long i = 0; i < n; i++) {
		int fd = dial();
		if (fd < 0 || echo1(fd) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		fds[ok++] = fd;
	}
	printf("READY %ld\n", ok);
	fflush(stdout);
	sigtimedwait(&set, NULL, &wait);
	for (long i = 0; i < ok; i++)
		close(fds[i]);
	return ok == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 6 || (strcmp(argv[1], "ping") == 0 && argc < 7)) {
		fprintf(stderr, "usage: %s conn|hold HOST PORT N TIMEOUT_S\n"
				"       %s ping HOST PORT N SIZE TIMEOUT_S\n", argv[0], argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
		fprintf(stderr, "connbench: bad address %s\n", argv[2]);
		return 2;
	}
	long n = atol(argv[4]);
	int timeout_s = atoi(argv[argc - 1]);
	tmo.tv_sec = timeout_s;
	if (n <= 0)
		return 2;
	if (strcmp(argv[1], "conn") == 0)
		return run_conn(n);
	if (strcmp(argv[1], "ping") == 0)
		return run_ping(n, (size_t)atol(argv[5]));
	if (strcmp(argv[1], "hold") == 0)
		return run_hold(n, timeout_s);
	fprintf(stderr, "connbench: unknown mode %s\n", argv[1]);
	return 2;
}
