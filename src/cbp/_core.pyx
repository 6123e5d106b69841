# cython: language_level=3
"""The Cython core of cbp: one kernel per backpropagation equation.

Every kernel works on a mini-batch of ``M`` examples held as rows, on raw
pointers with explicit dimensions, without the GIL.  Array names carry their
axes after a double underscore (thinc's convention):

``m``  examples of the mini-batch          ``o``  units of the layer (n_out)
``i``  units of the layer below (n_in)     ``p``  all parameters, flattened

so ``W__oi`` is a weight matrix laid out as network.py lays it out,
``A__mi`` the activations of the layer below, one row per example, and
``D__mo`` the errors δ of the layer, one row per example.

The equations (note 001):

* feedforward  z^l = W^l a^{l-1} + b^l,  a^l = f(z^l)   -> :func:`feedforward_layer`, :func:`activate`
* BP1          δ^L = ∇_a C ⊙ f'(z^L)                    -> :func:`output_error`
* BP2          δ^l = ((W^{l+1})^T δ^{l+1}) ⊙ f'(z^l)     -> :func:`backpropagate_error`
* BP3, BP4     ∂C/∂b^l = δ^l,  ∂C/∂W^l = δ^l (a^{l-1})^T -> :func:`gradient_step`
* SGD          W <- (1 - ηλ/n) W - (η/m) Σ_x δ_x a_xᵀ,   b <- b - (η/m) Σ_x δ_x

The core trusts its inputs: shapes, dtypes, finiteness and codes are checked
by the Python layer (``network.py``, ``sgd.py``) before any call lands here.

The parts, each included where its text stands: ``_equations.pxi`` (the
kernels above and the step rules), ``_batch.pxi`` (one thread: a mini-batch
and a run of them), ``_team.pxi`` (a team of threads on one network, and how
many threads run), ``_fused.pxi`` (the fused sweep for narrow first layers),
``_conv.pxi``, ``_team3.pxi`` and ``_phases3.pxi`` (cbp.network3's layers, its
team, and the team's phases: each layer's share of a mini-batch).  This file
keeps the scalar helpers, the entry points that check and allocate before a
kernel runs, and Python's shuffle; ``_wrappers.pxi`` the ``py_`` wrappers the
tests call and the FMA probe.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, expf, log, log1p, log1pf, pow, sqrt, sqrtf, tanh, tanhf
from libc.float cimport DBL_MAX
from libc.string cimport memcpy, memset
from cpython.exc cimport PyErr_CheckSignals
cimport openmp

import numbers
import os

import numpy as np

cdef extern from "_kernels.h" nogil:
    void cbp_prefetch(const void* p, Py_ssize_t nbytes)
    void cbp_prefetch_plan(const void* base, const Py_ssize_t* idx, Py_ssize_t n,
                           Py_ssize_t row_bytes)
    void cbp_prefetch_rest()
    Py_ssize_t cbp_prefetch_pending()
    void cbp_sigmoid_d(const double* z, double* a, Py_ssize_t n)
    void cbp_sigmoid_f(const float* z, float* a, Py_ssize_t n)
    # δ ⊙ f'(z), f'(z) read off a = f(z) as _derivative reads it (BP2's product)
    void cbp_times_sigmoid_prime_d(double* d, const double* a, Py_ssize_t n)
    void cbp_times_sigmoid_prime_f(float* d, const float* a, Py_ssize_t n)
    void cbp_times_tanh_prime_d(double* d, const double* a, Py_ssize_t n)
    void cbp_times_tanh_prime_f(float* d, const float* a, Py_ssize_t n)
    void cbp_times_relu_prime_d(double* d, const double* a, Py_ssize_t n)
    void cbp_times_relu_prime_f(float* d, const float* a, Py_ssize_t n)
    void cbp_times_exp_prime_d(double* d, const double* a, Py_ssize_t n)
    void cbp_times_exp_prime_f(float* d, const float* a, Py_ssize_t n)
    # Register-blocked products (see _kernels.h); d = float64, f = float32.
    void cbp_forward_d(const double** A_rows, const double* W__oi, const double* b__o,
                       double* Z__mo, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, Py_ssize_t ldz,
                       double* pack)
    void cbp_forward_f(const float** A_rows, const float* W__oi, const float* b__o,
                       float* Z__mo, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, Py_ssize_t ldz,
                       float* pack)
    void cbp_backward_d(const double* D__mo, const double* W__oi, double* E__mi,
                        Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, Py_ssize_t i0, Py_ssize_t i1,
                        double* pack)
    void cbp_backward_f(const float* D__mo, const float* W__oi, float* E__mi,
                        Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, Py_ssize_t i0, Py_ssize_t i1,
                        float* pack)
    int cbp_bp2_step_ok(Py_ssize_t M)
    void cbp_bp2_step_d(const double* D__mo, const double* Dt__om, const double** A_rows,
                        double* W__oi, double* E__mi, double beta, Py_ssize_t M, Py_ssize_t O,
                        Py_ssize_t I, Py_ssize_t i0, Py_ssize_t i1)
    void cbp_bp2_step_f(const float* D__mo, const float* Dt__om, const float** A_rows,
                        float* W__oi, float* E__mi, float beta, Py_ssize_t M, Py_ssize_t O,
                        Py_ssize_t I, Py_ssize_t i0, Py_ssize_t i1)
    ctypedef struct cbp_team_barrier:
        int count
        int generation
        int n
    void cbp_team_wait(cbp_team_barrier* b)
    void cbp_step_d(const double* Dt__om, const double** A_rows, double* W__oi,
                    double beta, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, double* pack)
    void cbp_step_f(const float* Dt__om, const float** A_rows, float* W__oi,
                    float beta, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I, float* pack)
    # Benchmark probes: independent FMA chains; the clone the loader chose.
    double cbp_fma_peak_d(long long n, double x)
    float cbp_fma_peak_f(long long n, float x)
    double cbp_fma_peak_d64(long long n, double x)
    float cbp_fma_peak_f64(long long n, float x)
    const char* cbp_kernel_variant()
    # Input checks: finite?, min, max in one pass.
    int cbp_scan_d(const double* x, Py_ssize_t n, double* lo, double* hi)
    int cbp_scan_f(const float* x, Py_ssize_t n, float* lo, float* hi)
    double cbp_absmax_d(const double* x, Py_ssize_t n)
    float cbp_absmax_f(const float* x, Py_ssize_t n)

# Activation and cost codes; the tables in activations.py and costs.py map
# names to these numbers.
cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LINEAR = 3
    SOFTMAX = 4
    EXP = 5           # output only: a = e^z, the log link of the Poisson cost

cdef enum:
    QUADRATIC = 0
    SSE = 1
    CROSS_ENTROPY = 2
    LOG_LIKELIHOOD = 3
    POISSON = 4       # half Poisson deviance, after an EXP output

# The codes above by name: activations.py and costs.py build their tables
# from these, so the numbers are written once, here.
ACTIVATION_CODES = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "linear": LINEAR,
                    "softmax": SOFTMAX, "exp": EXP}
COST_CODES = {"quadratic": QUADRATIC, "sse": SSE, "cross_entropy": CROSS_ENTROPY,
              "log_likelihood": LOG_LIKELIHOOD, "poisson": POISSON}

# Rows of a feedforward chunk: small enough that one chunk's activations stay
# in L1/L2, large enough to amortise each pass over a weight matrix; and
# twice the least mini-batch the GEMM-blocked products take (_gemm.h), so
# that a call's rows can be cut into chunks that all reach it (_chunk_start):
# every row of a call is then summed by the same kernels, and an example's
# output does not depend on its place in the input.
cdef extern from "_kernels.h":
    enum: GEMM_MIN_M "CBP_GEMM_MIN_M"
cdef enum:
    CHUNK = 2 * GEMM_MIN_M
FEEDFORWARD_CHUNK = CHUNK


cdef inline Py_ssize_t _chunk_start(Py_ssize_t c, Py_ssize_t n_chunks, Py_ssize_t n) noexcept nogil:
    # First row of feedforward chunk c of n rows (c = n_chunks: n).  CHUNK
    # rows each, except that the last two share the rest (CHUNK + 1 to
    # 2 CHUNK rows) evenly: no chunk is shorter than CHUNK / 2 unless the
    # whole call is.
    cdef Py_ssize_t base
    if c >= n_chunks:
        return n
    if c < n_chunks - 1 or n_chunks < 2:
        return c * CHUNK
    base = (n_chunks - 2) * CHUNK
    return base + (n - base + 1) // 2

# Elements of packing scratch the product kernels need, for either dtype
# (the GEMM-blocked ones of _gemm.h the most: 2.4 MB in float64).
cdef extern from "_kernels.h":
    enum: PACK "CBP_PACK_ELEMS"

# Least work (flops) per thread and phase of a mini-batch for a team of
# threads to pay (see _team_size).
cdef enum:
    TEAM_MIN_FLOPS = 1000000


# ---------------------------------------------------------------------------
# Scalar helpers
# ---------------------------------------------------------------------------

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _softplus(floating z) noexcept nogil:
    # ln(1 + e^z) without overflow: = max(z, 0) + ln(1 + e^{-|z|}).
    if z > 0:
        return z + _log1p(_exp(-z))
    return _log1p(_exp(z))


cdef inline floating _row_max(const floating* z, Py_ssize_t n) noexcept nogil:
    cdef floating best = z[0]
    cdef Py_ssize_t k
    for k in range(1, n):
        if z[k] > best:
            best = z[k]
    return best


cdef inline floating _derivative(int act, floating a) noexcept nogil:
    # f'(z) written in terms of a = f(z): no second exp, and the forward
    # pass only needs to keep the activations.
    if act == SIGMOID:
        return a * (1 - a)
    if act == TANH:
        return 1 - a * a
    if act == RELU:
        return 1 if a > 0 else 0
    if act == EXP:
        return a
    return 1


cdef Py_ssize_t _widest(const Py_ssize_t[::1] sizes) noexcept:
    # The widest layer after the input (Layout.max_width): the size of δ's rows.
    cdef Py_ssize_t l, widest = 0
    for l in range(1, sizes.shape[0]):
        if sizes[l] > widest:
            widest = sizes[l]
    return widest


include "_equations.pxi"
include "_batch.pxi"
include "_team.pxi"


def workspace_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, num_threads=1):
    """Elements of scratch memory the drivers need for mini-batches of M rows.

    ``num_threads`` > 1: room for the team train_epoch may form when that
    many are asked for (at most :func:`usable_threads`).
    """
    return _workspace_size(sizes, M) + _team_extra(sizes, M, _usable(num_threads))


def team_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, requested):
    """Threads train_epoch uses for mini-batches of M rows when ``requested`` are allowed."""
    return _team_size(sizes, M, _usable(requested))


cdef Py_ssize_t _scratch_size(const Py_ssize_t[::1] sizes, Py_ssize_t M) noexcept:
    # What _backprop_batch uses: M row pointers (2M elements hold them for
    # either dtype), a^1 .. a^L, z^L, three δ-sized buffers (δ^l, δ^{l-1},
    # α δᵀ) and the kernels' packing scratch; an even count keeps whatever
    # follows aligned for pointers.
    cdef Py_ssize_t l, total = 2 * M
    for l in range(1, sizes.shape[0]):
        total += M * sizes[l]
    total += M * sizes[sizes.shape[0] - 1] + 3 * M * _widest(sizes) + PACK
    return total + total % 2


cdef Py_ssize_t _workspace_size(const Py_ssize_t[::1] sizes, Py_ssize_t M) noexcept:
    # The scratch, then M pointers to the inputs, the gathered targets and
    # the gathered sample weights.
    cdef Py_ssize_t total = _scratch_size(sizes, M) + 3 * M + M * sizes[sizes.shape[0] - 1]
    return total + total % 2


cdef bint _misaligned(const floating[:, ::1] A) noexcept:
    return A.shape[0] > 0 and A.shape[1] > 0 and (<size_t>&A[0, 0]) % sizeof(floating) != 0


include "_fused.pxi"


cdef bint _order_finite(const floating[:, ::1] X, const Py_ssize_t[::1] order, Py_ssize_t start,
                        Py_ssize_t stop, double* xs) noexcept:
    # _rows_finite over the rows order[start .. stop-1] of X.
    cdef Py_ssize_t k
    cdef const floating* row
    cdef bint ok = True
    with nogil:
        for k in range(start, stop):
            row = &X[order[k], 0]
            if not _rows_finite(&row, 1, X.shape[1], xs):
                ok = False
                break
    return ok


def train_epoch(floating[::1] P, floating[::1] V,
                const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] woff, const Py_ssize_t[::1] boff,
                int hidden, int output, int cost,
                const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] order,
                Py_ssize_t mini_batch_size, Py_ssize_t first, Py_ssize_t last,
                double eta, double decay, double mu, floating[::1] work,
                int rule=RULE_SGD, const double[::1] rule_args=None, num_threads=1,
                const floating[::1] sample_weight=None, double[::1] w2_sum=None,
                double[::1] x_scan=None):
    """Run mini-batches ``first .. last-1`` of one epoch, without the GIL.

    Mini-batch k holds the examples ``order[k*m : (k+1)*m]`` (the last one may
    be shorter, as in network.py).  ``decay`` is λ/n, ``mu`` the momentum.
    ``rule`` picks the step rule (0 SGD, 1 Nesterov, 2 Adam) whose state is
    ``V``; ``rule_args`` is (α, β1, β2, ε, t): the per-mini-batch L2 strength
    α (α/M w joins the gradient), Adam's constants and its step count so far.
    Returns ``(batches_done, examples_done, Σ C_x)``.  Ctrl-C raises
    KeyboardInterrupt at a mini-batch boundary.  ``num_threads`` is the most
    threads one plain-SGD/momentum step may use (``team_size`` says how many
    pay; ``work`` must be sized for ``num_threads``); the weights do not
    depend on it.

    ``sample_weight`` (one per row of X, taken through ``order`` as Y is):
    scikit-learn's weighted mean.  Each mini-batch's δ^L_x is scaled by w_x
    and its 1/M (in the gradient and in α/M) becomes 1/Σ_x w_x; its cost
    enters Σ C_x as (M/Σ w_x) Σ_x w_x C_x, so that the unweighted case is
    unchanged; a mini-batch whose weights sum to 0 takes no step and adds
    nothing (``batches_done`` counts the steps taken).  ``w2_sum`` (a length-1
    array), when given, gets Σ over the steps of ‖W‖² before each, each
    times M/Σ w_x as the cost: the L2 part of scikit-learn's ``loss_``.

    ``x_scan`` (2 float64: flag, largest |x|), when given: the rows of X are
    not trusted to be finite.  Each mini-batch's rows are checked before it
    steps (one thread: as the mini-batch is gathered, while its rows come
    into the cache; a team or the sweep: all of this call's rows first);
    ``x_scan[1]`` rises to the largest |x| among them.  At the first non-finite row
    the call returns before that mini-batch's step, with ``x_scan[0] = 1``:
    the caller restores the network (earlier mini-batches of the call may
    have stepped) and refuses X.
    """
    cdef Layout lay = _layout(sizes, woff, boff, hidden, output, cost)
    cdef Py_ssize_t n = order.shape[0], I = sizes[0], O = sizes[lay.L]
    cdef Py_ssize_t scratch = _scratch_size(sizes, mini_batch_size)
    if _misaligned(X) or _misaligned(Y):
        # Rows not on an element boundary (np.frombuffer at an odd offset, a
        # block Dask deserialised): the kernels' loads get an aligned copy.
        X = np.array(X)
        Y = np.array(Y)
    cdef Rule step_rule
    if work.shape[0] < _workspace_size(sizes, mini_batch_size):
        raise ValueError("workspace too small")
    # Every example index must name a row of X and Y: the drivers take rows by
    # pointer, so no bounds check (not even the debug build's) would see one
    # out of range.  The Python layer never hands one over; only the indices
    # of this call's mini-batches are compared (one pass per epoch in all).
    cdef Py_ssize_t k, rows = min(X.shape[0], Y.shape[0])
    if sample_weight is not None:
        rows = min(rows, sample_weight.shape[0])
    cdef const floating* swp = NULL
    cdef double* w2p = NULL
    if sample_weight is not None and sample_weight.shape[0] > 0:
        swp = &sample_weight[0]
    if w2_sum is not None:
        w2p = &w2_sum[0]
    cdef double* xsp = NULL
    if x_scan is not None:
        if x_scan.shape[0] < 2:
            raise ValueError("x_scan must hold 2 values")
        xsp = &x_scan[0]
    cdef Py_ssize_t nb = (n + mini_batch_size - 1) // mini_batch_size if mini_batch_size > 0 else 0
    for k in range(min(max(first, 0), nb) * mini_batch_size,
                   min(min(last, nb) * mini_batch_size, n)):
        if order[k] < 0 or order[k] >= rows:
            raise IndexError(f"order[{k}] = {order[k]} is not a row of X and Y ({rows} rows)")
    # -- step rule (issue 13) --
    step_rule.code = rule
    step_rule.l2 = step_rule.beta1 = step_rule.beta2 = step_rule.epsilon = step_rule.t = 0
    if rule_args is not None:
        step_rule.l2, step_rule.beta1, step_rule.beta2 = rule_args[0], rule_args[1], rule_args[2]
        step_rule.epsilon, step_rule.t = rule_args[3], rule_args[4]
    if V.shape[0] < (0 if rule == RULE_SGD else (2 if rule == RULE_NESTEROV else 3) * lay.n_params):
        raise ValueError("step-rule state too small")
    # -- end step rule --
    # The other rules run on one thread.
    cdef int nt = _team_size(sizes, mini_batch_size, _usable(num_threads)) if rule == RULE_SGD else 1
    # The sweep takes neither per-example weights nor the ‖W‖² sum (issue 23):
    # those calls run the general drivers.
    cdef bint fused = (n > 0 and last <= nb and swp == NULL and w2p == NULL
                       and _fused_fits(&lay, mini_batch_size, rule, mu, nt))
    if xsp != NULL and (fused or nt > 1) and not _order_finite(
            X, order, min(max(first, 0), nb) * mini_batch_size,
            min(min(last, nb) * mini_batch_size, n), xsp):
        # (The team and the sweep read rows ahead: their rows are checked
        # before the run instead; nothing has stepped.)
        return 0, 0, 0.0
    if fused:
        return _train_fused(&lay, P, X, Y, order, mini_batch_size, first, last, eta, decay, work,
                            scratch, &step_rule)
    if nt > 1:
        if work.shape[0] < _workspace_size(sizes, mini_batch_size) + _team_extra(
                sizes, mini_batch_size, nt):
            raise ValueError("workspace too small for the threads")
        return _epoch_team(&lay, &P[0], &V[0], X, Y, order, mini_batch_size, first, last,
                           <floating>eta, decay, <floating>mu, &work[0], scratch,
                           &work[0] + _workspace_size(sizes, mini_batch_size), nt, &step_rule,
                           swp, w2p)
    cdef Py_ssize_t counts[2]
    cdef double total[1]
    cdef int stopped
    cdef const floating* Xp = &X[0, 0] if X.shape[0] > 0 else NULL
    cdef const floating* Yp = &Y[0, 0] if Y.shape[0] > 0 else NULL
    counts[0] = counts[1] = 0
    total[0] = 0
    with nogil:
        stopped = _epoch_alone(&lay, &P[0], &V[0], Xp, Yp, &order[0] if n > 0 else NULL, n,
                               mini_batch_size, first, last, eta, decay, mu, &work[0], scratch,
                               &step_rule, counts, total, swp, w2p, xsp)
    if stopped:
        _reraise()
    return counts[0], counts[1], total[0]


def feedforward(const floating[::1] P, const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] woff,
                const Py_ssize_t[::1] boff, int hidden, int output,
                const floating[:, ::1] X, floating[:, ::1] out, floating[:, ::1] z_out,
                floating[::1] work, num_threads=1):
    """a^L for every row of X, in chunks of FEEDFORWARD_CHUNK rows, parallel over chunks.

    ``work`` holds ``num_threads`` areas of ``workspace_size(sizes, FEEDFORWARD_CHUNK)``.
    ``z_out`` (same shape as ``out``) receives z^L.
    """
    cdef Layout lay = _layout(sizes, woff, boff, hidden, output, 0)
    cdef Py_ssize_t n = X.shape[0], I = sizes[0], O = sizes[lay.L]
    cdef Py_ssize_t per_thread = _workspace_size(sizes, CHUNK)
    cdef Py_ssize_t scratch = _scratch_size(sizes, CHUNK)
    cdef Py_ssize_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start, M
    cdef floating* w
    cdef const floating** rows0
    cdef int nt = _usable(num_threads)
    if _misaligned(X):
        X = np.array(X)     # (see train_epoch)
    if work.shape[0] < per_thread * nt:
        raise ValueError("workspace too small")
    if n == 0:
        return
    if nt == 1:
        # No parallel region at all (a forked child must not start one).
        with nogil:
            for c in range(n_chunks):
                start = _chunk_start(c, n_chunks, n)
                M = _chunk_start(c + 1, n_chunks, n) - start
                rows0 = <const floating**>(&work[0] + scratch)
                _row_pointers(&X[start, 0], M, I, rows0)
                _forward_all(&lay, &P[0], rows0, &work[0] + 2 * CHUNK, M, &z_out[start, 0],
                             &out[start, 0], <const floating**>&work[0], &work[0] + scratch - PACK)
        return
    for c in prange(n_chunks, nogil=True, num_threads=nt, schedule="static"):
        w = &work[0] + threadid() * per_thread
        start = _chunk_start(c, n_chunks, n)
        M = _chunk_start(c + 1, n_chunks, n) - start
        rows0 = <const floating**>(w + scratch)
        _row_pointers(&X[start, 0], M, I, rows0)
        _forward_all(&lay, &P[0], rows0, w + 2 * CHUNK, M, &z_out[start, 0], &out[start, 0],
                     <const floating**>w, w + scratch - PACK)


def gradient(const floating[::1] P, floating[::1] G,
             const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] woff, const Py_ssize_t[::1] boff,
             int hidden, int output, int cost,
             const floating[:, ::1] X, const floating[:, ::1] Y, floating[::1] work):
    """G <- Σ_x ∇C_x over the rows of X (BP1-BP4, no update).  Returns Σ C_x."""
    cdef Layout lay = _layout(sizes, woff, boff, hidden, output, cost)
    cdef double cost_sum
    cdef Py_ssize_t M = X.shape[0]
    cdef const floating** rows0 = <const floating**>(&work[0] + _scratch_size(sizes, M))
    if work.shape[0] < _workspace_size(sizes, M):
        raise ValueError("workspace too small")
    with nogil:
        memset(&G[0], 0, G.shape[0] * sizeof(floating))
        _row_pointers(&X[0, 0], M, sizes[0], rows0)
        cost_sum = _backprop_batch(&lay, <floating*>&P[0], &G[0], rows0, &work[0],
                                   M, &Y[0, 0], 1, 1, 1, NULL)
    return cost_sum


def costs(const floating[:, ::1] Z, const floating[:, ::1] A, const floating[:, ::1] Y,
          int output, int cost, double[::1] out):
    """C_x for each row, from z^L and a^L (stable logs)."""
    cdef Py_ssize_t m, O = Z.shape[1]
    with nogil:
        for m in range(Z.shape[0]):
            out[m] = example_cost(&Z[m, 0], &A[m, 0], &Y[m, 0], O, output, cost)


def all_finite(const floating[::1] x):
    """True when no element is NaN or ±Inf."""
    cdef double big = 0
    if x.shape[0] == 0:
        return True
    with nogil:
        # The largest |x| by its bits (NaN's lie above Inf's), in vectors:
        # a chain of acc += x·0 (one add at a time, ~1 ns an element) took
        # 3.6% of a one-epoch call on [784, 1024, 1024, 10] checking the
        # parameters after each run of mini-batches.
        if floating is double:
            big = cbp_absmax_d(&x[0], x.shape[0])
        else:
            big = cbp_absmax_f(&x[0], x.shape[0])
    return big <= DBL_MAX


def scan(const floating[::1] x):
    """(all finite, smallest, largest) of x in one pass; the range only means something when finite."""
    cdef double lo_d = 0, hi_d = 0
    cdef float lo_f = 0, hi_f = 0
    cdef int ok
    if x.shape[0] == 0:
        return True, 0.0, 0.0
    with nogil:
        if floating is double:
            ok = cbp_scan_d(&x[0], x.shape[0], &lo_d, &hi_d)
        else:
            ok = cbp_scan_f(&x[0], x.shape[0], &lo_f, &hi_f)
            lo_d = lo_f
            hi_d = hi_f
    return bool(ok), lo_d, hi_d


include "_wrappers.pxi"


# -- Python's random.shuffle, faithfully --------------------------------------
#
# network.py shuffles with the standard library's random.shuffle; a student
# seeds it with random.seed and expects the book's order.  CPython's shuffle
# draws j = randbelow(i + 1) for i = n-1 .. 1, each randbelow by rejection on
# getrandbits(k), k = (i + 1).bit_length(), and getrandbits(k <= 32) is the top
# k bits of one MT19937 word.  Doing those draws here, on a copy of the
# generator's state, gives the same swaps at C speed; the caller writes the
# advanced state back with random.setstate.

from libc.stdint cimport uint32_t

cdef enum:
    MT_N = 624
    MT_M = 397


cdef inline uint32_t _mt_next(uint32_t* mt, Py_ssize_t* index) noexcept nogil:
    # genrand_uint32 of CPython's Modules/_randommodule.c (the reference MT19937).
    cdef uint32_t y
    cdef int kk
    if index[0] >= MT_N:
        for kk in range(MT_N - MT_M):
            y = (mt[kk] & 0x80000000U) | (mt[kk + 1] & 0x7fffffffU)
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ (0x9908b0dfU if y & 1U else 0U)
        for kk in range(MT_N - MT_M, MT_N - 1):
            y = (mt[kk] & 0x80000000U) | (mt[kk + 1] & 0x7fffffffU)
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ (0x9908b0dfU if y & 1U else 0U)
        y = (mt[MT_N - 1] & 0x80000000U) | (mt[0] & 0x7fffffffU)
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ (0x9908b0dfU if y & 1U else 0U)
        index[0] = 0
    y = mt[index[0]]
    index[0] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9d2c5680U
    y ^= (y << 15) & 0xefc60000U
    y ^= y >> 18
    return y


def python_shuffle(uint32_t[::1] mt, Py_ssize_t index, Py_ssize_t[::1] x):
    """Shuffle ``x`` in place as ``random.shuffle`` does from the state (mt, index).

    ``mt`` (624 words) and ``index`` are ``random.getstate()[1]``; ``mt`` is
    advanced in place and the new index returned.  Lengths up to 2**32.
    """
    if mt.shape[0] != MT_N or not 0 <= index <= MT_N or x.shape[0] > (1 << 32):
        raise ValueError("python_shuffle: a 624-word state, index in [0, 624], len(x) <= 2**32")
    cdef Py_ssize_t i, j, t, bound
    cdef int k
    cdef uint32_t* state = &mt[0]
    with nogil:
        for i in range(x.shape[0] - 1, 0, -1):
            bound = i + 1
            k = 0
            while (bound >> k) != 0:
                k += 1
            j = _mt_next(state, &index) >> (32 - k)
            while j >= bound:
                j = _mt_next(state, &index) >> (32 - k)
            t = x[i]
            x[i] = x[j]
            x[j] = t
    return index
include "_conv.pxi"
