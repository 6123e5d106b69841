"""Backprop against central finite differences of an independent NumPy cost.

The forward pass and the cost formulas come from :mod:`cbp.reference` (the
notes' equations in NumPy), which shares nothing with the library but the
weights it was initialised with; the finite differences perturb NumPy copies
of those weights.
"""
import math

import numpy as np
import pytest

import cbp
from cbp import reference

HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
OUTPUTS = ["sigmoid", "tanh", "relu", "linear", "softmax"]
PAIRS = ([(out, "quadratic") for out in OUTPUTS]
         + [(out, "sse") for out in OUTPUTS]
         + [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
            ("sigmoid", "log_likelihood")])

STEP = 1e-6
TOLERANCE = 1e-6
KINK = 1e-4            # no relu input may be this close to 0
MAX_ERRORS = []        # (relative error, case), reported by the last test


# -- the reference's cost, by the network's names ------------------------------

def forward(weights, biases, x, hidden, output):
    """(a^L, [z^2, ..., z^L]) for a column x."""
    fs = reference.functions(hidden, output)
    zs, activations = reference.forward(weights, biases, x, fs["f"], fs["f_out"])
    return activations[-1], zs


def reference_cost(weights, biases, x, y, hidden, output, cost_name):
    a, _ = forward(weights, biases, x, hidden, output)
    return reference.cost(cost_name, a, y)


def finite_differences(weights, biases, x, y, hidden, output, cost_name, h=STEP):
    weights = [w.copy() for w in weights]
    biases = [b.copy() for b in biases]

    def c():
        return reference_cost(weights, biases, x, y, hidden, output, cost_name)

    grads = []
    for arrays in (biases, weights):
        out = []
        for arr in arrays:
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                keep = arr[idx]
                arr[idx] = keep + h
                up = c()
                arr[idx] = keep - h
                down = c()
                arr[idx] = keep
                g[idx] = (up - down) / (2 * h)
            out.append(g)
        grads.append(out)
    return grads      # [nabla_b, nabla_w]


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def relative_error(g, g_fd):
    return float(np.linalg.norm(g - g_fd) / max(np.linalg.norm(g) + np.linalg.norm(g_fd), 1e-300))


def target(output, cost_name, n_out, rng, one_hot):
    if one_hot:
        y = np.zeros((n_out, 1))
        y[rng.integers(n_out)] = 1.0
        return y
    if output == "softmax" and cost_name == "log_likelihood":
        # A non-one-hot target: a probability vector (the core's δ = aΣy − y).
        y = rng.uniform(0.1, 1.0, size=(n_out, 1))
        return y / y.sum()
    if output == "tanh":
        return rng.uniform(-0.9, 0.9, size=(n_out, 1))
    return rng.uniform(0.05, 0.95, size=(n_out, 1))


def make_case(sizes, hidden, output, cost_name, seed, one_hot=False):
    """A network plus (x, y) with no relu input near its kink and a non-zero gradient."""
    for attempt in range(50):
        net = cbp.Network(sizes, activation=hidden, output_activation=output, cost=cost_name,
                          init="scaled", seed=seed * 100 + attempt)
        rng = np.random.default_rng(seed * 100 + attempt)
        x = rng.uniform(-1.0, 1.0, size=(sizes[0], 1))
        y = target(output, cost_name, sizes[-1], rng, one_hot)
        _, zs = forward(net.weights, net.biases, x, hidden, output)
        relu_zs = [z for z, act in zip(zs, [hidden] * (len(zs) - 1) + [output]) if act == "relu"]
        if any(np.min(np.abs(z)) < KINK for z in relu_zs):
            continue
        if output == "relu" and np.all(zs[-1] <= 0):
            continue            # every output dead: the gradient would be all zeros
        return net, x, y
    raise AssertionError("no kink-free case found")


def check_gradient(net, x, y, hidden, output, cost_name, label):
    nabla_b, nabla_w = net.backprop(x, y)
    fd_b, fd_w = finite_differences(net.weights, net.biases, x, y, hidden, output, cost_name)
    g, g_fd = flat(nabla_b + nabla_w), flat(fd_b + fd_w)
    assert np.linalg.norm(g_fd) > 1e-8, "degenerate case: zero gradient"
    err = relative_error(g, g_fd)
    MAX_ERRORS.append((err, label))
    assert err < TOLERANCE, (label, err)
    # Shapes as network.py: like biases and weights.
    assert [b.shape for b in nabla_b] == [b.shape for b in net.biases]
    assert [w.shape for w in nabla_w] == [w.shape for w in net.weights]
    # The library's own cost of this one example agrees with the formula here.
    c = reference_cost(net.weights, net.biases, x, y, hidden, output, cost_name)
    assert net.total_cost([(x, y)]) == pytest.approx(c, rel=1e-12, abs=1e-14)


