"""The book's code, through cbp's drop-ins, against the originals under the same seeds.

The originals (network.py, network2.py, mnist_loader.py, converted to Python 3)
live in ../shared/nielsen/ and are imported from there as the oracle.
"""
import contextlib
import gzip
import io
import json
import os
import pickle
import random
import struct
import warnings

import numpy as np
import pytest

import cbp
import cbp.mnist_loader
import cbp.network
import cbp.network2
from cbp import _data, datasets, reference
from conftest import load_original

orig1 = load_original("network")
orig2 = load_original("network2")
orig_loader = load_original("mnist_loader")

(_X, _y), (_Xt, _yt) = datasets.load_sample()


def book_lists(n_train, n_test, dtype=np.float32):
    """network.py-style lists from the embedded sample (float32 columns as mnist_loader's)."""
    X, Xt = _X[:n_train].astype(dtype), _Xt[:n_test].astype(dtype)
    train = [(x.reshape(784, 1), cbp.network2.vectorized_result(int(y)))
             for x, y in zip(X, _y[:n_train])]
    test = [(x.reshape(784, 1), np.int64(y)) for x, y in zip(Xt, _yt[:n_test])]
    return train, test


TRAIN, TEST = book_lists(400, 200)


def seeded(seed):
    random.seed(seed)
    np.random.seed(seed)


