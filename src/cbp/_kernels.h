/*
 * Register-blocked, cache-blocked micro-kernels for the three products of
 * backpropagation over a mini-batch (rows are examples; row-major matrices):
 *
 *   feedforward   Z__mo = A__mi W__oiᵀ + b__o         (z^l = W^l a^{l-1} + b^l)
 *   BP2           E__mi = D__mo W__oi                 ((W^{l+1})ᵀ δ^{l+1}, before ⊙ f')
 *   BP3/BP4+step  W__oi ← β W__oi + Dt__omᵀ-weighted rows of A, i.e.
 *                 W ← β W + Σ_m Dt[:, m] A[m, :] with Dt = α δᵀ from the caller
 *                 (W ← (1 − ηλ/n) W − (η/m) Σ δ aᵀ)
 *
 * A reaches the feedforward and step kernels as one pointer per example, so
 * the first layer reads a shuffled mini-batch where it lies.
 *
 * Why C and not Cython: a tile keeps up to 12 vector accumulators in
 * registers, which needs GCC/Clang vector types; Cython has no syntax for
 * them.  The drivers and all checks live in _core.pyx.
 *
 * The C kernels, one concern a file: this one (vector types, the small-batch
 * tiles of the forward and the step, the dispatch of each product), _bp2.h
 * (the small-batch BP2), _elementwise.h (σ, f', the input scans), _wide.h
 * (the 64-byte build's packed forward), _sweep.h (narrow
 * layers, the fused sweep), _gemm.h (large mini-batches), _machine.h (the
 * FMA probe, the team barrier, the clone chosen), _conv3.h (network3's).
 *
 * Why tiles: a per-example loop streams each weight matrix through the cache
 * once per example.  Here each weight vector loaded serves 4 examples
 * (feedforward, BP2) and each activation vector serves 4 weight rows (the
 * step); blocks of W (or A) sized for L2 are reused across the whole
 * mini-batch.  No sum is reassociated: each output element is summed in an
 * order fixed by the layer's shape alone, the same in full and in edge tiles,
 * so an example's result does not depend on its place in the mini-batch.
 *
 * Portability: vector types are GCC/Clang extensions (SSE2 on any x86-64).
 * On Linux/x86-64 with GCC >= 12 each kernel is also compiled for x86-64-v3
 * (AVX2 + FMA) and x86-64-v4 (AVX-512: 32 registers) and chosen at load time
 * (target_clones): the default build runs anywhere and is still fast on
 * current machines.
 */
#ifndef CBP_KERNELS_H
#define CBP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(CBP_NO_CLONES) && __GNUC__ >= 12
#define CBP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
/* The products get their own AVX-512 build with 64-byte vectors (one zmm
 * register each), chosen at load time: on cores with full-width AVX-512
 * units it doubles the FMAs per instruction, which 32-byte vectors leave
 * unused.  The 32-byte build serves x86-64-v3 and older CPUs. */
#define CBP_WIDE 1
#define CBP_CLONES_NARROW __attribute__((target_clones("arch=x86-64-v3", "default")))
#define CBP_TARGET_WIDE __attribute__((target("arch=x86-64-v4")))
#else
#define CBP_CLONES
#define CBP_WIDE 0
#define CBP_CLONES_NARROW
#endif
#define CBP_INLINE static inline __attribute__((always_inline))

/* L2-sized blocks: bytes of the operand reused across a whole tile sweep. */
#define CBP_BLOCK_BYTES (96 * 1024)
/* Scratch the caller provides for packed strips. */
#define CBP_PACK_BYTES (128 * 1024)
/* Bytes of a packed forward panel swept from L1 (64-byte build). */
#define CBP_PANEL_L1 (24 * 1024)
/* Largest slice of a mini-batch's errors δ that BP2 keeps in L2 at once. */
#define CBP_PANEL_BYTES (1024 * 1024)

