"""cbp.network3, the drop-in for the book's network3.py: API, printed lines, refusals,
shared variables, the original's initial weights, dropout and thread independence."""
import gzip
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import cbp.network3 as network3
from cbp import datasets
from cbp.network3 import (ConvPoolLayer, FullyConnectedLayer, Network, ReLU, SoftmaxLayer,
                          sigmoid, size, tanh)

from network3_loops import ACT, conv_valid, max_pool


@pytest.fixture
def floatX():
    old, threads = network3.config.floatX, network3.config.num_threads
    yield network3.config
    network3.config.floatX, network3.config.num_threads = old, threads


def reference_output(net, X):
    """The original's inference path in NumPy: (1 − p) scaling, no masks."""
    A = X.astype(np.float64)
    for layer in net.layers:
        w, b = layer.w.get_value().astype(np.float64), layer.b.get_value().astype(np.float64)
        if isinstance(layer, ConvPoolLayer):
            A = A.reshape((A.shape[0],) + layer.image_shape[1:])
            Z = max_pool(conv_valid(A, w), *layer.poolsize) + b[None, :, None, None]
            A = ACT[layer.activation_fn](Z).reshape(A.shape[0], -1)
        else:
            Z = (1 - layer.p_dropout) * (A @ w) + b
            if isinstance(layer, SoftmaxLayer):
                e = np.exp(Z - Z.max(axis=1, keepdims=True))
                A = e / e.sum(axis=1, keepdims=True)
            else:
                A = ACT[layer.activation_fn](Z)
    return A


def tiny_parts(n_train=60, n_valid=20, n_test=20, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)

    def part(n):
        return rng.random((n, 784)).astype(dtype), rng.integers(0, 10, n).astype(np.int32)
    return [part(n_train), part(n_valid), part(n_test)]


def shared(parts):
    return [(network3.SharedVariable(x, "x"), network3.SharedVariable(y, "y")) for x, y in parts]


def basic_conv_layers(mbs=10, act=sigmoid, p=0.0):
    return [ConvPoolLayer(image_shape=(mbs, 1, 28, 28), filter_shape=(4, 1, 5, 5), poolsize=(2, 2),
                          activation_fn=act),
            FullyConnectedLayer(n_in=4 * 12 * 12, n_out=12, activation_fn=act, p_dropout=p),
            SoftmaxLayer(n_in=12, n_out=10, p_dropout=p)]


# -- the module -----------------------------------------------------------------

def test_import_prints_what_it_runs_on():
    out = subprocess.run([sys.executable, "-c", "import cbp.network3"], capture_output=True,
                         text=True, check=True).stdout
    assert "CPU" in out and "float32" in out and "GPU" in out


def test_public_names():
    for name in ["load_data_shared", "Network", "ConvPoolLayer", "FullyConnectedLayer",
                 "SoftmaxLayer", "linear", "ReLU", "sigmoid", "tanh", "size", "dropout_layer"]:
        assert callable(getattr(network3, name)), name
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(network3.ReLU(z), [0, 0, 3])
    np.testing.assert_array_equal(network3.linear(z), z)
    np.testing.assert_allclose(network3.sigmoid(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(network3.tanh(z), np.tanh(z))


# -- load_data_shared -------------------------------------------------------------

def write_pickle(path, parts):
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple((x, y.astype(np.int64)) for x, y in parts), f, protocol=2)


def test_load_data_shared_reads_the_books_path(tmp_path, monkeypatch, floatX):
    parts = tiny_parts()
    (tmp_path / "data").mkdir()
    (tmp_path / "src").mkdir()
    write_pickle(tmp_path / "data" / "mnist.pkl.gz", parts)
    monkeypatch.chdir(tmp_path / "src")
    training_data, validation_data, test_data = network3.load_data_shared()
    assert [size(d) for d in (training_data, validation_data, test_data)] == [60, 20, 20]
    x = training_data[0].get_value(borrow=True)
    assert x.dtype == np.float32 and x.shape == (60, 784)
    np.testing.assert_array_equal(x, parts[0][0])
    y = test_data[1].eval()
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, parts[2][1])
    floatX.floatX = "float64"
    training_data, _, _ = network3.load_data_shared("../data/mnist.pkl.gz")
    assert training_data[0].get_value().dtype == np.float64


