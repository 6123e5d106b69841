"""The fused first-layer sweep (issue 20) against the general one-thread driver.

For plain SGD on one thread with a narrow first layer and small mini-batches,
train_epoch keeps the first layer transposed and applies each mini-batch's
update in the same sweep that sums the next one's inputs.  It must give the
very same bits as the general driver in the narrow order
(``_core.fused_sweep(False, narrow=True)``): the narrow forward and the step
sum in the sweep's order wherever they run.  Both are off by default (the
sweep did not pay on an AVX2 core); the default order is main's.
"""
import _thread
import threading

import numpy as np
import pytest

import cbp
from cbp import _core


@pytest.fixture(autouse=True)
def default_after():
    """Every test leaves the core at its default: no sweep, main's order."""
    yield
    _core.fused_sweep(False, narrow=False)


@pytest.fixture
def general():
    """Run the body with the sweep off and the narrow order on."""
    _core.fused_sweep(False, narrow=True)
    yield


def data(n, n_in, n_out, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)).astype(dtype)
    Y = np.zeros((n, n_out), dtype=dtype)
    Y[np.arange(n), rng.integers(0, n_out, n)] = 1
    return X, Y


def train(sizes, dtype, m, n=61, epochs=2, lmbda=0.0, fused=True, threads=1, **net_kw):
    _core.fused_sweep(fused, narrow=True)
    net = cbp.Network(sizes, dtype=dtype, seed=3, **net_kw)
    X, Y = data(n, sizes[0], sizes[-1], dtype)
    hist = cbp.SGD(0.7, mini_batch_size=m, lmbda=lmbda, num_threads=threads).run(
        net, (X, Y), epochs)
    return net._params.copy(), hist["cost"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes", [[784, 30, 10], [13, 1, 3], [9, 17, 4, 3], [33, 32, 2],
                                   [6, 16, 5, 2]])
@pytest.mark.parametrize("m", [1, 7, 10, 32])
def test_the_sweep_gives_the_general_drivers_bits(sizes, dtype, m):
    n = 61 if sizes[0] < 784 else 45       # never a multiple of m: a short last batch
    fused, cost = train(sizes, dtype, m, n=n)
    plain, cost_plain = train(sizes, dtype, m, n=n, fused=False)
    assert np.array_equal(fused, plain)
    assert cost == cost_plain


@pytest.mark.parametrize("kw", [{"lmbda": 2.0}, {"activation": "relu"},
                                {"activation": "tanh", "output_activation": "softmax",
                                 "cost": "log_likelihood"}])
def test_l2_and_other_activations_keep_the_bits(kw):
    lmbda = kw.pop("lmbda", 0.0)
    fused, _ = train([20, 24, 4], np.float64, 5, lmbda=lmbda, **kw)
    plain, _ = train([20, 24, 4], np.float64, 5, lmbda=lmbda, fused=False, **kw)
    assert np.array_equal(fused, plain)
    start = cbp.Network([20, 24, 4], seed=3, **kw)._params
    assert not np.array_equal(fused, start), "nothing was trained"


def test_the_sweep_leaves_the_weights_in_their_rows_between_calls(general):
    # Runs of mini-batches, as sgd.py cuts an epoch, convert the first layer
    # in and out at every call: a run of 3 + 4 calls equals one of 7.
    sizes, m = [12, 8, 3], 4
    net = cbp.Network(sizes, seed=5)
    X, Y = data(28, sizes[0], sizes[-1], np.float64)
    order = np.arange(28, dtype=np.intp)
    args = (*net.layout.core_args, *net.layout.codes, X, Y, order, m)
    work = np.empty(_core.workspace_size(net.layout.sizes, m), dtype=np.float64)
    V = np.zeros(1)
    results = []
    _core.fused_sweep(True)
    for cuts in ([(0, 7)], [(0, 3), (3, 7)], [(0, 1), (1, 2), (2, 7)]):
        params = net._params.copy()
        for first, last in cuts:
            _core.train_epoch(params, V, *args, first, last, 0.5, 0.0, 0.0, work)
        results.append(params)
    _core.fused_sweep(False, narrow=True)
    params = net._params.copy()
    _core.train_epoch(params, V, *args, 0, 7, 0.5, 0.0, 0.0, work)
    for r in results:
        assert np.array_equal(r, params)


