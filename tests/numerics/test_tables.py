"""The name tables (activations, costs, step rules) against the compiled core's codes.

The numbers are written once, in ``_core.pyx``; the tables read them from the
extension.  These tests pin what each name *does* in the core, so a renumbered
enum or a table entry pointing at the wrong code fails here.
"""
import numpy as np
import pytest

from cbp import _core, reference, sgd
from cbp.activations import ACTIVATIONS
from cbp.costs import COSTS

Z = np.array([[-2.0, -0.5, 0.0, 0.7, 3.0]])     # one example: softmax is over the row

# What each name computes: the notes' formulas, from cbp.reference.
EXPECTED_ACTIVATION = {name: reference.softmax if name == "softmax"
                       else reference.activation(name)[0] for name in reference.ACTIVATIONS}


def test_every_table_names_exactly_the_cores_codes():
    assert {k: v.code for k, v in ACTIVATIONS.items()} == _core.ACTIVATION_CODES
    assert {k: v.code for k, v in COSTS.items()} == _core.COST_CODES
    assert {sgd.RULES[k].code for k in sgd.RULES} == set(_core.RULE_CODES.values())
    assert sgd.RULES["momentum"].code == _core.RULE_CODES["sgd"]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_code_computes_its_function(name):
    out = np.empty_like(Z)
    _core.py_activate(Z, out, ACTIVATIONS[name].code)
    np.testing.assert_allclose(out, EXPECTED_ACTIVATION[name](Z), rtol=1e-14, atol=1e-300)


def _output_for(name):
    # An output activation the cost accepts.
    return {"log_likelihood": "softmax", "poisson": "exp"}.get(name, "sigmoid")


def _cost_case(name):
    # An output activation the cost accepts, and targets in its range.
    output = _output_for(name)
    a = EXPECTED_ACTIVATION[output](Z)
    y = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]])
    if name == "poisson":
        y = np.array([[0.0, 3.0, 1.0, 0.0, 7.0]])      # counts
    return output, a, y, reference.cost(name, a, y)


@pytest.mark.parametrize("name", sorted(COSTS))
def test_cost_code_computes_its_cost(name):
    output, a, y, expected = _cost_case(name)
    out = np.empty(1)
    _core.costs(Z, a, y, ACTIVATIONS[output].code, COSTS[name].code, out)
    np.testing.assert_allclose(out[0], expected, rtol=1e-13)


@pytest.mark.parametrize("name", sorted(COSTS))
def test_float32_cost_near_the_range_end_is_not_inf(name):
    # The products y·softplus(∓z) are taken in double: in float32 a target of
    # 3.4e38 times a softplus above 1 overflowed to +Inf (a fuzz draw found it).
    output = _output_for(name)
    z = np.array([[-1.0, -2.0]], dtype=np.float32)
    a = EXPECTED_ACTIVATION[output](z.astype(np.float64)).astype(np.float32)
    y = np.full((1, 2), np.finfo(np.float32).max, dtype=np.float32)
    out = np.empty(1)
    _core.costs(z, a, y, ACTIVATIONS[output].code, COSTS[name].code, out)
    assert np.isfinite(out[0]), out[0]


@pytest.mark.parametrize("name", sorted(COSTS))
def test_output_error_is_the_cost_gradient(name):
    # BP1 for each cost with an output activation it accepts: δ^L = ∂C/∂z^L,
    # against central differences of the core's own C_x.
    output, _, y, _ = _cost_case(name)
    z0 = Z.copy()
    act = ACTIVATIONS[output].code

    def cost(z):
        a = np.empty_like(z)
        _core.py_activate(z, a, act)
        out = np.empty(1)
        _core.costs(z, a, y, act, COSTS[name].code, out)
        return out[0]

    a = np.empty_like(z0)
    _core.py_activate(z0, a, act)
    delta = np.empty_like(z0)
    _core.py_output_error(a, y, delta, act, COSTS[name].code)
    h = 1e-6
    numeric = np.array([[(cost(z0 + h * e) - cost(z0 - h * e)) / (2 * h)
                         for e in np.eye(z0.shape[1])]])
    np.testing.assert_allclose(delta, numeric, rtol=1e-6, atol=1e-8)
