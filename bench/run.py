#!/usr/bin/env python
"""cbp's microbenchmark suite: kernels, training epochs, feedforward, peak memory.

    python bench/run.py             # full run (about 10 minutes on 2 cores)
    python bench/run.py --quick     # a few minutes, small samples: not comparable
    python bench/run.py --json out.json --sections kernels,epochs
    python bench/run.py --against dd1289b   # every epoch row before (that commit) and after
    python bench/table.py           # README's performance table from bench/results/full.json

Training epochs run one contender per process (worker), each
pinned to CPU 0 (``--cpu N``: another) from its start for the one-core tables and left at its
defaults for the default-threads table; every contender is timed by the wall
clock around the call a user makes.  The kernel, feedforward and check
sections run in this process on one thread; the memory probe in a fresh one.
Times are medians over interleaved rounds, ratios medians of per-round ratios
with their min-max spread; see bench/README.md for what each number means.
"""
import os

# Before NumPy (and its BLAS) is imported anywhere: one thread everywhere,
# and OpenBLAS left to pick its own kernel for this CPU (an OPENBLAS_CORETYPE
# or OPENBLAS_L2_SIZE from the shell would time another CPU's kernel).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
BLAS_UNSET = {_var: os.environ.pop(_var) for _var in
              ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "GOTOBLAS_CORETYPE")
              if _var in os.environ}

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import cbp  # noqa: E402
import benchmark as B  # noqa: E402
from worker import Contender  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA_DIR = ROOT.parent / "shared" / "data"   # the t10k IDX files: 10,000 distinct images
SECTIONS = ("checks", "kernels", "epochs", "threads", "feedforward", "memory")
DTYPES = (np.float64, np.float32)
N_EPOCH = 10_000
PIN_CPU = 0          # the CPU one-core workers pin to (--cpu)

# (sizes, mini-batch size, η); the two large ones use η = 0.5 to stay away
# from divergence (it does not change the work per epoch).
CONFIGS = [
    ([784, 30, 10], 10, 3.0),
    ([784, 100, 10], 10, 3.0),
    ([784, 100, 10], 100, 3.0),
    ([784, 256, 256, 10], 64, 0.5),
    ([784, 1024, 1024, 10], 128, 0.5),
    ([784, 4096, 4096, 10], 2000, 0.5),
]
BIG = ([784, 256, 256, 10], [784, 1024, 1024, 10])
# Batch gradient descent on a wide net (M = 2000: GEMM-sized products), in
# float32 only, on one step per sample (n = 2,000 examples, scaled to 10,000
# like the rest: 7 rounds of a whole epoch would take an hour),
# without the per-example references and scikit-learn (minutes a round).
LARGE = [784, 4096, 4096, 10]
LARGE_DTYPES = (np.float32,)
LARGE_SKIP = ("network_py", "numpy_per_example", "sklearn")
# The default-threads table: the wide nets, where threads can pay.
THREADED = [c for c in CONFIGS if c[0] in BIG]

def name(sizes):
    return "[" + ",".join(str(s) for s in sizes) + "]"


# Per mode: examples actually trained per epoch (times are scaled to 10,000),
# rounds, and examples for the per-example references (scaled too).
PLAN = {
    "full": {"n": {name([784, 1024, 1024, 10]): 5000, name(LARGE): 2000},
             "n_default": N_EPOCH, "rounds": 7,
             "rounds_big": 7,
             "per_example": {name([784, 1024, 1024, 10]): 300}, "per_example_default": 1000,
             "kernel_rounds": 7, "kernel_min_time": 0.02, "ff_rounds": 7, "ff_min_time": 0.1},
    "quick": {"n": {name([784, 256, 256, 10]): 2000, name([784, 1024, 1024, 10]): 500,
                    name(LARGE): 2000},
              "n_default": 2000, "rounds": 1, "rounds_big": 1,
              "per_example": {name([784, 1024, 1024, 10]): 50}, "per_example_default": 200,
              "kernel_rounds": 3, "kernel_min_time": 0.003, "ff_rounds": 3, "ff_min_time": 0.02},
}

IMPLS = ("cbp", "network_py", "numpy_per_example", "numpy_matmul", "torch", "torch_bp", "jax",
         "sklearn")
THREADED_IMPLS = ("cbp", "numpy_matmul", "torch", "torch_bp", "jax")
PROBES = ("gemm", "peak64", "peak32")
SHORT = {"network_py": "net.py", "numpy_per_example": "np/ex", "numpy_matmul": "np/mm",
         "torch": "torch", "torch_bp": "torch/bp", "jax": "jax", "sklearn": "sklearn",
         "before": "before"}