def run(fn):
    """(return value, printed lines) of fn()."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        value = fn()
    return value, out.getvalue().splitlines()


def assert_close_layers(a, b, rel=1e-9):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape
        assert np.max(np.abs(u - v)) <= rel * max(1.0, np.max(np.abs(u))), np.max(np.abs(u - v))


def assert_same_net(o, c):
    assert_close_layers(o.weights, c.weights)
    assert_close_layers(o.biases, c.biases)


def assert_same_lines(lines_o, lines_c):
    """Identical lines, except cost values (printed with 17 digits) to 1e-9 relative."""
    assert len(lines_o) == len(lines_c), (lines_o, lines_c)
    for lo, lc in zip(lines_o, lines_c):
        if lo.startswith("Cost on"):
            head_o, value_o = lo.rsplit(" ", 1)
            head_c, value_c = lc.rsplit(" ", 1)
            assert head_o == head_c
            assert float(value_c) == pytest.approx(float(value_o), rel=1e-9)
        else:
            assert lo == lc


# -- chapter 1: network.py ------------------------------------------------------


@pytest.mark.parametrize("sizes, m, eta, epochs", [
    ([784, 10], 10, 3.0, 2),
    ([784, 20, 10], 10, 3.0, 3),
    ([784, 12, 11, 10], 7, 1.0, 2),
    ([784, 16, 10], 1, 0.5, 1),
])
@pytest.mark.parametrize("with_test", [True, False])
def test_network_py_same_lines_weights_and_order(sizes, m, eta, epochs, with_test):
    results = []
    for module in (orig1, cbp.network):
        seeded(7)
        data = list(TRAIN)
        net = module.Network(sizes)
        value, lines = run(lambda: net.SGD(data, epochs, m, eta,
                                           test_data=TEST if with_test else None))
        results.append((net, value, lines, data))
    (o, vo, lo, do), (c, vc, lc, dc) = results
    assert vo is None and vc is None
    assert lc == lo
    assert len(lc) == epochs
    assert_same_net(o, c)
    # The caller's list is shuffled in place exactly as the original shuffles it.
    assert all(a is b for a, b in zip(do, dc))
    assert set(c.history) >= {"epoch", "cost"} and c.history["epoch"] == list(range(epochs))


def test_network_py_several_networks_from_one_list():
    lines = []
    for module in (orig1, cbp.network):
        seeded(3)
        data = list(TRAIN)
        _, first = run(lambda: module.Network([784, 15, 10]).SGD(data, 2, 10, 3.0, test_data=TEST))
        _, second = run(lambda: module.Network([784, 25, 10]).SGD(data, 2, 20, 2.0,
                                                                   test_data=TEST))
        lines.append(first + second)
    assert lines[0] == lines[1]


def test_network_py_feedforward_backprop_evaluate_match():
    seeded(11)
    o = orig1.Network([784, 9, 10])
    seeded(11)
    c = cbp.network.Network([784, 9, 10])
    assert_same_net(o, c)
    x, y = TRAIN[0]
    np.testing.assert_allclose(c.feedforward(x), o.feedforward(x), rtol=1e-12)
    for go, gc in zip(o.backprop(x, y), c.backprop(x, y)):
        assert_close_layers(go, gc)
    assert c.evaluate(TEST) == o.evaluate(TEST)
    np.testing.assert_allclose(c.cost_derivative(c.feedforward(x), y),
                               o.cost_derivative(o.feedforward(x), y), rtol=1e-12)
    o.update_mini_batch(TRAIN[:10], 3.0)
    c.update_mini_batch(TRAIN[:10], 3.0)
    assert_same_net(o, c)


def test_array_input_without_seed_shuffles_as_a_list_would():
    X = np.stack([x.ravel() for x, _ in TRAIN]).astype(np.float64)
    Y = np.stack([y.ravel() for _, y in TRAIN])
    nets = []
    for data in ((X, Y), list(TRAIN)):
        seeded(5)
        net = cbp.Network([784, 10, 10])
        net.SGD(data, 2, 10, 3.0, verbose=False)
        nets.append(net)
    assert_same_net(*nets)
    assert X.shape == (400, 784)


def test_seed_keeps_cbp_generator():
    np.random.seed(0)
    a = cbp.Network([5, 4, 3], seed=42)
    np.random.seed(1)
    b = cbp.Network([5, 4, 3], seed=42)
    for u, v in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(u, v)
    # and a seeded network leaves the caller's list alone
    data = list(TRAIN[:50])
    before = list(data)
    a2 = cbp.Network([784, 10], seed=1)
    a2.SGD(data, 1, 10, 1.0, verbose=False)
    assert all(p is q for p, q in zip(before, data))


def test_unseeded_draws_are_the_originals():
    seeded(9)
    o2 = orig2.Network([6, 5, 4])
    seeded(9)
    c2 = cbp.network2.Network([6, 5, 4])
    assert_close_layers(o2.weights, c2.weights, rel=0)
    assert_close_layers(o2.biases, c2.biases, rel=0)
    seeded(9)
    base = cbp.Network([6, 5, 4], init="scaled", dtype="float32")
    assert_close_layers(o2.weights, base.weights, rel=1e-7)
    seeded(10)
    o2.large_weight_initializer()
    seeded(10)
    c2.large_weight_initializer()
    assert_close_layers(o2.weights, c2.weights, rel=0)
    assert_close_layers(o2.biases, c2.biases, rel=0)


# -- chapter 3: network2.py ------------------------------------------------------

MONITORS = dict(monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                monitor_training_cost=True, monitor_training_accuracy=True)


def _network2_pair(sizes, cost, large, epochs, m, eta, lmbda, flags, seed=4, evaluation=True):
    out = []
    for module in (orig2, cbp.network2):
        seeded(seed)
        data = list(TRAIN)
        net = module.Network(sizes, cost=getattr(module, cost))
        if large:
            net.large_weight_initializer()
        value, lines = run(lambda: net.SGD(data, epochs, m, eta, lmbda=lmbda,
                                           evaluation_data=TEST if evaluation else None,
                                           **flags))
        out.append((net, value, lines, data))
    return out


@pytest.mark.parametrize("cost", ["CrossEntropyCost", "QuadraticCost"])
@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("lmbda", [0.0, 2.0])
def test_network2_all_monitors(cost, large, lmbda):
    (o, vo, lo, do), (c, vc, lc, dc) = _network2_pair([784, 15, 10], cost, large, 2, 10, 0.5,
                                                      lmbda, MONITORS)
    assert_same_lines(lo, lc)
    assert isinstance(vc, tuple) and len(vc) == 4
    for a, b in zip(vo, vc):
        assert len(a) == len(b) == 2
        np.testing.assert_allclose(b, a, rtol=1e-9)
    assert vc[1] == vo[1] and vc[3] == vo[3]    # accuracies: exact counts
    assert all(type(v) is int for v in vc[1] + vc[3])
    assert_same_net(o, c)
    assert all(a is b for a, b in zip(do, dc))


@pytest.mark.parametrize("flags", [
    {},
    {"monitor_evaluation_accuracy": True},
    {"monitor_training_cost": True},
    {"monitor_evaluation_cost": True, "monitor_training_accuracy": True},
])
def test_network2_each_monitor_flag(flags):
    (o, vo, lo, _), (c, vc, lc, _) = _network2_pair([784, 12, 12, 10], "CrossEntropyCost",
                                                    False, 2, 25, 0.8, 0.3, flags)
    assert_same_lines(lo, lc)
    for a, b in zip(vo, vc):
        np.testing.assert_allclose(b, a, rtol=1e-9)
    assert_same_net(o, c)


def test_network2_prints_blank_line_per_epoch_and_nothing_else_without_flags():
    (_, _, lo, _), (_, vc, lc, _) = _network2_pair([784, 10], "CrossEntropyCost", False, 3,
                                                   10, 0.5, 0.0, {}, evaluation=False)
    assert lc == lo == ["Epoch 0 training complete", "", "Epoch 1 training complete", "",
                        "Epoch 2 training complete", ""]
    assert vc == ([], [], [], [])


def test_network2_several_networks_in_sequence_and_cost_reassigned():
    lines = []
    for module in (orig2, cbp.network2):
        seeded(21)
        data = list(TRAIN)
        first = module.Network([784, 10, 10])
        _, a = run(lambda: first.SGD(data, 1, 10, 0.5, evaluation_data=TEST,
                                     monitor_evaluation_accuracy=True))
        second = module.Network([784, 20, 10], cost=module.QuadraticCost)
        second.cost = module.CrossEntropyCost
        _, b = run(lambda: second.SGD(data, 2, 10, 0.5, lmbda=1.0, evaluation_data=TEST,
                                      monitor_evaluation_accuracy=True,
                                      monitor_training_cost=True))
        lines.append((a + b, second))
    assert_same_lines(lines[0][0], lines[1][0])
    assert_same_net(lines[0][1], lines[1][1])
    assert lines[1][1].cost is cbp.network2.CrossEntropyCost


def _port_early_stopping(net, data, epochs, n, **kwargs):
    """The Python 3 port's early_stopping_n rule over the original, one epoch at a time."""
    results = ([], [], [], [])
    best, stale = 0, 0
    for _ in range(epochs):
        for acc, new in zip(results, net.SGD(data, 1, 10, 0.5, evaluation_data=TEST, **kwargs)):
            acc.extend(new)
        accuracy = (results[1] or results[3])[-1]
        if accuracy > best:
            best, stale = accuracy, 0
        else:
            stale += 1
        if stale == n:
            break
    return results


