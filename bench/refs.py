"""NumPy references of the benchmark suite, and the data and FLOP counts they share.

Each reference is a correct implementation of cbp's algorithm (sigmoid layers,
quadratic cost, plain mini-batch SGD), timed against cbp.  :func:`check_references`
checks cbp and each of them against :mod:`cbp.reference`, the notes' equations
written once (the oracle of cbp's tests too).
"""
import os

import numpy as np

import cbp
from cbp import _core

#: Codes of the core (``_core.pyx``): sigmoid activation, quadratic cost.
SIGMOID = 0
QUADRATIC = 0

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

    ``source`` is a directory holding ``t10k-images-idx3-ubyte[.gz]`` and its
    labels (the 10,000 distinct test images), the path of an ``.npz`` holding
    ``images`` (uint8, k×28×28) and ``labels``, ``"sample"`` for the 5,000
    images that ship with cbp, or None for uniform random pixels with random
    labels.  When the source holds fewer than n images they are tiled
    (repeated in order) and the description says so.  X is (n, 784)
    C-contiguous in [0, 1], Y the one-hot (n, 10) targets, labels int64 (n,).
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
        elif os.path.isdir(str(source)):
            from cbp import datasets
            images, labels = datasets.load_mnist(str(source), kind="t10k")
            description = f"MNIST t10k images from {source} ({len(labels)} distinct)"
        else:
            with np.load(source, allow_pickle=False) as npz:
                images = npz["images"].reshape(-1, 784) / 255.0
                labels = npz["labels"].astype(np.int64)
            description = f"MNIST images from {os.path.basename(str(source))} ({len(labels)})"
        if n > len(labels):
            description += f", tiled to {n} (not distinct)"
        elif n < len(labels):
            description += f", first {n}"
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
    """One epoch of network.py's algorithm, tidied ("tidy per-example NumPy"); updates in place.

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
    """One epoch of network.py's ``update_mini_batch`` and ``backprop`` ("network.py as written").

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
    """One epoch of mini-batch SGD with one matrix product per layer per mini-batch ("tidy NumPy").

    The fastest plain NumPy we could write: buffers allocated once per epoch,
    every operation in place and in the data's dtype, δ scaled by −η/m once
    (an m × n_out array) before the products, so ``np.dot(δᵀ, A)`` is the step
    and the gradient is never scaled.

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
            step = dtype.type(-eta / M)
            for l in range(top, 0, -1):
                w = weights[l - 1]
                if l > 1:
                    # BP2 with the weights before this step's update.
                    np.matmul(D[l], w, out=D[l - 1])
                    D[l - 1] *= A[l - 1]
                    np.multiply(D[l - 1], A[l - 1], out=T[l - 1])
                    D[l - 1] -= T[l - 1]
                # Scale δ (M x n_out) by -η/m once, rather than both gradients
                # (n_out x n_in) after: the products then deliver the step itself.
                D[l] *= step
                np.dot(D[l].T, A[l - 1], out=grads_w[l - 1])
                w += grads_w[l - 1]
                np.sum(D[l], axis=0, out=grads_b[l - 1])
                bias_rows[l - 1] += grads_b[l - 1]
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
# Self-check of the references
# ---------------------------------------------------------------------------

def _max_diff(ws1, bs1, ws2, bs2):
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
               for a, b in zip(list(ws1) + list(bs1), list(ws2) + list(bs2)))


def check_references(sizes=(784, 30, 10), mini_batch_size=10, eta=3.0, dtype=np.float64,
                     with_torch=False, seed=0):
    """Take one mini-batch step from the same weights with cbp, each reference and the oracle.

    The oracle is :func:`cbp.reference.update_mini_batch` (one example at a
    time, in ``dtype``).  Returns ``{implementation: largest |difference|
    from the oracle in any weight or bias}`` for ``cbp``, ``numpy_per_example``,
    ``network_py``, ``numpy_matmul`` (and ``torch``, ``torch_bp``, ``jax`` when
    asked and installed), plus ``cbp_feedforward`` and ``numpy_feedforward``
    (outputs on the mini-batch before the step, against
    :func:`cbp.reference.feedforward`); in float64 each should be about 1e-15.
    ``step_size`` is the largest change the step made to any parameter, for
    scale.
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
    # The oracle: a^L of each example, and the step, by the notes' equations.
    # Imported here: a worker timing an older commit's cbp (run.py --against)
    # imports this module too, and cbp.reference is newer than some of them.
    from cbp import reference
    a_ref = np.array([reference.feedforward(w0, b0, x).ravel() for x in X])
    ws, bs = reference.update_mini_batch(w0, b0, list(zip(X, Y)), eta)
    out = {"cbp_feedforward": float(np.max(np.abs(net.feedforward(X) - a_ref))),
           "numpy_feedforward": float(np.max(np.abs(numpy_feedforward(w0, b0, X) - a_ref)))}
    cbp.SGD(eta, mini_batch_size=m, shuffle=False).run(net, (X, Y), epochs=1)
    out["cbp"] = _max_diff(ws, bs, net.weights, net.biases)
    # The step itself, so a reader can see the check is not vacuous.
    out["step_size"] = _max_diff(ws, bs, w0, b0)
    for name, fn in (("numpy_per_example", numpy_per_example_epoch),
                     ("network_py", network_py_epoch),
                     ("numpy_matmul", numpy_matmul_epoch)):
        w1, b1 = [w.copy() for w in w0], [b.copy() for b in b0]
        fn(w1, b1, X, Y, eta, m)
        out[name] = _max_diff(ws, bs, w1, b1)
    if with_torch:
        from peers import jax_trainer, torch_backprop_trainer, torch_trainer
        for peer, make in (("torch", torch_trainer), ("torch_bp", torch_backprop_trainer),
                           ("jax", jax_trainer)):
            epoch = make(w0, b0, X, Y, eta, m)
            if epoch is not None:
                epoch(order=np.arange(m))
                out[peer] = _max_diff(ws, bs, *epoch.parameters())
    return out
