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
 * them.  The drivers, the elementwise kernels and all checks live in
 * _core.pyx.
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
/* R examples x C vectors of E += D W over the weight rows of one block (no of them); d     */ \
/* points at the block's first column of D, whose rows lie O apart; the first block starts  */ \
/* from 0, later ones carry on from E, so the order of the sum over o is unchanged          */ \
CBP_INLINE void cbp_bwd_tile_##SUF(const int R, const int C, const T *d, const T *w,          \
                                   ptrdiff_t ldw, T *e, ptrdiff_t no, ptrdiff_t O,            \
                                   ptrdiff_t I, int first) {                                  \
    V acc[4][3];                                                                              \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++)                                                           \
            acc[r][c] = first ? (V){0} : *(const V *)(e + r * I + c * W_);                    \
    for (ptrdiff_t o = 0; o < no; o++) {                                                      \
        V u[3];                                                                               \
        for (int c = 0; c < C; c++) u[c] = *(const V *)(w + o * ldw + c * W_);                \
        for (int r = 0; r < R; r++) {                                                         \
            T s = d[r * O + o];                                                               \
            for (int c = 0; c < C; c++) acc[r][c] += s * u[c];                                \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < C; c++) *(V *)(e + r * I + c * W_) = acc[r][c];                   \
}                                                                                             \
                                                                                              \