def test_load_data_shared_refuses(tmp_path):
    with pytest.raises(FileNotFoundError):
        network3.load_data_shared(str(tmp_path / "mnist_expanded.pkl.gz"))
    bad = tmp_path / "bad.pkl.gz"
    with gzip.open(bad, "wb") as f:
        pickle.dump(os.system, f, protocol=2)
    with pytest.raises(ValueError):
        network3.load_data_shared(str(bad))
    with pytest.raises(TypeError):
        network3.load_data_shared(3)


# -- initial weights: the original's draws ------------------------------------------

def test_seed_gives_the_originals_initial_weights():
    np.random.seed(12345)
    # network3.py's draws, in its order, for basic_conv's layers
    expected = [np.random.normal(loc=0, scale=np.sqrt(1.0 / (20 * 25 // 4)), size=(20, 1, 5, 5)),
                np.random.normal(loc=0, scale=1.0, size=(20,)),
                np.random.normal(loc=0.0, scale=np.sqrt(1.0 / 100), size=(2880, 100)),
                np.random.normal(loc=0.0, scale=1.0, size=(100,)),
                np.zeros((100, 10)), np.zeros(10)]
    after = np.random.get_state()[1].copy(), np.random.get_state()[2]
    np.random.seed(12345)
    net = Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                                 poolsize=(2, 2)),
                   FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100),
                   SoftmaxLayer(n_in=100, n_out=10)], 10)
    got = [p.get_value() for p in net.params]
    for e, g in zip(expected, got):
        assert g.dtype == np.float32 and g.shape == e.shape
        np.testing.assert_array_equal(g, e.astype(np.float32))
    # the same number of draws, and Network() itself draws nothing
    np.testing.assert_array_equal(np.random.get_state()[1], after[0])
    assert np.random.get_state()[2] == after[1]


def test_float64_keeps_the_draws_exact(floatX):
    floatX.floatX = "float64"
    np.random.seed(3)
    w = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / 30), size=(784, 30))
    np.random.seed(3)
    layer = FullyConnectedLayer(784, 30)
    assert layer.w.get_value().dtype == np.float64
    np.testing.assert_array_equal(layer.w.get_value(), w)


# -- shared variables ------------------------------------------------------------------

def test_shared_variables_read_and_plant_weights():
    np.random.seed(0)
    layers = basic_conv_layers()
    conv, fc, out = layers
    assert conv.w.get_value().shape == (4, 1, 5, 5) and fc.w.get_value().shape == (576, 12)
    assert out.w.get_value().shape == (12, 10) and conv.b.get_value().shape == (4,)
    copy = fc.w.get_value()
    copy[0, 0] = 42
    assert fc.w.get_value()[0, 0] != 42            # a copy
    view = fc.w.get_value(borrow=True)
    view[0, 0] = 42
    assert fc.w.get_value()[0, 0] == 42            # borrow=True writes through
    cw = conv.w.get_value()
    cw[1, 0, 0, 4] = 7.5
    conv.w.set_value(cw)
    np.testing.assert_array_equal(conv.w.eval(), cw)
    net = Network(layers, 10)
    X = tiny_parts(n_train=10)[0][0]
    # planted weights are the ones the network computes with
    rng = np.random.default_rng(1)
    for layer in layers:
        for p in layer.params:
            p.set_value(rng.normal(0, 0.2, p.get_value().shape))
    got = net._feedforward(X, 1)
    np.testing.assert_allclose(got, reference_output(net, X), rtol=1e-4, atol=1e-6)


