"""The public API: shapes, layouts, dtypes, attributes, history, evaluate, SGD corners."""
import warnings

import numpy as np
import pytest

import cbp


def small_net(**kwargs):
    kwargs.setdefault("seed", 0)
    return cbp.Network([5, 7, 3], **kwargs)


def random_data(n, n_in=5, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_in))
    labels = rng.integers(n_out, size=n)
    Y = np.eye(n_out)[labels]
    return X, Y, labels


def params(net):
    return [a.copy() for a in net.weights + net.biases]


def same_params(net, saved):
    return all(np.array_equal(a, b) for a, b in zip(net.weights + net.biases, saved))


def by_hand(net, X):
    """Sigmoid feedforward of rows X in NumPy."""
    a = np.asarray(X, dtype=float).T
    for w, b in zip(net.weights, net.biases):
        a = 1 / (1 + np.exp(-(w @ a + b)))
    return a.T


# -- feedforward -------------------------------------------------------------------

def test_feedforward_shapes():
    net = small_net()
    X, _, _ = random_data(4)
    batch = net.feedforward(X)
    assert batch.shape == (4, 3)
    col = net.feedforward(X[0].reshape(5, 1))
    assert col.shape == (3, 1)
    vec = net.feedforward(X[0])
    assert vec.shape == (3,)
    one_row = net.feedforward(X[:1])
    assert one_row.shape == (1, 3)
    # The same numbers whichever form (the core may block rows differently).
    np.testing.assert_allclose(col.ravel(), batch[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(vec, col.ravel())
    np.testing.assert_array_equal(one_row[0], vec)
    np.testing.assert_allclose(batch, by_hand(net, X), rtol=1e-13)
    assert batch.dtype == np.float64


def test_feedforward_empty_batch():
    assert small_net().feedforward(np.empty((0, 5))).shape == (0, 3)


def test_feedforward_single_input_unit():
    # n_in = 1: (1, 1) is a column, (k, 1) with k > 1 a batch.
    net = cbp.Network([1, 2], seed=0)
    assert net.feedforward(np.array([[0.5]])).shape == (2, 1)
    assert net.feedforward(np.array([0.5])).shape == (2,)
    out = net.feedforward(np.array([[0.5], [0.1], [0.2]]))
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out[0], net.feedforward(np.array([0.5])))


def test_feedforward_large_batch_matches_rows():
    # More rows than the core's chunk of 64, and not a multiple of it.
    net = small_net(activation="tanh", output_activation="softmax", cost="log_likelihood")
    X, _, _ = random_data(201, seed=3)
    batch = net.feedforward(X)
    rows = np.array([net.feedforward(x) for x in X])
    np.testing.assert_allclose(batch, rows, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(net.feedforward(X[64:128]), batch[64:128])  # one whole chunk


@pytest.mark.parametrize("make", [
    lambda X: np.asfortranarray(X),
    lambda X: X.T.copy().T,
    lambda X: np.ascontiguousarray(np.repeat(X, 2, axis=0))[::2],
    lambda X: np.ascontiguousarray(np.repeat(X, 3, axis=1))[:, ::3],
    lambda X: X[::-1][::-1],
    lambda X: X.tolist(),
], ids=["fortran", "transposed-copy", "row-stride", "column-stride", "reversed-view", "list"])
def test_feedforward_any_layout(make):
    net = small_net()
    X, _, _ = random_data(9, seed=1)
    expected = net.feedforward(X)
    view = make(X)
    np.testing.assert_array_equal(net.feedforward(view), expected)
    np.testing.assert_array_equal(X, np.asarray(view))     # the input is not modified


def test_feedforward_strided_subset():
    net = small_net()
    X, _, _ = random_data(10, seed=2)
    np.testing.assert_array_equal(net.feedforward(X[::2]), net.feedforward(X[::2].copy()))
    np.testing.assert_array_equal(net.feedforward(X[:, 0:5]), net.feedforward(X))
    wide = np.zeros((5, 3))
    wide[:, 1] = X[3]
    column = wide[:, 1:2]                # a non-contiguous (5, 1) column
    assert not column.flags.c_contiguous
    np.testing.assert_array_equal(net.feedforward(column).ravel(), net.feedforward(X[3]))


def test_feedforward_float32_and_integer_input():
    net = small_net()
    X = np.array([[1, 0, 2, -1, 3], [0, 0, 1, 1, 0]])
    expected = net.feedforward(X.astype(np.float64))
    np.testing.assert_array_equal(net.feedforward(X), expected)
    np.testing.assert_array_equal(net.feedforward(X.astype(np.int8)), expected)
    np.testing.assert_array_equal(net.feedforward(np.abs(X).astype(np.uint8)),
                                  net.feedforward(np.abs(X).astype(np.float64)))
    np.testing.assert_array_equal(net.feedforward(X.astype(np.float32)), expected)
    np.testing.assert_array_equal(net.feedforward(X.astype(bool)),
                                  net.feedforward(X.astype(bool).astype(float)))
    Xf = np.random.default_rng(0).uniform(-1, 1, (3, 5)).astype(np.float32)
    np.testing.assert_array_equal(net.feedforward(Xf), net.feedforward(Xf.astype(np.float64)))


def test_feedforward_read_only_input():
    net = small_net()
    X, _, _ = random_data(6)
    ro = X.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(net.feedforward(ro), net.feedforward(X))
    np.testing.assert_array_equal(net.feedforward(ro[0]), net.feedforward(X[0]))
    Y = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    Y.flags.writeable = False
    net.SGD((ro, Y), 1, 2, 0.5, test_data=(ro, np.array([0, 1, 2, 0, 1, 2])), verbose=False)
    nb, nw = net.backprop(ro[0], Y[0])
    assert nb[0].shape == (7, 1)


def test_feedforward_does_not_warn_on_saturation():
    net = small_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = net.feedforward(np.full(5, 1e6))
    assert np.all(np.isfinite(out))


def test_softmax_outputs_sum_to_one():
    net = cbp.Network([5, 7, 4], activation="relu", output_activation="softmax",
                      cost="log_likelihood", seed=1)
    X = np.random.default_rng(0).normal(0, 30, (50, 5))     # large z: tests the max shift
    out = net.feedforward(X)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.feedforward(X[0]).sum(), 1.0, atol=1e-12)


def test_activation_ranges():
    X = np.random.default_rng(0).normal(0, 3, (20, 5))
    out = {name: cbp.Network([5, 6, 3], activation=name, seed=2).feedforward(X)
           for name in ("sigmoid", "tanh", "relu", "linear")}
    assert np.all((out["sigmoid"] > 0) & (out["sigmoid"] < 1))
    assert np.all(np.abs(out["tanh"]) < 1)
    assert np.all(out["relu"] >= 0)
    assert np.any(out["linear"] < 0)


def test_module_sigmoid():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = cbp.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])
    assert cbp.sigmoid_prime(0.0) == 0.25
    z = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(cbp.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)


