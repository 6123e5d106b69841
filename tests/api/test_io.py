"""cbp.io: model files round-trip bit for bit, save atomically, and refuse bad files safely."""
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

import cbp
import cbp.io


def make_net(sizes=(4, 5, 3), **kwargs):
    return cbp.Network(list(sizes), seed=1, **kwargs)


def entries_of(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def write_npz(path, entries, **kwargs):
    with open(path, "wb") as f:
        np.savez(f, **entries, **kwargs)
    return path


@pytest.fixture
def good(tmp_path):
    """A valid model file and its entries."""
    path = tmp_path / "good.npz"
    cbp.io.save(make_net(), path)
    return path, entries_of(path)


# -- round trip --------------------------------------------------------------

CONFIGS = [
    dict(sizes=(4, 5, 3)),
    dict(sizes=(6, 7, 5, 3), activation="tanh", output_activation="softmax",
         cost="log_likelihood"),
    dict(sizes=(3, 2), activation="sigmoid", cost="cross_entropy", dtype="float32"),
    dict(sizes=(5, 8, 4), activation="relu", output_activation="linear", cost="sse"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c["sizes"])))
def test_round_trip_is_bit_identical(tmp_path, config):
    config = dict(config)
    net = make_net(config.pop("sizes"), **config)
    path = tmp_path / "model.npz"
    cbp.io.save(net, path)
    back = cbp.load(path)
    assert type(back) is cbp.Network
    assert back.sizes == net.sizes
    assert (back.activation, back.output_activation, back.cost) == \
        (net.activation, net.output_activation, net.cost)
    assert back.dtype == net.dtype
    for a, b in zip(net.weights + net.biases, back.weights + back.biases):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    X = np.random.default_rng(0).random((20, net.sizes[0]))
    np.testing.assert_array_equal(back.feedforward(X), net.feedforward(X))


