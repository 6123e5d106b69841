"""The official MNIST files: IDX images and labels, gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the
number of dimensions), one big-endian 4-byte size per dimension, then the
data.  Sizes are checked against ``max_bytes`` before anything is read.
"""

import errno
import math
import struct

import numpy as np

from .. import _files
from .._files import DEFAULT_MAX_BYTES
from ._common import (_COLS, _GZIP_ERRORS, _N_CLASSES, _ROWS, _check_choice, _memory_guard,
                      _open_maybe_gzip, _scale)

# The IDX magic number is 0x00, 0x00, a type code (0x08: unsigned byte) and
# the number of dimensions, so these two also fix the dtype and the rank.
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_IDX_PREFIX = b"\x00\x00"

_IDX_KINDS = ("train", "t10k")


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
        except _GZIP_ERRORS as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return data.reshape(dims)


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
    except _GZIP_ERRORS as exc:
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
