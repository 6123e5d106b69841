"""A run of mini-batches in the core: one call, timed for the team-or-one-thread pace, replayed on divergence.

:class:`cbp.optimizer.Optimizer` hands each run here with its step rule's
numbers; nothing here sees the optimizer.  A run that ends in NaN or ±Inf
is replayed one mini-batch at a time from a snapshot, so that the network is
left as the last finite mini-batch left it and the error names the one that
diverged.
"""
import time
from typing import Callable, NamedTuple, Optional, Tuple

import numpy as np

from . import _core, _pace
from ._typing import Array, History
from .errors import DivergenceError
from .model import Network

__all__ = ["Buffers", "Hyper", "PACES", "PACE_SHAPES", "PACE_MIN_FLOPS", "buffers", "run"]

#: Seconds per example of a team and of one thread, per shape (sizes, m,
#: dtype, team size), kept across calls and optimizers: net.SGD builds a new
#: optimizer on every call, and re-measuring both each time ran a quarter of
#: every one-epoch call on the slower side.  Bounded: oldest shape dropped.
PACES: dict = {}
PACE_SHAPES = 64
#: Runs of fewer FLOPs are not timed for the pace (a few ms on one core):
#: overheads and a team's thread start dominate them, and a warm-up call of a
#: few mini-batches had the team measured 1.6x slower than one thread, which
#: then ran the next calls alone (bench/run.py's default-threads rows).
PACE_MIN_FLOPS = 500_000_000


class Buffers(NamedTuple):
    """The scratch one run of mini-batches needs, allocated once per epoch (:meth:`cbp.optimizer.Optimizer.buffers`).

    Parameters
    ----------
    entry : list
        The optimizer's ``[state buffer, steps taken]`` for the network.
    work : ndarray
        The core's workspace.
    snapshot, state_snapshot : ndarray
        Where the parameters and the state are kept to fall back on.
    threads : int
        The most threads a step may use.
    params : ndarray
        The network's flat parameter vector.
    """

    entry: list
    work: Array
    snapshot: Array
    state_snapshot: Array
    threads: int
    params: Array


class Hyper(NamedTuple):
    """A step rule's numbers for the core's ``train_epoch``."""

    eta: float
    decay: float                               # λ/n, the book's L2 term per step
    momentum: float
    code: int                                  # the rule's code in _core
    rule_args: Callable[[int], Array]          # steps taken -> the rule's array


def buffers(net: Network, m: int, entry: list, threads: int) -> Buffers:
    """Scratch for runs of size-m mini-batches of ``net``, and the snapshots to fall back on."""
    with net.parameters() as (params, _, _):
        work = np.empty(_core.workspace_size(net.layout.sizes, m, threads), dtype=net.dtype)
        return Buffers(entry, work, np.empty_like(params), np.empty_like(entry[0]), threads,
                       params)


def team_choice(net: Network, m: int, threads: int, owner: dict) -> Tuple[int, Optional[dict]]:
    """Team or one thread for the next run: whichever ran faster per example on this shape.

    The weights are the same either way; the other side is tried again now
    and then (see :mod:`cbp._pace`).  ``owner`` keeps the paces of the
    shapes it trained (for pickling's sake, the optimizer's own dict).
    """
    team = _core.team_size(net.layout.sizes, m, threads)
    key = (tuple(net.sizes), m, np.dtype(net.dtype).str, team)
    threads, pace = _pace.choose(PACES, key, team, PACE_SHAPES)
    if pace is not None:
        owner[key] = pace
    return threads, pace


def run(net: Network, X: Array, Y: Array, order: Array, m: int, first: int, last: int,
        buffers: Buffers, hyper: Hyper, epoch: int, history: Optional[History],
        extra: dict, paces: dict) -> Tuple[int, float]:
    """Mini-batches ``first`` to ``last - 1`` in one call; (examples done, Σ C_x).

    See :meth:`cbp.optimizer.Optimizer.run_batches`, which calls it.
    """
    entry, work, snapshot, v_snapshot, threads, params = buffers
    velocity, steps = entry
    snapshot[...] = params
    v_snapshot[...] = velocity
    args = (*net.layout.core_args, *net.layout.codes, X, Y, order, m)
    rule = (hyper.eta, hyper.decay, hyper.momentum, work, hyper.code)
    threads, pace = team_choice(net, m, threads, paces)
    start = time.perf_counter()
    done, examples, cost_sum = _core.train_epoch(params, velocity, *args, first, last, *rule,
                                                 hyper.rule_args(steps), num_threads=threads,
                                                 **extra)
    # (about 6 FLOPs per weight and example: the forward, BP2 and the step)
    if pace is not None and 6 * examples * net.layout.n_weights >= PACE_MIN_FLOPS:
        _pace.record(pace, threads, (time.perf_counter() - start) / examples)
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
        done, _, c = _core.train_epoch(params, velocity, *args, k, k + 1, *rule,
                                       hyper.rule_args(steps), num_threads=threads, **extra)
        if not (np.isfinite(c) and _core.all_finite(params)):
            params[...] = snapshot
            velocity[...] = v_snapshot
            entry[1] = steps
            raise DivergenceError(
                f"training diverged in epoch {epoch}, mini-batch {k}: the cost or the "
                f"weights became NaN or infinite (eta={hyper.eta} may be too large); the "
                "network is left as it was after the previous mini-batch",
                epoch, k, history)
        steps += done
    entry[1] = steps
    raise DivergenceError(f"training diverged in epoch {epoch}", epoch, last - 1, history)
