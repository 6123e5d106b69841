"""Training and test data in either of the two accepted forms, as arrays.

* network.py's form: a list (or any iterable, e.g. a ``zip``) of ``(x, y)``
  tuples, x a column (n_in, 1) or 1-D vector, y a target column/vector or an
  integer class label;
* the array form: a pair ``(X, Y)``, rows are examples; Y holds targets
  (n, n_out) or integer class labels (n,).

What y holds is decided here, once, the same way for training and test data:

* class labels, for n_out >= 2: integers (n,) or (n, 1) in 0..n_out-1, or
  whole-number floats (n,), which cannot be targets.  Training fits their
  one-hot rows; the network's answer is the argmax.
* targets: rows (n, n_out), or (n,) for one output, fitted as given.  They
  have classes, and accuracy is measured besides the cost, only when every row
  is a class indicator: one-hot, or for one output 0 or 1 (a label 0/1 is its
  own target), the answer being 1 when a >= 0.5.  Other targets (regression)
  have a cost only.

Everything comes out C-contiguous in the network's dtype, checked finite.
"""
import itertools
import random
import threading
import weakref
from typing import NamedTuple

import numpy as np

from . import _checks, _core


def is_pair(data):
    """Whether ``data`` is the array form, a pair (X, Y), rather than a list of (x, y) tuples."""
    # A network.py list holds tuples; the array form holds two arrays.
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and not isinstance(data[0], (tuple, list))
            and np.ndim(data[0]) == 2 and not _looks_like_example(data))


def _looks_like_example(data):
    # A lone (x, y) example passed where a list of them was expected.
    x = np.asarray(data[0]) if not isinstance(data[0], (str, bytes)) else None
    return x is not None and x.ndim == 2 and x.shape[1] == 1 and np.ndim(data[1]) == 0


def _not_a_pair(data, name, n_in):
    # Two things that are not (x, y) tuples: most likely a pair (X, Y) whose X
    # has the wrong shape, or one example; say which and what was expected.
    x = data[0]
    if np.ndim(data[1]) == 0 and (x.ndim == 1 or _looks_like_example(data)):
        return TypeError(f"{name} looks like a single example (x, y); pass a list of examples "
                         "[(x, y), ...] or a pair of arrays (X, Y), one example per row")
    hint = (": flatten each example first, e.g. X.reshape(len(X), -1)" if x.ndim >= 3
            else "")
    return ValueError(f"{name}[0] (X) must have shape (n, {n_in}), one example per row; "
                      f"got {x.shape}{hint}")


def _examples(data, name, n_in):
    if isinstance(data, (str, bytes, dict)) or data is None:
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair of arrays (X, Y); "
                        f"got {type(data).__name__}")
    if isinstance(data, np.ndarray):
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair (X, Y), "
                        f"not a single array (of shape {data.shape})")
    if (isinstance(data, (tuple, list)) and len(data) == 2
            and isinstance(data[0], np.ndarray)):
        raise _not_a_pair(data, name, n_in)
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
    first = vectors[0] if vectors else None
    if type(first) is np.ndarray and first.shape in ((width, 1), (width,)):
        # The book's lists: real arrays of one shape.  Each is copied into
        # its row with a type and shape test only, then one vectorised
        # finite check (measured faster than np.stack or np.concatenate over
        # a list of 50,000 columns); anything odd (another shape or dtype,
        # NaN, overflow) goes the checked way below for its message.
        shape = first.shape
        rows = out.reshape((len(vectors),) + shape)
        with np.errstate(over="ignore", invalid="ignore"):
            for k, v in enumerate(vectors):
                if type(v) is not np.ndarray or v.shape != shape or v.dtype.kind not in "biuf":
                    break
                rows[k] = v
            else:
                if _core.all_finite(out.reshape(-1)):
                    return out
    for k, v in enumerate(vectors):
        out[k] = _checks.vector(v, f"{name}[{k}]", width, dtype)
    return out


