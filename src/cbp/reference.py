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

#: The activations cbp offers, as it names them; softmax and exp are output layers' only.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear", "exp", "softmax")
#: The costs cbp offers, as it names them.
COSTS = ("quadratic", "sse", "cross_entropy", "log_likelihood", "poisson")


# ---------------------------------------------------------------------------
# Activations: σ(z) and σ'(z), elementwise (softmax: over the whole layer)
# ---------------------------------------------------------------------------

def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), elementwise.

    Written as e^(−|z|) / (1 + e^(−|z|)) for z < 0 so that no exponential
    overflows; the value is the same.

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ(z), of z's shape and dtype.
    """
    z = np.asarray(z)
    e = np.exp(-np.abs(z))                      # e^(−|z|) <= 1: never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_prime(z):
    """σ'(z) = σ(z) (1 − σ(z)).

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ'(z), of z's shape and dtype.
    """
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z):
    """tanh(z), elementwise.

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The values tanh(z).
    """
    return np.tanh(z)


def tanh_prime(z):
    """tanh'(z) = 1 − tanh²(z).

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The values 1 − tanh²(z).
    """
    t = np.tanh(z)
    return 1 - t * t


def relu(z):
    """relu(z) = max(z, 0), elementwise.

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The values max(z, 0).
    """
    z = np.asarray(z)
    return np.where(z > 0, z, 0).astype(z.dtype, copy=False)


def relu_prime(z):
    """relu'(z) = 1 where z > 0, else 0 (0 at the kink z = 0, as the core takes it).

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        0s and 1s in z's dtype.
    """
    z = np.asarray(z)
    return (z > 0).astype(z.dtype)


def linear(z):
    """The identity f(z) = z (a copy).

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        A copy of z.
    """
    return np.array(z, copy=True)


def linear_prime(z):
    """f'(z) = 1.

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        Ones of z's shape and dtype.
    """
    return np.ones_like(z)


def exp(z):
    """f(z) = e^z, the output of a Poisson regression (its mean, always positive).

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The exponential of z, elementwise.
    """
    return np.exp(z)


def exp_prime(z):
    """f'(z) = e^z.

    Parameters
    ----------
    z : ndarray
        Weighted inputs.

    Returns
    -------
    ndarray
        The exponential of z, elementwise.
    """
    return np.exp(z)


def softmax(z):
    """a_j = e^(z_j) / Σ_k e^(z_k) over one layer (note 002).

    Computed as e^(z_j − max z) / Σ_k e^(z_k − max z): the same value,
    with no exponential above 1.

    Parameters
    ----------
    z : ndarray
        The weighted inputs of one layer for one example, (n, 1) or (n,).

    Returns
    -------
    ndarray
        The activations, positive and summing to 1.
    """
    z = np.asarray(z)
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def softmax_jacobian(z):
    """∂a_j/∂z_k = a_j (δ_jk − a_k): the matrix diag(a) − a aᵀ.

    Parameters
    ----------
    z : ndarray
        The weighted inputs of one layer, (n, 1) or (n,).

    Returns
    -------
    ndarray
        The (n, n) Jacobian of softmax at z (symmetric).
    """
    a = softmax(z).ravel()
    return np.diag(a) - np.outer(a, a)


def activation(name):
    """(f, f') for one of cbp's elementwise activations, by name.

    Parameters
    ----------
    name : {'sigmoid', 'tanh', 'relu', 'linear'}
        The activation's name, as :class:`cbp.Network` takes it.

    Returns
    -------
    (callable, callable)
        The functions f(z) and f'(z), both elementwise.

    Raises
    ------
    ValueError
        For ``'softmax'`` (not elementwise: see :func:`jacobian`) or an
        unknown name.
    """
    if name == "sigmoid":
        return sigmoid, sigmoid_prime
    if name == "tanh":
        return tanh, tanh_prime
    if name == "relu":
        return relu, relu_prime
    if name == "linear":
        return linear, linear_prime
    if name == "exp":
        return exp, exp_prime
    if name == "softmax":
        raise ValueError("name='softmax' has no elementwise derivative; BP1 goes through "
                         "its Jacobian (reference.jacobian, reference.output_error)")
    raise ValueError(f"name must be one of {list(ACTIVATIONS)}; got {name!r}")


def jacobian(name, z):
    """∂a/∂z for a layer with activation ``name`` at z: diag(f'(z)), or softmax's.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : ndarray
        The layer's weighted inputs for one example, (n, 1) or (n,).

    Returns
    -------
    ndarray
        The (n, n) Jacobian J with J_jk = ∂a_j/∂z_k.
    """
    if name == "softmax":
        return softmax_jacobian(z)
    return np.diag(activation(name)[1](np.asarray(z)).ravel())


def _output_function(name):
    # f_out for the output layer: any activation, softmax included.
    return softmax if name == "softmax" else activation(name)[0]


# ---------------------------------------------------------------------------
# Costs: C_x, ∇_a C_x and the output error δ^L (BP1)
# ---------------------------------------------------------------------------

def _log_term(weight, p):
    # weight · ln p with 0 · ln 0 taken as 0, as the book's nan_to_num and the
    # core take it (a target entry of 0 contributes nothing).
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight != 0, weight * np.log(np.where(weight != 0, p, 1)), 0.0)


def cost(name, a, y):
    """C_x, the cost of output a for the target y.

    * quadratic:      C_x = ½ ‖a − y‖²                          (note 001)
    * sse:            C_x = Σ_j (y_j − a_j)²                    (note 004)
    * cross_entropy:  C_x = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]   (notes 000, 002)
    * log_likelihood: C_x = −Σ_j y_j ln a_j                     (note 002)
    * poisson:        C_x = Σ_j [y_j ln(y_j / a_j) − y_j + a_j]  (half the Poisson
      deviance, scikit-learn's ``loss="poisson"``)

    A term whose factor y_j (or 1 − y_j) is 0 counts as 0.  The logarithms
    are taken of a as given: where a rounds to 0 or 1 they are infinite
    (the core evaluates them from z^L instead, and stays finite).

    Parameters
    ----------
    name : str
        One of :data:`COSTS`.
    a : ndarray
        The output a^L, a column.
    y : ndarray
        The target, of a's shape.

    Returns
    -------
    float
        C_x, summed in float64.
    """
    a = np.asarray(a, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if name == "quadratic":
        return float(0.5 * np.sum(np.square(a - y)))
    if name == "sse":
        return float(np.sum(np.square(y - a)))
    if name == "cross_entropy":
        return float(-np.sum(_log_term(y, a) + _log_term(1 - y, 1 - a)))
    if name == "log_likelihood":
        return float(-np.sum(_log_term(y, a)))
    if name == "poisson":
        return float(np.sum(_log_term(y, y) - _log_term(y, a) - y + a))
    raise ValueError(f"name must be one of {list(COSTS)}; got {name!r}")


# total_cost's argument ``cost`` hides this module's function of that name.
_cost_of = cost


def cost_gradient(name, a, y):
    """∇_a C_x, the vector of ∂C_x/∂a^L_j.

    * quadratic:      a − y
    * sse:            2 (a − y)
    * cross_entropy:  (a − y) / (a (1 − a))
    * log_likelihood: −y / a
    * poisson:        1 − y / a

    Parameters
    ----------
    name : str
        One of :data:`COSTS`.
    a : ndarray
        The output a^L.
    y : ndarray
        The target.

    Returns
    -------
    ndarray
        ∇_a C_x, of a's shape.
    """
    if name == "quadratic":
        return a - y
    if name == "sse":
        return 2 * (a - y)
    if name == "cross_entropy":
        return (a - y) / (a * (1 - a))
    if name == "log_likelihood":
        return -y / a
    if name == "poisson":
        return 1 - y / a
    raise ValueError(f"name must be one of {list(COSTS)}; got {name!r}")


def output_error(cost_name, output_activation, z, a, y, cancel=True):
    """δ^L, the output layer's error (BP1): δ^L = J_f(z^L)ᵀ ∇_a C_x.

    For an elementwise f this is BP1 as note 001 writes it,
    δ^L = ∇_a C_x ⊙ f'(z^L); for softmax, the Jacobian of
    :func:`softmax_jacobian` takes the place of ``⊙ f'(z^L)``.  Where a pair
    makes f' cancel, ``cancel=True`` (the default) uses the cancelled form,
    which is the same value without the division by a (1 − a) or a:

    * sigmoid + cross_entropy:   δ^L = a − y                       (notes 000, 002)
    * sigmoid + log_likelihood:  δ^L = −y (1 − a)
    * softmax + log_likelihood:  δ^L = a Σ_j y_j − y  (= a − y for a one-hot y)
    * exp + poisson:             δ^L = a − y

    Parameters
    ----------
    cost_name : str
        One of :data:`COSTS`.
    output_activation : str
        One of :data:`ACTIVATIONS`.
    z, a, y : ndarray
        z^L, a^L = f(z^L) and the target, columns of one shape.
    cancel : bool
        Use the cancelled forms above (False: the general product).

    Returns
    -------
    ndarray
        The error δ^L, of z's shape.
    """
    if cancel and cost_name == "cross_entropy" and output_activation == "sigmoid":
        return a - y
    if cancel and cost_name == "log_likelihood" and output_activation == "sigmoid":
        return -y * (1 - a)
    if cancel and cost_name == "log_likelihood" and output_activation == "softmax":
        return a * np.sum(y) - y
    if cancel and cost_name == "poisson" and output_activation == "exp":
        return a - y
    gradient = cost_gradient(cost_name, a, y)
    if output_activation == "softmax":
        z = np.asarray(z)
        return (jacobian("softmax", z).T @ gradient.ravel()).reshape(z.shape)
    return gradient * activation(output_activation)[1](z)


def functions(activation="sigmoid", output_activation=None, cost="quadratic"):
    """The callables of :func:`backprop` for a network of cbp's, by the names it takes.

    ``reference.backprop(weights, biases, x, y, **reference.functions("tanh",
    "softmax", "log_likelihood"))`` is the gradient of such a network.

    Parameters
    ----------
    activation : str
        The hidden layers' activation (elementwise).
    output_activation : str, optional
        The output layer's; default ``activation``.
    cost : str
        One of :data:`COSTS`.

    Returns
    -------
    dict
        ``f``, ``f_prime``, ``f_out``, ``f_out_prime`` (None for softmax,
        which has a Jacobian instead) and ``output_error`` (z, a, y) → δ^L.
    """
    output_activation = activation if output_activation is None else output_activation
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {list(COSTS)}; got {cost!r}")
    f, f_prime = _activation_for(activation, "activation")
    f_out = _output_function(output_activation) if output_activation in ACTIVATIONS else None
    if f_out is None:
        raise ValueError(f"output_activation must be one of {list(ACTIVATIONS)}; "
                         f"got {output_activation!r}")

    f_out_prime = (None if output_activation == "softmax"
                   else _activation_for(output_activation, "output_activation")[1])

    def error(z, a, y):
        return output_error(cost, output_activation, z, a, y)
    return {"f": f, "f_prime": f_prime, "f_out": f_out, "f_out_prime": f_out_prime,
            "output_error": error}


def _activation_for(name, argument):
    # activation(name), with the argument's name in the message.
    try:
        return activation(name)
    except ValueError as exc:
        raise ValueError(f"{argument}: {exc}") from None


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