def test_ctrl_c_leaves_the_first_layer_in_its_rows(python_sigint):
    _core.fused_sweep(True)
    # Stopped between mini-batches, the sweep writes its transposed layer
    # back: the weights equal a replay of whole mini-batches.
    sizes, m, n = [16, 24, 4], 1, 200_000
    net = cbp.Network(sizes, seed=4)
    X, Y = data(n, sizes[0], sizes[-1], np.float64)
    order = np.arange(n, dtype=np.intp)
    args = (*net.layout.core_args, *net.layout.codes, X, Y, order, m)
    start = net._params.copy()
    params, V = start.copy(), np.zeros(1)
    work = np.empty(_core.workspace_size(net.layout.sizes, m), dtype=np.float64)
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _core.train_epoch(params, V, *args, 0, n, 0.1, 0.0, 0.0, work)
    finally:
        timer.cancel()
    assert not np.array_equal(params, start), "interrupted before any mini-batch"
    replay = start.copy()
    for k in range(0, n, 16):
        if np.array_equal(replay, params):
            break
        _core.train_epoch(replay, V, *args, k, k + 16, 0.1, 0.0, 0.0, work)
    assert np.array_equal(replay, params), "stopped between two signal checks"


def test_the_switch_reports_and_restores():
    assert _core.fused_sweep() is False               # the default
    assert _core.fused_sweep(True) is False
    assert _core.fused_sweep() is True


@pytest.mark.parametrize("sizes", [[13, 1, 3], [70, 24, 48, 25, 2], [20, 30, 3]])
def test_teams_in_the_narrow_order_give_the_sweeps_bits(sizes):
    # A team (its bar lowered to 0) runs the general drivers in the narrow
    # order; one thread runs the sweep.
    old = _core.team_min_flops(0)
    try:
        one, cost = train(sizes, np.float64, 7, threads=1)
        for t in (2, 3):
            team, c = train(sizes, np.float64, 7, threads=t)
            assert np.array_equal(team, one) and c == cost
    finally:
        _core.team_min_flops(old)


def test_the_default_is_mains_order():
    # Off by default: a narrow net trains in the 4x3 tiles' order, which
    # differs from the narrow order in the last bits.
    _core.fused_sweep(False, narrow=False)
    default, _ = train_plain([784, 30, 10])
    _core.fused_sweep(False, narrow=True)
    narrow, _ = train_plain([784, 30, 10])
    assert not np.array_equal(default, narrow)
    assert np.allclose(default, narrow, rtol=0, atol=1e-12)


def train_plain(sizes):
    net = cbp.Network(sizes, seed=3)
    X, Y = data(45, sizes[0], sizes[-1], np.float64)
    cbp.SGD(0.7, mini_batch_size=10, num_threads=1).run(net, (X, Y), 1)
    return net._params.copy(), None


@pytest.mark.parametrize("extra", ["sample_weight", "w2_sum"])
def test_weighted_and_w2_calls_leave_the_sweep_to_the_general_driver(extra):
    # The sweep neither weighs δ^L per example nor sums ‖W‖² (issue 23's
    # arguments): with it switched on, such calls still take the general
    # driver, whose weights and sums they need.
    sizes, m, n = [784, 30, 10], 10, 45
    net = cbp.Network(sizes, seed=2)
    X, Y = data(n, sizes[0], sizes[-1], np.float64)
    order = np.arange(n, dtype=np.intp)
    args = (*net.layout.core_args, *net.layout.codes, X, Y, order, m)
    work = np.empty(_core.workspace_size(net.layout.sizes, m), dtype=np.float64)
    weights = np.random.default_rng(1).random(n)
    results = []
    for fused in (True, False):
        _core.fused_sweep(fused, narrow=True)
        params, V, w2 = net._params.copy(), np.zeros(1), np.zeros(1)
        kw = {"sample_weight": weights} if extra == "sample_weight" else {"w2_sum": w2}
        _core.train_epoch(params, V, *args, 0, -(-n // m), 0.5, 0.0, 0.0, work, **kw)
        results.append((params, w2[0]))
    assert np.array_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]
    if extra == "w2_sum":
        assert results[0][1] > 0
