# One thread: a mini-batch (forward, BP1, BP2 and the step for each layer),
# and a run of mini-batches; included by _core.pyx after _equations.pxi.

# ---------------------------------------------------------------------------
# Drivers: whole mini-batches, whole epochs, whole data sets
# ---------------------------------------------------------------------------

cdef struct Layout:
    Py_ssize_t L              # number of weight layers
    const Py_ssize_t* sizes   # L + 1 layer widths
    const Py_ssize_t* woff    # offset of W^l in the flat parameters
    const Py_ssize_t* boff    # offset of b^l
    Py_ssize_t n_weights      # weights come first in the flat parameters
    Py_ssize_t n_params
    Py_ssize_t max_width      # widest layer after the input
    int hidden
    int output
    int cost


cdef Layout _layout(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] woff,
                    const Py_ssize_t[::1] boff, int hidden, int output, int cost):
    cdef Layout lay
    lay.L = sizes.shape[0] - 1
    lay.sizes = &sizes[0]
    lay.woff = &woff[0]
    lay.boff = &boff[0]
    lay.n_weights = boff[0]
    lay.n_params = boff[lay.L - 1] + sizes[lay.L]
    lay.max_width = _widest(sizes)
    lay.hidden = hidden
    lay.output = output
    lay.cost = cost
    return lay


cdef inline int _act(const Layout* lay, Py_ssize_t l) noexcept nogil:
    return lay.output if l == lay.L - 1 else lay.hidden


cdef void _forward_all(const Layout* lay, const floating* P, const floating** rows0,
                       floating* A1, Py_ssize_t M, floating* Z_out, floating* A_last,
                       const floating** rows, floating* pack) noexcept nogil:
    # a^0 is reached through rows0 (one pointer per example); the hidden a^l
    # lie back to back from A1, M rows each; a^L goes to A_last and z^L to
    # Z_out (the log costs need it).  rows: M pointers of scratch.
    cdef Py_ssize_t l
    cdef const floating** A_in = rows0
    cdef floating* A_out = A1
    for l in range(lay.L):
        if l == lay.L - 1:
            feedforward_layer(A_in, P + lay.woff[l], P + lay.boff[l], Z_out,
                              M, lay.sizes[l + 1], lay.sizes[l], pack)
            activate(Z_out, A_last, M, lay.sizes[l + 1], lay.output)
        else:
            feedforward_layer(A_in, P + lay.woff[l], P + lay.boff[l], A_out,
                              M, lay.sizes[l + 1], lay.sizes[l], pack)
            activate(A_out, A_out, M, lay.sizes[l + 1], lay.hidden)
            _row_pointers(A_out, M, lay.sizes[l + 1], rows)
            A_in = rows
            A_out = A_out + M * lay.sizes[l + 1]


cdef inline floating* _carve(const Layout* lay, floating* work, Py_ssize_t M, floating** A,
                            floating** Z, floating** D, floating** D_below) noexcept nogil:
    # The workspace of one mini-batch of M rows, as _workspace_size lays it
    # out: M row pointers (2M slots), a^1..a^L, z^L, δ, δ below, then δᵀ,
    # whose start is returned (the one-thread driver packs panels after it).
    cdef Py_ssize_t l, L = lay.L
    A[1] = work + 2 * M
    for l in range(1, L):
        A[l + 1] = A[l] + M * lay.sizes[l]
    Z[0] = A[L] + M * lay.sizes[L]
    D[0] = Z[0] + M * lay.sizes[L]
    D_below[0] = D[0] + M * lay.max_width
    return D_below[0] + M * lay.max_width


cdef double _output_layer(const Layout* lay, const floating* Z, const floating* A,
                         const floating* Y__mo, floating* D, const floating* w__m,
                         Py_ssize_t M) noexcept nogil:
    """The output layer of one mini-batch, for both drivers: Σ_x C_x and δ^L (BP1).

    With per-example weights w (w__m not NULL) the sum is Σ_x w_x C_x and
    each δ^L_x is scaled by w_x (see weigh_output_error).
    """
    cdef Py_ssize_t m, O = lay.sizes[lay.L]
    cdef double cost_sum = 0
    for m in range(M):
        cost_sum += (1.0 if w__m == NULL else <double>w__m[m]) * example_cost(
            Z + m * O, A + m * O, Y__mo + m * O, O, lay.output, lay.cost)
    output_error(A, Y__mo, D, M, O, lay.output, lay.cost)
    if w__m != NULL:
        weigh_output_error(D, w__m, M, O)
    return cost_sum


