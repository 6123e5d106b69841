"""Hardening: numerical safety at the float limits, divergence, threads, interrupts, memory.

* Sigmoid, softmax and the log costs at |z| up to the largest float: no
  RuntimeWarning, no NaN out of finite input.
* Divergence (η far too large): ``cbp.DivergenceError`` naming the epoch and
  mini-batch, with the network left exactly as after the previous mini-batch.
* Threads: two networks trained in two threads give the weights of sequential
  runs, bit for bit; one network used from four threads at once stays
  consistent (it holds a lock around every core call).
* Interrupts: SIGINT to a training process raises ``cbp.TrainingInterrupted``
  (a KeyboardInterrupt) with the history, at a mini-batch boundary.
* Memory: RSS and tracemalloc stay flat over hundreds of training calls.
"""
import gc
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest

import cbp
from conftest import default_sigint

PAIRS = [("sigmoid", "quadratic"), ("sigmoid", "sse"), ("sigmoid", "cross_entropy"),
         ("sigmoid", "log_likelihood"), ("softmax", "log_likelihood"), ("softmax", "quadratic"),
         ("softmax", "sse"), ("tanh", "quadratic"), ("relu", "quadratic"), ("linear", "sse")]


def params(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def same(xs, ys):
    return all(np.array_equal(x, y) for x, y in zip(xs, ys))


def all_finite(net):
    return all(np.isfinite(p).all() for p in params(net))


class Strict:
    """Warnings are errors, and NumPy overflow, invalid and divide raise, inside the block."""

    def __enter__(self):
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error")
        self._e = np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")
        self._e.__enter__()

    def __exit__(self, *exc):
        self._e.__exit__(*exc)
        self._w.__exit__(*exc)


# -- numerical safety at the float limits ---------------------------------------------------

def limit_net(output, cost, dtype, case):
    """A [1, 3, 4] network whose z^1 or z^L reach the largest floats, from finite input.

    One input, so W^1 x never sums two huge terms: every z stays finite.
    """
    big = float(np.finfo(dtype).max)
    net = cbp.Network([1, 3, 4], activation="sigmoid", output_activation=output, cost=cost,
                      dtype=dtype, seed=3)
    w1 = np.array([[1.0], [-1.0], [0.5]])
    b1 = np.zeros((3, 1))
    w2 = np.linspace(-1, 1, 12).reshape(4, 3)
    b2 = np.zeros((4, 1))
    x = np.array([[0.5], [-1.0], [1.0]])
    if case == "huge-output-biases":        # z^L = ±max + O(1)
        b2 = np.array([[big], [-big], [big], [-big]])
    elif case == "huge-inputs":             # z^1 = ±max
        x = np.array([[big], [-big], [big / 2]])
    elif case == "huge-weights":            # z^1 = ±max/2 · x
        w1 = np.array([[big / 2], [-big / 2], [big / 3]])
    elif case == "tiny":                    # subnormal and near-zero magnitudes
        x = np.array([[5e-324 if dtype == np.float64 else 1e-45], [1e-300], [-1e-40]])
        w1 = np.full((3, 1), 1e-300 if dtype == np.float64 else 1e-38)
    net.weights, net.biases = [w1, w2], [b1, b2]
    Y = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    return net, x, Y


CASES = ["huge-output-biases", "huge-inputs", "huge-weights", "tiny"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("output,cost", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
def test_float_limits_give_no_warning_and_no_nan(output, cost, dtype, case):
    net, x, Y = limit_net(output, cost, dtype, case)
    # A bounded output function keeps every δ finite.  An unbounded one (relu,
    # linear) at z ≈ max has a gradient past the float range: an honest
    # overflow, which must be refused with a ValueError rather than turn to NaN.
    bounded = output in ("sigmoid", "softmax", "tanh")
    with Strict():
        A = net.feedforward(x)                         # a batch: one row per input value
        assert A.shape == (3, 4) and not np.isnan(A).any()
        if output in ("sigmoid", "softmax"):
            assert np.all((A >= 0) & (A <= 1))
        if output == "softmax":
            assert np.allclose(A.sum(axis=1), 1.0)
        for k in range(3):
            try:
                nabla_b, nabla_w = net.backprop(x[k], Y[k])
            except ValueError as exc:
                assert not bounded and "NaN" in str(exc), exc
                continue
            for g in nabla_b + nabla_w:
                assert not np.isnan(g).any(), (k, g)
                assert np.isfinite(g).all() or not bounded, (k, g)
        for lmbda in (0.0, 1.0):
            c = net.total_cost((x, Y), lmbda=lmbda)
            assert not np.isnan(c) and c >= 0
        assert 0 <= net.evaluate((x, np.array([0, 1, 3]))) <= 3
        try:
            net.update_mini_batch((x, Y), 1e-3)
        except cbp.DivergenceError:
            # Honest overflow of the cost (e.g. ½‖a − y‖² past max): refused, not NaN.
            pass
    assert all_finite(net)


def test_softmax_at_the_largest_floats_is_exact():
    net, x, _ = limit_net("softmax", "log_likelihood", np.float64, "tiny")
    big = float(np.finfo(np.float64).max)
    net.biases = [np.zeros(3), np.array([big, big, -big, big])]
    with Strict():
        a = net.feedforward(np.array([0.0]))
    assert np.allclose(a, [1 / 3, 1 / 3, 0, 1 / 3], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("z,want", [(-1000.0, 1000.0), (-1e30, 1e30), (40.0, 4.248354255291589e-18)])
def test_log_costs_are_exact_far_into_saturation(dtype, z, want):
    # −ln σ(z) = softplus(−z): a naive log(a) gives Inf (or 0) once σ(z) rounds to 0 (or 1).
    sig = cbp.Network([1, 1], output_activation="sigmoid", cost="cross_entropy", dtype=dtype)
    sig.weights, sig.biases = [np.zeros((1, 1))], [np.array([[z]])]
    soft = cbp.Network([1, 2], output_activation="softmax", cost="log_likelihood", dtype=dtype)
    soft.weights, soft.biases = [np.zeros((2, 1))], [np.array([[0.0], [z]])]
    with Strict():
        c_sig = sig.total_cost((np.zeros((1, 1)), np.ones((1, 1))))
        c_soft = soft.total_cost((np.zeros((1, 1)), np.array([1])))
        c_ll = cbp.Network([1, 1], output_activation="sigmoid", cost="log_likelihood",
                           dtype=dtype)
        c_ll.weights, c_ll.biases = [np.zeros((1, 1))], [np.array([[z]])]
        c_ll = c_ll.total_cost((np.zeros((1, 1)), np.ones((1, 1))))
    # softmax: −ln a_1 = ln(1 + e^z) − z for z^L = (0, z): the same softplus(−z).
    for c in (c_sig, c_soft, c_ll):
        assert c == pytest.approx(want, rel=1e-6 if dtype == np.float32 else 1e-12)


def test_mean_cost_of_huge_finite_costs_does_not_overflow():
    # Two examples, each with C_x = softplus(1e308) = 1e308: their mean is 1e308, not Inf.
    net = cbp.Network([1, 1], output_activation="sigmoid", cost="cross_entropy", seed=0)
    net.weights, net.biases = [np.zeros((1, 1))], [np.array([[1e308]])]
    with Strict():
        c = net.total_cost((np.zeros((2, 1)), np.zeros((2, 1))))
    assert c == pytest.approx(1e308, rel=1e-12)


def test_l2_term_past_the_float_range_is_inf_not_nan():
    net = cbp.Network([2, 2], activation="linear", seed=0)
    net.weights = [np.full((2, 2), 1e300)]
    data = (np.zeros((3, 2)), np.zeros((3, 2)))
    with Strict():
        assert np.isfinite(net.total_cost(data, lmbda=0.0))     # 0 · Σw² is not NaN
        assert net.total_cost(data, lmbda=1.0) == np.inf


def test_overflow_in_the_forward_pass_is_refused_not_nan():
    # W^1 x = 1e300·1e10 − 1e300·1e10 = Inf − Inf: NaN would be silent; it is a ValueError.
    net = cbp.Network([2, 1], activation="linear", seed=0)
    net.weights = [np.array([[1e300, -1e300]])]
    x = np.array([1e10, 1e10])
    with Strict():
        for call in (lambda: net.feedforward(x), lambda: net.backprop(x, [0.0]),
                     lambda: net.evaluate((x.reshape(1, 2), np.array([0]))),
                     lambda: net.total_cost((x.reshape(1, 2), np.zeros((1, 1))))):
            with pytest.raises(ValueError, match="NaN"):
                call()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64])
def test_module_sigmoid_at_the_limits(dtype):
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else np.iinfo(dtype)
    z = np.array([info.min, -1e4 if dtype != np.float16 else -6e4, -1, 0, 1, info.max],
                 dtype=dtype)
    with Strict():
        s, sp = cbp.sigmoid(z), cbp.sigmoid_prime(z)
    assert np.array_equal(s[[0, -1]], [0.0, 1.0]) and s[3] == 0.5
    assert np.all((s >= 0) & (s <= 1)) and np.all(sp >= 0) and not np.isnan(sp).any()


# -- divergence ------------------------------------------------------------------------------

def exploding_problem(seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 4))
    Y = rng.uniform(-1, 1, (n, 2))
    net = cbp.Network([4, 5, 2], activation="linear", cost="quadratic", seed=seed)
    return net, X, Y


def twin_of(net):
    twin = cbp.Network(net.sizes, activation=net.activation,
                       output_activation=net.output_activation, cost=net.cost,
                       dtype=net.dtype)
    twin.weights, twin.biases = net.weights, net.biases
    return twin


def replay_until_divergence(twin, X, Y, m, eta, epochs, order_for_epoch, step):
    for j in range(epochs):
        order = order_for_epoch(j)
        for k, start in enumerate(range(0, len(order), m)):
            idx = order[start:start + m]
            try:
                step(twin, X[idx], Y[idx])
            except cbp.DivergenceError:
                return j, k
    return None


def doubling_problem():
    """A 1-1 linear net on x = 1, y = 0 with η = 1.5: a ← −2a each step, so the cost
    overflows after about 500 steps (epoch ~60 of 8 mini-batches), whatever the kernels."""
    net = cbp.Network([1, 1], activation="linear", cost="quadratic", seed=0)
    net.weights, net.biases = [np.array([[0.3]])], [np.array([[0.2]])]
    return net, np.ones((8, 1)), np.zeros((8, 1))


@pytest.mark.parametrize("problem,eta", [("exploding", 1e30), ("doubling", 1.5)])
def test_divergence_error_names_the_place_and_keeps_the_last_finite_state(problem, eta):
    net, X, Y = exploding_problem() if problem == "exploding" else doubling_problem()
    twin = twin_of(net)
    m, epochs = (4, 400) if problem == "exploding" else (1, 1000)
    with pytest.raises(cbp.DivergenceError) as info:
        net.SGD((X, Y), epochs, m, eta, shuffle=False, verbose=False)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, FloatingPointError)
    assert f"epoch {err.epoch}" in str(err) and f"mini-batch {err.mini_batch}" in str(err)
    assert isinstance(err.history, dict) and err.history["epoch"] == list(range(err.epoch))
    assert len(err.history["cost"]) == err.epoch
    if problem == "doubling":
        assert err.epoch > 10
    assert all_finite(net)
    # Replay with update_mini_batch on the same order: the same place, the same state.
    where = replay_until_divergence(
        twin, X, Y, m, eta, epochs, lambda j: np.arange(len(X)),
        lambda t, xb, yb: t.update_mini_batch((xb, yb), eta, n=len(X)))
    assert where == (err.epoch, err.mini_batch)
    assert same(params(net), params(twin))


