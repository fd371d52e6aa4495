/*
 * handoff: a connection that moves between process images after bytes
 * moved on it (issue 14; tests/integration/60-handoff.sh).  Plain C, never
 * links the shim: run it under LD_PRELOAD to seal it.
 *
 * The conversation, C the connecting side, S the accepting side:
 *   C: "REQ aaaaaaaa nnnnnnnn\n" (22 bytes) and A[a], in ONE write
 *   S: reads exactly 22 bytes; "ACK bbbbbbbb\n" (13 bytes) and B[b], one write
 *   C: reads exactly 13 bytes
 *      --- the hand-off point: whatever A/B the program has not read is
 *          plaintext the shim already decrypted ---
 *   S part: reads A[a] (checked byte by byte), "HOP k\n" lines in between
 *      when it hops, "SUM a checksum\n" and N[n]; then reads "HOP k\n"*
 *      "BYE\n" and a clean end of stream
 *   C part: reads B[b], "HOP k\n"* and SUM (checked against its own),
 *      N[n]; writes "HOP k\n"* (when it hops) "BYE\n", shutdown(SHUT_WR);
 *      then reads the tail (must equal tail=) and a clean end of stream,
 *      twice
 * A, B and N are a pattern of their offset (a byte lost or repeated is
 * seen at once) with the marker ($HANDOFF_MARKER) every 4096 bytes, so a
 * capture shows plaintext.  HOP numbers must come 1, 2, 3...
 *
 *   handoff connect PORT [KEY=VALUE...]   the C side
 *   handoff serve PORT [KEY=VALUE...]     the S side, on 127.0.0.1:PORT
 * Keys: a= b= n= (sizes), mode=, hops= (chain), count= (serve: connections,
 * one after another), tail= (connect: what must follow N; \n allowed),
 * env=noshim (pass: worker without LD_PRELOAD).
 * Modes, at the hand-off point:
 *   inline    no hand-off: this process does the rest
 *   eof       the rest is: read the other side's bulk, then a clean end of
 *             stream, twice (for the peer of a cloexec hand-off)
 *   execve    dup2 onto 0 and 1, close the fd, execve the handler
 *   spawn     posix_spawn the handler (adddup2 fd->0, fd->1, addclose fd),
 *             close the fd, wait
 *   vfork     vfork, dup2 onto 0/1, execve the handler; close, wait
 *   chain     execve as above; the handler does one hop of I/O (4096 bytes
 *             of A, or 1024 of B, and a HOP line) and execs itself, hops=
 *             times
 *   cloexec   the fd is FD_CLOEXEC and execve("probe FD"): the new image
 *             must not have the fd; the peer must see a clean end once
 *   keep      posix_spawn as spawn, but keep the fd: the handler writes
 *             "HOP 1", the parent "HOP 2" (turns over a socketpair on the
 *             handler's fd 3), the handler does the rest; S side: after
 *             the handler exits, the parent writes tail= and closes
 *   pass      SCM_RIGHTS: fork+execve "handoff worker" (a new image,
 *             socketpair on its fd 3); serve: accept count= connections,
 *             pre-handoff I/O on each, then all their fds in ONE message;
 *             pass-keep: the sender keeps its copy and writes HOP 2 and
 *             (S side) the tail after the worker is done; pass-cloexec:
 *             the worker receives with MSG_CMSG_CLOEXEC; env=noshim: the
 *             worker's environment lacks LD_PRELOAD and it reports what
 *             read() and write() do on what it got
 *
 * Reports go to stderr, one line each, "handoff ROLE: ok ..." or
 * "handoff ROLE: FAIL ..."; exit status 0 only when everything was exact.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define REQ_LEN 22
#define ACK_LEN 13
#define MAXCONN 8
#define NOSHIM_LEAK "HANDOFF-NOSHIM-WORKER-WROTE-THIS\n"

struct st {
	char role;		/* 'c' or 's': which part is left to do */
	size_t a, b, n;
	int hops;		/* hops left (chain) */
	int k;			/* next HOP number this side writes */
	size_t off;		/* how much of the inbound bulk has been read */
	uint64_t csum;		/* FNV-1a of the inbound bulk so far */
	int keep;		/* keep: coordinate on fd 3 */
	char tail[64];		/* connect: expected tail; serve: tail to write */
};

