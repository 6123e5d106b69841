"""Team or one thread: whichever ran faster on this shape, measured as training goes.

A team of threads meets at a barrier between the phases of each mini-batch.
On a quiet machine the second core pays; on one shared with other work a
barrier waits whenever the scheduler set one of the team's threads aside,
and the team can run many times slower than one thread (20x measured on
network3's ``shallow`` net while another process held a core).  The core
gives the same bits either way, so the choice is speed alone: each run (or
chunk) is timed, the faster side is kept for the next ones, and the slower
is tried again now and then, since the load changes: a slower team every 8
runs, or more rarely the slower it was (at 20x slower, every 160th run, so a
retry costs about 12% instead of the 3.4x that retrying every 8th run cost);
a slower single thread only every 64th run, since a busy core shows in the
team's own times at once (every 8th run cost a 1.5x faster team ~6%).

A side's pace is the mean of its last measured time and the pace before
(:func:`record`): on this 2-vCPU VM one run in a few is 1.3-1.7x slower
than the next for no reason the process can see, and taking each time as it
came let one such run hand a quiet machine's work to one thread until the
next retry (seen in ``bench/run.py``'s default-threads rows: rounds at the
one-thread time among rounds at the team's).  A run several times slower
than its pace still flips the choice at once (its mean with the pace is).
A run twice as fast as its side's pace, or faster, replaces the pace: a
load that passed (NumPy's BLAS threads spin on a core for 0.1-0.2 s after
each product, and a team then ran network3's ``shallow`` net 12x slower
than one thread) must not keep a team that is twice as fast again behind
one thread for several more retries.  Runs too small to time (the caller's
bar) are not recorded: a team's first run also starts its threads.

A caller whose runs are short (network3's chunks) can ask each side to be
timed ``settle`` times before the choice is made, each time replacing the
one before until then: a side's first timed runs are still warming up.
Timed once, a team of 2 threads on network3's ``basic_conv`` took 1.07 ms a
mini-batch against 0.48 in every later chunk, one thread (0.78) was kept,
and the team was next tried 32 chunks later: two epochs of the benchmark
at the one-thread time.

The paces live in a dict the caller owns, keyed by whatever makes a shape
(kept across calls and networks: ``net.SGD`` builds a new optimizer on every
call), bounded by dropping the oldest shape.
"""
from typing import Hashable, Optional, Tuple

__all__ = ["choose", "record"]


def choose(paces: dict, key: Hashable, team: int, limit: int = 64,
           every: int = 8, settle: int = 1) -> Tuple[int, Optional[dict]]:
    """The threads for the next run: ``team`` or 1; and the pace to record its time in.

    Parameters
    ----------
    paces : dict
        The caller's table of paces; ``paces[key][threads]`` is the last
        time measured (per example, per chunk: any unit, the same for both).
    key : hashable
        The shape of the work.
    team : int
        The team that would run it; 1 means there is nothing to choose.
    limit : int
        Most shapes kept.
    every : int
        A slower team is retried every ``every`` runs, times how much slower
        it was; a slower single thread every ``8 * every`` runs.  Each retry
        costs a run at the slower pace: small runs (network3's chunks) take a
        larger ``every``.
    settle : int
        Timed runs of each side before the faster is chosen (the team's
        first, then one thread's); until then each time replaces the one
        before.  Kept with the shape's pace when it is made.

    Returns
    -------
    (int, dict or None)
        The threads, and the dict in which to store the run's time under
        that count of threads (None when ``team`` is 1).
    """
    if team == 1:
        return 1, None
    pace = paces.get(key)
    if pace is None:
        if len(paces) >= limit:
            del paces[next(iter(paces))]        # the oldest shape
        pace = paces[key] = {"runs": 0, "settle": settle}
    pace["runs"] += 1
    settle = pace.get("settle", 1)
    for threads in (team, 1):
        if threads not in pace or pace.get(("timed", threads), settle) < settle:
            return threads, pace
    best, other = (team, 1) if pace[team] <= pace[1] else (1, team)
    if best == team:
        # The team's own runs show at once when another process takes a
        # core; one thread is timed again only to keep its pace current.
        period = 8 * every
    else:
        period = every * min(64, max(1, round(pace[other] / pace[best])))
    return (other if pace["runs"] % period == 0 else best), pace


def record(pace: dict, threads: int, seconds: float) -> None:
    """Store a run's time (per example, per chunk: the caller's unit) for ``threads``.

    Parameters
    ----------
    pace : dict
        The shape's pace, as :func:`choose` returned it.
    threads : int
        The threads that ran.
    seconds : float
        The time measured.
    """
    timed = pace.get(("timed", threads), 0)
    pace[("timed", threads)] = timed + 1
    before = pace.get(threads)
    settling = timed < pace.get("settle", 1)     # replace, not average (see settle)
    faster = before is not None and seconds <= 0.5 * before    # a load passed
    pace[threads] = (seconds if before is None or settling or faster
                     else 0.5 * (before + seconds))
