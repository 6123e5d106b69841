#!/usr/bin/env python
"""cbp's microbenchmark suite: kernels, training epochs, feedforward, peak memory.

    python bench/run.py             # full run (about 10 minutes on 2 cores)
    python bench/run.py --quick     # a few minutes, small samples: not comparable
    python bench/run.py --json out.json --sections kernels,epochs
    python bench/table.py           # README's performance table from bench/results/full.json

Training epochs run one contender per process (cbp._bench_worker), each
pinned to CPU 0 from its start for the one-core tables and left at its
defaults for the default-threads table; every contender is timed by the wall
clock around the call a user makes.  The kernel, feedforward and check
sections run in this process on one thread; the memory probe in a fresh one.
Times are medians over interleaved rounds, ratios medians of per-round ratios
with their min-max spread; see bench/README.md for what each number means.
"""
import os

# Before NumPy (and its BLAS) is imported anywhere: one thread everywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import cbp  # noqa: E402
from cbp import benchmark as B  # noqa: E402
from cbp._bench_worker import Contender  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA_DIR = ROOT.parent / "shared" / "data"   # the t10k IDX files: 10,000 distinct images
SECTIONS = ("checks", "kernels", "epochs", "threads", "feedforward", "memory")
DTYPES = (np.float64, np.float32)
N_EPOCH = 10_000

# (sizes, mini-batch size, η); the two large ones use η = 0.5 to stay away
# from divergence (it does not change the work per epoch).
CONFIGS = [
    ([784, 30, 10], 10, 3.0),
    ([784, 100, 10], 10, 3.0),
    ([784, 100, 10], 100, 3.0),
    ([784, 256, 256, 10], 64, 0.5),
    ([784, 1024, 1024, 10], 128, 0.5),
]
BIG = ([784, 256, 256, 10], [784, 1024, 1024, 10])
# The default-threads table: the wide nets, where threads can pay.
THREADED = [c for c in CONFIGS if c[0] in BIG]

def name(sizes):
    return "[" + ",".join(str(s) for s in sizes) + "]"


# Per mode: examples actually trained per epoch (times are scaled to 10,000),
# rounds, and examples for the per-example references (scaled too).
PLAN = {
    "full": {"n": {}, "n_default": N_EPOCH, "rounds": 5, "rounds_big": 3,
             "per_example": {name([784, 1024, 1024, 10]): 300}, "per_example_default": 1000,
             "kernel_rounds": 7, "kernel_min_time": 0.02, "ff_rounds": 7, "ff_min_time": 0.1},
    "quick": {"n": {name([784, 256, 256, 10]): 2000, name([784, 1024, 1024, 10]): 500},
              "n_default": 2000, "rounds": 1, "rounds_big": 1,
              "per_example": {name([784, 1024, 1024, 10]): 50}, "per_example_default": 200,
              "kernel_rounds": 3, "kernel_min_time": 0.003, "ff_rounds": 3, "ff_min_time": 0.02},
}

IMPLS = ("cbp", "network_py", "numpy_per_example", "numpy_matmul", "torch", "jax", "sklearn")
THREADED_IMPLS = ("cbp", "numpy_matmul", "torch", "jax")
PROBES = ("gemm", "peak64", "peak32")
SHORT = {"network_py": "net.py", "numpy_per_example": "np/ex", "numpy_matmul": "np/mm",
         "torch": "torch", "jax": "jax", "sklearn": "sklearn"}
LABELS = B.LABELS


def say(text=""):
    print(text, flush=True)


def short(dtype_name):
    return "f" + dtype_name[5:]  # float64 -> f64


def cpus_(load):
    v = load["others_cpus"]
    return "?" if v is None else f"{v:.2f}"


def git_head():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------

def run_checks():
    rows = []
    for sizes in ([784, 30, 10], [784, 64, 32, 10]):
        for dtype in DTYPES:
            d = B.check_references(sizes, 10, 3.0, dtype, with_torch=True)
            step = d.pop("step_size")
            tol = 1e-10 if dtype == np.float64 else 1e-4
            for ref, diff in d.items():
                rows.append({"net": name(sizes), "dtype": np.dtype(dtype).name, "reference": ref,
                             "max_diff": diff, "step_size": step, "tolerance": tol,
                             "ok": "yes" if diff <= tol else "NO"})
    say(B.format_table(rows, [("net", "net", None), ("dtype", "dtype", None),
                              ("reference", "reference vs cbp", None),
                              ("max_diff", "max |diff|", ".1e"),
                              ("step_size", "step size", ".2g"), ("ok", "ok", None)],
                       title="Self-check: one mini-batch (m=10, eta=3) from the same weights"))
    return rows


