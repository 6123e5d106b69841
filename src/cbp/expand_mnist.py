"""The book's expanded MNIST training set (chapter 6's ``expand_mnist.py``).

Each of the 50,000 training images of ``mnist.pkl.gz`` is kept and shifted
by one pixel down, up, right and left (the row or column that enters is
black), which gives 250,000 training images; they are shuffled and saved,
with the validation and test sets unchanged, in the book's own format::

    python -m cbp.expand_mnist                  # ../data/mnist.pkl.gz -> ../data/mnist_expanded.pkl.gz
    python -m cbp.expand_mnist -i mnist.pkl.gz -o mnist_expanded.pkl.gz --seed 0

or from Python, ``cbp.expand_mnist.expand_mnist("mnist.pkl.gz",
"mnist_expanded.pkl.gz")``. ``cbp.network3.load_data_shared`` and
:func:`cbp.datasets.read_mnist_pickle` read the result, and so would the
book's Python 2 ``network3.py``.

What differs from the original, and why:

- The input is parsed by :func:`cbp.datasets.read_mnist_pickle`, never
  unpickled, so a malicious file is refused instead of run.
- Memory: the original holds 250,000 (image, label) pairs in Python lists
  and pickles them (several GB). Here the shuffled order is drawn first
  (a list of 250,000 indices), then the output is made and written in
  chunks of rows, so only the input and one chunk are in memory.
- Saving is atomic: the file is written beside the target under a
  temporary name, flushed, then renamed, so an interrupted run leaves no
  half-written ``mnist_expanded.pkl.gz`` that the next run would take as
  done.
- The images are stored as one float32 array of shape (250000, 784) with
  an int64 label array, as in the book's ``mnist.pkl.gz`` (the original
  pickled Python lists of per-image arrays, which the book's
  ``load_data_shared`` turned into the same arrays).
- The shuffle is Python's ``random.shuffle`` as in the original, on
  the indices of the original's list of pairs. Under Python 3 this is the
  permutation the original, run by Python 3, gives after the same
  ``random.seed(s)``; Python 2's ``random.shuffle`` drew differently, so the
  book's own file is one of the other orders.
"""
import argparse
import gzip
import numbers
import os
import random
import struct
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import _files, datasets
from ._typing import PathLike

__all__ = ["DEFAULT_INPUT", "DEFAULT_OUTPUT", "SHIFTS", "expand_mnist", "main", "shift_rows"]

#: The original's paths, relative to the current directory (the book's ``src/``).
DEFAULT_INPUT = Path("..") / "data" / "mnist.pkl.gz"
DEFAULT_OUTPUT = Path("..") / "data" / "mnist_expanded.pkl.gz"

#: The five images each training image gives, in the original's order:
#: itself, then shifted one pixel down, up, right and left.
SHIFTS = ("none", "down", "up", "right", "left")

_SIDE = 28
_N_PIXELS = _SIDE * _SIDE
# Output rows made and written per step: 10,000 float32 rows are 31 MB.
_CHUNK_ROWS = 10_000
# A Python 2 str (the pickle's BINSTRING) has a signed 32-bit length.
_MAX_STRING = 2**31 - 1


# --------------------------------------------------------------------------
# the shifts


def shift_rows(images, kinds):
    """Each image shifted by one pixel as ``SHIFTS[kinds[i]]`` says.

    The row or column that enters is zero, the one that leaves is dropped:
    what ``np.roll`` by one pixel followed by zeroing the wrapped line gives.

    Parameters
    ----------
    images : numpy.ndarray
        Shape (n, 784): 28x28 images, one per row.
    kinds : numpy.ndarray
        Shape (n,): for each image an index into :data:`SHIFTS` (0 keeps
        it, 1 down, 2 up, 3 right, 4 left).

    Returns
    -------
    numpy.ndarray
        The shifted images, shape (n, 784), dtype of `images`.
    """
    src = images.reshape(-1, _SIDE, _SIDE)
    out = np.zeros_like(src)
    for k, name in enumerate(SHIFTS):
        rows = np.flatnonzero(kinds == k)
        if rows.size == 0:
            continue
        s = src[rows]
        if name == "none":
            out[rows] = s
        elif name == "down":      # pixel (r, c) moves to (r + 1, c)
            out[rows, 1:, :] = s[:, :-1, :]
        elif name == "up":        # (r, c) -> (r - 1, c)
            out[rows, :-1, :] = s[:, 1:, :]
        elif name == "right":     # (r, c) -> (r, c + 1)
            out[rows, :, 1:] = s[:, :, :-1]
        else:                     # left: (r, c) -> (r, c - 1)
            out[rows, :, :-1] = s[:, :, 1:]
    return out.reshape(-1, _N_PIXELS)


