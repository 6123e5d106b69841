"""Backpropagation, one example, every number: a teaching trace.

>>> net, x, y = worked_example()        # a lecture's worked 2-3-2 example
>>> trace = explain(net, x, y)           # or net.explain(x, y)
>>> print(trace)                         # text; a notebook cell ending in `trace` typesets it
Backpropagation on one example: network [2, 3, 2], sigmoid hidden layer, ...

:func:`explain` runs the four backprop equations on one example with the
core's own kernels (the ones training runs, through their ``py_*``
wrappers), keeps every intermediate value, and ends with the gradient-descent
step those gradients give.

One layer numbering everywhere in cbp (the trace, :mod:`cbp.plot`, the docs):
Nielsen's and note 001's.  The input layer is layer 1 and the output layer
is L = len(sizes); the weights W^l and biases b^l feed layer l, l = 2..L, and
are ``net.weights[l - 2]`` and ``net.biases[l - 2]``.

Sign and scale conventions of the notes (cbp's δ^l = ∂C/∂z^l, Nielsen's)::

    note  cost                      its δ, in cbp's terms             its update
    000   ½ Σ (y − o)², or          δ_j = −∂E/∂net_j = −δ             w + η δ o
          cross-entropy
    001   ½ ‖a − y‖²                δ^l = ∂C/∂z^l = δ                 w − (η/m) Σ δ aᵀ
    002   ½ squared, or             δ_i = ∂J/∂ŷ_i σ'(z_i) = δ         w − α δ a
          cross-entropy             ("sensitivity")
    003   ½ ‖x_L − y‖²,             δ_i = ∂E/∂z_i = δ; its W_i is     W_i − α δ_i x_{i−1}ᵀ
          layers from 0             cbp's W^(i+1)
    004   Σ (t − y)² (cost='sse')   δ_o = y(1 − y)(t − y) = −δ/2      w + α δ a (2 in α)
"""
import sys
from typing import List, Optional, TextIO, Tuple

import numpy as np

from . import _checks, _core, _data, model
from .model import Network
from ._typeset import Formatter, Row, Step
from ._typing import Array, ArrayLike

__all__ = ["Trace", "explain", "worked_example"]

# How each activation is written: (text symbol, TeX symbol).
_SYMBOL = {"sigmoid": ("σ", r"\sigma"), "tanh": ("tanh", r"\tanh"),
           "relu": ("relu", r"\operatorname{relu}"), "linear": ("id", r"\operatorname{id}"),
           "softmax": ("softmax", r"\operatorname{softmax}"), "exp": ("exp", r"\exp")}
# f(z) and f'(z), the latter from a = f(z) as the core computes it: (text, TeX).
_LEGEND = {
    "sigmoid": ("σ(z) = 1 / (1 + e^(−z)), σ'(z) = a (1 − a)",
                r"\sigma(z) = \frac{1}{1 + e^{-z}},\quad \sigma'(z) = a\,(1 - a)"),
    "tanh": ("tanh(z), tanh'(z) = 1 − a²", r"\tanh(z),\quad \tanh'(z) = 1 - a^2"),
    "relu": ("relu(z) = max(z, 0), relu'(z) = 1 if z > 0 else 0",
             r"\operatorname{relu}(z) = \max(z, 0),\quad \operatorname{relu}'(z) = [z > 0]"),
    "linear": ("id(z) = z, id'(z) = 1",
               r"\operatorname{id}(z) = z,\quad \operatorname{id}'(z) = 1"),
    "softmax": ("softmax(z)_j = e^(z_j) / Σ_k e^(z_k)",
                r"\operatorname{softmax}(z)_j = \frac{e^{z_j}}{\sum_k e^{z_k}}"),
    "exp": ("exp(z) = e^z, exp'(z) = a", r"\exp(z) = e^z,\quad \exp'(z) = a"),
}
# C_x with the output written @ (a in the legend, a^L in the cost step): (text, TeX).
_COST = {
    "quadratic": ("½ ‖@ − y‖²", r"\tfrac{1}{2}\lVert @ - y \rVert^2"),
    "sse": ("Σ (y − @)²", r"\sum_j (y_j - @_j)^2"),
    "cross_entropy": ("−Σ [y ln @ + (1 − y) ln(1 − @)]",
                      r"-\sum_j \left[y_j \ln @_j + (1 - y_j) \ln(1 - @_j)\right]"),
    "log_likelihood": ("−Σ y ln @", r"-\sum_j y_j \ln @_j"),
    "poisson": ("Σ [y ln(y / @) − y + @]",
                r"\sum_j \left[y_j \ln \frac{y_j}{@_j} - y_j + @_j\right]"),
}


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
    if name == "exp":
        return a.copy()
    return np.ones_like(a)


