"""The model: a feed-forward network, laid out exactly as network.py lays it out.

``cbp.Network`` is this class.  The book's drop-ins (``cbp.network``,
``cbp.network2``) are thin subclasses of it.  The loops run in the Cython core
(``_core.pyx``); this module checks and converts.

Notation (note 001): layer l has weights W^l (n_l, n_{l-1}) and biases
b^l (n_l, 1); z^l = W^l a^{l-1} + b^l and a^l = f(z^l).
"""
import contextlib
import os
import random
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _checks, _core, _data, activations, costs
from ._typing import Array, ArrayLike, Data, DType, History, PathLike, Progress

if TYPE_CHECKING:
    from .explain import Trace

MAX_LAYERS = _core.MAX_LAYERS
# Widest layer: a width past 2**31 - 1 cannot be a real layer (and its
# product with another would overflow the core's indices).
_MAX_WIDTH = 2**31 - 1
_INIT = ("gaussian", "scaled")


def _mean(values):
    """The mean of float64 costs, without overflow in the sum when each one is finite.

    Costs of +Inf and −Inf (targets outside [0, 1]) give NaN, without a warning.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(values.mean())
        if np.isinf(mean) and np.isfinite(values).all():
            mean = float(np.sum(values / values.shape[0]))
    return mean


def _no_nan(values, what):
    """``values``, or a ValueError when finite input overflowed into NaN (Inf − Inf)."""
    if np.isnan(values).any():
        raise ValueError(f"{what} came out NaN from finite input: an intermediate value "
                         "overflowed (Inf - Inf); the weights or inputs are too large")
    return values


def sigmoid(z: ArrayLike) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), elementwise, without overflow warnings.

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ(z), float64, of z's shape.
    """
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: ArrayLike) -> Array:
    """σ'(z) = σ(z) (1 − σ(z)).

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ'(z), float64, of z's shape.
    """
    s = sigmoid(z)
    return s * (1 - s)


_IN_PLACE = ("net.weights[l] and net.biases[l] are read-only snapshots: writing into one in "
             "place would not change the network. Assign a changed copy instead: "
             "w = net.weights[l].copy(); w[i, j] = ...; net.weights[l] = w")


def _in_place(name):
    """ndarray's in-place method ``name``, refused with :data:`_IN_PLACE` on a read-only array."""
    method = getattr(np.ndarray, name)

    def checked(self, *args, **kwargs):
        if not self.flags.writeable:
            raise ValueError(_IN_PLACE)
        return method(self, *args, **kwargs)
    checked.__name__ = name
    checked.__doc__ = (f"NumPy's ``ndarray.{name}``, refused with a ``ValueError`` that says "
                       "what to do instead on a read-only snapshot.")
    return checked


class Snapshot(np.ndarray):
    """One layer of ``net.weights`` or ``net.biases`` as read: a read-only array.

    It behaves as the ndarray it is; only writing into it in place (item
    assignment, ``+=`` and other ufuncs with it as ``out``) raises a
    ``ValueError`` that says what to do instead of NumPy's bare
    "assignment destination is read-only".  ``.copy()`` is writable.
    """

    def __setitem__(self, key, value):
        if not self.flags.writeable:
            raise ValueError(_IN_PLACE)
        super().__setitem__(key, value)

    # The methods that write into the array in place.
    fill, sort, put, partition = (_in_place("fill"), _in_place("sort"), _in_place("put"),
                                  _in_place("partition"))

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        outs = () if out is None else out
        if any(isinstance(o, Snapshot) and not o.flags.writeable for o in outs):
            raise ValueError(_IN_PLACE)
        # Computed on plain arrays: results are ndarrays, as from any array.
        plain = tuple(x.view(np.ndarray) if isinstance(x, Snapshot) else x for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Snapshot) else o
                                  for o in outs)
        return getattr(ufunc, method)(*plain, **kwargs)

    def __repr__(self):
        return repr(self.view(np.ndarray))


