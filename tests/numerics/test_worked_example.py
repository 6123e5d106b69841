"""The worked 2-3-2 example of lecture note 001 (Kulyukin, CS 5600), number by number.

Layer 1 is the input, so the slide's first weight matrix is W² (3, 2) and the
second W³ (2, 3).  x = y = [1, 1], sigmoid everywhere, quadratic cost
C = ½‖a³ − y‖².  Every value is compared with the digits printed on the slide:
the library's value must round to the printed one (abs tolerance of half a unit
in the last printed digit).  The full-precision values come from
:mod:`cbp.reference` (the notes' equations in NumPy), which
tests/test_reference.py proves against the same printed digits.
"""
import numpy as np
import pytest

import cbp
from cbp import _core, reference

W2 = np.array([[-0.81, -0.34],
               [-1.57, -0.03],
               [0.60, -0.52]])
B2 = np.array([[0.27], [0.87], [0.13]])
W3 = np.array([[0.51, 0.65, -0.74],
               [-1.42, -0.89, 2.02]])
B3 = np.array([[0.33], [0.65]])
X = np.array([[1.0], [1.0]])
Y = np.array([[1.0], [1.0]])

SIGMOID, QUADRATIC = _core.ACTIVATION_CODES["sigmoid"], _core.COST_CODES["quadratic"]

# As printed on the slides.
Z2_PRINTED = [-0.88, -0.73, 0.21]
A2_PRINTED = [0.29, 0.33, 0.55]
Z3_PRINTED = [0.28, 1.06]
A3_PRINTED = [0.57, 0.74]
DELTA3_PRINTED = [-0.1054, -0.0492]
DELTA2_PRINTED = [0.0033, -0.0054, -0.0053]
# ∂C/∂w³: the slide prints −0.0098 for row 1, column 3; that is a typo, the
# correct value is a₃² δ₁³ = 0.55231 × (−0.10537) ≈ −0.0582
# (see ../shared/seeds/README.md, the note on file 001).
DW3_PRINTED = [[-0.031, -0.034, -0.0582],
               [-0.014, -0.016, -0.027]]
DW2_PRINTED = [[0.0033, 0.0033],
               [-0.0054, -0.0054],
               [-0.0053, -0.0053]]


def decimals(printed):
    """Digits after the decimal point of a printed number, e.g. -0.0054 -> 4."""
    text = repr(float(printed))
    return len(text.split(".")[1]) if "." in text else 0


def assert_printed(values, printed):
    """Each value agrees with the printed one to half a unit of its last digit."""
    values = np.asarray(values, dtype=float).reshape(np.shape(printed))
    for got, want in zip(values.ravel(), np.ravel(printed)):
        digits = decimals(want)
        assert abs(got - want) <= 0.5 * 10.0 ** -digits + 1e-12, (got, want)
        assert round(float(got), digits) == pytest.approx(want, abs=1e-12), (got, want)


@pytest.fixture
def net():
    net = cbp.Network([2, 3, 2], activation="sigmoid", cost="quadratic", seed=0)
    net.weights = [W2, W3]
    net.biases = [B2, B3]
    return net


def reference_forward():
    """z², a², z³, a³ from cbp.reference."""
    zs, activations = reference.forward([W2, W3], [B2, B3], X)
    return zs[0], activations[1], zs[1], activations[2]


def reference_backward():
    """δ³, δ², ∂C/∂w³, ∂C/∂w² from cbp.reference."""
    nabla_b, nabla_w = reference.backprop([W2, W3], [B2, B3], X, Y)
    return nabla_b[1], nabla_b[0], nabla_w[1], nabla_w[0]


def test_slide_typo_is_not_reproduced(net):
    _, nabla_w = net.backprop(X, Y)
    # The printed −0.0098 is a typo (../shared/seeds/README.md): the entry is a₃² δ₁³.
    assert abs(nabla_w[1][0, 2] - (-0.0098)) > 0.04
    assert round(float(nabla_w[1][0, 2]), 4) == -0.0582


def test_feedforward_output(net):
    a3 = net.feedforward(X)
    assert a3.shape == (2, 1)
    assert_printed(a3, A3_PRINTED)
    np.testing.assert_allclose(a3, reference_forward()[3], rtol=1e-14, atol=0)
    # 1-D and batch forms give the same numbers.
    assert_printed(net.feedforward(X.ravel()), A3_PRINTED)
    assert_printed(net.feedforward(X.T), [A3_PRINTED])