def _sup(name, l):
    """``name^l`` as (text, TeX)."""
    return f"{name}^{l}", f"{name}^{{{l}}}"


class Trace:
    """Everything backpropagation computes for one example (x, y), and the step it gives.

    Layers are numbered as everywhere in cbp: input layer 1, output layer L,
    and W^l, b^l (l = 2..L) are ``net.weights[l - 2]``, ``net.biases[l - 2]``.
    Each attribute below is a dict from the layer number l to a NumPy array
    (vectors are 1-D, in the network's dtype).  :func:`explain` builds it.
    ``print(trace)`` writes it as text; in a Jupyter notebook a cell ending
    in ``trace`` shows it typeset (``_repr_html_``, with TeX for MathJax;
    ``_repr_markdown_`` and ``_repr_latex_`` for other front ends).

    Parameters
    ----------
    sizes, activation, output_activation, cost, x, y, W, b, z, a, delta : object
        Stored as the attributes of the same names.
    grad_b, grad_w, cost_value, digits : object
        Stored as the attributes of the same names.
    eta, W_new, b_new : object, optional
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
    eta : float or None
        The learning rate η of the update step shown.
    W_new, b_new : dict, l = 2..L
        W^l − η ∂C/∂W^l and b^l − η ∂C/∂b^l: one gradient-descent step on
        this example (a mini-batch of m averages: η/m times the sum).
    sizes, activation, output_activation, cost
        The network's description.
    digits : int
        Decimals shown (values below 10^(1 − digits) get ``digits``
        significant digits instead).
    """

    def __init__(self, sizes, activation, output_activation, cost, x, y, W, b, z, a, delta,
                 grad_b, grad_w, cost_value, digits=4, eta=None, W_new=None, b_new=None):
        self.sizes = list(sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.cost = cost
        self.x, self.y = x, y
        self.W, self.b, self.z, self.a = W, b, z, a
        self.delta, self.grad_b, self.grad_w = delta, grad_b, grad_w
        self.cost_value = cost_value
        self.digits = digits
        self.eta = eta
        self.W_new = W_new or {}
        self.b_new = b_new or {}

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

    def _formatter(self, digits, max_columns):
        digits = self.digits if digits is None else _checks.integer(digits, "digits", minimum=0)
        max_columns = _checks.integer(max_columns, "max_columns", minimum=1)
        return Formatter(digits, max_columns)

    def render(self, digits: Optional[int] = None, max_columns: int = 12) -> str:
        """The trace as text, step by step, in the notes' notation.

        Parameters
        ----------
        digits : int, optional
            Decimals per value (default: ``self.digits``); values too small
            for two significant digits that way get ``digits`` significant
            digits.
        max_columns : int
            Vectors longer than this, and matrices with more rows or columns,
            are summarised (shape, norm, min, max) instead of printed in full.
        """
        fmt = self._formatter(digits, max_columns)
        with np.errstate(all="ignore"):
            return fmt.text(self._head(), self._legend(), self._steps())

    def to_html(self, digits: Optional[int] = None, max_columns: int = 12) -> str:
        """The trace as HTML, equations in TeX between ``\\(`` and ``\\)`` (for MathJax).

        Parameters
        ----------
        digits : int, optional
            Decimals per value, as for :meth:`render`.
        max_columns : int
            Wider vectors and matrices are summarised, as for :meth:`render`.
        """
        fmt = self._formatter(digits, max_columns)
        with np.errstate(all="ignore"):
            return fmt.html(self._head(), self._legend(), self._steps())

    def to_markdown(self, digits: Optional[int] = None, max_columns: int = 12) -> str:
        """The trace as Markdown with ``$...$`` and ``$$...$$`` TeX.

        Parameters
        ----------
        digits : int, optional
            Decimals per value, as for :meth:`render`.
        max_columns : int
            Wider vectors and matrices are summarised, as for :meth:`render`.
        """
        fmt = self._formatter(digits, max_columns)
        with np.errstate(all="ignore"):
            return fmt.markdown(self._head(), self._legend(), self._steps())

    def to_latex(self, digits: Optional[int] = None, max_columns: int = 12) -> str:
        """The trace as one display-math LaTeX block (``$$\\begin{array}...$$``).

        Parameters
        ----------
        digits : int, optional
            Decimals per value, as for :meth:`render`.
        max_columns : int
            Wider vectors and matrices are summarised, as for :meth:`render`.
        """
        fmt = self._formatter(digits, max_columns)
        with np.errstate(all="ignore"):
            return fmt.latex(self._head(), self._legend(), self._steps())

    def _repr_html_(self):
        return self.to_html()

    def _repr_markdown_(self):
        return self.to_markdown()

    def _repr_latex_(self):
        return self.to_latex()

    def _head(self):
        L = self.L
        hidden = (f"{self.activation} hidden layer{'s' if L > 3 else ''}" if L > 2
                  else "no hidden layer")
        return [f"Backpropagation on one example: network {self.sizes}, {hidden}, "
                f"{self.output_activation} output, {self.cost} cost",
                f"Layers are numbered from the input layer 1 to the output layer L = {L};",
                f"W^l and b^l (l = 2..{L}) feed layer l: net.weights[l−2] and net.biases[l−2]. "
                "Vectors are columns, printed as [...]ᵀ."]

    def _legend(self):
        items = [_LEGEND[name] for name in dict.fromkeys((self.activation,
                                                          self.output_activation))]
        text, tex = _COST[self.cost]
        return items + [(f"C_x = {text.replace('@', 'a')}", f"C_x = {tex.replace('@', 'a')}")]

    def _steps(self):
        L = self.L
        steps = [Step("Example", "", "", [Row("Input: a^1 = x", r"\text{input } a^{1} = x", self.x),
                                          Row("Target: y", r"\text{target } y", self.y)])]
        for l in range(2, L + 1):
            name = self.output_activation if l == L else self.activation
            f, ftex = _SYMBOL[name]
            (W, Wt), (b, bt), (z, zt), (a, at) = (_sup(s, l) for s in "Wbza")
            ap, apt = _sup("a", l - 1)
            steps.append(Step("Feedforward", f"{z} = {W} {ap} + {b}", f"{zt} = {Wt} {apt} + {bt}",
                              [Row(W, Wt, self.W[l]), Row(b, bt, self.b[l]),
                               Row(z, zt, self.z[l]),
                               Row(f"{a} = {f}({z})", rf"{at} = {ftex}({zt})", self.a[l])]))
        text, tex = _COST[self.cost]
        value = Formatter(self.digits, 1).number(self.cost_value)
        steps.append(Step("Cost", f"C_x = {text.replace('@', f'a^{L}')} = {value}",
                          f"C_x = {tex.replace('@', f'a^{{{L}}}')} = {value}", []))
        steps.append(self._bp1())
        hid, hidt = _SYMBOL[self.activation]
        for l in range(L - 1, 1, -1):
            (d, dt), (dn, dnt), (Wn, Wnt), (z, zt) = (
                _sup("δ", l), _sup("δ", l + 1), _sup("W", l + 1), _sup("z", l))
            dt, dnt = dt.replace("δ", r"\delta"), dnt.replace("δ", r"\delta")
            steps.append(Step(
                "Backpropagate the error, BP2",
                f"{d} = (({Wn})ᵀ {dn}) ⊙ {hid}'({z})",
                rf"{dt} = \left(({Wnt})^{{\mathsf T}} {dnt}\right) \odot {hidt}'({zt})",
                [Row(f"({Wn})ᵀ {dn}", rf"({Wnt})^{{\mathsf T}} {dnt}",
                     self.W[l + 1].T @ self.delta[l + 1]),
                 Row(f"{hid}'({z})", rf"{hidt}'({zt})", _derivative(self.activation, self.a[l])),
                 Row(d, dt, self.delta[l])]))
        rows = []
        for l in range(L, 1, -1):
            rows += [Row(f"BP3: ∂C/∂b^{l} = δ^{l}",
                         rf"\text{{BP3: }} \frac{{\partial C}}{{\partial b^{{{l}}}}} = "
                         rf"\delta^{{{l}}}", self.grad_b[l]),
                     Row(f"BP4: ∂C/∂W^{l} = δ^{l} (a^{l - 1})ᵀ",
                         rf"\text{{BP4: }} \frac{{\partial C}}{{\partial W^{{{l}}}}} = "
                         rf"\delta^{{{l}}} (a^{{{l - 1}}})^{{\mathsf T}}",
                         self.grad_w[l])]
        steps.append(Step("Gradients", "BP3: ∂C/∂b^l = δ^l and BP4: ∂C/∂W^l = δ^l (a^{l−1})ᵀ",
                          r"\text{BP3: } \frac{\partial C}{\partial b^l} = \delta^l,\quad "
                          r"\text{BP4: } \frac{\partial C}{\partial W^l} = "
                          r"\delta^l (a^{l-1})^{\mathsf T}", rows))
        if self.eta is not None and self.W_new:
            eta = Formatter(max(self.digits, 1), 1).number(self.eta).rstrip("0").rstrip(".")
            rows = []
            for l in range(L, 1, -1):
                rows += [Row(f"W^{l} − η ∂C/∂W^{l}",
                             rf"W^{{{l}}} - \eta \frac{{\partial C}}{{\partial W^{{{l}}}}}",
                             self.W_new[l]),
                         Row(f"b^{l} − η ∂C/∂b^{l}",
                             rf"b^{{{l}}} - \eta \frac{{\partial C}}{{\partial b^{{{l}}}}}",
                             self.b_new[l])]
            steps.append(Step(
                f"Update, gradient descent with η = {eta} on this example",
                "W^l ← W^l − η ∂C/∂W^l, b^l ← b^l − η ∂C/∂b^l (m examples: η/m times the sum)",
                r"W^l \leftarrow W^l - \eta \frac{\partial C}{\partial W^l},\quad "
                r"b^l \leftarrow b^l - \eta \frac{\partial C}{\partial b^l}"
                r"\quad\text{(a mini-batch of } m\text{: } \tfrac{\eta}{m}\textstyle\sum_x)",
                rows))
        return steps

    def _bp1(self):
        L, out, cost = self.L, self.output_activation, self.cost
        a, y, D = self.a[L], self.y, self.delta[L]
        sym, symt = _SYMBOL[out]
        d, dt = f"δ^{L}", rf"\delta^{{{L}}}"
        aL, aLt = f"a^{L}", f"a^{{{L}}}"
        fp = Row(f"{sym}'(z^{L})", rf"{symt}'(z^{{{L}}})", _derivative(out, a))
        title = "Output error (BP1)"
        if cost == "cross_entropy":
            grad = Row(f"∇_a C = ({aL} − y) ⊘ ({aL} ⊙ (1 − {aL}))",
                       rf"\nabla_a C = \frac{{{aLt} - y}}{{{aLt} \odot (1 - {aLt})}}",
                       (a - y) / (a * (1 - a)))
            return Step(title,
                        f"{d} = ∇_a C ⊙ σ'(z^{L}) with the cross-entropy's "
                        f"∇_a C = ({aL} − y) ⊘ ({aL} ⊙ (1 − {aL})) and σ'(z^{L}) = "
                        f"{aL} ⊙ (1 − {aL}): σ' cancels, δ^{L} = {aL} − y",
                        rf"{dt} = \nabla_a C \odot \sigma'(z^{{{L}}}) = "
                        rf"\frac{{{aLt} - y}}{{{aLt} (1 - {aLt})}} \odot {aLt} (1 - {aLt}) "
                        rf"= {aLt} - y",
                        [grad, Row(f"σ'(z^{L}) = {aL} ⊙ (1 − {aL})",
                                   rf"\sigma'(z^{{{L}}}) = {aLt} \odot (1 - {aLt})",
                                   _derivative(out, a)),
                         Row(f"{d} = {aL} − y (computed so: finite where a is 0 or 1)",
                             rf"{dt} = {aLt} - y", D)])
        if cost == "log_likelihood":
            grad = Row(f"∇_a C = −y ⊘ {aL}", rf"\nabla_a C = -y \oslash {aLt}", -y / a)
            if out == "softmax":
                return Step(title, f"{d} = {aL} Σ_j y_j − y   (= {aL} − y for a one-hot y)",
                            rf"{dt} = {aLt} \textstyle\sum_j y_j - y", [grad, Row(d, dt, D)])
            return Step(title, f"{d} = ∇_a C ⊙ σ'(z^{L}) = −y ⊙ (1 − {aL})",
                        rf"{dt} = \nabla_a C \odot \sigma'(z^{{{L}}}) = -y \odot (1 - {aLt})",
                        [grad, fp, Row(d, dt, D)])
        if cost == "poisson":
            with np.errstate(divide="ignore", invalid="ignore"):
                grad = Row(f"∇_a C = 1 − y ⊘ {aL}", rf"\nabla_a C = 1 - y \oslash {aLt}",
                           1 - y / a)
            return Step(title, f"{d} = ∇_a C ⊙ exp'(z^{L}) = (1 − y ⊘ {aL}) ⊙ {aL} = {aL} − y",
                        rf"{dt} = \nabla_a C \odot \exp'(z^{{{L}}}) = {aLt} - y",
                        [grad, fp, Row(d, dt, D)])
        if cost == "quadratic":
            grad = Row(f"∇_a C = {aL} − y", rf"\nabla_a C = {aLt} - y", a - y)
        else:
            grad = Row(f"∇_a C = 2 ({aL} − y)", rf"\nabla_a C = 2\,({aLt} - y)", 2 * (a - y))
        if out == "softmax":
            return Step(title, f"{d} = J(z^{L})ᵀ ∇_a C, i.e. δ_j = a_j (g_j − Σ_k a_k g_k) "
                               "with g = ∇_a C",
                        rf"{dt}_j = a_j \left(g_j - \textstyle\sum_k a_k g_k\right),\quad "
                        r"g = \nabla_a C", [grad, Row(d, dt, D)])
        return Step(title, f"{d} = ∇_a C ⊙ {sym}'(z^{L})",
                    rf"{dt} = \nabla_a C \odot {symt}'(z^{{{L}}})", [grad, fp, Row(d, dt, D)])


@model.implements("explain")
def explain(net: "Network", x: ArrayLike, y: ArrayLike, digits: int = 4,
            eta: float = 1.0) -> Trace:
    """Trace backpropagation through ``net`` for one example (x, y).

    Runs feedforward, BP1, BP2 and BP3/BP4 with the core's kernels, one
    equation at a time, exactly as training computes them, then the
    gradient-descent step W^l − η ∂C/∂W^l, b^l − η ∂C/∂b^l they give, and
    returns every intermediate value.  In a notebook the returned trace shows
    itself typeset; ``print`` it in a terminal.

    Layers are numbered from the input layer 1 to the output layer
    L = len(sizes); W^l, b^l (l = 2..L) are ``net.weights[l − 2]``,
    ``net.biases[l − 2]``.  cbp's δ^l is ∂C/∂z^l, as in Nielsen's book and
    notes 001-003; the other notes differ by sign or a factor:

    ====  =======================  =========================  ======================
    note  cost                     its δ, in cbp's terms      its update
    ====  =======================  =========================  ======================
    000   ½Σ(y − o)², or cross-    δ_j = −∂E/∂net_j = −δ      w + η δ o
          entropy
    001   ½‖a − y‖²                δ^l = ∂C/∂z^l = δ          w − (η/m) Σ δ aᵀ
    002   ½ squared, or cross-     δ_i = ∂J/∂ŷ_i σ'(z_i) = δ  w − α δ a
          entropy
    003   ½‖x_L − y‖², layers      δ_i = ∂E/∂z_i = δ; its     W_i − α δ_i x_{i−1}ᵀ
          from 0                   W_i is cbp's W^(i+1)
    004   Σ(t − y)² (cost='sse')   δ_o = y(1 − y)(t − y)      w + α δ a (2 in α)
                                   = −δ/2
    ====  =======================  =========================  ======================

    Parameters
    ----------
    net : cbp.Network
    x : array_like, (n_in, 1) or (n_in,)
    y : array_like, (n_out, 1) or (n_out,), or int
        The target vector (one-hot for a digit), or a class label as training
        takes it (its one-hot vector; for one output unit, 0 or 1).
    digits : int
        Decimals shown when the trace is printed (values below
        10^(1 − digits) get ``digits`` significant digits instead).
    eta : float
        Learning rate η of the update step shown (one example, m = 1).

    Returns
    -------
    Trace
        ``print(trace)`` shows the steps; ``trace.z[l]``, ``trace.delta[l]``,
        ``trace.grad_w[l]``... hold the numbers (notes' numbering, input layer 1).
        ``trace.gradients()`` equals ``net.backprop(x, y)``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")
    digits = _checks.integer(digits, "digits", minimum=0)
    eta = _checks.real(eta, "eta", positive=True)
    sizes, dtype = net.sizes, net.dtype
    X = _checks.vector(x, "x", sizes[0], dtype).reshape(1, sizes[0])
    Y = _data.target(y, "y", sizes[-1], dtype).reshape(1, sizes[-1])
    # One consistent snapshot of the parameters, numbered as in the notes.
    with net.parameters():
        W = {l: np.ascontiguousarray(w) for l, w in enumerate(net.weights, start=2)}
        b = {l: np.ascontiguousarray(v.reshape(-1)) for l, v in enumerate(net.biases, start=2)}
    # Huge finite inputs overflow to ±Inf (and Inf − Inf to NaN) inside the
    # NumPy steps below as in the core: the trace shows them, without warnings.
    with np.errstate(all="ignore"):
        return _trace(net, X, Y, W, b, digits, eta)


def _trace(net, X, Y, W, b, digits, eta):
    sizes, dtype = net.sizes, net.dtype
    L = len(sizes)
    hidden, output, cost = net.layout.codes
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
    # The update as a training step makes it: W <- 1·W − η δ aᵀ, b <- b − η δ.
    W_new, b_new = {}, {}
    for l in range(2, L + 1):
        W_new[l], b_new[l] = W[l].copy(), b[l].copy()
        _core.py_gradient_step(D[l], A[l - 1], W_new[l], b_new[l], -eta, 1.0)
    return Trace(sizes, net.activation, net.output_activation, net.cost,
                 X.reshape(-1), Y.reshape(-1), W, b,
                 {l: v.reshape(-1) for l, v in Z.items()},
                 {l: v.reshape(-1) for l, v in A.items()},
                 {l: v.reshape(-1) for l, v in D.items()},
                 GB, GW, float(c[0]), digits=digits, eta=eta, W_new=W_new, b_new=b_new)
