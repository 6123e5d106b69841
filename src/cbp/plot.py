"""Learning curves from a training history (needs matplotlib: ``pip install 'cbp[plot]'``).

>>> history = net.SGD(training_data, 10, 10, 3.0, test_data=test_data)
>>> cbp.plot_history(history, "curves.png")
"""
import numbers
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["plot_history"]

_NEEDS = "plotting needs matplotlib: pip install 'cbp[plot]'"


def _series(history, key, n):
    values = history[key]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"history[{key!r}] must be a list of numbers; got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"history[{key!r}] has {len(values)} entries but history['cost'] has {n}")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"history[{key!r}] must hold numbers; got {type(v).__name__} {v!r}")
    return np.asarray(values, dtype=np.float64)


def _check(history):
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be the dict returned by training; "
                        f"got {type(history).__name__}")
    if "cost" not in history:
        raise ValueError("history must hold a 'cost' list (the dict returned by training)")
    n = len(history["cost"]) if hasattr(history["cost"], "__len__") else -1
    if n == 0:
        raise ValueError("history holds no epochs: nothing to plot")
    cost = _series(history, "cost", n)
    epochs = (_series(history, "epoch", n) + 1 if "epoch" in history
              else np.arange(1, n + 1, dtype=np.float64))
    test_cost = _series(history, "test_cost", n) if "test_cost" in history else None
    accuracy = _series(history, "accuracy", n) * 100 if "accuracy" in history else None
    return epochs, cost, test_cost, accuracy


def plot_history(history, path=None, ax=None):
    """Plot the cost per epoch and, when recorded, the test accuracy.

    Parameters
    ----------
    history : dict
        As returned by :meth:`cbp.Network.SGD` / :meth:`cbp.SGD.run`: lists
        ``epoch`` (counted from 0), ``cost``, ``seconds`` and optionally
        ``accuracy`` (a fraction), ``test_cost``, ``correct``.  Epoch k is
        plotted at k + 1: the value after that many epochs of training.
    path : str or os.PathLike, optional
        Save the figure there (the format follows the extension: .png, .pdf,
        .svg...).  Rendering for a file needs no display.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: the cost on ``ax`` and the accuracy on a twin
        y axis.  Without ``ax``, a new figure gets one panel for the cost and,
        with test accuracy, a second one beside it.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed.
    """
    epochs, cost, test_cost, accuracy = _check(history)
    if path is not None and (isinstance(path, bytes) or not isinstance(path, (str, os.PathLike))):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    try:
        import matplotlib  # noqa: F401  (first: a hidden matplotlib must fail here)
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError(_NEEDS) from None

    if ax is not None:
        fig = ax.figure
        cost_ax, acc_ax = ax, (ax.twinx() if accuracy is not None else None)
    else:
        panels = 2 if accuracy is not None else 1
        size = (5.0 * panels + 0.5, 3.8)
        if path is not None:
            # A bare Figure renders with the Agg canvas: no pyplot, no display,
            # and the process's chosen backend is left alone.
            fig = Figure(figsize=size, layout="constrained")
        else:
            import matplotlib.pyplot as plt
            fig = plt.figure(figsize=size, layout="constrained")
        axes = fig.subplots(1, panels, squeeze=False)[0]
        cost_ax = axes[0]
        acc_ax = axes[1] if panels == 2 else None

    marker = "o" if len(epochs) <= 30 else None
    cost_ax.plot(epochs, cost, marker=marker, ms=3, color="C0", label="training (during epoch)")
    if test_cost is not None and np.isfinite(test_cost).any():
        cost_ax.plot(epochs, test_cost, marker=marker, ms=3, color="C1", label="test")
    cost_ax.set_xlabel("epoch")
    cost_ax.set_ylabel("mean cost C")
    cost_ax.set_title("Cost")
    cost_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    cost_ax.grid(True, alpha=0.3)
    if accuracy is not None:
        style = dict(marker=marker, ms=3, color="C2", label="test accuracy")
        acc_ax.plot(epochs, accuracy, **style)
        acc_ax.set_ylabel("test accuracy (%)")
        if ax is None:
            acc_ax.set_xlabel("epoch")
            acc_ax.set_title("Test accuracy")
            acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            acc_ax.grid(True, alpha=0.3)
        finite = accuracy[np.isfinite(accuracy)]
        if finite.size:
            best = int(np.nanargmax(accuracy))
            acc_ax.annotate(f"best {accuracy[best]:.2f}%", (epochs[best], accuracy[best]),
                            textcoords="offset points", xytext=(0, 5), va="bottom",
                            ha="right" if best == len(epochs) - 1 and best else "center",
                            fontsize=8, color="C2")
            low, high = acc_ax.get_ylim()
            # Head room for the label above the best point.
            acc_ax.set_ylim(max(low, 0.0), min(high + 0.08 * (high - low), 101.0))
    handles, labels = cost_ax.get_legend_handles_labels()
    if ax is not None and acc_ax is not None:
        h2, l2 = acc_ax.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if ax is None:
        cost_ax.legend(handles, labels, fontsize=8, loc="upper right")
    else:
        # Rising accuracy crosses the falling cost: keep the legend off the lines.
        cost_ax.set_title(None)
        cost_ax.legend(handles, labels, fontsize=8, loc="lower center", ncols=3,
                       bbox_to_anchor=(0.5, 1.0), frameon=False)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
    return fig