typedef double cbp_vd __attribute__((vector_size(32), aligned(8)));
typedef float cbp_vf __attribute__((vector_size(32), aligned(4)));
typedef double cbp_vd64 __attribute__((vector_size(64), aligned(8)));
typedef float cbp_vf64 __attribute__((vector_size(64), aligned(4)));

#define CBP_MIN(a, b) ((a) < (b) ? (a) : (b))

/*
 * The next mini-batch's rows, prefetched a few lines at a time while this one
 * computes (the one-thread driver, _batch.pxi).  All of them at once, before
 * the batch (980 lines of 64 bytes for 10 rows of 784 doubles), filled the
 * core's queue of misses: the prefetches themselves stalled (4.7% of a
 * [784, 30, 10] epoch on their own instruction) and the rows still came late
 * (the finiteness check that reads them first, 8.4%).  Issued between the
 * step's tiles instead, they overlap the compute: 1.06-1.11x on that epoch in
 * float32 (median of pairs alternated in one process), 1.01-1.05x in float64.
 *
 * The driver plans the rows (X + idx[r] * row_bytes for r < n), the step's
 * tile loop issues CBP_PREFETCH_LINES lines after each tile, and the driver
 * issues whatever is left after the batch and clears the plan.  The queue is
 * per thread, so a team's threads (which prefetch their own rows) never see
 * it.  It changes when memory is read, never a value.
 */
#define CBP_PREFETCH_LINES 2
typedef struct {
    const char *base;
    const ptrdiff_t *idx;
    ptrdiff_t n, row_bytes, r, k;
} cbp_prefetch_queue;
static _Thread_local cbp_prefetch_queue cbp_pf;

static inline void cbp_prefetch_plan(const void *base, const ptrdiff_t *idx, ptrdiff_t n,
                                     ptrdiff_t row_bytes) {
    cbp_pf.base = (const char *)base;
    cbp_pf.idx = idx;
    cbp_pf.n = n;
    cbp_pf.row_bytes = row_bytes;
    cbp_pf.r = cbp_pf.k = 0;
}

static inline void cbp_prefetch_some(ptrdiff_t lines) {
    for (; lines > 0 && cbp_pf.r < cbp_pf.n; lines--) {
        __builtin_prefetch(cbp_pf.base + cbp_pf.idx[cbp_pf.r] * cbp_pf.row_bytes + cbp_pf.k, 0, 2);
        cbp_pf.k += 64;
        if (cbp_pf.k >= cbp_pf.row_bytes) {
            cbp_pf.k = 0;
            cbp_pf.r++;
        }
    }
}

static inline void cbp_prefetch_rest(void) {
    cbp_prefetch_some(PTRDIFF_MAX);
    cbp_pf.n = cbp_pf.r = cbp_pf.k = 0;
}

/* rows planned and not yet all asked for, on the calling thread (tests) */
static inline ptrdiff_t cbp_prefetch_pending(void) { return cbp_pf.n - cbp_pf.r; }

/* The step's register tile: CBP_STEP_ROWS weight rows x CBP_STEP_VECS vectors
 * of columns, 12 accumulators (at most 4 rows; fewer rows at a layer's edge).
 * 3 x 4 rather than 4 x 3: 3 broadcasts of δ per 12 FMAs instead of 4, and a
 * 30-unit layer (the headline's) splits into ten whole tiles where 4 rows
 * left a 2-row edge.  Measured against 4 x 3 in one process, alternated
 * call by call, median of the pairs: [784, 30, 10] M = 10 1.00-1.07x,
 * [784, 100, 10] M = 10 1.04-1.06x; 2 x 6 measured 0.89-0.97x.  Each weight
 * is summed alike in any tile (from 0 over m in order, then one multiply-
 * add with β w), so the shape never changes the bits.  Either number can be
 * set with -D to try another tile. */
