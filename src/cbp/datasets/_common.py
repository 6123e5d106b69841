"""What the readers of :mod:`cbp.datasets` share: MNIST's shape, argument checks, opening a file."""

import contextlib
import gzip
import numbers
import os
import zlib
from pathlib import Path

import numpy as np

from .. import _files

_GZIP_MAGIC = b"\x1f\x8b"
# What a damaged gzip stream raises while it is read.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)

_ROWS = _COLS = 28
_N_PIXELS = _ROWS * _COLS
_N_CLASSES = 10


# --------------------------------------------------------------------------
# argument checks


def _as_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a text path, got {type(text).__name__}")
    return Path(text).expanduser()


def _check_choice(value, name, choices):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def _check_n_classes(n_classes):
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, numbers.Integral):
        raise TypeError(f"n_classes must be an int, got {type(n_classes).__name__}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    return int(n_classes)


def _as_labels(y, n_classes, name):
    """Return `y` as an int64 vector after checking it holds labels 0..n_classes-1."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        # Labels read from text files often come as floats; accept them only
        # when nothing would be lost by converting to int.
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer labels; it has non-integer values")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    if arr.size:
        # Compare before the cast: a huge uint64 or float would wrap around.
        low, high = arr.min(), arr.max()
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} has label {bad}, outside the range 0..{n_classes - 1} (n_classes={n_classes})"
            )
    return arr.astype(np.int64)


# --------------------------------------------------------------------------
# files and memory


@contextlib.contextmanager
def _open_maybe_gzip(path):
    """``path`` open for reading, decompressed if it is gzipped (regular files only)."""
    with _files.open_regular(path) as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if is_gzip:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        else:
            yield raw


@contextlib.contextmanager
def _memory_guard(path, max_bytes):
    """Turn MemoryError into ValueError: sizes are checked against max_bytes
    first, so only a limit above the memory actually free gets here."""
    try:
        yield
    except MemoryError:
        raise ValueError(f"{path}: not enough memory to read it within max_bytes={max_bytes}; "
                         "a smaller max_bytes refuses such files before reading them") from None


def _scale(images):
    """Flatten uint8 images to float64 rows in [0, 1]."""
    # Dividing in place saves a second (n, 784) float64 temporary.
    X = images.reshape(images.shape[0], _N_PIXELS).astype(np.float64)
    X /= 255.0
    return X
