"""What :func:`cbp.training.train`'s callbacks see (:class:`Run`) and their hooks (:class:`Callback`).

Public as ``cbp.training.Run`` and ``cbp.training.Callback``; here so that
the callbacks of other modules (:mod:`cbp._watch`) can subclass
``Callback`` without importing the training loop.
"""
from typing import Optional

import numpy as np

from ._typing import History

__all__ = ["Run", "Callback"]


class Run:
    """What the callbacks of one call of :func:`train` see.

    Parameters
    ----------
    net : Network
        The network trained.
    optimizer : object
        What steps it; its ``prepare`` gives the rows (or examples).
    training_data : object
        The caller's training data.
    epochs : int
        The epochs asked for.
    check_x : bool
        Check X finite before training (default); False leaves it to the
        core during the first epoch (see ``x_scan``).

    Attributes
    ----------
    net : Network
        The network trained.
    optimizer : object
        What steps it (a :class:`cbp.optimizer.Optimizer`, or the Python path's stepper).
    training_data : object
        The caller's training data, as given.
    X, Y : ndarray or None
        The training rows and their targets, in the caller's order (None on
        the Python path).
    examples : list of (x, y) tuples or None
        The Python path's examples in the caller's order (else None).
    ordered : list of (x, y) tuples or None
        The Python path's examples in the last epoch's order.
    n, epochs : int
        The number of training examples; the epochs asked for.
    history : dict of lists
        The per-epoch record, which callbacks extend.
    x_scan : ndarray of 2 float64 or None
        When X was not checked finite before training (``check_x=False``):
        the core checks each mini-batch's rows during the first epoch, and
        this holds [1 if it met NaN or ±Inf, the largest absolute value] of
        the rows it checked so far; None when X was checked up front.
    """

    def __init__(self, net, optimizer, training_data, epochs, check_x=True):
        self.net, self.optimizer, self.training_data = net, optimizer, training_data
        self.x_scan = None
        if check_x:
            self.examples, self.X, self.Y, self.n = optimizer.prepare(net, training_data)
        else:
            self.examples, self.X, self.Y, self.n = optimizer.prepare(net, training_data,
                                                                      check_x=False)
            self.x_scan = np.zeros(2)
        self.ordered = self.examples
        self.epochs = epochs
        self.history: History = {"epoch": []}
        if getattr(optimizer, "records_cost", True):
            self.history["cost"] = []
        self.history["seconds"] = []


class Callback:
    """Hooks :func:`train` calls; override the ones you need.

    Every hook gets the :class:`Run`.  ``on_epoch_end`` returning true stops
    training after that epoch.

    Attributes
    ----------
    reads_rows_early : bool
        True (the default) when a hook may read ``run.X`` before the first
        epoch has ended: then X is checked finite before training starts.
        When no callback does, the core checks each mini-batch's rows as the
        first epoch reaches them (no separate pass over X).
    """

    reads_rows_early = True

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch.

        Parameters
        ----------
        run : Run
            The training run.
        """

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        """Before epoch ``epoch`` (from 0) shuffles and trains.

        Parameters
        ----------
        run : Run
            The training run.
        epoch : int
            The epoch, from 0.
        """

    def on_epoch_end(self, run: Run, epoch: int) -> Optional[bool]:
        """After epoch ``epoch`` trained and its ``epoch``, ``cost`` and ``seconds`` are recorded.

        Parameters
        ----------
        run : Run
            The training run.
        epoch : int
            The epoch, from 0.

        Returns
        -------
        bool or None
            True to stop training here.
        """
        return None

    def on_train_end(self, run: Run) -> None:
        """After training, however it ended (also after an exception).

        Parameters
        ----------
        run : Run
            The training run.
        """
