/*
 * systemd: `sockseal systemd UNIT [-f POLICY] [--credential NAME=PATH]...
 * [--install | --remove]`: a drop-in that seals a systemd service.  This
 * file owns the options and where the drop-in goes; what it says and the
 * checks of UNIT and NAME=PATH are systemd_dropin.c's, the check of the
 * policy systemd_check.c's (systemd_int.h: what the three share).
 *
 * The policy is checked first, and the drop-in is printed, or written to
 * DIR/UNIT.d/sockseal.conf, DIR being $SOCKSEAL_SYSTEMD_DIR or
 * /etc/systemd/system.  --install writes through a temporary file and
 * rename(), mode 0644, and leaves an identical file alone; --remove
 * deletes the file and the UNIT.d directory if that leaves it empty, and
 * succeeds (saying so) when there is nothing to remove.  Both run
 * `systemctl daemon-reload` only where systemd runs (/run/systemd/system).
 *
 * Exit status: 0 done, 1 error (policy, credential file, unit file,
 * daemon-reload), 2 usage (options, a bad UNIT or NAME=PATH).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "systemd_int.h"

#define SD_DIR      "/etc/systemd/system"
#define SD_CONF     "sockseal.conf"
#define SD_RUNNING  "/run/systemd/system"

extern char **environ;

static void
systemd_usage(FILE *f)
{
	fprintf(f, "usage: %s systemd UNIT [-f POLICY] [--credential NAME=PATH]"
	    "...\n"
	    "           [--install | --remove]\n"
	    "  prints a drop-in that preloads the shim into the service UNIT\n"
	    "  (UNIT without a suffix: UNIT.service)\n"
	    "  -f POLICY     the policy (default: $SOCKSEAL_POLICY or "
	    LAUNCHER_POLICY_DEFAULT ")\n"
	    "  --credential  LoadCredential=NAME:PATH: the service reads the "
	    "file as\n"
	    "                ${CREDENTIALS_DIRECTORY}/NAME (NAME: letters, "
	    "digits, . _ - @ +)\n"
	    "  --install     write it to DIR/UNIT.d/" SD_CONF " (DIR: "
	    "$SOCKSEAL_SYSTEMD_DIR\n"
	    "                or " SD_DIR ") and run systemctl daemon-reload\n"
	    "  --remove      delete that file (exit 0 if there is none)\n",
	    PROG);
}

/* DIR/UNIT.d and DIR/UNIT.d/sockseal.conf.  0 or -1 (said). */
static int
dropin_path(const struct sd *sd, char ddir[PATH_MAX], char file[PATH_MAX])
{
	const char *dir = getenv("SOCKSEAL_SYSTEMD_DIR");

	if (dir == NULL || *dir == '\0')
		dir = SD_DIR;
	if ((size_t)snprintf(ddir, PATH_MAX, "%s/%s.d", dir, sd->unit) >=
	    PATH_MAX || (size_t)snprintf(file, PATH_MAX, "%s/" SD_CONF,
	    ddir) >= PATH_MAX) {
		fprintf(stderr, "%s: systemd: %s: %s\n", PROG, dir,
		    strerror(ENAMETOOLONG));
		return -1;
	}
	return 0;
}

/* systemctl daemon-reload where systemd runs.  0 or 1 (said). */
static int
daemon_reload(void)
{
	char *argv[] = { "systemctl", "daemon-reload", NULL };
	pid_t pid;
	int e, st;

	if (access(SD_RUNNING, F_OK) != 0) {
		printf("systemd is not running here (no " SD_RUNNING "): run "
		    "`systemctl daemon-reload' where it runs\n");
		return 0;
	}
	fflush(stdout);
	if ((e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ)) != 0) {
		fprintf(stderr, "%s: systemctl: %s\n", PROG, strerror(e));
		return 1;
	}
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			fprintf(stderr, "%s: systemctl: %s\n", PROG,
			    strerror(errno));
			return 1;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: systemctl daemon-reload failed\n", PROG);
		return 1;
	}
	printf("ran systemctl daemon-reload\n");
	return 0;
}

