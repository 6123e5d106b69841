"""Chapter 6's networks, one epoch each: cbp.network3 against PyTorch and JAX.

    python bench/network3.py                  # 3 rounds, 2,000 training images per epoch (~15 min)
    python bench/network3.py --quick          # a smoke test in seconds: NOT comparable
    python bench/network3.py --nets basic_conv,dropout --rounds 5 --train 4000
    python bench/network3.py --json out.json   # default: bench/results/network3.json (quick: quick-network3.json)
    python bench/network3.py --against main    # also cbp as built from git ref main, same rounds

The networks are the book's (``conv.py``), at mini-batch 10, float32 (the
original's ``floatX``):

==============  ========================================================================  =====  =====
name            layers                                                                    eta    lmbda
==============  ========================================================================  =====  =====
shallow         FC 784-100 sigmoid, softmax 100-10                                        0.1    0
basic_conv      conv 20x5x5 + pool 2x2 sigmoid, FC 2880-100 sigmoid, softmax              0.1    0
dbl_conv        conv 20x5x5, conv 40x20x5x5 (pool 2x2, ReLU), FC 640-100 ReLU, softmax    0.03   0.1
dropout         the same two conv layers, FC 640-1000 and 1000-1000 ReLU with dropout     0.03   0
                0.5, softmax 1000-10 with dropout 0.5 (the book's best single net)
==============  ========================================================================  =====  =====

Contenders, each timed by the wall clock around one epoch as its user runs
it: training on ``--train`` images (mini-batches in order), then the
accuracy on ``--eval`` validation and ``--eval`` test images:

- ``cbp``: ``cbp.network3``, the book's script with the import changed:
  ``load_data_shared`` on a file in the book's format, ``Network``,
  ``net.SGD(training_data, 1, 10, eta, validation_data, test_data, lmbda)``
  (its printed lines go to a buffer);
- ``torch``: PyTorch eager, written with care: no autograd at all (the
  backward pass by hand with ATen's ``convolution_backward``, max-unpooling
  and matrix products, under ``torch.inference_mode``), filters kept
  flipped so that ``conv2d`` (a correlation) computes the book's true
  convolution, parameters updated in place;
- ``torch.compile``: the same mini-batch step through ``torch.compile``
  (skipped, with the reason, when it fails here);
- ``jax``: ``jax.grad`` of the book's cost, the whole epoch one jitted
  ``lax.scan`` over the mini-batches, evaluation jitted.

Every contender starts from the same weights: those the original draws
after ``np.random.seed(0)`` (computed by tests/network3_reference.py).
Before timing, each worker checks one mini-batch step (dropout off) against
that NumPy reference in float64; the largest absolute difference of any
weight or bias (they are of order 0.01 to 1) is in the JSON and printed
(float32 arithmetic: about 1e-7; the run fails above 1e-4).

``--against REF`` adds the contender ``cbp@REF``: the git ref's tree (``git
archive``) built in a scratch directory and imported first (``PYTHONPATH``),
timed in the same interleaved rounds as this tree; its ``x`` ratio is this
tree's speed-up over it (the way to measure a kernel change: same run, same
load).  ``--against-dir DIR`` uses a tree already built in place there.

Each contender runs in its own worker process.  One-core rows: the worker
pins itself to CPU 0 (``os.sched_setaffinity``) as its first statement,
before importing anything, with OMP/OpenBLAS/MKL threads 1,
``torch.set_num_threads(1)`` and ``--xla_cpu_multi_thread_eigen=false``.  Default
threads: not pinned, no thread variables (each library's own default).
Rounds interleave the contenders (order rotated each round); a time is the
median over rounds, a ratio the median of per-round ratios with its min-max
(``x torch`` = time(torch) / time(cbp): above 1, cbp is faster).  A round
runs each contender's epoch back to back until the epochs add up to
``--round-gflop`` (8 GFLOP: ``shallow`` 8 epochs, ``basic_conv`` 2, the
others 1) and a time is seconds per epoch: on a 2-vCPU VM a team whose
second core idled between rounds runs slow for its first tens of
milliseconds, longer than one ``shallow`` epoch (10 ms at two threads), and
the book's scripts call ``SGD`` once for all their epochs.  ``--round-gflop
0`` times one epoch a round.

Also printed: the extrapolation of the book's best single net (``dropout``)
to its run in the book, 40 epochs of the 250,000-image expanded set, from
the measured epoch scaled by 250,000 / ``--train`` (conservative: the
measured epoch evaluates ``2 --eval`` images per ``--train`` training
images, more than the book's 20,000 per 250,000), and its FLOP count.
"""
import math
import os
import sys

