"""cbp.network3 against the independent NumPy reference: whole epochs of small conv nets, to 1e-12.

The networks are built both ways after the same ``np.random.seed``, so both
start from the weights the original draws; they are trained with the book's
API (``load_data_shared`` on a file in the book's format, ``Network``,
``SGD``) in float64, without dropout, on MNIST images (the embedded sample,
scaled as the book's file), and every weight and bias is compared after the
epochs, as are the printed accuracies.  The reference is
tests/network3_reference.py, checked on its own against finite differences.
"""
import contextlib
import gzip
import io
import pickle
import re

import numpy as np
import pytest

from cbp import datasets
import cbp.network3 as network3

import network3_reference as ref  # tests/: shared by the network3 tests

M = 10


def _sample(dither):
    """200 training, 50 validation and 50 test images of the sample, as the book's file scales them.

    The book's pixels are multiples of 1/256, so two positions of a pooling
    block can hold exactly the same nonzero value (a uniform stroke shifted
    by a pixel): about 0.1% of the blocks of a 5x5 conv layer on MNIST.
    Theano sends such a block's gradient to every tied position
    (``test_tied_maxima_on_mnist_as_theano`` checks cbp does too); ``dither``
    adds noise below 1/4096 so that no nonzero ties occur, for the tests of
    everything else.
    """
    (X, y), (Xh, yh) = datasets.load_sample()
    X = np.rint(X * 255) / 256
    Xh = np.rint(Xh * 255) / 256
    if dither:
        rng = np.random.default_rng(0)
        X = X + rng.random(X.shape) / 4096
        Xh = Xh + rng.random(Xh.shape) / 4096
    X, Xh = X.astype(np.float32), Xh.astype(np.float32)
    return ((X[:200], y[:200]), (Xh[:50], yh[:50]), (Xh[50:100], yh[50:100]))


def _book_file(directory, parts):
    path = directory / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=2)))
    return path, parts


@pytest.fixture(scope="module")
def book_file(tmp_path_factory):
    return _book_file(tmp_path_factory.mktemp("data"), _sample(dither=True))


@contextlib.contextmanager
def floatX(name):
    old = network3.config.floatX
    network3.config.floatX = name
    try:
        yield
    finally:
        network3.config.floatX = old


_FN = {"sigmoid": (network3.sigmoid, ref.sigmoid), "tanh": (network3.tanh, ref.tanh),
       "ReLU": (network3.ReLU, ref.ReLU), "linear": (network3.linear, ref.linear)}


def _build(specs, which, m=M):
    """The layers of `specs` built by cbp.network3 (which=0) or the reference (which=1)."""
    layers = []
    for spec in specs:
        kind = spec[0]
        if kind == "conv":
            _, filter_shape, image_shape, pool, act = spec
            image_shape = (m,) + tuple(image_shape)
            if which == 0:
                layers.append(network3.ConvPoolLayer(filter_shape=filter_shape, image_shape=image_shape,
                                                     poolsize=pool, activation_fn=_FN[act][0]))
            else:
                layers.append(ref.ConvPool(filter_shape, image_shape, pool, _FN[act][1]))
        elif kind == "fc":
            _, n_in, n_out, act = spec
            layers.append(network3.FullyConnectedLayer(n_in=n_in, n_out=n_out, activation_fn=_FN[act][0])
                          if which == 0 else ref.FullyConnected(n_in, n_out, _FN[act][1]))
        else:
            _, n_in, n_out = spec
            layers.append(network3.SoftmaxLayer(n_in=n_in, n_out=n_out) if which == 0
                          else ref.Softmax(n_in, n_out))
    return layers


NETS = {
    # chapter 6's shallow net, smaller
    "shallow": ([("fc", 784, 30, "sigmoid"), ("softmax", 30, 10)], 0.1, 0.0),
    # basic_conv: conv-pool, FC, softmax (sigmoid)
    "basic_conv": ([("conv", (4, 1, 5, 5), (1, 28, 28), (2, 2), "sigmoid"), ("fc", 4 * 12 * 12, 20, "sigmoid"),
                    ("softmax", 20, 10)], 0.1, 0.0),
    # omit_FC, with tanh
    "omit_FC_tanh": ([("conv", (3, 1, 5, 5), (1, 28, 28), (2, 2), "tanh"), ("softmax", 3 * 12 * 12, 10)],
                     0.1, 0.0),
    # dbl_conv with ReLU and L2, as dbl_conv_relu
    "dbl_conv_relu_l2": ([("conv", (4, 1, 5, 5), (1, 28, 28), (2, 2), "ReLU"),
                          ("conv", (6, 4, 5, 5), (4, 12, 12), (2, 2), "ReLU"),
                          ("fc", 6 * 4 * 4, 20, "ReLU"), ("softmax", 20, 10)], 0.03, 0.1),
    # odd shapes: 3x3 filters, 3x3 pooling dropping a border (26 -> 8), linear, L2
    "odd_pool_linear": ([("conv", (2, 1, 3, 3), (1, 28, 28), (3, 3), "linear"),
                         ("fc", 2 * 8 * 8, 12, "sigmoid"), ("softmax", 12, 10)], 0.05, 0.5),
}