#ifndef CBP_STEP_ROWS
#define CBP_STEP_ROWS 3
#endif
#ifndef CBP_STEP_VECS
#define CBP_STEP_VECS 4
#endif
/* a tile of R <= 4 rows (R in scope) by C vectors, by a switch to constant shapes */
#define CBP_STEP_TILES(SUF, C, ...)                                                           \
    switch (R) {                                                                              \
    case 4: cbp_step_tile_##SUF(4, C, __VA_ARGS__); break;                                    \
    case 3: cbp_step_tile_##SUF(3, C, __VA_ARGS__); break;                                    \
    case 2: cbp_step_tile_##SUF(2, C, __VA_ARGS__); break;                                    \
    default: cbp_step_tile_##SUF(1, C, __VA_ARGS__); break;                                   \
    }

#define CBP_DEFINE_KERNELS(T, V, W_, SUF, ATTR)                                               \
                                                                                              \
CBP_INLINE T cbp_hsum_##SUF(const V *v) {                                                     \
    T s = 0;                                                                                  \
    for (int q = 0; q < W_; q++) s += (*v)[q];                                                \
    return s;                                                                                 \
}                                                                                             \
                                                                                              \
/* R examples x C weight rows of Z = A Wᵀ + b; ar[r] points at example r's inputs (rows   */ \
/* of A are reached through pointers, so a shuffled mini-batch needs no copy), rows of W  */ \
/* lie I apart                                                                             */ \
CBP_INLINE void cbp_fwd_tile_##SUF(const int R, const int C, const T *const *ar, const T *w,  \
                                   ptrdiff_t I, const T *b, T *z, ptrdiff_t O) {              \
    V acc[4][4];                                                                              \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++) acc[r][c] = (V){0};                                       \
    ptrdiff_t k = 0;                                                                          \
    for (; k + W_ <= I; k += W_) {                                                            \
        V u[4];                                                                               \
        for (int c = 0; c < C; c++) u[c] = *(const V *)(w + c * I + k);                      \
        for (int r = 0; r < R; r++) {                                                         \
            V x = *(const V *)(ar[r] + k);                                                    \
            for (int c = 0; c < C; c++) acc[r][c] += x * u[c];                                \
        }                                                                                     \
    }                                                                                         \
    /* The last I % W_ terms, summed apart from 0.  Their sums are set up    */               \
    /* after the vector loop, not before it, where the 12 scalars (in the    */               \
    /* same 16 registers as the vectors) were live across the loop: the      */               \
    /* forward alone on [784, 30], M = 10, measured 1.05-1.10x in a C loop;  */               \
    /* in the epoch the change is within the noise.                          */               \
    T tail[4][4];                                                                             \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++) tail[r][c] = 0;                                           \
    for (; k < I; k++)                                                                        \
        for (int r = 0; r < R; r++)                                                           \
            for (int c = 0; c < C; c++) tail[r][c] += ar[r][k] * w[c * I + k];                \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++)                                                           \
            z[r * O + c] = b[c] + (cbp_hsum_##SUF(&acc[r][c]) + tail[r][c]);                  \
}                                                                                             \
                                                                                              \
