"""Other libraries as peers of the benchmark suite (each imported lazily; absent is not fatal)."""
import warnings

import numpy as np


def torch_trainer(weights, biases, X, Y, eta, mini_batch_size, seed=0, threads=1):
    """A callable running one PyTorch epoch on the CPU, or None without torch.

    ``threads`` is passed to ``torch.set_num_threads`` (None: PyTorch's default).

    ``nn.Linear`` + ``nn.Sigmoid`` layers started from the given weights,
    loss ``MSELoss(reduction="sum") · ½ / m`` (the mean of ½‖a − y‖² over the
    mini-batch, so the gradient and step equal cbp's), plain
    ``torch.optim.SGD(lr=eta)``; each epoch draws a permutation and gathers
    each mini-batch with ``index_select``.  The callable accepts
    ``order=`` to fix the epoch's order and has ``.parameters()`` returning
    the current (weights, biases) as NumPy arrays.
    """
    try:
        import torch
    except ImportError:
        return None
    if threads is not None:
        torch.set_num_threads(threads)
    dt = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[X.dtype]
    layers = []
    for w, b in zip(weights, biases):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w, dtype=X.dtype)))
            lin.bias.copy_(torch.from_numpy(np.array(b, dtype=X.dtype).reshape(-1)))
        layers += [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    Yt = torch.from_numpy(np.ascontiguousarray(Y))
    gen = torch.Generator().manual_seed(seed)
    n, m = Xt.shape[0], mini_batch_size

    def epoch(order=None):
        perm = torch.randperm(n, generator=gen) if order is None else torch.as_tensor(
            np.asarray(order, dtype=np.int64))
        for start in range(0, n, m):
            idx = perm[start:start + m]
            xb = Xt.index_select(0, idx)
            yb = Yt.index_select(0, idx)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb) * (0.5 / idx.shape[0])
            loss.backward()
            opt.step()

    def parameters():
        lins = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
        return ([lin.weight.detach().numpy().copy() for lin in lins],
                [lin.bias.detach().numpy().reshape(-1, 1).copy() for lin in lins])

    epoch.parameters = parameters
    epoch.version = torch.__version__
    return epoch


def torch_backprop_trainer(weights, biases, X, Y, eta, mini_batch_size, seed=0, threads=1):
    """A callable running one PyTorch epoch with backprop written by hand, or None without torch.

    The same model and step as :func:`torch_trainer`, without autograd or an
    optimizer: per mini-batch, ``torch.addmm`` forward with in-place
    ``sigmoid_``, δ_L = (a − y)·a(1 − a) (BP1), δ_l = (δ_{l+1} W_{l+1})·a(1 − a)
    (BP2), and the steps W −= (η/m) δᵀ a, b −= (η/m) Σ δ (BP3, BP4) applied
    in place with ``addmm_``.  Buffers are allocated once per mini-batch
    size.  This is how a careful PyTorch user writes network.py's loop;
    ``order=`` and ``.parameters()`` as in :func:`torch_trainer`.
    """
    try:
        import torch
    except ImportError:
        return None
    if threads is not None:
        torch.set_num_threads(threads)
    dt = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[X.dtype]
    Ws = [torch.tensor(np.array(w, dtype=X.dtype), dtype=dt) for w in weights]
    bs = [torch.tensor(np.array(b, dtype=X.dtype).reshape(-1), dtype=dt) for b in biases]
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    Yt = torch.from_numpy(np.ascontiguousarray(Y))
    gen = torch.Generator().manual_seed(seed)
    n, m = Xt.shape[0], mini_batch_size
    L = len(Ws)

    def buffers(k):
        acts = [torch.empty((k, w.shape[0]), dtype=dt) for w in Ws]
        deltas = [torch.empty((k, w.shape[0]), dtype=dt) for w in Ws]
        return acts, deltas, torch.empty((k, Xt.shape[1]), dtype=dt), torch.empty(
            (k, Yt.shape[1]), dtype=dt)

    cache = {}

    def step(idx):
        k = idx.shape[0]
        if k not in cache:
            cache[k] = buffers(k)
        acts, deltas, xb, yb = cache[k]
        torch.index_select(Xt, 0, idx, out=xb)
        torch.index_select(Yt, 0, idx, out=yb)
        a = xb
        for l in range(L):
            torch.addmm(bs[l], a, Ws[l].t(), out=acts[l]).sigmoid_()
            a = acts[l]
        d = deltas[-1]
        torch.sub(a, yb, out=d)
        d.mul_(a).mul_(1 - a)                      # BP1: (a − y) ⊙ σ'(z), σ' = a(1 − a)
        for l in range(L - 1, 0, -1):
            e = deltas[l - 1]
            torch.mm(deltas[l], Ws[l], out=e)      # BP2: δ_{l+1} W_{l+1} ...
            e.mul_(acts[l - 1]).mul_(1 - acts[l - 1])  # ... ⊙ σ'(z_l)
        rate = eta / k
        for l in range(L):
            below = xb if l == 0 else acts[l - 1]
            Ws[l].addmm_(deltas[l].t(), below, alpha=-rate)   # BP4 summed, the step
            bs[l].sub_(deltas[l].sum(0), alpha=rate)          # BP3 summed, the step

    def epoch(order=None):
        perm = torch.randperm(n, generator=gen) if order is None else torch.as_tensor(
            np.asarray(order, dtype=np.int64))
        with torch.no_grad():
            for start in range(0, n, m):
                step(perm[start:start + m])

    def parameters():
        return ([w.numpy().copy() for w in Ws], [b.numpy().reshape(-1, 1).copy() for b in bs])

    epoch.parameters = parameters
    epoch.version = torch.__version__
    return epoch


