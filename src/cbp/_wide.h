/*
 * The 64-byte (AVX-512) build's packed forward product, defined here as a
 * macro and instantiated by _kernels.h beside its other 64-byte kernels.
 */
#ifndef CBP_WIDE_H
#define CBP_WIDE_H

#if CBP_WIDE   /* GCC's __builtin_shuffle, as the 64-byte build itself */
/* Integer vectors of the 64-byte build's lanes, for the transpose's shuffles. */
typedef int cbp_vi64 __attribute__((vector_size(64)));
typedef long long cbp_vl64 __attribute__((vector_size(64)));

/*
 * The forward product for the 64-byte build, as outer products: a panel of
 * up to S = 3 vectors of W's rows, transposed (k-major) and packed
 * contiguous, is swept by tiles of up to 6 examples; each value of an input
 * row is broadcast and multiplies the panel's row of CV <= 3 vectors into
 * 6 x CV accumulators.  No horizontal sum: each output is summed over k in
 * order, one FMA per term, the same in full and edge tiles and in every
 * thread's share.  Long rows are cut into k-blocks whose panel fits the
 * packing scratch; later blocks carry on from Z (stored and reloaded
 * exactly), so the order holds.
 *
 * A layer's last panel is as many vectors wide as its last outputs need
 * (CV = 1 for [784 -> 100]'s last 4 outputs, where a full panel summed 48
 * columns for 4 and padded 44 of them with zeros, a strided store each:
 * a third of the forward's time on that layer at m = 10).  The panel is
 * packed by W_ x W_ blocks transposed in registers (W_ rows loaded as
 * vectors, log2(W_) rounds of two-vector shuffles); element by element, the
 * packing took as long as the products at m = 10.  Neither changes a sum.
 */
/* Rows r[0..W-1] of a W x W block become its columns: round h swaps the
 * off-diagonal h x h blocks of each 2h x 2h block (lane j of the new row a
 * is lane j of row a, or lane j - h of row a + h, as j & h; of row a + h,
 * lane j + h of row a or lane j of row a + h).  The shuffles' indices are
 * written out so that each round is two-source permutes of constants. */
#define CBP_TR_LO(j, h, W) (((j) & (h)) ? (W) + (j) - (h) : (j))
#define CBP_TR_HI(j, h, W) (((j) & (h)) ? (W) + (j) : (j) + (h))
#define CBP_TR_ROUND(r, W, h, lo, hi)                                                         \
    for (int a = 0; a < (W); a++)                                                             \
        if (!(a & (h))) {                                                                     \
            __typeof__(r[0]) x_ = r[a], y_ = r[a + (h)];                                      \
            r[a] = __builtin_shuffle(x_, y_, lo);                                             \
            r[a + (h)] = __builtin_shuffle(x_, y_, hi);                                       \
        }
#define CBP_TR16(F, h) (cbp_vi64){F(0, h, 16), F(1, h, 16), F(2, h, 16), F(3, h, 16),           \
    F(4, h, 16), F(5, h, 16), F(6, h, 16), F(7, h, 16), F(8, h, 16), F(9, h, 16),              \
    F(10, h, 16), F(11, h, 16), F(12, h, 16), F(13, h, 16), F(14, h, 16), F(15, h, 16)}
#define CBP_TR8(F, h) (cbp_vl64){F(0, h, 8), F(1, h, 8), F(2, h, 8), F(3, h, 8),                \
    F(4, h, 8), F(5, h, 8), F(6, h, 8), F(7, h, 8)}

CBP_INLINE void cbp_transpose_f(cbp_vf64 *r) {
    CBP_TR_ROUND(r, 16, 8, CBP_TR16(CBP_TR_LO, 8), CBP_TR16(CBP_TR_HI, 8))
    CBP_TR_ROUND(r, 16, 4, CBP_TR16(CBP_TR_LO, 4), CBP_TR16(CBP_TR_HI, 4))
    CBP_TR_ROUND(r, 16, 2, CBP_TR16(CBP_TR_LO, 2), CBP_TR16(CBP_TR_HI, 2))
    CBP_TR_ROUND(r, 16, 1, CBP_TR16(CBP_TR_LO, 1), CBP_TR16(CBP_TR_HI, 1))
}

