"""MNIST data: file loaders, an embedded sample, and network.py's formats.

The functions return plain NumPy arrays: images as ``float64`` rows of 784
pixels scaled into [0, 1], labels as ``int64`` digits. :func:`to_network_py`
converts them to the lists of column vectors used by Michael Nielsen's
``network.py``.

- :func:`load_sample` needs no download: it reads the 5,000 MNIST training
  images shipped inside the package (see ``cbp/data/README.md`` for their
  origin and licence).
- :func:`load_mnist` reads the official IDX files (gzipped or not) or
  network.py's ``mnist.pkl.gz``.
- :func:`read_mnist_pickle` reads ``mnist.pkl.gz`` as the book's
  ``load_data()`` returns it, parsing the pickle instead of unpickling it.
- :func:`download_mnist` fetches and verifies the official IDX files.

Every file is treated as untrusted: only regular files are opened, and the
memory a file may make the readers use is limited by ``max_bytes``
(default :data:`DEFAULT_MAX_BYTES`, 1 GiB), checked against the sizes headers
announce before anything is read.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, under the
CC BY-SA 3.0 licence.
"""

import contextlib
import errno
import gzip
import hashlib
import http.client
import importlib.resources
import math
import numbers
import os
import struct
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _files, _pickle
from ._files import DEFAULT_MAX_BYTES
from ._typing import Array, ArrayLike, PathLike

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_URL",
    "download_mnist",
    "load_mnist",
    "load_sample",
    "load_sample_network_py",
    "one_hot",
    "read_mnist_pickle",
    "to_network_py",
]

#: Mirror of the official MNIST files used by :func:`download_mnist` (the one
#: torchvision uses; yann.lecun.com itself no longer serves them reliably).
DEFAULT_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# The IDX magic number is 0x00, 0x00, a type code (0x08: unsigned byte) and
# the number of dimensions, so these two also fix the dtype and the rank.
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_IDX_PREFIX = b"\x00\x00"
_GZIP_MAGIC = b"\x1f\x8b"

_ROWS = _COLS = 28
_N_PIXELS = _ROWS * _COLS
_N_CLASSES = 10

_IDX_KINDS = ("train", "t10k")
_PKL_KINDS = ("train", "validation", "test")

_SAMPLE_FILE = "mnist_5k_train.npz"
_SAMPLE_HELD_OUT_PER_DIGIT = 100

# SHA-256 of the *decompressed* content of each file. Hashing the content
# instead of the .gz bytes matters: the gzip header stores a timestamp and
# an optional file name, so equally good copies differ as .gz files. The
# mirror's t10k-images-idx3-ubyte.gz hashes to 8d422c7b...2dbc4e6 and the
# copy in ../shared/data to 16731000...a523d80b, yet both decompress to the
# bytes below. For reference, the mirror's .gz files hash to
# train-images 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609,
# train-labels 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c,
# t10k-images  8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6,
# t10k-labels  f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6.
# The t10k content digests were computed here from the shared copies; the
# train ones are the values published by many independent projects (not
# checked against a download: there was no network access when writing).
_CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Sizes of the mirror's .gz files and of their content. Another copy of
# the same content may be compressed differently (gzip -1 makes the t10k
# images 11% larger than the mirror's), so a download is allowed a quarter
# more than the mirror's file before it is cut off.
_GZ_SIZE = {
    "train-images-idx3-ubyte.gz": 9912422,
    "train-labels-idx1-ubyte.gz": 28881,
    "t10k-images-idx3-ubyte.gz": 1648877,
    "t10k-labels-idx1-ubyte.gz": 4542,
}
_CONTENT_SIZE = {
    "train-images-idx3-ubyte.gz": 16 + 60000 * _N_PIXELS,
    "train-labels-idx1-ubyte.gz": 8 + 60000,
    "t10k-images-idx3-ubyte.gz": 16 + 10000 * _N_PIXELS,
    "t10k-labels-idx1-ubyte.gz": 8 + 10000,
}


def _download_limit(name):
    return _GZ_SIZE[name] * 5 // 4 + 4096


_CHUNK = 1 << 20


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
# IDX files


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


def _idx_kind_name(magic):
    return {_IMAGES_MAGIC: "images", _LABELS_MAGIC: "labels"}.get(magic, "unknown")


