/*
 * doctor: `sockseal doctor BINARY`: can the shim reach this program?
 *
 * The shim works only where the dynamic loader honours LD_PRELOAD and the
 * program makes its socket calls through glibc's exported functions.  So
 * doctor reads the program's ELF headers itself (<elf.h>, 32 or 64 bit,
 * either byte order, no external tools) and answers, in this order:
 *
 *   script (#!)             follow the interpreter (env: through PATH)
 *   setuid/setgid, file     the loader runs it in secure mode and drops
 *   capabilities            LD_PRELOAD (for anyone but root)
 *   no PT_INTERP            statically linked: nothing to interpose
 *   Go                      makes its system calls itself, past libc
 *   another class/machine   the shim cannot be loaded into it
 *   not glibc (musl)        the shim is built for glibc
 *   io_uring (liburing)     socket I/O that never passes through libc
 *
 * and otherwise says it can be sealed, listing which interposed calls the
 * program and its libraries import (undefined symbols of .dynsym) and
 * which libraries it needs (DT_NEEDED, found as the loader would: RUNPATH,
 * LD_LIBRARY_PATH, /etc/ld.so.conf, the default directories).
 *
 * Output: one verdict line first ("PATH: can be sealed: ..." or "PATH:
 * cannot be sealed: ..."), then indented details.  Exit status 0 (can),
 * 1 (cannot), 2 (usage, or the file cannot be read).
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "launcher.h"

#define DOCTOR_CAN    0
#define DOCTOR_CANNOT 1
#define DOCTOR_ERROR  2

#define MAX_NEEDED  64          /* DT_NEEDED entries read per object */
#define MAX_LIBS    256         /* objects in the whole dependency tree */
#define MAX_LOADS   16          /* PT_LOAD segments kept for addr->offset */
#define MAX_DEPTH   4           /* #! interpreters followed */
#define USE_NOISE   "use an off-the-shelf Noise peer, see PROTOCOL.md"

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

/* The calls the shim interposes, by what they are for (shim/shim.map). */
static const struct {
	const char *group;
	const char *names[24];
} interposed[] = {
	{ "sockets", { "socket", "connect", "accept", "accept4", "shutdown",
	    "getsockopt", "setsockopt" } },
	{ "I/O", { "read", "__read_chk", "write", "readv", "writev", "recv",
	    "__recv_chk", "send", "recvfrom", "__recvfrom_chk", "sendto",
	    "recvmsg", "sendmsg", "recvmmsg", "sendmmsg", "fdopen" } },
	{ "readiness", { "poll", "__poll_chk", "ppoll", "select", "pselect",
	    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
	    "epoll_pwait", "epoll_pwait2" } },
	{ "zero-copy", { "sendfile", "sendfile64", "splice" } },
	{ "fds", { "close", "dup", "dup2", "dup3", "fcntl", "fcntl64",
	    "close_range", "closefrom", "fork", "execve" } },
};
#define NGROUPS (sizeof(interposed) / sizeof(interposed[0]))

/* A mapped ELF file and what doctor learned from it. */
struct elf {
	const uint8_t *p;
	size_t         len;
	bool           is64, swap, bad;
	uint16_t       type, machine;
	uint8_t        class;
	char           interp[PATH_MAX];
	char          *needed[MAX_NEEDED];
	int            nneeded;
	char           runpath[PATH_MAX];
	bool           dynamic;         /* has PT_DYNAMIC */
	bool           go;              /* Go build info or runtime symbols */
	bool           uring;           /* imports io_uring_* */
	bool           syscall;         /* imports syscall() */
	bool           sockets;         /* imports connect, accept or socket */
	bool           imports[NGROUPS][24];
	struct { uint64_t vaddr, off, size; } load[MAX_LOADS];
	int            nload;
};

/* ------------------------------------------------------------ reading */