CBP_INLINE void cbp_transpose_d(cbp_vd64 *r) {
    CBP_TR_ROUND(r, 8, 4, CBP_TR8(CBP_TR_LO, 4), CBP_TR8(CBP_TR_HI, 4))
    CBP_TR_ROUND(r, 8, 2, CBP_TR8(CBP_TR_LO, 2), CBP_TR8(CBP_TR_HI, 2))
    CBP_TR_ROUND(r, 8, 1, CBP_TR8(CBP_TR_LO, 1), CBP_TR8(CBP_TR_HI, 1))
}
#endif

#define CBP_DEFINE_WIDE_FORWARD(T, V, W_, SUF)                                            \
/* the panel of W's rows o0..o0+no-1 (no <= CV W_), columns k0..k0+nk-1, k-major with rows  */ \
/* SP = CV W_ apart, outputs from no on zero                                                 */ \
CBP_INLINE void cbp_fwdp_pack_##SUF(const int CV, const T *W__oi, ptrdiff_t I, ptrdiff_t o0,  \
                                    ptrdiff_t no, ptrdiff_t k0, ptrdiff_t nk, T *pack) {      \
    const ptrdiff_t SP = CV * W_;                                                             \
    ptrdiff_t kv = nk - nk % W_;                                                              \
    for (int v = 0; v < CV; v++) {                                                            \
        ptrdiff_t c0 = v * W_;                                                                \
        for (ptrdiff_t k = 0; k < kv; k += W_) {                                              \
            V r[W_];                                                                          \
            for (int j = 0; j < W_; j++)                                                      \
                r[j] = c0 + j < no ? *(const V *)(W__oi + (o0 + c0 + j) * I + k0 + k)         \
                                   : (V){0};                                                  \
            cbp_transpose_##SUF(r);                                                           \
            for (int j = 0; j < W_; j++) *(V *)(pack + (k + j) * SP + c0) = r[j];             \
        }                                                                                     \
    }                                                                                         \
    for (ptrdiff_t k = kv; k < nk; k++)                                                       \
        for (ptrdiff_t c = 0; c < SP; c++)                                                    \
            pack[k * SP + c] = c < no ? W__oi[(o0 + c) * I + k0 + k] : 0;                     \
}                                                                                             \
                                                                                              \
CBP_INLINE void cbp_fwdp_tile_##SUF(const int R, const int CV, const T *const *ar,            \
                                    ptrdiff_t k0, ptrdiff_t nk, const T *panel,               \
                                    const T *bias, T *z, ptrdiff_t ldz, int first, int last) { \
    const ptrdiff_t SP = CV * W_;                                                             \
    V acc[6][3];                                                                              \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < CV; c++)                                                          \
            acc[r][c] = first ? (V){0} : *(const V *)(z + r * ldz + c * W_);                  \
    for (ptrdiff_t k = 0; k < nk; k++) {                                                      \
        V u[3];                                                                               \
        for (int c = 0; c < CV; c++) u[c] = *(const V *)(panel + k * SP + c * W_);            \
        for (int r = 0; r < R; r++) {                                                         \
            T x = ar[r][k0 + k];                                                              \
            for (int c = 0; c < CV; c++) acc[r][c] += x * u[c];                               \
        }                                                                                     \
    }                                                                                         \
    for (int r = 0; r < R; r++)                                                               \
        for (int c = 0; c < CV; c++) {                                                        \
            V v = acc[r][c];                                                                  \
            if (last) v += *(const V *)(bias + c * W_);                                       \
            *(V *)(z + r * ldz + c * W_) = v;                                                 \
        }                                                                                     \
}                                                                                             \
                                                                                              \
