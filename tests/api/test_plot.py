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
    # Both ways of installing the extra: from an index and from a checkout.
    assert str(info.value).startswith("plotting needs matplotlib: ")
    assert 'pip install "cbp-backprop[plot]"' in str(info.value)
    assert 'pip install ".[plot]"' in str(info.value)
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


# -- the book's pictures --------------------------------------------------------

@pytest.fixture(scope="module")
def image_net():
    """A 16-pixel (4×4) network trained a little, with its data and speed history."""
    rng = np.random.default_rng(5)
    X = rng.random((120, 16))
    y = (X[:, :8].sum(axis=1) > X[:, 8:].sum(axis=1)).astype(int) + 2 * (X[:, 0] > 0.5)
    net = cbp.Network([16, 9, 7, 4], seed=1)
    h = net.SGD((X, y), 3, 10, 1.0, verbose=False, monitor_learning_speed=True)
    return net, X, y, h


def test_weights_mosaic(tmp_path, image_net):
    pytest.importorskip("matplotlib")
    from cbp.plot import plot_weights
    net, *_ = image_net
    path = tmp_path / "w.png"
    fig = plot_weights(net, path=path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = fig.axes[0].images[0]
    mosaic = image.get_array()
    # 9 units of 4×4 in a 3×3 grid with one-pixel gaps.
    assert mosaic.shape == (3 * 5 - 1, 3 * 5 - 1)
    W = net.weights[0]
    np.testing.assert_array_equal(np.asarray(mosaic[0:4, 5:9]), W[1].reshape(4, 4))
    np.testing.assert_array_equal(np.asarray(mosaic[10:14, 10:14]), W[8].reshape(4, 4))
    m = np.abs(W).max()
    assert image.get_clim() == (-m, m)          # one symmetric scale for every unit
    assert np.ma.getmaskarray(mosaic)[4, :].all()   # the gaps are blank (NaN, masked)
    # Deeper layers too, when their input is a square: 9 inputs of 3×3 for 7 units.
    inner = plot_weights(net, layer=1).axes[0].images[0].get_array()
    assert inner.shape == (3 * 4 - 1, 3 * 4 - 1)


def test_weights_refuses_non_image_layers(tmp_path, image_net):
    from cbp.plot import plot_weights
    net, *_ = image_net
    path = tmp_path / "w.png"
    with pytest.raises(ValueError, match="layer 2 has 7 inputs, not a square number"):
        plot_weights(net, layer=2, path=path)
    assert not path.exists()
    with pytest.raises(ValueError, match="not a square number"):
        plot_weights(cbp.Network([10, 3, 2]))
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\]"):
        plot_weights(net, layer=3)
    with pytest.raises(TypeError, match="layer"):
        plot_weights(net, layer=1.0)
    with pytest.raises(TypeError, match="cbp.Network"):
        plot_weights([np.zeros((3, 4))])


