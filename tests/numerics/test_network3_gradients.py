"""cbp.network3: every layer type's gradients against central finite differences (float64).

The kernels fold the gradient into the SGD step (w <- β w − η ∂C/∂w), so a
step with η = 1 from saved weights gives −∂C/∂w as the change of each
parameter; the cost is evaluated independently, in NumPy, from the
original's formulas (true convolution, max-pooling, f(pool + b), softmax,
mean log-likelihood + 0.5 λ Σ‖w‖² / n).
"""
import numpy as np
import pytest

import cbp.network3 as network3
from cbp.network3 import ConvPoolLayer, FullyConnectedLayer, Network, SoftmaxLayer
from network3_loops import ACT, conv_valid, max_pool


@pytest.fixture(autouse=True)
def float64():
    old = network3.config.floatX
    network3.config.floatX = "float64"
    yield
    network3.config.floatX = old


def reference_cost(net, X, y, lmbda=0.0, ntb=1, masks=None):
    """The original's training cost, in NumPy; ``masks[j]`` the dropout mask of layer j's input."""
    A = X
    for j, layer in enumerate(net.layers):
        w, b = layer.w.get_value(), layer.b.get_value()
        if isinstance(layer, ConvPoolLayer):
            A = A.reshape(layer.image_shape)
            Z = max_pool(conv_valid(A, w), *layer.poolsize) + b[None, :, None, None]
            A = ACT[layer.activation_fn](Z).reshape(A.shape[0], -1)
        else:
            A = A.reshape(A.shape[0], -1)
            if masks is not None and masks[j] is not None:
                A = A * masks[j]
            Z = A @ w + b
            if isinstance(layer, SoftmaxLayer):
                Z = Z - Z.max(axis=1, keepdims=True)
                A = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
            else:
                A = ACT[layer.activation_fn](Z)
    cost = -np.mean(np.log(A[np.arange(len(y)), y]))
    return cost + 0.5 * lmbda * sum((layer.w.get_value() ** 2).sum() for layer in net.layers) / ntb


def step_gradients(net, X, y, lmbda=0.0, ntb=1, num_threads=1):
    """∂C/∂θ for every parameter, read off one SGD step with η = 1 (then undone)."""
    before = [p.get_value() for p in net.params]
    net._train_mb(X, y, 1.0, 1.0 - lmbda / ntb, num_threads)
    grads = [b - p.get_value() for b, p in zip(before, net.params)]
    for p, b in zip(net.params, before):
        p.set_value(b)
    return grads


