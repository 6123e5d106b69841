"""Opening the files users hand cbp: regular files only, without blocking.

A path may name a FIFO (``open`` would wait forever for a writer), a device
(``/dev/zero`` never ends; opening some devices has side effects) or a
directory. Readers and writers therefore check the file type before opening,
open with ``O_NONBLOCK`` and check the opened descriptor again, so a file
swapped in between cannot make them block either.
"""

import errno
import numbers
import os
import stat

import numpy as np

#: Default for the ``max_bytes`` argument of cbp's file readers: the most
#: bytes one file may decompress to (data sets) or declare as array data
#: (model files). The largest real MNIST file decompresses to ~220 MB.
DEFAULT_MAX_BYTES = 1 << 30

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode):
    """What a non-regular ``st_mode`` is, in words."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def require_regular(mode, path):
    """Raise unless ``mode`` is a regular file's: IsADirectoryError or ValueError."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", os.fspath(path))
    raise ValueError(f"{os.fspath(path)}: is {kind_of(mode)}, not a regular file; "
                     "cbp reads and writes regular files only")


def open_regular(path):
    """``path`` opened for binary reading, if it is a regular file.

    Raises
    ------
    FileNotFoundError
        Nothing at ``path``.
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        ``path`` is a FIFO, device or socket; it is not opened (or, if it
        was swapped in after the check, closed again without blocking).
    """
    require_regular(os.stat(path).st_mode, path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        require_regular(os.fstat(fd).st_mode, path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_max_bytes(max_bytes):
    """``max_bytes`` as a positive int; None means :data:`DEFAULT_MAX_BYTES`."""
    if max_bytes is None:
        return DEFAULT_MAX_BYTES
    if isinstance(max_bytes, (bool, np.bool_)) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an int or None, got {type(max_bytes).__name__}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    return int(max_bytes)


def read_into(f, out, chunk=1 << 20):
    """Fill the uint8 array ``out`` from ``f`` in chunks; return the bytes filled.

    Fewer than ``out.size`` means ``f`` ended first. Reading in chunks keeps
    a decompressing reader from inflating more than one chunk past the data.
    """
    view = memoryview(out).cast("B")
    done, n = 0, len(view)
    while done < n:
        got = f.readinto(view[done:done + chunk])
        if not got:
            break
        done += got
    return done