@pytest.mark.parametrize("n", [1, 2])
def test_network2_early_stopping(n):
    seeded(13)
    data = list(TRAIN[:150])
    o = orig2.Network([784, 30, 10])
    # A large η makes accuracy stall early, so the rule fires within the epochs.
    ref, _ = run(lambda: _port_early_stopping(o, data, 12, n, monitor_evaluation_accuracy=True,
                                              monitor_training_cost=True))
    seeded(13)
    data = list(TRAIN[:150])
    c = cbp.network2.Network([784, 30, 10])
    got, _ = run(lambda: c.SGD(data, 12, 10, 0.5, evaluation_data=TEST,
                               monitor_evaluation_accuracy=True, monitor_training_cost=True,
                               early_stopping_n=n))
    assert got[1] == ref[1]
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-9)
    assert len(got[1]) < 12          # it did stop early
    assert_same_net(o, c)


def test_network2_takes_iterators_as_the_python3_port_does():
    out = []
    for module in (orig2, cbp.network2):
        seeded(12)
        net = module.Network([784, 10, 10])
        data = list(TRAIN[:100])
        if module is orig2:     # the original needs lists: give it what zip would hold
            args = (data, TEST[:50])
        else:
            args = (zip([x for x, _ in data], [y for _, y in data]),
                    zip([x for x, _ in TEST[:50]], [y for _, y in TEST[:50]]))
        out.append(run(lambda: net.SGD(args[0], 2, 10, 0.5, evaluation_data=args[1],
                                       monitor_evaluation_accuracy=True,
                                       monitor_training_cost=True)))
    assert_same_lines(out[0][1], out[1][1])
    assert out[0][0][1] == out[1][0][1]


def test_network2_early_stopping_needs_an_accuracy():
    net = cbp.network2.Network([784, 10])
    with pytest.raises(ValueError, match="early_stopping_n"):
        net.SGD(list(TRAIN[:20]), 2, 10, 0.5, early_stopping_n=2)
    with pytest.raises(ValueError, match="early_stopping_n"):
        net.SGD(list(TRAIN[:20]), 2, 10, 0.5, early_stopping_n=-1,
                monitor_training_accuracy=True)
    with pytest.raises(ValueError, match="evaluation_data"):
        net.SGD(list(TRAIN[:20]), 1, 10, 0.5, monitor_evaluation_accuracy=True)


def test_network2_accuracy_total_cost_and_helpers():
    seeded(2)
    o = orig2.Network([784, 8, 10])
    seeded(2)
    c = cbp.network2.Network([784, 8, 10])
    assert c.accuracy(TEST) == o.accuracy(TEST)
    assert c.accuracy(TRAIN, convert=True) == o.accuracy(TRAIN, convert=True)
    for lmbda in (0.0, 3.0):
        assert c.total_cost(TRAIN, lmbda) == pytest.approx(o.total_cost(TRAIN, lmbda), rel=1e-9)
        assert c.total_cost(TEST, lmbda, convert=True) == pytest.approx(
            o.total_cost(TEST, lmbda, convert=True), rel=1e-9)
    a = np.array([[0.2], [0.9]])
    y = np.array([[0.0], [1.0]])
    z = np.array([[0.3], [-2.0]])
    for name in ("QuadraticCost", "CrossEntropyCost"):
        co, cc = getattr(orig2, name), getattr(cbp.network2, name)
        assert cc.fn(a, y) == pytest.approx(co.fn(a, y), rel=1e-12)
        np.testing.assert_allclose(cc.delta(z, a, y), co.delta(z, a, y), rtol=1e-12)
    assert cbp.network2.CrossEntropyCost.fn(np.array([[1.0]]), np.array([[1.0]])) == 0.0
    np.testing.assert_array_equal(cbp.network2.vectorized_result(3), orig2.vectorized_result(3))
    np.testing.assert_allclose(cbp.network2.sigmoid(z), orig2.sigmoid(z), rtol=1e-12)
    np.testing.assert_allclose(cbp.network2.sigmoid_prime(z), orig2.sigmoid_prime(z),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="digit"):
        cbp.network2.vectorized_result(10)
    o.update_mini_batch(TRAIN[:10], 0.5, 1.0, 400)
    c.update_mini_batch(TRAIN[:10], 0.5, 1.0, 400)
    assert_same_net(o, c)


