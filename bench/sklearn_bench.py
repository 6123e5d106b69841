#!/usr/bin/env python
"""cbp.sklearn against scikit-learn's MLP: fit speed and test accuracy, same hyper-parameters.

    python bench/sklearn_bench.py              # both modes, 3 rounds
    python bench/sklearn_bench.py --rounds 1 --modes one-core --json out.json
    python bench/sklearn_bench.py --quick     # load_digits only, one round (CI: about 10 s)

Data: scikit-learn's ``load_digits`` (pixels / 16; a stratified 75/25 split,
random_state=0) and cbp's embedded MNIST sample (4,000 training and 1,000
held-out images, ``cbp.datasets.load_sample``).  Both estimators get the same
parameters (``hidden_layer_sizes=(100,)``, relu, ``alpha=1e-4``,
``batch_size='auto'``, ``max_iter=200``, ``tol=1e-4``, ``random_state=0``;
'sgd' with η = 0.01, momentum 0.9, Nesterov; 'adam' with scikit-learn's
defaults), so they draw the same initial weights and shuffles and stop after
the same epochs.  Each fit is timed by the wall clock around ``fit``.

Each mode runs in a fresh process: ``one-core`` pins it to CPU 0
(``os.sched_setaffinity(0, {0})`` before NumPy is imported) with one BLAS and
OpenMP thread; ``defaults`` leaves both libraries at their defaults.  This
machine sets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (older OpenBLAS builds need
them on its processor), which makes NumPy's OpenBLAS run an older, slower
kernel: ``--blas unset`` (the default) runs the workers without them, so
scikit-learn gets NumPy's own best kernel, ``--blas as-set`` keeps them; the
kernel each used is reported (threadpoolctl).  Rounds interleave the two
contenders; a ratio is the median over rounds of scikit-learn's time / cbp's
time, with its min-max spread.  The exit status is 1 when cbp's test accuracy
is more than 2 points from scikit-learn's anywhere (speed is reported, not judged).
"""
import argparse
import json
import os
import subprocess
import sys
import time

MODES = ("one-core", "defaults")
SOLVERS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
}
COMMON = dict(hidden_layer_sizes=(100,), activation="relu", alpha=1e-4, batch_size="auto",
              max_iter=200, tol=1e-4, random_state=0)


def datasets(names):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from cbp.datasets import load_sample
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, stratify=y,
                                          random_state=0)
    if "load_digits" in names:
        yield "load_digits", (Xtr, ytr), (Xte, yte)
    if "mnist_sample" not in names:
        return
    (Xtr, ytr), (Xte, yte) = load_sample()
    yield "mnist_sample", (np.asarray(Xtr, float), ytr), (np.asarray(Xte, float), yte)


def worker(mode, rounds, batch_size, names):
    # Runs in its own process; the pinning is done before NumPy is imported (below).
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP
    from threadpoolctl import threadpool_info

    from cbp.sklearn import MLPClassifier as CbpMLP
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    for data, (Xtr, ytr), (Xte, yte) in datasets(names):
        for solver, kw in SOLVERS.items():
            params = {**COMMON, **kw, "batch_size": batch_size}
            times = {"cbp": [], "sklearn": []}
            for r in range(rounds):
                order = ("cbp", "sklearn") if r % 2 == 0 else ("sklearn", "cbp")
                for who in order:
                    est = (CbpMLP if who == "cbp" else SkMLP)(**params)
                    start = time.perf_counter()
                    est.fit(Xtr, ytr)
                    times[who].append(time.perf_counter() - start)
                    if r == 0:
                        acc = float(np.mean(est.predict(Xte) == yte))
                        if who == "cbp":
                            cbp_acc, cbp_iter = acc, est.n_iter_
                        else:
                            sk_acc, sk_iter = acc, est.n_iter_
            ratios = sorted(s / c for s, c in zip(times["sklearn"], times["cbp"]))
            rows.append(dict(mode=mode, data=data, solver=solver, n_train=len(Xtr),
                             batch_size=batch_size,
                             cbp_accuracy=cbp_acc, sklearn_accuracy=sk_acc,
                             cbp_epochs=cbp_iter, sklearn_epochs=sk_iter,
                             cbp_seconds=float(np.median(times["cbp"])),
                             sklearn_seconds=float(np.median(times["sklearn"])),
                             speedup=float(np.median(ratios)), speedup_min=ratios[0],
                             speedup_max=ratios[-1]))
    blas = [{k: d.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
            for d in threadpool_info()]
    return dict(rows=rows, blas=blas, cpus=sorted(os.sched_getaffinity(0)))


def run_mode(mode, blas, rounds, batch_size, names):
    env = dict(os.environ)
    if blas == "unset":
        for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            env.pop(var, None)
    if mode == "one-core":
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--worker", mode, "--rounds", str(rounds),
                          "--batch-size", str(batch_size), "--data", names],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"worker {mode} failed:\n{out.stderr}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["blas_env"] = blas
    for r in res["rows"]:
        r["mode"] = f"{mode}, BLAS env {blas}"
    return res


def report(results):
    lines = ["| mode | data | solver | batch | epochs cbp/sk | test acc. cbp | test acc. sklearn | "
             "Δ points | fit s cbp | fit s sklearn | speed-up (min-max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"| {r['mode']} | {r['data']} (n={r['n_train']}) | {r['solver']} | {r['batch_size']} | "
                f"{r['cbp_epochs']}/{r['sklearn_epochs']} | {100 * r['cbp_accuracy']:.2f} % | "
                f"{100 * r['sklearn_accuracy']:.2f} % | "
                f"{100 * (r['cbp_accuracy'] - r['sklearn_accuracy']):+.2f} | "
                f"{r['cbp_seconds']:.3f} | {r['sklearn_seconds']:.3f} | "
                f"{r['speedup']:.1f}× ({r['speedup_min']:.1f}-{r['speedup_max']:.1f}) |")
    for res in results:
        lines.append(f"\n{res['rows'][0]['mode']}: CPUs {res['cpus']}, BLAS {res['blas']}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--blas", default="unset", help="unset, as-set or both")
    ap.add_argument("--batch-size", default="auto", help="'auto' (min(200, n)) or an integer")
    ap.add_argument("--data", default="load_digits,mnist_sample")
    ap.add_argument("--quick", action="store_true", help="load_digits, one round, one-core")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    if args.quick:
        args.data, args.rounds, args.modes = "load_digits", 1, "one-core"
    if args.worker:
        print(json.dumps(worker(args.worker, args.rounds, batch, args.data.split(","))))
        return
    blas = ("unset", "as-set") if args.blas == "both" else (args.blas,)
    results = [run_mode(m, b, args.rounds, batch, args.data)
               for b in blas for m in args.modes.split(",")]
    print(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    # Quality, not speed, decides the exit status: within 2 points of scikit-learn.
    worst = max(abs(r["cbp_accuracy"] - r["sklearn_accuracy"]) for res in results
                for r in res["rows"])
    if worst > 0.02:
        raise SystemExit(f"cbp's test accuracy is {100 * worst:.2f} points from scikit-learn's")


if __name__ == "__main__":
    if "--worker" in sys.argv and sys.argv[sys.argv.index("--worker") + 1] == "one-core":
        os.sched_setaffinity(0, {0})     # before NumPy and its BLAS start any thread
    main()
