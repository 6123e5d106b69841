"""The trace's content and renderings: update step, full BP1, digits, numbering, huge inputs."""
import warnings

import numpy as np
import pytest

import cbp
from cbp import reference
from cbp.explain import explain, worked_example


def test_update_step_is_a_training_step():
    net, x, y = worked_example()
    trace = explain(net, x, y, eta=0.5)
    for l, k in ((2, 0), (3, 1)):
        np.testing.assert_allclose(trace.W_new[l], net.weights[k] - 0.5 * trace.grad_w[l],
                                   rtol=1e-15)
        np.testing.assert_allclose(trace.b_new[l], net.biases[k].ravel() - 0.5 * trace.grad_b[l],
                                   rtol=1e-15)
    # The same numbers as one step of update_mini_batch on this one example.
    net.update_mini_batch([(x, y)], 0.5)
    np.testing.assert_allclose(trace.W_new[3], net.weights[1], rtol=1e-15)
    text = str(trace)
    assert "Update, gradient descent with η = 0.5 on this example" in text
    assert "W^3 − η ∂C/∂W^3 = [[ 0.5254" in text
    with pytest.raises(ValueError, match="eta"):
        explain(*worked_example(), eta=0)


def test_cross_entropy_bp1_in_full():
    net = cbp.Network([2, 3, 2], cost="cross_entropy", seed=0)
    trace = explain(net, [1, 0], [0, 1])
    a, y = trace.a[3], trace.y
    text = str(trace)
    assert "∇_a C = (a^3 − y) ⊘ (a^3 ⊙ (1 − a^3)) = [" in text
    assert "σ'(z^3) = a^3 ⊙ (1 − a^3) = [" in text
    assert "σ' cancels, δ^3 = a^3 − y" in text
    grad = reference.cost_gradient("cross_entropy", a, y)      # (a − y) / (a (1 − a))
    np.testing.assert_allclose(grad * a * (1 - a), trace.delta[3], rtol=1e-12)
    assert f"{grad[0]:.4f}" in text


def test_small_values_keep_significant_digits():
    net = cbp.Network([2, 2, 1], seed=0)
    net.weights = [np.array([[1e-7, 2.0], [3.0, -4e-6]]), np.array([[5e-9, 1.0]])]
    text = explain(net, [1.0, 0.0], [1.0]).render(digits=4)
    assert "1e-07" in text and "5e-09" in text          # not 0.0000
    assert "2.0000" in text                              # larger values keep fixed decimals


def test_header_and_numbering():
    flat = explain(cbp.Network([3, 2], seed=0), [1, 2, 3], [0, 1])
    assert "no hidden layer" in str(flat) and "hidden layer," in str(cbp.Network(
        [3, 4, 2], seed=0).explain([1, 2, 3], [0, 1])).splitlines()[0]
    assert "sigmoid hidden" not in str(flat)
    text = str(explain(*worked_example()))
    assert "input layer 1 to the output layer L = 3" in text
    assert "net.weights[l−2]" in text
    # One convention everywhere: plot_weights and the docs say the same.
    from cbp import plot
    assert "0 is W^2" in plot.plot_weights.__doc__


def test_conventions_table_in_docstring():
    doc = explain.__doc__
    for note, entry in (("000", "−∂E/∂net_j = −δ"), ("001", "∂C/∂z^l = δ"),
                        ("003", "W^(i+1)"), ("004", "= −δ/2")):
        line = next(l for l in doc.splitlines() if l.strip().startswith(note))
        assert note in line
        assert entry in doc


@pytest.mark.parametrize("setup", [dict(), dict(cost="cross_entropy"),
                                   dict(activation="relu", output_activation="linear",
                                        cost="sse"),
                                   dict(output_activation="softmax", cost="log_likelihood")])
def test_huge_finite_inputs_and_targets_do_not_warn(setup):
    """Issue 18, finding 15: inputs and targets of 1e308 printed NumPy RuntimeWarnings."""
    net = cbp.Network([3, 4, 2], seed=0, **setup)
    for x, y in (([1e308, -1e308, 1e300], [1e308, 1e308]), ([1e308] * 3, [0.5, 1e308])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            trace = explain(net, x, y)
            for render in (trace.render, trace.to_html, trace.to_markdown, trace.to_latex):
                assert render()


def test_renderings_agree_on_the_numbers():
    trace = explain(*worked_example())
    for out in (trace.to_html(), trace.to_markdown(), trace.to_latex()):
        for number in ("-0.1054", "-0.0492", "0.0033", "-0.0582", "0.1255"):
            assert number in out
    assert trace._repr_html_() == trace.to_html()
    assert trace.to_html(digits=2).count("-0.11") >= 2
    with pytest.raises(ValueError, match="max_columns"):
        trace.to_html(max_columns=0)


def test_cost_formula_typeset():
    html = explain(*worked_example()).to_html()
    assert r"C_x = \tfrac{1}{2}\lVert a^{3} - y \rVert^2 = 0.1255" in html
    ce = explain(cbp.Network([2, 2], cost="cross_entropy", seed=0), [1, 0], [0, 1]).to_html()
    assert r"\ln a^{2}_j + (1 - y_j) \ln(1 - a^{2}_j)" in ce
