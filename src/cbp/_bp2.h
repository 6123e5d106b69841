/*
 * BP2 for small mini-batches, E__mi = D__mo W__oi (before ⊙ f'), defined here
 * as a macro and instantiated by _kernels.h beside its other kernels (the
 * same vector types and clones).  Every column of E is one chain of
 * multiply-adds over o from 0, in the tiles, the last columns and the
 * GEMM alike (_gemm.h), so an example's δ depends neither on its mini-batch's
 * size nor on its place in it.
 */
#ifndef CBP_BP2_H
#define CBP_BP2_H

#ifndef CBP_BP2_TALL
/* Layers of more units than this copy blocks of W's rows in BP2 (see
 * cbp_backward_*). */
#define CBP_BP2_TALL 256
#endif

#define CBP_DEFINE_BP2(T, V, W_, SUF, ATTR)                                                   \
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
/* examples 0.. of C vectors of E's columns (e: E's first of them) += D's columns o0.. (d)  */ \
/* times no rows of W's columns (w, rows ldw apart), 4 examples at a time                  */ \
CBP_INLINE void cbp_bwd_strip_##SUF(const int C, const T *d, const T *w, ptrdiff_t ldw, T *e, \
                                    ptrdiff_t M, ptrdiff_t no, ptrdiff_t O, ptrdiff_t I,      \
                                    int first) {                                              \
    for (ptrdiff_t m = 0; m < M; m += 4) {                                                    \
        ptrdiff_t R = CBP_MIN(4, M - m);                                                      \
        const T *dm = d + m * O;                                                              \
        T *em = e + m * I;                                                                    \
        if (R == 4) cbp_bwd_tile_##SUF(4, C, dm, w, ldw, em, no, O, I, first);                \
        else if (R == 3) cbp_bwd_tile_##SUF(3, C, dm, w, ldw, em, no, O, I, first);           \
        else if (R == 2) cbp_bwd_tile_##SUF(2, C, dm, w, ldw, em, no, O, I, first);           \
        else cbp_bwd_tile_##SUF(1, C, dm, w, ldw, em, no, O, I, first);                       \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* E's columns i..i1-1 (fewer than 3 vectors) += D's columns o0.. (d) times rows wo of W */   \
CBP_INLINE void cbp_bwd_last_##SUF(const T *d, const T *wo, T *E__mi, ptrdiff_t M,            \
                                   ptrdiff_t no, ptrdiff_t O, ptrdiff_t I, ptrdiff_t i,       \
                                   ptrdiff_t i1, int first, T *pack) {                        \
    /* 4 examples at a time, so that 4 independent sums hide the FMA latency */               \
    /* (one example at a time was one chain of no FMAs, and the last I % W_  */               \
    /* columns a scalar chain each: 2.3% of the headline's time went to      */               \
    /* [30 -> 10]'s last 6 columns in float32)                               */               \
    for (; i + W_ <= i1; i += W_)                                                             \
        cbp_bwd_strip_##SUF(1, d, wo + i, I, E__mi + i, M, no, O, I, first);                  \
    if (i < i1) {                                                                             \
        /* fewer than W_ columns: W's copied into whole vectors padded with */                \
        /* zeros, each sum in one lane, in the same order (from 0 or E, o   */                \
        /* ascending, one multiply-add a term) as the tiles'                */                \
        ptrdiff_t nc = i1 - i;                                                                \
        for (ptrdiff_t o = 0; o < no; o++)                                                    \
            for (ptrdiff_t c = 0; c < W_; c++)                                                \
                pack[o * W_ + c] = c < nc ? wo[o * I + i + c] : 0;                            \
        for (ptrdiff_t m = 0; m < M; m += 4) {                                                \
            ptrdiff_t R = CBP_MIN(4, M - m);                                                  \
            const T *dm = d + m * O;                                                          \
            T *e = E__mi + m * I + i;                                                         \
            if (R == 4) cbp_bwd_part_##SUF(4, dm, pack, e, nc, no, O, I, first);              \
            else if (R == 3) cbp_bwd_part_##SUF(3, dm, pack, e, nc, no, O, I, first);         \
            else if (R == 2) cbp_bwd_part_##SUF(2, dm, pack, e, nc, no, O, I, first);         \
            else cbp_bwd_part_##SUF(1, dm, pack, e, nc, no, O, I, first);                     \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* cbp_backward_ (below) for layers of more than CBP_BP2_TALL units (network3's 1000).    */  \
/* There a strip of all O rows, copied as below, reads W down its columns, 1.5 lines a     */ \
/* row and a page apart, which the prefetchers follow badly once W is out of the caches,   */ \
/* as in an epoch, where the other layers pass between a layer's forward and its BP2       */ \
/* ([1000 -> 1000], M = 10, float32: 18.7 GFLOP/s with 32 MB swept between calls, 51.6     */ \
/* without).  Here blocks of at least 16 rows are copied row after row, all of a chunk of  */ \
/* columns' strips at once, then each strip is swept from pack.  (For [784 -> 100] and     */ \
/* [2880 -> 100] the strips of all rows, as below, measured 1.06-1.08x this.)  Later       */ \
/* blocks carry on from E, so the sums are the same.                                      */  \
ATTR                                                                                          \
static void cbp_backward_tall_##SUF(const T *D__mo, const T *W__oi, T *E__mi,                 \
                                    ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, ptrdiff_t i0,      \
                                    ptrdiff_t i1, T *pack) {                                  \
    const ptrdiff_t S = 3 * W_;                                                               \
    const ptrdiff_t P = (ptrdiff_t)(CBP_PACK_BYTES / sizeof(T));                              \
    ptrdiff_t send = i0 + (i1 - i0) / S * S;                                                  \
    ptrdiff_t cw = P / 16 / S * S;                                                            \
    cw = cw < S ? S : cw;                                                                     \
    for (ptrdiff_t c0 = i0; c0 < i1; c0 += cw) {                                              \
        ptrdiff_t c1 = CBP_MIN(send, c0 + cw), last = c0 + cw >= i1;                          \
        ptrdiff_t ns = (c1 - c0) / S;                                                         \
        ptrdiff_t ob = ns > 0 ? P / (ns * S) : O;                                             \
        if ((size_t)(M * ob) * sizeof(T) > CBP_PANEL_BYTES)                                   \
            ob = CBP_PANEL_BYTES / (ptrdiff_t)(M * sizeof(T));                                \
        if (last && (size_t)(ob * W_) * sizeof(T) > CBP_PACK_BYTES)                           \
            ob = P / W_;                                                                      \
        ob = ob < 1 ? 1 : ob;                                                                 \
        ptrdiff_t nb = (O + ob - 1) / ob;                                                     \
        ob = (O + nb - 1) / nb;                                                               \
        for (ptrdiff_t o0 = 0; o0 < O; o0 += ob) {                                            \
            ptrdiff_t no = CBP_MIN(ob, O - o0);                                               \
            const T *wo = W__oi + o0 * I;                                                     \
            for (ptrdiff_t o = 0; o < no; o++)                                                \
                for (ptrdiff_t s = 0; s < ns; s++)                                            \
                    for (ptrdiff_t c = 0; c < S; c++)                                         \
                        pack[(s * no + o) * S + c] = wo[o * I + c0 + s * S + c];              \
            for (ptrdiff_t s = 0; s < ns; s++)                                                \
                cbp_bwd_strip_##SUF(3, D__mo + o0, pack + s * no * S, S, E__mi + c0 + s * S, M, \
                                    no, O, I, o0 == 0);                                       \
            if (last)                                                                         \
                cbp_bwd_last_##SUF(D__mo + o0, wo, E__mi, M, no, O, I, send, i1, o0 == 0, pack); \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* columns i0 <= i < i1 of E (a thread's share; i0 a multiple of 3 vectors, so a share  */  \
/* is cut into the same strips as the whole); pack[] holds >= CBP_PACK_BYTES / sizeof(T)  */  \
/* elements of scratch                                                                     */ \
ATTR                                                                                          \
static void cbp_backward_##SUF(const T *D__mo, const T *W__oi, T *E__mi,                      \
                               ptrdiff_t M, ptrdiff_t O, ptrdiff_t I, ptrdiff_t i0,           \
                               ptrdiff_t i1, T *pack) {                                       \
    if (O > CBP_BP2_TALL) {                                                                   \
        cbp_backward_tall_##SUF(D__mo, W__oi, E__mi, M, O, I, i0, i1, pack);                  \
        return;                                                                               \
    }                                                                                         \
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
}

/*
 * BP2 and the step of one layer in one pass over W, for mini-batches of at
 * most 12 (network3's team, 64-byte build): a column strip of W (one vector)
 * is read once, row after row; its δ W terms go into E's M vectors of the
 * strip, and the row is stepped at once (w <- β w + Σ_m Dt[o, m] a[m]) from
 * the inputs' M vectors, held in registers with E's.  Separately, BP2 read W
 * and the step read and wrote it again: on the dropout net's [640 -> 1000]
 * and [1000 -> 1000] the two took 28% of a one-core epoch at half the FMA
 * peak.  Every E element is the chain over o from 0 of cbp_backward_*,
 * every weight the step's chain over m then β w: the same bits.  Columns
 * i0..i1-1 (a thread's share; any cut).
 */
#define CBP_BS_MAX_M 12
#ifndef CBP_BS_AHEAD
#define CBP_BS_AHEAD 16
#endif
#define CBP_DEFINE_BP2_STEP(T, V, W_, SUF, ATTR)                                              \
/* rows o..o+RR-1 (RR <= 2) of the strip of nc <= W_ columns at wp: their δ W terms into e */ \
/* (row o's first: each e[m] stays one chain over o), then each row stepped; two rows at   */ \
/* a time, so that two chains over m overlap (one row's was 11 FMAs deep)                  */ \
CBP_INLINE void cbp_bs_rows_##SUF(const int MM, const int RR, const int full, const T *D,     \
                                  const T *Dt, const V *a, V *e, T *wp, V vb, ptrdiff_t o,    \
                                  ptrdiff_t O, ptrdiff_t I, ptrdiff_t nc) {                   \
    V w[2], g[2];                                                                             \
    for (int r = 0; r < RR; r++) {                                                            \
        T *p = wp + r * I;                                                                    \
        /* the rows lie I apart, a line or two each: asked for CBP_BS_AHEAD rows */          \
        /* ahead (unasked, 72% of the pass waited for them)                      */          \
        if (o + r + CBP_BS_AHEAD < O) {                                                       \
            __builtin_prefetch(p + CBP_BS_AHEAD * I, 1, 3);                                   \
            __builtin_prefetch(p + CBP_BS_AHEAD * I + W_ - 1, 1, 3);                          \
        }                                                                                     \
        w[r] = (V){0};                                                                        \
        if (full)                                                                             \
            w[r] = *(const V *)p;                                                             \
        else                                                                                  \
            for (ptrdiff_t c = 0; c < nc; c++) w[r][c] = p[c];                                \
        g[r] = (V){0};                                                                        \
    }                                                                                         \
    for (int r = 0; r < RR; r++)                                                              \
        for (int m = 0; m < MM; m++) {                                                        \
            T s = D[m * O + o + r];                                                           \
            e[m] += s * w[r];                                                                 \
        }                                                                                     \
    for (int m = 0; m < MM; m++)                                                              \
        for (int r = 0; r < RR; r++) {                                                        \
            T s = Dt[(o + r) * MM + m];                                                       \
            g[r] += s * a[m];                                                                 \
        }                                                                                     \
    for (int r = 0; r < RR; r++) {                                                            \
        T *p = wp + r * I;                                                                    \
        V x = vb * w[r] + g[r];                                                               \
        if (full)                                                                             \
            *(V *)p = x;                                                                      \
        else                                                                                  \
            for (ptrdiff_t c = 0; c < nc; c++) p[c] = x[c];                                   \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* the strip of nc <= W_ columns at i; lanes from nc on are neither read nor written */      \
CBP_INLINE void cbp_bs_strip_##SUF(const int MM, const int full, const T *D, const T *Dt,     \
                                   const T *const *A, T *W, T *E, V vb, ptrdiff_t O,          \
                                   ptrdiff_t I, ptrdiff_t i, ptrdiff_t nc) {                  \
    V e[CBP_BS_MAX_M], a[CBP_BS_MAX_M];                                                       \
    for (int m = 0; m < MM; m++) {                                                            \
        e[m] = (V){0};                                                                        \
        if (full) {                                                                           \
            a[m] = *(const V *)(A[m] + i);                                                    \
        } else {                                                                              \
            a[m] = (V){0};                                                                    \
            for (ptrdiff_t c = 0; c < nc; c++) a[m][c] = A[m][i + c];                         \
        }                                                                                     \
    }                                                                                         \
    ptrdiff_t o = 0;                                                                          \
    for (; o + 2 <= O; o += 2)                                                                \
        cbp_bs_rows_##SUF(MM, 2, full, D, Dt, a, e, W + o * I + i, vb, o, O, I, nc);          \
    if (o < O)                                                                                \
        cbp_bs_rows_##SUF(MM, 1, full, D, Dt, a, e, W + o * I + i, vb, o, O, I, nc);          \
    for (int m = 0; m < MM; m++) {                                                            \
        if (full)                                                                             \
            *(V *)(E + m * I + i) = e[m];                                                     \
        else                                                                                  \
            for (ptrdiff_t c = 0; c < nc; c++) E[m * I + i + c] = e[m][c];                    \
    }                                                                                         \
}                                                                                             \
                                                                                              \
CBP_INLINE void cbp_bs_strips_##SUF(const int MM, const T *D, const T *Dt,                    \
                                    const T *const *A, T *W, T *E, V vb, ptrdiff_t O,         \
                                    ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1) {                \
    ptrdiff_t i = i0;                                                                         \
    for (; i + W_ <= i1; i += W_)                                                             \
        cbp_bs_strip_##SUF(MM, 1, D, Dt, A, W, E, vb, O, I, i, W_);                           \
    if (i < i1)                                                                               \
        cbp_bs_strip_##SUF(MM, 0, D, Dt, A, W, E, vb, O, I, i, i1 - i);                       \
}                                                                                             \
                                                                                              \
/* E__mi = D__mo W__oi and W__oi <- β W__oi + Dt__om A on columns i0..i1-1, M <= 12;     */   \
/* Dt__om = α δᵀ, A_rows[m] example m's inputs                                             */ \
ATTR                                                                                          \
static void cbp_bp2_step_##SUF(const T *D__mo, const T *Dt__om, const T *const *A_rows,      \
                               T *W__oi, T *E__mi, T beta, ptrdiff_t M, ptrdiff_t O,          \
                               ptrdiff_t I, ptrdiff_t i0, ptrdiff_t i1) {                     \
    V vb = {0};                                                                               \
    vb += beta;                                                                               \
    switch (M) {                                                                              \
    case 1: cbp_bs_strips_##SUF(1, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 2: cbp_bs_strips_##SUF(2, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 3: cbp_bs_strips_##SUF(3, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 4: cbp_bs_strips_##SUF(4, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 5: cbp_bs_strips_##SUF(5, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 6: cbp_bs_strips_##SUF(6, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 7: cbp_bs_strips_##SUF(7, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 8: cbp_bs_strips_##SUF(8, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 9: cbp_bs_strips_##SUF(9, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 10: cbp_bs_strips_##SUF(10, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    case 11: cbp_bs_strips_##SUF(11, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    default: cbp_bs_strips_##SUF(12, D__mo, Dt__om, A_rows, W__oi, E__mi, vb, O, I, i0, i1); break; \
    }                                                                                         \
}

#endif
