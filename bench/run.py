#!/usr/bin/env python
"""cbp's microbenchmark suite: kernels, training epochs, feedforward, peak memory.

    python bench/run.py             # full run (3-4 minutes on 2 cores)
    python bench/run.py --quick     # under a minute, smaller samples
    python bench/run.py --json out.json --sections kernels,epochs

Everything runs in this process on one thread (BLAS, OpenMP and PyTorch),
except the 2-thread feedforward and the memory probe (a fresh subprocess).
Times are medians over interleaved rounds and ratios medians of per-round
ratios; see bench/README.md for what each number means.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MNIST = ROOT.parent / "shared" / "data" / "mnist_5k_train.npz"
SECTIONS = ("checks", "kernels", "epochs", "feedforward", "memory")
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

def name(sizes):
    return "[" + ",".join(str(s) for s in sizes) + "]"


# Per mode: examples actually trained per epoch (times are scaled to 10,000),
# rounds, and examples for the per-example NumPy reference.
PLAN = {
    "full": {"n": {}, "n_default": N_EPOCH, "rounds": 7, "rounds_big": 5,
             "per_example": {name([784, 1024, 1024, 10]): 300}, "per_example_default": 1000,
             "kernel_rounds": 7, "kernel_min_time": 0.02, "ff_rounds": 7, "ff_min_time": 0.1},
    "quick": {"n": {name([784, 256, 256, 10]): 2000, name([784, 1024, 1024, 10]): 500},
              "n_default": 5000, "rounds": 3, "rounds_big": 3,
              "per_example": {name([784, 1024, 1024, 10]): 50}, "per_example_default": 200,
              "kernel_rounds": 3, "kernel_min_time": 0.003, "ff_rounds": 3, "ff_min_time": 0.02},
}

IMPLS = ("cbp", "numpy_per_example", "network_py", "numpy_matmul", "torch", "sklearn")
SHORT = {"numpy_per_example": "np/ex", "network_py": "net.py", "numpy_matmul": "np/mm",
         "torch": "torch", "sklearn": "sklearn"}


def say(text=""):
    print(text, flush=True)


def short(dtype_name):
    return "f" + dtype_name[5:]  # float64 -> f64


def cpus(load):
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


def run_epochs(plan, source):
    rows, notes_all = [], {}
    X64, Y64, labels, description = B.mnist_like(N_EPOCH, np.float64, source=source)
    say(f"Epoch data: {description}")
    for sizes, m, eta in CONFIGS:
        n = plan["n"].get(name(sizes), plan["n_default"])
        k = min(n, plan["per_example"].get(name(sizes), plan["per_example_default"]))
        rounds = plan["rounds_big"] if sizes in BIG else plan["rounds"]
        t0 = time.perf_counter()
        with B.others_load() as load:
            times, notes = B.bench_epoch(sizes, m, eta, X64[:n], Y64[:n], labels[:n],
                                         dtypes=DTYPES, rounds=rounds, n_scale=N_EPOCH,
                                         per_example_n=k)
        notes_all.update(notes)
        flops = B.train_flops(sizes) * N_EPOCH
        for dtype in DTYPES:
            tag = np.dtype(dtype).name
            cbp_t = times[f"cbp:{tag}"]
            gemm = times.get(f"gemm:{tag}")
            row = {"config": name(sizes), "m": m, "eta": eta, "dtype": tag, "n_timed": n,
                   "n_scaled_to": N_EPOCH, "rounds": rounds, "per_example_n": k,
                   "others_cpus": load["others_cpus"],
                   "seconds": {}, "speedup": {}, "per_round": {}}
            for impl in IMPLS:
                key = f"{impl}:{tag}"
                if key in times:
                    row["seconds"][impl] = B.median(times[key])
                    row["per_round"][impl] = times[key]
                    if impl != "cbp":
                        row["speedup"][impl] = B.paired_ratio(times[key], cbp_t)
            row["gflops"] = flops / B.median(cbp_t) / 1e9
            if gemm:
                row["gemm_gflops"] = 2 * 1024 ** 3 / B.median(gemm) / 1e9
                row["roofline_pct"] = 100 * B.paired_ratio(
                    [flops / t for t in cbp_t], [2 * 1024 ** 3 / g for g in gemm])
                row["per_round"]["gemm"] = gemm
            if tag == "float32" and "cbp:float64" in times:
                row["f32_speedup"] = B.paired_ratio(times["cbp:float64"], cbp_t)
            rows.append(row)
        say(f"  {name(sizes)} m={m}: {n} examples, {rounds} rounds, "
            f"{time.perf_counter() - t0:.0f} s; other processes used {cpus(load)} CPUs")
    flat = []
    for r in rows:
        f = {k: r[k] for k in ("config", "m", "dtype", "gflops")}
        f.update({f"t_{k}": v for k, v in r["seconds"].items()})
        f.update({f"x_{k}": v for k, v in r["speedup"].items()})
        f["roof"] = r.get("roofline_pct")
        f["gemm"] = r.get("gemm_gflops")
        f["f32"] = r.get("f32_speedup")
        flat.append(f)
    say(B.format_table(flat, [("config", "config", None), ("m", "m", "d"),
                              ("dtype", "dtype", None)]
                       + [(f"t_{k}", k if k == "cbp" else SHORT[k], ".3f") for k in IMPLS],
                       title=f"Epoch time, seconds per {N_EPOCH} examples (median)"))
    say(B.format_table(flat, [("config", "config", None), ("m", "m", "d"),
                              ("dtype", "dtype", None), ("gflops", "cbp GF/s", ".2f"),
                              ("gemm", "gemm GF/s", ".1f"), ("roof", "% roof", ".1f")]
                       + [(f"x_{k}", f"x {SHORT[k]}", ".2f") for k in IMPLS[1:]]
                       + [("f32", "f32/f64", ".2f")],
                       title="cbp speedup (reference time / cbp time, paired by round), "
                             "GFLOP/s and % of the single-thread gemm measured in the same "
                             "rounds"))
    for lib, note in notes_all.items():
        say(f"  {lib}: {note}")
    return rows, notes_all, description


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
# Targets
# ---------------------------------------------------------------------------

def targets(results):
    out = []

    def add(what, value, goal):
        out.append({"target": what, "measured": value, "goal": goal,
                    "ok": None if value is None else ("yes" if value >= goal else "NO")})

    epochs = {(r["config"], r["m"], r["dtype"]): r for r in results.get("epochs", [])}
    small = epochs.get(("[784,30,10]", 10, "float64"))
    if small:
        add("[784,30,10] m=10 f64: x NumPy per example", small["speedup"].get("numpy_per_example"),
            15)
        add("[784,30,10] m=10 f64: x network.py as written", small["speedup"].get("network_py"),
            15)
        add("[784,30,10] m=10 f64: x NumPy matmul", small["speedup"].get("numpy_matmul"), 2.5)
        add("[784,30,10] m=10 f64: x PyTorch", small["speedup"].get("torch"), 6)
        add("[784,30,10] m=10 f64: % of dgemm", small.get("roofline_pct"), 60)
    for sizes, m in (([784, 256, 256, 10], 64), ([784, 1024, 1024, 10], 128)):
        for tag in ("float64", "float32"):
            r = epochs.get((name(sizes), m, tag))
            if r:
                add(f"{name(sizes)} m={m} {short(tag)}: x NumPy matmul",
                    r["speedup"].get("numpy_matmul"), 1.0)
                add(f"{name(sizes)} m={m} {short(tag)}: x PyTorch", r["speedup"].get("torch"),
                    1.2)
        r = epochs.get((name(sizes), m, "float32"))
        if r:
            add(f"{name(sizes)} m={m}: f32 speed / f64 speed", r.get("f32_speedup"), 1.7)
    for r in results.get("feedforward", []):
        label = f"feedforward {r['config']} {short(r['dtype'])}"
        add(f"{label}: 1 thread x NumPy", r["x_numpy_1"], 1.0)
        add(f"{label}: 2 threads / 1 thread", r["x_threads"], 1.6)
        busy = r.get("others_cpus")
        if busy is not None and busy > 0.3 and out[-1]["ok"] == "NO":
            # The second thread shared a CPU with another process: not a verdict.
            out[-1]["ok"] = f"n/a: others used {busy:.1f} CPU"
    return out


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples: under a minute")
    parser.add_argument("--json", default=str(HERE / "results.json"), metavar="PATH",
                        help="where to write the results (default: bench/results.json)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    mode = "quick" if args.quick else "full"
    plan = PLAN[mode]
    source = MNIST if MNIST.is_file() else None
    start = time.perf_counter()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "argv": sys.argv, "git": git_head(), "plan": plan,
        "machine": B.machine_info(),
        "data": str(MNIST) if source else "random (no ../shared/data/mnist_5k_train.npz)",
    }}
    with B.single_thread() as limited:
        results["meta"]["threadpool_limited"] = limited
        if not limited:
            say("threadpoolctl is not installed: relying on the *_NUM_THREADS variables")
        info = results["meta"]["machine"]
        say(f"cbp {cbp.__version__} ({results['meta']['git']}), numpy {info['numpy']}, "
            f"torch {info['torch']}, scikit-learn {info['scikit-learn']}; CPU: {info['cpu']} "
            f"x{info['logical_cpus']}; mode: {mode}")
        results["roofline_gflops"] = {np.dtype(d).name: B.gemm_gflops(d) for d in DTYPES}
        say("Single-thread gemm 1024x1024x1024: " + ", ".join(
            f"{k} {v:.1f} GFLOP/s" for k, v in results["roofline_gflops"].items()))
        say()
        if "checks" in sections:
            results["checks"] = run_checks()
            say()
        if "kernels" in sections:
            results["kernels"] = run_kernels(plan)
            say()
        if "epochs" in sections:
            rows, notes, description = run_epochs(plan, source)
            results["epochs"], results["notes"] = rows, notes
            results["meta"]["epoch_data"] = description
            say()
        if "feedforward" in sections:
            results["feedforward"] = run_feedforward(plan, source)
            say()
    if "memory" in sections:
        results["memory"] = run_memory()
        say()
    results["targets"] = targets(results)
    if results["targets"]:
        say(B.format_table(results["targets"], [("target", "target", None),
                                                ("measured", "measured", ".2f"),
                                                ("goal", "goal (>=)", "g"), ("ok", "met", None)],
                           title="Targets"))
    results["meta"]["seconds"] = time.perf_counter() - start
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    say(f"\n{mode} run: {results['meta']['seconds']:.0f} s; results in {path}")
    bad = [r for r in results.get("checks", []) if r["ok"] != "yes"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
