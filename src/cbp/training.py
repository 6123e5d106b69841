"""The training loop: epochs of mini-batches, with callbacks for everything else.

:func:`train` is cbp's one epoch loop.  ``Network.SGD``, ``cbp.SGD.run``, the
``cbp train`` command and ``network2.Network.SGD`` all call it, with their
own callbacks for what they record and print; the scikit-learn estimators
keep scikit-learn's loop over the same optimizer interface.

Each epoch takes the network's order of the rows (:meth:`cbp.Network.epoch_orders`)
and hands the whole epoch to the optimizer, which runs it in the core as a
few runs of mini-batches (:meth:`cbp.optimizer.Optimizer.train_epoch`).  Callbacks
see the :class:`Run` before training, before and after each epoch, and at
the end; one returning true after an epoch stops training there.  Ctrl-C
anywhere in an epoch stops at a mini-batch boundary and raises
:class:`~cbp.errors.TrainingInterrupted` with the complete epochs' history.
"""
import os
import sys
import time
import warnings
from typing import Any, Iterable, List, Optional

import numpy as np

from . import _checks, _data, costs
from ._typing import Data, History, Progress
from .errors import TrainingInterrupted, TrainingWarning
from .model import Network

__all__ = ["train", "Run", "Callback", "Monitor", "Evaluation", "Printer", "LearningSpeed",
           "Watch", "OnEpoch", "EarlyStopping", "speed_measure", "speed_subset", "learning_speed",
           "chance_cost", "warn", "INPUT_SCALE",
           "JUDGED_BATCHES", "SPEED_ROWS", "SPEED_MEASURES"]

# max |x| beyond which inputs are "far outside the usual scale" (pixels 0..255).
INPUT_SCALE = 10.0
# Mini-batches per epoch below which two epochs are too few steps to judge.
JUDGED_BATCHES = 50
# Rows on which the learning speed is measured: enough for a stable mean, few
# enough that one plain gradient per epoch costs little next to the epoch.
SPEED_ROWS = 1000
#: The measures of the speed of learning ``monitor_learning_speed`` takes.
SPEED_MEASURES = ("norm", "mean_abs")


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
    x_scan : ndarray of 3 float64 or None
        When X was not checked finite before training (``check_x=False``):
        the core checks each mini-batch's rows during the first epoch, and
        this holds [1 if it met NaN or ±Inf, the largest |x|] of the rows it
        checked so far; None when X was checked up front.
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


