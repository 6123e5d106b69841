"""Saving and loading trained networks: the ``cbp-model`` file format.

>>> cbp.io.save(net, "digits.npz")          # or net.save("digits.npz")
>>> net = cbp.load("digits.npz")

File format, version 1
----------------------
A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, as
written by :func:`numpy.savez`) holding plain numeric and string arrays
only -- no object arrays, so it is read with ``allow_pickle=False`` and
loading a file never runs code.  The entries:

=====================  ==========================================================
``format``             0-d string array ``"cbp-model"``
``version``            0-d integer array ``1``
``sizes``              1-D integer array, units per layer, input first: [784, 30, 10]
``activation``         0-d string: hidden-layer f (``"sigmoid"``, ``"tanh"``, ...)
``output_activation``  0-d string: output-layer f
``cost``               0-d string: ``"quadratic"``, ``"cross_entropy"``, ...
``dtype``              0-d string: ``"float64"`` or ``"float32"``
``W0`` .. ``W{L-1}``   weight matrices, ``W{k}`` of shape (sizes[k+1], sizes[k]),
                       in ``dtype``; ``W0`` is the notes' W^2
``b0`` .. ``b{L-1}``   bias columns, ``b{k}`` of shape (sizes[k+1], 1), in ``dtype``
=====================  ==========================================================

where L = len(sizes) - 1 is the number of weight layers.  Readers ignore
other entries; a change that old readers could misread gets a new version
number.  Any program with NumPy reads the file::

    with np.load("digits.npz", allow_pickle=False) as f:
        W = [f[f"W{k}"] for k in range(len(f["sizes"]) - 1)]

Saving is atomic: the archive is written to a temporary file in the target
directory, flushed to disk, then renamed over the target, so a crash or an
error mid-way leaves any previous model file as it was.
"""
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np

from . import _checks

__all__ = ["FORMAT", "VERSION", "save", "load"]

FORMAT = "cbp-model"
VERSION = 1

_HEADER_KEYS = ("format", "version", "sizes", "activation", "output_activation", "cost", "dtype")
_PARAM_KEY = re.compile(r"^([Wb])(\d+)$")
# What a damaged or foreign file makes np.load / NpzFile raise.
# RuntimeError covers zipfile's NotImplementedError (unknown compression,
# "encrypted" flags) on damaged headers.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, ValueError, KeyError,
                EOFError, TypeError, IndexError, RuntimeError)


def _as_path(path):
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    return os.fspath(path)


def _arrays(net):
    """The archive's entries for ``net``."""
    out = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "activation": np.array(net.activation),
        "output_activation": np.array(net.output_activation),
        "cost": np.array(net.cost),
        "dtype": np.array(np.dtype(net.dtype).name),
    }
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        out[f"W{k}"] = np.ascontiguousarray(w)
        out[f"b{k}"] = np.ascontiguousarray(b)
    return out


def _open_temp(directory, name):
    """A new file next to the target, created with O_EXCL (the umask applies)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue


def _fsync_directory(directory):
    # Make the rename itself durable; not possible (nor needed) everywhere.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(net, path):
    """Write ``net`` to ``path`` as a ``cbp-model`` file (see the module docstring).

    The file is written to exactly ``path``: unlike :func:`numpy.savez`, no
    ``.npz`` is appended.  Saving is atomic, and an existing file at ``path``
    keeps its permissions.

    Parameters
    ----------
    net : cbp.Network
    path : str or os.PathLike

    Raises
    ------
    TypeError
        ``net`` is not a Network or ``path`` not a path.
    OSError
        The file cannot be written (missing directory, no permission, disk
        full, ...); any previous file at ``path`` is left intact.
    """
    from .model import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")
    path = _as_path(path)
    arrays = _arrays(net)
    directory, name = os.path.split(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    tmp, fd = _open_temp(directory, name)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


# -- loading ----------------------------------------------------------------


class _Bad(Exception):
    """A problem with the file's content; becomes ValueError naming the file."""


def _string(entries, key):
    a = entries[key]
    if a.dtype.kind not in "US" or a.ndim != 0:
        raise _Bad(f"entry {key!r} must be a 0-d string array; got dtype {a.dtype}, "
                   f"shape {a.shape}")
    v = a.item()
    return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)


def _int(entries, key):
    a = entries[key]
    if a.dtype.kind not in "iu" or a.ndim != 0:
        raise _Bad(f"entry {key!r} must be a 0-d integer array; got dtype {a.dtype}, "
                   f"shape {a.shape}")
    return int(a)


