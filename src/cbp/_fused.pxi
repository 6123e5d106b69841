# The fused per-layer sweep (issue 20), included by _core.pyx.
#
# For plain SGD on one thread with small mini-batches and a narrow first
# layer (at most CBP_NARROW units, e.g. [784, 30, 10]), the first layer's
# weights live transposed and padded (WT, _sweep.h) for the whole call, and
# converted back to W's rows when it returns.  Each mini-batch t does the
# small work first (a^1 from the sums the previous sweep left, the layers
# above, BP1, BP2, their steps, δ^1), then one sweep over WT applies t's
# update and accumulates t+1's first-layer sums from the same tile.
#
# Which calls take it (train_epoch's rule, _fused_fits): one thread, the plain
# SGD rule without momentum, 2+ weight layers, a first layer of at most
# CBP_NARROW units and mini-batches of at most FUSED_MAX_M examples.  Every
# other call (momentum, Nesterov, Adam, teams, per-example weights) runs the
# general drivers.  The weights are the same bits either way: the narrow
# forward and the step sum in the sweep's order (_sweep.h).

cdef extern from "_kernels.h" nogil:
    enum: CBP_NARROW
    Py_ssize_t cbp_narrow_limit
    void cbp_sweep_d(const double* Dt, const double** rows, Py_ssize_t M, double* wt,
                     double beta, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t OP,
                     const double** nxt, Py_ssize_t Mn, double* Z)
    void cbp_sweep_f(const float* Dt, const float** rows, Py_ssize_t M, float* wt,
                     float beta, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t OP,
                     const float** nxt, Py_ssize_t Mn, float* Z)
    Py_ssize_t cbp_narrow_pad_d(Py_ssize_t n)
    Py_ssize_t cbp_narrow_pad_f(Py_ssize_t n)

cdef enum:
    # Largest mini-batch for the sweep: its δ and next sums (M x 32 each)
    # stay in L1 beside the tile's rows of inputs.
    FUSED_MAX_M = 32


cdef bint _fused_on = False


def fused_sweep(value=None, narrow=None):
    """Whether train_epoch may take the fused first-layer sweep; set it with ``value``.

    Returns the setting in force before the call.  Off by default.  On, it
    also turns on the narrow order (layers of at most 32 units summed as the
    sweep sums them, in every path: teams, inference, gradient), so that
    the fused and general drivers and every thread count give the same bits;
    ``narrow`` sets the order alone (the general drivers in that order).
    Experimental, for tests and benchmarks: on an AVX2 core the sweep gained
    1.0-1.13x and the general paths lost up to 1.3x.
    """
    global _fused_on, cbp_narrow_limit
    old = bool(_fused_on)
    if value is not None:
        _fused_on = bool(value)
        cbp_narrow_limit = CBP_NARROW if _fused_on else 0
    if narrow is not None:
        cbp_narrow_limit = CBP_NARROW if narrow else 0
    return old


cdef bint _fused_fits(const Layout* lay, Py_ssize_t mini_batch_size, int rule, double mu,
                      int nt) noexcept:
    return (_fused_on and nt == 1 and rule == RULE_SGD and mu == 0 and lay.L >= 2
            and lay.sizes[1] <= cbp_narrow_limit and 1 <= mini_batch_size <= FUSED_MAX_M)


cdef inline void _sweep(const floating* Dt, const floating** rows, Py_ssize_t M, floating* WT,
                        floating beta, Py_ssize_t I, Py_ssize_t OP, const floating** nxt,
                        Py_ssize_t Mn, floating* Z) noexcept nogil:
    if Mn > 0:
        memset(Z, 0, Mn * OP * sizeof(floating))
    if floating is double:
        cbp_sweep_d(Dt, rows, M, WT, beta, 0, I, OP, nxt, Mn, Z)
    else:
        cbp_sweep_f(Dt, rows, M, WT, beta, 0, I, OP, nxt, Mn, Z)


