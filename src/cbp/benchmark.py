"""Microbenchmarks for cbp: NumPy references, timing helpers and a table printer.

This is the part of the benchmark suite that ships with the package.  It is
used by ``bench/run.py`` (the full suite) and by ``cbp bench`` through
:func:`quick`, so at module level it imports only the standard library, NumPy
and cbp; PyTorch, scikit-learn and threadpoolctl are imported inside the
functions that need them, and their absence is reported, not fatal.

Contents
--------
Timing
    :func:`autorange`, :func:`sampler`, :func:`interleave`, :func:`timeit`,
    :func:`median`, :func:`paired_ratio`, :func:`single_thread`,
    :func:`others_load`.
References (correct implementations, checked against cbp by :func:`check_references`)
    :func:`numpy_per_example_epoch` (network.py's algorithm, one example at a
    time), :func:`network_py_epoch` (the same, as network.py writes it),
    :func:`numpy_matmul_epoch` (one matrix product per layer per
    mini-batch), :func:`numpy_feedforward`, :func:`numpy_kernels` (the
    equivalents of the core's ``py_*`` kernels), :func:`torch_trainer`,
    :func:`sklearn_trainer`.
Measurements
    :func:`gemm_gflops` (the single-thread BLAS roofline),
    :func:`bench_kernels`, :func:`bench_epoch`, :func:`bench_feedforward`,
    :func:`memory_probe`, :func:`quick`.
Reporting
    :func:`format_table`, :func:`machine_info`.

Conventions: every time is the median over interleaved rounds (each round
runs every contender once, in a rotated order), and every ratio is the median
of the per-round ratios, so both sides of a ratio were measured in the same
stretch of time on a shared machine.  A speedup ``×ref`` is
``time(ref) / time(cbp)``: above 1 means cbp is faster.
"""
import contextlib
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

import cbp
from cbp import _core

__all__ = [
    "SIGMOID", "QUADRATIC", "autorange", "sampler", "interleave", "timeit", "median",
    "paired_ratio", "single_thread", "others_load", "train_flops", "forward_flops",
    "mnist_like",
    "numpy_per_example_epoch", "network_py_epoch", "numpy_matmul_epoch", "numpy_feedforward", "numpy_kernels",
    "torch_trainer", "sklearn_trainer", "check_references", "gemm_gflops", "bench_kernels",
    "bench_epoch", "bench_feedforward", "memory_probe", "quick", "format_table",
    "machine_info",
]

#: Codes of the core (``_core.pyx``): sigmoid activation, quadratic cost.
SIGMOID = 0
QUADRATIC = 0

_clock = time.perf_counter


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def median(values):
    """Median of a non-empty sequence of numbers, as a float."""
    return float(statistics.median(values))


def autorange(fn, min_time=0.02, max_number=10_000_000):
    """Calls of ``fn`` per sample so that one sample lasts at least ``min_time`` s.

    Like :meth:`timeit.Timer.autorange`, but aims straight at the target from
    the last measurement instead of trying 1, 2, 5, 10, ...  ``fn`` runs at
    least once, which doubles as a warm-up.
    """
    number = 1
    while True:
        start = _clock()
        for _ in range(number):
            fn()
        elapsed = _clock() - start
        if elapsed >= min_time or number >= max_number:
            return number
        guess = int(number * 1.2 * min_time / elapsed) + 1 if elapsed > 0 else number * 100
        number = min(max_number, max(number * 2, min(guess, number * 100)))


def sampler(fn, number=1, scale=1.0):
    """A callable that runs ``fn`` ``number`` times and returns seconds per call × ``scale``.

    The garbage collector is off while it runs, as in :mod:`timeit`.
    """
    def sample():
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = _clock()
            for _ in range(number):
                fn()
            elapsed = _clock() - start
        finally:
            if enabled:
                gc.enable()
        return elapsed / number * scale
    return sample


def interleave(samplers, rounds):
    """Run every sampler once per round, rotating the order; return ``{name: [seconds]}``.

    ``samplers`` maps names to callables returning the seconds of one sample
    (see :func:`sampler`; a callable may also time itself, as cbp's epochs
    do).  Rotating the order keeps any contender from always following the
    same neighbour; running all of them in each round means a burst of noise
    on the shared machine hits every contender of that round, which
    :func:`paired_ratio` then cancels.
    """
    names = list(samplers)
    times = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(float(samplers[name]()))
    return times


def timeit(fn, repeat=5, min_time=0.02):
    """Median seconds per call of ``fn`` over ``repeat`` samples of at least ``min_time`` s."""
    sample = sampler(fn, autorange(fn, min_time))
    return median([sample() for _ in range(repeat)])


def paired_ratio(numerator, denominator):
    """Median over rounds of ``numerator[r] / denominator[r]`` (None if either is missing)."""
    if not numerator or not denominator:
        return None
    return median([a / b for a, b in zip(numerator, denominator)])


