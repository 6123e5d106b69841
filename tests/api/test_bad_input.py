"""Bad input: every refusal is a ValueError or TypeError naming the argument, and a
refused call or assignment leaves the network's weights and biases exactly as they were.
"""
import numpy as np
import pytest

import cbp

NAN, INF = float("nan"), float("inf")
N_IN, N_HID, N_OUT = 3, 4, 2


@pytest.fixture
def net():
    return cbp.Network([N_IN, N_HID, N_OUT], seed=0)


def snapshot(net):
    return [a.copy() for a in net.weights + net.biases]


def assert_unchanged(net, saved):
    now = net.weights + net.biases
    assert len(now) == len(saved)
    for a, b in zip(now, saved):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b)


def refused(net, call, exc, match):
    """``call(net)`` raises ``exc`` matching ``match`` and changes nothing."""
    saved = snapshot(net)
    with pytest.raises(exc, match=match):
        call(net)
    assert_unchanged(net, saved)


# Good data to combine with one bad piece.
X = np.linspace(-1, 1, 5 * N_IN).reshape(5, N_IN)
Y = np.tile([[1.0, 0.0]], (5, 1))
LABELS = np.array([0, 1, 0, 1, 1])
x = np.ones((N_IN, 1))
y = np.array([[1.0], [0.0]])


def show(value):
    """A test id: exception classes by name, everything else by repr."""
    return value.__name__ if isinstance(value, type) else repr(value)


def with_nan(arr, where=(0, 0), value=NAN):
    out = np.array(arr, dtype=float)
    out[where] = value
    return out


# -- the constructor -----------------------------------------------------------------

@pytest.mark.parametrize("sizes,exc", [
    ([3], ValueError), ([], ValueError), ([3, 0], ValueError), ([0, 3], ValueError),
    ([3, -1], ValueError), ([3, 4, -2], ValueError),
    ([2.5, 3], TypeError), ([3, 2.0], TypeError), (["3", 2], TypeError), ([None, 2], TypeError),
    ([True, 2], TypeError), ([2, False], TypeError), ([3, [2]], TypeError),
    (3, TypeError), ("32", TypeError), (None, TypeError), (3.0, TypeError),
    ((s for s in [3, 2]), TypeError), (np.array([[3, 2]]), TypeError),
], ids=lambda v: (v.__name__ if isinstance(v, type)
                 else "generator" if hasattr(v, "__next__") else repr(v).replace(" ", "")))
def test_bad_sizes(sizes, exc):
    with pytest.raises(exc, match="sizes"):
        cbp.Network(sizes)


def test_too_many_layers():
    with pytest.raises(ValueError, match="sizes"):
        cbp.Network([2] * (cbp.model.MAX_LAYERS + 2))
    assert cbp.Network([2] * (cbp.model.MAX_LAYERS + 1), seed=0).num_layers == 64


def test_sizes_must_be_ordered():
    # A set or a dict has no layer order to speak of: the network must not
    # silently pick one (cbp.Network({784, 30, 10}) would be [784, 10, 30] or so).
    with pytest.raises(TypeError, match="sizes"):
        cbp.Network({3, 2})
    with pytest.raises(TypeError, match="sizes"):
        cbp.Network({3: 4, 4: 2})


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(activation="foo"), ValueError, "activation"),
    (dict(activation="Sigmoids"), ValueError, "activation"),
    (dict(activation=None), TypeError, "activation"),
    (dict(activation=1), TypeError, "activation"),
    (dict(activation="softmax"), ValueError, "activation"),
    (dict(activation="softmax", output_activation="sigmoid"), ValueError, "activation"),
    (dict(activation="softmax", output_activation="softmax", cost="log_likelihood"),
     ValueError, "activation"),
    (dict(output_activation="foo"), ValueError, "output_activation"),
    (dict(output_activation=3), TypeError, "output_activation"),
    (dict(cost="foo"), ValueError, "cost"),
    (dict(cost="cross-entropy"), ValueError, "cost"),
    (dict(cost=None), TypeError, "cost"),
    (dict(init="foo"), ValueError, "init"),
    (dict(init="xavier"), ValueError, "init"),
    (dict(init=None), (ValueError, TypeError), "init"),
    (dict(dtype="int32"), ValueError, "dtype"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype=np.int64), ValueError, "dtype"),
    (dict(dtype="complex128"), ValueError, "dtype"),
    (dict(dtype="foo"), TypeError, "dtype"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed="a"), TypeError, "seed"),
], ids=lambda v: (",".join(f"{k}={w!r}" for k, w in v.items()) if isinstance(v, dict)
                 else v if isinstance(v, str) else show(v)))
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cbp.Network([N_IN, N_HID, N_OUT], **kwargs)


