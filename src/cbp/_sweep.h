/*
 * Narrow layers (at most CBP_NARROW units; the headline's [784, 30, 10] has
 * 30) and the fused per-layer sweep for small mini-batches (issue 20).
 *
 * A layer this narrow is held transposed, k-major: WT[k][o], each row padded
 * with zeros to a whole number of column groups (2 vectors), so that the
 * outputs lie along the vector lanes.  Its products are then outer products
 * with no horizontal sum: a broadcast input value times a row of WT.
 *
 *   forward  Z[m][o] = Σ_k a[m][k] WT[k][o], in the order k = 0, 1, ..., I-1,
 *            from 0, each product rounded, then added; the bias is added
 *            after the last term.
 *   step     WT[k][o] ← β WT[k][o] + Σ_m a[m][k] Dt[m][o], the sum over m in
 *            order from 0, then one multiply-add: the same terms, order and
 *            rounding as cbp_step_* on W's rows.
 *
 * Each output lane is summed on its own, so an example's result depends on
 * neither its place in the mini-batch nor the share of a thread: the
 * unfused forward below (used by teams, inference and gradient()) gives the
 * very same bits as the fused sweep (one thread, plain SGD).
 *
 * The fused sweep: one pass over k, KR = 4 rows of WT at a time and 2
 * vectors of outputs: apply mini-batch t's update to the tile in registers,
 * store it, and while it is still in registers accumulate mini-batch t+1's
 * forward from it.  W is read and written once per mini-batch instead of
 * three times (forward, then the step's read and write), and never packed.
 * (16 vector registers in AVX2: the 8 of the tile, 2 of Dt or Z, 1
 * broadcast.)
 */
#ifndef CBP_SWEEP_H
#define CBP_SWEEP_H

/* Widest layer (units) held transposed; the rule depends on the layer's
 * width alone, never on M or a thread's share. */
#define CBP_NARROW 32

/* Layers at most this wide take the narrow order: 0 (off) unless set through
 * _core.fused_sweep(True).  Off by default: the unfused narrow forward is
 * slower than the 4x3 tiles wherever the fused sweep does not run (momentum,
 * Adam, teams, M > 32: [784, 30, 10] at M = 100 took 1.28x main's time), and
 * the sweep's own gain on an AVX2 core was 1.0-1.13x (issue 20, helper 20's
 * note).  Every path reads the same setting, so results never depend on the
 * thread count; changing it between calls changes the last bits. */
static ptrdiff_t cbp_narrow_limit = 0;