def _read_idx(path, expected_magic, max_bytes=DEFAULT_MAX_BYTES):
    """Read one IDX file, gzipped or not.

    Parameters
    ----------
    path : pathlib.Path
        The file. Gzip compression is detected from the content, so the name
        need not end in ``.gz``.
    expected_magic : int
        The magic number the file must start with, e.g. ``0x00000803`` for
        unsigned-byte images of rank 3.
    max_bytes : int
        Memory budget: the data and the 8-byte-per-value array it becomes
        (``float64`` pixels or ``int64`` labels) must fit in it.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array whose shape is given by the header.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the magic number differs, the header announces more data than
        `max_bytes` allows (found before any data is read), the data is
        shorter or longer than the header announces, or the gzip stream is
        corrupt.
    """
    with _open_maybe_gzip(path) as f:
        try:
            head = f.read(4)
            if len(head) < 4:
                raise ValueError(f"{path}: truncated IDX file: {len(head)} bytes, no room for the magic number")
            (magic,) = struct.unpack(">I", head)
            if magic != expected_magic:
                found, wanted = _idx_kind_name(magic), _idx_kind_name(expected_magic)
                hint = f" (this is an IDX {found} file)" if found != "unknown" else ""
                raise ValueError(
                    f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                    f"for an MNIST IDX {wanted} file{hint}"
                )
            ndim = magic & 0xFF
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions announced, not all present")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            expected = math.prod(dims)
            # Each byte becomes an 8-byte float64 or int64: check the header
            # against the limit before allocating anything.
            if expected * 9 > max_bytes:
                raise ValueError(
                    f"{path}: the header announces shape {dims}, i.e. {expected} data bytes, which "
                    f"would take {expected * 9} bytes of memory once converted, more than the limit "
                    f"of {max_bytes} bytes (max_bytes)")
            # np.empty leaves the pages untouched, so a header that lies
            # about the size costs no memory beyond the bytes actually there.
            data = np.empty(expected, dtype=np.uint8)
            held = _files.read_into(f, data)
            if held < expected:
                raise ValueError(
                    f"{path}: truncated: the header announces shape {dims}, i.e. {expected} data bytes, "
                    f"but the file holds {held}")
            if f.read(1):
                raise ValueError(
                    f"{path}: too long: the header announces shape {dims}, i.e. {expected} data bytes, "
                    "but the file holds more")
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return data.reshape(dims)


def _scale(images):
    """Flatten uint8 images to float64 rows in [0, 1]."""
    # Dividing in place saves a second (n, 784) float64 temporary.
    X = images.reshape(images.shape[0], _N_PIXELS).astype(np.float64)
    X /= 255.0
    return X


@contextlib.contextmanager
def _memory_guard(path, max_bytes):
    """Turn MemoryError into ValueError: sizes are checked against max_bytes
    first, so only a limit above the memory actually free gets here."""
    try:
        yield
    except MemoryError:
        raise ValueError(f"{path}: not enough memory to read it within max_bytes={max_bytes}; "
                         "a smaller max_bytes refuses such files before reading them") from None


def _load_idx_pair(images_path, labels_path, max_bytes):
    with _memory_guard(images_path, max_bytes):
        return _read_idx_pair(images_path, labels_path, max_bytes)


def _read_idx_pair(images_path, labels_path, max_bytes):
    images = _read_idx(images_path, _IMAGES_MAGIC, max_bytes)
    n, rows, cols = images.shape
    if (rows, cols) != (_ROWS, _COLS):
        raise ValueError(f"{images_path}: images are {rows}x{cols}, expected {_ROWS}x{_COLS} as in MNIST")
    labels = _read_idx(labels_path, _LABELS_MAGIC, max_bytes - images.size * 9)
    if labels.shape[0] != n:
        raise ValueError(
            f"image and label counts disagree: {images_path} holds {n} images "
            f"but {labels_path} holds {labels.shape[0]} labels"
        )
    if n and labels.max() >= _N_CLASSES:
        raise ValueError(f"{labels_path}: label {labels.max()} is not a digit 0..9")
    return _scale(images), labels.astype(np.int64)


