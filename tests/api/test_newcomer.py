"""What a new user trips over (issue 10): test metrics read as what the test
data hold, independent copies, warnings for hopeless setups, messages that say
what to do, and the command line's reports."""
import copy
import pickle
import re

import numpy as np
import pytest

import cbp
from cbp import _data


def regression(n=500, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    W = np.array([[1.0, -0.4], [0.5, 0.8], [-0.3, 0.2]])[:, :n_out]
    return X, np.sin(X @ W)


def binary(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


# -- item 1: class labels or targets, decided once for training and test data --


@pytest.mark.parametrize("n_out", [1, 2])
def test_regression_test_data_are_targets(n_out, capsys):
    X, Y = regression(n_out=n_out)
    Xt, Yt = regression(n_out=n_out, seed=1)
    net = cbp.Network([3, 16, n_out], activation="tanh", output_activation="linear",
                      init="scaled", seed=0)
    history = net.SGD((X, Y), 3, 10, 0.05, test_data=(Xt, Yt))
    # Targets have a cost and no accuracy; the cost is total_cost's.
    assert set(history) == {"epoch", "cost", "seconds", "test_cost"}
    assert history["test_cost"][-1] == pytest.approx(net.total_cost((Xt, Yt)), rel=1e-12)
    assert history["test_cost"][-1] < 0.05       # the one-hot(argmax) reading gave > 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Epoch {j}: test cost {c:.6g}" for j, c in enumerate(history["test_cost"])]


def test_one_output_integer_labels_are_classes_by_threshold():
    X, y = binary()
    Xt, yt = binary(seed=1)
    net = cbp.Network([3, 8, 1], seed=0)
    history = net.SGD((X, y), 2, 10, 1.0, test_data=(Xt, yt), verbose=False)
    answers = (net.feedforward(Xt)[:, 0] >= 0.5).astype(int)
    expected = int(np.sum(answers == yt))
    assert 0 < expected < len(yt)
    assert history["correct"][-1] == expected == net.evaluate((Xt, yt))
    assert history["accuracy"][-1] == expected / len(yt)
    assert history["test_cost"][-1] == pytest.approx(net.total_cost((Xt, yt)), rel=1e-12)
    # network.py's list of (x, int) tuples reads the same.
    assert net.evaluate(list(zip(Xt, yt.tolist()))) == expected


def test_one_output_float_targets():
    X, y = binary()
    Xt, yt = binary(seed=1)
    net = cbp.Network([3, 8, 1], seed=0)
    # 0/1 float targets are class indicators: the accuracy is the threshold's,
    # not 100% whatever the network answers.
    h = net.SGD((X, y.astype(float).reshape(-1, 1)), 1, 10, 0.05,
                test_data=(Xt, yt.astype(float).reshape(-1, 1)), verbose=False)
    expected = int(np.sum((net.feedforward(Xt)[:, 0] >= 0.5) == yt))
    assert h["correct"] == [expected] and expected < len(yt)
    # Other float targets have a cost only.
    soft = 0.25 + 0.5 * yt.reshape(-1, 1)
    h = net.SGD((X, y), 1, 10, 0.05, test_data=(Xt, soft), verbose=False)
    assert "correct" not in h and "accuracy" not in h
    assert h["test_cost"] == [pytest.approx(net.total_cost((Xt, soft)), rel=1e-12)]


def test_one_output_integers_beyond_one_are_targets():
    # A label 0/1 is its own target; other integers are regression targets.
    X, _ = binary()
    y = np.arange(len(X)) % 4
    net = cbp.Network([3, 4, 1], output_activation="linear", activation="tanh", seed=0)
    h = net.SGD((X, y), 1, 10, 0.01, test_data=(X, y), verbose=False)
    assert set(h) == {"epoch", "cost", "seconds", "test_cost"}
    assert h["test_cost"] == [pytest.approx(net.total_cost((X, y.astype(float))), rel=1e-12)]
    with pytest.raises(ValueError, match=r"targets, not class labels"):
        net.evaluate((X, y))


def test_labels_and_one_hot_rows_give_the_same_record():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    Xt, yt = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    records = []
    for test in [(Xt, yt), (Xt, np.eye(3)[yt]), list(zip(Xt, yt.tolist())),
                 list(zip(Xt.reshape(30, 4, 1), np.eye(3)[yt].reshape(30, 3, 1)))]:
        net = cbp.Network([4, 5, 3], seed=1)
        records.append(net.SGD((X, y), 2, 10, 0.5, test_data=test, verbose=False))
    for h in records[1:]:
        assert h["correct"] == records[0]["correct"]
        assert h["test_cost"] == records[0]["test_cost"]


def test_examples_decides_once():
    f64 = np.float64
    X = np.zeros((3, 2))
    # Integer labels, for several outputs and for one.
    _, Y, labels = _data.examples((X, [2, 0, 1]), 2, 3, f64, want_labels=True)
    assert labels.tolist() == [2, 0, 1] and Y.tolist() == np.eye(3)[[2, 0, 1]].tolist()
    _, Y, labels = _data.examples((X, np.array([[1], [0], [1]])), 2, 1, f64, want_labels=True)
    assert labels.tolist() == [1, 0, 1] and Y[:, 0].tolist() == [1, 0, 1]
    _, Y, labels = _data.examples((X, np.array([[2], [0], [1]])), 2, 1, f64, want_labels=True)
    assert labels is None and Y[:, 0].tolist() == [2, 0, 1]
    _, Y, labels = _data.examples((X, np.array([[2], [0], [1]])), 2, 3, f64, want_labels=True)
    assert labels.tolist() == [2, 0, 1]
    # Float targets: classes only when every row is an indicator.
    _, Y, labels = _data.examples((X, [0.5, 1.0, 0.0]), 2, 1, f64, want_labels=True)
    assert labels is None and Y[:, 0].tolist() == [0.5, 1.0, 0.0]
    _, _, labels = _data.examples((X, np.eye(3)[[1, 1, 0]] * 0.9), 2, 3, f64, want_labels=True)
    assert labels is None
    with pytest.raises(ValueError, match=r"targets, not class labels"):
        _data.test_arrays((X, np.full((3, 3), 0.2)), 2, 3, f64)


# -- item 4: messages that say what was expected --------------------------------


@pytest.mark.parametrize("shape", [(20, 28, 28), (20, 784, 1)])
def test_images_not_flattened(shape):
    net = cbp.Network([784, 5, 10], seed=0)
    X, y = np.zeros(shape), np.zeros(20, dtype=int)
    expected = re.escape("training_data[0] (X) must have shape (n, 784)") + ".*" + \
        re.escape(f"got {shape}")
    with pytest.raises(ValueError, match=expected):
        net.SGD((X, y), 1, 10, 3.0, verbose=False)
    with pytest.raises(ValueError, match=r"reshape\(len\(X\), -1\)"):
        net.SGD((X, y), 1, 10, 3.0, verbose=False)


def test_a_single_example_is_named():
    net = cbp.Network([3, 2], seed=0)
    with pytest.raises(TypeError, match=r"single example.*\[\(x, y\)"):
        net.SGD((np.zeros(3), 1), 1, 1, 1.0, verbose=False)


def test_scikit_learn_style_call_says_pass_a_pair():
    net = cbp.Network([4, 3, 2], seed=0)
    before = net.feedforward(np.ones(4))
    X, y = np.zeros((10, 4)), np.arange(10) % 2
    with pytest.raises(TypeError, match=r"pass the pair \(X, y\).*net\.SGD\(\(X, y\)"):
        net.SGD(X, y, 10, 3.0)
    with pytest.raises(TypeError, match=r"pass the pair \(X, y\)"):
        cbp.SGD(3.0).run(net, X, y)
    assert np.array_equal(net.feedforward(np.ones(4)), before)


def test_backprop_and_explain_take_an_integer_label():
    net = cbp.Network([4, 5, 3], seed=2)
    x = np.linspace(-1, 1, 4)
    by_label = net.backprop(x, 2)
    by_vector = net.backprop(x, np.eye(3)[2].reshape(3, 1))
    for got, want in zip(by_label[0] + by_label[1], by_vector[0] + by_vector[1]):
        np.testing.assert_array_equal(got, want)
    trace = net.explain(x, np.int64(2))
    assert trace.y.tolist() == [0, 0, 1]
    for got, want in zip(trace.gradients()[1], by_vector[1]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"y must be class labels in \[0, 3\)"):
        net.backprop(x, 3)
    # One output unit: the label 0 or 1 is the target itself.
    one = cbp.Network([4, 3, 1], seed=2)
    np.testing.assert_array_equal(one.backprop(x, 1)[1][0], one.backprop(x, [1.0])[1][0])
    np.testing.assert_array_equal(one.backprop(x, 0.25)[1][0], one.backprop(x, [0.25])[1][0])


# -- item 2: copies and pickles are independent networks -------------------------------


def _trained(seed=0, **options):
    X, y = binary(200, seed=seed)
    net = cbp.Network([3, 6, 2], seed=seed, **options)
    net.SGD((X, y), 1, 10, 0.5, verbose=False)
    return net, (X, y)


def _params(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(_params(a), _params(b)))


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_copies_are_independent_and_continue_identically(how, dtype):
    net, data = _trained(dtype=dtype)
    twin = {"copy": copy.copy, "deepcopy": copy.deepcopy,
            "pickle": lambda n: pickle.loads(pickle.dumps(n))}[how](net)
    assert type(twin) is type(net) and repr(twin) == repr(net) and twin.init == net.init
    assert twin.dtype == net.dtype and _same(twin, net)
    saved = _params(net)
    X = data[0]
    # Training the copy leaves the original bit-identical...
    h_twin = twin.SGD(data, 2, 10, 0.5, verbose=False)
    assert all(np.array_equal(u, v) for u, v in zip(_params(net), saved))
    assert not _same(twin, net)
    # ...and the original, trained the same way, arrives at the same network:
    # the copy carries the generator's state (the shuffles to come).
    h_net = net.SGD(data, 2, 10, 0.5, verbose=False)
    assert h_net["cost"] == h_twin["cost"] and _same(twin, net)
    np.testing.assert_array_equal(net.feedforward(X), twin.feedforward(X))


def test_pickled_drop_in_keeps_its_class_and_cost():
    from cbp import network2
    net = network2.Network([3, 4, 2], cost=network2.QuadraticCost, seed=4)
    twin = pickle.loads(pickle.dumps(net))
    assert type(twin) is network2.Network and twin.cost is network2.QuadraticCost
    x = np.ones((3, 1))
    np.testing.assert_array_equal(twin.feedforward(x), net.feedforward(x))


def test_a_copy_has_its_own_lock():
    net, _ = _trained()
    twin = copy.copy(net)
    assert twin._lock is not net._lock
    with net._lock:                      # held here: the copy is not blocked by it
        twin.feedforward(np.zeros(3))


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.update(format="other"), "expected the dict"),
    (lambda s: s.update(version=9), "unknown version"),
    (lambda s: s.update(sizes=[3, 0, 2]), "sizes"),
    (lambda s: s.update(activation="gelu"), "activation"),
    (lambda s: s.update(cost="cross_entropy", output_activation="softmax"), "cost"),
    (lambda s: s.update(init="zeros"), "init"),
    (lambda s: s.update(dtype="int8"), "dtype"),
    (lambda s: s.update(params=s["params"][:-1]), "params must be"),
    (lambda s: s.update(params=s["params"].astype(np.float32)), "params must be"),
    (lambda s: s.update(params=list(s["params"])), "params must be"),
    (lambda s: s["params"].__setitem__(0, np.nan), "finite"),
    (lambda s: s.update(rng={"bit_generator": "os.system"}), "bit generator"),
    (lambda s: s.update(rng={"bit_generator": "PCG64", "state": "x"}), "state"),
    (lambda s: s.update(extra={"_params": 0}), "extra"),
    (lambda s: s.pop("rng"), "rng"),
])
def test_bad_state_is_refused(edit, match):
    net, _ = _trained()
    state = net.__getstate__()
    edit(state)
    fresh = cbp.Network.__new__(cbp.Network)
    with pytest.raises(ValueError, match=match):
        fresh.__setstate__(state)
    with pytest.raises(ValueError, match="not a valid cbp.Network state"):
        cbp.Network.__new__(cbp.Network).__setstate__([1, 2])