def test_set_value_refuses():
    np.random.seed(0)
    layer = FullyConnectedLayer(5, 3)
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        layer.w.set_value(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="finite"):
        layer.b.set_value(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(TypeError):
        layer.b.set_value(np.array(["a", "b", "c"]))


# -- forward pass: the original's arithmetic --------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_matches_the_originals_formulas(dtype, floatX):
    floatX.floatX = dtype
    np.random.seed(1)
    mbs = 5
    net = Network([ConvPoolLayer(image_shape=(mbs, 1, 28, 28), filter_shape=(3, 1, 5, 5),
                                 activation_fn=ReLU),
                   ConvPoolLayer(image_shape=(mbs, 3, 12, 12), filter_shape=(4, 3, 5, 5),
                                 activation_fn=tanh),
                   FullyConnectedLayer(n_in=4 * 4 * 4, n_out=20, p_dropout=0.5),
                   SoftmaxLayer(n_in=20, n_out=10, p_dropout=0.25)], mbs)
    rng = np.random.default_rng(2)
    net.layers[-1].w.set_value(rng.normal(0, 1, (20, 10)))
    X = rng.random((25, 784)).astype(dtype)
    got = net._feedforward(X, 2)
    tol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, reference_output(net, X), rtol=tol, atol=tol)


# -- SGD: printed lines and bookkeeping ---------------------------------------------------

def test_sgd_prints_the_originals_lines(capsys):
    np.random.seed(2)
    net = Network([FullyConnectedLayer(n_in=784, n_out=10), SoftmaxLayer(n_in=10, n_out=10)], 10)
    parts = tiny_parts(n_train=6000, n_valid=25, n_test=33)
    training_data, validation_data, test_data = shared(parts)
    net.SGD(training_data, 2, 10, 0.1, validation_data, test_data)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Training mini-batch number 0"
    assert lines[1] == "Epoch 0: validation accuracy {0:.2%}".format(
        float(lines[1].split()[-1].rstrip("%")) / 100)
    assert lines[2] == "This is the best validation accuracy to date."
    assert re.fullmatch(r"The corresponding test accuracy is \d+\.\d\d%", lines[3])
    assert "Training mini-batch number 1000" in lines
    assert lines[-3] == "Finished training network."
    assert re.fullmatch(r"Best validation accuracy of \d+\.\d\d% obtained at iteration (599|1199)",
                        lines[-2])
    assert re.fullmatch(r"Corresponding test accuracy of \d+\.\d\d%", lines[-1])
    # the last epoch's accuracies, as the original computes them: mean over
    # the 2 (validation) and 3 (test) whole mini-batches of each one's accuracy
    predicted = np.argmax(reference_output(net, parts[1][0][:20]), axis=1)
    expected = np.mean((predicted == parts[1][1][:20]).reshape(2, 10).mean(axis=1))
    assert "Epoch 1: validation accuracy {0:.2%}".format(expected) in lines
    preds = np.concatenate([net.test_mb_predictions(i) for i in range(3)])
    np.testing.assert_array_equal(preds, np.argmax(reference_output(net, parts[2][0][:30]),
                                                   axis=1))


def test_sgd_keeps_the_best_validation_epoch(capsys, monkeypatch):
    np.random.seed(3)
    net = Network([FullyConnectedLayer(n_in=784, n_out=10), SoftmaxLayer(n_in=10, n_out=10)], 10)
    training_data, validation_data, test_data = shared(tiny_parts(n_train=20, n_test=30))
    accuracies = iter([0.5, 0.7, 0.6, 0.7, 0.4])
    monkeypatch.setattr(net, "_accuracy",
                        lambda x, y, n, nt: next(accuracies) if n == 2 else 0.25)
    net.SGD(training_data, 5, 10, 0.1, validation_data, test_data)
    out = capsys.readouterr().out
    assert out.count("This is the best validation accuracy to date.") == 3   # ties count
    assert "Best validation accuracy of 70.00% obtained at iteration 7\n" in out


def test_training_learns_and_repeats_with_the_seed():
    (X, y), _ = datasets.load_sample()
    X, y = X.astype(np.float32), y.astype(np.int32)
    data = shared([(X[:500], y[:500]), (X[500:700], y[500:700]), (X[700:800], y[700:800])])
    finals = []
    for _ in range(2):
        np.random.seed(4)
        net = Network(basic_conv_layers(act=ReLU, p=0.2), 10)
        net.SGD(data[0], 3, 10, 0.03, data[1], data[2])
        finals.append([p.get_value() for p in net.params])
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)
    accuracy = np.mean(np.argmax(net._feedforward(X[500:700], 1), axis=1) == y[500:700])
    assert accuracy > 0.3     # chance is 0.1


