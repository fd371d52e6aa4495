/*
 * doctor_elf: what `sockseal doctor` reads from one ELF file itself
 * (<elf.h>, 32 or 64 bit, either byte order, no external tools): its
 * type, class and machine, its loader (PT_INTERP), the libraries it needs
 * (DT_NEEDED, DT_RUNPATH/DT_RPATH) and which symbols it imports.
 */
#ifndef SOCKSEAL_DOCTOR_ELF_H
#define SOCKSEAL_DOCTOR_ELF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOCTOR_ELF_MAX_NEEDED 64        /* DT_NEEDED entries read per object */
#define DOCTOR_ELF_MAX_LOADS  16        /* PT_LOAD segments kept */
#define DOCTOR_ELF_NGROUPS    5         /* groups of interposed calls */
#define DOCTOR_ELF_GROUP_MAX  24        /* names per group, NULL-ended */

/* The calls the shim interposes, by what they are for (shim/shim.map). */
struct doctor_elf_group {
	const char *group;
	const char *names[DOCTOR_ELF_GROUP_MAX];
};
extern const struct doctor_elf_group doctor_elf_groups[DOCTOR_ELF_NGROUPS];

/* A mapped ELF file and what was learned from it. */
struct doctor_elf {
	const uint8_t *p;
	size_t         len;
	bool           is64, swap, bad;
	uint16_t       type, machine;
	uint8_t        class;
	char           interp[PATH_MAX];        /* PT_INTERP, "" if none */
	char          *needed[DOCTOR_ELF_MAX_NEEDED];
	int            nneeded;
	char           runpath[PATH_MAX];
	bool           dynamic;         /* has PT_DYNAMIC */
	bool           go;              /* Go build info or runtime symbols */
	bool           uring;           /* imports io_uring_* */
	bool           syscall;         /* imports syscall() */
	bool           sockets;         /* imports socket, connect, accept(4) */
	bool           dlopen;          /* imports dlopen or dlmopen */
	bool           imports[DOCTOR_ELF_NGROUPS][DOCTOR_ELF_GROUP_MAX];
	struct { uint64_t vaddr, off, size; } load[DOCTOR_ELF_MAX_LOADS];
	int            nload;
};

/*
 * Read the ELF file at PATH.  Returns it (the caller frees it with
 * doctor_elf_free), or NULL with *ERR: -errno when it cannot be read,
 * -EISDIR for a directory, -ENOEXEC when it is not ELF.
 */
struct doctor_elf *doctor_elf_open(const char *path, int *err);

/* Unmap and free E; NULL is a no-op. */
void doctor_elf_free(struct doctor_elf *e);

#endif
