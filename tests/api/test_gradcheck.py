"""cbp.gradcheck: backprop against central differences of the cost, layer by layer."""
import numpy as np
import pytest

import cbp
import cbp.network
import cbp.network2
from cbp.gradcheck import GradCheck, LayerCheck, gradcheck


def example(net, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((net.sizes[0], 1))
    y = np.zeros((net.sizes[-1], 1))
    y[1] = 1.0
    return x, y


@pytest.mark.parametrize("net", [
    cbp.Network([4, 5, 3], seed=0),
    cbp.Network([4, 6, 5, 3], activation="tanh", output_activation="softmax",
                cost="log_likelihood", init="scaled", seed=1),
    cbp.Network([4, 3], cost="cross_entropy", seed=2),
    cbp.Network([4, 5, 3], activation="relu", output_activation="linear", cost="sse",
                init="scaled", seed=3),
    cbp.network.Network([4, 5, 3], seed=4),
    cbp.network2.Network([4, 5, 3], seed=5),
    cbp.network2.Network([4, 5, 3], cost=cbp.network2.QuadraticCost, seed=6),
])
def test_cbp_backprop_passes(net):
    x, y = example(net)
    before = [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    report = gradcheck(net, x, y)
    assert isinstance(report, GradCheck) and report.ok and bool(report)
    assert sorted(report.errors) == list(range(2, net.num_layers + 1))
    assert max(report.errors.values()) < 1e-6
    assert "agrees with finite differences in every layer" in str(report)
    # The network itself is untouched.
    for a, b in zip(before, list(net.weights) + list(net.biases)):
        np.testing.assert_array_equal(a, b)


class WrongHidden(cbp.network.Network):
    """The student's backprop with BP2 missing σ'(z): layer 2 wrong, layer 3 right."""

    def backprop(self, x, y):
        ws, bs = list(self.weights), list(self.biases)
        activation, activations, zs = x, [x], []
        for w, b in zip(ws, bs):
            zs.append(w @ activation + b)
            activation = cbp.sigmoid(zs[-1])
            activations.append(activation)
        delta = (activations[-1] - y) * cbp.sigmoid_prime(zs[-1])
        nabla_b, nabla_w = [delta], [delta @ activations[-2].T]
        delta = ws[-1].T @ delta                      # BP2 without ⊙ σ'(z^2)
        nabla_b.insert(0, delta)
        nabla_w.insert(0, delta @ activations[0].T)
        return nabla_b, nabla_w


class WrongOutput(cbp.network.Network):
    """A cost_derivative with the sign flipped: every layer wrong, BP1 first."""

    def cost_derivative(self, output_activations, y):
        return y - output_activations


def test_wrong_hidden_layer_is_named():
    net = WrongHidden([4, 5, 3], seed=0)
    report = gradcheck(net, *example(net))
    assert not report.ok and report.wrong == [2]
    assert report.errors[3] < 1e-6 and report.errors[2] > 1e-2
    text = str(report)
    assert "WrongHidden.backprop disagrees" in text
    assert "layer 2 (W^2, b^2 = net.weights[0], net.biases[0])" in text
    assert "BP2 for δ^2 (the layers above agree)" in text
    assert "layer 2: " in text and "WRONG" in text


def test_wrong_output_error_points_at_bp1():
    net = WrongOutput([4, 5, 3], seed=0)
    report = gradcheck(net, *example(net))
    assert report.wrong == [2, 3]
    assert "look first at layer 3, nearest the output: BP1" in report.message()


def test_network2_own_cost_class_is_checked():
    class HalfDelta(cbp.network2.CrossEntropyCost):
        @staticmethod
        def delta(z, a, y):
            return 0.5 * (a - y)                 # δ^L off by a factor of two

    net = cbp.network2.Network([3, 4, 2], cost=HalfDelta, seed=0)
    report = gradcheck(net, *example(net))
    assert not report.ok and 3 in report.wrong


def test_entries_sampled_and_float32():
    net = cbp.Network([30, 20, 10], seed=0)
    report = gradcheck(net, *example(net), entries=10)
    assert [c.checked for c in report.layers] == [20, 20]
    assert report.ok
    single = cbp.Network([4, 5, 3], dtype="float32", seed=0)
    report = gradcheck(single, *example(single))
    assert report.ok and report.eps == 1e-2
    assert isinstance(report.layers[0], LayerCheck)
    assert gradcheck(net, *example(net), entries=None).layers[0].checked == 620


def test_integer_label_and_bad_arguments():
    net = cbp.Network([4, 5, 3], seed=0)
    x, _ = example(net)
    assert gradcheck(net, x, 1).ok
    with pytest.raises(TypeError, match="net must be a cbp.Network"):
        gradcheck("net", x, 1)
    with pytest.raises(ValueError, match="x"):
        gradcheck(net, np.ones(5), 1)
    with pytest.raises(ValueError, match="eps"):
        gradcheck(net, x, 1, eps=0)
    with pytest.raises(ValueError, match="entries"):
        gradcheck(net, x, 1, entries=0)

    class Short(cbp.network.Network):
        def backprop(self, x, y):
            return [np.zeros((5, 1))], [np.zeros((5, 4))]

    with pytest.raises(ValueError, match="backprop must return 2 arrays"):
        gradcheck(Short([4, 5, 3], seed=0), x, 1)


def test_exported():
    assert cbp.gradcheck is gradcheck and "gradcheck" in cbp.__all__
