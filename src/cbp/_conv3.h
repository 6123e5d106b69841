/*
 * Chapter 6's elementwise kernels (cbp.network3): max-pooling and its
 * gradient's routing, the dropout masks, and the scatter-add that turns
 * BP2's per-tap products into δ of a convolution's input.
 *
 * Why C and not the Cython loops they replace: these loops are memory- and
 * compare-bound, and a portable build compiles Cython's to SSE2 only; here
 * each is also compiled for x86-64-v3 (AVX2) and chosen at load time, with
 * _kernels.h's CBP_CLONES_NARROW (this header is included after it).  The
 * arithmetic is elementwise (max, compare, one add per element, in the
 * order the Cython loops had), so both builds give the same bits.
 */
#ifndef CBP_CONV3_H
#define CBP_CONV3_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CBP3_MAX(a, b) ((a) > (b) ? (a) : (b))

#define CBP3_DEFINE(T, SUF)                                                                   \
/* The maxima of one example's windows, before the bias: best[f, py, px] over the         */ \
/* ph x pw window of z (row y of map f at f·Oy·Wd + y·Wd; the border that does not fill   */ \
/* a window is ignored).  2 x 2 (the book's): each row pair's elementwise maximum first,  */ \
/* contiguous, then the pairs of columns.  The maximum of finite values is the same       */ \
/* whatever the order it is taken in.                                                     */ \
CBP_CLONES_NARROW                                                                             \
static void cbp3_pool_max_##SUF(const T *z, T *best, T *rowmax, ptrdiff_t F, ptrdiff_t Oy,    \
                                ptrdiff_t Ox, ptrdiff_t Wd, ptrdiff_t ph, ptrdiff_t pw) {     \
    ptrdiff_t Py = Oy / ph, Px = Ox / pw;                                                     \
    for (ptrdiff_t f = 0; f < F; f++)                                                         \
        for (ptrdiff_t py = 0; py < Py; py++) {                                               \
            const T *r0 = z + f * Oy * Wd + py * ph * Wd;                                     \
            T *out = best + (f * Py + py) * Px;                                               \
            if (ph == 2 && pw == 2) {                                                         \
                const T *r1 = r0 + Wd;                                                        \
                for (ptrdiff_t x = 0; x < 2 * Px; x++) rowmax[x] = CBP3_MAX(r0[x], r1[x]);    \
                for (ptrdiff_t px = 0; px < Px; px++)                                         \
                    out[px] = CBP3_MAX(rowmax[2 * px], rowmax[2 * px + 1]);                   \
            } else {                                                                          \
                for (ptrdiff_t px = 0; px < Px; px++) {                                       \
                    T b = r0[px * pw];                                                        \
                    for (ptrdiff_t a = 0; a < ph; a++)                                        \
                        for (ptrdiff_t c = 0; c < pw; c++) {                                  \
                            T v = r0[a * Wd + px * pw + c];                                   \
                            b = v > b ? v : b;                                                \
                        }                                                                     \
                    out[px] = b;                                                              \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
}                                                                                             \
                                                                                              \
/* δz for one example: δ of the pooled value wherever z equals its window's maximum        */ \
/* (every tied element, as Theano's DownsampleFactorMaxGrad), 0 elsewhere and in the       */ \
/* ignored border and the columns x >= Ox.  best holds the maxima (cbp3_pool_max);         */ \
/* spread[] (2 Wd elements) is scratch.                                                    */ \
CBP_CLONES_NARROW                                                                             \
static void cbp3_unpool_##SUF(const T *d, const T *z, const T *best, T *dz, T *spread,        \
                              ptrdiff_t F, ptrdiff_t Oy, ptrdiff_t Ox, ptrdiff_t Wd,          \
                              ptrdiff_t ph, ptrdiff_t pw) {                                   \
    ptrdiff_t Py = Oy / ph, Px = Ox / pw, X = Px * pw;                                        \
    T *sb = spread, *sd = spread + Wd;                                                        \
    memset(dz, 0, (size_t)(F * Oy * Wd) * sizeof(T));                                         \
    for (ptrdiff_t f = 0; f < F; f++)                                                         \
        for (ptrdiff_t py = 0; py < Py; py++) {                                               \
            const T *bq = best + (f * Py + py) * Px, *dq = d + (f * Py + py) * Px;            \
            /* each window's maximum and δ spread over its columns, so that the rows */       \
            /* below compare and select contiguously                               */        \
            for (ptrdiff_t x = 0; x < X; x++) {                                               \
                sb[x] = bq[x / pw];                                                           \
                sd[x] = dq[x / pw];                                                           \
            }                                                                                 \
            for (ptrdiff_t a = 0; a < ph; a++) {                                              \
                ptrdiff_t off = f * Oy * Wd + (py * ph + a) * Wd;                             \
                const T *zr = z + off;                                                        \
                T *dr = dz + off;                                                             \
                for (ptrdiff_t x = 0; x < X; x++) dr[x] = zr[x] >= sb[x] ? sd[x] : (T)0;      \
            }                                                                                 \
        }                                                                                     \
}                                                                                             \
                                                                                              \
/* δx (one example, C channels of H rows Wd wide, plus K − 1 elements of slack) from     */  \
/* E[(c, i, j), p] = (Wfᵀ δz) at position p = y·Wd + x of the full width:                */  \
/* dx[c, y+i, x+j] += E[(c, i, j), y·Wd + x], taps in (c, i, j) order.                   */  \
CBP_CLONES_NARROW                                                                             \
static void cbp3_col2im_##SUF(const T *E, T *dx, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wd,      \
                              ptrdiff_t K, ptrdiff_t Pf) {                                    \
    memset(dx, 0, (size_t)(C * H * Wd + K) * sizeof(T));                                      \
    for (ptrdiff_t c = 0; c < C; c++)                                                         \
        for (ptrdiff_t i = 0; i < K; i++)                                                     \
            for (ptrdiff_t j = 0; j < K; j++) {                                               \
                const T *e = E + ((c * K + i) * K + j) * Pf;                                  \
                T *o = dx + (c * H + i) * Wd + j;                                             \
                for (ptrdiff_t p = 0; p < Pf; p++) o[p] += e[p];                              \
            }                                                                                 \
}                                                                                             \
                                                                                              \
/* The same sums for E over the kept positions only, p = y·Ox + x (R = Oy·Ox): the   */ \
/* cropped columns' E, products of zeros, added nothing (+0 to a sum that is never   */ \
/* −0), so dx is the same to the bit.                                                  */ \
CBP_CLONES_NARROW                                                                             \
static void cbp3_col2im_kept_##SUF(const T *E, T *dx, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wd, \
                                   ptrdiff_t K, ptrdiff_t Oy, ptrdiff_t Ox) {                 \
    memset(dx, 0, (size_t)(C * H * Wd + K) * sizeof(T));                                      \
    for (ptrdiff_t c = 0; c < C; c++)                                                         \
        for (ptrdiff_t i = 0; i < K; i++)                                                     \
            for (ptrdiff_t j = 0; j < K; j++) {                                               \
                const T *e = E + ((c * K + i) * K + j) * Oy * Ox;                             \
                for (ptrdiff_t y = 0; y < Oy; y++) {                                          \
                    T *o = dx + (c * H + i + y) * Wd + j;                                     \
                    for (ptrdiff_t x = 0; x < Ox; x++) o[x] += e[y * Ox + x];                 \
                }                                                                             \
            }                                                                                 \
}                                                                                             \
                                                                                              \
