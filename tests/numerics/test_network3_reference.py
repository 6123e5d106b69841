"""The NumPy reference of network3.py's arithmetic (tests/network3_reference.py), checked itself.

Its convolution against SciPy's and the definition, its pooling against the
definition, its hand-written gradients against central finite differences
(every parameter of conv, fully connected and softmax layers, each
activation, L2, dropout masks), its initialisation against the original's
calls in order.
"""
import itertools

import numpy as np
import pytest

import network3_reference as ref  # tests/: shared by the network3 tests


def _conv_by_definition(x, w):
    m, C, H, W = x.shape
    F, _, kh, kw = w.shape
    z = np.zeros((m, F, H - kh + 1, W - kw + 1))
    for n, f, i, j in itertools.product(range(m), range(F), range(H - kh + 1), range(W - kw + 1)):
        z[n, f, i, j] = sum(x[n, c, i + u, j + v] * w[f, c, kh - 1 - u, kw - 1 - v]
                            for c in range(C) for u in range(kh) for v in range(kw))
    return z


def test_convolution_is_true_valid_convolution():
    np.random.seed(0)
    layer = ref.ConvPool((3, 2, 3, 4), (2, 2, 7, 8), poolsize=(1, 1), activation=ref.linear)
    layer.b[:] = 0
    x = np.random.rand(2, 2, 7, 8)
    z = layer.forward(x)
    np.testing.assert_allclose(z, _conv_by_definition(x, layer.w), rtol=1e-13, atol=1e-14)
    signal = pytest.importorskip("scipy.signal")
    for n, f in itertools.product(range(2), range(3)):
        want = sum(signal.convolve2d(x[n, c], layer.w[f, c], mode="valid") for c in range(2))
        np.testing.assert_allclose(z[n, f], want, rtol=1e-13, atol=1e-14)


def test_pooling_ignores_the_border_and_comes_before_bias_and_activation():
    np.random.seed(1)
    layer = ref.ConvPool((2, 1, 2, 2), (1, 1, 8, 9), poolsize=(3, 2), activation=ref.tanh)
    x = np.random.rand(1, 1, 8, 9)
    a = layer.forward(x)
    z = _conv_by_definition(x, layer.w)          # 7 x 8 -> 2 x 4 blocks of 3 x 2
    assert a.shape == (1, 2, 2, 4) == (1,) + layer.out_shape
    for f, r, s in itertools.product(range(2), range(2), range(4)):
        block = z[0, f, 3 * r:3 * r + 3, 2 * s:2 * s + 2]
        assert a[0, f, r, s] == pytest.approx(np.tanh(block.max() + layer.b[f]), rel=1e-13)


def test_tied_maxima_all_get_the_gradient_as_in_theano():
    np.random.seed(2)
    # (4 filters: n_out = 4 * 1 // 4 = 1; one filter would divide by zero, as the original)
    layer = ref.ConvPool((4, 1, 1, 1), (1, 1, 2, 2), poolsize=(2, 2), activation=ref.linear)
    layer.w[:] = 1.0
    x = np.array([[[[3.0, 3.0], [1.0, 2.0]]]])
    layer.forward(x)
    dw, _, dx = layer.backward(np.ones((1, 4, 1, 1)))
    np.testing.assert_array_equal(dx, [[[[4.0, 4.0], [0.0, 0.0]]]])
    np.testing.assert_array_equal(dw.ravel(), [6.0] * 4)


def _net(activation, p=(0.0, 0.0, 0.0), m=3, seed=0):
    np.random.seed(seed)
    layers = [
        ref.ConvPool((3, 1, 4, 4), (m, 1, 12, 12), (2, 2), activation),   # 9x9 -> 4x4 (a row and column dropped)
        ref.ConvPool((4, 3, 3, 3), (m, 3, 4, 4), (2, 2), activation),     # 2x2 -> 1x1
        ref.FullyConnected(4, 5, activation, p_dropout=p[0]),
        ref.FullyConnected(5, 6, activation, p_dropout=p[1]),
        ref.Softmax(6, 3, p_dropout=p[2]),
    ]
    # The softmax layer starts at zero: give it weights so gradients reach the rest.
    layers[-1].w[:] = np.random.normal(size=layers[-1].w.shape)
    layers[-1].b[:] = np.random.normal(size=layers[-1].b.shape)
    return ref.Network(layers, m)


def _finite_difference_check(net, x, y, lmbda, nb, masks, h=1e-6):
    grads = net.gradients(x, y, lmbda, nb, masks)
    params = net.params()
    assert len(grads) == len(params) == 10
    rng = np.random.default_rng(0)
    for param, grad in zip(params, grads):
        assert grad.shape == param.shape
        flat, gflat = param.reshape(-1), grad.reshape(-1)
        picks = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
        for k in picks:
            keep = flat[k]
            flat[k] = keep + h
            up = net.cost(x, y, lmbda, nb, masks)
            flat[k] = keep - h
            down = net.cost(x, y, lmbda, nb, masks)
            flat[k] = keep
            numeric = (up - down) / (2 * h)
            assert gflat[k] == pytest.approx(numeric, rel=2e-6, abs=1e-9), (param.shape, k)


