/*
 * nofile: see nofile.h.  The real limits are read and set with libc's
 * prlimit64 (real.c), never through the program's hooks.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/select.h>

#include "real.h"
#include "nofile.h"

static pthread_mutex_t nofile_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rlimit nofile_view;       /* what the program set or saw */
static bool nofile_ready;
static int nofile_base;                 /* atomic: see base_update */


static int
rl_get(struct rlimit *rl)
{
	return real_prlimit(0, RLIMIT_NOFILE, NULL, rl) < 0 ? -errno : 0;
}

static int
rl_set(const struct rlimit *rl)
{
	return real_prlimit(0, RLIMIT_NOFILE, rl, NULL) < 0 ? -errno : 0;
}

/*
 * The lowest number for a kfd, worked out whenever the limits change (not
 * at each connection): the program's soft limit where the real one made
 * room above it, else a third of the real soft limit (nofile.h): each
 * sealed connection takes two of the shim's (a kfd, a state object) for
 * each of the program's.  Lock held.
 */
static void
base_update(void)
{
	struct rlimit real;
	rlim_t b;

	if (rl_get(&real) < 0)
		return;
	b = nofile_view.rlim_cur;
	if (!nofile_ready || b >= real.rlim_cur)
		b = real.rlim_cur / 3;          /* no room was made */
	if (b > (1 << 19))
		b = 1 << 19;
	__atomic_store_n(&nofile_base, b < 3 ? 3 : (int)b, __ATOMIC_RELAXED);
}

static rlim_t
thrice(rlim_t v)
{
	return v >= RLIM_INFINITY / 3 ? RLIM_INFINITY : v * 3;
}

/* Make the real limits room for the view V: three times its soft limit
 * (the program's fds, and a kfd and a state object for each), the hard
 * limit raised too where allowed. */
static void
raise_for(const struct rlimit *v)
{
	struct rlimit want, cur;

	if (rl_get(&cur) < 0)
		return;
	want.rlim_cur = thrice(v->rlim_cur);
	want.rlim_max = cur.rlim_max > want.rlim_cur ? cur.rlim_max :
	    want.rlim_cur;
	if (want.rlim_max > cur.rlim_max && rl_set(&want) == 0)
		return;
	/* Not privileged to raise the hard limit: as far as it goes. */
	want.rlim_max = cur.rlim_max;
	if (want.rlim_cur > want.rlim_max)
		want.rlim_cur = want.rlim_max;
	if (want.rlim_cur != cur.rlim_cur)
		(void)rl_set(&want);
}

void
nofile_init(void)
{
	struct rlimit v;

	pthread_mutex_lock(&nofile_lock);
	if (!nofile_ready && rl_get(&v) == 0) {
		nofile_view = v;
		nofile_ready = true;
		raise_for(&v);
	}
	base_update();
	pthread_mutex_unlock(&nofile_lock);
}

int
nofile_kfd_base(void)
{
	int b;

	if (!nofile_ready)
		nofile_init();
	b = __atomic_load_n(&nofile_base, __ATOMIC_RELAXED);
	return b > 0 ? b : FD_SETSIZE;
}

int
nofile_get(struct rlimit *rl)
{
	int r;

	if (!nofile_ready)
		nofile_init();
	if (!nofile_ready)
		return rl_get(rl);
	pthread_mutex_lock(&nofile_lock);
	*rl = nofile_view;
	r = 0;
	pthread_mutex_unlock(&nofile_lock);
	return r;
}

int
nofile_set(const struct rlimit *rl)
{
	struct rlimit real, want;
	int r;

	if (rl->rlim_cur > rl->rlim_max)
		return -EINVAL;
	if (!nofile_ready)
		nofile_init();
	pthread_mutex_lock(&nofile_lock);
	if ((r = rl_get(&real)) < 0)
		goto out;
	/* The program's request as the kernel would judge it. */
	want.rlim_max = rl->rlim_max > real.rlim_max ? rl->rlim_max :
	    real.rlim_max;
	want.rlim_cur = thrice(rl->rlim_cur);
	if (want.rlim_cur > want.rlim_max)
		want.rlim_max = want.rlim_cur;
	if (rl_set(&want) < 0) {
		/* Not allowed to go past the hard limit: the program's own
		 * request must still succeed if the kernel would take it. */
		want.rlim_max = rl->rlim_max > real.rlim_max ? rl->rlim_max :
		    real.rlim_max;
		want.rlim_cur = want.rlim_max < thrice(rl->rlim_cur) ?
		    want.rlim_max : thrice(rl->rlim_cur);
		if ((r = rl_set(&want)) < 0)
			goto out;
	}
	nofile_view = *rl;
	nofile_ready = true;
	base_update();
	r = 0;
out:
	pthread_mutex_unlock(&nofile_lock);
	return r;
}

void
nofile_fork_child(void)
{
	pthread_mutex_init(&nofile_lock, NULL);
}

void
nofile_exec(bool leaving)
{
	struct rlimit v;

	if (!nofile_ready)
		return;
	pthread_mutex_lock(&nofile_lock);
	v = nofile_view;
	pthread_mutex_unlock(&nofile_lock);
	if (leaving) {
		struct rlimit real;

		/* The program's own limits; if the hard one cannot be put
		 * back (never raised by us), only the soft one. */
		if (rl_set(&v) < 0 && rl_get(&real) == 0) {
			v.rlim_max = real.rlim_max;
			(void)rl_set(&v);
		}
	} else {
		raise_for(&v);
		pthread_mutex_lock(&nofile_lock);
		base_update();
		pthread_mutex_unlock(&nofile_lock);
	}
}
