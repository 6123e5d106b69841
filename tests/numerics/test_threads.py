"""Training one network with a team of threads (issue 12).

The weights must be bit-identical for every thread count: each thread takes
a share of a layer's outputs cut at the kernels' tiles, so no sum changes
order.  The core only forms a team when the work pays for it; these tests
lower that bar (``_core.team_min_flops(0)``) so small, odd shapes run with
real teams of 2 and 3 threads (on any number of cores).
"""
import _thread
import threading

import numpy as np
import pytest

import cbp
from cbp import _core, _pace, _runs
from cbp.activations import ACTIVATIONS
from cbp.costs import COSTS

THREADS = (1, 2, 3)


DEFAULT_BAR = _core.team_min_flops()


@pytest.fixture(autouse=True)
def teams_always():
    old = _core.team_min_flops(0)
    yield
    _core.team_min_flops(old)


def data(n, n_in, n_out, dtype, seed=0, classes=True):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)).astype(dtype)
    Y = np.zeros((n, n_out), dtype=dtype)
    Y[np.arange(n), rng.integers(0, n_out, n)] = 1
    return X, Y


def train(sizes, threads, dtype=np.float64, m=7, n=53, epochs=2, eta=0.3, seed=1, **kw):
    net_kw = {k: kw.pop(k) for k in ("activation", "output_activation", "cost", "init")
              if k in kw}
    net = cbp.Network(sizes, dtype=dtype, seed=seed, **net_kw)
    X, Y = data(n, sizes[0], sizes[-1], dtype)
    opt = cbp.SGD(eta, mini_batch_size=m, num_threads=threads, **kw)
    hist = opt.run(net, (X, Y), epochs)
    return net._params.copy(), hist["cost"]


def assert_same_for_every_count(**kw):
    base, cost = train(threads=1, **kw)
    for t in THREADS[1:]:
        params, c = train(threads=t, **kw)
        assert np.array_equal(params, base), f"{t} threads changed the weights"
        assert c == cost, f"{t} threads changed the cost history"


PAIRS = [(h, o, c) for h, a in ACTIVATIONS.items() if a.hidden
         for o in ACTIVATIONS for c, entry in COSTS.items() if o in entry.outputs]


def test_the_pairs_cover_every_cost_and_output():
    assert {c for _, _, c in PAIRS} == set(COSTS)
    assert {o for _, o, _ in PAIRS} == set(ACTIVATIONS)


@pytest.mark.parametrize("hidden,output,cost", PAIRS)
def test_every_activation_cost_pair_is_bit_identical_across_thread_counts(hidden, output, cost):
    # 37 and 29 are not multiples of any tile (4, 3, 12, 24 or a vector).
    assert_same_for_every_count(sizes=[19, 37, 29, 6], activation=hidden,
                                output_activation=output, cost=cost, init="scaled",
                                eta=0.01)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes", [[5, 1, 7, 1, 3], [1, 1], [13, 1, 3], [50, 100, 49, 10],
                                   [70, 24, 48, 25, 2]])
def test_odd_shapes_are_bit_identical(sizes, dtype):
    assert_same_for_every_count(sizes=sizes, dtype=dtype)


@pytest.mark.parametrize("m", [1, 2, 53, 100])
def test_every_mini_batch_size_is_bit_identical(m):
    # m = 1: one example per step; 53 = n: batch gradient descent; 100 > n.
    assert_same_for_every_count(sizes=[30, 40, 5], m=m)


def test_momentum_and_l2_are_bit_identical():
    assert_same_for_every_count(sizes=[30, 61, 25, 4], momentum=0.9, lmbda=2.0)


def test_a_team_is_really_used():
    # The bar is lowered by the fixture: a team of each size forms.
    sizes = np.array([30, 40, 5], dtype=np.intp)
    assert [_core.team_size(sizes, 7, t) for t in THREADS] == list(THREADS)


def test_teams_differ_from_no_team_only_in_speed():
    # A team of 2 and one thread agree; and the step did move the weights.
    net = cbp.Network([30, 40, 5], seed=1)
    before = net._params.copy()
    after, _ = train([30, 40, 5], threads=2)
    assert not np.array_equal(before, after)