cdef double _backprop_batch(const Layout* lay, floating* P, floating* T, const floating** rows0,
                            floating* work, Py_ssize_t M, const floating* Y__mo,
                            floating alpha, floating beta, floating beta_b,
                            const floating* w__m) noexcept nogil:
    # One mini-batch whose inputs are reached through rows0: forward, BP1,
    # then for each layer from the top BP2 (with the old W of P) and the step
    # into T: W_T <- β W_T + α Σ δ aᵀ, b_T <- β_b b_T + α Σ δ.  T is P itself
    # (SGD), the velocity (momentum) or a zeroed gradient.  work is laid out
    # by _workspace_size.  Returns Σ C_x, or Σ w_x C_x with per-example
    # weights w__m (NULL: none), which also weigh δ^L.
    cdef Py_ssize_t l, m, L = lay.L
    cdef floating* A[64]
    cdef const floating** rows = <const floating**>work
    cdef floating* Z
    cdef floating* D
    cdef floating* D_below
    cdef floating* Dt
    cdef floating* pack
    cdef floating* tmp
    cdef double cost_sum = 0
    cdef Py_ssize_t O = lay.sizes[L]
    Dt = _carve(lay, work, M, A, &Z, &D, &D_below)
    pack = Dt + M * lay.max_width

    _forward_all(lay, P, rows0, A[1], M, Z, A[L], rows, pack)
    cost_sum = _output_layer(lay, Z, A[L], Y__mo, D, w__m, M)

    for l in range(L - 1, -1, -1):
        if l > 0:
            backpropagate_error(D, P + lay.woff[l], A[l], D_below, M, lay.sizes[l + 1],
                                lay.sizes[l], lay.hidden, pack)
            _row_pointers(A[l], M, lay.sizes[l], rows)
        gradient_step(D, rows0 if l == 0 else rows, T + lay.woff[l], T + lay.boff[l], M,
                      lay.sizes[l + 1], lay.sizes[l], alpha, beta, beta_b, Dt, pack,
                      lay.sizes[l + 1])
        tmp = D
        D = D_below
        D_below = tmp
    return cost_sum


cdef double _train_batch(const Layout* lay, floating* P, floating* V, const floating** rows0,
                         floating* work, Py_ssize_t M, const floating* Y__mo, floating eta,
                         floating decay, floating mu, double mass,
                         const floating* w__m) noexcept nogil:
    # One SGD step on the mini-batch whose inputs rows0 points at.  mass is
    # the mean's divisor: M, or Σ w_x with the weights w__m (NULL: none).
    # (−η/M in double, then rounded, is −η/M rounded: the same bits.)
    cdef double cost_sum
    if mu == 0:
        return _backprop_batch(lay, P, P, rows0, work, M, Y__mo, <floating>(-eta / mass),
                               1 - eta * decay, 1, w__m)
    cost_sum = _backprop_batch(lay, P, V, rows0, work, M, Y__mo, <floating>(-eta / mass), mu, mu,
                               w__m)
    momentum_step(P, V, lay.n_weights, lay.n_params, eta * decay)
    return cost_sum


cdef struct Rule:
    int code
    double l2            # α: an L2 term (α/M) w per mini-batch of M (scikit-learn's alpha)
    double beta1
    double beta2
    double epsilon
    double t             # Adam: steps taken so far


cdef double _rule_batch(const Layout* lay, floating* P, floating* S, const floating** rows0,
                        floating* work, Py_ssize_t M, const floating* Y__mo, double eta,
                        double decay, double mu, Rule* rule, double mass,
                        const floating* w__m) noexcept nogil:
    # One step of the rule on one mini-batch; returns Σ C_x (Σ w_x C_x with
    # weights).  mass: M, or Σ w_x (see _train_batch).
    cdef double cost_sum, d = decay + rule.l2 / mass, lr_t
    cdef Py_ssize_t n = lay.n_params
    cdef floating* G
    if rule.code == RULE_SGD:
        return _train_batch(lay, P, S, rows0, work, M, Y__mo, <floating>eta, <floating>d,
                            <floating>mu, mass, w__m)
    G = S + (n if rule.code == RULE_NESTEROV else 2 * n)
    memset(G, 0, n * sizeof(floating))
    cost_sum = _backprop_batch(lay, P, G, rows0, work, M, Y__mo, <floating>(1.0 / mass), 1, 1,
                               w__m)
    if rule.code == RULE_NESTEROV:
        nesterov_step(P, S, G, lay.n_weights, n, <floating>eta, <floating>d, <floating>mu)
    else:
        rule.t += 1
        lr_t = eta * sqrt(1 - pow(rule.beta2, rule.t)) / (1 - pow(rule.beta1, rule.t))
        adam_step(P, S, S + n, G, lay.n_weights, n, <floating>lr_t, <floating>d,
                  <floating>rule.beta1, <floating>rule.beta2, <floating>rule.epsilon)
    return cost_sum


cdef extern from "Python.h":
    # The plain C call: returns -1 with the exception set, and does not make
    # Cython jump out of the parallel region while the team waits.
    int _check_signals "PyErr_CheckSignals"() nogil