@pytest.mark.parametrize("output", ["linear", "tanh", "relu", "softmax"])
def test_cross_entropy_needs_sigmoid_output(output):
    with pytest.raises(ValueError, match="output_activation") as info:
        cbp.Network([3, 4, 2], output_activation=output, cost="cross_entropy")
    assert "cross_entropy" in str(info.value)


@pytest.mark.parametrize("hidden", ["linear", "tanh", "relu"])
def test_cross_entropy_output_defaults_to_hidden_activation(hidden):
    # output_activation=None means the hidden activation, which is then not sigmoid.
    with pytest.raises(ValueError, match="output_activation"):
        cbp.Network([3, 4, 2], activation=hidden, cost="cross_entropy")


@pytest.mark.parametrize("output", ["linear", "tanh", "relu"])
def test_log_likelihood_needs_softmax_or_sigmoid_output(output):
    with pytest.raises(ValueError, match="output_activation"):
        cbp.Network([3, 4, 2], output_activation=output, cost="log_likelihood")


# -- feedforward and backprop ----------------------------------------------------

P = pytest.param
BAD_FEEDFORWARD = [
    P(np.ones((4, 1)), ValueError, id="column-too-long"),
    P(np.ones((3, 2)), ValueError, id="two-columns"),
    P(np.ones((5, 4)), ValueError, id="batch-too-wide"),
    P(np.ones((2, 3, 1)), ValueError, id="3-d"),
    P(np.ones((1, 3, 1)), ValueError, id="3-d-single"),
    P(np.ones(4), ValueError, id="vector-too-long"),
    P(1.0, ValueError, id="scalar"),
    P(with_nan(np.ones(3), 1), ValueError, id="nan-vector"),
    P(with_nan(np.ones((3, 1)), (2, 0), INF), ValueError, id="inf-column"),
    P(with_nan(np.ones((4, 3)), (3, 2), -INF), ValueError, id="-inf-batch"),
    P("abc", TypeError, id="string"),
    P(None, TypeError, id="None"),
    P(np.ones(3) * 1j, TypeError, id="complex"),
    P(np.array([1, None, 2], dtype=object), TypeError, id="object"),
    P([[1, 2, 3], [1, 2]], TypeError, id="ragged"),
    P(np.array(["1", "2", "3"]), TypeError, id="string-array"),
]


@pytest.mark.parametrize("a,exc", BAD_FEEDFORWARD)
def test_bad_feedforward_input(net, a, exc):
    refused(net, lambda n: n.feedforward(a), exc, r"^a\b")


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_feedforward_input_overflowing_float32():
    net = cbp.Network([3, 2], dtype="float32", seed=0)
    refused(net, lambda n: n.feedforward(np.array([1e300, 1.0, 1.0])), ValueError, "float32")