# -- attributes --------------------------------------------------------------------

def test_sizes_and_num_layers():
    net = cbp.Network((4, 6, 5, 2), seed=0)
    assert net.sizes == [4, 6, 5, 2]
    assert net.num_layers == 4
    assert cbp.Network([3, 1]).num_layers == 2
    assert cbp.Network(np.array([3, 2, 1])).sizes == [3, 2, 1]


def test_weights_and_biases_shapes():
    net = cbp.Network([4, 6, 5, 2], seed=0)
    assert [w.shape for w in net.weights] == [(6, 4), (5, 6), (2, 5)]
    assert [b.shape for b in net.biases] == [(6, 1), (5, 1), (2, 1)]


def test_weights_are_read_only_copies():
    net = small_net()
    before = params(net)
    w = net.weights
    b = net.biases
    with pytest.raises(ValueError):
        w[0][0, 0] = 1.0
    with pytest.raises(ValueError):
        b[1][0, 0] = 1.0
    # A writable copy of them is independent of the network.
    w0 = w[0].copy()
    w0[...] = 0
    assert same_params(net, before)
    assert net.weights[0] is not net.weights[0]


def test_assignment_round_trips_and_copies():
    net = small_net()
    rng = np.random.default_rng(5)
    new_w = [rng.normal(size=(7, 5)), rng.normal(size=(3, 7))]
    new_b = [rng.normal(size=(7, 1)), rng.normal(size=(3, 1))]
    net.weights = new_w
    net.biases = new_b
    for got, want in zip(net.weights + net.biases, new_w + new_b):
        np.testing.assert_array_equal(got, want)
    saved = [a.copy() for a in new_w + new_b]
    new_w[0][...] = 0          # the network holds its own copy
    new_b[0][...] = 0
    assert same_params(net, saved)
    # Assigning what was read back changes nothing.
    net.weights = net.weights
    net.biases = net.biases
    assert same_params(net, saved)


