"""Chapter 6's networks, one epoch each: cbp.network3 against PyTorch and JAX.

    python bench/network3.py                  # 3 rounds, 2,000 training images per epoch (~15 min)
    python bench/network3.py --quick          # a smoke test in seconds: NOT comparable
    python bench/network3.py --nets basic_conv,dropout --rounds 5 --train 4000
    python bench/network3.py --json out.json   # default: bench/results/network3.json (quick: quick-network3.json)
    python bench/network3.py --against main    # also cbp as built from git ref main, same rounds

The networks are the book's (``conv.py``), at mini-batch 10, float32 (the
original's ``floatX``):

==============  ========================================================================  =====  =====
name            layers                                                                    eta    lmbda
==============  ========================================================================  =====  =====
shallow         FC 784-100 sigmoid, softmax 100-10                                        0.1    0
basic_conv      conv 20x5x5 + pool 2x2 sigmoid, FC 2880-100 sigmoid, softmax              0.1    0
dbl_conv        conv 20x5x5, conv 40x20x5x5 (pool 2x2, ReLU), FC 640-100 ReLU, softmax    0.03   0.1
dropout         the same two conv layers, FC 640-1000 and 1000-1000 ReLU with dropout     0.03   0
                0.5, softmax 1000-10 with dropout 0.5 (the book's best single net)
==============  ========================================================================  =====  =====

Contenders, each timed by the wall clock around one epoch as its user runs
it: training on ``--train`` images (mini-batches in order), then the
accuracy on ``--eval`` validation and ``--eval`` test images:

- ``cbp``: ``cbp.network3``, the book's script with the import changed:
  ``load_data_shared`` on a file in the book's format, ``Network``,
  ``net.SGD(training_data, 1, 10, eta, validation_data, test_data, lmbda)``
  (its printed lines go to a buffer);
- ``torch``: PyTorch eager, written with care: no autograd at all (the
  backward pass by hand with ATen's ``convolution_backward``, max-unpooling
  and matrix products, under ``torch.inference_mode``), filters kept
  flipped so that ``conv2d`` (a correlation) computes the book's true
  convolution, parameters updated in place;
- ``torch.compile``: the same mini-batch step through ``torch.compile``
  (skipped, with the reason, when it fails here);
- ``jax``: ``jax.grad`` of the book's cost, the whole epoch one jitted
  ``lax.scan`` over the mini-batches, evaluation jitted.

Every contender starts from the same weights: those the original draws
after ``np.random.seed(0)`` (computed by tests/network3_reference.py).
Before timing, each worker checks one mini-batch step (dropout off) against
that NumPy reference in float64; the largest absolute difference of any
weight or bias (they are of order 0.01 to 1) is in the JSON and printed
(float32 arithmetic: about 1e-7; the run fails above 1e-4).

``--against REF`` adds the contender ``cbp@REF``: the git ref's tree (``git
archive``) built in a scratch directory and imported first (``PYTHONPATH``),
timed in the same interleaved rounds as this tree; its ``x`` ratio is this
tree's speed-up over it (the way to measure a kernel change: same run, same
load).  ``--against-dir DIR`` uses a tree already built in place there.

Each contender runs in its own worker process.  One-core rows: the worker
pins itself to CPU 0 (``os.sched_setaffinity``) as its first statement,
before importing anything, with OMP/OpenBLAS/MKL threads 1,
``torch.set_num_threads(1)`` and ``--xla_cpu_multi_thread_eigen=false``.  Default
threads: not pinned, no thread variables (each library's own default).
Rounds interleave the contenders (order rotated each round); a time is the
median over rounds, a ratio the median of per-round ratios with its min-max
(``x torch`` = time(torch) / time(cbp): above 1, cbp is faster).  In the
default mode cbp also runs on one core in the same rounds (``cbp (one
core)``): its ratio is cbp's speed-up from its threads, paired round by
round.  Those runs are the default worker's own, its network and process,
on one thread (``network3.config.num_threads = 1``) pinned to CPU 0 for the
run: worker processes differ (against the previous commit, whose code ran
the same work for ``shallow`` and ``basic_conv``, the two workers' default
epochs took per-round ratios of 0.80-1.14 and 0.62-1.00), and a ratio of
two processes' times carried that into the speed-up.  Each round is bracketed by cbp's barrier probe
(``_core.py_barrier_ns``, in this process after 0.5 s of quiet: the cost of
one meeting of a two-thread team, about a round trip of a cache line
between the two cores), kept per round in the JSON (``barrier_ns``); where
some rounds' probe exceeded twice the run's lowest, the ratios over the
others ("near" rounds) are given too.  On the 2-vCPU VM of these runs the
probe moves between ~35 and ~180 ns as the host places the two vCPUs near
or apart, and a team's speed-up with it.  A round
runs each contender's epoch back to back until the epochs add up to
``--round-gflop`` (8 GFLOP: ``shallow`` 8 epochs, ``basic_conv`` 2, the
others 1) and a time is seconds per epoch: on a 2-vCPU VM a team whose
second core idled between rounds runs slow for its first tens of
milliseconds, longer than one ``shallow`` epoch (10 ms at two threads), and
the book's scripts call ``SGD`` once for all their epochs.  ``--round-gflop
0`` times one epoch a round.

Also printed: the extrapolation of the book's best single net (``dropout``)
to its run in the book, 40 epochs of the 250,000-image expanded set, from
the measured epoch scaled by 250,000 / ``--train`` (conservative: the
measured epoch evaluates ``2 --eval`` images per ``--train`` training
images, more than the book's 20,000 per 250,000), and its FLOP count.
"""
import math
import os
import sys