HOST = B.host_info()
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
                              ("reference", "implementation vs cbp.reference", None),
                              ("max_diff", "max |diff|", ".1e"),
                              ("step_size", "step size", ".2g"), ("ok", "ok", None)],
                       title="Self-check: one mini-batch (m=10, eta=3) from the same weights; "
                             + host_line()))
    return rows


def run_kernels(plan):
    rows = B.bench_kernels(rounds=plan["kernel_rounds"], min_time=plan["kernel_min_time"])
    cols = [("kernel", "kernel", None), ("layer", "layer", None), ("M", "M", "d"),
            ("dtype", "dtype", None), ("cbp_us", "cbp us", ".2f"),
            ("numpy_us", "numpy us", ".2f"), ("speedup", "x numpy", ".2f"),
            ("cbp_gflops", "cbp GF/s", ".2f"), ("numpy_gflops", "numpy GF/s", ".2f"),
            ("max_diff", "max |diff|", ".0e")]
    say(B.format_table(rows, cols, title="Kernels alone (py_* wrappers, per call; x numpy = "
                                         "numpy time / cbp time); " + host_line()))
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


def run_epochs(plan, source, pinned=True, configs=CONFIGS, impls=IMPLS, against=None):
    """One row per (config, dtype): per-round seconds of every contender, ratios, % of peak.

    ``against``: the ``src`` directory of another commit's build; its cbp then
    runs as the contender ``before`` in the same interleaved rounds, and every
    row carries ``x before`` = time(before) / time(cbp), above 1 when the
    working tree is faster.
    """
    mode = "one_core" if pinned else "default_threads"
    cpus = {PIN_CPU} if pinned else None
    names = list(impls) + (["before"] if against else []) + (list(PROBES) if pinned else [])
    workers = {impl: Contender(cpus, cbp_src=against if impl == "before" else None)
               for impl in names}
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
            skip = LARGE_SKIP if sizes == LARGE else ()
            for dtype in (LARGE_DTYPES if sizes == LARGE else DTYPES):
                tag = np.dtype(dtype).name
                base = {"sizes": sizes, "m": m, "eta": eta, "dtype": tag, "n": n,
                        "n_scale": N_EPOCH, "per_example_n": k,
                        "data": None if source is None else str(source), "one_core": pinned}
                specs = {impl: dict(base, impl="cbp" if impl == "before" else impl)
                         for impl in names if impl not in skip}
                if not pinned:
                    specs["cbp_one_core"] = dict(base, impl="cbp", one_core=True)
                t0 = time.perf_counter()
                with B.others_load([w.proc.pid for w in workers.values()]) as load:
                    times, infos = _measure(workers, specs, rounds)
                flops = B.train_flops(sizes) * N_EPOCH
                cbp_t = times["cbp"]
                shown = [i for i in impls if i != "cbp"] + (["before"] if against else [])
                row = {"mode": mode, "config": name(sizes), "sizes": sizes, "m": m, "eta": eta,
                       "dtype": tag, "n_timed": n, "n_scaled_to": N_EPOCH, "rounds": rounds,
                       "per_example_n": k, "others_cpus": load["others_cpus"],
                       "others_exclude_workers": True, "host": HOST["label"],
                       "per_round": times, "info": infos,
                       "seconds": {impl: B.median(v) for impl, v in times.items()
                                   if impl in impls or impl == "before"},
                       "speedup": {impl: _ratio(times[impl], cbp_t) for impl in shown
                                   if impl in times},
                       "skipped": {impl: info.get("skipped") for impl, info in infos.items()
                                   if not info.get("ok")},
                       "gflops": flops / B.median(cbp_t) / 1e9}
                if "cbp_one_core" in times:
                    row["cbp_vs_one_core"] = _ratio(times["cbp_one_core"], cbp_t)
                gf = {}
                for probe in PROBES:
                    if probe in times:
                        per_call = infos[probe]["flops_per_call"]
                        gf[probe] = [per_call / t for t in times[probe]]
                        row[f"{probe}_gflops"] = B.median(gf[probe]) / 1e9
                if "peak64" in gf and "peak32" in gf:
                    # The host's FMA peak in each round: the faster of the two
                    # widths (on a core without AVX-512 the 64-byte probe runs
                    # as two 32-byte halves).
                    gf["peak"] = [max(a, b) for a, b in zip(gf["peak64"], gf["peak32"])]
                    row["peak_gflops"] = B.median(gf["peak"]) / 1e9
                for probe, values in gf.items():
                    row[f"pct_{probe}"] = {key: (100 * v if key != "rounds" else v)
                                           for key, v in _ratio([flops / t for t in cbp_t],
                                                                values).items()}
                if against:
                    for key in ("before", "cbp"):
                        row[f"pct_peak_{key}"] = (
                            {key2: (100 * v if key2 != "rounds" else v) for key2, v in _ratio(
                                [flops / t for t in times[key]], gf["peak"]).items()}
                            if "peak" in gf else None)
                rows.append(row)
                say(f"  {mode} {name(sizes)} m={m} {short(tag)}: {n} examples, {rounds} rounds, "
                    f"{time.perf_counter() - t0:.0f} s; other processes used {cpus_(load)} CPUs")
    finally:
        for w in workers.values():
            w.close()
    print_epochs(rows, impls, against)
    return rows


