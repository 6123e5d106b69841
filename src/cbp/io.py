"""Saving and loading trained networks: the ``cbp-model`` file format.

>>> cbp.io.save(net, "digits.npz")          # or net.save("digits.npz")
>>> net = cbp.load("digits.npz")

File format, version 1
----------------------
A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, as
written by :func:`numpy.savez`) holding plain numeric and string arrays
only -- no object arrays, so any program can read it with
``allow_pickle=False``, and loading a file never runs code (cbp reads the
archive itself, with the bounds below).  The entries:

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
error mid-way leaves any previous model file as it was.  Only regular files
are written or read: a directory, FIFO, device or socket at the path is
refused, never replaced or opened for reading.  Saving onto a symbolic link
replaces the file the link points to (atomically, beside that file) and
keeps the link, unless another user owns the link in a sticky
world-writable directory such as /tmp (refused, as the kernel's
``fs.protected_symlinks`` refuses to follow it).  The new file keeps the
permission bits of the file it replaces, without setuid, setgid or sticky bits.

Loading reads every member in bounded chunks and checks, before allocating
anything, that each ``.npy`` header's shape and dtype give exactly the size
the zip directory declares, that the total stays under ``max_bytes``
(default :data:`cbp.datasets.DEFAULT_MAX_BYTES`, 1 GiB) and that only plain
numeric or short string arrays are present; inflating more or fewer bytes
than declared, or a bad checksum, is an error.  Only stored and deflated
members are read (zipfile inflates a bzip2 or LZMA chunk whole, whatever
the directory declares), and a member over 1 MiB inflating more than 100:1,
which no trained network's weights do, is refused unless ``max_bytes`` is
raised above the default.  The weights are read straight into the new
network's parameter vector: the file's numbers are held once.
"""
import ast
import io
import os
import re
import struct
import zipfile
import zlib
from typing import Optional

import numpy as np

from . import _checks, _core, _files, model
from .model import Network
from ._typing import PathLike

__all__ = ["FORMAT", "VERSION", "save", "load"]

FORMAT = "cbp-model"
VERSION = 1

_HEADER_KEYS = ("format", "version", "sizes", "activation", "output_activation", "cost", "dtype")
_PARAM_KEY = re.compile(r"^([Wb])(\d+)$")
# What a damaged or foreign file makes np.load / NpzFile raise.
# RuntimeError covers zipfile's NotImplementedError (unknown compression,
# "encrypted" flags) on damaged headers.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, ValueError, KeyError,
                EOFError, TypeError, IndexError, RuntimeError, RecursionError, SyntaxError)
# A model has 7 + 2 L members; a zip directory beyond these bounds is refused
# before zipfile builds an object per entry.
_MAX_MEMBERS = 4096
_MAX_DIRECTORY = 1 << 20
_MAX_NPY_HEADER = 10000
# No trained network's weights deflate by more than a few per cent (measured
# in tests/robustness/test_file_budgets.py); a large entry inflating over 100:1 is a bomb,
# refused unless max_bytes is raised above the default.
_MAX_RATIO = 100
_RATIO_FROM = 1 << 20
# Element types a model file holds: numbers, and the short strings of its
# header entries.
_STRING_ITEMSIZE = 1024


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
        "cost": np.array(net.cost_name),
        "dtype": np.array(np.dtype(net.dtype).name),
    }
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        out[f"W{k}"] = np.ascontiguousarray(w)
        out[f"b{k}"] = np.ascontiguousarray(b)
    return out


@model.implements("save")
def save(net: "Network", path: PathLike) -> None:
    """Write ``net`` to ``path`` as a ``cbp-model`` file (see the module docstring).

    The file is written to exactly ``path``: unlike :func:`numpy.savez`, no
    ``.npz`` is appended.  Saving is atomic: the archive goes to a temporary
    file in the same directory, renamed over the old file once complete.
    An existing file at ``path`` keeps its permission bits (never setuid,
    setgid or sticky).  If ``path`` is a symbolic link, the file it points
    to is replaced and the link is kept (unless another user owns the link
    in a sticky world-writable directory: PermissionError).

    Parameters
    ----------
    net : cbp.Network
    path : str or os.PathLike

    Raises
    ------
    TypeError
        ``net`` is not a Network or ``path`` not a path.
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        ``path`` (or the file a link there points to) is a FIFO, device or
        socket; it is left as it is.
    OSError
        The file cannot be written (missing directory, no permission, disk
        full, ...); the message names ``path``, and any previous file there
        is left intact.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")
    path = _as_path(path)
    arrays = _arrays(net)
    _files.write_atomic(path, lambda f: np.savez(f, **arrays), "a model")


# -- loading ----------------------------------------------------------------


class _Bad(Exception):
    """A problem with the file's content; becomes ValueError naming the file."""


