/*
 * Register-blocked micro-kernels for the three products of backpropagation
 * over a mini-batch (rows are examples, matrices are row-major):
 *
 *   feedforward   Z__mo = A__mi W__oiᵀ + b__o        (z^l = W^l a^{l-1} + b^l)
 *   BP2           E__mi = D__mo W__oi                ((W^{l+1})ᵀ δ^{l+1}, before ⊙ f')
 *   BP3/BP4+step  W__oi = β W__oi + α D__moᵀ A__mi  (W ← (1 − ηλ/n) W − (η/m) Σ δ aᵀ)
 *
 * Why C and not Cython: the tiles below keep 8 vector accumulators in
 * registers, which needs GCC/Clang vector types; Cython has no syntax for
 * them.  The drivers, the elementwise kernels and all checks stay in
 * _core.pyx.
 *
 * Why these tiles: a naive per-example loop streams every weight matrix
 * through the cache once per example.  Here each weight vector loaded feeds
 * 4 examples (feedforward, BP2) and each activation vector feeds 4 weight
 * rows (the step), so one pass over W serves 4 examples, and no sum needs
 * reassociation: every output element is summed in a fixed order, the same
 * in full tiles and in edge tiles, so results do not depend on where an
 * example sits in its mini-batch.
 *
 * Portability: the vector types are plain GCC/Clang extensions (SSE2 on any
 * x86-64).  On Linux/x86-64 with GCC, each kernel is also compiled for
 * x86-64-v3 (AVX2 + FMA) and picked at load time (target_clones), so the
 * default build is portable and still fast on current machines.
 */
#ifndef CBP_KERNELS_H
#define CBP_KERNELS_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(CBP_NO_CLONES) && __GNUC__ >= 12
#define CBP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CBP_CLONES
#endif

typedef double cbp_vd __attribute__((vector_size(32), aligned(8)));
typedef float cbp_vf __attribute__((vector_size(32), aligned(4)));

#define CBP_DEFINE_KERNELS(T, V, W_, SUF)                                                     \
                                                                                              \
static inline T cbp_hsum_##SUF(const V *v) {                                                  \
    T s = 0;                                                                                  \
    for (int q = 0; q < W_; q++) s += (*v)[q];                                                \
    return s;                                                                                 \
}                                                                                             \
                                                                                              \
/* one dot product, in the same order as each lane of the 4x2 tile */                         \
static inline T cbp_dot_##SUF(const T *x, const T *y, ptrdiff_t n) {                          \
    V acc = {0};                                                                              \
    ptrdiff_t k = 0;                                                                          \
    for (; k + W_ <= n; k += W_) acc += *(const V *)(x + k) * *(const V *)(y + k);           \
    T tail = 0;                                                                               \
    for (; k < n; k++) tail += x[k] * y[k];                                                   \
    return cbp_hsum_##SUF(&acc) + tail;                                                        \
}                                                                                             \
                                                                                              \
