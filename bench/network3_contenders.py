"""bench/network3.py's contenders and what they share: the FLOP counts, the data, the NumPy reference.

Each contender (worker side) builds one of the book's networks from the same
initial weights and returns ``epoch()``, the call its user makes for one
epoch, and ``step1(x, y)``, one mini-batch step with dropout off for the
check against the float64 NumPy reference (tests/network3_reference.py).
"""
import contextlib
import io
import pickle
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
import network3_reference as ref  # noqa: E402

M = 10                       # the book's mini-batch size


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

def cbp_layers(n3, specs):
    """The layers ``specs`` describe (bench/network3.py's NETS format), as ``n3``'s layer objects."""
    acts = {"sigmoid": n3.sigmoid, "tanh": n3.tanh, "ReLU": n3.ReLU, "linear": n3.linear}
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
    return built


def cbp_contender(layers, eta, lmbda, data, w0, tmpdir):
    import cbp
    import cbp.network3 as n3

    def shared(parts, name):
        path = Path(tmpdir) / name
        with open(path, "wb") as f:
            pickle.dump(tuple(parts), f, protocol=2)
        with contextlib.redirect_stdout(io.StringIO()):
            return n3.load_data_shared(str(path))

    def build(specs):
        built = cbp_layers(n3, specs)
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