# -- item 3: the README's relu example works as printed; hopeless setups warn ------------


def _run_cli(capsys, *argv):
    from cbp.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_readme_relu_softmax_example_learns(capsys):
    code, out, err = _run_cli(capsys, "train", "--sizes", "784,100,10", "--activation", "relu",
                              "--output-activation", "softmax", "--cost", "log_likelihood",
                              "--epochs", "3")
    assert code == 0 and "warning" not in err, err
    # The defaults it used are printed, with the way to change them.
    assert "init 'scaled' (the default for relu hidden units; --init to change)" in out
    assert "eta 0.1 (the default for relu hidden units; --eta to change)" in out
    final = float(re.search(r"Done after 3 epochs: test accuracy (\d+\.\d\d)%", out).group(1))
    assert final > 85.0          # 10.30% with the old defaults (eta 3, N(0, 1) weights)


def test_cli_defaults_keep_network_py_and_honour_flags(capsys):
    code, out, _ = _run_cli(capsys, "train", "--epochs", "1")
    assert code == 0 and "init 'gaussian' (network.py's" in out and "eta 3 (network.py's" in out
    assert "Epoch 1/1: accuracy 35.00% (350/1000)" in out      # the README's first line
    code, out, _ = _run_cli(capsys, "train", "--epochs", "1", "--activation", "tanh",
                            "--init", "gaussian", "--eta", "0.25")
    assert code == 0 and re.search(r"init 'gaussian'$", out, re.M) and "eta 0.25," in out
    assert "--init to change" not in out and "--eta to change" not in out
    code, out, _ = _run_cli(capsys, "train", "--epochs", "1", "--cost", "cross_entropy")
    assert code == 0 and "eta 0.5 (network2.py's" in out


