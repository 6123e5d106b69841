"""cbp.expand_mnist: the book's expanded training set, its file, its refusals."""
import gzip
import os
import pickle
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest

from cbp import datasets, expand_mnist as em


def _book_parts(sizes=(7, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return tuple((rng.integers(0, 256, (k, 784)).astype(np.float32) / np.float32(256),
                  rng.integers(0, 10, k).astype(np.int64)) for k in sizes)


def _write_input(path, parts, protocol=2):
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=protocol)))
    return path


@pytest.fixture
def book(tmp_path):
    parts = _book_parts()
    return _write_input(tmp_path / "mnist.pkl.gz", parts), parts


def _original_under_python3(X, y):
    """The original script's list of pairs and shuffle, as its Python 3 port would run.

    Written here from the original's description: each image, then np.roll
    by +1/-1 along rows/columns with the wrapped line set to zero; then
    random.shuffle of the list of pairs on the global generator.
    """
    pairs = []
    for x, label in zip(X, y):
        pairs.append((x, label))
        image = x.reshape(28, 28)
        for d, axis, line in ((1, 0, 0), (-1, 0, 27), (1, 1, 0), (-1, 1, 27)):
            moved = np.roll(image, d, axis)
            if axis == 0:
                moved[line, :] = 0
            else:
                moved[:, line] = 0
            pairs.append((moved.reshape(784), label))
    random.shuffle(pairs)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def test_same_images_and_order_as_the_original(book, tmp_path):
    path, parts = book
    random.seed(12)
    X_ref, y_ref = _original_under_python3(*parts[0])
    random.seed(12)
    out = em.expand_mnist(path, tmp_path / "expanded.pkl.gz")
    (X, y), valid, test = datasets.read_mnist_pickle(out)
    assert X.shape == (35, 784) and X.dtype == np.float32
    assert y.shape == (35,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    for got, want in zip((valid, test), parts[1:]):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_each_shift_moves_one_pixel():
    X = np.zeros((5, 784), np.float32)
    X[:, 3 * 28 + 5] = 1.0                 # pixel (3, 5)
    X[:, 27 * 28 + 27] = 0.5               # corner (27, 27): leaves the image going down or right
    X[:, 0] = 0.25                         # corner (0, 0): leaves going up or left
    out = em.shift_rows(X, np.arange(5)).reshape(5, 28, 28)
    moved = {"none": (3, 5), "down": (4, 5), "up": (2, 5), "right": (3, 6), "left": (3, 4)}
    for k, name in enumerate(em.SHIFTS):
        expected = np.zeros((28, 28), np.float32)
        expected[moved[name]] = 1.0
        if name in ("none", "up", "left"):
            r, c = {"none": (27, 27), "up": (26, 27), "left": (27, 26)}[name]
            expected[r, c] = 0.5
        if name in ("none", "down", "right"):
            r, c = {"none": (0, 0), "down": (1, 0), "right": (0, 1)}[name]
            expected[r, c] = 0.25
        np.testing.assert_array_equal(out[k], expected, err_msg=name)


def test_every_image_appears_once_with_each_shift(book, tmp_path):
    path, parts = book
    (X, y), _, _ = datasets.read_mnist_pickle(em.expand_mnist(path, tmp_path / "e.pkl.gz", seed=1))
    X0, y0 = parts[0]
    want = sorted(
        (int(label), em.shift_rows(X0[i:i + 1], np.array([k])).tobytes())
        for i, label in enumerate(y0) for k in range(5))
    got = sorted((int(label), x.tobytes()) for x, label in zip(X, y))
    assert got == want


def test_seed_gives_the_same_file_and_leaves_the_global_generator(book, tmp_path):
    path, _ = book
    random.seed(5)
    state = random.getstate()
    a = em.expand_mnist(path, tmp_path / "a.pkl.gz", seed=3)
    b = em.expand_mnist(path, tmp_path / "b.pkl.gz", seed=3)
    c = em.expand_mnist(path, tmp_path / "c.pkl.gz", seed=4)
    assert random.getstate() == state
    assert a.read_bytes() == b.read_bytes()
    ya = datasets.read_mnist_pickle(a)[0][1]
    yc_X = datasets.read_mnist_pickle(c)[0][0]
    assert not np.array_equal(datasets.read_mnist_pickle(a)[0][0], yc_X)
    assert ya.shape == (35,)


def test_chunks_do_not_change_the_result(book, tmp_path, monkeypatch):
    path, _ = book
    whole = em.expand_mnist(path, tmp_path / "whole.pkl.gz", seed=9)
    monkeypatch.setattr(em, "_CHUNK_ROWS", 4)   # 35 rows: 9 chunks, the last partial
    chunked = em.expand_mnist(path, tmp_path / "chunked.pkl.gz", seed=9)
    assert whole.read_bytes() == chunked.read_bytes()


def test_the_file_is_the_books_pickle_format(book, tmp_path):
    # Python's own unpickler (with encoding="latin1", as the book's loader
    # ported to Python 3 reads mnist.pkl.gz) reads the file cbp wrote itself.
    path, parts = book
    out = em.expand_mnist(path, tmp_path / "e.pkl.gz", seed=0)
    with gzip.open(out, "rb") as f:
        blob = f.read()
    assert blob.startswith(b"\x80\x02") and b"cnumpy.core.multiarray\n_reconstruct\n" in blob
    assert b"\x95" not in blob[:2] and b"\x8c" not in blob[:40]   # no protocol-4 opcodes up front
    with warnings.catch_warnings():
        # NumPy 2 warns that numpy.core (the book's module name) is now numpy._core.
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = pickle.loads(blob, encoding="latin1")
    mine = datasets.read_mnist_pickle(out)
    for (X, y), (Xm, ym) in zip(loaded, mine):
        np.testing.assert_array_equal(X, Xm)
        np.testing.assert_array_equal(y, ym)
    np.testing.assert_array_equal(loaded[2][0], parts[2][0])


def test_cli_writes_and_then_exits_like_the_original(book, tmp_path, capsys):
    path, _ = book
    out = tmp_path / "e.pkl.gz"
    assert em.main(["-i", str(path), "-o", str(out), "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "Expanding the MNIST training set" in printed and "35 of 35" in printed
    first = out.read_bytes()
    assert em.main(["-i", str(path), "-o", str(out), "--seed", "3"]) == 0
    assert "already exists" in capsys.readouterr().out
    assert out.read_bytes() == first
    assert em.main(["-i", str(path), "-o", str(out), "--seed", "3", "--force", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_bytes() != first


def test_cli_reports_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.pkl.gz"
    bad.write_bytes(gzip.compress(b"not a pickle"))
    assert em.main(["-i", str(bad), "-o", str(tmp_path / "o.pkl.gz")]) == 1
    err = capsys.readouterr().err
    assert "python -m cbp.expand_mnist: error:" in err and "bad.pkl.gz" in err
    assert not (tmp_path / "o.pkl.gz").exists()


def test_python_m_runs(tmp_path):
    _write_input(tmp_path / "mnist.pkl.gz", _book_parts((2, 1, 1)))
    (tmp_path / "src").mkdir()
    # The original's defaults: ../data/mnist.pkl.gz from the book's src/.
    (tmp_path / "data").mkdir()
    os.replace(tmp_path / "mnist.pkl.gz", tmp_path / "data" / "mnist.pkl.gz")
    run = subprocess.run([sys.executable, "-m", "cbp.expand_mnist"], cwd=tmp_path / "src",
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    X, y = datasets.read_mnist_pickle(tmp_path / "data" / "mnist_expanded.pkl.gz")[0]
    assert X.shape == (10, 784) and y.shape == (10,)


# -- refusals ---------------------------------------------------------------


def test_existing_output_is_kept(book, tmp_path):
    path, _ = book
    out = tmp_path / "e.pkl.gz"
    out.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="already exists"):
        em.expand_mnist(path, out)
    assert out.read_bytes() == b"mine"


def test_hostile_input_is_refused_and_nothing_written(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((Evil(), 1), (2, 3), (4, 5)), protocol=2)))
    with pytest.raises(ValueError, match="refusing to load the global"):
        em.expand_mnist(path, tmp_path / "out.pkl.gz")
    assert os.listdir(tmp_path) == ["evil.pkl.gz"]


def test_missing_input_and_missing_directory(book, tmp_path):
    path, _ = book
    with pytest.raises(FileNotFoundError):
        em.expand_mnist(tmp_path / "nope.pkl.gz", tmp_path / "out.pkl.gz")
    with pytest.raises(FileNotFoundError, match="no_dir"):
        em.expand_mnist(path, tmp_path / "no_dir" / "out.pkl.gz")


def test_directory_output_is_refused(book, tmp_path):
    path, _ = book
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        em.expand_mnist(path, tmp_path / "d", overwrite=True)


def test_empty_training_set_is_refused(tmp_path):
    # (protocol 4: Python 3's protocol 2 pickles empty bytes through a global cbp refuses)
    path = _write_input(tmp_path / "m.pkl.gz", _book_parts((0, 2, 2)), protocol=4)
    with pytest.raises(ValueError, match="no image to expand"):
        em.expand_mnist(path, tmp_path / "out.pkl.gz")
    assert not (tmp_path / "out.pkl.gz").exists()


def test_too_large_a_set_is_refused_before_writing(book, tmp_path, monkeypatch):
    path, _ = book
    monkeypatch.setattr(em, "_MAX_STRING", 35 * 784 * 4 - 1)
    with pytest.raises(ValueError, match="does not fit in the book's pickle format"):
        em.expand_mnist(path, tmp_path / "out.pkl.gz")
    assert not (tmp_path / "out.pkl.gz").exists()


def test_failure_midway_leaves_the_old_file_and_no_temporary(book, tmp_path, monkeypatch):
    path, _ = book
    out = tmp_path / "e.pkl.gz"
    out.write_bytes(b"previous")
    calls = []

    def failing(images, kinds):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("simulated")
        return np.zeros((len(kinds), 784), np.float32)

    monkeypatch.setattr(em, "_CHUNK_ROWS", 4)
    monkeypatch.setattr(em, "shift_rows", failing)
    with pytest.raises(MemoryError):
        em.expand_mnist(path, out, overwrite=True)
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["e.pkl.gz", "mnist.pkl.gz"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"seed": 1.5}, TypeError, "seed must be an int or None"),
    ({"seed": True}, TypeError, "seed must be an int or None"),
    ({"overwrite": "yes"}, TypeError, "overwrite must be a bool"),
    ({"verbose": 1}, TypeError, "verbose must be a bool"),
    ({"compresslevel": 10}, ValueError, r"compresslevel must be in 0..9"),
    ({"compresslevel": "9"}, TypeError, "compresslevel must be an int"),
    ({"max_bytes": 0}, ValueError, "max_bytes must be at least 1"),
])
def test_bad_arguments(book, tmp_path, kwargs, error, match):
    path, _ = book
    with pytest.raises(error, match=match):
        em.expand_mnist(path, tmp_path / "out.pkl.gz", **kwargs)
    assert not (tmp_path / "out.pkl.gz").exists()


def test_bad_paths(tmp_path):
    with pytest.raises(TypeError, match="input_path must be a str or os.PathLike"):
        em.expand_mnist(3, tmp_path / "o")
    with pytest.raises(TypeError, match="output_path must be a str or os.PathLike"):
        em.expand_mnist(tmp_path / "i", None)