def test_results_do_not_depend_on_the_thread_count(floatX, request):
    from cbp import _core
    old = _core.conv_min_flops(0)       # threads even for these small layers
    request.addfinalizer(lambda: _core.conv_min_flops(old))
    parts = tiny_parts(n_train=50)
    finals = []
    for nt in (1, 2, 3):
        floatX.num_threads = nt
        np.random.seed(5)
        net = Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(6, 1, 5, 5),
                                     activation_fn=ReLU),
                       ConvPoolLayer(image_shape=(10, 6, 12, 12), filter_shape=(8, 6, 5, 5),
                                     activation_fn=ReLU),
                       FullyConnectedLayer(n_in=8 * 4 * 4, n_out=30, activation_fn=ReLU,
                                           p_dropout=0.5),
                       SoftmaxLayer(n_in=30, n_out=10, p_dropout=0.5)], 10)
        net.SGD(*shared(parts)[:1], 1, 10, 0.03, *shared(parts)[1:], lmbda=0.1)
        finals.append([p.get_value() for p in net.params])
    for other in finals[1:]:
        for a, b in zip(finals[0], other):
            np.testing.assert_array_equal(a, b)


def test_evaluation_runs_each_call_on_one_choice_of_threads(floatX, monkeypatch):
    # A call's chunks all run on the threads chosen for the call, and the call
    # is timed as a whole: chunk by chunk, a team's first chunk (its threads
    # waking) held it to its slowest chunk and kept evaluation on one thread.
    from cbp import _pace
    floatX.num_threads = 2
    np.random.seed(6)
    net = Network(basic_conv_layers(act=ReLU), 10)
    X = np.random.default_rng(6).random((350, 784)).astype(np.float32)
    used, recorded = [], []
    forward = net._feedforward
    monkeypatch.setattr(net, "_feedforward", lambda rows, nt: used.append(nt) or forward(rows, nt))
    record = _pace.record
    monkeypatch.setattr(_pace, "record", lambda pace, t, s: recorded.append(t) or record(pace, t, s))
    network3._PACE.clear()
    monkeypatch.setattr(network3, "WARM_SECONDS", 0.0)      # one untimed call per side
    monkeypatch.setattr(network3, "EVAL_ROWS", 100)         # chunks of 100 rows
    expected = np.argmax(forward(X, 1), axis=1)
    net._predict(X[:50], 2)            # less than a chunk: neither timed nor the untimed first
    assert recorded == []
    picks = []
    for call in range(9):
        used.clear()
        np.testing.assert_array_equal(net._predict(X, 2), expected)
        assert len(used) == 4 and len(set(used)) == 1       # 100 + 100 + 100 + 50 rows
        picks.append(used[0])
    # each side's first call on this network is not timed (its buffers, the
    # team's threads), then network3.SETTLE (3) timed calls each, then the faster
    assert network3.SETTLE == 3
    assert picks[:8] == [2] * 4 + [1] * 4 and recorded == [2] * 3 + [1] * 3 + picks[8:]
    net._predict(X[:50], 2)
    assert len(recorded) == 7


