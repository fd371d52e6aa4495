/*
 * startloop: process start cost, the fallback of bench/run.sh when hyperfine
 * is missing.
 *
 *   startloop N PRELOAD POLICY PROG [ARGS...]
 *
 * Spawns PROG N times without, then N times with LD_PRELOAD=PRELOAD and
 * SOCKSEAL_POLICY=POLICY added to the environment (startloop itself is never
 * preloaded), waiting for each child.  Repeats the pair 3 times in alternating
 * order and prints the median per-start time of each kind:
 *   plain_us=1142.0 preload_us=1313.0 delta_us=171.0
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

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

/* Median per-start microseconds over n spawns of argv with envp. */
static double batch(int n, char **argv, char **envp)
{
	double *t = calloc((size_t)n, sizeof *t);
	for (int i = 0; i < n; i++) {
		pid_t pid;
		int st;
		double a = now_us();
		if (posix_spawn(&pid, argv[0], NULL, NULL, argv, envp) != 0 ||
		    waitpid(pid, &st, 0) != pid) {
			perror("startloop: spawn");
			exit(1);
		}
		t[i] = now_us() - a;
	}
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	double m = t[n / 2];
	free(t);
	return m;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s N PRELOAD POLICY PROG [ARGS...]\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]);
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **plain = calloc(ne + 1, sizeof *plain), **pre = calloc(ne + 3, sizeof *pre);
	size_t np = 0, nq = 0;
	for (size_t i = 0; i < ne; i++) {
		if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
		    strncmp(environ[i], "SOCKSEAL_POLICY=", 16) == 0)
			continue;
		plain[np++] = environ[i];
		pre[nq++] = environ[i];
	}
	char *lp = malloc(strlen(argv[2]) + 12), *sp = malloc(strlen(argv[3]) + 17);
	sprintf(lp, "LD_PRELOAD=%s", argv[2]);
	sprintf(sp, "SOCKSEAL_POLICY=%s", argv[3]);
	pre[nq++] = lp;
	pre[nq++] = sp;

	double p[3], q[3];
	batch(20, argv + 4, plain);	/* warm-up */
	batch(20, argv + 4, pre);
	for (int r = 0; r < 3; r++) {
		if (r % 2 == 0) {
			p[r] = batch(n, argv + 4, plain);
			q[r] = batch(n, argv + 4, pre);
		} else {
			q[r] = batch(n, argv + 4, pre);
			p[r] = batch(n, argv + 4, plain);
		}
	}
	qsort(p, 3, sizeof *p, cmp_double);
	qsort(q, 3, sizeof *q, cmp_double);
	printf("plain_us=%.1f preload_us=%.1f delta_us=%.1f runs_plain=%.1f,%.1f,%.1f runs_preload=%.1f,%.1f,%.1f\n",
	       p[1], q[1], q[1] - p[1], p[0], p[1], p[2], q[0], q[1], q[2]);
	return 0;
}