class _MyCrossEntropy:
    # A student's own cost class: the same formulas, a class cbp does not know.
    @staticmethod
    def fn(a, y):
        return float(np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a))))

    @staticmethod
    def delta(z, a, y):
        return a - y


def test_network2_user_cost_class_trains_through_its_methods():
    calls = {"delta": 0}

    class Counted(_MyCrossEntropy):
        @staticmethod
        def delta(z, a, y):
            calls["delta"] += 1
            return a - y

    seeded(8)
    data = list(TRAIN[:100])
    o = orig2.Network([784, 10, 10], cost=_MyCrossEntropy)
    ro, lo = run(lambda: o.SGD(data, 2, 10, 0.5, lmbda=0.5, evaluation_data=TEST,
                               monitor_evaluation_cost=True, monitor_training_accuracy=True))
    seeded(8)
    data = list(TRAIN[:100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the original says nothing: neither does cbp
        c = cbp.network2.Network([784, 10, 10], cost=Counted)
    rc, lc = run(lambda: c.SGD(data, 2, 10, 0.5, lmbda=0.5, evaluation_data=TEST,
                               monitor_evaluation_cost=True, monitor_training_accuracy=True))
    assert calls["delta"] == 200
    assert_same_lines(lo, lc)
    for a, b in zip(ro, rc):
        np.testing.assert_allclose(b, a, rtol=1e-9)
    assert_same_net(o, c)


def test_network2_cost_without_fn_or_delta_is_refused():
    class NoDelta:
        @staticmethod
        def fn(a, y):
            return 0.0

    with pytest.raises(TypeError, match="fn.*delta"):
        cbp.network2.Network([3, 2], cost=NoDelta)
    net = cbp.network2.Network([3, 2])
    with pytest.raises(TypeError, match="cost"):
        net.cost = "os.system"
    with pytest.raises(TypeError):
        net.cost = NoDelta
    assert net.cost is cbp.network2.CrossEntropyCost


def test_network2_explain_uses_the_cost_class():
    for name, cbp_name in (("CrossEntropyCost", "cross_entropy"), ("QuadraticCost", "quadratic")):
        net = cbp.network2.Network([3, 2, 2], cost=getattr(cbp.network2, name), seed=1)
        twin = cbp.Network([3, 2, 2], cost=cbp_name, seed=1)
        twin.weights, twin.biases = net.weights, net.biases
        x, y = np.array([[0.5], [0.1], [0.9]]), np.array([[1.0], [0.0]])
        assert str(net.explain(x, y)) == str(twin.explain(x, y))
    own = cbp.network2.Network([3, 2], cost=type("ExplainMe", (_MyCrossEntropy,), {}))
    with pytest.raises(TypeError, match="ExplainMe"):
        own.explain(np.zeros((3, 1)), np.zeros((2, 1)))


def test_network2_networks_write_cbp_model_files(tmp_path):
    # cbp.io.save stores cbp's name of the cost, not the network2 cost class.
    for name, cbp_name in (("CrossEntropyCost", "cross_entropy"), ("QuadraticCost", "quadratic")):
        net = cbp.network2.Network([3, 4, 2], cost=getattr(cbp.network2, name), seed=2)
        cbp.io.save(net, tmp_path / f"{name}.npz")
        back = cbp.load(tmp_path / f"{name}.npz")
        assert back.cost == cbp_name
        x = np.array([0.2, 0.4, 0.6])
        np.testing.assert_array_equal(back.feedforward(x), net.feedforward(x))
    own = cbp.network2.Network([3, 2], cost=type("SaveMe", (_MyCrossEntropy,), {}))
    with pytest.raises(TypeError, match="SaveMe"):
        cbp.io.save(own, tmp_path / "own.npz")
    assert not (tmp_path / "own.npz").exists()


# -- network2 files ---------------------------------------------------------------


@pytest.mark.parametrize("cost", ["CrossEntropyCost", "QuadraticCost"])
def test_network2_files_both_ways(tmp_path, cost):
    seeded(1)
    o = orig2.Network([784, 7, 10], cost=getattr(orig2, cost))
    o.save(str(tmp_path / "orig.json"))
    c = cbp.network2.load(tmp_path / "orig.json")
    assert c.cost is getattr(cbp.network2, cost)
    assert_close_layers(o.weights, c.weights, rel=0)
    assert_close_layers(o.biases, c.biases, rel=0)
    x = TEST[0][0]
    assert np.array_equal(c.feedforward(x), c.feedforward(x))
    np.testing.assert_allclose(c.feedforward(x), o.feedforward(x), rtol=1e-12)
    c.save(tmp_path / "cbp.json")
    back = orig2.load(str(tmp_path / "cbp.json"))
    assert back.cost is getattr(orig2, cost)
    assert_close_layers(back.weights, c.weights, rel=0)
    assert_close_layers(back.biases, c.biases, rel=0)
    assert json.loads((tmp_path / "cbp.json").read_text()).keys() == {
        "sizes", "weights", "biases", "cost"}


def _valid_file():
    net = cbp.network2.Network([3, 2, 2], seed=0)
    return {"sizes": net.sizes, "weights": [w.tolist() for w in net.weights],
            "biases": [b.tolist() for b in net.biases], "cost": "CrossEntropyCost"}


@pytest.mark.parametrize("edit, message", [
    (lambda d: json.dumps(d)[:-20], "not a network2 JSON"),
    (lambda d: "sizes: [3, 2]", "not a network2 JSON"),
    (lambda d: b"\xff\xfe{}", "not a network2 JSON"),
    (lambda d: json.dumps([1, 2]), "JSON object"),
    (lambda d: json.dumps({**d, "cost": "os.system"}), "cost must be one of"),
    (lambda d: json.dumps({**d, "cost": "sys"}), "cost must be one of"),
    (lambda d: json.dumps({**d, "cost": ["CrossEntropyCost"]}), "cost must be one of"),
    (lambda d: json.dumps({**d, "sizes": [3, 2]}), "weights must be a list of 1"),
    (lambda d: json.dumps({**d, "sizes": [3, 10 ** 9, 2]}), "more than the file holds"),
    (lambda d: json.dumps({**d, "sizes": [3, -2, 2]}), "positive"),
    (lambda d: json.dumps({**d, "sizes": [3, True, 2]}), "positive"),
    (lambda d: json.dumps({**d, "weights": [d["weights"][0], [[1.0]]]}), r"shape \(2, 2\)"),
    (lambda d: json.dumps({**d, "weights": [[[1.0, 2.0], [3.0]], d["weights"][1]]}),
     "rectangular|shape"),
    (lambda d: json.dumps({**d, "biases": [[["a"], ["b"]], d["biases"][1]]}), "numbers"),
    (lambda d: json.dumps(d).replace(str(d["weights"][0][0][0]), "NaN", 1), "finite"),
    (lambda d: json.dumps(d).replace(str(d["weights"][0][0][0]), "Infinity", 1), "finite"),
    (lambda d: json.dumps(d).replace(str(d["weights"][0][0][0]), "1e999", 1), "NaN or inf"),
    (lambda d: "[" * 100000, "not a network2 JSON"),
])
def test_network2_load_refuses_bad_files(tmp_path, edit, message):
    content = edit(_valid_file())
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        cbp.network2.load(path)


def test_network2_load_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="regular file"):
        cbp.network2.load(fifo)
    with pytest.raises(IsADirectoryError):
        cbp.network2.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        cbp.network2.load(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="filename"):
        cbp.network2.load(3.5)


def test_network2_load_caps_the_size(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(_valid_file()))
    assert cbp.network2.load(path).sizes == [3, 2, 2]
    with pytest.raises(ValueError, match="max_bytes"):
        cbp.network2.load(path, max_bytes=10)


# -- subclass overrides (the book's exercises) ---------------------------------------


class _CrossEntropyDerivative:
    # Exercise: another cost's cost_derivative, in a subclass.
    def cost_derivative(self, output_activations, y):
        return (output_activations - y) / (output_activations * (1 - output_activations))


def _pair(mixin, sizes=(784, 12, 10)):
    seeded(17)
    o = type("O", (mixin, orig1.Network), {})(list(sizes))
    seeded(17)
    c = type("C", (mixin, cbp.network.Network), {})(list(sizes))
    return o, c


def test_overridden_cost_derivative_is_used():
    o, c = _pair(_CrossEntropyDerivative)
    lines = []
    for net in (o, c):
        seeded(4)
        lines.append(run(lambda: net.SGD(list(TRAIN[:200]), 2, 10, 0.5, test_data=TEST))[1])
    assert lines[0] == lines[1]
    assert_same_net(o, c)
    # and it differs from the quadratic cost's training
    seeded(17)
    plain = cbp.network.Network([784, 12, 10])
    seeded(4)
    run(lambda: plain.SGD(list(TRAIN[:200]), 2, 10, 0.5))
    assert not np.allclose(plain.weights[0], c.weights[0])


def test_overridden_backprop_update_and_feedforward_are_called():
    calls = {"backprop": 0, "update_mini_batch": 0, "feedforward": 0}

    class Counting:
        def backprop(self, x, y):
            calls["backprop"] += 1
            return super().backprop(x, y)

        def update_mini_batch(self, mini_batch, eta):
            calls["update_mini_batch"] += 1
            return super().update_mini_batch(mini_batch, eta)

        def feedforward(self, a):
            calls["feedforward"] += 1
            return super().feedforward(a)

    o, c = _pair(Counting)
    lines = []
    for net in (o, c):
        for k in calls:
            calls[k] = 0
        seeded(4)
        lines.append(run(lambda: net.SGD(list(TRAIN[:100]), 2, 10, 1.0, test_data=TEST[:50])))
        counts = dict(calls)
        if net is o:
            expected = counts
    assert counts == expected == {"backprop": 200, "update_mini_batch": 20, "feedforward": 100}
    assert lines[0][1] == lines[1][1]
    assert lines[1][0] is None
    assert_same_net(o, c)


def test_overridden_feedforward_alone_keeps_training_fast_and_evaluates_through_it():
    seen = []

    class Shifted:
        def feedforward(self, a):
            seen.append(1)
            return np.roll(super().feedforward(a), 1)   # a deliberately different answer

    o, c = _pair(Shifted)
    lines = []
    for net in (o, c):
        seeded(6)
        lines.append(run(lambda: net.SGD(list(TRAIN[:100]), 2, 10, 3.0, test_data=TEST))[1])
    assert lines[0] == lines[1]
    assert len(seen) == 2 * 2 * len(TEST)
    assert c.evaluate(TEST) == o.evaluate(TEST)


def test_overridden_backprop_with_wrong_shapes_is_refused():
    class Broken:
        def backprop(self, x, y):
            nabla_b, nabla_w = super().backprop(x, y)
            return nabla_b, [w[:, :1] for w in nabla_w]

    _, c = _pair(Broken)
    before = [w.copy() for w in c.weights]
    with pytest.raises(ValueError, match="backprop returned nabla_w"):
        c.update_mini_batch(TRAIN[:5], 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, c.weights))