def test_assignment_accepts_layouts_dtypes_and_flat_biases():
    net = small_net()
    rng = np.random.default_rng(6)
    w = [rng.normal(size=(7, 5)), rng.normal(size=(3, 7))]
    net.weights = [np.asfortranarray(w[0]), w[1].T.copy().T]
    np.testing.assert_array_equal(net.weights[0], w[0])
    np.testing.assert_array_equal(net.weights[1], w[1])
    net.weights = (w[0].tolist(), w[1].astype(np.float32))
    np.testing.assert_array_equal(net.weights[1], w[1].astype(np.float32).astype(np.float64))
    net.biases = [np.arange(7), np.array([1.0, 2.0, 3.0])]       # (n,) accepted too
    assert [b.shape for b in net.biases] == [(7, 1), (3, 1)]
    np.testing.assert_array_equal(net.biases[1], [[1.0], [2.0], [3.0]])


def test_init_scaled_std():
    net = cbp.Network([400, 100, 10], init="scaled", seed=0)
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(400), rel=0.03)
    assert net.weights[1].std() == pytest.approx(1 / np.sqrt(100), rel=0.1)
    assert abs(net.weights[0].mean()) < 0.005
    # Biases stay N(0, 1); "gaussian" weights are N(0, 1).
    assert net.biases[0].std() == pytest.approx(1.0, rel=0.25)
    gauss = cbp.Network([400, 100, 10], seed=0)
    assert gauss.weights[0].std() == pytest.approx(1.0, rel=0.03)


def test_dtype_float32_network():
    net = cbp.Network([5, 7, 3], dtype="float32", seed=0)
    assert all(a.dtype == np.float32 for a in net.weights + net.biases)
    X, Y, labels = random_data(4)
    assert net.feedforward(X).dtype == np.float32
    nb, nw = net.backprop(X[0], Y[0])
    assert all(a.dtype == np.float32 for a in nb + nw)
    assert cbp.Network([2, 1], dtype=np.float32).dtype == np.float32
    assert cbp.Network([2, 1], dtype=np.dtype("float64")).dtype == np.float64


def test_float32_agrees_with_float64():
    X, Y, labels = random_data(40, seed=4)
    kw = dict(activation="tanh", output_activation="softmax", cost="log_likelihood",
              init="scaled", seed=9)
    n64 = cbp.Network([5, 7, 3], **kw)
    n32 = cbp.Network([5, 7, 3], dtype="float32", **kw)
    for a, b in zip(n64.weights, n32.weights):
        np.testing.assert_array_equal(a.astype(np.float32), b)
    n64.SGD((X, labels), 2, 10, 0.5, momentum=0.5, lmbda=0.1, verbose=False)
    n32.SGD((X, labels), 2, 10, 0.5, momentum=0.5, lmbda=0.1, verbose=False)
    for a, b in zip(n64.weights + n64.biases, n32.weights + n32.biases):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(n32.feedforward(X), n64.feedforward(X), rtol=1e-4, atol=1e-5)