@pytest.mark.parametrize("bx,by,match", [
    P(np.ones((4, 1)), y, r"^x\b", id="x-too-long"),
    P(np.ones(2), y, r"^x\b", id="x-too-short"),
    P(X, Y, r"^x\b", id="batch"),
    P(x, np.ones((3, 1)), r"^y\b", id="y-too-long"),
    P(x, np.ones(1), r"^y\b", id="y-too-short"),
    P(x, 2, r"^y\b", id="y-label-out-of-range"),   # labels 0, 1 are accepted
    P(x, 0.5, r"^y\b", id="y-fractional-label"),
    P(with_nan(x, (1, 0)), y, r"^x\b", id="x-nan"),
    P(x, with_nan(y, (1, 0), INF), r"^y\b", id="y-inf"),
    P("abc", y, r"^x\b", id="x-string"),
    P(x, None, r"^y\b", id="y-None"),
])
def test_bad_backprop_input(net, bx, by, match):
    refused(net, lambda n: n.backprop(bx, by), (ValueError, TypeError), match)


# -- training data ------------------------------------------------------------------

BAD_TRAINING_DATA = [
    P((np.ones((5, 4)), Y), ValueError, id="X-too-wide"),
    P((X, np.ones((5, 3))), ValueError, id="Y-too-wide"),
    P((X, Y[:4]), ValueError, id="X-Y-lengths"),
    P((X, LABELS[:2]), ValueError, id="too-few-labels"),
    P((X, np.array([0, 1, 2, 0, 1])), ValueError, id="label-too-big"),
    P((X, np.array([0, 1, -1, 0, 1])), ValueError, id="label-negative"),
    P((X, np.array([0, 1, 0.5, 0, 1])), ValueError, id="label-fractional"),
    P((X, np.array(list("01011"))), TypeError, id="label-strings"),
    P((with_nan(X, (2, 1)), Y), ValueError, id="X-nan"),
    P((with_nan(X, (0, 0), INF), Y), ValueError, id="X-inf"),
    P((X, with_nan(Y, (4, 1))), ValueError, id="Y-nan"),
    P((X, with_nan(Y, (0, 0), -INF)), ValueError, id="Y-minus-inf"),
    P([(np.ones((4, 1)), y)] * 3, ValueError, id="tuples-x-shape"),
    P([(x, np.ones((3, 1)))] * 3, ValueError, id="tuples-y-shape"),
    P([(x, y), (with_nan(x, (0, 0)), y)], ValueError, id="tuples-x-nan"),
    P([(x, y), (x, with_nan(y, (1, 0), INF))], ValueError, id="tuples-y-inf"),
    P([(x, 0), (x, 5)], ValueError, id="tuples-label-too-big"),
    P([(x, y, 1)], TypeError, id="triple"),
    P([(x, y), x], TypeError, id="not-a-tuple"),
    P([], ValueError, id="empty-list"),
    P((np.empty((0, N_IN)), np.empty((0, N_OUT))), ValueError, id="empty-arrays"),
    P(None, TypeError, id="None"),
    P(X, TypeError, id="single-array"),
    P("abc", TypeError, id="string"),
    P(5, TypeError, id="int"),
]


@pytest.mark.parametrize("data,exc", BAD_TRAINING_DATA)
def test_bad_training_data_sgd(net, data, exc):
    refused(net, lambda n: n.SGD(data, 1, 2, 1.0, verbose=False), exc, "training_data")


@pytest.mark.parametrize("data,exc", BAD_TRAINING_DATA)
def test_bad_training_data_sgd_class(net, data, exc):
    opt = cbp.SGD(1.0, mini_batch_size=2)
    refused(net, lambda n: opt.run(n, data, 1), exc, "training_data")


@pytest.mark.parametrize("data,exc", BAD_TRAINING_DATA)
def test_bad_mini_batch(net, data, exc):
    refused(net, lambda n: n.update_mini_batch(data, 1.0), exc, "mini_batch")


@pytest.mark.parametrize("data,exc", BAD_TRAINING_DATA)
def test_bad_total_cost_data(net, data, exc):
    refused(net, lambda n: n.total_cost(data), exc, "data")