def test_network2_overridden_update_mini_batch():
    calls = []

    class Counting:
        def update_mini_batch(self, mini_batch, eta, lmbda, n):
            calls.append(len(mini_batch))
            return super().update_mini_batch(mini_batch, eta, lmbda, n)

    seeded(3)
    o = type("O", (Counting, orig2.Network), {})([784, 10, 10])
    seeded(3)
    c = type("C", (Counting, cbp.network2.Network), {})([784, 10, 10])
    out = []
    for net in (o, c):
        seeded(5)
        out.append(run(lambda: net.SGD(list(TRAIN[:95]), 1, 10, 0.5, lmbda=1.0,
                                       evaluation_data=TEST,
                                       monitor_evaluation_accuracy=True)))
    assert calls == [10] * 9 + [5] + [10] * 9 + [5]
    assert out[0] == out[1]
    assert_same_net(o, c)


# -- weights and biases never lose a write --------------------------------------------


def test_layer_item_assignment_writes_into_the_network():
    net = cbp.network.Network([4, 3, 2])
    new = np.arange(12.0).reshape(3, 4)
    net.weights[0] = new
    assert np.array_equal(net.weights[0], new)
    net.biases[-1] = np.array([1.0, 2.0])      # a 1-D bias is accepted as for the list
    assert np.array_equal(net.biases[1], [[1.0], [2.0]])
    view = net.weights
    view[1] = np.ones((2, 3))
    assert np.array_equal(view[1], np.ones((2, 3)))     # the list read shows it too
    assert np.array_equal(net.feedforward(np.zeros((4, 1))),
                          reference.feedforward(net.weights, net.biases, np.zeros((4, 1))))


