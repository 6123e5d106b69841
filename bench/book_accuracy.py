"""The book's accuracies on the full MNIST, reached through cbp's drop-ins.

Runs the experiments of chapters 1 and 6 as the book's scripts call them
(``network.Network.SGD``, conv.py's ``shallow``, ``basic_conv`` and
``dbl_conv_relu`` with λ = 0.1, and ``double_fc_dropout`` on the
expanded training set), one network each, and records every
epoch's printed accuracy, the best one and the wall-clock time per epoch.
It needs the full MNIST, which cbp never ships: a directory holding the
four official IDX files (``train-images-idx3-ubyte`` ..., gzipped or not),
as ``cbp.datasets.download_mnist()`` leaves them.  The book's split is
taken from them as ``cbp.mnist_loader`` takes it: the first 50,000
training images to train on, the last 10,000 to validate, the 10,000 test
images to test.

    python bench/book_accuracy.py --data DIR                      # everything, the book's epochs
    python bench/book_accuracy.py --data DIR --only basic_conv --epochs 10
    python bench/book_accuracy.py --data DIR --only dropout_expanded   # ~1-2 h, 190 TFLOP

``--epochs`` shortens a run (the JSON records how many epochs ran, next to
the book's count, so a shortened run never passes for the book's).
Results: ``bench/results/book_accuracy.json`` (``--json`` to change).
"""
import argparse
import contextlib
import io
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

#: name: (chapter, the book's epochs, the accuracy the book reports, what it measures)
EXPERIMENTS = {
    "ch1_30": ("1", 30, 95.42, "network.py [784,30,10], eta 3.0, mini-batch 10: best test accuracy"),
    "shallow": ("6", 60, 97.80, "FC 100 sigmoid + softmax, eta 0.1: test accuracy at the best "
                "validation epoch"),
    "basic_conv": ("6", 60, 98.78, "conv 20x5x5 + max-pool 2x2 + FC 100 + softmax, eta 0.1"),
    "dbl_conv_relu": ("6", 60, 99.23, "two conv-pool layers, ReLU, FC 100, softmax, eta 0.03, "
                      "lambda 0.1"),
    "dropout_expanded": ("6", 40, 99.60, "two conv-pool layers, ReLU, two FC 1000 with dropout "
                         "0.5, softmax with dropout 0.5, eta 0.03, trained on the 250,000-image "
                         "expanded set (conv.py's double_fc_dropout(0.5, 0.5, 0.5, 1))"),
}


class _Tee(io.TextIOBase):
    """Prints as the book's scripts print, and keeps each line with its time."""

    def __init__(self, out):
        self.out, self.lines, self._part = out, [], ""

    def write(self, text):
        self.out.write(text)
        self.out.flush()
        self._part += text
        while "\n" in self._part:
            line, self._part = self._part.split("\n", 1)
            self.lines.append((time.perf_counter(), line))
        return len(text)


def _ch1_30(epochs):
    from cbp import mnist_loader, network
    training, validation, test = mnist_loader.load_data_wrapper()
    net = network.Network([784, 30, 10])
    net.SGD(training, epochs, 10, 3.0, test_data=test)


def _network3(layers_of, eta, lmbda=0.0):
    def run(epochs):
        from cbp import network3
        training, validation, test = network3.load_data_shared()
        net = network3.Network(layers_of(network3), 10)
        net.SGD(training, epochs, 10, eta, validation, test, lmbda=lmbda)
    return run


def _shallow(n3):
    return [n3.FullyConnectedLayer(n_in=784, n_out=100), n3.SoftmaxLayer(n_in=100, n_out=10)]


def _basic_conv(n3):
    return [n3.ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                             poolsize=(2, 2)),
            n3.FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100),
            n3.SoftmaxLayer(n_in=100, n_out=10)]


def _dbl_conv_relu(n3):
    return [n3.ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                             poolsize=(2, 2), activation_fn=n3.ReLU),
            n3.ConvPoolLayer(image_shape=(10, 20, 12, 12), filter_shape=(40, 20, 5, 5),
                             poolsize=(2, 2), activation_fn=n3.ReLU),
            n3.FullyConnectedLayer(n_in=40 * 4 * 4, n_out=100, activation_fn=n3.ReLU),
            n3.SoftmaxLayer(n_in=100, n_out=10)]


def _dropout_layers(n3):
    return [n3.ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                             poolsize=(2, 2), activation_fn=n3.ReLU),
            n3.ConvPoolLayer(image_shape=(10, 20, 12, 12), filter_shape=(40, 20, 5, 5),
                             poolsize=(2, 2), activation_fn=n3.ReLU),
            n3.FullyConnectedLayer(n_in=40 * 4 * 4, n_out=1000, activation_fn=n3.ReLU,
                                   p_dropout=0.5),
            n3.FullyConnectedLayer(n_in=1000, n_out=1000, activation_fn=n3.ReLU, p_dropout=0.5),
            n3.SoftmaxLayer(n_in=1000, n_out=10, p_dropout=0.5)]