/* The forward's products are rounded before they are summed (a multiply,
 * then an add; no FMA): a product that overflows is then ±Inf, and two of
 * opposite signs give NaN, which the checks refuse, where an FMA would carry
 * the exact product and return a silent Inf (issue 9's hardening test).  On
 * cores with separate add pipes (Zen, Golden Cove) it costs no throughput;
 * the sum's chain is an add's latency.  The step keeps its FMAs, as
 * cbp_step_* has them. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_assoc_barrier)
#define CBP_ROUNDED(x) __builtin_assoc_barrier(x)
#endif
#endif
#ifndef CBP_ROUNDED
#define CBP_ROUNDED(x) (x)
#endif

#define CBP_DEFINE_SWEEP(T, V, W_, SUF, ATTR)                                                 \
                                                                                              \
/* KR rows k.. of WT (wt points at row k, rows OP apart) x one group of 2 vectors:        */  \
/* if M > 0 the step from Dt (rows OP apart) and the rows of mini-batch t, else the tile   */  \
/* as it is; then, if Mn > 0, Z (rows OP apart) += the tile's terms for the next rows     */  \
CBP_INLINE void cbp_sweep_tile_##SUF(const int KR, const T *dt, const T *const *rows,        \
                                     ptrdiff_t M, T *wt, ptrdiff_t OP, V vb,                  \
                                     const T *const *next, ptrdiff_t Mn, T *z, ptrdiff_t k) { \
    V w[4][2];                                                                                \
    if (M > 0) {                                                                              \
        for (int r = 0; r < KR; r++) { w[r][0] = (V){0}; w[r][1] = (V){0}; }                  \
        for (ptrdiff_t m = 0; m < M; m++) {                                                   \
            const T *a = rows[m] + k;                                                         \
            V d0 = *(const V *)(dt + m * OP), d1 = *(const V *)(dt + m * OP + W_);            \
            for (int r = 0; r < KR; r++) {                                                    \
                T x = a[r];                                                                   \
                w[r][0] += x * d0;                                                            \
                w[r][1] += x * d1;                                                            \
            }                                                                                 \
        }                                                                                     \
        for (int r = 0; r < KR; r++)                                                          \
            for (int c = 0; c < 2; c++) {                                                     \
                V *p = (V *)(wt + r * OP + c * W_);                                           \
                V v = vb * *p + w[r][c];                                                      \
                *p = v;                                                                       \
                w[r][c] = v;                                                                  \
            }                                                                                 \
    } else {                                                                                  \
        for (int r = 0; r < KR; r++)                                                          \
            for (int c = 0; c < 2; c++) w[r][c] = *(const V *)(wt + r * OP + c * W_);         \
    }                                                                                         \
    ptrdiff_t m = 0;                                                                          \
    /* two examples at a time: their chains of adds interleave */                            \
    for (; m + 2 <= Mn; m += 2) {                                                             \
        const T *a = next[m] + k, *b = next[m + 1] + k;                                       \
        V *zp = (V *)(z + m * OP), *zq = (V *)(z + (m + 1) * OP);                              \
        V z0 = zp[0], z1 = zp[1], q0 = zq[0], q1 = zq[1];                                     \
        for (int r = 0; r < KR; r++) {                                                        \
            T x = a[r], y = b[r];                                                             \
            z0 += CBP_ROUNDED(x * w[r][0]);                                                   \
            z1 += CBP_ROUNDED(x * w[r][1]);                                                   \
            q0 += CBP_ROUNDED(y * w[r][0]);                                                   \
            q1 += CBP_ROUNDED(y * w[r][1]);                                                   \
        }                                                                                     \
        zp[0] = z0;                                                                           \
        zp[1] = z1;                                                                           \
        zq[0] = q0;                                                                           \
        zq[1] = q1;                                                                           \
    }                                                                                         \
    for (; m < Mn; m++) {                                                                     \
        const T *a = next[m] + k;                                                             \
        V *zp = (V *)(z + m * OP);                                                            \
        V z0 = zp[0], z1 = zp[1];                                                             \
        for (int r = 0; r < KR; r++) {                                                        \
            T x = a[r];                                                                       \
            z0 += CBP_ROUNDED(x * w[r][0]);                                                   \
            z1 += CBP_ROUNDED(x * w[r][1]);                                                   \
        }                                                                                     \
        zp[0] = z0;                                                                           \
        zp[1] = z1;                                                                           \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* Rows k0 <= k < k1 of WT (wt points at row k0): the step of mini-batch t (rows[0..M),    */ \
/* Dt M x OP; M = 0: none) with factor beta, and Z (Mn x OP) += the forward terms of the  */  \
/* next rows (next[0..Mn); Mn = 0: none), each Z lane summed in order of k                 */ \
ATTR                                                                                          \
static void cbp_sweep_##SUF(const T *Dt, const T *const *rows, ptrdiff_t M, T *wt, T beta,   \
                            ptrdiff_t k0, ptrdiff_t k1, ptrdiff_t OP,                         \
                            const T *const *next, ptrdiff_t Mn, T *Z) {                       \
    V vb = {0};                                                                               \
    vb += beta;                                                                               \
    const ptrdiff_t G = 2 * W_;                                                               \
    ptrdiff_t k = k0;                                                                         \
    for (; k + 4 <= k1; k += 4) {                                                             \
        T *w = wt + (k - k0) * OP;                                                            \
        for (ptrdiff_t g = 0; g < OP; g += G)                                                 \
            cbp_sweep_tile_##SUF(4, Dt + g, rows, M, w + g, OP, vb, next, Mn, Z + g, k);      \
    }                                                                                         \
    for (; k < k1; k++) {                                                                     \
        T *w = wt + (k - k0) * OP;                                                            \
        for (ptrdiff_t g = 0; g < OP; g += G)                                                 \
            cbp_sweep_tile_##SUF(1, Dt + g, rows, M, w + g, OP, vb, next, Mn, Z + g, k);      \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* R examples x 2 vectors of Z (rows OP apart) += the terms of panel rows 0..nk-1 (OP    */  \
/* apart) for inputs k0.. of the rows: the sweep's order and rounding, the sums held in   */  \
/* registers over the whole block (the sweep stores them every 4 rows)                    */  \
CBP_INLINE void cbp_narrow_tile_##SUF(const int R, const T *const *rows, ptrdiff_t k0,       \
                                      ptrdiff_t nk, const T *panel, ptrdiff_t OP, T *z) {     \
    V acc[4][2];                                                                              \
    for (int r = 0; r < R; r++) {                                                             \
        acc[r][0] = *(const V *)(z + r * OP);                                                 \
        acc[r][1] = *(const V *)(z + r * OP + W_);                                            \
    }                                                                                         \
    for (ptrdiff_t k = 0; k < nk; k++) {                                                      \
        V u0 = *(const V *)(panel + k * OP), u1 = *(const V *)(panel + k * OP + W_);          \
        for (int r = 0; r < R; r++) {                                                         \
            T x = rows[r][k0 + k];                                                            \
            acc[r][0] += CBP_ROUNDED(x * u0);                                                 \
            acc[r][1] += CBP_ROUNDED(x * u1);                                                 \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++) {                                                             \
        *(V *)(z + r * OP) = acc[r][0];                                                       \
        *(V *)(z + r * OP + W_) = acc[r][1];                                                  \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The forward product of a narrow layer from W's rows, as cbp_forward_*: W transposed     */ \
/* into pack a k-block at a time, then register tiles; MC examples at a time in a padded   */ \
/* copy of their outputs (also in pack).  Same order and rounding as the fused sweep.     */  \
ATTR                                                                                          \
static void cbp_forward_narrow_##SUF(const T *const *A_rows, const T *W__oi, const T *b__o,   \
                                     T *Z__mo, ptrdiff_t M, ptrdiff_t O, ptrdiff_t I,         \
                                     ptrdiff_t ldz, T *pack) {                                \
    /* Half of pack holds the outputs of up to MC examples, half the panel: */                \
    /* W is packed once per call up to MC examples (256 rows of 32 in f64). */                \
    const ptrdiff_t G = 2 * W_;                                                               \
    const ptrdiff_t OP = (O + G - 1) / G * G;                                                 \
    const ptrdiff_t MC = (ptrdiff_t)(CBP_PACK_BYTES / sizeof(T)) / 2 / OP;                    \
    T *zt = pack, *panel = pack + MC * OP;                                                    \
    ptrdiff_t kb = ((ptrdiff_t)(CBP_PACK_BYTES / sizeof(T)) - MC * OP) / OP;                  \
    kb -= kb % 4;                                                                             \
    for (ptrdiff_t m0 = 0; m0 < M; m0 += MC) {                                                \
        ptrdiff_t mn = CBP_MIN(MC, M - m0);                                                   \
        for (ptrdiff_t p = 0; p < mn * OP; p++) zt[p] = 0;                                    \
        for (ptrdiff_t k0 = 0; k0 < I; k0 += kb) {                                            \
            ptrdiff_t nk = CBP_MIN(kb, I - k0);                                               \
            /* row by row of the panel: its writes are contiguous and W's O rows */           \
            /* are read as O streams (column by column, every write missed L1)   */               \
            for (ptrdiff_t k = 0; k < nk; k++) {                                              \
                T *p = panel + k * OP;                                                        \
                const T *w = W__oi + k0 + k;                                                  \
                ptrdiff_t o = 0;                                                              \
                for (; o < O; o++) p[o] = w[o * I];                                           \
                for (; o < OP; o++) p[o] = 0;                                                 \
            }                                                                                 \
            for (ptrdiff_t g = 0; g < OP; g += G)                                             \
                for (ptrdiff_t m = 0; m < mn; m += 4) {                                       \
                    const T *const *ar = A_rows + m0 + m;                                     \
                    const T *pg = panel + g;                                                  \
                    T *zg = zt + m * OP + g;                                                  \
                    switch (CBP_MIN(4, mn - m)) {                                             \
                    case 1: cbp_narrow_tile_##SUF(1, ar, k0, nk, pg, OP, zg); break;          \
                    case 2: cbp_narrow_tile_##SUF(2, ar, k0, nk, pg, OP, zg); break;          \
                    case 3: cbp_narrow_tile_##SUF(3, ar, k0, nk, pg, OP, zg); break;          \
                    default: cbp_narrow_tile_##SUF(4, ar, k0, nk, pg, OP, zg); break;         \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
        for (ptrdiff_t m = 0; m < mn; m++)                                                    \
            for (ptrdiff_t o = 0; o < O; o++)                                                 \
                Z__mo[(m0 + m) * ldz + o] = zt[m * OP + o] + b__o[o];                         \
    }                                                                                         \
}

CBP_DEFINE_SWEEP(double, cbp_vd, 4, d, CBP_CLONES_NARROW)
CBP_DEFINE_SWEEP(float, cbp_vf, 8, f, CBP_CLONES_NARROW)

/* Padded width of a narrow layer of n units in WT (whole groups of 2 vectors). */
static inline ptrdiff_t cbp_narrow_pad_d(ptrdiff_t n) { return (n + 7) / 8 * 8; }
static inline ptrdiff_t cbp_narrow_pad_f(ptrdiff_t n) { return (n + 15) / 16 * 16; }

#endif
