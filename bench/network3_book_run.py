"""The book's best single net, extrapolated to its run in the book: is it an hour on this machine?

    python bench/network3_book_run.py                     # 300 mini-batches, 3 rounds, 1 and 2 cores
    python bench/network3_book_run.py --batches 1000 --rounds 5 --cores 1,2 --json out.json

The net is chapter 6's last single network (``conv.py``'s dropout net):
two conv-pool layers (20 and 40 5x5 filters, 2x2 pooling, ReLU), two
1000-unit ReLU layers with dropout 0.5, a softmax layer with dropout 0.5,
mini-batch 10, η = 0.03, float32, built with ``cbp.network3`` as the book's
script builds it.  The book trains it 40 epochs on the 250,000-image
expanded set, evaluating 10,000 validation images after each epoch and
10,000 test images when the validation accuracy is the best to date (at
most every epoch): 1,000,000 mini-batches and at most 800,000 evaluated
images, about 187 TFLOP.

This does not run that (hours, and the expanded set needs the full MNIST,
which may not be at hand): it times ``--batches`` training mini-batches of
the same net at full size on images of the embedded sample (the work per
mini-batch does not depend on the pixels: no sparsity shortcuts) and the
evaluation of 1,000 images, each a fresh process pinned to ``--cores``
CPUs (threads = cores), rounds interleaved, medians reported, and
EXTRAPOLATES:  hours = 1,000,000 × (s per mini-batch) + 800,000 × (s per
evaluated image).  The figure is an extrapolation from measured mini-batches,
not a measured run; on a machine shared with other work it is pessimistic.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOK_BATCHES = 40 * 250_000 // 10        # 40 epochs of the expanded set, mini-batch 10
BOOK_EVAL = 40 * 20_000                   # validation + test images, at most, per epoch

WORKER = r"""
import contextlib, io, json, os, sys, time
cores, batches = int(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
import numpy as np
with contextlib.redirect_stdout(io.StringIO()):
    import cbp.network3 as network3
from cbp import datasets
from cbp.network3 import ConvPoolLayer, FullyConnectedLayer, Network, ReLU, SoftmaxLayer
network3.config.num_threads = cores
(X, y), (Xh, yh) = datasets.load_sample()
reps = -(-batches * 10 // len(X))
X = np.ascontiguousarray(np.tile(X, (reps, 1))[:batches * 10], dtype=np.float32)
y = np.ascontiguousarray(np.tile(y, reps)[:batches * 10], dtype=np.int32)
Xh = np.ascontiguousarray(Xh[:1000], dtype=np.float32)
np.random.seed(0)
mbs = 10
net = Network([
    ConvPoolLayer(image_shape=(mbs, 1, 28, 28), filter_shape=(20, 1, 5, 5), poolsize=(2, 2),
                  activation_fn=ReLU),
    ConvPoolLayer(image_shape=(mbs, 20, 12, 12), filter_shape=(40, 20, 5, 5), poolsize=(2, 2),
                  activation_fn=ReLU),
    FullyConnectedLayer(n_in=40 * 4 * 4, n_out=1000, activation_fn=ReLU, p_dropout=0.5),
    FullyConnectedLayer(n_in=1000, n_out=1000, activation_fn=ReLU, p_dropout=0.5),
    SoftmaxLayer(n_in=1000, n_out=10, p_dropout=0.5)], mbs)
nt = network3.config.threads()
net._train_run(X, y, 0, min(20, batches), 0.03, 1.0, nt)      # warm-up (buffers, pages)
t0 = time.perf_counter()
net._train_run(X, y, 0, batches, 0.03, 1.0, nt)
train_s = time.perf_counter() - t0
net._predict(Xh[:100], nt)
t0 = time.perf_counter()
net._predict(Xh, nt)
eval_s = time.perf_counter() - t0
print(json.dumps({"per_batch_s": train_s / batches, "per_image_eval_s": eval_s / len(Xh),
                  "team": net._plan(mbs, nt).last_team}))
"""


def flops_per_batch():
    # multiply-adds x 2 of one training mini-batch (forward, weight and input gradients)
    conv1 = 2 * 20 * 1 * 25 * 24 * 24
    conv2 = 2 * 40 * 20 * 25 * 8 * 8
    dense = 2 * (640 * 1000 + 1000 * 1000 + 1000 * 10)
    return 10 * (2 * conv1 + 3 * conv2 + 3 * dense)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cores", default="1,2")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    cores = [int(c) for c in args.cores.split(",")]
    if args.batches < 1 or any(c < 1 for c in cores):
        p.error("--batches and --cores must be positive")
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    runs = {c: [] for c in cores}
    for r in range(args.rounds):
        for c in (cores if r % 2 == 0 else cores[::-1]):
            out = subprocess.run([sys.executable, "-c", WORKER, str(c), str(args.batches)],
                                 capture_output=True, text=True, env=dict(env, OMP_NUM_THREADS=str(c)))
            if out.returncode != 0:
                sys.exit(out.stderr)
            runs[c].append(json.loads(out.stdout.strip().splitlines()[-1]))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"The book's best single net at full size, mini-batch 10, float32: {args.batches} "
          f"mini-batches x {args.rounds} rounds per core count (load average {' '.join(load)})")
    print(f"Book run: {BOOK_BATCHES:,} mini-batches + {BOOK_EVAL:,} evaluated images, "
          f"{flops_per_batch() * BOOK_BATCHES / 1e12:.0f} TFLOP of training")
    result = {"batches": args.batches, "rounds": args.rounds, "load": load, "rows": []}
    base = None
    for c in cores:
        b = statistics.median(x["per_batch_s"] for x in runs[c])
        e = statistics.median(x["per_image_eval_s"] for x in runs[c])
        hours = (BOOK_BATCHES * b + BOOK_EVAL * e) / 3600
        base = base or b
        row = {"cores": c, "team": runs[c][-1]["team"], "ms_per_batch": b * 1e3,
               "us_per_eval_image": e * 1e6, "gflops": flops_per_batch() / b / 1e9,
               "extrapolated_hours": hours, "speedup_vs_first": base / b,
               "per_batch_s_all": [x["per_batch_s"] for x in runs[c]]}
        result["rows"].append(row)
        print(f"  {c} core(s) (team {row['team']}): {row['ms_per_batch']:.2f} ms/mini-batch "
              f"({row['gflops']:.1f} GFLOP/s), {row['us_per_eval_image']:.0f} us/evaluated image, "
              f"x{row['speedup_vs_first']:.2f} -> EXTRAPOLATED {hours:.2f} h for the book's run")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