def _book_files(scratch):
    """The book's ``mnist.pkl.gz`` and ``mnist_expanded.pkl.gz``, made once from the IDX files.

    The first is the split ``cbp.mnist_loader.load_data`` takes from the IDX
    files, pickled as the book's file is (float32 images, int64 labels); the
    second is what ``python -m cbp.expand_mnist`` makes of it (seed 0).
    """
    import gzip
    import pickle

    import numpy as np

    from cbp import expand_mnist, mnist_loader
    scratch.mkdir(parents=True, exist_ok=True)
    plain, expanded = scratch / "mnist.pkl.gz", scratch / "mnist_expanded.pkl.gz"
    if not plain.exists():
        parts = tuple((np.asarray(x, np.float32), np.asarray(y, np.int64))
                      for x, y in mnist_loader.load_data())
        partial = scratch / "mnist.pkl.gz.partial"
        with gzip.open(partial, "wb") as f:
            pickle.dump(parts, f, protocol=2)
        os.replace(partial, plain)
    if not expanded.exists():
        expand_mnist.expand_mnist(plain, expanded, seed=0)
    return expanded


def _dropout_expanded(epochs, scratch):
    from cbp import network3
    # The expanded file keeps the book's validation and test sets unchanged.
    training, validation, test = network3.load_data_shared(str(_book_files(scratch)))
    net = network3.Network(_dropout_layers(network3), 10)
    net.SGD(training, epochs, 10, 0.03, validation, test)


RUNS = {"ch1_30": _ch1_30, "shallow": _network3(_shallow, 0.1),
        "basic_conv": _network3(_basic_conv, 0.1),
        "dbl_conv_relu": _network3(_dbl_conv_relu, 0.03, lmbda=0.1)}

_CH1 = re.compile(r"Epoch (\d+): (\d+) / (\d+)")
_VALID = re.compile(r"Epoch (\d+): validation accuracy ([\d.]+)%")
_TEST = re.compile(r"The corresponding test accuracy is ([\d.]+)%")


def _summary(name, lines, started):
    """Per-epoch accuracies and times from the printed lines."""
    epochs, last = [], started
    for t, line in lines:
        m = _CH1.match(line)
        if m:
            epochs.append({"epoch": int(m[1]), "test": 100 * int(m[2]) / int(m[3]),
                           "seconds": t - last})
            last = t
            continue
        m = _VALID.match(line)
        if m:
            epochs.append({"epoch": int(m[1]), "validation": float(m[2]), "seconds": t - last})
            last = t
            continue
        m = _TEST.match(line)
        if m and epochs:
            epochs[-1]["test"] = float(m[1])
    if name == "ch1_30":
        best = max((e["test"] for e in epochs), default=None)
    else:
        # The book's figure: the test accuracy printed last, at the best
        # validation epoch (its script prints one on every tie with the best,
        # so the last printed is the one its final line repeats).
        best = next((e["test"] for e in reversed(epochs) if "test" in e), None)
    return epochs, best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="directory of the four MNIST IDX files")
    parser.add_argument("--only", default=",".join(EXPERIMENTS),
                        help="comma-separated subset of " + ", ".join(EXPERIMENTS))
    parser.add_argument("--epochs", type=int, default=None,
                        help="run this many epochs instead of the book's (recorded)")
    parser.add_argument("--scratch", default=None,
                        help="where dropout_expanded writes the book's mnist.pkl.gz and the "
                        "expanded set (default DATA/book; about 1 GB)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" /
                                              "book_accuracy.json"))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiments {unknown}; choose from {list(EXPERIMENTS)}")
    data = Path(args.data).expanduser().resolve()
    if not (data / "train-images-idx3-ubyte").exists() and \
            not (data / "train-images-idx3-ubyte.gz").exists():
        parser.error(f"{data} holds no train-images-idx3-ubyte[.gz]")
    # cbp.mnist_loader (and network3.load_data_shared through it) reads the
    # IDX files from cbp's data directory, which CBP_DATA names.
    os.environ["CBP_DATA"] = str(data)
    import cbp
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.exists() else {}
    results["host"] = {"machine": platform.machine(), "processor": _cpu(),
                       "cbp": cbp.__version__, "threads": os.environ.get("OMP_NUM_THREADS")}
    for name in names:
        chapter, book_epochs, book_accuracy, what = EXPERIMENTS[name]
        epochs = args.epochs if args.epochs is not None else book_epochs
        print(f"== {name} (chapter {chapter}): {what}; {epochs} of the book's {book_epochs} "
              "epochs", flush=True)
        tee = _Tee(sys.stdout)
        started = time.perf_counter()
        with contextlib.redirect_stdout(tee):
            if name == "dropout_expanded":
                _dropout_expanded(epochs, Path(args.scratch or data / "book"))
            else:
                RUNS[name](epochs)
        per_epoch, best = _summary(name, tee.lines, started)
        results.setdefault("runs", {})[name] = {
            "chapter": chapter, "what": what, "epochs": epochs, "book_epochs": book_epochs,
            "book_accuracy": book_accuracy, "cbp_accuracy": best, "per_epoch": per_epoch,
            "seconds": time.perf_counter() - started}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"== {name}: cbp {best}% after {epochs} epochs; the book {book_accuracy}% after "
              f"{book_epochs}", flush=True)
    return 0


def _cpu():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