@contextlib.contextmanager
def single_thread():
    """Limit BLAS and OpenMP pools to one thread with threadpoolctl, when it is installed.

    Yields True when the limit is in force, False when threadpoolctl is
    missing (then only environment variables set before NumPy was imported,
    such as OPENBLAS_NUM_THREADS=1, can limit BLAS).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1):
        yield True


def _system_busy_seconds():
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        # cpu user nice system idle iowait irq softirq steal ...
        busy = sum(int(v) for k, v in enumerate(fields[1:9]) if k not in (3, 4))
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@contextlib.contextmanager
def others_load():
    """Measure how many CPUs other processes kept busy while the block ran.

    Yields a dict that receives ``others_cpus`` on exit: (busy CPU time of the
    whole machine − this process's CPU time) / wall time, from /proc/stat
    (None where that file does not exist).  Near 0 on an idle machine; near
    1 on a 2-CPU machine means one CPU was taken by someone else, which
    matters most for multi-thread measurements.
    """
    out = {"others_cpus": None}
    busy0, own0, wall0 = _system_busy_seconds(), time.process_time(), _clock()
    try:
        yield out
    finally:
        busy1, own1, wall1 = _system_busy_seconds(), time.process_time(), _clock()
        if busy0 is not None and busy1 is not None and wall1 > wall0:
            out["others_cpus"] = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


# ---------------------------------------------------------------------------
# Data and FLOP counts
# ---------------------------------------------------------------------------

def train_flops(sizes):
    """Floating-point operations to train on one example (counting a multiply-add as 2).

    Forward 2·Σ n_in·n_out, BP2 2·Σ_{l>1} n_in·n_out (no error is sent below
    the first layer), BP3/BP4 and the step 2·Σ n_in·n_out.  Activations, the
    cost and the bias terms are left out: they are O(Σ n) against O(Σ n²).
    """
    products = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 4 * sum(products) + 2 * sum(products[1:])


def forward_flops(sizes):
    """Floating-point operations of one example's feedforward: 2·Σ n_in·n_out."""
    return 2 * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def mnist_like(n, dtype, source=None, seed=0):
    """``(X, Y, labels, description)``: n MNIST-shaped examples in ``dtype``.

    ``source`` is the path of an ``.npz`` holding ``images`` (uint8, k×28×28)
    and ``labels``, or ``"sample"`` for the 5,000 images that ship with cbp,
    or None for uniform random pixels with random labels.  Real images are
    tiled (repeated in order) up to n.  X is (n, 784) C-contiguous in [0, 1],
    Y the one-hot (n, 10) targets, labels int64 (n,).
    """
    dtype = np.dtype(dtype)
    if source is None:
        rng = np.random.default_rng(seed)
        images = rng.random((n, 784), dtype=np.float64)
        labels = rng.integers(0, 10, n)
        description = f"random pixels, {n} examples"
    else:
        if source == "sample":
            from cbp import datasets
            (Xa, ya), (Xb, yb) = datasets.load_sample()
            images, labels = np.concatenate([Xa, Xb]), np.concatenate([ya, yb])
            description = "cbp's embedded MNIST sample (5,000 images)"
        else:
            with np.load(source, allow_pickle=False) as npz:
                images = npz["images"].reshape(-1, 784) / 255.0
                labels = npz["labels"].astype(np.int64)
            description = f"MNIST images from {os.path.basename(str(source))} ({len(labels)})"
        if n > len(labels):
            description += f", tiled to {n}"
        take = np.arange(n) % len(labels)
        images, labels = images[take], labels[take]
    X = np.ascontiguousarray(images, dtype=dtype)
    Y = np.zeros((n, 10), dtype=dtype)
    Y[np.arange(n), labels] = 1
    return X, Y, labels.astype(np.int64), description


def _order(n, order, rng):
    if order is not None:
        return np.asarray(order, dtype=np.intp)
    if rng is None:
        return np.arange(n, dtype=np.intp)
    return rng.permutation(n)


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------

def _sigmoid_inplace(z):
    """z <- σ(z) = 1 / (1 + e^(−z)); e^(−z) = inf gives 0 exactly (caller silences the warning)."""
    np.negative(z, out=z)
    return _sigmoid_inplace_tail(z)


def _sigmoid_inplace_tail(t):
    """t <- 1 / (1 + e^t): the sigmoid of −t."""
    with np.errstate(over="ignore"):
        np.exp(t, out=t)
    np.add(t, 1, out=t)
    np.reciprocal(t, out=t)
    return t


def numpy_per_example_epoch(weights, biases, X, Y, eta, mini_batch_size, order=None, rng=None):
    """One epoch of network.py's algorithm in NumPy; updates ``weights`` and ``biases`` in place.

    Sigmoid layers, quadratic cost.  For each mini-batch: for each example
    alone, feedforward with column vectors, BP1 δ^L = (a^L − y) ⊙ σ'(z^L),
    BP2 δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l), and add ∂C/∂b = δ,
    ∂C/∂W = δ (a^{l-1})ᵀ to the sums; then W ← W − (η/m) Σ ∂C/∂W and
    b ← b − (η/m) Σ ∂C/∂b.  This is network.py's ``update_mini_batch`` and
    ``backprop`` (``np.dot`` on column vectors, as there), with σ'(z) taken as
    a(1 − a) and the sums accumulated in place (both only save time).

    Parameters
    ----------
    weights, biases : lists of arrays shaped as network.py shapes them,
        (n_out, n_in) and (n_out, 1), in X's dtype; modified in place.
    X, Y : (n, n_in) and (n, n_out) arrays, one example per row.
    eta : float
    mini_batch_size : int
    order : sequence of row indices, optional
        The epoch's order; default a permutation drawn from ``rng``, or the
        rows in order if ``rng`` is None too.
    """
    n = X.shape[0]
    idx = _order(n, order, rng)
    n_layers = len(weights)
    nabla_b = [np.empty_like(b) for b in biases]
    nabla_w = [np.empty_like(w) for w in weights]
    with np.errstate(over="ignore"):
        for start in range(0, n, mini_batch_size):
            batch = idx[start:start + mini_batch_size]
            for nb in nabla_b:
                nb.fill(0)
            for nw in nabla_w:
                nw.fill(0)
            for k in batch:
                activation = X[k].reshape(-1, 1)
                activations = [activation]
                for w, b in zip(weights, biases):
                    activation = 1 / (1 + np.exp(-(np.dot(w, activation) + b)))
                    activations.append(activation)
                a = activations[-1]
                delta = (a - Y[k].reshape(-1, 1)) * (a * (1 - a))
                for l in range(n_layers - 1, -1, -1):
                    nabla_b[l] += delta
                    nabla_w[l] += np.dot(delta, activations[l].T)
                    if l > 0:
                        a = activations[l]
                        delta = np.dot(weights[l].T, delta) * (a * (1 - a))
            step = eta / len(batch)
            for w, nw in zip(weights, nabla_w):
                w -= step * nw
            for b, nb in zip(biases, nabla_b):
                b -= step * nb
    return weights, biases


def network_py_epoch(weights, biases, X, Y, eta, mini_batch_size, order=None, rng=None):
    """One epoch of network.py's ``update_mini_batch`` and ``backprop`` as written there.

    The same computation as :func:`numpy_per_example_epoch`, but written the
    way network.py writes it: a fresh list of zero nablas for every example,
    ``zs`` kept and σ'(z) = σ(z)(1 − σ(z)) evaluated from z (two more exps
    per unit), the sums rebuilt by list comprehension, and new weight arrays
    each step.  It is what "network.py" costs; :func:`numpy_per_example_epoch`
    is the same algorithm without the avoidable work.  The caller's lists are
    updated in place (their items are replaced).  Arguments as there.
    """
    n = X.shape[0]
    idx = _order(n, order, rng)

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def sigmoid_prime(z):
        return sigmoid(z) * (1 - sigmoid(z))

    n_layers = len(weights) + 1
    with np.errstate(over="ignore"):
        for start in range(0, n, mini_batch_size):
            batch = idx[start:start + mini_batch_size]
            nabla_b = [np.zeros(b.shape, dtype=b.dtype) for b in biases]
            nabla_w = [np.zeros(w.shape, dtype=w.dtype) for w in weights]
            for k in batch:
                x, y = X[k].reshape(-1, 1), Y[k].reshape(-1, 1)
                # backprop(x, y)
                delta_nabla_b = [np.zeros(b.shape, dtype=b.dtype) for b in biases]
                delta_nabla_w = [np.zeros(w.shape, dtype=w.dtype) for w in weights]
                activation = x
                activations = [x]
                zs = []
                for b, w in zip(biases, weights):
                    z = np.dot(w, activation) + b
                    zs.append(z)
                    activation = sigmoid(z)
                    activations.append(activation)
                delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
                delta_nabla_b[-1] = delta
                delta_nabla_w[-1] = np.dot(delta, activations[-2].transpose())
                for l in range(2, n_layers):
                    sp = sigmoid_prime(zs[-l])
                    delta = np.dot(weights[-l + 1].transpose(), delta) * sp
                    delta_nabla_b[-l] = delta
                    delta_nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
                nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
                nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
            weights[:] = [w - (eta / len(batch)) * nw for w, nw in zip(weights, nabla_w)]
            biases[:] = [b - (eta / len(batch)) * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def numpy_matmul_epoch(weights, biases, X, Y, eta, mini_batch_size, order=None, rng=None):
    """One epoch of mini-batch SGD with one matrix product per layer per mini-batch.

    The same algorithm and update as :func:`numpy_per_example_epoch` (and as
    cbp), with the mini-batch's examples as the rows of A^0 = X[batch]:
    Z^l = A^{l-1} (W^l)ᵀ + b^l, A^l = σ(Z^l), D^L = (A^L − Y) ⊙ A^L ⊙ (1 − A^L),
    D^{l-1} = (D^l W^l) ⊙ A^{l-1} ⊙ (1 − A^{l-1}), and W^l ← W^l − (η/m) (D^l)ᵀ A^{l-1},
    b^l ← b^l − (η/m) Σ_rows D^l.  Buffers are allocated once per epoch and
    every operation writes in place, so the time is BLAS plus NumPy's
    per-call overhead.  (Dᵀ A goes through ``np.dot``: ``np.matmul`` skips
    BLAS for a transposed single row, as in a last mini-batch of one.)  Arguments as :func:`numpy_per_example_epoch`; the
    ``(n_out, 1)`` biases are updated through ``(n_out,)`` views.
    """
    n = X.shape[0]
    idx = _order(n, order, rng)
    m = min(mini_batch_size, n)
    dtype = X.dtype
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    bias_rows = []
    for b in biases:
        row = b.reshape(-1)
        if not np.shares_memory(row, b):
            raise ValueError("biases must be contiguous (n_out, 1) arrays")
        bias_rows.append(row)
    acts = [np.empty((m, s), dtype=dtype) for s in sizes]
    deltas = [np.empty((m, s), dtype=dtype) for s in sizes]
    scratch = [np.empty((m, s), dtype=dtype) for s in sizes]
    grads_w = [np.empty_like(w) for w in weights]
    grads_b = [np.empty(w.shape[0], dtype=dtype) for w in weights]
    y_rows = np.empty((m, sizes[-1]), dtype=dtype)
    top = len(weights)
    with np.errstate(over="ignore"):
        for start in range(0, n, m):
            batch = idx[start:start + m]
            M = len(batch)
            A = [a[:M] for a in acts]
            D = [d[:M] for d in deltas]
            T = [t[:M] for t in scratch]
            np.take(X, batch, axis=0, out=A[0])
            y = y_rows[:M]
            np.take(Y, batch, axis=0, out=y)
            for l, (w, b) in enumerate(zip(weights, bias_rows)):
                np.matmul(A[l], w.T, out=A[l + 1])
                A[l + 1] += b
                _sigmoid_inplace(A[l + 1])
            # BP1: δ = (a − y) ⊙ a(1 − a), computed as g·a − (g·a)·a.
            np.subtract(A[top], y, out=D[top])
            D[top] *= A[top]
            np.multiply(D[top], A[top], out=T[top])
            D[top] -= T[top]
            step = eta / M
            for l in range(top, 0, -1):
                w = weights[l - 1]
                np.dot(D[l].T, A[l - 1], out=grads_w[l - 1])
                np.sum(D[l], axis=0, out=grads_b[l - 1])
                if l > 1:
                    # BP2 with the weights before this step's update.
                    np.matmul(D[l], w, out=D[l - 1])
                    D[l - 1] *= A[l - 1]
                    np.multiply(D[l - 1], A[l - 1], out=T[l - 1])
                    D[l - 1] -= T[l - 1]
                grads_w[l - 1] *= step
                w -= grads_w[l - 1]
                grads_b[l - 1] *= step
                bias_rows[l - 1] -= grads_b[l - 1]
    return weights, biases


def numpy_feedforward(weights, biases, X):
    """a^L for every row of X with one matrix product per layer: (n, n_out)."""
    a = X
    with np.errstate(over="ignore"):
        for w, b in zip(weights, biases):
            z = a @ w.T
            z += b.reshape(-1)
            a = _sigmoid_inplace(z)
    return a


def numpy_kernels(dtype, M, O, I, seed=0):
    """Inputs and NumPy/cbp callables for each core kernel on an I→O layer with M rows.

    Returns ``{kernel: (cbp_call, numpy_call, flops_per_call or None, check)}``
    where ``check()`` runs both once on fresh copies and returns the largest
    absolute difference of their outputs.  The NumPy side writes into
    preallocated buffers, as the core does.
    """
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    A = rng.random((M, I)).astype(dt)                      # a^{l-1}, in (0, 1)
    W = (rng.standard_normal((O, I)) / np.sqrt(I)).astype(dt)
    b = rng.standard_normal(O).astype(dt)
    Z = np.empty((M, O), dtype=dt)
    Zin = rng.standard_normal((M, O)).astype(dt)
    Aout = np.empty((M, O), dtype=dt)
    Atop = rng.random((M, O)).astype(dt)
    Ytop = np.zeros((M, O), dtype=dt)
    Ytop[np.arange(M), rng.integers(0, O, M)] = 1
    Dtop = np.empty((M, O), dtype=dt)
    Tmo = np.empty((M, O), dtype=dt)
    Dmo = (rng.standard_normal((M, O)) * 0.1).astype(dt)
    Dmi = np.empty((M, I), dtype=dt)
    Tmi = np.empty((M, I), dtype=dt)
    Wg = W.copy()
    bg = b.copy()
    G = np.empty_like(W)
    gb = np.empty(O, dtype=dt)
    alpha = -1e-3 / M

    # Explicit out= everywhere: an augmented assignment (Z += b) would make
    # these names local to the closures.
    def np_forward():
        np.matmul(A, W.T, out=Z)
        np.add(Z, b, out=Z)

    def np_activate():
        np.negative(Zin, out=Aout)
        _sigmoid_inplace_tail(Aout)

    def np_output_error():
        np.subtract(Atop, Ytop, out=Dtop)
        np.multiply(Dtop, Atop, out=Dtop)
        np.multiply(Dtop, Atop, out=Tmo)
        np.subtract(Dtop, Tmo, out=Dtop)

    def np_backprop():
        np.matmul(Dmo, W, out=Dmi)
        np.multiply(Dmi, A, out=Dmi)
        np.multiply(Dmi, A, out=Tmi)
        np.subtract(Dmi, Tmi, out=Dmi)

    def np_step(Wt=Wg, bt=bg):
        # W <- W + α Dᵀ A, b <- b + α Σ D (β = 1: no L2 decay, the common case)
        np.dot(Dmo.T, A, out=G)
        np.multiply(G, alpha, out=G)
        np.add(Wt, G, out=Wt)
        np.sum(Dmo, axis=0, out=gb)
        np.multiply(gb, alpha, out=gb)
        np.add(bt, gb, out=bt)

    def run_pair(c_fn, n_fn, outputs):
        c_fn()
        got_c = [o.copy() for o in outputs]
        n_fn()
        return max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
                   for x, y in zip(got_c, outputs))

    def check_step():
        W1, b1, W2, b2 = W.copy(), b.copy(), W.copy(), b.copy()
        _core.py_gradient_step(Dmo, A, W1, b1, alpha, 1.0)
        np_step(W2, b2)
        return max(float(np.max(np.abs(W1 - W2))), float(np.max(np.abs(b1 - b2))))

    flops = 2 * M * O * I
    return {
        "feedforward_layer": (lambda: _core.py_feedforward_layer(A, W, b, Z), np_forward, flops,
                              lambda: run_pair(lambda: _core.py_feedforward_layer(A, W, b, Z),
                                               np_forward, [Z])),
        "activate": (lambda: _core.py_activate(Zin, Aout, SIGMOID), np_activate, None,
                     lambda: run_pair(lambda: _core.py_activate(Zin, Aout, SIGMOID),
                                      np_activate, [Aout])),
        "output_error": (lambda: _core.py_output_error(Atop, Ytop, Dtop, SIGMOID, QUADRATIC),
                         np_output_error, None,
                         lambda: run_pair(lambda: _core.py_output_error(Atop, Ytop, Dtop, SIGMOID,
                                                                        QUADRATIC),
                                          np_output_error, [Dtop])),
        "backpropagate_error": (lambda: _core.py_backpropagate_error(Dmo, W, A, Dmi, SIGMOID),
                                np_backprop, flops,
                                lambda: run_pair(lambda: _core.py_backpropagate_error(
                                    Dmo, W, A, Dmi, SIGMOID), np_backprop, [Dmi])),
        "gradient_step": (lambda: _core.py_gradient_step(Dmo, A, Wg, bg, alpha, 1.0), np_step,
                          flops, check_step),
    }


# ---------------------------------------------------------------------------
# Other libraries (imported lazily)
# ---------------------------------------------------------------------------

def torch_trainer(weights, biases, X, Y, eta, mini_batch_size, seed=0):
    """A callable running one PyTorch epoch (CPU, one thread), or None without torch.

    ``nn.Linear`` + ``nn.Sigmoid`` layers started from the given weights,
    loss ``MSELoss(reduction="sum") · ½ / m`` (the mean of ½‖a − y‖² over the
    mini-batch, so the gradient and step equal cbp's), plain
    ``torch.optim.SGD(lr=eta)``; each epoch draws a permutation and gathers
    each mini-batch with ``index_select``.  The callable accepts
    ``order=`` to fix the epoch's order and has ``.parameters()`` returning
    the current (weights, biases) as NumPy arrays.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    dt = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[X.dtype]
    layers = []
    for w, b in zip(weights, biases):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w, dtype=X.dtype)))
            lin.bias.copy_(torch.from_numpy(np.array(b, dtype=X.dtype).reshape(-1)))
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    Yt = torch.from_numpy(np.ascontiguousarray(Y))
    gen = torch.Generator().manual_seed(seed)
    n, m = Xt.shape[0], mini_batch_size

    def epoch(order=None):
        perm = torch.randperm(n, generator=gen) if order is None else torch.as_tensor(
            np.asarray(order, dtype=np.int64))
        for start in range(0, n, m):
            idx = perm[start:start + m]
            xb = Xt.index_select(0, idx)
            yb = Yt.index_select(0, idx)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb) * (0.5 / idx.shape[0])
            loss.backward()
            opt.step()

    def parameters():
        lins = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
        return ([lin.weight.detach().numpy().copy() for lin in lins],
                [lin.bias.detach().numpy().reshape(-1, 1).copy() for lin in lins])

    epoch.parameters = parameters
    epoch.version = torch.__version__
    return epoch


def sklearn_trainer(sizes, X, labels, eta, mini_batch_size, seed=0):
    """A callable running one scikit-learn epoch, or None without scikit-learn.

    ``MLPClassifier(activation="logistic", solver="sgd", batch_size=m,
    momentum=0, alpha=0, learning_rate_init=eta, shuffle=True)``; each call
    is one ``partial_fit``, which is one shuffled pass over the data.  Its
    output layer is softmax with log-loss (scikit-learn's choice for
    classifiers), not sigmoid with quadratic cost: the same matrix products,
    a slightly different last layer.  The first call also initialises the
    model, so call it once before timing.
    """
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic",
                        solver="sgd", alpha=0.0, batch_size=mini_batch_size,
                        learning_rate="constant", learning_rate_init=eta, momentum=0.0,
                        nesterovs_momentum=False, max_iter=1, shuffle=True, random_state=seed)
    classes = np.arange(sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, labels, classes=classes)

    epoch.model = clf
    return epoch


# ---------------------------------------------------------------------------
# Self-check of the references
# ---------------------------------------------------------------------------

def _max_diff(ws1, bs1, ws2, bs2):
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
               for a, b in zip(list(ws1) + list(bs1), list(ws2) + list(bs2)))


def check_references(sizes=(784, 30, 10), mini_batch_size=10, eta=3.0, dtype=np.float64,
                     with_torch=False, seed=0):
    """Take one mini-batch step from the same weights with cbp and each reference.

    Returns ``{reference: largest |difference| in any weight or bias}`` for
    ``numpy_per_example``, ``network_py``, ``numpy_matmul`` (and ``torch`` when asked and
    installed), plus ``numpy_feedforward`` (outputs on the mini-batch, before
    the step); in float64 each should be about 1e-15.  ``step_size`` is the
    largest change the step made to any parameter, for scale.
    """
    sizes = list(sizes)
    rng = np.random.default_rng(seed)
    m = mini_batch_size
    X = rng.random((m, sizes[0])).astype(dtype)
    Y = np.zeros((m, sizes[-1]), dtype=dtype)
    Y[np.arange(m), rng.integers(0, sizes[-1], m)] = 1
    net = cbp.Network(sizes, dtype=dtype, seed=seed)
    w0 = [np.array(w) for w in net.weights]
    b0 = [np.array(b) for b in net.biases]
    out = {"numpy_feedforward": float(np.max(np.abs(
        numpy_feedforward(w0, b0, X) - net._predict(np.ascontiguousarray(X)))))}
    cbp.SGD(eta, mini_batch_size=m, shuffle=False).run(net, (X, Y), epochs=1)
    ws, bs = net.weights, net.biases
    # The step itself, so a reader can see the check is not vacuous.
    out["step_size"] = _max_diff(ws, bs, w0, b0)
    for name, fn in (("numpy_per_example", numpy_per_example_epoch),
                     ("network_py", network_py_epoch),
                     ("numpy_matmul", numpy_matmul_epoch)):
        w1, b1 = [w.copy() for w in w0], [b.copy() for b in b0]
        fn(w1, b1, X, Y, eta, m)
        out[name] = _max_diff(ws, bs, w1, b1)
    if with_torch:
        epoch = torch_trainer(w0, b0, X, Y, eta, m)
        if epoch is not None:
            epoch(order=np.arange(m))
            out["torch"] = _max_diff(ws, bs, *epoch.parameters())
    return out


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def gemm_gflops(dtype=np.float64, n=1024, rounds=5, min_time=0.1, seed=0):
    """GFLOP/s of an n×n by n×n NumPy matmul (2n³ flops): the BLAS roofline.

    Run it under :func:`single_thread` (or with the BLAS thread variables set
    to 1 before NumPy's import) for the single-thread figure.
    """
    rng = np.random.default_rng(seed)
    A = rng.random((n, n)).astype(dtype)
    B = rng.random((n, n)).astype(dtype)
    C = np.empty((n, n), dtype=dtype)
    fn = lambda: np.matmul(A, B, out=C)  # noqa: E731
    sample = sampler(fn, autorange(fn, min_time))
    return 2 * n ** 3 / median([sample() for _ in range(rounds)]) / 1e9


def bench_kernels(layers=((784, 30), (784, 256)), batch_sizes=(1, 10, 64),
                  dtypes=(np.float64, np.float32), rounds=5, min_time=0.01,
                  extra=((1024, 1024, 128),)):
    """Each core kernel alone against its NumPy equivalent; one row per case.

    The cases are every (I, O) layer of ``layers`` with every M of
    ``batch_sizes``, then the ``(I, O, M)`` triples of ``extra`` (by default
    the middle layer of [784, 1024, 1024, 10] with its mini-batch of 128,
    whose weights no longer fit in L2).

    Rows hold ``kernel, layer, M, dtype, cbp_us, numpy_us`` (median µs per
    call), ``speedup`` (NumPy time / cbp time, paired by round), ``cbp_gflops``
    and ``numpy_gflops`` for the three matrix kernels (2·M·O·I flops), and
    ``max_diff`` (cbp against NumPy on the same inputs).
    """
    rows = []
    cases = [(I, O, M) for I, O in layers for M in batch_sizes] + list(extra)
    for dtype in dtypes:
        for I, O, M in cases:
            for kernel, (c_fn, n_fn, flops, check) in numpy_kernels(dtype, M, O, I).items():
                diff = check()
                samplers = {"cbp": sampler(c_fn, autorange(c_fn, min_time)),
                            "numpy": sampler(n_fn, autorange(n_fn, min_time))}
                t = interleave(samplers, rounds)
                c, n = median(t["cbp"]), median(t["numpy"])
                rows.append({
                    "kernel": kernel, "layer": f"[{I},{O}]", "M": M,
                    "dtype": np.dtype(dtype).name, "cbp_us": c * 1e6, "numpy_us": n * 1e6,
                    "speedup": paired_ratio(t["numpy"], t["cbp"]),
                    "cbp_gflops": flops / c / 1e9 if flops else None,
                    "numpy_gflops": flops / n / 1e9 if flops else None,
                    "max_diff": diff,
                })
    return rows


def bench_epoch(sizes, mini_batch_size, eta, X, Y, labels, dtypes=(np.float64, np.float32),
                rounds=3, n_scale=None, per_example_n=1000, network_py=True, with_torch=True,
                with_sklearn=True, sklearn_eta=0.1, gemm=True, seed=0):
    """One training configuration: cbp and every reference, in every dtype, interleaved.

    Every contender trains from the same initial weights on the same rows
    (X, Y, labels, converted to each dtype), one epoch per round; the two
    per-example references (``network_py`` turns on the second) train on the
    first ``per_example_n`` rows only.
    Times are scaled to ``n_scale`` examples (default len(X)).  With ``gemm``
    each round also times the n=1024 matmul in each dtype (key
    ``gemm:<dtype>``, seconds per matmul), so the roofline is paired with the
    epochs too.

    Returns ``(times, notes)``: ``times`` maps ``"<contender>:<dtype>"`` to
    per-round seconds, contenders being ``cbp``, ``numpy_per_example``,
    ``network_py``, ``numpy_matmul``, ``torch`` and ``sklearn`` (absent when skipped, with
    the reason in ``notes``).  cbp's seconds are its own ``history["seconds"]``
    (the core loop, conversions excluded) of one ``SGD.run(..., epochs=1)``.
    """
    sizes = list(sizes)
    n = X.shape[0]
    scale = (n_scale or n) / n
    k = min(per_example_n, n)
    few = min(n, mini_batch_size * 4)
    rng = np.random.default_rng(seed)
    samplers, notes, warmups = {}, {}, []
    for dtype in dtypes:
        dt = np.dtype(dtype)
        tag = dt.name
        Xd, Yd = np.ascontiguousarray(X, dtype=dt), np.ascontiguousarray(Y, dtype=dt)
        net = cbp.Network(sizes, dtype=dt, seed=seed)
        w0 = [np.array(w) for w in net.weights]
        b0 = [np.array(b) for b in net.biases]
        opt = cbp.SGD(eta, mini_batch_size=mini_batch_size)
        samplers[f"cbp:{tag}"] = (lambda net=net, opt=opt, Xd=Xd, Yd=Yd:
                                  opt.run(net, (Xd, Yd), epochs=1)["seconds"][0] * scale)
        warmups.append(lambda dt=dt, Xd=Xd, Yd=Yd: cbp.SGD(eta, mini_batch_size).run(
            cbp.Network(sizes, dtype=dt, seed=seed), (Xd[:few], Yd[:few]), epochs=1))
        if k:
            w_pe, b_pe = [w.copy() for w in w0], [b.copy() for b in b0]
            samplers[f"numpy_per_example:{tag}"] = sampler(
                lambda w=w_pe, b=b_pe, Xk=Xd[:k], Yk=Yd[:k]: numpy_per_example_epoch(
                    w, b, Xk, Yk, eta, mini_batch_size, rng=rng), scale=scale * n / k)
        if k and network_py:
            w_nw, b_nw = [w.copy() for w in w0], [b.copy() for b in b0]
            samplers[f"network_py:{tag}"] = sampler(
                lambda w=w_nw, b=b_nw, Xk=Xd[:k], Yk=Yd[:k]: network_py_epoch(
                    w, b, Xk, Yk, eta, mini_batch_size, rng=rng), scale=scale * n / k)
        w_mm, b_mm = [w.copy() for w in w0], [b.copy() for b in b0]
        samplers[f"numpy_matmul:{tag}"] = sampler(
            lambda w=w_mm, b=b_mm, Xd=Xd, Yd=Yd: numpy_matmul_epoch(
                w, b, Xd, Yd, eta, mini_batch_size, rng=rng), scale=scale)
        if with_torch:
            epoch = torch_trainer(w0, b0, Xd, Yd, eta, mini_batch_size, seed=seed)
            if epoch is None:
                notes["torch"] = "skipped: torch is not installed"
            else:
                samplers[f"torch:{tag}"] = sampler(epoch, scale=scale)
                warmups.append(torch_trainer(w0, b0, Xd[:few], Yd[:few], eta, mini_batch_size))
        if with_sklearn:
            epoch = sklearn_trainer(sizes, Xd, labels, sklearn_eta, mini_batch_size, seed=seed)
            if epoch is None:
                notes["sklearn"] = "skipped: scikit-learn is not installed"
            else:
                # The first partial_fit initialises the model: do it on a few rows.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    epoch.model.partial_fit(Xd[:few], labels[:few], classes=np.arange(sizes[-1]))
                samplers[f"sklearn:{tag}"] = sampler(epoch, scale=scale)
        if gemm:
            g = np.random.default_rng(seed)
            A, B = g.random((1024, 1024)).astype(dt), g.random((1024, 1024)).astype(dt)
            C = np.empty_like(A)
            fn = lambda A=A, B=B, C=C: np.matmul(A, B, out=C)  # noqa: E731
            samplers[f"gemm:{tag}"] = sampler(fn, autorange(fn, 0.1))
    for warm in warmups:
        warm()
    return interleave(samplers, rounds), notes


def bench_feedforward(sizes, dtype, X, rounds=5, min_time=0.05, threads=(1, 2), seed=0):
    """Feedforward of all rows of X: cbp with each thread count and NumPy.

    Returns per-round seconds per pass: ``{"cbp_1": [...], "cbp_2": [...],
    "numpy": [...]}`` and the largest |difference| between cbp's and NumPy's
    outputs.
    """
    net = cbp.Network(list(sizes), dtype=dtype, seed=seed)
    X = np.ascontiguousarray(X, dtype=dtype)
    ws = [np.array(w) for w in net.weights]
    bs = [np.array(b) for b in net.biases]
    diff = float(np.max(np.abs(net._predict(X) - numpy_feedforward(ws, bs, X))))
    fns = {f"cbp_{k}": (lambda k=k: net._predict(X, num_threads=k)) for k in threads}
    fns["numpy"] = lambda: numpy_feedforward(ws, bs, X)
    samplers = {name: sampler(fn, autorange(fn, min_time)) for name, fn in fns.items()}
    return interleave(samplers, rounds), diff


def _vm_hwm():
    """This process's peak resident set (VmHWM in /proc/self/status) in bytes, or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for text in f:
                if text.startswith("VmHWM:"):
                    return int(text.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_probe(sizes=(784, 1024, 1024, 10), n=2000, mini_batch_size=128, eta=0.5,
                 dtype="float64"):
    """Peak-RSS increase of building a network and training it one epoch, in this process.

    Meant for a fresh interpreter (``python -c``).  Records the peak resident
    set, then makes random data, builds the net, trains one epoch, and
    records it again.  The estimate is (parameters + gradients + one
    mini-batch's activations) × itemsize + the data (X and Y).  Returns a
    dict of bytes and the ratio increase / estimate.

    The peak is read two ways: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
    and, on Linux, ``VmHWM`` from /proc/self/status.  They differ in a child
    of a large process: Linux carries ru_maxrss over fork and exec, so the
    child starts with its parent's peak and a smaller increase does not show,
    while VmHWM belongs to the child's own address space.  ``increase`` uses
    VmHWM when it is available.
    """
    import resource
    sizes = list(sizes)
    dt = np.dtype(dtype)
    unit = 1 if sys.platform == "darwin" else 1024
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    hwm0 = _vm_hwm()
    rng = np.random.default_rng(0)
    X = rng.random((n, sizes[0]), dtype=np.float64).astype(dt)
    Y = np.zeros((n, sizes[-1]), dtype=dt)
    Y[np.arange(n), rng.integers(0, sizes[-1], n)] = 1
    net = cbp.Network(sizes, dtype=dt, seed=0)
    cbp.SGD(eta, mini_batch_size=mini_batch_size).run(net, (X, Y), epochs=1)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    hwm1 = _vm_hwm()
    params = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    activations = mini_batch_size * sum(sizes)
    estimate = (2 * params + activations) * dt.itemsize + X.nbytes + Y.nbytes
    increase = hwm1 - hwm0 if hwm0 is not None and hwm1 is not None else rss1 - rss0
    return {"sizes": sizes, "n": n, "mini_batch_size": mini_batch_size, "dtype": dt.name,
            "ru_maxrss_before": rss0, "ru_maxrss_after": rss1, "vm_hwm_before": hwm0,
            "vm_hwm_after": hwm1, "increase": increase,
            "source": "VmHWM" if hwm0 is not None else "ru_maxrss", "params": params,
            "estimate": estimate, "data_bytes": X.nbytes + Y.nbytes,
            "ratio": increase / estimate}


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

def _cell(value, fmt):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if callable(fmt):
        return fmt(value)
    return format(value, fmt)


def format_table(rows, columns, title=None):
    """A plain-text table.

    ``columns`` is a list of ``(key, header, fmt)``: ``fmt`` a format spec
    such as ``".3g"`` or a callable; None or missing values print as ``-``,
    strings as they are.  Text columns are left-aligned, the rest right-aligned.
    """
    header = [h for _, h, _ in columns]
    body = [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows]
    widths = [max([len(h)] + [len(r[j]) for r in body]) for j, h in enumerate(header)]
    left = [any(isinstance(row.get(key), str) for row in rows)
            and all(isinstance(row.get(key), str) or row.get(key) is None for row in rows)
            for key, _, _ in columns]

    def line(cells):
        return "  ".join(c.ljust(w) if lft else c.rjust(w)
                         for c, w, lft in zip(cells, widths, left)).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(header))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in body)
    return "\n".join(out)


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info():
    """CPU, Python, library versions and BLAS as a JSON-ready dict."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cbp": cbp.__version__,
        "numpy": np.__version__,
        "torch": _version("torch"),
        "scikit-learn": _version("scikit-learn"),
        "threadpoolctl": _version("threadpoolctl"),
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS")},
    }
    try:
        from threadpoolctl import threadpool_info
        info["threadpools"] = threadpool_info()
    except ImportError:
        info["threadpools"] = None
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        info["numpy_blas"] = {k: deps[k] for k in ("blas", "lapack") if k in deps}
    except Exception:  # old NumPy: no mode="dicts"
        info["numpy_blas"] = None
    return info


# ---------------------------------------------------------------------------
# The short side-by-side behind `cbp bench`
# ---------------------------------------------------------------------------

def quick(n=10_000, rounds=3, per_example_n=1000, file=None, data="sample"):
    """cbp against the two NumPy references on [784, 30, 10], m = 10, η = 3, float64.

    Trains one epoch per round on ``n`` MNIST-shaped rows (cbp's embedded
    sample, tiled; ``data=None`` for random pixels), the per-example reference
    on ``per_example_n`` of them, scaled.  Prints a table (to ``file``,
    default stdout) and returns its rows: ``implementation``, ``seconds``
    (median per epoch of n examples), ``gflops`` and ``cbp_speedup``
    (the implementation's time / cbp's, paired by round).  Takes a few
    seconds; under a minute for n = 10,000 even on a slow machine.
    """
    file = sys.stdout if file is None else file
    sizes, m, eta = [784, 30, 10], 10, 3.0
    X, Y, labels, description = mnist_like(n, np.float64, source=data)
    with single_thread() as limited:
        diffs = check_references(sizes, m, eta)
        step = diffs.pop("step_size")
        times, _ = bench_epoch(sizes, m, eta, X, Y, labels, dtypes=(np.float64,), rounds=rounds,
                               per_example_n=per_example_n, network_py=False,
                               with_torch=False, with_sklearn=False, gemm=False)
    times = {key.split(":")[0]: value for key, value in times.items()}
    flops = train_flops(sizes) * n
    names = {"cbp": "cbp", "numpy_per_example": "NumPy, per example (network.py)",
             "numpy_matmul": "NumPy, one matmul per layer"}
    rows = []
    for key, label in names.items():
        if key not in times:
            continue
        t = median(times[key])
        rows.append({"implementation": label, "seconds": t, "gflops": flops / t / 1e9,
                     "cbp_speedup": paired_ratio(times[key], times["cbp"])})
    title = (f"[784, 30, 10], mini-batch 10, float64, one epoch of {n} examples "
             f"({description}); " + (f"medians of {rounds} rounds, " if rounds > 1 else
                                     "one round, ")
             + ("one BLAS thread" if limited else "BLAS threads not limited (no threadpoolctl)"))
    print(format_table(rows, [("implementation", "implementation", None),
                              ("seconds", "s/epoch", ".3f"),
                              ("gflops", "GFLOP/s", ".2f"),
                              ("cbp_speedup", "cbp speedup", lambda v: f"{v:.2f}x")],
                       title=title), file=file)
    worst = max(diffs.values())
    print(f"check: after one mini-batch step (largest change {step:.2g}) from the same weights, "
          f"the NumPy references agree with cbp to {worst:.1e}", file=file)
    if worst > 1e-10:
        print("WARNING: the references disagree with cbp by more than 1e-10", file=file)
    return rows