static const char *who = "?";
static char self[4096];
static const char *marker;
static size_t mlen;

static void
say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "handoff %s[%d]: ", who, (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(2, line, (size_t)n);
}

static void __attribute__((noreturn))
die(const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("FAIL %s", msg);
	exit(1);
}

static const char *
ename(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static uint8_t
pat(int seed, size_t i)
{
	size_t j = i % 4096;

	if (j < mlen)
		return (uint8_t)marker[j];
	return (uint8_t)(((i * 2654435761u) >> 11) ^ (i >> 12) ^ (size_t)(seed * 0x5b));
}

static uint64_t
fnv(uint64_t h, const uint8_t *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define FNV0 0xcbf29ce484222325ULL

static void
write_all(int fd, const void *buf, size_t len, const char *what)
{
	const char *p = buf;
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write %s: %s", what, w < 0 ? ename(errno) : "0");
		p += w;
		len -= (size_t)w;
	}
}

/* Read exactly LEN bytes or die saying how far it got. */
static void
read_exact(int fd, void *buf, size_t len, const char *what)
{
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read %s: %s after %zu of %zu", what, ename(errno), got, len);
		if (r == 0)
			die("read %s: EOF after %zu of %zu", what, got, len);
		got += (size_t)r;
	}
}

/* One '\n'-terminated line, a byte a read (never past it). */
static void
read_line(int fd, char *buf, size_t cap, const char *what)
{
	size_t i = 0;

	for (;;) {
		if (i + 1 >= cap)
			die("read %s: line too long", what);
		read_exact(fd, buf + i, 1, what);
		if (buf[i] == '\n')
			break;
		i++;
	}
	buf[i] = 0;
}

/* Read LEN bytes of pattern SEED starting at offset OFF; check each. */
static uint64_t
read_bulk(int fd, int seed, size_t off, size_t len, uint64_t h, const char *what)
{
	uint8_t buf[65536];
	size_t i, chunk;

	while (len > 0) {
		chunk = len < sizeof(buf) ? len : sizeof(buf);
		read_exact(fd, buf, chunk, what);
		for (i = 0; i < chunk; i++)
			if (buf[i] != pat(seed, off + i))
				die("%s: wrong byte at offset %zu (0x%02x, want 0x%02x)",
				    what, off + i, buf[i], pat(seed, off + i));
		h = fnv(h, buf, chunk);
		off += chunk;
		len -= chunk;
	}
	return h;
}

static void
fill(uint8_t *p, int seed, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(seed, i);
}

static void
write_bulk(int fd, int seed, size_t len, const char *what)
{
	uint8_t buf[65536];
	size_t off = 0, i, chunk;

	while (off < len) {
		chunk = len - off < sizeof(buf) ? len - off : sizeof(buf);
		for (i = 0; i < chunk; i++)
			buf[i] = pat(seed, off + i);
		write_all(fd, buf, chunk, what);
		off += chunk;
	}
}

/* Expect a clean end of stream now, and again on a second read. */
static void
expect_eof(int fd, const char *what)
{
	char c;
	ssize_t r;
	int i;

	for (i = 0; i < 2; i++) {
		do
			r = read(fd, &c, 1);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			die("%s: end of stream read %d: %s", what, i + 1, ename(errno));
		if (r > 0)
			die("%s: end of stream read %d: a byte 0x%02x", what, i + 1, (uint8_t)c);
	}
}

/* -------------------------------------------------------- state in argv */

