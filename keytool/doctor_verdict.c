/*
 * doctor_verdict: can the shim reach the program a binary ends in?
 *
 * The shim works only where the dynamic loader honours LD_PRELOAD and the
 * program makes its socket calls through glibc's exported functions.  So,
 * in this order:
 *
 *   setuid/setgid, file     the loader runs it in secure mode and drops
 *   capabilities            LD_PRELOAD (for anyone but root)
 *   no PT_INTERP            statically linked: nothing to interpose
 *   Go                      makes its system calls itself, past libc
 *   another class/machine   the shim cannot be loaded into it
 *   not glibc (musl)        the shim is built for glibc
 *   io_uring (liburing)     socket I/O that never passes through libc
 *
 * say it cannot be sealed.  Otherwise it can, if the program or a library
 * it links (the whole DT_NEEDED tree) imports socket, connect, accept or
 * accept4; or if something there imports dlopen, or it is a known
 * interpreter, since its socket calls then come from modules it loads at
 * run time (python's _socket.*.so).  With none of these there is nothing
 * to seal: it makes no socket calls (exit status 0 too: running it
 * sealed does no harm, but the text says so).
 *
 * The block: the verdict line ("BINARY: can be sealed: ...", "BINARY:
 * nothing to seal: ...", "BINARY: cannot be sealed: ..."), BINARY as
 * found on PATH; then, indented, what was followed to reach the program,
 * what could not be followed, and the details.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "doctor_elf.h"
#include "doctor_libs.h"
#include "doctor_verdict.h"
#include "launcher.h"

#define USE_NOISE "use an off-the-shelf Noise peer, see PROTOCOL.md"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#elif defined(__s390x__)
#define HOST_MACHINE EM_S390
#else
#define HOST_MACHINE EM_NONE    /* unknown: not checked */
#endif
#define HOST_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)

/* Interpreters that load their socket module at run time, by base name
 * (a version may follow: python3.11, perl5.36). */
static const char *const interpreters[] = { "python", "pypy", "perl",
    "ruby", "node", "nodejs", "php", "lua", "luajit", "tclsh", "guile",
    "java", "Rscript", NULL };

static int
cannot(const struct doctor_chain *c, const char *why)
{
	printf("%s: cannot be sealed: %s\n", c->start, why);
	return DOCTOR_CANNOT;
}

static const char *
machine_name(uint16_t m)
{
	switch (m) {
	case EM_X86_64:  return "x86-64";
	case EM_386:     return "i386";
	case EM_AARCH64: return "arm64";
	case EM_ARM:     return "arm";
	case EM_RISCV:   return "riscv";
	case EM_PPC64:   return "ppc64";
	case EM_S390:    return "s390x";
	default:         return "another architecture";
	}
}

static bool
glibc_interp(const char *interp)
{
	const char *b = strrchr(interp, '/');

	b = b ? b + 1 : interp;
	return strncmp(b, "ld-linux", 8) == 0 ||
	    strncmp(b, "ld64.so", 7) == 0 || strncmp(b, "ld.so", 5) == 0;
}

static bool
interpreter(const char *path)
{
	const char *b = strrchr(path, '/'), *const *i;
	size_t n;

	b = b ? b + 1 : path;
	for (i = interpreters; *i != NULL; i++) {
		n = strlen(*i);
		if (strncmp(b, *i, n) == 0 && strspn(b + n, "0123456789.") ==
		    strlen(b + n))
			return true;
	}
	return false;
}

/* The lines of how the program was reached and what was not followed. */
static void
print_chain(const struct doctor_chain *c)
{
	int i;

	for (i = 0; i < c->nhops; i++)
		printf("  follows: %s\n", c->hop[i]);
	for (i = 0; i < c->nnotes; i++)
		printf("  note: %s\n", c->note[i]);
}

/* The details lines of a program that can be sealed. */
static void
print_details(const struct doctor_chain *c, const struct doctor_elf *e,
    const struct doctor_libs *d)
{
	bool any = false;
	size_t g, i;
	int j;

	printf("  imports:");
	for (g = 0; g < DOCTOR_ELF_NGROUPS; g++) {
		const char *sep = any ? "; " : " ";
		bool first = true;

		for (i = 0; doctor_elf_groups[g].names[i] != NULL; i++) {
			if (!e->imports[g][i])
				continue;
			if (first)
				printf("%s%s:", sep,
				    doctor_elf_groups[g].group);
			printf(" %s", doctor_elf_groups[g].names[i]);
			first = false;
			any = true;
		}
	}
	if (!any)
		printf(" none of the calls the shim interposes");
	printf("\n  needs:");
	for (j = 0; j < e->nneeded; j++)
		printf(" %s", e->needed[j]);
	printf("%s\n", e->nneeded ? "" : " (nothing)");
	if (d->sockets_in[0] != '\0')
		printf("  libraries that make socket calls: %s\n",
		    d->sockets_in);
	if (d->missing[0] != '\0')
		printf("  note: not found, not checked: %s\n", d->missing);
	if (e->syscall)
		printf("  note: it calls syscall(): the shim routes the "
		    "socket calls made that way; a connection it opened by a "
		    "raw system call instruction would escape the policy "
		    "unsealed, while raw I/O on a sealed connection fails\n");
	if (c->shell_script)
		printf("  note: the commands the script runs are programs of "
		    "their own, each sealed or not by itself (they inherit "
		    "LD_PRELOAD): run doctor on those that connect\n");
}