def fd_gradients(net, X, y, lmbda=0.0, ntb=1, masks=None, h=1e-6, sample=12, rng=None):
    """Central differences at ``sample`` entries of every parameter; (param index, flat index, value)."""
    rng = rng or np.random.default_rng(0)
    out = []
    for k, p in enumerate(net.params):
        value = p.get_value()
        flat = value.reshape(-1)
        for idx in rng.choice(flat.size, size=min(sample, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + h
            p.set_value(value)
            up = reference_cost(net, X, y, lmbda, ntb, masks)
            flat[idx] = old - h
            p.set_value(value)
            down = reference_cost(net, X, y, lmbda, ntb, masks)
            flat[idx] = old
            p.set_value(value)
            out.append((k, idx, (up - down) / (2 * h)))
    return out


def data(M, n_in, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((M, n_in)), rng.integers(0, 10, M).astype(np.int32)


def randomize_softmax(net, seed=2):
    # The softmax layer starts at zero (as the original's): perturb it so that
    # every path carries a gradient.
    rng = np.random.default_rng(seed)
    out = net.layers[-1]
    out.w.set_value(rng.normal(0, 0.3, out.w.get_value().shape))
    out.b.set_value(rng.normal(0, 0.3, out.b.get_value().shape))


def check(net, X, y, lmbda=0.0, ntb=1, masks=None, num_threads=1):
    grads = step_gradients(net, X, y, lmbda, ntb, num_threads)
    for k, idx, fd in fd_gradients(net, X, y, lmbda, ntb, masks):
        got = grads[k].reshape(-1)[idx]
        assert got == pytest.approx(fd, rel=1e-5, abs=1e-8), (k, idx)


@pytest.mark.parametrize("act", [network3.sigmoid, network3.tanh, network3.ReLU, network3.linear])
def test_fully_connected_and_softmax(act):
    np.random.seed(3)
    net = Network([FullyConnectedLayer(20, 7, activation_fn=act),
                   FullyConnectedLayer(7, 6, activation_fn=act), SoftmaxLayer(6, 10)], 5)
    randomize_softmax(net)
    check(net, *data(5, 20))


@pytest.mark.parametrize("act", [network3.sigmoid, network3.tanh, network3.ReLU])
def test_conv_pool_two_layers(act):
    np.random.seed(4)
    M = 3
    net = Network([
        ConvPoolLayer(image_shape=(M, 1, 12, 12), filter_shape=(4, 1, 3, 3), poolsize=(2, 2),
                      activation_fn=act),
        ConvPoolLayer(image_shape=(M, 4, 5, 5), filter_shape=(3, 4, 2, 2), poolsize=(2, 2),
                      activation_fn=act),
        FullyConnectedLayer(3 * 2 * 2, 8, activation_fn=act),
        SoftmaxLayer(8, 10)], M)
    randomize_softmax(net)
    check(net, *data(M, 144))


def test_conv_odd_sizes_and_poolsize():
    # Borders that do not fill a pooling window are ignored; a 3x1 pool.
    np.random.seed(5)
    M = 2
    net = Network([
        ConvPoolLayer(image_shape=(M, 2, 9, 8), filter_shape=(3, 2, 2, 2), poolsize=(3, 2)),
        SoftmaxLayer(3 * 2 * 3, 10)], M)
    randomize_softmax(net)
    check(net, *data(M, 2 * 9 * 8))


def test_conv_many_taps():
    # From PATCH_TAPS taps on (C·K·K), the filters' gradient is taken another
    # way in the core (from patches): both ways are checked.
    from cbp import _core
    assert 5 * 4 * 4 >= _core.PATCH_TAPS > 25
    np.random.seed(9)
    M = 3
    net = Network([
        ConvPoolLayer(image_shape=(M, 1, 12, 12), filter_shape=(5, 1, 3, 3), poolsize=(1, 1),
                      activation_fn=network3.tanh),
        ConvPoolLayer(image_shape=(M, 5, 10, 10), filter_shape=(3, 5, 4, 4), poolsize=(2, 2)),
        SoftmaxLayer(3 * 3 * 3, 10)], M)
    randomize_softmax(net)
    check(net, *data(M, 144))


def test_l2_term():
    np.random.seed(6)
    M = 2
    net = Network([
        ConvPoolLayer(image_shape=(M, 1, 8, 8), filter_shape=(2, 1, 3, 3), poolsize=(2, 2)),
        FullyConnectedLayer(2 * 3 * 3, 5), SoftmaxLayer(5, 10)], M)
    randomize_softmax(net)
    check(net, *data(M, 64), lmbda=0.7, ntb=3)


def test_dropout_layers():
    # With dropout, the gradient is that of the masked network: the masks are
    # the ones the step drew (replayed from the network's counter).
    np.random.seed(7)
    M = 4
    net = Network([FullyConnectedLayer(12, 9, activation_fn=network3.ReLU, p_dropout=0.3),
                   FullyConnectedLayer(9, 8, p_dropout=0.5), SoftmaxLayer(8, 10, p_dropout=0.2)],
                  M)
    randomize_softmax(net)
    X, y = data(M, 12)
    counter = net.dropout_counter
    masks = []
    from cbp import _core
    c = counter
    for layer in net.layers:
        m = np.empty(M * layer.n_in)
        _core.dropout_mask(m, net.dropout_seed, c, layer.p_dropout)
        c += m.size
        masks.append(m.reshape(M, layer.n_in))
    assert 0 < sum(m.sum() for m in masks) < sum(m.size for m in masks)
    grads = step_gradients(net, X, y)
    assert net.dropout_counter == c
    for k, idx, fd in fd_gradients(net, X, y, masks=masks):
        assert grads[k].reshape(-1)[idx] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_gradients_do_not_depend_on_threads(request):
    np.random.seed(8)
    M = 10
    net = Network([
        ConvPoolLayer(image_shape=(M, 1, 14, 14), filter_shape=(6, 1, 5, 5), poolsize=(2, 2)),
        ConvPoolLayer(image_shape=(M, 6, 5, 5), filter_shape=(16, 6, 2, 2), poolsize=(2, 2),
                      activation_fn=network3.ReLU),
        ConvPoolLayer(image_shape=(M, 16, 2, 2), filter_shape=(12, 16, 2, 2), poolsize=(1, 1)),
        FullyConnectedLayer(12, 50, p_dropout=0.5), SoftmaxLayer(50, 10)], M)
    randomize_softmax(net)
    X, y = data(M, 196)
    results = []
    from cbp import _core
    old = _core.conv_min_flops(0)       # threads even for these small layers
    request.addfinalizer(lambda: _core.conv_min_flops(old))
    for nt in (1, 2, 3, 4):
        net.dropout_counter = 0
        results.append(step_gradients(net, X, y, num_threads=nt))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
