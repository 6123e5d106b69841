"""The book's chapter-6 script, conv.py, run on cbp.network3 with the import changed.

conv.py is Python 2 and imports Theano; the port below changes only what
Python 3 and the absence of Theano need (print statements, xrange, the
imports, ``zip`` as a list, and the ensemble's ``theano.function`` block that
rebuilds ``test_mb_predictions``, which ``SGD`` already defines).  To run in
CI it is given tiny data (a generated mnist.pkl.gz and mnist_expanded.pkl.gz
in ../data, as the book's scripts expect) and one epoch and one run per
experiment in place of the book's 60/40 epochs and 3 runs; the ensemble's
literal test-set size (10,000 images in 1,000 mini-batches) becomes the tiny
set's.  The original file is read from ../shared/nielsen, never edited.
"""
import gzip
import pickle
import re
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import cbp.network3
from conftest import NIELSEN

CONV = NIELSEN / "conv.py"
if not CONV.is_file():
    pytest.skip(f"the book's conv.py is not in {CONV.parent}", allow_module_level=True)

N_TEST = 40


def port(text):
    """conv.py for Python 3 and cbp.network3, and for a one-epoch CI run."""
    text = text.replace("import theano.tensor as T\n", "").replace("import theano\n", "")
    text = text.replace("import network3\n", "import cbp.network3 as network3\n")
    text = text.replace("from network3 import", "from cbp.network3 import")
    text = re.sub(r"^(\s*)print (.*)$", r"\1print(\2)", text, flags=re.M)
    text = text.replace("xrange(", "range(")
    # the ensemble's Theano function: SGD has defined net.test_mb_predictions already
    text = re.sub(r"\n        i = T\.lscalar\(\).*?\n            \}\)", "", text, flags=re.S)
    text = text.replace("all_test_predictions = zip(", "all_test_predictions = list(zip(")
    text = text.replace("for net in nets])\n", "for net in nets]))\n")
    # tiny data, one epoch, one run
    text = text.replace("for i in range(1000)]", f"for i in range({N_TEST // 10})]")
    text = text.replace("range(10000)", f"range({N_TEST})").replace("/10000.0", f"/{N_TEST}.0")
    text = re.sub(r"(training_data|expanded_training_data), (60|40), mini_batch_size",
                  r"\1, 1, mini_batch_size", text)
    text = text.replace("for j in range(3):", "for j in range(1):")
    return text


def write_pickle(path, parts):
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)


@pytest.fixture(scope="module")
def conv(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    (root / "data").mkdir()
    (root / "src").mkdir()
    rng = np.random.default_rng(0)
    from cbp import datasets
    (X, y), _ = datasets.load_sample()
    X = X.astype(np.float32)

    def part(lo, n):
        return X[lo:lo + n], y[lo:lo + n].astype(np.int64)
    write_pickle(root / "data" / "mnist.pkl.gz", [part(0, 60), part(100, 20), part(200, N_TEST)])
    write_pickle(root / "data" / "mnist_expanded.pkl.gz",
                 [part(300, 80), part(100, 20), part(200, N_TEST)])
    text = port(CONV.read_text())
    module = types.ModuleType("conv")
    module.__file__ = str(CONV)
    cwd = Path.cwd()
    import os
    os.chdir(root / "src")
    try:
        exec(compile(text, "conv.py", "exec"), module.__dict__)
        yield module
    finally:
        os.chdir(cwd)
    del rng


def lines(capsys):
    return capsys.readouterr().out.splitlines()


def check_run(out, header, runs=1):
    assert out.count(header) == runs, out[:5]
    assert sum(line.startswith("Epoch 0: validation accuracy ") for line in out) == runs
    assert out.count("Finished training network.") == runs
    assert sum(line.startswith("Corresponding test accuracy of ") for line in out) == runs


def test_port_is_python3(conv):
    assert conv.network3 is cbp.network3
    assert "theano" not in conv.__dict__ and "T" not in conv.__dict__


def test_shallow(conv, capsys):
    nets = conv.shallow(n=1, epochs=1)
    check_run(lines(capsys), "A shallow net with 100 hidden neurons")
    assert len(nets) == 1 and nets[0].layers[0].w.get_value().shape == (784, 100)


def test_basic_conv(conv, capsys):
    net = conv.basic_conv(n=1, epochs=1)
    check_run(lines(capsys), "Conv + FC architecture")
    assert net.layers[0].w.get_value().shape == (20, 1, 5, 5)


def test_omit_fc(conv, capsys):
    conv.omit_FC()
    check_run(lines(capsys), "Conv only, no FC")


def test_dbl_conv(conv, capsys):
    net = conv.dbl_conv(activation_fn=cbp.network3.ReLU)
    check_run(lines(capsys), "Conv + Conv + FC architecture")
    assert net.layers[1].w.get_value().shape == (40, 20, 5, 5)


def test_dbl_conv_relu_with_l2(conv, capsys):
    conv.dbl_conv_relu()
    out = lines(capsys)
    assert sum("relu, with regularization" in line for line in out) == 9
    assert out.count("Finished training network.") == 9


def test_expanded_data(conv, capsys):
    net = conv.expanded_data(n=100)
    check_run(lines(capsys), "Training with expanded data, 100 neurons in the FC layer, run num 0")
    assert net.layers[2].w.get_value().shape == (640, 100)


def test_dropout_fc_and_ensemble(conv, capsys):
    nets = conv.double_fc_dropout(0.5, 0.5, 0.5, 3)
    out = lines(capsys)
    assert out.count("Training with expanded data, run num 0") == 1
    assert out.count("Finished training network.") == 3
    error_locations, erroneous = conv.ensemble(nets)
    out = lines(capsys)
    # the vote, recomputed from each net's predictions
    test_y = conv.test_data[1].eval()
    votes = [Counter(p).most_common(1)[0][0] for p in zip(*[
        np.concatenate([net.test_mb_predictions(i) for i in range(N_TEST // 10)])
        for net in nets])]
    wrong = [j for j in range(N_TEST) if votes[j] != test_y[j]]
    assert error_locations == wrong
    assert erroneous == [votes[j] for j in wrong]
    assert out == ["Accuracy is {:.2%}".format(1 - len(wrong) / N_TEST)]