def _first_existing(directory, stem):
    # Prefer the uncompressed file when both exist: same content, faster read.
    names = (stem, stem + ".gz")
    for name in names:
        # exists(), not is_file(): a FIFO or device under the expected name
        # is reported as such when opened, rather than silently skipped.
        if (directory / name).exists():
            return directory / name, names
    return None, names


def _load_idx_dir(directory, kind, max_bytes):
    kinds = _IDX_KINDS if kind is None else (_check_choice(kind, "kind", _IDX_KINDS),)
    looked_for = []
    for k in kinds:
        images, names = _first_existing(directory, f"{k}-images-idx3-ubyte")
        looked_for += names
        if images is None:
            continue
        labels, label_names = _first_existing(directory, f"{k}-labels-idx1-ubyte")
        if labels is None:
            raise FileNotFoundError(
                errno.ENOENT,
                f"found {images.name} but not its labels; looked for {' or '.join(label_names)} in this directory",
                str(directory),
            )
        return _load_idx_pair(images, labels, max_bytes)
    raise FileNotFoundError(
        errno.ENOENT,
        f"no MNIST images file in this directory; looked for {', '.join(looked_for)} "
        "(for network.py's mnist.pkl.gz, pass the path of the file itself)",
        str(directory),
    )


def _labels_path_for(images_path):
    name = images_path.name
    if "images-idx3" not in name:
        raise ValueError(
            f"{images_path}: cannot find the labels file: the labels file name is made by replacing "
            "'images-idx3' by 'labels-idx1' in the images file name, which does not contain 'images-idx3'"
        )
    labels_name = name.replace("images-idx3", "labels-idx1")
    # Accept the labels file whether or not it was decompressed like the images.
    other = labels_name[:-3] if labels_name.endswith(".gz") else labels_name + ".gz"
    for candidate in (labels_name, other):
        if (images_path.parent / candidate).exists():
            return images_path.parent / candidate
    raise FileNotFoundError(
        errno.ENOENT,
        f"labels file for {name} not found; looked for {labels_name} or {other} in {images_path.parent}",
        str(images_path.parent / labels_name),
    )


def _sniff(path):
    """Tell an IDX images/labels file from anything else by its first bytes."""
    try:
        with _open_maybe_gzip(path) as f:
            head = f.read(4)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    if len(head) == 4 and head.startswith(_IDX_PREFIX):
        magic = struct.unpack(">I", head)[0]
        if magic == _IMAGES_MAGIC:
            return "images"
        if magic == _LABELS_MAGIC:
            return "labels"
        raise ValueError(
            f"{path}: IDX file with magic number 0x{magic:08x}, expected 0x{_IMAGES_MAGIC:08x} "
            "(MNIST images)"
        )
    # Anything that is not IDX is tried as a pickle, whose parser says
    # precisely what is wrong with it.
    return "pickle"


# --------------------------------------------------------------------------
# network.py's mnist.pkl.gz


def _read_pickle_parts(path, max_bytes, what):
    """The three (X, y) pairs of network.py's pickle, checked, in their stored dtypes."""
    with _open_maybe_gzip(path) as f:
        try:
            data = _pickle.load(f, max_bytes)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
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


# --------------------------------------------------------------------------
# public loaders