def _read_entries(f):
    """Every array of the archive open on ``f``, read in full."""
    head = f.read(6)
    if not head:
        raise _Bad("the file is empty")
    if head.startswith(b"\x93NUMPY"):
        raise _Bad("it is a single .npy array, not an .npz archive")
    if head[:1] == b"\x80":
        raise _Bad("it looks like a Python pickle, which cbp never loads (pickles can run code)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise _Bad("it is not an .npz (zip) archive")
    f.seek(0)
    npz = np.load(f, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _Bad("it is a single .npy array, not an .npz archive")
    with npz:
        _check_sizes(npz.zip)
        return {key: npz[key] for key in npz.files}


def _check_sizes(archive):
    # An .npy header may claim any shape; NumPy allocates it before reading.
    # Refuse members whose header claims more bytes than the member holds.
    for info in archive.infolist():
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if claimed > info.file_size:
                raise _Bad(f"entry {info.filename!r} claims {claimed} bytes of data "
                           f"but holds {info.file_size}")


def _check(entries):
    """(header dict, weights, biases) from the entries, or _Bad."""
    missing = [k for k in _HEADER_KEYS if k not in entries]
    if "format" in missing or (len(missing) == len(_HEADER_KEYS)):
        raise _Bad("it is not a cbp model file (no 'format' entry)")
    fmt = _string(entries, "format")
    if fmt != FORMAT:
        raise _Bad(f"it is not a cbp model file (format {fmt!r}, expected {FORMAT!r})")
    if "version" in missing:
        raise _Bad("it has no 'version' entry")
    version = _int(entries, "version")
    if version != VERSION:
        raise _Bad(f"unsupported version {version} (this cbp reads version {VERSION}); "
                   "a newer cbp may read it")
    if missing:
        raise _Bad(f"it lacks the entries {missing}")
    sizes = entries["sizes"]
    if sizes.dtype.kind not in "iu" or sizes.ndim != 1 or sizes.shape[0] < 2:
        raise _Bad(f"entry 'sizes' must be a 1-D integer array of at least two layer widths; "
                   f"got dtype {sizes.dtype}, shape {sizes.shape}")
    if (sizes < 1).any():
        raise _Bad(f"entry 'sizes' must hold positive layer widths; got {sizes.tolist()}")
    sizes = [int(s) for s in sizes]
    header = {k: _string(entries, k) for k in ("activation", "output_activation", "cost",
                                                "dtype")}
    try:
        dtype = np.dtype(_checks.dtype(header["dtype"]))
    except (TypeError, ValueError) as exc:
        raise _Bad(f"entry 'dtype': {exc}") from None
    L = len(sizes) - 1
    extra = sorted(k for k in entries if _PARAM_KEY.match(k) and int(k[1:]) >= L)
    if extra:
        raise _Bad(f"sizes {sizes} give {L} weight layers, but the file also holds {extra}")
    weights, biases = [], []
    for k in range(L):
        for key, shape, out in ((f"W{k}", (sizes[k + 1], sizes[k]), weights),
                                (f"b{k}", (sizes[k + 1], 1), biases)):
            if key not in entries:
                raise _Bad(f"it lacks the entry {key!r} (sizes {sizes} need W0..W{L - 1} "
                           f"and b0..b{L - 1})")
            a = entries[key]
            if key[0] == "b" and a.shape == shape[:1]:
                a = a.reshape(shape)
            if a.shape != shape:
                raise _Bad(f"entry {key!r} has shape {a.shape}, but sizes {sizes} need {shape}")
            if a.dtype != dtype:
                raise _Bad(f"entry {key!r} has dtype {a.dtype}, but the file declares "
                           f"{dtype.name}")
            if not np.isfinite(a).all():
                raise _Bad(f"entry {key!r} holds NaN or infinite values")
            out.append(a)
    return sizes, header, weights, biases


def load(path):
    """Read a network written by :func:`save`.

    The file is opened with ``allow_pickle=False``: nothing in it is ever
    executed.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    cbp.Network
        Same sizes, activations, cost, dtype, and bit-identical weights and
        biases.  Its random generator (used to shuffle in further training)
        is freshly seeded.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a valid ``cbp-model`` file: empty, truncated, not a
        zip, missing entries, another format or an unsupported version,
        inconsistent shapes, non-finite weights, object arrays or pickled
        data.  The message names the file and says what is wrong.
    """
    from .model import Network
    path = _as_path(path)
    with open(path, "rb") as f:
        try:
            entries = _read_entries(f)
        except _Bad as exc:
            raise ValueError(f"{path}: not a cbp model file: {exc}") from None
        except _READ_ERRORS as exc:
            detail = str(exc) or type(exc).__name__
            if "allow_pickle" in detail:
                detail = "it holds object arrays (pickled data), which cbp never loads"
            else:
                detail = f"a damaged or truncated .npz archive ({detail})"
            raise ValueError(f"{path}: not a readable cbp model file: {detail}") from None
    try:
        sizes, header, weights, biases = _check(entries)
        try:
            net = Network(sizes, activation=header["activation"],
                          output_activation=header["output_activation"], cost=header["cost"],
                          dtype=header["dtype"])
            net.weights = weights
            net.biases = biases
        except (TypeError, ValueError) as exc:
            raise _Bad(str(exc)) from None
    except _Bad as exc:
        raise ValueError(f"{path}: invalid cbp model file: {exc}") from None
    return net
