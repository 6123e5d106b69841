"""cbp: feed-forward networks trained by backpropagation and SGD, with a Cython core.

>>> import cbp
>>> net = cbp.Network([784, 30, 10], seed=0)
>>> history = net.SGD((X, Y), epochs=10, mini_batch_size=10, eta=3.0, test_data=(X_test, y_test))
"""
from .model import Network, sigmoid, sigmoid_prime
from .errors import DivergenceError, TrainingInterrupted, TrainingWarning
from .sgd import SGD, Adam, Optimizer
from .io import load
from .plot import plot_history
from .gradcheck import gradcheck
# The modules that carry out Network.SGD, .save and .explain register them
# when imported (cbp.model.implements): import every one of them here.
from . import explain, io, sgd, training  # noqa: F401


def _version():
    # The version is written once, in pyproject.toml; the installed metadata
    # of the distribution (cbp-backprop: the name "cbp" on PyPI is another project)
    # carries it.  A checkout put on sys.path without being installed has none.
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("cbp-backprop")   # the distribution's name (pyproject.toml)
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
del _version
__all__ = ["Network", "SGD", "Adam", "Optimizer", "DivergenceError", "TrainingInterrupted", "TrainingWarning",
           "sigmoid",
           "sigmoid_prime", "load", "plot_history", "gradcheck", "__version__"]