# The types of the labels in network.py's test lists (mnist_loader's are
# NumPy int64): a type test per item instead of np.ndim (a tenth of the time).
_SCALAR_TYPES = frozenset([int, float, bool, np.int64, np.int32, np.int16, np.int8, np.uint8,
                           np.uint16, np.uint32, np.uint64, np.float64, np.float32, np.bool_])


def _all_scalars(ys):
    return (all(type(y) in _SCALAR_TYPES for y in ys)
            or all(np.ndim(y) == 0 for y in ys))


def _label_shaped(arr, n_out):
    # With several outputs, integers (n,) or (n, 1) are class labels, and so
    # are floats (n,), which cannot be targets.  With one output, a label 0
    # or 1 is its own target: y is read as targets, and as classes when every
    # value is 0 or 1 (_indicator_labels).
    if n_out == 1:
        return False
    if arr.dtype.kind in "iub":
        return arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)
    return arr.dtype.kind == "f" and arr.ndim == 1


def _indicator_labels(Y):
    # Targets that are exactly class indicators (one-hot rows, or 0/1 for one
    # output) are labels written as targets: their classes, else None.
    if Y.shape[1] == 1:
        column = Y[:, 0]
        return column.astype(np.int64) if ((column == 0) | (column == 1)).all() else None
    if ((Y == 0) | (Y == 1)).all() and (Y.sum(axis=1) == 1).all():
        return np.argmax(Y, axis=1).astype(np.int64)
    return None


def _read_y(y, name, n, n_out, dtype, want_labels):
    """(Y (n, n_out) targets, labels (n,) int64 or None) from y as given."""
    arr = None
    if not isinstance(y, (str, bytes)):
        try:
            arr = np.asarray(y)
        except (ValueError, TypeError):
            arr = None          # ragged or odd: _checks.rows says what is wrong
    if arr is not None and _label_shaped(arr, n_out):
        labels = _checks.labels(arr, name, n_out)
        Y = np.zeros((labels.shape[0], n_out), dtype=dtype)
        Y[np.arange(labels.shape[0]), labels] = 1
    else:
        Y = _checks.rows(y, name, n_out, dtype)
        labels = _indicator_labels(Y) if want_labels else None
    if Y.shape[0] != n:
        raise ValueError(f"{name} must have one row per example: X has {n} rows, "
                         f"{name} has {Y.shape[0]}")
    return Y, labels


def examples(data, n_in, n_out, dtype, name="training_data", want_labels=False, finite_x=True):
    """(X (n, n_in), Y (n, n_out), labels) from either accepted form of data.

    ``Y`` holds the targets training uses; ``labels`` (int64 (n,)) the classes
    accuracy is measured against, or None when y holds targets that are not
    class indicators (always None unless ``want_labels``, when y is not labels).
    """
    if is_pair(data):
        # finite_x=False: X may hold NaN or ±Inf, which the caller refuses
        # as :func:`x_name` names it (a list's rows are always checked).
        X = _checks.rows(data[0], x_name(name), n_in, dtype, finite=finite_x)
        Y, labels = _read_y(data[1], f"{name}[1] (Y)", X.shape[0], n_out, dtype, want_labels)
        return X, Y, labels
    items = _examples(data, name, n_in)
    X = _stack([x for x, _ in items], f"{name} x", n_in, dtype)
    ys = [y for _, y in items]
    if ys and _all_scalars(ys):
        Y, labels = _read_y(np.asarray(ys), f"{name} y", len(ys), n_out, dtype, want_labels)
    else:
        Y = _stack(ys, f"{name} y", n_out, dtype)
        labels = _indicator_labels(Y) if want_labels else None
    return X, Y, labels


def x_name(name="training_data"):
    """How messages name X of the pair ``name`` = (X, Y)."""
    return f"{name}[0] (X)"


def training_arrays(data, n_in, n_out, dtype, name="training_data", finite_x=True):
    """(X (n, n_in), Y (n, n_out)) from either accepted form of training data.

    ``finite_x=False``: X from a pair (X, Y) is not checked finite here (the
    caller checks it; see :func:`examples`).
    """
    return examples(data, n_in, n_out, dtype, name, finite_x=finite_x)[:2]


