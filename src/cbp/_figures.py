"""What every plot of :mod:`cbp.plot` shares: matplotlib on demand, figures, paths, styles.

Importing this module does not import matplotlib.
"""
import math
import numbers
import os
from typing import TYPE_CHECKING, cast

import numpy as np

from . import _files

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NEEDS = ('plotting needs matplotlib: pip install "cbp-backprop[plot]" (from a package index) or '
          'pip install ".[plot]" (from a source checkout), or pip install matplotlib')



def matplotlib_figure():
    try:
        import matplotlib  # noqa: F401  (first: a hidden matplotlib must fail here)
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(NEEDS) from None
    return Figure


def check_path(path):
    """``path`` as a str, refused before any drawing when it cannot be written."""
    if path is None:
        return None
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path {path!r}: the directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"path {path!r} is a directory; give a file name such as plot.png")
    return path


_FIGURE_CLASS = None


def figure_class():
    """matplotlib's Figure with one change: shown once when a notebook cell ends with it.

    A cell ending in ``plot_history(h)`` would otherwise show the figure
    twice: once as the cell's value and once from pyplot (the inline backend
    shows every open figure after the cell, through the same display call).
    So the first display shows it as a PNG and takes it from pyplot, whose
    end-of-cell pass then has nothing left to show; a later display (the
    figure as a later cell's value) shows it again.  Under a GUI backend
    pyplot's window shows it.
    """
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        Figure = matplotlib_figure()

        class CellFigure(Figure):
            def _ipython_display_(self):
                import matplotlib
                import matplotlib.pyplot as plt
                manager = self.canvas.manager
                held = manager is not None and plt.fignum_exists(manager.num)
                if held and "inline" not in matplotlib.get_backend():
                    return          # a window shows it
                import io

                from IPython.display import display
                buf = io.BytesIO()
                self.savefig(buf, format="png", bbox_inches="tight")
                display({"image/png": buf.getvalue()}, raw=True)
                if held:
                    plt.close(self)

        CellFigure.__name__ = CellFigure.__qualname__ = "Figure"
        _FIGURE_CLASS = CellFigure
    return _FIGURE_CLASS


def new_figure(size, path, dpi=None):
    Figure = figure_class()
    if path is not None:
        # A bare Figure renders with the Agg canvas: no pyplot, no display,
        # and the process's chosen backend is left alone.
        return Figure(figsize=size, layout="constrained", dpi=dpi)
    import matplotlib.pyplot as plt
    return plt.figure(figsize=size, layout="constrained", dpi=dpi, FigureClass=Figure)


def style(fontsize):
    """A context in which text is drawn at ``fontsize`` points (None: matplotlib's default)."""
    import contextlib
    if fontsize is None:
        return contextlib.nullcontext()
    if isinstance(fontsize, (bool, np.bool_)) or not isinstance(fontsize, numbers.Real) \
            or not 1 <= fontsize <= 200:
        raise ValueError(f"fontsize must be a size in points between 1 and 200; got {fontsize!r}")
    import matplotlib
    return matplotlib.rc_context({"font.size": float(fontsize)})


def check_dpi(dpi):
    if isinstance(dpi, (bool, np.bool_)) or not isinstance(dpi, numbers.Real) \
            or not 10 <= dpi <= 2000:
        raise ValueError(f"dpi must be a resolution in dots per inch between 10 and 2000; "
                         f"got {dpi!r}")
    return float(dpi)


def figure_of(ax) -> "Figure":
    # The figure at the root (Axes may sit in a SubFigure): it is what is saved.
    fig = ax.figure
    return cast("Figure", getattr(fig, "figure", None) or fig)


def save(fig, path, dpi=120):
    """Write ``fig`` to ``path`` atomically, as model files are written (regular files only)."""
    if path is None:
        return
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    _files.write_atomic(path, lambda f: fig.savefig(f, format=ext, dpi=dpi), "a figure")


def check_net(net, what="net"):
    from .model import Network
    if not isinstance(net, Network):
        raise TypeError(f"{what} must be a cbp.Network; got {type(net).__name__}")


def side(n_pixels, what):
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ValueError(f"{what} has {n_pixels} inputs, not a square number of pixels: "
                         "it cannot be shown as an image")
    return side


def count(value, name, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")
    return int(value)