/* R examples x the first nc < W_ columns of E += D W, W's columns padded in wp (rows W_  */ \
/* apart): cbp_bwd_tile_'s sums, one vector of which only nc lanes are read and written   */ \
CBP_INLINE void cbp_bwd_part_##SUF(const int R, const T *d, const T *wp, T *e, ptrdiff_t nc,  \
                                   ptrdiff_t no, ptrdiff_t O, ptrdiff_t I, int first) {       \
    V acc[4];                                                                                 \
    for (int r = 0; r < R; r++) {                                                             \
        acc[r] = (V){0};                                                                      \
        if (!first)                                                                           \
            for (ptrdiff_t c = 0; c < nc; c++) acc[r][c] = e[r * I + c];                      \
    }                                                                                         \
    for (ptrdiff_t o = 0; o < no; o++) {                                                      \
        V u = *(const V *)(wp + o * W_);                                                      \
        for (int r = 0; r < R; r++) acc[r] += d[r * O + o] * u;                               \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (ptrdiff_t c = 0; c < nc; c++) e[r * I + c] = acc[r][c];                          \
}                                                                                             \
                                                                                              \
/* columns i0 <= i < i1 of E (a thread's share; i0 a multiple of 3 vectors, so a share  */  \
/* is cut into the same strips as the whole); pack[] holds >= CBP_PACK_BYTES / sizeof(T)  */  \
/* elements of scratch                                                                     */ \
ATTR                                                                                          \
static void cbp_backward_##SUF(const T *D__mo, const T *W__oi, T *E__mi,                      \
                               ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, ptrdiff_t i0,           \
                               ptrdiff_t i1, T *pack) {                                       \
    /* Blocks of weight rows keep the mini-batch's slice of D in L2.  Within */               \
    /* one, a strip of S columns of W at a time is copied contiguous: rows  */                \
    /* of W lie I apart, and for I a multiple of 512 they would all fall in */                \
    /* the same L1 sets.  The strip then stays in cache for the whole batch. */               \
    const ptrdiff_t S = 3 * W_;                                                               \
    ptrdiff_t ob = O;                                                                         \
    if ((size_t)(M * O) * sizeof(T) > CBP_PANEL_BYTES)                                        \
        ob = CBP_PANEL_BYTES / (ptrdiff_t)(M * sizeof(T));                                    \
    if ((size_t)(ob * S) * sizeof(T) > CBP_PACK_BYTES)                                        \
        ob = CBP_PACK_BYTES / (ptrdiff_t)(S * sizeof(T));                                     \
    ob = ob < 16 ? 16 : ob;                                                                   \
    ptrdiff_t nb = (O + ob - 1) / ob;                                                         \
    ob = (O + nb - 1) / nb;                                                                   \
    for (ptrdiff_t o0 = 0; o0 < O; o0 += ob) {                                                \
        ptrdiff_t no = CBP_MIN(ob, O - o0);                                                   \
        int first = o0 == 0;                                                                  \
        const T *wo = W__oi + o0 * I;                                                         \
        ptrdiff_t i = i0;                                                                     \
        for (; i + S <= i1; i += S) {                                                          \
            for (ptrdiff_t o = 0; o < no; o++)                                                \
                for (ptrdiff_t c = 0; c < S; c++) pack[o * S + c] = wo[o * I + i + c];        \
            for (ptrdiff_t m = 0; m < M; m += 4) {                                            \
                ptrdiff_t R = CBP_MIN(4, M - m);                                              \
                const T *d = D__mo + m * O + o0;                                              \
                T *e = E__mi + m * I + i;                                                     \
                if (R == 4) cbp_bwd_tile_##SUF(4, 3, d, pack, S, e, no, O, I, first);         \
                else if (R == 3) cbp_bwd_tile_##SUF(3, 3, d, pack, S, e, no, O, I, first);    \
                else if (R == 2) cbp_bwd_tile_##SUF(2, 3, d, pack, S, e, no, O, I, first);    \
                else cbp_bwd_tile_##SUF(1, 3, d, pack, S, e, no, O, I, first);                \
            }                                                                                 \
        }                                                                                     \
        /* The last columns: 4 examples at a time, so that 4 independent sums  */             \
        /* hide the FMA latency (one example at a time was one chain of no FMAs, */             \
        /* and the last I % W_ columns a scalar chain each: 2.3% of the         */             \
        /* headline's time went to [30 -> 10]'s last 6 columns in float32).     */             \
        for (; i + W_ <= i1; i += W_)                                                          \
            for (ptrdiff_t m = 0; m < M; m += 4) {                                            \
                ptrdiff_t R = CBP_MIN(4, M - m);                                              \
                const T *d = D__mo + m * O + o0;                                              \
                T *e = E__mi + m * I + i;                                                     \
                if (R == 4) cbp_bwd_tile_##SUF(4, 1, d, wo + i, I, e, no, O, I, first);       \
                else if (R == 3) cbp_bwd_tile_##SUF(3, 1, d, wo + i, I, e, no, O, I, first);  \
                else if (R == 2) cbp_bwd_tile_##SUF(2, 1, d, wo + i, I, e, no, O, I, first);  \
                else cbp_bwd_tile_##SUF(1, 1, d, wo + i, I, e, no, O, I, first);              \
            }                                                                                 \
        if (i < i1) {                                                                         \
            /* fewer than W_ columns: W's copied into whole vectors padded with */            \
            /* zeros, each sum in one lane, in the same order (from 0 or E, o   */            \
            /* ascending, one multiply-add a term) as the tiles'               */             \
            ptrdiff_t nc = i1 - i;                                                            \
            for (ptrdiff_t o = 0; o < no; o++)                                                \
                for (ptrdiff_t c = 0; c < W_; c++)                                            \
                    pack[o * W_ + c] = c < nc ? wo[o * I + i + c] : 0;                        \
            for (ptrdiff_t m = 0; m < M; m += 4) {                                            \
                ptrdiff_t R = CBP_MIN(4, M - m);                                              \
                const T *d = D__mo + m * O + o0;                                              \
                T *e = E__mi + m * I + i;                                                     \
                if (R == 4) cbp_bwd_part_##SUF(4, d, pack, e, nc, no, O, I, first);           \
                else if (R == 3) cbp_bwd_part_##SUF(3, d, pack, e, nc, no, O, I, first);      \
                else if (R == 2) cbp_bwd_part_##SUF(2, d, pack, e, nc, no, O, I, first);      \
                else cbp_bwd_part_##SUF(1, d, pack, e, nc, no, O, I, first);                  \
            }                                                                                 \
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

/*
 * σ(z) over an array, vectorised: libm's exp is scalar, and on a wide layer
 * the activations cost as much as a fifth of the forward pass.  exp is
 * evaluated only at −|z| <= 0 (so it cannot overflow) as 2^k · p(r), with
 * r = x − k ln 2 (Cody–Waite split of ln 2), |r| <= ln2/2, and p the Taylor
 * polynomial (degree 13 for double, 7 for float: truncation below half an
 * ulp); 2^k is applied as two factors so gradual underflow stays right.
 */
typedef long long cbp_vld __attribute__((vector_size(32)));
typedef int cbp_vif __attribute__((vector_size(32)));

CBP_INLINE cbp_vd cbp_vexp_neg_d(cbp_vd x) {
    const cbp_vd lo = {-746.0, -746.0, -746.0, -746.0};
    cbp_vld small = x < lo;
    x = (cbp_vd)(((cbp_vld)x & ~small) | ((cbp_vld)lo & small));
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: rounds to an integer */
    cbp_vd kd = x * 1.4426950408889634 + shifter;
    kd -= shifter;
    cbp_vd r = x - kd * 0.693147180369123816490;  /* ln 2, high part */
    r = r - kd * 1.90821492927058770002e-10;        /* ln 2, low part */
    cbp_vd p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    cbp_vld k = __builtin_convertvector(kd, cbp_vld);
    cbp_vld k1 = k >> 1, k2 = k - k1;
    cbp_vd s1 = (cbp_vd)((k1 + 1023) << 52), s2 = (cbp_vd)((k2 + 1023) << 52);
    return p * s1 * s2;
}

CBP_INLINE cbp_vf cbp_vexp_neg_f(cbp_vf x) {
    const cbp_vf lo = {-104.f, -104.f, -104.f, -104.f, -104.f, -104.f, -104.f, -104.f};
    cbp_vif small = x < lo;
    x = (cbp_vf)(((cbp_vif)x & ~small) | ((cbp_vif)lo & small));
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    cbp_vf kd = x * 1.44269504f + shifter;
    kd -= shifter;
    cbp_vf r = x - kd * 0.693145752f;   /* ln 2, high part */
    r = r - kd * 1.42860677e-06f;       /* ln 2, low part */
    cbp_vf p = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    cbp_vif k = __builtin_convertvector(kd, cbp_vif);
    cbp_vif k1 = k >> 1, k2 = k - k1;
    cbp_vf s1 = (cbp_vf)((k1 + 127) << 23), s2 = (cbp_vf)((k2 + 127) << 23);
    return p * s1 * s2;
}

#define CBP_DEFINE_SIGMOID(T, V, VI, W_, SUF)                                                 \
CBP_INLINE V cbp_vsigmoid_##SUF(V z) {                                                        \
    V zero = {0};                                                                             \
    VI neg = z < zero;                                                                        \
    V minus_abs = (V)(((VI)z & neg) | ((VI)(-z) & ~neg));                                     \
    V e = cbp_vexp_neg_##SUF(minus_abs);                                                      \
    V d = 1 / (1 + e);                                                                        \
    return (V)(((VI)(e * d) & neg) | ((VI)d & ~neg));                                         \
}                                                                                             \
                                                                                              \
/* a = σ(z) elementwise; z and a may be the same array */                                     \
CBP_CLONES                                                                                    \
static void cbp_sigmoid_##SUF(const T *z, T *a, ptrdiff_t n) {                                \
    ptrdiff_t k = 0;                                                                          \
    for (; k + W_ <= n; k += W_) *(V *)(a + k) = cbp_vsigmoid_##SUF(*(const V *)(z + k));    \
    if (k < n) {                                                                              \
        V t = {0};                                                                            \
        for (ptrdiff_t q = 0; q < n - k; q++) t[q] = z[k + q];                                \
        t = cbp_vsigmoid_##SUF(t);                                                            \
        for (ptrdiff_t q = 0; q < n - k; q++) a[k + q] = t[q];                                \
    }                                                                                         \
}

CBP_DEFINE_SIGMOID(double, cbp_vd, cbp_vld, 4, d)
CBP_DEFINE_SIGMOID(float, cbp_vf, cbp_vif, 8, f)

/*
 * BP2's Hadamard product in place, δ ← δ ⊙ f'(z), with f'(z) read off a = f(z)
 * as _derivative (_core.pyx) reads it, to the bit: C evaluates the Cython
 * there as σ' = a · (1.0 − a) and tanh' = 1.0 − a · a in double (for float
 * data a · a is rounded to float first), the result rounded to T; ReLU' is
 * [a > 0], exp' is a.  The scalar loop there was compiled for SSE2 and went
 * through double one element at a time; these loops vectorise in the
 * clones.  tanh's product is rounded before the subtraction, as the default
 * build (no FMA) rounds it: GCC fused the two into one FMA otherwise, even
 * through __builtin_assoc_barrier, and the weights changed in the last bits.
 */
#if defined(__clang__)
#define CBP_NO_FMA
#define CBP_NO_FMA_HERE _Pragma("clang fp contract(off)")
#else
#define CBP_NO_FMA __attribute__((optimize("fp-contract=off")))
#define CBP_NO_FMA_HERE
#endif
#define CBP_DEFINE_FPRIME(T, SUF)                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_sigmoid_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                    \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= (T)((double)a[k] * (1.0 - (double)a[k]));      \
}                                                                                             \
CBP_CLONES CBP_NO_FMA                                                                         \
static void cbp_times_tanh_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                       \
    CBP_NO_FMA_HERE                                                                           \
    for (ptrdiff_t k = 0; k < n; k++) {                                                       \
        T sq = a[k] * a[k];                                                                   \
        d[k] *= (T)(1.0 - (double)sq);                                                        \
    }                                                                                         \
}                                                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_relu_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                       \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= a[k] > 0 ? (T)1 : (T)0;                         \
}                                                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_exp_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                        \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= a[k];                                           \
}

