/*
 * nextimage: will the image an exec starts run the shim?
 *
 * A kfd (standin.h) is inherited across exec exactly when one of the
 * program's fds on its stand-in is, so that an image running the shim can
 * continue the connection (sshd's re-exec).  An image without the shim must
 * not get the socket at all: it would hold the wire.  So before an exec the
 * shim asks whether the new image will load it, and if not, every kfd is
 * made close-on-exec first (that image gets only the stand-ins, whose calls
 * fail).  The new image runs the shim when LD_PRELOAD in its environment,
 * or /etc/ld.so.preload, names this library, and the loader will honour it:
 * the file is not set-user-ID or set-group-ID to someone else, has no file
 * capabilities, and is dynamically linked (an ELF with an interpreter, or a
 * script, whose interpreter is taken to be).
 */
#ifndef SOCKSEAL_NEXTIMAGE_H
#define SOCKSEAL_NEXTIMAGE_H

#include <stdbool.h>

/* nextimage_runs_shim(path, envp): would exec(PATH) with ENVP load the
 * shim?  PATH is the file exec will run (after the PATH search). */
bool nextimage_runs_shim(const char *path, char *const envp[]);

/* nextimage_find(file, envp, buf, len): the file execvp(FILE) would run,
 * searching PATH (from ENVP, else the environment); BUF or NULL. */
const char *nextimage_find(const char *file, char *const envp[], char *buf,
    unsigned long len);

#endif