@pytest.mark.parametrize("bX,bY,exc", [
    P(np.ones((5, 4)), Y, ValueError, id="X-too-wide"),
    P(X, np.ones((5, 3)), ValueError, id="Y-too-wide"),
    P(X, Y[:3], ValueError, id="X-Y-lengths"),
    P(with_nan(X, (1, 1)), Y, ValueError, id="X-nan"),
    P(X, with_nan(Y, (1, 1), INF), ValueError, id="Y-inf"),
    P(np.empty((0, N_IN)), np.empty((0, N_OUT)), ValueError, id="empty"),
    P(X, np.array([0, 1, 2, 0, 1]), ValueError, id="label-too-big"),
])
def test_bad_sgd_step_data(net, bX, bY, exc):
    opt = cbp.SGD(1.0, momentum=0.5)
    refused(net, lambda n: opt.step(n, bX, bY), exc, "data")


# -- test data ------------------------------------------------------------------------

BAD_TEST_DATA = [
    P((np.ones((5, 4)), LABELS), ValueError, id="X-too-wide"),
    P((X, np.array([0, 1, 2, 0, 1])), ValueError, id="label-too-big"),
    P((X, np.array([0, -1, 1, 0, 1])), ValueError, id="label-negative"),
    P((X, np.ones((5, 3))), ValueError, id="one-hot-too-wide"),
    P((X, LABELS[:2]), ValueError, id="too-few-labels"),
    P((with_nan(X, (1, 1)), LABELS), ValueError, id="X-nan"),
    P((X, np.array([0.0, 1.0, NAN, 0.0, 1.0])), ValueError, id="label-nan"),
    P((X, np.array(list("abcde"))), TypeError, id="label-strings"),
    P([(x, 3)], ValueError, id="tuples-label-too-big"),
    P([(x, 0), (x, NAN)], ValueError, id="tuples-label-nan"),
    P([(np.ones(4), 0)], ValueError, id="tuples-x-shape"),
    P([(x, np.ones(3))], ValueError, id="tuples-one-hot-too-wide"),
    P([(x, 0, 1)], TypeError, id="triple"),
    P(None, TypeError, id="None"),
    P(X, TypeError, id="single-array"),
    P("abc", TypeError, id="string"),
]


@pytest.mark.parametrize("data,exc", BAD_TEST_DATA)
def test_bad_test_data_evaluate(net, data, exc):
    refused(net, lambda n: n.evaluate(data), exc, "test_data")


@pytest.mark.parametrize("data,exc", [d for d in BAD_TEST_DATA if d.values[0] is not None])
def test_bad_test_data_is_refused_before_training(net, data, exc):
    # The test data is checked first: no epoch runs, the network stays as it was.
    state = net._rng.bit_generator.state
    refused(net, lambda n: n.SGD((X, Y), 3, 2, 1.0, test_data=data, verbose=False), exc,
            "test_data")
    assert net._rng.bit_generator.state == state


# -- hyper-parameters -----------------------------------------------------------------

BAD_ETA = [(0, ValueError), (0.0, ValueError), (-1.0, ValueError), (NAN, ValueError),
           (INF, ValueError), (-INF, ValueError), ("1", TypeError), (None, TypeError),
           (True, TypeError), (1 + 0j, TypeError), ([1.0], TypeError)]


@pytest.mark.parametrize("eta,exc", BAD_ETA, ids=show)
def test_bad_eta(net, eta, exc):
    refused(net, lambda n: n.SGD((X, Y), 1, 2, eta, verbose=False), exc, "eta")
    refused(net, lambda n: n.update_mini_batch((X, Y), eta), exc, "eta")
    with pytest.raises(exc, match="eta"):
        cbp.SGD(eta)


@pytest.mark.parametrize("m,exc", [(0, ValueError), (-1, ValueError), (2.5, TypeError),
                                   (2.0, TypeError), ("2", TypeError), (None, TypeError),
                                   (True, TypeError)], ids=show)
