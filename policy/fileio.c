/*
 * fileio: see fileio.h.
 */
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "fileio.h"

static int
libc_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static const struct fileio fileio_libc = { libc_open, read, close };
static const struct fileio *fileio_cur = &fileio_libc;

const struct fileio *
fileio(void)
{
	return __atomic_load_n(&fileio_cur, __ATOMIC_ACQUIRE);
}

void
fileio_set(const struct fileio *io)
{
	__atomic_store_n(&fileio_cur, io != NULL ? io : &fileio_libc,
	    __ATOMIC_RELEASE);
}