/* One example's input at the kept positions, tap-major: Xk[(c, i, j), y·Ox + x] =      */   \
/* X[c, y+i, x+j], the rows of the convolution's product over the kept positions       */    \
/* (the shifted rows of the full width, read in place, also sum the cropped columns:   */    \
/* a third of the book's second layer, 12 columns of which 8 are kept)                  */   \
CBP_CLONES_NARROW                                                                             \
static void cbp3_kept_rows_##SUF(const T *X, T *Xk, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wd,   \
                                 ptrdiff_t K) {                                               \
    ptrdiff_t Oy = H - K + 1, Ox = Wd - K + 1;                                                \
    for (ptrdiff_t c = 0; c < C; c++)                                                         \
        for (ptrdiff_t i = 0; i < K; i++)                                                     \
            for (ptrdiff_t j = 0; j < K; j++) {                                               \
                T *o = Xk + ((c * K + i) * K + j) * Oy * Ox;                                  \
                for (ptrdiff_t y = 0; y < Oy; y++) {                                          \
                    const T *s = X + (c * H + i + y) * Wd + j;                                \
                    if (Ox == 8)                                                              \
                        memcpy(o + y * 8, s, 8 * sizeof(T));   /* the book's second layer */  \
                    else                                                                      \
                        for (ptrdiff_t x = 0; x < Ox; x++) o[y * Ox + x] = s[x];              \
                }                                                                             \
            }                                                                                 \
}                                                                                             \
                                                                                              \
