/*
 * The three products of a layer for large mini-batches, blocked like a GEMM
 * (the loop nest of BLIS's Haswell kernels: k-blocks of KC, column blocks of
 * NC packed once and reused by every row block, row blocks of MC kept in L2,
 * MR x NR register tiles):
 *
 *   feedforward  Z__mo = A__mi W__oiᵀ + b__o    rows m, columns o, summed over i
 *   BP2          E__mi = D__mo W__oi             rows m, columns i, summed over o
 *   step         W__oi = β W__oi + Dt__om A__mi  rows o, columns i, summed over m
 *
 * Why: the tiles of _kernels.h read their streamed operand from L2 (the
 * step's 128 KB pack) or, once M x 3 vectors no longer fit (M = 2000), from
 * memory through one pointer per example; batch gradient descent on
 * [784, 4096, 4096, 10] ran at 30% of the FMA peak.  Here the packed panel of
 * B (NR columns x KC) stays in L1 for a whole sweep over an L2-resident
 * block of A's rows, packed MR rows interleaved so that the tile reads one
 * stream of broadcasts (reading the MR rows where they lie: up to 30%
 * slower at M = 64, 120-column blocks).  Kernels alone: 80-88% of the FMA
 * peak on a Zen 3 core at M = 64 to 2000.
 *
 * Order: every output is one chain of FMAs over the summed index in
 * increasing order, started from 0 (forward, BP2) or from β·w (the step: β w
 * rounded, then the terms m = 0, 1, ...), carried across k-blocks through
 * the output itself (stored and reloaded exactly); the forward adds its bias
 * after the chain.  The order depends on the layer's shape and M only, not
 * on the blocking, a thread's share or an example's place.  BP2's order is
 * that of cbp_backward_* in every column (a chain from 0 over o); the
 * forward's is that of the 64-byte cbp_forward_packed_*.
 *
 * The register tile is MR = 6 rows x NR = 2 vectors (12 accumulators, two
 * panel vectors and one broadcast: 15 of AVX2's 16 ymm registers).  Built
 * for x86-64-v4, x86-64-v3 and the SSE2 default, chosen at load time.
 */
#ifndef CBP_GEMM_H
#define CBP_GEMM_H

#define CBP_GEMM_MR 6

/* The forward's panels hold W transposed (k-major, its rows along the lanes).
 * Copied element by element, that transpose took about a third of the
 * forward's time at [784, 1024, 1024, 10], m = 128 (perf annotate: scalar
 * loads 16 rows apart, scalar stores 64 bytes apart); here a square of
 * W_ rows x W_ columns is loaded as W_ vectors and transposed in registers
 * (unpack, then 64-bit pairs, then 128-bit halves).  A copy: no result
 * changes.  __builtin_shuffle is GCC's (4.7 on), __builtin_shufflevector
 * clang's. */
#if defined(__clang__)
#define CBP_SHUF_D(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#define CBP_SHUF_F(a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
    __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
#else
typedef long long cbp_mask_d __attribute__((vector_size(32)));
typedef int cbp_mask_f __attribute__((vector_size(32)));
#define CBP_SHUF_D(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (cbp_mask_d){i0, i1, i2, i3})
#define CBP_SHUF_F(a, b, i0, i1, i2, i3, i4, i5, i6, i7) \
    __builtin_shuffle(a, b, (cbp_mask_f){i0, i1, i2, i3, i4, i5, i6, i7})
#endif

/* dst[k * ldd + r] = src[r * lds + k] for r, k < 4 */
CBP_INLINE void cbp_gemm_transpose_d(const double *src, ptrdiff_t lds, double *dst,
                                     ptrdiff_t ldd) {
    cbp_vd r0, r1, r2, r3;
    __builtin_memcpy(&r0, src, sizeof r0);
    __builtin_memcpy(&r1, src + lds, sizeof r1);
    __builtin_memcpy(&r2, src + 2 * lds, sizeof r2);
    __builtin_memcpy(&r3, src + 3 * lds, sizeof r3);
    cbp_vd t0 = CBP_SHUF_D(r0, r1, 0, 4, 2, 6), t1 = CBP_SHUF_D(r0, r1, 1, 5, 3, 7);
    cbp_vd t2 = CBP_SHUF_D(r2, r3, 0, 4, 2, 6), t3 = CBP_SHUF_D(r2, r3, 1, 5, 3, 7);
    cbp_vd o0 = CBP_SHUF_D(t0, t2, 0, 1, 4, 5), o1 = CBP_SHUF_D(t1, t3, 0, 1, 4, 5);
    cbp_vd o2 = CBP_SHUF_D(t0, t2, 2, 3, 6, 7), o3 = CBP_SHUF_D(t1, t3, 2, 3, 6, 7);
    __builtin_memcpy(dst, &o0, sizeof o0);
    __builtin_memcpy(dst + ldd, &o1, sizeof o1);
    __builtin_memcpy(dst + 2 * ldd, &o2, sizeof o2);
    __builtin_memcpy(dst + 3 * ldd, &o3, sizeof o3);
}