def test_bad_mini_batch_size(net, m, exc):
    refused(net, lambda n: n.SGD((X, Y), 1, m, 1.0, verbose=False), exc, "mini_batch_size")
    with pytest.raises(exc, match="mini_batch_size"):
        cbp.SGD(1.0, mini_batch_size=m)


@pytest.mark.parametrize("epochs,exc", [(-1, ValueError), (1.5, TypeError), (1.0, TypeError),
                                        ("1", TypeError), (None, TypeError), (True, TypeError)],
                         ids=show)
def test_bad_epochs(net, epochs, exc):
    refused(net, lambda n: n.SGD((X, Y), epochs, 2, 1.0, verbose=False), exc, "epochs")
    refused(net, lambda n: cbp.SGD(1.0).run(n, (X, Y), epochs), exc, "epochs")


@pytest.mark.parametrize("lmbda,exc", [(-0.1, ValueError), (-1, ValueError), (NAN, ValueError),
                                       (INF, ValueError), ("0", TypeError), (None, TypeError)],
                         ids=show)
def test_bad_lmbda(net, lmbda, exc):
    refused(net, lambda n: n.SGD((X, Y), 1, 2, 1.0, lmbda=lmbda, verbose=False), exc, "lmbda")
    refused(net, lambda n: n.update_mini_batch((X, Y), 1.0, lmbda=lmbda), exc, "lmbda")
    refused(net, lambda n: n.total_cost((X, Y), lmbda=lmbda), exc, "lmbda")
    with pytest.raises(exc, match="lmbda"):
        cbp.SGD(1.0, lmbda=lmbda)


@pytest.mark.parametrize("mu,exc", [(-0.1, ValueError), (1.0, ValueError), (1, ValueError),
                                    (1.5, ValueError), (NAN, ValueError), (INF, ValueError),
                                    ("0", TypeError), (None, TypeError)], ids=show)
def test_bad_momentum(net, mu, exc):
    refused(net, lambda n: n.SGD((X, Y), 1, 2, 1.0, momentum=mu, verbose=False), exc,
            "momentum")
    with pytest.raises(exc, match="momentum"):
        cbp.SGD(1.0, momentum=mu)


