"""In-process measurements of the benchmark suite: gemm, kernels, feedforward, memory."""
import sys
import warnings

import numpy as np

import cbp
from timing import autorange, interleave, median, paired_ratio, sampler
from refs import (numpy_feedforward, numpy_kernels, numpy_matmul_epoch,
                             numpy_per_example_epoch, network_py_epoch)
from peers import sklearn_trainer, torch_trainer

# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def gemm_gflops(dtype=np.float64, n=1024, rounds=5, min_time=0.1, seed=0):
    """GFLOP/s of an n×n by n×n NumPy matmul (2n³ flops): the BLAS roofline.

    Run it under :func:`single_thread` (or with the BLAS thread variables set
    to 1 before NumPy's import) for the single-thread figure.
    """
    rng = np.random.default_rng(seed)
    A = rng.random((n, n)).astype(dtype)
    B = rng.random((n, n)).astype(dtype)
    C = np.empty((n, n), dtype=dtype)
    fn = lambda: np.matmul(A, B, out=C)  # noqa: E731
    sample = sampler(fn, autorange(fn, min_time))
    return 2 * n ** 3 / median([sample() for _ in range(rounds)]) / 1e9


def bench_kernels(layers=((784, 30), (784, 256)), batch_sizes=(1, 10, 64),
                  dtypes=(np.float64, np.float32), rounds=5, min_time=0.01,
                  extra=((1024, 1024, 128),)):
    """Each core kernel alone against its NumPy equivalent; one row per case.

    The cases are every (I, O) layer of ``layers`` with every M of
    ``batch_sizes``, then the ``(I, O, M)`` triples of ``extra`` (by default
    the middle layer of [784, 1024, 1024, 10] with its mini-batch of 128,
    whose weights no longer fit in L2).

    Rows hold ``kernel, layer, M, dtype, cbp_us, numpy_us`` (median µs per
    call), ``speedup`` (NumPy time / cbp time, paired by round), ``cbp_gflops``
    and ``numpy_gflops`` for the three matrix kernels (2·M·O·I flops), and
    ``max_diff`` (cbp against NumPy on the same inputs).
    """
    rows = []
    cases = [(I, O, M) for I, O in layers for M in batch_sizes] + list(extra)
    for dtype in dtypes:
        for I, O, M in cases:
            for kernel, (c_fn, n_fn, flops, check) in numpy_kernels(dtype, M, O, I).items():
                diff = check()
                samplers = {"cbp": sampler(c_fn, autorange(c_fn, min_time)),
                            "numpy": sampler(n_fn, autorange(n_fn, min_time))}
                t = interleave(samplers, rounds)
                c, n = median(t["cbp"]), median(t["numpy"])
                rows.append({
                    "kernel": kernel, "layer": f"[{I},{O}]", "M": M,
                    "dtype": np.dtype(dtype).name, "cbp_us": c * 1e6, "numpy_us": n * 1e6,
                    "speedup": paired_ratio(t["numpy"], t["cbp"]),
                    "cbp_gflops": flops / c / 1e9 if flops else None,
                    "numpy_gflops": flops / n / 1e9 if flops else None,
                    "max_diff": diff,
                })
    return rows