def test_layer_writes_are_validated_and_refused_writes_change_nothing():
    net = cbp.network.Network([4, 3, 2])
    before = [w.copy() for w in net.weights]
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(3, 4\)"):
        net.weights[0] = np.zeros((4, 3))
    with pytest.raises(ValueError, match="finite"):
        net.weights[1] = np.full((2, 3), np.nan)
    with pytest.raises(TypeError):
        net.weights[0] = "abc"
    with pytest.raises(IndexError):
        net.weights[2] = np.zeros((2, 3))
    with pytest.raises(TypeError, match="cannot grow or shrink"):
        net.weights.append(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="cannot grow or shrink"):
        del net.biases[0]
    with pytest.raises(ValueError, match="length"):
        net.weights[0:1] = []
    with pytest.raises(ValueError, match=r"read-only.*net\.weights\[l\] = w"):
        net.weights[0][0, 0] = 5.0
    with pytest.raises(ValueError, match=r"read-only.*net\.weights\[l\] = w"):
        net.biases[0] += 1
    with pytest.raises(ValueError, match="2 arrays"):
        net.weights = net.weights[:1]
    assert all(np.array_equal(a, b) for a, b in zip(before, net.weights))


def test_layers_read_are_snapshots_and_book_idioms_work():
    net = cbp.network.Network([784, 5, 10])
    snapshot = net.weights
    kept = snapshot[0].copy()
    run(lambda: net.SGD(list(TRAIN[:50]), 1, 10, 3.0))
    assert np.array_equal(snapshot[0], kept)               # training did not change it
    assert not np.array_equal(net.weights[0], kept)
    net.weights = [w.copy() for w in snapshot]              # network.py idioms
    assert np.array_equal(net.weights[0], kept)
    pairs = list(zip(net.biases, net.weights))
    assert [b.shape for b, _ in pairs] == [(5, 1), (10, 1)]
    assert len(net.weights + net.biases) == 4
    net.weights[:] = [np.zeros((5, 784)), np.zeros((10, 5))]
    assert not np.any(net.weights[0])


# -- fast conversion and cached evaluation ----------------------------------------------


