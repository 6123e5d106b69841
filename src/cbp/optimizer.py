"""The base of cbp's optimizers: settings, state per network, runs of mini-batches in the core.

An optimizer never sees a network's insides: it reaches one through the
network's interface (:attr:`cbp.Network.layout`, :meth:`cbp.Network.parameters`,
:meth:`cbp.Network.epoch_orders`) and hands the compiled core whole runs of
mini-batches, one call per run; :func:`cbp.training.train` owns the epochs.
The step rules themselves (:class:`cbp.sgd.SGD`, :class:`cbp.sgd.Adam`) are
:class:`Optimizer`'s subclasses.
"""
import copy
import weakref
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import _checks, _core, _data, _runs, training
from ._runs import Buffers
from ._typing import Array, ArrayLike, Data, History, Progress
from .model import Network

__all__ = ["Optimizer", "Buffers", "Rule", "RULES"]

def _check_net(net):
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


def flag(value, name):
    """``value`` as a bool, or TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


class Optimizer:
    """The base of every step rule: settings, state per network, runs of mini-batches in the core.

    To write an optimizer of your own, subclass this, set the
    hyper-parameters in ``__init__`` (calling ``super().__init__``), and
    name the core's rule in :meth:`rule_name` (a key of :data:`RULES`);
    override :meth:`rule_args` when the rule takes more than ``batch_l2``.
    Everything else (epochs through :func:`cbp.training.train`, divergence
    roll-back, per-network state, pickling) is here.  ``batch_l2`` is
    scikit-learn's ``alpha``: an L2 term (α/m) W joins the gradient of each
    mini-batch of m examples, beside the book's (λ/n) W.

    Parameters
    ----------
    eta : float > 0
        Learning rate η.
    mini_batch_size : int >= 1
        Examples per step.
    lmbda : float >= 0
        L2 strength λ.
    shuffle : bool
        Reshuffle the training data at each epoch.
    batch_l2 : float >= 0
        scikit-learn's ``alpha``.
    """

    def __init__(self, eta: float, mini_batch_size: int, lmbda: float, shuffle: bool,
                 batch_l2: float) -> None:
        self.eta = _checks.real(eta, "eta", positive=True)
        self.mini_batch_size = _checks.integer(mini_batch_size, "mini_batch_size", minimum=1)
        self.lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        self.shuffle = flag(shuffle, "shuffle")
        self.batch_l2 = _checks.real(batch_l2, "batch_l2", minimum=0.0)
        # State per network ([buffer, steps taken]), held weakly: an optimizer
        # used on many networks must not keep them (and their parameters) alive.
        self._state: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()

    momentum = 0.0
    num_threads = None

    def rule_name(self) -> str:
        """The core's step rule this optimizer applies: a key of :data:`RULES`.

        Returns
        -------
        str
            The rule's name.
        """
        raise NotImplementedError

    def rule_args(self, steps: int) -> Array:
        """The rule's extra arguments for the core: batch_l2, three of the rule's, steps taken.

        Parameters
        ----------
        steps : int
            Steps taken so far on the network.

        Returns
        -------
        ndarray of 5 float64
            ``[batch_l2, 0, 0, 0, steps]`` here.
        """
        return np.array([self.batch_l2, 0.0, 0.0, 0.0, steps], dtype=np.float64)

    def _threads(self):
        # Most threads a step may use: OpenMP's count unless set (the core
        # uses fewer where threads do not pay, and only for SGD/momentum).
        return _core.default_threads() if self.num_threads is None else self.num_threads

    def _state_for(self, net):
        # The rule's state belongs to the (optimizer, network) pair.
        size = RULES[self.rule_name()].state * net.layout.n_params
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
        return buf[:buf.shape[0] - self._scratch_copies() * net.layout.n_params].copy(), entry[1]

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
        return 0 if RULES[self.rule_name()].code == _core.RULE_CODES["sgd"] else 1

    def __getstate__(self):
        """For pickle (unpickling runs code: unpickle only optimizers from a trusted source)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("_state", "_pace")}
        # Without the gradient scratch: each step overwrites it before use.
        cut = self._scratch_copies()
        d["_state"] = [(net, buf[:buf.shape[0] - cut * net.layout.n_params], steps)
                       for net, (buf, steps) in self._state.items()]
        return d

    def __setstate__(self, d):
        d = dict(d)
        pairs = d.pop("_state", [])
        self.__dict__.update(d)
        self._state = weakref.WeakKeyDictionary()
        size = RULES[self.rule_name()].state
        for net, buf, steps in pairs:
            buf = np.array(buf, dtype=net.dtype)
            scratch = self._scratch_copies() * net.layout.n_params
            if scratch and buf.shape[0] == size * net.layout.n_params - scratch:
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
        with net.parameters():
            buffers = self.buffers(net, X.shape[0])
            _, cost_sum = self.run_batches(net, X, Y, order, X.shape[0], 0, 1, n, buffers,
                                           epoch=0, history=None)
        return cost_sum / X.shape[0]

    # -- runs of mini-batches -----------------------------------------------

    def run_epoch(self, net: Network, X: Array, Y: Array, order: Array, epoch: int = 0,
                  extra: Optional[dict] = None) -> float:
        """One epoch over checked rows X, Y taken in ``order``, in one call to the core.

        For callers that own the epoch loop (the scikit-learn estimators).

        Parameters
        ----------
        net : Network
            The network trained in place.
        X, Y : ndarray
            Checked training rows and targets.
        order : ndarray of intp
            The order of the rows.
        epoch : int
            The epoch, for a divergence's message.
        extra : dict, optional
            Keyword arguments for the core's ``train_epoch``, as
            :meth:`run_batches` takes them.

        Returns
        -------
        float
            Σ C_x, each cost taken before its mini-batch's step.
        """
        n = X.shape[0]
        m = min(self.mini_batch_size, n)
        with net.parameters():
            _, cost_sum = self.run_batches(net, X, Y, order, m, 0, -(-n // m), n,
                                           self.buffers(net, m), epoch, None, extra)
        return cost_sum

    def fork(self, source: Network, target: Network) -> "Optimizer":
        """A copy of this optimizer whose only state is a copy of ``source``'s, for ``target``.

        Lets a caller train a copy of a network and keep the original (and
        this optimizer) as they were until it succeeds.

        Parameters
        ----------
        source : Network
            The network whose state is copied.
        target : Network
            The network the copy holds it for.

        Returns
        -------
        Optimizer
            The copy.
        """
        twin = copy.copy(self)
        twin._state = weakref.WeakKeyDictionary()
        entry = self._state.get(source)
        if entry is not None:
            twin._state[target] = [entry[0].copy(), entry[1]]
        return twin

    def buffers(self, net: Network, m: int) -> Buffers:
        """Scratch for the core and the snapshots to fall back on, for runs of size-m mini-batches.

        Allocated once per epoch rather than per run of mini-batches.

        Parameters
        ----------
        net : Network
            The network trained.
        m : int
            The mini-batch size.

        Returns
        -------
        Buffers
        """
        return _runs.buffers(net, m, self._state_for(net), self._threads())

    def run_batches(self, net: Network, X: Array, Y: Array, order: Array, m: int, first: int,
                    last: int, n: int, buffers: "Buffers", epoch: int,
                    history: Optional[History] = None,
                    extra: Optional[dict] = None) -> Tuple[int, float]:
        """Mini-batches ``first`` to ``last - 1`` of an epoch, in one call to the core.

        On NaN or ±Inf, the network goes back to its state after the last
        finite mini-batch (replayed from a snapshot) and ``DivergenceError``
        is raised.  The caller holds ``net.parameters()``.

        Parameters
        ----------
        net : Network
            The network trained in place.
        X, Y : ndarray
            Checked training rows and targets (C-contiguous, the network's dtype).
        order : ndarray of intp
            The epoch's order of the rows.
        m : int
            The mini-batch size.
        first, last : int
            The mini-batches of the run.
        n : int
            The training-set size (for the L2 term).
        buffers : Buffers
            From :meth:`buffers`, for this network and m.
        epoch : int
            The epoch, for the error's message.
        history : dict, optional
            Carried by the error.
        extra : dict, optional
            Keyword arguments for the core's ``train_epoch`` (where the core
            takes them: sample weights, the ‖W‖² sum).

        Returns
        -------
        (int, float)
            The examples done and Σ C_x over them, each before its step.
        """
        hyper = _runs.Hyper(self.eta, self.lmbda / n, self.momentum,
                            RULES[self.rule_name()].code, self.rule_args)
        return _runs.run(net, X, Y, order, m, first, last, buffers, hyper, epoch, history,
                         extra or {}, self.__dict__.setdefault("_pace", {}))

    # -- epochs -------------------------------------------------------------

    @property
    def checks_rows(self) -> bool:
        """True when :meth:`train_epoch` checks X finite itself (``prepare(check_x=False)``).

        It does unless a subclass replaces how epochs run.
        """
        cls = type(self)
        return (cls.train_epoch is Optimizer.train_epoch and cls.prepare is Optimizer.prepare
                and cls.run_batches is Optimizer.run_batches)

    def prepare(self, net: Network, training_data: Data,
                check_x: bool = True) -> Tuple[None, Array, Array, int]:
        """The training data as checked arrays, for :func:`cbp.training.train`.

        Parameters
        ----------
        net : Network
            The network to train.
        training_data : list of (x, y) tuples, or a pair (X, Y)
            The training examples.
        check_x : bool
            False leaves X of a pair (X, Y) unchecked for NaN and ±Inf:
            :meth:`train_epoch` checks it in the core during the first epoch
            (``run.x_scan``).  Everything else is checked here.

        Returns
        -------
        (None, ndarray, ndarray, int)
            No example list, the rows X and targets Y, and their number.
        """
        X, Y = _data.training_arrays(training_data, net.sizes[0], net.sizes[-1], net.dtype,
                                     finite_x=check_x)
        if X.shape[0] == 0:
            raise ValueError("training_data must hold at least one example")
        return None, X, Y, X.shape[0]

    def train_epoch(self, run: training.Run, epoch: int, order: Array,
                    progress: Progress = None) -> float:
        """One epoch of :func:`cbp.training.train`, as a few runs of mini-batches.

        About 20 runs per epoch when someone is watching the progress,
        otherwise a handful, so that the checks between them cost nothing.

        Parameters
        ----------
        run : cbp.training.Run
            The training run (network, rows, history).
        epoch : int
            The epoch, from 0.
        order : ndarray of intp
            The epoch's order of the rows.
        progress : callable, optional
            ``progress(examples_done)`` after each run.

        Returns
        -------
        float
            Σ C_x over the epoch, each before its mini-batch's step.

        Raises
        ------
        ValueError
            In the first epoch of a run whose X was not checked up front
            (``run.x_scan``), when a row holds NaN or ±Inf: the network and
            this optimizer's state for it are first put back as they were
            before the epoch.
        """
        net, n = run.net, run.n
        m = min(self.mini_batch_size, n)
        n_batches = (n + m - 1) // m
        per_run = max(1, n_batches // (20 if progress else 4))
        cost_sum = 0.0
        # The first epoch checks the rows it trains on (every row of X), and
        # refuses X from the state before it: one copy of the parameters
        # instead of a separate pass over all of X before training.
        scan = run.x_scan if epoch == 0 else None
        extra = None if scan is None else {"x_scan": scan}
        with net.parameters():
            buffers = self.buffers(net, m)
            entry = buffers.entry
            if scan is not None:
                before = (buffers.params.copy(), entry[0].copy(), entry[1])
            for first in range(0, n_batches, per_run):
                last = min(first + per_run, n_batches)
                _, c = self.run_batches(net, run.X, run.Y, order, m, first, last, n, buffers,
                                        epoch, run.history, extra)
                if scan is not None and scan[0]:
                    buffers.params[...] = before[0]
                    entry[0][...] = before[1]
                    entry[1] = before[2]
                    raise _checks.not_finite(_data.x_name(), run.training_data[0], net.dtype)
                cost_sum += c
                if progress is not None:
                    progress(min(last * m, n))
        return cost_sum

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
        callbacks: List[training.Callback] = []
        measure = training.speed_measure(monitor_learning_speed)
        if measure:
            callbacks.append(training.LearningSpeed(measure))
        if net.training_warnings:
            callbacks.append(training.Watch())
        n_test = None
        if test_data is not None:
            # (X, Y, labels): labels None when the test data are targets
            # (regression), which have a cost but no accuracy.
            test = _data.examples(test_data, net.sizes[0], net.sizes[-1], net.dtype,
                                  "test_data", want_labels=True)
            callbacks.append(training.Monitor(test))
            n_test = test[0].shape[0]
        if verbose:
            callbacks.append(training.Printer(n_test))
        if on_epoch is not None:
            callbacks.append(training.OnEpoch(on_epoch))
        return training.train(net, self, training_data, epochs, callbacks, progress)