def test_arrays(data, n_in, n_out, dtype, name="test_data"):
    """(X (n, n_in), labels (n,) int64) from data holding class labels.

    Labels may be integers or one-hot rows (0/1 for one output); targets of
    any other kind have no classes to count, and raise ``ValueError``.
    """
    X, _, labels = examples(data, n_in, n_out, dtype, name, want_labels=True)
    if labels is None:
        raise ValueError(f"{name} holds targets, not class labels: counting correct answers "
                         "needs integer labels or one-hot rows (0 or 1 for one output); "
                         "use total_cost for targets")
    return X, labels


def predicted_labels(A):
    """The class each row of outputs A (n, n_out) answers: argmax, or a >= 0.5 for one output."""
    if A.shape[1] == 1:
        return (A[:, 0] >= 0.5).astype(np.int64)
    return np.argmax(A, axis=1)


def as_tuples(data, name):
    """The examples as a list of (x, y) tuples, for overridden methods walked in Python.

    A list is returned itself (training shuffles it in place, as the book's
    code does); a pair (X, Y) becomes columns (n_in, 1) with integer labels
    or target columns (n_out, 1), as network.py's lists hold.
    """
    if is_pair(data):
        X, Y = np.asarray(data[0]), np.asarray(data[1])
        ys = Y.tolist() if Y.ndim == 1 else list(Y.reshape(Y.shape[0], -1, 1))
        return list(zip(X.reshape(X.shape[0], -1, 1), ys))
    if isinstance(data, (str, bytes, dict, np.ndarray)) or data is None:
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair of arrays (X, Y); "
                        f"got {type(data).__name__}")
    try:
        items = data if isinstance(data, list) else list(data)
    except TypeError:
        raise TypeError(f"{name} must be a list of (x, y) tuples or a pair of arrays (X, Y); "
                        f"got {type(data).__name__}") from None
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{name}[{k}] must be an (x, y) tuple; got {type(item).__name__}")
    return items


# Conversions of lists evaluated again and again (the book's test data, every
# epoch), per network, held weakly by the network: {key: _Entry}.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4     # test, validation and training lists of one script
_SAMPLE = 16        # items whose values are compared on each hit


class _Entry(NamedTuple):
    data: list          # the list itself: its id cannot be reused while cached
    items: list         # every x and y, held so that their ids stay unique
    ids: tuple          # id() of each of them, in order
    result: tuple
    targets: tuple      # copies of the sampled examples' y, as converted


def _items(data):
    return list(itertools.chain.from_iterable(data))


def cached(owner, kind, data, convert):
    """``convert()`` for ``data``, reusing the last result for the same list.

    Only lists of (x, y) tuples are cached.  A result is served again while
    ``data`` is the same list object holding the same x and y objects, in
    the same order (one pass of ``id`` over the list: replacing, adding,
    removing or reordering items is seen) and a sample of them still holds
    the values converted, inputs and targets (so an edit in place of every
    array is seen too).
    An edit in place of a few arrays may go unseen: replace the tuple or pass
    a new list.  ``kind`` separates conversions of one list (labels, targets).
    """
    if not isinstance(data, list) or is_pair(data):
        return convert()
    key = (kind, id(data))
    with _CACHE_LOCK:
        entry = _CACHE.get(owner, {}).get(key)
    if (entry is not None and entry.data is data
            and tuple(map(id, itertools.chain.from_iterable(data))) == entry.ids
            and _sample_holds(data, entry.result)
            and _targets_hold(data, entry.targets)):
        return entry.result
    result = convert()
    items = _items(data)
    targets = tuple(np.array(data[k][1], copy=True) for k in _sample(data))
    with _CACHE_LOCK:
        entries = _CACHE.setdefault(owner, {})
        entries.pop(key, None)
        entries[key] = _Entry(data, items, tuple(map(id, items)), result, targets)
        while len(entries) > _CACHE_SIZE:
            del entries[next(iter(entries))]
    return result


