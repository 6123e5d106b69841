/*
 * The 64-byte (AVX-512) build's packed forward product, defined here as a
 * macro and instantiated by _kernels.h beside its other 64-byte kernels.
 */
#ifndef CBP_WIDE_H
#define CBP_WIDE_H

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

#endif
