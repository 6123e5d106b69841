"""The checks for hopeless training (:class:`Watch`): inputs far off scale, a cost that grows or stays at chance.

Public through :mod:`cbp.training` (``Watch``, ``chance_cost``, ``warn``,
``INPUT_SCALE``, ``JUDGED_BATCHES``).
"""
import os
import sys
import warnings
from typing import List

import numpy as np

from . import _checks, costs
from ._run import Callback
from .errors import TrainingWarning

__all__ = ["Watch", "chance_cost", "warn", "INPUT_SCALE", "JUDGED_BATCHES"]

# max |x| beyond which inputs are "far outside the usual scale" (pixels 0..255).
INPUT_SCALE = 10.0
# Mini-batches per epoch below which two epochs are too few steps to judge.
JUDGED_BATCHES = 50


def warn(message):
    """Issue ``message`` as a :class:`~cbp.errors.TrainingWarning` at the first caller outside cbp.

    So that the warning names the user's line and "once per location"
    filters work there.

    Parameters
    ----------
    message : str
        The warning.
    """
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TrainingWarning, stacklevel=level)


def chance_cost(net, Y):
    """C of always answering the mean target ȳ, the best constant answer; None if undefined.

    Parameters
    ----------
    net : Network
        The network (its cost and output activation).
    Y : ndarray
        The training targets.

    Returns
    -------
    float or None
        The cost of chance.
    """
    cost = net.layout.codes[2]
    cost = next(name for name, entry in costs.COSTS.items() if entry.code == cost)
    mean = Y.mean(axis=0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if cost in ("quadratic", "sse"):
            spread = float(np.sum(Y.var(axis=0, dtype=np.float64)))
            chance = 0.5 * spread if cost == "quadratic" else spread
        elif not ((mean >= 0) & (mean <= 1)).all():
            return None
        elif cost == "cross_entropy":
            chance = -float(np.sum(np.where(mean > 0, mean * np.log(mean), 0.0)
                                   + np.where(mean < 1, (1 - mean) * np.log1p(-mean), 0.0)))
        elif net.output_activation == "softmax":
            chance = -float(np.sum(np.where(mean > 0, mean * np.log(mean), 0.0)))
        else:
            return None     # sigmoid + log-likelihood: a → 1 costs 0, no reference
    return chance if np.isfinite(chance) and chance > 0 else None


class Watch(Callback):
    """The checks for hopeless training of one run; each reports at most once.

    Before the first epoch, inputs far outside the usual scale; after the
    second epoch (the first averages the cost from the random start), a
    training cost that grew or is no better than chance, judged only when
    an epoch has enough mini-batches (``JUDGED_BATCHES``) for two of
    them to show a trend.  When the core checks X during the first epoch
    (``run.x_scan``), the inputs are judged from the range it saw, after
    that epoch (or when training stops inside it).

    Parameters
    ----------
    report : callable
        ``report(message)``; default :func:`warn`.
    even_without_epochs : bool
        Judge the inputs also when no epoch is asked for.
    """

    reads_rows_early = False

    def __init__(self, report=warn, even_without_epochs=False):
        self.report, self.even_without_epochs = report, even_without_epochs
        self.costs: List[float] = []
        self.pending = None

    def start(self, net, X, Y, n_batches):
        """Judge the inputs; a message when they are far outside the usual scale, else None.

        Parameters
        ----------
        net : Network
            The network trained.
        X, Y : ndarray
            The training rows and targets.
        n_batches : int
            Mini-batches per epoch.

        Returns
        -------
        str or None
            The message.
        """
        self._begin(net, Y, n_batches)
        # The range from the pass that checked X was finite (no second pass).
        return self.scale(*_checks.value_range(X))

    def _begin(self, net, Y, n_batches):
        self.judged = n_batches >= JUDGED_BATCHES
        self.net, self.Y, self._chance = net, Y, ()
        self.costs = []

    @property
    def chance(self):
        """The cost of chance (:func:`chance_cost`), computed when first needed, or None."""
        if self._chance == ():
            self._chance = chance_cost(self.net, self.Y) if self.Y.size else None
        return self._chance

    def scale(self, lo, hi):
        """A message when inputs from ``lo`` to ``hi`` are far outside the usual scale, else None.

        Parameters
        ----------
        lo, hi : float
            The smallest and largest input.

        Returns
        -------
        str or None
            The message.
        """
        self.largest = max(hi, -lo)
        if self.largest <= INPUT_SCALE:
            return None
        return (f"the training inputs reach |x| = {self.largest:g}: inputs far outside "
                "[-1, 1] saturate sigmoid and tanh units and make gradient steps huge, and "
                "training rarely recovers; scale them first (X / 255 for 8-bit pixels, or "
                "each feature to mean 0 and variance 1)")

    def epoch(self, cost):
        """Record an epoch's mean cost; a message when training looks hopeless, else None.

        Parameters
        ----------
        cost : float
            The epoch's mean training cost.

        Returns
        -------
        str or None
            The message.
        """
        self.costs.append(cost)
        if len(self.costs) != 2 or not self.judged:
            return None
        first, second = self.costs
        advice = ("check eta (too large, or too small), init='scaled' for relu or tanh "
                  "units, and inputs scaled to about [0, 1]")
        # (Growth among costs already tiny next to chance is rounding, not trouble.)
        if second > 1.1 * first and (self.chance is None or second > 0.01 * self.chance):
            return (f"the training cost grew from {first:.4g} in the first epoch to "
                    f"{second:.4g} in the second: {advice}")
        if self.chance is not None and second >= 0.97 * self.chance:
            return (f"the training cost in the second epoch, {second:.4g}, is no better than "
                    f"always answering the mean target ({self.chance:.4g}): the network has "
                    f"not started to learn; {advice}")
        return None

    def on_train_begin(self, run):
        m = min(run.optimizer.mini_batch_size, run.n)
        n_batches = -(-run.n // m)
        self.pending = run.x_scan
        if self.pending is not None:
            self._begin(run.net, run.Y, n_batches)    # the inputs: after the first epoch
            return
        message = self.start(run.net, run.X, run.Y, n_batches)
        if message and (run.epochs or self.even_without_epochs):
            self.report(message)

    def _judge_scan(self):
        # The inputs, from the range the core saw while it checked them.
        scan, self.pending = self.pending, None
        if scan is not None and not scan[0]:
            message = self.scale(-float(scan[1]), float(scan[1]))
            if message:
                self.report(message)

    def on_epoch_end(self, run, epoch):
        self._judge_scan()
        message = self.epoch(run.history["cost"][-1])
        if message:
            self.report(message)
        return None

    def on_train_end(self, run):
        # Training stopped inside the first epoch (divergence, Ctrl-C): the
        # rows it reached.
        self._judge_scan()