def test_fast_stack_equals_checked_conversion():
    X, Y = _data.training_arrays(TRAIN, 784, 10, np.float64)
    assert X.shape == (400, 784) and X.flags.c_contiguous
    ref = np.stack([_data._checks.vector(x, "x", 784, np.float64) for x, _ in TRAIN])
    assert np.array_equal(X, ref)
    assert np.array_equal(np.argmax(Y, axis=1), _y[:400])
    bad = list(TRAIN[:5])
    x = bad[3][0].copy()
    x[10] = np.nan
    bad[3] = (x, bad[3][1])
    with pytest.raises(ValueError, match=r"\[3\].*finite"):
        _data.training_arrays(bad, 784, 10, np.float64)
    mixed = [(TRAIN[0][0], TRAIN[0][1]), (TRAIN[1][0].ravel(), TRAIN[1][1])]
    X2, _ = _data.training_arrays(mixed, 784, 10, np.float64)
    assert np.array_equal(X2, X[:2])
    wrong = [(TRAIN[0][0], TRAIN[0][1]), (TRAIN[1][0][:700], TRAIN[1][1])]
    with pytest.raises(ValueError, match=r"\[1\]"):
        _data.training_arrays(wrong, 784, 10, np.float64)
    with pytest.raises(ValueError, match="finite"):
        _data.training_arrays([(np.full((784, 1), 1e300), TRAIN[0][1])], 784, 10, np.float32)


def test_evaluation_cache_serves_the_same_list_and_sees_changes():
    owner = cbp.Network([784, 10], seed=0)
    converted = []

    def convert(data):
        converted.append(1)
        return _data.test_arrays(data, 784, 10, np.float64)

    data = list(TEST[:60])
    first = _data.cached(owner, "labels", data, lambda: convert(data))
    again = _data.cached(owner, "labels", data, lambda: convert(data))
    assert again is first and len(converted) == 1
    data.append(TEST[60])                                   # longer
    assert _data.cached(owner, "labels", data, lambda: convert(data))[0].shape[0] == 61
    data[5] = (TEST[70][0], TEST[70][1])                    # an item replaced
    third = _data.cached(owner, "labels", data, lambda: convert(data))
    assert np.array_equal(third[0][5], TEST[70][0].ravel())
    data.reverse()                                          # reordered
    fourth = _data.cached(owner, "labels", data, lambda: convert(data))
    assert fourth[1][0] == data[0][1]
    edited = [(x.copy(), y) for x, y in data]
    _data.cached(owner, "labels", edited, lambda: convert(edited))
    for x, _ in edited:                                     # every array edited in place
        x *= 0.5
    fifth = _data.cached(owner, "labels", edited, lambda: convert(edited))
    assert np.array_equal(fifth[0][0], edited[0][0].ravel())
    assert len(converted) == 6
    # evaluate goes through the cache: same answers as before and after changes
    net = cbp.network.Network([784, 10], seed=3)
    n1 = net.evaluate(TEST)
    assert net.evaluate(TEST) == n1 == net.evaluate(list(TEST))


# -- mnist_loader ------------------------------------------------------------------


def _book_pickle(path, n=(30, 10, 10)):
    rng = np.random.default_rng(0)
    parts = tuple((rng.integers(0, 256, (k, 784)).astype(np.float32) / np.float32(256),
                   rng.integers(0, 10, k).astype(np.int64)) for k in n)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=2)))
    return parts


def _assert_same_wrapper(a, b):
    for part_a, part_b in zip(a, b):
        assert type(part_a) is type(part_b) is list and len(part_a) == len(part_b)
        for (xa, ya), (xb, yb) in zip(part_a, part_b):
            assert xa.dtype == xb.dtype and xa.shape == xb.shape and np.array_equal(xa, xb)
            assert type(ya) is type(yb) and np.shape(ya) == np.shape(yb)
            assert np.all(ya == yb)


def test_mnist_loader_reads_book_pickle_from_data_dir(tmp_path, monkeypatch):
    parts = _book_pickle(tmp_path / "data" / "mnist.pkl.gz")
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    got = cbp.mnist_loader.load_data()
    for (X, y), (Xo, yo) in zip(got, parts):
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert np.array_equal(X, Xo) and np.array_equal(y, yo)
    _assert_same_wrapper(orig_loader.load_data_wrapper(), cbp.mnist_loader.load_data_wrapper())
    tr, va, te = cbp.mnist_loader.load_data_wrapper()
    assert tr[0][0].shape == (784, 1) and tr[0][1].shape == (10, 1)
    assert np.array_equal(tr[0][1], orig_loader.vectorized_result(int(parts[0][1][0])))


def test_mnist_loader_reads_book_pickle_in_current_dir(tmp_path, monkeypatch):
    parts = _book_pickle(tmp_path / "mnist.pkl.gz", n=(12, 5, 4))
    monkeypatch.chdir(tmp_path)
    tr, va, te = cbp.mnist_loader.load_data()
    assert (tr[0].shape, va[0].shape, te[0].shape) == ((12, 784), (5, 784), (4, 784))
    assert np.array_equal(te[1], parts[2][1])


