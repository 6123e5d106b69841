"""Backpropagation, one example, every number: a teaching trace.

>>> net, x, y = worked_example()        # a lecture's worked 2-3-2 example
>>> print(explain(net, x, y))            # or net.explain(x, y)
Feedforward: z^2 = W^2 a^1 + b^2
...

:func:`explain` runs the four backprop equations on one example with the
core's own kernels (the ones training runs, through their ``py_*``
wrappers), and keeps every intermediate value.  Layers are numbered as in
the notes: the input layer is 1, so the first weight matrix is W^2 and the
output layer is L = len(sizes).
"""
import sys
from typing import TYPE_CHECKING, List, Optional, TextIO, Tuple

import numpy as np

from . import _checks, _core, _data
from .activations import ACTIVATIONS
from .costs import COSTS
from ._typing import Array, ArrayLike

if TYPE_CHECKING:
    from .model import Network

__all__ = ["Trace", "explain", "worked_example"]

# How each activation is written in the formulas.
_SYMBOL = {"sigmoid": "σ", "tanh": "tanh", "relu": "relu", "linear": "id", "softmax": "softmax"}


def worked_example() -> Tuple["Network", Array, Array]:
    """The 2-3-2 network, input and target of a standard lecture's backpropagation example.

    The worked example of V. Kulyukin, "Gradient Descent and Backpropagation:
    Part 02" (CS 5600/6600 Intelligent Systems, Utah State University, 2020),
    which prints every intermediate number: sigmoid everywhere, quadratic
    cost, x = y = [1, 1], and the lecture's weights W^2, W^3 and biases
    b^2, b^3.

    Returns
    -------
    (net, x, y) : (cbp.Network, ndarray (2, 1), ndarray (2, 1))
        So that ``explain(*worked_example())`` traces the lecture's example.
    """
    from .model import Network
    net = Network([2, 3, 2], activation="sigmoid", cost="quadratic", seed=0)
    net.weights = [np.array([[-0.81, -0.34],
                             [-1.57, -0.03],
                             [0.60, -0.52]]),
                   np.array([[0.51, 0.65, -0.74],
                             [-1.42, -0.89, 2.02]])]
    net.biases = [np.array([[0.27], [0.87], [0.13]]),
                  np.array([[0.33], [0.65]])]
    x = np.ones((2, 1))
    y = np.ones((2, 1))
    return net, x, y


def _derivative(name, a):
    """f'(z) read off a = f(z), as the core computes it (elementwise f only)."""
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