def test_repr():
    r = repr(cbp.Network([2, 3, 1], activation="tanh", output_activation="sigmoid"))
    assert r.startswith("Network([2, 3, 1]")
    assert "tanh" in r and "sigmoid" in r


def test_names_are_case_insensitive():
    net = cbp.Network([3, 2], activation="TANH", output_activation="Softmax",
                      cost="Log_Likelihood", seed=0)
    assert net.activation == "tanh" and net.output_activation == "softmax"
    assert net.cost == "log_likelihood"


# -- SGD: history, corners ---------------------------------------------------------

def test_history_without_test_data():
    net = small_net()
    X, Y, _ = random_data(30)
    history = net.SGD((X, Y), 3, 7, 0.5, verbose=False)
    assert set(history) == {"epoch", "cost", "seconds"}
    assert history["epoch"] == [0, 1, 2]
    assert all(len(v) == 3 for v in history.values())
    assert all(np.isfinite(c) and c > 0 for c in history["cost"])
    assert all(s >= 0 for s in history["seconds"])


def test_history_with_test_data():
    net = small_net()
    X, Y, labels = random_data(30)
    Xt, _, lt = random_data(11, seed=1)
    history = net.SGD((X, Y), 4, 7, 0.5, test_data=(Xt, lt), verbose=False)
    assert set(history) == {"epoch", "cost", "seconds", "correct", "accuracy", "test_cost"}
    assert all(len(v) == 4 for v in history.values())
    assert all(isinstance(c, int) and 0 <= c <= 11 for c in history["correct"])
    assert history["accuracy"] == [c / 11 for c in history["correct"]]
    assert history["correct"][-1] == net.evaluate((Xt, lt))
    # test_cost is the mean cost of the test set with one-hot targets.
    assert history["test_cost"][-1] == pytest.approx(net.total_cost((Xt, lt)), rel=1e-12)


def test_history_cost_is_mean_cost_seen_in_training():
    # One full-batch epoch: the recorded cost is the cost before the step.
    net = small_net()
    X, Y, _ = random_data(12)
    before = net.total_cost((X, Y))
    history = net.SGD((X, Y), 1, 12, 0.5, verbose=False)
    assert history["cost"][0] == pytest.approx(before, rel=1e-12)


def test_verbose_output(capsys):
    net = small_net()
    X, Y, labels = random_data(10)
    net.SGD((X, Y), 2, 5, 0.5, verbose=False)
    assert capsys.readouterr().out == ""
    history = net.SGD((X, Y), 2, 5, 0.5, test_data=(X, labels))        # verbose by default
    assert capsys.readouterr().out.splitlines() == [
        f"Epoch {j}: {c} / 10" for j, c in enumerate(history["correct"])]
    net.SGD((X, Y), 2, 5, 0.5)
    assert capsys.readouterr().out.splitlines() == ["Epoch 0 complete", "Epoch 1 complete"]
    cbp.SGD(0.5).run(net, (X, Y), 1)                                    # quiet by default
    assert capsys.readouterr().out == ""


def test_evaluate_forms():
    net = small_net()
    X, Y, labels = random_data(25, seed=8)
    expected = int(np.sum(np.argmax(net.feedforward(X), axis=1) == labels))
    assert net.evaluate((X, labels)) == expected
    assert net.evaluate((X, Y)) == expected                            # one-hot rows
    assert net.evaluate((X, labels.tolist())) == expected
    assert net.evaluate([(x.reshape(5, 1), int(l)) for x, l in zip(X, labels)]) == expected
    assert net.evaluate([(x, np.int64(l)) for x, l in zip(X, labels)]) == expected
    assert net.evaluate([(x.reshape(5, 1), y.reshape(3, 1)) for x, y in zip(X, Y)]) == expected
    assert net.evaluate([(x, y) for x, y in zip(X, Y)]) == expected
    assert isinstance(net.evaluate((X, labels)), int)
    assert net.evaluate([]) == 0