cdef int _reraise() except -1:
    # Propagates the exception _check_signals left set.
    return -1


cdef inline double _batch_mass(const floating* sw, const Py_ssize_t* rows, Py_ssize_t M,
                               floating* wb) noexcept nogil:
    # The divisor of a mini-batch's mean: M unweighted; with weights sw (one
    # per row of X), Σ_x w_x, the batch's weights gathered into wb.
    cdef Py_ssize_t r
    cdef double s = 0
    if sw == NULL:
        return M
    for r in range(M):
        wb[r] = sw[rows[r]]
        s += wb[r]
    return s


cdef int _rows_finite(const floating* const* rows, Py_ssize_t M, Py_ssize_t I,
                      double* xs) noexcept nogil:
    # 1 when each of the M rows (I values each) is finite, raising xs[1] to
    # the largest |x| among them; else 0 with xs[0] = 1.  Called on a
    # mini-batch's rows just before its forward pass reads them, so the
    # check is a pass over rows already on their way into the cache, not a
    # pass over all of X from memory.
    cdef Py_ssize_t r
    cdef double a
    for r in range(M):
        if floating is double:
            a = cbp_absmax_d(rows[r], I)
        else:
            a = cbp_absmax_f(rows[r], I)
        if a - a != 0:        # NaN or +Inf: a NaN or ±Inf in the row
            xs[0] = 1
            return 0
        if a > xs[1]:
            xs[1] = a
    return 1


cdef int _epoch_alone(const Layout* lay, floating* P, floating* V, const floating* X,
                      const floating* Y, const Py_ssize_t* order, Py_ssize_t n,
                      Py_ssize_t mini_batch_size, Py_ssize_t first, Py_ssize_t last,
                      double eta, double decay, double mu, floating* work, Py_ssize_t scratch,
                      Rule* rule, Py_ssize_t* counts, double* total, const floating* sw,
                      double* w2, double* xs) noexcept nogil:
    # The one-thread driver: mini-batches first .. last-1 of train_epoch,
    # adding steps taken and examples done to counts and Σ C_x to total.
    # sw: a weight per row of X (NULL: none); w2: where Σ‖W‖² before each
    # step goes (NULL: not wanted); xs: when given, each mini-batch's rows are
    # checked finite before it steps (see train_epoch's x_scan), and the
    # first one that is not stops the run before its step.  Returns 1 when
    # Ctrl-C (or another signal handler's exception) stopped it, with the
    # exception set; the network is then as a mini-batch left it.
    cdef Py_ssize_t I = lay.sizes[0], O = lay.sizes[lay.L]
    cdef const floating** rows0 = <const floating**>(work + scratch)
    cdef floating* Yb = work + scratch + 2 * mini_batch_size
    cdef floating* wb = Yb + mini_batch_size * O
    cdef Py_ssize_t k, start, M, r, j, nxt
    cdef const floating* y
    cdef int failed
    cdef double mass
    for k in range(first, last):
        start = k * mini_batch_size
        M = mini_batch_size if start + mini_batch_size <= n else n - start
        # The inputs are read where they lie (one pointer per example);
        # the targets, a few numbers each, are gathered: by a loop, not a
        # memcpy call per row (that call and its misses on Y took 1.8% of the
        # headline's time in perf).
        for r in range(M):
            rows0[r] = X + order[start + r] * I
            y = Y + order[start + r] * O
            for j in range(O):
                Yb[r * O + j] = y[j]
        if xs != NULL and not _rows_finite(rows0, M, I, xs):
            return 0
        # The next mini-batch's rows: the step issues their prefetches a few
        # lines at a time between its tiles (see _kernels.h); its targets,
        # one or two lines each, are asked for at once.
        nxt = min(mini_batch_size, n - start - M)
        cbp_prefetch_plan(X, order + start + M, nxt, I * sizeof(floating))
        for r in range(start + M, start + M + nxt):
            cbp_prefetch(Y + order[r] * O, 1)
            cbp_prefetch(Y + order[r] * O + O - 1, 1)
        mass = _batch_mass(sw, order + start, M, wb)
        if mass != 0:
            if w2 != NULL:
                w2[0] += (M / mass) * sum_of_squares(P, lay.n_weights)
            if sw == NULL:
                total[0] += _rule_batch(lay, P, V, rows0, work, M, Yb, eta, decay, mu, rule,
                                        mass, NULL)
            else:
                total[0] += (M / mass) * _rule_batch(lay, P, V, rows0, work, M, Yb, eta, decay,
                                                     mu, rule, mass, wb)
            counts[0] += 1
        counts[1] += M
        cbp_prefetch_rest()
        if (k - first + 1) % 16 == 0:
            # Ctrl-C lands here, between mini-batches, so the network
            # it leaves behind is consistent.
            with gil:
                failed = _check_signals()
            if failed != 0:
                return 1
    return 0
