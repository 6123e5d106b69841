# cbp.network3's team phases: each layer's work in a mini-batch, cut into
# the share of one thread of the team (_team3.pxi runs them between its
# barriers); included by _team3.pxi after the Layer3 layout.
#
# forward:  conv, by examples (_l3_conv_forward); dense, by units
#           (_l3_dense_forward), an output layer of one share by examples
#           (_l3_dense_rows_forward); the producer of a dropout layer's
#           input draws its mask on its share (_l3_mask_rows);
# errors:   dense BP2 by columns, with the step of those columns when fused
#           (_l3_dense_errors), or with the step by halves of the weight
#           rows (_l3_dense_halves); conv routing, patches and BP2 by
#           examples (_l3_conv_errors), and with patches, on two threads,
#           each half's sum of the filters' gradient (_l3_conv_half);
# steps:    dense by weight rows (_l3_dense_step), conv by filters
#           (_l3_conv_step).


cdef inline void _l3_shifted(Layer3* L, floating* xpad, const floating** rp) noexcept nogil:
    memset(xpad + L.N, 0, L.K * sizeof(floating))
    _shifted_rows(xpad, rp, L.C, L.H, L.Wd, L.K)


cdef void _l3_mask_rows(Layer3* L, const floating* X, Py_ssize_t lo, Py_ssize_t hi,
                        Py_ssize_t c0, Py_ssize_t c1, uint64_t seed, uint64_t counter) noexcept nogil:
    # Dropout of L's input, rows lo..hi-1 and columns c0..c1-1: the draws of
    # elements m·n_in + i (so any cut of the matrix draws the same masks);
    # the input, the mask and the masked input have rows ld_x apart.
    cdef Py_ssize_t m, I = L.n_in, ld = L.ld_x
    cdef floating* mask = <floating*>L.mask
    cdef floating* Xm = <floating*>L.Xm
    if c1 <= c0:
        return
    for m in range(lo, hi):
        if floating is double:
            cbp3_dropout_d(X + m * ld + c0, mask + m * ld + c0, Xm + m * ld + c0, c1 - c0, seed,
                           counter + L.draw0 + <uint64_t>(m * I + c0), L.keep_below)
        else:
            cbp3_dropout_f(X + m * ld + c0, mask + m * ld + c0, Xm + m * ld + c0, c1 - c0, seed,
                           counter + L.draw0 + <uint64_t>(m * I + c0), L.keep_below)


cdef void _l3_conv_forward(Layer3* L, const floating* X, Py_ssize_t M, floating* pack,
                           int tid, int nt) noexcept nogil:
    # conv_pool_forward's work on examples lo..hi-1; and a share of the
    # filters' transpose that this mini-batch's BP2 reads (the filters do not
    # change before the step).
    cdef Py_ssize_t lo = _c3_cut(M, 1, tid, nt), hi = _c3_cut(M, 1, tid + 1, nt), m, k, f
    cdef floating* xpad = <floating*>L.xpad + tid * L.ld_xpad
    cdef const floating** rp = <const floating**>(<Py_ssize_t*>L.rows + tid * L.ld_rows)
    cdef const floating* W = <const floating*>L.W
    cdef floating* WfT = <floating*>L.WfT
    cdef floating* Z = <floating*>L.Z
    cdef floating* A = <floating*>L.A
    cdef floating* Xk = <floating*>L.Et + tid * L.ld_Et
    if hi > lo and L.patches:
        # Many taps (the book's second layer): z at the kept positions only,
        # R = Oy·Ox of each map, from a copy of the input's rows there (Et's
        # room: BP2 uses it later); the full width summed Wd − Ox cropped
        # columns too, a third of the second layer's 12.  Same sums: the step
        # kernel sums each column alike whatever their number.  z (and δz in
        # _l3_conv_errors) are then held R wide.
        for k in range(L.CKK):
            rp[k] = Xk + k * L.R
        for m in range(lo, hi):
            if floating is double:
                cbp3_kept_rows_d(X + m * L.N, Xk, L.C, L.H, L.Wd, L.K)
            else:
                cbp3_kept_rows_f(X + m * L.N, Xk, L.C, L.H, L.Wd, L.K)
            _step_product(W, rp, Z + m * L.F * L.Pf, L.CKK, L.F, L.R, pack)
            max_pool(Z + m * L.F * L.Pf, <const floating*>L.b, A + m * L.n_out, xpad, L.F, L.Oy,
                     L.Ox, L.Ox, L.ph, L.pw, L.act)
    elif hi > lo:
        _l3_shifted(L, xpad, rp)
        for m in range(lo, hi):
            memcpy(xpad, X + m * L.N, L.N * sizeof(floating))
            _step_product(W, rp, Z + m * L.F * L.Pf, L.CKK, L.F, L.Pf, pack)
            max_pool(Z + m * L.F * L.Pf, <const floating*>L.b, A + m * L.n_out, xpad, L.F, L.Oy,
                     L.Ox, L.Wd, L.ph, L.pw, L.act)
    if L.need_input:
        for k in range(_c3_cut(L.CKK, 1, tid, nt), _c3_cut(L.CKK, 1, tid + 1, nt)):
            for f in range(L.F):
                WfT[k * L.F + f] = W[f * L.CKK + k]