def test_divergence_with_shuffle_and_momentum_matches_step_by_step_replay():
    import copy
    net, X, Y = exploding_problem(seed=1)
    twin = twin_of(net)
    rng = copy.deepcopy(net._rng)
    hyper = dict(eta=0.2, mini_batch_size=5, momentum=0.5, lmbda=0.1)
    with pytest.raises(cbp.DivergenceError) as info:
        cbp.SGD(**hyper).run(net, (X, Y), 500)
    err = info.value
    opt = cbp.SGD(**hyper)
    where = replay_until_divergence(
        twin, X, Y, 5, hyper["eta"], 500, lambda j: rng.permutation(len(X)),
        lambda t, xb, yb: opt.step(t, xb, yb, n=len(X)))
    assert where == (err.epoch, err.mini_batch)
    assert same(params(net), params(twin))
    assert all_finite(net)


def test_divergence_in_update_mini_batch_leaves_the_network_unchanged():
    net, X, Y = exploding_problem()
    net.update_mini_batch((X[:4], Y[:4]), 1e30)        # weights ~1e30: still finite
    before = params(net)
    with pytest.raises(cbp.DivergenceError) as info:
        for _ in range(10):
            net.update_mini_batch((X[:4], Y[:4]), 1e30)
            before = params(net)
    assert (info.value.epoch, info.value.mini_batch) == (0, 0)
    assert same(params(net), before) and all_finite(net)