def test_round_trip_after_training(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.random((50, 4)), rng.integers(0, 3, 50)
    net = make_net()
    net.SGD((X, y), 2, 5, 1.0, verbose=False)
    net.save(tmp_path / "trained.npz")
    back = cbp.load(str(tmp_path / "trained.npz"))
    assert back.evaluate((X, y)) == net.evaluate((X, y))
    np.testing.assert_array_equal(back.feedforward(X), net.feedforward(X))


def test_file_holds_documented_entries(good):
    _, entries = good
    assert str(entries["format"]) == "cbp-model"
    assert int(entries["version"]) == 1
    assert entries["sizes"].tolist() == [4, 5, 3]
    assert str(entries["activation"]) == "sigmoid"
    assert str(entries["dtype"]) == "float64"
    assert entries["W0"].shape == (5, 4) and entries["b1"].shape == (3, 1)
    assert all(a.dtype != object for a in entries.values())


def test_path_without_npz_suffix_is_written_exactly(tmp_path):
    path = tmp_path / "model.bin"
    cbp.io.save(make_net(), path)
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert cbp.load(path).sizes == [4, 5, 3]


def test_save_overwrites_and_keeps_permissions(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    cbp.io.save(make_net(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert cbp.load(path).sizes == [4, 5, 3]
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_checks_arguments(tmp_path):
    with pytest.raises(TypeError, match="Network"):
        cbp.io.save("not a net", tmp_path / "m.npz")
    with pytest.raises(TypeError, match="path"):
        cbp.io.save(make_net(), 42)
    with pytest.raises(FileNotFoundError):
        cbp.io.save(make_net(), tmp_path / "no" / "such" / "dir" / "m.npz")
    assert os.listdir(tmp_path) == []


# -- atomic save -------------------------------------------------------------


def test_failed_rename_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    cbp.io.save(make_net((2, 2)), path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("simulated failure in os.replace")

    monkeypatch.setattr(cbp.io.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        cbp.io.save(make_net((4, 5, 3)), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]          # no temp file left behind


def test_failure_while_writing_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    cbp.io.save(make_net((2, 2)), path)
    before = path.read_bytes()

    def half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt                        # even Ctrl-C mid-write

    monkeypatch.setattr(cbp.io.np, "savez", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        cbp.io.save(make_net((4, 5, 3)), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    monkeypatch.undo()
    assert cbp.load(path).sizes == [2, 2]


# -- bad files ---------------------------------------------------------------


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        cbp.load(tmp_path / "nope.npz")


def _modified(entries, **changes):
    out = dict(entries)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _bad_entries(e):
    W0 = e["W0"]
    nan_W0 = W0.copy()
    nan_W0[0, 0] = np.nan
    inf_b1 = e["b1"].copy()
    inf_b1[1] = np.inf
    return {
        "missing-W1": (_modified(e, W1=None), "W1"),
        "missing-cost": (_modified(e, cost=None), "cost"),
        "no-format": (_modified(e, format=None), "format"),
        "wrong-format": (_modified(e, format=np.array("keras-model")), "keras-model"),
        "version-2": (_modified(e, version=np.array(2)), "version 2"),
        "version-str": (_modified(e, version=np.array("1")), "version"),
        "W-transposed": (_modified(e, W0=np.ascontiguousarray(W0.T)), "W0"),
        "b-wrong-length": (_modified(e, b0=np.zeros((4, 1))), "b0"),
        "sizes-mismatch": (_modified(e, sizes=np.array([4, 6, 3])), "shape"),
        "sizes-2d": (_modified(e, sizes=np.array([[4, 5, 3]])), "sizes"),
        "sizes-zero": (_modified(e, sizes=np.array([4, 0, 3])), "sizes"),
        "extra-layer": (_modified(e, W2=np.zeros((2, 3)), b2=np.zeros((2, 1))), "W2"),
        "nan-weight": (_modified(e, W0=nan_W0), "NaN"),
        "inf-bias": (_modified(e, b1=inf_b1), "NaN or infinite"),
        "dtype-mismatch": (_modified(e, W0=W0.astype(np.float32)), "dtype"),
        "int-weights": (_modified(e, W0=W0.astype(np.int64)), "dtype"),
        "bad-dtype": (_modified(e, dtype=np.array("int8")), "dtype"),
        "bad-activation": (_modified(e, activation=np.array("swish")), "swish"),
        "bad-cost-pair": (_modified(e, cost=np.array("cross_entropy"),
                                    output_activation=np.array("tanh")), "cross_entropy"),
    }


BAD_NAMES = list(_bad_entries({k: np.zeros((5, 4)) for k in
                               ("W0", "b0", "W1", "b1")}).keys())


@pytest.mark.parametrize("case", BAD_NAMES)
def test_inconsistent_content_is_value_error(tmp_path, good, case):
    _, entries = good
    bad, words = _bad_entries(entries)[case]
    path = write_npz(tmp_path / f"{case}.npz", bad)
    with pytest.raises(ValueError) as info:
        cbp.load(path)
    message = str(info.value)
    assert str(path) in message
    assert words in message


def _raw_cases(good_bytes, tmp_path):
    zip_path = tmp_path / "plain.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("readme.txt", "not arrays")
    npy_path = tmp_path / "single.npy"
    np.save(npy_path, np.zeros(3))
    return {
        "empty": b"",
        "truncated": good_bytes[: len(good_bytes) // 2],
        "truncated-tail": good_bytes[:-30],
        "random": np.random.default_rng(0).bytes(4096),
        "text": b"W0 = [[1, 2], [3, 4]]\n",
        "zip-not-npz": zip_path.read_bytes(),
        "npy-not-npz": npy_path.read_bytes(),
        "zip-magic-only": b"PK\x03\x04" + b"\x00" * 100,
    }


@pytest.mark.parametrize("case", ["empty", "truncated", "truncated-tail", "random", "text",
                                  "zip-not-npz", "npy-not-npz", "zip-magic-only"])
def test_damaged_or_foreign_file_is_value_error(tmp_path, good, case):
    path, _ = good
    data = _raw_cases(path.read_bytes(), tmp_path)[case]
    bad = tmp_path / f"{case}.npz"
    bad.write_bytes(data)
    with pytest.raises(ValueError) as info:
        cbp.load(bad)
    assert str(bad) in str(info.value)


class _Evil:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_array_in_npz_is_refused(tmp_path, good):
    _, entries = good
    marker = tmp_path / "PWNED"
    obj = np.empty((5, 4), dtype=object)
    obj[...] = 0.5
    obj[0, 0] = _Evil(marker)
    path = write_npz(tmp_path / "objects.npz", _modified(entries, W0=obj), allow_pickle=True)
    with pytest.raises(ValueError) as info:
        cbp.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_pickle_renamed_npz_runs_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Evil(marker))
    # The payload works: unpickling it would create the marker.
    path = tmp_path / "model.npz"
    path.write_bytes(payload)
    with pytest.raises(ValueError) as info:
        cbp.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    pickle.loads(payload).close()              # control: the payload is real
    assert marker.exists()


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(OSError):
        cbp.load(tmp_path)


def test_load_path_type():
    with pytest.raises(TypeError, match="path"):
        cbp.load(3.5)


def test_exp_output_and_poisson_cost_round_trip(tmp_path):
    # MLPRegressor(loss='poisson')'s network: the new output and cost are
    # stored by name and read back.
    net = cbp.Network([3, 4, 2], activation="tanh", output_activation="exp", cost="poisson",
                      seed=0)
    path = str(tmp_path / "poisson.npz")
    net.save(path)
    back = cbp.load(path)
    assert (back.output_activation, back.cost) == ("exp", "poisson")
    x = np.random.RandomState(0).rand(5, 3)
    np.testing.assert_array_equal(back.feedforward(x), net.feedforward(x))
