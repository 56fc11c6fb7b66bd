/* sk_cpu.h: the one CPU-feature dispatcher.
 *
 * Every kernel family (the vector helpers and direct convolutions in
 * kernels.c, the Winograd transforms, the similarity and MEX kernels, the
 * NSM dynamics and the CRC-32 of the stream format) is compiled for several
 * instruction sets and asks sk_cpu_isa() which one to run.  The level is the
 * best the CPU supports, detected once, capped by the environment variable
 * SK_ISA=portable|avx2|avx512 (a cap: avx512 on an AVX2-only CPU gives
 * avx2; portable also turns off the carry-less-multiply CRC).  The paths
 * differ only in rounding (FMA, summation order), so a run's bits depend on
 * sk_cpu_path(): checkpoints record it.  Thread-safe; nothing here prints.
 */
#ifndef SK_CPU_H
#define SK_CPU_H

enum sk_isa { SK_ISA_PORTABLE = 0, SK_ISA_AVX2 = 1, SK_ISA_AVX512 = 2 };

/* The highest level this CPU supports (AVX2 means AVX2 and FMA). */
int sk_cpu_best(void);
/* The level in use: sk_cpu_best() capped by SK_ISA. */
int sk_cpu_isa(void);
/* "portable", "avx2", "avx512" ("unknown" for another number). */
const char *sk_cpu_isa_name(int isa);
/* The name of the level in use, sk_cpu_isa_name(sk_cpu_isa()). */
const char *sk_cpu_path(void);
/* Use level isa from now on (tests and benchmarks; call it while no kernel
 * runs).  -1 with an error when the CPU lacks it. */
int sk_cpu_set_isa(int isa);
/* -1 with an error naming the value when SK_ISA is set to anything but
 * portable, avx2 or avx512 (sk_cpu_isa() then runs the portable path). */
int sk_cpu_env_check(void);
/* Whether the CRC-32 may use carry-less multiplication (PCLMUL and SSE4.1
 * present, level above portable). */
int sk_cpu_clmul(void);

#endif
