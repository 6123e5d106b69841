"""monitor_learning_speed: the book's per-layer speed of learning, recorded in the history."""
import numpy as np
import pytest

import cbp
import cbp.datasets


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.random((300, 16))
    y = rng.integers(0, 4, 300)
    return X, y


def _one_hot(y, k=4):
    Y = np.zeros((len(y), k))
    Y[np.arange(len(y)), y] = 1
    return Y


def test_shape_and_training_unchanged(data):
    X, y = data
    plain = cbp.Network([16, 8, 6, 4], seed=3)
    watched = cbp.Network([16, 8, 6, 4], seed=3)
    h0 = plain.SGD((X, y), 3, 10, 1.0, verbose=False)
    h1 = watched.SGD((X, y), 3, 10, 1.0, verbose=False, monitor_learning_speed=True)
    assert "learning_speed" not in h0
    speed = h1["learning_speed"]
    assert len(speed) == 3 and all(len(row) == 3 for row in speed)
    assert all(isinstance(v, float) and v > 0 for row in speed for v in row)
    # Monitoring reads the network; it never changes the run.
    for a, b in zip(plain.weights, watched.weights):
        np.testing.assert_array_equal(a, b)
    assert h0["cost"] == h1["cost"]


def _mean_bias_gradient(net, X, y):
    Y = _one_hot(y)
    sums = [np.zeros((b.shape[0], 1)) for b in net.biases]
    for x, t in zip(X, Y):
        nb, _ = net.backprop(x, t)
        for s, b in zip(sums, nb):
            s += b
    return [s / len(X) for s in sums]


@pytest.mark.parametrize("flag", [True, "norm", "mean_abs"])
def test_matches_backprop_before_each_epoch(data, flag):
    """Row j is measured before epoch j: row 0 is the untrained net, row 1 after one epoch.

    The default (True, 'norm') is the book's ‖mean_x ∂C_x/∂b^l‖; 'mean_abs' the
    mean over units of |mean_x ∂C_x/∂b^l|.
    """
    X, y = data
    net = cbp.Network([16, 8, 4], seed=0)
    measure = (lambda g: float(np.mean(np.abs(g)))) if flag == "mean_abs" else \
        (lambda g: float(np.linalg.norm(g)))
    untrained = [measure(g) for g in _mean_bias_gradient(net, X, y)]
    h = net.SGD((X, y), 2, 10, 0.5, verbose=False, monitor_learning_speed=flag)
    assert len(h["learning_speed"]) == 2
    np.testing.assert_allclose(h["learning_speed"][0], untrained, rtol=1e-10)
    twin = cbp.Network([16, 8, 4], seed=0)
    twin.SGD((X, y), 1, 10, 0.5, verbose=False)
    after_one = [measure(g) for g in _mean_bias_gradient(twin, X, y)]
    np.testing.assert_allclose(h["learning_speed"][1], after_one, rtol=1e-10)


def test_fixed_subset_for_large_data():
    """Above 1,000 rows the measure uses a fixed, evenly spaced subset of 1,000."""
    from cbp import training
    rng = np.random.default_rng(2)
    X = rng.random((2500, 9))
    Y = _one_hot(rng.integers(0, 4, 2500))
    Xs, Ys = training.speed_subset(X, Y)
    assert Xs.shape == (training.SPEED_ROWS, 9) and Ys.shape == (training.SPEED_ROWS, 4)
    rows = np.linspace(0, 2499, training.SPEED_ROWS).astype(int)
    np.testing.assert_array_equal(Xs, X[rows])
    assert Xs.flags.c_contiguous


def test_earlier_layers_learn_slower_sigmoid():
    """Chapter 5: in a deep sigmoid net the first hidden layer learns slowest."""
    (X, y), _ = cbp.datasets.load_sample()
    net = cbp.Network([784, 30, 30, 30, 10], seed=0)
    h = net.SGD((X[:1000], y[:1000]), 2, 10, 0.1, verbose=False, monitor_learning_speed=True)
    for row in h["learning_speed"]:
        assert row[0] < row[1] < row[2] < row[3]


def test_optimizer_run_and_float32(data):
    X, y = data
    net = cbp.Network([16, 5, 4], dtype="float32", seed=0)
    h = cbp.SGD(0.5, mini_batch_size=20).run(net, (X, y), 2, monitor_learning_speed=True)
    assert len(h["learning_speed"]) == 2
    assert all(np.isfinite(v) for row in h["learning_speed"] for v in row)


def test_bad_flag(data):
    X, y = data
    net = cbp.Network([16, 5, 4], seed=0)
    before = net.weights
    with pytest.raises(TypeError, match="monitor_learning_speed"):
        net.SGD((X, y), 1, 10, 0.5, verbose=False, monitor_learning_speed=1)
    with pytest.raises(ValueError, match="monitor_learning_speed.*'norm', 'mean_abs'"):
        net.SGD((X, y), 1, 10, 0.5, verbose=False, monitor_learning_speed="yes")
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)
