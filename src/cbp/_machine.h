/*
 * What the machine offers, apart from the products: the FMA probe behind the
 * benchmarks' "% of FMA peak", the barrier at which a team of training
 * threads meets, and which of the kernels' clones the loader chose.
 * Included by _kernels.h, after its vector types and clone attributes.
 */
#ifndef CBP_MACHINE_H
#define CBP_MACHINE_H

/*
 * The machine's limit for the benchmarks' "% of FMA peak": K independent
 * chains of vector FMAs (more than latency x FMA units on current cores),
 * n steps each; nothing else in the loop.  K = 12 for 32-byte vectors, so
 * that the chains, the multiplier and the addend fit AVX2's 16 registers (16
 * chains spilled two of them to the stack every step, and the probe then
 * measured the store-to-load latency, not the FMAs); K = 16 for 64-byte ones
 * (AVX-512: 32 registers; emulated, and slow, on older CPUs).  Built with the
 * same clones as the product kernels.  Returns a sum of the chains so the
 * work cannot be dropped.
 */
#define CBP_PEAK_CHAINS(V) (sizeof(V) == 32 ? 12 : 16)
#define CBP_DEFINE_PEAK(T, V, SUF)                                                            \
CBP_CLONES                                                                                    \
static T cbp_fma_peak_##SUF(long long n, T x) {                                               \
    enum { K = CBP_PEAK_CHAINS(V) };                                                          \
    V acc[K], mul = {0}, add = {0};                                                           \
    mul += (T)1 - x;                                                                          \
    add += x;                                                                                 \
    for (int j = 0; j < K; j++) { acc[j] = (V){0}; acc[j] += (T)j; }                          \
    for (long long k = 0; k < n; k++)                                                         \
        for (int j = 0; j < K; j++) acc[j] = acc[j] * mul + add;                              \
    T s = 0;                                                                                  \
    for (int j = 0; j < K; j++)                                                               \
        for (int q = 0; q < (int)(sizeof(V) / sizeof(T)); q++) s += acc[j][q];                \
    return s;                                                                                 \
}

CBP_DEFINE_PEAK(double, cbp_vd, d)
CBP_DEFINE_PEAK(float, cbp_vf, f)
CBP_DEFINE_PEAK(double, cbp_vd64, d64)
CBP_DEFINE_PEAK(float, cbp_vf64, f64)


/*
 * The barrier at which a team of training threads meets between the phases
 * of a mini-batch.  Not OpenMP's: on a machine shared with other work a
 * thread of the team is often descheduled, and threads spinning at a barrier
 * then burn the CPU it needs (measured 3-40x slower than one thread while
 * other processes kept the second core busy).  Here a waiting thread spins
 * briefly, then yields its CPU.  Acquire/release on the counter and the
 * generation make every write before the barrier visible after it.
 */
#include <sched.h>

/* A line of its own, so that no other shared word on the caller's stack (a
 * run's total, thread 0's flags) is written beside the generation the
 * threads spin on (no difference measured on the 2-vCPU VM: 1.00). */
typedef struct {
    int count;        /* threads arrived in this generation */
    int generation;
    int n;            /* threads in the team */
} __attribute__((aligned(64))) cbp_team_barrier;

static inline void cbp_team_wait(cbp_team_barrier *b) {
    int gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->generation, gen + 1, __ATOMIC_RELEASE);
        return;
    }
    for (int spin = 0; __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen; spin++) {
        if (spin < 4000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

/* Which of the clones above the loader picked (its resolver's own test). */
static inline const char *cbp_kernel_variant(void) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(CBP_NO_CLONES) && __GNUC__ >= 12
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return "x86-64-v4 (AVX-512; products in 512-bit vectors, elementwise in 256-bit)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
    return "default (SSE2)";
#else
    return "single build (no clones)";
#endif
}

#endif
