"""Microbenchmarks for cbp: the part of the benchmark suite that ships with the package.

``bench/run.py`` (the full suite) and ``cbp bench`` (through :func:`quick`)
use it.  At module level it imports only the standard library, NumPy and cbp;
PyTorch, JAX, scikit-learn and threadpoolctl are imported inside the
functions that need them, and their absence is reported, not fatal.  The
parts live in modules named by what they do:

``timing``
    :func:`autorange`, :func:`sampler`, :func:`interleave`, :func:`timeit`,
    :func:`median`, :func:`paired_ratio`, :func:`spread`,
    :func:`single_thread`, :func:`others_load`.
``refs``
    The data (:func:`mnist_like`), FLOP counts and the NumPy references:
    :func:`network_py_epoch` ("network.py as written", allocating per
    example), :func:`numpy_per_example_epoch` ("tidy per-example NumPy"),
    :func:`numpy_matmul_epoch` ("tidy NumPy": one matrix product per layer per
    mini-batch), :func:`numpy_feedforward`, :func:`numpy_kernels`, and
    :func:`check_references`.
``peers``
    :func:`torch_trainer`, :func:`jax_trainer`, :func:`sklearn_trainer`.
``worker``
    :class:`Contender`: one contender per process, pinned from its start.
``measure``
    :func:`gemm_gflops`, :func:`bench_kernels`, :func:`bench_epoch`,
    :func:`bench_feedforward`, :func:`memory_probe`.
``report``
    :func:`format_table`, :func:`machine_info`.

Conventions: every time is the wall clock around the call a user makes,
the median over interleaved rounds (each round runs every contender once,
in a rotated order), and every ratio is the median of the per-round ratios
with its min-max spread, so both sides of a ratio were measured in the same
stretch of time on a shared machine.  A speedup ``×ref`` is
``time(ref) / time(cbp)``: above 1 means cbp is faster.
"""
import sys

import numpy as np

from measure import (bench_epoch, bench_feedforward, bench_kernels, gemm_gflops,
                                memory_probe)
from peers import jax_trainer, sklearn_trainer, torch_trainer
from refs import (QUADRATIC, SIGMOID, check_references, forward_flops, mnist_like,
                             network_py_epoch, numpy_feedforward, numpy_kernels,
                             numpy_matmul_epoch, numpy_per_example_epoch, train_flops)
from report import format_table, host_info, machine_info
from timing import (autorange, interleave, median, others_load, paired_ratio,
                               sampler, single_thread, spread, timeit)

__all__ = [
    "SIGMOID", "QUADRATIC", "autorange", "sampler", "interleave", "timeit", "median",
    "paired_ratio", "spread", "single_thread", "others_load", "train_flops", "forward_flops",
    "mnist_like", "numpy_per_example_epoch", "network_py_epoch", "numpy_matmul_epoch",
    "numpy_feedforward", "numpy_kernels", "torch_trainer", "jax_trainer", "sklearn_trainer",
    "check_references", "gemm_gflops", "bench_kernels", "bench_epoch", "bench_feedforward",
    "memory_probe", "quick", "format_table", "host_info", "machine_info",
]

#: How every report names the references (README, bench/run.py, cbp bench).
LABELS = {
    "cbp": "cbp",
    "network_py": "network.py as written",
    "numpy_per_example": "tidy per-example NumPy",
    "numpy_matmul": "tidy NumPy (one matmul per layer)",
    "torch": "PyTorch (autograd + optim.SGD)",
    "torch_bp": "PyTorch, backprop by hand (addmm, in place, no autograd)",
    "jax": "JAX (jit, lax.scan epoch)",
    "sklearn": "scikit-learn MLPClassifier (softmax + log-loss, eta=0.1)",
}


def quick(n=10_000, rounds=3, per_example_n=1000, file=None, data="sample"):
    """cbp against the NumPy references on [784, 30, 10], m = 10, η = 3, float64.

    Trains one epoch per round on ``n`` MNIST-shaped rows (cbp's embedded
    sample, tiled; ``data=None`` for random pixels), the two per-example
    references on ``per_example_n`` of them, scaled to n.  Every contender is
    timed by the wall clock around its call, in this process, unpinned: a
    quick look, not the suite's pinned measurement (``bench/run.py``).  Prints a table (to ``file``,
    default stdout) and returns its rows: ``implementation``, ``seconds``
    (median per epoch of n examples), ``gflops`` and ``cbp_speedup``
    (the implementation's time / cbp's, paired by round).  Takes a few
    seconds; under a minute for n = 10,000 even on a slow machine.
    """
    file = sys.stdout if file is None else file
    sizes, m, eta = [784, 30, 10], 10, 3.0
    X, Y, labels, description = mnist_like(n, np.float64, source=data)
    with single_thread() as limited:
        diffs = check_references(sizes, m, eta)
        step = diffs.pop("step_size")
        times, _ = bench_epoch(sizes, m, eta, X, Y, labels, dtypes=(np.float64,), rounds=rounds,
                               per_example_n=per_example_n, network_py=True,
                               with_torch=False, with_sklearn=False, gemm=False)
    times = {key.split(":")[0]: value for key, value in times.items()}
    flops = train_flops(sizes) * n
    names = {key: LABELS[key] for key in ("cbp", "network_py", "numpy_per_example",
                                          "numpy_matmul")}
    rows = []
    for key, label in names.items():
        if key not in times:
            continue
        t = median(times[key])
        rows.append({"implementation": label, "seconds": t, "gflops": flops / t / 1e9,
                     "cbp_speedup": paired_ratio(times[key], times["cbp"]),
                     "spread": spread(times[key], times["cbp"])})
    title = (f"[784, 30, 10], mini-batch 10, float64, one epoch of {n} examples "
             f"({description}); " + (f"medians of {rounds} rounds, " if rounds > 1 else
                                     "one round (a quick look, not comparable), ")
             + ("one BLAS thread" if limited else "BLAS threads not limited (no threadpoolctl)"))
    print(format_table(rows, [("implementation", "implementation", None),
                              ("seconds", "s/epoch", ".3f"),
                              ("gflops", "GFLOP/s", ".2f"),
                              ("cbp_speedup", "cbp speedup", lambda v: f"{v:.2f}x"),
                              ("spread", "min-max", lambda v: f"{v[0]:.2f}-{v[1]:.2f}")],
                       title=title), file=file)
    if per_example_n < n:
        print(f"the per-example references ran on {per_example_n} of the {n} examples; "
              "their times are scaled to n", file=file)
    worst = max(diffs.values())
    print(f"check: after one mini-batch step (largest change {step:.2g}) from the same weights, "
          f"cbp and the NumPy references agree with cbp.reference to {worst:.1e}", file=file)
    if worst > 1e-10:
        print("WARNING: cbp or a reference disagrees with cbp.reference by more than 1e-10",
              file=file)
    return rows