class _Invalid(_Bad):
    """A cbp model file whose entries disagree (shapes, dtypes, values)."""


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


def _check_directory(f, size):
    """Refuse a zip whose central directory is larger than any model's, before zipfile reads it.

    The end records are found where zipfile finds them: the end-of-directory
    record in the last 22 bytes (no comment) or else the last one in the
    final 64 KiB, and the zip64 record just before its locator (zipfile reads
    it there, not at the offset the locator gives: both places are checked).
    """
    if size < 22:
        return  # zipfile reports the damage
    f.seek(size - 22)
    last = f.read(22)
    if last[:4] == b"PK\x05\x06" and last[-2:] == b"\0\0":
        at = size - 22
    else:
        tail_size = min(size, 22 + (1 << 16))
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        found = tail.rfind(b"PK\x05\x06")
        if found < 0 or tail_size - found < 22:
            return  # zipfile reports the damage
        at = size - tail_size + found
    f.seek(at)
    record = f.read(22)
    counts = []
    plain = struct.unpack("<HI", record[10:16])
    if at >= 20:
        f.seek(at - 20)
        locator = f.read(20)
        if locator[:4] == b"PK\x06\x07":
            (offset,) = struct.unpack("<Q", locator[8:16])
            for where in (at - 20 - 56, offset):
                if 0 <= where <= size - 56:
                    f.seek(where)
                    zip64 = f.read(56)
                    if zip64[:4] == b"PK\x06\x06":
                        this_disk, total, cd_size = struct.unpack("<QQQ", zip64[24:48])
                        counts.append((where, max(this_disk, total), cd_size))
    # zipfile takes the plain record's counts unless a zip64 record lies
    # just before the locator.
    counts = [(n, cd) for where, n, cd in counts] + (
        [] if any(where == at - 76 for where, _, _ in counts) else [plain])
    for entries, cd_size in counts:
        if entries > _MAX_MEMBERS or cd_size > _MAX_DIRECTORY:
            raise _Bad(f"its zip directory lists {entries} entries in {cd_size} bytes; a model "
                       f"file has at most {_MAX_MEMBERS}")


def _npy_header(member, info):
    """(shape, fortran_order, dtype, header bytes) of the .npy member, read within bounds."""
    prefix = member.read(10)
    if len(prefix) < 10 or not prefix.startswith(b"\x93NUMPY"):
        raise _Bad(f"entry {info.filename!r} is not a .npy array")
    major = prefix[6]
    if major == 1:
        start, (hlen,) = 10, struct.unpack("<H", prefix[8:10])
    elif major in (2, 3):
        rest = member.read(2)
        start, (hlen,) = 12, struct.unpack("<I", prefix[8:10] + rest)
    else:
        raise _Bad(f"entry {info.filename!r} has .npy format version {major}, not 1 to 3")
    if hlen > _MAX_NPY_HEADER:
        raise _Bad(f"entry {info.filename!r} has a .npy header of {hlen} bytes")
    header = member.read(hlen)
    if len(header) != hlen:
        raise _Bad(f"entry {info.filename!r} ends inside its .npy header")
    raw = io.BytesIO(prefix + (rest if major != 1 else b"") + header)
    version = np.lib.format.read_magic(raw)
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    if version == (3, 0):
        # 3.0 only differs from 2.0 by a UTF-8 header; parse that here.
        text = header.decode("utf-8")
        d = ast.literal_eval(text)
        if not (isinstance(d, dict) and set(d) == {"descr", "fortran_order", "shape"}):
            raise _Bad(f"entry {info.filename!r} has a malformed .npy header")
        dtype = np.lib.format.descr_to_dtype(d["descr"])
        shape, fortran = d["shape"], d["fortran_order"]
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
                and isinstance(fortran, bool)):
            raise _Bad(f"entry {info.filename!r} has a malformed .npy header")
    else:
        shape, fortran, dtype = reader(raw, max_header_size=_MAX_NPY_HEADER)
    return shape, fortran, dtype, start + hlen