# -- threads -----------------------------------------------------------------------------------

def mnist_sized(seed, n=6000):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784))
    labels = rng.integers(0, 10, n)
    return X, labels


def test_two_networks_in_two_threads_match_sequential_runs(capsys):
    data = [mnist_sized(s) for s in (0, 1)]
    # About a second of training per network, whatever the build (-O3 or the -O0 debug build).
    probe = cbp.Network([784, 64, 10], seed=9)
    t0 = time.perf_counter()
    probe.SGD((data[0][0][:600], data[0][1][:600]), 1, 10, 0.5, verbose=False)
    per_epoch = (time.perf_counter() - t0) * len(data[0][0]) / 600
    epochs = int(min(20, max(1, round(1.0 / per_epoch))))
    kwargs = dict(epochs=epochs, mini_batch_size=10, eta=0.5, verbose=False)

    def train(seed, out):
        net = cbp.Network([784, 64, 10], seed=seed)
        net.SGD(data[seed], **kwargs)
        out[seed] = params(net)

    t0 = time.perf_counter()
    sequential = {}
    for s in (0, 1):
        train(s, sequential)
    t_seq = time.perf_counter() - t0

    parallel, errors = {}, []

    def run(s):
        try:
            train(s, parallel)
        except BaseException as exc:    # pragma: no cover - reported below
            errors.append(exc)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_par = time.perf_counter() - t0
    assert not errors, errors
    for s in (0, 1):
        assert same(parallel[s], sequential[s]), f"network {s} differs when trained in a thread"
    with capsys.disabled():
        print(f"\n[threads] two [784, 64, 10] networks, {epochs} epochs of "
              f"{len(data[0][0])} examples: sequential {t_seq:.2f} s, "
              f"two threads {t_par:.2f} s, speed-up {t_seq / t_par:.2f}x "
              f"on {os.cpu_count()} CPUs")