def test_feedforward_with_core_kernels():
    A1 = np.ascontiguousarray(X.T)                  # one example per row
    Z2 = np.empty((1, 3))
    _core.py_feedforward_layer(A1, np.ascontiguousarray(W2), B2.ravel().copy(), Z2)
    assert_printed(Z2, [Z2_PRINTED])
    A2 = np.empty_like(Z2)
    _core.py_activate(Z2, A2, SIGMOID)
    assert_printed(A2, [A2_PRINTED])
    Z3 = np.empty((1, 2))
    _core.py_feedforward_layer(A2, np.ascontiguousarray(W3), B3.ravel().copy(), Z3)
    assert_printed(Z3, [Z3_PRINTED])
    A3 = np.empty_like(Z3)
    _core.py_activate(Z3, A3, SIGMOID)
    assert_printed(A3, [A3_PRINTED])
    z2, a2, z3, a3 = reference_forward()
    np.testing.assert_allclose(Z2, z2.T, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(A3, a3.T, rtol=1e-14, atol=0)


def test_errors_with_core_kernels():
    z2, a2, z3, a3 = reference_forward()
    A2 = np.ascontiguousarray(a2.T)
    A3 = np.ascontiguousarray(a3.T)
    D3 = np.empty((1, 2))
    _core.py_output_error(A3, np.ascontiguousarray(Y.T), D3, SIGMOID, QUADRATIC)   # BP1
    assert_printed(D3, [DELTA3_PRINTED])
    D2 = np.empty((1, 3))
    _core.py_backpropagate_error(D3, np.ascontiguousarray(W3), A2, D2, SIGMOID)     # BP2
    assert_printed(D2, [DELTA2_PRINTED])
    d3, d2, dw3, dw2 = reference_backward()
    np.testing.assert_allclose(D3, d3.T, rtol=1e-13)
    np.testing.assert_allclose(D2, d2.T, rtol=1e-12)

    # BP3/BP4: accumulating into zeros with α = 1, β = 1 gives the gradient.
    G3, g3 = np.zeros((2, 3)), np.zeros(2)
    _core.py_gradient_step(D3, A2, G3, g3, 1.0, 1.0)
    assert_printed(G3, DW3_PRINTED)
    assert_printed(g3, DELTA3_PRINTED)
    G2, g2 = np.zeros((3, 2)), np.zeros(3)
    _core.py_gradient_step(D2, np.ascontiguousarray(X.T), G2, g2, 1.0, 1.0)
    assert_printed(G2, DW2_PRINTED)
    assert_printed(g2, DELTA2_PRINTED)


def test_gradient_step_kernel_is_the_update():
    d3, d2, dw3, dw2 = reference_backward()
    _, a2, _, _ = reference_forward()
    eta, beta = 0.5, 0.99
    W, b = W3.copy(), B3.ravel().copy()
    _core.py_gradient_step(np.ascontiguousarray(d3.T), np.ascontiguousarray(a2.T), W, b,
                           -eta, beta)
    np.testing.assert_allclose(W, beta * W3 - eta * dw3, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(b, B3.ravel() - eta * d3.ravel(), rtol=1e-14, atol=1e-16)


def test_backprop(net):
    nabla_b, nabla_w = net.backprop(X, Y)
    assert [b.shape for b in nabla_b] == [(3, 1), (2, 1)]
    assert [w.shape for w in nabla_w] == [(3, 2), (2, 3)]
    assert_printed(nabla_b[1], DELTA3_PRINTED)
    assert_printed(nabla_b[0], DELTA2_PRINTED)
    assert_printed(nabla_w[1], DW3_PRINTED)
    assert_printed(nabla_w[0], DW2_PRINTED)
    d3, d2, dw3, dw2 = reference_backward()
    np.testing.assert_allclose(nabla_w[1], dw3, rtol=1e-13)
    np.testing.assert_allclose(nabla_w[0], dw2, rtol=1e-12)
    np.testing.assert_allclose(nabla_b[1], d3, rtol=1e-13)
    np.testing.assert_allclose(nabla_b[0], d2, rtol=1e-12)
    # 1-D x and y give the same gradient.
    nb1, nw1 = net.backprop(X.ravel(), Y.ravel())
    for a, b in zip(nb1 + nw1, nabla_b + nabla_w):
        np.testing.assert_array_equal(a, b)


def test_update_mini_batch_one_example(net):
    eta = 3.0
    # W ← W − η ∂C/∂W, b ← b − η δ (m = 1).
    (w2, w3), (b2, b3) = reference.update_mini_batch([W2, W3], [B2, B3], [(X, Y)], eta)
    net.update_mini_batch([(X, Y)], eta)
    np.testing.assert_allclose(net.weights[1], w3, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.weights[0], w2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.biases[1], b3, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.biases[0], b2, rtol=1e-13, atol=1e-15)
    # To the slide's precision: w³₁₃ moves by −η · (−0.0582).
    assert round(float(net.weights[1][0, 2]), 3) == round(-0.74 + 3.0 * 0.0582, 3)


def test_update_mini_batch_two_examples_with_l2(net):
    # m = 2 (the same example twice, so Σ = 2∇C_x): W ← (1 − ηλ/n) W − (η/2)·2∇C_x.
    eta, lmbda, n = 0.5, 2.0, 10
    batch = [(X, Y), (X.ravel(), Y.ravel())]
    (w2, w3), (b2, b3) = reference.update_mini_batch([W2, W3], [B2, B3], batch, eta, lmbda, n)
    net.update_mini_batch(batch, eta, lmbda=lmbda, n=n)
    np.testing.assert_allclose(net.weights[1], w3, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.weights[0], w2, rtol=1e-13, atol=1e-15)
    # No decay on biases.
    np.testing.assert_allclose(net.biases[1], b3, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(net.biases[0], b2, rtol=1e-13, atol=1e-15)


def test_total_cost(net):
    expected = reference.total_cost([W2, W3], [B2, B3], [(X, Y)])      # ½‖a³ − y‖²
    assert net.total_cost([(X, Y)]) == pytest.approx(expected, rel=1e-14)
    # With λ: + (λ/2n) Σ‖W‖², n = 1.
    with_l2 = reference.total_cost([W2, W3], [B2, B3], [(X, Y)], lmbda=0.1)
    assert with_l2 > expected
    assert net.total_cost([(X, Y)], lmbda=0.1) == pytest.approx(with_l2, rel=1e-14)
