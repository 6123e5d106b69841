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
import secrets
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


# -- writing ------------------------------------------------------------------

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


def _check_links(path):
    """Refuse to write through a link another user planted in a sticky world-writable directory.

    The rule of Linux's ``fs.protected_symlinks``: in a directory such as
    /tmp, a link is followed only by its owner or the directory's owner.
    Otherwise anyone could point /tmp/model.npz at a victim's file and have
    the victim's next save replace it (or create a dangling link's target).
    Every link of a chain is checked.
    """
    me = os.geteuid() if hasattr(os, "geteuid") else None
    for _ in range(40):
        try:
            st = os.lstat(path)
        except OSError:
            return
        if not stat.S_ISLNK(st.st_mode) or me is None:
            return
        directory = os.path.dirname(os.path.abspath(path))
        try:
            dst = os.stat(directory)
        except OSError:
            return
        if (dst.st_mode & stat.S_ISVTX and dst.st_mode & stat.S_IWOTH
                and st.st_uid not in (me, dst.st_uid)):
            raise PermissionError(
                errno.EACCES, "is a symbolic link owned by another user in a sticky "
                "world-writable directory; cbp does not write through it (as the kernel's "
                "fs.protected_symlinks would not follow it)", os.fspath(path))
        path = os.path.join(directory, os.readlink(path))


def _save_target(path, what):
    """The file a save to ``path`` replaces, and its permission bits (None if new).

    A symbolic link at ``path`` leads to the file it points to (through any
    chain of links), so the link itself survives, unless another user owns
    it in a sticky world-writable directory (PermissionError).
    """
    _check_links(path)
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    shown = path if target == os.path.abspath(path) else f"{path} (a link to {target})"
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"is a directory; cannot save {what} over it", shown)
        raise ValueError(f"{shown}: is {kind_of(st.st_mode)}, not a regular file; "
                         f"{what} is saved to regular files only, nothing was written")
    # Permission bits only: a setuid/setgid/sticky bit set on the old file
    # must not be given to content the old file never had.
    return target, stat.S_IMODE(st.st_mode) & 0o777


def write_atomic(path, write, what):
    """Write a file through a temporary one beside it and a rename.

    ``write(f)`` fills a binary file object.  An existing file at ``path``
    keeps its permission bits (never setuid, setgid or sticky); a symbolic
    link leads to the file it points to, which is replaced, and the link is
    kept; a directory, FIFO, device or socket is refused (``what``, e.g.
    "a model", names the content in the message) and left as it is.  On any
    error the temporary file is removed and a previous file is intact; a
    missing directory is reported under ``path``, not the temporary name.
    """
    path = os.fspath(path)
    target, mode = _save_target(path, what)
    directory, name = os.path.split(target)
    try:
        tmp, fd = _open_temp(directory, name)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                if hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), mode)
                else:
                    os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # Checked again just before the rename: a FIFO or device moved in
        # meanwhile is refused rather than replaced.
        _save_target(path, what)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