def sklearn_trainer(sizes, X, labels, eta, mini_batch_size, seed=0):
    """A callable running one scikit-learn epoch, or None without scikit-learn.

    ``MLPClassifier(activation="logistic", solver="sgd", batch_size=m,
    momentum=0, alpha=0, learning_rate_init=eta, shuffle=True)``; each call
    is one ``partial_fit``, which is one shuffled pass over the data.  Its
    output layer is softmax with log-loss (scikit-learn's choice for
    classifiers), not sigmoid with quadratic cost: the same matrix products,
    a slightly different last layer.  The first call also initialises the
    model, so call it once before timing.
    """
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic",
                        solver="sgd", alpha=0.0, batch_size=mini_batch_size,
                        learning_rate="constant", learning_rate_init=eta, momentum=0.0,
                        nesterovs_momentum=False, max_iter=1, shuffle=True, random_state=seed)
    classes = np.arange(sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, labels, classes=classes)

    epoch.model = clf
    return epoch


def jax_trainer(weights, biases, X, Y, eta, mini_batch_size, seed=0):
    """A callable running one JAX epoch, jitted whole, or None without JAX.

    The same model, loss and step as :func:`torch_trainer` (sigmoid layers,
    the mean of ½‖a − y‖² over the mini-batch, W ← W − η ∇), written in
    ``jax.numpy`` with ``jax.grad``; the epoch is one jitted function: a
    ``lax.scan`` over the full mini-batches (each gathered from X by its
    indices inside the scan), then the last, shorter one if any.  Each call
    draws a permutation with NumPy (or takes ``order=``), runs the epoch and
    waits for the result.  The first call compiles: call it once before
    timing.  ``.parameters()`` returns the current (weights, biases) as NumPy
    arrays.  Thread count and pinning are the caller's (process start,
    ``XLA_FLAGS``).
    """
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    dt = X.dtype
    state = {"params": [(jnp.asarray(w, dtype=dt), jnp.asarray(np.reshape(b, -1), dtype=dt))
                        for w, b in zip(weights, biases)]}
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    n, m = X.shape[0], min(mini_batch_size, X.shape[0])
    full, rest = divmod(n, m)
    rate = np.asarray(eta, dtype=dt)

    def loss(params, xb, yb):
        a = xb
        for w, b in params:
            a = jax.nn.sigmoid(a @ w.T + b)
        return 0.5 * jnp.sum((a - yb) ** 2) / xb.shape[0]

    def step(params, idx, Xs, Ys):
        g = jax.grad(loss)(params, Xs[idx], Ys[idx])
        return jax.tree_util.tree_map(lambda p, q: p - rate * q, params, g)

    @jax.jit
    def epoch_fn(params, perm, Xs, Ys):
        def body(p, idx):
            return step(p, idx, Xs, Ys), None
        params, _ = jax.lax.scan(body, params, perm[:full * m].reshape(full, m))
        if rest:
            params = step(params, perm[full * m:], Xs, Ys)
        return params

    rng = np.random.default_rng(seed)

    def epoch(order=None):
        perm = rng.permutation(n) if order is None else np.asarray(order)
        state["params"] = jax.block_until_ready(
            epoch_fn(state["params"], jnp.asarray(perm, dtype=jnp.int32), Xj, Yj))

    def parameters():
        return ([np.asarray(w) for w, _ in state["params"]],
                [np.asarray(b).reshape(-1, 1) for _, b in state["params"]])

    epoch.parameters = parameters
    epoch.version = jax.__version__
    return epoch
