"""cbp.explain: the teaching trace reproduces note 001's slide and equals net.backprop."""
import io

import numpy as np
import pytest

import cbp
from cbp import reference
from cbp.explain import Trace, explain, worked_example

# Note 001's worked example, as printed on the slides (∂C/∂W³ row 1, column 3
# corrected from the slide's typo −0.0098 to a₃² δ₁³ ≈ −0.0582).
SLIDE = {
    "z2": [-0.88, -0.73, 0.21],
    "a2": [0.29, 0.33, 0.55],
    "z3": [0.28, 1.06],
    "a3": [0.57, 0.74],
    "delta3": [-0.1054, -0.0492],
    "delta2": [0.0033, -0.0054, -0.0053],
    "dW3": [[-0.031, -0.034, -0.0582], [-0.014, -0.016, -0.027]],
    "dW2": [[0.0033, 0.0033], [-0.0054, -0.0054], [-0.0053, -0.0053]],
}


def assert_printed(values, printed):
    """Every value rounds to the printed one: within half a unit of its last digit."""
    values = np.asarray(values, dtype=float)
    printed = np.asarray(printed, dtype=float)
    assert values.shape == printed.shape
    for got, want in zip(values.ravel(), printed.ravel()):
        text = repr(float(want))
        digits = len(text.split(".")[1])
        assert abs(got - want) <= 0.5 * 10.0 ** -digits + 1e-12, (got, want)


@pytest.fixture
def trace():
    return explain(*worked_example())


def test_worked_example_reproduces_slide(trace):
    assert_printed(trace.z[2], SLIDE["z2"])
    assert_printed(trace.a[2], SLIDE["a2"])
    assert_printed(trace.z[3], SLIDE["z3"])
    assert_printed(trace.a[3], SLIDE["a3"])
    assert_printed(trace.delta[3], SLIDE["delta3"])
    assert_printed(trace.delta[2], SLIDE["delta2"])
    assert_printed(trace.grad_w[3], SLIDE["dW3"])
    assert_printed(trace.grad_w[2], SLIDE["dW2"])
    np.testing.assert_array_equal(trace.grad_b[3], trace.delta[3])     # BP3
    np.testing.assert_array_equal(trace.grad_b[2], trace.delta[2])
    assert trace.grad_w[3][0, 2] == pytest.approx(0.55231 * -0.10537, abs=1e-4)


