"""The model: a feed-forward network, laid out exactly as network.py lays it out.

``cbp.Network`` is this class.  The book's drop-ins (``cbp.network``,
``cbp.network2``) are thin subclasses of it.  The loops run in the Cython core
(``_core.pyx``); this module checks and converts.

The model is the bottom of cbp's Python layer: the optimizers and the
training loop (:mod:`cbp.sgd`, :mod:`cbp.training`), the model files
(:mod:`cbp.io`) and the step-by-step trace (:mod:`cbp.explain`) reach a
network only through its public interface (:attr:`Network.layout`,
:meth:`Network.parameters`, the ``*_rows`` methods, :meth:`Network.epoch_orders`,
:attr:`Network.cost_name`), and the book-style methods that belong to them
(``net.SGD``, ``net.update_mini_batch``'s step, ``net.save``,
``net.explain``) are the functions those modules register with
:func:`implements`: the model imports none of them.

Notation (note 001): layer l has weights W^l (n_l, n_{l-1}) and biases
b^l (n_l, 1); z^l = W^l a^{l-1} + b^l and a^l = f(z^l).
"""
import contextlib
import threading
from collections.abc import Sequence
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _checks, _core, _data, _python_path, activations, costs
from ._layout import Layout
from ._python_path import fast, overridden, sigmoid, sigmoid_prime
from ._snapshot import Layers, Snapshot
from ._typing import Array, ArrayLike, Data, DType, History, PathLike, Progress

__all__ = ["Network", "Layout", "Layers", "Snapshot", "sigmoid", "sigmoid_prime", "implements",
           "MAX_LAYERS"]

MAX_LAYERS = _core.MAX_LAYERS
_INIT = ("gaussian", "scaled")

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


