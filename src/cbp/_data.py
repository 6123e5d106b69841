"""Training and test data in either of the two accepted forms, as arrays.

* network.py's form: a list (or any iterable, e.g. a ``zip``) of ``(x, y)``
  tuples, x a column (n_in, 1) or 1-D vector, y a column/vector target or,
  for test data, an integer label;
* the array form: a pair ``(X, Y)``, rows are examples; Y holds targets
  (n, n_out) or integer labels (n,).

Everything comes out C-contiguous in the network's dtype, checked finite.
"""
import numpy as np

from . import _checks


def _is_pair(data):
    # A network.py list holds tuples; the array form holds two arrays.
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and not isinstance(data[0], (tuple, list))
            and np.ndim(data[0]) == 2 and not _looks_like_example(data))


def _looks_like_example(data):
    # A lone (x, y) example passed where a list of them was expected.
    x = np.asarray(data[0]) if not isinstance(data[0], (str, bytes)) else None
    return x is not None and x.ndim == 2 and x.shape[1] == 1 and np.ndim(data[1]) == 0


def _examples(data, name):
    if isinstance(data, (str, bytes, dict)) or data is None:
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair of arrays (X, Y); "
                        f"got {type(data).__name__}")
    if isinstance(data, np.ndarray):
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair (X, Y), "
                        "not a single array")
    try:
        items = list(data)
    except TypeError:
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair of arrays (X, Y); "
                        f"got {type(data).__name__}") from None
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{name}[{k}] must be an (x, y) tuple; got {type(item).__name__}")
    return items


def _stack(vectors, name, width, dtype):
    out = np.empty((len(vectors), width), dtype=dtype)
    for k, v in enumerate(vectors):
        out[k] = _checks.vector(v, f"{name}[{k}]", width, dtype)
    return out


def _targets(Y, name, n, n_out, dtype):
    arr = np.asarray(Y) if not isinstance(Y, (str, bytes)) else Y
    if isinstance(arr, np.ndarray) and arr.ndim == 1 and n_out > 1:
        labels = _checks.labels(arr, name, n_out)
        out = np.zeros((labels.shape[0], n_out), dtype=dtype)
        out[np.arange(labels.shape[0]), labels] = 1
    else:
        out = _checks.rows(Y, name, n_out, dtype)
    if out.shape[0] != n:
        raise ValueError(f"{name} must have one row per example: X has {n} rows, "
                         f"{name} has {out.shape[0]}")
    return out


def training_arrays(data, n_in, n_out, dtype, name="training_data"):
    """(X (n, n_in), Y (n, n_out)) from either accepted form of training data."""
    if _is_pair(data):
        X = _checks.rows(data[0], f"{name}[0] (X)", n_in, dtype)
        Y = _targets(data[1], f"{name}[1] (Y)", X.shape[0], n_out, dtype)
        return X, Y
    items = _examples(data, name)
    X = _stack([x for x, _ in items], f"{name} x", n_in, dtype)
    ys = [y for _, y in items]
    if ys and all(np.ndim(y) == 0 for y in ys) and n_out > 1:
        Y = _targets(np.asarray(ys), f"{name} y", len(ys), n_out, dtype)
    else:
        Y = _stack(ys, f"{name} y", n_out, dtype)
    return X, Y


def test_arrays(data, n_in, n_out, dtype, name="test_data"):
    """(X (n, n_in), labels (n,) int64) from either accepted form of test data.

    Labels may be integers or one-hot/target vectors (their argmax is taken).
    """
    if _is_pair(data):
        X = _checks.rows(data[0], f"{name}[0] (X)", n_in, dtype)
        labels = _labels(data[1], f"{name}[1] (labels)", n_out)
    else:
        items = _examples(data, name)
        X = _stack([x for x, _ in items], f"{name} x", n_in, dtype)
        labels = _labels([y for _, y in items], f"{name} y", n_out)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"{name} must have one label per example: X has {X.shape[0]} rows, "
                         f"labels has {labels.shape[0]}")
    return X, labels


def _labels(y, name, n_out):
    if isinstance(y, list) and y and any(np.ndim(v) > 0 for v in y):
        y = np.stack([_checks.vector(v, f"{name}[{k}]", n_out, np.float64)
                      for k, v in enumerate(y)])
    arr = _checks.array(y, name, np.float64) if np.ndim(y) > 1 else np.asarray(y)
    if arr.ndim == 2:
        if arr.shape[1] != n_out:
            raise ValueError(f"{name} must be labels (n,) or vectors (n, {n_out}); got {arr.shape}")
        return np.argmax(arr, axis=1).astype(np.int64)
    return _checks.labels(arr, name, n_out)
