"""The book's scripts, run with the original modules and with cbp's drop-ins.

    python bench/dropins.py                 # 3 rounds, 2 epochs, a few minutes
    python bench/dropins.py --train 4000 --rounds 2   # quicker
    python bench/dropins.py --rounds 5 --epochs 3 --threads 2

Each script is the book's own: seed ``random`` and ``np.random``, build
``Network([784, 30, 10])``, call ``SGD`` (chapter 1: network.py with
``test_data``; chapter 3: network2.py with cross-entropy, λ = 5, evaluation
accuracy and training cost monitored).  The wall clock is taken around what
the user runs (building the network and the ``SGD`` call, printing
included, to a buffer).  The originals come from ../shared/nielsen/.  Rounds
interleave the original and the drop-in; a ratio is the median of per-round
ratios original / drop-in (above 1: cbp is faster), both sides measured in
the same stretch of time.  The printed lines of the two are compared too.

Data: the embedded sample in mnist_loader's formats: its 4,000 training
images repeated up to 50,000 tuples (``--train``) and its 1,000 others for
validation, and the 10,000 t10k test images from
../shared/data/ when present (else the sample's 1,000).  Also measured: the
conversion of 50,000 network.py tuples against one cbp epoch over them, and
a repeated ``evaluate`` of the same test list.

One thread by default on both sides (OMP_NUM_THREADS=1), as bench/run.py
does; ``--threads`` sets it for cbp.
"""
import argparse
import contextlib
import importlib.util
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NIELSEN = HERE.parents[1] / "shared" / "nielsen"
SHARED_DATA = HERE.parents[1] / "shared" / "data"


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train", type=int, default=50_000,
                   help="training tuples (the sample's 4,000 images repeated up to this)")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for cbp")
    p.add_argument("--originals", type=Path, default=NIELSEN)
    return p.parse_args()


ARGS = _args()
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)

import cbp  # noqa: E402
import cbp.network  # noqa: E402
import cbp.network2  # noqa: E402
from cbp import _data, datasets  # noqa: E402


def _original(name):
    path = ARGS.originals / f"{name}.py"
    if not path.is_file():
        sys.exit(f"the book's {name}.py is not in {ARGS.originals} (--originals DIR)")
    spec = importlib.util.spec_from_file_location(f"nielsen_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _book_scale(X):
    return (np.rint(X * 255) / 256).astype(np.float32)


def _book_data():
    (X, y), (Xv, yv) = datasets.load_sample()
    # Scaled as the book's file (grey level / 256), float32 columns.
    X, Xv = _book_scale(X), _book_scale(Xv)
    eye = np.eye(10)
    training = list(zip(list(X.reshape(-1, 784, 1)), list(eye[y].reshape(-1, 10, 1))))
    # As many tuples as the book's 50,000 (the same arithmetic per example).
    training = (training * (ARGS.train // len(training) + 1))[:ARGS.train]
    validation = list(zip(list(Xv.reshape(-1, 784, 1)), yv))
    try:
        Xt, yt = datasets.load_mnist(SHARED_DATA, kind="t10k")
        Xt = _book_scale(Xt)
        test = list(zip(list(Xt.reshape(-1, 784, 1)), yt))
    except (FileNotFoundError, ValueError):
        test = validation
    return training, validation, test


def _timed(fn):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    return seconds, out.getvalue().splitlines()


def chapter1(module, training, test, epochs):
    def script():
        random.seed(1)
        np.random.seed(1)
        net = module.Network([784, 30, 10])
        net.SGD(list(training), epochs, 10, 3.0, test_data=test)
    return script


def chapter3(module, training, validation, epochs):
    def script():
        random.seed(1)
        np.random.seed(1)
        net = module.Network([784, 30, 10], cost=module.CrossEntropyCost)
        net.SGD(list(training), epochs, 10, 0.5, lmbda=5.0, evaluation_data=validation,
                monitor_evaluation_accuracy=True, monitor_training_cost=True)
    return script


def _accuracy_lines(lines):
    return [line for line in lines if not line.startswith("Cost on")]


def compare(name, original, dropin, rounds):
    times_o, times_c, ratios = [], [], []
    same = True
    for r in range(rounds):
        pair = [("o", original), ("c", dropin)] if r % 2 == 0 else [("c", dropin), ("o", original)]
        got = {}
        for key, fn in pair:
            got[key] = _timed(fn)
        (to, lo), (tc, lc) = got["o"], got["c"]
        times_o.append(to)
        times_c.append(tc)
        ratios.append(to / tc)
        same &= _accuracy_lines(lo) == _accuracy_lines(lc)
    print(f"{name:<44} original {statistics.median(times_o):7.2f} s   cbp "
          f"{statistics.median(times_c):6.3f} s   x {statistics.median(ratios):6.1f} "
          f"(rounds {min(ratios):.1f}-{max(ratios):.1f})   same accuracy lines: "
          f"{'yes' if same else 'NO'}")
    return statistics.median(ratios)


def conversion(training, rounds):
    # 50,000 tuples (the sample's 4,000 repeated), as load_data_wrapper gives them.
    big = (training * (50_000 // len(training) + 1))[:50_000]
    X, Y = _data.training_arrays(big, 784, 10, np.float64)
    net = cbp.Network([784, 30, 10], seed=0)
    ratios, convert, epoch = [], [], []
    for _ in range(max(rounds, 5)):
        start = time.perf_counter()
        _data.training_arrays(big, 784, 10, np.float64)
        c = time.perf_counter() - start
        start = time.perf_counter()
        net.SGD((X, Y), 1, 10, 3.0, verbose=False)
        e = time.perf_counter() - start
        convert.append(c)
        epoch.append(e)
        ratios.append(c / e)
    # The best round too: a fresh 313 MB array can cost far more than the
    # copy (page faults; transparent huge pages compacted on a busy machine).
    print(f"{'convert 50,000 tuples / one epoch [784,30,10]':<44} convert "
          f"{statistics.median(convert):6.3f} s   epoch {statistics.median(epoch):6.3f} s   "
          f"ratio {statistics.median(ratios):.3f} (best round {min(ratios):.3f})")


def evaluation(test, rounds):
    net = cbp.network.Network([784, 30, 10], seed=0)
    ratios = []
    for _ in range(rounds):
        data = list(test)
        start = time.perf_counter()
        net.evaluate(data)
        first = time.perf_counter() - start
        start = time.perf_counter()
        net.evaluate(data)
        again = time.perf_counter() - start
        ratios.append(first / again)
    print(f"{'evaluate(test list): first call / repeat':<44} x {statistics.median(ratios):.1f}"
          f"  ({len(test)} tuples)")


def main():
    orig1, orig2 = _original("network"), _original("network2")
    training, validation, test = _book_data()
    print(f"cbp {cbp.__version__}, {ARGS.rounds} rounds, {ARGS.epochs} epochs, "
          f"OMP_NUM_THREADS={ARGS.threads}; training {len(training)}, validation "
          f"{len(validation)}, test {len(test)} tuples")
    compare("chapter 1: network.py, test_data each epoch",
            chapter1(orig1, training, test, ARGS.epochs),
            chapter1(cbp.network, training, test, ARGS.epochs), ARGS.rounds)
    compare("chapter 3: network2.py, monitors, lmbda=5",
            chapter3(orig2, training, validation, ARGS.epochs),
            chapter3(cbp.network2, training, validation, ARGS.epochs), ARGS.rounds)
    conversion(training, ARGS.rounds)
    evaluation(test, ARGS.rounds)


if __name__ == "__main__":
    main()
