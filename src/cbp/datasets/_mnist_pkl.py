"""network.py's ``mnist.pkl.gz``: the book's pickle, parsed by :mod:`._pickle`, never unpickled."""

from typing import Optional, Tuple

import numpy as np

from .. import _files
from .._typing import Array, PathLike
from . import _pickle
from ._common import (_GZIP_ERRORS, _N_CLASSES, _N_PIXELS, _as_labels, _as_path, _check_choice,
                      _memory_guard, _open_maybe_gzip)

_PKL_KINDS = ("train", "validation", "test")


def _read_pickle_parts(path, max_bytes, what):
    """The three (X, y) pairs of network.py's pickle, checked, in their stored dtypes."""
    with _open_maybe_gzip(path) as f:
        try:
            data = _pickle.load(f, max_bytes)
        except _GZIP_ERRORS as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
        except ValueError as exc:
            raise ValueError(f"{path}: {what}: {exc}") from None
    layout = "network.py's layout (training, validation, test), each a pair (X, y)"
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise ValueError(f"{path}: expected {layout}; got a {type(data).__name__}")
    parts = []
    for kind, part in zip(_PKL_KINDS, data):
        if not (isinstance(part, (tuple, list)) and len(part) == 2):
            raise ValueError(f"{path}: expected {layout}; the {kind} part is not a pair")
        X, y = part
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == _N_PIXELS):
            raise ValueError(f"{path}: the {kind} images must be a numeric array of shape (n, {_N_PIXELS})")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{path}: the {kind} labels must be a 1-D array with one label per image ({X.shape[0]})")
        y = _as_labels(y, _N_CLASSES, f"{path}: the {kind} labels")
        # min/max propagate NaN, so this also refuses NaN and infinities,
        # without a temporary the size of X.
        if X.size and not (X.min() >= 0 and X.max() <= 1):
            raise ValueError(f"{path}: the {kind} images have pixel values outside [0, 1]")
        parts.append((X, y))
    return tuple(parts)


def read_mnist_pickle(path: PathLike,
                      max_bytes: Optional[int] = None) -> Tuple[Tuple[Array, Array], ...]:
    """Read network.py's ``mnist.pkl.gz`` as the book's ``load_data()`` returns it.

    The file is parsed, never unpickled: see Notes.

    Parameters
    ----------
    path : str or os.PathLike
        The book's ``mnist.pkl.gz``, or the same pickle re-saved by Python 3
        (protocols 2 to 5), gzipped or not (recognised from the content).
    max_bytes : int, optional
        Most bytes the file may decompress to, counting what the parser
        makes of them (a text decoded or encoded, a copy, the float32
        images of another dtype); a length it declares beyond that is
        refused before being read. Default :data:`DEFAULT_MAX_BYTES`
        (1 GiB); the book's file decompresses to about 220 MB.

    Returns
    -------
    training_data, validation_data, test_data : tuple of (numpy.ndarray, numpy.ndarray)
        Each a pair ``(X, y)``: ``X`` a ``float32`` array of shape (n, 784)
        with values in [0, 1], ``y`` an ``int64`` array of shape (n,) of
        digits 0..9. The book's file has n = 50,000, 10,000, 10,000.

    Raises
    ------
    FileNotFoundError
        Nothing at `path`.
    IsADirectoryError
        `path` is a directory.
    ValueError
        Anything but such a pickle: other opcodes or globals, object
        arrays, other dtypes or shapes, labels outside 0..9, pixels outside
        [0, 1], truncated or corrupt data, data beyond `max_bytes`; also a
        FIFO, device or socket at `path` (not opened for reading).
    TypeError
        `path` or `max_bytes` has the wrong type.

    Notes
    -----
    Unpickling runs whatever the file tells it to, and even a pickle
    restricted to NumPy's own types can corrupt memory through them (a dtype
    given any item size, then indexed). So the opcodes are read by a small
    parser that knows only this structure -- tuples or lists holding NumPy
    arrays in the forms NumPy writes them -- and makes each array itself from
    the bytes it read, with one of a few numeric dtypes. It imports and
    calls nothing the file names, and refuses anything else with a
    ``ValueError`` giving the opcode and its offset.

    Examples
    --------
    >>> train, valid, test = read_mnist_pickle("mnist.pkl.gz")  # doctest: +SKIP
    >>> train[0].shape, train[0].dtype, train[1][:5]               # doctest: +SKIP
    ((50000, 784), dtype('float32'), array([5, 0, 4, 1, 9]))
    """
    path = _as_path(path, "path")
    max_bytes = _files.check_max_bytes(max_bytes)
    with _memory_guard(path, max_bytes):
        parts = _read_pickle_parts(path, max_bytes, "not network.py's mnist.pkl.gz")
        # The float32 copies of images stored in another dtype count against
        # the limit too (a small file of uint8 zeros would take 4x its bytes).
        held = sum(a.nbytes for part in parts for a in part)
        extra = sum(X.size * 4 for X, _ in parts if X.dtype != np.float32)
        if held + extra > max_bytes:
            raise ValueError(
                f"{path}: the images would take {extra} bytes as float32, on top of the "
                f"{held} bytes read, more than the limit of {max_bytes} bytes (max_bytes)")
        return tuple((X.astype(np.float32, copy=False), y) for X, y in parts)


def _load_pickle(path, kind, max_bytes):
    kind = "train" if kind is None else _check_choice(kind, "kind", _PKL_KINDS)
    with _memory_guard(path, max_bytes):
        parts = _read_pickle_parts(path, max_bytes,
                                   "neither an MNIST IDX images file nor network.py's mnist.pkl.gz")
        X, y = parts[_PKL_KINDS.index(kind)]
        held = sum(a.nbytes for part in parts for a in part)
        if held + X.size * 8 > max_bytes:
            raise ValueError(
                f"{path}: the {kind} images would take {X.size * 8} bytes as float64, on top of the "
                f"{held} bytes read, more than the limit of {max_bytes} bytes (max_bytes)")
        return X.astype(np.float64), y
