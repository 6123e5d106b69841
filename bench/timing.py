"""Timing helpers of the benchmark suite: calibrated samples, interleaved rounds, paired ratios.

Every time is the median over interleaved rounds (each round runs every
contender once, in a rotated order); every ratio is the median of the
per-round ratios, reported with its min-max spread, so both sides of a ratio
were measured in the same stretch of time on a shared machine.
"""
import contextlib
import gc
import os
import statistics
import time

_clock = time.perf_counter

def median(values):
    """Median of a non-empty sequence of numbers, as a float."""
    return float(statistics.median(values))


def autorange(fn, min_time=0.02, max_number=10_000_000):
    """Calls of ``fn`` per sample so that one sample lasts at least ``min_time`` s.

    Like :meth:`timeit.Timer.autorange`, but aims straight at the target from
    the last measurement instead of trying 1, 2, 5, 10, ...  ``fn`` runs at
    least once, which doubles as a warm-up.
    """
    number = 1
    while True:
        start = _clock()
        for _ in range(number):
            fn()
        elapsed = _clock() - start
        if elapsed >= min_time or number >= max_number:
            return number
        guess = int(number * 1.2 * min_time / elapsed) + 1 if elapsed > 0 else number * 100
        number = min(max_number, max(number * 2, min(guess, number * 100)))


def sampler(fn, number=1, scale=1.0):
    """A callable that runs ``fn`` ``number`` times and returns seconds per call × ``scale``.

    The garbage collector is off while it runs, as in :mod:`timeit`.
    """
    def sample():
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = _clock()
            for _ in range(number):
                fn()
            elapsed = _clock() - start
        finally:
            if enabled:
                gc.enable()
        return elapsed / number * scale
    return sample


def interleave(samplers, rounds):
    """Run every sampler once per round, rotating the order; return ``{name: [seconds]}``.

    ``samplers`` maps names to callables returning the seconds of one sample
    (see :func:`sampler`; a callable may also time itself, as cbp's epochs
    do).  Rotating the order keeps any contender from always following the
    same neighbour; running all of them in each round means a burst of noise
    on the shared machine hits every contender of that round, which
    :func:`paired_ratio` then cancels.
    """
    names = list(samplers)
    times = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(float(samplers[name]()))
    return times


def timeit(fn, repeat=5, min_time=0.02):
    """Median seconds per call of ``fn`` over ``repeat`` samples of at least ``min_time`` s."""
    sample = sampler(fn, autorange(fn, min_time))
    return median([sample() for _ in range(repeat)])


def paired_ratio(numerator, denominator):
    """Median over rounds of ``numerator[r] / denominator[r]`` (None if either is missing)."""
    if not numerator or not denominator:
        return None
    return median([a / b for a, b in zip(numerator, denominator)])


def spread(numerator, denominator):
    """``(min, max)`` over rounds of ``numerator[r] / denominator[r]`` (None if either is missing)."""
    if not numerator or not denominator:
        return None
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return (min(ratios), max(ratios))


@contextlib.contextmanager
def single_thread():
    """Limit BLAS and OpenMP pools to one thread with threadpoolctl, when it is installed.

    Yields True when the limit is in force, False when threadpoolctl is
    missing (then only environment variables set before NumPy was imported,
    such as OPENBLAS_NUM_THREADS=1, can limit BLAS).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1):
        yield True


def _system_busy_seconds():
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        # cpu user nice system idle iowait irq softirq steal ...
        busy = sum(int(v) for k, v in enumerate(fields[1:9]) if k not in (3, 4))
        return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _process_seconds(pids):
    """CPU seconds (user + system) the processes ``pids`` have used so far, from /proc."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                # the command name may hold spaces: fields start after its ")"
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            pass
    return total


@contextlib.contextmanager
def others_load(pids=()):
    """Measure how many CPUs other processes kept busy while the block ran.

    Yields a dict that receives ``others_cpus`` on exit: (busy CPU time of the
    whole machine − the CPU time of this process and of the worker processes
    ``pids``) / wall time, from /proc/stat (None where that file does not
    exist).  Near 0 on an idle machine; near 1 on a 2-CPU machine means one
    CPU was taken by someone else, which matters most for multi-thread
    measurements.
    """
    out = {"others_cpus": None}
    pids = list(pids)
    busy0, own0, wall0 = _system_busy_seconds(), time.process_time(), _clock()
    kids0 = _process_seconds(pids)
    try:
        yield out
    finally:
        busy1, own1, wall1 = _system_busy_seconds(), time.process_time(), _clock()
        kids1 = _process_seconds(pids)
        if busy0 is not None and busy1 is not None and wall1 > wall0:
            ours = (own1 - own0) + (kids1 - kids0)
            out["others_cpus"] = max(0.0, ((busy1 - busy0) - ours) / (wall1 - wall0))