class Layers(Sequence):
    """``net.weights`` or ``net.biases``: a list of read-only arrays that writes back.

    Items are read-only snapshots taken when the list was read (training
    afterwards does not change them).  ``layers[l] = new`` validates ``new``
    as assignment to the whole list does and writes it into the network (and
    into this list); writing into an item (a :class:`Snapshot`) in place
    raises a ``ValueError`` saying to assign ``net.weights[l] = new``
    instead.  The number of layers is fixed: ``append``, ``del`` and the
    like raise ``TypeError``.

    Parameters
    ----------
    net : Network
        The network written into.
    which : {0, 1}
        0 for the weights, 1 for the biases.
    items : list of ndarray
        The read-only snapshots, one per layer.
    """

    __slots__ = ("_net", "_which", "_items")

    def __init__(self, net, which, items):
        self._net = net
        self._which = which
        self._items = list(items)

    def __len__(self):
        return len(self._items)

    def __getitem__(self, k):
        return self._items[k]

    def __iter__(self):
        return iter(self._items)

    def __setitem__(self, k, value):
        name = ("weights", "biases")[self._which]
        if isinstance(k, slice):
            items = list(self._items)
            items[k] = value
            if len(items) != len(self._items):
                raise ValueError(f"{name} keeps one array per layer ({len(self._items)}); "
                                 "a slice assignment may not change the length")
            self._net._assign(items, self._which, name)
            self._items = self._net._read(self._which)._items
            return
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"{name} indices must be integers; got {type(k).__name__}")
        n = len(self._items)
        if not -n <= k < n:
            raise IndexError(f"{name} index {k} out of range for {n} layers")
        k = int(k) % n
        self._net._assign_layer(k, value, self._which, name)
        self._items[k] = self._net._read(self._which)._items[k]

    def __add__(self, other):
        # net.weights + net.biases: a plain list, as with the original's lists.
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def _fixed(self, *args, **kwargs):
        name = ("weights", "biases")[self._which]
        raise TypeError(f"{name} has one array per layer; it cannot grow or shrink "
                        f"(assign {name}[l] = new to change a layer)")

    __delitem__ = append = extend = insert = pop = remove = clear = __iadd__ = _fixed

    def __repr__(self):
        return repr(self._items)


