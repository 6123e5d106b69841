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
    void cbp_sigmoid_d(const double* z, double* a, Py_ssize_t n)
    void cbp_sigmoid_f(const float* z, float* a, Py_ssize_t n)
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


# ---------------------------------------------------------------------------
# Kernels: one per equation
# ---------------------------------------------------------------------------

cdef void feedforward_layer(const floating** A_rows, const floating* W__oi, const floating* b__o,
                            floating* Z__mo, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I,
                            floating* pack) noexcept nogil:
    """z^l = W^l a^{l-1} + b^l for each of the M examples: Z = A Wᵀ + b.

    ``A_rows[m]`` points at example m's a^{l-1}: a shuffled mini-batch is
    read where it lies, without a copy.
    """
    if floating is double:
        cbp_forward_d(A_rows, W__oi, b__o, Z__mo, M, O, I, O, pack)
    else:
        cbp_forward_f(A_rows, W__oi, b__o, Z__mo, M, O, I, O, pack)


cdef void _row_pointers(const floating* A__mi, Py_ssize_t M, Py_ssize_t I,
                        const floating** rows) noexcept nogil:
    cdef Py_ssize_t m
    for m in range(M):
        rows[m] = A__mi + m * I


cdef void activate(const floating* Z__mo, floating* A__mo, Py_ssize_t M, Py_ssize_t O,
                   int act) noexcept nogil:
    """a^l = f(z^l), row by row (softmax normalises each row). Z and A may alias."""
    cdef Py_ssize_t m, o
    cdef floating zmax, total, v
    cdef const floating* z
    cdef floating* a
    if act == SIGMOID:
        # vectorised exp (see _kernels.h); rows are contiguous
        if floating is double:
            cbp_sigmoid_d(Z__mo, A__mo, M * O)
        else:
            cbp_sigmoid_f(Z__mo, A__mo, M * O)
        return
    for m in range(M):
        z = Z__mo + m * O
        a = A__mo + m * O
        if act == TANH:
            for o in range(O):
                if floating is float:
                    a[o] = tanhf(z[o])
                else:
                    a[o] = tanh(z[o])
        elif act == RELU:
            for o in range(O):
                v = z[o]
                a[o] = v if v > 0 else 0
        elif act == EXP:
            for o in range(O):
                a[o] = _exp(z[o])
        elif act == SOFTMAX:
            # Shift by the row maximum: every exp argument is <= 0.
            zmax = _row_max(z, O)
            total = 0
            for o in range(O):
                v = _exp(z[o] - zmax)
                a[o] = v
                total += v
            for o in range(O):
                a[o] = a[o] / total
        elif A__mo != Z__mo:
            memcpy(a, z, O * sizeof(floating))


cdef void output_error(const floating* A__mo, const floating* Y__mo, floating* D__mo,
                       Py_ssize_t M, Py_ssize_t O, int act, int cost) noexcept nogil:
    """BP1: δ^L = ∇_a C ⊙ f'(z^L), in the cancelled form where the pair allows it.

    * sigmoid + cross-entropy:       δ = a − y
    * softmax + log-likelihood:      δ = a Σy − y   (= a − y for one-hot y)
    * sigmoid + log-likelihood:      δ = −y (1 − a)
    * exp + poisson (the only pair): δ = a − y
    * quadratic (sse: twice it):     ∇_a C = a − y, times f'(z) for an elementwise
      f, or through softmax's Jacobian: δ_j = a_j (g_j − Σ_k a_k g_k).
    """
    cdef Py_ssize_t m, o
    cdef const floating* a
    cdef const floating* y
    cdef floating* d
    cdef floating s, scale = 2 if cost == SSE else 1
    for m in range(M):
        a = A__mo + m * O
        y = Y__mo + m * O
        d = D__mo + m * O
        if cost == CROSS_ENTROPY or cost == POISSON:
            for o in range(O):
                d[o] = a[o] - y[o]
        elif cost == LOG_LIKELIHOOD:
            if act == SOFTMAX:
                s = 0
                for o in range(O):
                    s = s + y[o]
                for o in range(O):
                    d[o] = a[o] * s - y[o]
            else:
                for o in range(O):
                    d[o] = -y[o] * (1 - a[o])
        elif act == SOFTMAX:
            s = 0
            for o in range(O):
                s = s + a[o] * scale * (a[o] - y[o])
            for o in range(O):
                d[o] = a[o] * (scale * (a[o] - y[o]) - s)
        else:
            for o in range(O):
                d[o] = scale * (a[o] - y[o]) * _derivative(act, a[o])


