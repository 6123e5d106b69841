"""Argument checks at the Python boundary.

The core runs without bounds checks, so everything it is handed is checked
here: type, shape, dtype, finiteness.  Every failure is a ``TypeError`` (wrong
kind of thing) or ``ValueError`` (right kind, wrong value) whose message names
the argument and says what was expected.
"""
import math
import os
import numbers
import weakref

import numpy as np

from cbp import _core

DTYPES = {"float64": np.float64, "float32": np.float32}


def dtype(value):
    """np.float64 or np.float32 from a name, a NumPy dtype or a type."""
    try:
        dt = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be 'float64' or 'float32'; got {value!r}") from None
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {value!r}")
    return dt.type


def integer(value, name, minimum=None):
    """A Python int from an int-like (not bool, not float)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return value


def real(value, name, minimum=None, positive=False, below=None):
    """A finite Python float from a real number (not bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if below is not None and not value < below:
        raise ValueError(f"{name} must be < {below}; got {value}")
    return value


def array(value, name, dtype, finite=True):
    """``value`` as a NumPy array of real numbers cast to ``dtype`` (any layout in).

    Rejects strings, objects, complex numbers and ragged nesting with
    ``TypeError``, NaN and ±Inf with ``ValueError``.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers; got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        # An overflowing cast (1e300 into float32) becomes inf, refused below.
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.aligned:
        # C-contiguous but not on an element boundary (np.frombuffer at an
        # odd offset, a block Dask deserialised): the kernels' loads need
        # aligned elements, so they get an aligned copy.
        out = out.copy()
    if finite and out.size and not _finite(out):
        raise not_finite(name, arr, dtype)
    return out


def not_finite(name, given, dtype):
    """The ValueError refusing ``given`` (as the caller passed it), which holds NaN or ±Inf.

    Or overflowed into ±Inf when cast to ``dtype``, which the message then says.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.isfinite(np.asarray(given)).all()
    return ValueError(f"{name} must be finite; it holds NaN or infinite values"
                      + (" (after conversion to " + np.dtype(dtype).name + ")" if cast else ""))


# The ranges of the last few float arrays array() checked, by weak reference:
# SGD's input-scale warning reads X's range from the same pass that checked
# it was finite (one pass over X, not three).
_RANGES: list = []
_KEEP = 4


def _finite(arr):
    if arr.dtype not in (np.float64, np.float32):
        return bool(np.isfinite(arr).all())
    ok, lo, hi = _core.scan(arr.reshape(-1))
    if ok:
        _RANGES[:] = [(weakref.ref(arr), lo, hi)] + [
            r for r in _RANGES[:_KEEP - 1] if r[0]() is not None and r[0]() is not arr]
    return ok


def value_range(arr):
    """(smallest, largest) of a finite array; 0, 0 when empty.

    Reuses :func:`array`'s pass when ``arr`` is an array it returned; one C
    pass otherwise.
    """
    if not arr.size:
        return 0.0, 0.0
    for ref, lo, hi in _RANGES:
        if ref() is arr:
            return lo, hi
    if arr.dtype in (np.float64, np.float32) and arr.flags.c_contiguous:
        return _core.scan(arr.reshape(-1))[1:]
    return float(arr.min()), float(arr.max())


def rows(value, name, width, dtype, finite=True):
    """A 2-D C-contiguous (n, width) array: one example per row.

    ``finite=False`` leaves the finite check to the caller (training checks
    each mini-batch's rows in the core, see :meth:`cbp.optimizer.Optimizer.train_epoch`).
    """
    arr = array(value, name, dtype, finite)
    if arr.ndim == 1 and width == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}); got {arr.shape}")
    return arr


def vector(value, name, width, dtype):
    """One example as a (width,) array, from a column (width, 1) or a 1-D vector."""
    arr = array(value, name, dtype)
    if arr.shape == (width, 1) or arr.shape == (width,):
        return arr.reshape(width)
    raise ValueError(f"{name} must have shape ({width}, 1) or ({width},); got {arr.shape}")


def labels(value, name, n_classes):
    """Integer class labels 0 <= y < n_classes as an int64 (n,) array."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{name} must be whole-number class labels; got non-integers")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be integer class labels; got dtype {arr.dtype}")
    arr = arr.reshape(-1)
    # Check the range before the cast: a huge float or uint64 would wrap around.
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{name} must be class labels in [0, {n_classes}); "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.int64)


def finite_mean(values):
    """The mean of float64 costs, without overflow in the sum when each one is finite.

    Costs of +Inf and −Inf (targets outside [0, 1]) give NaN, without a warning.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(values.mean())
        if np.isinf(mean) and np.isfinite(values).all():
            mean = float(np.sum(values / values.shape[0]))
    return mean


def no_nan(values, what):
    """``values``, or a ValueError when finite input overflowed into NaN (Inf − Inf)."""
    if np.isnan(values).any():
        raise ValueError(f"{what} came out NaN from finite input: an intermediate value "
                         "overflowed (Inf - Inf); the weights or inputs are too large")
    return values


def rows_of(value, name, width, dtype):
    """``value`` if it is C-contiguous rows (n, width) of ``dtype``, else TypeError/ValueError.

    For the network's row interface (``forward_rows`` and the like), which
    takes checked arrays as they are and must not hand the core anything else.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array; got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have the network's dtype {np.dtype(dtype).name}; "
                        f"got {value.dtype.name}")
    if value.ndim != 2 or value.shape[1] != width:
        raise ValueError(f"{name} must have shape (n, {width}); got {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray)")
    return value


# Widest layer: a width past 2**31 - 1 cannot be a real layer (and its
# product with another would overflow the core's indices).
MAX_WIDTH = 2**31 - 1


def layer_sizes(sizes):
    """``sizes`` as a list of ints, checked: 2 to MAX_LAYERS + 1 widths of 1 to MAX_WIDTH."""
    if isinstance(sizes, (str, bytes, set, frozenset, dict)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; "
                        f"got {type(sizes).__name__}")
    sizes = [integer(s, f"sizes[{k}]") for k, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two layers (input and output); got {sizes}")
    if len(sizes) > _core.MAX_LAYERS + 1:
        raise ValueError(f"sizes may list at most {_core.MAX_LAYERS + 1} layers; "
                         f"got {len(sizes)}")
    for k, s in enumerate(sizes):
        if not 1 <= s <= MAX_WIDTH:
            raise ValueError(f"sizes[{k}] must be a layer width from 1 to {MAX_WIDTH}; got {s}")
    return sizes


def fits_in_memory(sizes, dtype):
    """Refuse, by name, a network larger than the machine's memory.

    Rather than a MemoryError from deep inside NumPy.
    """
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


def layer(arr, k, shape, which, dtype):
    """Layer k of the weights (``which=0``) or biases (1) as an array of ``shape``, checked.

    A bias may also come as a vector (n,).
    """
    name = ("weights", "biases")[which]
    a = array(arr, f"{name}[{k}]", dtype)
    if which == 1 and a.shape == shape[:1]:
        a = a.reshape(shape)
    if a.shape != shape:
        raise ValueError(f"{name}[{k}] must have shape {shape}; got {a.shape}")
    return a


#: The initialisations a network may draw its weights with.
INITS = ("gaussian", "scaled")
