"""The data of the ``cbp`` command: what ``train`` learns from and holds out, what ``evaluate`` reads."""
import os

import numpy as np


class UsageError(Exception):
    """A bad flag value or unusable input: reported as ``cbp: error: ...``, exit 2."""


def split_held_out(X, y, what):
    """Hold out the last 20% (at least one example) of a single data set."""
    n = X.shape[0]
    if n < 2:
        raise UsageError(f"{what} holds {n} example(s); at least 2 are needed to hold some out")
    cut = n - max(1, n // 5)
    return (X[:cut], y[:cut]), (X[cut:], y[cut:]), f"{what}, last {n - cut} held out"


def training_data(path):
    """((X, y), (X_test, y_test), description) for ``cbp train``."""
    from . import datasets
    if path is None:
        train, test = datasets.load_sample()
        return train, test, "the embedded MNIST sample"
    p = os.path.expanduser(path)
    if os.path.isdir(p):
        kinds = idx_kinds(p)
        if len(kinds) == 2:
            return (datasets.load_mnist(p, kind="train"), datasets.load_mnist(p, kind="t10k"),
                    f"{path} (train / t10k)")
        kind = kinds[0]
        return split_held_out(*datasets.load_mnist(p, kind=kind), f"{path} ({kind} only)")
    X, y = datasets.load_mnist(p)
    try:
        test = datasets.load_mnist(p, kind="test")   # network.py's pickle
    except ValueError:
        return split_held_out(X, y, path)                      # a single IDX file
    return (X, y), test, f"{path} (training / test parts)"


def idx_kinds(directory):
    """The kinds ('train', 't10k') whose IDX images a directory holds; raises if neither."""
    from . import datasets
    kinds = [k for k in ("train", "t10k")
             if any(os.path.exists(os.path.join(directory, f"{k}-images-idx3-ubyte{ext}"))
                    for ext in ("", ".gz"))]
    if not kinds:
        datasets.load_mnist(directory)  # raises, with the names it looked for
    return kinds


def evaluation_data(path):
    """(X, y, description) for ``cbp evaluate``: what ``cbp train --data path`` held out."""
    from . import datasets
    if path is None:
        _, (X, y) = datasets.load_sample()
        return X, y, "the embedded sample's held-out images"
    p = os.path.expanduser(path)
    if os.path.isdir(p):
        kinds = idx_kinds(p)
        if len(kinds) == 2:
            X, y = datasets.load_mnist(p, kind="t10k")
            return X, y, f"{path} (t10k)"
        kind = kinds[0]
        _, (X, y), what = split_held_out(*datasets.load_mnist(p, kind=kind), f"{path} ({kind} only)")
        return X, y, f"{what}: the part cbp train holds out"
    try:
        X, y = datasets.load_mnist(p, kind="test")   # network.py's pickle
        return X, y, f"{path} (test part)"
    except ValueError:
        pass
    _, (X, y), what = split_held_out(*datasets.load_mnist(p), path)    # a single IDX file
    return X, y, f"{what}: the part cbp train holds out"


def check_fit(net, X, y, what):
    n_in, n_out = net.sizes[0], net.sizes[-1]
    if X.shape[1] != n_in:
        raise UsageError(f"{what} has {X.shape[1]} inputs per example but the network's input "
                         f"layer has {n_in} units (--sizes must start with {X.shape[1]})")
    if y.size and int(y.max()) >= n_out:
        raise UsageError(f"{what} has labels up to {int(y.max())} but the network's output "
                         f"layer has {n_out} units (--sizes must end with at least "
                         f"{int(y.max()) + 1})")


def one_hot(y, n_out, dtype):
    Y = np.zeros((y.shape[0], n_out), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y
