"""Check a network's backprop against finite differences of its cost.

>>> import cbp
>>> report = cbp.gradcheck(net, x, y)
>>> report.ok
True
>>> print(report)                      # one line per layer, the wrong ones named

The book's exercises ask for a ``backprop`` of your own (fully matrix-based,
another cost, another activation).  :func:`gradcheck` calls the network's
``backprop`` (a subclass's override included) and compares each layer's
∂C/∂W^l and ∂C/∂b^l with central differences of the network's own
``total_cost`` on the same example::

    ∂C/∂w ≈ (C(w + ε) − C(w − ε)) / 2ε

Layers are numbered as everywhere in cbp (input layer 1, output layer L;
W^l is ``net.weights[l - 2]``).  A layer whose relative error
‖g_backprop − g_numeric‖ / (‖g_backprop‖ + ‖g_numeric‖) exceeds ``tol`` is
reported wrong; since backprop runs from the output down, the wrong layer
nearest the output is where to look first.
"""
import copy
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional

import numpy as np

from . import _checks, _data
from ._typing import ArrayLike

if TYPE_CHECKING:
    from .model import Network

__all__ = ["gradcheck", "GradCheck", "LayerCheck"]


class LayerCheck(NamedTuple):
    """The check of one layer l: relative errors of ∂C/∂W^l and ∂C/∂b^l.

    Parameters
    ----------
    layer : int
        The layer number l, counted from the input layer 1.
    weights : float
        Relative error of ∂C/∂W^l (``net.weights[l - 2]``).
    biases : float
        Relative error of ∂C/∂b^l (``net.biases[l - 2]``).
    checked : int
        Entries compared (weights and biases).
    """

    layer: int            #: The layer number l, counted from the input layer 1.
    weights: float        #: Relative error of ∂C/∂W^l (``net.weights[l - 2]``).
    biases: float         #: Relative error of ∂C/∂b^l (``net.biases[l - 2]``).
    checked: int          #: Entries compared (weights and biases).

    @property
    def error(self) -> float:
        """The larger of the two relative errors."""
        return max(self.weights, self.biases)


class GradCheck:
    """The result of :func:`gradcheck`: per-layer relative errors and a verdict.

    Parameters
    ----------
    layers : list of LayerCheck
        One per layer l = 2..L.
    tol : float
        Relative error above which a layer is reported wrong.
    eps : float
        The step ε of the central differences.
    method : str
        Which ``backprop`` was checked (its qualified name).

    Attributes
    ----------
    layers : list of LayerCheck
        Layers 2..L, input side first.
    errors : dict
        Layer number l to its larger relative error.
    wrong : list of int
        The layers whose error exceeds ``tol``.
    ok : bool
        True when no layer is wrong.
    """

    def __init__(self, layers: List[LayerCheck], tol: float, eps: float, method: str) -> None:
        self.layers = layers
        self.tol = tol
        self.eps = eps
        self.method = method
        self.errors: Dict[int, float] = {c.layer: c.error for c in layers}
        self.wrong = [c.layer for c in layers if not c.error <= tol]
        self.ok = not self.wrong

    def __bool__(self):
        return self.ok

    def message(self) -> str:
        """One sentence: all layers agree, or which layers are wrong and where to look."""
        if self.ok:
            worst = max(self.errors.values(), default=0.0)
            return (f"{self.method} agrees with finite differences in every layer "
                    f"(largest relative error {worst:.2g}, tolerance {self.tol:g})")
        top = max(self.wrong)
        names = ", ".join(f"layer {l} (W^{l}, b^{l} = net.weights[{l - 2}], "
                          f"net.biases[{l - 2}]): {self.errors[l]:.2g}"
                          for l in sorted(self.wrong, reverse=True))
        where = ("BP1, the output error δ^L" if top == len(self.layers) + 1
                 else f"BP2 for δ^{top} (the layers above agree)")
        return (f"{self.method} disagrees with finite differences of the cost in "
                f"{names} (tolerance {self.tol:g}); look first at layer {top}, nearest the "
                f"output: {where}, or BP3/BP4 for its gradients")

    def __str__(self):
        lines = [f"Gradient check of {self.method} (central differences, ε = {self.eps:g}):"]
        for c in self.layers:
            verdict = "ok" if c.error <= self.tol else "WRONG"
            lines.append(f"  layer {c.layer}: ∂C/∂W^{c.layer} {c.weights:.2e}, "
                         f"∂C/∂b^{c.layer} {c.biases:.2e} ({c.checked} entries)  {verdict}")
        lines.append(self.message())
        return "\n".join(lines)

    def __repr__(self):
        errors = ", ".join(f"{l}: {e:.2g}" for l, e in self.errors.items())
        return f"<GradCheck ok={self.ok}, relative error per layer {{{errors}}}>"


def _relative(a, b):
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / scale)