def run_kernels(plan):
    rows = B.bench_kernels(rounds=plan["kernel_rounds"], min_time=plan["kernel_min_time"])
    cols = [("kernel", "kernel", None), ("layer", "layer", None), ("M", "M", "d"),
            ("dtype", "dtype", None), ("cbp_us", "cbp us", ".2f"),
            ("numpy_us", "numpy us", ".2f"), ("speedup", "x numpy", ".2f"),
            ("cbp_gflops", "cbp GF/s", ".2f"), ("numpy_gflops", "numpy GF/s", ".2f"),
            ("max_diff", "max |diff|", ".0e")]
    say(B.format_table(rows, cols, title="Kernels alone (py_* wrappers, per call; x numpy = "
                                         "numpy time / cbp time)"))
    return rows


def _ratio(num, den):
    if not num or not den:
        return None
    lo, hi = B.spread(num, den)
    return {"median": B.paired_ratio(num, den), "min": lo, "max": hi, "rounds": len(num)}


def _measure(workers, specs, rounds):
    """Set every contender up, then interleave ``rounds`` rounds; per-round seconds and infos."""
    infos, active = {}, []
    for impl, spec in specs.items():
        info = workers[impl].setup(**spec)
        infos[impl] = info
        if info.get("ok"):
            active.append(impl)
    times = {impl: [] for impl in active}
    for r in range(rounds):
        k = r % len(active)
        for impl in active[k:] + active[:k]:
            times[impl].append(workers[impl].sample())
    return times, infos


def run_epochs(plan, source, pinned=True, configs=CONFIGS, impls=IMPLS):
    """One row per (config, dtype): per-round seconds of every contender, ratios, % of peak."""
    mode = "one_core" if pinned else "default_threads"
    cpus = {0} if pinned else None
    names = list(impls) + (list(PROBES) if pinned else [])
    workers = {impl: Contender(cpus) for impl in names}
    if not pinned:
        # cbp pinned to one core in the same rounds: its threads' speed-up is
        # then a paired ratio, not two medians of different stretches of time.
        workers["cbp_one_core"] = Contender({0})
    rows = []
    try:
        for sizes, m, eta in configs:
            n = plan["n"].get(name(sizes), plan["n_default"])
            k = min(n, plan["per_example"].get(name(sizes), plan["per_example_default"]))
            rounds = plan["rounds_big"] if sizes in BIG else plan["rounds"]
            for dtype in DTYPES:
                tag = np.dtype(dtype).name
                base = {"sizes": sizes, "m": m, "eta": eta, "dtype": tag, "n": n,
                        "n_scale": N_EPOCH, "per_example_n": k,
                        "data": None if source is None else str(source), "one_core": pinned}
                specs = {impl: dict(base, impl=impl) for impl in names}
                if not pinned:
                    specs["cbp_one_core"] = dict(base, impl="cbp", one_core=True)
                t0 = time.perf_counter()
                with B.others_load([w.proc.pid for w in workers.values()]) as load:
                    times, infos = _measure(workers, specs, rounds)
                flops = B.train_flops(sizes) * N_EPOCH
                cbp_t = times["cbp"]
                row = {"mode": mode, "config": name(sizes), "sizes": sizes, "m": m, "eta": eta,
                       "dtype": tag, "n_timed": n, "n_scaled_to": N_EPOCH, "rounds": rounds,
                       "per_example_n": k, "others_cpus": load["others_cpus"],
                       "others_exclude_workers": True,
                       "per_round": times, "info": infos,
                       "seconds": {impl: B.median(v) for impl, v in times.items()
                                   if impl in impls},
                       "speedup": {impl: _ratio(times[impl], cbp_t) for impl in impls
                                   if impl != "cbp" and impl in times},
                       "skipped": {impl: info.get("skipped") for impl, info in infos.items()
                                   if not info.get("ok")},
                       "gflops": flops / B.median(cbp_t) / 1e9}
                if "cbp_one_core" in times:
                    row["cbp_vs_one_core"] = _ratio(times["cbp_one_core"], cbp_t)
                for probe in PROBES:
                    if probe in times:
                        per_call = infos[probe]["flops_per_call"]
                        peak = [per_call / t for t in times[probe]]
                        row[f"{probe}_gflops"] = B.median(peak) / 1e9
                        row[f"pct_{probe}"] = {key: (100 * v if key != "rounds" else v)
                                               for key, v in _ratio(
                                                   [flops / t for t in cbp_t], peak).items()}
                rows.append(row)
                say(f"  {mode} {name(sizes)} m={m} {short(tag)}: {n} examples, {rounds} rounds, "
                    f"{time.perf_counter() - t0:.0f} s; other processes used {cpus_(load)} CPUs")
    finally:
        for w in workers.values():
            w.close()
    print_epochs(rows, impls)
    return rows