def bench_epoch(sizes, mini_batch_size, eta, X, Y, labels, dtypes=(np.float64, np.float32),
                rounds=3, n_scale=None, per_example_n=1000, network_py=True, with_torch=True,
                with_sklearn=True, sklearn_eta=0.1, gemm=True, seed=0):
    """One training configuration: cbp and every reference, in every dtype, interleaved.

    Every contender trains from the same initial weights on the same rows
    (X, Y, labels, converted to each dtype), one epoch per round; the two
    per-example references (``network_py`` turns on the second) train on the
    first ``per_example_n`` rows only.
    Times are scaled to ``n_scale`` examples (default len(X)).  With ``gemm``
    each round also times the n=1024 matmul in each dtype (key
    ``gemm:<dtype>``, seconds per matmul), so the roofline is paired with the
    epochs too.

    Returns ``(times, notes)``: ``times`` maps ``"<contender>:<dtype>"`` to
    per-round seconds, contenders being ``cbp``, ``numpy_per_example``,
    ``network_py``, ``numpy_matmul``, ``torch`` and ``sklearn`` (absent when skipped, with
    the reason in ``notes``).  Every contender is timed by the wall clock
    around its call (for cbp one ``SGD.run(..., epochs=1)``, input checks and
    conversion included).  In this process: no pinning; see
    :mod:`worker` for pinned, one-process-per-contender runs.
    """
    sizes = list(sizes)
    n = X.shape[0]
    scale = (n_scale or n) / n
    k = min(per_example_n, n)
    few = min(n, mini_batch_size * 4)
    rng = np.random.default_rng(seed)
    samplers, notes, warmups = {}, {}, []
    for dtype in dtypes:
        dt = np.dtype(dtype)
        tag = dt.name
        Xd, Yd = np.ascontiguousarray(X, dtype=dt), np.ascontiguousarray(Y, dtype=dt)
        net = cbp.Network(sizes, dtype=dt, seed=seed)
        w0 = [np.array(w) for w in net.weights]
        b0 = [np.array(b) for b in net.biases]
        opt = cbp.SGD(eta, mini_batch_size=mini_batch_size)
        # Wall clock around the call a user makes, conversion and checks included.
        samplers[f"cbp:{tag}"] = sampler(lambda net=net, opt=opt, Xd=Xd, Yd=Yd:
                                         opt.run(net, (Xd, Yd), epochs=1), scale=scale)
        warmups.append(lambda dt=dt, Xd=Xd, Yd=Yd: cbp.SGD(eta, mini_batch_size).run(
            cbp.Network(sizes, dtype=dt, seed=seed), (Xd[:few], Yd[:few]), epochs=1))
        if k:
            w_pe, b_pe = [w.copy() for w in w0], [b.copy() for b in b0]
            samplers[f"numpy_per_example:{tag}"] = sampler(
                lambda w=w_pe, b=b_pe, Xk=Xd[:k], Yk=Yd[:k]: numpy_per_example_epoch(
                    w, b, Xk, Yk, eta, mini_batch_size, rng=rng), scale=scale * n / k)
        if k and network_py:
            w_nw, b_nw = [w.copy() for w in w0], [b.copy() for b in b0]
            samplers[f"network_py:{tag}"] = sampler(
                lambda w=w_nw, b=b_nw, Xk=Xd[:k], Yk=Yd[:k]: network_py_epoch(
                    w, b, Xk, Yk, eta, mini_batch_size, rng=rng), scale=scale * n / k)
        w_mm, b_mm = [w.copy() for w in w0], [b.copy() for b in b0]
        samplers[f"numpy_matmul:{tag}"] = sampler(
            lambda w=w_mm, b=b_mm, Xd=Xd, Yd=Yd: numpy_matmul_epoch(
                w, b, Xd, Yd, eta, mini_batch_size, rng=rng), scale=scale)
        if with_torch:
            epoch = torch_trainer(w0, b0, Xd, Yd, eta, mini_batch_size, seed=seed)
            if epoch is None:
                notes["torch"] = "skipped: torch is not installed"
            else:
                samplers[f"torch:{tag}"] = sampler(epoch, scale=scale)
                warmups.append(torch_trainer(w0, b0, Xd[:few], Yd[:few], eta, mini_batch_size))
        if with_sklearn:
            epoch = sklearn_trainer(sizes, Xd, labels, sklearn_eta, mini_batch_size, seed=seed)
            if epoch is None:
                notes["sklearn"] = "skipped: scikit-learn is not installed"
            else:
                # The first partial_fit initialises the model: do it on a few rows.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    epoch.model.partial_fit(Xd[:few], labels[:few], classes=np.arange(sizes[-1]))
                samplers[f"sklearn:{tag}"] = sampler(epoch, scale=scale)
        if gemm:
            g = np.random.default_rng(seed)
            A, B = g.random((1024, 1024)).astype(dt), g.random((1024, 1024)).astype(dt)
            C = np.empty_like(A)
            fn = lambda A=A, B=B, C=C: np.matmul(A, B, out=C)  # noqa: E731
            samplers[f"gemm:{tag}"] = sampler(fn, autorange(fn, 0.1))
    for warm in warmups:
        warm()
    return interleave(samplers, rounds), notes


