"""cbp.reference, the tests' oracle, proved on its own: against the numbers printed
in lecture note 001's worked example and against finite differences.

Nothing here compares the reference with the compiled core (the numerics tests
do that); these tests make sure the oracle itself is right.
"""
import numpy as np
import pytest

from cbp import reference as R
from conftest import load_original
from test_worked_example import (A2_PRINTED, A3_PRINTED, B2, B3, DELTA2_PRINTED,  # (same directory)
                                 DELTA3_PRINTED, DW2_PRINTED, DW3_PRINTED, W2, W3, X, Y,
                                 Z2_PRINTED, Z3_PRINTED, assert_printed)

HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
PAIRS = ([(out, cost) for out in ["sigmoid", "tanh", "relu", "linear", "softmax"]
          for cost in ("quadratic", "sse")]
         + [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood"),
            ("sigmoid", "log_likelihood")])


def test_every_activation_and_cost_cbp_offers_is_covered():
    from cbp.activations import ACTIVATIONS
    from cbp.costs import COSTS
    assert set(R.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(R.COSTS) == set(COSTS)
    for cost, entry in COSTS.items():
        for output in entry.outputs:            # every pair cbp accepts has its δ^L
            fs = R.functions("sigmoid", output, cost)
            z = np.array([[0.2], [-0.4]])
            assert R.output_error(cost, output, z, fs["f_out"](z), np.array([[0.3], [0.7]])
                                  ).shape == (2, 1)


# -- the worked example, number by number ------------------------------------------

def test_worked_example_forward_matches_the_slides():
    zs, activations = R.forward([W2, W3], [B2, B3], X)
    assert_printed(zs[0], Z2_PRINTED)
    assert_printed(activations[1], A2_PRINTED)
    assert_printed(zs[1], Z3_PRINTED)
    assert_printed(activations[2], A3_PRINTED)
    assert activations[0].shape == (2, 1) and np.array_equal(activations[0], X)
    np.testing.assert_array_equal(R.feedforward([W2, W3], [B2, B3], X), activations[2])


def test_worked_example_gradients_match_the_slides():
    nabla_b, nabla_w = R.backprop([W2, W3], [B2, B3], X, Y)
    assert_printed(nabla_b[1], DELTA3_PRINTED)          # δ³ (BP1), = ∂C/∂b³ (BP3)
    assert_printed(nabla_b[0], DELTA2_PRINTED)          # δ² (BP2)
    assert_printed(nabla_w[1], DW3_PRINTED)             # BP4, with the slide's typo corrected
    assert_printed(nabla_w[0], DW2_PRINTED)
    assert abs(nabla_w[1][0, 2] - (-0.0098)) > 0.04     # the typo is not reproduced
    assert [b.shape for b in nabla_b] == [(3, 1), (2, 1)]
    assert [w.shape for w in nabla_w] == [(3, 2), (2, 3)]


# -- activations and costs against finite differences ------------------------------

def central(fn, z, h=1e-6):
    """(fn(z + h) − fn(z − h)) / 2h, elementwise."""
    return (fn(z + h) - fn(z - h)) / (2 * h)


@pytest.mark.parametrize("name", HIDDEN)
def test_activation_derivatives(name):
    f, f_prime = R.activation(name)
    z = np.random.default_rng(1).uniform(-3, 3, (7, 1))
    z = z[np.abs(z) > 1e-3].reshape(-1, 1)              # away from relu's kink
    np.testing.assert_allclose(f_prime(z), central(f, z), rtol=1e-7, atol=1e-9)
    assert np.array_equal(R.jacobian(name, z), np.diag(f_prime(z).ravel()))


def test_sigmoid_is_the_formula_and_never_overflows():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(R.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = R.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert list(s) == [0.0, 0.5, 1.0]


def test_softmax_and_its_jacobian():
    z = np.array([[0.3], [-1.2], [2.0], [0.0]])
    a = R.softmax(z)
    assert a.shape == (4, 1) and a.sum() == pytest.approx(1.0, rel=1e-15)
    np.testing.assert_allclose(a, np.exp(z) / np.exp(z).sum(), rtol=1e-15)
    J = R.softmax_jacobian(z)
    h = 1e-6
    numeric = np.column_stack([((R.softmax(z + h * e) - R.softmax(z - h * e)) / (2 * h)).ravel()
                               for e in np.eye(4)[:, :, None]])
    np.testing.assert_allclose(J, numeric, rtol=1e-7, atol=1e-10)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert np.allclose(R.softmax(np.array([800.0, 0.0])), [1.0, 0.0])


@pytest.mark.parametrize("output,cost", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
def test_output_error_is_the_cost_gradient_through_the_activation(output, cost):
    # δ^L = ∂C_x/∂z^L: finite differences of C_x(f_out(z)) in each z_j, and the
    # cancelled forms equal the general product J_fᵀ ∇_a C.
    rng = np.random.default_rng(3)
    z = rng.uniform(-1.5, 1.5, (4, 1))
    y = rng.uniform(0.1, 0.9, (4, 1))
    if output == "softmax" and cost == "log_likelihood":
        y = y / y.sum()
    f_out = R.functions("sigmoid", output, cost)["f_out"]

    def c(zv):
        return R.cost(cost, f_out(zv), y)
    numeric = np.array([[(c(z + 1e-6 * e) - c(z - 1e-6 * e)) / 2e-6]
                        for e in np.eye(4)[:, :, None]]).reshape(4, 1)
    a = f_out(z)
    delta = R.output_error(cost, output, z, a, y)
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(delta, R.output_error(cost, output, z, a, y, cancel=False),
                               rtol=1e-12, atol=1e-15)
    # ∇_a C against finite differences in a itself.
    numeric_a = np.array([(R.cost(cost, a + 1e-6 * e, y) - R.cost(cost, a - 1e-6 * e, y)) / 2e-6
                          for e in np.eye(4)[:, :, None]]).reshape(4, 1)
    np.testing.assert_allclose(R.cost_gradient(cost, a, y), numeric_a, rtol=1e-6, atol=1e-9)


def test_cost_formulas():
    a = np.array([[0.2], [0.9]])
    y = np.array([[0.0], [1.0]])
    assert R.cost("quadratic", a, y) == pytest.approx(0.5 * (0.04 + 0.01), rel=1e-15)
    assert R.cost("sse", a, y) == pytest.approx(0.04 + 0.01, rel=1e-15)
    # 0 · ln 0 counts as 0: only ln(1 − 0.2) and ln 0.9 remain.
    assert R.cost("cross_entropy", a, y) == pytest.approx(-np.log(0.8) - np.log(0.9), rel=1e-15)
    assert R.cost("log_likelihood", a, y) == pytest.approx(-np.log(0.9), rel=1e-15)
    assert R.cost("cross_entropy", np.array([[1.0]]), np.array([[1.0]])) == 0.0


# -- backprop against finite differences of total_cost ------------------------------

def numeric_gradient(weights, biases, x, y, fs, cost, h=1e-6):
    weights = [w.copy() for w in weights]
    biases = [b.copy() for b in biases]
    grads = []
    for arrays in (biases, weights):
        out = []
        for arr in arrays:
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                keep = arr[idx]
                arr[idx] = keep + h
                up = R.total_cost(weights, biases, [(x, y)], cost=cost, f=fs["f"],
                                  f_out=fs["f_out"])
                arr[idx] = keep - h
                down = R.total_cost(weights, biases, [(x, y)], cost=cost, f=fs["f"],
                                    f_out=fs["f_out"])
                arr[idx] = keep
                g[idx] = (up - down) / (2 * h)
            out.append(g)
        grads.append(out)
    return grads


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


@pytest.mark.parametrize("output,cost", PAIRS, ids=[f"{o}-{c}" for o, c in PAIRS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_against_finite_differences(hidden, output, cost):
    rng = np.random.default_rng(HIDDEN.index(hidden) * 31 + PAIRS.index((output, cost)))
    sizes = [3, 4, 5, 3]
    for _ in range(50):
        weights = [rng.normal(0, 1 / np.sqrt(i), (o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
        biases = [rng.normal(0, 1, (o, 1)) for o in sizes[1:]]
        x = rng.uniform(-1, 1, (3, 1))
        zs, _ = R.forward(weights, biases, x, *[R.functions(hidden, output, cost)[k]
                                                for k in ("f", "f_out")])
        # Away from relu's kink, and not every relu output dead.
        if "relu" in (hidden, output) and min(np.min(np.abs(z)) for z in zs) < 1e-4:
            continue
        if output == "relu" and np.all(zs[-1] <= 0):
            continue
        break
    y = rng.uniform(0.1, 0.9, (3, 1))
    if output == "softmax" and cost == "log_likelihood":
        y = y / y.sum()
    fs = R.functions(hidden, output, cost)
    nabla_b, nabla_w = R.backprop(weights, biases, x, y, **fs)
    fd_b, fd_w = numeric_gradient(weights, biases, x, y, fs, cost)
    g, g_fd = flat(nabla_b + nabla_w), flat(fd_b + fd_w)
    assert np.linalg.norm(g_fd) > 1e-8
    assert np.linalg.norm(g - g_fd) / (np.linalg.norm(g) + np.linalg.norm(g_fd)) < 1e-6


# -- the pluggable functions -----------------------------------------------------------

def test_callables_replace_the_activation_and_the_output_error():
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    biases = [rng.normal(size=(4, 1)), rng.normal(size=(2, 1))]
    x, y = rng.uniform(-1, 1, (3, 1)), rng.uniform(0, 1, (2, 1))
    by_name = R.backprop(weights, biases, x, y, **R.functions("tanh", "tanh", "quadratic"))
    # network.sigmoid = np.tanh: f for every layer, δ^L = (a − y) ⊙ f'(z^L).
    by_callable = R.backprop(weights, biases, x, y, f=np.tanh,
                             f_prime=lambda z: 1 - np.tanh(z) ** 2)
    doubled = R.backprop(weights, biases, x, y, f=np.tanh, f_prime=lambda z: 1 - np.tanh(z) ** 2,
                         cost_derivative=lambda a, t: 2 * (a - t))
    sse = R.backprop(weights, biases, x, y, **R.functions("tanh", "tanh", "sse"))
    calls = []

    def delta(z, a, t):
        calls.append((z.shape, a.shape, t.shape))
        return a - t
    ce = R.backprop(weights, biases, x, y, f=np.tanh, f_prime=lambda z: 1 - np.tanh(z) ** 2,
                    f_out=R.sigmoid, output_error=delta)
    for got, want in [(by_callable, by_name), (doubled, sse),
                      (ce, R.backprop(weights, biases, x, y,
                                      **R.functions("tanh", "sigmoid", "cross_entropy")))]:
        for g, w in zip(got[0] + got[1], want[0] + want[1]):
            np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-16)
    assert calls == [((2, 1), (2, 1), (2, 1))]
    # The quadratic cost with σ is the default, as in network.py.
    plain = R.backprop(weights, biases, x, y)
    sigmoid_q = R.backprop(weights, biases, x, y, **R.functions())
    for g, w in zip(plain[0] + plain[1], sigmoid_q[0] + sigmoid_q[1]):
        np.testing.assert_array_equal(g, w)


def test_dtype_follows_the_parameters():
    rng = np.random.default_rng(6)
    w64 = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    b64 = [rng.normal(size=(4, 1)), rng.normal(size=(2, 1))]
    w32 = [w.astype(np.float32) for w in w64]
    b32 = [b.astype(np.float32) for b in b64]
    x, y = rng.uniform(-1, 1, 3), rng.uniform(0, 1, 2)      # float64 1-D: converted
    for name in HIDDEN:
        fs = R.functions(name, "softmax", "log_likelihood")
        nb32, nw32 = R.backprop(w32, b32, x, y, **fs)
        nb64, nw64 = R.backprop(w64, b64, x, y, **fs)
        assert {g.dtype for g in nb32 + nw32} == {np.dtype(np.float32)}
        assert {g.dtype for g in nb64 + nw64} == {np.dtype(np.float64)}
        for g32, g64 in zip(nb32 + nw32, nb64 + nw64):
            np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
        assert R.feedforward(w32, b32, x, fs["f"], fs["f_out"]).dtype == np.float32
    # A caller's σ' in float64 does not promote a float32 network's gradient.
    nb, nw = R.backprop(w32, b32, x, y, f_prime=lambda z: R.sigmoid_prime(z.astype(np.float64)))
    assert {g.dtype for g in nb + nw} == {np.dtype(np.float32)}


def test_output_layer_derivative_is_its_own():
    # tanh hidden, sigmoid output: network.py's BP1 with cost_derivative uses
    # the output layer's σ', not the hidden layers'.
    rng = np.random.default_rng(8)
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    biases = [rng.normal(size=(4, 1)), rng.normal(size=(2, 1))]
    x, y = rng.uniform(-1, 1, (3, 1)), rng.uniform(0, 1, (2, 1))
    fs = R.functions("tanh", "sigmoid", "quadratic")
    assert fs["f_out_prime"] is R.sigmoid_prime
    assert R.functions("tanh", "softmax")["f_out_prime"] is None
    want = R.backprop(weights, biases, x, y, **fs)
    got = R.backprop(weights, biases, x, y, f=np.tanh, f_prime=R.tanh_prime, f_out=R.sigmoid,
                     f_out_prime=R.sigmoid_prime, cost_derivative=lambda a, t: a - t)
    for g, w in zip(got[0] + got[1], want[0] + want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-17)
    with pytest.raises(ValueError, match="f_out_prime"):
        R.backprop(weights, biases, x, y, f=np.tanh, f_prime=R.tanh_prime, f_out=R.sigmoid)


def test_sum_gradients_checks_a_gradient_against_the_parameters():
    batch = [(X, Y)] * 3
    sum_b, sum_w = R.sum_gradients(batch, lambda x, y: R.backprop([W2, W3], [B2, B3], x, y),
                                   [B2, B3], [W2, W3])
    nabla_b, nabla_w = R.backprop([W2, W3], [B2, B3], X, Y)
    for s, g in zip(sum_b + sum_w, nabla_b + nabla_w):
        np.testing.assert_allclose(s, 3 * g, rtol=1e-15)
    with pytest.raises(ValueError, match=r"backprop returned nabla_w\[1\] of shape \(2, 1\)"):
        R.sum_gradients(batch, lambda x, y: (nabla_b, [nabla_w[0], nabla_w[1][:, :1]]),
                        [B2, B3], [W2, W3])
    with pytest.raises(ValueError, match="backprop must return 2 arrays in nabla_b; got 1"):
        R.sum_gradients(batch, lambda x, y: (nabla_b[:1], nabla_w), [B2, B3], [W2, W3])
    assert R.sum_gradients([], None) == (None, None)


# -- the update rules and the total cost ---------------------------------------------

def test_sgd_step_is_the_notes_rule_with_l2():
    eta, lmbda, n = 0.5, 2.0, 10
    nabla_b, nabla_w = R.backprop([W2, W3], [B2, B3], X, Y)
    # m = 2: the same example twice, so Σ = 2 ∇C_x.
    ws, bs = R.update_mini_batch([W2, W3], [B2, B3], [(X, Y), (X.ravel(), Y.ravel())], eta,
                                 lmbda, n)
    decay = 1 - eta * lmbda / n
    for got, w, g in zip(ws, [W2, W3], nabla_w):
        np.testing.assert_allclose(got, decay * w - eta * g, rtol=1e-15, atol=1e-17)
    for got, b, g in zip(bs, [B2, B3], nabla_b):
        np.testing.assert_allclose(got, b - eta * g, rtol=1e-15, atol=1e-17)
    # The inputs are not modified.
    assert W3[0, 2] == -0.74 and B3[0, 0] == 0.33
    # λ = 0 (n unused): note 001's rule w − (η/m) Σ∇w; to the slide's digits, w³₁₃ moves by 3 · 0.0582.
    ws, _ = R.update_mini_batch([W2, W3], [B2, B3], [(X, Y)], 3.0)
    assert round(float(ws[1][0, 2]), 3) == round(-0.74 + 3.0 * 0.0582, 3)


def test_update_mini_batch_takes_any_gradient_function():
    calls = []

    def gradient(x, y):
        calls.append(1)
        return [np.ones((3, 1)), np.ones((2, 1))], [np.ones((3, 2)), np.ones((2, 3))]
    ws, bs = R.update_mini_batch([W2, W3], [B2, B3], [(X, Y)] * 4, 0.1, gradient=gradient)
    assert len(calls) == 4
    np.testing.assert_allclose(ws[0], W2 - 0.1, rtol=1e-15)
    np.testing.assert_allclose(bs[1], B3 - 0.1, rtol=1e-15)


def test_momentum_step():
    nabla_b, nabla_w = R.backprop([W2, W3], [B2, B3], X, Y)
    zeros_w, zeros_b = [np.zeros_like(W2), np.zeros_like(W3)], [np.zeros_like(B2),
                                                                 np.zeros_like(B3)]
    # From rest, one momentum step is the plain step.
    ws, bs, vw, vb = R.momentum_step([W2, W3], [B2, B3], zeros_w, zeros_b, nabla_b, nabla_w,
                                     0.5, 1, 0.9, lmbda=0.2, n=4)
    plain_w, plain_b = R.sgd_step([W2, W3], [B2, B3], nabla_b, nabla_w, 0.5, 1, 0.2, 4)
    for got, want in zip(ws + bs, plain_w + plain_b):
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-17)
    # The second step carries μ v.
    ws2, bs2, _, _ = R.momentum_step(ws, bs, vw, vb, nabla_b, nabla_w, 0.5, 1, 0.9)
    np.testing.assert_allclose(bs2[1], bs[1] + 0.9 * vb[1] - 0.5 * nabla_b[1], rtol=1e-14)


def test_total_cost_with_l2():
    a3 = R.feedforward([W2, W3], [B2, B3], X)
    expected = 0.5 * float(np.sum((a3 - Y) ** 2))
    l2 = 0.5 * 0.1 / 2 * (np.sum(W2 ** 2) + np.sum(W3 ** 2))     # (λ/2n) Σ‖w‖², n = 2
    got = R.total_cost([W2, W3], [B2, B3], [(X, Y), (X, Y)], lmbda=0.1)
    assert got == pytest.approx(expected + l2, rel=1e-15)
    # A cost class's fn(a, y) in place of a name.
    assert R.total_cost([W2, W3], [B2, B3], [(X, Y)],
                        cost=lambda a, y: 3.0) == pytest.approx(3.0, rel=1e-15)


# -- the book's own code -----------------------------------------------------------

@pytest.mark.parametrize("cost_class, cost", [("QuadraticCost", "quadratic"),
                                              ("CrossEntropyCost", "cross_entropy")])
def test_agrees_with_the_books_network2(cost_class, cost):
    # network2.py (../shared/nielsen) on the same weights: backprop, the L2
    # update (1 − ηλ/n) w − (η/m) Σ∇w, and total_cost with its L2 term.
    network2 = load_original("network2", "nielsen_network2_for_test_reference")
    np.random.seed(3)
    book = network2.Network([4, 5, 3], cost=getattr(network2, cost_class))
    rng = np.random.default_rng(3)
    batch = [(rng.uniform(0, 1, (4, 1)), rng.uniform(0, 1, (3, 1))) for _ in range(6)]
    weights = [w.copy() for w in book.weights]
    biases = [b.copy() for b in book.biases]
    fs = R.functions("sigmoid", "sigmoid", cost)
    for x, y in batch[:2]:
        for got, want in zip(sum(R.backprop(weights, biases, x, y, **fs), []),
                             sum(book.backprop(x, y), [])):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)
    assert R.total_cost(weights, biases, batch, 0.7, cost) == pytest.approx(
        book.total_cost(batch, 0.7), rel=1e-13)
    book.update_mini_batch(batch, 0.5, 0.7, 40)
    ws, bs = R.update_mini_batch(weights, biases, batch, 0.5, 0.7, 40, **fs)
    for got, want in zip(ws + bs, book.weights + book.biases):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)


def test_agrees_with_the_books_network_with_its_functions_replaced():
    # network.py with its module's sigmoid and sigmoid_prime replaced (an
    # exercise): the reference called with the same callables gives its backprop.
    network = load_original("network", "nielsen_network_for_test_reference")
    np.random.seed(4)
    book = network.Network([3, 4, 2])
    network.sigmoid = np.tanh
    network.sigmoid_prime = lambda z: 1 - np.tanh(z) ** 2
    x, y = np.full((3, 1), 0.3), np.array([[0.2], [-0.4]])
    want = book.backprop(x, y)
    got = R.backprop(book.weights, book.biases, x, y, f=network.sigmoid,
                     f_prime=network.sigmoid_prime, cost_derivative=book.cost_derivative)
    for g, w in zip(got[0] + got[1], want[0] + want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-16)


# -- refusals ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, word", [
    (lambda: R.activation("softmax"), "softmax"),
    (lambda: R.activation("swish"), "name"),
    (lambda: R.cost("hinge", X, Y), "name"),
    (lambda: R.functions("softmax"), "activation"),
    (lambda: R.functions("sigmoid", "swish"), "output_activation"),
    (lambda: R.functions("sigmoid", "sigmoid", "hinge"), "cost"),
    (lambda: R.backprop([W2, W3], [B2, B3], np.ones(3), Y), "x"),
    (lambda: R.backprop([W2, W3], [B2, B3], X, np.ones((1, 2))), "y"),
    (lambda: R.backprop([W2, W3], [B2, B3], X, Y, output_error=lambda z, a, y: a.ravel()),
     "output error"),
    (lambda: R.update_mini_batch([W2, W3], [B2, B3], [], 0.1), "mini_batch"),
    (lambda: R.total_cost([W2, W3], [B2, B3], [], 0.1), "data"),
    (lambda: R.total_cost([W2, W3], [B2, B3], [(X, Y)], cost="hinge"), "cost"),
])
def test_refusals_name_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
