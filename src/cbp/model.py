"""The model: a feed-forward network, laid out exactly as network.py lays it out.

``cbp.Network`` is this class.  The book's drop-ins (``cbp.network``,
``cbp.network2``) are thin subclasses of it.  The loops run in the Cython core
(``_core.pyx``); this module checks and converts.

The class is assembled from parts, one module each: the book's methods are
here; the interface the rest of cbp uses (``_rows``: :attr:`Network.layout`,
:meth:`Network.parameters`, the ``*_rows`` methods, :meth:`Network.epoch_orders`,
:attr:`Network.cost_name`), the layers (``_snapshot``), the hooks of the
Python path for overridden methods (``_python_path``) and pickling
(``_pickling``) are mixed in.  The model is the bottom of cbp's Python layer:
the optimizers and the training loop (:mod:`cbp.sgd`, :mod:`cbp.training`),
the model files (:mod:`cbp.io`) and the trace (:mod:`cbp.explain`) import it
and reach a network only through that interface; the book-style methods
that belong to them (``net.SGD``, the step of ``net.update_mini_batch``,
``net.save``, ``net.explain``) call the functions those modules register
with :func:`implements`: the model imports none of them.

Notation (note 001): layer l has weights W^l (n_l, n_{l-1}) and biases
b^l (n_l, 1); z^l = W^l a^{l-1} + b^l and a^l = f(z^l).
"""
import threading
from collections.abc import Sequence
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _checks, _core, _data, _python_path, activations, costs
from ._layout import Layout
from ._python_path import Overridable, fast, overridden, sigmoid, sigmoid_prime
from ._pickling import Pickling
from ._rows import RowInterface
from ._snapshot import LayerAccess, Layers, Snapshot
from ._typing import Array, ArrayLike, Data, DType, History, PathLike, Progress

__all__ = ["Network", "Layout", "Layers", "Snapshot", "sigmoid", "sigmoid_prime", "implements",
           "MAX_LAYERS"]

MAX_LAYERS = _core.MAX_LAYERS

# The book-style methods implemented above the model, by name: "SGD" and
# "step" (cbp.sgd), "save" (cbp.io), "explain" (cbp.explain).  Importing cbp
# imports those modules, which fill this table in.
_FACADES: Dict[str, Callable[..., Any]] = {}