def test_cli_warns_for_the_old_relu_defaults(capsys):
    code, out, err = _run_cli(capsys, "train", "--sizes", "784,100,10", "--activation", "relu",
                              "--output-activation", "softmax", "--cost", "log_likelihood",
                              "--epochs", "3", "--eta", "3", "--init", "gaussian")
    assert code == 0
    warned = [line for line in err.splitlines() if line.startswith("cbp: warning:")]
    assert len(warned) == 1 and "no better than always answering the mean target" in warned[0]
    assert "(2.303)" in warned[0]              # ln 10: ten balanced classes


def _sample(n=1000):
    from cbp import datasets
    (X, y), _ = datasets.load_sample()
    return X[:n], y[:n]


def _training_warnings(call):
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, cbp.TrainingWarning)]


def test_pixels_0_255_warn_once():
    X, y = _sample()
    net = cbp.Network([784, 30, 10], seed=0)
    caught = _training_warnings(lambda: net.SGD((X * 255, y), 1, 10, 3.0, verbose=False))
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    assert "|x| = 255" in str(caught[0].message) and "X / 255" in str(caught[0].message)
    assert caught[0].filename == __file__            # points at the caller's line


@pytest.mark.parametrize("setup", [
    dict(activation="relu", output_activation="softmax", cost="log_likelihood", eta=3.0),
    dict(activation="sigmoid", cost="quadratic", eta=0.05),      # far too small for N(0, 1)
])
def test_cost_stuck_at_chance_warns_once(setup):
    X, y = _sample(2000)
    eta = setup.pop("eta")
    net = cbp.Network([784, 30, 10], seed=0, **setup)
    history = {}
    caught = _training_warnings(lambda: history.update(net.SGD((X, y), 4, 10, eta,
                                                               verbose=False)))
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "no better than always answering the mean target" in str(caught[0].message)
    # The chance level is the cost of answering the mean target, here ȳ = 0.1 per class.
    assert history["cost"][1] >= 0.97 * min(np.log(10), 0.45)


