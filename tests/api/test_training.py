"""cbp.training (the one epoch loop), cbp.optimizer's base class and the network's row interface."""
import numpy as np
import pytest

import cbp
from cbp import training
from cbp.model import Layout


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4))
    return X, rng.integers(0, 3, n)


def test_layout_describes_the_flat_vector():
    net = cbp.Network([4, 5, 3], seed=0)
    layout = net.layout
    assert isinstance(layout, Layout)
    assert layout.sizes.tolist() == [4, 5, 3] and layout.n_weights == 35 and layout.n_params == 43
    with net.parameters() as (flat, ws, bs):
        views = layout.views(flat)
        assert all(np.shares_memory(a, b) for a, b in zip(views[0] + views[1], ws + bs))
    assert [w.shape for w in net.weights] == layout.shapes(0)
    with pytest.raises(AttributeError):
        layout.n_params = 1


def test_row_interface_matches_the_book_methods_and_refuses_unconverted_rows():
    net = cbp.Network([4, 5, 3], cost="cross_entropy", seed=1)
    X, y = _data()
    Y = np.eye(3)[y]
    np.testing.assert_array_equal(net.forward_rows(X), net.feedforward(X))
    grad, total = net.gradient_rows(X[:1], Y[:1])
    nabla_b, nabla_w = net.backprop(X[0], Y[0])
    ws, bs = net.layout.views(grad)
    np.testing.assert_allclose(ws[0], nabla_w[0])
    np.testing.assert_allclose(bs[1], nabla_b[1])
    assert np.mean(net.cost_rows(X, Y)) == pytest.approx(net.total_cost((X, Y)))
    assert total == pytest.approx(net.cost_rows(X[:1], Y[:1])[0])
    with pytest.raises(TypeError, match="dtype"):
        net.forward_rows(X.astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        net.forward_rows(X[:, :3].copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        net.forward_rows(np.asfortranarray(X))
    with pytest.raises(ValueError, match="same number"):
        net.gradient_rows(X, Y[:5])


class _Record(training.Callback):
    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_train_begin(self, run):
        self.calls.append(("begin", run.n))

    def on_epoch_begin(self, run, epoch):
        self.calls.append(("epoch", epoch))

    def on_epoch_end(self, run, epoch):
        self.calls.append(("end", epoch, len(run.history["cost"])))
        return epoch == self.stop_after

    def on_train_end(self, run):
        self.calls.append(("done",))


def test_train_calls_the_hooks_in_order_and_a_callback_stops_it():
    X, y = _data()
    record = _Record(stop_after=1)
    net = cbp.Network([4, 5, 3], seed=2)
    history = training.train(net, cbp.SGD(0.5, mini_batch_size=10), (X, y), 5, [record])
    assert record.calls == [("begin", 60), ("epoch", 0), ("end", 0, 1), ("epoch", 1),
                            ("end", 1, 2), ("done",)]
    assert history["epoch"] == [0, 1] and len(history["seconds"]) == 2


def test_train_is_what_network_sgd_runs():
    X, y = _data()
    a, b = cbp.Network([4, 5, 3], seed=3), cbp.Network([4, 5, 3], seed=3)
    h = a.SGD((X, y), 3, 10, 0.5, verbose=False)
    g = training.train(b, cbp.SGD(0.5, mini_batch_size=10), (X, y), 3)
    assert h["cost"] == g["cost"]
    np.testing.assert_array_equal(a.weights[0], b.weights[0])


def test_early_stopping_stops_after_patience_epochs_without_a_better_score():
    X, y = _data()
    scores = iter([0.5, 0.6, 0.6, 0.55, 0.9])
    stop = training.EarlyStopping(2, lambda run: next(scores))
    history = training.train(cbp.Network([4, 5, 3], seed=4), cbp.SGD(0.1), (X, y), 5, [stop])
    assert history["epoch"] == [0, 1, 2, 3]


def test_ctrl_c_after_an_epoch_keeps_the_complete_epochs():
    X, y = _data()

    def interrupt(epoch, X, Y):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(cbp.TrainingInterrupted) as info:
        cbp.SGD(0.1).run(cbp.Network([4, 5, 3], seed=5), (X, y), 4, test_data=(X, y),
                         on_epoch=interrupt)
    history = info.value.history
    assert history["epoch"] == [0, 1] and len(history["accuracy"]) == 2


def test_an_optimizer_of_ones_own_names_a_core_rule():
    class Plain(cbp.Optimizer):
        def __init__(self, eta):
            super().__init__(eta, 10, 0.0, True, 0.0)

        def rule_name(self):
            return "sgd"

    X, y = _data()
    a, b = cbp.Network([4, 5, 3], seed=6), cbp.Network([4, 5, 3], seed=6)
    Plain(0.5).run(a, (X, y), 2)
    cbp.SGD(0.5, mini_batch_size=10).run(b, (X, y), 2)
    np.testing.assert_array_equal(a.weights[1], b.weights[1])
    with pytest.raises(NotImplementedError):
        cbp.Optimizer(0.1, 10, 0.0, True, 0.0).run(a, (X, y), 1)


@pytest.mark.parametrize("net, optimizer, name", [
    ("a network", cbp.SGD(0.5), "net"),
    (None, cbp.SGD(0.5), "net"),
    ("net", "sgd", "optimizer"),
    ("net", object(), "optimizer"),
])
def test_train_refuses_what_is_not_a_network_or_an_optimizer(net, optimizer, name):
    real = cbp.Network([4, 3, 2], seed=0)
    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    with pytest.raises(TypeError, match=name):
        training.train(real if net == "net" else net, optimizer, (X, y), 1)


# -- X checked in the core during the first epoch (issue 20) -----------------------


def _rows(n=300, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12)), np.eye(4)[rng.integers(0, 4, n)]


def _params(net):
    return [p.copy() for p in net.weights + net.biases]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("row", [0, 157, 299])
def test_non_finite_x_is_refused_with_the_network_and_generator_as_before(dtype, bad, row):
    X, Y = _rows()
    X[row, 5] = bad
    net = cbp.Network([12, 7, 4], seed=3, dtype=dtype)
    opt = cbp.SGD(0.5, mini_batch_size=10, momentum=0.9)
    opt.run(net, (np.full((40, 12), 0.5), Y[:40]), 1)          # momentum state to keep
    before, state = _params(net), opt.state(net)
    with pytest.raises(ValueError, match=r"training_data\[0\] \(X\) must be finite"):
        opt.run(net, (X, Y), 3)
    assert all((a == b).all() for a, b in zip(before, _params(net)))
    after = opt.state(net)
    assert (after[0] == state[0]).all() and after[1] == state[1]
    # The generator too: training on now gives what an untouched twin gives.
    twin = cbp.Network([12, 7, 4], seed=3, dtype=dtype)
    twin_opt = cbp.SGD(0.5, mini_batch_size=10, momentum=0.9)
    twin_opt.run(twin, (np.full((40, 12), 0.5), Y[:40]), 1)
    X[row, 5] = 0.25
    opt.run(net, (X, Y), 1)
    twin_opt.run(twin, (X, Y), 1)
    assert all((a == b).all() for a, b in zip(_params(twin), _params(net)))


def test_non_finite_x_without_a_seed_leaves_pythons_generator_as_before():
    import random
    X, Y = _rows()
    X[200, 0] = np.nan
    net = cbp.Network([12, 7, 4])
    random.seed(5)
    state = random.getstate()
    with pytest.raises(ValueError, match=r"training_data\[0\] \(X\) must be finite"):
        net.SGD((X, Y), 2, 10, 0.5, verbose=False)
    assert random.getstate() == state


@pytest.mark.parametrize("path", ["team", "sweep", "watched"])
def test_non_finite_x_is_refused_on_every_path(path):
    from cbp import _core
    X, Y = _rows()
    X[123, 11] = np.inf
    net = cbp.Network([12, 7, 4], seed=0)
    before = _params(net)
    kwargs = {}
    old_flops, old_sweep = _core.team_min_flops(), _core.fused_sweep()
    try:
        if path == "team":
            _core.team_min_flops(0)
            kwargs["num_threads"] = 2
        elif path == "sweep":
            _core.fused_sweep(True)
        else:
            kwargs["monitor_learning_speed"] = True       # reads X first: checked up front
        with pytest.raises(ValueError, match=r"training_data\[0\] \(X\) must be finite"):
            net.SGD((X, Y), 2, 10, 0.5, verbose=False, **kwargs)
    finally:
        _core.team_min_flops(old_flops)
        _core.fused_sweep(old_sweep)
    assert all((a == b).all() for a, b in zip(before, _params(net)))


def test_x_overflowing_its_dtype_is_refused_as_such():
    X, Y = _rows()
    X[9, 9] = 1e300
    net = cbp.Network([12, 7, 4], seed=0, dtype="float32")
    with pytest.raises(ValueError, match=r"\(after conversion to float32\)"):
        net.SGD((X, Y), 1, 10, 0.5, verbose=False)


def test_the_core_stops_before_the_mini_batch_holding_a_non_finite_row():
    from cbp import _core
    X, Y = _rows(100)
    X[47, 2] = np.nan                 # mini-batch 4 of 10 in this order
    net = cbp.Network([12, 7, 4], seed=0)
    order = np.arange(100, dtype=np.intp)
    scan = np.zeros(2)
    work = np.empty(_core.workspace_size(net.layout.sizes, 10, 1))
    with net.parameters() as (params, _, _):
        start = params.copy()
        done, examples, _ = _core.train_epoch(params, np.zeros(1), *net.layout.core_args,
                                              *net.layout.codes, X, Y, order, 10, 0, 10, 0.5,
                                              0.0, 0.0, work, x_scan=scan)
        assert (done, examples) == (4, 40) and scan[0] == 1
        assert not (params == start).all()          # four steps taken: the caller restores
    assert np.abs(X[:40]).max() <= scan[1] <= np.abs(X[:47]).max()   # the rows checked


def test_the_input_scale_warning_comes_from_the_core_check():
    X, Y = _rows(600)
    net = cbp.Network([12, 7, 4], seed=0)
    with pytest.warns(cbp.TrainingWarning, match=r"\|x\| = 300"):
        X[17, 3] = -300.0
        net.SGD((X, Y), 1, 10, 0.01, verbose=False)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("col", [0, 5, 31, 33, 47, 49])      # vector part and tail
@pytest.mark.parametrize("bad", [np.nan, -np.inf, -7.5])
def test_the_core_check_reads_every_value_of_a_row(dtype, col, bad):
    from cbp import _core
    rng = np.random.default_rng(col)
    X = (rng.random((20, 50)) * 2 - 1).astype(dtype)
    X[13, col] = bad
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 20)]
    net = cbp.Network([50, 4, 3], seed=0, dtype=dtype)
    scan = np.zeros(2)
    work = np.empty(_core.workspace_size(net.layout.sizes, 5, 1), dtype=dtype)
    with net.parameters() as (params, _, _):
        done, _, _ = _core.train_epoch(params, np.zeros(1, dtype=dtype), *net.layout.core_args,
                                       *net.layout.codes, X, Y, np.arange(20, dtype=np.intp),
                                       5, 0, 4, 0.5, 0.0, 0.0, work, x_scan=scan)
    if np.isfinite(bad):
        assert done == 4 and scan[0] == 0 and scan[1] == 7.5
    else:
        # (the range covers the rows checked before the bad one: 0 .. 12 at most)
        assert done == 2 and scan[0] == 1
        assert np.abs(X[:10]).max() <= scan[1] <= np.abs(X[:13]).max()