def test_mnist_loader_refuses_a_malicious_pickle(tmp_path, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (print, ("ran!",))
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(Evil())))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        cbp.mnist_loader.load_data()


def _write_idx(path, images, labels):
    path.mkdir(parents=True, exist_ok=True)
    for kind, (X, y) in (("train", images), ("t10k", labels)):
        (path / f"{kind}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x803, len(X), 28, 28) + X.astype(np.uint8).tobytes())
        (path / f"{kind}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, len(y)) + y.astype(np.uint8).tobytes())


def test_mnist_loader_uses_cbp_data_directory(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    train = (rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 10, 20))
    test = (rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 10, 6))
    _write_idx(tmp_path / "cache", train, test)
    monkeypatch.setenv("CBP_DATA", str(tmp_path / "cache"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    (tr_X, tr_y), (va_X, va_y), (te_X, te_y) = cbp.mnist_loader.load_data()
    # fewer than 50,000 images: all are training, none validation
    assert tr_X.shape == (20, 784) and va_X.shape == (0, 784) and te_X.shape == (6, 784)
    assert tr_X.dtype == np.float32 and tr_y.dtype == np.int64
    # scaled as the book's file: grey level / 256
    assert np.array_equal(tr_X, train[0].reshape(20, 784).astype(np.float32) / 256)
    assert np.array_equal(te_y, test[1])


def test_mnist_loader_falls_back_to_sample_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("CBP_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cbp.mnist_loader, "_warned", False)
    with pytest.warns(UserWarning, match=r"mnist\.pkl\.gz.*download_mnist") as record:
        tr, va, te = cbp.mnist_loader.load_data_wrapper()
    assert str(tmp_path / "nothing") in str(record[0].message)
    assert "../data/mnist.pkl.gz" in str(record[0].message)
    assert (len(tr), len(va), len(te)) == (3000, 1000, 1000)
    assert tr[0][0].dtype == np.float32 and tr[0][0].shape == (784, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cbp.mnist_loader.load_data()


def test_book_script_end_to_end_with_the_drop_ins(tmp_path, monkeypatch):
    _book_pickle(tmp_path / "data" / "mnist.pkl.gz", n=(200, 50, 50))
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    outputs = []
    for loader, net_module in ((orig_loader, orig2), (cbp.mnist_loader, cbp.network2)):
        seeded(1)
        training_data, validation_data, test_data = loader.load_data_wrapper()
        net = net_module.Network([784, 10, 10], cost=net_module.CrossEntropyCost)
        outputs.append(run(lambda: net.SGD(training_data, 2, 10, 0.5, lmbda=5.0,
                                           evaluation_data=validation_data,
                                           monitor_evaluation_accuracy=True,
                                           monitor_training_cost=True)))
    assert_same_lines(outputs[0][1], outputs[1][1])
    np.testing.assert_allclose(outputs[1][0][2], outputs[0][0][2], rtol=1e-9)
    assert outputs[1][0][1] == outputs[0][0][1]


# -- random.shuffle drawn in the core ---------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 1000, 4097, 50_000])
def test_core_shuffle_is_random_shuffle(n):
    from cbp._data import python_shuffle as _python_shuffle
    for seed in (0, 1, 12345):
        random.seed(seed)
        random.random()                        # a state part-way through its words
        state = random.getstate()
        expected = list(range(n))
        random.shuffle(expected)
        after = random.getstate()
        random.setstate(state)
        got = _python_shuffle(n)
        assert got.dtype == np.intp and got.tolist() == expected
        assert random.getstate() == after      # the generator advanced exactly as by shuffle


def test_core_shuffle_defers_to_a_replaced_generator(monkeypatch):
    from cbp._data import python_shuffle as _python_shuffle
    calls = []

    def own_shuffle(x):
        calls.append(len(x))
        x.reverse()
    monkeypatch.setattr(random, "shuffle", own_shuffle)
    assert _python_shuffle(5).tolist() == [4, 3, 2, 1, 0] and calls == [5]


def test_core_shuffle_refuses_a_bad_state():
    from cbp import _core
    with pytest.raises(ValueError, match="624-word"):
        _core.python_shuffle(np.zeros(10, dtype=np.uint32), 0, np.arange(3, dtype=np.intp))
    with pytest.raises(ValueError, match="624-word"):
        _core.python_shuffle(np.zeros(624, dtype=np.uint32), 625, np.arange(3, dtype=np.intp))


def test_network2_save_writes_regular_files_only(tmp_path):
    # Written as model files are: atomically, never into a FIFO (which would
    # block) nor over a directory; a symlink keeps pointing at the new file.
    net = cbp.network2.Network([3, 2], seed=0)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="FIFO"):
        net.save(fifo)
    with pytest.raises(IsADirectoryError):
        net.save(tmp_path)
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    net.save(link)
    assert link.is_symlink() and cbp.network2.load(real).sizes == [3, 2]
    with pytest.raises(FileNotFoundError, match="missing"):
        net.save(tmp_path / "missing" / "net.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe.json", "real.json"]