def test_small_nets_use_one_thread_at_the_default_bar():
    assert DEFAULT_BAR > 0
    _core.team_min_flops(DEFAULT_BAR)
    try:
        assert _core.team_size(np.array([784, 30, 10], dtype=np.intp), 10, 2) == 1
        assert _core.team_size(np.array([784, 1024, 1024, 10], dtype=np.intp), 128, 2) == 2
    finally:
        _core.team_min_flops(0)


def test_update_mini_batch_and_network_sgd_take_num_threads():
    X, Y = data(40, 20, 3, np.float64)
    results = []
    for t in THREADS:
        a = cbp.Network([20, 30, 3], seed=2)
        a.update_mini_batch((X, Y), 0.5, num_threads=t)
        b = cbp.Network([20, 30, 3], seed=2)
        b.SGD((X, Y), 2, 8, 0.5, verbose=False, num_threads=t)
        results.append((a._params.copy(), b._params.copy()))
    for a, b in results[1:]:
        assert np.array_equal(a, results[0][0]) and np.array_equal(b, results[0][1])


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                     ("2", TypeError)])
def test_bad_num_threads_is_refused(bad, exc):
    with pytest.raises(exc, match="num_threads"):
        cbp.SGD(0.1, num_threads=bad)
    net = cbp.Network([4, 3, 2])
    X, Y = data(5, 4, 2, np.float64)
    before = net._params.copy()
    with pytest.raises(exc, match="num_threads"):
        net.update_mini_batch((X, Y), 0.1, num_threads=bad)
    with pytest.raises(exc, match="num_threads"):
        net.SGD((X, Y), 1, 2, 0.1, verbose=False, num_threads=bad)
    assert np.array_equal(net._params, before)


def test_default_thread_count_follows_openmp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _core.default_threads() == 1
        assert cbp.SGD(0.1)._threads() == 1
    assert _core.default_threads() >= 1


def test_divergence_with_threads_leaves_the_same_last_finite_state():
    outcomes = []
    for t in THREADS:
        net = cbp.Network([20, 37, 4], seed=3, activation="relu", output_activation="linear")
        X, Y = data(64, 20, 4, np.float64)
        Y *= 1e3
        with pytest.raises(cbp.DivergenceError) as info:
            cbp.SGD(50.0, mini_batch_size=4, num_threads=t).run(net, (X, Y), 20)
        assert np.isfinite(net._params).all()
        outcomes.append((info.value.epoch, info.value.mini_batch, net._params.copy()))
    for e, k, p in outcomes[1:]:
        assert (e, k) == outcomes[0][:2]
        assert np.array_equal(p, outcomes[0][2])


def test_ctrl_c_stops_the_team_at_a_mini_batch_boundary(python_sigint):
    # A long run of 1-example mini-batches through the core; Ctrl-C (as
    # interrupt_main delivers it) must stop every thread of the team at a
    # boundary the signal check visits (every 16 mini-batches).
    sizes = [16, 24, 4]
    net = cbp.Network(sizes, seed=4)
    n, m = 200_000, 1
    X, Y = data(n, sizes[0], sizes[-1], np.float64)
    order = np.arange(n, dtype=np.intp)
    args = (*net.layout.core_args, *net.layout.codes, X, Y, order, m)
    start = net._params.copy()
    params, V = start.copy(), np.zeros(1)
    work = np.empty(_core.workspace_size(net.layout.sizes, m, 2), dtype=np.float64)
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _core.train_epoch(params, V, *args, 0, n, 0.1, 0.0, 0.0, work, num_threads=2)
    finally:
        timer.cancel()
    assert not np.array_equal(params, start), "interrupted before any mini-batch"
    # Replay one thread, 16 mini-batches at a time, until the states meet.
    replay = start.copy()
    for k in range(0, n, 16):
        if np.array_equal(replay, params):
            break
        _core.train_epoch(replay, V, *args, k, k + 16, 0.1, 0.0, 0.0, work, num_threads=1)
    assert np.array_equal(replay, params), "the team stopped between two signal checks"


