"""Labels as one-hot rows, arrays as network.py's lists of column vectors."""

from typing import Any, List, Optional, Tuple

import numpy as np

from .._typing import Array, ArrayLike
from ._common import _as_labels, _check_n_classes


def one_hot(y: ArrayLike, n_classes: int = 10) -> Array:
    """Encode integer labels as one-hot rows.

    Parameters
    ----------
    y : array_like
        One-dimensional labels in ``0 .. n_classes - 1``. Integer dtypes are
        accepted, and floats whose values are all whole numbers.
    n_classes : int, default 10
        Number of classes, at least 1.

    Returns
    -------
    numpy.ndarray
        ``float64`` array of shape (len(y), n_classes): row ``i`` is 1 in
        column ``y[i]`` and 0 elsewhere.

    Raises
    ------
    ValueError
        If `y` is not one-dimensional, holds non-integer values, or has a
        label outside ``0 .. n_classes - 1``; or if `n_classes` < 1.
    TypeError
        If `n_classes` is not an integer.

    Examples
    --------
    >>> one_hot([2, 0], n_classes=3)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    n_classes = _check_n_classes(n_classes)
    labels = _as_labels(y, n_classes, "y")
    out = np.zeros((labels.shape[0], n_classes))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def to_network_py(X: ArrayLike, y: ArrayLike, one_hot_labels: bool = True,
                  n_classes: Optional[int] = None) -> List[Tuple[Array, Any]]:
    """Convert arrays to the list-of-pairs format of network.py.

    Parameters
    ----------
    X : array_like
        Images, shape (n, d), one per row (d = 784 for MNIST).
    y : array_like
        Class labels 0..n_classes-1, shape (n,).
    one_hot_labels : bool, default True
        True gives network.py's ``training_data`` format, with each label a
        (n_classes, 1) one-hot column; False gives its ``test_data`` format,
        with each label a Python int.
    n_classes : int, optional
        Length of the one-hot columns. Default: ``max(y) + 1`` (10 for
        MNIST digits), as ``keras.utils.to_categorical`` infers it; pass it
        when a subset may lack the highest class.

    Returns
    -------
    list of tuple
        ``n`` pairs ``(x, label)`` where ``x`` is a ``float64`` column of
        shape (d, 1). The columns are views into one copy of `X`, so
        changing `X` afterwards does not affect them.

    Raises
    ------
    ValueError
        If `X` is not two-dimensional or not numeric, if `y` does not hold
        one label 0..n_classes-1 per row of `X`.
    TypeError
        If `one_hot_labels` is not a bool or `n_classes` not an integer.

    Examples
    --------
    >>> data = to_network_py(np.zeros((2, 784)), [3, 1])
    >>> data[0][0].shape, data[0][1].shape
    ((784, 1), (10, 1))
    >>> to_network_py(np.zeros((2, 784)), [3, 1], one_hot_labels=False)[1][1]
    1
    >>> to_network_py(np.zeros((2, 4)), [2, 0])[0][1].shape
    (3, 1)
    """
    if not isinstance(one_hot_labels, (bool, np.bool_)):
        raise TypeError(f"one_hot_labels must be a bool, got {type(one_hot_labels).__name__}")
    try:
        X = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric array: {exc}") from exc
    if X.ndim != 2:
        raise ValueError(f"X must be two-dimensional (n, d), got shape {X.shape}")
    if n_classes is None:
        # Any non-negative whole number is a label here; the count follows.
        labels = _as_labels(y, np.iinfo(np.int64).max, "y")
        n_classes = int(labels.max()) + 1 if labels.size else 1
    else:
        n_classes = _check_n_classes(n_classes)
        labels = _as_labels(y, n_classes, "y")
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {labels.shape[0]} labels")
    n, d = X.shape
    columns = X.reshape(n, d, 1)
    if one_hot_labels:
        return list(zip(columns, one_hot(labels, n_classes).reshape(n, n_classes, 1)))
    return list(zip(columns, labels.tolist()))
