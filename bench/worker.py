"""Contenders of the benchmark suite, each in its own process, pinned from its start.

A :class:`Contender` starts a Python worker and talks to it by lines of JSON
on stdin/stdout.  The worker pins itself (``os.sched_setaffinity``, like
``taskset -c 0``) as its first statement, before it imports anything, so
every library in it (OpenBLAS, OpenMP, PyTorch's pool, XLA) sees one CPU
when it sizes its thread pools; in one-core mode the
thread variables are also set to 1.  In default mode nothing is pinned or
set and each library picks its own thread count.

Commands: ``{"cmd": "setup", ...}`` builds one contender on one
configuration (and warms it up) and answers ``{"ok": true, "version": ...}``;
``{"cmd": "run"}`` runs one sample and answers ``{"seconds": s}``: the wall
clock around the call a user makes (one epoch, one matmul, one probe run),
scaled as the setup said; ``{"cmd": "quit"}``.  An idle worker is blocked on
its stdin, so it takes no CPU while the others run.
"""
import json
import os
import subprocess
import sys
import time

# Environment of a one-core worker: every pool sized to one thread.  XLA
# takes only "--xla_..." flags: the older "intra_op_parallelism_threads=1"
# here had no "--" and XLA ignored it, and with its "--" jaxlib 0.10 aborts
# ("Unknown flag in XLA_FLAGS"): it is a TensorFlow session option, not an
# XLA flag.  The pinning (sched_setaffinity) is what holds XLA to one core.
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
THREAD_VARS = tuple(ONE_CORE_ENV)
# Variables that override OpenBLAS's own choice of kernel and cache sizes:
# never passed to a worker, so NumPy runs the kernel OpenBLAS picks for this
# CPU (each worker reports it, through threadpoolctl).
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE",
                  "GOTOBLAS_CORETYPE")
HERE = os.path.dirname(os.path.abspath(__file__))


class WorkerError(RuntimeError):
    """A worker failed to set up or to run; the message holds its traceback."""


