# The kernels, one per equation of the lecture notes (BP1-BP4, the step),
# and the step rules; included by _core.pyx.

cdef inline void _times_derivative(floating* D, const floating* A, Py_ssize_t n,
                                   int act) noexcept nogil:
    # D ⊙= f'(z) over n elements, f'(z) read off A = f(z): _derivative's
    # values, vectorised in _elementwise.h (BP2's Hadamard product).
    cdef Py_ssize_t p
    if act == SIGMOID:
        if floating is double:
            cbp_times_sigmoid_prime_d(D, A, n)
        else:
            cbp_times_sigmoid_prime_f(D, A, n)
    elif act == TANH:
        if floating is double:
            cbp_times_tanh_prime_d(D, A, n)
        else:
            cbp_times_tanh_prime_f(D, A, n)
    elif act == RELU:
        if floating is double:
            cbp_times_relu_prime_d(D, A, n)
        else:
            cbp_times_relu_prime_f(D, A, n)
    elif act == EXP:
        if floating is double:
            cbp_times_exp_prime_d(D, A, n)
        else:
            cbp_times_exp_prime_f(D, A, n)
    elif act != LINEAR:
        for p in range(n):
            D[p] *= _derivative(act, A[p])


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
        # vectorised exp (see _elementwise.h); rows are contiguous
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
    if floating is double:
        cbp_backward_d(D__mo, W__oi, D__mi, M, O, I, 0, I, pack)
    else:
        cbp_backward_f(D__mo, W__oi, D__mi, M, O, I, 0, I, pack)
    _times_derivative(D__mi, A__mi, M * I, act)


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
