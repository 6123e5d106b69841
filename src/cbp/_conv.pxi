# Chapter 6's kernels (cbp.network3): "valid" convolution, max-pooling,
# softmax + log-likelihood and dropout masks, for mini-batches of examples.
#
# Included at the end of _core.pyx: it uses the core's scalar helpers
# (_derivative, activate), the product kernels of _kernels.h and
# gradient_step.  Layouts (thinc-style axis names after a double underscore):
#
# ``X__mn``   a layer's input, one row per example, in Theano's order
#             (n = c, h, w flattened: channel, row, column)
# ``Wf__fk``  the filters, flipped: Wf[f, (c, i, j)] = w[f, c, K-1-i, K-1-j],
#             so that the products below are Theano's conv2d (a true convolution)
# ``Z__mp``   the convolution, per example (f, y, x) with rows Wd long (the
#             input's width: columns x >= Ox are computed and ignored), so
#             that z = Wf · (the input's rows shifted by (c, i, j)) needs no
#             copied patches
# ``A__mq``   the pooled, biased, activated output in Theano's order
#             (q = f, py, px flattened)
#
# The products are the core's register-blocked kernels (cbp_forward,
# cbp_backward, cbp_step), which have AVX2/AVX-512 builds chosen at load time:
# the convolution and BP2 through it are the step kernel's product over the
# input's shifted rows (vectorised along the positions, no copied patches);
# the filters' gradient is the forward kernel's product of shifted rows with
# δz (few taps: the first layer) or the step kernel over patches (many taps).
# Max-pooling's gradient reaches every element equal to its window's maximum,
# as Theano's does (MNIST's blank and saturated patches make ties common).
#
# Threads: every kernel splits its work into shares that no two threads
# write (examples for the forward pass, BP2 and the routing; filters or
# weight rows for the steps), and a share is summed in the same order as the
# whole, so results are bit-identical for every thread count.

from libc.math cimport ceil
from libc.stdint cimport int32_t, uint64_t

cdef extern from "_conv3.h" nogil:
    # The elementwise kernels, with AVX2 builds chosen at load time (see _conv3.h).
    void cbp3_pool_max_d(const double* z, double* best, double* rowmax, Py_ssize_t F,
                         Py_ssize_t Oy, Py_ssize_t Ox, Py_ssize_t Wd, Py_ssize_t ph, Py_ssize_t pw)
    void cbp3_pool_max_f(const float* z, float* best, float* rowmax, Py_ssize_t F,
                         Py_ssize_t Oy, Py_ssize_t Ox, Py_ssize_t Wd, Py_ssize_t ph, Py_ssize_t pw)
    void cbp3_unpool_d(const double* d, const double* z, const double* best, double* dz,
                       double* spread, Py_ssize_t F, Py_ssize_t Oy, Py_ssize_t Ox, Py_ssize_t Wd,
                       Py_ssize_t ph, Py_ssize_t pw)
    void cbp3_unpool_f(const float* d, const float* z, const float* best, float* dz,
                       float* spread, Py_ssize_t F, Py_ssize_t Oy, Py_ssize_t Ox, Py_ssize_t Wd,
                       Py_ssize_t ph, Py_ssize_t pw)
    void cbp3_col2im_d(const double* E, double* dx, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd,
                       Py_ssize_t K, Py_ssize_t Pf)
    void cbp3_col2im_f(const float* E, float* dx, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd,
                       Py_ssize_t K, Py_ssize_t Pf)
    void cbp3_col2im_kept_d(const double* E, double* dx, Py_ssize_t C, Py_ssize_t H,
                            Py_ssize_t Wd, Py_ssize_t K, Py_ssize_t Oy, Py_ssize_t Ox)
    void cbp3_col2im_kept_f(const float* E, float* dx, Py_ssize_t C, Py_ssize_t H,
                            Py_ssize_t Wd, Py_ssize_t K, Py_ssize_t Oy, Py_ssize_t Ox)
    void cbp3_kept_rows_d(const double* X, double* Xk, Py_ssize_t C, Py_ssize_t H,
                          Py_ssize_t Wd, Py_ssize_t K)
    void cbp3_kept_rows_f(const float* X, float* Xk, Py_ssize_t C, Py_ssize_t H,
                          Py_ssize_t Wd, Py_ssize_t K)
    void cbp3_im2col_d(const double* X, double* P, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd,
                       Py_ssize_t K)
    void cbp3_im2col_f(const float* X, float* P, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd,
                       Py_ssize_t K)
    void cbp3_dropout_d(const double* x, double* mask, double* out, Py_ssize_t n, uint64_t seed,
                        uint64_t counter, uint64_t keep_below)
    void cbp3_dropout_f(const float* x, float* mask, float* out, Py_ssize_t n, uint64_t seed,
                        uint64_t counter, uint64_t keep_below)