def _fmt_ratio(r):
    if r is None:
        return None
    return f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def print_epochs(rows, impls):
    if not rows:
        return
    mode = rows[0]["mode"]
    what = ("one core: every contender in its own process pinned to CPU 0 from its start"
            if mode == "one_core" else "default threads: no pinning, each library's own "
                                        "thread count")
    flat = []
    for r in rows:
        f = {k: r[k] for k in ("config", "m", "dtype", "gflops")}
        f.update({f"t_{k}": v for k, v in r["seconds"].items()})
        f.update({f"x_{k}": _fmt_ratio(v) for k, v in r["speedup"].items()})
        for probe in PROBES:
            f[probe] = _fmt_ratio(r.get(f"pct_{probe}"))
        flat.append(f)
    say(B.format_table(flat, [("config", "config", None), ("m", "m", "d"),
                              ("dtype", "dtype", None)]
                       + [(f"t_{k}", k if k == "cbp" else SHORT[k], ".3f") for k in impls],
                       title=f"Epoch time, seconds per {N_EPOCH} examples, wall clock (median); "
                             + what))
    cols = [("config", "config", None), ("m", "m", "d"), ("dtype", "dtype", None),
            ("gflops", "cbp GF/s", ".1f")]
    if mode == "one_core":
        cols += [("peak64", "% FMA peak", None), ("peak32", "% 256-bit FMA peak", None),
                 ("gemm", "% d/sgemm", None)]
    say(B.format_table(flat, cols + [(f"x_{k}", f"x {SHORT[k]}", None) for k in impls[1:]],
                       title="cbp speedup = reference time / cbp time, median of per-round "
                             "ratios (min-max over the rounds)"))
    k = rows[0]["per_example_n"]
    if "network_py" in impls:
        say(f"  the per-example references (net.py = {LABELS['network_py']}, np/ex = "
            f"{LABELS['numpy_per_example']}) trained on the first {k} examples (300 on the "
            "widest net) and are scaled to 10,000")
    say("  " + "; ".join(f"{SHORT[i]} = {LABELS[i]}" for i in impls[1:] if i in SHORT))


def run_feedforward(plan, source):
    rows = []
    X64, _, _, _ = B.mnist_like(N_EPOCH, np.float64, source=source)
    for sizes in ([784, 30, 10], [784, 256, 256, 10]):
        for dtype in DTYPES:
            with B.others_load() as load:
                times, diff = B.bench_feedforward(sizes, dtype, X64, rounds=plan["ff_rounds"],
                                                  min_time=plan["ff_min_time"])
            flops = B.forward_flops(sizes) * N_EPOCH
            rows.append({
                "config": name(sizes), "dtype": np.dtype(dtype).name, "n": N_EPOCH,
                "cbp_1_ms": 1e3 * B.median(times["cbp_1"]),
                "cbp_2_ms": 1e3 * B.median(times["cbp_2"]),
                "numpy_ms": 1e3 * B.median(times["numpy"]),
                "cbp_1_gflops": flops / B.median(times["cbp_1"]) / 1e9,
                "x_numpy_1": B.paired_ratio(times["numpy"], times["cbp_1"]),
                "x_threads": B.paired_ratio(times["cbp_1"], times["cbp_2"]),
                "x_numpy_2": B.paired_ratio(times["numpy"], times["cbp_2"]),
                "max_diff": diff, "others_cpus": load["others_cpus"], "per_round": times,
            })
    say(B.format_table(rows, [("config", "config", None), ("dtype", "dtype", None),
                              ("cbp_1_ms", "cbp 1t ms", ".2f"), ("cbp_2_ms", "cbp 2t ms", ".2f"),
                              ("numpy_ms", "numpy ms", ".2f"),
                              ("cbp_1_gflops", "cbp 1t GF/s", ".2f"),
                              ("x_numpy_1", "1t x numpy", ".2f"),
                              ("x_threads", "2t / 1t", ".2f"),
                              ("x_numpy_2", "2t x numpy", ".2f"),
                              ("max_diff", "max |diff|", ".0e"),
                              ("others_cpus", "others' CPUs", ".2f")],
                       title=f"Feedforward of {N_EPOCH} inputs (numpy: one matmul per layer, "
                             "1 BLAS thread)"))
    busy = [r["others_cpus"] for r in rows if r["others_cpus"] is not None]
    if busy:
        say(f"  other processes used {min(busy):.2f}-{max(busy):.2f} of the {os.cpu_count()} "
            "CPUs during these runs" + ("; the 2-thread speedup cannot be measured "
                                         "cleanly" if max(busy) > 0.3 else ""))
    return rows


