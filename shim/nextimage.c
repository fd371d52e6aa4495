/*
 * nextimage: see nextimage.h.  Runs only at exec and posix_spawn, never on
 * a data path.  A question it cannot answer (a file it cannot read)
 * answers "yes": the exec then fails by itself, or the image is one the
 * program could run anyway.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "init.h"
#include "real.h"
#include "nextimage.h"

extern char **environ;

/* This library's file name (its last path component). */
static const char *
self_name(void)
{
	static const char *name;
	Dl_info di;
	const char *p;

	if (name == NULL && dladdr((void *)nextimage_runs_shim, &di) != 0 &&
	    di.dli_fname != NULL) {
		p = strrchr(di.dli_fname, '/');
		name = p != NULL ? p + 1 : di.dli_fname;
	}
	return name != NULL ? name : "libsockseal.so";
}

/* Does the list L (LD_PRELOAD's, or ld.so.preload's: names separated by
 * spaces, colons or newlines) name this library? */
static bool
names_self(const char *l)
{
	const char *me = self_name(), *p, *e;
	size_t n = strlen(me);

	for (p = l; *p != '\0'; p = e) {
		while (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t')
			p++;
		e = p + strcspn(p, " :\n\t");
		if ((size_t)(e - p) >= n && memcmp(e - n, me, n) == 0 &&
		    (e - p == (long)n || e[-(long)n - 1] == '/'))
			return true;
	}
	return false;
}

static const char *
env_get(char *const envp[], const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

static bool
preloaded(char *const envp[])
{
	const char *v = env_get(envp, "LD_PRELOAD");
	char buf[4096];
	ssize_t n;
	int fd;

	if (v != NULL && names_self(v))
		return true;
	if (shim_in_sandbox())
		return false;
	if ((fd = real_open("/etc/ld.so.preload", O_RDONLY | O_CLOEXEC, 0)) < 0)
		return false;
	n = real_read(fd, buf, sizeof(buf) - 1);
	real_close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return names_self(buf);
}

/* Is PATH an ELF with an interpreter, or a script? */
static bool
dynamic(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	bool dyn = true;
	int fd, i;

	if ((fd = real_open(path, O_RDONLY | O_CLOEXEC, 0)) < 0)
		return true;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64)
		goto out;               /* a script, or not ours to judge */
	dyn = false;
	for (i = 0; i < eh.e_phnum && i < 64; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)eh.e_phoff +
		    (off_t)i * eh.e_phentsize) != (ssize_t)sizeof(ph))
			break;
		if (ph.p_type == PT_INTERP) {
			dyn = true;
			break;
		}
	}
out:
	real_close(fd);
	return dyn;
}

bool
nextimage_runs_shim(const char *path, char *const envp[])
{
	struct stat st;
	int saved = errno;
	bool r;

	if (!preloaded(envp)) {
		r = false;
	} else if (shim_in_sandbox() || path == NULL || stat(path, &st) < 0) {
		r = true;
	} else if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getegid()) ||
	    getxattr(path, "security.capability", NULL, 0) > 0) {
		r = false;              /* the loader drops LD_PRELOAD */
	} else {
		r = dynamic(path);
	}
	errno = saved;
	return r;
}

const char *
nextimage_find(const char *file, char *const envp[], char *buf,
    unsigned long len)
{
	const char *path, *p, *e;
	struct stat st;

	if (file == NULL || *file == '\0')
		return NULL;
	if (strchr(file, '/') != NULL)
		return file;
	/* (execvp and execvpe search the caller's PATH, not ENVP's.) */
	(void)envp;
	if ((path = env_get(environ, "PATH")) == NULL)
		path = "/bin:/usr/bin";
	for (p = path; ; p = e + 1) {
		e = p + strcspn(p, ":");
		if (snprintf(buf, len, "%.*s%s%s", (int)(e - p), p,
		    e > p ? "/" : "", file) < (int)len &&
		    stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(buf, X_OK) == 0)
			return buf;
		if (*e == '\0')
			break;
	}
	return NULL;
}