@pytest.mark.parametrize("activation", [ref.sigmoid, ref.tanh, ref.ReLU, ref.linear])
@pytest.mark.parametrize("lmbda", [0.0, 0.7])
def test_gradients_match_finite_differences(activation, lmbda):
    net = _net(activation)
    rng = np.random.default_rng(3)
    x = rng.random((3, 144))
    y = np.array([0, 2, 1])
    _finite_difference_check(net, x, y, lmbda, 4, None)


def test_gradients_with_dropout_masks_match_finite_differences():
    net = _net(ref.ReLU, p=(0.5, 0.3, 0.5))
    rng = np.random.default_rng(4)
    x = rng.random((3, 144))
    y = np.array([1, 1, 0])
    masks = [None, None] + [(rng.random((3, n)) > 0.4).astype(float) for n in (4, 5, 6)]
    _finite_difference_check(net, x, y, 0.2, 2, masks)
    # the masks matter: another draw gives other gradients
    other = [None, None] + [np.ones((3, n)) for n in (4, 5, 6)]
    assert not np.allclose(net.gradients(x, y, 0.2, 2, masks)[4], net.gradients(x, y, 0.2, 2, other)[4])


def test_inference_scales_by_one_minus_p():
    np.random.seed(5)
    layer = ref.FullyConnected(4, 3, ref.linear, p_dropout=0.25)
    x = np.random.rand(2, 4)
    np.testing.assert_allclose(layer.predict(x), 0.75 * (x @ layer.w) + layer.b, rtol=1e-15)
    np.testing.assert_allclose(layer.forward(x), x @ layer.w + layer.b, rtol=1e-15)


def test_initialisation_draws_as_the_original_in_order():
    np.random.seed(7)
    net = ref.Network([ref.ConvPool((5, 1, 3, 3), (2, 1, 9, 9), (2, 2)),
                       ref.FullyConnected(5 * 3 * 3, 7),
                       ref.Softmax(7, 10)], 2)
    np.random.seed(7)
    # ConvPool: n_out = 5 * 9 // 4 = 11 (Python 2's integer division), w then b;
    # FullyConnected: w then b; Softmax: zeros, no draw.
    w0 = np.random.normal(loc=0, scale=np.sqrt(1.0 / 11), size=(5, 1, 3, 3))
    b0 = np.random.normal(loc=0, scale=1.0, size=(5,))
    w1 = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / 7), size=(45, 7))
    b1 = np.random.normal(loc=0.0, scale=1.0, size=(7,))
    after = np.random.random()
    for got, want in zip(net.params(), [w0, b0, w1, b1, np.zeros((7, 10)), np.zeros(10)]):
        np.testing.assert_array_equal(got, want)
    np.random.seed(7)
    ref.Network([ref.ConvPool((5, 1, 3, 3), (2, 1, 9, 9), (2, 2)), ref.FullyConnected(45, 7),
                 ref.Softmax(7, 10)], 2)
    assert np.random.random() == after


def test_a_step_is_plain_sgd_on_every_parameter():
    net = _net(ref.sigmoid)
    rng = np.random.default_rng(6)
    x, y = rng.random((3, 144)), np.array([2, 0, 1])
    before = [p.copy() for p in net.params()]
    grads = net.gradients(x, y, 0.5, 3)
    net.train_mini_batch(x, y, 0.1, 0.5, 3)
    for b, g, p in zip(before, grads, net.params()):
        np.testing.assert_allclose(p, b - 0.1 * g, rtol=1e-15, atol=1e-17)
        assert not np.array_equal(p, b)


def test_training_loop_walks_mini_batches_in_order_and_keeps_the_best():
    np.random.seed(8)
    rng = np.random.default_rng(8)
    X, y = rng.random((23, 144)), rng.integers(0, 3, 23)
    net = _net(ref.sigmoid, m=5, seed=8)
    twin = _net(ref.sigmoid, m=5, seed=8)
    history = net.SGD((X, y), 2, 5, 0.5, (X[:10], y[:10]), (X[10:20], y[10:20]), lmbda=0.1)
    for _ in range(2):   # 23 // 5 = 4 mini-batches, the last 3 images never used
        for j in range(4):
            twin.train_mini_batch(X[5 * j:5 * j + 5], y[5 * j:5 * j + 5], 0.5, 0.1, 4)
    for a, b in zip(net.params(), twin.params()):
        np.testing.assert_array_equal(a, b)
    assert [h[0] for h in history] == [0, 1]
    best = 0.0
    for _, validation, test in history:
        assert (test is not None) == (validation >= best)
        best = max(best, validation)