if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "--worker":
    # First statement of a worker, before any library starts a thread.
    if sys.argv[2] != "all":
        os.sched_setaffinity(0, {int(c) for c in sys.argv[2].split(",")})

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from network3_contenders import (M, book_data, cbp_contender, forward_flops,  # noqa: E402
                                 jax_contender, reference_net, reference_step, torch_contender,
                                 train_flops)
BOOK_EXPANDED = 250_000      # the expanded training set
BOOK_EPOCHS = 40             # epochs of the book's dropout net
# The one-core workers' environment is bench/run.py's (worker.py says why
# XLA gets one flag only: the pinning is what holds it to one core).
from worker import ONE_CORE_ENV  # noqa: E402

# (kind, ...) per layer: ("conv", filters, in_maps, size, image, activation),
# ("fc", n_in, n_out, activation, p), ("softmax", n_in, n_out, p)
_CONV1 = ("conv", 20, 1, 5, 28)
_CONV2 = ("conv", 40, 20, 5, 12)
NETS = {
    "shallow": dict(eta=0.1, lmbda=0.0, layers=[
        ("fc", 784, 100, "sigmoid", 0.0), ("softmax", 100, 10, 0.0)]),
    "basic_conv": dict(eta=0.1, lmbda=0.0, layers=[
        _CONV1 + ("sigmoid",), ("fc", 20 * 12 * 12, 100, "sigmoid", 0.0), ("softmax", 100, 10, 0.0)]),
    "dbl_conv": dict(eta=0.03, lmbda=0.1, layers=[
        _CONV1 + ("ReLU",), _CONV2 + ("ReLU",), ("fc", 40 * 4 * 4, 100, "ReLU", 0.0),
        ("softmax", 100, 10, 0.0)]),
    "dropout": dict(eta=0.03, lmbda=0.0, layers=[
        _CONV1 + ("ReLU",), _CONV2 + ("ReLU",), ("fc", 640, 1000, "ReLU", 0.5),
        ("fc", 1000, 1000, "ReLU", 0.5), ("softmax", 1000, 10, 0.5)]),
}
CONTENDERS = ("cbp", "torch", "torch.compile", "jax")