# --------------------------------------------------------------------------
# the book's pickle format, written as opcodes
#
# network.py's mnist.pkl.gz was written by Python 2's cPickle (protocol 2)
# with NumPy 1: each array is numpy.core.multiarray._reconstruct(ndarray,
# (0,), 'b') followed by its state (1, shape, dtype, False, data), the data a
# Python 2 str. Writing the same opcodes (rather than pickle.dump, which
# would copy each array into one bytes object first) lets the data go to the
# file in chunks, and keeps the file readable by Python 2 as the book's was.

def _int(value):
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes(8, "little", signed=True)
    return b"\x8a\x08" + raw


def _str_header(n):
    """Opcode and length of a Python 2 str of ``n`` bytes (its data follows)."""
    if n < 256:
        return b"U" + bytes([n])
    return b"T" + struct.pack("<i", n)


def _short_str(text):
    data = text.encode("latin-1")
    return _str_header(len(data)) + data


def _dtype(dtype):
    # dtype(code, False, True) then its state of version 3, as NumPy 1 wrote it.
    return (b"cnumpy\ndtype\n" + _short_str(dtype.str[1:]) + b"K\x00K\x01\x87R"
            + b"(K\x03" + _short_str(dtype.str[0]) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")


def _array_head(shape, dtype):
    """Opcodes of an array up to its data; the data and ``_ARRAY_TAIL`` follow."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > _MAX_STRING:
        raise ValueError(f"an array of {nbytes} bytes does not fit in the book's pickle format "
                         f"(a Python 2 string holds at most {_MAX_STRING} bytes)")
    dims = b"".join(_int(d) for d in shape)
    shape_ops = {1: dims + b"\x85", 2: dims + b"\x86", 3: dims + b"\x87"}.get(len(shape), b"(" + dims + b"t")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + b"K\x00\x85" + _short_str("b")
            + b"\x87R" + b"(K\x01" + shape_ops + _dtype(dtype) + b"\x89" + _str_header(nbytes))


_ARRAY_TAIL = b"tb"  # close the state tuple, BUILD


def _write_bytes(f, array):
    f.write(memoryview(np.ascontiguousarray(array)).cast("B"))


def _write_array(f, array):
    f.write(_array_head(array.shape, array.dtype))
    for start in range(0, array.shape[0], _CHUNK_ROWS):
        _write_bytes(f, array[start:start + _CHUNK_ROWS])
    f.write(_ARRAY_TAIL)


# --------------------------------------------------------------------------
# the expansion


def _order(n, seed):
    """The original's shuffle of its list of 5 n pairs, as indices 5 i + shift."""
    order = list(range(len(SHIFTS) * n))
    if seed is None:
        random.shuffle(order)       # the global generator, as the original
    else:
        random.Random(seed).shuffle(order)
    return np.array(order, dtype=np.int64)


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return int(seed)


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_compresslevel(level):
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, numbers.Integral):
        raise TypeError(f"compresslevel must be an int 0..9, got {type(level).__name__}")
    if not 0 <= level <= 9:
        raise ValueError(f"compresslevel must be in 0..9 (gzip's levels), got {level}")
    return int(level)


def _as_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a text path, got {type(text).__name__}")
    return Path(text).expanduser()