/* A program that can be reached: can be sealed, or nothing to seal. */
static int
reachable(const struct doctor_chain *c, const struct doctor_elf *e,
    const struct doctor_libs *d)
{
	const char *it = c->nhops > 0 ? c->prog : "it";

	if (e->sockets || d->sockets)
		printf("%s: can be sealed: dynamically linked against glibc "
		    "(loader %s)\n", c->start, e->interp);
	else if (e->dlopen || d->dlopen)
		printf("%s: can be sealed: dynamically linked against glibc "
		    "(loader %s); its socket calls come from modules it loads "
		    "at run time (dlopen, imported by %s)\n", c->start,
		    e->interp, e->dlopen ? c->prog : d->dlopen_in);
	else if (interpreter(c->prog))
		printf("%s: can be sealed: dynamically linked against glibc "
		    "(loader %s); an interpreter: its socket calls come from "
		    "modules it loads at run time\n", c->start, e->interp);
	else
		printf("%s: nothing to seal: %s makes no socket calls "
		    "(neither it nor its libraries import socket, connect, "
		    "accept or dlopen)\n", c->start, it);
	return DOCTOR_CAN;
}

/* The verdict for the ELF program E, at c->prog. */
static int
judge_elf(const struct doctor_chain *c, const struct doctor_elf *e)
{
	struct doctor_libs d;
	char why[PATH_MAX + 512];
	int rc;

	if (e->type != ET_EXEC && e->type != ET_DYN) {
		rc = cannot(c, "not an executable (an ELF object or core "
		    "file)");
		print_chain(c);
		return rc;
	}
	if (e->interp[0] == '\0') {
		if (e->dynamic && e->nneeded > 0) {
			printf("%s: a shared library, not a program: run "
			    "doctor on the program that loads it\n", c->start);
			rc = DOCTOR_ERROR;
		} else {
			rc = cannot(c, e->go ? "statically linked (a Go "
			    "program); " USE_NOISE : "statically linked (e.g. "
			    "Go or musl static); " USE_NOISE);
		}
		print_chain(c);
		return rc;
	}
	memset(&d, 0, sizeof(d));
	doctor_libs_walk(&d, e, c->prog);
	if (e->go || d.go) {
		rc = cannot(c, "a Go program: Go makes its network system "
		    "calls itself, past libc, where no preloaded library can "
		    "see them; " USE_NOISE);
	} else if ((HOST_MACHINE != EM_NONE && e->machine != HOST_MACHINE) ||
	    e->class != HOST_CLASS) {
		snprintf(why, sizeof(why), "a %d-bit %s program; this sockseal "
		    "is built for %d-bit %s, and the loader cannot preload it "
		    "there", e->is64 ? 64 : 32, machine_name(e->machine),
		    HOST_CLASS == ELFCLASS64 ? 64 : 32,
		    machine_name(HOST_MACHINE));
		rc = cannot(c, why);
	} else if (!glibc_interp(e->interp)) {
		snprintf(why, sizeof(why), "not linked against glibc (its "
		    "loader is %s%s); the shim is built for glibc", e->interp,
		    strstr(e->interp, "musl") ? ", musl" : "");
		rc = cannot(c, why);
	} else if (e->uring || d.uring) {
		snprintf(why, sizeof(why), "it uses io_uring (%s): I/O "
		    "submitted through io_uring never passes through libc: a "
		    "connection it opens that way escapes the policy unsealed "
		    "(on a sealed connection such I/O fails)", e->uring ?
		    "imports io_uring_* calls" : d.uring_in);
		rc = cannot(c, why);
	} else {
		rc = reachable(c, e, &d);
	}
	print_chain(c);
	if (rc == DOCTOR_CAN || e->uring || d.uring)
		print_details(c, e, &d);
	doctor_libs_free(&d);
	return rc;
}

/*
 * Setuid/setgid or file capabilities: the kernel asks for secure
 * execution and the loader ignores LD_PRELOAD (except for root running
 * a setuid-root program, where nothing changes identity).
 */
static const char *
privileged(const char *path, const struct stat *st)
{
	if ((st->st_mode & S_ISUID) && (st->st_mode & 0111))
		return "it is setuid: the loader ignores LD_PRELOAD for it "
		    "(secure execution), unless its owner runs it";
	if ((st->st_mode & S_ISGID) && (st->st_mode & 0111))
		return "it is setgid: the loader ignores LD_PRELOAD for it "
		    "(secure execution), unless run with that group";
	if (getxattr(path, "security.capability", NULL, 0) > 0)
		return "it has file capabilities (security.capability): the "
		    "loader ignores LD_PRELOAD for it (secure execution)";
	return NULL;
}

int
doctor_verdict(const struct doctor_chain *c, int end)
{
	struct doctor_elf *e = NULL;
	const char *why;
	struct stat st;
	int err, rc;

	switch (end) {
	case DOCTOR_FOLLOW_NOTPROG:
		rc = cannot(c, "neither an ELF program nor a script (#!)");
		print_chain(c);
		return rc;
	case DOCTOR_FOLLOW_LOOP:
	case DOCTOR_FOLLOW_DEEP:
		rc = cannot(c, c->why);
		print_chain(c);
		return rc;
	case DOCTOR_FOLLOW_PROGRAM:
		break;
	default:
		fprintf(stderr, "%s doctor: %s\n", LAUNCHER_PROG, c->why);
		return DOCTOR_ERROR;
	}
	if (stat(c->prog, &st) != 0)
		err = -errno;
	else if ((e = doctor_elf_open(c->prog, &err)) != NULL)
		err = 0;
	if (err != 0) {
		fprintf(stderr, "%s doctor: %s: %s\n", LAUNCHER_PROG, c->prog,
		    strerror(-err));
		return DOCTOR_ERROR;
	}
	if ((why = privileged(c->prog, &st)) != NULL) {
		rc = cannot(c, why);
		print_chain(c);
	} else {
		rc = judge_elf(c, e);
	}
	doctor_elf_free(e);
	return rc;
}