def _sample(data):
    """Indices of the examples whose values a cache hit compares."""
    return np.linspace(0, len(data) - 1, min(_SAMPLE, len(data))).astype(int) if data else ()


def _targets_hold(data, targets):
    """True when the sampled examples' y still equal the copies taken at conversion."""
    return all(np.array_equal(np.asarray(data[k][1]), y) and np.shape(data[k][1]) == y.shape
               for k, y in zip(_sample(data), targets))


def _sample_holds(data, result):
    X = result[0]
    if X.shape[0] != len(data):
        return False
    for k in _sample(data):
        x = data[k][0]
        if not (isinstance(x, np.ndarray) and x.size == X.shape[1]
                and np.array_equal(x.reshape(-1).astype(X.dtype), X[k])):
            return False
    return True


def target(y, name, n_out, dtype):
    """One example's target as (n_out,): a vector or column, or a class label.

    A scalar is read as a column of them is (:func:`examples`): for n_out >= 2
    a class label, made one-hot; for one output unit, the target itself.
    """
    if not isinstance(y, (str, bytes)) and np.ndim(y) == 0:
        arr = np.asarray(y)
        if arr.dtype.kind not in "iub":
            arr = _checks.array(y, name, np.float64)    # refuses NaN, None, objects
        return _read_y(arr.reshape(1), name, 1, n_out, dtype, False)[0].reshape(n_out)
    return _checks.vector(y, name, n_out, dtype)


def python_shuffle(n):
    """``random.shuffle(list(range(n)))`` as an intp array, advancing ``random``'s state.

    The swaps are drawn in the core from a copy of the global generator's
    state (the same draws, a tenth of the time); wherever the global
    ``random`` is not CPython's plain Mersenne Twister, it is simply called.
    """
    inst = getattr(random.shuffle, "__self__", None)
    if (type(inst) is random.Random and random.shuffle.__func__ is random.Random.shuffle
            and n <= 1 << 32):
        version, internal, gauss = inst.getstate()
        if version == 3 and len(internal) == 625:
            mt = np.array(internal[:624], dtype=np.uint32)
            positions = np.arange(n, dtype=np.intp)
            index = _core.python_shuffle(mt, internal[624], positions)
            inst.setstate((version, tuple(mt.tolist()) + (index,), gauss))
            return positions
    positions = list(range(n))
    random.shuffle(positions)
    return np.array(positions, dtype=np.intp)


def epoch_orders(rng, training_data, n):
    """Each epoch's order of the rows (see :meth:`cbp.Network.epoch_orders`).

    With a generator ``rng``, its permutations; without one, network.py's
    ``random.shuffle`` of the caller's list (in place), or as if of one.
    The function returned has a ``rewind()`` that puts the generator (and
    the list) back as they were before its first draw: a call that refuses
    its data after the first epoch began leaves them as a refusal before
    training does.
    """
    saved = []

    def save():
        if not saved:
            if rng is not None:
                saved.append(rng.bit_generator.state)
            else:
                saved.append(random.getstate())
                if in_place:
                    saved.append(list(training_data))

    def rewind():
        if saved:
            if rng is not None:
                rng.bit_generator.state = saved[0]
            else:
                random.setstate(saved[0])
                if in_place:
                    training_data[:] = saved[1]
            saved.clear()

    in_place = rng is None and isinstance(training_data, list) and not is_pair(training_data)
    if rng is not None:
        def permutation():
            save()
            return rng.permutation(n).astype(np.intp)
        permutation.rewind = rewind
        return permutation
    rows = np.arange(n, dtype=np.intp)  # rows[k]: the row of X now at position k

    def shuffle():
        nonlocal rows
        save()
        positions = python_shuffle(n)
        if in_place:
            training_data[:] = [training_data[k] for k in positions.tolist()]
        rows = rows[positions]
        return rows
    shuffle.rewind = rewind
    return shuffle