if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "--worker":
    # First statement of a worker, before any library starts a thread.
    if sys.argv[2] != "all":
        os.sched_setaffinity(0, {int(c) for c in sys.argv[2].split(",")})

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
import network3_reference as ref  # noqa: E402

M = 10                       # the book's mini-batch size
BOOK_EXPANDED = 250_000      # the expanded training set
BOOK_EPOCHS = 40             # epochs of the book's dropout net
# The one-core workers' environment is bench/run.py's (worker.py says why
# XLA gets one flag only: the pinning is what holds it to one core).
sys.path.insert(0, str(HERE))
from worker import ONE_CORE_ENV  # noqa: E402

# (kind, ...) per layer: ("conv", filters, in_maps, size, image, activation),
# ("fc", n_in, n_out, activation, p), ("softmax", n_in, n_out, p)
_CONV1 = ("conv", 20, 1, 5, 28)
_CONV2 = ("conv", 40, 20, 5, 12)
NETS = {
    "shallow": dict(eta=0.1, lmbda=0.0, layers=[
        ("fc", 784, 100, "sigmoid", 0.0), ("softmax", 100, 10, 0.0)]),
    "basic_conv": dict(eta=0.1, lmbda=0.0, layers=[
        _CONV1 + ("sigmoid",), ("fc", 20 * 12 * 12, 100, "sigmoid", 0.0), ("softmax", 100, 10, 0.0)]),
    "dbl_conv": dict(eta=0.03, lmbda=0.1, layers=[
        _CONV1 + ("ReLU",), _CONV2 + ("ReLU",), ("fc", 40 * 4 * 4, 100, "ReLU", 0.0),
        ("softmax", 100, 10, 0.0)]),
    "dropout": dict(eta=0.03, lmbda=0.0, layers=[
        _CONV1 + ("ReLU",), _CONV2 + ("ReLU",), ("fc", 640, 1000, "ReLU", 0.5),
        ("fc", 1000, 1000, "ReLU", 0.5), ("softmax", 1000, 10, 0.5)]),
}
CONTENDERS = ("cbp", "torch", "torch.compile", "jax")


def no_dropout(layers):
    return [spec[:-1] + (0.0,) if spec[0] in ("fc", "softmax") else spec for spec in layers]


# ---------------------------------------------------------------------------
# FLOPs, data, initial weights

def train_flops(layers):
    """Multiply-adds x 2 of one image's forward, weight-gradient and input-gradient passes."""
    total = 0
    for k, spec in enumerate(layers):
        if spec[0] == "conv":
            _, f, c, s, side = spec[:5]
            fwd = 2 * f * c * s * s * (side - s + 1) ** 2
        else:
            fwd = 2 * spec[1] * spec[2]
        total += fwd * (2 if k == 0 else 3)   # no input gradient for the first layer
    return total


def forward_flops(layers):
    return sum(2 * s[1] * s[2] * s[3] ** 2 * (s[4] - s[3] + 1) ** 2 if s[0] == "conv"
               else 2 * s[1] * s[2] for s in layers)