static void
st_argv(const struct st *s, char bufs[][80], char **argv)
{
	int i = 0;

	snprintf(bufs[i], 80, "role=%c", s->role), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "a=%zu", s->a), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "b=%zu", s->b), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "n=%zu", s->n), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "hops=%d", s->hops), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "k=%d", s->k), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "off=%zu", s->off), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "csum=%016" PRIx64, s->csum), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "keep=%d", s->keep), argv[i] = bufs[i], i++;
	snprintf(bufs[i], 80, "tail=%s", s->tail), argv[i] = bufs[i], i++;
	argv[i] = NULL;
}
#define ST_ARGS 11

struct opts {
	size_t a, b, n;
	int hops, count, noshim;
	const char *mode;
	char tail[64];
};

/* "\n" in a tail= argument means a newline. */
static void
unescape(char *dst, const char *src, size_t cap)
{
	size_t i = 0;

	while (*src && i + 1 < cap) {
		if (src[0] == '\\' && src[1] == 'n') {
			dst[i++] = '\n';
			src += 2;
		} else
			dst[i++] = *src++;
	}
	dst[i] = 0;
}

static void
parse_kv(int argc, char **argv, struct opts *o, struct st *s)
{
	int i;

	for (i = 0; i < argc; i++) {
		char *v = strchr(argv[i], '=');

		if (!v)
			die("bad argument %s", argv[i]);
		*v++ = 0;
		if (o && !strcmp(argv[i], "mode"))
			o->mode = v;
		else if (o && !strcmp(argv[i], "count"))
			o->count = atoi(v);
		else if (o && !strcmp(argv[i], "env"))
			o->noshim = !strcmp(v, "noshim");
		else if (!strcmp(argv[i], "a"))
			(o ? &o->a : &s->a)[0] = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "b"))
			(o ? &o->b : &s->b)[0] = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "n"))
			(o ? &o->n : &s->n)[0] = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "hops"))
			(o ? &o->hops : &s->hops)[0] = atoi(v);
		else if (!strcmp(argv[i], "tail"))
			unescape(o ? o->tail : s->tail, v, sizeof(s->tail));
		else if (s && !strcmp(argv[i], "role"))
			s->role = v[0];
		else if (s && !strcmp(argv[i], "k"))
			s->k = atoi(v);
		else if (s && !strcmp(argv[i], "off"))
			s->off = strtoull(v, NULL, 10);
		else if (s && !strcmp(argv[i], "csum"))
			s->csum = strtoull(v, NULL, 16);
		else if (s && !strcmp(argv[i], "keep"))
			s->keep = atoi(v);
		else
			die("unknown key %s", argv[i]);
	}
}

/* ------------------------------------------------------- the two parts */

/* Turns for keep: write our byte, wait for the other's. */
static void
turn_send(int fd, char c)
{
	write_all(fd, &c, 1, "turn");
}

static void
turn_wait(int fd, char want)
{
	char c;

	read_exact(fd, &c, 1, "turn");
	if (c != want)
		die("turn: got %c, want %c", c, want);
}

static void
hop_line(int fd, int k)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "HOP %d\n", k);

	write_all(fd, line, (size_t)n, "HOP line");
}

/* Read "HOP k" lines (k from *next on) until a line that is not one;
 * that line is left in BUF. */
static void
read_hops(int fd, char *buf, size_t cap, int *next, const char *what)
{
	int k;

	for (;;) {
		read_line(fd, buf, cap, what);
		if (sscanf(buf, "HOP %d", &k) != 1)
			return;
		if (k != *next)
			die("%s: HOP %d, want HOP %d", what, k, *next);
		(*next)++;
	}
}

static void exec_handler(const struct st *s, int chain);

/* What a part does first: keep: HOP 1, then the keeper's turn (HOP 2);
 * chain: read STEP bytes of the inbound bulk (pattern SEED, TOTAL long),
 * write HOP k and exec the next hop (does not return). */