def load_mnist(path: PathLike, kind: Optional[str] = None,
               max_bytes: Optional[int] = None) -> Tuple[Array, Array]:
    """Load MNIST images and labels from the official files or network.py's pickle.

    Parameters
    ----------
    path : str or os.PathLike
        One of

        - a directory holding the official IDX files, gzipped or not:
          ``train-images-idx3-ubyte[.gz]`` with ``train-labels-idx1-ubyte[.gz]``,
          and/or ``t10k-images-idx3-ubyte[.gz]`` with
          ``t10k-labels-idx1-ubyte[.gz]``;
        - one IDX images file; its labels file is the one whose name has
          ``labels-idx1`` in place of ``images-idx3``, with or without
          ``.gz``, in the same directory;
        - network.py's ``mnist.pkl.gz`` (a gzipped pickle of
          ``(training, validation, test)``, each ``(X, y)``).

        Gzip compression is recognised from the content, not the name.
    kind : str, optional
        For a directory: ``"train"`` or ``"t10k"``; by default ``"train"``
        when its files are present, else ``"t10k"``. For the pickle:
        ``"train"`` (default), ``"validation"`` or ``"test"``. Must be left
        out for a single IDX file.
    max_bytes : int, optional
        Memory limit for reading one data set: the bytes decompressed plus
        the arrays made from them. Sizes announced by a header are checked
        against it before anything is read. Default
        :data:`DEFAULT_MAX_BYTES` (1 GiB); the full MNIST training set
        takes about 0.43 GB from the IDX files, 0.53 GB from the pickle.

    Returns
    -------
    X, y : numpy.ndarray
        One split, not two (unlike :func:`load_sample`, which returns
        ``(train, test)``): the one `kind` names. ``X`` is ``float64`` of
        shape (n, 784), pixels scaled into [0, 1] (grey level / 255 for the
        IDX files), one image per row; ``y`` is ``int64`` of shape (n,),
        the digits 0..9. For training and test data call it twice:
        ``load_mnist(d, kind="train")`` and ``load_mnist(d, kind="t10k")``.

    Raises
    ------
    FileNotFoundError
        If `path` or a file it needs does not exist; the message lists the
        file names looked for.
    ValueError
        If a file is damaged or of the wrong kind: wrong magic number, data
        shorter or longer than its header says, images that are not 28x28,
        different numbers of images and labels, a pickle that is not
        network.py's or that names anything other than NumPy arrays, a
        file that would need more than `max_bytes`, a FIFO, device or
        socket (refused without being read). Also if `kind` is not allowed
        for this `path`.
    TypeError
        If `path` or `kind` has the wrong type.

    Notes
    -----
    The pickle is parsed, never unpickled (see :func:`read_mnist_pickle`),
    so a malicious file is refused instead of running code.

    Examples
    --------
    >>> X, y = load_mnist("~/.cache/cbp/mnist", kind="t10k")  # doctest: +SKIP
    >>> X.shape, y[:10]                                          # doctest: +SKIP
    ((10000, 784), array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]))
    """
    path = _as_path(path, "path")
    if kind is not None and not isinstance(kind, str):
        raise TypeError(f"kind must be a str or None, got {type(kind).__name__}")
    max_bytes = _files.check_max_bytes(max_bytes)
    if path.is_dir():
        return _load_idx_dir(path, kind, max_bytes)
    if not path.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            "no such file or directory; expected a directory holding train-/t10k-images-idx3-ubyte[.gz] "
            "and their labels, an IDX images file, or mnist.pkl.gz",
            str(path),
        )
    what = _sniff(path)
    if what == "pickle":
        return _load_pickle(path, kind, max_bytes)
    if what == "labels":
        raise ValueError(f"{path}: this is an IDX labels file; pass the images file or its directory")
    if kind is not None:
        raise ValueError(
            f"kind must be None when path is a single IDX images file (got {kind!r}); "
            "pass the directory to choose between 'train' and 't10k'"
        )
    return _load_idx_pair(path, _labels_path_for(path), max_bytes)


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


# --------------------------------------------------------------------------
# conversions


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


# --------------------------------------------------------------------------
# download


def _content_sha256(path, name):
    """SHA-256 of the file's content, decompressed if it is gzipped.

    Reading stops one byte past the known size of `name`'s content: a
    longer file cannot match, however far it would inflate.
    """
    digest = hashlib.sha256()
    left = _CONTENT_SIZE[name] + 1
    try:
        with _open_maybe_gzip(path) as f:
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return digest.hexdigest()


def _is_verified(path, name):
    if not path.is_file():
        return False
    try:
        return _content_sha256(path, name) == _CONTENT_SHA256[name]
    except ValueError:
        return False


def _default_cache_dir():
    env = os.environ.get("CBP_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cbp" / "mnist"


def _check_kinds(kinds):
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise TypeError(f"kinds must be a sequence of str, got {type(kinds).__name__}") from None
    if not kinds:
        raise ValueError("kinds must name at least one of 'train', 't10k'")
    for k in kinds:
        _check_choice(k, "each of kinds", _IDX_KINDS)
    return tuple(dict.fromkeys(kinds))


def _check_timeout(timeout):
    if isinstance(timeout, (bool, np.bool_)) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout}")
    return float(timeout)