class Contender:
    """One benchmark worker process.

    Parameters
    ----------
    cpus : set of int or None
        CPUs to pin the worker to from its start (None: not pinned, default
        threads everywhere).
    """

    def __init__(self, cpus=None, cbp_src=None):
        env = dict(os.environ)
        for var in THREAD_VARS + BLAS_OVERRIDES:
            env.pop(var, None)
        if cpus is not None:
            env.update(ONE_CORE_ENV if len(cpus) == 1 else {})
        self.cpus = None if cpus is None else sorted(cpus)
        self.cbp_src = cbp_src
        # The child pins itself before it imports anything (no library has
        # started a thread yet); a preexec_fn would fork this process, which
        # may hold JAX's or PyTorch's threads.  Its path starts with the
        # cbp to time (another commit's build for --against), then bench/.
        path = ([cbp_src] if cbp_src else []) + [HERE]
        pin = "" if cpus is None else f"os.sched_setaffinity(0, {set(cpus)!r}); "
        code = (f"import os, sys; {pin}sys.path[:0] = {path!r}; "
                "from worker import main; main()")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, bufsize=1)

    def _ask(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"worker exited with code {self.proc.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(reply["error"])
        return reply

    def setup(self, **spec):
        """Build a contender in the worker (see :func:`_setup`); returns its reply."""
        return self._ask(dict(spec, cmd="setup"))

    def sample(self):
        """Seconds of one sample, measured in the worker."""
        return self._ask({"cmd": "run"})["seconds"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------

def _blas_kernels():
    """The BLAS libraries loaded here and the kernel each chose (threadpoolctl), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _setup(spec):
    # Returns (run, info): run() -> seconds of one sample (already scaled).
    import numpy as np

    import cbp
    import peers
    import refs
    from cbp import _core

    impl = spec["impl"]
    dt = np.dtype(spec.get("dtype", "float64"))
    clock = time.perf_counter
    info = {"threads_seen": os.cpu_count() if not hasattr(os, "sched_getaffinity")
            else len(os.sched_getaffinity(0)),
            "cbp_file": cbp.__file__, "blas": _blas_kernels(),
            "blas_overrides": {v: os.environ[v] for v in BLAS_OVERRIDES if v in os.environ}}

    if impl in ("gemm", "peak32", "peak64"):
        if impl == "gemm":
            rng = np.random.default_rng(0)
            A, B = rng.random((1024, 1024)).astype(dt), rng.random((1024, 1024)).astype(dt)
            C = np.empty_like(A)
            flops = 2 * 1024 ** 3

            def call():
                np.matmul(A, B, out=C)
        else:
            single, width = dt == np.float32, 64 if impl == "peak64" else 32
            steps = 2_000_000

            def call():
                _core.py_fma_peak(steps, single, width)
            flops = _core.py_fma_peak(1, single, width)[0] * steps
        call()
        number = 1
        while True:  # at least 0.1 s per sample
            t0 = clock()
            for _ in range(number):
                call()
            if clock() - t0 >= 0.1:
                break
            number *= 2
        info["flops_per_call"] = flops

        def run():
            t0 = clock()
            for _ in range(number):
                call()
            return (clock() - t0) / number
        return run, info

    sizes, m, eta = spec["sizes"], spec["m"], spec["eta"]
    n, n_scale = spec["n"], spec["n_scale"]
    X, Y, labels, description = refs.mnist_like(n, dt, source=spec.get("data"))
    info["data"] = description
    seed = 0
    net0 = cbp.Network(sizes, dtype=dt, seed=seed)
    w0 = [np.array(w) for w in net0.weights]
    b0 = [np.array(b) for b in net0.biases]
    rng = np.random.default_rng(seed)
    few = min(n, 4 * m)
    scale = n_scale / n

    if impl == "cbp":
        net = cbp.Network(sizes, dtype=dt, seed=seed)
        cbp.Network(sizes, dtype=dt, seed=seed).SGD((X[:few], Y[:few]), 1, m, eta, verbose=False)
        info["version"] = cbp.__version__

        def epoch():
            net.SGD((X, Y), 1, m, eta, verbose=False)
    elif impl in ("network_py", "numpy_per_example"):
        k = min(n, spec["per_example_n"])
        fn = refs.network_py_epoch if impl == "network_py" else refs.numpy_per_example_epoch
        w, b, Xk, Yk = [v.copy() for v in w0], [v.copy() for v in b0], X[:k], Y[:k]
        scale = n_scale / k
        info["examples_timed"] = k
        info["version"] = np.__version__

        def epoch():
            fn(w, b, Xk, Yk, eta, m, rng=rng)
    elif impl == "numpy_matmul":
        w, b = [v.copy() for v in w0], [v.copy() for v in b0]
        info["version"] = np.__version__

        def epoch():
            refs.numpy_matmul_epoch(w, b, X, Y, eta, m, rng=rng)
    elif impl in ("torch", "torch_bp"):
        threads = 1 if spec.get("one_core") else None
        make = peers.torch_trainer if impl == "torch" else peers.torch_backprop_trainer
        epoch = make(w0, b0, X, Y, eta, m, seed=seed, threads=threads)
        if epoch is None:
            return None, {"skipped": "torch is not installed"}
        make(w0, b0, X[:few], Y[:few], eta, m, threads=threads)()
        import torch
        info["version"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    elif impl == "jax":
        epoch = peers.jax_trainer(w0, b0, X, Y, eta, m, seed=seed)
        if epoch is None:
            return None, {"skipped": "jax is not installed"}
        epoch()  # compiles
        info["version"] = epoch.version
    elif impl == "sklearn":
        epoch = peers.sklearn_trainer(sizes, X, labels, spec.get("sklearn_eta", 0.1), m, seed=seed)
        if epoch is None:
            return None, {"skipped": "scikit-learn is not installed"}
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            epoch.model.partial_fit(X[:few], labels[:few], classes=np.arange(sizes[-1]))
        import sklearn
        info["version"] = sklearn.__version__
    else:
        raise ValueError(f"unknown contender {impl!r}")

    import gc

    def run():
        gc.collect()
        gc.disable()
        try:
            t0 = clock()
            epoch()
            return (clock() - t0) * scale
        finally:
            gc.enable()
    return run, info


def main():
    import traceback
    run = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "quit":
                break
            if msg["cmd"] == "setup":
                run = None
                run, info = _setup(msg)
                reply = dict(info, ok=run is not None)
            elif msg["cmd"] == "run":
                reply = {"seconds": run()}
            else:
                reply = {"error": f"unknown command {msg['cmd']!r}"}
        except Exception:  # report to the parent, keep serving
            reply = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
