/*
 * doctor_follow: which program runs when an operator runs BINARY.
 *
 * BINARY is found as execvp finds it.  Then, as long as the file is a
 * script (doctor_script reads it), the next file is, in this order:
 *
 *   a version manager's shim   what `MANAGER which NAME' prints (realpath):
 *                              the manager decides by version files and
 *                              its environment, so it is asked, not guessed
 *   a wrapper (one exec PROG)  PROG (on PATH if it has no slash)
 *   otherwise                  the #! interpreter (env's program on PATH)
 *
 * and each step is one line for the output ("A is a pyenv shim for B").
 * A shim or wrapper that cannot be followed (the manager fails or times
 * out, the exec target is a variable, several targets) is noted and the
 * interpreter followed instead: what can be judged is judged.  Following
 * stops at an ELF file, at a file that is neither, after DOCTOR_FOLLOW_MAX
 * scripts, or at a file seen before (by device and inode: a loop).
 *
 * The manager is the one program doctor runs: only for a recognised
 * shim, only if root or the user running doctor owns it and no one else
 * may write it, with stdin /dev/null, in a process group of its own,
 * killed (the group, by its id) if it has not answered in
 * MANAGER_TIMEOUT_MS.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "doctor_follow.h"
#include "doctor_script.h"

#define HEAD_MAX           65536        /* bytes of a script read */
#define MANAGER_TIMEOUT_MS 5000

/* Find FILE as execvp would: a path if it has a slash, else on PATH. */
static bool
resolve(const char *file, char out[PATH_MAX])
{
	const char *path = getenv("PATH"), *s, *c;
	struct stat st;

	if (strchr(file, '/') != NULL) {
		snprintf(out, PATH_MAX, "%s", file);
		return true;
	}
	if (*file == '\0')
		return false;
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (s = path; s != NULL; s = c ? c + 1 : NULL) {
		c = strchr(s, ':');
		snprintf(out, PATH_MAX, "%.*s/%s", c ? (int)(c - s) :
		    (int)strlen(s), *s == ':' || *s == '\0' ? "." : s, file);
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* Up to LEN bytes of the start of PATH into BUF; the count or -errno. */
static ssize_t
read_head(const char *path, char *buf, size_t len)
{
	ssize_t n, got = 0;
	int fd, err;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	while ((size_t)got < len) {
		n = read(fd, buf + got, len - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The manager's child: `MGR which PROGRAM', output on FD. */
static void __attribute__((noreturn))
manager_child(const struct doctor_script *s, const char *mgr, int fd)
{
	int i, null;

	setpgid(0, 0);
	if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
	    dup2(null, 0) < 0 ||
	    dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		_exit(126);
	for (i = 0; i < s->nenv; i++) {
		char kv[PATH_MAX], *eq;

		snprintf(kv, sizeof(kv), "%s", s->env[i]);
		if ((eq = strchr(kv, '=')) != NULL) {
			*eq = '\0';
			setenv(kv, eq + 1, 1);
		}
	}
	execl(mgr, mgr, "which", s->program, (char *)NULL);
	dprintf(1, "cannot run %s: %s\n", mgr, strerror(errno));
	_exit(127);
}

/* Read FD into BUF (LEN) until end of file or DEADLINE; false on time. */
static bool
manager_read(int fd, char *buf, size_t len, long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	long left;
	char sink[512];

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return false;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return false;
		if (pfd.revents == 0)
			continue;
		if (got + 1 < len)
			n = read(fd, buf + got, len - 1 - got);
		else
			n = read(fd, sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got + 1 < len)
			got += (size_t)n;
	}
	buf[got] = '\0';
	return true;
}

/*
 * Ask the shim's manager which program NAME is: OUT on success (0), else
 * -1 with WHY (a sentence end: "failed: pyenv: ...").
 */
static int
manager_which(const struct doctor_script *s, char out[PATH_MAX], char *why,
    size_t whylen)
{
	char mgr[PATH_MAX], buf[PATH_MAX + 256], *nl;
	struct stat st;
	int pfd[2], status;
	bool answered;
	pid_t pid;

	if (!resolve(s->manager, mgr)) {
		snprintf(why, whylen, "%.200s is not found on PATH",
		    s->manager);
		return -1;
	}
	/* Run only what the operator or root owns and no one else can
	 * change: doctor is asked about a file, not to run strangers. */
	if (stat(mgr, &st) != 0 || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 022) != 0) {
		snprintf(why, whylen, "was not run (the manager is missing, "
		    "owned by another user, or writable by others)");
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0)
		manager_child(s, mgr, pfd[1]);
	setpgid(pid, pid);      /* both sides: no race with the kill below */
	close(pfd[1]);
	answered = manager_read(pfd[0], buf, sizeof(buf), now_ms() +
	    MANAGER_TIMEOUT_MS);
	close(pfd[0]);
	if (!answered)
		kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!answered) {
		snprintf(why, whylen, "did not answer in %d s, killed",
		    MANAGER_TIMEOUT_MS / 1000);
		return -1;
	}
	if ((nl = strchr(buf, '\n')) != NULL)
		*nl = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "failed (%.200s)", buf[0] ? buf :
		    "no message");
		return -1;
	}
	if (buf[0] != '/' || realpath(buf, out) == NULL) {
		snprintf(why, whylen, "answered \"%.200s\", not a program's "
		    "path",
		    buf);
		return -1;
	}
	return 0;
}

#define HOP(c, ...) snprintf((c)->hop[(c)->nhops++], DOCTOR_FOLLOW_LINE, \
	__VA_ARGS__)
