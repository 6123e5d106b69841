"""cbp against a plain NumPy, one-example-at-a-time implementation (network.py's way).

The oracle is :mod:`cbp.reference`, the notes' equations written once: per
example feedforward, BP1 as J_f(z^L)ᵀ ∇_a C, BP2, BP3/BP4, then the sums and
the mini-batch update W ← (1 − ηλ/n) W − (η/m) Σ ∇_W C_x,  b ← b − (η/m) Σ ∇_b C_x,
or with momentum v ← μv − η((1/m) Σ ∇C_x + (λ/n) W) (no λ term for biases),
θ ← θ + v.  The class below only keeps the parameters and velocities between
the reference's steps.
"""
import copy

import numpy as np
import pytest

import cbp
from cbp import reference

RTOL, ATOL = 1e-12, 1e-14


# -- the reference's state ------------------------------------------------------

class Reference:
    def __init__(self, weights, biases, hidden, output, cost):
        self.weights = [np.array(w, dtype=float) for w in weights]
        self.biases = [np.array(b, dtype=float) for b in biases]
        self.functions = reference.functions(hidden, output, cost)
        self.vw = [np.zeros_like(w) for w in self.weights]
        self.vb = [np.zeros_like(b) for b in self.biases]

    def backprop(self, x, y):
        return reference.backprop(self.weights, self.biases, x, y, **self.functions)

    def update_mini_batch(self, batch, eta, lmbda=0.0, n=None, momentum=0.0):
        sum_b, sum_w = reference.sum_gradients(batch, self.backprop, self.biases, self.weights)
        if momentum == 0:
            self.weights, self.biases = reference.sgd_step(
                self.weights, self.biases, sum_b, sum_w, eta, len(batch), lmbda, n)
        else:
            self.weights, self.biases, self.vw, self.vb = reference.momentum_step(
                self.weights, self.biases, self.vw, self.vb, sum_b, sum_w, eta, len(batch),
                momentum, lmbda, n)

    def epoch(self, data, m, eta, lmbda=0.0, momentum=0.0, order=None):
        n = len(data)
        if order is not None:
            data = [data[k] for k in order]
        for k in range(0, n, m):
            self.update_mini_batch(data[k:k + m], eta, lmbda, n, momentum)


# -- helpers -------------------------------------------------------------------

def make_data(sizes, n, cost, output, seed):
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(n):
        x = rng.uniform(-1, 1, (sizes[0], 1))
        if output == "softmax" or cost == "log_likelihood":
            y = np.zeros((sizes[-1], 1))
            y[rng.integers(sizes[-1])] = 1.0
        else:
            y = rng.uniform(0.05, 0.95, (sizes[-1], 1))
        data.append((x, y))
    return data


def as_arrays(data):
    X = np.array([x.ravel() for x, _ in data])
    Y = np.array([y.ravel() for _, y in data])
    return X, Y


def assert_same(net, ref):
    for got, want in zip(net.weights, ref.weights):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    for got, want in zip(net.biases, ref.biases):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


CASES = [
    # sizes, hidden, output, cost
    ([3, 2], "sigmoid", "sigmoid", "quadratic"),
    ([4, 5, 3], "sigmoid", "sigmoid", "cross_entropy"),
    ([4, 6, 5, 3], "tanh", "softmax", "log_likelihood"),
    ([5, 4, 6, 4, 3], "relu", "linear", "sse"),
    ([3, 6, 3], "sigmoid", "sigmoid", "quadratic"),
    ([3, 4, 4, 2], "tanh", "softmax", "quadratic"),
    ([2, 5, 4, 3, 2], "sigmoid", "sigmoid", "log_likelihood"),
]
IDS = ["-".join(map(str, s)) + f"-{h}-{o}-{c}" for s, h, o, c in CASES]
N, M = 23, 5          # the last mini-batch holds 3 examples