def test_evaluate_counts_correct():
    net = cbp.Network([2, 2], activation="linear", seed=0)
    net.weights = [np.eye(2)]
    net.biases = [np.zeros((2, 1))]
    X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert net.evaluate((X, np.array([0, 1, 0, 1]))) == 4
    assert net.evaluate((X, np.array([1, 1, 1, 1]))) == 2
    assert net.evaluate((X, np.array([1, 0, 1, 0]))) == 0


def test_epochs_zero_leaves_network_unchanged():
    net = small_net()
    X, Y, labels = random_data(10)
    before = params(net)
    state = net._rng.bit_generator.state
    history = net.SGD((X, Y), 0, 5, 0.5, test_data=(X, labels), verbose=False)
    assert same_params(net, before)
    assert all(v == [] for v in history.values())
    assert net._rng.bit_generator.state == state


def test_mini_batch_size_one():
    net = small_net()
    X, Y, _ = random_data(8)
    before = params(net)
    history = net.SGD((X, Y), 2, 1, 0.5, verbose=False)
    assert len(history["cost"]) == 2
    assert not same_params(net, before)


@pytest.mark.parametrize("m", [13, 14, 100])
def test_full_batch_is_one_update(m):
    # mini_batch_size >= len(data): batch gradient descent, one step per epoch.
    X, Y, _ = random_data(13, seed=2)
    a = small_net(seed=4)
    b = small_net(seed=4)
    a.SGD((X, Y), 2, m, 0.7, lmbda=0.3, shuffle=False, verbose=False)
    for _ in range(2):
        b.update_mini_batch((X, Y), 0.7, lmbda=0.3, n=13)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)


def test_full_batch_with_shuffle_is_order_independent():
    X, Y, _ = random_data(13, seed=2)
    a = small_net(seed=4)
    b = small_net(seed=4)
    a.SGD((X, Y), 1, 13, 0.7, shuffle=True, verbose=False)
    b.update_mini_batch((X, Y), 0.7)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_update_mini_batch_default_n_is_batch_size():
    X, Y, _ = random_data(6)
    a, b = small_net(), small_net()
    a.update_mini_batch((X, Y), 0.5, lmbda=2.0)
    b.update_mini_batch((X, Y), 0.5, lmbda=2.0, n=6)
    assert same_params(a, params(b))


def test_progress_callback():
    net = small_net()
    X, Y, _ = random_data(95)
    seen = []
    net.SGD((X, Y), 2, 4, 0.5, verbose=False, progress=seen.append)
    assert seen, "progress was never called"
    assert all(isinstance(k, int) for k in seen)
    assert max(seen) == 95
    assert seen.count(95) == 2                                 # once at the end of each epoch
    first = seen[:seen.index(95) + 1]
    assert first == sorted(first)


def test_sgd_class_basics():
    opt = cbp.SGD(0.5, mini_batch_size=4, lmbda=0.1, momentum=0.5, shuffle=False)
    assert (opt.eta, opt.mini_batch_size, opt.lmbda, opt.momentum, opt.shuffle) == \
        (0.5, 4, 0.1, 0.5, False)
    assert "eta=0.5" in repr(opt)
    net = small_net()
    X, Y, labels = random_data(10)
    history = opt.run(net, (X, Y), 2, test_data=(X, labels))
    assert history["epoch"] == [0, 1]
    c = opt.step(net, X[:4], Y[:4])
    assert isinstance(c, float) and c > 0
    c = opt.step(net, X[:4], labels[:4])                       # labels as targets
    assert np.isfinite(c)


def test_training_reduces_cost():
    net = small_net(activation="tanh", output_activation="softmax", cost="log_likelihood")
    X, _, labels = random_data(60)
    before = net.total_cost((X, labels))
    net.SGD((X, labels), 20, 10, 0.3, verbose=False)
    assert net.total_cost((X, labels)) < before