cdef enum:
    # Least work (flops) per thread for a kernel to use threads: below it, the
    # wake-up and the barrier at the end of a parallel region cost more than
    # the share saves (the core's TEAM_MIN_FLOPS, for the same reason).
    CONV_MIN_FLOPS = 1000000


cdef Py_ssize_t _c3_min_flops = CONV_MIN_FLOPS


def conv_min_flops(value=None):
    """The least work per thread for network3's kernels to use threads; set it with ``value``.

    Returns the value in force before the call.  For tests: 0 makes every
    kernel use the threads it is given.
    """
    global _c3_min_flops
    old = _c3_min_flops
    if value is not None:
        _c3_min_flops = max(0, int(value))
    return old


cdef inline int _c3_threads(int requested, Py_ssize_t flops, Py_ssize_t most) noexcept:
    # Threads for a kernel of ``flops``, at most ``most`` (shares, scratch rows);
    # one in a forked child, whose OpenMP pool did not survive the fork (_team.pxi).
    if _forked_child:
        return 1
    cdef int nt = max(1, min(requested, <int>most))
    while nt > 1 and flops // nt < _c3_min_flops:
        nt -= 1
    return nt


cdef inline Py_ssize_t _c3_cut(Py_ssize_t n, Py_ssize_t unit, int tid, int nt) noexcept nogil:
    # Where thread tid's part of 0..n starts (tid = nt: n), cut at multiples of
    # unit.  Thread tid owns [cut(tid), cut(tid + 1)).  (Returned, not written
    # through a pointer: Cython makes a variable private to each thread of a
    # parallel block only if the block assigns it.)
    cdef Py_ssize_t units = (n + unit - 1) // unit
    return min(n, (units * tid // nt) * unit)


cdef inline void _gemm_forward(const floating** A_rows, const floating* W__oi, const floating* b__o,
                               floating* Z__mo, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I,
                               Py_ssize_t ldz, floating* pack) noexcept nogil:
    if floating is double:
        cbp_forward_d(A_rows, W__oi, b__o, Z__mo, M, O, I, ldz, pack)
    else:
        cbp_forward_f(A_rows, W__oi, b__o, Z__mo, M, O, I, ldz, pack)


# ---------------------------------------------------------------------------
# Convolution: z = w ⋆ x ("valid"), then max-pooling, then a = f(pool(z) + b)
# ---------------------------------------------------------------------------

cdef inline void im2col(const floating* X__n, floating* P__rk, Py_ssize_t C, Py_ssize_t H,
                        Py_ssize_t Wd, Py_ssize_t K) noexcept nogil:
    """One example's patches: P[(y, x), (c, i, j)] = X[c, y+i, x+j]."""
    if floating is double:
        cbp3_im2col_d(X__n, P__rk, C, H, Wd, K)
    else:
        cbp3_im2col_f(X__n, P__rk, C, H, Wd, K)


cdef void max_pool(const floating* Z__fp, const floating* b__f, floating* A__q, floating* rowmax,
                   Py_ssize_t F, Py_ssize_t Oy, Py_ssize_t Ox, Py_ssize_t Wd, Py_ssize_t ph,
                   Py_ssize_t pw, int act) noexcept nogil:
    """One example: a[f, py, px] = f(max over the window of z + b[f]) (ignore_border).

    z is held full width: row y of map f at f·Oy·Wd + y·Wd; columns x >= Ox
    are not outputs.  ``rowmax``: Wd elements of scratch.
    """
    cdef Py_ssize_t Pq = (Oy // ph) * (Ox // pw), f, q
    cdef floating bf
    if floating is double:
        cbp3_pool_max_d(Z__fp, A__q, rowmax, F, Oy, Ox, Wd, ph, pw)
    else:
        cbp3_pool_max_f(Z__fp, A__q, rowmax, F, Oy, Ox, Wd, ph, pw)
    for f in range(F):
        bf = b__f[f]
        for q in range(f * Pq, (f + 1) * Pq):
            A__q[q] = A__q[q] + bf
    activate(A__q, A__q, 1, F * Pq, act)


cdef inline void unpool(const floating* D__q, const floating* Z__fp, floating* D__fp,
                        floating* scratch, Py_ssize_t F, Py_ssize_t Oy, Py_ssize_t Ox,
                        Py_ssize_t Wd, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """One example: δz = δ of the pooled value wherever z equals its window's maximum, else 0.

    Every element equal to the maximum gets it, as Theano's max-pooling
    gradient (DownsampleFactorMaxGrad) gives it: on MNIST, windows of equal
    values (blank or saturated patches) are common.  Full width, as z.
    ``scratch``: F·Py·Px + 2·Wd elements (the maxima, then the kernel's).
    """
    cdef Py_ssize_t Pq = (Oy // ph) * (Ox // pw)
    if floating is double:
        cbp3_pool_max_d(Z__fp, scratch, scratch + F * Pq, F, Oy, Ox, Wd, ph, pw)
        cbp3_unpool_d(D__q, Z__fp, scratch, D__fp, scratch + F * Pq, F, Oy, Ox, Wd, ph, pw)
    else:
        cbp3_pool_max_f(Z__fp, scratch, scratch + F * Pq, F, Oy, Ox, Wd, ph, pw)
        cbp3_unpool_f(D__q, Z__fp, scratch, D__fp, scratch + F * Pq, F, Oy, Ox, Wd, ph, pw)


# The filters' gradient from patches (the step kernel, vectorised along the
# taps) from this many taps on; below, from shifted rows (the forward kernel,
# along the positions).  Measured on the book's layers: 25 taps 2x faster
# shifted, 500 taps 1.7x faster from patches.
cdef enum:
    PATCHES_FROM = 64


cdef inline void _shifted_rows(const floating* X__n, const floating** rows, Py_ssize_t C,
                               Py_ssize_t H, Py_ssize_t Wd, Py_ssize_t K) noexcept nogil:
    # rows[(c, i, j)] = &x[c, i, j]: read Oy·Wd long, row (c, i, j) holds
    # x[c, y+i, x+j] at y·Wd + x, so z = Wf · rows is the convolution at every
    # (y, x) of the full width (x >= Ox: not an output) without copying
    # patches.  The last rows run K − 1 past the channel: X__n is padded.
    cdef Py_ssize_t c, i, j
    for c in range(C):
        for i in range(K):
            for j in range(K):
                rows[(c * K + i) * K + j] = X__n + (c * H + i) * Wd + j


cdef inline void _step_product(const floating* Dt__om, const floating** A_rows, floating* W__oi,
                               Py_ssize_t M, Py_ssize_t O, Py_ssize_t I,
                               floating* pack) noexcept nogil:
    # W = Dt A (W zeroed first: the step kernel computes β W + Dt A with β = 0).
    memset(W__oi, 0, O * I * sizeof(floating))
    if floating is double:
        cbp_step_d(Dt__om, A_rows, W__oi, 0, M, O, I, pack)
    else:
        cbp_step_f(Dt__om, A_rows, W__oi, 0, M, O, I, pack)


def conv_pool_forward(const floating[:, ::1] X__mn, const floating[:, ::1] Wf__fk,
                      const floating[::1] b__f, floating[:, ::1] Z__mp, floating[:, ::1] A__mq,
                      floating[:, ::1] xpad, Py_ssize_t[:, ::1] rows,
                      floating[:, ::1] packs, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd,
                      Py_ssize_t K, Py_ssize_t ph, Py_ssize_t pw, int act, int num_threads=1):
    """A ConvPoolLayer's forward pass over a mini-batch: z = Wf ⋆ x, pool, + b, f.

    Per example, z (F, Oy·Wd, full width) = Wf (F, C·K·K) times the C·K·K
    shifted rows of x (the step kernel's product, vectorised along the
    positions).  Each thread takes a share of the examples; ``xpad``,
    ``rows`` and ``packs`` have one row per thread (C·H·Wd + K elements,
    C·K·K pointers, PACK elements).
    """
    cdef Py_ssize_t M = X__mn.shape[0], F = Wf__fk.shape[0], CKK = Wf__fk.shape[1]
    cdef Py_ssize_t Oy = H - K + 1, Ox = Wd - K + 1, N = C * H * Wd
    cdef Py_ssize_t Q = A__mq.shape[1]
    cdef int nt = _c3_threads(num_threads, 2 * M * F * CKK * Oy * Wd, min(M, packs.shape[0]))
    cdef int tid
    cdef Py_ssize_t lo, hi, m
    cdef const floating** rp
    assert CKK == C * K * K and X__mn.shape[1] == N and Z__mp.shape[0] == M
    assert Z__mp.shape[1] == F * Oy * Wd and Q == F * (Oy // ph) * (Ox // pw)
    assert xpad.shape[0] >= nt and xpad.shape[1] >= N + K and rows.shape[0] >= nt
    assert rows.shape[1] >= CKK and packs.shape[1] >= PACK and b__f.shape[0] == F
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(M, 1, tid, nt)
        hi = _c3_cut(M, 1, tid + 1, nt)
        rp = <const floating**>&rows[tid, 0]
        memset(&xpad[tid, N], 0, K * sizeof(floating))
        _shifted_rows(&xpad[tid, 0], rp, C, H, Wd, K)
        for m in range(lo, hi):
            memcpy(&xpad[tid, 0], &X__mn[m, 0], N * sizeof(floating))
            _step_product(&Wf__fk[0, 0], rp, &Z__mp[m, 0], CKK, F, Oy * Wd, &packs[tid, 0])
            # (x's copy is done with until the next example: its first row
            # holds the pooling's scratch)
            max_pool(&Z__mp[m, 0], &b__f[0], &A__mq[m, 0], &xpad[tid, 0], F, Oy, Ox, Wd, ph, pw,
                     act)


def conv_pool_backward(const floating[:, ::1] D__mq, const floating[:, ::1] Z__mp,
                       const floating[:, ::1] X__mn, floating[:, ::1] Wf__fk, floating[::1] b__f,
                       floating[:, ::1] WfT__kf, floating[:, ::1] Dz__mp, floating[:, ::1] G__mkf,
                       floating[:, ::1] P__rk, floating[:, ::1] Dt__fr, Py_ssize_t[::1] prows,
                       floating[:, ::1] E__tkp, floating[:, ::1] xpad, floating[:, ::1] dxpad,
                       Py_ssize_t[:, ::1] rows, const floating[::1] zeros__f,
                       floating[:, ::1] pool, floating[:, ::1] Dx__mn, const floating[:, ::1] Ax__mn, int act_below,
                       bint need_input, double alpha, double beta, floating[:, ::1] packs,
                       Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wd, Py_ssize_t K,
                       Py_ssize_t ph, Py_ssize_t pw, int num_threads=1):
    """A ConvPoolLayer's backward pass and SGD step.

    ``D__mq`` is δ of the pooled pre-activations (∂C/∂(pool(z) + b)); it is
    routed to the maxima (δz, full width; ``Z__mp`` is the forward pass's z,
    ``X__mn`` its input).  Then, with the old filters, each thread a share
    of the examples:

    * BP3 per example, for a few taps (C·K·K < PATCH_TAPS, the first layer):
      G_m[(c, i, j), f] = Σ_(y,x) δz[f, y, x] x[c, y+i, x+j] (the forward
      kernel's product of x's shifted rows with δz's rows); for many taps,
      x's patches P (im2col) and α δz (filter-major) for the step kernel;
    * BP2 (if ``need_input``): E = Wfᵀ δz (C·K·K, Oy·Wd), and
      δx[c, y+i, x+j] = Σ E[(c, i, j), (y, x)] (shifted rows added in (i, j)
      order), times f'(a below) (``Ax__mn``, activation ``act_below``);

    and then the step, each thread a share of the filters:
    Wf <- β Wf + α Σ_m G_m (summed over m in order), or Wf <- β Wf + Σ_r α δz_r P_r
    (the step kernel), and b <- b + α Σ δ (pooled).  Which way is decided by
    the shape alone, so results do not depend on the thread count.

    Scratch: ``WfT__kf`` (C·K·K, F), ``G__mkf`` (M, C·K·K·F) or ``P__rk``
    (M·Oy·Ox, C·K·K), ``Dt__fr`` (F, M·Oy·Ox) and ``prows`` (M·Oy·Ox); per thread
    ``E__tkp`` (C·K·K·Oy·Wd), ``xpad`` and ``dxpad`` (C·H·Wd + K), ``rows``
    (C·K·K + F pointers), ``pool`` (F·Py·Px + 2·Wd: the routing's).
    """
    cdef Py_ssize_t M = D__mq.shape[0], F = Wf__fk.shape[0], CKK = Wf__fk.shape[1]
    cdef Py_ssize_t Oy = H - K + 1, Ox = Wd - K + 1, N = C * H * Wd
    cdef Py_ssize_t Pf = Oy * Wd, Pq = (Oy // ph) * (Ox // pw), q, R = Oy * Ox, y, x
    cdef bint patches = CKK >= PATCHES_FROM
    cdef int nt = _c3_threads(num_threads, 4 * M * F * CKK * Oy * Wd, packs.shape[0])
    cdef int tid
    cdef Py_ssize_t lo, hi, m, p, f, k, c, i, j
    cdef floating a = <floating>alpha, bt = <floating>beta
    cdef floating sb, g
    cdef floating* dx
    cdef const floating** rp
    cdef const floating** dp
    assert CKK == C * K * K and Dz__mp.shape[0] == M and Dz__mp.shape[1] == F * Pf
    assert X__mn.shape[1] == N
    assert patches or (G__mkf.shape[0] == M and G__mkf.shape[1] == CKK * F)
    assert not patches or (P__rk.shape[0] == M * R and P__rk.shape[1] == CKK
                           and Dt__fr.shape[0] == F and Dt__fr.shape[1] == M * R
                           and prows.shape[0] == M * R)
    assert Z__mp.shape[0] == M and Z__mp.shape[1] == F * Pf and WfT__kf.shape[0] == CKK
    assert rows.shape[0] >= nt and rows.shape[1] >= CKK + F and zeros__f.shape[0] == F
    assert xpad.shape[0] >= nt and xpad.shape[1] >= N + K and packs.shape[1] >= PACK
    assert pool.shape[0] >= nt and pool.shape[1] >= F * Pq + 2 * Wd
    assert not need_input or (E__tkp.shape[0] >= nt and E__tkp.shape[1] >= CKK * Pf
                              and dxpad.shape[0] >= nt and dxpad.shape[1] >= N + K
                              and Dx__mn.shape[0] == M and Dx__mn.shape[1] == N
                              and Ax__mn.shape[0] == M and Ax__mn.shape[1] == N)
    if need_input:
        with nogil:
            for f in range(F):
                for k in range(CKK):
                    WfT__kf[k, f] = Wf__fk[f, k]
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(M, 1, tid, nt)
        hi = _c3_cut(M, 1, tid + 1, nt)
        rp = <const floating**>&rows[tid, 0]
        dp = rp + CKK
        memset(&xpad[tid, N], 0, K * sizeof(floating))
        _shifted_rows(&xpad[tid, 0], rp, C, H, Wd, K)
        for m in range(lo, hi):
            unpool(&D__mq[m, 0], &Z__mp[m, 0], &Dz__mp[m, 0], &pool[tid, 0], F, Oy, Ox, Wd, ph,
                   pw)
            if patches:
                im2col(&X__mn[m, 0], &P__rk[m * R, 0], C, H, Wd, K)
                for f in range(F):
                    for y in range(Oy):
                        for x in range(Ox):
                            Dt__fr[f, m * R + y * Ox + x] = a * Dz__mp[m, f * Pf + y * Wd + x]
            else:
                memcpy(&xpad[tid, 0], &X__mn[m, 0], N * sizeof(floating))
                # (δz is 0 at the columns x >= Ox, so what x's shifted rows hold
                # there adds nothing)
                _gemm_forward(rp, &Dz__mp[m, 0], &zeros__f[0], &G__mkf[m, 0], CKK, F, Pf, F,
                              &packs[tid, 0])
            if need_input:
                for f in range(F):
                    dp[f] = &Dz__mp[m, f * Pf]
                _step_product(&WfT__kf[0, 0], dp, &E__tkp[tid, 0], F, CKK, Pf, &packs[tid, 0])
                dx = &dxpad[tid, 0]
                if floating is double:
                    cbp3_col2im_d(&E__tkp[tid, 0], dx, C, H, Wd, K, Pf)
                else:
                    cbp3_col2im_f(&E__tkp[tid, 0], dx, C, H, Wd, K, Pf)
                if act_below == LINEAR:
                    memcpy(&Dx__mn[m, 0], dx, N * sizeof(floating))
                else:
                    for p in range(N):
                        Dx__mn[m, p] = dx[p] * _derivative(act_below, Ax__mn[m, p])
    if patches:
        with nogil:
            for p in range(M * R):
                prows[p] = <Py_ssize_t>&P__rk[p, 0]
    # every thread's BP2 read the old filters: now the step, by shares of filters
    # (of 4: the step kernel's tiles, so a share is cut as the whole)
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(F, 4, tid, nt)
        hi = _c3_cut(F, 4, tid + 1, nt)
        for f in range(lo, hi):
            # ∂C/∂b: the pooled δ (b is added after the pooling, so a tied
            # window's δ counts once here, however many maxima it reached)
            sb = 0
            for m in range(M):
                for q in range(f * Pq, (f + 1) * Pq):
                    sb = sb + D__mq[m, q]
            b__f[f] = b__f[f] + a * sb
            if not patches:
                for k in range(CKK):
                    g = 0
                    for m in range(M):
                        g = g + G__mkf[m, k * F + f]
                    Wf__fk[f, k] = bt * Wf__fk[f, k] + a * g
        if patches and hi > lo:
            if floating is double:
                cbp_step_d(&Dt__fr[lo, 0], <const double**>&prows[0], &Wf__fk[lo, 0], bt,
                           M * R, hi - lo, CKK, &packs[tid, 0])
            else:
                cbp_step_f(&Dt__fr[lo, 0], <const float**>&prows[0], &Wf__fk[lo, 0], bt,
                           M * R, hi - lo, CKK, &packs[tid, 0])


# ---------------------------------------------------------------------------
# Fully connected and softmax layers: z = (1 - p) a W + b (W__oi = wᵀ)
# ---------------------------------------------------------------------------

def dense_forward(const floating[:, ::1] A__mi, const floating[:, ::1] W__oi,
                  const floating[::1] b__o, floating[:, ::1] Z__mo, floating[:, ::1] out__mo,
                  Py_ssize_t[::1] rows, floating[::1] zeros__o, floating[:, ::1] packs,
                  double keep, int act, int num_threads=1):
    """z = keep · (a Wᵀ) + b, then out = f(z) (softmax: row by row).

    ``keep`` is 1 − p_dropout at inference (the original scales the product,
    not the weights) and 1 in training, where a holds the masked input.
    Each thread takes a share of the examples; out may alias Z.
    """
    cdef Py_ssize_t M = A__mi.shape[0], I = A__mi.shape[1], O = W__oi.shape[0]
    cdef int nt = _c3_threads(num_threads, 2 * M * O * I, min(packs.shape[0], (M + 3) // 4))
    cdef int tid
    cdef Py_ssize_t lo, hi, m, o
    cdef floating k = <floating>keep
    assert W__oi.shape[1] == I and Z__mo.shape[0] == M and Z__mo.shape[1] == O
    assert out__mo.shape[0] == M and out__mo.shape[1] == O and b__o.shape[0] == O
    assert rows.shape[0] >= M and packs.shape[1] >= PACK
    cdef const floating** rp = <const floating**>&rows[0]
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(M, 4, tid, nt)
        hi = _c3_cut(M, 4, tid + 1, nt)
        if hi > lo:
            _row_pointers(&A__mi[lo, 0], hi - lo, I, rp + lo)
            if keep == 1:
                _gemm_forward(rp + lo, &W__oi[0, 0], &b__o[0], &Z__mo[lo, 0], hi - lo, O, I, O,
                              &packs[tid, 0])
            else:
                _gemm_forward(rp + lo, &W__oi[0, 0], &zeros__o[0], &Z__mo[lo, 0], hi - lo, O, I,
                              O, &packs[tid, 0])
                for m in range(lo, hi):
                    for o in range(O):
                        Z__mo[m, o] = k * Z__mo[m, o] + b__o[o]
            activate(&Z__mo[lo, 0], &out__mo[lo, 0], hi - lo, O, act)


def dense_backward(const floating[:, ::1] D__mo, const floating[:, ::1] W__oi,
                   floating[:, ::1] E__mi, const floating[:, ::1] A__mi, int act_below,
                   floating[:, ::1] mask__mi, bint masked, floating[:, ::1] packs,
                   int num_threads=1):
    """BP2: δ below = (δ W) ⊙ mask ⊙ f'(a below), each thread a share of the columns.

    ``A__mi`` is the layer below's output (unmasked); ``mask__mi`` the
    layer's dropout mask when ``masked``.
    """
    cdef Py_ssize_t M = D__mo.shape[0], O = D__mo.shape[1], I = W__oi.shape[1]
    cdef int nt = _c3_threads(num_threads, 2 * M * O * I, packs.shape[0])
    cdef int tid
    cdef Py_ssize_t lo, hi, m, i
    assert W__oi.shape[0] == O and E__mi.shape[0] == M and E__mi.shape[1] == I
    assert A__mi.shape[0] == M and A__mi.shape[1] == I
    assert not masked or (mask__mi.shape[0] == M and mask__mi.shape[1] == I)
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(I, UNIT_COLS, tid, nt)
        hi = _c3_cut(I, UNIT_COLS, tid + 1, nt)
        if hi > lo:
            if floating is double:
                cbp_backward_d(&D__mo[0, 0], &W__oi[0, 0], &E__mi[0, 0], M, O, I, lo, hi,
                               &packs[tid, 0])
            else:
                cbp_backward_f(&D__mo[0, 0], &W__oi[0, 0], &E__mi[0, 0], M, O, I, lo, hi,
                               &packs[tid, 0])
            for m in range(M):
                if masked:
                    for i in range(lo, hi):
                        E__mi[m, i] = E__mi[m, i] * mask__mi[m, i]
                if act_below != LINEAR:
                    for i in range(lo, hi):
                        E__mi[m, i] = E__mi[m, i] * _derivative(act_below, A__mi[m, i])


def dense_step(const floating[:, ::1] D__mo, const floating[:, ::1] A__mi, floating[:, ::1] W__oi,
               floating[::1] b__o, floating[:, ::1] Dt__om, Py_ssize_t[::1] rows,
               double alpha, double beta, floating[:, ::1] packs, int num_threads=1):
    """BP3/BP4 and the step: W <- β W + α Σ_m δ_m a_mᵀ, b <- b + α Σ_m δ_m.

    ``A__mi`` is the input the forward pass used (masked in training); each
    thread updates a share of the weight rows.
    """
    cdef Py_ssize_t M = D__mo.shape[0], O = D__mo.shape[1], I = A__mi.shape[1]
    cdef int nt = _c3_threads(num_threads, 2 * M * O * I, packs.shape[0])
    cdef int tid
    cdef Py_ssize_t lo, hi
    assert A__mi.shape[0] == M and W__oi.shape[0] == O and W__oi.shape[1] == I
    assert b__o.shape[0] == O and Dt__om.shape[0] == O and Dt__om.shape[1] == M
    assert rows.shape[0] >= M
    cdef const floating** rp = <const floating**>&rows[0]
    with nogil:
        _row_pointers(&A__mi[0, 0], M, I, rp)
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        lo = _c3_cut(O, UNIT_ROWS, tid, nt)
        hi = _c3_cut(O, UNIT_ROWS, tid + 1, nt)
        if hi > lo:
            gradient_step(&D__mo[0, lo], rp, &W__oi[lo, 0], &b__o[lo], M, hi - lo, I,
                          <floating>alpha, <floating>beta, 1, &Dt__om[lo, 0], &packs[tid, 0], O)


def softmax_log_likelihood_error(const floating[:, ::1] A__mo, const int32_t[::1] y__m,
                                 floating[:, ::1] D__mo):
    """BP1 for softmax + log-likelihood: δ = a − e_y; returns Σ_m −ln a_m[y_m].

    The mean over the mini-batch (the original's cost) is the caller's α = −η/M.
    """
    cdef Py_ssize_t M = A__mo.shape[0], O = A__mo.shape[1], m, o
    cdef double total = 0
    assert y__m.shape[0] == M and D__mo.shape[0] == M and D__mo.shape[1] == O
    with nogil:
        for m in range(M):
            for o in range(O):
                D__mo[m, o] = A__mo[m, o]
            D__mo[m, y__m[m]] = D__mo[m, y__m[m]] - 1
            total -= log(<double>A__mo[m, y__m[m]])
    return total


# ---------------------------------------------------------------------------
# Dropout masks: a counter-based generator (SplitMix64's finaliser)
# ---------------------------------------------------------------------------

cdef inline uint64_t _splitmix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef uint64_t _keep_below(double p_dropout):
    # The draws kept: top-53-bit values u with u·2⁻⁵³ < 1 − p, i.e. u < ceil((1 − p)·2⁵³)
    # (1 − p and its scaling by 2⁵³ are exact in double).
    return <uint64_t>ceil((1.0 - p_dropout) * 9007199254740992.0)


def dropout_mask(floating[::1] mask, uint64_t seed, uint64_t counter, double p_dropout):
    """mask[k] = 1 with probability 1 − p_dropout, else 0, from the k-th draw after ``counter``.

    Draw n is SplitMix64's output for the state seed + (n + 1)·γ: any
    element can be computed alone, so the masks depend on (seed, counter)
    only, never on threads or on how the calls are cut.
    """
    cdef uint64_t keep = _keep_below(p_dropout)
    if mask.shape[0] == 0:
        return
    with nogil:
        if floating is double:
            cbp3_dropout_d(NULL, &mask[0], NULL, mask.shape[0], seed, counter, keep)
        else:
            cbp3_dropout_f(NULL, &mask[0], NULL, mask.shape[0], seed, counter, keep)


def dropout_apply(const floating[:, ::1] X__mi, floating[:, ::1] mask__mi, floating[:, ::1] out__mi,
                  uint64_t seed, uint64_t counter, double p_dropout):
    """dropout_mask into ``mask__mi`` (its elements in row order) and out = X ⊙ mask, in one pass."""
    cdef Py_ssize_t n = X__mi.shape[0] * X__mi.shape[1]
    cdef uint64_t keep = _keep_below(p_dropout)
    assert mask__mi.shape[0] == X__mi.shape[0] and mask__mi.shape[1] == X__mi.shape[1]
    assert out__mi.shape[0] == X__mi.shape[0] and out__mi.shape[1] == X__mi.shape[1]
    if n == 0:
        return
    with nogil:
        if floating is double:
            cbp3_dropout_d(&X__mi[0, 0], &mask__mi[0, 0], &out__mi[0, 0], n, seed, counter, keep)
        else:
            cbp3_dropout_f(&X__mi[0, 0], &mask__mi[0, 0], &out__mi[0, 0], n, seed, counter, keep)


include "_team3.pxi"


#: Elements of packing scratch each thread needs for the kernels above.
PACK_ELEMENTS = PACK
#: Taps (C·K·K) from which the filters' gradient is taken from patches.
PATCH_TAPS = PATCHES_FROM
