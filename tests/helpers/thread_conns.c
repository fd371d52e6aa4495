/*
 * thread_conns: many connections, each read and written at the same time by
 * two threads.  A plain program: never linked to the shim (the tests run it
 * sealed).
 *
 *   thread_conns server PORT N BYTES
 *   thread_conns client PORT N BYTES
 *   thread_conns both   PORT N BYTES     (server and clients in one process)
 *
 * Server: listens on 127.0.0.1:PORT; a server thread accepts N connections
 * and gives each one a reader thread and a writer thread.  The reader reads
 * the client's 4-byte connection id, lets the writer start, then reads and
 * checks BYTES of the client's stream to a clean end (read() == 0).  The
 * writer streams BYTES of the server's stream for that id and half-closes
 * (shutdown SHUT_WR).  Once both finish the connection is closed.
 * Client: N connections, each with a writer thread (id, then BYTES,
 * shutdown SHUT_WR) and a reader thread (BYTES of the server's stream, then
 * a clean end), both running at once.
 *
 * Streams are pseudo-random bytes derived from (id, direction, offset), so
 * each side checks every byte it gets.  Write sizes vary from 1 byte to
 * 64 KiB and alternate between write(), send(), writev() and sendmsg();
 * reads alternate between read(), recv(), readv() and recvmsg().
 *
 * stdout: one line per connection and side, "server conn ID OK in=N out=M
 * fnv=H" / "client conn ID OK ...", or "... FAIL reason"; then "server
 * done started=K" / "client done started=K" and "MODE done fail=F".
 * Exit 0 only if every connection of every role in this process was OK;
 * 1 otherwise, 2 on usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXN 256

static int port, nconns;
static long long nbytes;
static int listen_fd = -1;
static int fails;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Byte OFF of stream (ID, DIR): 8 bytes per block from one mix. */
static void
stream_fill(uint32_t id, int dir, long long off, unsigned char *p, size_t n)
{
	uint64_t v = 0;
	long long blk = -1;
	size_t i;

	for (i = 0; i < n; i++, off++) {
		if (off / 8 != blk) {
			blk = off / 8;
			v = mix(((uint64_t)id << 40) ^ ((uint64_t)dir << 39) ^
			    (uint64_t)blk);
		}
		p[i] = (unsigned char)(v >> (8 * (off % 8)));
	}
}

static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Write N bytes with a call chosen by K. */
static ssize_t
do_write(int fd, const unsigned char *p, size_t n, unsigned k)
{
	struct iovec iov[2];
	struct msghdr mh;
	size_t h = n / 2;

	switch (k % 4) {
	case 0:
		return write(fd, p, n);
	case 1:
		return send(fd, p, n, MSG_NOSIGNAL);
	case 2:
		iov[0].iov_base = (void *)p;
		iov[0].iov_len = h;
		iov[1].iov_base = (void *)(p + h);
		iov[1].iov_len = n - h;
		return writev(fd, iov, 2);
	default:
		iov[0].iov_base = (void *)p;
		iov[0].iov_len = h;
		iov[1].iov_base = (void *)(p + h);
		iov[1].iov_len = n - h;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		return sendmsg(fd, &mh, MSG_NOSIGNAL);
	}
}

static ssize_t
do_read(int fd, unsigned char *p, size_t n, unsigned k)
{
	struct iovec iov[2];
	struct msghdr mh;
	size_t h = n / 3;

	if (h == 0)
		h = n;
	switch (k % 4) {
	case 0:
		return read(fd, p, n);
	case 1:
		return recv(fd, p, n, 0);
	case 2:
		iov[0].iov_base = p;
		iov[0].iov_len = h;
		iov[1].iov_base = p + h;
		iov[1].iov_len = n - h;
		return readv(fd, iov, 2);
	default:
		iov[0].iov_base = p;
		iov[0].iov_len = h;
		iov[1].iov_base = p + h;
		iov[1].iov_len = n - h;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		return recvmsg(fd, &mh, 0);
	}
}