def test_growing_cost_warns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 5))
    Y = X @ rng.normal(size=(5, 1))
    net = cbp.Network([5, 8, 1], activation="linear", output_activation="linear", seed=0,
                      init="scaled")
    history = {}
    caught = _training_warnings(lambda: history.update(
        net.SGD((X, Y), 3, 10, 0.01, momentum=0.99, verbose=False)))
    assert history["cost"][1] > 1.1 * history["cost"][0]
    assert len(caught) == 1 and "training cost grew from" in str(caught[0].message)
    from cbp.training import Watch
    watch = Watch()
    watch.start(net, X, Y, n_batches=100)
    assert watch.epoch(1.0) is None
    assert "grew from 1 in the first epoch to 1.5 in the second" in watch.epoch(1.5)
    assert watch.epoch(9.0) is None            # once: only the second epoch is judged
    few = Watch()
    few.start(net, X, Y, n_batches=10)         # two epochs of 10 steps: not judged
    assert few.epoch(1.0) is None and few.epoch(9.0) is None


def test_good_setups_do_not_warn():
    X, y = _sample(2000)
    for net, eta in [(cbp.Network([784, 30, 10], seed=s), 3.0) for s in range(3)] + [
            (cbp.Network([784, 30, 10], activation="relu", output_activation="softmax",
                         cost="log_likelihood", init="scaled", seed=0), 0.1),
            (cbp.Network([784, 30, 10], cost="cross_entropy", seed=0), 0.5)]:
        assert _training_warnings(lambda: net.SGD((X, y), 3, 10, eta, verbose=False)) == []
    Xr, Yr = regression()
    net = cbp.Network([3, 16, 1], activation="tanh", output_activation="linear", init="scaled",
                      seed=0)
    assert _training_warnings(lambda: net.SGD((Xr, Yr), 3, 10, 0.05, verbose=False)) == []


