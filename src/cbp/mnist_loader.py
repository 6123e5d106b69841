"""Drop-in for the book's ``mnist_loader.py``.

``import cbp.mnist_loader as mnist_loader`` replaces ``import mnist_loader``:
``load_data()``, ``load_data_wrapper()`` and ``vectorized_result(j)`` return
the original's structures and dtypes (float32 images in [0, 1], int64
labels; training pairs of (784, 1) columns and (10, 1) one-hot columns;
validation and test pairs of a column and its label).

Where the data comes from, first found first:

1. ``../data/mnist.pkl.gz`` (the book's scripts run from its ``src/``);
2. ``./mnist.pkl.gz`` (as the Python 3 ports expect it);
3. cbp's data directory (:func:`cbp.datasets.default_cache_dir`:
   ``$CBP_DATA``, else ``~/.cache/cbp/mnist``) with
   the official IDX files that :func:`cbp.datasets.download_mnist` fetches:
   the first 50,000 training images for training and the last 10,000 for
   validation, as the book's file splits them, and t10k for test; pixels
   are scaled as in the book's file (grey level / 256);
4. cbp's embedded sample (5,000 training images), with a warning, given
   once, that says what was searched and how to get the full set.

The pickle is parsed by :func:`cbp.datasets.read_mnist_pickle`, never
unpickled: a malicious file is refused, not run.
"""
import sys
import warnings
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np

from . import datasets
from ._typing import Array
from .network2 import vectorized_result

__all__ = ["load_data", "load_data_wrapper", "vectorized_result"]

#: Where the book's pickle is looked for, relative to the current directory.
PICKLE_PATHS = (Path("..") / "data" / "mnist.pkl.gz", Path("mnist.pkl.gz"))
_BOOK_TRAIN = 50_000
_warned = False


def _book_scale(X):
    # The book's file holds grey level / 256 in float32 (255 -> 0.99609375);
    # cbp's readers give grey level / 255 in float64: back to the level, exactly.
    return (np.rint(X * 255.0) / 256.0).astype(np.float32)


def _from_idx(directory):
    """The book's three parts from the IDX files in ``directory``, or None if absent."""
    try:
        X, y = datasets.load_mnist(directory, kind="train")
        X_test, y_test = datasets.load_mnist(directory, kind="t10k")
    except (FileNotFoundError, NotADirectoryError):
        return None
    X = _book_scale(X)
    return ((X[:_BOOK_TRAIN], y[:_BOOK_TRAIN]), (X[_BOOK_TRAIN:], y[_BOOK_TRAIN:]),
            (_book_scale(X_test), y_test))


def _outside_this_file():
    # The stack level of the first caller outside this module (load_data or
    # load_data_wrapper called from the user's script): the warning names it.
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _from_sample(searched):
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "cbp.mnist_loader: MNIST not found (looked for "
            + ", ".join(str(p) for p in searched)
            + "); using cbp's embedded sample instead: 3,000 training, 1,000 validation and "
            "1,000 test images, so accuracies will not be the book's.  For the full set, put "
            "the book's mnist.pkl.gz in ../data/ or the current directory, or run "
            "cbp.datasets.download_mnist() once (the official files, into the directory above)",
            stacklevel=_outside_this_file())
    (X, y), (X_test, y_test) = datasets.load_sample()
    X, X_test = _book_scale(X), _book_scale(X_test)
    return (X[:3000], y[:3000]), (X[3000:], y[3000:]), (X_test, y_test)


def load_data() -> Tuple[Tuple[Array, Array], ...]:
    """The MNIST data as ``(training_data, validation_data, test_data)``.

    Each part is a pair ``(images, labels)``: ``images`` a float32 array of
    shape (n, 784) in [0, 1], ``labels`` an int64 array (n,) of digits; with
    the book's file, n = 50,000, 10,000 and 10,000.  See the module's
    docstring for where the data is looked for.
    """
    for path in PICKLE_PATHS:
        if path.is_file():
            return datasets.read_mnist_pickle(path)
    cache = datasets.default_cache_dir()
    parts = _from_idx(cache)
    if parts is not None:
        return parts
    return _from_sample([*PICKLE_PATHS, cache / "train-images-idx3-ubyte[.gz]",
                         cache / "t10k-images-idx3-ubyte[.gz]"])


def load_data_wrapper() -> Tuple[List[Tuple[Array, Array]], List[Tuple[Array, Any]],
                               List[Tuple[Array, Any]]]:
    """``(training_data, validation_data, test_data)`` in network.py's formats.

    ``training_data``: a list of pairs ``(x, y)``, x a (784, 1) float32
    column, y the (10, 1) one-hot column of its digit.  ``validation_data``
    and ``test_data``: lists of pairs ``(x, digit)``.
    """
    tr_d, va_d, te_d = load_data()
    # Columns as views into each part's array, as np.reshape gives them in
    # the original; one one-hot array viewed as (10, 1) columns.
    training_inputs = list(tr_d[0].reshape(-1, 784, 1))
    training_results = list(np.eye(10)[tr_d[1]].reshape(-1, 10, 1))
    training_data = list(zip(training_inputs, training_results))
    validation_data = list(zip(list(va_d[0].reshape(-1, 784, 1)), va_d[1]))
    test_data = list(zip(list(te_d[0].reshape(-1, 784, 1)), te_d[1]))
    return training_data, validation_data, test_data