cdef void weigh_output_error(floating* D__mo, const floating* w__m, Py_ssize_t M,
                             Py_ssize_t O) noexcept nogil:
    """Weighted BP1 (scikit-learn's sample_weight): δ^L_x <- w_x δ^L_x for each example x.

    The rest of the weighted step is the driver's: the mini-batch's 1/M
    (gradient and L2 term) becomes 1/Σ_x w_x, and its cost Σ_x C_x becomes
    (M / Σ_x w_x) Σ_x w_x C_x.  A mini-batch whose weights sum to 0 takes no step.
    """
    cdef Py_ssize_t m, o
    cdef floating w
    for m in range(M):
        w = w__m[m]
        for o in range(O):
            D__mo[m * O + o] *= w


cdef double sum_of_squares(const floating* P__p, Py_ssize_t n) noexcept nogil:
    """Σ_p P_p², in double: ‖W‖² over the weights (the L2 term's part of scikit-learn's loss)."""
    cdef Py_ssize_t p
    cdef double s = 0
    for p in range(n):
        s += <double>P__p[p] * <double>P__p[p]
    return s


cdef void backpropagate_error(const floating* D__mo, const floating* W__oi, const floating* A__mi,
                              floating* D__mi, Py_ssize_t M, Py_ssize_t O, Py_ssize_t I,
                              int act, floating* pack) noexcept nogil:
    """BP2: δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l), with f'(z^l) read off a^l.

    ``pack`` is PACK elements of scratch.
    """
    cdef Py_ssize_t p
    if floating is double:
        cbp_backward_d(D__mo, W__oi, D__mi, M, O, I, 0, I, pack)
    else:
        cbp_backward_f(D__mo, W__oi, D__mi, M, O, I, 0, I, pack)
    if act != LINEAR:
        for p in range(M * I):
            D__mi[p] *= _derivative(act, A__mi[p])


cdef void gradient_step(const floating* D__mo, const floating** A_rows, floating* W__oi, floating* b__o,
                        Py_ssize_t M, Py_ssize_t O, Py_ssize_t I,
                        floating alpha, floating beta, floating beta_b, floating* Dt__om,
                        floating* pack, Py_ssize_t ldd) noexcept nogil:
    """BP3 and BP4 summed over the mini-batch, folded into the step:

        W <- β W + α Σ_x δ_x a_xᵀ,      b <- β_b b + α Σ_x δ_x

    With β = 1 − ηλ/n, β_b = 1 and α = −η/m this is the SGD update with L2
    decay (biases are not decayed); on the velocity, β = β_b = μ gives the
    momentum update; with β = β_b = 1, α = 1 on zeroed W, b it accumulates
    the plain gradient Σ_x ∇C_x.
    Each weight is read and written once per mini-batch, so no gradient
    buffer is needed.  ``Dt__om`` is (O, M) scratch for α δᵀ, ``pack`` PACK
    elements of scratch; rows of δ lie ``ldd`` apart (O, or the layer's width
    when O units are a thread's share).
    """
    cdef Py_ssize_t m, o, o0, o1
    cdef floating v
    cdef floating sb[16]
    # α δᵀ, 16 units (a cache line of float32 δ) at a time: one unit at a
    # time read δ down a column, one cache line per example, and took 3.7%
    # of a one-epoch call on [784, 1024, 1024, 10] at m = 128.  Each bias
    # still sums its terms in the order m = 0, 1, ...
    for o0 in range(0, O, 16):
        o1 = min(O, o0 + 16)
        for o in range(o1 - o0):
            sb[o] = 0
        for m in range(M):
            for o in range(o0, o1):
                v = alpha * D__mo[m * ldd + o]
                Dt__om[o * M + m] = v
                sb[o - o0] = sb[o - o0] + v
        for o in range(o0, o1):
            b__o[o] = beta_b * b__o[o] + sb[o - o0]
    if floating is double:
        cbp_step_d(Dt__om, A_rows, W__oi, beta, M, O, I, pack)
    else:
        cbp_step_f(Dt__om, A_rows, W__oi, beta, M, O, I, pack)


cdef void momentum_step(floating* P__p, floating* V__p, Py_ssize_t n_weights,
                        Py_ssize_t n_total, floating decay) noexcept nogil:
    """v <- v − (ηλ/n) w (weights only), then θ <- θ + v for every parameter."""
    cdef Py_ssize_t p
    if decay != 0:
        for p in range(n_weights):
            V__p[p] -= decay * P__p[p]
    for p in range(n_total):
        P__p[p] += V__p[p]