def expand_mnist(input_path: PathLike = DEFAULT_INPUT, output_path: PathLike = DEFAULT_OUTPUT, *,
                 seed: Optional[int] = None, overwrite: bool = False, compresslevel: int = 6,
                 max_bytes: Optional[int] = None, verbose: bool = False) -> Path:
    """Write the book's expanded training set: every image and its four one-pixel shifts.

    Parameters
    ----------
    input_path : str or os.PathLike
        The book's ``mnist.pkl.gz`` (or any file
        :func:`cbp.datasets.read_mnist_pickle` reads): (training,
        validation, test), each a pair (images (n, 784), labels (n,)).
        Default ``../data/mnist.pkl.gz``, as the original.
    output_path : str or os.PathLike
        Where to write; default ``../data/mnist_expanded.pkl.gz``.
    seed : int, optional
        Seed of the shuffle. None (default) shuffles with Python's global
        ``random`` generator, as the original: ``random.seed(s)`` before
        the call fixes the order. An int uses ``random.Random(seed)`` and
        leaves the global generator alone.
    overwrite : bool
        Replace an existing file at `output_path`. Default False: the
        original exits when the expanded set already exists, and so does
        this (with FileExistsError).
    compresslevel : int
        gzip level 0..9 (default 6: the file is a little larger than with
        9, written several times faster).
    max_bytes : int, optional
        Most bytes the input may decompress to, as for
        :func:`cbp.datasets.read_mnist_pickle` (default 1 GiB).
    verbose : bool
        Print progress, as the original does.

    Returns
    -------
    pathlib.Path
        `output_path`. The file holds ``((X, y), validation_data,
        test_data)``: ``X`` float32 of shape (5 n, 784), ``y`` int64 of
        shape (5 n,) for the n input training images, shuffled; validation
        and test data as read. With the book's file, 250,000 images, ~870 MB
        once decompressed.

    Raises
    ------
    FileExistsError
        `output_path` exists and `overwrite` is False.
    FileNotFoundError
        No `input_path`, or the directory of `output_path` does not exist.
    ValueError
        The input is not the book's format (see
        :func:`cbp.datasets.read_mnist_pickle`), has no training image, or
        has so many that the expanded images pass the format's 2 GiB limit
        for one array (about 136,900 input images); `output_path` is a
        directory, FIFO or device. Nothing is written then.
    TypeError
        An argument has the wrong type.
    """
    input_path = _as_path(input_path, "input_path")
    output_path = _as_path(output_path, "output_path")
    seed = _check_seed(seed)
    overwrite = _check_flag(overwrite, "overwrite")
    verbose = _check_flag(verbose, "verbose")
    compresslevel = _check_compresslevel(compresslevel)
    if not overwrite and os.path.lexists(output_path):
        raise FileExistsError(f"{output_path}: the expanded training set already exists "
                              "(overwrite=True replaces it)")

    training, validation, test = datasets.read_mnist_pickle(input_path, max_bytes=max_bytes)
    X, y = training
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"{input_path}: the training set has no image to expand")
    n_out = len(SHIFTS) * n
    X_shape, y_shape = (n_out, _N_PIXELS), (n_out,)
    f4, i8 = np.dtype("<f4"), np.dtype("<i8")
    heads = (_array_head(X_shape, f4), _array_head(y_shape, i8))  # refuses too large a set now
    X = np.ascontiguousarray(X, dtype=f4)
    y = np.ascontiguousarray(y, dtype=i8)
    order = _order(n, seed)

    def write(raw):
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel,
                           mtime=0) as f:
            f.write(b"\x80\x02")
            f.write(heads[0])
            for start in range(0, n_out, _CHUNK_ROWS):
                idx = order[start:start + _CHUNK_ROWS]
                _write_bytes(f, shift_rows(X[idx // len(SHIFTS)], idx % len(SHIFTS)))
                done = start + idx.size
                if verbose and (done % 50_000 < _CHUNK_ROWS or done == n_out):
                    print(f"Expanded and wrote {done:,} of {n_out:,} images", flush=True)
            f.write(_ARRAY_TAIL)
            f.write(heads[1])
            _write_bytes(f, y[order // len(SHIFTS)])
            f.write(_ARRAY_TAIL + b"\x86")
            for part in (validation, test):
                for array in part:
                    _write_array(f, np.ascontiguousarray(array, dtype=f4 if array.ndim == 2 else i8))
                f.write(b"\x86")
            f.write(b"\x87.")

    if verbose:
        print(f"Expanding the MNIST training set: {n:,} images from {input_path} "
              f"-> {n_out:,} in {output_path}", flush=True)
    _files.write_atomic(output_path, write, "the expanded training set")
    return output_path


# --------------------------------------------------------------------------
# python -m cbp.expand_mnist


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m cbp.expand_mnist``: the original script, with options.

    Parameters
    ----------
    argv : sequence of str, optional
        The command-line arguments (default: ``sys.argv[1:]``); ``--help``
        lists them.

    Returns
    -------
    int
        The exit status: 0 when the file was written or already exists, 1
        on an error (printed to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m cbp.expand_mnist",
        description="Write the book's expanded MNIST training set: each training image of "
                    "mnist.pkl.gz and its shifts by one pixel down, up, right and left "
                    "(250,000 images from the book's 50,000), shuffled, with the validation "
                    "and test sets unchanged, in the book's format.")
    parser.add_argument("-i", "--input", default=str(DEFAULT_INPUT), metavar="PATH",
                        help="the book's mnist.pkl.gz (default: %(default)s)")
    parser.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), metavar="PATH",
                        help="the file to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the shuffle (default: unseeded, as the original)")
    parser.add_argument("--force", action="store_true",
                        help="replace the output file if it exists (the original exits instead)")
    parser.add_argument("--compresslevel", type=int, default=6, choices=range(10), metavar="0..9",
                        help="gzip compression level (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    if not args.force and os.path.lexists(args.output):
        if not args.quiet:
            print(f"The expanded training set already exists ({args.output}).  Exiting.  "
                  "(--force replaces it.)")
        return 0
    try:
        expand_mnist(args.input, args.output, seed=args.seed, overwrite=args.force,
                     compresslevel=args.compresslevel, verbose=not args.quiet)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"Saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
