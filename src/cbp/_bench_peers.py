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
