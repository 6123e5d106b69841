"""The model: a feed-forward network, laid out exactly as network.py lays it out.

``cbp.Network`` is this class.  The book's drop-ins (``cbp.network``,
``cbp.network2``) are thin subclasses of it.  The loops run in the Cython core
(``_core.pyx``); this module checks and converts.

Notation (note 001): layer l has weights W^l (n_l, n_{l-1}) and biases
b^l (n_l, 1); z^l = W^l a^{l-1} + b^l and a^l = f(z^l).
"""
import os
import threading

import numpy as np

from . import _checks, _core, _data, activations, costs

MAX_LAYERS = _core.MAX_LAYERS
_INIT = ("gaussian", "scaled")


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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


def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), elementwise, without overflow warnings."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z):
    """σ'(z) = σ(z) (1 − σ(z))."""
    s = sigmoid(z)
    return s * (1 - s)


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

    Attributes
    ----------
    sizes, num_layers, weights, biases
        As network.py: ``weights[l]`` is (sizes[l+1], sizes[l]), ``biases[l]``
        is (sizes[l+1], 1).  Reading gives read-only copies; assigning a list
        validates it and copies it into the core.
    """

    def __init__(self, sizes, activation="sigmoid", output_activation=None, cost="quadratic",
                 init="gaussian", dtype="float64", seed=None):
        sizes = self._check_sizes(sizes)
        hidden = activations.lookup(activation, "activation")
        if output_activation is None:
            output_activation = activation
        output = activations.lookup(output_activation, "output_activation", output=True)
        cost_entry = costs.lookup(cost, output_activation.lower())
        if not isinstance(init, str) or init not in _INIT:
            raise ValueError(f"init must be one of {list(_INIT)}; got {init!r}")
        self.dtype = _checks.dtype(dtype)
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = _checks.integer(seed, "seed", minimum=0)
        self.activation = activation.lower()
        self.output_activation = output_activation.lower()
        self.cost = cost.lower()
        self.init = init
        self._codes = (hidden.code, output.code, cost_entry.code)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._layout(sizes)
        self._params = np.empty(self._n_params, dtype=self.dtype)
        # Biases then weights, in network.py's order of drawing, straight into
        # the parameters (no second copy of a large network).  Draws are in
        # float64 whatever the dtype, so float32 and float64 networks with
        # the same seed start from the same weights up to rounding.
        ws, bs = self._views(self._params)
        for k, arr in enumerate(bs + ws):
            scale = np.sqrt(arr.shape[1]) if init == "scaled" and k >= len(bs) else None
            if self.dtype == np.float64:
                self._rng.standard_normal(out=arr)
                if scale is not None:
                    arr /= scale
            else:
                # In slices, so the float64 draw never doubles the memory of
                # a large layer; the stream is the same as one whole draw.
                flat = arr.reshape(-1)
                for start in range(0, flat.size, 1 << 16):
                    draw = self._rng.standard_normal(min(1 << 16, flat.size - start))
                    flat[start:start + draw.size] = draw if scale is None else draw / scale

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
            if s < 1:
                raise ValueError(f"sizes[{k}] must be a positive layer width; got {s}")
        return sizes

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

    @property
    def sizes(self):
        """Units per layer, input first."""
        return [int(s) for s in self._sizes]

    @property
    def num_layers(self):
        """Number of layers, input included (network.py's ``num_layers``)."""
        return len(self._sizes)

    def _read(self, which):
        with self._lock:
            out = [a.copy() for a in self._views(self._params)[which]]
        for a in out:
            a.flags.writeable = False
        return out

    @property
    def weights(self):
        """List of weight matrices W^l, shape (n_out, n_in); read-only copies."""
        return self._read(0)

    @weights.setter
    def weights(self, value):
        self._assign(value, 0, "weights")

    @property
    def biases(self):
        """List of bias columns b^l, shape (n_out, 1); read-only copies."""
        return self._read(1)

    @biases.setter
    def biases(self, value):
        self._assign(value, 1, "biases")

    def _assign(self, value, which, name):
        # Validate everything first: a refused assignment changes nothing.
        s = self.sizes
        shapes = ([(o, i) for i, o in zip(s[:-1], s[1:])] if which == 0
                  else [(o, 1) for o in s[1:]])
        if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a list of {len(shapes)} arrays")
        if len(value) != len(shapes):
            raise ValueError(f"{name} must be a list of {len(shapes)} arrays; got {len(value)}")
        checked = []
        for k, (arr, shape) in enumerate(zip(value, shapes)):
            a = _checks.array(arr, f"{name}[{k}]", self.dtype)
            if which == 1 and a.shape == shape[:1]:
                a = a.reshape(shape)
            if a.shape != shape:
                raise ValueError(f"{name}[{k}] must have shape {shape}; got {a.shape}")
            checked.append(a)
        with self._lock:
            views = self._views(self._params)[which]
            for dst, src in zip(views, checked):
                dst[...] = src

    def _core_args(self):
        return self._sizes, self._woff, self._boff

    # -- feedforward --------------------------------------------------------

    def feedforward(self, a, num_threads=None):
        """a^L for an input: apply z^l = W^l a^{l-1} + b^l, a^l = f(z^l) layer by layer.

        Parameters
        ----------
        a : array_like
            A column (n_in, 1) as network.py passes it, a vector (n_in,), or a
            batch (n_samples, n_in), one example per row.  Any layout or real
            dtype; it is converted to the network's dtype.
        num_threads : int, optional
            Threads for a batch, which is split into blocks of 64 rows; the
            result does not depend on it.  Default: every available core.

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
        # No more threads than 64-row blocks, nor than cores by default.
        blocks = max(1, -(-X.shape[0] // 64))
        num_threads = min(blocks, num_threads or _available_cores())
        out = np.empty((X.shape[0], n_out), dtype=self.dtype)
        z = np.empty_like(out)
        work = np.empty(_core.workspace_size(self._sizes, 64) * num_threads, dtype=self.dtype)
        hidden, output, _ = self._codes
        with self._lock:
            _core.feedforward(self._params, *self._core_args(), hidden, output, X, out, z,
                              work, num_threads)
        return (out, z) if with_z else out

    # -- backprop -----------------------------------------------------------

    def backprop(self, x, y):
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

    def update_mini_batch(self, mini_batch, eta, lmbda=0.0, n=None):
        """One gradient-descent step on one mini-batch (network.py's method).

        W ← (1 − ηλ/n) W − (η/m) Σ_x δ_x (a_x)ᵀ and b ← b − (η/m) Σ_x δ_x, with
        m = len(mini_batch); ``lmbda`` and ``n`` (the training-set size) as in
        network2.py.  ``mini_batch`` is a list of (x, y) tuples or a pair (X, Y).
        """
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
        SGD(eta, mini_batch_size=X.shape[0], lmbda=lmbda)._step_checked(self, X, Y, n)

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None, lmbda=0.0,
            momentum=0.0, shuffle=True, verbose=True, progress=None,
            monitor_learning_speed=False):
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
        monitor_learning_speed : bool
            Record, after each epoch, the speed of learning of each layer: the
            mean |∂C/∂b^l| over its units (chapter 5 of the book), on a fixed
            subset of at most 1,000 training examples.  Training itself is
            unchanged; it costs one gradient over that subset per epoch.

        Returns
        -------
        dict
            Per-epoch history: ``epoch``, ``cost`` (mean C_x over the epoch, as
            seen during training), ``seconds``, and with test data
            ``correct``, ``accuracy`` and ``test_cost``; with
            ``monitor_learning_speed``, ``learning_speed``: per epoch, a list
            of L floats, for layers 1..L (the last is the output layer).
        """
        from .sgd import SGD
        opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda, momentum=momentum,
                  shuffle=shuffle)
        return opt.run(self, training_data, epochs, test_data=test_data, verbose=verbose,
                       progress=progress, monitor_learning_speed=monitor_learning_speed)

    # -- evaluation ---------------------------------------------------------

    def evaluate(self, test_data):
        """Number of test inputs whose output's argmax equals the label (network.py).

        With one output unit the answer is 1 when a >= 0.5, else 0.  Labels
        are integers or one-hot rows; other targets raise ``ValueError``.
        """
        X, labels = _data.test_arrays(test_data, self.sizes[0], self.sizes[-1], self.dtype)
        if X.shape[0] == 0:
            return 0
        answers = _data.predicted_labels(_no_nan(self._predict(X), "a^L"))
        return int(np.sum(answers == labels))

    def total_cost(self, data, lmbda=0.0):
        """Mean C_x over ``data`` plus the L2 term (λ/2n) Σ‖W‖² (network2.py's total_cost).

        ``data`` is training data in either form (targets, or labels made one-hot).
        """
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        X, Y = _data.training_arrays(data, self.sizes[0], self.sizes[-1], self.dtype, name="data")
        if X.shape[0] == 0:
            raise ValueError("data must hold at least one example")
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

    def __repr__(self):
        return (f"Network({self.sizes}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r}, cost={self.cost!r}, "
                f"dtype={np.dtype(self.dtype).name!r})")

    # -- saving and explaining ----------------------------------------------

    def save(self, path):
        """Write the network to ``path`` (a ``.npz`` model file); see :func:`cbp.io.save`."""
        from .io import save
        save(self, path)

    def explain(self, x, y):
        """Backpropagation step by step for one example; see :func:`cbp.explain.explain`."""
        from .explain import explain
        return explain(self, x, y)