static void
part_start(struct st *s, int in, int out, int seed, size_t total, size_t step,
    const char *what)
{
	size_t chunk = total - s->off < step ? total - s->off : step;

	if (s->keep) {
		hop_line(out, s->k++);
		turn_send(3, '1');
		turn_wait(3, '2');
		s->k++;
	}
	if (s->hops > 0) {
		s->csum = read_bulk(in, seed, s->off, chunk, s->csum, what);
		s->off += chunk;
		hop_line(out, s->k++);
		s->hops--;
		exec_handler(s, 1);
	}
}

/* The accepting side's rest, on fds IN/OUT. */
static void
s_part(struct st *s, int in, int out)
{
	char line[128];
	int n, peer_hops = 1;

	part_start(s, in, out, 1, s->a, 4096, "A (hop)");
	s->csum = read_bulk(in, 1, s->off, s->a - s->off, s->csum, "A");
	n = snprintf(line, sizeof(line), "SUM %zu %016" PRIx64 "\n", s->a, s->csum);
	write_all(out, line, (size_t)n, "SUM");
	write_bulk(out, 3, s->n, "N");
	read_hops(in, line, sizeof(line), &peer_hops, "BYE");
	if (strcmp(line, "BYE"))
		die("want BYE, got '%.40s'", line);
	expect_eof(in, "after BYE");
	say("ok a=%zu n=%zu peerhops=%d sum=%016" PRIx64, s->a, s->n,
	    peer_hops - 1, s->csum);
	if (s->keep)
		turn_send(3, 'D');
}

/* The connecting side's rest. */
static void
c_part(struct st *s, int in, int out)
{
	char line[128], tail[64];
	size_t a, tl = strlen(s->tail);
	uint64_t h, mine;
	int hops = 1;

	part_start(s, in, out, 2, s->b, 1024, "B (hop)");
	s->csum = read_bulk(in, 2, s->off, s->b - s->off, s->csum, "B");
	read_hops(in, line, sizeof(line), &hops, "SUM");
	if (sscanf(line, "SUM %zu %" SCNx64, &a, &h) != 2)
		die("want SUM, got '%.40s'", line);
	{
		static uint8_t buf[1 << 20];
		size_t i, left = s->a;

		mine = FNV0;
		for (i = 0; left > 0; i += sizeof(buf)) {
			size_t c = left < sizeof(buf) ? left : sizeof(buf), j;

			for (j = 0; j < c; j++)
				buf[j] = pat(1, i + j);
			mine = fnv(mine, buf, c);
			left -= c;
		}
	}
	if (a != s->a || h != mine)
		die("SUM %zu %016" PRIx64 ", want %zu %016" PRIx64, a, h, s->a, mine);
	read_bulk(in, 3, 0, s->n, FNV0, "N");
	write_all(out, "BYE\n", 4, "BYE");
	if (shutdown(out, SHUT_WR) < 0)
		die("shutdown: %s", ename(errno));
	if (tl > 0) {
		read_exact(in, tail, tl, "tail");
		if (memcmp(tail, s->tail, tl))
			die("tail '%.*s', want '%s'", (int)tl, tail, s->tail);
	}
	expect_eof(in, "end");
	say("ok a=%zu b=%zu n=%zu hops=%d tail=%zu eof=clean", s->a, s->b, s->n,
	    hops - 1, tl);
	if (s->keep)
		turn_send(3, 'D');
}

static void
handler_main(int argc, char **argv)
{
	struct st s;

	memset(&s, 0, sizeof(s));
	parse_kv(argc, argv, NULL, &s);
	who = s.role == 's' ? "s-handler" : "c-handler";
	if (s.role == 's')
		s_part(&s, 0, 1);
	else
		c_part(&s, 0, 1);
	exit(0);
}

/* execve the handler with state S on fds 0/1 (already there). */
static void
exec_handler(const struct st *s, int chain)
{
	char bufs[ST_ARGS][80], *argv[ST_ARGS + 3];

	(void)chain;
	argv[0] = "handoff";
	argv[1] = "handler";
	st_argv(s, bufs, argv + 2);
	execve(self, argv, environ);
	die("execve: %s", ename(errno));
}