def _read_member(archive, info, budget, into=None):
    """The array in one member, after checking its declared size; bytes used.

    ``into`` (a C-contiguous parameter view of a network): the member must
    have its shape (a bias may be 1-D) and dtype, and is read straight into
    it, without a copy; the view is returned.
    """
    with archive.open(info) as member:
        shape, fortran, dtype, header_size = _npy_header(member, info)
        if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
            raise _Bad(f"entry {info.filename!r} holds object arrays (pickled data) or "
                       "structured records, which cbp never loads")
        if dtype.kind not in "biufUS" or (dtype.kind in "US" and dtype.itemsize > _STRING_ITEMSIZE):
            raise _Bad(f"entry {info.filename!r} has dtype {dtype}, not a number or a short string")
        count = 1
        for n in shape:
            count *= n
        claimed = count * dtype.itemsize
        # The .npy header's size, the zip directory's size and (below) the
        # bytes actually inflated must all agree.
        if claimed != info.file_size - header_size:
            raise _Bad(f"entry {info.filename!r} claims {claimed} bytes of data "
                       f"but holds {info.file_size - header_size}")
        if claimed > budget:
            raise _Bad(f"entry {info.filename!r} needs {claimed} bytes, past the limit "
                       "(max_bytes) on the array data of one file")
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if into is not None:
            _check_param(key, tuple(shape), dtype, into)
        # A Fortran-ordered matrix (another writer's) goes through a copy.
        direct = into is not None and not (fortran and len(shape) > 1 and min(shape) > 1)
        flat = into.reshape(-1) if direct else np.empty(count, dtype=dtype)
        got = _files.read_into(member, flat.view(np.uint8))
        if got != claimed or member.read(1):
            raise _Bad(f"entry {info.filename!r} inflates to a size other than the "
                       f"{claimed} bytes declared")
    if into is None:
        return flat.reshape(shape, order="F" if fortran else "C"), claimed
    if not direct:
        into[...] = flat.reshape(shape, order="F")
    if not _core.all_finite(into.reshape(-1)):
        raise _Invalid(f"entry {key!r} holds NaN or infinite values")
    return into, claimed


def _check_param(key, shape, dtype, into):
    """Refuse a weight or bias entry whose shape or dtype is not the network's."""
    want = into.shape
    if shape != want and not (key[0] == "b" and shape == want[:1]):
        raise _Invalid(f"entry {key!r} has shape {shape}, but the sizes need {want}")
    if dtype != into.dtype:
        raise _Invalid(f"entry {key!r} has dtype {dtype}, but the file declares "
                       f"{into.dtype.name}")


def _check_methods(infos, max_bytes):
    """Stored or deflated entries only, and none inflating past any real network's ratio."""
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Bad(f"entry {info.filename!r} is compressed with zip method "
                       f"{info.compress_type}; a model file's entries are stored (np.savez) "
                       "or deflated (np.savez_compressed) only")
        ratio = info.file_size / max(info.compress_size, 1)
        if (info.file_size > _RATIO_FROM and ratio > _MAX_RATIO
                and max_bytes <= _files.DEFAULT_MAX_BYTES):
            raise _Bad(f"entry {info.filename!r} inflates {info.compress_size} bytes to "
                       f"{info.file_size} ({ratio:.0f}:1); trained networks' weights compress "
                       f"less than 2:1 and no model reaches {_MAX_RATIO}:1.  To load it anyway, "
                       f"pass max_bytes above the default {_files.DEFAULT_MAX_BYTES}")


