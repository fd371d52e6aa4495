/*
 * standin: see standin.h, and docs/standin.md for the design.
 *
 * Why a never-connected TCP socket (measured on Linux 6.x, DESIGN.md):
 * write/send fail with EPIPE, read/recv with ENOTCONN, fstat says S_IFSOCK,
 * SO_TYPE/SO_DOMAIN/SO_PROTOCOL answer as for TCP, and poll reports
 * POLLOUT|POLLHUP, so a loop that polls before writing still gets its
 * error.  A shut-down socket or a Unix pair would read a clean 0 instead.
 * Nothing ever connects it: the program's connect() is the shim's.
 *
 * The swap is atomic for the program: dup3() replaces the number in one
 * step, so another thread sees either the socket (before the rule's
 * decision returned) or the stand-in, never a free number.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carry.h"
#include "fdtab.h"
#include "nofile.h"
#include "real.h"
#include "standin.h"

#define STANDIN_MAGIC   0x2eu           /* bits 24..30 of the tag */
#define STANDIN_KFDMAX  (1 << 20)       /* kfd numbers fit 20 bits */

/* kfds are marked in fdtab's byte map (fdtab_is_kfd); the bounds of the
 * numbers ever marked keep standin_kfds() short.  Atomic. */
static int standin_lo = STANDIN_KFDMAX, standin_hi = -1;

int
standin_base(void)
{
	return nofile_kfd_base();
}

void
standin_mark(int kfd, bool on)
{
	int v;

	if (fdtab_kfd_mark(kfd, on) < 0 || !on)
		return;
	while ((v = __atomic_load_n(&standin_lo, __ATOMIC_RELAXED)) > kfd &&
	    !__atomic_compare_exchange_n(&standin_lo, &v, kfd, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	while ((v = __atomic_load_n(&standin_hi, __ATOMIC_RELAXED)) < kfd &&
	    !__atomic_compare_exchange_n(&standin_hi, &v, kfd, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void
standin_close(int fd)
{
	int saved = errno;

	if (fd < 0)
		return;
	standin_mark(fd, false);
	(void)real_close(fd);
	errno = saved;
}

bool
standin_any(void)
{
	return __atomic_load_n(&standin_hi, __ATOMIC_RELAXED) >= 0;
}

int
standin_kfds(unsigned int first, unsigned int last, int *out, int max)
{
	int lo = __atomic_load_n(&standin_lo, __ATOMIC_RELAXED);
	int hi = __atomic_load_n(&standin_hi, __ATOMIC_RELAXED);
	int fd, n = 0;

	if (hi < 0)
		return 0;
	if ((unsigned int)lo < first)
		lo = (int)(first > (unsigned int)hi ? (unsigned int)hi + 1 : first);
	if ((unsigned int)hi > last)
		hi = (int)last;
	for (fd = lo; fd <= hi && n < max; fd++)
		if (fdtab_is_kfd(fd))
			out[n++] = fd;
	return n;
}

void
standin_cloexec_all(void)
{
	enum { BATCH = 256 };
	int k[BATCH], n, i, fl;
	unsigned int lo = 0;

	do {
		n = standin_kfds(lo, ~0U, k, BATCH);
		for (i = 0; i < n; i++) {
			if ((fl = real_fcntl(k[i], F_GETFD, 0)) >= 0 &&
			    !(fl & FD_CLOEXEC))
				(void)real_fcntl(k[i], F_SETFD, fl | FD_CLOEXEC);
			lo = (unsigned int)k[i] + 1;
		}
	} while (n == BATCH);
}

/* Inode of FD, in the 31 bits TCP_USER_TIMEOUT holds; 0 if unknown. */
static unsigned int
ino31(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return 0;
	return (unsigned int)(st.st_ino & 0x7fffffff) | 1u;
}

int
standin_retag(int fd, int kfd, unsigned int flags)
{
	int tag = (int)(STANDIN_MAGIC << 24 | (flags & 0xf) << 20 |
	    (unsigned int)kfd);
	int ino = (int)ino31(kfd);

	if (kfd < 0 || kfd >= STANDIN_KFDMAX || ino == 0)
		return -EBADF;
	if (real_setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ino,
	    sizeof(ino)) < 0 ||
	    real_setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &tag,
	    sizeof(tag)) < 0)
		return -errno;
	return 0;
}

int
standin_hide(int fd, bool cloexec)
{
	int cmd = cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, k;

	k = real_fcntl(fd, cmd, standin_base());
	if (k < 0 && errno == EINVAL)   /* the base is past the limit */
		k = real_fcntl(fd, cmd, 3);
	if (k >= STANDIN_KFDMAX) {
		real_close(k);
		errno = EMFILE;
		return -1;
	}
	if (k >= 0)
		standin_mark(k, true);
	return k;
}

int
standin_dup(int kfd)
{
	int fdfl = real_fcntl(kfd, F_GETFD, 0);

	return standin_hide(kfd, fdfl >= 0 && (fdfl & FD_CLOEXEC));
}

int
standin_swap(int fd, int family, unsigned int flags)
{
	int fdfl, fl, kfd, sd, e;

	if ((fdfl = real_fcntl(fd, F_GETFD, 0)) < 0 ||
	    (fl = real_fcntl(fd, F_GETFL, 0)) < 0)
		return -errno;
	if ((kfd = standin_hide(fd, fdfl & FD_CLOEXEC)) < 0)
		return -errno;
	/* Always TCP, even for MPTCP: what the wire is. */
	sd = real_socket(family, SOCK_STREAM | SOCK_CLOEXEC |
	    ((fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0), IPPROTO_TCP);
	if (sd < 0)
		goto fail;
	if ((e = standin_retag(sd, kfd, flags)) < 0) {
		real_close(sd);
		errno = -e;
		goto fail;
	}
	if (real_dup3(sd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		e = errno;
		real_close(sd);
		errno = e;
		goto fail;
	}
	real_close(sd);
	return kfd;
fail:
	e = errno;
	standin_mark(kfd, false);
	real_close(kfd);
	return -e;
}

void
standin_undo(int fd, int kfd)
{
	int fdfl = real_fcntl(fd, F_GETFD, 0);

	(void)real_dup3(kfd, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ?
	    O_CLOEXEC : 0);
	standin_mark(kfd, false);
	real_close(kfd);
}

int
standin_find(int fd, unsigned int *flags)
{
	int tag = 0, ino = 0, kfd;
	socklen_t l = sizeof(tag);

	if (real_getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &tag, &l) < 0 ||
	    ((unsigned int)tag >> 24) != STANDIN_MAGIC)
		return -1;
	l = sizeof(ino);
	if (real_getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ino, &l) < 0)
		return -1;
	kfd = tag & (STANDIN_KFDMAX - 1);
	if (ino == 0)
		return -1;
	/* The number is the last tagger's: another process's, for a
	 * stand-in received through SCM_RIGHTS.  The inode decides. */
	if (kfd == fd || (int)ino31(kfd) != ino)
		kfd = carry_kfd_by_ino((unsigned int)ino);
	if (kfd < 0 || kfd == fd)
		return -1;
	*flags = ((unsigned int)tag >> 20) & 0xf;
	return kfd;
}
