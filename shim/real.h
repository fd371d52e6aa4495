/*
 * real: the libc functions the shim interposes, resolved once with
 * dlsym(RTLD_NEXT, …).  Inside the shim always call real_*(), never the
 * public name, or the call re-enters the shim.
 *
 * Each real_*() resolves its symbol on first use, so hooks work before the
 * constructor has run (another library's constructor may call connect()
 * first) and from inside the loader.  Resolution is idempotent and racy by
 * design: two threads resolving at once store the same pointer.
 * real_init() resolves everything eagerly (constructor, before fork
 * handlers take locks).
 */
#ifndef SOCKSEAL_REAL_H
#define SOCKSEAL_REAL_H

#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

void real_init(void);

/* real_sym_lookup(name): dlsym(RTLD_NEXT, NAME), errno kept. */
void *real_sym_lookup(const char *name);

int     real_socket(int domain, int type, int protocol);
int     real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int     real_accept(int fd, struct sockaddr *sa, socklen_t *len);
int     real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
ssize_t real_read(int fd, void *buf, size_t len);
ssize_t real_write(int fd, const void *buf, size_t len);
ssize_t real_recv(int fd, void *buf, size_t len, int flags);
ssize_t real_send(int fd, const void *buf, size_t len, int flags);
ssize_t real_recvfrom(int fd, void *buf, size_t len, int flags,
    struct sockaddr *sa, socklen_t *salen);
ssize_t real_sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *sa, socklen_t salen);
ssize_t real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t real_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t real_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t real_sendfile(int out, int in, off_t *off, size_t count);
int     real_close(int fd);
int     real_shutdown(int fd, int how);
int     real_dup(int fd);
int     real_dup2(int fd, int fd2);
int     real_dup3(int fd, int fd2, int flags);
int     real_fcntl(int fd, int cmd, long arg);
int     real_close_range(unsigned int first, unsigned int last, int flags);
int     real_getsockopt(int fd, int level, int name, void *val,
    socklen_t *len);
int     real_poll(struct pollfd *fds, nfds_t n, int timeout);
int     real_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *mask);
int     real_select(int n, fd_set *r, fd_set *w, fd_set *e,
    struct timeval *tv);
int     real_pselect(int n, fd_set *r, fd_set *w, fd_set *e,
    const struct timespec *ts, const sigset_t *mask);
int     real_sendmmsg(int fd, struct mmsghdr *v, unsigned int vlen, int flags);
int     real_recvmmsg(int fd, struct mmsghdr *v, unsigned int vlen, int flags,
    struct timespec *tmo);
int     real_epoll_create(int size);
int     real_epoll_create1(int flags);
int     real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int     real_epoll_wait(int epfd, struct epoll_event *ev, int max, int ms);
int     real_epoll_pwait(int epfd, struct epoll_event *ev, int max, int ms,
    const sigset_t *mask);
int     real_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
    const struct timespec *ts, const sigset_t *mask);
int     real_ioctl(int fd, unsigned long req, void *arg);
int     real_setsockopt(int fd, int level, int name, const void *val,
    socklen_t len);
FILE   *real_fdopen(int fd, const char *mode);
int     real_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int     real_listen(int fd, int backlog);
int     real_getpeername(int fd, struct sockaddr *sa, socklen_t *len);
struct rlimit;
int     real_prlimit(pid_t pid, int res, const struct rlimit *n,
    struct rlimit *o);
int     real_vdprintf(int fd, const char *fmt, va_list ap);
ssize_t real_pwritev2(int fd, const struct iovec *iov, int n, off_t off,
    int flags);
ssize_t real_preadv2(int fd, const struct iovec *iov, int n, off_t off,
    int flags);
struct aiocb;
struct sigevent;
int     real_aio_read(struct aiocb *cb);
int     real_aio_write(struct aiocb *cb);
int     real_lio_listio(int mode, struct aiocb *const list[], int n,
    struct sigevent *sev);
ssize_t real_splice(int in, off_t *inoff, int out, off_t *outoff,
    size_t len, unsigned int flags);