def _setup(spec, tmpdir):
    net = NETS[spec["net"]]
    layers, eta, lmbda = [tuple(s) for s in net["layers"]], net["eta"], net["lmbda"]
    data = book_data(spec["train"], spec["eval"])
    w0 = [(layer.w, layer.b) for layer in reference_net(layers).layers]
    impl = spec["impl"]
    if impl == "cbp":
        epoch, step1, version = cbp_contender(layers, eta, lmbda, data, w0, tmpdir)
    elif impl in ("torch", "torch.compile"):
        epoch, step1, version = torch_contender(layers, eta, lmbda, data, w0, impl == "torch.compile",
                                                spec["one_core"])
    elif impl == "jax":
        epoch, step1, version = jax_contender(layers, eta, lmbda, data, w0)
    else:
        raise ValueError(impl)
    # The check: one mini-batch from the same weights, dropout off, against float64 NumPy.
    x, y = data[0][0][:M], data[0][1][:M]
    got, nb_used = step1(x, y)
    want = reference_step(layers, eta, lmbda, nb_used, x, y)
    err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    # The check's NumPy products leave OpenBLAS's threads spinning for 0.1-0.2 s
    # on the other core, where a team of threads then ran cbp's shallow net 10x
    # slower and its pace kept one thread for the whole benchmark.  A user's
    # script that calls SGD right after such products pays that once.
    time.sleep(0.5)
    t0 = time.perf_counter()
    epoch()   # warm-up (and compilation)
    return epoch, {"version": version, "check_max_abs_err": err, "first_epoch_s": time.perf_counter() - t0}


def _one_core(cpu):
    """Hold this (cbp) worker's next runs to one thread pinned to ``cpu``; returns what undoes it.

    The paired ``cbp (one core)`` runs: the same network, buffers and process
    as the default-threads runs beside them, through cbp's own setting
    (``network3.config.num_threads``), the calling thread pinned.
    """
    import cbp.network3 as n3
    cpus, threads = os.sched_getaffinity(0), n3.config.num_threads
    os.sched_setaffinity(0, {cpu})
    n3.config.num_threads = 1

    def restore():
        n3.config.num_threads = threads
        os.sched_setaffinity(0, cpus)
    return restore


def worker_main():
    # Replies go to the original stdout; anything a library prints (cbp.network3
    # prints a line on import) goes to stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run = None
    with tempfile.TemporaryDirectory() as tmpdir:
        for line in sys.stdin:
            msg = json.loads(line)
            try:
                if msg["cmd"] == "quit":
                    break
                if msg["cmd"] == "setup":
                    run, info = _setup(msg, tmpdir)
                    reply = dict(info, ok=True)
                else:
                    epochs = int(msg.get("epochs", 1))
                    restore = _one_core(msg["cpu"]) if "cpu" in msg else None
                    gc.collect()
                    gc.disable()
                    try:
                        t0 = time.perf_counter()
                        for _ in range(epochs):
                            run()
                        reply = {"seconds": (time.perf_counter() - t0) / epochs}
                    finally:
                        # a failed epoch must not leave the next default runs pinned
                        gc.enable()
                        if restore is not None:
                            restore()
            except Exception:
                reply = {"error": traceback.format_exc()}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()


# ---------------------------------------------------------------------------
# parent


class Worker:
    def __init__(self, one_core, cpu, pythonpath=None):
        env = dict(os.environ)
        for var in ONE_CORE_ENV:
            env.pop(var, None)
        if one_core:
            env.update(ONE_CORE_ENV)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([pythonpath] + [p for p in [env.get("PYTHONPATH")] if p])
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", str(cpu) if one_core else "all"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, bufsize=1)

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker exited with code {self.proc.wait()}"}
        return json.loads(line)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


class OneCore(Worker):
    """cbp's default-threads worker asked to run on one thread pinned to ``cpu`` (_one_core)."""

    def __init__(self, worker, cpu):
        self.proc = None
        self.worker, self.cpu = worker, cpu

    def ask(self, **msg):
        if msg.get("cmd") != "run":
            raise ValueError(f"a OneCore worker only runs epochs, not {msg.get('cmd')!r}")
        return self.worker.ask(**msg, cpu=self.cpu)