def test_warnings_are_suppressible():
    import warnings
    X, y = _sample()
    net = cbp.Network([784, 30, 10], seed=0)
    for how in [dict(category=cbp.TrainingWarning), dict(message="the training inputs reach")]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", **how)
            net.SGD((X * 255, y), 1, 10, 3.0, verbose=False)
        assert caught == []


# -- item 8: cbp evaluate judges what cbp train held out ---------------------------------


def test_evaluate_holds_out_what_training_held_out(tmp_path, capsys):
    import gzip
    import struct
    X, y = _sample(50)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 50, 28, 28)
                + np.rint(X * 255).astype(np.uint8).tobytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, 50) + y.astype(np.uint8).tobytes())
    model = tmp_path / "m.npz"
    code, out, err = _run_cli(capsys, "train", "--data", tmp_path, "--epochs", "2", "--save",
                              model)
    assert code == 0, err
    trained = re.search(r"Done after 2 epochs: test accuracy \S+ \((\d+)/10\)", out).group(1)
    code, out, err = _run_cli(capsys, "evaluate", model, "--data", tmp_path)
    assert code == 0, err
    assert re.search(rf"accuracy \S+ \({trained}/10\)", out), out      # was (k/50)
    assert "(t10k only), last 10 held out: the part cbp train holds out" in out
    # The same 10 images, counted afresh.
    held = cbp.load(model).evaluate((np.rint(X[40:] * 255) / 255, y[40:]))
    assert int(trained) == held
    # A single IDX images file: the same rule.
    code, out, err = _run_cli(capsys, "evaluate", model, "--data",
                              tmp_path / "t10k-images-idx3-ubyte.gz")
    assert code == 0, err
    assert re.search(rf"accuracy \S+ \({trained}/10\)", out) and "holds out" in out


