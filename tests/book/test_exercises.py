"""The book's exercises change what they change in the original, side by side with it.

Each test runs the exercise on the original (../shared/nielsen, Python 3 port)
and on cbp's drop-in under the same seeds, and compares what the book's code
prints and returns.  Also: the drop-ins stay as quiet as the originals, and
the messages a student meets when an exercise goes wrong.
"""
import contextlib
import importlib.util
import io
import random
import sys
import warnings

import numpy as np
import pytest

import cbp
import cbp.network
import cbp.network2
from cbp import datasets
from conftest import NIELSEN

needs_original = pytest.mark.skipif(not (NIELSEN / "network2.py").is_file(),
                                    reason=f"the book's code is not in {NIELSEN}")


def _original(name):
    spec = importlib.util.spec_from_file_location(f"nielsen_ex_{name}", NIELSEN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def orig1():
    return _original("network")


@pytest.fixture(scope="module")
def orig2():
    return _original("network2")


(_X, _y), (_Xt, _yt) = datasets.load_sample()


def book_lists(n_train, n_test):
    one_hot = np.eye(10)
    train = [(x.reshape(784, 1).astype(np.float32), one_hot[y].reshape(10, 1))
             for x, y in zip(_X[:n_train], _y[:n_train])]
    test = [(x.reshape(784, 1).astype(np.float32), np.int64(y))
            for x, y in zip(_Xt[:n_test], _yt[:n_test])]
    return train, test


def seeded(seed):
    random.seed(seed)
    np.random.seed(seed)


def run(fn):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        value = fn()
    return value, out.getvalue().splitlines()


def assert_same_net(a, b, rel=1e-9):
    for u, v in zip(list(a.weights) + list(a.biases), list(b.weights) + list(b.biases)):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape
        assert np.max(np.abs(u - v)) <= rel * max(1.0, np.max(np.abs(u)))


# -- 1. a network2 subclass's own initializer ----------------------------------------


def _with_initializer(base, calls):
    class Uniform(base.Network):
        def default_weight_initializer(self):
            calls.append(type(self).__module__)
            self.biases = [np.random.uniform(-0.5, 0.5, (y, 1)) for y in self.sizes[1:]]
            self.weights = [np.random.uniform(-1, 1, (y, x)) / x
                            for x, y in zip(self.sizes[:-1], self.sizes[1:])]

    class Large(base.Network):
        def default_weight_initializer(self):
            self.large_weight_initializer()

        def large_weight_initializer(self):
            calls.append("large")
            base.Network.large_weight_initializer(self)
    return Uniform, Large


@needs_original
def test_network2_subclass_initializers_are_called(orig2):
    calls_o, calls_c = [], []
    for Orig, Mine in zip(_with_initializer(orig2, calls_o),
                          _with_initializer(cbp.network2, calls_c)):
        seeded(5)
        o = Orig([12, 6, 3])
        after_o = np.random.rand()
        seeded(5)
        c = Mine([12, 6, 3])
        after_c = np.random.rand()
        assert_same_net(o, c, rel=0)
        assert after_o == after_c           # the global stream is where the original leaves it
    assert len(calls_o) == len(calls_c) == 2
    # Training starts from those weights: the same lines as the original.
    train, test = book_lists(60, 30)
    seeded(6)
    o = _with_initializer(orig2, [])[0]([784, 8, 10])
    _, lo = run(lambda: o.SGD(list(train), 2, 10, 0.5, evaluation_data=test,
                              monitor_evaluation_accuracy=True))
    seeded(6)
    c = _with_initializer(cbp.network2, [])[0]([784, 8, 10])
    _, lc = run(lambda: c.SGD(list(train), 2, 10, 0.5, evaluation_data=test,
                              monitor_evaluation_accuracy=True))
    assert lo == lc
    assert_same_net(o, c)


def test_network2_seeded_subclass_initializer_is_called():
    calls = []
    Uniform = _with_initializer(cbp.network2, calls)[0]
    net = Uniform([5, 3], seed=4)
    assert len(calls) == 1
    assert np.all(np.abs(net.weights[0]) <= 1 / 5)      # the subclass's draw, not N(0, 1/n)


# -- 2. replacing the module's sigmoid ------------------------------------------------


def _tanh_prime(z):
    return 1 - np.tanh(z) ** 2


@needs_original
def test_network_module_sigmoid_replaced_trains_tanh(orig1, monkeypatch):
    train, test = book_lists(100, 50)
    for module in (orig1, cbp.network):
        monkeypatch.setattr(module, "sigmoid", np.tanh)
        monkeypatch.setattr(module, "sigmoid_prime", _tanh_prime)
    seeded(2)
    o = orig1.Network([784, 10, 10])
    _, lo = run(lambda: o.SGD(list(train), 2, 10, 0.1, test_data=test))
    seeded(2)
    c = cbp.network.Network([784, 10, 10])
    _, lc = run(lambda: c.SGD(list(train), 2, 10, 0.1, test_data=test))
    assert lo == lc
    assert_same_net(o, c)
    x = train[0][0]
    np.testing.assert_allclose(c.feedforward(x), o.feedforward(x), rtol=1e-12)
    assert np.min(c.feedforward(x)) < 0 or np.min(o.feedforward(x)) >= 0   # tanh's range
    # Put back, the core serves again, and the result is sigmoid's.
    monkeypatch.undo()
    assert cbp.network.sigmoid is cbp.model.sigmoid
    assert np.all(c.feedforward(x) > 0)


@needs_original
@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
@pytest.mark.parametrize("cost", ["QuadraticCost", "CrossEntropyCost"])
def test_network2_module_sigmoid_replaced(orig2, monkeypatch, cost):
    train, test = book_lists(100, 50)
    for module in (orig2, cbp.network2):
        monkeypatch.setattr(module, "sigmoid", np.tanh)
        monkeypatch.setattr(module, "sigmoid_prime", _tanh_prime)
    flags = dict(evaluation_data=test, monitor_evaluation_cost=True,
                 monitor_evaluation_accuracy=True, monitor_training_cost=True,
                 monitor_training_accuracy=True)
    seeded(3)
    o = orig2.Network([784, 10, 10], cost=getattr(orig2, cost))
    ro, lo = run(lambda: o.SGD(list(train), 2, 10, 0.05, lmbda=0.1, **flags))
    seeded(3)
    c = cbp.network2.Network([784, 10, 10], cost=getattr(cbp.network2, cost))
    rc, lc = run(lambda: c.SGD(list(train), 2, 10, 0.05, lmbda=0.1, **flags))
    # The costs print 16 digits: compare numbers, the accuracy lines exactly.
    for a, b in zip(ro, rc):
        np.testing.assert_allclose(b, a, rtol=1e-9)
    assert [line for line in lo if "Accuracy" in line] == \
        [line for line in lc if "Accuracy" in line]
    assert_same_net(o, c)


# -- 3. a network2 subclass overriding only feedforward -----------------------------


def _halved(base):
    class Halved(base.Network):
        def feedforward(self, a):
            return 0.5 * base.Network.feedforward(self, a)
    return Halved


@needs_original
def test_network2_own_feedforward_computes_every_monitor(orig2):
    train, test = book_lists(200, 50)
    flags = dict(evaluation_data=test, monitor_evaluation_cost=True,
                 monitor_evaluation_accuracy=True, monitor_training_cost=True,
                 monitor_training_accuracy=True)
    seeded(7)
    o = _halved(orig2)([784, 10, 10])
    ro, _ = run(lambda: o.SGD(list(train), 2, 10, 0.5, **flags))
    seeded(7)
    c = _halved(cbp.network2)([784, 10, 10])
    rc, _ = run(lambda: c.SGD(list(train), 2, 10, 0.5, **flags))
    for a, b in zip(ro, rc):
        np.testing.assert_allclose(b, a, rtol=1e-9)
    # The training cost is the halved output's (the issue measured 3.38 against 0.85).
    plain = cbp.network2.Network([784, 10, 10])
    plain.weights, plain.biases = c.weights, c.biases
    assert rc[2][-1] != pytest.approx(plain.total_cost(train, 0.0), rel=1e-3)
    # Its four lists are in net.history, for plot_history.
    assert c.history["training_cost"] == rc[2]
    assert c.history["training_accuracy"] == [v / 200 for v in rc[3]]
    assert c.history["evaluation_cost"] == rc[0]
    assert c.history["evaluation_accuracy"] == [v / 50 for v in rc[1]]


def test_network2_history_plots_chapter_3(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    train, test = book_lists(200, 100)
    net = cbp.network2.Network([784, 10, 10], seed=0)
    run(lambda: net.SGD(train, 3, 10, 0.5, lmbda=0.1, evaluation_data=test,
                        monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                        monitor_training_cost=True, monitor_training_accuracy=True))
    fig = cbp.plot.plot_history(net.history, tmp_path / "overfitting.png")
    cost_ax, acc_ax = fig.axes
    assert [l.get_label() for l in cost_ax.lines] == \
        ["training (during epoch)", "training", "evaluation"]
    assert [l.get_label() for l in acc_ax.lines] == \
        ["training accuracy", "evaluation accuracy"]
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(),
                               100 * np.array(net.history["evaluation_accuracy"]))
    # The Python path (a cost of one's own) keeps the lists too.
    class Own(cbp.network2.CrossEntropyCost):
        pass
    own = cbp.network2.Network([784, 5, 10], cost=Own, seed=0)
    run(lambda: own.SGD(train[:50], 2, 10, 0.5, monitor_training_cost=True))
    assert own.history["epoch"] == [0, 1] and len(own.history["training_cost"]) == 2
    cbp.plot.plot_history(own.history, tmp_path / "own.png")


# -- quiet drop-ins, warnings at the user's line ------------------------------------


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(fn)
    return caught


def test_book_setups_do_not_warn():
    """The issue's list: chapter 1's [784, 10] and seed 4, chapter 3's η = 0.025, the
    learning-speed network; each has enough mini-batches for the checks to judge."""
    train, test = book_lists(1000, 100)
    setups = []
    seeded(4)
    net = cbp.network.Network([784, 30, 10])
    setups.append(lambda: net.SGD(list(train), 2, 10, 3.0, test_data=test))
    seeded(0)
    flat = cbp.network.Network([784, 10])
    setups.append(lambda: flat.SGD(list(train), 2, 10, 3.0, test_data=test))
    ch3 = cbp.network2.Network([784, 30, 10])
    setups.append(lambda: ch3.SGD(list(train), 2, 10, 0.025, lmbda=5.0, evaluation_data=test,
                                  monitor_evaluation_accuracy=True))
    deep = cbp.network2.Network([784, 30, 30, 10], cost=cbp.network2.QuadraticCost)
    setups.append(lambda: deep.SGD(list(train), 2, 10, 0.1))
    # cbp's own Network on the two that do learn from the start.
    setups.append(lambda: cbp.Network([784, 10], seed=0).SGD(
        (_X[:1000], _y[:1000]), 2, 10, 3.0, verbose=False))
    setups.append(lambda: cbp.Network([784, 30, 10], cost="cross_entropy", init="scaled",
                                      seed=0).SGD((_X[:1000], _y[:1000]), 2, 10, 0.025,
                                                  lmbda=5.0, verbose=False))
    for setup in setups:
        assert [str(w.message) for w in _caught(setup)] == []


def test_drop_ins_stay_quiet_where_the_original_runs():
    # Pixels 0..255: the original trains (badly) without a word; cbp.Network warns.
    train = [(x * 255, t) for x, t in book_lists(100, 0)[0]]
    net = cbp.network.Network([784, 10, 10])
    assert _caught(lambda: net.SGD(train, 1, 10, 3.0)) == []
    fresh = cbp.Network([784, 10, 10], seed=0)
    caught = _caught(lambda: fresh.SGD((_X[:100] * 255, _y[:100]), 1, 10, 3.0, verbose=False))
    assert [w.category for w in caught] == [cbp.TrainingWarning]


def test_warnings_point_at_the_callers_line():
    for call in (lambda: cbp.Network([784, 10], seed=0).SGD(
                     (_X[:100] * 255, _y[:100]), 1, 10, 3.0, verbose=False),
                 lambda: cbp.SGD(3.0).run(cbp.Network([784, 10], seed=0),
                                          (_X[:100] * 255, _y[:100]), 1)):
        caught = _caught(call)
        assert len(caught) == 1 and caught[0].filename == __file__, \
            [(w.filename, w.lineno) for w in caught]


def test_mnist_loader_warning_points_at_the_callers_line(tmp_path, monkeypatch):
    import cbp.mnist_loader
    monkeypatch.setenv("CBP_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    for load in (cbp.mnist_loader.load_data_wrapper, cbp.mnist_loader.load_data):
        monkeypatch.setattr(cbp.mnist_loader, "_warned", False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load()
        assert [w.filename for w in caught] == [__file__]


# -- messages -----------------------------------------------------------------------


def test_fill_on_a_weight_snapshot_says_what_to_do():
    net = cbp.Network([3, 2], seed=0)
    for method, args in (("fill", (0.0,)), ("sort", ()), ("put", ([0], [1.0]))):
        with pytest.raises(ValueError, match=r"read-only snapshots.*net.weights\[l\] = w"):
            getattr(net.weights[0], method)(*args)
    w = net.weights[0].copy()
    w.fill(0.5)                                   # a copy is the user's to change
    net.weights[0] = w
    assert np.all(net.weights[0] == 0.5)


@pytest.mark.parametrize("module", [cbp.network, cbp.network2])
def test_subclass_init_without_super_says_what_to_do(module):
    class BookInit(module.Network):
        def __init__(self, sizes):
            self.num_layers = len(sizes)          # as the book's __init__ begins
            self.sizes = sizes
            self.default_weight_initializer()

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(sizes"):
        BookInit([3, 2])

    class FixedInit(module.Network):
        def __init__(self, sizes):
            super().__init__(sizes)
            self.sizes = sizes

    with pytest.raises(AttributeError, match="fixed when the network is built"):
        FixedInit([3, 2])
