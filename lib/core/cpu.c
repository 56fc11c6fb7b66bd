/* cpu.c: the CPU-feature dispatcher (see sk_cpu.h). */
#include "sk_cpu.h"
#include "sk_base.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define SK_X86 1
#endif

static const char *const names[] = {"portable", "avx2", "avx512"};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int best, clmul_hw, env_bad;
/* the cap and the level in use (min of the cap and best): written by
 * detect() and sk_cpu_set_isa(), read by every kernel call */
static int cap, level = -1;

static int parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static void detect(void)
{
	const char *e = getenv("SK_ISA");
	int c = SK_ISA_AVX512;
#ifdef SK_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		best = __builtin_cpu_supports("avx512f") ? SK_ISA_AVX512 : SK_ISA_AVX2;
	clmul_hw = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
	if (e && *e && (c = parse(e)) < 0) {
		/* a cap was asked for and cannot be read: the safe side */
		env_bad = 1;
		c = SK_ISA_PORTABLE;
	}
	__atomic_store_n(&cap, c, __ATOMIC_RELAXED);
	__atomic_store_n(&level, c < best ? c : best, __ATOMIC_RELAXED);
}

int sk_cpu_isa(void)
{
	int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
	if (l >= 0)
		return l;
	pthread_once(&once, detect);
	return __atomic_load_n(&level, __ATOMIC_RELAXED);
}

int sk_cpu_best(void)
{
	pthread_once(&once, detect);
	return best;
}

const char *sk_cpu_isa_name(int isa) { return isa >= 0 && isa < 3 ? names[isa] : "unknown"; }

const char *sk_cpu_path(void) { return names[sk_cpu_isa()]; }

int sk_cpu_set_isa(int isa)
{
	pthread_once(&once, detect);
	if (isa < SK_ISA_PORTABLE || isa > best)
		return sk_error("kernel path '%s' is not supported by this CPU (best: %s)", sk_cpu_isa_name(isa),
		                names[best]);
	__atomic_store_n(&cap, isa, __ATOMIC_RELAXED);
	__atomic_store_n(&level, isa, __ATOMIC_RELAXED);
	return 0;
}

int sk_cpu_env_check(void)
{
	const char *e = getenv("SK_ISA");
	pthread_once(&once, detect);
	if (env_bad)
		return sk_error("SK_ISA='%s' is not portable, avx2 or avx512", e ? e : "");
	return 0;
}

int sk_cpu_clmul(void)
{
	pthread_once(&once, detect);
	return clmul_hw && __atomic_load_n(&cap, __ATOMIC_RELAXED) > SK_ISA_PORTABLE;
}