/* ---------------------------------------------------- hand-off by MODE */

static pid_t
spawn_handler(const struct st *s, int fd, int coord)
{
	char bufs[ST_ARGS][80], *argv[ST_ARGS + 3];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int e;

	argv[0] = "handoff";
	argv[1] = "handler";
	st_argv(s, bufs, argv + 2);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_addclose(&fa, fd);
	if (coord >= 0)	/* after the close: FD may be 3 */
		posix_spawn_file_actions_adddup2(&fa, coord, 3);
	e = posix_spawn(&pid, self, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (e)
		die("posix_spawn: %s", ename(e));
	return pid;
}

static int
wait_child(pid_t pid, const char *what)
{
	int st;

	if (waitpid(pid, &st, 0) < 0)
		die("waitpid %s: %s", what, ename(errno));
	if (WIFEXITED(st)) {
		say("%s exited %d", what, WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	say("%s killed by signal %d", what, WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

/* A socketpair with both ends above the low numbers, close-on-exec. */
static void
coord_pair(int sv[2])
{
	int i, t[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t) < 0)
		die("socketpair: %s", ename(errno));
	for (i = 0; i < 2; i++) {
		sv[i] = fcntl(t[i], F_DUPFD_CLOEXEC, 20);
		close(t[i]);
	}
}

static void pass_fds(const struct opts *o, const struct st *s, int *fds, int nfds);

/* The keeping process's turn: after the other's HOP 1, write HOP 2; when
 * the other is done (and has exited), the tail (S side), then close. */
static int
keeper(const struct st *s, int fd, int coord, pid_t pid, const char *what)
{
	int rc;

	turn_wait(coord, '1');
	hop_line(fd, 2);
	turn_send(coord, '2');
	turn_wait(coord, 'D');
	rc = wait_child(pid, what);
	if (s->role == 's' && s->tail[0])
		write_all(fd, s->tail, strlen(s->tail), "tail");
	close(fd);
	close(coord);
	say("kept copy closed after the %s", what);
	return rc;
}

/* Hand FD (this side's part still to do, described by S) on by MODE.
 * Returns only in the process that keeps going (spawn, vfork, keep). */
static int
hand_off(const struct opts *o, struct st *s, int fd)
{
	const char *m = o->mode;
	pid_t pid;
	int sv[2];

	if (!strcmp(m, "execve") || !strcmp(m, "chain")) {
		if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
			die("dup2: %s", ename(errno));
		close(fd);
		exec_handler(s, 0);
	}
	if (!strcmp(m, "cloexec")) {
		char num[16];
		char *argv[] = { "handoff", "probe", num, NULL };

		snprintf(num, sizeof(num), "%d", fd);
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			die("F_SETFD: %s", ename(errno));
		execve(self, argv, environ);
		die("execve: %s", ename(errno));
	}
	if (!strcmp(m, "spawn")) {
		pid = spawn_handler(s, fd, -1);
		close(fd);
		return wait_child(pid, "handler");
	}
	if (!strcmp(m, "vfork")) {
		char bufs[ST_ARGS][80], *argv[ST_ARGS + 3];

		argv[0] = "handoff";
		argv[1] = "handler";
		st_argv(s, bufs, argv + 2);
		pid = vfork();
		if (pid < 0)
			die("vfork: %s", ename(errno));
		if (pid == 0) {
			if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
				_exit(126);
			execve(self, argv, environ);
			_exit(127);
		}
		close(fd);
		return wait_child(pid, "handler");
	}
	if (!strcmp(m, "keep")) {
		coord_pair(sv);
		s->keep = 1;
		pid = spawn_handler(s, fd, sv[1]);
		close(sv[1]);
		return keeper(s, fd, sv[0], pid, "handler");
	}
	if (!strncmp(m, "pass", 4)) {
		pass_fds(o, s, &fd, 1);
		return 0;
	}
	die("unknown mode %s", m);
}

/* ---------------------------------------------------------- SCM_RIGHTS */

static void
send_fds(int sock, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAXCONN)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	struct iovec iov = { .iov_base = "F", .iov_len = 1 };

	memset(&u, 0, sizeof(u));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	if (sendmsg(sock, &msg, 0) != 1)
		die("sendmsg SCM_RIGHTS: %s", ename(errno));
}

static int
recv_fds(int sock, int *fds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAXCONN)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	int n = 0;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	if (recvmsg(sock, &msg, flags) != 1)
		die("recvmsg: %s", ename(errno));
	if (msg.msg_flags & MSG_CTRUNC)
		die("recvmsg: control truncated");
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
		}
	return n;
}

/* An environment without LD_PRELOAD. */
static char **
env_noshim(void)
{
	static char *env[512];
	int i, j = 0;

	for (i = 0; environ[i] && j < 510; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11))
			env[j++] = environ[i];
	env[j] = NULL;
	return env;
}