/* an edge tile of r <= 4 examples x c <= 4 weight rows, by a switch to constant shapes */     \
CBP_INLINE void cbp_fwd_edge_##SUF(ptrdiff_t r, ptrdiff_t c, const T *const *ar, const T *w,  \
                                   ptrdiff_t I, const T *b, T *z, ptrdiff_t O) {              \
    switch (r * 8 + c) {                                                                      \
    case 1 * 8 + 1: cbp_fwd_tile_##SUF(1, 1, ar, w, I, b, z, O); break;                       \
    case 1 * 8 + 2: cbp_fwd_tile_##SUF(1, 2, ar, w, I, b, z, O); break;                       \
    case 1 * 8 + 3: cbp_fwd_tile_##SUF(1, 3, ar, w, I, b, z, O); break;                       \
    case 1 * 8 + 4: cbp_fwd_tile_##SUF(1, 4, ar, w, I, b, z, O); break;                       \
    case 2 * 8 + 1: cbp_fwd_tile_##SUF(2, 1, ar, w, I, b, z, O); break;                       \
    case 2 * 8 + 2: cbp_fwd_tile_##SUF(2, 2, ar, w, I, b, z, O); break;                       \
    case 2 * 8 + 3: cbp_fwd_tile_##SUF(2, 3, ar, w, I, b, z, O); break;                       \
    case 2 * 8 + 4: cbp_fwd_tile_##SUF(2, 4, ar, w, I, b, z, O); break;                       \
    case 3 * 8 + 1: cbp_fwd_tile_##SUF(3, 1, ar, w, I, b, z, O); break;                       \
    case 3 * 8 + 2: cbp_fwd_tile_##SUF(3, 2, ar, w, I, b, z, O); break;                       \
    case 3 * 8 + 3: cbp_fwd_tile_##SUF(3, 3, ar, w, I, b, z, O); break;                       \
    case 3 * 8 + 4: cbp_fwd_tile_##SUF(3, 4, ar, w, I, b, z, O); break;                       \
    case 4 * 8 + 1: cbp_fwd_tile_##SUF(4, 1, ar, w, I, b, z, O); break;                       \
    case 4 * 8 + 2: cbp_fwd_tile_##SUF(4, 2, ar, w, I, b, z, O); break;                       \
    default: cbp_fwd_tile_##SUF(4, 3, ar, w, I, b, z, O); break;                              \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* A_rows[m] points at example m's I inputs; O weight rows (a thread's share of the     */   \
/* layer's) give O columns of Z, whose rows lie ldz apart                                 */  \
ATTR                                                                                          \
static void cbp_forward_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,          \
                              T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,                \
                              ptrdiff_t ldz) {                                                \
    /* Blocks of weight rows stay in L2 while every example passes by; the    */              \
    /* blocks are even, and multiples of 3 rows when possible, to leave few   */              \
    /* edge tiles.  (Splitting the sum over i into blocks as well, to keep A  */              \
    /* in L2, measured slower: the extra horizontal sums cost more.)          */              \
    ptrdiff_t ob = CBP_BLOCK_BYTES / (ptrdiff_t)(I * sizeof(T));                              \
    ob = ob < 3 ? 3 : ob;                                                                     \
    ptrdiff_t nb = (O + ob - 1) / ob;                                                         \
    ob = (O + nb - 1) / nb;                                                                   \
    ob = (ob + 2) / 3 * 3;                                                                    \
    for (ptrdiff_t o0 = 0; o0 < O; o0 += ob) {                                                \
        ptrdiff_t o1 = CBP_MIN(O, o0 + ob);                                                   \
        ptrdiff_t m = 0;                                                                      \
        for (; m + 4 <= M; m += 4) {                                                          \
            const T *const *a = A_rows + m;                                                   \
            T *z = Z__mo + m * ldz;                                                            \
            ptrdiff_t o = o0;                                                                 \
            for (; o + 3 <= o1; o += 3)                                                       \
                cbp_fwd_tile_##SUF(4, 3, a, W__oi + o * I, I, b__o + o, z + o, ldz);            \
            if (o < o1)                                                                       \
                cbp_fwd_edge_##SUF(4, o1 - o, a, W__oi + o * I, I, b__o + o, z + o, ldz);       \
        }                                                                                     \
        if (m < M) {                                                                          \
            const T *const *a = A_rows + m;                                                   \
            T *z = Z__mo + m * ldz;                                                            \
            ptrdiff_t o = o0;                                                                 \
            for (; o + 4 <= o1; o += 4)                                                       \
                cbp_fwd_edge_##SUF(M - m, 4, a, W__oi + o * I, I, b__o + o, z + o, ldz);        \
            if (o < o1)                                                                       \
                cbp_fwd_edge_##SUF(M - m, o1 - o, a, W__oi + o * I, I, b__o + o, z + o, ldz);   \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* R weight rows x C vectors of W = β W + Σ_m Dt[o, m] A[m, :], A's columns from packed   */ \
/* strips (rows S apart) or, unpacked, from the row pointers at column col                 */ \
CBP_INLINE void cbp_step_tile_##SUF(const int R, const int C, const T *dt, const T *packed,   \
                                    const T *const *rows, ptrdiff_t col, T *w, V vb,          \
                                    ptrdiff_t M, ptrdiff_t I) {                               \
    const ptrdiff_t S = CBP_STEP_VECS * W_;                                                   \
    V acc[CBP_STEP_ROWS > 4 ? CBP_STEP_ROWS : 4][CBP_STEP_VECS];                              \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++) acc[r][c] = (V){0};                                       \
    for (ptrdiff_t m = 0; m < M; m++) {                                                       \
        const T *a = packed ? packed + m * S : rows[m] + col;                                 \
        V u[CBP_STEP_VECS];                                                                   \
        for (int c = 0; c < C; c++) u[c] = *(const V *)(a + c * W_);                          \
        for (int r = 0; r < R; r++) {                                                         \
            T s = dt[r * M + m];                                                              \
            for (int c = 0; c < C; c++) acc[r][c] += s * u[c];                                \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++) {                                                         \
            V *p = (V *)(w + r * I + c * W_);                                                 \
            *p = vb * *p + acc[r][c];                                                         \
        }                                                                                     \
}                                                                                             \
                                                                                              \
/* A_rows[m] points at example m's I inputs; pack[] holds >= CBP_PACK_BYTES / sizeof(T)  */    \
/* elements of scratch                                                                    */  \
ATTR                                                                                          \
static void cbp_step_##SUF(const T *Dt__om, const T *const *A_rows, T *W__oi, T beta,         \
                           ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, T *pack) {                  \
    /* A block of A's columns, copied strip by strip into contiguous memory, */               \
    /* stays in cache while every weight row passes by.  (A 16 KB block, to  */               \
    /* stay in L1, measured no faster at M = 10 and 7% slower on             */               \
    /* [784, 1024, 1024, 10] f64 at M = 128: 12-column blocks of W.)         */               \
    const ptrdiff_t S = CBP_STEP_VECS * W_;                                                   \
    ptrdiff_t ib = CBP_PACK_BYTES / (ptrdiff_t)(M * sizeof(T));                               \
    ib = ib < S ? S : ib - ib % S;                                                            \
    V vb = {0};                                                                               \
    vb += beta;                                                                               \
    ptrdiff_t full = I - I % S;                                                               \
    int packed = (size_t)(M * S) * sizeof(T) <= CBP_PACK_BYTES;                               \
    for (ptrdiff_t i0 = 0; i0 < full; i0 += ib) {                                             \
        ptrdiff_t i1 = CBP_MIN(full, i0 + ib);                                                \
        if (packed)                                                                           \
            for (ptrdiff_t i = i0; i < i1; i += S)                                            \
                for (ptrdiff_t m = 0; m < M; m++)                                             \
                    for (ptrdiff_t c = 0; c < S; c++)                                         \
                        pack[(i - i0) * M + m * S + c] = A_rows[m][i + c];                    \
        for (ptrdiff_t o = 0; o < O; o += CBP_STEP_ROWS) {                                    \
            ptrdiff_t R = CBP_MIN(CBP_STEP_ROWS, O - o);                                      \
            const T *dt = Dt__om + o * M;                                                     \
            T *w = W__oi + o * I;                                                             \
            for (ptrdiff_t i = i0; i < i1; i += S) {                                          \
                const T *p = packed ? pack + (i - i0) * M : NULL;                             \
                CBP_STEP_TILES(SUF, CBP_STEP_VECS, dt, p, A_rows, i, w + i, vb, M, I);       \
                cbp_prefetch_some(CBP_PREFETCH_LINES);                                        \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* The last columns, one vector wide: 4 weight rows at a time, so that  */                \
    /* 4 independent sums hide the FMA latency (one row was one chain).     */                \
    ptrdiff_t vend = full + (I - full) / W_ * W_;                                             \
    for (ptrdiff_t o = 0; o < O; o += 4) {                                                    \
        ptrdiff_t R = CBP_MIN(4, O - o);                                                      \
        const T *dt = Dt__om + o * M;                                                         \
        T *w = W__oi + o * I;                                                                 \
        for (ptrdiff_t i = full; i < vend; i += W_) {                                         \
            CBP_STEP_TILES(SUF, 1, dt, NULL, A_rows, i, w + i, vb, M, I);                     \
        }                                                                                     \
    }                                                                                         \
    /* The last I - vend < W_ columns in the lanes of one vector, so that    */               \
    /* each term is one multiply-add, as in the tiles and in the fused sweep */               \
    /* (_sweep.h).  (A scalar loop here was vectorised over m by the        */                \
    /* compiler, rounding the products apart from the sums for all but the  */                \
    /* last M % 4 examples.)                                                */                \
    /* (Gathered into pack first when it fits: a vector assembled lane by   */                \
    /* lane and read back at once stalls on store forwarding.)              */                \
    if (vend < I) {                                                                           \
        ptrdiff_t nc = I - vend;                                                              \
        int gathered = (size_t)(M * W_) * sizeof(T) <= CBP_PACK_BYTES;                        \
        if (gathered)                                                                         \
            for (ptrdiff_t m = 0; m < M; m++)                                                 \
                for (ptrdiff_t c = 0; c < W_; c++)                                            \
                    pack[m * W_ + c] = c < nc ? A_rows[m][vend + c] : 0;                      \
        for (ptrdiff_t o = 0; o < O; o++) {                                                   \
            const T *dt = Dt__om + o * M;                                                     \
            T *w = W__oi + o * I + vend;                                                      \
            V acc = {0}, x = {0};                                                             \
            for (ptrdiff_t m = 0; m < M; m++) {                                               \
                V a = {0};                                                                    \
                if (gathered)                                                                 \
                    a = *(const V *)(pack + m * W_);                                          \
                else                                                                          \
                    for (ptrdiff_t c = 0; c < nc; c++) a[c] = A_rows[m][vend + c];            \
                acc += dt[m] * a;                                                             \
            }                                                                                 \
            for (ptrdiff_t c = 0; c < nc; c++) x[c] = w[c];                                   \
            x = vb * x + acc;                                                                 \
            for (ptrdiff_t c = 0; c < nc; c++) w[c] = x[c];                                   \
        }                                                                                     \
    }                                                                                         \
}

/* Ask for rows all at once (a team's threads, the fused sweep). */
static inline void cbp_prefetch(const void *p, ptrdiff_t bytes) {
    const char *c = (const char *)p;
    for (ptrdiff_t k = 0; k < bytes; k += 64) __builtin_prefetch(c + k, 0, 2);
}

/* σ, its derivatives and the input checks: one pass over an array each. */
#include "_elementwise.h"

/* The 64-byte build's packed forward (CBP_DEFINE_WIDE_FORWARD). */
#include "_wide.h"

/* BP2 for small mini-batches (CBP_DEFINE_BP2). */
#include "_bp2.h"

CBP_DEFINE_KERNELS(double, cbp_vd, 4, d256, CBP_CLONES_NARROW)
CBP_DEFINE_KERNELS(float, cbp_vf, 8, f256, CBP_CLONES_NARROW)
CBP_DEFINE_BP2(double, cbp_vd, 4, d256, CBP_CLONES_NARROW)
CBP_DEFINE_BP2(float, cbp_vf, 8, f256, CBP_CLONES_NARROW)
#if CBP_WIDE
CBP_DEFINE_KERNELS(double, cbp_vd64, 8, d512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_KERNELS(float, cbp_vf64, 16, f512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_BP2(double, cbp_vd64, 8, d512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_BP2(float, cbp_vf64, 16, f512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_WIDE_FORWARD(double, cbp_vd64, 8, d)
CBP_DEFINE_WIDE_FORWARD(float, cbp_vf64, 16, f)
CBP_DEFINE_BP2_STEP(double, cbp_vd64, 8, d512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_BP2_STEP(float, cbp_vf64, 16, f512, CBP_TARGET_WIDE __attribute__((unused)))
#endif

/* 1 when the 64-byte build runs here (decided at the first call; threads
 * may race to it, and all store the same value). */
static int cbp_wide(void) {
#if CBP_WIDE
    static int wide = -1;
    int w = __atomic_load_n(&wide, __ATOMIC_RELAXED);
    if (w < 0) {
        __builtin_cpu_init();
        w = __builtin_cpu_supports("x86-64-v4") ? 1 : 0;
        __atomic_store_n(&wide, w, __ATOMIC_RELAXED);
    }
    return w;
#else
    return 0;
#endif
}

#if CBP_WIDE
#define CBP_PICK(name, SUF, args) \
    do { if (cbp_wide()) name##_##SUF##512 args; else name##_##SUF##256 args; } while (0)
/* The packed forward for layers of at least two full panels (2 x 3 vectors
 * of outputs: 48 in float64, 96 in float32).  Narrower layers waste much of
 * a panel, and re-packing W for every small mini-batch costs about as much
 * as the products: on a Zen 4 core, [784, 30, 10] at m = 10 spent ~41% of
 * the packed forward's time packing, and an epoch took 47.8 ms with it,
 * 37.3 ms with the 32-byte tiles (issue 20's review).
 * Decided by the layer's width (ldz), never by M or by a thread's share, so
 * a result does not depend on either. */
#define CBP_PICK_FORWARD(SUF, wide_args, args)                                                \
    do {                                                                                      \
        if (cbp_wide() && ldz >= 6 * (ptrdiff_t)(64 / sizeof(*b__o)))                         \
            cbp_forward_packed_##SUF wide_args;                                               \
        else                                                                                  \
            cbp_forward_##SUF##256 args;                                                      \
    } while (0)
#else
#define CBP_PICK(name, SUF, args) name##_##SUF##256 args
#define CBP_PICK_FORWARD(SUF, wide_args, args) cbp_forward_##SUF##256 args
#endif

#include "_sweep.h"
#include "_gemm.h"

/* The kernels' vector loads from pack[] never split a cache line: every  */
/* dispatch below moves pack to its first 64-byte boundary (the callers'   */
/* scratch, CBP_PACK_ELEMS elements, has the room).  Where the caller's     */
/* array happened to start 16 bytes past one, the packed forward's panel    */
/* loads all split, and network3's shallow net trained 20% slower in one   */
/* allocation of its plan than in the next.                                 */
#define CBP_ALIGN64(T, p) ((T *)(((size_t)(p) + 63) & ~(size_t)63))
_Static_assert(CBP_PACK_BYTES + 64 <= CBP_PACK_ELEMS * sizeof(float), "pack scratch");

#define CBP_DEFINE_DISPATCH(T, SUF)                                                           \
static void cbp_forward_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,          \
                              T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,                \
                              ptrdiff_t ldz, T *pack) {                                       \
    pack = CBP_ALIGN64(T, pack);                                                              \
    /* A narrow layer (by its width alone) is summed as the fused sweep sums */               \
    /* it (_sweep.h), so one thread's fused epoch and a team's agree.        */               \
    if (ldz <= cbp_narrow_limit) {                                                            \
        cbp_forward_narrow_##SUF(A_rows, W__oi, b__o, Z__mo, M, O, I, ldz, pack);             \
        return;                                                                               \
    }                                                                                         \
    /* The 64-byte build's forward is the packed one: the 32-byte tiles end  */               \
    /* in one horizontal sum per output, which on 16 lanes cost more than   */                \
    /* the wider FMAs gave (0.75x on [784, 256], M = 64); packed, 1.2-1.7x. */                \
    /* Large mini-batches of wide layers: blocked like a GEMM (_gemm.h);    */                \
    /* decided by M and the layer's width, never by a thread's share.       */                \
    if (M >= CBP_GEMM_MIN_M && ldz >= 128 / (ptrdiff_t)sizeof(T)) {                           \
        cbp_gemm_forward_##SUF(A_rows, W__oi, b__o, Z__mo, M, O, I, ldz, pack);               \
        return;                                                                               \
    }                                                                                         \
    CBP_PICK_FORWARD(SUF, (A_rows, W__oi, b__o, Z__mo, M, O, I, ldz, pack),                    \
                     (A_rows, W__oi, b__o, Z__mo, M, O, I, ldz));                             \
}                                                                                             \
static void cbp_backward_##SUF(const T *D__mo, const T *W__oi, T *E__mi, ptrdiff_t M,         \
                               ptrdiff_t O, ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1,          \
                               T *pack) {                                                     \
    pack = CBP_ALIGN64(T, pack);                                                              \
    if (M >= CBP_GEMM_MIN_M && O >= 32) {                                                     \
        cbp_gemm_backward_##SUF(D__mo, W__oi, E__mi, M, O, I, i0, i1, pack);                  \
        return;                                                                               \
    }                                                                                         \
    CBP_PICK(cbp_backward, SUF, (D__mo, W__oi, E__mi, M, O, I, i0, i1, pack));                 \
}                                                                                             \
static void cbp_step_##SUF(const T *Dt__om, const T *const *A_rows, T *W__oi, T beta,         \
                           ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, T *pack) {                  \
    pack = CBP_ALIGN64(T, pack);                                                              \
    if (M >= CBP_GEMM_MIN_M) {                                                                \
        cbp_gemm_step_##SUF(Dt__om, A_rows, W__oi, beta, M, O, I, pack);                      \
        return;                                                                               \
    }                                                                                         \
    CBP_PICK(cbp_step, SUF, (Dt__om, A_rows, W__oi, beta, M, O, I, pack));                     \
}

CBP_DEFINE_DISPATCH(double, d)
CBP_DEFINE_DISPATCH(float, f)

/* BP2 and the step in one pass (_bp2.h): the 64-byte build only, whose 32
 * registers hold E's and the inputs' vectors; cbp_bp2_step_ok says when. */
static int cbp_bp2_step_ok(ptrdiff_t M) { return cbp_wide() && M >= 1 && M <= CBP_BS_MAX_M; }
#if CBP_WIDE
#define CBP_BP2_STEP_ARGS (D__mo, Dt__om, A_rows, W__oi, E__mi, beta, M, O, I, i0, i1)
#define CBP_DEFINE_BP2_STEP_DISPATCH(T, SUF)                                                  \
static void cbp_bp2_step_##SUF(const T *D__mo, const T *Dt__om, const T *const *A_rows,      \
                               T *W__oi, T *E__mi, T beta, ptrdiff_t M, ptrdiff_t O,          \
                               ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1) {                     \
    cbp_bp2_step_##SUF##512 CBP_BP2_STEP_ARGS;                                               \
}
#else
#define CBP_DEFINE_BP2_STEP_DISPATCH(T, SUF)                                                  \
static void cbp_bp2_step_##SUF(const T *D__mo, const T *Dt__om, const T *const *A_rows,      \
                               T *W__oi, T *E__mi, T beta, ptrdiff_t M, ptrdiff_t O,          \
                               ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1) {                     \
    (void)D__mo; (void)Dt__om; (void)A_rows; (void)W__oi; (void)E__mi; (void)beta;           \
    (void)M; (void)O; (void)I; (void)i0; (void)i1;      /* never called: cbp_bp2_step_ok */  \
}
#endif
CBP_DEFINE_BP2_STEP_DISPATCH(double, d)
CBP_DEFINE_BP2_STEP_DISPATCH(float, f)

/* The FMA probe, the team barrier, the clone chosen. */
#include "_machine.h"

#endif