def test_the_driver_keeps_whichever_ran_faster_and_retries_the_other():
    # With the bar at 0 a team of 2 forms; the driver first tries the team,
    # then one thread, then keeps the faster per example, trying the other
    # again every 8 x (how much slower it was) runs: a shared machine's load
    # changes, and a team held up by another process can be 20x slower.
    net = cbp.Network([30, 40, 5], seed=1)
    owner = {}                          # the optimizer's record of the shapes it trained
    _runs.PACES.clear()                   # paces are kept per shape across calls: start afresh
    first, pace = _runs.team_choice(net, 7, 2, owner)
    assert owner == {((30, 40, 5), 7, np.dtype(np.float64).str, 2): pace}
    assert first == 2
    pace[2] = 2.0                       # seconds per example, as _run_batches records
    second, _ = _runs.team_choice(net, 7, 2, owner)
    assert second == 1
    pace[1] = 1.0                       # one thread was twice as fast
    picks = [_runs.team_choice(net, 7, 2, owner)[0] for _ in range(30)]
    assert picks.count(2) == 2 and picks.count(1) == 28    # every 16th run
    pace[2] = 20.0                      # twenty times as fast
    picks = [_runs.team_choice(net, 7, 2, owner)[0] for _ in range(480)]
    assert picks.count(2) == 3                              # every 160th run
    pace[2] = 0.5                       # the team is faster now
    assert [_runs.team_choice(net, 7, 2, owner)[0] for _ in range(3)] == [2, 2, 2]
    assert _runs.team_choice(net, 7, 1, owner) == (1, None)        # one thread allowed: no choice


def test_training_records_the_pace_of_both_choices(monkeypatch):
    monkeypatch.setattr(_runs, "PACE_MIN_FLOPS", 0)
    _runs.PACES.clear()
    X, Y = data(400, 30, 5, np.float64)
    net = cbp.Network([30, 40, 5], seed=1)
    opt = cbp.SGD(0.1, mini_batch_size=7, num_threads=2)
    opt.run(net, (X, Y), 2)
    (pace,) = opt._pace.values()
    assert pace[2] > 0 and pace[1] > 0


def test_runs_too_small_to_time_leave_no_pace(monkeypatch):
    # A warm-up call of a few mini-batches timed the team with its threads'
    # start and took it for 1.6x slower than one thread: such runs (below
    # PACE_MIN_FLOPS) are not recorded, and the team, unmeasured, runs them.
    _runs.PACES.clear()
    X, Y = data(400, 30, 5, np.float64)
    net = cbp.Network([30, 40, 5], seed=1)
    opt = cbp.SGD(0.1, mini_batch_size=7, num_threads=2)
    assert 6 * 400 * net.layout.n_weights < _runs.PACE_MIN_FLOPS
    seen = []
    choose = _pace.choose
    monkeypatch.setattr(_pace, "choose", lambda *a, **k: seen.append(choose(*a, **k)) or seen[-1])
    opt.run(net, (X, Y), 2)
    (pace,) = opt._pace.values()
    assert 1 not in pace and 2 not in pace and pace["runs"] == len(seen) > 1
    assert {threads for threads, _ in seen} == {2}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [47, 48, 97, 200, 577])
def test_an_examples_output_does_not_depend_on_its_place_in_the_input(dtype, n):
    # feedforward cuts the rows into chunks, and a wide layer takes the
    # GEMM-blocked forward (another order of sums) for chunks of at least
    # GEMM_MIN_M rows: all chunks of one call must reach it, or none.
    rng = np.random.default_rng(n)
    net = cbp.Network([50, 256, 40, 10], seed=0, dtype=dtype)
    X = rng.random((n, 50)).astype(dtype)
    out = net.feedforward(X)
    perm = rng.permutation(n)
    np.testing.assert_array_equal(net.feedforward(X[perm]), out[perm])
    assert _core.FEEDFORWARD_CHUNK >= 2 * 48 and _core.FEEDFORWARD_CHUNK % 2 == 0