cdef void _l3_dense_forward(Layer3* L, const floating* X, Py_ssize_t M, const floating** rows,
                            floating* pack, Py_ssize_t* lo, Py_ssize_t* hi, int tid,
                            int nt, Py_ssize_t unit=UNIT_ROWS) noexcept nogil:
    # z = a wᵀ + b (a masked in training) for units lo..hi-1, then f (softmax:
    # later, by examples); z's rows ld_z apart.
    cdef Py_ssize_t O = L.n_out, I = L.n_in, ldz = L.ld_z, m
    cdef floating* Z = <floating*>L.Z
    cdef const floating* W = <const floating*>L.W
    _share(O, unit, tid, nt, lo, hi)
    if hi[0] > lo[0]:
        _row_pointers(<const floating*>L.Xm if L.masked else X, M, L.ld_x, rows)
        _gemm_forward(rows, W + lo[0] * I, <const floating*>L.b + lo[0], Z + lo[0], M,
                      hi[0] - lo[0], I, ldz, pack)
        if L.act != SOFTMAX:
            for m in range(M):
                activate(Z + m * ldz + lo[0], Z + m * ldz + lo[0], 1, hi[0] - lo[0], L.act)


cdef void _l3_dense_rows_forward(Layer3* L, const floating* X, Py_ssize_t lo, Py_ssize_t hi,
                                 const floating** rows, floating* pack) noexcept nogil:
    # z = a wᵀ + b for examples lo..hi-1 and every unit, then f (softmax:
    # later); each example's z is the same bits whatever the examples beside it.
    cdef Py_ssize_t m, O = L.n_out, ldz = L.ld_z
    cdef floating* Z = <floating*>L.Z
    _row_pointers((<const floating*>L.Xm if L.masked else X) + lo * L.ld_x, hi - lo, L.ld_x, rows)
    _gemm_forward(rows, <const floating*>L.W, <const floating*>L.b, Z + lo * ldz, hi - lo, O,
                  L.n_in, ldz, pack)
    if L.act != SOFTMAX:
        for m in range(lo, hi):
            activate(Z + m * ldz, Z + m * ldz, 1, O, L.act)