def bench_feedforward(sizes, dtype, X, rounds=5, min_time=0.05, threads=(1, 2), seed=0):
    """Feedforward of all rows of X: cbp with each thread count and NumPy.

    Returns per-round seconds per pass: ``{"cbp_1": [...], "cbp_2": [...],
    "numpy": [...]}`` and the largest |difference| between cbp's and NumPy's
    outputs.
    """
    net = cbp.Network(list(sizes), dtype=dtype, seed=seed)
    X = np.ascontiguousarray(X, dtype=dtype)
    ws = [np.array(w) for w in net.weights]
    bs = [np.array(b) for b in net.biases]
    diff = float(np.max(np.abs(net._predict(X) - numpy_feedforward(ws, bs, X))))
    fns = {f"cbp_{k}": (lambda k=k: net._predict(X, num_threads=k)) for k in threads}
    fns["numpy"] = lambda: numpy_feedforward(ws, bs, X)
    samplers = {name: sampler(fn, autorange(fn, min_time)) for name, fn in fns.items()}
    return interleave(samplers, rounds), diff


def _vm_hwm():
    """This process's peak resident set (VmHWM in /proc/self/status) in bytes, or None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for text in f:
                if text.startswith("VmHWM:"):
                    return int(text.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_probe(sizes=(784, 1024, 1024, 10), n=2000, mini_batch_size=128, eta=0.5,
                 dtype="float64"):
    """Peak-RSS increase of building a network and training it one epoch, in this process.

    Meant for a fresh interpreter (``python -c``).  Records the peak resident
    set, then makes random data, builds the net, trains one epoch, and
    records it again.  The estimate is (parameters + gradients + one
    mini-batch's activations) × itemsize + the data (X and Y).  Returns a
    dict of bytes and the ratio increase / estimate.

    The peak is read two ways: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
    and, on Linux, ``VmHWM`` from /proc/self/status.  They differ in a child
    of a large process: Linux carries ru_maxrss over fork and exec, so the
    child starts with its parent's peak and a smaller increase does not show,
    while VmHWM belongs to the child's own address space.  ``increase`` uses
    VmHWM when it is available.
    """
    import resource
    sizes = list(sizes)
    dt = np.dtype(dtype)
    unit = 1 if sys.platform == "darwin" else 1024
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    hwm0 = _vm_hwm()
    rng = np.random.default_rng(0)
    X = rng.random((n, sizes[0]), dtype=np.float64).astype(dt)
    Y = np.zeros((n, sizes[-1]), dtype=dt)
    Y[np.arange(n), rng.integers(0, sizes[-1], n)] = 1
    net = cbp.Network(sizes, dtype=dt, seed=0)
    cbp.SGD(eta, mini_batch_size=mini_batch_size).run(net, (X, Y), epochs=1)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    hwm1 = _vm_hwm()
    params = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    activations = mini_batch_size * sum(sizes)
    estimate = (2 * params + activations) * dt.itemsize + X.nbytes + Y.nbytes
    increase = hwm1 - hwm0 if hwm0 is not None and hwm1 is not None else rss1 - rss0
    return {"sizes": sizes, "n": n, "mini_batch_size": mini_batch_size, "dtype": dt.name,
            "ru_maxrss_before": rss0, "ru_maxrss_after": rss1, "vm_hwm_before": hwm0,
            "vm_hwm_after": hwm1, "increase": increase,
            "source": "VmHWM" if hwm0 is not None else "ru_maxrss", "params": params,
            "estimate": estimate, "data_bytes": X.nbytes + Y.nbytes,
            "ratio": increase / estimate}