/* Is FILE's content TEXT already? */
static bool
same_content(const char *file, const char *text, size_t len)
{
	char *buf;
	bool same = false;
	FILE *f;

	if ((f = fopen(file, "re")) == NULL)
		return false;
	if ((buf = malloc(len + 1)) != NULL)
		same = fread(buf, 1, len + 1, f) == len &&
		    memcmp(buf, text, len) == 0;
	free(buf);
	fclose(f);
	return same;
}

static int
install(const struct sd *sd, const char *text, size_t len)
{
	char ddir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX + 32];
	int fd;

	if (dropin_path(sd, ddir, file) != 0)
		return 1;
	if (same_content(file, text, len)) {
		printf("%s is up to date: nothing to do\n", file);
		return 0;
	}
	if (mkdir(ddir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", PROG, ddir, strerror(errno));
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s/." SD_CONF ".XXXXXX", ddir);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, tmp, strerror(errno));
		return 1;
	}
	if (fchmod(fd, 0644) != 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, tmp, strerror(errno));
		(void)close(fd);
		goto err;
	}
	if (close(fd) != 0 || rename(tmp, file) != 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG, file, strerror(errno));
		goto err;
	}
	printf("wrote %s\n", file);
	if (daemon_reload() != 0)
		return 1;
	printf("next: systemctl restart %s\n", sd->unit);
	return 0;
err:
	(void)unlink(tmp);
	return 1;
}

static int
uninstall(const struct sd *sd)
{
	char ddir[PATH_MAX], file[PATH_MAX];

	if (dropin_path(sd, ddir, file) != 0)
		return 1;
	if (unlink(file) != 0) {
		if (errno == ENOENT) {
			printf("nothing to remove: %s does not exist\n", file);
			return 0;
		}
		fprintf(stderr, "%s: %s: %s\n", PROG, file, strerror(errno));
		return 1;
	}
	printf("removed %s\n", file);
	if (rmdir(ddir) == 0)
		printf("removed %s (it was empty)\n", ddir);
	if (daemon_reload() != 0)
		return 1;
	printf("next: systemctl restart %s (it runs without the shim then)\n",
	    sd->unit);
	return 0;
}

static const struct option long_opts[] = {
	{ "credential", required_argument, NULL, 'c' },
	{ "install",    no_argument,       NULL, 'i' },
	{ "remove",     no_argument,       NULL, 'r' },
	{ "help",       no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
systemd_main(int argc, char **argv)
{
	static struct sd sd;            /* PATH_MAX buffers: not the stack */
	const char *pol = NULL;
	char *text;
	size_t len;
	int c, action = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			pol = optarg;
			break;
		case 'c':
			if (sd.ncred == SD_MAXCRED) {
				fprintf(stderr, "%s: systemd: more than %d "
				    "credentials\n", PROG, SD_MAXCRED);
				return 1;
			}
			rc = systemd_dropin_cred(optarg, &sd.cred[sd.ncred]);
			if (rc != 0)
				return rc;
			sd.ncred++;
			break;
		case 'i':
		case 'r':
			if (action != 0 && action != c) {
				fprintf(stderr, "%s: systemd: --install or "
				    "--remove, not both\n", PROG);
				systemd_usage(stderr);
				return 2;
			}
			action = c;
			break;
		case 'h':
			systemd_usage(stdout);
			return 0;
		default:
			systemd_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: systemd: %s\n", PROG, argc - optind == 0 ?
		    "missing UNIT" : "one UNIT only");
		systemd_usage(stderr);
		return 2;
	}
	if (systemd_dropin_unit(argv[optind], sd.unit) != 0)
		return 2;
	if (action == 'r')
		return uninstall(&sd);

	if (systemd_dropin_shim(sd.shim) != 0 ||
	    systemd_dropin_policy(launcher_policy_path(pol), sd.policy) != 0 ||
	    systemd_check(&sd) != 0)
		return 1;
	if ((text = systemd_dropin_text(&sd, &len)) == NULL) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(ENOMEM));
		return 1;
	}
	if (action == 'i') {
		rc = install(&sd, text, len);
	} else {
		rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ?
		    0 : 1;
		if (rc != 0)
			fprintf(stderr, "%s: stdout: %s\n", PROG,
			    strerror(errno));
	}
	free(text);
	return rc;
}