@pytest.mark.parametrize("n_value,exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                         ("5", TypeError)], ids=show)
def test_bad_n(net, n_value, exc):
    refused(net, lambda n: n.update_mini_batch((X, Y), 1.0, lmbda=0.1, n=n_value), exc, r"^n\b")
    refused(net, lambda n: cbp.SGD(1.0).step(n, X, Y, n=n_value), exc, r"^n\b")


def test_bad_shuffle_and_progress(net):
    refused(net, lambda n: n.SGD((X, Y), 1, 2, 1.0, shuffle="yes", verbose=False), TypeError,
            "shuffle")
    refused(net, lambda n: n.SGD((X, Y), 1, 2, 1.0, shuffle=None, verbose=False), TypeError,
            "shuffle")
    refused(net, lambda n: n.SGD((X, Y), 1, 2, 1.0, progress=3, verbose=False), TypeError,
            "progress")


# -- assigning weights and biases ------------------------------------------------------

GOOD_W = [np.full((N_HID, N_IN), 0.5), np.full((N_OUT, N_HID), -0.5)]
GOOD_B = [np.full((N_HID, 1), 0.25), np.full((N_OUT, 1), -0.25)]

BAD_WEIGHTS = [
    P(GOOD_W[:1], ValueError, "weights", id='too-few'),
    P(GOOD_W + [GOOD_W[0]], ValueError, "weights", id='too-many'),
    P([], ValueError, "weights", id='empty'),
    P([GOOD_W[0], GOOD_W[1].T], ValueError, r"weights\[1\]", id='transposed'),
    P([GOOD_W[0], np.ones((N_OUT, N_HID + 1))], ValueError, r"weights\[1\]", id='too-wide'),
    P([GOOD_W[0].ravel(), GOOD_W[1]], ValueError, r"weights\[0\]", id='flat'),
    P([GOOD_W[0], with_nan(GOOD_W[1], (1, 3))], ValueError, r"weights\[1\]", id='nan'),
    P([with_nan(GOOD_W[0], (0, 0), INF), GOOD_W[1]], ValueError, r"weights\[0\]", id='inf'),
    P([GOOD_W[0], with_nan(GOOD_W[1], (0, 1), -INF)], ValueError, r"weights\[1\]", id='minus-inf'),
    P([GOOD_W[0] * 1j, GOOD_W[1]], TypeError, r"weights\[0\]", id='complex'),
    P([GOOD_W[0].astype(object), GOOD_W[1]], TypeError, r"weights\[0\]", id='object'),
    P(["ab", GOOD_W[1]], TypeError, r"weights\[0\]", id='string-element'),
    P(None, TypeError, "weights", id='None'),
    P(np.ones((N_HID, N_IN)), TypeError, "weights", id='single-array'),
    P("ab", TypeError, "weights", id='string'),
    P(3.0, TypeError, "weights", id='float'),
]


@pytest.mark.parametrize("value,exc,match", BAD_WEIGHTS)
def test_bad_weights_assignment(net, value, exc, match):
    def assign(n):
        n.weights = value
    refused(net, assign, exc, match)


BAD_BIASES = [
    P(GOOD_B[:1], ValueError, "biases", id='too-few'),
    P(GOOD_B * 2, ValueError, "biases", id='too-many'),
    P([GOOD_B[0], np.ones((N_OUT + 1, 1))], ValueError, r"biases\[1\]", id='too-long'),
    P([GOOD_B[0].T, GOOD_B[1]], ValueError, r"biases\[0\]", id='row'),
    P([np.ones((N_HID, 2)), GOOD_B[1]], ValueError, r"biases\[0\]", id='two-columns'),
    P([GOOD_B[0], with_nan(GOOD_B[1], (1, 0))], ValueError, r"biases\[1\]", id='nan'),
    P([GOOD_B[0], np.array([INF, 0.0])], ValueError, r"biases\[1\]", id='inf-flat'),
    P(None, TypeError, "biases", id='None'),
    P(np.ones((N_HID, 1)), TypeError, "biases", id='single-array'),
]


@pytest.mark.parametrize("value,exc,match", BAD_BIASES)
def test_bad_biases_assignment(net, value, exc, match):
    def assign(n):
        n.biases = value
    refused(net, assign, exc, match)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_weights_overflowing_float32():
    net = cbp.Network([N_IN, N_HID, N_OUT], dtype="float32", seed=0)

    def assign(n):
        n.weights = [np.full((N_HID, N_IN), 1e300), GOOD_W[1]]
    refused(net, assign, ValueError, r"weights\[0\].*float32")


def test_a_refused_assignment_after_a_good_one(net):
    # A good assignment goes through, a bad one after it leaves the good values.
    net.weights = GOOD_W
    net.biases = GOOD_B

    def assign(n):
        n.weights = [np.zeros((N_HID, N_IN)), np.full((N_OUT, N_HID), NAN)]
    refused(net, assign, ValueError, r"weights\[1\]")
    np.testing.assert_array_equal(net.weights[0], GOOD_W[0])


def test_refused_calls_leave_momentum_state_alone(net):
    # A refused step must not touch the optimizer's velocity either.
    opt = cbp.SGD(0.5, momentum=0.9, shuffle=False)
    reference = cbp.Network([N_IN, N_HID, N_OUT], seed=0)
    ref_opt = cbp.SGD(0.5, momentum=0.9, shuffle=False)
    opt.step(net, X, Y)
    ref_opt.step(reference, X, Y)
    refused(net, lambda n: opt.step(n, with_nan(X, (0, 0)), Y), ValueError, "data")
    opt.step(net, X, Y)
    ref_opt.step(reference, X, Y)
    assert_unchanged(net, snapshot(reference))