/* SIZE bytes (1, 2, 4, 8) at OFF in the file's byte order; 0 if outside. */
static uint64_t
elf_uint(struct elf *e, uint64_t off, size_t size)
{
	uint64_t v = 0;
	uint16_t v16;
	uint32_t v32;

	if (off > e->len || size > e->len - off) {
		e->bad = true;
		return 0;
	}
	switch (size) {
	case 1:
		return e->p[off];
	case 2:
		memcpy(&v16, e->p + off, 2);
		return e->swap ? __builtin_bswap16(v16) : v16;
	case 4:
		memcpy(&v32, e->p + off, 4);
		return e->swap ? __builtin_bswap32(v32) : v32;
	default:
		memcpy(&v, e->p + off, 8);
		return e->swap ? __builtin_bswap64(v) : v;
	}
}

/* Field F of the ELF structure T (Ehdr, Phdr, ...) that starts at BASE. */
#define EF(e, base, T, f) elf_uint((e), (uint64_t)(base) + ((e)->is64 ? \
	offsetof(Elf64_##T, f) : offsetof(Elf32_##T, f)), (e)->is64 ? \
	sizeof(((Elf64_##T *)0)->f) : sizeof(((Elf32_##T *)0)->f))

/* The NUL-terminated string at OFF, or NULL if it runs off the file. */
static const char *
elf_str(const struct elf *e, uint64_t off)
{
	if (off >= e->len || memchr(e->p + off, '\0', e->len - off) == NULL)
		return NULL;
	return (const char *)e->p + off;
}

/* A virtual address to a file offset, through the PT_LOAD segments. */
static bool
elf_vtoff(const struct elf *e, uint64_t vaddr, uint64_t *off)
{
	int i;

	for (i = 0; i < e->nload; i++) {
		if (vaddr >= e->load[i].vaddr &&
		    vaddr - e->load[i].vaddr < e->load[i].size) {
			*off = e->load[i].off + (vaddr - e->load[i].vaddr);
			return true;
		}
	}
	return false;
}

static void
elf_note_symbol(struct elf *e, const char *name)
{
	size_t g, i;

	if (strncmp(name, "runtime.", 8) == 0)
		e->go = true;
	if (strncmp(name, "io_uring_", 9) == 0)
		e->uring = true;
	if (strcmp(name, "syscall") == 0)
		e->syscall = true;
	if (strcmp(name, "connect") == 0 || strcmp(name, "accept") == 0 ||
	    strcmp(name, "accept4") == 0 || strcmp(name, "socket") == 0)
		e->sockets = true;
	for (g = 0; g < NGROUPS; g++)
		for (i = 0; interposed[g].names[i] != NULL; i++)
			if (strcmp(name, interposed[g].names[i]) == 0)
				e->imports[g][i] = true;
}

/* Program headers: the interpreter, the load map, where PT_DYNAMIC is. */
static void
elf_phdrs(struct elf *e, uint64_t *dyn_off, uint64_t *dyn_size)
{
	uint64_t phoff = EF(e, 0, Ehdr, e_phoff), ph, off, size;
	unsigned n = (unsigned)EF(e, 0, Ehdr, e_phnum);
	unsigned esz = (unsigned)EF(e, 0, Ehdr, e_phentsize);
	const char *s;
	unsigned i;

	for (i = 0; i < n && !e->bad; i++) {
		ph = phoff + (uint64_t)i * esz;
		off = EF(e, ph, Phdr, p_offset);
		size = EF(e, ph, Phdr, p_filesz);
		switch (EF(e, ph, Phdr, p_type)) {
		case PT_INTERP:
			if ((s = elf_str(e, off)) != NULL)
				snprintf(e->interp, sizeof(e->interp), "%s", s);
			break;
		case PT_DYNAMIC:
			e->dynamic = true;
			*dyn_off = off;
			*dyn_size = size;
			break;
		case PT_LOAD:
			if (e->nload < MAX_LOADS) {
				e->load[e->nload].vaddr = EF(e, ph, Phdr, p_vaddr);
				e->load[e->nload].off = off;
				e->load[e->nload].size = size;
				e->nload++;
			}
			break;
		}
	}
}

/* The dynamic section: DT_NEEDED names and DT_RUNPATH/DT_RPATH. */
static void
elf_dynamic(struct elf *e, uint64_t off, uint64_t size)
{
	uint64_t esz = e->is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
	uint64_t strtab = 0, strsz = 0, need[MAX_NEEDED], rp = UINT64_MAX;
	uint64_t d, tag, val;
	const char *s;
	int n = 0, i;

	for (d = off; d + esz <= off + size && !e->bad; d += esz) {
		tag = EF(e, d, Dyn, d_tag);
		val = EF(e, d, Dyn, d_un);
		if (tag == DT_NULL)
			break;
		if (tag == DT_NEEDED && n < MAX_NEEDED)
			need[n++] = val;
		else if (tag == DT_STRTAB)
			strtab = val;
		else if (tag == DT_STRSZ)
			strsz = val;
		else if (tag == DT_RUNPATH || (tag == DT_RPATH && rp == UINT64_MAX))
			rp = val;
	}
	/* DT_STRTAB is an address; a linked object's is in a PT_LOAD. */
	if (!elf_vtoff(e, strtab, &strtab))
		return;
	for (i = 0; i < n; i++)
		if (need[i] < strsz && (s = elf_str(e, strtab + need[i])) != NULL)
			e->needed[e->nneeded++] = strdup(s);
	if (rp < strsz && (s = elf_str(e, strtab + rp)) != NULL)
		snprintf(e->runpath, sizeof(e->runpath), "%s", s);
}

/* One symbol table section: note undefined (imported) names; every name
 * of a full .symtab for Go's runtime.* */
static void
elf_symbols(struct elf *e, uint64_t sh, uint64_t shoff, unsigned shesz,
    bool full)
{
	uint64_t off = EF(e, sh, Shdr, sh_offset);
	uint64_t size = EF(e, sh, Shdr, sh_size);
	uint64_t link = EF(e, sh, Shdr, sh_link);
	uint64_t esz = e->is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
	uint64_t stroff = EF(e, shoff + link * shesz, Shdr, sh_offset);
	uint64_t sym, name;
	const char *s;

	for (sym = off + esz; sym + esz <= off + size && !e->bad; sym += esz) {
		name = EF(e, sym, Sym, st_name);
		if (name == 0 || (s = elf_str(e, stroff + name)) == NULL)
			continue;
		if (full && strncmp(s, "runtime.", 8) == 0)
			e->go = true;
		if (EF(e, sym, Sym, st_shndx) == SHN_UNDEF)
			elf_note_symbol(e, s);
	}
}

/* Section headers: the symbol tables and Go's sections. */
static void
elf_sections(struct elf *e)
{
	uint64_t shoff = EF(e, 0, Ehdr, e_shoff), sh, type, names;
	unsigned n = (unsigned)EF(e, 0, Ehdr, e_shnum);
	unsigned esz = (unsigned)EF(e, 0, Ehdr, e_shentsize);
	unsigned strndx = (unsigned)EF(e, 0, Ehdr, e_shstrndx), i;
	const char *s;

	if (shoff == 0 || strndx >= n)
		return;
	names = EF(e, shoff + (uint64_t)strndx * esz, Shdr, sh_offset);
	for (i = 0; i < n && !e->bad; i++) {
		sh = shoff + (uint64_t)i * esz;
		type = EF(e, sh, Shdr, sh_type);
		s = elf_str(e, names + EF(e, sh, Shdr, sh_name));
		if (s != NULL && (strcmp(s, ".go.buildinfo") == 0 ||
		    strcmp(s, ".note.go.buildid") == 0 ||
		    strcmp(s, ".gopclntab") == 0))
			e->go = true;
		if (type == SHT_DYNSYM || type == SHT_SYMTAB)
			elf_symbols(e, sh, shoff, esz, type == SHT_SYMTAB);
	}
}

static void
elf_free(struct elf *e)
{
	int i;

	for (i = 0; i < e->nneeded; i++)
		free(e->needed[i]);
	if (e->p != NULL)
		munmap((void *)e->p, e->len);
	free(e);
}

/*
 * Read the ELF file at PATH.  Returns it, or NULL with *ERR: -errno when
 * it cannot be read, -ENOEXEC when it is not ELF (the caller looks for #!).
 */
static struct elf *
elf_open(const char *path, int *err)
{
	uint64_t dyn_off = 0, dyn_size = 0;
	struct elf *e;
	struct stat st;
	void *m;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < EI_NIDENT) {
		*err = S_ISDIR(st.st_mode) ? -EISDIR : -ENOEXEC;
		close(fd);
		return NULL;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	*err = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		munmap(m, (size_t)st.st_size);
		*err = -ENOMEM;
		return NULL;
	}
	e->p = m;
	e->len = (size_t)st.st_size;
	if (memcmp(e->p, ELFMAG, SELFMAG) != 0 ||
	    (e->p[EI_CLASS] != ELFCLASS32 && e->p[EI_CLASS] != ELFCLASS64) ||
	    (e->p[EI_DATA] != ELFDATA2LSB && e->p[EI_DATA] != ELFDATA2MSB)) {
		elf_free(e);
		*err = -ENOEXEC;
		return NULL;
	}
	e->class = e->p[EI_CLASS];
	e->is64 = e->class == ELFCLASS64;
	e->swap = (e->p[EI_DATA] == ELFDATA2LSB) != (BYTE_ORDER == LITTLE_ENDIAN);
	e->type = (uint16_t)EF(e, 0, Ehdr, e_type);
	e->machine = (uint16_t)EF(e, 0, Ehdr, e_machine);
	elf_phdrs(e, &dyn_off, &dyn_size);
	if (e->dynamic)
		elf_dynamic(e, dyn_off, dyn_size);
	elf_sections(e);
	return e;
}

/* ------------------------------------------------------------ libraries */

/* The directories the loader searches, in order (a colon list). */
struct libpath {
	char   dirs[8192];
	size_t len;
};

static void
libpath_add(struct libpath *lp, const char *dir, size_t n, const char *origin)
{
	char buf[PATH_MAX];
	const char *o;

	if (n == 0 || n >= sizeof(buf))
		return;
	memcpy(buf, dir, n);
	buf[n] = '\0';
	/* $ORIGIN / ${ORIGIN}: the directory of the object itself. */
	if ((o = strstr(buf, "$ORIGIN")) != NULL ||
	    (o = strstr(buf, "${ORIGIN}")) != NULL) {
		char rest[PATH_MAX];

		snprintf(rest, sizeof(rest), "%s", o + (o[1] == '{' ? 9 : 7));
		snprintf(buf + (o - buf), sizeof(buf) - (size_t)(o - buf), "%s%s",
		    origin, rest);
	}
	if (lp->len + strlen(buf) + 2 < sizeof(lp->dirs))
		lp->len += (size_t)snprintf(lp->dirs + lp->len,
		    sizeof(lp->dirs) - lp->len, "%s:", buf);
}

static void
libpath_add_list(struct libpath *lp, const char *list, const char *origin)
{
	const char *s, *c;

	for (s = list; s != NULL && *s != '\0'; s = c ? c + 1 : NULL) {
		c = strchr(s, ':');
		libpath_add(lp, s, c ? (size_t)(c - s) : strlen(s), origin);
	}
}

/* /etc/ld.so.conf and the files it includes (one level of include). */
static void
libpath_add_conf(struct libpath *lp, const char *file, int depth)
{
	char *line = NULL, *s, *e;
	size_t cap = 0, i;
	glob_t g;
	FILE *f;

	if (depth > 2 || (f = fopen(file, "r")) == NULL)
		return;
	while (getline(&line, &cap, f) != -1) {
		if ((s = strchr(line, '#')) != NULL)
			*s = '\0';
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		for (e = s + strlen(s); e > s && (e[-1] == '\n' ||
		    e[-1] == ' ' || e[-1] == '\t'); )
			*--e = '\0';
		if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
			for (s += 8; *s == ' ' || *s == '\t'; s++)
				;
			if (glob(s, 0, NULL, &g) == 0) {
				for (i = 0; i < g.gl_pathc; i++)
					libpath_add_conf(lp, g.gl_pathv[i], depth + 1);
				globfree(&g);
			}
		} else if (*s == '/') {
			libpath_add(lp, s, strlen(s), "");
		}
	}
	free(line);
	fclose(f);
}

/* Find library NAME for the object at PATH as the loader would. */
static bool
lib_find(const struct elf *e, const char *path, const char *name,
    char out[PATH_MAX])
{
	struct libpath lp = { .len = 0 };
	char origin[PATH_MAX];
	const char *s, *c;
	char *slash;

	if (strchr(name, '/') != NULL) {
		snprintf(out, PATH_MAX, "%s", name);
		return access(out, R_OK) == 0;
	}
	snprintf(origin, sizeof(origin), "%s", path);
	if ((slash = strrchr(origin, '/')) != NULL)
		*slash = '\0';
	libpath_add_list(&lp, e->runpath, origin);
	libpath_add_list(&lp, getenv("LD_LIBRARY_PATH"), origin);
	libpath_add_conf(&lp, "/etc/ld.so.conf", 0);
	libpath_add_list(&lp, e->class == ELFCLASS64 ? "/lib64:/usr/lib64" :
	    "/lib32:/usr/lib32", "");
	libpath_add_list(&lp, "/lib:/usr/lib", "");
	for (s = lp.dirs; (c = strchr(s, ':')) != NULL; s = c + 1) {
		struct elf *l;
		int err;

		snprintf(out, PATH_MAX, "%.*s/%s", (int)(c - s), s, name);
		if (access(out, R_OK) != 0)
			continue;
		/* The loader skips objects of another class or machine. */
		if ((l = elf_open(out, &err)) == NULL)
			continue;
		if (l->class == e->class && l->machine == e->machine) {
			elf_free(l);
			return true;
		}
		elf_free(l);
	}
	return false;
}

/* What the whole dependency tree of the program adds. */
struct deps {
	char   *seen[MAX_LIBS];
	int     nseen;
	bool    uring, go, sockets;
	char    sockets_in[512];        /* libraries importing socket calls */
	char    uring_in[256];
	char    missing[512];
};

static bool
deps_seen(struct deps *d, const char *name)
{
	int i;

	for (i = 0; i < d->nseen; i++)
		if (strcmp(d->seen[i], name) == 0)
			return true;
	if (d->nseen < MAX_LIBS)
		d->seen[d->nseen++] = strdup(name);
	return false;
}

static void
append(char *buf, size_t len, const char *word)
{
	size_t n = strlen(buf);

	if (n + strlen(word) + 2 < len)
		snprintf(buf + n, len - n, "%s%s", n ? " " : "", word);
}

/* Walk E's DT_NEEDED tree breadth-first. */
static void
deps_walk(struct deps *d, const struct elf *e, const char *path)
{
	char lib[PATH_MAX];
	struct elf *l;
	int i, err;

	for (i = 0; i < e->nneeded; i++) {
		if (deps_seen(d, e->needed[i]))
			continue;
		if (strncmp(e->needed[i], "liburing", 8) == 0) {
			d->uring = true;
			append(d->uring_in, sizeof(d->uring_in), e->needed[i]);
		}
		if (!lib_find(e, path, e->needed[i], lib) ||
		    (l = elf_open(lib, &err)) == NULL) {
			append(d->missing, sizeof(d->missing), e->needed[i]);
			continue;
		}
		if (l->uring) {
			d->uring = true;
			append(d->uring_in, sizeof(d->uring_in), e->needed[i]);
		}
		if (l->sockets) {
			d->sockets = true;
			append(d->sockets_in, sizeof(d->sockets_in), e->needed[i]);
		}
		d->go |= l->go;
		deps_walk(d, l, lib);
		elf_free(l);
	}
}

static void
deps_free(struct deps *d)
{
	int i;

	for (i = 0; i < d->nseen; i++)
		free(d->seen[i]);
}

/* ------------------------------------------------------------- verdicts */

/* The verdict line's subject: the path, and for scripts the #! chain. */
static char label[3 * PATH_MAX];

static int
cannot(const char *path, const char *why)
{
	printf("%s: cannot be sealed: %s\n", label[0] ? label : path, why);
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
	return strncmp(b, "ld-linux", 8) == 0 || strncmp(b, "ld64.so", 7) == 0 ||
	    strncmp(b, "ld.so", 5) == 0;
}

/* The details lines of a program that can be sealed. */
static void
print_details(const struct elf *e, const struct deps *d)
{
	bool any = false;
	size_t g, i;
	int j;

	printf("  imports:");
	for (g = 0; g < NGROUPS; g++) {
		const char *sep = any ? "; " : " ";
		bool first = true;

		for (i = 0; interposed[g].names[i] != NULL; i++) {
			if (!e->imports[g][i])
				continue;
			if (first)
				printf("%s%s:", sep, interposed[g].group);
			printf(" %s", interposed[g].names[i]);
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
		printf("  libraries that make socket calls: %s\n", d->sockets_in);
	if (d->missing[0] != '\0')
		printf("  note: not found, not checked: %s\n", d->missing);
	if (!e->sockets && !d->sockets)
		printf("  note: neither it nor its libraries import socket, "
		    "connect or accept: it makes no TCP connections, or loads "
		    "the code that does at run time (dlopen, plugins, Python "
		    "modules): the shim covers that code too\n");
	if (e->syscall)
		printf("  note: it calls syscall(): the shim routes the "
		    "socket calls made that way; a connection it opened by a "
		    "raw system call instruction would escape the policy "
		    "unsealed, while raw I/O on a sealed connection fails\n");
}

/* The verdict for the ELF program E at PATH (a regular file). */
static int
doctor_elf(struct elf *e, const char *path)
{
	struct deps d;
	int rc;

	if (e->type != ET_EXEC && e->type != ET_DYN)
		return cannot(path, "not an executable (an ELF object or core "
		    "file)");
	if (e->interp[0] == '\0') {
		if (e->dynamic && e->nneeded > 0) {
			printf("%s: a shared library, not a program: run doctor "
			    "on the program that loads it\n", label[0] ? label :
			    path);
			return DOCTOR_ERROR;
		}
		return cannot(path, e->go ? "statically linked (a Go program); "
		    USE_NOISE : "statically linked (e.g. Go or musl static); "
		    USE_NOISE);
	}
	memset(&d, 0, sizeof(d));
	deps_walk(&d, e, path);
	if (e->go || d.go) {
		rc = cannot(path, "a Go program: Go makes its network system "
		    "calls itself, past libc, where no preloaded library can "
		    "see them; " USE_NOISE);
	} else if ((HOST_MACHINE != EM_NONE && e->machine != HOST_MACHINE) ||
	    e->class != HOST_CLASS) {
		char why[160];

		snprintf(why, sizeof(why), "a %d-bit %s program; this sockseal "
		    "is built for %d-bit %s, and the loader cannot preload it "
		    "there", e->is64 ? 64 : 32, machine_name(e->machine),
		    HOST_CLASS == ELFCLASS64 ? 64 : 32,
		    machine_name(HOST_MACHINE));
		rc = cannot(path, why);
	} else if (!glibc_interp(e->interp)) {
		char why[PATH_MAX + 96];

		snprintf(why, sizeof(why), "not linked against glibc (its "
		    "loader is %s%s); the shim is built for glibc", e->interp,
		    strstr(e->interp, "musl") ? ", musl" : "");
		rc = cannot(path, why);
	} else if (e->uring || d.uring) {
		char why[512];

		snprintf(why, sizeof(why), "it uses io_uring (%s): I/O "
		    "submitted through io_uring never passes through libc: a "
		    "connection it opens that way escapes the policy unsealed "
		    "(on a sealed connection such I/O fails)", e->uring ?
		    "imports io_uring_* calls" : d.uring_in);
		rc = cannot(path, why);
	} else {
		printf("%s: can be sealed: dynamically linked against glibc "
		    "(loader %s)\n", label[0] ? label : path, e->interp);
		rc = DOCTOR_CAN;
	}
	if (rc == DOCTOR_CAN || e->uring || d.uring)
		print_details(e, &d);
	deps_free(&d);
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

/*
 * A script: the interpreter from its #! line into INTERP (through env,
 * resolved on PATH).  Returns true if PATH starts with #!.
 */
static bool
script_interp(const char *path, char interp[PATH_MAX])
{
	char line[PATH_MAX], *s, *arg, *e;
	FILE *f;
	bool ok;

	if ((f = fopen(path, "r")) == NULL)
		return false;
	ok = fgets(line, sizeof(line), f) != NULL && line[0] == '#' &&
	    line[1] == '!';
	fclose(f);
	if (!ok)
		return false;
	for (s = line + 2; *s == ' ' || *s == '\t'; s++)
		;
	for (e = s; *e != '\0' && *e != ' ' && *e != '\t' && *e != '\n'; e++)
		;
	arg = *e != '\0' && *e != '\n' ? e + 1 : e;
	*e = '\0';
	snprintf(interp, PATH_MAX, "%s", s);
	/* #!/usr/bin/env [-S] [-i] NAME: the program is NAME on PATH. */
	if (strcmp(strrchr(s, '/') ? strrchr(s, '/') + 1 : s, "env") == 0) {
		for (;;) {
			while (*arg == ' ' || *arg == '\t')
				arg++;
			for (e = arg; *e != '\0' && *e != ' ' && *e != '\t' &&
			    *e != '\n'; e++)
				;
			if (*arg != '-' || e == arg)
				break;
			arg = e;
		}
		*e = '\0';
		if (*arg == '\0' || !resolve(arg, interp))
			snprintf(interp, PATH_MAX, "%s", *arg ? arg : s);
	}
	return true;
}

static int
doctor(const char *arg, int depth)
{
	char path[PATH_MAX], interp[PATH_MAX];
	struct stat st;
	struct elf *e;
	const char *why;
	int err, rc;

	if (!resolve(arg, path)) {
		fprintf(stderr, "%s doctor: %s: not found on PATH\n",
		    LAUNCHER_PROG, arg);
		return DOCTOR_ERROR;
	}
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s doctor: %s: %s\n", LAUNCHER_PROG, path,
		    strerror(errno));
		return DOCTOR_ERROR;
	}
	if ((e = elf_open(path, &err)) == NULL) {
		if (err != -ENOEXEC) {
			fprintf(stderr, "%s doctor: %s: %s\n", LAUNCHER_PROG,
			    path, strerror(-err));
			return DOCTOR_ERROR;
		}
		if (!script_interp(path, interp))
			return cannot(path, "neither an ELF program nor a "
			    "script (#!)");
		if (depth >= MAX_DEPTH)
			return cannot(path, "too many #! interpreters in a row");
		/* The kernel ignores setuid on scripts: the interpreter runs,
		 * and the verdict is its. */
		if (depth == 0)
			snprintf(label, sizeof(label), "%s (#! %s)", path, interp);
		else
			snprintf(label + strlen(label) - 1, sizeof(label) -
			    strlen(label) + 1, " -> %s)", interp);
		return doctor(interp, depth + 1);
	}
	if ((why = privileged(path, &st)) != NULL)
		rc = cannot(path, why);
	else
		rc = doctor_elf(e, path);
	elf_free(e);
	return rc;
}

int
doctor_main(int argc, char **argv)
{
	bool help = argc == 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0);

	if (help || argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
		fprintf(help ? stdout : stderr, "usage: %s doctor BINARY\n"
		    "  says whether the shim can reach BINARY (found on PATH "
		    "unless it has a /):\n  exit 0 it can be sealed, 1 it "
		    "cannot, 2 usage or error\n", LAUNCHER_PROG);
		return help ? DOCTOR_CAN : DOCTOR_ERROR;
	}
	return doctor(argv[1], 0);
}