def run_memory():
    rows = []
    for dtype in ("float64", "float32"):
        code = ("import json; from cbp.benchmark import memory_probe; "
                f"print(json.dumps(memory_probe(n=2000, dtype={dtype!r})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            say(f"memory probe ({dtype}) failed:\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    mib = lambda v: v / 2 ** 20  # noqa: E731
    say(B.format_table(
        [dict(r, config=name(r["sizes"]), inc=mib(r["increase"]), est=mib(r["estimate"]),
              data=mib(r["data_bytes"])) for r in rows],
        [("config", "config", None), ("dtype", "dtype", None), ("n", "n", "d"),
         ("source", "peak from", None), ("inc", "peak RSS increase MiB", ".1f"), ("est", "estimate MiB", ".1f"),
         ("data", "of which data MiB", ".1f"), ("ratio", "increase / estimate", ".2f")],
        title="Peak memory of building and training one epoch (fresh process; estimate = "
              "(params + grads + one mini-batch's activations) x itemsize + data)"))
    return rows


# ---------------------------------------------------------------------------

def data_source():
    """The epochs' data: the 10,000 distinct t10k images, else cbp's sample (labelled)."""
    if any(DATA_DIR.glob("t10k-images-idx3-ubyte*")):
        return DATA_DIR
    return "sample"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one round, small samples: a smoke test, not comparable")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="where to write the results (default: bench/results/<mode>.json)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    mode = "quick" if args.quick else "full"
    plan = PLAN[mode]
    source = data_source()
    start = time.perf_counter()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "comparable": mode == "full", "argv": sys.argv, "git": git_head(),
        "plan": plan, "machine": B.machine_info(), "data": str(source),
        "pinning": "one-core tables: each contender in its own process, "
                   "os.sched_setaffinity(0, {0}) before its interpreter starts (as taskset -c 0), "
                   "OMP/OPENBLAS/MKL_NUM_THREADS=1, XLA_FLAGS=--xla_cpu_multi_thread_eigen=false "
                   "intra_op_parallelism_threads=1, torch.set_num_threads(1); default-threads "
                   "table: not pinned, no thread variables; kernels/feedforward/checks: this "
                   "process, threadpoolctl limit 1 (feedforward 2t passes num_threads=2)",
        "timing": "wall clock around the call a user makes (cbp: net.SGD(...), conversion and "
                  "checks included); medians over interleaved rounds; ratios: median of "
                  "per-round ratios, min-max over the rounds",
    }}
    if mode == "quick":
        say("QUICK MODE: one round on small samples; a smoke test, not comparable with a full run")
    with B.single_thread() as limited:
        results["meta"]["threadpool_limited"] = limited
        if not limited:
            say("threadpoolctl is not installed: relying on the *_NUM_THREADS variables")
        info = results["meta"]["machine"]
        say(f"cbp {cbp.__version__} ({results['meta']['git']}), kernels {info['kernel_variant']}, "
            f"{info['compiler']}; numpy {info['numpy']} (BLAS: "
            + ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}"
                        for b in info["blas"]) + f"), torch {info['torch']}, jax {info['jax']}, "
            f"scikit-learn {info['scikit-learn']}; CPU: {info['cpu']} x{info['logical_cpus']}; "
            f"mode: {mode}")
        say(f"Epoch data: {source}")
        say()
        if "checks" in sections:
            results["checks"] = run_checks()
            say()
        if "kernels" in sections:
            results["kernels"] = run_kernels(plan)
            say()
    if "epochs" in sections:
        results["epochs"] = run_epochs(plan, source, pinned=True)
        say()
    if "threads" in sections:
        results["threads"] = run_epochs(plan, source, pinned=False, configs=THREADED,
                                        impls=THREADED_IMPLS)
        for r in results["threads"]:
            v = r.get("cbp_vs_one_core")
            if v:
                say(f"  {r['config']} {short(r['dtype'])}: cbp at default threads is "
                    f"{_fmt_ratio(v)}x its pinned one-core speed (paired by round)")
        say()
    with B.single_thread():
        if "feedforward" in sections:
            results["feedforward"] = run_feedforward(plan, source)
            say()
    if "memory" in sections:
        results["memory"] = run_memory()
        say()
    results["meta"]["seconds"] = time.perf_counter() - start
    path = Path(args.json) if args.json else HERE / "results" / f"{mode}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    say(f"\n{mode} run: {results['meta']['seconds']:.0f} s; results in {path}")
    bad = [r for r in results.get("checks", []) if r["ok"] != "yes"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