cdef void _l3_dense_errors(Layer3* L, const floating* D, const floating* X, Py_ssize_t M,
                           floating alpha, floating beta, const floating** rows, floating* pack,
                           int tid, int nt) noexcept nogil:
    # dense_backward's work on columns lo..hi-1: δ below = (δ W) ⊙ mask ⊙ f'(a below);
    # fused, also dense_step's on those columns of W (and on biases lo..hi-1 of
    # a share of the rows), from α δᵀ in this thread's pack.
    cdef Py_ssize_t lo, hi, m, i, o, I = L.n_in, O = L.n_out, ld = L.ld_x
    cdef floating* E = <floating*>L.E
    cdef floating* b = <floating*>L.b
    cdef const floating* mask = <const floating*>L.mask
    cdef floating v, sb
    if L.fused:
        # the biases as gradient_step steps them (Σ over m in order of α δ)
        _share(O, UNIT_ROWS, tid, nt, &lo, &hi)
        for o in range(lo, hi):
            sb = 0
            for m in range(M):
                v = alpha * D[m * O + o]
                sb = sb + v
            b[o] = b[o] + sb
    _share(I, UNIT_COLS, tid, nt, &lo, &hi)
    if hi <= lo:
        return
    if L.fused:
        for o in range(O):
            for m in range(M):
                pack[o * M + m] = alpha * D[m * O + o]
        _row_pointers(<const floating*>L.Xm if L.masked else X, M, ld, rows)
        if floating is double:
            cbp_bp2_step_d(D, pack, rows, <double*>L.W, E, beta, M, O, I, lo, hi)
        else:
            cbp_bp2_step_f(D, pack, rows, <float*>L.W, E, beta, M, O, I, lo, hi)
    elif floating is double:
        cbp_backward_d(D, <const double*>L.W, E, M, O, I, lo, hi, pack)
    else:
        cbp_backward_f(D, <const float*>L.W, E, M, O, I, lo, hi, pack)
    for m in range(M):
        # E's rows n_in apart, the input's and the mask's ld_x
        if L.masked:
            for i in range(lo, hi):
                E[m * I + i] = E[m * I + i] * mask[m * ld + i]
        if L.act_below != LINEAR:
            for i in range(lo, hi):
                E[m * I + i] = E[m * I + i] * _derivative(L.act_below, X[m * ld + i])


cdef void _l3_finish(const Layer3* U, const floating* Xu, Py_ssize_t m0, Py_ssize_t m1,
                     Py_ssize_t c0, Py_ssize_t c1, floating* out, Py_ssize_t ld_out) noexcept nogil:
    # δ of the input of U, a layer by halves (U.ws), on rows m0..m1-1 and
    # columns c0..c1-1: (E + E2) ⊙ mask ⊙ f'(a below), each product in the
    # order _l3_dense_errors takes them after a whole BP2; into out (row m0's
    # column c0 first, rows ld_out apart), which may be U.E itself.  Xu is
    # U's input, rows U.ld_x apart.
    cdef Py_ssize_t m, i, I = U.n_in, ld = U.ld_x
    cdef const floating* E = <const floating*>U.E
    cdef const floating* E2 = <const floating*>U.E2
    cdef const floating* mask = <const floating*>U.mask
    cdef floating v
    for m in range(m0, m1):
        for i in range(c0, c1):
            v = E[m * I + i] + E2[m * I + i]
            if U.masked:
                v = v * mask[m * ld + i]
            if U.act_below != LINEAR:
                v = v * _derivative(U.act_below, Xu[m * ld + i])
            out[(m - m0) * ld_out + i - c0] = v


