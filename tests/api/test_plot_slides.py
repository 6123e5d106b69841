"""Plots for slides: fontsize, dpi and ax; the figure a notebook cell displays once."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import cbp  # noqa: E402
from cbp.plot import plot_history, plot_learning_speed  # noqa: E402


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    X, y = rng.random((120, 4)), rng.integers(0, 3, 120)
    net = cbp.Network([4, 5, 3, 3], seed=0)
    return net.SGD((X, y), 3, 10, 1.0, test_data=(X, y), verbose=False,
                   monitor_learning_speed=True)


def test_fontsize_and_dpi(tmp_path, history):
    small = plot_history(history)
    big = plot_history(history, tmp_path / "slide.png", fontsize=20, dpi=50)
    assert big.axes[0].title.get_fontsize() > 1.5 * small.axes[0].title.get_fontsize()
    assert big.axes[0].xaxis.label.get_fontsize() == pytest.approx(20)
    assert big.dpi == 50
    import struct
    data = (tmp_path / "slide.png").read_bytes()
    width = struct.unpack(">I", data[16:20])[0]
    assert width == int(round(big.get_figwidth() * 50))
    assert matplotlib.rcParams["font.size"] == 10            # left as it was
    speed = plot_learning_speed(history, fontsize=18, dpi=60, measure="norm")
    assert speed.axes[0].xaxis.label.get_fontsize() == pytest.approx(18)
    assert speed.axes[0].get_ylabel() == "‖mean ∂C/∂b‖"
    assert plot_learning_speed(history, measure="mean_abs").axes[0].get_ylabel() == \
        "mean |∂C/∂b|"
    plt.close("all")


@pytest.mark.parametrize("bad", [0, -3, "big", True, 1e6])
def test_bad_fontsize_and_dpi(history, bad):
    with pytest.raises(ValueError, match="fontsize"):
        plot_history(history, fontsize=bad)
    with pytest.raises(ValueError, match="dpi"):
        plot_history(history, dpi=bad)


def test_ax_for_a_slide_layout(history):
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_history(history, ax=a, fontsize=16) is fig
    assert plot_learning_speed(history, ax=b) is fig
    assert a.lines and b.lines
    plt.close("all")