/* Start the worker (fork + execve: a new image), pass FDS in one message,
 * then close or keep per the mode. */
static void
pass_fds(const struct opts *o, const struct st *s, int *fds, int nfds)
{
	char bufs[ST_ARGS][80], *argv[ST_ARGS + 5], cnt[16];
	int sv[2], i, rc;
	int keep = !strcmp(o->mode, "pass-keep");
	pid_t pid;

	coord_pair(sv);
	snprintf(cnt, sizeof(cnt), "%d", nfds);
	argv[0] = "handoff";
	argv[1] = "worker";
	argv[2] = o->noshim ? "noshim" : (char *)o->mode;
	argv[3] = cnt;
	st_argv(s, bufs, argv + 4);
	pid = fork();
	if (pid < 0)
		die("fork: %s", ename(errno));
	if (pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		execve(self, argv, o->noshim ? env_noshim() : environ);
		_exit(127);
	}
	close(sv[1]);
	send_fds(sv[0], fds, nfds);
	if (!keep) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		say("passed %d fd(s), closed mine", nfds);
		rc = wait_child(pid, "worker");
		exit(rc);
	}
	exit(keeper(s, fds[0], sv[0], pid, "worker"));
}

static void
worker_main(int argc, char **argv)
{
	struct st s;
	int fds[MAXCONN], n, i, want, cloexec;
	const char *variant;

	if (argc < 2)
		die("worker VARIANT COUNT STATE...");
	variant = argv[0];
	want = atoi(argv[1]);
	memset(&s, 0, sizeof(s));
	parse_kv(argc - 2, argv + 2, NULL, &s);
	who = s.role == 's' ? "s-worker" : "c-worker";
	cloexec = !strcmp(variant, "pass-cloexec");
	n = recv_fds(3, fds, cloexec ? MSG_CMSG_CLOEXEC : 0);
	if (!strcmp(variant, "noshim")) {
		/*
		 * Started without LD_PRELOAD: the first fd is a stand-in.
		 * The sender's shim adds one more, its parcel (docs/handoff.md,
		 * a receiver with the shim takes it off): it must not be a TCP
		 * socket either, and a write on it must not reach the wire.
		 */
		char c = 'x';
		ssize_t r, w;
		int re, we, i, dom, tcp = 0;
		socklen_t l;

		if (n < want || n > want + 1)
			die("received %d fds, want %d (or one more)", n, want);
		r = read(fds[0], &c, 1);
		re = errno;
		w = write(fds[0], NOSHIM_LEAK, strlen(NOSHIM_LEAK));
		we = errno;
		for (i = want; i < n; i++) {
			l = sizeof(dom);
			if (getsockopt(fds[i], SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 &&
			    (dom == AF_INET || dom == AF_INET6))
				tcp++;
			(void)send(fds[i], NOSHIM_LEAK, strlen(NOSHIM_LEAK),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		say("noshim read=%zd %s write=%zd %s extra=%d tcp=%d", r,
		    r < 0 ? ename(re) : "-", w, w < 0 ? ename(we) : "-", n - want,
		    tcp);
		exit(r == -1 && re == ENOTCONN && w == -1 && we == EPIPE &&
		    tcp == 0 ? 0 : 1);
	}
	if (n != want)
		die("received %d fds, want %d", n, want);
	for (i = 0; i < n; i++) {
		int fl = fcntl(fds[i], F_GETFD);

		if (cloexec && (fl < 0 || !(fl & FD_CLOEXEC)))
			die("fd %d: F_GETFD %d, want FD_CLOEXEC", fds[i], fl);
		if (!strcmp(variant, "pass-keep")) {
			s.keep = 1;
			s.k = 1;	/* the turns go on fd 3 */
		}
		if (s.role == 's')
			s_part(&s, fds[i], fds[i]);
		else
			c_part(&s, fds[i], fds[i]);
		close(fds[i]);
		s.off = 0;
		s.csum = FNV0;
	}
	say("served %d connection(s)%s", n, cloexec ? " (fds were FD_CLOEXEC)" : "");
	exit(0);
}

/* ---------------------------------------------------------- the roles */

static void
defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->a = 256 * 1024;
	o->b = 16 * 1024;
	o->n = 1024 * 1024;
	o->count = 1;
	o->mode = "inline";
}

static void
st_from(struct st *s, const struct opts *o, char role)
{
	memset(s, 0, sizeof(*s));
	s->role = role;
	s->a = o->a;
	s->b = o->b;
	s->n = o->n;
	s->hops = !strcmp(o->mode, "chain") ? o->hops : 0;
	s->k = 1;
	s->off = 0;
	s->csum = FNV0;
	memcpy(s->tail, o->tail, sizeof(s->tail));
}

/* For the peer of a cloexec hand-off: read the other side's bulk, then a
 * clean end of stream, twice. */
static void
eof_part(int fd, int seed, size_t len)
{
	read_bulk(fd, seed, 0, len, FNV0, "bulk before the end");
	expect_eof(fd, "after the bulk");
	say("ok eof clean after %zu bytes, twice", len);
}

static void
connect_main(int port, int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct opts o;
	struct st s;
	char req[REQ_LEN + 1], ack[ACK_LEN + 1];
	uint8_t *first;
	int fd;

	who = "client";
	defaults(&o);
	parse_kv(argc, argv, &o, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect: %s", ename(errno));
	snprintf(req, sizeof(req), "REQ %08zu %08zu\n", o.a, o.n);
	if (!(first = malloc(REQ_LEN + o.a)))
		die("malloc");
	memcpy(first, req, REQ_LEN);
	fill(first + REQ_LEN, 1, o.a);
	write_all(fd, first, REQ_LEN + o.a, "REQ and A");
	free(first);
	read_exact(fd, ack, ACK_LEN, "ACK");
	ack[ACK_LEN] = 0;
	if (sscanf(ack, "ACK %zu", &o.b) != 1)
		die("bad ACK '%.13s'", ack);
	st_from(&s, &o, 'c');
	if (!strcmp(o.mode, "inline")) {
		c_part(&s, fd, fd);
		exit(0);
	}
	if (!strcmp(o.mode, "eof")) {
		eof_part(fd, 2, o.b);
		exit(0);
	}
	exit(hand_off(&o, &s, fd));
}

static int
listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, l;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		die("socket: %s", ename(errno));
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 16) < 0)
		die("bind/listen %d: %s", port, ename(errno));
	return l;
}

