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
- :func:`download_mnist` fetches and verifies the official IDX files, by
  default into :func:`default_cache_dir`.

Every file is treated as untrusted: only regular files are opened, and the
memory a file may make the readers use is limited by ``max_bytes``
(default :data:`DEFAULT_MAX_BYTES`, 1 GiB), checked against the sizes headers
announce before anything is read.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, under the
CC BY-SA 3.0 licence.
"""

# The code lives in private modules, one per part; everything public is
# here, and only here:
#   _common      MNIST's shape, argument checks, opening a maybe-gzipped file
#   _idx         the official IDX files
#   _pickle      the restricted pickle reader: the opcodes, one handler each
#   _pickle_numpy  the values it builds and NumPy's array reconstruction
#   _mnist_pkl   network.py's mnist.pkl.gz, read with _pickle
#   _load        load_mnist, which tells the formats apart
#   _sample      the embedded 5,000-image sample
#   _convert     one-hot labels and network.py's lists of columns
#   _cache       the default directory of the downloaded files
#   _download    download_mnist
# Their private names are shared among them and with nothing else
# (tests/packaging/test_structure.py).

from .._files import DEFAULT_MAX_BYTES
from ._cache import default_cache_dir
from ._convert import one_hot, to_network_py
from ._download import DEFAULT_URL, download_mnist
from ._load import load_mnist
from ._mnist_pkl import read_mnist_pickle
from ._sample import load_sample, load_sample_network_py

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_URL",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "load_sample",
    "load_sample_network_py",
    "one_hot",
    "read_mnist_pickle",
    "to_network_py",
]

# The functions are shown (help(), the docs, numpydoc's checks) under the
# name users call them by, cbp.datasets.<name>, not the private module that
# holds their code.
for _function in (default_cache_dir, one_hot, to_network_py, download_mnist, load_mnist,
                  read_mnist_pickle, load_sample, load_sample_network_py):
    _function.__module__ = __name__
del _function