# -- the tests -----------------------------------------------------------------

@pytest.mark.parametrize("output,cost_name", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_deep(hidden, output, cost_name):
    sizes = [3, 4, 5, 3]
    net, x, y = make_case(sizes, hidden, output, cost_name, seed=HIDDEN.index(hidden) + 1)
    check_gradient(net, x, y, hidden, output, cost_name, f"{sizes} {hidden}/{output}/{cost_name}")


@pytest.mark.parametrize("output,cost_name", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
def test_gradient_two_layers(output, cost_name):
    sizes = [4, 3]
    net, x, y = make_case(sizes, "sigmoid", output, cost_name, seed=7)
    check_gradient(net, x, y, "sigmoid", output, cost_name, f"{sizes} {output}/{cost_name}")


@pytest.mark.parametrize("output,cost_name", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
def test_gradient_one_hot_targets(output, cost_name):
    # One-hot targets, as MNIST uses (for softmax + log-likelihood, δ = a − y).
    sizes = [3, 4, 5, 3]
    net, x, y = make_case(sizes, "tanh", output, cost_name, seed=11, one_hot=True)
    check_gradient(net, x, y, "tanh", output, cost_name, f"{sizes} tanh/{output}/{cost_name} 1-hot")


@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_five_layers(hidden):
    sizes = [2, 3, 4, 3, 2]
    net, x, y = make_case(sizes, hidden, "softmax", "log_likelihood", seed=23)
    check_gradient(net, x, y, hidden, "softmax", "log_likelihood", f"{sizes} {hidden}/softmax")


def test_gradient_of_a_mini_batch_is_the_sum():
    # update_mini_batch with η = m takes exactly one Σ_x ∇C_x step: compare with backprop.
    net = cbp.Network([3, 4, 2], activation="tanh", output_activation="sigmoid",
                      cost="cross_entropy", seed=5)
    rng = np.random.default_rng(5)
    batch = [(rng.uniform(-1, 1, (3, 1)), rng.uniform(0, 1, (2, 1))) for _ in range(4)]
    sum_b, sum_w = reference.sum_gradients(batch, net.backprop, net.biases, net.weights)
    w0, b0 = net.weights, net.biases
    net.update_mini_batch(batch, eta=4.0)
    for new, old, s in zip(net.weights, w0, sum_w):
        np.testing.assert_allclose(old - new, s, rtol=1e-10, atol=1e-14)
    for new, old, s in zip(net.biases, b0, sum_b):
        np.testing.assert_allclose(old - new, s, rtol=1e-10, atol=1e-14)


def test_log_costs_are_stable_for_saturated_outputs():
    # a = σ(40) is 1.0 in float64, so a naive −ln(1 − a) would be inf; the
    # library works from z: −ln(1 − σ(z)) = softplus(z).
    net = cbp.Network([1, 1], activation="sigmoid", cost="cross_entropy", seed=0)
    net.weights = [np.array([[0.0]])]
    net.biases = [np.array([[40.0]])]
    c = net.total_cost([(np.array([[0.0]]), np.array([[0.0]]))])
    assert math.isfinite(c)
    assert c == pytest.approx(40.0 + math.log1p(math.exp(-40.0)), rel=1e-12)
    net = cbp.Network([1, 3], output_activation="softmax", cost="log_likelihood", seed=0)
    net.weights = [np.zeros((3, 1))]
    net.biases = [np.array([[800.0], [0.0], [0.0]])]
    c = net.total_cost([(np.array([[0.0]]), np.array([[0.0], [1.0], [0.0]]))])
    assert c == pytest.approx(800.0, rel=1e-12)


def test_report_max_relative_error():
    if not MAX_ERRORS:
        pytest.skip("no gradient check ran in this session")
    err, label = max(MAX_ERRORS)
    print(f"\nmax finite-difference relative error over {len(MAX_ERRORS)} checks: "
          f"{err:.3e} ({label})")
    assert err < TOLERANCE


@pytest.mark.parametrize("cost", ["poisson", "quadratic"])
def test_exp_output_gradients_match_central_differences(cost):
    # The exponential output (log link): with the Poisson cost BP1 is the
    # cancelled δ = a − y, with the quadratic one (a − y) ⊙ a.
    net = cbp.Network([4, 6, 3], activation="tanh", output_activation="exp", cost=cost,
                      seed=3)
    x = np.array([0.3, -0.2, 0.5, 0.1])
    y = np.array([2.0, 0.0, 1.0])
    check = cbp.gradcheck(net, x, y, entries=None)
    assert check.ok, str(check)
