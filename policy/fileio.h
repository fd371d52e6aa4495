/*
 * fileio: how the policy and key files are read.  libc's open/read/close
 * by default (the key tool, the fuzz targets); the shim sets its real_*()
 * (shim/real.h) at start, so that reading its own files never passes
 * through its own hooks.
 */
#ifndef SOCKSEAL_FILEIO_H
#define SOCKSEAL_FILEIO_H

#include <sys/types.h>

struct fileio {
	int     (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*read)(int fd, void *buf, size_t len);
	int     (*close)(int fd);
};

/* fileio(): the functions in force; never NULL. */
const struct fileio *fileio(void);

/* fileio_set(io): use IO from now on (NULL: libc's again).  IO must stay
 * valid; called before any file is read (the shim's init). */
void fileio_set(const struct fileio *io);

#endif
