r"""Mini-batch stochastic gradient descent, as an optimizer object.

The update for each mini-batch of m examples, out of n in the training set
(note 001, with network2.py's L2 term and optional momentum μ):

.. math::

   W^l &\leftarrow \Bigl(1 - \frac{\eta\lambda}{n}\Bigr) W^l
        - \frac{\eta}{m} \sum_x \delta^l_x \, (a^{l-1}_x)^T \\
   b^l &\leftarrow b^l - \frac{\eta}{m} \sum_x \delta^l_x

or, with momentum μ > 0, for every parameter θ:

.. math::

   v &\leftarrow \mu v - \eta \Bigl(\frac{1}{m} \sum_x \nabla C_x
        + \frac{\lambda}{n} W\Bigr) \\
   \theta &\leftarrow \theta + v

Other step rules share the same driver (a private base class): each optimizer
class names its rule in the core (:data:`RULES`), its hyper-parameters and the
size of its per-network state; the core's ``train_epoch`` applies it.

An epoch shuffles with the network's own generator and hands the core whole
runs of mini-batches; Python only sees the boundaries of those runs, where it
checks for divergence and reports progress.
"""
import copy
import random
import time
import weakref
from typing import NamedTuple, Union
from typing import TYPE_CHECKING, Callable, Optional, Tuple

import numpy as np

from . import _checks, _core, _data
from .errors import DivergenceError, TrainingInterrupted, TrainingWarning
from ._typing import Array, ArrayLike, Data, History, Progress

if TYPE_CHECKING:
    from .model import Network


# max |x| beyond which inputs are "far outside the usual scale" (pixels 0..255).
INPUT_SCALE = 10.0
# Mini-batches per epoch below which two epochs are too few steps to judge.
JUDGED_BATCHES = 50


def _warn(message):
    # Attributed to the first caller outside cbp, so that the warning names
    # the user's line and "once per location" filters work there.
    import os
    import sys
    import warnings
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TrainingWarning, stacklevel=level)


def _chance_cost(net, Y):
    """C of always answering the mean target ȳ, the best constant answer; None if undefined."""
    from . import costs
    cost = next(name for name, entry in costs.COSTS.items() if entry.code == net._codes[2])
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


# Seconds per example of a team and of one thread, per shape (sizes, m,
# dtype, team size), kept across calls and optimizers: net.SGD builds a new
# optimizer on every call, and re-measuring both each time ran a quarter of
# every one-epoch call on the slower side.  Bounded: oldest shape dropped.
_PACE: dict = {}
PACE_SHAPES = 64


class _Watch:
    """The checks for hopeless training of one run; each warns at most once.

    ``inputs()`` before the first epoch, ``epoch(cost)`` after each: the cost
    is judged after the second epoch, when the first, which averages the
    cost from the random start, is behind, and only when an epoch has enough
    mini-batches (``n_batches``) for two of them to show a trend.
    """

    def __init__(self, net, X, Y, n_batches):
        self.judged = n_batches >= JUDGED_BATCHES
        # The range from the pass that checked X was finite (no second pass).
        lo, hi = _checks.value_range(X)
        self.largest = max(hi, -lo)
        self.chance = _chance_cost(net, Y) if Y.size else None
        self.costs = []

    def inputs(self):
        """A message when the inputs are far outside the usual scale, else None."""
        if self.largest <= INPUT_SCALE:
            return None
        return (f"the training inputs reach |x| = {self.largest:g}: inputs far outside "
                "[-1, 1] saturate sigmoid and tanh units and make gradient steps huge, and "
                "training rarely recovers; scale them first (X / 255 for 8-bit pixels, or "
                "each feature to mean 0 and variance 1)")

    def epoch(self, cost):
        """Record an epoch's mean cost; a message when training looks hopeless, else None."""
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


# Rows on which the learning speed is measured: enough for a stable mean, few
# enough that one plain gradient per epoch costs little next to the epoch.
SPEED_ROWS = 1000


def _speed_subset(X, Y):
    # Evenly spaced rows, the same every epoch; the network's generator is not
    # touched, so monitoring never changes the training run.
    n = X.shape[0]
    if n <= SPEED_ROWS:
        return X, Y
    rows = np.linspace(0, n - 1, SPEED_ROWS).astype(np.intp)
    return np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])


