"""The lecture equations in plain NumPy, one example at a time.

This module is cbp's algorithm written once, the way the lecture notes write
it (``../shared/seeds``, note 001 above all), with nothing compiled and nothing
clever.  It serves twice:

* it is the oracle of the tests: the compiled core must give what these
  functions give;
* it is the Python path of a network whose methods a subclass replaces (the
  book's exercises): ``backprop`` and the update take the activation, its
  derivative and the output error as callables, so a replaced ``sigmoid``,
  ``sigmoid_prime``, ``cost_derivative`` or cost class ``delta`` is the one
  called.

Notation (note 001).  Layer 1 is the input; the network has layers
1, 2, …, L.  ``weights[l - 2]`` is w^l, of shape (n_l, n_{l−1}), whose entry
w^l_jk joins neuron k of layer l − 1 to neuron j of layer l; ``biases[l - 2]``
is b^l, a column (n_l, 1).  For one example x (a column)::

    a^1 = x
    z^l = w^l a^{l−1} + b^l,    a^l = σ(z^l)                    (feedforward)
    δ^L = ∇_a C_x ⊙ σ'(z^L)                                      (BP1)
    δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)                         (BP2)
    ∂C_x/∂b^l_j = δ^l_j                                          (BP3)
    ∂C_x/∂w^l_jk = a^{l−1}_k δ^l_j,  i.e.  δ^l (a^{l−1})ᵀ        (BP4)

and for a mini-batch of m examples out of n (L2 strength λ, rate η)::

    w^l → (1 − ηλ/n) w^l − (η/m) Σ_x ∂C_x/∂w^l
    b^l → b^l − (η/m) Σ_x ∂C_x/∂b^l

σ stands for the layer's activation: the hidden layers' f, and the output
layer's f_out (which may be softmax, whose Jacobian replaces ``⊙ σ'(z^L)``
in BP1).

Arithmetic follows the input's dtype, as the core's does: float32 weights give
float32 activations and gradients, float64 give float64 (an input x or target
y is converted to the weights' dtype, as the network converts it).  Costs are
summed in float64, as the core sums them.  Nothing here keeps state between
calls: every function takes what it needs and returns new arrays.
"""
import numpy as np

__all__ = ["sigmoid", "sigmoid_prime", "tanh", "tanh_prime", "relu", "relu_prime",
           "linear", "linear_prime", "exp", "exp_prime", "softmax", "softmax_jacobian",
           "activation",
           "jacobian", "cost", "cost_gradient", "output_error", "functions", "forward",
           "feedforward", "backprop", "sum_gradients", "sgd_step", "momentum_step",
           "update_mini_batch", "total_cost", "ACTIVATIONS", "COSTS"]

from ._functions import (ACTIVATIONS, COSTS, activation, cost, cost_gradient, exp, exp_prime,
                         functions, jacobian, linear, linear_prime, output_error, relu,
                         relu_prime, sigmoid, sigmoid_prime, softmax, softmax_jacobian, tanh,
                         tanh_prime)

# Documented as cbp.reference.<name> (the docs' pages and numpydoc's checks).
for _function in (sigmoid, sigmoid_prime, tanh, tanh_prime, relu, relu_prime, linear, linear_prime, exp, exp_prime, softmax, softmax_jacobian, activation, jacobian, cost, cost_gradient, output_error, functions):
    _function.__module__ = __name__
del _function

# total_cost's argument ``cost`` hides the function of that name.
_cost_of = cost


# ---------------------------------------------------------------------------
# Feedforward and backpropagation for one example
# ---------------------------------------------------------------------------

def _dtype(weights, biases):
    # The parameters' dtype, as the network's: float32 stays float32.
    dtype = np.result_type(*weights, *biases)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def _column(v, n, dtype, argument):
    # One example as a column (n, 1) of the parameters' dtype.
    v = np.asarray(v, dtype=dtype)
    if v.size != n or v.ndim not in (1, 2) or (v.ndim == 2 and v.shape[1] != 1):
        raise ValueError(f"{argument} must have shape ({n}, 1) or ({n},); got {v.shape}")
    return v.reshape(n, 1)


