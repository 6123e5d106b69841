"""Does it learn? XOR, MNIST, and network.py's drop-in usage."""
import gzip
import re

import numpy as np
import pytest

import cbp
from conftest import DATA

TRAIN = DATA / "mnist_5k_train.npz"
TEST_IMAGES = DATA / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = DATA / "t10k-labels-idx1-ubyte.gz"

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


# -- XOR -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cost,eta", [("cross_entropy", 4.0), ("quadratic", 4.0)])
def test_xor(cost, eta, seed):
    net = cbp.Network([2, 3, 1], cost=cost, seed=seed)
    history = net.SGD((XOR_X, XOR_Y), 3000, 4, eta, verbose=False)
    out = net.feedforward(XOR_X)
    assert out.shape == (4, 1)
    np.testing.assert_array_equal((out > 0.5).astype(float), XOR_Y)
    # The training cost came down.
    assert history["cost"][-1] < history["cost"][0] / 10


def test_xor_network_py_form():
    # The same with lists of column tuples and online updates (m = 1).
    net = cbp.Network([2, 3, 1], cost="cross_entropy", seed=3)
    data = [(x.reshape(2, 1), y.reshape(1, 1)) for x, y in zip(XOR_X, XOR_Y)]
    net.SGD(data, 2000, 1, 2.0, verbose=False)
    for x, y in data:
        assert (net.feedforward(x)[0, 0] > 0.5) == (y[0, 0] == 1)


# -- MNIST -----------------------------------------------------------------------

def _require_data():
    missing = [p.name for p in (TRAIN, TEST_IMAGES, TEST_LABELS) if not p.exists()]
    if missing:
        pytest.skip(f"MNIST files not found in {DATA} (missing: {', '.join(missing)}); "
                    "they live in ../shared/data relative to the project root")


def _read_idx(path, offset):
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


@pytest.fixture(scope="module")
def mnist():
    _require_data()
    with np.load(TRAIN) as npz:
        images, labels = npz["images"], npz["labels"]
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    X_train = images.reshape(5000, 784) / 255.0
    y_train = labels.astype(np.int64)
    X_test = _read_idx(TEST_IMAGES, 16).reshape(-1, 784) / 255.0
    y_test = _read_idx(TEST_LABELS, 8).astype(np.int64)
    assert X_test.shape == (10000, 784)
    assert list(y_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    return X_train, y_train, X_test, y_test


def test_mnist_784_30_10(mnist):
    X_train, y_train, X_test, y_test = mnist
    net = cbp.Network([784, 30, 10], seed=0)
    history = net.SGD((X_train, y_train), 10, 10, 3.0, test_data=(X_test, y_test),
                      verbose=False)
    assert history["epoch"] == list(range(10))
    correct = net.evaluate((X_test, y_test))
    assert correct == history["correct"][-1]
    assert history["accuracy"][-1] == correct / 10000
    assert correct >= 8700, f"{correct} / 10000"


def _network_py_lists(mnist, n_train, n_test):
    X_train, y_train, X_test, y_test = mnist
    training_data = []
    for x, label in zip(X_train[:n_train], y_train[:n_train]):
        y = np.zeros((10, 1))
        y[label] = 1.0
        training_data.append((x.reshape(784, 1), y))
    test_data = [(x.reshape(784, 1), int(label))
                 for x, label in zip(X_test[:n_test], y_test[:n_test])]
    return training_data, test_data


def test_network_py_drop_in(mnist, capsys):
    import cbp.network as network
    # A spread of digits: the 5k sample is sorted by label.
    order = np.random.default_rng(0).permutation(5000)[:1000]
    subset = (mnist[0][order], mnist[1][order], mnist[2], mnist[3])
    training_data, test_data = _network_py_lists(subset, 1000, 500)
    net = network.Network([784, 30, 10])
    assert net.num_layers == 3 and net.sizes == [784, 30, 10]
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    net.SGD(training_data, 1, 10, 3.0, test_data=test_data)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    match = re.fullmatch(r"Epoch 0: (\d+) / 500", out[0])
    assert match, out
    assert int(match.group(1)) == net.evaluate(test_data)
    # feedforward on a column gives a column, as network.py's does.
    assert net.feedforward(test_data[0][0]).shape == (10, 1)

    # Without test data: "Epoch j complete".
    net.SGD(training_data, 2, 10, 3.0)
    assert capsys.readouterr().out.splitlines() == ["Epoch 0 complete", "Epoch 1 complete"]


def test_network_py_accepts_zip(mnist, capsys):
    import cbp.network as network
    training_data, test_data = _network_py_lists(mnist, 50, 20)
    net = network.Network([784, 30, 10], seed=0)
    xs, ys = zip(*training_data)
    net.SGD(zip(xs, ys), 1, 10, 3.0, test_data=zip(*zip(*test_data)))
    assert re.fullmatch(r"Epoch 0: \d+ / 20\n", capsys.readouterr().out)