def setup(case, seed=0, init="scaled"):
    sizes, hidden, output, cost = case
    net = cbp.Network(sizes, activation=hidden, output_activation=output, cost=cost,
                      init=init, seed=seed)
    ref = Reference(net.weights, net.biases, hidden, output, cost)
    data = make_data(sizes, N, cost, output, seed + 1)
    return net, ref, data


# -- the tests -------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backprop_matches_reference(case):
    net, ref, data = setup(case)
    for x, y in data[:3]:
        nb, nw = net.backprop(x, y)
        rb, rw = ref.backprop(x, y)
        for got, want in zip(nb + nw, rb + rw):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("lmbda", [0.0, 0.7])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_update_mini_batch_sequence(case, lmbda):
    net, ref, data = setup(case)
    eta = 0.5
    for k in range(0, N, M):        # 5, 5, 5, 5, 3
        batch = data[k:k + M]
        net.update_mini_batch(batch, eta, lmbda=lmbda, n=N)
        ref.update_mini_batch(batch, eta, lmbda, N)
        assert_same(net, ref)


@pytest.mark.parametrize("momentum,lmbda", [(0.0, 0.0), (0.0, 1.5), (0.6, 0.0), (0.9, 0.8)])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sgd_without_shuffle(case, momentum, lmbda):
    net, ref, data = setup(case)
    eta = 0.3
    history = net.SGD(data, 2, M, eta, lmbda=lmbda, momentum=momentum, shuffle=False,
                      verbose=False)
    for _ in range(2):
        ref.epoch(data, M, eta, lmbda, momentum)
    assert_same(net, ref)
    assert history["epoch"] == [0, 1]


@pytest.mark.parametrize("case", CASES[1:4], ids=IDS[1:4])
def test_sgd_array_form_is_identical(case):
    # The list of tuples and the pair (X, Y) are the same training data.
    net1, _, data = setup(case)
    net2, _, _ = setup(case)
    net1.SGD(data, 2, M, 0.4, lmbda=0.5, momentum=0.5, verbose=False)
    net2.SGD(as_arrays(data), 2, M, 0.4, lmbda=0.5, momentum=0.5, verbose=False)
    for a, b in zip(net1.weights + net1.biases, net2.weights + net2.biases):
        assert np.array_equal(a, b)


def test_sgd_integer_labels_are_one_hot():
    case = ([4, 6, 5, 3], "tanh", "softmax", "log_likelihood")
    net1, _, data = setup(case)
    net2, _, _ = setup(case)
    X, Y = as_arrays(data)
    labels = np.argmax(Y, axis=1)
    net1.SGD((X, Y), 2, M, 0.4, verbose=False)
    net2.SGD((X, labels), 2, M, 0.4, verbose=False)
    for a, b in zip(net1.weights + net1.biases, net2.weights + net2.biases):
        assert np.array_equal(a, b)
    # network.py's test-data form: (x, int) tuples as training data too.
    net3, _, _ = setup(case)
    net3.SGD([(x, int(np.argmax(y))) for x, y in data], 2, M, 0.4, verbose=False)
    for a, b in zip(net1.weights + net1.biases, net3.weights + net3.biases):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("momentum,lmbda", [(0.0, 0.0), (0.0, 2.0), (0.7, 0.0), (0.5, 1.0)])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sgd_class_step(case, momentum, lmbda):
    net, ref, data = setup(case)
    eta = 0.4
    opt = cbp.SGD(eta, mini_batch_size=M, lmbda=lmbda, momentum=momentum, shuffle=False)
    for _ in range(2):
        for k in range(0, N, M):
            X, Y = as_arrays(data[k:k + M])
            cost = opt.step(net, X, Y, n=N)
            assert np.isfinite(cost)
        ref.epoch(data, M, eta, lmbda, momentum)
        assert_same(net, ref)


