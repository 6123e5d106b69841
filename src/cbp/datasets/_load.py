"""load_mnist: one split from the official IDX files or from network.py's pickle."""

import errno
from typing import Optional, Tuple

from .. import _files
from .._typing import Array, PathLike
from ._common import _as_path
from ._idx import _labels_path_for, _load_idx_dir, _load_idx_pair, _sniff
from ._mnist_pkl import _load_pickle


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