def implements(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the function that carries out one of :class:`Network`'s book-style methods.

    ``Network.SGD``, ``Network.save`` and ``Network.explain`` (and the step of
    ``Network.update_mini_batch``) call what the modules above the model
    registered under ``"SGD"``, ``"save"``, ``"explain"`` and ``"step"``; so the
    model imports none of them, and every dependency points one way.

    Parameters
    ----------
    name : {'SGD', 'step', 'save', 'explain'}
        The method carried out.

    Returns
    -------
    callable
        A decorator registering its function and returning it unchanged.
    """
    def register(function):
        _FACADES[name] = function
        return function
    return register


class Network(RowInterface, LayerAccess, Overridable, Pickling):
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first: ``[784, 30, 10]``.  At least two layers.
    activation : {'sigmoid', 'tanh', 'relu', 'linear'}
        f for the hidden layers.
    output_activation : {'sigmoid', 'tanh', 'relu', 'linear', 'softmax', 'exp'}, optional
        f for the output layer; ``None`` means the same as ``activation``.
    cost : {'quadratic', 'sse', 'cross_entropy', 'log_likelihood', 'poisson'}
        C_x: ½‖a − y‖², Σ(y − a)², −Σ[y ln a + (1 − y) ln(1 − a)] (sigmoid
        output), −Σ y ln a (softmax or sigmoid output) or Σ[y ln(y/a) − y + a]
        (half the Poisson deviance, exp output).
    init : {'gaussian', 'scaled'}
        Weights and biases N(0, 1) as network.py, or weights N(0, 1/n_in).
    dtype : {'float64', 'float32'}
    seed : int or None
        Seeds the network's own generator, which draws the initial weights and
        shuffles the training data: the same seed gives bit-identical runs.
        ``None`` follows NumPy's convention for "no seed" and network.py: the
        weights come from NumPy's global generator (``np.random.randn`` for
        each bias column, then each weight matrix, network.py's calls and
        order; divided by √n_in for ``init='scaled'``, as network2.py), and
        each epoch shuffles with Python's ``random.shuffle``: a list of
        (x, y) tuples is shuffled in place, as network.py shuffles it; any
        other input (arrays, an iterator) is shuffled as that list would be,
        without being touched.  So ``random.seed`` and ``np.random.seed``
        reproduce the book's code.

    Attributes
    ----------
    sizes, num_layers, weights, biases
        As network.py: ``weights[l]`` is (sizes[l+1], sizes[l]), ``biases[l]``
        is (sizes[l+1], 1).  Reading gives a :class:`Layers` list of read-only
        snapshots; assigning a list, or one item (``net.weights[l] = new``),
        validates it and copies it into the core.

    Notes
    -----
    A subclass overriding ``feedforward``, ``backprop`` or
    ``update_mini_batch`` (the book's exercises) has its methods called by
    ``SGD``, ``update_mini_batch`` and ``evaluate``, in Python.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "sigmoid",
                 output_activation: Optional[str] = None, cost: str = "quadratic",
                 init: str = "gaussian", dtype: DType = "float64",
                 seed: Optional[int] = None) -> None:
        sizes = _checks.layer_sizes(sizes)
        hidden = activations.lookup(activation, "activation")
        if output_activation is None:
            output_activation = activation
        output = activations.lookup(output_activation, "output_activation", output=True)
        cost_entry = costs.lookup(cost, output_activation.lower())
        if not isinstance(init, str) or init not in _checks.INITS:
            raise ValueError(f"init must be one of {list(_checks.INITS)}; got {init!r}")
        self.dtype = _checks.dtype(dtype)
        _checks.fits_in_memory(sizes, self.dtype)
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = _checks.integer(seed, "seed", minimum=0)
        self.activation = activation.lower()
        self.output_activation = output_activation.lower()
        self.cost = cost.lower()
        self.init = init
        self._layout = Layout(sizes, (hidden.code, output.code, cost_entry.code), self.dtype)
        # No seed: NumPy's global generator draws the weights and Python's
        # ``random`` shuffles, as network.py does (and NumPy's convention for
        # "no seed"); a seed gives the network a generator of its own.
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._params = np.empty(self._layout.n_params, dtype=self.dtype)
        self._draw(init)

    def _draw(self, init):
        """Fresh N(0, 1) biases and weights (N(0, 1/n_in) for init='scaled').

        Biases then weights, layer by layer: network.py's calls and order of
        drawing (``np.random.randn(y, 1)``, then ``np.random.randn(y, x)``,
        divided by √x for 'scaled' as network2.py does).  Drawn in float64
        whatever the dtype, in slices straight into the parameters: no second
        copy of a large layer, and the same stream as one whole draw.
        """
        draw = np.random.standard_normal if self._rng is None else self._rng.standard_normal
        with self._lock:
            ws, bs = self._layout.views(self._params)
            for k, arr in enumerate(bs + ws):
                scale = np.sqrt(arr.shape[1]) if init == "scaled" and k >= len(bs) else None
                flat = arr.reshape(-1)
                for start in range(0, flat.size, 1 << 16):
                    part = draw(min(1 << 16, flat.size - start))
                    flat[start:start + part.size] = part if scale is None else part / scale

    # -- feedforward and backprop ---------------------------------------------

    @fast
    def feedforward(self, a: ArrayLike, num_threads: Optional[int] = None) -> Array:
        """a^L for an input: apply z^l = W^l a^{l-1} + b^l, a^l = f(z^l) layer by layer.

        Parameters
        ----------
        a : array_like
            A column (n_in, 1) as network.py passes it, a vector (n_in,), or a
            batch (n_samples, n_in), one example per row.  Any layout or real
            dtype; it is converted to the network's dtype.
        num_threads : int, optional
            Threads for a batch, which is split into blocks of 64 rows; the
            result does not depend on it.  Default: OpenMP's thread count
            (``OMP_NUM_THREADS``, ``threadpoolctl.threadpool_limits``).

        Returns
        -------
        ndarray
            (n_out, 1), (n_out,) or (n_samples, n_out) respectively.
        """
        n_in, n_out = self.sizes[0], self.sizes[-1]
        if num_threads is not None:
            num_threads = _checks.integer(num_threads, "num_threads", minimum=1)
        arr = _checks.array(a, "a", self.dtype)
        no_nan = _checks.no_nan
        if arr.ndim == 2 and arr.shape == (n_in, 1) and (n_in != 1 or arr.shape[0] == 1):
            return no_nan(self._predict(arr.reshape(1, n_in))[0].reshape(n_out, 1), "a^L")
        if arr.ndim == 1 and arr.shape[0] == n_in:
            return no_nan(self._predict(arr.reshape(1, n_in))[0], "a^L")
        if arr.ndim == 2 and arr.shape[1] == n_in:
            return no_nan(self._predict(arr, num_threads), "a^L")
        raise ValueError(f"a must have shape ({n_in}, 1), ({n_in},) or (n_samples, {n_in}); "
                         f"got {arr.shape}")

    @fast
    def backprop(self, x: ArrayLike, y: ArrayLike) -> Tuple[List[Array], List[Array]]:
        """The gradient of C_x for one example, by backpropagation.

        Feedforward, then BP1 δ^L = ∇_a C ⊙ f'(z^L), BP2
        δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l), and BP3/BP4 ∂C/∂b^l = δ^l,
        ∂C/∂W^l = δ^l (a^{l-1})ᵀ.

        Parameters
        ----------
        x : array_like, (n_in, 1) or (n_in,)
        y : array_like, (n_out, 1) or (n_out,), or int
            The target, or a class label as ``SGD`` and ``evaluate`` take it
            (its one-hot vector; for one output unit, 0 or 1).

        Returns
        -------
        (nabla_b, nabla_w) : lists of arrays shaped like ``biases`` and ``weights``.
        """
        n_in, n_out = self.sizes[0], self.sizes[-1]
        X = _checks.vector(x, "x", n_in, self.dtype).reshape(1, n_in)
        Y = _data.target(y, "y", n_out, self.dtype).reshape(1, n_out)
        grad = _checks.no_nan(self.gradient_rows(X, Y)[0], "the gradient")
        ws, bs = self._layout.views(grad)
        return [b.copy() for b in bs], [w.copy() for w in ws]

    # -- training (carried out by cbp.sgd and cbp.training) --------------------

    @fast
    def update_mini_batch(self, mini_batch: Data, eta: float, lmbda: float = 0.0,
                          n: Optional[int] = None, num_threads: Optional[int] = None) -> None:
        """One gradient-descent step on one mini-batch (network.py's method).

        W ← (1 − ηλ/n) W − (η/m) Σ_x δ_x (a_x)ᵀ and b ← b − (η/m) Σ_x δ_x, with
        m = len(mini_batch); ``lmbda`` and ``n`` (the training-set size) as in
        network2.py.  A subclass's own ``backprop`` is called for each example.

        Parameters
        ----------
        mini_batch : list of (x, y) tuples, or a pair (X, Y)
            The m examples of the step.
        eta : float
            Learning rate η > 0.
        lmbda : float
            L2 strength λ >= 0.
        n : int, optional
            Training-set size in the L2 term; default m.
        num_threads : int, optional
            Most threads the step may use (default OpenMP's count); the
            result does not depend on it.
        """
        if num_threads is not None:
            num_threads = _checks.integer(num_threads, "num_threads", minimum=1)
        if overridden(self, "backprop", "cost_derivative"):
            return _python_path.update_mini_batch(self, mini_batch, eta, lmbda, n)
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        X, Y = _data.training_arrays(mini_batch, self.sizes[0], self.sizes[-1], self.dtype,
                                     name="mini_batch")
        if X.shape[0] == 0:
            raise ValueError("mini_batch must hold at least one example")
        n = X.shape[0] if n is None else _checks.integer(n, "n", minimum=1)
        _FACADES["step"](self, X, Y, n, eta, lmbda, num_threads)

    def SGD(self, training_data: Data, epochs: int, mini_batch_size: int, eta: float,
            test_data: Data = None, lmbda: float = 0.0, momentum: float = 0.0,
            shuffle: bool = True, verbose: bool = True, progress: Progress = None,
            monitor_learning_speed: Union[bool, str] = False,
            num_threads: Optional[int] = None) -> History:
        """Train by mini-batch stochastic gradient descent (network.py's signature).

        Each epoch shuffles the training data with the network's generator,
        splits it into mini-batches of ``mini_batch_size`` (the last may be
        shorter) and takes one step per mini-batch; the whole epoch runs in the
        core without the GIL.  ``mini_batch_size=1`` is online learning,
        ``mini_batch_size=len(training_data)`` batch gradient descent.

        Parameters
        ----------
        training_data : list of (x, y) tuples, or a pair (X, Y)
        epochs : int >= 0
        mini_batch_size : int >= 1
        eta : float > 0
            Learning rate η.
        test_data : list of (x, label) tuples, or a pair (X, labels), optional
            Evaluated after each epoch; prints "Epoch j: correct / total".
        lmbda : float >= 0
            L2 strength λ: weights decay by (1 − ηλ/n) each step.
        momentum : float in [0, 1)
            μ: v ← μv − η(∇C + (λ/n)W), W ← W + v.
        shuffle : bool
        verbose : bool
            Print network.py's per-epoch lines.
        progress : callable, optional
            Called as ``progress(examples_done)`` during each epoch.
        monitor_learning_speed : bool or {'norm', 'mean_abs'}
            Record, before each epoch (so the first record is the untrained
            network), the speed of learning of each layer l = 2..L: the book's
            ‖(1/n) Σ_x ∂C_x/∂b^l‖ (chapter 5, ``generate_gradient.py``) for
            ``True`` or ``'norm'``, the mean of its absolute entries for
            ``'mean_abs'``; over a fixed subset of at most 1,000 training
            examples.  Training itself is unchanged; it costs one gradient
            over that subset per epoch.
        num_threads : int, optional
            Most threads a step may use (plain SGD and momentum); default
            OpenMP's count (``OMP_NUM_THREADS``, ``threadpoolctl``).  The
            weights are bit-identical for every thread count.

        Returns
        -------
        dict
            Per-epoch history: ``epoch``, ``cost`` (mean C_x over the epoch, as
            seen during training), ``seconds``, and with test data
            ``correct``, ``accuracy`` and ``test_cost``; with
            ``monitor_learning_speed``, ``learning_speed``: per epoch, the
            list of L − 1 speeds measured before it, for layers 2..L (the last
            is the output layer).
        """
        python_steps = overridden(self, "update_mini_batch", "backprop", "cost_derivative")
        return _FACADES["SGD"](
            self, training_data, epochs, mini_batch_size, eta, test_data, lmbda, momentum,
            shuffle, verbose, progress, monitor_learning_speed, num_threads,
            step=self._call_update_mini_batch if python_steps else None,
            evaluate=self.evaluate if overridden(self, "feedforward", "evaluate") else None)

    # -- evaluation ---------------------------------------------------------

    @fast
    def evaluate(self, test_data: Data) -> int:
        """Number of test inputs whose output's argmax equals the label (network.py).

        With one output unit the answer is 1 when a >= 0.5, else 0.

        Parameters
        ----------
        test_data : list of (x, label) tuples, or a pair (X, labels)
            Labels are integers or one-hot rows; other targets raise
            ``ValueError``.

        Returns
        -------
        int
            The number of correct answers.
        """
        if overridden(self, "feedforward"):
            return _python_path.evaluate(self, test_data)
        # The same list evaluated again (each epoch of a book script) is
        # converted once; see _data.cached for when it is converted again.
        X, labels = _data.cached(self, "labels", test_data, lambda: _data.test_arrays(
            test_data, self.sizes[0], self.sizes[-1], self.dtype))
        if X.shape[0] == 0:
            return 0
        answers = _data.predicted_labels(_checks.no_nan(self._predict(X), "a^L"))
        return int(np.sum(answers == labels))

    def total_cost(self, data: Data, lmbda: float = 0.0) -> float:
        """Mean C_x over ``data`` plus the L2 term (λ/2n) Σ‖W‖² (network2.py's total_cost).

        Parameters
        ----------
        data : list of (x, y) tuples, or a pair (X, Y)
            Training data in either form (targets, or labels made one-hot).
        lmbda : float
            L2 strength λ >= 0.

        Returns
        -------
        float
            The cost.
        """
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        X, Y = _data.training_arrays(data, self.sizes[0], self.sizes[-1], self.dtype, name="data")
        if X.shape[0] == 0:
            raise ValueError("data must hold at least one example")
        return self._total_cost(X, Y, lmbda)

    def _total_cost(self, X, Y, lmbda):
        """total_cost for checked rows X, Y (at least one)."""
        cost = self._mean_cost(X, Y)
        factor = 0.5 * lmbda / X.shape[0]
        if factor:
            # Skipped for λ = 0: 0 · Σ‖W‖² is NaN when the sum overflows.  A sum
            # of squares past the float range is +Inf, without a warning.
            with self._lock, np.errstate(over="ignore"):
                cost += factor * sum(float(np.sum(np.square(w, dtype=np.float64)))
                                     for w in self._layout.views(self._params)[0])
        # −Inf + Inf (a cost below zero, for targets outside [0, 1]) is NaN too.
        return _checks.no_nan(cost, "the cost")

    def _mean_cost(self, X, Y):
        return _checks.finite_mean(self.cost_rows(X, Y))

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, cost={self.cost!r}, "
                f"dtype={np.dtype(self.dtype).name!r})")

    def save(self, path: PathLike) -> None:
        """Write the network to ``path`` (a ``.npz`` model file); see :func:`cbp.io.save`.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (atomically).
        """
        _FACADES["save"](self, path)

    def explain(self, x: ArrayLike, y: ArrayLike) -> Any:
        """Backpropagation step by step for one example; see :func:`cbp.explain.explain`.

        Parameters
        ----------
        x : array_like
            The input, (n_in, 1) or (n_in,).
        y : array_like or int
            The target vector, or a class label.

        Returns
        -------
        cbp.explain.Trace
            Every intermediate value; ``print`` it for the notes' layout.
        """
        return _FACADES["explain"](self, x, y)