CBP_CLONES                                                                                    \
static void cbp_forward_##SUF(const T *A__mi, const T *W__oi, const T *b__o, T *Z__mo,        \
                              ptrdiff_t M, ptrdiff_t O, ptrdiff_t I) {                        \
    ptrdiff_t m = 0;                                                                          \
    for (; m + 4 <= M; m += 4) {                                                              \
        const T *a0 = A__mi + m * I, *a1 = a0 + I, *a2 = a1 + I, *a3 = a2 + I;                \
        ptrdiff_t o = 0;                                                                      \
        for (; o + 2 <= O; o += 2) {                                                          \
            const T *w0 = W__oi + o * I, *w1 = w0 + I;                                        \
            V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                                     \
            V c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};                                     \
            ptrdiff_t k = 0;                                                                  \
            for (; k + W_ <= I; k += W_) {                                                    \
                V u0 = *(const V *)(w0 + k), u1 = *(const V *)(w1 + k), x;                    \
                x = *(const V *)(a0 + k); c00 += x * u0; c01 += x * u1;                       \
                x = *(const V *)(a1 + k); c10 += x * u0; c11 += x * u1;                       \
                x = *(const V *)(a2 + k); c20 += x * u0; c21 += x * u1;                       \
                x = *(const V *)(a3 + k); c30 += x * u0; c31 += x * u1;                       \
            }                                                                                 \
            T t00 = 0, t01 = 0, t10 = 0, t11 = 0, t20 = 0, t21 = 0, t30 = 0, t31 = 0;         \
            for (; k < I; k++) {                                                              \
                t00 += a0[k] * w0[k]; t01 += a0[k] * w1[k];                                   \
                t10 += a1[k] * w0[k]; t11 += a1[k] * w1[k];                                   \
                t20 += a2[k] * w0[k]; t21 += a2[k] * w1[k];                                   \
                t30 += a3[k] * w0[k]; t31 += a3[k] * w1[k];                                   \
            }                                                                                 \
            T *z = Z__mo + m * O + o;                                                         \
            z[0] = b__o[o] + (cbp_hsum_##SUF(&c00) + t00);                                     \
            z[1] = b__o[o + 1] + (cbp_hsum_##SUF(&c01) + t01);                                 \
            z[O] = b__o[o] + (cbp_hsum_##SUF(&c10) + t10);                                     \
            z[O + 1] = b__o[o + 1] + (cbp_hsum_##SUF(&c11) + t11);                             \
            z[2 * O] = b__o[o] + (cbp_hsum_##SUF(&c20) + t20);                                 \
            z[2 * O + 1] = b__o[o + 1] + (cbp_hsum_##SUF(&c21) + t21);                         \
            z[3 * O] = b__o[o] + (cbp_hsum_##SUF(&c30) + t30);                                 \
            z[3 * O + 1] = b__o[o + 1] + (cbp_hsum_##SUF(&c31) + t31);                         \
        }                                                                                     \
        for (; o < O; o++)                                                                    \
            for (int r = 0; r < 4; r++)                                                       \
                Z__mo[(m + r) * O + o] = b__o[o] + cbp_dot_##SUF(a0 + r * I, W__oi + o * I, I); \
    }                                                                                         \
    for (; m < M; m++)                                                                        \
        for (ptrdiff_t o = 0; o < O; o++)                                                     \
            Z__mo[m * O + o] = b__o[o] + cbp_dot_##SUF(A__mi + m * I, W__oi + o * I, I);     \
}                                                                                             \
                                                                                              \
/* E__mi = D__mo W__oi: each row of E sums O scaled weight rows, in order o = 0..O-1 */       \
CBP_CLONES                                                                                    \
static void cbp_backward_##SUF(const T *D__mo, const T *W__oi, T *E__mi,                      \
                               ptrdiff_t M, ptrdiff_t O, ptrdiff_t I) {                       \
    ptrdiff_t m = 0;                                                                          \
    for (; m + 4 <= M; m += 4) {                                                              \
        const T *d0 = D__mo + m * O, *d1 = d0 + O, *d2 = d1 + O, *d3 = d2 + O;                \
        T *e0 = E__mi + m * I, *e1 = e0 + I, *e2 = e1 + I, *e3 = e2 + I;                      \
        ptrdiff_t i = 0;                                                                      \
        for (; i + 2 * W_ <= I; i += 2 * W_) {                                                \
            V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                                     \
            V c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};                                     \
            for (ptrdiff_t o = 0; o < O; o++) {                                               \
                const T *w = W__oi + o * I + i;                                               \
                V u0 = *(const V *)w, u1 = *(const V *)(w + W_);                              \
                c00 += d0[o] * u0; c01 += d0[o] * u1;                                         \
                c10 += d1[o] * u0; c11 += d1[o] * u1;                                         \
                c20 += d2[o] * u0; c21 += d2[o] * u1;                                         \
                c30 += d3[o] * u0; c31 += d3[o] * u1;                                         \
            }                                                                                 \
            *(V *)(e0 + i) = c00; *(V *)(e0 + i + W_) = c01;                                  \
            *(V *)(e1 + i) = c10; *(V *)(e1 + i + W_) = c11;                                  \
            *(V *)(e2 + i) = c20; *(V *)(e2 + i + W_) = c21;                                  \
            *(V *)(e3 + i) = c30; *(V *)(e3 + i + W_) = c31;                                  \
        }                                                                                     \
        for (; i < I; i++) {                                                                  \
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                 \
            for (ptrdiff_t o = 0; o < O; o++) {                                               \
                T w = W__oi[o * I + i];                                                       \
                s0 += d0[o] * w; s1 += d1[o] * w; s2 += d2[o] * w; s3 += d3[o] * w;           \
            }                                                                                 \
            e0[i] = s0; e1[i] = s1; e2[i] = s2; e3[i] = s3;                                   \
        }                                                                                     \
    }                                                                                         \
    for (; m < M; m++) {                                                                      \
        const T *d = D__mo + m * O;                                                           \
        T *e = E__mi + m * I;                                                                 \
        ptrdiff_t i = 0;                                                                      \
        for (; i + W_ <= I; i += W_) {                                                        \
            V c = {0};                                                                        \
            for (ptrdiff_t o = 0; o < O; o++) c += d[o] * *(const V *)(W__oi + o * I + i);   \
            *(V *)(e + i) = c;                                                                \
        }                                                                                     \
        for (; i < I; i++) {                                                                  \
            T s = 0;                                                                          \
            for (ptrdiff_t o = 0; o < O; o++) s += d[o] * W__oi[o * I + i];                   \
            e[i] = s;                                                                         \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* W__oi = β W__oi + Σ_m (α D__mo)ᵀ A__mi; each weight's sum runs over m = 0..M-1 in */    \
/* order, then is added to β w */                                                             \
CBP_CLONES                                                                                    \
static void cbp_step_##SUF(const T *D__mo, const T *A__mi, T *W__oi, T alpha, T beta,         \
                           ptrdiff_t M, ptrdiff_t O, ptrdiff_t I) {                           \
    ptrdiff_t o = 0;                                                                          \
    V vb = {0};                                                                               \
    vb += beta;                                                                               \
    for (; o + 4 <= O; o += 4) {                                                              \
        T *w0 = W__oi + o * I, *w1 = w0 + I, *w2 = w1 + I, *w3 = w2 + I;                      \
        ptrdiff_t i = 0;                                                                      \
        for (; i + 2 * W_ <= I; i += 2 * W_) {                                                \
            V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                                     \
            V c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};                                     \
            for (ptrdiff_t m = 0; m < M; m++) {                                               \
                const T *a = A__mi + m * I + i, *d = D__mo + m * O + o;                       \
                T e0 = alpha * d[0], e1 = alpha * d[1], e2 = alpha * d[2], e3 = alpha * d[3]; \
                V u0 = *(const V *)a, u1 = *(const V *)(a + W_);                              \
                c00 += e0 * u0; c01 += e0 * u1;                                               \
                c10 += e1 * u0; c11 += e1 * u1;                                               \
                c20 += e2 * u0; c21 += e2 * u1;                                               \
                c30 += e3 * u0; c31 += e3 * u1;                                               \
            }                                                                                 \
            *(V *)(w0 + i) = vb * *(V *)(w0 + i) + c00;                                       \
            *(V *)(w0 + i + W_) = vb * *(V *)(w0 + i + W_) + c01;                             \
            *(V *)(w1 + i) = vb * *(V *)(w1 + i) + c10;                                       \
            *(V *)(w1 + i + W_) = vb * *(V *)(w1 + i + W_) + c11;                             \
            *(V *)(w2 + i) = vb * *(V *)(w2 + i) + c20;                                       \
            *(V *)(w2 + i + W_) = vb * *(V *)(w2 + i + W_) + c21;                             \
            *(V *)(w3 + i) = vb * *(V *)(w3 + i) + c30;                                       \
            *(V *)(w3 + i + W_) = vb * *(V *)(w3 + i + W_) + c31;                             \
        }                                                                                     \
        for (; i < I; i++) {                                                                  \
            T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                 \
            for (ptrdiff_t m = 0; m < M; m++) {                                               \
                T a = A__mi[m * I + i];                                                       \
                const T *d = D__mo + m * O + o;                                               \
                s0 += (alpha * d[0]) * a; s1 += (alpha * d[1]) * a;                           \
                s2 += (alpha * d[2]) * a; s3 += (alpha * d[3]) * a;                           \
            }                                                                                 \
            w0[i] = beta * w0[i] + s0; w1[i] = beta * w1[i] + s1;                             \
            w2[i] = beta * w2[i] + s2; w3[i] = beta * w3[i] + s3;                             \
        }                                                                                     \
    }                                                                                         \
    for (; o < O; o++) {                                                                      \
        T *w = W__oi + o * I;                                                                 \
        ptrdiff_t i = 0;                                                                      \
        for (; i + W_ <= I; i += W_) {                                                        \
            V c = {0};                                                                        \
            for (ptrdiff_t m = 0; m < M; m++)                                                 \
                c += (alpha * D__mo[m * O + o]) * *(const V *)(A__mi + m * I + i);            \
            *(V *)(w + i) = vb * *(V *)(w + i) + c;                                           \
        }                                                                                     \
        for (; i < I; i++) {                                                                  \
            T s = 0;                                                                          \
            for (ptrdiff_t m = 0; m < M; m++) s += (alpha * D__mo[m * O + o]) * A__mi[m * I + i]; \
            w[i] = beta * w[i] + s;                                                           \
        }                                                                                     \
    }                                                                                         \
}

CBP_DEFINE_KERNELS(double, cbp_vd, 4, d)
CBP_DEFINE_KERNELS(float, cbp_vf, 8, f)

#endif