/* One example's patches for the filters' gradient: P[(y, x), (c, i, j)] = X[c, y+i, x+j]. */ \
CBP_CLONES_NARROW                                                                             \
static void cbp3_im2col_##SUF(const T *X, T *P, ptrdiff_t C, ptrdiff_t H, ptrdiff_t Wd,       \
                              ptrdiff_t K) {                                                  \
    ptrdiff_t Oy = H - K + 1, Ox = Wd - K + 1, CKK = C * K * K;                               \
    for (ptrdiff_t y = 0; y < Oy; y++)                                                        \
        for (ptrdiff_t x = 0; x < Ox; x++) {                                                  \
            T *p = P + (y * Ox + x) * CKK;                                                    \
            if (K == 5)                                                                       \
                /* the book's 5 x 5 filters: each tap row a copy of constant size (a     */   \
                /* 16-byte and a 4-byte move in float32, where the loop moved each        */  \
                /* element alone: 7% of dbl_conv's one-core epoch)                         */  \
                for (ptrdiff_t c = 0; c < C; c++)                                             \
                    for (ptrdiff_t i = 0; i < 5; i++)                                         \
                        memcpy(p + (c * 5 + i) * 5, X + (c * H + y + i) * Wd + x,             \
                               5 * sizeof(T));                                                \
            else                                                                              \
                for (ptrdiff_t c = 0; c < C; c++)                                             \
                    for (ptrdiff_t i = 0; i < K; i++) {                                       \
                        const T *s = X + (c * H + y + i) * Wd + x;                            \
                        for (ptrdiff_t j = 0; j < K; j++) p[(c * K + i) * K + j] = s[j];      \
                    }                                                                         \
        }                                                                                     \
}                                                                                             \
                                                                                              \
/* Dropout: mask[k] = 1 when draw counter + k + 1 is kept, else 0, and out = x ⊙ mask.     */ \
/* Draw n is SplitMix64's finaliser of seed + n·γ; it is kept when its top 53 bits u       */ \
/* satisfy u·2⁻⁵³ < 1 − p, i.e. u < ceil((1 − p)·2⁵³) (u and the scaling are exact), the   */ \
/* integer test (a uint64 → double conversion costs a branch without AVX-512).            */ \
CBP_CLONES_NARROW                                                                             \
static void cbp3_dropout_##SUF(const T *x, T *mask, T *out, ptrdiff_t n, uint64_t seed,       \
                               uint64_t counter, uint64_t keep_below) {                       \
    const uint64_t gamma = 0x9E3779B97F4A7C15ULL;                                             \
    for (ptrdiff_t k = 0; k < n; k++) {                                                       \
        uint64_t z = seed + (counter + (uint64_t)k + 1) * gamma;                              \
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;                                          \
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;                                          \
        z ^= z >> 31;                                                                         \
        T m = (z >> 11) < keep_below ? (T)1 : (T)0;                                           \
        mask[k] = m;                                                                          \
        if (out) out[k] = x[k] * m;                                                           \
    }                                                                                         \
}

CBP3_DEFINE(double, d)
CBP3_DEFINE(float, f)

#endif