#define NOTE(c, ...) do { if ((c)->nnotes < DOCTOR_FOLLOW_NOTES) \
	snprintf((c)->note[(c)->nnotes++], DOCTOR_FOLLOW_LINE, \
	__VA_ARGS__); } while (0)

/* The shim or wrapper PATH runs into NEXT: true if followed. */
static bool
follow_wrapper(struct doctor_chain *c, const char *path,
    const struct doctor_script *s, char next[PATH_MAX])
{
	char why[256];

	if (s->manager[0] != '\0') {
		if (manager_which(s, next, why, sizeof(why)) == 0) {
			HOP(c, "%s is a %s shim for %s (%s which %s)", path,
			    s->manager_name, next, s->manager_name, s->program);
			return true;
		}
		NOTE(c, "not followed: %s is a %s shim, but `%s which %s' "
		    "%.250s", path, s->manager_name, s->manager, s->program,
		    why);
		return false;
	}
	if (s->nexec > 1 || s->exec_more) {
		NOTE(c, "not followed: %s execs one of several programs (%s, "
		    "%s%s): run doctor on each", path, s->exec[0], s->exec[1],
		    s->nexec > 2 || s->exec_more ? ", ..." : "");
		return false;
	}
	if (s->nexec == 0)
		return false;
	if (strpbrk(s->exec[0], "$`") != NULL) {
		NOTE(c, "not followed: %s execs %s, which depends on the "
		    "script's variables: run doctor on the program it names",
		    path, s->exec[0]);
		return false;
	}
	if (!resolve(s->exec[0], next)) {
		NOTE(c, "not followed: %s execs %s, which is not found on "
		    "PATH", path, s->exec[0]);
		return false;
	}
	HOP(c, "%s is a wrapper script: it execs %s", path, next);
	return true;
}

/* One script at PATH: the next file into NEXT.  0, or -1 with c->why. */
static int
follow_script(struct doctor_chain *c, const char *path,
    const struct doctor_script *s, char next[PATH_MAX])
{
	c->shell_script = false;
	if (s->shell && follow_wrapper(c, path, s, next))
		return 0;
	if (s->env_name[0] != '\0') {
		if (!resolve(s->env_name, next)) {
			snprintf(c->why, sizeof(c->why), "%s: its #! program "
			    "%s (run by %s) is not found on PATH", path,
			    s->env_name, s->interp);
			return -1;
		}
		HOP(c, "%s is a #! script run by %s (%s finds it on PATH)",
		    path, next, s->interp);
	} else {
		snprintf(next, PATH_MAX, "%s", s->interp);
		HOP(c, "%s is a #! script run by %s", path, next);
	}
	c->shell_script = s->shell;
	return 0;
}

int
doctor_follow(const char *arg, struct doctor_chain *c)
{
	struct { dev_t dev; ino_t ino; char path[PATH_MAX]; }
	    *seen = NULL;
	char path[PATH_MAX], next[PATH_MAX];
	struct doctor_script *s = NULL;
	char *head = NULL;
	struct stat st;
	int depth, i, end = DOCTOR_FOLLOW_ERROR;
	ssize_t n;

	if (!resolve(arg, path)) {
		snprintf(c->why, sizeof(c->why), "%s: not found on PATH", arg);
		return DOCTOR_FOLLOW_ERROR;
	}
	snprintf(c->start, sizeof(c->start), "%s", path);
	if ((s = malloc(sizeof(*s))) == NULL ||
	    (head = malloc(HEAD_MAX)) == NULL ||
	    (seen = calloc(DOCTOR_FOLLOW_MAX, sizeof(*seen))) == NULL) {
		snprintf(c->why, sizeof(c->why), "%s", strerror(ENOMEM));
		goto out;
	}
	for (depth = 0; ; depth++) {
		snprintf(c->prog, sizeof(c->prog), "%s", path);
		if (stat(path, &st) != 0 || S_ISDIR(st.st_mode)) {
			snprintf(c->why, sizeof(c->why), "%s: %s", path,
			    strerror(S_ISDIR(st.st_mode) ? EISDIR : errno));
			goto out;
		}
		for (i = 0; i < depth; i++)
			if (seen[i].dev == st.st_dev &&
			    seen[i].ino == st.st_ino)
				break;
		if (i < depth) {
			snprintf(c->why, sizeof(c->why), "its scripts run "
			    "each other in a loop (%s is %s again)", path,
			    seen[i].path);
			end = DOCTOR_FOLLOW_LOOP;
			goto out;
		}
		if (depth == DOCTOR_FOLLOW_MAX) {
			snprintf(c->why, sizeof(c->why), "more than %d scripts "
			    "in a row (followed as far as %s)",
			    DOCTOR_FOLLOW_MAX, path);
			end = DOCTOR_FOLLOW_DEEP;
			goto out;
		}
		seen[depth].dev = st.st_dev;
		seen[depth].ino = st.st_ino;
		snprintf(seen[depth].path, PATH_MAX, "%s", path);
		if ((n = read_head(path, head, HEAD_MAX)) < 0) {
			snprintf(c->why, sizeof(c->why), "%s: %s", path,
			    strerror((int)-n));
			goto out;
		}
		if (n >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0) {
			end = DOCTOR_FOLLOW_PROGRAM;
			goto out;
		}
		if (doctor_script_parse(path, head, (size_t)n, s) != 0) {
			end = DOCTOR_FOLLOW_NOTPROG;
			goto out;
		}
		if (follow_script(c, path, s, next) != 0)
			goto out;
		snprintf(path, sizeof(path), "%s", next);
	}
out:
	free(seen);
	free(head);
	free(s);
	return end;
}
