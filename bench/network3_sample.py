"""cbp.network3 on the embedded 5,000-image sample: an epoch on one pinned core vs two, and accuracy.

Usage::

    python bench/network3_sample.py [--rounds 3] [--epochs 0] [--json out.json]

Timing: one epoch of the book's ``basic_conv`` (sigmoid) and ``dbl_conv``
(ReLU, λ = 0.1) nets, mini-batch 10, on the sample's 4,000 training images,
with its 1,000 test images as validation and test data, as ``net.SGD`` runs
it (wall clock around the call, validation and test included).  Each run is
a fresh process pinned to one core (1 thread) or two (2 threads); rounds are
interleaved, the median is reported.  The evaluation's share is timed apart
so that an epoch can be extrapolated to 50,000 and 250,000 training images
(plus the 10,000 validation and 10,000 test images the book evaluates).

Accuracy (``--epochs N``): both conv nets and the dense [784, 30, 10] net of
chapter 1 (cbp.network, η = 3.0) trained N epochs on the 4,000 images (one
core), then their accuracy on the 1,000 test images.

On a machine shared with other busy processes, set OMP_WAIT_POLICY=passive:
with libgomp's default (spinning) policy each parallel region can wait a
scheduler time slice for the other core.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKER = r"""
import io, contextlib, json, os, sys, time
import numpy as np
cores, name, epochs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
os.sched_setaffinity(0, set(range(cores)))
with contextlib.redirect_stdout(io.StringIO()):
    import cbp.network3 as network3
from cbp import datasets
from cbp.network3 import ConvPoolLayer, FullyConnectedLayer, Network, ReLU, SoftmaxLayer
network3.config.num_threads = cores
(X, y), (Xt, yt) = datasets.load_sample()
X = (np.rint(X * 255) / 256).astype(np.float32)
Xt = (np.rint(Xt * 255) / 256).astype(np.float32)
sv = network3.SharedVariable
tr = (sv(X, "x"), sv(y.astype(np.int32), "y"))
te = (sv(Xt, "x"), sv(yt.astype(np.int32), "y"))
mbs = 10
np.random.seed(0)
if name == "basic_conv":
    layers = [ConvPoolLayer(image_shape=(mbs, 1, 28, 28), filter_shape=(20, 1, 5, 5)),
              FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100), SoftmaxLayer(n_in=100, n_out=10)]
    eta, lmbda = 0.1, 0.0
elif name == "dbl_conv":
    layers = [ConvPoolLayer(image_shape=(mbs, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                            activation_fn=ReLU),
              ConvPoolLayer(image_shape=(mbs, 20, 12, 12), filter_shape=(40, 20, 5, 5),
                            activation_fn=ReLU),
              FullyConnectedLayer(n_in=40 * 4 * 4, n_out=100, activation_fn=ReLU),
              SoftmaxLayer(n_in=100, n_out=10)]
    eta, lmbda = 0.03, 0.1
else:
    import cbp.network
    net = cbp.network.Network([784, 30, 10])
    train = [(x.reshape(784, 1), np.eye(10)[[d]].T) for x, d in zip(X, y)]
    with contextlib.redirect_stdout(io.StringIO()):
        net.SGD(train, epochs, 10, 3.0)
    right = sum(int(np.argmax(net.feedforward(x.reshape(784, 1))) == d) for x, d in zip(Xt, yt))
    print(json.dumps({"accuracy": right / len(yt)}))
    sys.exit()
net = Network(layers, mbs)
with contextlib.redirect_stdout(io.StringIO()):
    t = time.perf_counter()
    net.SGD(tr, epochs, mbs, eta, te, te, lmbda=lmbda)
    epoch = (time.perf_counter() - t) / max(epochs, 1)
    t = time.perf_counter()
    for _ in range(2):
        net._accuracy(Xt, yt.astype(np.int32), 100, cores)
    evaluation = (time.perf_counter() - t) / 2
accuracy = float(np.mean(np.argmax(net._feedforward(Xt, cores), axis=1) == yt))
print(json.dumps({"epoch": epoch, "eval_1000": evaluation, "accuracy": accuracy}))
"""


def run(cores, name, epochs):
    out = subprocess.run([sys.executable, "-c", WORKER, str(cores), name, str(epochs)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=0, help="accuracy runs of N epochs (0: none)")
    parser.add_argument("--json")
    args = parser.parse_args()
    report = {"host": os.uname().nodename, "cpus": os.cpu_count(), "timing": {}, "accuracy": {},
              "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
              "load_average": os.getloadavg()}
    names = ["basic_conv", "dbl_conv"]
    times = {(n, c): [] for n in names for c in (1, 2)}
    evals = {(n, c): [] for n in names for c in (1, 2)}
    for _ in range(args.rounds):
        for n in names:
            for c in (1, 2):
                r = run(c, n, 1)
                times[n, c].append(r["epoch"])
                evals[n, c].append(r["eval_1000"])
    for n in names:
        row = {}
        for c in (1, 2):
            epoch = statistics.median(times[n, c])
            ev = statistics.median(evals[n, c])
            train = epoch - 2 * ev                      # 4,000 images trained
            row[f"{c}core"] = {
                "epoch_4000_s": epoch, "eval_per_1000_s": ev,
                "epoch_50000_s": train * 12.5 + 20 * ev, "epoch_250000_s": train * 62.5 + 20 * ev}
        row["two_over_one"] = row["1core"]["epoch_4000_s"] / row["2core"]["epoch_4000_s"]
        report["timing"][n] = row
        print(n, json.dumps(row, indent=1))
    if args.epochs:
        for n in names + ["dense_784_30_10"]:
            report["accuracy"][n] = run(1, n, args.epochs)["accuracy"]
            print(n, args.epochs, "epochs: test accuracy", report["accuracy"][n])
        report["accuracy_epochs"] = args.epochs
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