def test_evaluation_chunks_are_as_long_as_the_layers_buffers_allow_with_the_same_outputs(
        floatX, monkeypatch):
    # Whole mini-batches, at least 100 rows, more while the layers' buffers
    # for them fit in EVAL_BYTES (up to EVAL_ROWS); the outputs are the same
    # bits for every chunk.
    floatX.num_threads = 2
    np.random.seed(7)
    net = Network([FullyConnectedLayer(n_in=784, n_out=100), SoftmaxLayer(n_in=100, n_out=10)], 10)
    X = np.random.default_rng(7).random((1000, 784)).astype(np.float32)
    row = net.layers[0].row_bytes() + net.layers[1].row_bytes()
    assert row == (2 * 100 + 3 * 784 + 2 * 10 + 3 * 100) * 4
    sizes = []
    forward = net._feedforward
    monkeypatch.setattr(net, "_feedforward", lambda rows, nt: sizes.append(len(rows)) or forward(rows, nt))
    outputs = {}
    for budget, chunk in ((row * 10**6, 1000), (row * 745, 740), (row * 60, 100)):
        monkeypatch.setattr(network3, "EVAL_BYTES", budget)
        sizes.clear()
        outputs[chunk] = net._predict(X, 2)
        assert sizes == [chunk] * (1000 // chunk) + ([1000 % chunk] if 1000 % chunk else [])
    assert outputs[1000].tobytes() == outputs[740].tobytes() == outputs[100].tobytes()
    assert (outputs[100] == np.argmax(forward(X, 1), axis=1)).all()


def test_a_networks_first_runs_are_not_timed_until_they_took_warm_seconds(floatX, monkeypatch):
    # A team whose second core had been idle runs its first tens of
    # milliseconds slower: a network's runs on each thread count are timed
    # only once its untimed ones took network3.WARM_SECONDS.
    from cbp import _pace
    floatX.num_threads = 2
    np.random.seed(6)
    net = Network(basic_conv_layers(act=ReLU), 10)
    X = np.random.default_rng(6).random((200, 784)).astype(np.float32)
    recorded = []
    record = _pace.record
    monkeypatch.setattr(_pace, "record", lambda pace, t, s: recorded.append(t) or record(pace, t, s))
    network3._PACE.clear()
    monkeypatch.setattr(network3, "WARM_SECONDS", 3600.0)
    monkeypatch.setattr(network3, "EVAL_ROWS", 100)
    for call in range(4):
        net._predict(X, 2)
    assert recorded == [] and 0 < net._warm[("predict", 100, 2)] < 3600.0
    monkeypatch.setattr(network3, "WARM_SECONDS", net._warm[("predict", 100, 2)])
    net._predict(X, 2)
    assert recorded == [2]
    # one thread: the caller's own thread, already running; one untimed call
    network3._PACE.clear()
    monkeypatch.setattr(net, "_choice", lambda kind, team: (1, {"runs": 0}))
    for call in range(3):
        net._predict(X, 2)
    assert recorded == [2, 1, 1]


# -- dropout ------------------------------------------------------------------------------

def test_dropout_layer():
    np.random.seed(6)
    state = np.random.get_state()[1].copy()
    x = np.ones((200, 100))
    out = network3.dropout_layer(x, 0.3)
    np.testing.assert_array_equal(np.random.get_state()[1], state)   # global state untouched
    assert set(np.unique(out)) == {0.0, 1.0}
    assert abs(out.mean() - 0.7) < 0.01
    np.testing.assert_array_equal(out, network3.dropout_layer(x, 0.3))  # same state, same mask
    np.random.seed(7)
    assert not np.array_equal(out, network3.dropout_layer(x, 0.3))
    assert network3.dropout_layer(np.ones(5, np.float32), 0.5).dtype == np.float32
    with pytest.raises(ValueError):
        network3.dropout_layer(x, 1.0)
    with pytest.raises(TypeError):
        network3.dropout_layer(x, "0.5")


# -- refusals --------------------------------------------------------------------------------

def test_network_refuses_an_image_shape_that_does_not_fit():
    np.random.seed(0)
    with pytest.raises(ValueError, match=r"layers\[1\].*\(10, 20, 14, 14\).*\(10, 20, 12, 12\)"):
        Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5)),
                 ConvPoolLayer(image_shape=(10, 20, 14, 14), filter_shape=(40, 20, 5, 5)),
                 SoftmaxLayer(n_in=40 * 5 * 5, n_out=10)], 10)


def test_network_refuses_an_n_in_that_does_not_fit():
    np.random.seed(0)
    with pytest.raises(ValueError, match=r"layers\[1\].*n_in=2000.*\(10, 20, 12, 12\) = 2880"):
        Network([ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5)),
                 FullyConnectedLayer(n_in=2000, n_out=100), SoftmaxLayer(n_in=100, n_out=10)], 10)
    with pytest.raises(ValueError, match=r"layers\[2\].*n_in=50.*100"):
        Network([FullyConnectedLayer(n_in=784, n_out=100), FullyConnectedLayer(100, 100),
                 SoftmaxLayer(n_in=50, n_out=10)], 10)


