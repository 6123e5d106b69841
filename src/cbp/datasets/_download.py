"""download_mnist: fetch the official files, verify them by content, keep them in the cache."""

import hashlib
import http.client
import math
import numbers
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._typing import PathLike
from ._cache import default_cache_dir
from ._common import _GZIP_ERRORS, _N_PIXELS, _as_path, _check_choice, _open_maybe_gzip
from ._idx import _IDX_KINDS

#: Mirror of the official MNIST files used by :func:`download_mnist` (the one
#: torchvision uses; yann.lecun.com itself no longer serves them reliably).
DEFAULT_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

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
    except _GZIP_ERRORS as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return digest.hexdigest()


def _is_verified(path, name):
    if not path.is_file():
        return False
    try:
        return _content_sha256(path, name) == _CONTENT_SHA256[name]
    except ValueError:
        return False


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
    cache = default_cache_dir() if cache_dir is None else _as_path(cache_dir, "cache_dir")
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
