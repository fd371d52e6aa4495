/*
 * doctor_elf: read one ELF file for `sockseal doctor`.
 *
 * The file is mapped read-only and every field is read through
 * elf_uint(), which checks the offset against the file's size and swaps
 * bytes when the file's order is not the host's: a truncated or hostile
 * file sets `bad' and yields zeros, never a read outside the mapping.
 *
 * From the program headers: PT_INTERP (the loader: none means statically
 * linked), PT_DYNAMIC, and the PT_LOAD map that turns DT_STRTAB's address
 * into a file offset.  From the dynamic section: DT_NEEDED and
 * DT_RUNPATH (or DT_RPATH).  From the section headers: .dynsym and
 * .symtab, whose undefined symbols are what the file imports (the calls
 * the shim interposes, socket calls, dlopen, syscall, io_uring_*), and
 * Go's sections and runtime.* symbols.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor_elf.h"

const struct doctor_elf_group doctor_elf_groups[DOCTOR_ELF_NGROUPS] = {
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

/* SIZE bytes (1, 2, 4, 8) at OFF in the file's byte order; 0 if outside. */
static uint64_t
elf_uint(struct doctor_elf *e, uint64_t off, size_t size)
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
elf_str(const struct doctor_elf *e, uint64_t off)
{
	if (off >= e->len || memchr(e->p + off, '\0', e->len - off) == NULL)
		return NULL;
	return (const char *)e->p + off;
}

/* A virtual address to a file offset, through the PT_LOAD segments. */
static bool
elf_vtoff(const struct doctor_elf *e, uint64_t vaddr, uint64_t *off)
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
elf_note_symbol(struct doctor_elf *e, const char *name)
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
	if (strcmp(name, "dlopen") == 0 || strcmp(name, "dlmopen") == 0)
		e->dlopen = true;
	for (g = 0; g < DOCTOR_ELF_NGROUPS; g++)
		for (i = 0; doctor_elf_groups[g].names[i] != NULL; i++)
			if (strcmp(name, doctor_elf_groups[g].names[i]) == 0)
				e->imports[g][i] = true;
}

/* Program headers: the interpreter, the load map, where PT_DYNAMIC is. */
static void
elf_phdrs(struct doctor_elf *e, uint64_t *dyn_off, uint64_t *dyn_size)
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
			if (e->nload < DOCTOR_ELF_MAX_LOADS) {
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
elf_dynamic(struct doctor_elf *e, uint64_t off, uint64_t size)
{
	uint64_t esz = e->is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
	uint64_t need[DOCTOR_ELF_MAX_NEEDED];
	uint64_t strtab = 0, strsz = 0, rp = UINT64_MAX;
	uint64_t d, tag, val;
	const char *s;
	int n = 0, i;

	for (d = off; d + esz <= off + size && !e->bad; d += esz) {
		tag = EF(e, d, Dyn, d_tag);
		val = EF(e, d, Dyn, d_un);
		if (tag == DT_NULL)
			break;
		if (tag == DT_NEEDED && n < DOCTOR_ELF_MAX_NEEDED)
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
			if ((e->needed[e->nneeded] = strdup(s)) != NULL)
				e->nneeded++;
	if (rp < strsz && (s = elf_str(e, strtab + rp)) != NULL)
		snprintf(e->runpath, sizeof(e->runpath), "%s", s);
}

/* One symbol table section: note undefined (imported) names; every name
 * of a full .symtab for Go's runtime.* */
static void
elf_symbols(struct doctor_elf *e, uint64_t sh, uint64_t shoff, unsigned shesz,
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
elf_sections(struct doctor_elf *e)
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

void
doctor_elf_free(struct doctor_elf *e)
{
	int i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nneeded; i++)
		free(e->needed[i]);
	if (e->p != NULL)
		munmap((void *)e->p, e->len);
	free(e);
}

struct doctor_elf *
doctor_elf_open(const char *path, int *err)
{
	uint64_t dyn_off = 0, dyn_size = 0;
	struct doctor_elf *e;
	struct stat st;
	void *m;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < EI_NIDENT) {
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
		doctor_elf_free(e);
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