/* The accepting side up to the hand-off point, on FD; fills S. */
static void
serve_first(int fd, const struct opts *o, struct st *s)
{
	char req[REQ_LEN + 1], hdr[ACK_LEN + 1];
	uint8_t *first;
	size_t a, n;

	read_exact(fd, req, REQ_LEN, "REQ");
	req[REQ_LEN] = 0;
	if (sscanf(req, "REQ %zu %zu", &a, &n) != 2 || req[REQ_LEN - 1] != '\n')
		die("bad REQ '%.22s'", req);
	snprintf(hdr, sizeof(hdr), "ACK %08zu\n", o->b);
	if (!(first = malloc(ACK_LEN + o->b)))
		die("malloc");
	memcpy(first, hdr, ACK_LEN);
	fill(first + ACK_LEN, 2, o->b);
	write_all(fd, first, ACK_LEN + o->b, "ACK and B");
	free(first);
	st_from(s, o, 's');
	s->a = a;
	s->n = n;
}

static void
serve_main(int port, int argc, char **argv)
{
	struct opts o;
	struct st s;
	int l, i, fd, rc = 0, fds[MAXCONN];

	who = "server";
	defaults(&o);
	parse_kv(argc, argv, &o, NULL);
	if (o.count < 1 || o.count > MAXCONN)
		die("count 1..%d", MAXCONN);
	l = listen_on(port);
	if (!strcmp(o.mode, "early-execve")) {
		/* control: exec before any byte moved (works without issue 14) */
		if ((fd = accept(l, NULL, NULL)) < 0)
			die("accept: %s", ename(errno));
		if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
			die("dup2: %s", ename(errno));
		close(fd);
		{
			char *av[] = { "handoff", "handler", "role=S", NULL };

			execve(self, av, environ);
		}
		die("execve: %s", ename(errno));
	}
	if (!strncmp(o.mode, "pass", 4)) {
		for (i = 0; i < o.count; i++) {
			if ((fds[i] = accept(l, NULL, NULL)) < 0)
				die("accept: %s", ename(errno));
			serve_first(fds[i], &o, &s);
		}
		close(l);
		pass_fds(&o, &s, fds, o.count);
	}
	for (i = 0; i < o.count; i++) {
		if ((fd = accept(l, NULL, NULL)) < 0)
			die("accept: %s", ename(errno));
		serve_first(fd, &o, &s);
		if (!strcmp(o.mode, "inline")) {
			s_part(&s, fd, fd);
			close(fd);
		} else if (!strcmp(o.mode, "eof")) {
			eof_part(fd, 1, s.a);
			close(fd);
		} else
			rc |= hand_off(&o, &s, fd);
	}
	close(l);
	say("served %d connection(s) mode=%s", o.count, o.mode);
	exit(rc);
}