def book_data(n_train, n_eval):
    """The embedded sample scaled as the book's file (grey/256, float32), training tiled to n_train."""
    from cbp import datasets
    (X, y), (Xh, yh) = datasets.load_sample()
    scale = lambda A: (np.rint(A * 255.0) / 256.0).astype(np.float32)  # noqa: E731
    X, Xh = scale(X), scale(Xh)
    reps = -(-n_train // len(X))
    Xt, yt = np.tile(X, (reps, 1))[:n_train], np.tile(y, reps)[:n_train]
    n_eval = min(n_eval, len(Xh))
    return (Xt, yt.astype(np.int64)), (Xh[:n_eval], yh[:n_eval].astype(np.int64)), \
        (Xh[-n_eval:], yh[-n_eval:].astype(np.int64))


_ACT = {"sigmoid": ref.sigmoid, "tanh": ref.tanh, "ReLU": ref.ReLU, "linear": ref.linear}


def reference_net(layers, seed=0):
    """The NumPy reference built as the book builds the net after np.random.seed(seed)."""
    np.random.seed(seed)
    built = []
    for spec in layers:
        if spec[0] == "conv":
            _, f, c, s, side, act = spec
            built.append(ref.ConvPool((f, c, s, s), (M, c, side, side), (2, 2), _ACT[act]))
        elif spec[0] == "fc":
            built.append(ref.FullyConnected(spec[1], spec[2], _ACT[spec[3]], spec[4]))
        else:
            built.append(ref.Softmax(spec[1], spec[2], spec[3]))
    return ref.Network(built, M)


# ---------------------------------------------------------------------------
# contenders (worker side): each returns epoch() and, for the check, step1()

def cbp_contender(layers, eta, lmbda, data, w0, tmpdir):
    import cbp
    import cbp.network3 as n3
    acts = {"sigmoid": n3.sigmoid, "tanh": n3.tanh, "ReLU": n3.ReLU, "linear": n3.linear}

    def shared(parts, name):
        path = Path(tmpdir) / name
        with open(path, "wb") as f:
            pickle.dump(tuple(parts), f, protocol=2)
        with contextlib.redirect_stdout(io.StringIO()):
            return n3.load_data_shared(str(path))

    def build(specs):
        built = []
        for spec in specs:
            if spec[0] == "conv":
                _, f, c, s, side, act = spec
                built.append(n3.ConvPoolLayer(filter_shape=(f, c, s, s), image_shape=(M, c, side, side),
                                              poolsize=(2, 2), activation_fn=acts[act]))
            elif spec[0] == "fc":
                built.append(n3.FullyConnectedLayer(n_in=spec[1], n_out=spec[2],
                                                    activation_fn=acts[spec[3]], p_dropout=spec[4]))
            else:
                built.append(n3.SoftmaxLayer(n_in=spec[1], n_out=spec[2], p_dropout=spec[3]))
        for layer, (w, b) in zip(built, w0):
            layer.w.set_value(w.astype(np.float32))
            layer.b.set_value(b.astype(np.float32))
        with contextlib.redirect_stdout(io.StringIO()):
            return n3.Network(built, M), built

    training, validation, test = shared(data, "data.pkl")
    net, _ = build(layers)

    def epoch():
        with contextlib.redirect_stdout(io.StringIO()):
            net.SGD(training, 1, M, eta, validation, test, lmbda=lmbda)

    def step1(x, y):
        one = shared(((x, y), (x, y), (x, y)), "one.pkl")
        check, built = build(no_dropout(layers))
        with contextlib.redirect_stdout(io.StringIO()):
            check.SGD(one[0], 1, M, eta, one[1], one[2], lmbda=lmbda)
        return [p.get_value() for layer in built for p in (layer.w, layer.b)], 1

    return epoch, step1, cbp.__version__


def torch_contender(layers, eta, lmbda, data, w0, compiled=False, one_core=False):
    import torch
    import torch.nn.functional as F
    if one_core:
        torch.set_num_threads(1)
    (X, Y), (Xv, Yv), (Xt, Yt) = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in data]
    nb = len(X) // M

    def make(specs):
        params = []
        for spec, (w, b) in zip(specs, w0):
            w = torch.from_numpy(w.astype(np.float32).copy())
            if spec[0] == "conv":
                w = w.flip(2, 3).contiguous()       # kept flipped: conv2d correlates
            params.append([w, torch.from_numpy(b.astype(np.float32).copy())])
        return params

    def f(act, z):
        return torch.sigmoid(z) if act == "sigmoid" else torch.tanh(z) if act == "tanh" \
            else torch.relu(z) if act == "ReLU" else z

    def df(act, z, a):
        return a * (1 - a) if act == "sigmoid" else 1 - a * a if act == "tanh" \
            else (z > 0).to(z.dtype) if act == "ReLU" else torch.ones_like(z)

    def forward(specs, params, x, train, masks):
        saved, a = [], x
        for k, (spec, (w, b)) in enumerate(zip(specs, params)):
            if spec[0] == "conv":
                a_in = a.view(M if train else -1, spec[2], spec[4], spec[4])
                z = F.conv2d(a_in, w)
                pooled, idx = F.max_pool2d(z, 2, return_indices=True)
                pre = pooled + b.view(1, -1, 1, 1)
                a = f(spec[5], pre)
                saved.append((a_in, z.shape[-2:], idx, pre, a))
            else:
                a_in = a.reshape(a.shape[0], -1)
                p = spec[-1]
                if train:
                    if p > 0:
                        a_in = a_in * masks[k]
                    z = torch.addmm(b, a_in, w)
                else:
                    z = torch.addmm(b, a_in, w, alpha=1 - p) if p > 0 else torch.addmm(b, a_in, w)
                a = torch.softmax(z, 1) if spec[0] == "softmax" else f(spec[3], z)
                saved.append((a_in, None, None, z, a))
        return a, saved

    def step(specs, params, x, y, masks):
        a, saved = forward(specs, params, x, True, masks)
        delta = a.clone()
        delta[torch.arange(M), y] -= 1
        delta /= M
        for k in range(len(specs) - 1, -1, -1):
            spec, (w, b), (a_in, zshape, idx, pre, out) = specs[k], params[k], saved[k]
            if spec[0] == "conv":
                d_pre = delta.view(out.shape) * df(spec[5], pre, out)
                db = d_pre.sum((0, 2, 3))
                dz = F.max_unpool2d(d_pre, idx, 2, output_size=zshape)
                dx, dw, _ = torch.ops.aten.convolution_backward(
                    dz, a_in, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [k > 0, True, False])
            else:
                dz = delta if spec[0] == "softmax" else delta * df(spec[3], pre, out)
                dw, db = a_in.t() @ dz, dz.sum(0)
                dx = dz @ w.t() if k > 0 else None
                if dx is not None and spec[-1] > 0:
                    dx = dx * masks[k]
            if lmbda:
                dw = dw + (lmbda / nb) * w
            w.sub_(dw, alpha=eta)
            b.sub_(db, alpha=eta)
            delta = dx

    def masks_for(specs, gen):
        return [(torch.rand(M, s[1], generator=gen) >= s[-1]).to(torch.float32)
                if s[0] != "conv" and s[-1] > 0 else None for s in specs]

    def accuracy(specs, params, Xe, Ye):
        a, _ = forward(specs, params, Xe, False, None)
        return (a.argmax(1) == Ye).to(torch.float64).mean().item()

    params = make(layers)
    gen = torch.Generator().manual_seed(0)
    run_step = torch.compile(step) if compiled else step

    def epoch():
        with torch.inference_mode():
            for j in range(nb):
                run_step(layers, params, X[j * M:(j + 1) * M], Y[j * M:(j + 1) * M],
                         masks_for(layers, gen))
            return accuracy(layers, params, Xv, Yv), accuracy(layers, params, Xt, Yt)

    def step1(x, y):
        specs = no_dropout(layers)
        p = make(specs)
        with torch.inference_mode():
            (torch.compile(step) if compiled else step)(
                specs, p, torch.from_numpy(x), torch.from_numpy(y), [None] * len(specs))
        out = []
        for spec, (w, b) in zip(specs, p):
            out += [(w.flip(2, 3) if spec[0] == "conv" else w).numpy().copy(), b.numpy().copy()]
        return out, nb

    return epoch, step1, torch.__version__