CBP_INLINE void cbp_fwdp_rows_##SUF(ptrdiff_t R, int CV, const T *const *ar, ptrdiff_t k0,    \
                                    ptrdiff_t nk, const T *panel, const T *bias, T *z,        \
                                    ptrdiff_t ldz, int first, int last) {                     \
    switch (R * 4 + CV) {                                                                     \
    case 1 * 4 + 1: cbp_fwdp_tile_##SUF(1, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 2 * 4 + 1: cbp_fwdp_tile_##SUF(2, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 3 * 4 + 1: cbp_fwdp_tile_##SUF(3, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 4 * 4 + 1: cbp_fwdp_tile_##SUF(4, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 5 * 4 + 1: cbp_fwdp_tile_##SUF(5, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 6 * 4 + 1: cbp_fwdp_tile_##SUF(6, 1, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 1 * 4 + 2: cbp_fwdp_tile_##SUF(1, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 2 * 4 + 2: cbp_fwdp_tile_##SUF(2, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 3 * 4 + 2: cbp_fwdp_tile_##SUF(3, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 4 * 4 + 2: cbp_fwdp_tile_##SUF(4, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 5 * 4 + 2: cbp_fwdp_tile_##SUF(5, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 6 * 4 + 2: cbp_fwdp_tile_##SUF(6, 2, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 1 * 4 + 3: cbp_fwdp_tile_##SUF(1, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 2 * 4 + 3: cbp_fwdp_tile_##SUF(2, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 3 * 4 + 3: cbp_fwdp_tile_##SUF(3, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 4 * 4 + 3: cbp_fwdp_tile_##SUF(4, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    case 5 * 4 + 3: cbp_fwdp_tile_##SUF(5, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break; \
    default: cbp_fwdp_tile_##SUF(6, 3, ar, k0, nk, panel, bias, z, ldz, first, last); break;  \
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
    /* k-blocks of the panel sized for L1, where the sweep reads it; whole     */             \
    /* blocks of the transpose                                                 */             \
    ptrdiff_t kb = CBP_MIN(((ptrdiff_t)(CBP_PACK_BYTES / sizeof(T)) - 7 * S) / S,              \
                           (ptrdiff_t)(CBP_PANEL_L1 / (S * sizeof(T))));                      \
    kb = kb < W_ ? kb : kb - kb % W_;                                                         \
    T *bias = pack + kb * S, *edge = bias + S;                                                \
    for (ptrdiff_t o0 = 0; o0 < O; o0 += S) {                                                 \
        ptrdiff_t no = CBP_MIN(S, O - o0);                                                    \
        int CV = (int)((no + W_ - 1) / W_);                                                   \
        ptrdiff_t SP = CV * W_;                                                               \
        for (ptrdiff_t c = 0; c < SP; c++) bias[c] = c < no ? b__o[o0 + c] : 0;               \
        for (ptrdiff_t k0 = 0; k0 < I; k0 += kb) {                                            \
            ptrdiff_t nk = CBP_MIN(kb, I - k0);                                               \
            if (CV == 3) cbp_fwdp_pack_##SUF(3, W__oi, I, o0, no, k0, nk, pack);              \
            else if (CV == 2) cbp_fwdp_pack_##SUF(2, W__oi, I, o0, no, k0, nk, pack);         \
            else cbp_fwdp_pack_##SUF(1, W__oi, I, o0, no, k0, nk, pack);                      \
            int first = k0 == 0, last = k0 + nk == I;                                         \
            for (ptrdiff_t m = 0; m < M; m += 6) {                                            \
                ptrdiff_t R = CBP_MIN(6, M - m);                                              \
                T *z = Z__mo + m * ldz + o0;                                                  \
                if (no == SP) {                                                               \
                    cbp_fwdp_rows_##SUF(R, CV, A_rows + m, k0, nk, pack, bias, z, ldz, first, \
                                        last);                                                \
                } else {                                                                      \
                    /* an edge block: through a full-width copy of its outputs */             \
                    for (ptrdiff_t r = 0; r < R; r++)                                         \
                        for (ptrdiff_t c = 0; c < SP; c++)                                    \
                            edge[r * SP + c] = (!first && c < no) ? z[r * ldz + c] : 0;       \
                    cbp_fwdp_rows_##SUF(R, CV, A_rows + m, k0, nk, pack, bias, edge, SP,      \
                                        first, last);                                         \
                    for (ptrdiff_t r = 0; r < R; r++)                                         \
                        for (ptrdiff_t c = 0; c < no; c++) z[r * ldz + c] = edge[r * SP + c]; \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}

#endif