def test_worked_example_values_against_numpy(trace):
    net, x, y = worked_example()
    (z2, z3), (_, a2, a3) = reference.forward(net.weights, net.biases, x)
    (d2, d3), (dw2, dw3) = reference.backprop(net.weights, net.biases, x, y)
    for got, want in [(trace.z[2], z2), (trace.a[2], a2), (trace.z[3], z3), (trace.a[3], a3),
                      (trace.delta[3], d3), (trace.delta[2], d2)]:
        np.testing.assert_allclose(got, want.ravel(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(trace.grad_w[3], dw3, rtol=1e-13)
    np.testing.assert_allclose(trace.grad_w[2], dw2, rtol=1e-13)
    assert trace.cost_value == pytest.approx(reference.cost("quadratic", a3, y), rel=1e-13)
    np.testing.assert_array_equal(trace.a[1], x.ravel())


def test_matches_backprop_exactly_on_worked_example(trace):
    net, x, y = worked_example()
    nabla_b, nabla_w = net.backprop(x, y)
    got_b, got_w = trace.gradients()
    for got, want in zip(got_b + got_w, nabla_b + nabla_w):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


CONFIGS = [
    dict(sizes=[4, 6, 5, 3], activation="sigmoid", cost="quadratic"),
    dict(sizes=[4, 6, 5, 3], activation="tanh", output_activation="softmax",
         cost="log_likelihood"),
    dict(sizes=[5, 7, 2], activation="sigmoid", cost="cross_entropy"),
    dict(sizes=[3, 8, 4], activation="relu", output_activation="linear", cost="sse"),
    dict(sizes=[3, 4, 4], activation="tanh", output_activation="softmax", cost="quadratic"),
    dict(sizes=[6, 3], activation="sigmoid", cost="log_likelihood"),
    dict(sizes=[4, 6, 5, 3], activation="sigmoid", cost="quadratic", dtype="float32"),
]


@pytest.mark.parametrize("config", CONFIGS,
                         ids=lambda c: f"{c['activation']}-{c['cost']}-{c.get('dtype', '64')}")
def test_matches_backprop(config):
    config = dict(config)
    net = cbp.Network(config.pop("sizes"), seed=3, **config)
    rng = np.random.default_rng(1)
    x = rng.random(net.sizes[0])
    y = np.zeros(net.sizes[-1])
    y[1] = 1
    t = explain(net, x, y)
    nabla_b, nabla_w = net.backprop(x, y)
    got_b, got_w = t.gradients()
    for got, want in zip(got_b + got_w, nabla_b + nabla_w):
        assert got.dtype == net.dtype
        # The same kernels in the same order: the same bits.
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(t.a[len(net.sizes)], net.feedforward(x))
    assert t.cost_value == net.total_cost([(x, y)])
    assert "δ" in str(t)


def test_text_uses_notes_notation(trace):
    text = str(trace)
    for piece in ["δ", "BP1", "BP2", "BP3", "BP4",
                  "Feedforward: z^2 = W^2 a^1 + b^2",
                  "a^2 = σ(z^2)",
                  "Output error (BP1): δ^3 = ∇_a C ⊙ σ'(z^3)",
                  "BP2: δ^2 = ((W^3)ᵀ δ^3) ⊙ σ'(z^2)",
                  "BP3: ∂C/∂b^3 = δ^3",
                  "BP4: ∂C/∂W^2 = δ^2 (a^1)ᵀ",
                  "-0.1054", "-0.0492", "-0.0582", "0.0033", "-0.0054", "-0.0053",
                  "-0.8800", "0.2100"]:
        assert piece in text, piece


def test_cross_entropy_shows_cancelled_bp1():
    net = cbp.Network([2, 3, 2], cost="cross_entropy", seed=0)
    text = str(explain(net, [1, 0], [0, 1]))
    assert "δ^3 = a^3 − y" in text


def test_digits_and_print(trace):
    assert "-0.105368" in trace.render(digits=6)
    assert "-0.11" in trace.render(digits=2) and "-0.1054" not in trace.render(digits=2)
    buf = io.StringIO()
    trace.print(file=buf)
    assert buf.getvalue() == str(trace) + "\n"
    assert explain(*worked_example(), digits=3).digits == 3
    assert "C_x" in repr(trace)


def test_wide_layers_are_summarised():
    net = cbp.Network([784, 30, 10], seed=0)
    x = np.linspace(0, 1, 784)
    y = np.eye(10)[3]
    text = str(explain(net, x, y))
    assert "30×784 matrix" in text and "784 values" in text and "10×30 matrix" in text
    assert max(len(line) for line in text.splitlines()) < 200
    # The 10-wide output layer is still printed in full.
    assert "a^3 = σ(z^3) = [" in text


def test_explain_leaves_network_unchanged_and_method_delegates():
    net, x, y = worked_example()
    before = [w.copy() for w in net.weights]
    t = net.explain(x, y)
    assert isinstance(t, Trace)
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)


def test_accepts_columns_vectors_and_lists():
    net, x, y = worked_example()
    a = explain(net, x, y)
    b = explain(net, [1, 1], [1.0, 1.0])
    np.testing.assert_array_equal(a.delta[2], b.delta[2])


@pytest.mark.parametrize("x, y, error", [
    ([1, 1, 1], [1, 1], ValueError),
    ([[1, 1]], [1, 1], ValueError),
    ([1, np.nan], [1, 1], ValueError),
    ([1, 1], [1, 1, 0], ValueError),
    ("ab", [1, 1], TypeError),
])
def test_bad_examples(x, y, error):
    net, _, _ = worked_example()
    with pytest.raises(error):
        explain(net, x, y)


def test_bad_arguments():
    with pytest.raises(TypeError, match="Network"):
        explain("net", [1, 1], [1, 1])
    net, x, y = worked_example()
    with pytest.raises(ValueError, match="digits"):
        explain(net, x, y, digits=-1)