def train(net: Any, optimizer: Any, training_data: Data, epochs: int,
          callbacks: Iterable[Callback] = (), progress: Progress = None) -> History:
    """Train ``net`` with ``optimizer`` for ``epochs`` epochs: cbp's one epoch loop.

    Parameters
    ----------
    net : Network
        The network trained in place.
    optimizer : cbp.optimizer.Optimizer
        The step rule and its settings (``mini_batch_size``, ``shuffle``).
    training_data : list of (x, y) tuples, or a pair (X, Y)
        The training examples.
    epochs : int >= 0
        Passes over the training data.
    callbacks : iterable of Callback
        Called in order at each hook.
    progress : callable, optional
        ``progress(examples_done)`` during each epoch.

    Returns
    -------
    dict of lists
        The history: ``epoch``, ``cost`` (the mean C_x seen during the
        epoch), ``seconds``, and whatever the callbacks record.

    Raises
    ------
    TypeError
        When ``net`` is not a :class:`cbp.Network` or ``optimizer`` not an optimizer.
    cbp.TrainingInterrupted
        On Ctrl-C, with the history of the complete epochs.
    cbp.DivergenceError
        When a step made the cost or the weights NaN or infinite.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")
    # (or the Python path's stepper, which has the same two methods)
    if not all(callable(getattr(optimizer, name, None)) for name in ("prepare", "train_epoch")):
        raise TypeError("optimizer must be a cbp.Optimizer (cbp.SGD, cbp.Adam, ...); got "
                        f"{type(optimizer).__name__}")
    epochs = _checks.integer(epochs, "epochs", minimum=0)
    callbacks = list(callbacks)
    # X is checked finite in the core, mini-batch by mini-batch during the
    # first epoch, when the optimizer can and nothing reads X before then.
    check_x = not (epochs and getattr(optimizer, "checks_rows", False)
                   and not any(cb.reads_rows_early for cb in callbacks))
    run = Run(net, optimizer, training_data, epochs, check_x=check_x)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable; got {type(progress).__name__}")
    orders = net.epoch_orders(training_data, run.n) if optimizer.shuffle else None
    history = run.history
    try:
        for cb in callbacks:
            cb.on_train_begin(run)
        for j in range(epochs):
            for cb in callbacks:
                cb.on_epoch_begin(run, j)
            start = time.perf_counter()
            with net.parameters():
                order = orders() if orders is not None else np.arange(run.n, dtype=np.intp)
                cost_sum = optimizer.train_epoch(run, j, order, progress)
            history["epoch"].append(j)
            if "cost" in history:
                history["cost"].append(cost_sum / run.n)
            history["seconds"].append(time.perf_counter() - start)
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(run, j)) or stop
            if stop:
                break
    except KeyboardInterrupt:
        # Ctrl-C anywhere in an epoch (in the core, between mini-batches, while
        # evaluating or printing) leaves the network at a mini-batch boundary;
        # the history keeps the epochs whose records are complete.
        done = min(len(v) for v in history.values())
        for v in history.values():
            del v[done:]
        raise TrainingInterrupted(history) from None
    except ValueError:
        if run.x_scan is not None and run.x_scan[0] and orders is not None:
            # X refused during the first epoch (the optimizer has put the
            # network back): the generator goes back too, as if refused first.
            rewind = getattr(orders, "rewind", None)
            if rewind is not None:
                rewind()
        raise
    finally:
        for cb in callbacks:
            cb.on_train_end(run)
    return history


# -- monitoring -----------------------------------------------------------------


class Monitor(Callback):
    """Record the cost on test data after each epoch, and with class labels the accuracy.

    Adds ``correct`` and ``accuracy`` (when the test data have class labels)
    and ``test_cost`` (as ``total_cost`` computes it, without the L2 term)
    to the history.

    Parameters
    ----------
    test : tuple
        ``(X, Y, labels)`` as ``cbp._data.examples(..., want_labels=True)``
        gives it; labels None for regression targets.
    """

    reads_rows_early = False

    def __init__(self, test):
        self.test = test

    def on_train_begin(self, run):
        if self.test[2] is not None:
            run.history.update(correct=[], accuracy=[])
        run.history["test_cost"] = []

    def on_epoch_end(self, run, epoch):
        X, Y, labels = self.test
        history = run.history
        if X.shape[0] == 0:
            if labels is not None:
                history["correct"].append(0)
                history["accuracy"].append(float("nan"))
            history["test_cost"].append(float("nan"))
            return None
        a, z = run.net.forward_rows(X, with_z=True)
        if labels is not None:
            correct = int(np.sum(_data.predicted_labels(a) == labels))
            history["correct"].append(correct)
            history["accuracy"].append(correct / X.shape[0])
        history["test_cost"].append(_checks.finite_mean(run.net.cost_rows(X, Y, (a, z))))
        return None


class Evaluation(Callback):
    """Record ``correct`` and ``accuracy`` through a network's own ``evaluate`` after each epoch.

    For a subclass whose ``feedforward`` or ``evaluate`` replaces cbp's.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(test_data)``, the number of right answers.
    test_data : list of (x, label) tuples, or a pair (X, labels)
        The test examples.
    """

    reads_rows_early = False

    def __init__(self, evaluate, test_data):
        self.evaluate, self.test_data = evaluate, test_data
        self.n_test = len(_data.as_tuples(test_data, "test_data"))

    def on_train_begin(self, run):
        run.history.update(correct=[], accuracy=[])

    def on_epoch_end(self, run, epoch):
        correct = self.evaluate(self.test_data)
        run.history["correct"].append(correct)
        run.history["accuracy"].append(correct / self.n_test if self.n_test else float("nan"))
        return None


class Printer(Callback):
    """network.py's line after each epoch: "Epoch j: correct / n", "Epoch j complete" or the test cost.

    Parameters
    ----------
    n_test : int or None
        The number of test examples, or None without test data.
    """

    reads_rows_early = False

    def __init__(self, n_test=None):
        self.n_test = n_test

    def on_epoch_end(self, run, epoch):
        history = run.history
        if "correct" in history:
            print(f"Epoch {epoch}: {history['correct'][-1]} / {self.n_test}")
        elif "test_cost" in history:
            print(f"Epoch {epoch}: test cost {history['test_cost'][-1]:.6g}")
        else:
            print(f"Epoch {epoch} complete")
        return None


class OnEpoch(Callback):
    """Call ``function(epoch, X, Y)`` after each epoch; its true return value stops training.

    Parameters
    ----------
    function : callable
        Called with the epoch and the training rows as arrays.
    """

    reads_rows_early = False

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, run, epoch):
        return self.function(epoch, run.X, run.Y)


class EarlyStopping(Callback):
    """Stop once a score has not beaten its best for ``patience`` epochs in a row.

    Parameters
    ----------
    patience : int >= 1
        Epochs without a better score before stopping.
    score : callable
        ``score(run)`` after each epoch; higher is better.
    best : float, optional
        The score to beat at first; by default the first epoch's.
    """

    reads_rows_early = False

    def __init__(self, patience, score, best=None):
        self.patience, self.score = patience, score
        self.best, self.stale = best, 0

    def on_epoch_end(self, run, epoch):
        value = self.score(run)
        if self.best is None or value > self.best:
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        return self.stale == self.patience


# -- the speed of learning ---------------------------------------------------------


def speed_measure(value):
    """'norm' (True, the book's), 'mean_abs', or None (False); else TypeError/ValueError.

    Parameters
    ----------
    value : bool or str
        ``monitor_learning_speed`` as given.

    Returns
    -------
    str or None
        The measure.
    """
    if isinstance(value, (bool, np.bool_)):
        return "norm" if value else None
    if not isinstance(value, str):
        raise TypeError(f"monitor_learning_speed must be True, False or one of "
                        f"{list(SPEED_MEASURES)}; got {value!r}")
    if value not in SPEED_MEASURES:
        raise ValueError(f"monitor_learning_speed must be True, False or one of "
                         f"{list(SPEED_MEASURES)}; got {value!r}")
    return value


def speed_subset(X, Y):
    """The rows the learning speed is measured on: at most SPEED_ROWS, evenly spaced.

    The same every epoch; the network's generator is not touched, so
    monitoring never changes the training run.

    Parameters
    ----------
    X, Y : ndarray
        The training rows and targets.

    Returns
    -------
    (ndarray, ndarray)
        The subset, C-contiguous.
    """
    n = X.shape[0]
    if n <= SPEED_ROWS:
        return X, Y
    rows = np.linspace(0, n - 1, SPEED_ROWS).astype(np.intp)
    return np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])


def learning_speed(net, X, Y, measure="norm") -> List[float]:
    """Per layer l = 2..L, the speed of learning of layer l, g = ∂C/∂b^l, C the mean cost over X.

    Parameters
    ----------
    net : Network
        The network measured.
    X, Y : ndarray
        Rows and targets in the network's form.
    measure : {'norm', 'mean_abs'}
        ‖g‖, the book's measure (generate_gradient.py, chapter 5), or the
        mean of ``|g|`` over the layer's units.

    Returns
    -------
    list of float
        One speed per layer after the input.
    """
    grad, _ = net.gradient_rows(X, Y)
    _, nabla_b = net.layout.views(grad)
    n = X.shape[0]
    if measure == "mean_abs":
        return [float(np.mean(np.abs(b, dtype=np.float64))) / n for b in nabla_b]
    return [float(np.linalg.norm(np.asarray(b, dtype=np.float64) / n)) for b in nabla_b]


class LearningSpeed(Callback):
    """Record ``learning_speed`` before each epoch (row 0 is the untrained network).

    Over a fixed subset of at most ``SPEED_ROWS`` training rows; training
    itself is unchanged.

    Parameters
    ----------
    measure : {'norm', 'mean_abs'}
        As :func:`learning_speed`.
    """

    def __init__(self, measure="norm"):
        self.measure = measure
        self.rows = None

    def on_train_begin(self, run):
        self.rows = speed_subset(run.X, run.Y)
        run.history["learning_speed"] = []

    def on_epoch_begin(self, run, epoch):
        # Before the epoch, as generate_gradient.py measures it.
        run.history["learning_speed"].append(learning_speed(run.net, *self.rows, self.measure))


# -- hopeless training -------------------------------------------------------------


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
