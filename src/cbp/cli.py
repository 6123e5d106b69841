"""The ``cbp`` command: train, evaluate and explain networks from the shell.

    cbp train                         # 784-30-10 on the embedded MNIST sample
    cbp train --epochs 30 --save digits.npz --plot curves.png
    cbp evaluate digits.npz
    cbp explain                       # a lecture's worked 2-3-2 example, number by number
    cbp explain digits.npz            # one MNIST example through a trained model
    cbp bench --quick

``python -m cbp`` is the same command.  Exit status: 0 on success, 2 for a bad
command line or unreadable input, 1 when training diverges or the model cannot
be saved, 130 after Ctrl-C.
"""
import argparse
import math
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from typing import Optional

import numpy as np

from . import _checks, _cli_data, _data, training
from ._cli_data import UsageError
from .errors import DivergenceError, TrainingInterrupted
from .model import Network
from .sgd import SGD

__all__ = ["main", "build_parser"]

PROG = "cbp"


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error worded ``cbp: error: ...`` (exit 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


# -- argument types -----------------------------------------------------------


def _sizes(text):
    try:
        return [int(s) for s in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 784,30,10; got {text!r}") from None


def _floats(text):
    try:
        return [float(s) for s in text.replace(" ", ",").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 1,0.5; got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cbp`` command."""
    from . import __version__
    parser = _Parser(prog=PROG, description="Feed-forward networks trained by backpropagation "
                     "and stochastic gradient descent (Cython core).",
                     epilog="Run 'cbp COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"cbp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train", help="train a network by mini-batch SGD and report test accuracy",
        description="Train a network by mini-batch SGD, one epoch at a time, and report the "
        "test accuracy after each epoch. The defaults are network.py's chapter-1 setup "
        "(784-30-10 sigmoid, quadratic cost, eta 3, mini-batches of 10) on the MNIST sample "
        "shipped with cbp (4,000 training and 1,000 held-out images). Epochs are counted from "
        "1 here ('Epoch 3/10' is the third of ten); the Python API's history['epoch'] and "
        "network.py's printed lines count from 0, as the book does. Training that looks "
        "hopeless (inputs far outside [0, 1], a cost that grows or stays at chance after the "
        "first epoch) is reported as 'cbp: warning: ...' on standard error.")
    net = t.add_argument_group("network")
    net.add_argument("--sizes", type=_sizes, default=[784, 30, 10], metavar="N,N,...",
                     help="units per layer, input first (default: 784,30,10)")
    net.add_argument("--activation", default="sigmoid", metavar="NAME",
                     help="hidden-layer activation: sigmoid, tanh, relu, linear "
                          "(default: sigmoid)")
    net.add_argument("--output-activation", default=None, metavar="NAME",
                     help="output activation: as --activation, or softmax "
                          "(default: same as --activation)")
    net.add_argument("--cost", default="quadratic", metavar="NAME",
                     help="quadratic, sse, cross_entropy (sigmoid output) or log_likelihood "
                          "(default: quadratic)")
    net.add_argument("--init", choices=("gaussian", "scaled"), default=None,
                     help="initial weights: gaussian N(0, 1) as network.py, or scaled "
                          "N(0, 1/n_in) (default: gaussian for sigmoid hidden units, scaled "
                          "for tanh, relu and linear ones, which N(0, 1) weights saturate or "
                          "blow up)")
    net.add_argument("--dtype", default="float64", metavar="TYPE",
                     help="float64 or float32 (default: float64)")
    net.add_argument("--seed", type=int, default=0,
                     help="seed for the initial weights and the shuffling; the same seed gives "
                          "the same run (default: 0)")
    sgd = t.add_argument_group("training")
    sgd.add_argument("--epochs", type=int, default=10, help="passes over the data (default: 10)")
    sgd.add_argument("-m", "--mini-batch-size", type=int, default=10, metavar="M",
                     help="examples per gradient step (default: 10)")
    sgd.add_argument("--eta", type=float, default=None,
                     help="learning rate η (default: by setup, as measured on the MNIST "
                          "sample: 3.0 for sigmoid hidden units with the quadratic or sse "
                          "cost, network.py's; 0.5 for sigmoid with cross_entropy or "
                          "log_likelihood, network2.py's; 0.1 for tanh, relu and linear "
                          "hidden units)")
    sgd.add_argument("--lmbda", type=float, default=0.0,
                     help="L2 regularisation λ (default: 0)")
    sgd.add_argument("--momentum", type=float, default=0.0, help="momentum μ in [0, 1) "
                     "(default: 0)")
    io = t.add_argument_group("input and output")
    io.add_argument("--data", metavar="PATH",
                    help="MNIST: a directory with the IDX files (train-* for training, t10k-* "
                         "for testing; with only one of them, its last 20%% are held out), an "
                         "IDX images file, or network.py's mnist.pkl.gz "
                         "(default: the embedded sample)")
    io.add_argument("--save", metavar="MODEL", help="save the trained network to this file "
                    "(.npz; also after Ctrl-C)")
    io.add_argument("--plot", metavar="FILE", help="plot the learning curves to this image "
                    "(needs matplotlib)")
    io.add_argument("--plot-weights", metavar="FILE",
                    help="draw each first-layer unit's incoming weights as an image to this "
                         "file (needs matplotlib and a square number of inputs)")
    io.add_argument("--plot-speed", metavar="FILE",
                    help="record the speed of learning of each layer (mean |dC/db|, the "
                         "book's chapter 5) and plot it to this file (needs matplotlib)")
    io.add_argument("-q", "--quiet", action="store_true",
                    help="print only the final line; no progress bar")
    t.set_defaults(run=_train)

    e = sub.add_parser("evaluate", help="test accuracy of a saved model",
                       description="Load a model saved by 'cbp train --save' and report its "
                       "accuracy on held-out data: exactly what 'cbp train --data' with the "
                       "same PATH held out from training.")
    e.add_argument("model", metavar="MODEL", help="a model file written by cbp")
    e.add_argument("--data", metavar="PATH",
                   help="MNIST test data: a directory (its t10k-* files when train-* are "
                        "there too; with only one of them, its last 20%%), an IDX images "
                        "file (its last 20%%), or mnist.pkl.gz (its test part) "
                        "(default: the embedded sample's 1,000 held-out images)")
    e.set_defaults(run=_evaluate)

    x = sub.add_parser(
        "explain", help="print backpropagation step by step for one example",
        description="Print feedforward, the four backprop equations (BP1-BP4) and every "
        "intermediate value for one example, computed by the same kernels as training. "
        "Without MODEL: the worked example of a standard backpropagation lecture (V. "
        "Kulyukin's CS 5600 slides, Utah State University), a 2-3-2 sigmoid network whose "
        "numbers are printed there. With MODEL: the first held-out example of the embedded "
        "sample (or --index, --x/--y).")
    x.add_argument("model", metavar="MODEL", nargs="?", help="a model file written by cbp")
    x.add_argument("--x", type=_floats, metavar="X1,X2,...",
                   help="the input (write --x=-1,2 for a negative first value)")
    x.add_argument("--y", type=_floats, metavar="Y1,Y2,...",
                   help="the target vector, or with a single value a class label")
    x.add_argument("--index", type=int, default=0,
                   help="with MODEL: which held-out example (default: 0)")
    x.add_argument("--digits", type=int, default=4, help="decimals shown (default: 4)")
    x.add_argument("--max-columns", type=int, default=12, metavar="N",
                   help="summarise vectors and matrices wider than this (default: 12)")
    x.set_defaults(run=_explain)

    b = sub.add_parser("bench", help="run the benchmark suite (bench/run.py of a source tree)",
                       description="Run bench/run.py, cbp's benchmark suite (pinned workers, "
                       "NumPy, PyTorch and JAX peers, %% of this CPU's FMA peak). It lives in "
                       "cbp's source tree, not in the installed package: run this from a "
                       "checkout, or from an editable install.")
    b.add_argument("--quick", action="store_true",
                   help="one round on small samples: a smoke test, not comparable")
    b.add_argument("--sections", default=None, help="passed to bench/run.py")
    b.add_argument("--against", default=None, metavar="REV", help="passed to bench/run.py")
    b.add_argument("--json", default=None, metavar="PATH", help="passed to bench/run.py")
    b.set_defaults(run=_bench)
    return parser


# -- helpers ------------------------------------------------------------------


def _message(exc):
    """An exception as one line, without '[Errno 2]' noise."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text += f": {exc.filename}"
        return text
    return str(exc) or type(exc).__name__


def _fail(message, status=2):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _check_output_path(path, flag):
    # Found before training, not after every epoch ran: a missing or
    # unwritable directory, and a directory, FIFO or device at the path.
    full = os.path.expanduser(path)
    directory = os.path.dirname(os.path.realpath(full))
    if not os.path.isdir(directory):
        raise UsageError(f"{flag} {path}: the directory {directory} does not exist")
    if os.path.isdir(full):
        raise UsageError(f"{flag} {path}: is a directory")
    if os.path.exists(full) and not stat.S_ISREG(os.stat(full).st_mode):
        from ._files import kind_of
        raise UsageError(f"{flag} {path}: is {kind_of(os.stat(full).st_mode)}, not a regular "
                         "file; cbp writes regular files only")
    try:
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {directory} "
                         f"({exc.strerror or exc})") from None
    return os.path.realpath(full)


def _check_outputs(args):
    """Every output of ``cbp train`` checked before training; two on one path refused."""
    outputs = [(flag, path) for flag, path in (("--save", args.save), ("--plot", args.plot),
                                               ("--plot-weights", args.plot_weights),
                                               ("--plot-speed", args.plot_speed)) if path]
    seen = {}
    for flag, path in outputs:
        real = _check_output_path(path, flag)
        if real in seen:
            raise UsageError(f"{seen[real]} and {flag} both write {path}: give each output "
                             "its own file")
        seen[real] = flag
        formats = _plot_formats() if flag != "--save" else None
        ext = os.path.splitext(path)[1].lstrip(".").lower() or "png"
        if formats and ext not in formats:
            raise UsageError(f"{flag} {path}: matplotlib writes .{', .'.join(sorted(formats))}; "
                             f"not .{ext}")


def _plot_formats():
    # What Figure.savefig writes (None without matplotlib, reported later).
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None
    return set(FigureCanvasBase.get_supported_filetypes())


def _accuracy_text(correct, n):
    return f"accuracy {100.0 * correct / n:.2f}% ({correct}/{n})" if n else "accuracy n/a"


_PLOT_INSTALL = ('pip install "cbp-backprop[plot]" (from a package index) or '
                 'pip install ".[plot]" (from a source checkout)')


def _default_init(activation):
    """(init, why) when --init is not given."""
    if activation == "sigmoid":
        return "gaussian", "network.py's, for sigmoid hidden units"
    return "scaled", f"the default for {activation} hidden units"


def _default_eta(activation, cost):
    """(eta, why) when --eta is not given; each reaches about 90% on the sample in 10 epochs."""
    if activation == "sigmoid":
        if cost in ("quadratic", "sse"):
            return 3.0, "network.py's, for sigmoid units and this cost"
        return 0.5, "network2.py's, for sigmoid units and this cost"
    return 0.1, f"the default for {activation} hidden units"


def _warn_user(message):
    if message:
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


# -- train --------------------------------------------------------------------


class _EpochLines(training.Callback):
    """The command's line after each epoch, and a progress bar during it (on a terminal)."""

    def __init__(self, epochs, n_test, say, show):
        self.epochs, self.n_test, self.say, self.show = epochs, n_test, say, show
        self.bar = None

    def on_epoch_begin(self, run, epoch):
        from tqdm import tqdm
        self.bar = tqdm(total=run.n, disable=not self.show, leave=False, unit="ex",
                        desc=f"Epoch {epoch + 1}/{self.epochs}")

    def update(self, done):
        self.bar.update(done - self.bar.n)

    def on_epoch_end(self, run, epoch):
        self._close()
        h = run.history
        self.say(f"Epoch {epoch + 1}/{self.epochs}: {_accuracy_text(h['correct'][-1], self.n_test)}, "
                 f"cost {h['cost'][-1]:.4f} (test {h['test_cost'][-1]:.4f}), "
                 f"{h['seconds'][-1]:.3f} s")
        return None

    def on_train_end(self, run):
        self._close()

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _train(args):
    activation = args.activation.lower() if isinstance(args.activation, str) else None
    init, init_why = ((args.init, None) if args.init is not None
                      else _default_init(activation))
    net = Network(args.sizes, activation=args.activation,
                  output_activation=args.output_activation, cost=args.cost, init=init,
                  dtype=args.dtype, seed=args.seed)
    eta, eta_why = ((args.eta, None) if args.eta is not None
                    else _default_eta(net.activation, net.cost))
    opt = SGD(eta, mini_batch_size=args.mini_batch_size, lmbda=args.lmbda,
              momentum=args.momentum)
    epochs = _checks.integer(args.epochs, "epochs", minimum=0)
    _check_outputs(args)
    plots = [(flag, path) for flag, path in (("--plot", args.plot),
                                             ("--plot-weights", args.plot_weights),
                                             ("--plot-speed", args.plot_speed)) if path]
    if args.plot_weights and math.isqrt(net.sizes[0]) ** 2 != net.sizes[0]:
        raise UsageError(f"--plot-weights: the input has {net.sizes[0]} units, not a square "
                         "number of pixels")
    if args.plot_speed and net.num_layers < 3:
        raise UsageError("--plot-speed: the network has no hidden layer")
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(f"{plots[0][0]} needs matplotlib: {_PLOT_INSTALL}") from None
    (X, y), (X_test, y_test), what = _cli_data.training_data(args.data)
    _cli_data.check_fit(net, X, y, "the training data")
    _cli_data.check_fit(net, X_test, y_test, "the test data")
    # Convert once, not at every epoch.
    X = np.ascontiguousarray(X, dtype=net.dtype)
    Y = _cli_data.one_hot(y, net.sizes[-1], net.dtype)
    X_test = np.ascontiguousarray(X_test, dtype=net.dtype)
    n, n_test = X.shape[0], X_test.shape[0]
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    say(f"Network: {net!r}, init {net.init!r}" + (f" ({init_why}; --init to change)"
                                                  if init_why else ""))
    say(f"Data: {what}: {n} training examples, {n_test} test examples")
    say(f"SGD: {epochs} epoch{'s' * (epochs != 1)}, mini-batch size {opt.mini_batch_size}, "
        f"eta {opt.eta:g}" + (f" ({eta_why}; --eta to change)" if eta_why else "")
        + f", lmbda {opt.lmbda:g}, momentum {opt.momentum:g}, seed {args.seed}")
    # The library's hopeless-training checks, printed as the command's warnings.
    test = _data.examples((X_test, y_test), net.sizes[0], net.sizes[-1], net.dtype,
                          "test_data", want_labels=True)
    bar = _EpochLines(epochs, n_test, say, show=not args.quiet and sys.stderr.isatty())
    callbacks = [training.LearningSpeed()] if args.plot_speed else []
    callbacks += [training.Monitor(test), bar,
                  training.Watch(report=_warn_user, even_without_epochs=True)]
    status, note = 0, None
    try:
        history = training.train(net, opt, (X, Y), epochs, callbacks, progress=bar.update)
    except TrainingInterrupted as exc:
        history = exc.history
        status, note = 130, "interrupted"
        print("interrupted", file=sys.stderr, flush=True)
    except DivergenceError as exc:
        # Numbered as the epoch lines, from 1.
        return _fail(f"training diverged in epoch {exc.epoch + 1}/{epochs}, mini-batch "
                     f"{exc.mini_batch + 1} of the epoch: the cost or the weights became NaN "
                     f"or infinite (eta {opt.eta:g} may be too large; try a smaller --eta); "
                     "nothing was saved", 1)
    done = len(history["epoch"])
    seconds = sum(history["seconds"])
    per_epoch = f", {seconds / done:.3f} s per epoch" if done else ""
    if note:
        # Ctrl-C stops within an epoch: the network (and what --save writes)
        # has part of epoch done + 1 in it, so its accuracy is measured now,
        # not copied from the last epoch line.
        correct = net.evaluate((X_test, y_test))
        kept = "the network as saved" if args.save else "the network as it stands"
        print(f"Interrupted in epoch {done + 1}/{epochs} ({done} complete): {kept}, part-way "
              f"through epoch {done + 1}, has test {_accuracy_text(correct, n_test)}; "
              f"training took {seconds:.2f} s{per_epoch}", flush=True)
    else:
        correct = history["correct"][-1] if done else net.evaluate((X_test, y_test))
        print(f"Done after {done} epoch{'s' * (done != 1)}: test "
              f"{_accuracy_text(correct, n_test)}; training took {seconds:.2f} s{per_epoch}",
              flush=True)
    if args.save:
        try:
            from .io import save
            save(net, os.path.expanduser(args.save))
        except OSError as exc:
            return _fail(f"cannot save the model: {_message(exc)}", 1)
        say(f"Saved the model to {args.save}")
    from . import plot
    figures = [(args.plot and done, plot.plot_history, history, args.plot,
                "the learning curves"),
               (args.plot_weights, plot.plot_weights, net, args.plot_weights,
                "the first layer's weights"),
               (args.plot_speed and done, plot.plot_learning_speed, history, args.plot_speed,
                "the speed of learning per layer")]
    for wanted, draw, what, path, title in figures:
        if not wanted:
            continue
        try:
            draw(what, path=os.path.expanduser(path))
        except (OSError, ValueError) as exc:
            return _fail(f"cannot write the plot: {_message(exc)}", 1)
        say(f"Plotted {title} to {path}")
    return status


# -- evaluate -----------------------------------------------------------------


def _evaluate(args):
    from .io import load
    net = load(os.path.expanduser(args.model))
    X, y, what = _cli_data.evaluation_data(args.data)
    _cli_data.check_fit(net, X, y, "the data")
    X = np.ascontiguousarray(X, dtype=net.dtype)
    correct = net.evaluate((X, y))
    print(f"Model: {args.model}: {net!r}")
    cost = net.total_cost((X, _cli_data.one_hot(y, net.sizes[-1], net.dtype))) if len(y) else float("nan")
    print(f"Test {_accuracy_text(correct, len(y))}, cost {cost:.4f}, on {what}")
    return 0


# -- explain ------------------------------------------------------------------


def _explain(args):
    from . import _checks
    from .explain import explain, worked_example
    digits = _checks.integer(args.digits, "--digits", minimum=0)
    max_columns = _checks.integer(args.max_columns, "--max-columns", minimum=1)
    if args.model is None:
        net, x, y = worked_example()
        print("The worked example of a standard backpropagation lecture (V. Kulyukin, "
              "\"Gradient Descent and Backpropagation: Part 02\", CS 5600/6600, Utah State "
              "University, 2020): a 2-3-2 sigmoid network, quadratic cost, with the lecture's "
              "weights and biases; x = y = [1, 1] unless --x/--y say otherwise.")
    else:
        from .io import load
        net = load(os.path.expanduser(args.model))
        print(f"Model: {args.model}: {net!r}")
        x = y = None
        if args.x is None:
            X, labels, what = _cli_data.evaluation_data(None)
            index = _checks.integer(args.index, "--index", minimum=0)
            if index >= len(labels):
                raise UsageError(f"--index must be below {len(labels)}; got {index}")
            _cli_data.check_fit(net, X, labels, "the embedded sample")
            x = X[index]
            guess = int(np.argmax(net.feedforward(x)))
            print(f"Example {index} of {what}: label {labels[index]}, the network answers "
                  f"{guess}.")
            y = np.zeros(net.sizes[-1])
            y[labels[index]] = 1
        elif args.y is None:
            raise UsageError("with MODEL and --x, give the target with --y too")
    if args.x is not None:
        x = args.x
    if args.y is not None:
        y = args.y
        n_out = net.sizes[-1]
        if len(y) == 1 and n_out > 1:
            label = y[0]
            if label != int(label) or not 0 <= label < n_out:
                raise UsageError(f"--y with one value is a class label in 0..{n_out - 1}; "
                                 f"got {label:g}")
            y = np.zeros(n_out)
            y[int(label)] = 1
    trace = explain(net, x, y, digits=digits)
    print()
    trace.print(max_columns=max_columns)
    return 0


# -- bench --------------------------------------------------------------------


def _bench_script():
    """bench/run.py of the source tree: in the working directory or beside this package's src/."""
    from pathlib import Path
    here = Path(__file__).resolve().parent
    for root in (Path.cwd(), here.parent.parent):
        script = root / "bench" / "run.py"
        if script.is_file() and (root / "src" / "cbp").is_dir():
            return script
    return None


def _bench(args):
    import subprocess
    script = _bench_script()
    if script is None:
        return _fail("the benchmark suite (bench/run.py) is in cbp's source tree, not in the "
                     "installed package: run `python bench/run.py --quick` in a checkout", 1)
    cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
    for flag in ("sections", "against", "json"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", getattr(args, flag)]
    return subprocess.call(cmd)


# -- entry point --------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``cbp`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name.

    Returns
    -------
    int
        0 on success, 2 for a bad command line or unreadable input, 1 when
        training diverges or a file cannot be written, 130 after Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.run(args)
    except BrokenPipeError:
        # Output piped into e.g. `head`, which exited: stop quietly (Python's
        # documented recipe; stdout is pointed at devnull so the final flush
        # does not fail again).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except UsageError as exc:
        return _fail(exc)
    except (ValueError, TypeError, OSError) as exc:
        # Bad flag values (checked by cbp), unreadable or missing files.
        return _fail(_message(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