/* The early-execve control's handler: everything from the first byte. */
static void
early_handler(void)
{
	struct opts o;
	struct st s;

	who = "s-handler";
	defaults(&o);
	serve_first(0, &o, &s);
	s_part(&s, 0, 1);
	exit(0);
}

/* After a cloexec hand-off: the connection's number must be gone. */
static void
probe_main(const char *num)
{
	int fd = atoi(num), fl;

	who = "probe";
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 && errno == EBADF) {
		say("ok fd %d: EBADF after exec", fd);
		exit(0);
	}
	die("fd %d still open after exec (F_GETFD %d %s)", fd, fl, fl < 0 ? ename(errno) : "");
}

int
main(int argc, char **argv)
{
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	marker = getenv("HANDOFF_MARKER");
	if (!marker || !*marker)
		marker = "HANDOFF-MARKER";
	mlen = strlen(marker);
	if (mlen > 256)
		mlen = 256;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		die("readlink /proc/self/exe: %s", ename(errno));
	self[n] = 0;
	if (argc >= 3 && !strcmp(argv[1], "connect"))
		connect_main(atoi(argv[2]), argc - 3, argv + 3);
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		serve_main(atoi(argv[2]), argc - 3, argv + 3);
	if (argc >= 2 && !strcmp(argv[1], "handler")) {
		if (argc == 3 && !strcmp(argv[2], "role=S"))
			early_handler();
		handler_main(argc - 2, argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "worker"))
		worker_main(argc - 2, argv + 2);
	if (argc == 3 && !strcmp(argv[1], "probe"))
		probe_main(argv[2]);
	fprintf(stderr, "usage: handoff connect|serve PORT [KEY=VALUE...]\n");
	return 2;
}