def test_total_cost_forms_and_l2():
    net = small_net()
    X, Y, labels = random_data(9)
    c = net.total_cost((X, Y))
    expected = np.mean(0.5 * np.sum((by_hand(net, X) - Y) ** 2, axis=1))
    assert c == pytest.approx(expected, rel=1e-13)
    assert net.total_cost((X, labels)) == c
    assert net.total_cost([(x.reshape(5, 1), y.reshape(3, 1)) for x, y in zip(X, Y)]) == c
    l2 = 0.5 * 0.4 / 9 * sum(float(np.sum(w ** 2)) for w in net.weights)
    assert net.total_cost((X, Y), lmbda=0.4) == pytest.approx(c + l2, rel=1e-13)


def test_divergence_leaves_a_finite_network():
    net = cbp.Network([1, 1], activation="linear", cost="sse", seed=0)
    X = np.full((5, 1), 1e3)
    Y = np.ones((5, 1))
    with pytest.raises(cbp.DivergenceError) as info:
        net.SGD((X, Y), 20, 1, 1e10, verbose=False)
    assert isinstance(info.value, ValueError)
    assert all(np.all(np.isfinite(a)) for a in net.weights + net.biases)
    assert info.value.epoch >= 0 and info.value.mini_batch >= 0
    assert len(info.value.history["epoch"]) == info.value.epoch


def test_divergence_stops_at_the_last_finite_state():
    # A 1-1 linear net with a huge η, online and in a fixed order, worked out
    # step by step in Python floats until the cost or the parameters overflow.
    import math
    X = np.array([[2.0], [3.0], [1.0]])
    Y = np.array([[1.0], [0.0], [2.0]])
    eta = 1e3
    w, b, step = 0.5, 0.0, 0
    with np.errstate(over="ignore"):
        while True:
            i = step % 3
            g = w * X[i, 0] + b - Y[i, 0]
            new_w, new_b = w - eta * g * X[i, 0], b - eta * g
            if not all(math.isfinite(v) for v in (new_w, new_b, 0.5 * g * g)):
                break
            w, b, step = new_w, new_b, step + 1
    net = cbp.Network([1, 1], activation="linear", cost="quadratic", seed=0)
    net.weights = [np.array([[0.5]])]
    net.biases = [np.array([[0.0]])]
    with pytest.raises(cbp.DivergenceError) as info:
        net.SGD((X, Y), 1000, 1, eta, shuffle=False, verbose=False)
    assert (info.value.epoch, info.value.mini_batch) == (step // 3, step % 3)
    assert "eta" in str(info.value)
    np.testing.assert_allclose(net.weights[0], [[w]], rtol=1e-12)
    np.testing.assert_allclose(net.biases[0], [[b]], rtol=1e-12)


def test_keyboard_interrupt_becomes_training_interrupted():
    net = small_net()
    X, Y, _ = random_data(200)
    calls = []

    def progress(done):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(cbp.TrainingInterrupted) as info:
        net.SGD((X, Y), 5, 2, 0.5, verbose=False, progress=progress)
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.history["epoch"] == []          # interrupted inside epoch 0
    assert all(np.all(np.isfinite(a)) for a in net.weights + net.biases)


def test_deepest_network():
    sizes = [3] + [4] * (cbp.model.MAX_LAYERS - 1) + [2]
    net = cbp.Network(sizes, activation="tanh", init="scaled", seed=0)
    assert net.num_layers == cbp.model.MAX_LAYERS + 1
    X = np.random.default_rng(0).uniform(-1, 1, (10, 3))
    before = params(net)
    net.SGD((X, np.full((10, 2), 0.5)), 2, 3, 0.1, verbose=False)
    assert not same_params(net, before)
    nb, nw = net.backprop(X[0], [0.5, 0.5])
    assert len(nw) == cbp.model.MAX_LAYERS
    assert net.feedforward(X).shape == (10, 2)