def _train_both(specs, eta, lmbda, path, parts, epochs, seed):
    with floatX("float64"):
        np.random.seed(seed)
        layers = _build(specs, 0)
        np.random.seed(seed)
        twin = ref.Network(_build(specs, 1), M)
        # both start from the original's weights
        for layer, r in zip(layers, twin.layers):
            np.testing.assert_array_equal(layer.w.get_value(), r.w)
            np.testing.assert_array_equal(layer.b.get_value(), r.b)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            training_data, validation_data, test_data = network3.load_data_shared(str(path))
            net = network3.Network(layers, M)
            net.SGD(training_data, epochs, M, eta, validation_data, test_data, lmbda=lmbda)
    f64 = [(X.astype(np.float64), y) for X, y in parts]
    history = twin.SGD(f64[0], epochs, M, eta, f64[1], f64[2], lmbda=lmbda)
    return net, twin, out.getvalue(), history


def _assert_same(net, twin, tol=1e-12):
    for j, (layer, r) in enumerate(zip(net.layers, twin.layers)):
        for got, want, what in ((layer.w.get_value(), r.w, "w"), (layer.b.get_value(), r.b, "b")):
            assert got.dtype == np.float64
            scale = max(1.0, float(np.max(np.abs(want))))
            err = float(np.max(np.abs(got - want)))
            assert err <= tol * scale, f"layers[{j}].{what}: max |cbp - reference| = {err:.3g}"


@pytest.mark.parametrize("name", list(NETS))
def test_an_epoch_matches_the_reference_to_1e_12(book_file, name):
    specs, eta, lmbda = NETS[name]
    path, parts = book_file
    net, twin, printed, history = _train_both(specs, eta, lmbda, path, parts, epochs=1, seed=11)
    _assert_same(net, twin)
    # the training moved every parameter
    np.random.seed(11)
    with floatX("float64"):
        start = _build(specs, 1)
    for layer, s in zip(twin.layers, start):
        assert not np.array_equal(layer.w, s.w)
    accuracies = [float(a) / 100 for a in re.findall(r"Epoch \d+: validation accuracy ([\d.]+)%", printed)]
    assert accuracies == pytest.approx([h[1] for h in history], abs=5e-5)


def test_two_epochs_in_order_with_the_best_validation_bookkeeping(book_file):
    specs, eta, lmbda = NETS["dbl_conv_relu_l2"]
    path, parts = book_file
    net, twin, printed, history = _train_both(specs, eta, lmbda, path, parts, epochs=2, seed=4)
    _assert_same(net, twin)
    tests = [float(a) / 100 for a in re.findall(r"The corresponding test accuracy is ([\d.]+)%", printed)]
    assert tests == pytest.approx([h[2] for h in history if h[2] is not None], abs=5e-5)
    assert printed.count("This is the best validation accuracy to date.") == len(tests)


def test_float32_by_default_and_close_to_the_reference(book_file):
    specs, eta, lmbda = NETS["basic_conv"]
    path, parts = book_file
    assert network3.config.floatX == "float32"
    np.random.seed(2)
    layers = _build(specs, 0)
    np.random.seed(2)
    twin = ref.Network(_build(specs, 1), M)
    with contextlib.redirect_stdout(io.StringIO()):
        training_data, validation_data, test_data = network3.load_data_shared(str(path))
        net = network3.Network(layers, M)
        net.SGD(training_data, 1, M, eta, validation_data, test_data, lmbda=lmbda)
    f64 = [(X.astype(np.float64), y) for X, y in parts]
    twin.SGD(f64[0], 1, M, eta, f64[1], f64[2], lmbda=lmbda)
    for layer, r in zip(net.layers, twin.layers):
        assert layer.w.get_value().dtype == np.float32
        np.testing.assert_allclose(layer.w.get_value(), r.w, rtol=0, atol=2e-5)
        np.testing.assert_allclose(layer.b.get_value(), r.b, rtol=0, atol=2e-5)


def test_tied_maxima_on_mnist_as_theano(tmp_path):
    # The book's own pixels (no dither): nonzero ties occur, and Theano gives a
    # tied block's gradient to every maximum; so must cbp, to 1e-12.
    parts = _sample(dither=False)
    specs, eta, lmbda = NETS["basic_conv"]
    np.random.seed(11)
    first = ref.ConvPool(specs[0][1], (M,) + specs[0][2], specs[0][3], ref.sigmoid)
    first.forward(parts[0][0][:M].astype(np.float64))
    _, z, pooled, _, _ = first._cache
    tied = ((first._blocks(z) == pooled[:, :, :, None, :, None]).sum(axis=(3, 5)) > 1) & (pooled != 0)
    assert tied.any()   # the data does exercise the rule
    path, parts = _book_file(tmp_path, parts)
    net, twin, _, _ = _train_both(specs, eta, lmbda, path, parts, epochs=1, seed=11)
    _assert_same(net, twin)
