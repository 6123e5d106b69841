"""The 5,000 MNIST training images shipped inside the package (``cbp/data``)."""

import importlib.resources
from typing import List, Tuple

import numpy as np

from .._typing import Array
from ._common import _COLS, _N_CLASSES, _ROWS, _scale
from ._convert import to_network_py

_SAMPLE_FILE = "mnist_5k_train.npz"
_SAMPLE_HELD_OUT_PER_DIGIT = 100


def _sample_order(groups):
    """Interleave per-digit index arrays: rank 0 of every digit, then rank 1, ..."""
    ranks = np.concatenate([np.arange(len(g)) for g in groups])
    digits = np.concatenate([np.full(len(g), d) for d, g in enumerate(groups)])
    return np.concatenate(groups)[np.lexsort((digits, ranks))]


def load_sample() -> Tuple[Tuple[Array, Array], Tuple[Array, Array]]:
    """Load the embedded sample of 5,000 MNIST training images, split in two.

    No download is needed: the images ship with the package. They are 500
    images of each digit from the MNIST *training* set, none of which is in
    the official test set.

    Returns
    -------
    (X_train, y_train) : tuple of numpy.ndarray
        4,000 images (400 per digit): ``float64`` of shape (4000, 784) with
        values in [0, 1], and ``int64`` labels of shape (4000,).
    (X_test, y_test) : tuple of numpy.ndarray
        The 1,000 held-out images (100 per digit), same formats.

    Notes
    -----
    The split is fixed, with no randomness: for each digit, its last 100
    images in file order are held out. Both parts are then ordered digit by
    digit in turn (a 0, a 1, ..., a 9, the next 0, ...), so that any prefix
    is nearly balanced across digits; shuffle before training by SGD as
    usual. Every call returns new arrays.

    Examples
    --------
    >>> (X_train, y_train), (X_test, y_test) = load_sample()
    >>> X_train.shape, X_test.shape
    ((4000, 784), (1000, 784))
    >>> y_test[:10].tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    resource = importlib.resources.files("cbp") / "data" / _SAMPLE_FILE
    with resource.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        images = npz["images"]
        labels = npz["labels"]
    n = labels.shape[0]
    groups = [np.flatnonzero(labels == d) for d in range(_N_CLASSES)]
    if images.shape != (n, _ROWS, _COLS) or min(len(g) for g in groups) <= _SAMPLE_HELD_OUT_PER_DIGIT:
        raise RuntimeError(f"the embedded {_SAMPLE_FILE} is damaged: images {images.shape}, labels {labels.shape}")
    train = _sample_order([g[:-_SAMPLE_HELD_OUT_PER_DIGIT] for g in groups])
    test = _sample_order([g[-_SAMPLE_HELD_OUT_PER_DIGIT:] for g in groups])
    X = _scale(images)
    y = labels.astype(np.int64)
    return (X[train], y[train]), (X[test], y[test])


def load_sample_network_py() -> Tuple[List[Tuple[Array, Array]], List[Tuple[Array, int]]]:
    """Load the embedded sample in network.py's formats.

    Returns
    -------
    training_data : list of tuple
        4,000 pairs ``(x, y)``: ``x`` a (784, 1) ``float64`` column in
        [0, 1], ``y`` a (10, 1) one-hot column.
    test_data : list of tuple
        1,000 pairs ``(x, label)`` with ``label`` a Python int.

    See Also
    --------
    load_sample : The same images as arrays, with the split described.
    """
    (X_train, y_train), (X_test, y_test) = load_sample()
    return (to_network_py(X_train, y_train, n_classes=_N_CLASSES),
            to_network_py(X_test, y_test, one_hot_labels=False))