cdef void _l3_dense_halves(Layer3* L, const Layer3* U, const floating* D, const floating* X,
                           Py_ssize_t M, floating alpha, floating beta, const floating** rows,
                           floating* pack, int tid, int nt) noexcept nogil:
    # BP2 and the step of L by halves of W's rows, 0..h-1 and h..n_out-1: the
    # first half's BP2 into E, the second's into E2, each half's weight rows
    # stepped right after its BP2 read them.  Two threads take a half each,
    # the half of the units each computed in the forward (L.h: the
    # two-thread shares), so no line of W is ever written by one core and
    # read by the other.  By columns (_l3_dense_errors), each thread
    # rewrote half of the rows the other had just read (HALVES_FROM says
    # what that cost the dropout net).  One thread takes both halves, a third
    # none: the same sums whatever the team.  The layer below adds the
    # halves in the slices it reads (_l3_finish).  D is δ of L's output,
    # from U above when U is by halves too (then (E + E2) ⊙ ... of U).
    cdef int g
    cdef Py_ssize_t o0, o1, no, m, o, O = L.n_out, I = L.n_in
    cdef floating* Dg
    cdef floating* Dt
    cdef floating* P
    cdef floating* b = <floating*>L.b
    cdef floating v, sb
    for g in range(2):
        if nt > 1 and g != tid:
            continue
        o0 = 0 if g == 0 else L.h
        o1 = L.h if g == 0 else O
        no = o1 - o0
        Dg = <floating*>L.Dg + o0 * M       # the half's δ, M x no
        Dt = <floating*>L.Dt + o0 * M       # α δᵀ, no x M
        P = <floating*>(L.E if g == 0 else L.E2)
        if U != NULL and U.ws:
            _l3_finish(U, <const floating*>L.A, 0, M, o0, o1, Dg, no)
        else:
            for m in range(M):
                memcpy(Dg + m * no, D + m * O + o0, no * sizeof(floating))
        _row_pointers(<const floating*>L.Xm if L.masked else X, M, L.ld_x, rows)
        if L.fused:
            # the biases as gradient_step steps them (Σ over m in order of α δ)
            for o in range(no):
                sb = 0
                for m in range(M):
                    v = alpha * Dg[m * no + o]
                    Dt[o * M + m] = v
                    sb = sb + v
                b[o0 + o] = b[o0 + o] + sb
            if floating is double:
                cbp_bp2_step_d(Dg, Dt, rows, <double*>L.W + o0 * I, P, beta, M, no, I, 0, I)
            else:
                cbp_bp2_step_f(Dg, Dt, rows, <float*>L.W + o0 * I, P, beta, M, no, I, 0, I)
        else:
            if floating is double:
                cbp_backward_d(Dg, <const double*>L.W + o0 * I, P, M, no, I, 0, I, pack)
            else:
                cbp_backward_f(Dg, <const float*>L.W + o0 * I, P, M, no, I, 0, I, pack)
            gradient_step(Dg, rows, <floating*>L.W + o0 * I, b + o0, M, no, I, alpha, beta, 1,
                          Dt, pack, no)


cdef void _l3_dense_step(Layer3* L, const floating* D, const floating* X, Py_ssize_t M,
                         floating alpha, floating beta, const floating** rows, floating* pack,
                         int tid, int nt, Py_ssize_t unit=UNIT_ROWS) noexcept nogil:
    # dense_step's work on weight rows lo..hi-1 (cut at multiples of unit, a
    # multiple of UNIT_ROWS: every row's sums are its own, whatever the cut).
    cdef Py_ssize_t lo, hi, I = L.n_in, O = L.n_out
    _share(O, unit, tid, nt, &lo, &hi)
    if hi <= lo:
        return
    _row_pointers(<const floating*>L.Xm if L.masked else X, M, L.ld_x, rows)
    gradient_step(D + lo, rows, <floating*>L.W + lo * I, <floating*>L.b + lo, M, hi - lo, I,
                  alpha, beta, 1, <floating*>L.Dt + lo * M, pack, O)