CBP_DEFINE_FPRIME(double, d)
CBP_DEFINE_FPRIME(float, f)


/*
 * The forward product for the 64-byte build, as outer products: a panel of
 * S = 3 vectors of W's rows, transposed (k-major) and packed contiguous, is
 * swept by tiles of up to 6 examples; each value of an input row is
 * broadcast and multiplies the panel's row of 3 vectors into 18 accumulators.
 * No horizontal sum: each output is summed over k in order, one FMA per
 * term, the same in full and edge tiles and in every thread's share.  Long
 * rows are cut into k-blocks whose panel fits the packing scratch; later
 * blocks carry on from Z (stored and reloaded exactly), so the order holds.
 */
#define CBP_DEFINE_WIDE_FORWARD(T, V, W_, SUF)                                                \
CBP_INLINE void cbp_fwdp_tile_##SUF(const int R, const T *const *ar, ptrdiff_t k0,            \
                                    ptrdiff_t nk, const T *panel, const T *bias, T *z,        \
                                    ptrdiff_t ldz, int first, int last) {                     \
    const ptrdiff_t S = 3 * W_;                                                               \
    V acc[6][3];                                                                              \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < 3; c++)                                                           \
            acc[r][c] = first ? (V){0} : *(const V *)(z + r * ldz + c * W_);                  \
    for (ptrdiff_t k = 0; k < nk; k++) {                                                      \
        V u0 = *(const V *)(panel + k * S);                                                   \
        V u1 = *(const V *)(panel + k * S + W_);                                              \
        V u2 = *(const V *)(panel + k * S + 2 * W_);                                          \
        for (int r = 0; r < R; r++) {                                                         \
            T x = ar[r][k0 + k];                                                              \
            acc[r][0] += x * u0;                                                              \
            acc[r][1] += x * u1;                                                              \
            acc[r][2] += x * u2;                                                              \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < 3; c++) {                                                         \
            V v = acc[r][c];                                                                  \
            if (last) v += *(const V *)(bias + c * W_);                                       \
            *(V *)(z + r * ldz + c * W_) = v;                                                 \
        }                                                                                     \
}                                                                                             \
                                                                                              \