#: The measures of the speed of learning ``monitor_learning_speed`` takes.
SPEED_MEASURES = ("norm", "mean_abs")


def _speed_measure(value):
    """'norm' (True, the book's), 'mean_abs', or None (False); else TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)):
        return "norm" if value else None
    if not isinstance(value, str):
        raise TypeError(f"monitor_learning_speed must be True, False or one of "
                        f"{list(SPEED_MEASURES)}; got {value!r}")
    if value not in SPEED_MEASURES:
        raise ValueError(f"monitor_learning_speed must be True, False or one of "
                         f"{list(SPEED_MEASURES)}; got {value!r}")
    return value


def _learning_speed(net, X, Y, measure="norm"):
    """Per layer l = 2..L, the speed of learning of layer l, g = ∂C/∂b^l, C the mean cost over X.

    'norm': ‖g‖, the book's measure (generate_gradient.py, chapter 5);
    'mean_abs': the mean of |g| over the layer's units.
    """
    grad, _ = net._gradient(X, Y)
    _, nabla_b = net._views(grad)
    n = X.shape[0]
    if measure == "mean_abs":
        return [float(np.mean(np.abs(b, dtype=np.float64))) / n for b in nabla_b]
    return [float(np.linalg.norm(np.asarray(b, dtype=np.float64) / n)) for b in nabla_b]


def _epoch_orders(net, training_data, n):
    """A function giving each epoch's order of the rows of X (mini-batches in turn).

    A seeded network permutes with its own generator.  Without a seed, each
    epoch is network.py's ``random.shuffle(training_data)``: a list of
    (x, y) tuples is shuffled in place, exactly as the original shuffles it
    (``random.shuffle`` makes the same swaps whatever the items are), so
    several networks trained in turn from one list see the original's
    orders; other input (arrays, a ``zip``) is shuffled as such a list would
    be, epoch after epoch, without touching the caller's data.
    """
    if net._rng is not None:
        return lambda: net._rng.permutation(n).astype(np.intp)
    in_place = isinstance(training_data, list) and not _data._is_pair(training_data)
    rows = np.arange(n, dtype=np.intp)  # rows[k]: the row of X now at position k

    def shuffle():
        nonlocal rows
        positions = _python_shuffle(n)
        if in_place:
            training_data[:] = [training_data[k] for k in positions.tolist()]
        rows = rows[positions]
        return rows
    return shuffle


def _python_shuffle(n):
    """``random.shuffle(list(range(n)))`` as an intp array, advancing ``random``'s state.

    The swaps are drawn in the core from a copy of the global generator's
    state (the same draws, a tenth of the time); wherever the global
    ``random`` is not CPython's plain Mersenne Twister, it is simply called.
    """
    inst = getattr(random.shuffle, "__self__", None)
    if (type(inst) is random.Random and random.shuffle.__func__ is random.Random.shuffle
            and n <= 1 << 32):
        version, internal, gauss = inst.getstate()
        if version == 3 and len(internal) == 625:
            mt = np.array(internal[:624], dtype=np.uint32)
            positions = np.arange(n, dtype=np.intp)
            index = _core.python_shuffle(mt, internal[624], positions)
            inst.setstate((version, tuple(mt.tolist()) + (index,), gauss))
            return positions
    positions = list(range(n))
    random.shuffle(positions)
    return np.array(positions, dtype=np.intp)


def _check_net(net):
    from .model import Network
    if not isinstance(net, Network):
        raise TypeError(f"net must be a cbp.Network; got {type(net).__name__}")


class Rule(NamedTuple):
    """One step rule of the core: an entry of :data:`RULES`.

    Parameters
    ----------
    code : int
        The number ``_core.pyx`` knows the step rule by.
    formula : str
        The update, g being the mini-batch's mean gradient plus L2 terms.
    state : int
        Per-network buffer, in copies of the parameter vector (for Nesterov
        and Adam the last copy is the gradient's scratch, not state).
    """

    code: int
    formula: str
    state: int


#: The step rules of the core, as activations and costs are tables.
RULES = {
    "sgd": Rule(_core.RULE_CODES["sgd"], "θ ← θ − η g", 0),
    "momentum": Rule(_core.RULE_CODES["sgd"], "v ← μ v − η g,  θ ← θ + v", 1),
    "nesterov": Rule(_core.RULE_CODES["nesterov"], "v ← μ v − η g,  θ ← θ + μ v − η g", 2),
    "adam": Rule(_core.RULE_CODES["adam"], "m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,  "
                    "θ ← θ − η √(1 − β2^t) / (1 − β1^t) · m / (√v + ε)", 3),
}


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


class _Optimizer:
    """The driver shared by every step rule: epochs, runs of mini-batches in
    the core, divergence roll-back, per-network state.

    A subclass sets the hyper-parameters and :meth:`_rule_name`; everything
    else is here.  ``batch_l2`` is scikit-learn's ``alpha``: an L2 term
    (α/m) W joins the gradient of each mini-batch of m examples, beside the
    book's (λ/n) W.
    """

    def __init__(self, eta, mini_batch_size, lmbda, shuffle, batch_l2):
        self.eta = _checks.real(eta, "eta", positive=True)
        self.mini_batch_size = _checks.integer(mini_batch_size, "mini_batch_size", minimum=1)
        self.lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        self.shuffle = _flag(shuffle, "shuffle")
        self.batch_l2 = _checks.real(batch_l2, "batch_l2", minimum=0.0)
        # State per network ([buffer, steps taken]), held weakly: an optimizer
        # used on many networks must not keep them (and their parameters) alive.
        self._state = weakref.WeakKeyDictionary()

    momentum = 0.0
    num_threads = None

    def _rule_name(self):
        raise NotImplementedError

    def _threads(self):
        # Most threads a step may use: OpenMP's count unless set (the core
        # uses fewer where threads do not pay, and only for SGD/momentum).
        return _core.default_threads() if self.num_threads is None else self.num_threads

    def _team_choice(self, net, m, threads):
        # Team or one thread for the next run of mini-batches: whichever ran
        # faster per example on this shape last time (the weights are the
        # same either way), trying the other again every few runs, since on
        # a shared machine a team loses whenever a core is taken.
        team = _core.team_size(net._sizes, m, threads)
        if team == 1:
            return 1, None
        key = (tuple(net.sizes), m, np.dtype(net.dtype).str, team)
        pace = _PACE.get(key)
        if pace is None:
            if len(_PACE) >= PACE_SHAPES:
                del _PACE[next(iter(_PACE))]    # the oldest shape
            pace = _PACE[key] = {"runs": 0}
        self.__dict__.setdefault("_pace", {})[key] = pace   # the shapes this one trained
        pace["runs"] += 1
        for nt in (team, 1):
            if nt not in pace:
                return nt, pace
        best, other = (team, 1) if pace[team] <= pace[1] else (1, team)
        return (other if pace["runs"] % 8 == 0 else best), pace

    def _rule_args(self, steps):
        return np.array([self.batch_l2, 0.0, 0.0, 0.0, steps], dtype=np.float64)

    def _state_for(self, net):
        # The rule's state belongs to the (optimizer, network) pair.
        size = RULES[self._rule_name()].state * net._n_params
        entry = self._state.get(net)
        if entry is None or entry[0].shape[0] != size or entry[0].dtype != net.dtype:
            entry = self._state[net] = [np.zeros(max(size, 1), dtype=net.dtype), 0]
        return entry

    def state(self, net: "Network") -> Optional[Tuple[Array, int]]:
        """A copy of this optimizer's state for ``net``: ``(buffer, steps)``, or ``None``.

        Parameters
        ----------
        net : Network
            The network whose state (velocity, moments) is wanted.

        Returns
        -------
        tuple of (ndarray, int) or None
            The state buffer (the velocity, or Adam's moments m then v) and
            the number of steps taken, or ``None`` before this optimizer has
            trained ``net``.
        """
        entry = self._state.get(net)
        if entry is None:
            return None
        buf = entry[0]
        return buf[:buf.shape[0] - self._scratch_copies() * net._n_params].copy(), entry[1]

    def reset(self, net: Optional["Network"] = None) -> None:
        """Forget the state (velocity, moments, step count) for ``net``, or for every network.

        Parameters
        ----------
        net : Network, optional
            The network whose state to forget; ``None`` forgets all.
        """
        if net is None:
            self._state.clear()
        else:
            self._state.pop(net, None)

    # -- pickling: hyper-parameters and the state of each network still alive --

    def _scratch_copies(self):
        # Copies of the parameter vector at the end of the rule's state that
        # are scratch, not state: the gradient G of Nesterov and Adam.
        return 0 if RULES[self._rule_name()].code == _core.RULE_CODES["sgd"] else 1

    def __getstate__(self):
        """For pickle (unpickling runs code: unpickle only optimizers from a trusted source)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("_state", "_pace")}
        # Without the gradient scratch: each step overwrites it before use.
        cut = self._scratch_copies()
        d["_state"] = [(net, buf[:buf.shape[0] - cut * net._n_params], steps)
                       for net, (buf, steps) in self._state.items()]
        return d

    def __setstate__(self, d):
        d = dict(d)
        pairs = d.pop("_state", [])
        self.__dict__.update(d)
        self._state = weakref.WeakKeyDictionary()
        size = RULES[self._rule_name()].state
        for net, buf, steps in pairs:
            buf = np.array(buf, dtype=net.dtype)
            scratch = self._scratch_copies() * net._n_params
            if scratch and buf.shape[0] == size * net._n_params - scratch:
                buf = np.concatenate([buf, np.zeros(scratch, dtype=net.dtype)])
            self._state[net] = [buf, int(steps)]

    # -- one step -----------------------------------------------------------

    def step(self, net: "Network", X: ArrayLike, Y: ArrayLike, n: Optional[int] = None) -> float:
        """One update of ``net`` on one mini-batch (all rows of X, Y).

        Parameters
        ----------
        net : Network
            The network updated in place.
        X : array_like of shape (m, n_in)
            The mini-batch's inputs, one per row.
        Y : array_like of shape (m, n_out) or (m,)
            Its targets, or integer labels.
        n : int, optional
            The training-set size for the L2 term (default: ``len(X)``).

        Returns
        -------
        float
            The mini-batch's mean cost before the step.
        """
        _check_net(net)
        X, Y = _data.training_arrays((X, Y), net.sizes[0], net.sizes[-1], net.dtype, name="data")
        if X.shape[0] == 0:
            raise ValueError("data must hold at least one example")
        n = X.shape[0] if n is None else _checks.integer(n, "n", minimum=1)
        return self._step_checked(net, X, Y, n)

    def _step_checked(self, net, X, Y, n):
        order = np.arange(X.shape[0], dtype=np.intp)
        with net._lock:
            buffers = self._buffers(net, X.shape[0])
            _, cost_sum = self._run_batches(net, X, Y, order, X.shape[0], 0, 1, n, buffers,
                                            epoch=0, history=None)
        return cost_sum / X.shape[0]

    def _epoch(self, net, X, Y, order, epoch=0, extra=None):
        """One epoch over checked rows X, Y taken in ``order``, in one call to the core.

        For callers that own the epoch loop (the scikit-learn estimators);
        returns Σ C_x, each cost taken before its mini-batch's step.  ``extra``:
        keyword arguments for the core's ``train_epoch`` (``sample_weight``, ``w2_sum``).
        """
        n = X.shape[0]
        m = min(self.mini_batch_size, n)
        with net._lock:
            _, cost_sum = self._run_batches(net, X, Y, order, m, 0, -(-n // m), n,
                                            self._buffers(net, m), epoch, None, extra)
        return cost_sum

    def _fork(self, source, target):
        """A copy of this optimizer whose only state is a copy of ``source``'s, for ``target``.

        Lets a caller train a copy of a network and keep the original (and
        this optimizer) as they were until it succeeds.
        """
        twin = copy.copy(self)
        twin._state = weakref.WeakKeyDictionary()
        entry = self._state.get(source)
        if entry is not None:
            twin._state[target] = [entry[0].copy(), entry[1]]
        return twin

    def _buffers(self, net, m):
        # Scratch for the core and the snapshot to fall back on, allocated
        # once per call rather than per run of mini-batches.
        entry = self._state_for(net)
        threads = self._threads()
        work = np.empty(_core.workspace_size(net._sizes, m, threads), dtype=net.dtype)
        return entry, work, np.empty_like(net._params), np.empty_like(entry[0]), threads

    def _run_batches(self, net, X, Y, order, m, first, last, n, buffers, epoch, history,
                     extra=None):
        # Mini-batches first..last-1; on NaN/Inf, back to the last finite
        # state (replaying from a snapshot) and raise.  extra: keyword
        # arguments for train_epoch (sample weights, the ‖W‖² sum).
        extra = extra or {}
        params = net._params
        entry, work, snapshot, v_snapshot, threads = buffers
        velocity, steps = entry
        snapshot[...] = params
        v_snapshot[...] = velocity
        args = (*net._core_args(), *net._codes, X, Y, order, m)
        hyper = (self.eta, self.lmbda / n, self.momentum, work, RULES[self._rule_name()].code)
        threads, pace = self._team_choice(net, m, threads)
        start = time.perf_counter()
        done, examples, cost_sum = _core.train_epoch(params, velocity, *args, first, last,
                                                     *hyper, self._rule_args(steps),
                                                     num_threads=threads, **extra)
        if pace is not None and examples:
            pace[threads] = (time.perf_counter() - start) / examples
        if np.isfinite(cost_sum) and _core.all_finite(params):
            entry[1] = steps + done
            return examples, cost_sum
        # Find the first bad mini-batch: replay one at a time from the snapshot.
        params[...] = snapshot
        velocity[...] = v_snapshot
        for k in range(first, last):
            snapshot[...] = params
            v_snapshot[...] = velocity
            # (done: 0 for a mini-batch whose sample weights sum to 0)
            done, _, c = _core.train_epoch(params, velocity, *args, k, k + 1, *hyper,
                                           self._rule_args(steps), num_threads=threads, **extra)
            if not (np.isfinite(c) and _core.all_finite(params)):
                params[...] = snapshot
                velocity[...] = v_snapshot
                entry[1] = steps
                raise DivergenceError(
                    f"training diverged in epoch {epoch}, mini-batch {k}: the cost or the "
                    f"weights became NaN or infinite (eta={self.eta} may be too large); the "
                    "network is left as it was after the previous mini-batch",
                    epoch, k, history)
            steps += done
        entry[1] = steps
        raise DivergenceError(f"training diverged in epoch {epoch}", epoch, last - 1, history)

    # -- epochs -------------------------------------------------------------

    def run(self, net: "Network", training_data: Data, epochs: int, test_data: Data = None,
            verbose: bool = False, progress: Progress = None,
            monitor_learning_speed: Union[bool, str] = False,
            on_epoch: Optional[Callable[..., object]] = None) -> History:
        """Train ``net`` for ``epochs`` epochs; see :meth:`cbp.Network.SGD`.

        Parameters
        ----------
        net : Network
            The network trained in place.
        training_data : pair (X, Y)
            Inputs one per row, and target rows or integer labels.
        epochs : int
            Passes over the training data.
        test_data : pair (X, Y), optional
            Evaluated after each epoch (accuracy and cost in the history).
        verbose : bool, default=False
            Print one line per epoch.
        progress : callable, optional
            Called with the number of examples done so far in each epoch
            (a progress bar's update).
        monitor_learning_speed : bool or {'norm', 'mean_abs'}, default=False
            Also record ``learning_speed``: for each epoch, measured before it
            (row 0 is the untrained network), per layer l = 2..L,
            ‖(1/n) Σ_x ∂C_x/∂b^l‖ (the book's chapter-5 measure, ``True`` or
            ``'norm'``) or the mean of its absolute entries (``'mean_abs'``),
            over a fixed subset of the training data.
        on_epoch : callable, optional
            ``on_epoch(j, X, Y)`` is called after each epoch's record with the
            training rows as arrays (for the drop-ins' monitoring); a true
            return value ends training there.

        Returns
        -------
        dict of lists
            The per-epoch history.
        """
        _check_net(net)
        if isinstance(training_data, np.ndarray) and np.ndim(epochs) > 0:
            # fit(X, y) habits: X and y came as two arguments.
            raise TypeError("training_data must be one argument holding both inputs and "
                            "targets: pass the pair (X, y), as in net.SGD((X, y), epochs, "
                            "mini_batch_size, eta), not X and y separately")
        epochs = _checks.integer(epochs, "epochs", minimum=0)
        n_in, n_out = net.sizes[0], net.sizes[-1]
        X, Y = _data.training_arrays(training_data, n_in, n_out, net.dtype)
        n = X.shape[0]
        if n == 0:
            raise ValueError("training_data must hold at least one example")
        test = None
        if test_data is not None:
            # (X, Y, labels): labels None when the test data are targets
            # (regression), which have a cost but no accuracy.
            test = _data.examples(test_data, n_in, n_out, net.dtype, "test_data",
                                  want_labels=True)
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable; got {type(progress).__name__}")
        m = min(self.mini_batch_size, n)
        n_batches = (n + m - 1) // m
        # Runs of mini-batches between checks: about 20 per epoch when
        # someone is watching, otherwise a handful, so the checks cost nothing.
        per_run = max(1, n_batches // (20 if progress else 4))
        history: History = {"epoch": [], "cost": [], "seconds": []}
        watch = _Watch(net, X, Y, n_batches)
        # The drop-ins stay as quiet as the book's code, which never warns.
        judge = getattr(net, "_training_warnings", True)
        if epochs and judge and watch.inputs():
            _warn(watch.inputs())
        if test is not None:
            if test[2] is not None:
                history.update(correct=[], accuracy=[])
            history["test_cost"] = []
        measure = _speed_measure(monitor_learning_speed)
        speed_rows = _speed_subset(X, Y) if measure else None
        if speed_rows is not None:
            history["learning_speed"] = []
        shuffle = _epoch_orders(net, training_data, n)
        try:
            for j in range(epochs):
                if speed_rows is not None:
                    # Before the epoch, as generate_gradient.py measures it: row 0
                    # is the untrained network.
                    history["learning_speed"].append(
                        _learning_speed(net, speed_rows[0], speed_rows[1], measure))
                start = time.perf_counter()
                with net._lock:
                    order = shuffle() if self.shuffle else np.arange(n, dtype=np.intp)
                    cost_sum = 0.0
                    buffers = self._buffers(net, m)
                    for first in range(0, n_batches, per_run):
                        last = min(first + per_run, n_batches)
                        _, c = self._run_batches(net, X, Y, order, m, first, last, n, buffers,
                                                 j, history)
                        cost_sum += c
                        if progress is not None:
                            progress(min(last * m, n))
                history["epoch"].append(j)
                history["cost"].append(cost_sum / n)
                hopeless = watch.epoch(cost_sum / n)
                if hopeless and judge:
                    _warn(hopeless)
                history["seconds"].append(time.perf_counter() - start)
                if test is not None:
                    self._record_test(net, test, history)
                if verbose:
                    if test is not None and test[2] is not None:
                        print(f"Epoch {j}: {history['correct'][-1]} / {test[0].shape[0]}")
                    elif test is not None:
                        print(f"Epoch {j}: test cost {history['test_cost'][-1]:.6g}")
                    else:
                        print(f"Epoch {j} complete")
                if on_epoch is not None and on_epoch(j, X, Y):
                    break
        except KeyboardInterrupt:
            # Ctrl-C anywhere in an epoch (in the core, between mini-batches, while
            # evaluating or printing) leaves the network at a mini-batch boundary;
            # the history keeps the epochs whose records are complete.
            done = min(len(v) for v in history.values())
            for v in history.values():
                del v[done:]
            raise TrainingInterrupted(history) from None
        return history

    @staticmethod
    def _record_test(net, test, history):
        # The cost of the test targets, as total_cost computes it; with class
        # labels, also how many the network answers right.
        X, Y, labels = test
        if X.shape[0] == 0:
            if labels is not None:
                history["correct"].append(0)
                history["accuracy"].append(float("nan"))
            history["test_cost"].append(float("nan"))
            return
        a, z = net._predict(X, with_z=True)
        if labels is not None:
            correct = int(np.sum(_data.predicted_labels(a) == labels))
            history["correct"].append(correct)
            history["accuracy"].append(correct / X.shape[0])
        c = np.empty(X.shape[0], dtype=np.float64)
        _core.costs(z, a, Y, net._codes[1], net._codes[2], c)
        from .model import _mean
        history["test_cost"].append(_mean(c))


class SGD(_Optimizer):
    """Stochastic gradient descent on a :class:`cbp.Network`.

    Parameters
    ----------
    eta : float > 0
        Learning rate η.
    mini_batch_size : int >= 1
        m; 1 is online learning, len(data) is batch gradient descent.
    lmbda : float >= 0
        L2 strength λ (weights decay by 1 − ηλ/n per step).
    momentum : float in [0, 1)
        μ; 0 is plain SGD.
    shuffle : bool
        Reshuffle the training data at each epoch (with the network's generator).
    nesterov : bool
        Nesterov's momentum as scikit-learn applies it:
        v ← μv − ηg, θ ← θ + μv − ηg (no effect when μ = 0).
    batch_l2 : float >= 0
        scikit-learn's ``alpha``: (α/m) W joins each mini-batch's gradient.
    num_threads : int >= 1, optional
        Most threads one step may use (plain SGD and momentum); default
        OpenMP's count, so ``OMP_NUM_THREADS`` and
        ``threadpoolctl.threadpool_limits`` limit it.  Small networks use
        one thread where more would not pay.  The weights are bit-identical
        for every thread count.
    """

    def __init__(self, eta: float, mini_batch_size: int = 10, lmbda: float = 0.0,
                 momentum: float = 0.0, shuffle: bool = True, *, nesterov: bool = False,
                 batch_l2: float = 0.0, num_threads: Optional[int] = None) -> None:
        super().__init__(eta, mini_batch_size, lmbda, shuffle, batch_l2)
        if num_threads is not None:
            num_threads = _checks.integer(num_threads, "num_threads", minimum=1)
        self.num_threads = num_threads
        self.momentum = _checks.real(momentum, "momentum", minimum=0.0, below=1.0)
        self.nesterov = _flag(nesterov, "nesterov")

    def _rule_name(self):
        if not self.momentum:
            return "sgd"
        return "nesterov" if self.nesterov else "momentum"

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, default in
                        (("nesterov", False), ("batch_l2", 0.0), ("num_threads", None))
                        if getattr(self, k) != default)
        return (f"SGD(eta={self.eta}, mini_batch_size={self.mini_batch_size}, "
                f"lmbda={self.lmbda}, momentum={self.momentum}, shuffle={self.shuffle}{extra})")


class Adam(_Optimizer):
    """Adam (Kingma & Ba, 2014) on a :class:`cbp.Network`, as scikit-learn applies it.

    With g the mini-batch's mean gradient (plus the L2 terms) and t the steps
    taken so far on this network:
    m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², and
    θ ← θ − η √(1 − β2^t) / (1 − β1^t) · m / (√v + ε).

    Parameters
    ----------
    eta : float > 0
        Learning rate η (scikit-learn's ``learning_rate_init``).
    beta1, beta2 : float in [0, 1)
        Decay rates of the first and second moment estimates.
    epsilon : float > 0
        Added to √v, for numerical stability.
    mini_batch_size, lmbda, shuffle, batch_l2 : optional
        As :class:`SGD`.
    """

    def __init__(self, eta: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, mini_batch_size: int = 10, lmbda: float = 0.0,
                 shuffle: bool = True, *, batch_l2: float = 0.0) -> None:
        super().__init__(eta, mini_batch_size, lmbda, shuffle, batch_l2)
        self.beta1 = _checks.real(beta1, "beta1", minimum=0.0, below=1.0)
        self.beta2 = _checks.real(beta2, "beta2", minimum=0.0, below=1.0)
        self.epsilon = _checks.real(epsilon, "epsilon", positive=True)

    def _rule_name(self):
        return "adam"

    def _rule_args(self, steps):
        return np.array([self.batch_l2, self.beta1, self.beta2, self.epsilon, steps],
                        dtype=np.float64)

    def __repr__(self):
        return (f"Adam(eta={self.eta}, beta1={self.beta1}, beta2={self.beta2}, "
                f"epsilon={self.epsilon}, mini_batch_size={self.mini_batch_size}, "
                f"lmbda={self.lmbda}, shuffle={self.shuffle}, batch_l2={self.batch_l2})")