def forward(weights, biases, x, f=sigmoid, f_out=None):
    """The feedforward pass of one example, keeping every z^l and a^l.

    Parameters
    ----------
    weights, biases : lists of ndarray
        w^2 … w^L, (n_l, n_{l−1}) each, and b^2 … b^L, (n_l, 1) each.
    x : array_like
        The input, (n_1, 1) or (n_1,).
    f : callable
        The hidden layers' activation σ.
    f_out : callable, optional
        The output layer's; default ``f``.

    Returns
    -------
    (zs, activations) : lists of ndarray
        ``zs = [z^2, …, z^L]`` and ``activations = [a^1, …, a^L]`` (a^1 = x),
        columns in the parameters' dtype.
    """
    dtype = _dtype(weights, biases)
    a = _column(x, np.shape(weights[0])[1], dtype, "x")               # a^1 = x
    zs, activations = [], [a]
    for l, (w, b) in enumerate(zip(weights, biases)):
        z = np.asarray(w, dtype) @ a + np.asarray(b, dtype).reshape(-1, 1)   # z^l = w^l a^{l−1} + b^l
        last = l == len(weights) - 1
        a = (f_out or f)(z) if last else f(z)                           # a^l = σ(z^l)
        zs.append(z)
        activations.append(np.asarray(a, dtype=dtype))
    return zs, activations


def feedforward(weights, biases, x, f=sigmoid, f_out=None):
    """a^L for one input: a^l = σ(w^l a^{l−1} + b^l) for l = 2 … L.

    Parameters
    ----------
    weights, biases : lists of ndarray
        w^2 … w^L and b^2 … b^L.
    x : array_like
        The input, (n_1, 1) or (n_1,).
    f : callable
        The hidden layers' activation σ.
    f_out : callable, optional
        The output layer's; default ``f``.

    Returns
    -------
    ndarray
        The output a^L, a column (n_L, 1).
    """
    return forward(weights, biases, x, f, f_out)[1][-1]


def backprop(weights, biases, x, y, f=sigmoid, f_prime=sigmoid_prime, f_out=None,
             f_out_prime=None, output_error=None, cost_derivative=None):
    """(∇_b C_x, ∇_w C_x) for one example, by the four equations of note 001.

    Feedforward, then BP1 for δ^L, BP2 down to layer 2, BP3/BP4 for each
    layer's gradients.  The output error is, in this order of preference:

    * ``output_error(z^L, a^L, y)``, a whole δ^L (network2.py's cost
      classes' ``delta``; :func:`functions` gives cbp's);
    * ``cost_derivative(a^L, y) ⊙ σ'(z^L)`` (network.py's backprop, with
      its ``cost_derivative``);
    * ``(a^L − y) ⊙ σ'(z^L)``: the quadratic cost, as note 001 writes BP1;

    where σ' is the output layer's derivative ``f_out_prime`` (``f_prime``
    when the output layer's activation is the hidden layers' ``f``).

    Parameters
    ----------
    weights, biases : lists of ndarray
        w^2 … w^L and b^2 … b^L.
    x, y : array_like
        The input (n_1, 1) or (n_1,) and the target (n_L, 1) or (n_L,).
    f, f_prime : callable
        σ and σ' of the hidden layers.
    f_out : callable, optional
        The output layer's activation; default ``f``.
    f_out_prime : callable, optional
        Its derivative, for the last two forms of δ^L; default ``f_prime``
        when ``f_out`` is not given.
    output_error, cost_derivative : callable, optional
        See above.

    Returns
    -------
    (nabla_b, nabla_w) : lists of ndarray
        ∂C_x/∂b^l and ∂C_x/∂w^l for l = 2 … L, shaped like ``biases`` and
        ``weights`` (biases as columns).
    """
    dtype = _dtype(weights, biases)
    y = _column(y, np.shape(weights[-1])[0], dtype, "y")
    zs, activations = forward(weights, biases, x, f, f_out)
    z, a = zs[-1], activations[-1]
    if output_error is not None:                                   # BP1, from the caller
        delta = output_error(z, a, y)
    else:
        if f_out_prime is None and f_out is not None:
            raise ValueError("f_out_prime (σ' of the output layer) is needed for δ^L "
                             "= ∇_a C ⊙ σ'(z^L) when f_out is given; or pass output_error")
        sigma_prime = f_prime if f_out_prime is None else f_out_prime
        gradient = a - y if cost_derivative is None else cost_derivative(a, y)
        delta = gradient * sigma_prime(z)                         # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
    delta = np.asarray(delta, dtype=dtype)
    if delta.shape != z.shape:
        raise ValueError(f"the output error (δ^L) must have shape {z.shape}; got {delta.shape}")
    L = len(weights)
    nabla_b, nabla_w = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):                     # layers L, L − 1, …, 2
        if l < L - 1:
            w_next = np.asarray(weights[l + 1], dtype)
            delta = (w_next.T @ delta) * f_prime(zs[l])     # BP2: δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)
            delta = np.asarray(delta, dtype=dtype)          # a caller's σ' may return float64
        nabla_b[l] = delta                                  # BP3: ∂C/∂b^l = δ^l
        nabla_w[l] = delta @ activations[l].T               # BP4: ∂C/∂w^l = δ^l (a^{l−1})ᵀ
    return nabla_b, nabla_w


