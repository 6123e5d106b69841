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


def _cost_case(name):
    # An output activation the cost accepts, and targets in its range.
    output = "softmax" if name == "log_likelihood" else "sigmoid"
    a = EXPECTED_ACTIVATION[output](Z)
    y = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]])
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
    output = "softmax" if name == "log_likelihood" else "sigmoid"
    z = np.array([[-1.0, -2.0]], dtype=np.float32)
    a = EXPECTED_ACTIVATION[output](z.astype(np.float64)).astype(np.float32)
    y = np.full((1, 2), np.finfo(np.float32).max, dtype=np.float32)
    out = np.empty(1)
    _core.costs(z, a, y, ACTIVATIONS[output].code, COSTS[name].code, out)
    assert np.isfinite(out[0]), out[0]
