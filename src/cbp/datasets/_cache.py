"""Where downloaded MNIST files are kept."""

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Return the directory that holds the downloaded MNIST files by default.

    :func:`download_mnist` stores the files there when given no
    ``cache_dir``, and :mod:`cbp.mnist_loader` looks there for them.  The
    directory is not created: only a download creates it.

    Returns
    -------
    pathlib.Path
        ``$CBP_DATA`` if that environment variable is set and not empty (a
        leading ``~`` expanded), else ``~/.cache/cbp/mnist`` in the user's
        home directory.  It is read at each call, so a change of
        ``CBP_DATA`` takes effect at once.

    Examples
    --------
    >>> default_cache_dir()                                 # doctest: +SKIP
    PosixPath('/home/ada/.cache/cbp/mnist')
    >>> X, y = load_mnist(default_cache_dir(), kind="t10k")   # doctest: +SKIP
    """
    env = os.environ.get("CBP_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cbp" / "mnist"