# ---------------------------------------------------------------------------
# One mini-batch: the sums and the update rules
# ---------------------------------------------------------------------------

def sum_gradients(mini_batch, gradient, biases=None, weights=None):
    """(Σ_x ∇_b C_x, Σ_x ∇_w C_x) over a mini-batch.

    Parameters
    ----------
    mini_batch : iterable of (x, y)
        The examples.
    gradient : callable
        ``gradient(x, y)`` → (nabla_b, nabla_w) for one example
        (:func:`backprop` with its functions bound, or a network's
        ``backprop``).
    biases, weights : lists of ndarray, optional
        The parameters: when given, every example's gradients must have
        their shapes (``ValueError`` otherwise: a subclass's ``backprop``
        is checked here), and the sums have their dtype.

    Returns
    -------
    (sum_b, sum_w) : lists of ndarray
        The sums, layer by layer; ``None`` for an empty mini-batch without
        ``biases`` and ``weights``.
    """
    sum_b = sum_w = None
    if biases is not None and weights is not None:
        dtype = _dtype(weights, biases)
        sum_b = [np.zeros(np.shape(b), dtype) for b in biases]
        sum_w = [np.zeros(np.shape(w), dtype) for w in weights]
    for x, y in mini_batch:
        nabla_b, nabla_w = gradient(x, y)
        if sum_b is None:
            sum_b = [np.array(g, copy=True) for g in nabla_b]
            sum_w = [np.array(g, copy=True) for g in nabla_w]
            continue
        for name, sums, grads in (("nabla_b", sum_b, nabla_b), ("nabla_w", sum_w, nabla_w)):
            if len(grads) != len(sums):
                raise ValueError(f"backprop must return {len(sums)} arrays in {name}; "
                                 f"got {len(grads)}")
            for k, (total, g) in enumerate(zip(sums, grads)):
                if np.shape(g) != total.shape:
                    raise ValueError(f"backprop returned {name}[{k}] of shape {np.shape(g)}; "
                                     f"expected {total.shape}")
                sums[k] = total + g                                 # Σ_x ∂C_x/∂b, ∂C_x/∂w
    return sum_b, sum_w


def sgd_step(weights, biases, sum_b, sum_w, eta, m, lmbda=0.0, n=None):
    """The update of one mini-batch, with L2 weight decay (network2.py's rule).

    w^l → (1 − ηλ/n) w^l − (η/m) Σ_x ∂C_x/∂w^l and
    b^l → b^l − (η/m) Σ_x ∂C_x/∂b^l (biases are not decayed); with λ = 0,
    note 001's rule.

    Parameters
    ----------
    weights, biases : lists of ndarray
        The parameters before the step (not modified).
    sum_b, sum_w : lists of ndarray
        Σ_x ∇_b C_x and Σ_x ∇_w C_x over the mini-batch.
    eta : float
        Learning rate η.
    m : int
        Examples in the mini-batch.
    lmbda : float
        L2 strength λ.
    n : int, optional
        Training-set size in the decay; default m.

    Returns
    -------
    (weights, biases) : lists of ndarray
        The parameters after the step.
    """
    n = m if n is None else n
    decay, rate = 1 - eta * (lmbda / n), eta / m
    new_w = [decay * w - rate * s for w, s in zip(weights, sum_w)]   # (1 − ηλ/n) w − (η/m) Σ∇w
    new_b = [b - rate * s for b, s in zip(biases, sum_b)]            # b − (η/m) Σ∇b
    return new_w, new_b


