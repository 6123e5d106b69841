"""cbp.reference's functions of one layer: activations, costs and the output error (BP1).

The package's ``__init__`` re-exports every public name here; the functions
are documented as ``cbp.reference.<name>``.
"""
import numpy as np

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