@pytest.mark.parametrize("build, error, match", [
    (lambda: Network([ConvPoolLayer(image_shape=(5, 1, 28, 28), filter_shape=(2, 1, 5, 5)),
                      SoftmaxLayer(288, 10)], 10), ValueError, "mini-batches of 5"),
    (lambda: Network([FullyConnectedLayer(784, 10)], 10), ValueError, "SoftmaxLayer"),
    (lambda: Network([SoftmaxLayer(784, 10), SoftmaxLayer(10, 10)], 10), ValueError, "last"),
    (lambda: Network([], 10), TypeError, "layers"),
    (lambda: Network([SoftmaxLayer(784, 10)], 0), ValueError, "mini_batch_size"),
    (lambda: Network([SoftmaxLayer(784, 10)], 2.5), TypeError, "mini_batch_size"),
    (lambda: Network(["layer"], 10), TypeError, r"layers\[0\]"),
    (lambda: FullyConnectedLayer(784, 10, activation_fn=np.exp), TypeError, "activation_fn"),
    (lambda: FullyConnectedLayer(784, 10, p_dropout=1.0), ValueError, "p_dropout"),
    (lambda: FullyConnectedLayer(784, 0), ValueError, "n_out"),
    (lambda: SoftmaxLayer("784", 10), TypeError, "n_in"),
    (lambda: ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(2, 1, 5, 3)), ValueError,
     "square"),
    (lambda: ConvPoolLayer(image_shape=(10, 2, 28, 28), filter_shape=(2, 1, 5, 5)), ValueError,
     "feature maps"),
    (lambda: ConvPoolLayer(image_shape=(10, 1, 4, 4), filter_shape=(2, 1, 5, 5)), ValueError,
     "do not fit"),
    (lambda: ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(2, 1, 5)), TypeError,
     "filter_shape"),
    (lambda: ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(2, 1, 5, 5),
                           poolsize=(30, 2)), ValueError, "poolsize"),
])
def test_bad_layers_refused(build, error, match):
    np.random.seed(0)
    with pytest.raises(error, match=match):
        build()


def test_mixed_dtypes_refused(floatX):
    np.random.seed(0)
    a = FullyConnectedLayer(784, 10)
    floatX.floatX = "float64"
    with pytest.raises(ValueError, match="dtypes"):
        Network([a, SoftmaxLayer(10, 10)], 10)
    with pytest.raises(ValueError, match="floatX"):
        floatX.floatX = "float16"


@pytest.mark.parametrize("change, error, match", [
    (dict(mini_batch_size=5), ValueError, "mini_batch_size"),
    (dict(epochs=1.5), TypeError, "epochs"),
    (dict(eta=-0.1), ValueError, "eta"),
    (dict(eta=float("nan")), ValueError, "eta"),
    (dict(lmbda="0"), TypeError, "lmbda"),
    (dict(labels=10), ValueError, "labels"),
    (dict(images=np.nan), ValueError, "finite"),
    (dict(width=783), ValueError, "784"),
    (dict(n_train=9), ValueError, "fewer than"),
])
def test_sgd_refuses_bad_input(change, error, match):
    np.random.seed(0)
    net = Network([FullyConnectedLayer(784, 10), SoftmaxLayer(10, 10)], 10)
    parts = tiny_parts(n_train=change.get("n_train", 20))
    if "labels" in change:
        parts[0][1][3] = change["labels"]
    if "images" in change:
        parts[0][0][1, 2] = change["images"]
    if "width" in change:
        parts[0] = (parts[0][0][:, :change["width"]].copy(), parts[0][1])
    tr, va, te = shared(parts)
    before = [p.get_value() for p in net.params]
    with pytest.raises(error, match=match):
        net.SGD(tr, change.get("epochs", 1), change.get("mini_batch_size", 10),
                change.get("eta", 0.1), va, te, lmbda=change.get("lmbda", 0.0))
    for b, p in zip(before, net.params):       # nothing changed
        np.testing.assert_array_equal(b, p.get_value())