cdef void _l3_conv_errors(Layer3* L, const floating* D, const floating* X, Py_ssize_t M,
                          floating alpha, floating* pack, int tid, int nt) noexcept nogil:
    # conv_pool_backward's first region on examples lo..hi-1: routing to the
    # maxima, the filters' gradient's operands, BP2 to the input.
    cdef Py_ssize_t lo = _c3_cut(M, 1, tid, nt), hi = _c3_cut(M, 1, tid + 1, nt)
    cdef Py_ssize_t m, f, y, x, p, F = L.F, Pf = L.Pf, R = L.R, N = L.N, CKK = L.CKK
    cdef floating* xpad = <floating*>L.xpad + tid * L.ld_xpad
    cdef floating* dx = <floating*>L.dxpad + tid * L.ld_xpad
    cdef floating* Et = <floating*>L.Et + tid * L.ld_Et
    cdef floating* pool = <floating*>L.pool + tid * L.ld_pool
    cdef const floating** rp = <const floating**>(<Py_ssize_t*>L.rows + tid * L.ld_rows)
    cdef const floating** dp = rp + CKK
    cdef floating* Dz = <floating*>L.Dz
    cdef floating* Dt = <floating*>L.Dt
    cdef floating* E = <floating*>L.E
    cdef const floating* Z = <const floating*>L.Z
    cdef floating* dt
    cdef Py_ssize_t ld, g0, h = _c3_cut(M, 1, 1, 2)
    if hi <= lo:
        if L.gh and nt == 2:
            _l3_conv_half(L, tid, M, 0, F, pack)     # an empty half: zeros
        return
    _l3_shifted(L, xpad, rp)
    for m in range(lo, hi):
        # z and δz R wide for many taps (see _l3_conv_forward), else full width
        unpool(D + m * L.n_out, Z + m * F * Pf, Dz + m * F * Pf, pool, F, L.Oy, L.Ox,
               L.Ox if L.patches else L.Wd, L.ph, L.pw)
        if L.patches:
            im2col(X + m * N, <floating*>(<Py_ssize_t*>L.prows)[m * R], L.C, L.H, L.Wd, L.K)
            # α δz filter-major: over the whole mini-batch, or (gh) over m's half
            dt = Dt + m * R
            ld = M * R
            if L.gh:
                g0 = 0 if m < h else h
                dt = Dt + F * g0 * R + (m - g0) * R
                ld = (h if m < h else M - h) * R
            for f in range(F):
                for p in range(R):
                    dt[f * ld + p] = alpha * Dz[m * F * Pf + f * R + p]
        else:
            memcpy(xpad, X + m * N, N * sizeof(floating))
            _gemm_forward(rp, Dz + m * F * Pf, <const floating*>L.zeros,
                          <floating*>L.G + m * CKK * F, CKK, F, Pf, F, pack)
        if L.need_input and L.patches:
            # BP2 over the kept positions (δz is R wide); the cropped columns'
            # terms were products of zeros
            for f in range(F):
                dp[f] = Dz + m * F * Pf + f * R
            _step_product(<const floating*>L.WfT, dp, Et, F, CKK, R, pack)
            if floating is double:
                cbp3_col2im_kept_d(Et, dx, L.C, L.H, L.Wd, L.K, L.Oy, L.Ox)
            else:
                cbp3_col2im_kept_f(Et, dx, L.C, L.H, L.Wd, L.K, L.Oy, L.Ox)
        elif L.need_input:
            for f in range(F):
                dp[f] = Dz + m * F * Pf + f * Pf
            _step_product(<const floating*>L.WfT, dp, Et, F, CKK, Pf, pack)
            if floating is double:
                cbp3_col2im_d(Et, dx, L.C, L.H, L.Wd, L.K, Pf)
            else:
                cbp3_col2im_f(Et, dx, L.C, L.H, L.Wd, L.K, Pf)
        if L.need_input:
            if L.act_below == LINEAR:
                memcpy(E + m * N, dx, N * sizeof(floating))
            else:
                for p in range(N):
                    E[m * N + p] = dx[p] * _derivative(L.act_below, X[m * N + p])
    if L.gh and nt == 2:
        # this thread's examples are a half: its sum while they are hot
        _l3_conv_half(L, tid, M, 0, F, pack)