cdef double _fused_batch(const Layout* lay, floating* P, const floating** rows0,
                         floating* work, Py_ssize_t M, const floating* Y__mo, floating eta,
                         floating decay, floating* WT, Py_ssize_t OP, floating* Dt1,
                         floating* Z1, const floating** nxt, Py_ssize_t Mn) noexcept nogil:
    # _train_batch (μ = 0) with the first layer in WT: Z1 holds this
    # mini-batch's first-layer sums (without the bias) and receives the next
    # one's.  The same arithmetic, term by term, as _backprop_batch.
    cdef floating alpha = -eta / M
    cdef floating beta = 1 - eta * decay
    cdef floating beta_b = 1
    cdef Py_ssize_t l, m, o, L = lay.L, I = lay.sizes[0], n1 = lay.sizes[1]
    cdef Py_ssize_t O = lay.sizes[L]
    cdef floating* A[64]
    cdef const floating** rows = <const floating**>work
    cdef const floating** A_in
    cdef floating* Z
    cdef floating* D
    cdef floating* D_below
    cdef floating* Dt
    cdef floating* pack
    cdef floating* tmp
    cdef floating* b1 = P + lay.boff[0]
    cdef floating sb, d
    cdef double cost_sum = 0
    Dt = _carve(lay, work, M, A, &Z, &D, &D_below)
    pack = Dt + M * lay.max_width

    # feedforward: z^1 = the sweep's sums + b^1, then the layers above
    for m in range(M):
        for o in range(n1):
            A[1][m * n1 + o] = Z1[m * OP + o] + b1[o]
    activate(A[1], A[1], M, n1, lay.hidden)
    _row_pointers(A[1], M, n1, rows)
    A_in = rows
    for l in range(1, L):
        if l == L - 1:
            feedforward_layer(A_in, P + lay.woff[l], P + lay.boff[l], Z,
                              M, lay.sizes[l + 1], lay.sizes[l], pack)
            activate(Z, A[L], M, lay.sizes[l + 1], lay.output)
        else:
            feedforward_layer(A_in, P + lay.woff[l], P + lay.boff[l], A[l + 1],
                              M, lay.sizes[l + 1], lay.sizes[l], pack)
            activate(A[l + 1], A[l + 1], M, lay.sizes[l + 1], lay.hidden)
            _row_pointers(A[l + 1], M, lay.sizes[l + 1], rows)
    for m in range(M):
        cost_sum += example_cost(Z + m * O, A[L] + m * O, Y__mo + m * O, O, lay.output, lay.cost)
    output_error(A[L], Y__mo, D, M, O, lay.output, lay.cost)

    for l in range(L - 1, 0, -1):
        backpropagate_error(D, P + lay.woff[l], A[l], D_below, M, lay.sizes[l + 1],
                            lay.sizes[l], lay.hidden, pack)
        _row_pointers(A[l], M, lay.sizes[l], rows)
        gradient_step(D, rows, P + lay.woff[l], P + lay.boff[l], M, lay.sizes[l + 1],
                      lay.sizes[l], alpha, beta, beta_b, Dt, pack, lay.sizes[l + 1])
        tmp = D
        D = D_below
        D_below = tmp

    # the first layer: b^1 as gradient_step steps it, α δ^1 by rows for the sweep
    for o in range(n1):
        sb = 0
        for m in range(M):
            d = alpha * D[m * n1 + o]
            Dt1[m * OP + o] = d
            sb = sb + d
        b1[o] = beta_b * b1[o] + sb
    _sweep(Dt1, rows0, M, WT, beta, I, OP, nxt, Mn, Z1)
    return cost_sum