def _others_busy(seconds=0.5):
    """CPUs kept busy by everything on the machine, from /proc/stat (this process is idle)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
        return round((os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0)), 2)
    except OSError:
        return None


def round_epochs(name, args):
    """Epochs a round runs back to back: enough for ``--round-gflop`` (shallow's 1.1 GFLOP epoch: 8)."""
    layers = NETS[name]["layers"]
    epoch = train_flops(layers) * args.train + forward_flops(layers) * 2 * args.eval
    return max(1, math.ceil(args.round_gflop * 1e9 / epoch))


def barrier_ns():
    """The cost of one meeting of a two-thread team now (cbp._core.py_barrier_ns), or None.

    About a round trip of a cache line between the two cores: on the 2-vCPU
    VM these benchmarks ran on it moves between ~35 ns and ~180 ns as the
    host places the vCPUs near or apart, and a team's speed with it.
    """
    try:
        from cbp import _core
    except ImportError:
        return None
    if not hasattr(_core, "py_barrier_ns"):
        return None
    # after a round, the workers' OpenMP and OpenBLAS threads spin a while
    # before they sleep: they would slow the probe's threads down
    time.sleep(0.5)
    best = None
    for _ in range(3):
        team, ns = _core.py_barrier_ns(10_000)
        if team != 2:
            return None
        best = ns if best is None else min(best, ns)
    return round(best, 1)


ONE_CORE_CBP = "cbp (one core)"


def measure(nets, contenders, mode, args):
    """Interleaved rounds of every contender on every net in one mode; rows of results.

    In the default mode cbp also runs pinned to one core in the same rounds
    (``cbp (one core)``): its ``x`` is then cbp's speed-up from its own
    threads, round by round.  Each round is bracketed by the barrier probe.
    """
    rows = []
    for name in nets:
        workers, infos = {}, {}
        runs = list(contenders)
        if mode == "default" and "cbp" in contenders:
            runs.insert(runs.index("cbp") + 1, ONE_CORE_CBP)
        for impl in runs:
            if impl == ONE_CORE_CBP:
                if "cbp" in workers:
                    workers[impl] = OneCore(workers["cbp"], args.cpu)
                    infos[impl] = dict(infos["cbp"], same_process_as="cbp")
                    workers[impl].ask(cmd="run", epochs=1)     # its plan and buffers: untimed
                continue
            against = impl.startswith("cbp@")
            one_core = mode == "one_core"
            w = Worker(one_core, args.cpu, str(args.against_src) if against else None)
            info = w.ask(cmd="setup", net=name, impl="cbp" if impl.startswith("cbp") else impl,
                         train=args.train, eval=args.eval, one_core=one_core)
            if "error" in info:
                last = info["error"].strip().splitlines()[-1]
                print(f"  {name:<11} {impl:<14} skipped: {last}", flush=True)
                infos[impl] = {"skipped": last}
                w.close()
                continue
            workers[impl], infos[impl] = w, info
        times = {impl: [] for impl in workers}
        order = list(workers)
        epochs = round_epochs(name, args)
        probes = [barrier_ns()]
        for r in range(args.rounds):
            k = r % max(1, len(order))
            for impl in order[k:] + order[:k]:
                reply = workers[impl].ask(cmd="run", epochs=epochs)
                times[impl].append(reply.get("seconds", float("nan")))
            probes.append(barrier_ns())
        others = _others_busy()
        for w in workers.values():
            w.close()
        # a round's probe: the larger of the two around it (None if either failed)
        round_probe = [None if a is None or b is None else max(a, b) for a, b in zip(probes, probes[1:])]
        near = near_rounds(round_probe)
        layers = NETS[name]["layers"]
        flops = (train_flops(layers) * args.train + forward_flops(layers) * 2 * args.eval)
        for impl in runs:
            row = {"net": name, "mode": mode, "impl": impl, "epochs_per_round": epochs,
                   **infos.get(impl, {})}
            if impl in times:
                row["seconds"] = times[impl]
                row["median_s"] = statistics.median(times[impl])
                row["gflops"] = flops / row["median_s"] / 1e9
                if impl != "cbp" and "cbp" in times:
                    ratios = [t / c for t, c in zip(times[impl], times["cbp"])]
                    row["cbp_speedup"] = statistics.median(ratios)
                    row["cbp_speedup_range"] = [min(ratios), max(ratios)]
                    if near and len(near) < len(ratios):
                        row["cbp_speedup_near"] = statistics.median(ratios[i] for i in near)
                        row["near_rounds"] = len(near)
            row["barrier_ns"] = round_probe
            row["others_busy_cpus"] = others
            rows.append(row)
            _print_row(row)
    return rows


def near_rounds(round_probe):
    """Rounds whose barrier probe stayed within 2x the run's lowest: the cores near each other."""
    known = [v for v in round_probe if v is not None]
    if not known:
        return []
    return [i for i, v in enumerate(round_probe) if v is not None and v <= 2 * min(known)]


def _print_row(row):
    if "median_s" not in row:
        return
    ratio = ""
    if "cbp_speedup" in row:
        lo, hi = row["cbp_speedup_range"]
        ratio = f"  cbp x{row['cbp_speedup']:.2f} ({lo:.2f}-{hi:.2f})"
        if "cbp_speedup_near" in row:
            ratio += f", x{row['cbp_speedup_near']:.2f} in the {row['near_rounds']} near rounds"
    if any(v is not None for v in row.get("barrier_ns", [])) and row["impl"] == "cbp":
        ratio += "  barrier " + "/".join("-" if v is None else f"{v:.0f}" for v in row["barrier_ns"]) + " ns"
    print(f"  {row['net']:<11} {row['mode']:<9} {row['impl']:<14} {row['median_s']:8.3f} s "
          f"{row['gflops']:6.1f} GFLOP/s  check {row['check_max_abs_err']:.1e}{ratio}", flush=True)


def table(rows, args):
    lines = [f"| net | mode | contender | epoch of {args.train:,} + 2x{args.eval:,} eval (s) | GFLOP/s | "
             "cbp speed-up (min-max) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "median_s" in r:
            sp = (f"{r['cbp_speedup']:.2f} ({r['cbp_speedup_range'][0]:.2f}-{r['cbp_speedup_range'][1]:.2f})"
                  if "cbp_speedup" in r else "")
            if "cbp_speedup_near" in r:
                sp += f"; {r['cbp_speedup_near']:.2f} in {r['near_rounds']} near rounds"
            lines.append(f"| {r['net']} | {r['mode']} | {r['impl']} | {r['median_s']:.3f} | "
                         f"{r['gflops']:.1f} | {sp} |")
        else:
            lines.append(f"| {r['net']} | {r['mode']} | {r['impl']} | skipped: {r.get('skipped', '')} | | |")
    return "\n".join(lines)


def extrapolate(rows, args):
    out = {}
    layers = NETS["dropout"]["layers"]
    total = train_flops(layers) * BOOK_EXPANDED * BOOK_EPOCHS
    out["book_run_tflop"] = total / 1e12
    for r in rows:
        if r["net"] == "dropout" and "median_s" in r:
            hours = r["median_s"] * BOOK_EXPANDED / args.train * BOOK_EPOCHS / 3600
            out[f"{r['impl']}/{r['mode']}_hours"] = hours
    return out


def build_ref(ref):
    """The git ref's tree, extracted and built in place in a scratch directory (kept for reuse)."""
    repo = HERE.parent
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", ref + "^{commit}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    root = Path(tempfile.gettempdir()) / f"cbp-network3-against-{commit[:12]}"
    if not (root / "BUILT").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        print(f"building {ref} ({commit[:12]}) in {root} ...", flush=True)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=root,
                       check=True, stdout=subprocess.DEVNULL)
        (root / "BUILT").write_text(commit + "\n")
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--modes", default="one_core,default")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train", type=int, default=2000, help="training images per epoch (multiple of 10)")
    p.add_argument("--eval", type=int, default=500, help="validation and test images each")
    p.add_argument("--cpu", type=int, default=0, help="the CPU one-core workers pin to")
    p.add_argument("--round-gflop", type=float, default=8.0,
                   help="each round runs a net's epochs back to back until they add up to this "
                        "many GFLOP (at least one epoch); 0: one epoch a round")
    p.add_argument("--quick", action="store_true",
                   help="seconds: shallow and basic_conv, 100 images, 1 round, one core, no torch.compile")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--against", default=None, metavar="REF",
                   help="also time cbp built from this git ref (a scratch build), same rounds")
    p.add_argument("--against-dir", type=Path, default=None, metavar="DIR",
                   help="also time the cbp source tree DIR (already built in place)")
    args = p.parse_args()
    if args.quick:
        args.nets, args.rounds, args.train, args.eval = "shallow,basic_conv", 1, 100, 20
        args.round_gflop = 0.0
        if args.modes == "one_core,default":
            args.modes = "one_core"
        if args.contenders == ",".join(CONTENDERS):
            args.contenders = "cbp,torch,jax"
    nets = [n for n in args.nets.split(",") if n]
    contenders = [c for c in args.contenders.split(",") if c]
    for n in nets:
        if n not in NETS:
            p.error(f"--nets: unknown net {n!r}; choose from {', '.join(NETS)}")
    args.against_src = None
    if args.against or args.against_dir:
        args.against_src = (args.against_dir.resolve() if args.against_dir
                            else build_ref(args.against)) / "src"
        if not (args.against_src / "cbp").is_dir():
            p.error(f"--against-dir: no src/cbp in {args.against_src.parent}")
        label = args.against or str(args.against_dir)
        contenders.insert(1 if "cbp" in contenders else 0, f"cbp@{label}")
    for c in contenders:
        if c.startswith("cbp@"):
            continue
        if c not in CONTENDERS:
            p.error(f"--contenders: unknown {c!r}; choose from {', '.join(CONTENDERS)}")
    if args.train < M or args.train % M:
        p.error("--train must be a positive multiple of 10")
    import report   # bench/report.py: the host as every table names it
    host = report.host_info()["label"]
    print(f"cbp.network3 benchmark on {host}: {args.train:,} training + 2 x {args.eval:,} evaluation "
          f"images per epoch, mini-batch {M}, float32, {args.rounds} round(s) of "
          f"{', '.join(f'{n} {round_epochs(n, args)}' for n in nets)} epoch(s) back to back",
          flush=True)
    rows = []
    for mode in args.modes.split(","):
        print(f"{mode}:", flush=True)
        rows += measure(nets, contenders, mode, args)
    print()
    print(table(rows, args))
    extra = extrapolate(rows, args)
    print(f"\nThe book's best single net (dropout), 40 epochs of 250,000 images: "
          f"{extra['book_run_tflop']:.0f} TFLOP; extrapolated from the measured epochs:")
    for k, v in extra.items():
        if k.endswith("_hours"):
            print(f"  {k[:-6]:<28} {v:6.2f} h")
    machine = report.machine_info()
    import cbp
    machine["cbp_file"] = cbp.__file__
    result = {"host": host, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "command": " ".join([Path(sys.executable).name] + sys.argv), "python": platform.python_version(),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": machine, "rows": rows, "extrapolation": extra,
              "train_flops_per_image": {n: train_flops(NETS[n]["layers"]) for n in NETS}}
    path = args.json or HERE / "results" / ("quick-network3.json" if args.quick else "network3.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"\nsaved {path}")
    bad = [r for r in rows if r.get("check_max_abs_err", 0) > 1e-4]
    if bad:
        print("CHECK FAILED: " + ", ".join(f"{r['net']}/{r['impl']} {r['check_max_abs_err']:.1e}" for r in bad))
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        worker_main()
    else:
        sys.exit(main())
