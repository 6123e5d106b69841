"""Two builds of cbp's core, one process: chapter 6's nets trained by each in alternation.

    python bench/network3_ab.py --against HEAD~1                 # 2 threads, 3 minutes a net
    python bench/network3_ab.py --against main --threads 1 --seconds 60 --nets dbl_conv,dropout
    python bench/network3_ab.py --against-so OLD_core.so --seconds 30

``bench/network3.py --against REF`` times cbp as built from REF in a worker
process of its own, so its ``x REF`` rows divide one process's epochs by
another's, and worker processes differ on a shared VM: against a commit whose
code ran the same work, its default-threads workers took per-round ratios of
0.62-1.14; against 4549962, one core, it gave ``dbl_conv`` x0.93 where pairs
timed in one process, as here, gave x0.99.  This script is the measure for a
change to the core (its kernels and team phases) rather than for a whole
epoch:

- it loads REF's compiled core (built in place by ``bench/network3.py``'s
  ``build_ref``, or the file ``--against-so`` names) beside this tree's, as
  a second module object;
- for each net it builds one plan per core (``plan3``) over the same layers,
  laid out by this tree's ``cbp.network3`` (so the two cores must take the
  same plan entries: changes to the Python layer are
  ``bench/network3.py``'s to measure), and the same mini-batches of the
  embedded sample;
- it times ``train_batches3`` on a few mini-batches with each core in turn,
  the order swapped every pair, until ``--seconds`` have passed, and
  brackets each pair with ``py_barrier_ns``: the cost of a two-thread
  meeting, near 35 ns while the host keeps the two vCPUs near each other and
  160-180 ns while it runs them apart (see docs/chapter6.rst).

It reports, per net and per state of the host (pairs whose probes were both
within 2x the run's lowest: near; both above: apart), the median time a
mini-batch of each core and the median of the pairs' ratios REF / this tree,
with their interquartile range: above 1, this tree is faster.  Both plans
train the same weights in turn, so the weights move as one training run's
would.  JSON with the host: ``--json`` (default
``bench/results/network3_ab.json``).
"""
import argparse
import contextlib
import importlib.util
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import report  # noqa: E402
from network3_contenders import M, book_data, cbp_layers  # noqa: E402

# mini-batches a timed call trains: about 3-20 ms on one core of the EPYC VM
BATCHES = {"shallow": 100, "basic_conv": 20, "dbl_conv": 8, "dropout": 4}