cdef void _l3_conv_half(Layer3* L, int g, Py_ssize_t M, Py_ssize_t f0, Py_ssize_t f1,
                        floating* pack) noexcept nogil:
    # Filters f0..f1-1 (cut at the step kernel's tiles of 4, so each row's
    # sums are its own) of half g's sum of the filters' gradient terms,
    # Σ over its examples and kept positions of α δz x-patch, into Gh's half
    # g.  The halves are the two-thread team's examples: each of two
    # threads sums its own, in the errors phase, from patches it has just
    # written; by filters over the whole mini-batch, each thread read the
    # other's patches (640 KB a mini-batch in the book's second conv layer),
    # lines the other core rewrote in the next mini-batch.
    cdef Py_ssize_t m0 = _c3_cut(M, 1, g, 2), m1 = _c3_cut(M, 1, g + 1, 2)
    cdef Py_ssize_t K = (m1 - m0) * L.R
    cdef floating* G = <floating*>L.Gh + g * L.ld_gh + f0 * L.CKK
    if f1 <= f0:
        return
    if K == 0:
        memset(G, 0, (f1 - f0) * L.CKK * sizeof(floating))
        return
    _step_product(<const floating*>L.Dt + L.F * m0 * L.R + f0 * K,
                  <const floating**>L.prows + m0 * L.R, G, K, f1 - f0, L.CKK, pack)


cdef void _l3_conv_step(Layer3* L, const floating* D, Py_ssize_t M, floating alpha,
                        floating beta, floating* pack, int tid, int nt) noexcept nogil:
    # conv_pool_backward's second region on filters lo..hi-1 (cut at the step
    # kernel's tiles of 4).
    cdef Py_ssize_t lo = _c3_cut(L.F, 4, tid, nt), hi = _c3_cut(L.F, 4, tid + 1, nt)
    cdef Py_ssize_t f, m, q, k, F = L.F, CKK = L.CKK, Pq = L.Pq
    cdef floating sb, g
    cdef floating* W = <floating*>L.W
    cdef floating* b = <floating*>L.b
    cdef const floating* G = <const floating*>L.G
    cdef const floating* G0
    cdef const floating* G1
    cdef int half
    for f in range(lo, hi):
        sb = 0
        for m in range(M):
            for q in range(m * L.n_out + f * Pq, m * L.n_out + (f + 1) * Pq):
                sb = sb + D[q]
        b[f] = b[f] + alpha * sb
        if not L.patches:
            for k in range(CKK):
                g = 0
                for m in range(M):
                    g = g + G[m * CKK * F + k * F + f]
                W[f * CKK + k] = beta * W[f * CKK + k] + alpha * g
    if L.gh and hi > lo:
        # W <- β W + (first half's sum + second's); on two threads the
        # halves were summed in the errors phase (_l3_conv_errors)
        if nt != 2:
            for half in range(2):
                _l3_conv_half(L, half, M, lo, hi, pack)
        G0 = <const floating*>L.Gh
        G1 = G0 + L.ld_gh
        for k in range(lo * CKK, hi * CKK):
            W[k] = beta * W[k] + (G0[k] + G1[k])
    elif L.patches and hi > lo:
        if floating is double:
            cbp_step_d(<const double*>L.Dt + lo * M * L.R, <const double**>L.prows, W + lo * CKK,
                       beta, M * L.R, hi - lo, CKK, pack)
        else:
            cbp_step_f(<const float*>L.Dt + lo * M * L.R, <const float**>L.prows, W + lo * CKK,
                       beta, M * L.R, hi - lo, CKK, pack)


cdef void _l3_step_any(Layer3* L, const floating* D, const floating* X, Py_ssize_t M,
                       floating alpha, floating beta, const floating** rows, floating* pack,
                       int tid, int nt) noexcept nogil:
    if L.kind == L3_CONV:
        _l3_conv_step(L, D, M, alpha, beta, pack, tid, nt)
    elif not (L.fused or L.ws):   # stepped with BP2 (_l3_dense_errors, _l3_dense_halves)
        _l3_dense_step(L, D, X, M, alpha, beta, rows, pack, tid, nt)


cdef bint _l3_steps_left(Layer3* layers, int s0, int s1) noexcept nogil:
    # whether layers s0..s1-1 have a step of their own to run (a fused
    # layer's ran with its BP2)
    cdef int k
    for k in range(s0, s1):
        if layers[k].kind == L3_CONV or not (layers[k].fused or layers[k].ws):
            return True
    return False