ssize_t real_vmsplice(int fd, const struct iovec *iov, size_t n,
    unsigned int flags);
ssize_t real_tee(int in, int out, size_t len, unsigned int flags);

/*
 * Calls that return a new fd (hook_fds.c).  real_open and its siblings
 * take the mode as a fixed argument: it is forwarded always and read by
 * libc only with O_CREAT or O_TMPFILE.  real_fopen and real_fopen64 return
 * NULL with ENOSYS when libc lacks them.
 */
int     real_open(const char *path, int flags, mode_t mode);
int     real_open64(const char *path, int flags, mode_t mode);
int     real_openat(int dirfd, const char *path, int flags, mode_t mode);
int     real_openat64(int dirfd, const char *path, int flags, mode_t mode);
int     real_pipe(int fds[2]);
int     real_pipe2(int fds[2], int flags);
int     real_socketpair(int domain, int type, int proto, int fds[2]);
int     real_eventfd(unsigned int initval, int flags);
FILE   *real_fopen(const char *path, const char *mode);
FILE   *real_fopen64(const char *path, const char *mode);

/*
 * The process (hook_exec.c): fork, clone and the exec family.  real_clone
 * forwards all seven arguments of the raw clone() (PTID, TLS and CTID are
 * read by libc only with the flags that ask for them).
 *
 * real_have_NAME() binds NAME and returns whether libc has it.  The hooks
 * that do bookkeeping around the call (fork handlers, exec's holding of
 * sessions) ask first, so that a missing function fails with ENOSYS and
 * changes nothing, and so that nothing is bound while the fork handlers'
 * locks are held.
 */
pid_t   real_fork(void);
int     real_clone(int (*fn)(void *), void *stack, int flags, void *arg,
    void *ptid, void *tls, void *ctid);
int     real_execve(const char *path, char *const argv[], char *const envp[]);
int     real_execv(const char *path, char *const argv[]);
int     real_execvp(const char *file, char *const argv[]);
int     real_execvpe(const char *file, char *const argv[],
    char *const envp[]);
int     real_fexecve(int fd, char *const argv[], char *const envp[]);
bool    real_have_fork(void);
bool    real_have_clone(void);
bool    real_have_execve(void);
bool    real_have_execv(void);
bool    real_have_execvp(void);
bool    real_have_execvpe(void);
bool    real_have_fexecve(void);
/* posix_spawn/posix_spawnp: glibc runs the child's exec inside (these
 * return an error number, not -1 with errno). */
int     real_posix_spawn(pid_t *pid, const char *path,
    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
    char *const argv[], char *const envp[]);
int     real_posix_spawnp(pid_t *pid, const char *file,
    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
    char *const argv[], char *const envp[]);
bool    real_have_posix_spawn(void);
/* The file actions (errno values, as libc's). */
int     real_posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa);
int     real_posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa);
int     real_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa,
    int fd, int newfd);
bool    real_have_posix_spawnp(void);
/* execveat; system and popen (glibc spawns /bin/sh inside). */
int     real_execveat(int dirfd, const char *path, char *const argv[],
    char *const envp[], int flags);
int     real_system(const char *cmd);
FILE   *real_popen(const char *cmd, const char *mode);
bool    real_have_execveat(void);
bool    real_have_system(void);
bool    real_have_popen(void);

/* Limits and sandbox hints (hook_limits.c, hook_proc.c).  real_prctl
 * forwards the four arguments after OPTION, as prctl() reads them. */
long    real_sysconf(int name);
int     real_prctl(int option, unsigned long a2, unsigned long a3,
    unsigned long a4, unsigned long a5);
int     real_chroot(const char *path);

/*
 * real_syscall6(n, a0..a5): libc's syscall(N, A0, …, A5), past the shim's
 * syscall() hook (hook_close.c): all six argument registers are passed,
 * whatever N takes.  real_have_syscall() as for the process calls above.
 */
long    real_syscall6(long n, long a0, long a1, long a2, long a3, long a4,
    long a5);
bool    real_have_syscall(void);

/* real__exit(status): libc's _exit(); never returns. */
__attribute__((noreturn)) void real__exit(int status);

#endif