def _read_model(f, max_bytes):
    """The network in the archive open on ``f``, its arrays read within ``max_bytes``."""
    head = f.read(6)
    if not head:
        raise _Bad("the file is empty")
    if head.startswith(b"\x93NUMPY"):
        raise _Bad("it is a single .npy array, not an .npz archive")
    if head[:1] == b"\x80":
        raise _Bad("it looks like a Python pickle, which cbp never loads (pickles can run code)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise _Bad("it is not an .npz (zip) archive")
    _check_directory(f, os.fstat(f.fileno()).st_size)
    f.seek(0)
    with zipfile.ZipFile(f) as archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise _Bad(f"it has {len(infos)} entries; a model file has at most {_MAX_MEMBERS}")
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise _Bad(f"its entries declare {declared} bytes, more than the limit of "
                       f"{max_bytes} bytes (max_bytes)")
        _check_methods(infos, max_bytes)
        entries, params = {}, {}
        budget = max_bytes
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in entries or key in params:
                raise _Bad(f"entry {key!r} appears twice")
            if _PARAM_KEY.match(key):
                params[key] = info
            else:
                entries[key], used = _read_member(archive, info, budget)
                budget -= used
        sizes, header = _check(entries, params)
        try:
            net = Network(sizes, activation=header["activation"],
                          output_activation=header["output_activation"], cost=header["cost"],
                          dtype=header["dtype"], seed=0)
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None
        except MemoryError:
            raise _Invalid(f"not enough memory for a network of sizes {sizes}") from None
        # The weights go straight into the network's parameter vector: the
        # file's numbers are held once.
        with net.parameters() as (_, ws, bs):
            for k in range(len(sizes) - 1):
                for key, view in ((f"W{k}", ws[k]), (f"b{k}", bs[k])):
                    _, used = _read_member(archive, params[key], budget, into=view)
                    budget -= used
        return net


def _check(entries, params):
    """(sizes, header dict) from the entries, after checking that ``params`` has each layer's."""
    missing = [k for k in _HEADER_KEYS if k not in entries]
    if "format" in missing or (len(missing) == len(_HEADER_KEYS)):
        raise _Bad("it is not a cbp model file (no 'format' entry)")
    fmt = _string(entries, "format")
    if fmt != FORMAT:
        raise _Bad(f"it is not a cbp model file (format {fmt!r}, expected {FORMAT!r})")
    if "version" in missing:
        raise _Invalid("it has no 'version' entry")
    version = _int(entries, "version")
    if version != VERSION:
        raise _Invalid(f"unsupported version {version} (this cbp reads version {VERSION}); "
                       "a newer cbp may read it")
    if missing:
        raise _Invalid(f"it lacks the entries {missing}")
    sizes = entries["sizes"]
    if sizes.dtype.kind not in "iu" or sizes.ndim != 1 or sizes.shape[0] < 2:
        raise _Invalid(f"entry 'sizes' must be a 1-D integer array of at least two layer "
                       f"widths; got dtype {sizes.dtype}, shape {sizes.shape}")
    if (sizes < 1).any():
        raise _Invalid(f"entry 'sizes' must hold positive layer widths; got {sizes.tolist()}")
    sizes = [int(s) for s in sizes]
    header = {k: _string(entries, k) for k in ("activation", "output_activation", "cost",
                                                "dtype")}
    try:
        _checks.dtype(header["dtype"])
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"entry 'dtype': {exc}") from None
    L = len(sizes) - 1
    extra = sorted(k for k in params if int(k[1:]) >= L)
    if extra:
        raise _Invalid(f"sizes {sizes} give {L} weight layers, but the file also holds {extra}")
    for k in range(L):
        for key in (f"W{k}", f"b{k}"):
            if key not in params:
                raise _Invalid(f"it lacks the entry {key!r} (sizes {sizes} need W0..W{L - 1} "
                               f"and b0..b{L - 1})")
    return sizes, header


def load(path: PathLike, max_bytes: Optional[int] = None) -> "Network":
    """Read a network written by :func:`save`.

    Nothing in the file is ever executed: only plain numeric and string
    arrays are read, never pickled objects.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (or a link to one).
    max_bytes : int, optional
        Most bytes of array data the file may declare, checked before
        reading (default :data:`cbp.datasets.DEFAULT_MAX_BYTES`, 1 GiB).
        The weights are read into the network itself, so loading takes
        about this once.  Above the default, it also lifts the refusal of
        members inflating more than 100:1.

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
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        The file is not a valid ``cbp-model`` file: empty, truncated, not a
        zip, missing entries, another format or an unsupported version,
        inconsistent shapes, non-finite weights, object arrays or pickled
        data, sizes that disagree or exceed ``max_bytes``.  The message
        names the file and says what is wrong.  Also a FIFO, device or
        socket at ``path``, which is not read (nor waited on).
    """
    path = _as_path(path)
    max_bytes = _files.check_max_bytes(max_bytes)
    with _files.open_regular(path) as f:
        try:
            return _read_model(f, max_bytes)
        except _Invalid as exc:
            raise ValueError(f"{path}: invalid cbp model file: {exc}") from None
        except _Bad as exc:
            raise ValueError(f"{path}: not a cbp model file: {exc}") from None
        except MemoryError:
            raise ValueError(f"{path}: not enough memory to read it (max_bytes={max_bytes}); "
                             "a smaller max_bytes refuses such files earlier") from None
        except _READ_ERRORS as exc:
            detail = str(exc) or type(exc).__name__
            if "allow_pickle" in detail:
                detail = "it holds object arrays (pickled data), which cbp never loads"
            else:
                detail = f"a damaged or truncated .npz archive ({detail})"
            raise ValueError(f"{path}: not a readable cbp model file: {detail}") from None
