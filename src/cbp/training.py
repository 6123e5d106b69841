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
import time
from typing import Any, Iterable, List

import numpy as np

from . import _checks, _data
from ._run import Callback, Run
from ._typing import Data, History, Progress
from ._watch import INPUT_SCALE, JUDGED_BATCHES, Watch, chance_cost, warn
from .errors import TrainingInterrupted
from .model import Network

__all__ = ["train", "Run", "Callback", "Monitor", "Evaluation", "Printer", "LearningSpeed",
           "Watch", "OnEpoch", "EarlyStopping", "speed_measure", "speed_subset", "learning_speed",
           "chance_cost", "warn", "INPUT_SCALE",
           "JUDGED_BATCHES", "SPEED_ROWS", "SPEED_MEASURES"]

# Rows on which the learning speed is measured: enough for a stable mean, few
# enough that one plain gradient per epoch costs little next to the epoch.
SPEED_ROWS = 1000
#: The measures of the speed of learning ``monitor_learning_speed`` takes.
SPEED_MEASURES = ("norm", "mean_abs")


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