class Network:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first: ``[784, 30, 10]``.  At least two layers.
    activation : {'sigmoid', 'tanh', 'relu', 'linear'}
        f for the hidden layers.
    output_activation : {'sigmoid', 'tanh', 'relu', 'linear', 'softmax'}, optional
        f for the output layer; ``None`` means the same as ``activation``.
    cost : {'quadratic', 'sse', 'cross_entropy', 'log_likelihood'}
        C_x: ½‖a − y‖², Σ(y − a)², −Σ[y ln a + (1 − y) ln(1 − a)] (sigmoid
        output) or −Σ y ln a (softmax or sigmoid output).
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
        if not isinstance(init, str) or init not in _INIT:
            raise ValueError(f"init must be one of {list(_INIT)}; got {init!r}")
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

    # -- the interface of optimizers, estimators, model files and traces ----

    @property
    def layout(self) -> Layout:
        """The parameters' :class:`~cbp.model.Layout`: sizes, offsets, core codes, dtype."""
        return self._layout

    @contextlib.contextmanager
    def parameters(self):
        """Write access to the parameters in place, for readers and optimizers.

        Yields ``(flat, weights, biases)``: the network's one parameter
        vector (all of W, then all of b, layer by layer; see :attr:`layout`)
        and writable views of it shaped as :attr:`weights` and
        :attr:`biases`.  The network is locked meanwhile (re-entrantly), so
        no other thread trains or reads it half-written.  Values written must
        be finite; nothing checks them here.

        Yields
        ------
        (ndarray, list of ndarray, list of ndarray)
            The flat vector, the weight views and the bias views.
        """
        with self._lock:
            ws, bs = self._layout.views(self._params)
            yield self._params, ws, bs

    def forward_rows(self, X: Array, num_threads: Optional[int] = None,
                     with_z: bool = False) -> Union[Array, Tuple[Array, Array]]:
        """a^L for rows X that are already in the network's form; no conversion.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous, of the network's dtype (else ``TypeError`` or
            ``ValueError``); values finite (not checked).
        num_threads : int, optional
            Threads for blocks of 64 rows; the result does not depend on it.
        with_z : bool, default=False
            Also return z^L.

        Returns
        -------
        ndarray of shape (n, n_out), or a pair of them
            a^L, or (a^L, z^L) with ``with_z``.
        """
        _checks.rows_of(X, "X", self.sizes[0], self.dtype)
        return self._predict(X, num_threads, with_z)

    def gradient_rows(self, X: Array, Y: Array) -> Tuple[Array, float]:
        """Σ_x ∇C_x as one flat vector (laid out as the parameters), and Σ_x C_x.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous rows of the network's dtype, finite (not checked).
        Y : ndarray of shape (n, n_out)
            Targets, in the same form.

        Returns
        -------
        (ndarray, float)
            The summed gradient (``layout.views`` splits it by layer) and the
            summed cost.
        """
        _checks.rows_of(X, "X", self.sizes[0], self.dtype)
        _checks.rows_of(Y, "Y", self.sizes[-1], self.dtype)
        if X.shape[0] != Y.shape[0] or not X.shape[0]:
            raise ValueError(f"X and Y must hold the same number (>= 1) of rows; got "
                             f"{X.shape[0]} and {Y.shape[0]}")
        grad = np.empty(self._layout.n_params, dtype=self.dtype)
        work = np.empty(_core.workspace_size(self._layout.sizes, X.shape[0]), dtype=self.dtype)
        with self._lock:
            total = _core.gradient(self._params, grad, *self._layout.core_args,
                                   *self._layout.codes, X, Y, work)
        return grad, total

    def cost_rows(self, X: Array, Y: Array,
                  outputs: Optional[Tuple[Array, Array]] = None) -> Array:
        """C_x for each row, in float64.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous rows of the network's dtype.
        Y : ndarray of shape (n, n_out)
            Their targets, in the same form.
        outputs : (ndarray, ndarray), optional
            ``forward_rows(X, with_z=True)`` when already computed.

        Returns
        -------
        ndarray of shape (n,)
            The cost of each row.
        """
        _checks.rows_of(Y, "Y", self.sizes[-1], self.dtype)
        a, z = self.forward_rows(X, with_z=True) if outputs is None else outputs
        if a.shape != Y.shape or z.shape != Y.shape:
            raise ValueError("outputs must be forward_rows(X, with_z=True) for these rows")
        c = np.empty(X.shape[0], dtype=np.float64)
        _core.costs(z, a, Y, self._layout.codes[1], self._layout.codes[2], c)
        return c

    def epoch_orders(self, training_data: Data, n: int) -> Callable[[], Array]:
        """A function giving each epoch's order of the n training rows (mini-batches in turn).

        A seeded network permutes with its own generator.  Without a seed,
        each epoch is network.py's ``random.shuffle(training_data)``: a list
        of (x, y) tuples is shuffled in place, exactly as the original
        shuffles it, so several networks trained in turn from one list see
        the original's orders; other input (arrays, a ``zip``) is shuffled as
        such a list would be, epoch after epoch, without being touched.

        Parameters
        ----------
        training_data : list of (x, y) tuples, or a pair (X, Y)
            The caller's training data (shuffled in place when a list).
        n : int
            Its number of examples.

        Returns
        -------
        callable
            Called once per epoch, returns that epoch's order: an intp array
            of the row numbers (of the data as first given).
        """
        if self._rng is not None:
            rng = self._rng
            return lambda: rng.permutation(n).astype(np.intp)
        in_place = isinstance(training_data, list) and not _data.is_pair(training_data)
        rows = np.arange(n, dtype=np.intp)  # rows[k]: the row of X now at position k

        def shuffle():
            nonlocal rows
            positions = _data.python_shuffle(n)
            if in_place:
                training_data[:] = [training_data[k] for k in positions.tolist()]
            rows = rows[positions]
            return rows
        return shuffle

    @property
    def cost_name(self) -> str:
        """cbp's name of the cost (a key of ``cbp.costs.COSTS``), as model files store it."""
        return next(name for name, entry in costs.COSTS.items()
                    if entry.code == self._layout.codes[2])

    #: Whether training warns (``TrainingWarning``) about a run that looks
    #: hopeless; the book's drop-ins, as quiet as the book's code, set False.
    training_warnings = True

    def replaced_functions(self) -> Optional[Tuple[Callable[..., Any], Callable[..., Any]]]:
        """The (σ, σ') a drop-in module's user replaced, or ``None`` (always, here).

        The drop-ins return their module's ``sigmoid``/``sigmoid_prime`` when
        either was reassigned: every method computing an activation then
        runs through them, in Python.

        Returns
        -------
        tuple of two callables, or None
        """
        return None

    # -- layers ---------------------------------------------------------------

    @property
    def sizes(self) -> List[int]:
        """Units per layer, input first."""
        return [int(s) for s in self._layout.sizes]

    @sizes.setter
    def sizes(self, value):
        self._fixed_layout("sizes")

    @property
    def num_layers(self) -> int:
        """Number of layers, input included (network.py's ``num_layers``)."""
        return len(self._layout.sizes)

    @num_layers.setter
    def num_layers(self, value):
        self._fixed_layout("num_layers")

    def _fixed_layout(self, name):
        if "_params" not in self.__dict__:
            # network.py's and network2.py's __init__ set these attributes; a
            # subclass copying that __init__ must let cbp's run instead.
            raise AttributeError(
                f"cannot set {name}: cbp's Network sets sizes, num_layers, weights and biases "
                "itself. A subclass's __init__ must first call super().__init__(sizes) (with "
                "network2, super().__init__(sizes, cost=cost)), instead of setting them as the "
                "book's __init__ does; then change what you need (net.weights = ...)")
        raise AttributeError(f"{name} is fixed when the network is built; build a new network "
                             "for other layer sizes")

    def _read(self, which):
        # One copy of the parameter vector per read (a single memcpy), then
        # read-only views into it: cheap, and later training never changes it.
        with self._lock:
            snapshot = self._params.copy().view(Snapshot)
        snapshot.flags.writeable = False
        return Layers(lambda k, value: self._write(which, k, value), which,
                      self._layout.views(snapshot)[which])

    def _write(self, which, k, value):
        """Validate and write layer k (all layers for k=None); the layers as read afterwards."""
        name = ("weights", "biases")[which]
        shapes = self._layout.shapes(which)
        if k is None:
            if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
                raise TypeError(f"{name} must be a list of {len(shapes)} arrays")
            if len(value) != len(shapes):
                raise ValueError(f"{name} must be a list of {len(shapes)} arrays; "
                                 f"got {len(value)}")
            # Everything is validated first: a refused assignment changes nothing.
            checked = [_checks.layer(arr, j, shape, which, self.dtype)
                       for j, (arr, shape) in enumerate(zip(value, shapes))]
            layers = range(len(shapes))
        else:
            checked = [_checks.layer(value, k, shapes[k], which, self.dtype)]
            layers = [k]
        with self.parameters() as (_, *views):
            for j, src in zip(layers, checked):
                views[which][j][...] = src
        return self._read(which)

    @property
    def weights(self):
        """The weight matrices W^l, shape (n_out, n_in), as a :class:`Layers` list.

        Reading takes a read-only snapshot that later training does not
        change; ``net.weights[l] = new`` or ``net.weights = [...]`` validates
        and writes into the network.
        """
        return self._read(0)

    @weights.setter
    def weights(self, value):
        if "_params" not in self.__dict__:
            self._fixed_layout("weights")
        self._write(0, None, value)

    @property
    def biases(self):
        """The bias columns b^l, shape (n_out, 1), as a :class:`Layers` list (see ``weights``)."""
        return self._read(1)

    @biases.setter
    def biases(self, value):
        if "_params" not in self.__dict__:
            self._fixed_layout("biases")
        self._write(1, None, value)

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

    def _predict(self, X, num_threads=None, with_z=False):
        """(n, n_out) outputs for checked C-contiguous rows X of the right dtype."""
        # No more threads than 64-row blocks; by default OpenMP's count, which
        # OMP_NUM_THREADS and threadpoolctl limit as they limit NumPy's BLAS.
        blocks = max(1, -(-X.shape[0] // 64))
        num_threads = min(blocks, _core.usable_threads(num_threads or _core.default_threads()))
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        z = np.empty_like(out)
        layout = self._layout
        work = np.empty(_core.workspace_size(layout.sizes, 64) * num_threads, dtype=self.dtype)
        with self._lock:
            _core.feedforward(self._params, *layout.core_args, *layout.codes[:2], X, out, z,
                              work, num_threads)
        return (out, z) if with_z else out

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

    def _call_update_mini_batch(self, batch, eta, lmbda, n):
        # The drop-ins call the user's method with their original's signature.
        self.update_mini_batch(batch, eta, lmbda, n)

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

    # -- copies and pickles ---------------------------------------------------

    # What __getstate__ writes out itself; the rest of __dict__ (a drop-in's
    # cost class, a history) travels as it is.
    _STATE = frozenset(("dtype", "activation", "output_activation", "cost", "init", "_layout",
                        "_rng", "_lock", "_params"))
    _BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

    def __getstate__(self):
        """The network as plain data: description, a copy of the parameters, the generator's state.

        For ``pickle`` and :mod:`copy` (to ship a network to another process,
        e.g. with joblib or Dask); model files are :meth:`save`'s ``.npz``.
        Unpickling runs code the pickle names: unpickle only networks from a
        trusted source; loading a model file runs nothing.
        """
        with self._lock:
            params = self._params.copy()
            rng = None if self._rng is None else self._rng.bit_generator.state
        return {"format": "cbp.Network", "version": 1, "sizes": self.sizes,
                "activation": self.activation, "output_activation": self.output_activation,
                "cost": Network.cost_name.fget(self),
                "init": self.init, "dtype": np.dtype(self.dtype).name, "params": params,
                "rng": rng,
                "extra": {k: v for k, v in self.__dict__.items() if k not in self._STATE}}

    def __setstate__(self, state):
        """Rebuild from :meth:`__getstate__`'s data, checked: a bad state raises ``ValueError``."""
        try:
            self._restore(state)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"not a valid cbp.Network state: {exc}") from None

    def _restore(self, state):
        if not isinstance(state, dict) or state.get("format") != "cbp.Network":
            raise ValueError("expected the dict written by Network.__getstate__")
        if state.get("version") != 1:
            raise ValueError(f"unknown version {state.get('version')!r}")
        sizes = _checks.layer_sizes(state["sizes"])
        hidden = activations.lookup(state["activation"], "activation")
        output = activations.lookup(state["output_activation"], "output_activation",
                                    output=True)
        cost = costs.lookup(state["cost"], state["output_activation"].lower())
        init = state["init"]
        if init not in _INIT:
            raise ValueError(f"init must be one of {list(_INIT)}; got {init!r}")
        dtype = _checks.dtype(state["dtype"])
        rng = state["rng"]
        if rng is not None:
            name = rng.get("bit_generator") if isinstance(rng, dict) else None
            if name not in self._BIT_GENERATORS:
                raise ValueError(f"rng must be the state of one of NumPy's bit generators "
                                 f"{list(self._BIT_GENERATORS)}; got {name!r}")
            bit_generator = getattr(np.random, name)()
            bit_generator.state = rng
            rng = np.random.Generator(bit_generator)
        extra = state["extra"]
        if not isinstance(extra, dict) or any(not isinstance(k, str) or k in self._STATE
                                              for k in extra):
            raise ValueError("extra must be a dict of attributes other than the network's own")
        layout = Layout(sizes, (hidden.code, output.code, cost.code), dtype)
        params = state["params"]
        if (not isinstance(params, np.ndarray) or params.dtype != dtype
                or params.shape != (layout.n_params,)):
            raise ValueError(f"params must be a {np.dtype(dtype).name} vector of "
                             f"{layout.n_params} values for sizes {sizes}")
        if not np.isfinite(params).all():
            raise ValueError("params must be finite")
        self.dtype = dtype
        self.activation = state["activation"].lower()
        self.output_activation = state["output_activation"].lower()
        self.init = init
        if not isinstance(getattr(type(self), "cost", None), property):
            self.cost = state["cost"].lower()
        self._layout = layout
        self._rng = rng
        self._lock = threading.RLock()
        self._params = np.array(params, dtype=dtype, order="C", copy=True)
        self.__dict__.update(extra)

    def __copy__(self):
        """An independent network: ``copy.copy`` copies the parameters too (as ``deepcopy``)."""
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        return new