/* dst[k * ldd + r] = src[r * lds + k] for r, k < 8 */
CBP_INLINE void cbp_gemm_transpose_f(const float *src, ptrdiff_t lds, float *dst,
                                     ptrdiff_t ldd) {
    cbp_vf r[8], t[8], u[8];
    for (int q = 0; q < 8; q++) __builtin_memcpy(&r[q], src + q * lds, sizeof r[q]);
    for (int q = 0; q < 8; q += 2) {
        t[q] = CBP_SHUF_F(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[q + 1] = CBP_SHUF_F(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int q = 0; q < 8; q += 4) {
        u[q] = CBP_SHUF_F(t[q], t[q + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 1] = CBP_SHUF_F(t[q], t[q + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[q + 2] = CBP_SHUF_F(t[q + 1], t[q + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[q + 3] = CBP_SHUF_F(t[q + 1], t[q + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int q = 0; q < 4; q++) {
        cbp_vf lo = CBP_SHUF_F(u[q], u[q + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        cbp_vf hi = CBP_SHUF_F(u[q], u[q + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        __builtin_memcpy(dst + q * ldd, &lo, sizeof lo);
        __builtin_memcpy(dst + (q + 4) * ldd, &hi, sizeof hi);
    }
}
#define CBP_GEMM_KC 256
/* Mini-batches from this size on take these kernels: packing B costs one
 * copy per M multiply-adds, which at M = 10 is what made the 64-byte packed
 * forward lose (issue 20).  Not tuned: set below the bench's m = 64 row. */
#define CBP_GEMM_MIN_M 48

/* The next tile's rows of C, asked for while this tile computes: tiles go
 * down a panel MR rows at a time, so consecutive tiles' lines of C lie MR
 * rows (pages) apart, where no hardware prefetcher follows them, and the
 * step's C (the weights, megabytes, in L3) then stalled each tile's first
 * loads.  Only where the tile reads C (init: the step's β w, or a later
 * k-block); the n columns' first and last lines (NR columns are 64 bytes
 * in either dtype, one line or two).  A hint: no result changes.  -DCBP_GEMM_PF=0 builds without it. */
#ifndef CBP_GEMM_PF
#define CBP_GEMM_PF 1
#endif
#define CBP_GEMM_PREFETCH_C(T, C, r0, r1, ldc, j0, n, init)                                   \
    if (CBP_GEMM_PF && (init) && (r0) < (r1))                                                 \
        for (ptrdiff_t q = (r0); q < CBP_MIN((r1), (r0) + CBP_GEMM_MR); q++) {                \
            __builtin_prefetch((C) + q * (ldc) + (j0), 1, 3);                                 \
            __builtin_prefetch((C) + q * (ldc) + (j0) + (n) - 1, 1, 3);                       \
        }

#define CBP_DEFINE_GEMM(T, V, W_, SUF, MC, NC)                                                \
                                                                                              \
/* R rows x C vectors of a tile: c[r] += Σ_k a[r][k] bp[k][.], nk terms; init 0: from 0,  */  \
/* 1: from c, 2: from vb * c; bias (NULL: none) added at the end                          */  \
CBP_INLINE void cbp_gemm_tile_##SUF(const int R, const int C, ptrdiff_t nk,                   \
                                    const T *ap, const T *bp, T *c, ptrdiff_t ldc,            \
                                    int init, V vb, const T *bias) {                          \
    const ptrdiff_t NR = 2 * W_;                                                              \
    V acc[CBP_GEMM_MR][2];                                                                    \
    for (int r = 0; r < R; r++)                                                               \
        for (int j = 0; j < C; j++) {                                                         \
            V v = {0};                                                                        \
            if (init) __builtin_memcpy(&v, c + r * ldc + j * W_, sizeof(V));                  \
            if (init == 2) v = vb * v;                                                        \
            acc[r][j] = v;                                                                    \
        }                                                                                     \
    for (ptrdiff_t k = 0; k < nk; k++) {                                                      \
        V u[2];                                                                               \
        for (int j = 0; j < C; j++) u[j] = *(const V *)(bp + k * NR + j * W_);               \
        for (int r = 0; r < R; r++) {                                                         \
            T x = ap[k * CBP_GEMM_MR + r];                                                    \
            for (int j = 0; j < C; j++) acc[r][j] += x * u[j];                                \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (int j = 0; j < C; j++) {                                                         \
            V v = acc[r][j];                                                                  \
            if (bias) v += *(const V *)(bias + j * W_);                                       \
            __builtin_memcpy(c + r * ldc + j * W_, &v, sizeof(V));                            \
        }                                                                                     \
}                                                                                             \
                                                                                              \
CBP_INLINE void cbp_gemm_tiles_##SUF(ptrdiff_t R, ptrdiff_t C, ptrdiff_t nk,                  \
                                     const T *a, const T *bp, T *c, ptrdiff_t ldc,            \
                                     int init, V vb, const T *bias) {                         \
    switch (R * 4 + C) {                                                                      \
    case 6 * 4 + 2: cbp_gemm_tile_##SUF(6, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 6 * 4 + 1: cbp_gemm_tile_##SUF(6, 1, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 5 * 4 + 2: cbp_gemm_tile_##SUF(5, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 5 * 4 + 1: cbp_gemm_tile_##SUF(5, 1, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 4 * 4 + 2: cbp_gemm_tile_##SUF(4, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 4 * 4 + 1: cbp_gemm_tile_##SUF(4, 1, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 3 * 4 + 2: cbp_gemm_tile_##SUF(3, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 3 * 4 + 1: cbp_gemm_tile_##SUF(3, 1, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 2 * 4 + 2: cbp_gemm_tile_##SUF(2, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 2 * 4 + 1: cbp_gemm_tile_##SUF(2, 1, nk, a, bp, c, ldc, init, vb, bias); break;      \
    case 1 * 4 + 2: cbp_gemm_tile_##SUF(1, 2, nk, a, bp, c, ldc, init, vb, bias); break;      \
    default: cbp_gemm_tile_##SUF(1, 1, nk, a, bp, c, ldc, init, vb, bias); break;             \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The blocked product, for all three kinds (a constant after inlining):                  */  \
/*   kind 0, forward: row r of A is arow[r] (+ k), B[k][j] = W[j * ldb + k], bias at end  */  \
/*   kind 1, BP2:     row r of A is amat + r * lda, B[k][j] = W[k * ldb + j]             */  \
/*   kind 2, step:    row r of A is amat + r * lda, B[k][j] = brows[k][j], first init β  */  \
/* over rows [0, rows), columns [col0, col1) of C (row r, column j at C[r * ldc + j]),    */  \
/* K summed terms; pack[] holds CBP_PACK_ELEMS elements                                    */ \
CBP_INLINE void cbp_gemm_run_##SUF(const int kind, ptrdiff_t rows, ptrdiff_t col0,            \
                                   ptrdiff_t col1, ptrdiff_t K, const T *const *arow,         \
                                   const T *amat, ptrdiff_t lda, const T *B, ptrdiff_t ldb,   \
                                   const T *const *brows, T *C, ptrdiff_t ldc, T beta,        \
                                   const T *bias, T *pack) {                                  \
    const ptrdiff_t NR = 2 * W_, MR = CBP_GEMM_MR;                                            \
    /* 64-byte aligned: the panels' vector loads then never split a line */                   \
    T *bp = (T *)(((size_t)pack + 63) & ~(size_t)63);                                         \
    T *ap = bp + CBP_GEMM_KC * NC, *edge = ap + CBP_GEMM_KC * MC, *bpad = edge + MR * NR;     \
    V vb = {0};                                                                               \
    vb += beta;                                                                               \
    /* k-blocks of equal length (784 = 4 x 196, not 3 x 256 + 16): a short */                 \
    /* last block would load and store every output tile for few terms   */                  \
    ptrdiff_t nkb = (K + CBP_GEMM_KC - 1) / CBP_GEMM_KC, KC = (K + nkb - 1) / nkb;            \
    ptrdiff_t nrb = (rows + MC - 1) / MC, mc = (rows + nrb - 1) / nrb;                        \
    mc = (mc + MR - 1) / MR * MR;                                                             \
    for (ptrdiff_t jc = col0; jc < col1; jc += NC) {                                          \
        ptrdiff_t nc = CBP_MIN(NC, col1 - jc), np = (nc + NR - 1) / NR;                       \
        for (ptrdiff_t pc = 0; pc < K; pc += KC) {                                            \
            ptrdiff_t nk = CBP_MIN(KC, K - pc);                                               \
            int init = pc ? 1 : (kind == 2 ? 2 : 0), last = pc + nk == K;                     \
            for (ptrdiff_t ic = 0; ic < rows; ic += mc) {                                     \
                ptrdiff_t i1 = CBP_MIN(rows, ic + mc);                                        \
                /* A's rows of the block, MR at a time interleaved: the tile then */          \
                /* reads one stream of broadcasts, not MR rows far apart          */          \
                for (ptrdiff_t ir = ic; ir < i1; ir += MR) {                                  \
                    ptrdiff_t R = CBP_MIN(MR, i1 - ir);                                       \
                    T *dst = ap + (ir - ic) * nk;                                             \
                    for (ptrdiff_t r = 0; r < R; r++) {                                       \
                        const T *src = (kind == 0 ? arow[ir + r] : amat + (ir + r) * lda) + pc; \
                        for (ptrdiff_t k = 0; k < nk; k++) dst[k * MR + r] = src[k];          \
                    }                                                                         \
                }                                                                             \
                for (ptrdiff_t p = 0; p < np; p++) {                                          \
                    T *panel = bp + p * KC * NR;                                              \
                    ptrdiff_t j0 = jc + p * NR, nj = CBP_MIN(NR, col1 - j0);                  \
                    /* packed just in time by the first row block, reused by the rest */      \
                    if (ic == 0) {                                                            \
                        if (kind == 0) {                                                      \
                            ptrdiff_t k0 = 0;                                                 \
                            if (nj == NR)                                                     \
                                for (; k0 + W_ <= nk; k0 += W_) {                             \
                                    const T *w = B + j0 * ldb + pc + k0;                      \
                                    cbp_gemm_transpose_##SUF(w, ldb, panel + k0 * NR, NR);    \
                                    cbp_gemm_transpose_##SUF(w + W_ * ldb, ldb,               \
                                                             panel + k0 * NR + W_, NR);       \
                                }                                                             \
                            for (ptrdiff_t j = 0; j < nj; j++) {                              \
                                const T *w = B + (j0 + j) * ldb + pc;                         \
                                for (ptrdiff_t k = k0; k < nk; k++) panel[k * NR + j] = w[k]; \
                            }                                                                 \
                            for (ptrdiff_t j = nj; j < NR; j++)                               \
                                for (ptrdiff_t k = 0; k < nk; k++) panel[k * NR + j] = 0;     \
                        } else {                                                              \
                            for (ptrdiff_t k = 0; k < nk; k++) {                              \
                                const T *src = kind == 1 ? B + (pc + k) * ldb + j0            \
                                                         : brows[pc + k] + j0;                \
                                if (nj == NR)                                                 \
                                    __builtin_memcpy(panel + k * NR, src, NR * sizeof(T));    \
                                else                                                          \
                                    for (ptrdiff_t j = 0; j < NR; j++)                        \
                                        panel[k * NR + j] = j < nj ? src[j] : 0;              \
                            }                                                                 \
                        }                                                                     \
                    }                                                                         \
                    const T *bi = NULL;                                                       \
                    if (kind == 0 && last) {                                                  \
                        for (ptrdiff_t j = 0; j < NR; j++) bpad[j] = j < nj ? bias[j0 + j] : 0; \
                        bi = bpad;                                                            \
                    }                                                                         \
                    ptrdiff_t nv = (nj + W_ - 1) / W_;                                        \
                    for (ptrdiff_t ir = ic; ir < i1; ir += MR) {                              \
                        ptrdiff_t R = CBP_MIN(MR, i1 - ir);                                   \
                        const T *a = ap + (ir - ic) * nk;                                     \
                        T *c = C + ir * ldc + j0;                                             \
                        CBP_GEMM_PREFETCH_C(T, C, ir + MR, i1, ldc, j0, nj, init);            \
                        if (nj == nv * W_) {                                                  \
                            cbp_gemm_tiles_##SUF(R, nv, nk, a, panel, c, ldc, init, vb, bi);  \
                        } else {                                                              \
                            /* a ragged edge: through a copy of whole vectors */              \
                            for (ptrdiff_t r = 0; r < R; r++)                                 \
                                for (ptrdiff_t j = 0; j < nv * W_; j++)                       \
                                    edge[r * NR + j] = init && j < nj ? c[r * ldc + j] : 0;   \
                            cbp_gemm_tiles_##SUF(R, nv, nk, a, panel, edge, NR, init, vb, bi); \
                            for (ptrdiff_t r = 0; r < R; r++)                                 \
                                for (ptrdiff_t j = 0; j < nj; j++)                            \
                                    c[r * ldc + j] = edge[r * NR + j];                        \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* as cbp_forward_*: O weight rows (a thread's share) give O columns of Z                  */ \
CBP_CLONES                                                                                    \
static void cbp_gemm_forward_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,    \
                                   T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,          \
                                   ptrdiff_t ldz, T *pack) {                                  \
    cbp_gemm_run_##SUF(0, M, 0, O, I, A_rows, NULL, 0, W__oi, I, NULL, Z__mo, ldz, 1, b__o,  \
                       pack);                                                                 \
}                                                                                             \
                                                                                              \
/* as cbp_backward_*: columns i0 <= i < i1 of E = D W                                      */ \
CBP_CLONES                                                                                    \
static void cbp_gemm_backward_##SUF(const T *D__mo, const T *W__oi, T *E__mi, ptrdiff_t M,   \
                                    ptrdiff_t O, ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1,    \
                                    T *pack) {                                                \
    cbp_gemm_run_##SUF(1, M, i0, i1, O, NULL, D__mo, O, W__oi, I, NULL, E__mi, I, 1, NULL,   \
                       pack);                                                                 \
}                                                                                             \
                                                                                              \
/* as cbp_step_*: W = β W + Dt A over O weight rows (a thread's share)                     */ \
CBP_CLONES                                                                                    \
static void cbp_gemm_step_##SUF(const T *Dt__om, const T *const *A_rows, T *W__oi, T beta,   \
                                ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, T *pack) {             \
    cbp_gemm_run_##SUF(2, O, 0, I, M, NULL, Dt__om, M, NULL, 0, A_rows, W__oi, I, beta,      \
                       NULL, pack);                                                           \
}

/* KC x NC of packed B (2 MB in float64: L3) is reused by every block of
 * MC x KC rows of A (~144 KB: L2); a smaller NC (the 120 columns that fit
 * the other kernels' 256 KB scratch) re-packed A for every 120 columns and
 * measured 8-30% slower (M = 64 to 2000). */
#define CBP_GEMM_NC 1024
#define CBP_GEMM_MC_D 72
#define CBP_GEMM_MC_F 144
/* Elements of the pack scratch each caller provides, for either dtype: the
 * blocks above, the edge tile, the padded bias and 64 bytes of alignment. */
#define CBP_GEMM_NEED(T, MC)                                                                  \
    (CBP_GEMM_KC * (CBP_GEMM_NC + (MC)) + (CBP_GEMM_MR + 1) * 64 / sizeof(T) + 64 / sizeof(T))
#define CBP_PACK_ELEMS 303104
_Static_assert(CBP_GEMM_NEED(double, CBP_GEMM_MC_D) <= CBP_PACK_ELEMS, "pack scratch");
_Static_assert(CBP_GEMM_NEED(float, CBP_GEMM_MC_F) <= CBP_PACK_ELEMS, "pack scratch");
_Static_assert(CBP_PACK_BYTES / sizeof(float) <= CBP_PACK_ELEMS, "pack scratch");
CBP_DEFINE_GEMM(double, cbp_vd, 4, d, CBP_GEMM_MC_D, CBP_GEMM_NC)
CBP_DEFINE_GEMM(float, cbp_vf, 8, f, CBP_GEMM_MC_F, CBP_GEMM_NC)

#endif