CBP_INLINE void cbp_fwdp_rows_##SUF(ptrdiff_t R, const T *const *ar, ptrdiff_t k0,            \
                                    ptrdiff_t nk, const T *panel, const T *bias, T *z,        \
                                    ptrdiff_t ldz, int first, int last) {                     \
    switch (R) {                                                                              \
    case 1: cbp_fwdp_tile_##SUF(1, ar, k0, nk, panel, bias, z, ldz, first, last); break;      \
    case 2: cbp_fwdp_tile_##SUF(2, ar, k0, nk, panel, bias, z, ldz, first, last); break;      \
    case 3: cbp_fwdp_tile_##SUF(3, ar, k0, nk, panel, bias, z, ldz, first, last); break;      \
    case 4: cbp_fwdp_tile_##SUF(4, ar, k0, nk, panel, bias, z, ldz, first, last); break;      \
    case 5: cbp_fwdp_tile_##SUF(5, ar, k0, nk, panel, bias, z, ldz, first, last); break;      \
    default: cbp_fwdp_tile_##SUF(6, ar, k0, nk, panel, bias, z, ldz, first, last); break;     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* as cbp_forward_*; pack[] holds >= CBP_PACK_BYTES / sizeof(T) elements of scratch */        \
CBP_TARGET_WIDE                                                                               \
static void cbp_forward_packed_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,   \
                                     T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,         \
                                     ptrdiff_t ldz, T *pack) {                                \
    const ptrdiff_t S = 3 * W_;                                                               \
    /* the panel, then S padded biases, then 6 rows of S for an edge block's outputs */       \
    /* k-blocks of the panel sized for L1, where the sweep reads it          */               \
    ptrdiff_t kb = CBP_MIN(((ptrdiff_t)(CBP_PACK_BYTES / sizeof(T)) - 7 * S) / S,              \
                           (ptrdiff_t)(CBP_PANEL_L1 / (S * sizeof(T))));                      \
    T *bias = pack + kb * S, *edge = bias + S;                                                \
    for (ptrdiff_t o0 = 0; o0 < O; o0 += S) {                                                 \
        ptrdiff_t no = CBP_MIN(S, O - o0);                                                    \
        for (ptrdiff_t c = 0; c < S; c++) bias[c] = c < no ? b__o[o0 + c] : 0;                \
        for (ptrdiff_t k0 = 0; k0 < I; k0 += kb) {                                            \
            ptrdiff_t nk = CBP_MIN(kb, I - k0);                                               \
            for (ptrdiff_t c = 0; c < no; c++) {                                              \
                const T *w = W__oi + (o0 + c) * I + k0;                                       \
                for (ptrdiff_t k = 0; k < nk; k++) pack[k * S + c] = w[k];                    \
            }                                                                                 \
            for (ptrdiff_t c = no; c < S; c++)                                                \
                for (ptrdiff_t k = 0; k < nk; k++) pack[k * S + c] = 0;                       \
            int first = k0 == 0, last = k0 + nk == I;                                         \
            for (ptrdiff_t m = 0; m < M; m += 6) {                                            \
                ptrdiff_t R = CBP_MIN(6, M - m);                                              \
                T *z = Z__mo + m * ldz + o0;                                                  \
                if (no == S) {                                                                \
                    cbp_fwdp_rows_##SUF(R, A_rows + m, k0, nk, pack, bias, z, ldz, first,     \
                                        last);                                                \
                } else {                                                                      \
                    /* an edge block: through a full-width copy of its outputs */             \
                    for (ptrdiff_t r = 0; r < R; r++)                                         \
                        for (ptrdiff_t c = 0; c < S; c++)                                     \
                            edge[r * S + c] = (!first && c < no) ? z[r * ldz + c] : 0;        \
                    cbp_fwdp_rows_##SUF(R, A_rows + m, k0, nk, pack, bias, edge, S, first,    \
                                        last);                                                \
                    for (ptrdiff_t r = 0; r < R; r++)                                         \
                        for (ptrdiff_t c = 0; c < no; c++) z[r * ldz + c] = edge[r * S + c];  \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}

CBP_DEFINE_KERNELS(double, cbp_vd, 4, d256, CBP_CLONES_NARROW)
CBP_DEFINE_KERNELS(float, cbp_vf, 8, f256, CBP_CLONES_NARROW)
#if CBP_WIDE
CBP_DEFINE_KERNELS(double, cbp_vd64, 8, d512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_KERNELS(float, cbp_vf64, 16, f512, CBP_TARGET_WIDE __attribute__((unused)))
CBP_DEFINE_WIDE_FORWARD(double, cbp_vd64, 8, d)
CBP_DEFINE_WIDE_FORWARD(float, cbp_vf64, 16, f)
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

#define CBP_DEFINE_DISPATCH(T, SUF)                                                           \
static void cbp_forward_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,          \
                              T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,                \
                              ptrdiff_t ldz, T *pack) {                                       \
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
    if (M >= CBP_GEMM_MIN_M && O >= 32) {                                                     \
        cbp_gemm_backward_##SUF(D__mo, W__oi, E__mi, M, O, I, i0, i1, pack);                  \
        return;                                                                               \
    }                                                                                         \
    CBP_PICK(cbp_backward, SUF, (D__mo, W__oi, E__mi, M, O, I, i0, i1, pack));                 \
}                                                                                             \
static void cbp_step_##SUF(const T *Dt__om, const T *const *A_rows, T *W__oi, T beta,         \
                           ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, T *pack) {                  \
    if (M >= CBP_GEMM_MIN_M) {                                                                \
        cbp_gemm_step_##SUF(Dt__om, A_rows, W__oi, beta, M, O, I, pack);                      \
        return;                                                                               \
    }                                                                                         \
    CBP_PICK(cbp_step, SUF, (Dt__om, A_rows, W__oi, beta, M, O, I, pack));                     \
}

CBP_DEFINE_DISPATCH(double, d)
CBP_DEFINE_DISPATCH(float, f)

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
 * One pass over x for the input checks: whether every element is finite,
 * and the smallest and largest (meaningful only when all are finite).  NumPy
 * needs three passes for this (isfinite, min, max), and at 60 MB of MNIST
 * they cost 15% of a one-epoch SGD call.  x*0 is 0 for a finite x and NaN
 * otherwise; the sum of them is tested once at the end.  Min and max blend
 * through compare masks (any x86-64; no fmin/fmax semantics needed, since
 * the range is only used when all elements are finite).
 */
#define CBP_DEFINE_SCAN(T, V, VI, SUF)                                                        \
CBP_CLONES                                                                                    \
static int cbp_scan_##SUF(const T *x, ptrdiff_t n, T *lo_out, T *hi_out) {                     \
    enum { W = (int)(sizeof(V) / sizeof(T)) };                                                \
    T lo = n ? x[0] : 0, hi = lo, bad = 0;                                                    \
    ptrdiff_t p = 0;                                                                          \
    if (n >= 2 * W) {                                                                         \
        V l0, l1, h0, h1, z0 = {0}, z1 = {0};                                                 \
        __builtin_memcpy(&l0, x, sizeof(V));                                                  \
        l1 = l0; h0 = l0; h1 = l0;                                                            \
        for (; p + 2 * W <= n; p += 2 * W) {                                                  \
            V a, b;                                                                           \
            __builtin_memcpy(&a, x + p, sizeof(V));                                           \
            __builtin_memcpy(&b, x + p + W, sizeof(V));                                       \
            z0 += a * 0; z1 += b * 0;                                                         \
            VI ma = a < l0, mb = b < l1;                                                      \
            l0 = (V)(((VI)a & ma) | ((VI)l0 & ~ma));                                          \
            l1 = (V)(((VI)b & mb) | ((VI)l1 & ~mb));                                          \
            ma = a > h0; mb = b > h1;                                                         \
            h0 = (V)(((VI)a & ma) | ((VI)h0 & ~ma));                                          \
            h1 = (V)(((VI)b & mb) | ((VI)h1 & ~mb));                                          \
        }                                                                                     \
        for (int q = 0; q < W; q++) {                                                         \
            bad += z0[q] + z1[q];                                                             \
            lo = l0[q] < lo ? l0[q] : lo; lo = l1[q] < lo ? l1[q] : lo;                       \
            hi = h0[q] > hi ? h0[q] : hi; hi = h1[q] > hi ? h1[q] : hi;                       \
        }                                                                                     \
    }                                                                                         \
    for (; p < n; p++) {                                                                      \
        bad += x[p] * 0;                                                                      \
        lo = x[p] < lo ? x[p] : lo;                                                           \
        hi = x[p] > hi ? x[p] : hi;                                                           \
    }                                                                                         \
    *lo_out = lo; *hi_out = hi;                                                               \
    return bad == 0;                                                                          \
}

CBP_DEFINE_SCAN(double, cbp_vd, cbp_vld, d)
CBP_DEFINE_SCAN(float, cbp_vf, cbp_vif, f)

/*
 * The largest |x| of n elements: NaN when one is NaN, else +Inf when one is
 * ±Inf; so "all finite" and the inputs' scale in one pass.  Training checks
 * each mini-batch's rows with it as they come into the cache, where the
 * blends of cbp_scan (x*0 sums, min and max) cost as much as a pass over
 * memory.  Here |x| is the float's bits without the sign, and for those
 * bits integer order is the order of the magnitudes, with +Inf above every
 * finite value and NaN above +Inf: one integer max per element (and, compare,
 * blend), nothing else.
 */
#define CBP_DEFINE_ABSMAX(T, VI, I, SUF)                                                      \
CBP_CLONES                                                                                    \
static T cbp_absmax_##SUF(const T *x, ptrdiff_t n) {                                          \
    enum { W = (int)(sizeof(VI) / sizeof(I)) };                                               \
    const I mag = (I)(~(unsigned long long)0 >> (65 - 8 * (int)sizeof(I)));                   \
    I best = 0, b;                                                                            \
    ptrdiff_t p = 0;                                                                          \
    if (n >= 4 * W) {                                                                         \
        VI m0 = {0}, m1 = {0}, m2 = {0}, m3 = {0};                                            \
        for (; p + 4 * W <= n; p += 4 * W) {                                                  \
            VI a0, a1, a2, a3, g;                                                             \
            __builtin_memcpy(&a0, x + p, sizeof(VI));                                         \
            __builtin_memcpy(&a1, x + p + W, sizeof(VI));                                     \
            __builtin_memcpy(&a2, x + p + 2 * W, sizeof(VI));                                 \
            __builtin_memcpy(&a3, x + p + 3 * W, sizeof(VI));                                 \
            a0 &= mag; a1 &= mag; a2 &= mag; a3 &= mag;                                       \
            g = a0 > m0; m0 = (a0 & g) | (m0 & ~g);                                           \
            g = a1 > m1; m1 = (a1 & g) | (m1 & ~g);                                           \
            g = a2 > m2; m2 = (a2 & g) | (m2 & ~g);                                           \
            g = a3 > m3; m3 = (a3 & g) | (m3 & ~g);                                           \
        }                                                                                     \
        for (int q = 0; q < W; q++) {                                                         \
            best = m0[q] > best ? m0[q] : best; best = m1[q] > best ? m1[q] : best;           \
            best = m2[q] > best ? m2[q] : best; best = m3[q] > best ? m3[q] : best;           \
        }                                                                                     \
    }                                                                                         \
    for (; p < n; p++) {                                                                      \
        __builtin_memcpy(&b, x + p, sizeof(I));                                               \
        b &= mag;                                                                             \
        best = b > best ? b : best;                                                           \
    }                                                                                         \
    T out;                                                                                    \
    __builtin_memcpy(&out, &best, sizeof(T));                                                 \
    return out;                                                                               \
}

CBP_DEFINE_ABSMAX(double, cbp_vld, long long, d)
CBP_DEFINE_ABSMAX(float, cbp_vif, int, f)

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

typedef struct {
    int count;        /* threads arrived in this generation */
    int generation;
    int n;            /* threads in the team */
} cbp_team_barrier;

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