def gradcheck(net: "Network", x: ArrayLike, y: ArrayLike, eps: Optional[float] = None,
              tol: Optional[float] = None, entries: Optional[int] = 40,
              seed: int = 0) -> GradCheck:
    """Compare ``net.backprop(x, y)`` with central differences of the cost, layer by layer.

    Parameters
    ----------
    net : cbp.Network
        Any cbp network, a drop-in (``cbp.network``, ``cbp.network2``) or a
        subclass of one with its own ``backprop`` (or cost class, or
        ``cost_derivative``): the method training calls is the one checked.
    x : array_like, (n_in, 1) or (n_in,)
        The input.
    y : array_like, (n_out, 1) or (n_out,), or int
        The target vector, or a class label (its one-hot vector).
    eps : float, optional
        The step ε; default 1e-6 for float64 networks, 1e-2 for float32.
    tol : float, optional
        Relative error above which a layer is wrong; default 1e-5 for
        float64, 5e-2 for float32.
    entries : int or None
        At most this many entries of each weight matrix and of each bias
        vector are compared (chosen at random with ``seed``; every entry of a
        smaller array); None compares them all.  Each entry costs two
        evaluations of the cost.
    seed : int
        Seeds the choice of entries.

    Returns
    -------
    GradCheck
        ``.ok``, ``.errors`` (layer → relative error), ``.wrong`` (the layers
        that disagree), ``.layers`` (per layer, weights and biases apart);
        ``print`` it for a report naming the wrong layer.

    Raises
    ------
    TypeError
        If ``net`` is not a cbp network.
    ValueError
        If ``x`` or ``y`` do not fit the network, or ``backprop`` returns
        arrays of the wrong number or shape.

    Notes
    -----
    The network itself is not touched: the cost is evaluated on a copy
    (``copy.copy``) whose parameters are perturbed one at a time.  The cost
    is ``total_cost([(x, y)], 0.0)``, C_x without regularisation, through
    the network's own ``total_cost`` and ``feedforward``.
    """
    from .model import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network (or a drop-in's Network); "
                        f"got {type(net).__name__}")
    single = np.dtype(net.dtype) == np.float32
    eps = (1e-2 if single else 1e-6) if eps is None else _checks.real(eps, "eps", positive=True)
    tol = (5e-2 if single else 1e-5) if tol is None else _checks.real(tol, "tol", positive=True)
    if entries is not None:
        entries = _checks.integer(entries, "entries", minimum=1)
    seed = _checks.integer(seed, "seed", minimum=0)
    sizes = net.sizes
    xc = _checks.vector(x, "x", sizes[0], np.float64).reshape(-1, 1)
    yc = _data.target(y, "y", sizes[-1], np.float64).reshape(-1, 1)
    nabla_b, nabla_w = net.backprop(xc, yc)
    shapes_w = [w.shape for w in net.weights]
    shapes_b = [b.shape for b in net.biases]
    for name, got, shapes in (("nabla_b", nabla_b, shapes_b), ("nabla_w", nabla_w, shapes_w)):
        if len(got) != len(shapes):
            raise ValueError(f"backprop must return {len(shapes)} arrays in {name}; "
                             f"got {len(got)}")
        for k, (g, shape) in enumerate(zip(got, shapes)):
            if np.shape(g) != shape:
                raise ValueError(f"backprop returned {name}[{k}] of shape {np.shape(g)}; "
                                 f"expected {shape}")
    probe = copy.copy(net)
    data = [(xc, yc)]
    rng = np.random.default_rng(seed)

    def cost():
        return float(probe.total_cost(data, 0.0))

    def numeric(which, k, analytic):
        layers = probe.weights if which == 0 else probe.biases
        base = np.array(layers[k], dtype=np.float64)
        flat = np.arange(base.size)
        if entries is not None and base.size > entries:
            flat = np.sort(rng.choice(base.size, entries, replace=False))
        got = np.empty(flat.size)
        for n, i in enumerate(flat):
            values = []
            for step in (eps, -eps):
                moved = base.copy()
                moved.flat[i] += step
                if which == 0:
                    probe.weights[k] = moved
                else:
                    probe.biases[k] = moved
                values.append(cost())
            got[n] = (values[0] - values[1]) / (2 * eps)
        if which == 0:
            probe.weights[k] = base
        else:
            probe.biases[k] = base
        return _relative(np.asarray(analytic, dtype=np.float64).ravel()[flat], got), flat.size

    method = f"{type(net).__qualname__}.backprop"
    layers = []
    for k in range(len(shapes_w)):
        rel_w, n_w = numeric(0, k, nabla_w[k])
        rel_b, n_b = numeric(1, k, nabla_b[k])
        layers.append(LayerCheck(k + 2, rel_w, rel_b, n_w + n_b))
    return GradCheck(layers, tol, eps, method)