static int
write_all(int fd, const unsigned char *p, size_t n, unsigned k)
{
	ssize_t r;

	while (n > 0) {
		r = do_write(fd, p, n, k);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Stream BYTES of (id, dir) to fd, then SHUT_WR.  NULL or an error text. */
static const char *
stream_out(int fd, uint32_t id, int dir, char *err, size_t errlen)
{
	static __thread unsigned char buf[65536];
	uint64_t st = mix(id * 2654435761u + (unsigned)dir);
	long long off = 0;
	unsigned k = 0;
	size_t n;

	while (off < nbytes) {
		st = mix(st + 1);
		n = (st & 3) == 0 ? 1 + st % 97 : 1 + (st >> 8) % sizeof(buf);
		if ((long long)n > nbytes - off)
			n = (size_t)(nbytes - off);
		stream_fill(id, dir, off, buf, n);
		if (write_all(fd, buf, n, k++) != 0) {
			snprintf(err, errlen, "write at %lld: %s", off,
			    strerror(errno));
			return err;
		}
		off += (long long)n;
	}
	if (shutdown(fd, SHUT_WR) != 0) {
		snprintf(err, errlen, "shutdown: %s", strerror(errno));
		return err;
	}
	return NULL;
}

/* Read and check BYTES of (id, dir), then a clean end. */
static const char *
stream_in(int fd, uint32_t id, int dir, uint64_t *fnv, char *err,
    size_t errlen)
{
	static __thread unsigned char buf[65536], want[65536];
	uint64_t st = mix(id * 40503u + (unsigned)dir + 7), h = 1469598103934665603ULL;
	long long off = 0;
	unsigned k = 0;
	size_t n, i;
	ssize_t r;

	for (;;) {
		st = mix(st + 1);
		n = 1 + st % sizeof(buf);
		r = do_read(fd, buf, n, k++);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read at %lld: %s", off,
			    strerror(errno));
			return err;
		}
		if (r == 0)
			break;
		if (off + r > nbytes) {
			snprintf(err, errlen, "more than %lld bytes", nbytes);
			return err;
		}
		stream_fill(id, dir, off, want, (size_t)r);
		if (memcmp(buf, want, (size_t)r) != 0) {
			for (i = 0; buf[i] == want[i]; i++)
				;
			snprintf(err, errlen, "wrong byte at offset %lld",
			    off + (long long)i);
			return err;
		}
		for (i = 0; i < (size_t)r; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
		off += r;
	}
	if (off != nbytes) {
		snprintf(err, errlen, "end of stream after %lld of %lld bytes",
		    off, nbytes);
		return err;
	}
	*fnv = h;
	return NULL;
}

struct conn {
	const char *role;       /* "server" | "client" */
	int fd;
	uint32_t id;
	int have_id;            /* server: the id arrived; writer may start */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *rerr, *werr;
	char rbuf[160], wbuf[160];
	uint64_t fnv;
};

/* Server streams direction 1, client direction 0. */
static void *
writer(void *arg)
{
	struct conn *c = arg;
	unsigned char idb[4];

	if (strcmp(c->role, "server") == 0) {
		pthread_mutex_lock(&c->lock);
		while (!c->have_id)
			pthread_cond_wait(&c->cond, &c->lock);
		pthread_mutex_unlock(&c->lock);
		if (c->have_id < 0)
			return NULL;
		c->werr = stream_out(c->fd, c->id, 1, c->wbuf, sizeof(c->wbuf));
	} else {
		memcpy(idb, &c->id, 4);
		if (write_all(c->fd, idb, 4, 0) != 0) {
			snprintf(c->wbuf, sizeof(c->wbuf), "write id: %s",
			    strerror(errno));
			c->werr = c->wbuf;
			return NULL;
		}
		c->werr = stream_out(c->fd, c->id, 0, c->wbuf, sizeof(c->wbuf));
	}
	return NULL;
}

static void *
reader(void *arg)
{
	struct conn *c = arg;
	unsigned char idb[4];
	size_t got = 0;
	ssize_t r;

	if (strcmp(c->role, "server") == 0) {
		while (got < 4) {
			r = read(c->fd, idb + got, 4 - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				snprintf(c->rbuf, sizeof(c->rbuf), "read id: %s",
				    r == 0 ? "end of stream" : strerror(errno));
				c->rerr = c->rbuf;
				pthread_mutex_lock(&c->lock);
				c->have_id = -1;
				pthread_cond_signal(&c->cond);
				pthread_mutex_unlock(&c->lock);
				return NULL;
			}
			got += (size_t)r;
		}
		pthread_mutex_lock(&c->lock);
		memcpy(&c->id, idb, 4);
		c->have_id = 1;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		c->rerr = stream_in(c->fd, c->id, 0, &c->fnv, c->rbuf,
		    sizeof(c->rbuf));
	} else {
		c->rerr = stream_in(c->fd, c->id, 1, &c->fnv, c->rbuf,
		    sizeof(c->rbuf));
	}
	return NULL;
}

/* Run one connection: reader and writer threads; report; close. */
static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	pthread_t rt, wt;

	if (pthread_create(&rt, NULL, reader, c) != 0 ||
	    pthread_create(&wt, NULL, writer, c) != 0) {
		say("%s conn ? FAIL pthread_create\n", c->role);
		__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
		return NULL;
	}
	pthread_join(rt, NULL);
	pthread_join(wt, NULL);
	if (c->rerr || c->werr) {
		say("%s conn %u FAIL %s%s%s\n", c->role, c->id,
		    c->rerr ? c->rerr : "", c->rerr && c->werr ? "; " : "",
		    c->werr ? c->werr : "");
		__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
	} else {
		say("%s conn %u OK in=%lld out=%lld fnv=%016llx\n", c->role,
		    c->id, nbytes, nbytes, (unsigned long long)c->fnv);
	}
	if (close(c->fd) != 0) {
		say("%s conn %u FAIL close: %s\n", c->role, c->id,
		    strerror(errno));
		__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static struct conn *
conn_new(const char *role, int fd, uint32_t id)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->role = role;
	c->fd = fd;
	c->id = id;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

static void *
server_main(void *arg)
{
	pthread_t t[MAXN];
	int i, fd, n = 0;

	(void)arg;
	for (i = 0; i < nconns; i++) {
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			say("server accept FAIL %s\n", strerror(errno));
			__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
			break;
		}
		if (pthread_create(&t[n], NULL, conn_main,
		    conn_new("server", fd, 0)) == 0)
			n++;
	}
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	say("server done started=%d\n", n);
	return NULL;
}

static void *
client_main(void *arg)
{
	pthread_t t[MAXN];
	struct sockaddr_in sin;
	int i, fd, n = 0;

	(void)arg;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < nconns; i++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin,
		    sizeof(sin)) != 0) {
			say("client conn %d FAIL connect: %s\n", i + 1,
			    strerror(errno));
			__atomic_add_fetch(&fails, 1, __ATOMIC_SEQ_CST);
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (pthread_create(&t[n], NULL, conn_main,
		    conn_new("client", fd, (uint32_t)(i + 1))) == 0)
			n++;
	}
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	say("client done started=%d\n", n);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	pthread_t st, ct;
	const char *mode;
	int one = 1;
	bool srv, cli;

	if (argc != 5) {
		fprintf(stderr, "usage: thread_conns server|client|both PORT "
		    "N BYTES\n");
		return 2;
	}
	mode = argv[1];
	port = atoi(argv[2]);
	nconns = atoi(argv[3]);
	nbytes = atoll(argv[4]);
	srv = !strcmp(mode, "server") || !strcmp(mode, "both");
	cli = !strcmp(mode, "client") || !strcmp(mode, "both");
	if ((!srv && !cli) || nconns < 1 || nconns > MAXN || nbytes < 0) {
		fprintf(stderr, "thread_conns: bad arguments\n");
		return 2;
	}
	if (srv) {
		listen_fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
		    listen(listen_fd, 64) != 0) {
			perror("thread_conns: listen");
			return 1;
		}
		pthread_create(&st, NULL, server_main, NULL);
	}
	if (cli)
		pthread_create(&ct, NULL, client_main, NULL);
	if (cli)
		pthread_join(ct, NULL);
	if (srv) {
		pthread_join(st, NULL);
		close(listen_fd);
	}
	say("%s done fail=%d\n", mode, fails);
	return fails ? 1 : 0;
}
