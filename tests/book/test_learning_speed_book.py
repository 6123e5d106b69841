"""The speed of learning recorded by training equals generate_gradient.py's numbers.

The book's ``generate_gradient.py`` (chapter 5, Python 2, in ../shared/nielsen)
builds network2.Network([784, 30, 30, 10]) on the first 1,000 training images,
averages ``net.backprop(x, y)[0]`` over them, and prints the norm of each
hidden layer's mean bias gradient; then, before each epoch of
``net.SGD(td, 1, 1000, 0.1, lmbda=5.0)``, records the same norms.  It runs
under Python 2 only, so this test does that computation with the book's
network2.py (the Python 3 port beside it) and compares cbp's
``monitor_learning_speed`` record on the same network and data.
"""
import importlib.util
import random
import sys
import warnings

import numpy as np
import pytest

import cbp
from cbp import datasets
from conftest import NIELSEN

pytestmark = pytest.mark.skipif(not (NIELSEN / "network2.py").is_file(),
                                reason=f"the book's code is not in {NIELSEN}")


def _network2():
    spec = importlib.util.spec_from_file_location("nielsen_speed_network2",
                                                  NIELSEN / "network2.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        spec.loader.exec_module(module)
    return module


def _book_norms(net, td):
    """generate_gradient.py's measure: ‖(1/n) Σ nabla_b‖ for each hidden layer."""
    sums = None
    for x, y in td:
        nabla_b = net.backprop(x, y)[0]
        sums = nabla_b if sums is None else [s + b for s, b in zip(sums, nabla_b)]
    return [float(np.sqrt(np.sum((s / len(td)) ** 2))) for s in sums[:-1]]


@pytest.mark.parametrize("hidden", [2, 3])
def test_speed_of_learning_matches_generate_gradient(hidden):
    network2 = _network2()
    (X, y), _ = datasets.load_sample()
    X, y = X[:1000], y[:1000]
    td = [(x.reshape(784, 1).astype(np.float32), np.eye(10)[k].reshape(10, 1))
          for x, k in zip(X, y)]
    np.random.seed(0)
    random.seed(0)
    book = network2.Network([784] + [30] * hidden + [10])
    cbp_net = cbp.Network([784] + [30] * hidden + [10], cost="cross_entropy", init="scaled",
                          seed=0)
    cbp_net.weights, cbp_net.biases = book.weights, book.biases
    expected = []
    for _ in range(2):
        expected.append(_book_norms(book, td))
        book.SGD(td, 1, 1000, 0.1, lmbda=5.0)
    history = cbp_net.SGD((X, y), 2, 1000, 0.1, lmbda=5.0, verbose=False,
                          monitor_learning_speed=True)
    got = [row[:-1] for row in history["learning_speed"]]      # hidden layers, as the book
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # Chapter 5's picture: at the start the first hidden layer learns slowest.
    assert got[0] == sorted(got[0])