class Trace:
    """Everything backpropagation computes for one example (x, y).

    Layers are numbered as in the notes, input layer 1, output layer L.
    Each attribute below is a dict from the layer number l to a NumPy array
    (vectors are 1-D, in the network's dtype).  :func:`explain` builds it.

    Parameters
    ----------
    sizes, activation, output_activation, cost, x, y, W, b, z, a, delta : object
        Stored as the attributes of the same names.
    grad_b, grad_w, cost_value, digits : object
        Stored as the attributes of the same names.

    Attributes
    ----------
    x, y : ndarray
        The example: input a^1 and target.
    W, b : dict, l = 2..L
        The network's weights W^l (n_l, n_{l-1}) and biases b^l.
    z, a : dict
        Weighted inputs z^l (l = 2..L) and activations a^l (l = 1..L, a^1 = x).
    delta : dict, l = 2..L
        Errors δ^l = ∂C/∂z^l (BP1 for l = L, BP2 below).
    grad_b, grad_w : dict, l = 2..L
        ∂C/∂b^l = δ^l (BP3) and ∂C/∂W^l = δ^l (a^{l−1})ᵀ (BP4).
    cost_value : float
        C_x for this example.
    sizes, activation, output_activation, cost
        The network's description.
    digits : int
        Decimals shown by ``str(trace)``.
    """

    def __init__(self, sizes, activation, output_activation, cost, x, y, W, b, z, a, delta,
                 grad_b, grad_w, cost_value, digits=4):
        self.sizes = list(sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.cost = cost
        self.x, self.y = x, y
        self.W, self.b, self.z, self.a = W, b, z, a
        self.delta, self.grad_b, self.grad_w = delta, grad_b, grad_w
        self.cost_value = cost_value
        self.digits = digits

    @property
    def L(self) -> int:
        """Number of the output layer (the number of layers, input included)."""
        return len(self.sizes)

    def gradients(self) -> Tuple[List[Array], List[Array]]:
        """(nabla_b, nabla_w) in the layout of :meth:`cbp.Network.backprop`."""
        layers = range(2, self.L + 1)
        return ([self.grad_b[l].reshape(-1, 1).copy() for l in layers],
                [self.grad_w[l].copy() for l in layers])

    def __repr__(self):
        return (f"<Trace of a {self.sizes} network on one example: "
                f"C_x = {self.cost_value:.{self.digits}g}>")

    def __str__(self):
        return self.render()

    def print(self, file: Optional[TextIO] = None, digits: Optional[int] = None,
              max_columns: int = 12) -> None:
        """Write :meth:`render`'s text to ``file`` (default: standard output).

        Parameters
        ----------
        file : file-like, optional
            Where to write; standard output by default.
        digits : int, optional
            Decimals shown; default the trace's ``digits``.
        max_columns : int
            Vectors and matrices wider than this are summarised.
        """
        print(self.render(digits=digits, max_columns=max_columns),
              file=sys.stdout if file is None else file)

    # -- rendering ----------------------------------------------------------

    def render(self, digits: Optional[int] = None, max_columns: int = 12) -> str:
        """The trace as text, step by step, in the notes' notation.

        Parameters
        ----------
        digits : int, optional
            Decimals per value (default: ``self.digits``).
        max_columns : int
            Vectors longer than this, and matrices with more rows or columns,
            are summarised (shape, norm, min, max) instead of printed in full.
        """
        digits = self.digits if digits is None else _checks.integer(digits, "digits", minimum=0)
        max_columns = _checks.integer(max_columns, "max_columns", minimum=1)
        fmt = _Formatter(digits, max_columns)
        L = self.L
        hid, out = _SYMBOL[self.activation], _SYMBOL[self.output_activation]
        lines = [f"Backpropagation on one example: network {self.sizes}, "
                 f"{self.activation} hidden, {self.output_activation} output, "
                 f"{self.cost} cost",
                 "Layers are numbered from the input layer 1; vectors are columns, "
                 "printed as [...]ᵀ.",
                 "Legend: " + "; ".join(self._legend()),
                 ""]
        lines += fmt.entry("Input: a^1 = x", self.x)
        lines += fmt.entry("Target: y", self.y)
        for l in range(2, L + 1):
            f = out if l == L else hid
            lines += ["", f"Feedforward: z^{l} = W^{l} a^{l - 1} + b^{l}"]
            lines += fmt.entry(f"W^{l}", self.W[l], indent=2)
            lines += fmt.entry(f"b^{l}", self.b[l], indent=2)
            lines += fmt.entry(f"z^{l}", self.z[l], indent=2)
            lines += fmt.entry(f"a^{l} = {f}(z^{l})", self.a[l], indent=2)
        formula = COSTS[self.cost].formula
        lines += ["", f"Cost: C_x = {formula.replace('a', f'a^{L}')} = "
                      f"{fmt.number(self.cost_value)}"]
        lines += ["", f"Output error (BP1): {self._bp1()}"]
        if self.output_activation != "softmax" and self.cost in ("quadratic", "sse"):
            gradient = self.a[L] - self.y
            name = f"a^{L} − y"
            if self.cost == "sse":
                gradient, name = 2 * gradient, f"2 (a^{L} − y)"
            lines += fmt.entry(f"∇_a C = {name}", gradient, indent=2)
            lines += fmt.entry(f"{out}'(z^{L})", _derivative(self.output_activation, self.a[L]),
                               indent=2)
        lines += fmt.entry(f"δ^{L}", self.delta[L], indent=2)
        for l in range(L - 1, 1, -1):
            lines += ["", f"Backpropagate the error, BP2: δ^{l} = ((W^{l + 1})ᵀ δ^{l + 1}) "
                          f"⊙ {hid}'(z^{l})"]
            lines += fmt.entry(f"(W^{l + 1})ᵀ δ^{l + 1}", self.W[l + 1].T @ self.delta[l + 1],
                               indent=2)
            lines += fmt.entry(f"{hid}'(z^{l})", _derivative(self.activation, self.a[l]),
                               indent=2)
            lines += fmt.entry(f"δ^{l}", self.delta[l], indent=2)
        lines += ["", "Gradients, BP3: ∂C/∂b^l = δ^l and BP4: ∂C/∂W^l = δ^l (a^{l−1})ᵀ"]
        for l in range(L, 1, -1):
            lines += fmt.entry(f"BP3: ∂C/∂b^{l} = δ^{l}", self.grad_b[l], indent=2)
            lines += fmt.entry(f"BP4: ∂C/∂W^{l} = δ^{l} (a^{l - 1})ᵀ", self.grad_w[l], indent=2)
        return "\n".join(lines)

    def _legend(self):
        items = []
        for name in dict.fromkeys((self.activation, self.output_activation)):
            entry, sym = ACTIVATIONS[name], _SYMBOL[name]
            if name == "softmax":
                items.append(f"softmax(z)_j = {entry.formula.split(' = ')[-1]}")
                continue
            formula = entry.formula if "=" in entry.formula else f"{sym}(z) = {entry.formula}"
            derivative = (entry.derivative if "=" in entry.derivative
                          else f"{sym}'(z) = {entry.derivative}")
            items.append(f"{formula}, {derivative}")
        cost = COSTS[self.cost]
        items.append(f"C_x = {cost.formula}")
        return items

    def _bp1(self):
        L, out, cost = self.L, self.output_activation, self.cost
        head = f"δ^{L}"
        if cost == "cross_entropy":
            return (f"{head} = a^{L} − y   (∇_a C ⊙ σ'(z^{L}) with the cross-entropy: "
                    "σ' cancels)")
        if cost == "log_likelihood":
            if out == "softmax":
                return f"{head} = a^{L} Σ_j y_j − y   (= a^{L} − y for a one-hot y)"
            return f"{head} = ∇_a C ⊙ σ'(z^{L}) = −y ⊙ (1 − a^{L})"
        grad = f"(a^{L} − y)" if cost == "quadratic" else f"2 (a^{L} − y)"
        if out == "softmax":
            return (f"{head} = J(z^{L})ᵀ ∇_a C, i.e. δ_j = a_j (g_j − Σ_k a_k g_k) with "
                    f"g = ∇_a C = {grad}")
        sym = _SYMBOL[out]
        return f"{head} = ∇_a C ⊙ {sym}'(z^{L}) = {grad} ⊙ {sym}'(z^{L})"


class _Formatter:
    """Numbers, vectors and matrices as aligned text."""

    def __init__(self, digits, max_columns):
        self.digits = digits
        self.max_columns = max_columns

    def number(self, v):
        s = f"{float(v):.{self.digits}f}"
        return s[1:] if s.startswith("-") and float(s) == 0 else s

    def summary(self, arr):
        a = np.asarray(arr, dtype=np.float64)
        shape = f"{a.shape[0]} values" if a.ndim == 1 else f"{a.shape[0]}×{a.shape[1]} matrix"
        return (f"({shape}: norm {self.number(np.linalg.norm(a))}, "
                f"min {self.number(a.min())}, max {self.number(a.max())})")

    def entry(self, label, arr, indent=0):
        pad = " " * indent
        arr = np.asarray(arr)
        if max(arr.shape) > self.max_columns:
            return [f"{pad}{label} {self.summary(arr)}"]
        cells = np.vectorize(self.number, otypes=[object])(arr) if arr.size else arr
        width = max((len(c) for c in np.ravel(cells)), default=0)
        if arr.ndim == 1:
            body = "  ".join(c.rjust(width) for c in cells)
            return [f"{pad}{label} = [{body}]ᵀ"]
        rows = ["  ".join(c.rjust(width) for c in row) for row in cells]
        head = f"{pad}{label} = "
        out = [f"{head}[[{rows[0]}]" + ("]" if len(rows) == 1 else "")]
        for k, row in enumerate(rows[1:], start=2):
            out.append(" " * len(head) + f" [{row}]" + ("]" if k == len(rows) else ""))
        return out


def explain(net: "Network", x: ArrayLike, y: ArrayLike, digits: int = 4) -> Trace:
    """Trace backpropagation through ``net`` for one example (x, y).

    Runs feedforward, BP1, BP2 and BP3/BP4 with the core's kernels, one
    equation at a time, exactly as training computes them, and returns every
    intermediate value.

    Parameters
    ----------
    net : cbp.Network
    x : array_like, (n_in, 1) or (n_in,)
    y : array_like, (n_out, 1) or (n_out,), or int
        The target vector (one-hot for a digit), or a class label as training
        takes it (its one-hot vector; for one output unit, 0 or 1).
    digits : int
        Decimals shown when the trace is printed.

    Returns
    -------
    Trace
        ``print(trace)`` shows the steps; ``trace.z[l]``, ``trace.delta[l]``,
        ``trace.grad_w[l]``... hold the numbers (notes' numbering, input layer 1).
        ``trace.gradients()`` equals ``net.backprop(x, y)``.
    """
    from .model import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")
    digits = _checks.integer(digits, "digits", minimum=0)
    sizes, dtype = net.sizes, net.dtype
    L = len(sizes)
    X = _checks.vector(x, "x", sizes[0], dtype).reshape(1, sizes[0])
    Y = _data.target(y, "y", sizes[-1], dtype).reshape(1, sizes[-1])
    hidden, output, cost = net._codes
    # One consistent snapshot of the parameters, numbered as in the notes.
    with net._lock:
        W = {l: np.ascontiguousarray(w) for l, w in enumerate(net.weights, start=2)}
        b = {l: np.ascontiguousarray(v.reshape(-1)) for l, v in enumerate(net.biases, start=2)}
    Z, A, D, GW, GB = {}, {1: X}, {}, {}, {}
    # Feedforward: z^l = W^l a^{l-1} + b^l, a^l = f(z^l).
    for l in range(2, L + 1):
        Z[l] = np.empty((1, sizes[l - 1]), dtype=dtype)
        _core.py_feedforward_layer(A[l - 1], W[l], b[l], Z[l])
        A[l] = np.empty_like(Z[l])
        _core.py_activate(Z[l], A[l], output if l == L else hidden)
    c = np.empty(1, dtype=np.float64)
    _core.costs(Z[L], A[L], Y, output, cost, c)
    # BP1, then BP2 down to layer 2.
    D[L] = np.empty_like(A[L])
    _core.py_output_error(A[L], Y, D[L], output, cost)
    for l in range(L - 1, 1, -1):
        D[l] = np.empty_like(A[l])
        _core.py_backpropagate_error(D[l + 1], W[l + 1], A[l], D[l], hidden)
    # BP3/BP4: W <- 1·W + 1·δ aᵀ and b <- b + 1·δ on zeros give δ aᵀ and δ.
    for l in range(2, L + 1):
        GW[l] = np.zeros_like(W[l])
        GB[l] = np.zeros_like(b[l])
        _core.py_gradient_step(D[l], A[l - 1], GW[l], GB[l], 1.0, 1.0)
    return Trace(sizes, net.activation, net.output_activation, net.cost,
                 X.reshape(-1), Y.reshape(-1), W, b,
                 {l: v.reshape(-1) for l, v in Z.items()},
                 {l: v.reshape(-1) for l, v in A.items()},
                 {l: v.reshape(-1) for l, v in D.items()},
                 GB, GW, float(c[0]), digits=digits)