def jax_contender(layers, eta, lmbda, data, w0):
    import jax
    import jax.numpy as jnp
    from jax import lax
    (X, Y), (Xv, Yv), (Xt, Yt) = data
    nb = len(X) // M
    Xb = jnp.asarray(X[:nb * M].reshape(nb, M, 784))
    Yb = jnp.asarray(Y[:nb * M].reshape(nb, M).astype(np.int32))

    def f(act, z):
        return jax.nn.sigmoid(z) if act == "sigmoid" else jnp.tanh(z) if act == "tanh" \
            else jnp.maximum(0.0, z) if act == "ReLU" else z

    def make(specs):
        return [(jnp.asarray(w.astype(np.float32)[:, :, ::-1, ::-1] if s[0] == "conv" else w.astype(np.float32)),
                 jnp.asarray(b.astype(np.float32))) for s, (w, b) in zip(specs, w0)]

    def forward(specs, params, x, train, key):
        a = x
        for spec, (w, b) in zip(specs, params):
            if spec[0] == "conv":
                a = a.reshape(a.shape[0], spec[2], spec[4], spec[4])
                z = lax.conv_general_dilated(a, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
                pooled = lax.reduce_window(z, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
                a = f(spec[5], pooled + b[None, :, None, None])
            else:
                a = a.reshape(a.shape[0], -1)
                p = spec[-1]
                if train and p > 0:
                    key, sub = jax.random.split(key)
                    a = a * jax.random.bernoulli(sub, 1 - p, a.shape).astype(a.dtype)
                z = (a @ w) * (1 - p) + b if (not train and p > 0) else a @ w + b
                a = jax.nn.log_softmax(z) if spec[0] == "softmax" else f(spec[3], z)
        return a

    def make_epoch(specs):
        def cost(params, x, y, key):
            logp = forward(specs, params, x, True, key)
            ll = -jnp.mean(logp[jnp.arange(M), y])
            return ll + 0.5 * lmbda * sum(jnp.sum(w * w) for w, _ in params) / nb

        grad = jax.grad(cost)

        def body(carry, batch):
            params, key = carry
            key, sub = jax.random.split(key)
            g = grad(params, batch[0], batch[1], sub)
            return (jax.tree_util.tree_map(lambda p, d: p - eta * d, params, g), key), None

        @jax.jit
        def epoch(params, key, Xb, Yb):
            (params, key), _ = lax.scan(body, (params, key), (Xb, Yb))
            return params, key
        return epoch

    @jax.jit
    def accuracy(params, Xe, Ye):
        return jnp.mean(jnp.argmax(forward(layers, params, Xe, False, None), 1) == Ye)

    run = make_epoch(layers)
    state = {"params": make(layers), "key": jax.random.PRNGKey(0)}
    Xv, Yv, Xt, Yt = (jnp.asarray(a) for a in (Xv, Yv.astype(np.int32), Xt, Yt.astype(np.int32)))

    def epoch():
        state["params"], state["key"] = run(state["params"], state["key"], Xb, Yb)
        return float(accuracy(state["params"], Xv, Yv)), float(accuracy(state["params"], Xt, Yt))

    def step1(x, y):
        specs = no_dropout(layers)
        params, _ = make_epoch(specs)(make(specs), jax.random.PRNGKey(0), jnp.asarray(x[None]),
                                      jnp.asarray(y[None].astype(np.int32)))
        out = []
        for spec, (w, b) in zip(specs, params):
            w = np.asarray(w)
            out += [w[:, :, ::-1, ::-1] if spec[0] == "conv" else w, np.asarray(b)]
        return out, nb

    return epoch, step1, jax.__version__


def reference_step(layers, eta, lmbda, nb, x, y):
    net = reference_net(no_dropout(layers))
    net.train_mini_batch(x.astype(np.float64), y, eta, lmbda, nb)
    return net.params()


def _setup(spec, tmpdir):
    net = NETS[spec["net"]]
    layers, eta, lmbda = [tuple(s) for s in net["layers"]], net["eta"], net["lmbda"]
    data = book_data(spec["train"], spec["eval"])
    w0 = [(layer.w, layer.b) for layer in reference_net(layers).layers]
    impl = spec["impl"]
    if impl == "cbp":
        epoch, step1, version = cbp_contender(layers, eta, lmbda, data, w0, tmpdir)
    elif impl in ("torch", "torch.compile"):
        epoch, step1, version = torch_contender(layers, eta, lmbda, data, w0, impl == "torch.compile",
                                                spec["one_core"])
    elif impl == "jax":
        epoch, step1, version = jax_contender(layers, eta, lmbda, data, w0)
    else:
        raise ValueError(impl)
    # The check: one mini-batch from the same weights, dropout off, against float64 NumPy.
    x, y = data[0][0][:M], data[0][1][:M]
    got, nb_used = step1(x, y)
    want = reference_step(layers, eta, lmbda, nb_used, x, y)
    err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want))
    # The check's NumPy products leave OpenBLAS's threads spinning for 0.1-0.2 s
    # on the other core, where a team of threads then ran cbp's shallow net 10x
    # slower and its pace kept one thread for the whole benchmark.  A user's
    # script that calls SGD right after such products pays that once.
    time.sleep(0.5)
    t0 = time.perf_counter()
    epoch()   # warm-up (and compilation)
    return epoch, {"version": version, "check_max_abs_err": err, "first_epoch_s": time.perf_counter() - t0}