# ---------------------------------------------------------------------------
# Step rules (issue 13).  Each rule gets the mini-batch's mean gradient G
# (BP1-BP4 into a zeroed buffer) and adds the L2 term d·w to the weights'
# entries itself; the state S of a rule lies in one buffer, as sgd.py's table
# of rules sizes it.  Rule 0 (plain SGD, classical momentum) needs no G: its
# step is folded into gradient_step (see _train_batch).
# ---------------------------------------------------------------------------

cdef enum:
    RULE_SGD = 0          # S: velocity (momentum only)
    RULE_NESTEROV = 1     # S: velocity, G
    RULE_ADAM = 2         # S: first moment, second moment, G

# The step rules by name, for sgd.RULES (classical momentum is rule 0 with μ > 0).
RULE_CODES = {"sgd": RULE_SGD, "nesterov": RULE_NESTEROV, "adam": RULE_ADAM}


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void nesterov_step(floating* P__p, floating* V__p, const floating* G__p,
                        Py_ssize_t n_weights, Py_ssize_t n_total,
                        floating eta, floating decay, floating mu) noexcept nogil:
    """Nesterov momentum as scikit-learn applies it:

        g <- ∇C + d w (weights only),  v <- μ v − η g,  θ <- θ + μ v − η g
    """
    cdef Py_ssize_t p
    cdef floating g, v
    for p in range(n_total):
        g = G__p[p]
        if p < n_weights:
            g = g + decay * P__p[p]
        v = mu * V__p[p] - eta * g
        V__p[p] = v
        P__p[p] += mu * v - eta * g


cdef void adam_step(floating* P__p, floating* M__p, floating* V__p, const floating* G__p,
                    Py_ssize_t n_weights, Py_ssize_t n_total, floating lr_t, floating decay,
                    floating beta1, floating beta2, floating epsilon) noexcept nogil:
    """Adam (Kingma & Ba) as scikit-learn applies it, with the bias corrections in lr_t:

        g <- ∇C + d w,  m <- β1 m + (1 − β1) g,  v <- β2 v + (1 − β2) g²,
        θ <- θ − lr_t m / (√v + ε),   lr_t = η √(1 − β2^t) / (1 − β1^t)
    """
    cdef Py_ssize_t p
    cdef floating g, m, v
    for p in range(n_total):
        g = G__p[p]
        if p < n_weights:
            g = g + decay * P__p[p]
        m = beta1 * M__p[p] + (1 - beta1) * g
        v = beta2 * V__p[p] + (1 - beta2) * g * g
        M__p[p] = m
        V__p[p] = v
        P__p[p] -= lr_t * m / (_sqrt(v) + epsilon)


cdef double example_cost(const floating* z, const floating* a, const floating* y, Py_ssize_t O,
                         int act, int cost) noexcept nogil:
    """C_x for one example, from z^L (for the logs, stably) and a^L."""
    cdef Py_ssize_t o
    cdef double c = 0, zmax, lse, diff
    if cost == POISSON:
        # Half the Poisson deviance, Σ [y ln(y/a) − y + a], with ln a = z (exp output).
        for o in range(O):
            if y[o] != 0:
                c += <double>y[o] * (log(<double>y[o]) - <double>z[o]) - <double>y[o]
            c += <double>a[o]
        return c
    if cost == QUADRATIC or cost == SSE:
        for o in range(O):
            diff = <double>a[o] - <double>y[o]
            c += diff * diff
        return 0.5 * c if cost == QUADRATIC else c
    if act == SOFTMAX:
        # ln a_j = z_j − max − ln Σ exp(z − max)
        zmax = _row_max(z, O)
        lse = 0
        for o in range(O):
            lse += exp(z[o] - zmax)
        lse = log(lse) + zmax
        for o in range(O):
            if y[o] != 0:
                c -= <double>y[o] * (z[o] - lse)
        return c
    # Sigmoid: −ln a = softplus(−z),  −ln(1 − a) = softplus(z).  The products
    # are taken in double: a float32 target near its range's end times a
    # softplus above 1 would overflow to +Inf in float32.
    for o in range(O):
        if y[o] != 0:
            c += <double>y[o] * <double>_softplus(-z[o])
        if cost == CROSS_ENTROPY and y[o] != 1:
            c += (1 - <double>y[o]) * <double>_softplus(z[o])
    return c


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
    cdef Py_ssize_t l
    lay.L = sizes.shape[0] - 1
    lay.sizes = &sizes[0]
    lay.woff = &woff[0]
    lay.boff = &boff[0]
    lay.n_weights = boff[0]
    lay.n_params = boff[lay.L - 1] + sizes[lay.L]
    lay.max_width = 0
    for l in range(1, lay.L + 1):
        if sizes[l] > lay.max_width:
            lay.max_width = sizes[l]
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