def _check_base_url(base_url):
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    return base_url if base_url.endswith("/") else base_url + "/"


def _download_error(url, exc, cache_dir, names):
    return OSError(
        f"could not download {url}: {exc}. Nothing was retried. To install the files by hand, "
        f"get {', '.join(names)} from any MNIST mirror and put them in {cache_dir}; "
        "download_mnist() then verifies and keeps them, and load_mnist() reads that directory."
    )


def _too_large(url, limit):
    return ValueError(f"{url} is larger than the {limit} bytes any copy of this MNIST file takes; "
                      "the download was stopped and discarded")


def _fetch(url, out, timeout, cache_dir, names, limit):
    """Copy `url` to `out`, stopping with ValueError once past `limit` bytes."""
    network_errors = (OSError, http.client.HTTPException)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except network_errors as exc:
        if isinstance(exc, urllib.error.HTTPError):
            # An HTTPError holds the open connection of the error response.
            exc.close()
        raise _download_error(url, exc, cache_dir, names) from exc
    with response:
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise _too_large(url, limit)
        total = 0
        while True:
            # Only the network side is guarded: a failed write (disk full)
            # must not be reported as a download problem.
            try:
                chunk = response.read(min(_CHUNK, limit + 1 - total))
            except network_errors as exc:
                raise _download_error(url, exc, cache_dir, names) from exc
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise _too_large(url, limit)
            out.write(chunk)


def download_mnist(cache_dir: Optional[PathLike] = None, base_url: str = DEFAULT_URL,
                   kinds: Sequence[str] = ("train", "t10k"), timeout: float = 30) -> Path:
    """Download the official MNIST files and verify their checksums.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Where to keep the files. Default: ``$CBP_DATA`` if that environment
        variable is set, else ``~/.cache/cbp/mnist``. Created if missing.
    base_url : str, default :data:`DEFAULT_URL`
        An http(s) URL of a directory serving the files under their
        official names.
    kinds : sequence of str, default ("train", "t10k")
        Which parts to fetch: ``"train"`` (60,000 images) and/or ``"t10k"``
        (the 10,000 test images). A single str is accepted.
    timeout : float, default 30
        Seconds to wait on the connection and on each read.

    Returns
    -------
    pathlib.Path
        The cache directory, ready for :func:`load_mnist`.

    Raises
    ------
    OSError
        If a file cannot be downloaded (no network, HTTP error, timeout).
        There is no retry; the message names the cache directory and the
        files to put there by hand.
    ValueError
        If a downloaded file does not match its checksum, or is larger than
        any copy of that file can be (the download stops there); it is
        deleted. Also for invalid arguments.
    TypeError
        If an argument has the wrong type.

    Notes
    -----
    The four files are ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz``. A file already in the cache is kept if
    its checksum is right, and downloaded again otherwise. Each download
    goes to a temporary file in the cache directory and is moved into place
    only once verified, so an interrupted run never leaves a partial file
    under the final name. The checksum is the SHA-256 of the decompressed
    content, so copies that differ only in their gzip header (time stamp,
    stored file name) are all accepted.

    Examples
    --------
    >>> X, y = load_mnist(download_mnist(kinds="t10k"), kind="t10k")  # doctest: +SKIP
    """
    cache = _default_cache_dir() if cache_dir is None else _as_path(cache_dir, "cache_dir")
    base_url = _check_base_url(base_url)
    kinds = _check_kinds(kinds)
    timeout = _check_timeout(timeout)
    names = [f"{k}-{part}-ubyte.gz" for k in kinds for part in ("images-idx3", "labels-idx1")]
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = cache / name
        if _is_verified(target, name):
            continue
        url = base_url + name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=cache)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout, cache, names, _download_limit(name))
            try:
                digest = _content_sha256(tmp, name)
            except ValueError as exc:
                raise ValueError(f"{name} downloaded from {url} is not valid gzip data ({exc}); it was discarded") from exc
            if digest != _CONTENT_SHA256[name]:
                raise ValueError(
                    f"checksum mismatch for {name} downloaded from {url}: the SHA-256 of its content "
                    f"is {digest}, expected {_CONTENT_SHA256[name]}; the file was discarded"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return cache