def test_learning_speed_plot(tmp_path, image_net):
    pytest.importorskip("matplotlib")
    from cbp.plot import plot_learning_speed
    *_, h = image_net
    path = tmp_path / "speed.png"
    fig = plot_learning_speed(h, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == ["hidden layer 1", "hidden layer 2"]
    x, v = ax.lines[1].get_data()
    assert list(x) == [0, 1, 2]        # measured before each epoch: 0 is the untrained net
    np.testing.assert_allclose(v, [row[1] for row in h["learning_speed"]])
    fig = plot_learning_speed(h, include_output=True)
    assert fig.axes[0].lines[-1].get_label() == "output layer"


def test_learning_speed_bad_histories(tmp_path, image_net):
    from cbp.plot import plot_learning_speed
    *_, h = image_net
    with pytest.raises(ValueError, match="monitor_learning_speed=True"):
        plot_learning_speed({k: v for k, v in h.items() if k != "learning_speed"})
    with pytest.raises(ValueError, match="no epochs"):
        plot_learning_speed({"learning_speed": []})
    with pytest.raises(ValueError, match=r"\[1\] has 2 layers"):
        plot_learning_speed({"learning_speed": [[1.0, 2.0, 3.0], [1.0, 2.0]]})
    with pytest.raises(ValueError, match="no hidden layer"):
        plot_learning_speed({"learning_speed": [[0.1], [0.2]]})
    with pytest.raises(TypeError, match="numbers"):
        plot_learning_speed({"learning_speed": [[0.1, "fast"]]})
    with pytest.raises(TypeError, match="history"):
        plot_learning_speed([[0.1, 0.2]])


def test_misclassified(tmp_path, image_net):
    pytest.importorskip("matplotlib")
    from cbp.plot import plot_misclassified
    net, X, y, _ = image_net
    out = net.feedforward(X)
    wrong = np.flatnonzero(out.argmax(axis=1) != y)
    assert wrong.size >= 3
    path = tmp_path / "worst.png"
    fig = plot_misclassified(net, X, y, n=3, cols=2, path=path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 3
    worst = wrong[np.argsort(out[wrong, y[wrong]], kind="stable")][:3]
    for ax, k in zip(shown, worst):
        np.testing.assert_array_equal(ax.images[0].get_array(), X[k].reshape(4, 4))
        assert ax.get_title().startswith(f"true {y[k]}, got {out[k].argmax()}")
    # The list-of-pairs form of network.py gives the same picture.
    fig2 = plot_misclassified(net, list(zip(X, y)), n=3)
    assert [a.get_title() for a in fig2.axes if a.images] == [a.get_title() for a in shown]


def test_misclassified_bad_input(tmp_path, image_net):
    pytest.importorskip("matplotlib")
    from cbp.plot import plot_misclassified
    net, X, y, _ = image_net
    predicted = net.feedforward(X).argmax(axis=1)
    path = tmp_path / "none.png"
    with pytest.raises(ValueError, match="no misclassified examples"):
        plot_misclassified(net, X, predicted, path=path)
    assert not path.exists()
    with pytest.raises(ValueError, match="not a square number"):
        plot_misclassified(cbp.Network([10, 3]), np.zeros((2, 10)), [0, 1])
    with pytest.raises(ValueError, match="per example"):
        plot_misclassified(net, X, y[:-1])
    with pytest.raises(ValueError, match="n must be at least 1"):
        plot_misclassified(net, X, y, n=0)


def test_missing_directory_writes_nothing(tmp_path, image_net, history):
    from cbp.plot import (plot_history, plot_learning_speed, plot_misclassified,
                          plot_weights)
    net, X, y, h = image_net
    missing = tmp_path / "nope" / "x.png"
    calls = [lambda: plot_history(history, missing), lambda: plot_weights(net, path=missing),
             lambda: plot_learning_speed(h, missing),
             lambda: plot_misclassified(net, X, y, path=missing)]
    for call in calls:
        with pytest.raises(ValueError, match="does not exist"):
            call()
    assert not (tmp_path / "nope").exists()
    with pytest.raises(ValueError, match="is a directory"):
        plot_history(history, tmp_path)


def test_failed_render_leaves_no_file(tmp_path, history):
    """An unknown format fails inside savefig: no target, no temporary left behind."""
    pytest.importorskip("matplotlib")
    target = tmp_path / "curves.nosuchformat"
    with pytest.raises(ValueError):
        plot_history(history, target)
    assert list(tmp_path.iterdir()) == []
    # An existing file is replaced whole, never truncated first.
    good = tmp_path / "curves.png"
    plot_history(history, good)
    before = good.read_bytes()
    with pytest.raises(ValueError):
        plot_history({"cost": [0.1], "accuracy": [0.5, 0.6]}, good)
    assert good.read_bytes() == before


def test_figures_are_written_to_regular_files_only(tmp_path, history):
    """As model files: a FIFO is refused without blocking, a symlink's target replaced."""
    pytest.importorskip("matplotlib")
    import os
    fifo = tmp_path / "curves.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="FIFO"):
        plot_history(history, fifo)
    real = tmp_path / "real.png"
    link = tmp_path / "link.png"
    link.symlink_to(real)
    plot_history(history, link)
    assert link.is_symlink() and real.read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "link.png", "real.png"]


def test_several_histories(tmp_path, history):
    pytest.importorskip("matplotlib")
    other = {k: list(v) for k, v in history.items()}
    other["cost"] = [c / 2 for c in other["cost"]]
    path = tmp_path / "sweep.png"
    fig = plot_history([history, other], path, labels=["eta 2", "eta 1"])
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    cost_ax, acc_ax = fig.axes
    assert [t.get_text() for t in cost_ax.get_legend().get_texts()] == ["eta 2", "eta 1"]
    solid = [line for line in cost_ax.lines if line.get_linestyle() == "-"]
    np.testing.assert_allclose(solid[1].get_ydata(), other["cost"])
    assert len(acc_ax.lines) == 2
    with pytest.raises(ValueError, match="labels has 1 entries for 2"):
        plot_history([history, other], labels=["one"])
    with pytest.raises(ValueError, match="labels is for several"):
        plot_history(history, labels=["one"])
    with pytest.raises(ValueError, match=r"history\[1\] must hold a 'cost'"):
        plot_history([history, {"epoch": [0]}])
    with pytest.raises(ValueError, match="empty list"):
        plot_history([])


def test_import_cbp_never_imports_matplotlib():
    """matplotlib is an optional extra: importing cbp and cbp.plot must not load it."""
    import subprocess
    code = ("import sys, cbp, cbp.plot, cbp.network, cbp.network2, cbp.mnist_loader; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_learning_speed_ignores_non_positive_on_log_axis():
    """A zero speed (a dead layer) is left out of the log plot rather than breaking it."""
    pytest.importorskip("matplotlib")
    from cbp.plot import plot_learning_speed
    fig = plot_learning_speed({"learning_speed": [[0.0, 1e-3, 1e-2], [1e-4, 2e-3, 1e-2]]})
    y = fig.axes[0].lines[0].get_ydata()
    assert np.isnan(y[0]) and y[1] == 1e-4