def _fmt_ratio(r):
    if r is None:
        return None
    return f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def _fmt_pct(r):
    return None if r is None else f"{r['median']:.0f}% ({r['min']:.0f}-{r['max']:.0f})"


def host_line():
    return f"host: {HOST['label']}"


def print_epochs(rows, impls, against=None):
    if not rows:
        return
    mode = rows[0]["mode"]
    what = (f"one core: every contender in its own process pinned to CPU {PIN_CPU} from its start"
            if mode == "one_core" else "default threads: no pinning, each library's own "
                                        "thread count")
    flat = []
    for r in rows:
        f = {k: r[k] for k in ("config", "m", "dtype", "gflops")}
        f.update({f"t_{k}": v for k, v in r["seconds"].items()})
        f.update({f"x_{k}": _fmt_ratio(v) for k, v in r["speedup"].items()})
        for probe in PROBES + ("peak",):
            f[probe] = _fmt_ratio(r.get(f"pct_{probe}"))
        f["peak_gflops"] = r.get("peak_gflops")
        f["pct_before"] = _fmt_pct(r.get("pct_peak_before"))
        f["pct_after"] = _fmt_pct(r.get("pct_peak_cbp"))
        flat.append(f)
    extra = ["before"] if against else []
    say(B.format_table(flat, [("config", "config", None), ("m", "m", "d"),
                              ("dtype", "dtype", None)]
                       + [(f"t_{k}", k if k == "cbp" else SHORT[k], ".3f")
                          for k in list(impls) + extra],
                       title=f"Epoch time, seconds per {N_EPOCH} examples, wall clock (median); "
                             + what + "; " + host_line()))
    cols = [("config", "config", None), ("m", "m", "d"), ("dtype", "dtype", None),
            ("gflops", "cbp GF/s", ".1f")]
    if mode == "one_core":
        cols += [("peak_gflops", "host FMA peak GF/s", ".1f"), ("peak", "% FMA peak", None),
                 ("gemm", "% d/sgemm", None)]
    say(B.format_table(flat, cols + [(f"x_{k}", f"x {SHORT[k]}", None)
                                     for k in list(impls[1:]) + extra],
                       title="cbp speedup = reference time / cbp time, median of per-round "
                             "ratios (min-max over the rounds); " + host_line()))
    if against:
        bcols = [("config", "config", None), ("m", "m", "d"), ("dtype", "dtype", None),
                 ("t_before", f"before ({against_rev(rows)}) s", ".3f"),
                 ("t_cbp", "after s", ".3f"), ("x_before", "after speedup", None)]
        if mode == "one_core":
            bcols += [("pct_before", "before % peak", None), ("pct_after", "after % peak", None)]
        say(B.format_table(flat, bcols, title="Before / after, same rounds: after speedup = "
                                              "time(before) / time(after); " + host_line()))
    k = rows[0]["per_example_n"]
    if "network_py" in impls:
        say(f"  the per-example references (net.py = {LABELS['network_py']}, np/ex = "
            f"{LABELS['numpy_per_example']}) trained on the first {k} examples (300 on the "
            "widest net) and are scaled to 10,000")
    say("  " + "; ".join(f"{SHORT[i]} = {LABELS[i]}" for i in impls[1:] if i in SHORT))
    if mode == "one_core":
        say("  % FMA peak: cbp's GFLOP/s over the host's FMA probe in the same round (the "
            "faster of its 64- and 32-byte vectors, per dtype)")


AGAINST = {}


def against_rev(rows=None):
    return AGAINST.get("rev", "?")


