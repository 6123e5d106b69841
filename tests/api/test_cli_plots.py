"""cbp train --plot-weights / --plot-speed: the book's pictures from the shell."""
import numpy as np
import pytest

import cbp
from cbp.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_weights_and_speed(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    weights, speed, model = tmp_path / "w.png", tmp_path / "s.png", tmp_path / "m.npz"
    code = main(["train", "--epochs", "2", "--sizes", "784,9,9,10", "--eta", "1",
                 "--plot-weights", str(weights), "--plot-speed", str(speed),
                 "--save", str(model)])
    out = capsys.readouterr().out
    assert code == 0
    assert weights.read_bytes().startswith(PNG) and speed.read_bytes().startswith(PNG)
    assert f"Plotted the first layer's weights to {weights}" in out
    assert f"Plotted the speed of learning per layer to {speed}" in out
    # The same run, reproduced in Python, records what the figure draws.
    net = cbp.load(model)
    (X, y), (Xt, yt) = cbp.datasets.load_sample()
    again = cbp.Network([784, 9, 9, 10], seed=0)
    h = cbp.SGD(1.0, mini_batch_size=10).run(again, (X, y), 2, monitor_learning_speed=True)
    for a, b in zip(again.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    assert len(h["learning_speed"]) == 2 and len(h["learning_speed"][0]) == 3


@pytest.mark.parametrize("flags, words", [
    (["--sizes", "10,4,10", "--plot-weights", "w.png"], "not a square number"),
    (["--sizes", "784,10", "--plot-speed", "s.png"], "no hidden layer"),
    (["--plot-speed", "missing/s.png"], "does not exist"),
    (["--plot-weights", "missing/w.png"], "does not exist"),
])
def test_refused_before_training(tmp_path, capsys, monkeypatch, flags, words):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "1", "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert "cbp: error" in err and words in err
    assert list(tmp_path.iterdir()) == []