# -- item 9: one epoch convention, stated ---------------------------------------------------


def test_epoch_numbering_is_documented(capsys):
    from cbp.cli import build_parser
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "Epochs are counted from 1 here" in " ".join(text.split())
    X, y = _sample(100)
    net = cbp.Network([784, 10, 10], seed=0)
    h = net.SGD((X, y), 2, 10, 3.0, test_data=(X, y))
    assert capsys.readouterr().out.splitlines()[0].startswith("Epoch 0: ")   # network.py's
    assert h["epoch"] == [0, 1]


def test_cli_divergence_names_the_epoch_as_printed(capsys):
    code, out, err = _run_cli(capsys, "train", "--epochs", "3", "--sizes", "784,30,10",
                              "--activation", "linear", "--output-activation", "linear",
                              "--eta", "1000", "--init", "gaussian")
    assert code == 1
    assert re.search(r"training diverged in epoch 1/3, mini-batch \d+ of the epoch", err), err


# -- item 7: datasets say what they return; the plot extra is named both ways -----------


def test_to_network_py_one_hots_with_the_number_of_classes():
    from cbp import datasets
    X = np.arange(12.0).reshape(4, 3) / 11
    data = datasets.to_network_py(X, [0, 2, 1, 2])
    assert [y.shape for _, y in data] == [(3, 1)] * 4            # was (10, 1)
    assert data[1][1].ravel().tolist() == [0, 0, 1]
    assert datasets.to_network_py(X, [0, 1, 1, 0], n_classes=10)[0][1].shape == (10, 1)
    with pytest.raises(ValueError, match=r"outside the range 0\.\.1"):
        datasets.to_network_py(X, [0, 2, 1, 2], n_classes=2)
    # The sample keeps network.py's (10, 1) columns.
    train, test = datasets.load_sample_network_py()
    assert train[0][1].shape == (10, 1) and isinstance(test[0][1], int)
    # A network trains on the converted 3-class list directly.
    net = cbp.Network([3, 4, 3], seed=0)
    net.SGD(data, 1, 2, 0.1, verbose=False)


def test_load_mnist_docstring_says_one_split():
    from cbp import datasets
    doc = " ".join(datasets.load_mnist.__doc__.split())
    assert "One split, not two" in doc and 'kind="t10k"' in doc


def test_missing_matplotlib_names_both_installs(capsys, monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = _run_cli(capsys, "train", "--epochs", "1", "--plot", tmp_path / "c.png")
    assert code == 2
    assert 'pip install "cbp-backprop[plot]"' in err and 'pip install ".[plot]"' in err


# -- item 4: writing into net.weights[l] in place says what to do instead -----------------


def test_in_place_edit_of_a_layer_says_what_to_do():
    net = cbp.Network([3, 4, 2], seed=0)
    before = _params(net)
    for edit in (lambda: net.weights[0].__setitem__((0, 0), 5.0),
                 lambda: net.biases[1].__iadd__(1.0),
                 lambda: np.multiply(net.weights[1], 2, out=net.weights[1])):
        with pytest.raises(ValueError, match=r"read-only snapshots.*net\.weights\[l\] = w"):
            edit()
    assert all(np.array_equal(u, v) for u, v in zip(_params(net), before))
    # What the message says works, and reading stays an ordinary array.
    w = net.weights[0].copy()
    w[0, 0] = 5.0
    net.weights[0] = w
    assert net.weights[0][0, 0] == 5.0
    assert repr(net.weights[0]).startswith("array(")
    assert type(net.weights[0] * 2) is np.ndarray and type(np.asarray(net.biases[0])) is np.ndarray