# ---------------------------------------------------------------------------
# One network trained by a team of threads (issue 12).  The team runs a whole
# run of mini-batches inside one parallel region; in each phase every thread
# takes a share of the layer's outputs (units for the forward pass and the
# step, columns of δ^{l-1} for BP2), cut at multiples of the kernels' tiles,
# and the threads meet at a barrier before the next phase reads the results.
# No element is summed by more than one thread and a share is cut into the
# same tiles as the whole, so the weights are bit-identical for every team
# size.  The O(M·n_out) output layer (cost, BP1) is thread 0's.
# ---------------------------------------------------------------------------

cdef enum:
    UNIT_ROWS = 12        # shares of weight rows: multiples of the 3- and 4-row tiles
    UNIT_COLS = 48        # shares of BP2's columns: multiples of its strips (3 vectors)


cdef inline void _share(Py_ssize_t n, Py_ssize_t unit, int tid, int nt,
                        Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Thread tid's part [lo, hi) of 0..n, cut at multiples of unit.
    cdef Py_ssize_t units = (n + unit - 1) // unit
    lo[0] = min(n, (units * tid // nt) * unit)
    hi[0] = min(n, (units * (tid + 1) // nt) * unit)


cdef double _backprop_team(const Layout* lay, floating* P, floating* T, const floating** rows0,
                           floating* work, Py_ssize_t M, const floating* Y__mo,
                           floating alpha, floating beta, floating beta_b, int tid, int nt,
                           const floating** rows, floating* pack,
                           cbp_team_barrier* bar, const floating* w__m) noexcept nogil:
    # _backprop_batch run by each thread of the team on its shares; work is
    # shared (laid out as there), rows (M pointers) and pack are the
    # thread's own.  Σ C_x is returned by thread 0 (0 by the others).
    cdef Py_ssize_t l, m, p, lo, hi, n_in, n_out, L = lay.L
    cdef floating* A[64]
    cdef floating* Z
    cdef floating* D
    cdef floating* D_below
    cdef floating* Dt
    cdef floating* out
    cdef floating* tmp
    cdef const floating** A_in = rows0
    cdef double cost_sum = 0
    cdef Py_ssize_t O = lay.sizes[L]
    Dt = _carve(lay, work, M, A, &Z, &D, &D_below)

    # feedforward: each thread its share of each layer's units
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        out = Z if l == L - 1 else A[l + 1]
        _share(n_out, UNIT_ROWS, tid, nt, &lo, &hi)
        if hi > lo:
            if floating is double:
                cbp_forward_d(A_in, P + lay.woff[l] + lo * n_in, P + lay.boff[l] + lo, out + lo,
                              M, hi - lo, n_in, n_out, pack)
            else:
                cbp_forward_f(A_in, P + lay.woff[l] + lo * n_in, P + lay.boff[l] + lo, out + lo,
                              M, hi - lo, n_in, n_out, pack)
            if l < L - 1:
                for m in range(M):
                    activate(out + m * n_out + lo, out + m * n_out + lo, 1, hi - lo, lay.hidden)
        if l < L - 1:
            _row_pointers(A[l + 1], M, n_out, rows)
            A_in = rows
        cbp_team_wait(bar)
    if tid == 0:
        activate(Z, A[L], M, O, lay.output)
        cost_sum = _output_layer(lay, Z, A[L], Y__mo, D, w__m, M)
    cbp_team_wait(bar)

    for l in range(L - 1, -1, -1):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        if l > 0:
            # BP2 with the old W^l: every thread is done with it before any step
            _share(n_in, UNIT_COLS, tid, nt, &lo, &hi)
            if hi > lo:
                if floating is double:
                    cbp_backward_d(D, P + lay.woff[l], D_below, M, n_out, n_in, lo, hi, pack)
                else:
                    cbp_backward_f(D, P + lay.woff[l], D_below, M, n_out, n_in, lo, hi, pack)
                if lay.hidden != LINEAR:
                    for m in range(M):
                        for p in range(m * n_in + lo, m * n_in + hi):
                            D_below[p] *= _derivative(lay.hidden, A[l][p])
            _row_pointers(A[l], M, n_in, rows)
            cbp_team_wait(bar)
        _share(n_out, UNIT_ROWS, tid, nt, &lo, &hi)
        if hi > lo:
            gradient_step(D + lo, rows0 if l == 0 else rows, T + lay.woff[l] + lo * n_in,
                          T + lay.boff[l] + lo, M, hi - lo, n_in, alpha, beta, beta_b,
                          Dt + lo * M, pack, n_out)
        # δ^l is overwritten by the next BP2: every thread is done with it first
        cbp_team_wait(bar)
        tmp = D
        D = D_below
        D_below = tmp
    return cost_sum


cdef double _train_team(const Layout* lay, floating* P, floating* V, const floating** rows0,
                        floating* work, Py_ssize_t M, const floating* Y__mo, floating eta,
                        floating decay, floating mu, int tid, int nt, const floating** rows,
                        floating* pack, cbp_team_barrier* bar, double mass,
                        const floating* w__m) noexcept nogil:
    # _train_batch by the team.
    cdef double cost_sum
    cdef Py_ssize_t lo, hi
    if mu == 0:
        return _backprop_team(lay, P, P, rows0, work, M, Y__mo, <floating>(-eta / mass),
                              1 - eta * decay, 1, tid, nt, rows, pack, bar, w__m)
    cost_sum = _backprop_team(lay, P, V, rows0, work, M, Y__mo, <floating>(-eta / mass), mu, mu,
                              tid, nt, rows, pack, bar, w__m)
    _share(lay.n_params, 64, tid, nt, &lo, &hi)
    if hi > lo:
        momentum_step(P + lo, V + lo, max(0, min(lay.n_weights, hi) - lo), hi - lo, eta * decay)
    # (the next mini-batch's first barrier keeps its forward pass behind this)
    return cost_sum


cdef extern from "Python.h":
    # The plain C call: returns -1 with the exception set, and does not make
    # Cython jump out of the parallel region while the team waits.
    int _check_signals "PyErr_CheckSignals"() nogil


cdef int _reraise() except -1:
    # Propagates the exception _check_signals left set.
    return -1


cdef extern from *:
    """
    #include <sched.h>
    /* The start of a team's run: thread 0 sets the barrier's count to the
       team OpenMP actually started, then opens; the others wait for that
       before their first barrier, so none can count against a stale size. */
    static inline void cbp_team_open(int *flag) {
        __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
    }
    static inline void cbp_team_await_open(int *flag) {
        for (int spin = 0; !__atomic_load_n(flag, __ATOMIC_ACQUIRE); spin++)
            if (spin >= 4000) sched_yield();
    }
    """
    void cbp_team_open(int* flag) nogil
    void cbp_team_await_open(int* flag) nogil


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
    cdef Py_ssize_t k, start, M, r
    cdef int failed
    cdef double mass
    for k in range(first, last):
        start = k * mini_batch_size
        M = mini_batch_size if start + mini_batch_size <= n else n - start
        # The inputs are read where they lie (one pointer per example);
        # the targets, a few numbers each, are gathered.
        for r in range(M):
            rows0[r] = X + order[start + r] * I
            memcpy(Yb + r * O, Y + order[start + r] * O, O * sizeof(floating))
        if xs != NULL and not _rows_finite(rows0, M, I, xs):
            return 0
        for r in range(start + M, min(start + M + mini_batch_size, n)):
            cbp_prefetch(X + order[r] * I, I * sizeof(floating))
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
        if (k - first + 1) % 16 == 0:
            # Ctrl-C lands here, between mini-batches, so the network
            # it leaves behind is consistent.
            with gil:
                failed = _check_signals()
            if failed != 0:
                return 1
    return 0


cdef Py_ssize_t _team_area(Py_ssize_t M) noexcept nogil:
    # A thread's own scratch: M row pointers and the kernels' packing buffer.
    return 2 * M + PACK


cdef int _team_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, int requested) noexcept:
    # Threads pay when each one's share of a mini-batch is large against the
    # barriers between its phases (a few µs each): below ~1 MFLOP per
    # thread and phase, one thread is as fast.
    cdef Py_ssize_t l, flops = 0, phases = 3 * (sizes.shape[0] - 1) + 1
    cdef int nt = requested
    for l in range(sizes.shape[0] - 1):
        flops += 6 * M * sizes[l] * sizes[l + 1]
    while nt > 1 and flops // (nt * phases) < _team_min_flops:
        nt -= 1
    return nt


cdef Py_ssize_t _team_min_flops = TEAM_MIN_FLOPS


def team_min_flops(value=None):
    """The least work per thread and phase for a team to be used; set it with ``value``.

    Returns the value in force before the call.  For tests and benchmarks:
    0 makes every run with ``num_threads`` > 1 use a team.
    """
    global _team_min_flops
    old = _team_min_flops
    if value is not None:
        _team_min_flops = max(0, int(value))
    return old


cdef int _last_team = 0


def last_team_size():
    """Threads OpenMP started for the last team train_epoch formed (0: none yet).  For tests."""
    return _last_team


cdef (Py_ssize_t, Py_ssize_t, double) _epoch_team(
        const Layout* lay, floating* P, floating* V, const floating[:, ::1] X,
        const floating[:, ::1] Y, const Py_ssize_t[::1] order, Py_ssize_t mini_batch_size,
        Py_ssize_t first, Py_ssize_t last, floating eta, double decay, floating mu,
        floating* work, Py_ssize_t scratch, floating* extra, int nt, Rule* rule,
        const floating* sw, double* w2) except *:
    # The mini-batch loop of train_epoch, run by a team of at most nt threads
    # that lives for the whole run.  OpenMP may start fewer (OMP_THREAD_LIMIT,
    # OMP_DYNAMIC, a call from inside another parallel region): the barrier
    # counts, and the shares are cut for, the team that actually runs, and a
    # lone thread runs the one-thread driver.  Each step decays by
    # λ/n + α/M (α = rule.l2), as _rule_batch does on one thread; with the
    # weights sw, M is Σ w_x there too, which thread 0 sums and shares.
    global _last_team
    cdef Py_ssize_t n = order.shape[0], I = lay.sizes[0], O = lay.sizes[lay.L]
    cdef const floating** rows0 = <const floating**>(work + scratch)
    cdef floating* Yb = work + scratch + 2 * mini_batch_size
    cdef floating* wb = Yb + mini_batch_size * O
    cdef Py_ssize_t k, start, M, r, area = _team_area(mini_batch_size)
    cdef double shared_mass[1]
    cdef double mass
    cdef Py_ssize_t counts[2]
    cdef double total[1]
    cdef int stop[1]
    cdef int opened[2]        # the team is open; its size
    cdef cbp_team_barrier bar
    cdef cbp_team_barrier* barp = &bar
    cdef int tid, team
    cdef double c, l2 = rule.l2
    cdef const floating** rows
    cdef floating* pack
    cdef const floating* Xp = &X[0, 0] if X.shape[0] > 0 else NULL
    cdef const floating* Yp = &Y[0, 0] if Y.shape[0] > 0 else NULL
    cdef const Py_ssize_t* orderp = &order[0] if n > 0 else NULL
    counts[0] = counts[1] = 0
    total[0] = 0
    stop[0] = 0
    opened[0] = opened[1] = 0
    bar.count = bar.generation = 0
    bar.n = nt
    # (Cython makes these firstprivate: give them values to copy.)
    tid = team = 0
    k = start = M = r = 0
    c = 0
    mass = 0
    rows = NULL
    pack = NULL
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        team = openmp.omp_get_num_threads()
        if tid == 0:
            barp.n = team
            opened[1] = team
            cbp_team_open(&opened[0])
        else:
            cbp_team_await_open(&opened[0])
        if team == 1:
            stop[0] = _epoch_alone(lay, P, V, Xp, Yp, orderp, n, mini_batch_size, first, last,
                                   eta, decay, mu, work, scratch, rule, counts, total, sw, w2,
                                   NULL)
        else:
            if tid == 0:
                rows = <const floating**>work
                pack = work + scratch - PACK
            else:
                rows = <const floating**>(extra + (tid - 1) * area)
                pack = extra + (tid - 1) * area + 2 * mini_batch_size
            for k in range(first, last):
                start = k * mini_batch_size
                M = mini_batch_size if start + mini_batch_size <= n else n - start
                if tid == 0:
                    for r in range(M):
                        rows0[r] = &X[order[start + r], 0]
                        memcpy(Yb + r * O, &Y[order[start + r], 0], O * sizeof(floating))
                    shared_mass[0] = _batch_mass(sw, orderp + start, M, wb)
                # Every thread reads all of the next mini-batch's rows (its
                # forward packs them, its step reads them), so each brings
                # them into its own core's cache: prefetched by thread 0
                # alone, the others packed them from thread 0's cache or
                # from memory, 3x slower (perf, [784,256,256,10] m=64).
                for r in range(start + M, min(start + M + mini_batch_size, n)):
                    cbp_prefetch(&X[order[r], 0], I * sizeof(floating))
                cbp_team_wait(barp)
                mass = shared_mass[0]
                if mass == 0:
                    # No step; every thread has read the mass before thread 0
                    # gathers the next mini-batch.
                    cbp_team_wait(barp)
                else:
                    if tid == 0 and w2 != NULL:
                        # The others only read W until a barrier thread 0 is behind.
                        w2[0] += (M / mass) * sum_of_squares(P, lay.n_weights)
                    c = _train_team(lay, P, V, rows0, work, M, Yb, eta,
                                    <floating>(decay + l2 / mass), mu, tid, team, rows, pack,
                                    barp, mass, NULL if sw == NULL else wb)
                    if tid == 0:
                        total[0] += c if sw == NULL else (M / mass) * c
                        counts[0] += 1
                if tid == 0:
                    counts[1] += M
                if (k - first + 1) % 16 == 0:
                    # Ctrl-C lands here, between mini-batches, for the whole team.
                    if tid == 0:
                        with gil:
                            if _check_signals() != 0:
                                stop[0] = 1
                    cbp_team_wait(barp)
                    if stop[0]:
                        break
    _last_team = opened[1]
    if stop[0]:
        _reraise()
    return counts[0], counts[1], total[0]


# -- how many threads: OpenMP's count, cut to what can run --------------------
#
# GNU OpenMP's thread pool does not survive fork(): a child forked after the
# parent ran a parallel region (multiprocessing's default start method on
# Linux) hangs in its first team.  A forked child therefore runs everything
# on one thread, never entering a parallel region: the weights are the same.

cdef bint _forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_threads():
    """OpenMP's thread count for a new parallel region (OMP_NUM_THREADS, threadpoolctl).

    1 in a process forked from one that imported cbp (see :func:`usable_threads`).
    """
    return 1 if _forked_child else openmp.omp_get_max_threads()


cdef int _usable(object requested) except -1:
    # The most threads a request may get: at most OMP_THREAD_LIMIT and four
    # per core (or OMP_NUM_THREADS, if more), one in a forked child.  A team
    # of a million threads cannot start and its workspace would not fit.
    if isinstance(requested, (bool, np.bool_)) or not isinstance(requested, numbers.Integral):
        raise TypeError(f"num_threads must be an integer; got {type(requested).__name__}")
    if not 1 <= requested <= 2147483647:
        raise ValueError(f"num_threads must be an integer from 1 to 2**31 - 1; got {requested}")
    if _forked_child:
        return 1
    cdef int cap = max(4 * openmp.omp_get_num_procs(), openmp.omp_get_max_threads())
    cap = min(cap, openmp.omp_get_thread_limit())
    return max(1, min(requested, cap))


def usable_threads(requested):
    """The most threads a call asking for ``requested`` (an int >= 1) runs on.

    ``requested`` cut to ``OMP_THREAD_LIMIT`` and to four threads per core
    (or ``OMP_NUM_THREADS`` when larger); 1 in a child forked from a process
    that imported cbp, whose OpenMP thread pool does not survive the fork.
    """
    return _usable(requested)


MAX_LAYERS = 63


def workspace_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, num_threads=1):
    """Elements of scratch memory the drivers need for mini-batches of M rows.

    ``num_threads`` > 1: room for the team train_epoch may form when that
    many are asked for (at most :func:`usable_threads`).
    """
    return _workspace_size(sizes, M) + (_usable(num_threads) - 1) * _team_area(M)


def team_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, requested):
    """Threads train_epoch uses for mini-batches of M rows when ``requested`` are allowed."""
    return _team_size(sizes, M, _usable(requested))


cdef Py_ssize_t _scratch_size(const Py_ssize_t[::1] sizes, Py_ssize_t M) noexcept:
    # What _backprop_batch uses: M row pointers (2M elements hold them for
    # either dtype), a^1 .. a^L, z^L, three δ-sized buffers (δ^l, δ^{l-1},
    # α δᵀ) and the kernels' packing scratch; an even count keeps whatever
    # follows aligned for pointers.
    cdef Py_ssize_t l, total = 2 * M, widest = 0
    for l in range(1, sizes.shape[0]):
        total += M * sizes[l]
        if sizes[l] > widest:
            widest = sizes[l]
    total += M * sizes[sizes.shape[0] - 1] + 3 * M * widest + PACK
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
        if work.shape[0] < _workspace_size(sizes, mini_batch_size) + (nt - 1) * _team_area(
                mini_batch_size):
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


# ---------------------------------------------------------------------------
# py_ wrappers: each kernel callable from Python on small arrays, for tests,
# the teaching trace and the microbenchmarks.  No checks beyond shapes.
# ---------------------------------------------------------------------------

def py_feedforward_layer(const floating[:, ::1] A__mi, const floating[:, ::1] W__oi,
                         const floating[::1] b__o, floating[:, ::1] Z__mo):
    """Z = A Wᵀ + b (z^l = W^l a^{l-1} + b^l per row)."""
    assert A__mi.shape[1] == W__oi.shape[1] and Z__mo.shape[0] == A__mi.shape[0]
    assert Z__mo.shape[1] == W__oi.shape[0] and b__o.shape[0] == W__oi.shape[0]
    cdef Py_ssize_t[::1] rows = np.empty(A__mi.shape[0], dtype=np.intp)
    cdef floating[::1] pack = np.empty(PACK, dtype=np.float64 if floating is double else np.float32)
    with nogil:
        _row_pointers(&A__mi[0, 0], A__mi.shape[0], A__mi.shape[1], <const floating**>&rows[0])
        feedforward_layer(<const floating**>&rows[0], &W__oi[0, 0], &b__o[0], &Z__mo[0, 0],
                          A__mi.shape[0], W__oi.shape[0], W__oi.shape[1], &pack[0])


def py_activate(const floating[:, ::1] Z__mo, floating[:, ::1] A__mo, int act):
    """A = f(Z)."""
    assert Z__mo.shape[0] == A__mo.shape[0] and Z__mo.shape[1] == A__mo.shape[1]
    with nogil:
        activate(&Z__mo[0, 0], &A__mo[0, 0], Z__mo.shape[0], Z__mo.shape[1], act)


def py_output_error(const floating[:, ::1] A__mo, const floating[:, ::1] Y__mo,
                    floating[:, ::1] D__mo, int act, int cost):
    """BP1."""
    assert A__mo.shape[0] == Y__mo.shape[0] == D__mo.shape[0]
    assert A__mo.shape[1] == Y__mo.shape[1] == D__mo.shape[1]
    with nogil:
        output_error(&A__mo[0, 0], &Y__mo[0, 0], &D__mo[0, 0], A__mo.shape[0], A__mo.shape[1],
                     act, cost)


def py_backpropagate_error(const floating[:, ::1] D__mo, const floating[:, ::1] W__oi,
                           const floating[:, ::1] A__mi, floating[:, ::1] D__mi, int act):
    """BP2."""
    assert D__mo.shape[1] == W__oi.shape[0] and A__mi.shape[1] == W__oi.shape[1]
    assert D__mi.shape[0] == A__mi.shape[0] == D__mo.shape[0] and D__mi.shape[1] == A__mi.shape[1]
    cdef floating[::1] pack = np.empty(PACK, dtype=np.float64 if floating is double else np.float32)
    with nogil:
        backpropagate_error(&D__mo[0, 0], &W__oi[0, 0], &A__mi[0, 0], &D__mi[0, 0],
                            D__mo.shape[0], W__oi.shape[0], W__oi.shape[1], act, &pack[0])


def py_gradient_step(const floating[:, ::1] D__mo, const floating[:, ::1] A__mi,
                     floating[:, ::1] W__oi, floating[::1] b__o, double alpha, double beta):
    """BP3/BP4 folded into W <- βW + α Σ δ aᵀ, b <- b + α Σ δ."""
    assert D__mo.shape[0] == A__mi.shape[0] and D__mo.shape[1] == W__oi.shape[0]
    assert A__mi.shape[1] == W__oi.shape[1] and b__o.shape[0] == W__oi.shape[0]
    dtype = np.float64 if floating is double else np.float32
    cdef floating[::1] Dt__om = np.empty(D__mo.shape[0] * D__mo.shape[1], dtype=dtype)
    cdef floating[::1] pack = np.empty(PACK, dtype=dtype)
    cdef Py_ssize_t[::1] rows = np.empty(A__mi.shape[0], dtype=np.intp)
    with nogil:
        _row_pointers(&A__mi[0, 0], A__mi.shape[0], A__mi.shape[1], <const floating**>&rows[0])
        gradient_step(&D__mo[0, 0], <const floating**>&rows[0], &W__oi[0, 0], &b__o[0],
                      D__mo.shape[0], W__oi.shape[0], W__oi.shape[1],
                      <floating>alpha, <floating>beta, 1, &Dt__om[0], &pack[0], D__mo.shape[1])


def py_fma_peak(long long n, bint single=False, int vector_bytes=32):
    """Run n steps of independent vector FMA chains; return (flops, checksum).

    12 chains of 32-byte vectors (they fit AVX2's 16 registers) or 16 of
    64-byte ones.

    ``single`` picks float32; ``vector_bytes`` 32 (the kernels' vectors) or
    64 (one AVX-512 register).  Time the call to get the FMA peak of a core.
    """
    cdef double r
    with nogil:
        if vector_bytes == 64:
            r = cbp_fma_peak_f64(n, 1e-7) if single else cbp_fma_peak_d64(n, 1e-12)
        else:
            r = cbp_fma_peak_f(n, 1e-7) if single else cbp_fma_peak_d(n, 1e-12)
    return 2 * (16 if vector_bytes == 64 else 12) * n * (vector_bytes // (4 if single else 8)), r


def kernel_variant():
    """Which compiled variant of the kernels runs on this CPU (chosen at load time)."""
    return cbp_kernel_variant().decode()


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
