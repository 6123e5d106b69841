"""The book's pictures in one call each (needs matplotlib: ``pip install "cbp-backprop[plot]"``).

>>> history = net.SGD(training_data, 10, 10, 3.0, test_data=test_data,
...                   monitor_learning_speed=True)
>>> cbp.plot.plot_history(history, "curves.png")
>>> cbp.plot.plot_weights(net, path="weights.png")
>>> cbp.plot.plot_learning_speed(history, "speed.png")
>>> cbp.plot.plot_misclassified(net, X_test, y_test, path="worst.png")

Every function returns the matplotlib Figure and, given ``path``, writes the
image atomically (a temporary file in the same directory, then a rename), so a
failure never leaves a half-written file.  Importing this module does not
import matplotlib.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import numpy.typing as npt

from . import _data, _figures

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .model import Network

__all__ = ["plot_history", "plot_weights", "plot_learning_speed", "plot_misclassified"]

PathLike = Union[str, "os.PathLike[str]"]


# -- history ------------------------------------------------------------------


def _series(history, key, n):
    values = history[key]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"history[{key!r}] must be a list of numbers; got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"history[{key!r}] has {len(values)} entries for {n} epochs")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"history[{key!r}] must hold numbers; got {type(v).__name__} {v!r}")
    return np.asarray(values, dtype=np.float64)


def _check_mapping(history, name):
    if not isinstance(history, Mapping):
        raise TypeError(f"{name} must be the dict returned by training; "
                        f"got {type(history).__name__}")


# The series a history may hold, with their legend names: costs, then
# accuracies (fractions).  ``cost`` is the mean over the epoch as training saw
# it; network2's monitors (``training_cost``...) are measured after the epoch.
_COST_SERIES = (("cost", "training (during epoch)"), ("training_cost", "training"),
                ("evaluation_cost", "evaluation"), ("test_cost", "test"))
_ACCURACY_SERIES = (("training_accuracy", "training"), ("evaluation_accuracy", "evaluation"),
                    ("accuracy", "test"))


def _check(history, name="history"):
    """(epochs, {label: cost series}, {label: accuracy % series}) of one history."""
    _check_mapping(history, name)
    present = [key for key, _ in _COST_SERIES + _ACCURACY_SERIES if key in history]
    if not present:
        raise ValueError(f"{name} must hold a 'cost' list (the dict returned by training) "
                         "or network2's monitored lists")
    first = history["epoch"] if "epoch" in history else history[present[0]]
    n = len(first) if hasattr(first, "__len__") else -1
    if n == 0:
        raise ValueError(f"{name} holds no epochs: nothing to plot")
    if n < 0:
        raise TypeError(f"{name}['epoch'] must be a list of numbers")
    costs = {label: _series(history, key, n) for key, label in _COST_SERIES
             if key in history and len(history[key])}
    accuracies = {label: _series(history, key, n) * 100 for key, label in _ACCURACY_SERIES
                  if key in history and len(history[key])}
    if not costs and not accuracies:
        raise ValueError(f"{name} holds no cost or accuracy to plot")
    return _epochs(history, n), costs, accuracies


def _epochs(history, n):
    # Epoch k is drawn at k + 1: the value after that many epochs of training.
    return (_series(history, "epoch", n) + 1 if "epoch" in history
            else np.arange(1, n + 1, dtype=np.float64))


def _histories(history, labels):
    """[(label, checked series)] for one history or a sequence of them."""
    if isinstance(history, Mapping):
        if labels is not None:
            raise ValueError("labels is for several histories; pass a list of histories")
        return None, [_check(history)]
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(f"history must be the dict returned by training, or a list of them; "
                        f"got {type(history).__name__}")
    runs = list(history)
    if not runs:
        raise ValueError("history is an empty list: nothing to plot")
    if not all(isinstance(h, Mapping) for h in runs):
        raise TypeError("history must be the dict returned by training, or a list of them; "
                        f"got a list holding {type(next(h for h in runs if not isinstance(h, Mapping))).__name__}")
    if labels is None:
        labels = [f"run {k + 1}" for k in range(len(runs))]
    elif isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of strings; got {type(labels).__name__}")
    labels = [str(s) for s in labels]
    if len(labels) != len(runs):
        raise ValueError(f"labels has {len(labels)} entries for {len(runs)} histories")
    return labels, [_check(h, f"history[{k}]") for k, h in enumerate(runs)]


def plot_history(history: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]],
                 path: Optional[PathLike] = None, ax: Optional[Axes] = None,
                 labels: Optional[Sequence[str]] = None, fontsize: Optional[float] = None,
                 dpi: float = 120) -> Figure:
    """Plot the cost per epoch and, when recorded, the test accuracy.

    Parameters
    ----------
    history : dict or list of dict
        As returned by :meth:`cbp.Network.SGD` / :meth:`cbp.SGD.run`: lists
        ``epoch`` (counted from 0), ``cost``, ``seconds`` and optionally
        ``accuracy`` (a fraction), ``test_cost``, ``correct``.  Epoch k is
        plotted at k + 1: the value after that many epochs of training.
        A list of histories (a sweep) draws one colour per run, with a legend.
    path : str or os.PathLike, optional
        Save the figure there (the format follows the extension: .png, .pdf,
        .svg...).  Rendering for a file needs no display.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes: the cost on ``ax`` and the accuracy on a twin
        y axis.  Without ``ax``, a new figure gets one panel for the cost and,
        with test accuracy, a second one beside it.
    labels : list of str, optional
        With several histories, their names in the legend (default: run 1,
        run 2, ...).
    fontsize : float, optional
        Base size of the text in points (matplotlib's default, 10, if not
        given); 16 to 20 reads well on slides.
    dpi : float
        Resolution of the figure and of the file written.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.  A notebook cell ending in the call shows it
        once.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a history lacks the ``cost`` series or its series disagree in
        length, or the directory of ``path`` does not exist.

    See Also
    --------
    plot_learning_speed : The speed of learning of each layer.

    Examples
    --------
    >>> fig = plot_history([h1, h2], labels=["eta 3", "eta 0.5"])  # doctest: +SKIP
    """
    names, runs = _histories(history, labels)
    path = _figures.check_path(path)
    dpi = _figures.check_dpi(dpi)
    _figures.matplotlib_figure()
    with _figures.style(fontsize):
        if names is None:
            epochs, costs, accuracies = runs[0]
            fig = _plot_one(epochs, costs, accuracies, path, ax, dpi)
        else:
            fig = _plot_many(names, runs, path, ax, dpi)
    _figures.save(fig, path, dpi)
    return fig


def _axes_pair(ax, with_cost, with_accuracy, path, dpi=None):
    if ax is not None:
        if with_cost and with_accuracy:
            return _figures.figure_of(ax), ax, ax.twinx()
        return _figures.figure_of(ax), (ax if with_cost else None), (None if with_cost else ax)
    panels = int(with_cost) + int(with_accuracy)
    fig = _figures.new_figure((5.0 * panels + 0.5, 3.8), path, dpi)
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    return fig, (axes.pop(0) if with_cost else None), (axes.pop(0) if with_accuracy else None)


def _style_axes(cost_ax, acc_ax, own, which=()):
    from matplotlib.ticker import MaxNLocator
    only = list(which)[0] if len(set(which)) == 1 else None
    acc_label = f"{only} accuracy (%)" if only else "accuracy (%)"
    acc_title = f"{only.capitalize()} accuracy" if only else "Accuracy"
    for axis, ylabel, title in ((cost_ax, "mean cost C", "Cost"),
                                (acc_ax, acc_label, acc_title)):
        if axis is None:
            continue
        axis.set_ylabel(ylabel)
        if own or axis is cost_ax or cost_ax is None:
            axis.set_xlabel("epoch")
            axis.set_title(title)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(True, alpha=0.3)


def _plot_one(epochs, costs, accuracies, path, ax, dpi):
    fig, cost_ax, acc_ax = _axes_pair(ax, bool(costs), bool(accuracies), path, dpi)
    marker = "o" if len(epochs) <= 30 else None
    colour = 0
    for label, values in costs.items():
        if np.isfinite(values).any():
            cost_ax.plot(epochs, values, marker=marker, ms=3, color=f"C{colour}",
                         label=f"{label} cost" if ax is not None and acc_ax else label)
        colour += 1
    _style_axes(cost_ax, acc_ax, ax is None, accuracies)
    for label, accuracy in accuracies.items():
        colour += 1
        acc_ax.plot(epochs, accuracy, marker=marker, ms=3, color=f"C{colour}",
                    label=f"{label} accuracy")
        finite = accuracy[np.isfinite(accuracy)]
        if finite.size and label in ("test", "evaluation"):
            best = int(np.nanargmax(accuracy))
            acc_ax.annotate(f"best {accuracy[best]:.2f}%", (epochs[best], accuracy[best]),
                            textcoords="offset points", xytext=(0, 5), va="bottom",
                            ha="right" if best == len(epochs) - 1 and best else "center",
                            fontsize="small", color=f"C{colour}")
    if acc_ax is not None:
        low, high = acc_ax.get_ylim()
        # Head room for the label above the best point.
        acc_ax.set_ylim(max(low, 0.0), min(high + 0.08 * (high - low), 101.0))
    if ax is None:
        for axis in (cost_ax, acc_ax):
            if axis is not None:
                axis.legend(fontsize="small", loc="best")
    else:
        handles, labels = [], []
        for axis in (cost_ax, acc_ax):
            if axis is not None:
                h, l = axis.get_legend_handles_labels()
                handles, labels = handles + h, labels + l
        # Rising accuracy crosses the falling cost: keep the legend off the lines.
        main = cost_ax if cost_ax is not None else acc_ax
        main.set_title(None)
        main.legend(handles, labels, fontsize="small", loc="lower center", ncols=3,
                    bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def _plot_many(names, runs, path, ax, dpi):
    with_cost = any(r[1] for r in runs)
    with_accuracy = any(r[2] for r in runs)
    fig, cost_ax, acc_ax = _axes_pair(ax, with_cost, with_accuracy, path, dpi)
    styles = {}
    for k, (name, (epochs, costs, accuracies)) in enumerate(zip(names, runs)):
        marker = "o" if len(epochs) <= 30 else None
        color = f"C{k % 10}"
        for j, (label, values) in enumerate(costs.items()):
            if np.isfinite(values).any():
                styles[label] = ("-", "--", ":", "-.")[j % 4]
                cost_ax.plot(epochs, values, marker=marker if j == 0 else None, ms=3,
                             color=color, ls=styles[label], label=name if j == 0 else None)
        for j, (label, values) in enumerate(accuracies.items()):
            acc_ax.plot(epochs, values, marker=marker if j == 0 else None, ms=3, color=color,
                        ls=(":" if ax is not None and cost_ax is not None
                            else ("-", "--", ":")[j % 3]),
                        label=name if j == 0 else None)
    _style_axes(cost_ax, acc_ax, ax is None, [k for r in runs for k in r[2]])
    if cost_ax is not None:
        if len(styles) > 1:
            names = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dot"}
            cost_ax.set_title("Cost: " + ", ".join(f"{label} ({names[ls]})"
                                                   for label, ls in styles.items()),
                              fontsize="small")
        cost_ax.legend(fontsize="small", loc="upper right")
    if acc_ax is not None and (ax is None or cost_ax is None):
        acc_ax.legend(fontsize="small", loc="lower right")
    return fig


# -- weights ------------------------------------------------------------------


def _mosaic(images, side, cols):
    """Images (n, side*side) tiled cols wide with one-pixel gaps (NaN)."""
    n = images.shape[0]
    rows = -(-n // cols)
    out = np.full((rows * (side + 1) - 1, cols * (side + 1) - 1), np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (side + 1):r * (side + 1) + side,
            c * (side + 1):c * (side + 1) + side] = images[k].reshape(side, side)
    return out


def plot_weights(net: Network, layer: int = 0, path: Optional[PathLike] = None,
                 ax: Optional[Axes] = None, cmap: str = "RdBu_r") -> Figure:
    """Show each unit's incoming weights as a square image, one colour scale for all.

    Parameters
    ----------
    net : cbp.Network
        A network whose layer ``layer`` takes a square number of inputs
        (784 = 28 × 28 for MNIST's first layer).
    layer : int
        Which weight matrix, as an index into ``net.weights``: 0 is W^2, the
        weights into layer 2, the first hidden layer (cbp numbers layers
        from the input layer 1, as the notes and the trace do).
    path : str or os.PathLike, optional
        Save the figure there (written atomically).
    ax : matplotlib.axes.Axes, optional
        Draw the mosaic into these axes (and its colour bar beside them).
    cmap : str
        A diverging colormap: red for positive, blue for negative weights.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Raises
    ------
    ValueError
        If the layer's input is not a square number of pixels, ``layer`` is
        out of range, or the directory of ``path`` does not exist.

    Notes
    -----
    One symmetric colour scale is shared by every unit (from −m to m, m the
    largest absolute weight of the layer), so a white pixel is a zero weight
    and images can be compared with each other.
    """
    _figures.check_net(net)
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, numbers.Integral):
        raise TypeError(f"layer must be an integer; got {type(layer).__name__}")
    n_matrices = net.num_layers - 1
    if not 0 <= layer < n_matrices:
        raise ValueError(f"layer must be in [0, {n_matrices - 1}] for a network with "
                         f"{n_matrices} weight matrices; got {layer}")
    W = np.asarray(net.weights[int(layer)], dtype=np.float64)
    side = _figures.side(W.shape[1], f"layer {layer}")
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be the name of a matplotlib colormap; got {type(cmap).__name__}")
    path = _figures.check_path(path)
    _figures.matplotlib_figure()
    import matplotlib
    if cmap not in matplotlib.colormaps:
        raise ValueError(f"cmap {cmap!r} is not a matplotlib colormap")
    n_units = W.shape[0]
    cols = math.ceil(math.sqrt(n_units))
    m = float(np.max(np.abs(W))) or 1.0
    if ax is None:
        rows = -(-n_units // cols)
        width = min(10.0, 1.0 + 0.9 * cols)
        fig = _figures.new_figure((width + 0.8, max(2.0, width * rows / cols)), path)
        ax = fig.add_subplot()
    fig = _figures.figure_of(ax)
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    image = ax.imshow(_mosaic(W, side, cols), cmap=colours, vmin=-m, vmax=m,
                      interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"W^{layer + 2} = net.weights[{layer}]: incoming weights of the "
                 f"{n_units} units of layer {layer + 2} ({side}×{side} each)",
                 fontsize="medium")
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    _figures.save(fig, path)
    return fig


# -- learning speed -----------------------------------------------------------


def _speeds(history):
    _check_mapping(history, "history")
    if "learning_speed" not in history:
        raise ValueError("history has no 'learning_speed' series: train with "
                         "monitor_learning_speed=True")
    rows = history["learning_speed"]
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__len__"):
        raise TypeError("history['learning_speed'] must be a list (per epoch) of lists "
                        f"(per layer); got {type(rows).__name__}")
    if len(rows) == 0:
        raise ValueError("history['learning_speed'] holds no epochs: nothing to plot")
    width = None
    for k, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(f"history['learning_speed'][{k}] must be a list of numbers, "
                            f"one per layer; got {type(row).__name__}")
        if width is None:
            width = len(row)
        if len(row) != width or width == 0:
            raise ValueError(f"history['learning_speed'][{k}] has {len(row)} layers; "
                             f"epoch 0 has {width}")
        for v in row:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError("history['learning_speed'] must hold numbers; "
                                f"got {type(v).__name__} {v!r}")
    speeds = np.asarray(rows, dtype=np.float64)
    # Row j is measured before epoch j: after j epochs of training (0: untrained).
    epochs = (_series(history, "epoch", len(rows)) if "epoch" in history and
              len(history["epoch"]) == len(rows) else np.arange(len(rows), dtype=np.float64))
    return epochs, speeds


def plot_learning_speed(history: Mapping[str, Any], path: Optional[PathLike] = None,
                        ax: Optional[Axes] = None, include_output: bool = False,
                        measure: str = "norm", fontsize: Optional[float] = None,
                        dpi: float = 120) -> Figure:
    """Plot the speed of learning of each hidden layer per epoch (chapter 5).

    The speed of layer l is the book's ‖(1/n) Σ_x ∂C_x/∂b^l‖ (or the mean of
    its absolute entries), recorded by training with
    ``monitor_learning_speed=True`` (or ``'mean_abs'``) before each epoch: the
    curve starts at epoch 0, the untrained network.  In a deep sigmoid
    network the early layers learn much more slowly than the later ones: the
    vanishing gradient.  Hidden layer k is layer k + 1 in cbp's numbering
    (input layer 1).

    Parameters
    ----------
    history : dict
        As returned by :meth:`cbp.Network.SGD` with
        ``monitor_learning_speed=True``.
    path : str or os.PathLike, optional
        Save the figure there (written atomically).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes.
    include_output : bool
        Also draw the output layer.
    measure : {'norm', 'mean_abs'}
        The measure the history holds (for the axis label): the value given
        to ``monitor_learning_speed`` (``True`` is ``'norm'``).
    fontsize : float, optional
        Base size of the text in points (for slides: 16 to 20).
    dpi : float
        Resolution of the figure and of the file written.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Raises
    ------
    ValueError
        If the history has no ``learning_speed`` series, the network had no
        hidden layer (and ``include_output`` is false), or the directory of
        ``path`` does not exist.
    """
    epochs, speeds = _speeds(history)
    if not isinstance(include_output, (bool, np.bool_)):
        raise TypeError(f"include_output must be True or False; got {include_output!r}")
    shown = speeds.shape[1] if include_output else speeds.shape[1] - 1
    if shown == 0:
        raise ValueError("history['learning_speed'] records no hidden layer (the network had "
                         "none); pass include_output=True to draw the output layer")
    measure = measure if measure is not True else "norm"
    if measure not in ("norm", "mean_abs"):
        raise ValueError(f"measure must be 'norm' or 'mean_abs'; got {measure!r}")
    path = _figures.check_path(path)
    dpi = _figures.check_dpi(dpi)
    _figures.matplotlib_figure()
    from matplotlib.ticker import MaxNLocator
    with _figures.style(fontsize):
        if ax is None:
            fig = _figures.new_figure((6.5, 3.8), path, dpi)
            ax = fig.add_subplot()
        fig = _figures.figure_of(ax)
        marker = "o" if len(epochs) <= 30 else None
        for l in range(shown):
            name = "output layer" if l == speeds.shape[1] - 1 else f"hidden layer {l + 1}"
            values = np.where(speeds[:, l] > 0, speeds[:, l], np.nan)   # log axis
            ax.plot(epochs, values, marker=marker, ms=3, color=f"C{l % 10}", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("epochs of training")
        ax.set_ylabel("‖mean ∂C/∂b‖" if measure == "norm" else "mean |∂C/∂b|")
        ax.set_title(f"Speed of learning, {speeds.shape[1] - 1} hidden layers")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
        # Beside the axes (lines span the whole width), later layers on top as
        # their lines usually are.
        handles, names = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], names[::-1], fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _figures.save(fig, path, dpi)
    return fig


# -- misclassified ------------------------------------------------------------


def plot_misclassified(net: Network, X: Any, y: Optional[npt.ArrayLike] = None, n: int = 12,
                       path: Optional[PathLike] = None, cols: int = 6) -> Figure:
    """Show the worst-classified images: the lowest output for their true class.

    Parameters
    ----------
    net : cbp.Network
        A classifier whose input is a square number of pixels.
    X : array_like, shape (n_samples, n_in)
        Images, one per row (or network.py's list of (x, label) with ``y=None``).
    y : array_like of int, shape (n_samples,), optional
        True labels (or one-hot rows); ``None`` when ``X`` is a list of
        (x, label) pairs.
    n : int
        At most this many images, worst first.
    path : str or os.PathLike, optional
        Save the figure there (written atomically).
    cols : int
        Images per row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into; each image is titled with its true and
        predicted labels and the output for the true class.

    Raises
    ------
    ValueError
        If the input is not a square number of pixels, no example is
        misclassified, or the directory of ``path`` does not exist.
    """
    _figures.check_net(net)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    side = _figures.side(n_in, "the network's input")
    n = _figures.count(n, "n")
    cols = _figures.count(cols, "cols")
    data = X if y is None else (X, y)
    images, labels = _data.test_arrays(data, n_in, n_out, net.dtype, name="data")
    if images.shape[0] == 0:
        raise ValueError("X holds no examples: nothing to plot")
    path = _figures.check_path(path)
    _figures.matplotlib_figure()
    out = np.asarray(net.feedforward(images), dtype=np.float64)
    predicted = np.argmax(out, axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if wrong.size == 0:
        raise ValueError(f"no misclassified examples: the network classifies all "
                         f"{images.shape[0]} correctly")
    true_score = out[wrong, labels[wrong]]
    worst = wrong[np.argsort(true_score, kind="stable")][:n]
    cols = min(cols, worst.size)
    rows = -(-worst.size // cols)
    fig = _figures.new_figure((1.5 * cols + 0.2, 1.7 * rows + 0.4), path)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, k in zip(axes.ravel(), worst):
        ax.imshow(images[k].reshape(side, side), cmap="gray_r", interpolation="nearest")
        ax.set_title(f"true {labels[k]}, got {predicted[k]}\n"
                     f"a[{labels[k]}] = {out[k, labels[k]]:.2g}", fontsize="small")
    fig.suptitle(f"{worst.size} worst-classified of {wrong.size} misclassified "
                 f"({images.shape[0]} examples)", fontsize="large")
    _figures.save(fig, path)
    return fig