class Network:
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
        sizes = self._check_sizes(sizes)
        hidden = activations.lookup(activation, "activation")
        if output_activation is None:
            output_activation = activation
        output = activations.lookup(output_activation, "output_activation", output=True)
        cost_entry = costs.lookup(cost, output_activation.lower())
        if not isinstance(init, str) or init not in _INIT:
            raise ValueError(f"init must be one of {list(_INIT)}; got {init!r}")
        self.dtype = _checks.dtype(dtype)
        self._check_memory(sizes, self.dtype)
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = _checks.integer(seed, "seed", minimum=0)
        self.activation = activation.lower()
        self.output_activation = output_activation.lower()
        self.cost = cost.lower()
        self.init = init
        self._codes = (hidden.code, output.code, cost_entry.code)
        # No seed: NumPy's global generator draws the weights and Python's
        # ``random`` shuffles, as network.py does (and NumPy's convention for
        # "no seed"); a seed gives the network a generator of its own.
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._layout(sizes)
        self._params = np.empty(self._n_params, dtype=self.dtype)
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
            ws, bs = self._views(self._params)
            for k, arr in enumerate(bs + ws):
                scale = np.sqrt(arr.shape[1]) if init == "scaled" and k >= len(bs) else None
                flat = arr.reshape(-1)
                for start in range(0, flat.size, 1 << 16):
                    part = draw(min(1 << 16, flat.size - start))
                    flat[start:start + part.size] = part if scale is None else part / scale

    # -- layout -------------------------------------------------------------

    @staticmethod
    def _check_sizes(sizes):
        if isinstance(sizes, (str, bytes, set, frozenset, dict)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; "
                            f"got {type(sizes).__name__}")
        sizes = [_checks.integer(s, f"sizes[{k}]") for k, s in enumerate(sizes)]
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least two layers (input and output); got {sizes}")
        if len(sizes) > MAX_LAYERS + 1:
            raise ValueError(f"sizes may list at most {MAX_LAYERS + 1} layers; got {len(sizes)}")
        for k, s in enumerate(sizes):
            if not 1 <= s <= _MAX_WIDTH:
                raise ValueError(f"sizes[{k}] must be a layer width from 1 to {_MAX_WIDTH}; "
                                 f"got {s}")
        return sizes

    @staticmethod
    def _check_memory(sizes, dtype):
        # A network larger than the machine's memory is refused by name
        # rather than by a MemoryError from deep inside NumPy.
        n = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
        need = n * np.dtype(dtype).itemsize
        try:
            have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            have = 1 << 62
        if need > have:
            raise ValueError(f"sizes {sizes} give {n} parameters ({need / 2**30:.3g} GiB in "
                             f"{np.dtype(dtype).name}), more than this machine's memory "
                             f"({have / 2**30:.3g} GiB)")

    def _layout(self, sizes):
        # One flat parameter vector: all weights first (L2 decay applies to
        # them alone), then all biases.
        self._sizes = np.asarray(sizes, dtype=np.intp)
        w_counts = [o * i for i, o in zip(sizes[:-1], sizes[1:])]
        self._woff = np.concatenate([[0], np.cumsum(w_counts)[:-1]]).astype(np.intp)
        n_weights = int(sum(w_counts))
        self._boff = (n_weights + np.concatenate([[0], np.cumsum(sizes[1:])[:-1]])).astype(np.intp)
        self._n_weights = n_weights
        self._n_params = n_weights + int(sum(sizes[1:]))

    def _views(self, flat):
        """(weights, biases) as views into a flat parameter vector."""
        s = self._sizes
        ws = [flat[w:w + s[l + 1] * s[l]].reshape(s[l + 1], s[l])
              for l, w in enumerate(self._woff)]
        bs = [flat[b:b + s[l + 1]].reshape(s[l + 1], 1) for l, b in enumerate(self._boff)]
        return ws, bs

    @contextlib.contextmanager
    def parameters(self):
        """Write access to the parameters in place, for readers and optimizers.

        Yields ``(flat, weights, biases)``: the network's one parameter
        vector (all of W, then all of b, layer by layer) and writable views
        of it shaped as :attr:`weights` and :attr:`biases`.  The network is
        locked meanwhile, so no other thread trains or reads it half-written.
        Values written must be finite; nothing checks them here.
        """
        with self._lock:
            ws, bs = self._views(self._params)
            yield self._params, ws, bs

    @property
    def sizes(self) -> List[int]:
        """Units per layer, input first."""
        return [int(s) for s in self._sizes]

    @sizes.setter
    def sizes(self, value):
        self._fixed_layout("sizes")

    @property
    def num_layers(self) -> int:
        """Number of layers, input included (network.py's ``num_layers``)."""
        return len(self._sizes)

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
        return Layers(self, which, self._views(snapshot)[which])

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
        self._assign(value, 0, "weights")

    @property
    def biases(self):
        """The bias columns b^l, shape (n_out, 1), as a :class:`Layers` list (see ``weights``)."""
        return self._read(1)

    @biases.setter
    def biases(self, value):
        if "_params" not in self.__dict__:
            self._fixed_layout("biases")
        self._assign(value, 1, "biases")

    def _shapes(self, which):
        s = self.sizes
        return ([(o, i) for i, o in zip(s[:-1], s[1:])] if which == 0
                else [(o, 1) for o in s[1:]])

    def _checked_layer(self, arr, k, shape, which, name):
        a = _checks.array(arr, f"{name}[{k}]", self.dtype)
        if which == 1 and a.shape == shape[:1]:
            a = a.reshape(shape)
        if a.shape != shape:
            raise ValueError(f"{name}[{k}] must have shape {shape}; got {a.shape}")
        return a

    def _assign(self, value, which, name):
        # Validate everything first: a refused assignment changes nothing.
        shapes = self._shapes(which)
        if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a list of {len(shapes)} arrays")
        if len(value) != len(shapes):
            raise ValueError(f"{name} must be a list of {len(shapes)} arrays; got {len(value)}")
        checked = [self._checked_layer(arr, k, shape, which, name)
                   for k, (arr, shape) in enumerate(zip(value, shapes))]
        with self._lock:
            views = self._views(self._params)[which]
            for dst, src in zip(views, checked):
                dst[...] = src

    def _assign_layer(self, k, value, which, name):
        shape = self._shapes(which)[k]
        checked = self._checked_layer(value, k, shape, which, name)
        with self._lock:
            self._views(self._params)[which][k][...] = checked

    def _core_args(self):
        return self._sizes, self._woff, self._boff

    # -- feedforward --------------------------------------------------------

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
        if arr.ndim == 2 and arr.shape == (n_in, 1) and (n_in != 1 or arr.shape[0] == 1):
            return _no_nan(self._predict(arr.reshape(1, n_in))[0].reshape(n_out, 1), "a^L")
        if arr.ndim == 1 and arr.shape[0] == n_in:
            return _no_nan(self._predict(arr.reshape(1, n_in))[0], "a^L")
        if arr.ndim == 2 and arr.shape[1] == n_in:
            return _no_nan(self._predict(arr, num_threads), "a^L")
        raise ValueError(f"a must have shape ({n_in}, 1), ({n_in},) or (n_samples, {n_in}); "
                         f"got {arr.shape}")

    def _predict(self, X, num_threads=None, with_z=False):
        """(n, n_out) outputs for checked C-contiguous rows X of the right dtype."""
        n_out = self.sizes[-1]
        # No more threads than 64-row blocks; by default OpenMP's count, which
        # OMP_NUM_THREADS and threadpoolctl limit as they limit NumPy's BLAS.
        blocks = max(1, -(-X.shape[0] // 64))
        num_threads = min(blocks, _core.usable_threads(num_threads or _core.default_threads()))
        out = np.empty((X.shape[0], n_out), dtype=self.dtype)
        z = np.empty_like(out)
        work = np.empty(_core.workspace_size(self._sizes, 64) * num_threads, dtype=self.dtype)
        hidden, output, _ = self._codes
        with self._lock:
            _core.feedforward(self._params, *self._core_args(), hidden, output, X, out, z,
                              work, num_threads)
        return (out, z) if with_z else out

    # -- backprop -----------------------------------------------------------

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
        grad = _no_nan(self._gradient(X, Y)[0], "the gradient")
        ws, bs = self._views(grad)
        return [b.copy() for b in bs], [w.copy() for w in ws]

    def _gradient(self, X, Y):
        """(flat Σ_x ∇C_x, Σ_x C_x) over checked rows X, Y."""
        grad = np.empty(self._n_params, dtype=self.dtype)
        work = np.empty(_core.workspace_size(self._sizes, X.shape[0]), dtype=self.dtype)
        with self._lock:
            total = _core.gradient(self._params, grad, *self._core_args(), *self._codes,
                                   X, Y, work)
        return grad, total

    # -- training -----------------------------------------------------------

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
        if self._overridden("backprop", "cost_derivative"):
            return self._step_python(mini_batch, eta, lmbda, n)
        from .sgd import SGD
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        X, Y = _data.training_arrays(mini_batch, self.sizes[0], self.sizes[-1], self.dtype,
                                     name="mini_batch")
        if X.shape[0] == 0:
            raise ValueError("mini_batch must hold at least one example")
        if n is None:
            n = X.shape[0]
        n = _checks.integer(n, "n", minimum=1)
        SGD(eta, mini_batch_size=X.shape[0], lmbda=lmbda,
            num_threads=num_threads)._step_checked(self, X, Y, n)

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
        if self._overridden("update_mini_batch", "backprop", "cost_derivative", "feedforward",
                            "evaluate"):
            return self._sgd_overridden(training_data, epochs, mini_batch_size, eta, test_data,
                                        lmbda, momentum, shuffle, verbose, progress,
                                        monitor_learning_speed, num_threads)
        from .sgd import SGD
        opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda, momentum=momentum,
                  shuffle=shuffle, num_threads=num_threads)
        return opt.run(self, training_data, epochs, test_data=test_data, verbose=verbose,
                       progress=progress, monitor_learning_speed=monitor_learning_speed)

    # -- subclass overrides (the book's exercises) ---------------------------

    #: Whether SGD warns (TrainingWarning) about training that looks hopeless.
    _training_warnings = True

    #: The methods the fast paths stand for, by name (filled in below the
    #: class; the drop-ins add theirs).  A subclass replacing one of them is
    #: served through its own Python code: correct first, then as fast as the
    #: rest allows.
    _fast: Dict[str, Any] = {}

    def _overridden(self, *names):
        """Whether ``type(self)`` replaces any of ``names`` among the fast methods."""
        cls = type(self)
        return any(name in self._fast and getattr(cls, name, None) is not self._fast[name]
                   for name in names)

    def _backprop_python(self, x, y, output_error, functions=None):
        """(nabla_b, nabla_w) in float64 Python, with δ^L = output_error(z^L, a^L, y).

        For overridden cost derivatives and user cost classes: BP1 with the
        user's δ^L, then BP2-BP4 as the core computes them.  ``functions``
        (f, f') replaces the network's activation in every layer (a drop-in
        module's replaced ``sigmoid``/``sigmoid_prime``).
        """
        f, f_prime = functions or _elementwise(self.activation)
        f_out = functions[0] if functions else _elementwise(self.output_activation)[0]
        ws, bs = self._views(self._params.astype(np.float64))
        a = _checks.vector(x, "x", self.sizes[0], np.float64).reshape(-1, 1)
        activations, zs = [a], []
        for l, (w, b) in enumerate(zip(ws, bs)):
            zs.append(w @ activations[-1] + b)
            activations.append((f_out if l == len(ws) - 1 else f)(zs[-1]))
        delta = np.asarray(output_error(zs[-1], activations[-1], y), dtype=np.float64)
        if delta.shape != zs[-1].shape:
            raise ValueError(f"the output error (δ^L) must have shape {zs[-1].shape}; "
                             f"got {delta.shape}")
        nabla_b, nabla_w = [None] * len(ws), [None] * len(ws)
        for l in range(len(ws) - 1, -1, -1):
            if l < len(ws) - 1:
                delta = (ws[l + 1].T @ delta) * f_prime(zs[l])
            nabla_b[l] = delta
            nabla_w[l] = delta @ activations[l].T
        return nabla_b, nabla_w

    def _step_python(self, mini_batch, eta, lmbda=0.0, n=None):
        """update_mini_batch through the subclass's own ``backprop``, one example at a time."""
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        batch = _data.as_tuples(mini_batch, "mini_batch")
        if not batch:
            raise ValueError("mini_batch must hold at least one example")
        n = len(batch) if n is None else _checks.integer(n, "n", minimum=1)
        sum_w = [np.zeros(shape) for shape in self._shapes(0)]
        sum_b = [np.zeros(shape) for shape in self._shapes(1)]
        for x, y in batch:
            nabla_b, nabla_w = self.backprop(x, y)
            for name, sums, grads in (("nabla_b", sum_b, nabla_b), ("nabla_w", sum_w, nabla_w)):
                if len(grads) != len(sums):
                    raise ValueError(f"backprop must return {len(sums)} arrays in {name}; "
                                     f"got {len(grads)}")
                for k, (acc, g) in enumerate(zip(sums, grads)):
                    if np.shape(g) != acc.shape:
                        raise ValueError(f"backprop returned {name}[{k}] of shape "
                                         f"{np.shape(g)}; expected {acc.shape}")
                    acc += g
        decay, rate = 1 - eta * (lmbda / n), eta / len(batch)
        new_w = [self._checked_layer(decay * w - rate * g, k, w.shape, 0, "weights")
                 for k, (w, g) in enumerate(zip(self.weights, sum_w))]
        new_b = [self._checked_layer(b - rate * g, k, b.shape, 1, "biases")
                 for k, (b, g) in enumerate(zip(self.biases, sum_b))]
        with self._lock:
            ws, bs = self._views(self._params)
            for dst, src in zip(ws + bs, new_w + new_b):
                dst[...] = src

    def _evaluate_python(self, test_data):
        """evaluate through the subclass's own ``feedforward``."""
        return sum(int(np.argmax(self.feedforward(x)) == (y if np.ndim(y) == 0 else np.argmax(y)))
                   for x, y in _data.as_tuples(test_data, "test_data"))

    def _call_update_mini_batch(self, batch, eta, lmbda, n):
        # The drop-ins call the user's method with their original's signature.
        self.update_mini_batch(batch, eta, lmbda, n)

    def _python_epochs(self, training_data, epochs, mini_batch_size, step, end_of_epoch,
                       shuffle=True):
        """The original's epoch loop in Python: shuffle, mini-batches, ``step`` each.

        ``step(mini_batch, n)``; ``end_of_epoch(j, data)`` returning true stops.
        Shuffles as :meth:`SGD` does (``random.shuffle`` of the caller's list
        without a seed, the network's generator on a copy with one).
        """
        epochs = _checks.integer(epochs, "epochs", minimum=0)
        m = _checks.integer(mini_batch_size, "mini_batch_size", minimum=1)
        data = _data.as_tuples(training_data, "training_data")
        if not data:
            raise ValueError("training_data must hold at least one example")
        if self._rng is not None and data is training_data:
            data = list(data)
        n = len(data)
        for j in range(epochs):
            if shuffle and self._rng is None:
                random.shuffle(data)
            elif shuffle:
                data[:] = [data[k] for k in self._rng.permutation(n)]
            for k in range(0, n, m):
                step(data[k:k + m], n)
            if end_of_epoch(j, data):
                break

    def _sgd_overridden(self, training_data, epochs, mini_batch_size, eta, test_data, lmbda,
                        momentum, shuffle, verbose, progress, monitor_learning_speed,
                        num_threads=None):
        """SGD for a subclass that replaces some of the fast methods."""
        n_test = None if test_data is None else len(_data.as_tuples(test_data, "test_data"))
        history = {"epoch": [], "seconds": []}
        if n_test is not None:
            history.update(correct=[], accuracy=[])
        start = [time.perf_counter()]

        def end_of_epoch(j, *_):
            history["epoch"].append(j)
            history["seconds"].append(time.perf_counter() - start[0])
            if n_test is not None:
                correct = self.evaluate(test_data)
                history["correct"].append(correct)
                history["accuracy"].append(correct / n_test if n_test else float("nan"))
            if verbose:
                print(f"Epoch {j}: {correct} / {n_test}" if n_test is not None
                      else f"Epoch {j} complete")
            start[0] = time.perf_counter()

        if not self._overridden("update_mini_batch", "backprop", "cost_derivative"):
            # Training in the core; evaluation through the subclass's methods.
            from .sgd import SGD
            opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda, momentum=momentum,
                      shuffle=shuffle, num_threads=num_threads)
            core = opt.run(self, training_data, epochs, progress=progress,
                           monitor_learning_speed=monitor_learning_speed, on_epoch=end_of_epoch)
            return {**core, **history}
        if momentum or progress is not None or monitor_learning_speed:
            raise TypeError("momentum, progress and monitor_learning_speed need cbp's own "
                            "update_mini_batch and backprop; this subclass replaces them")
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        self._python_epochs(training_data, epochs, mini_batch_size,
                            lambda batch, n: self._call_update_mini_batch(batch, eta, lmbda, n),
                            end_of_epoch, shuffle=shuffle)
        return history

    # -- evaluation ---------------------------------------------------------

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
        if self._overridden("feedforward"):
            return self._evaluate_python(test_data)
        # The same list evaluated again (each epoch of a book script) is
        # converted once; see _data.cached for when it is converted again.
        X, labels = _data.cached(self, "labels", test_data, lambda: _data.test_arrays(
            test_data, self.sizes[0], self.sizes[-1], self.dtype))
        if X.shape[0] == 0:
            return 0
        answers = _data.predicted_labels(_no_nan(self._predict(X), "a^L"))
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
                                     for w in self._views(self._params)[0])
        # −Inf + Inf (a cost below zero, for targets outside [0, 1]) is NaN too.
        return _no_nan(cost, "the cost")

    def _mean_cost(self, X, Y):
        a, z = self._predict(X, with_z=True)
        c = np.empty(X.shape[0], dtype=np.float64)
        _core.costs(z, a, Y, self._codes[1], self._codes[2], c)
        return _mean(c)

    @property
    def _cost_key(self):
        """cbp's name of the cost (``costs.COSTS``'s key), as model files store it."""
        return self.cost

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, cost={self.cost!r}, "
                f"dtype={np.dtype(self.dtype).name!r})")

    # -- saving and explaining ----------------------------------------------

    def save(self, path: PathLike) -> None:
        """Write the network to ``path`` (a ``.npz`` model file); see :func:`cbp.io.save`.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (atomically).
        """
        from .io import save
        save(self, path)

    def explain(self, x: ArrayLike, y: ArrayLike) -> "Trace":
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
        from .explain import explain
        return explain(self, x, y)

    # -- copies and pickles ---------------------------------------------------

    # What __getstate__ writes out itself; the rest of __dict__ (a drop-in's
    # cost class, a history) travels as it is.
    _STATE = frozenset(("dtype", "activation", "output_activation", "cost", "init", "_codes",
                        "_rng", "_lock", "_sizes", "_woff", "_boff", "_n_weights", "_n_params",
                        "_params"))
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
                "cost": next(name for name, entry in costs.COSTS.items()
                             if entry.code == self._codes[2]),
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
        sizes = self._check_sizes(state["sizes"])
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
        self._layout(sizes)
        params = state["params"]
        if (not isinstance(params, np.ndarray) or params.dtype != dtype
                or params.shape != (self._n_params,)):
            raise ValueError(f"params must be a {np.dtype(dtype).name} vector of "
                             f"{self._n_params} values for sizes {sizes}")
        if not np.isfinite(params).all():
            raise ValueError("params must be finite")
        self.dtype = dtype
        self.activation = state["activation"].lower()
        self.output_activation = state["output_activation"].lower()
        self.init = init
        if not isinstance(getattr(type(self), "cost", None), property):
            self.cost = state["cost"].lower()
        self._codes = (hidden.code, output.code, cost.code)
        self._rng = rng
        self._lock = threading.RLock()
        self._params = np.array(params, dtype=dtype, order="C", copy=True)
        self.__dict__.update(extra)

    def __copy__(self):
        """An independent network: ``copy.copy`` copies the parameters too (as ``deepcopy``)."""
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        return new


Network._fast = {name: getattr(Network, name)
                 for name in ("feedforward", "backprop", "update_mini_batch", "evaluate")}


def _elementwise(name):
    """(f, f') as NumPy functions of z, for the Python path of overridden methods."""
    if name == "sigmoid":
        return sigmoid, sigmoid_prime
    if name == "tanh":
        return np.tanh, lambda z: 1 - np.tanh(z) ** 2
    if name == "relu":
        return (lambda z: np.maximum(z, 0)), (lambda z: (z > 0).astype(np.float64))
    if name == "linear":
        return (lambda z: z), np.ones_like
    raise TypeError(f"an overridden backprop or cost needs elementwise activations; "
                    f"{name!r} is not one")