def test_sgd_class_step_returns_cost_before_step():
    case = ([4, 5, 3], "sigmoid", "sigmoid", "cross_entropy")
    net, ref, data = setup(case)
    X, Y = as_arrays(data[:M])
    before = net.total_cost((X, Y))
    got = cbp.SGD(1.0).step(net, X, Y)
    assert got == pytest.approx(before, rel=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("case", CASES[2:4], ids=IDS[2:4])
def test_sgd_class_run(case, momentum):
    net, ref, data = setup(case)
    opt = cbp.SGD(0.2, mini_batch_size=M, lmbda=0.3, momentum=momentum, shuffle=False)
    opt.run(net, data, 3)
    for _ in range(3):
        ref.epoch(data, M, 0.2, 0.3, momentum)
    assert_same(net, ref)


@pytest.mark.parametrize("momentum", [0.0, 0.3])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sgd_with_shuffle_follows_the_network_generator(case, momentum):
    # Each epoch: order = net._rng.permutation(n); mini-batch k = order[k*m:(k+1)*m].
    net, ref, data = setup(case)
    rng = copy.deepcopy(net._rng)
    net.SGD(data, 3, M, 0.5, lmbda=0.2, momentum=momentum, verbose=False)
    for _ in range(3):
        ref.epoch(data, M, 0.5, 0.2, momentum, order=rng.permutation(N))
    assert_same(net, ref)


def test_momentum_bias_velocity_decays():
    # Two steps on a 1-1 linear net, worked by hand.  With gradient g_k,
    # v_1 = −η g_1,  v_2 = μ v_1 − η g_2: the bias velocity decays by μ like
    # the weight velocity (the rule has no λ term for biases, but it does have μ).
    net = cbp.Network([1, 1], activation="linear", cost="quadratic", seed=0)
    net.weights = [np.array([[0.0]])]
    net.biases = [np.array([[0.0]])]
    eta, mu = 0.5, 0.5
    opt = cbp.SGD(eta, mini_batch_size=1, momentum=mu, shuffle=False)
    x, y = np.array([[0.0]]), np.array([[1.0]])     # x = 0: only the bias learns
    # Step 1: a = 0, g = a − y = −1, v = 0.5, b = 0.5.
    opt.step(net, x.T, y.T)
    assert net.biases[0][0, 0] == 0.5
    # Step 2: a = 0.5, g = −0.5, v = 0.5·0.5 + 0.25 = 0.5, b = 1.0.
    opt.step(net, x.T, y.T)
    assert net.biases[0][0, 0] == pytest.approx(1.0, abs=1e-15)
    assert net.weights[0][0, 0] == 0.0


def test_shuffle_same_seed_is_bit_identical():
    case = ([4, 6, 5, 3], "tanh", "softmax", "log_likelihood")
    runs = []
    for _ in range(2):
        net, _, data = setup(case, seed=42, init="gaussian")
        net.SGD(data, 4, M, 0.5, momentum=0.5, verbose=False)
        runs.append(net.weights + net.biases)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_shuffle_different_seed_differs():
    case = ([4, 6, 5, 3], "tanh", "softmax", "log_likelihood")
    sizes, hidden, output, cost = case
    data = make_data(sizes, N, cost, output, 99)
    start = cbp.Network(sizes, activation=hidden, output_activation=output, cost=cost, seed=1)
    results = []
    for seed in (1, 2):
        net = cbp.Network(sizes, activation=hidden, output_activation=output, cost=cost,
                          seed=seed)
        # The same starting point, so only the shuffling differs.
        net.weights, net.biases = start.weights, start.biases
        net.SGD(data, 2, M, 0.5, verbose=False)
        results.append(net.weights)
    assert not all(np.array_equal(a, b) for a, b in zip(*results))
    # And different seeds draw different initial weights.
    other = cbp.Network(sizes, activation=hidden, output_activation=output, cost=cost, seed=2)
    assert not np.array_equal(start.weights[0], other.weights[0])


def test_seed_draws_biases_then_weights_like_network_py():
    # network.py draws np.random.randn(y, 1) for the biases, then the weights.
    sizes = [3, 4, 2]
    net = cbp.Network(sizes, seed=123)
    rng = np.random.default_rng(123)
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    weights = [rng.standard_normal((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    for a, b in zip(net.biases + net.weights, biases + weights):
        assert np.array_equal(a, b)