def worker_main():
    # Replies go to the original stdout; anything a library prints (cbp.network3
    # prints a line on import) goes to stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run = None
    with tempfile.TemporaryDirectory() as tmpdir:
        for line in sys.stdin:
            msg = json.loads(line)
            try:
                if msg["cmd"] == "quit":
                    break
                if msg["cmd"] == "setup":
                    run, info = _setup(msg, tmpdir)
                    reply = dict(info, ok=True)
                else:
                    epochs = int(msg.get("epochs", 1))
                    gc.collect()
                    gc.disable()
                    t0 = time.perf_counter()
                    for _ in range(epochs):
                        run()
                    reply = {"seconds": (time.perf_counter() - t0) / epochs}
                    gc.enable()
            except Exception:
                reply = {"error": traceback.format_exc()}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()


# ---------------------------------------------------------------------------
# parent


class Worker:
    def __init__(self, one_core, cpu, pythonpath=None):
        env = dict(os.environ)
        for var in ONE_CORE_ENV:
            env.pop(var, None)
        if one_core:
            env.update(ONE_CORE_ENV)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([pythonpath] + [p for p in [env.get("PYTHONPATH")] if p])
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", str(cpu) if one_core else "all"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, bufsize=1)

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker exited with code {self.proc.wait()}"}
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def _others_busy(seconds=0.5):
    """CPUs kept busy by everything on the machine, from /proc/stat (this process is idle)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t0, i0 = read()
        time.sleep(seconds)
        t1, i1 = read()
        return round((os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0)), 2)
    except OSError:
        return None


def round_epochs(name, args):
    """Epochs a round runs back to back: enough for ``--round-gflop`` (shallow's 1.1 GFLOP epoch: 8)."""
    layers = NETS[name]["layers"]
    epoch = train_flops(layers) * args.train + forward_flops(layers) * 2 * args.eval
    return max(1, math.ceil(args.round_gflop * 1e9 / epoch))


def measure(nets, contenders, mode, args):
    """Interleaved rounds of every contender on every net in one mode; rows of results."""
    rows = []
    for name in nets:
        workers, infos = {}, {}
        for impl in contenders:
            against = impl.startswith("cbp@")
            w = Worker(mode == "one_core", args.cpu, str(args.against_src) if against else None)
            info = w.ask(cmd="setup", net=name, impl="cbp" if against else impl, train=args.train,
                         eval=args.eval, one_core=mode == "one_core")
            if "error" in info:
                last = info["error"].strip().splitlines()[-1]
                print(f"  {name:<11} {impl:<14} skipped: {last}", flush=True)
                infos[impl] = {"skipped": last}
                w.close()
                continue
            workers[impl], infos[impl] = w, info
        times = {impl: [] for impl in workers}
        order = list(workers)
        epochs = round_epochs(name, args)
        for r in range(args.rounds):
            k = r % max(1, len(order))
            for impl in order[k:] + order[:k]:
                reply = workers[impl].ask(cmd="run", epochs=epochs)
                times[impl].append(reply.get("seconds", float("nan")))
        others = _others_busy()
        for w in workers.values():
            w.close()
        layers = NETS[name]["layers"]
        flops = (train_flops(layers) * args.train + forward_flops(layers) * 2 * args.eval)
        for impl in contenders:
            row = {"net": name, "mode": mode, "impl": impl, "epochs_per_round": epochs,
                   **infos.get(impl, {})}
            if impl in times:
                row["seconds"] = times[impl]
                row["median_s"] = statistics.median(times[impl])
                row["gflops"] = flops / row["median_s"] / 1e9
                if impl != "cbp" and "cbp" in times:
                    ratios = [t / c for t, c in zip(times[impl], times["cbp"])]
                    row["cbp_speedup"] = statistics.median(ratios)
                    row["cbp_speedup_range"] = [min(ratios), max(ratios)]
            row["others_busy_cpus"] = others
            rows.append(row)
            _print_row(row)
    return rows


def _print_row(row):
    if "median_s" not in row:
        return
    ratio = ""
    if "cbp_speedup" in row:
        lo, hi = row["cbp_speedup_range"]
        ratio = f"  cbp x{row['cbp_speedup']:.2f} ({lo:.2f}-{hi:.2f})"
    print(f"  {row['net']:<11} {row['mode']:<9} {row['impl']:<14} {row['median_s']:8.3f} s "
          f"{row['gflops']:6.1f} GFLOP/s  check {row['check_max_abs_err']:.1e}{ratio}", flush=True)


def table(rows, args):
    lines = [f"| net | mode | contender | epoch of {args.train:,} + 2x{args.eval:,} eval (s) | GFLOP/s | "
             "cbp speed-up (min-max) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "median_s" in r:
            sp = (f"{r['cbp_speedup']:.2f} ({r['cbp_speedup_range'][0]:.2f}-{r['cbp_speedup_range'][1]:.2f})"
                  if "cbp_speedup" in r else "")
            lines.append(f"| {r['net']} | {r['mode']} | {r['impl']} | {r['median_s']:.3f} | "
                         f"{r['gflops']:.1f} | {sp} |")
        else:
            lines.append(f"| {r['net']} | {r['mode']} | {r['impl']} | skipped: {r.get('skipped', '')} | | |")
    return "\n".join(lines)


def extrapolate(rows, args):
    out = {}
    layers = NETS["dropout"]["layers"]
    total = train_flops(layers) * BOOK_EXPANDED * BOOK_EPOCHS
    out["book_run_tflop"] = total / 1e12
    for r in rows:
        if r["net"] == "dropout" and "median_s" in r:
            hours = r["median_s"] * BOOK_EXPANDED / args.train * BOOK_EPOCHS / 3600
            out[f"{r['impl']}/{r['mode']}_hours"] = hours
    return out


def build_ref(ref):
    """The git ref's tree, extracted and built in place in a scratch directory (kept for reuse)."""
    repo = HERE.parent
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", ref + "^{commit}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    root = Path(tempfile.gettempdir()) / f"cbp-network3-against-{commit[:12]}"
    if not (root / "BUILT").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        print(f"building {ref} ({commit[:12]}) in {root} ...", flush=True)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=root,
                       check=True, stdout=subprocess.DEVNULL)
        (root / "BUILT").write_text(commit + "\n")
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--modes", default="one_core,default")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train", type=int, default=2000, help="training images per epoch (multiple of 10)")
    p.add_argument("--eval", type=int, default=500, help="validation and test images each")
    p.add_argument("--cpu", type=int, default=0, help="the CPU one-core workers pin to")
    p.add_argument("--round-gflop", type=float, default=8.0,
                   help="each round runs a net's epochs back to back until they add up to this "
                        "many GFLOP (at least one epoch); 0: one epoch a round")
    p.add_argument("--quick", action="store_true",
                   help="seconds: shallow and basic_conv, 100 images, 1 round, one core, no torch.compile")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--against", default=None, metavar="REF",
                   help="also time cbp built from this git ref (a scratch build), same rounds")
    p.add_argument("--against-dir", type=Path, default=None, metavar="DIR",
                   help="also time the cbp source tree DIR (already built in place)")
    args = p.parse_args()
    if args.quick:
        args.nets, args.rounds, args.train, args.eval = "shallow,basic_conv", 1, 100, 20
        args.round_gflop = 0.0
        if args.modes == "one_core,default":
            args.modes = "one_core"
        if args.contenders == ",".join(CONTENDERS):
            args.contenders = "cbp,torch,jax"
    nets = [n for n in args.nets.split(",") if n]
    contenders = [c for c in args.contenders.split(",") if c]
    for n in nets:
        if n not in NETS:
            p.error(f"--nets: unknown net {n!r}; choose from {', '.join(NETS)}")
    args.against_src = None
    if args.against or args.against_dir:
        args.against_src = (args.against_dir.resolve() if args.against_dir
                            else build_ref(args.against)) / "src"
        if not (args.against_src / "cbp").is_dir():
            p.error(f"--against-dir: no src/cbp in {args.against_src.parent}")
        label = args.against or str(args.against_dir)
        contenders.insert(1 if "cbp" in contenders else 0, f"cbp@{label}")
    for c in contenders:
        if c.startswith("cbp@"):
            continue
        if c not in CONTENDERS:
            p.error(f"--contenders: unknown {c!r}; choose from {', '.join(CONTENDERS)}")
    if args.train < M or args.train % M:
        p.error("--train must be a positive multiple of 10")
    import report   # bench/report.py: the host as every table names it
    host = report.host_info()["label"]
    print(f"cbp.network3 benchmark on {host}: {args.train:,} training + 2 x {args.eval:,} evaluation "
          f"images per epoch, mini-batch {M}, float32, {args.rounds} round(s) of "
          f"{', '.join(f'{n} {round_epochs(n, args)}' for n in nets)} epoch(s) back to back",
          flush=True)
    rows = []
    for mode in args.modes.split(","):
        print(f"{mode}:", flush=True)
        rows += measure(nets, contenders, mode, args)
    print()
    print(table(rows, args))
    extra = extrapolate(rows, args)
    print(f"\nThe book's best single net (dropout), 40 epochs of 250,000 images: "
          f"{extra['book_run_tflop']:.0f} TFLOP; extrapolated from the measured epochs:")
    for k, v in extra.items():
        if k.endswith("_hours"):
            print(f"  {k[:-6]:<28} {v:6.2f} h")
    machine = report.machine_info()
    import cbp
    machine["cbp_file"] = cbp.__file__
    result = {"host": host, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "command": " ".join([Path(sys.executable).name] + sys.argv), "python": platform.python_version(),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": machine, "rows": rows, "extrapolation": extra,
              "train_flops_per_image": {n: train_flops(NETS[n]["layers"]) for n in NETS}}
    path = args.json or HERE / "results" / ("quick-network3.json" if args.quick else "network3.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"\nsaved {path}")
    bad = [r for r in rows if r.get("check_max_abs_err", 0) > 1e-4]
    if bad:
        print("CHECK FAILED: " + ", ".join(f"{r['net']}/{r['impl']} {r['check_max_abs_err']:.1e}" for r in bad))
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        worker_main()
    else:
        sys.exit(main())