def build_against(rev):
    """Build commit ``rev``'s extension in a scratch directory; return its ``src`` path.

    ``git archive`` of that commit (no worktree of this repository is touched),
    then ``setup.py build_ext --inplace`` there with this interpreter; the
    build is kept under the temporary directory by commit hash and reused.
    """
    full = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT,
                          text=True, capture_output=True, check=True).stdout.strip()
    where = Path(tempfile.gettempdir()) / f"cbp-against-{full[:12]}"
    src = where / "src"
    if not (where / ".built").exists():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", full], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
        say(f"building {rev} ({full[:12]}) in {where} ...")
        env = {k: v for k, v in os.environ.items() if k not in ("CBP_DEBUG", "CBP_NATIVE")}
        proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
                              cwd=where, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"building {rev} failed:\n{proc.stderr[-3000:]}")
        (where / ".built").write_text(full + "\n")
    # The same check the workers report: which cbp a process on this path imports.
    code = (f"import sys; sys.path.insert(0, {str(src)!r}); import cbp, hashlib; "
            "print(cbp.__file__)")
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()
    if not seen.startswith(str(src)):
        raise SystemExit(f"--against: a worker would import {seen}, not the build in {src}")
    AGAINST.update(rev=rev, commit=full, src=str(src))
    return str(src)


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
                             "1 BLAS thread); " + host_line()))
    busy = [r["others_cpus"] for r in rows if r["others_cpus"] is not None]
    if busy:
        say(f"  other processes used {min(busy):.2f}-{max(busy):.2f} of the {os.cpu_count()} "
            "CPUs during these runs" + ("; the 2-thread speedup cannot be measured "
                                         "cleanly" if max(busy) > 0.3 else ""))
    return rows


def run_memory():
    rows = []
    for dtype in ("float64", "float32"):
        code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); "
                "from benchmark import memory_probe; "
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
              "(params + grads + one mini-batch's activations) x itemsize + data); " + host_line()))
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
    parser.add_argument("--against", default=None, metavar="REV",
                        help="also build commit REV in a scratch directory and time its cbp in "
                             "the same rounds: every epoch row shows before/after")
    parser.add_argument("--configs", default=None, metavar="NETS",
                        help="only these epoch configs, e.g. '784,30,10;784,256,256,10'")
    parser.add_argument("--cpu", type=int, default=0,
                        help="the CPU one-core workers pin to (default 0; pick the quiet one)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds per epoch row (default: the mode's plan)")
    args = parser.parse_args(argv)
    global PIN_CPU
    if args.cpu not in os.sched_getaffinity(0):
        parser.error(f"--cpu {args.cpu}: not one of this process's CPUs "
                     f"{sorted(os.sched_getaffinity(0))}")
    PIN_CPU = args.cpu
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    mode = "quick" if args.quick else "full"
    plan = dict(PLAN[mode])
    configs = CONFIGS
    if args.configs:
        wanted = {"[" + c.strip().strip("[]").replace(" ", "") + "]"
                  for c in args.configs.split(";")}
        configs = [c for c in CONFIGS if name(c[0]) in wanted]
        if not configs:
            parser.error(f"--configs matches none of {[name(c[0]) for c in CONFIGS]}")
    if args.rounds:
        plan["rounds"] = plan["rounds_big"] = args.rounds
    if args.configs or args.rounds:
        mode = mode + "-partial"
    source = data_source()
    start = time.perf_counter()
    against = build_against(args.against) if args.against else None
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "comparable": mode == "full", "argv": sys.argv, "git": git_head(),
        "plan": plan, "machine": B.machine_info(), "data": str(source), "host": HOST,
        "blas_variables_unset": BLAS_UNSET,
        "against": dict(AGAINST) if against else None,
        "pinning": "one-core tables: each contender in its own process, "
                   f"os.sched_setaffinity(0, {{{PIN_CPU}}}) before its interpreter starts "
                   f"(as taskset -c {PIN_CPU}), "
                   "OMP/OPENBLAS/MKL_NUM_THREADS=1, XLA_FLAGS=--xla_cpu_multi_thread_eigen=false "
                   "(XLA has no thread-count flag: the pinning holds it), OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset, torch.set_num_threads(1); default-threads "
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
        say(host_line() + (f"; OpenBLAS variables unset: {BLAS_UNSET}" if BLAS_UNSET else ""))
        if against:
            say(f"against: {args.against} ({AGAINST['commit'][:12]}), built in {against}")
        say(f"Epoch data: {source}")
        say()
        if "checks" in sections:
            results["checks"] = run_checks()
            say()
        if "kernels" in sections:
            results["kernels"] = run_kernels(plan)
            say()
    if "epochs" in sections:
        results["epochs"] = run_epochs(plan, source, pinned=True, configs=configs,
                                       against=against)
        say()
    if "threads" in sections:
        results["threads"] = run_epochs(plan, source, pinned=False,
                                        configs=[c for c in THREADED if c in configs],
                                        impls=THREADED_IMPLS, against=against)
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