def load_core(path):
    """The compiled core at ``path`` as a module object of its own (not in sys.modules)."""
    spec = importlib.util.spec_from_file_location("cbp._core", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("plan3", "train_batches3"):
        if not hasattr(module, name):
            raise SystemExit(f"{path}: no {name} (a core without network3's team)")
    return module


def ref_core(args):
    """The path of the reference build's compiled core."""
    if args.against_so:
        return Path(args.against_so).resolve()
    import network3 as bench3                 # bench/network3.py, for build_ref
    found = sorted((bench3.build_ref(args.against) / "src" / "cbp").glob("_core*.so"))
    if not found:
        raise SystemExit(f"no compiled core in {args.against}'s build")
    return found[0]


def build_net(n3, name):
    """``name``'s layers (bench/network3.py's NETS) as a cbp.network3.Network."""
    import network3 as bench3
    layers = cbp_layers(n3, bench3.NETS[name]["layers"])
    np.random.seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        return n3.Network(layers, M)


def plans(net, cores, threads):
    """One plan per core over the same layers and buffers, for a team of ``threads``."""
    entries = []
    for j, layer in enumerate(net.layers):
        below = net.layers[j - 1].act_code if j > 0 else 3      # linear: the input
        entries.append(layer.team_entry(M, threads, below, j > 0))
    return {key: core.plan3(entries, M, threads, net.dtype) for key, core in cores.items()}


def summary(pairs, key_ref, key_new):
    """Medians and the ratio's quartiles over ``pairs`` (dicts of µs a mini-batch)."""
    if not pairs:
        return None
    ratio = [p[key_ref] / p[key_new] for p in pairs]
    return {"pairs": len(pairs),
            "ref_us": round(float(np.median([p[key_ref] for p in pairs])), 2),
            "this_us": round(float(np.median([p[key_new] for p in pairs])), 2),
            "ref_over_this": round(float(np.median(ratio)), 4),
            "iqr": [round(float(np.percentile(ratio, 25)), 4),
                    round(float(np.percentile(ratio, 75)), 4)]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--against", metavar="REF", help="git ref whose core to compare with")
    which.add_argument("--against-so", metavar="FILE", help="a compiled core (_core*.so)")
    p.add_argument("--nets", default=",".join(BATCHES))
    p.add_argument("--threads", type=int, choices=(1, 2), default=2)
    p.add_argument("--seconds", type=float, default=180.0, help="per net")
    p.add_argument("--json", type=Path, default=HERE / "results" / "network3_ab.json")
    args = p.parse_args(argv)
    nets = args.nets.split(",")
    unknown = [n for n in nets if n not in BATCHES]
    if unknown:
        p.error(f"--nets: unknown {unknown}; choose from {list(BATCHES)}")
    if args.seconds <= 0:
        p.error("--seconds must be positive")

    import cbp
    from cbp import _core
    with contextlib.redirect_stdout(io.StringIO()):
        import cbp.network3 as n3
    ref_path = ref_core(args)
    cores = {"ref": load_core(ref_path), "this": _core}
    (X, y), _, _ = book_data(2000, 0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int32)
    label = args.against or str(ref_path)
    print(f"cbp.network3 training, {label} against this tree ({cbp.__file__}), "
          f"{args.threads} thread(s), mini-batch {M}, {args.seconds:g} s a net", flush=True)
    results = {}
    for name in nets:
        net = build_net(n3, name)
        plan = plans(net, cores, args.threads)
        B = BATCHES[name]
        eta = 0.01

        def run(key, first):
            t = time.perf_counter()
            cores[key].train_batches3(plan[key], X, y, first, first + B, -eta / M, 1.0, 5, 0,
                                      args.threads)
            return (time.perf_counter() - t) / B * 1e6

        for key in ("ref", "this"):                # touch both plans' buffers
            run(key, 0)
        pairs, start, k = [], time.time(), 0
        while time.time() - start < args.seconds:
            first = (k * B) % (len(X) // M - B)
            before = _core.py_barrier_ns(3000)[1] if args.threads == 2 else None
            order = ("ref", "this") if k % 2 == 0 else ("this", "ref")
            pair = {key: run(key, first) for key in order}
            pair["probe"] = (before, _core.py_barrier_ns(3000)[1] if args.threads == 2 else None)
            pairs.append(pair)
            k += 1
        results[name] = pairs
        s = summary(pairs, "ref", "this")
        print(f"  {name:10s} {s['pairs']:6d} pairs  ref {s['ref_us']:9.1f} us/mb  this "
              f"{s['this_us']:9.1f}  ref/this x{s['ref_over_this']:.3f} "
              f"(IQR {s['iqr'][0]:.2f}-{s['iqr'][1]:.2f})", flush=True)
    # Near or apart by the probe against the lowest of the whole run (a net
    # whose minutes all fell apart has no near pairs, rather than its own
    # "near"); each state's median probe is reported, to be judged.
    probes = [v for pairs in results.values() for p in pairs for v in p["probe"] if v is not None]
    low = min(probes) if probes else None
    table = {}
    for name, pairs in results.items():
        table[name] = {"all": summary(pairs, "ref", "this")}
        if low is None:
            continue
        for state, keep in (("near", lambda p: max(p["probe"]) <= 2 * low),
                            ("apart", lambda p: min(p["probe"]) > 2 * low)):
            chosen = [p for p in pairs if keep(p)]
            table[name][state] = summary(chosen, "ref", "this")
            if chosen:
                table[name][state]["probe_ns"] = round(float(np.median(
                    [v for p in chosen for v in p["probe"]])), 1)
                s = table[name][state]
                print(f"  {name:10s} {state:5s} {s['pairs']:6d} pairs (probe {s['probe_ns']:.0f} "
                      f"ns)  ref {s['ref_us']:9.1f} us/mb  this {s['this_us']:9.1f}  ref/this "
                      f"x{s['ref_over_this']:.3f} (IQR {s['iqr'][0]:.2f}-{s['iqr'][1]:.2f})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = report.machine_info()
    machine["cbp_file"] = cbp.__file__
    args.json.write_text(json.dumps({
        "against": label, "ref_core": str(ref_path), "threads": args.threads,
        "seconds_per_net": args.seconds, "mini_batch": M, "batches_per_call": BATCHES,
        "lowest_probe_ns": low, "machine": machine, "nets": table}, indent=1) + "\n")
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