def test_one_network_used_from_four_threads_stays_consistent():
    rng = np.random.default_rng(5)
    X = rng.random((200, 20))
    labels = rng.integers(0, 5, 200)
    net = cbp.Network([20, 16, 5], seed=5)
    errors, stop = [], threading.Event()
    outputs = []

    def guarded(fn):
        def loop():
            try:
                while not stop.is_set():
                    fn()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
        return loop

    def trainer():
        net.SGD((X, labels), 1, 10, 0.5, verbose=False)

    def stepper():
        net.update_mini_batch((X[:10], labels[:10]), 0.5)
        net.weights = net.weights          # a read and a write of all weights

    def reader():
        a = net.feedforward(X)
        outputs.append(a)
        net.backprop(X[0], np.eye(5)[0])
        assert 0 <= net.evaluate((X, labels)) <= 200
        assert np.isfinite(net.total_cost((X, labels), lmbda=0.1))

    threads = [threading.Thread(target=guarded(f)) for f in (trainer, stepper, reader, reader)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert all_finite(net)
    assert outputs
    for a in outputs:
        assert a.shape == (200, 5) and np.all((a >= 0) & (a <= 1))
    # Whatever the interleaving, the network's state is whole: a copy of its
    # parameters in a fresh network predicts and trains exactly like it.
    twin = cbp.Network([20, 16, 5])
    twin.weights, twin.biases = net.weights, net.biases
    assert np.array_equal(twin.feedforward(X), net.feedforward(X))
    for n in (net, twin):
        n.update_mini_batch((X[:10], labels[:10]), 0.5)
    assert same(params(net), params(twin))


# -- interrupts -----------------------------------------------------------------------------

INTERRUPT_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import cbp

    rng = np.random.default_rng(0)
    X = rng.random((4000, 784))
    labels = rng.integers(0, 10, 4000)
    net = cbp.Network([784, 100, 10], seed=0)
    print("started", flush=True)
    try:
        net.SGD((X, labels), 1000, 10, 0.5, test_data=(X[:500], labels[:500]), verbose=False)
    except cbp.TrainingInterrupted as exc:
        stopped = time.perf_counter()
        assert isinstance(exc, KeyboardInterrupt)
        h = exc.history
        assert len({len(v) for v in h.values()}) == 1, h
        assert h["epoch"] == list(range(len(h["epoch"])))
        assert all(np.isfinite(w).all() for w in net.weights + net.biases)
        assert 0 <= net.evaluate((X[:500], labels[:500])) <= 500
        net.SGD((X[:100], labels[:100]), 1, 10, 0.5, verbose=False)   # still trains
        print("history", len(h["epoch"]), flush=True)
        print("ok", flush=True)
        sys.exit(0)
    print("not interrupted", flush=True)
    sys.exit(1)
""")


def test_sigint_during_sgd_raises_training_interrupted_with_history():
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(1.0)          # imports are done; let it get into training
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    assert out.strip().endswith("ok"), (out, err)
    assert took < 5, f"took {took:.1f} s to stop after SIGINT"


def interrupted(train):
    """The TrainingInterrupted that ``train()`` raises.  A plain KeyboardInterrupt
    is caught too, so that it fails this test instead of stopping the session."""
    try:
        train()
    except BaseException as exc:      # noqa: B036 - KeyboardInterrupt is the point
        assert isinstance(exc, cbp.TrainingInterrupted), f"{type(exc).__name__}: {exc}"
        return exc
    raise AssertionError("training was not interrupted")


def test_interrupt_from_a_progress_callback():
    net, X, Y = exploding_problem()
    calls = []

    def progress(done):
        calls.append(done)
        if len(calls) == 5:
            raise KeyboardInterrupt

    caught = interrupted(lambda: net.SGD((X, Y), 10, 1, 1e-3, verbose=False,
                                         progress=progress))
    assert caught.history["epoch"] == [] and all_finite(net)


def test_interrupt_while_printing_the_epoch_line_still_gives_the_history(monkeypatch):
    # Ctrl-C can land anywhere in an epoch, also outside the core: here in the
    # per-epoch print (the evaluation of the test data is the same kind of place).
    net, X, Y = exploding_problem()
    labels = np.argmax(Y, axis=1)

    class Stdout(io.StringIO):
        def write(self, text):
            if text.startswith("Epoch 2"):
                raise KeyboardInterrupt
            return super().write(text)

    monkeypatch.setattr(sys, "stdout", Stdout())
    h = interrupted(lambda: net.SGD((X, Y), 10, 4, 1e-3, test_data=(X, labels))).history
    assert len({len(v) for v in h.values()}) == 1, h
    assert h["epoch"] == [0, 1, 2]
    assert all_finite(net)


# -- memory ------------------------------------------------------------------------------------

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_stays_flat_over_hundreds_of_training_calls():
    rng = np.random.default_rng(0)
    X = rng.random((500, 60))
    labels = rng.integers(0, 10, 500)
    Y = np.eye(10)[labels]
    net = cbp.Network([60, 40, 10], seed=0)
    opt = cbp.SGD(0.1, mini_batch_size=10, momentum=0.5)

    def workload():
        net.SGD((X, labels), 1, 10, 0.1, test_data=(X[:100], labels[:100]), verbose=False)
        opt.run(net, (X, Y), 1)
        net.update_mini_batch((X[:10], Y[:10]), 0.1)
        net.feedforward(X)
        net.backprop(X[0], Y[0])
        net.evaluate((X, labels))
        net.total_cost((X, Y), lmbda=0.1)
        for bad in ([[1, 2], [3]], np.full((2, 60), np.nan)):
            with pytest.raises((ValueError, TypeError)):
                net.feedforward(bad)
        blown = cbp.Network([60, 10], activation="linear", seed=1)
        with pytest.raises(cbp.DivergenceError):
            blown.SGD((X * 1e3, Y), 5, 10, 1e30, verbose=False)

    tracemalloc.start()
    try:
        for _ in range(30):                     # warm-up: caches, first allocations
            workload()
        gc.collect()
        traced0, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
        for _ in range(200):
            workload()
        gc.collect()
        traced1, rss1 = tracemalloc.get_traced_memory()[0], rss_bytes()
    finally:
        tracemalloc.stop()
    # One leaked copy of X per call would be 240 KB x 200: far past either slack.
    assert traced1 - traced0 < 256 * 1024, f"traced memory grew by {traced1 - traced0} bytes"
    assert rss1 - rss0 < 8 * 2 ** 20, f"RSS grew by {(rss1 - rss0) / 2 ** 20:.1f} MiB"


def test_an_optimizer_does_not_keep_the_networks_it_trained_alive():
    opt = cbp.SGD(0.1, mini_batch_size=2, momentum=0.9)
    X, Y = np.zeros((4, 3)), np.zeros((4, 2))
    refs = []
    for seed in range(20):
        net = cbp.Network([3, 2], seed=seed)
        opt.run(net, (X, Y), 1)
        refs.append(weakref.ref(net))
    del net
    gc.collect()
    assert sum(r() is not None for r in refs) == 0, "the optimizer keeps trained networks alive"


def test_momentum_state_stays_with_its_network():
    # The velocity of a network lives as long as the network and the optimizer,
    # and is not handed to another network that later gets the same id().
    opt = cbp.SGD(0.5, mini_batch_size=2, momentum=0.9, shuffle=False)
    X = np.linspace(-1, 1, 12).reshape(4, 3)
    Y = np.full((4, 2), 0.3)
    a, b = cbp.Network([3, 2], seed=0), cbp.Network([3, 2], seed=0)
    opt.run(a, (X, Y), 2)
    fresh = cbp.SGD(0.5, mini_batch_size=2, momentum=0.9, shuffle=False)
    fresh.run(b, (X, Y), 1)
    fresh.run(b, (X, Y), 1)
    assert same(params(a), params(b))


# -- the debug build ---------------------------------------------------------------------------

@pytest.mark.skipif(os.environ.get("CBP_EXPECT_DEBUG_BUILD") != "1",
                    reason="only where the debug build (CBP_DEBUG=1) is installed")
def test_the_installed_core_is_the_debug_build():
    # With boundscheck on, taking &Z[0, 0] of an empty memoryview raises
    # IndexError; the release build skips the check (and touches nothing).
    from cbp import _core
    with pytest.raises(IndexError):
        _core.py_activate(np.empty((0, 3)), np.empty((0, 3)), 0)
    # An index past the end of X (the Python layer never hands one over) is an
    # IndexError here; in the release build it reads past the array.
    net = cbp.Network([3, 2], seed=0)
    X, Y = np.zeros((4, 3)), np.zeros((4, 2))
    order = np.array([0, 1, 2, 4], dtype=np.intp)
    work = np.empty(_core.workspace_size(net.layout.sizes, 4) + 4 * 2)
    with pytest.raises(IndexError):
        _core.train_epoch(net._params, np.zeros(1), *net.layout.core_args, *net.layout.codes, X, Y, order,
                          4, 0, 1, 0.1, 0.0, 0.0, work)