def momentum_step(weights, biases, velocity_w, velocity_b, sum_b, sum_w, eta, m, mu,
                  lmbda=0.0, n=None):
    """The momentum update of one mini-batch (the book's chapter 3), with L2.

    v → μ v − η ((1/m) Σ_x ∂C_x/∂w + (λ/n) w),  w → w + v; the biases'
    velocity without the λ term.

    Parameters
    ----------
    weights, biases : lists of ndarray
        The parameters before the step (not modified).
    velocity_w, velocity_b : lists of ndarray
        The velocities before the step (zeros at the start).
    sum_b, sum_w : lists of ndarray
        Σ_x ∇_b C_x and Σ_x ∇_w C_x over the mini-batch.
    eta : float
        Learning rate η.
    m : int
        Examples in the mini-batch.
    mu : float
        Momentum coefficient μ.
    lmbda : float
        L2 strength λ.
    n : int, optional
        Training-set size in the decay; default m.

    Returns
    -------
    (weights, biases, velocity_w, velocity_b) : lists of ndarray
        Parameters and velocities after the step.
    """
    n = m if n is None else n
    vw = [mu * v - eta * (s / m + (lmbda / n) * w)
          for v, s, w in zip(velocity_w, sum_w, weights)]             # v → μv − η(∇w + (λ/n) w)
    vb = [mu * v - eta * (s / m) for v, s in zip(velocity_b, sum_b)]  # v → μv − η ∇b
    new_w = [w + v for w, v in zip(weights, vw)]                      # w → w + v
    new_b = [b + v for b, v in zip(biases, vb)]
    return new_w, new_b, vw, vb


def update_mini_batch(weights, biases, mini_batch, eta, lmbda=0.0, n=None, gradient=None,
                      **bound):
    """One step of stochastic gradient descent: backprop each example, sum, update.

    Parameters
    ----------
    weights, biases : lists of ndarray
        The parameters before the step (not modified).
    mini_batch : sequence of (x, y)
        The m examples of the step.
    eta : float
        Learning rate η.
    lmbda : float
        L2 strength λ.
    n : int, optional
        Training-set size in the decay; default m.
    gradient : callable, optional
        ``gradient(x, y)`` → (nabla_b, nabla_w); default :func:`backprop`
        on ``weights``, ``biases`` with the keyword arguments ``bound``.
    **bound
        :func:`backprop`'s ``f``, ``f_prime``, ``f_out``, ``output_error``,
        ``cost_derivative`` (for example ``**functions("tanh")``).

    Returns
    -------
    (weights, biases) : lists of ndarray
        The parameters after the step (:func:`sgd_step`).
    """
    mini_batch = list(mini_batch)
    if not mini_batch:
        raise ValueError("mini_batch must hold at least one example")
    if gradient is None:
        def gradient(x, y):
            return backprop(weights, biases, x, y, **bound)
    sum_b, sum_w = sum_gradients(mini_batch, gradient, biases, weights)
    return sgd_step(weights, biases, sum_b, sum_w, eta, len(mini_batch), lmbda, n)


def total_cost(weights, biases, data, lmbda=0.0, cost="quadratic", f=sigmoid, f_out=None):
    """C = (1/n) Σ_x C_x + (λ/2n) Σ_l ‖w^l‖², over n examples (network2.py's total_cost).

    Parameters
    ----------
    weights, biases : lists of ndarray
        The parameters.
    data : sequence of (x, y)
        The n examples, y a target vector.
    lmbda : float
        L2 strength λ.
    cost : str or callable
        One of :data:`COSTS`, or ``fn(a, y)`` → C_x (a network2.py cost
        class's ``fn``).
    f, f_out : callable
        As for :func:`forward`.

    Returns
    -------
    float
        The cost, summed in float64.
    """
    data = list(data)
    if not data:
        raise ValueError("data must hold at least one example")
    if isinstance(cost, str):
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {list(COSTS)} or a function fn(a, y); "
                             f"got {cost!r}")
        name = cost

        def cost(a, y):
            return _cost_of(name, a, y)
    n_out = np.shape(weights[-1])[0]
    total = 0.0
    for x, y in data:
        a = feedforward(weights, biases, x, f, f_out)
        total += float(cost(a, _column(y, n_out, np.float64, "y"))) / len(data)    # (1/n) Σ C_x
    if lmbda:
        # Skipped for λ = 0 as the core skips it: 0 · ∞ would be NaN.
        total += 0.5 * (lmbda / len(data)) * sum(float(np.sum(np.square(np.asarray(w, np.float64))))
                                                 for w in weights)    # (λ/2n) Σ‖w‖²
    return total
