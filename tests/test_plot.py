"""cbp.plot: learning curves to a PNG, and a clear message without matplotlib."""
import sys

import numpy as np
import pytest

import cbp
from cbp.plot import plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 4)), rng.integers(0, 3, 60)
    net = cbp.Network([4, 6, 3], seed=0)
    return net.SGD((X[:40], y[:40]), 3, 5, 2.0, test_data=(X[40:], y[40:]), verbose=False)


def test_png_with_accuracy(tmp_path, history):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    fig = plot_history(history, path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "test accuracy (%)"
    # Accuracy is plotted in percent, epochs from 1.
    x, acc = fig.axes[1].lines[0].get_data()
    np.testing.assert_allclose(acc, np.array(history["accuracy"]) * 100)
    assert list(x) == [1, 2, 3]


def test_png_without_accuracy(tmp_path, history):
    pytest.importorskip("matplotlib")
    bare = {k: history[k] for k in ("epoch", "cost", "seconds")}
    path = tmp_path / "cost.png"
    fig = plot_history(bare, str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert len(fig.axes) == 1


def test_into_given_axes(history):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_history(history, ax=ax) is fig
    assert len(fig.axes) == 2                  # the accuracy went on a twin axis
    assert ax.get_ylabel() == "mean cost C"


def test_without_matplotlib(monkeypatch, tmp_path, history):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError) as info:
        plot_history(history, tmp_path / "x.png")
    assert str(info.value) == "plotting needs matplotlib: pip install 'cbp[plot]'"
    assert not (tmp_path / "x.png").exists()


def test_bad_histories():
    with pytest.raises(TypeError, match="history"):
        plot_history([0.1, 0.2])
    with pytest.raises(ValueError, match="cost"):
        plot_history({"epoch": [0]})
    with pytest.raises(ValueError, match="no epochs"):
        plot_history({"epoch": [], "cost": [], "seconds": []})
    with pytest.raises(ValueError, match="accuracy"):
        plot_history({"epoch": [0, 1], "cost": [0.2, 0.1], "accuracy": [0.5]})
    with pytest.raises(TypeError, match="cost"):
        plot_history({"epoch": [0], "cost": ["high"]})