cdef int _epoch_fused(const Layout* lay, floating* P, const floating* X, const floating* Y,
                      const Py_ssize_t* order, Py_ssize_t n, Py_ssize_t mini_batch_size,
                      Py_ssize_t first, Py_ssize_t last, double eta, double decay,
                      floating* work, Py_ssize_t scratch, Rule* rule, Py_ssize_t* counts,
                      double* total, floating* area, const floating** ptrs) noexcept nogil:
    # _epoch_alone through _fused_batch.  area: WT (I x OP), then α δ^1 and
    # the next sums (M x OP each), zeroed by the caller; ptrs: 2M pointers.
    cdef Py_ssize_t I = lay.sizes[0], n1 = lay.sizes[1], O = lay.sizes[lay.L]
    cdef Py_ssize_t OP = cbp_narrow_pad_f(n1) if floating is float else cbp_narrow_pad_d(n1)
    cdef Py_ssize_t mbs = mini_batch_size
    cdef floating* WT = area
    cdef floating* Dt1 = area + I * OP
    cdef floating* Z1 = Dt1 + mbs * OP
    cdef floating* W1 = P + lay.woff[0]
    cdef floating* Yb = work + scratch + 2 * mbs
    cdef const floating** cur = ptrs
    cdef const floating** nxt = ptrs + mbs
    cdef const floating** tmp
    cdef Py_ssize_t k, o, i, r, start, M, Mn
    cdef double d
    cdef int failed = 0
    if first >= last:
        return 0
    for o in range(n1):
        for i in range(I):
            WT[i * OP + o] = W1[o * I + i]
    start = first * mbs
    M = min(mbs, n - start)
    for r in range(M):
        cur[r] = X + order[start + r] * I
    _sweep(<const floating*>NULL, <const floating**>NULL, 0, WT, 1, I, OP, cur, M, Z1)
    for k in range(first, last):
        start = k * mbs
        M = min(mbs, n - start)
        for r in range(M):
            memcpy(Yb + r * O, Y + order[start + r] * O, O * sizeof(floating))
        Mn = 0
        if k + 1 < last:
            Mn = max(0, min(mbs, n - start - mbs))
            for r in range(Mn):
                nxt[r] = X + order[start + mbs + r] * I
            for r in range(start + 2 * mbs, min(start + 3 * mbs, n)):
                cbp_prefetch(X + order[r] * I, I * sizeof(floating))
        d = decay + rule.l2 / M
        total[0] += _fused_batch(lay, P, cur, work, M, Yb, <floating>eta, <floating>d, WT, OP,
                                 Dt1, Z1, nxt, Mn)
        counts[0] += 1
        counts[1] += M
        tmp = cur
        cur = nxt
        nxt = tmp
        if (k - first + 1) % 16 == 0:
            with gil:
                failed = _check_signals()
            if failed != 0:
                break
    for o in range(n1):
        for i in range(I):
            W1[o * I + i] = WT[i * OP + o]
    return 1 if failed != 0 else 0


cdef object _train_fused(const Layout* lay, floating[::1] P, const floating[:, ::1] X,
                         const floating[:, ::1] Y, const Py_ssize_t[::1] order,
                         Py_ssize_t mini_batch_size, Py_ssize_t first, Py_ssize_t last,
                         double eta, double decay, floating[::1] work, Py_ssize_t scratch,
                         Rule* rule):
    # train_epoch's one-thread run through the sweep; returns its triple.
    cdef Py_ssize_t n = order.shape[0], I = lay.sizes[0], n1 = lay.sizes[1]
    cdef Py_ssize_t OP = cbp_narrow_pad_f(n1) if floating is float else cbp_narrow_pad_d(n1)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] area = np.zeros(I * OP + 2 * mini_batch_size * OP, dtype=dtype)
    cdef Py_ssize_t[::1] ptrs = np.empty(2 * mini_batch_size, dtype=np.intp)
    cdef Py_ssize_t counts[2]
    cdef double total[1]
    cdef int stopped
    cdef const floating* Xp = &X[0, 0] if X.shape[0] > 0 else NULL
    cdef const floating* Yp = &Y[0, 0] if Y.shape[0] > 0 else NULL
    counts[0] = counts[1] = 0
    total[0] = 0
    with nogil:
        stopped = _epoch_fused(lay, &P[0], Xp, Yp, &order[0] if n > 0 else NULL, n,
                               mini_batch_size, first, last, eta, decay, &work[0], scratch,
                               rule, counts, total, &area[0], <const floating**>&ptrs[0])
    if stopped:
        _reraise()
    return counts[0], counts[1], total[0]
