"""An independent NumPy implementation of the book's ``network3.py`` arithmetic (the test oracle).

Written from the equations the original's Theano graph computes, one
mini-batch at a time, in float64 by default; the backward passes are
written by hand (tests/numerics/test_network3_reference.py checks them against
finite differences).  It shares no code with cbp.

What it computes, layer by layer (m images per mini-batch):

ConvPool(filter_shape=(F, C, kh, kw), image_shape=(m, C, H, W), poolsize=(ph, pw), activation)
    z[n, f, i, j] = sum_{c, u, v} x[n, c, i + u, j + v] * w[f, c, kh-1-u, kw-1-v]
        a *true* ("valid") convolution, Theano's conv2d: the filter is flipped;
        i < H - kh + 1, j < W - kw + 1
    p[n, f, r, s] = max over the ph x pw block (r, s) of z  (ignore_border: a
        partial block at the bottom/right edge is dropped)
    a = activation(p + b[f])         pooling comes BEFORE the activation and the bias
FullyConnected(n_in, n_out, activation, p_dropout)
    training:  a = activation((x * mask) @ w + b)
    inference: a = activation((1 - p_dropout) * (x @ w) + b)
Softmax(n_in, n_out, p_dropout)
    as FullyConnected with the softmax as activation
cost of a mini-batch
    C = -mean_n log(a_L[n, y_n]) + 0.5 * lmbda * sum_layers ||w||^2 / num_training_batches
update
    every parameter: theta <- theta - eta * dC/dtheta   (plain SGD, weights and biases)
training loop (``sgd``)
    num_training_batches = n // m mini-batches, taken in order, never shuffled;
    validation and test accuracy: mean over the full mini-batches of each
    mini-batch's accuracy; the test accuracy is computed when the validation
    accuracy is >= the best so far.

Gradients at the kinks follow Theano 0.6/0.7: a max-pooling block passes
its gradient to *every* element equal to the block's maximum (its
``DownsampleFactorMaxGrad`` compares each input with the pooled value);
ReLU(z) = max(0, z) passes the gradient where z > 0 (at z == 0 exactly,
measure zero for real data, Theano 0.6 passed it too; Theano 1.0 did not).

Initialisation, in each layer's constructor, on NumPy's global generator,
in the order the layers are built (so ``np.random.seed(s)`` gives the
original's initial weights):
    ConvPool: w ~ N(0, sqrt(1 / n_out)) of filter_shape, with
              n_out = F * kh * kw // (ph * pw) (Python 2's integer division);
              then b ~ N(0, 1) of shape (F,)
    FullyConnected: w ~ N(0, sqrt(1 / n_out)) of (n_in, n_out), then b ~ N(0, 1) of (n_out,)
    Softmax: w and b zero (no draw)

Dropout masks are not drawn here: the caller gives them (0/1 arrays of
each dropout layer's input shape, (m, n_in)), so a test can plant the
masks a run used.  Without masks, every mask is all ones.
"""
import numpy as np

__all__ = ["sigmoid", "tanh", "ReLU", "linear", "ConvPool", "FullyConnected", "Softmax", "Network"]


# -- activations: f(z) and f'(z) given z and f(z) -----------------------------

class _Activation:
    def __init__(self, name, f, df):
        self.name, self.f, self.df = name, f, df

    def __repr__(self):
        return self.name


sigmoid = _Activation("sigmoid", lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z, a: a * (1.0 - a))
tanh = _Activation("tanh", np.tanh, lambda z, a: 1.0 - a * a)
ReLU = _Activation("ReLU", lambda z: np.maximum(0.0, z), lambda z, a: (z > 0).astype(z.dtype))
linear = _Activation("linear", lambda z: z, lambda z, a: np.ones_like(z))


# -- layers ---------------------------------------------------------------------

class ConvPool:
    def __init__(self, filter_shape, image_shape, poolsize=(2, 2), activation=sigmoid, dtype=np.float64):
        self.filter_shape = tuple(int(d) for d in filter_shape)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.poolsize = tuple(int(d) for d in poolsize)
        self.activation = activation
        self.p_dropout = 0.0
        F, C, kh, kw = self.filter_shape
        n_out = F * kh * kw // (self.poolsize[0] * self.poolsize[1])
        self.w = np.random.normal(loc=0, scale=np.sqrt(1.0 / n_out), size=self.filter_shape).astype(dtype)
        self.b = np.random.normal(loc=0, scale=1.0, size=(F,)).astype(dtype)

    @property
    def out_shape(self):
        _, _, H, W = self.image_shape
        _, _, kh, kw = self.filter_shape
        ph, pw = self.poolsize
        return (self.filter_shape[0], (H - kh + 1) // ph, (W - kw + 1) // pw)

    # z = x (*) w, written as a sum over the kh * kw filter taps
    def _conv(self, x):
        F, C, kh, kw = self.filter_shape
        m, _, H, W = x.shape
        oh, ow = H - kh + 1, W - kw + 1
        flipped = self.w[:, :, ::-1, ::-1]
        z = np.zeros((m, F, oh, ow), dtype=x.dtype)
        for u in range(kh):
            for v in range(kw):
                z += np.einsum("ncij,fc->nfij", x[:, :, u:u + oh, v:v + ow], flipped[:, :, u, v])
        return z

    def _blocks(self, z):
        """z cut to whole pooling blocks, as (m, F, R, ph, S, pw)."""
        m, F, oh, ow = z.shape
        ph, pw = self.poolsize
        R, S = oh // ph, ow // pw
        return z[:, :, :R * ph, :S * pw].reshape(m, F, R, ph, S, pw)

    def forward(self, x, mask=None):
        x = x.reshape(self.image_shape)
        z = self._conv(x)
        pooled = self._blocks(z).max(axis=(3, 5))
        pre = pooled + self.b[None, :, None, None]
        a = self.activation.f(pre)
        self._cache = (x, z, pooled, pre, a)
        return a

    predict = forward

    def backward(self, delta):
        """Given dC/da (m, F, R, S): the gradients of w and b, and dC/dx."""
        x, z, pooled, pre, a = self._cache
        d_pre = delta.reshape(a.shape) * self.activation.df(pre, a)
        db = d_pre.sum(axis=(0, 2, 3))
        # every element equal to its block's maximum gets the block's gradient
        blocks = self._blocks(z)
        hit = blocks == pooled[:, :, :, None, :, None]
        d_blocks = hit * d_pre[:, :, :, None, :, None]
        dz = np.zeros_like(z)
        m, F, R, ph, S, pw = blocks.shape
        dz[:, :, :R * ph, :S * pw] = d_blocks.reshape(m, F, R * ph, S * pw)
        # z[n,f,i,j] = sum x[n,c,i+u,j+v] * flipped[f,c,u,v]
        F, C, kh, kw = self.filter_shape
        oh, ow = z.shape[2:]
        d_flipped = np.zeros((F, C, kh, kw), dtype=z.dtype)
        dx = np.zeros_like(x)
        flipped = self.w[:, :, ::-1, ::-1]
        for u in range(kh):
            for v in range(kw):
                window = x[:, :, u:u + oh, v:v + ow]
                d_flipped[:, :, u, v] = np.einsum("nfij,ncij->fc", dz, window)
                dx[:, :, u:u + oh, v:v + ow] += np.einsum("nfij,fc->ncij", dz, flipped[:, :, u, v])
        return d_flipped[:, :, ::-1, ::-1], db, dx


class _Dense:
    softmax = False

    def __init__(self, n_in, n_out, p_dropout):
        self.n_in, self.n_out, self.p_dropout = int(n_in), int(n_out), float(p_dropout)

    def _f(self, z):
        if self.softmax:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return self.activation.f(z)

    def forward(self, x, mask=None):
        """Training pass: the input times the dropout mask (none: all ones)."""
        x = x.reshape(x.shape[0], self.n_in)
        xd = x if mask is None else x * mask
        z = xd @ self.w + self.b
        a = self._f(z)
        self._cache = (xd, mask, z, a)
        return a

    def predict(self, x):
        """Inference pass: no mask, the product scaled by (1 - p_dropout)."""
        x = x.reshape(x.shape[0], self.n_in)
        return self._f((1 - self.p_dropout) * (x @ self.w) + self.b)

    def backward(self, delta):
        """Given dC/da (dC/dz for the softmax layer): grads of w and b, and dC/dx."""
        xd, mask, z, a = self._cache
        dz = delta if self.softmax else delta * self.activation.df(z, a)
        dx = dz @ self.w.T
        if mask is not None:
            dx = dx * mask
        return xd.T @ dz, dz.sum(axis=0), dx


class FullyConnected(_Dense):
    def __init__(self, n_in, n_out, activation=sigmoid, p_dropout=0.0, dtype=np.float64):
        super().__init__(n_in, n_out, p_dropout)
        self.activation = activation
        self.w = np.random.normal(loc=0.0, scale=np.sqrt(1.0 / n_out), size=(n_in, n_out)).astype(dtype)
        self.b = np.random.normal(loc=0.0, scale=1.0, size=(n_out,)).astype(dtype)


class Softmax(_Dense):
    softmax = True

    def __init__(self, n_in, n_out, p_dropout=0.0, dtype=np.float64):
        super().__init__(n_in, n_out, p_dropout)
        self.w = np.zeros((n_in, n_out), dtype=dtype)
        self.b = np.zeros((n_out,), dtype=dtype)


# -- the network ---------------------------------------------------------------

class Network:
    def __init__(self, layers, mini_batch_size):
        self.layers = list(layers)
        self.mini_batch_size = int(mini_batch_size)

    def params(self):
        return [p for layer in self.layers for p in (layer.w, layer.b)]

    def cost(self, x, y, lmbda=0.0, num_training_batches=1, masks=None):
        """The mini-batch's training cost: log-likelihood through the dropout path, plus L2."""
        a = self._forward(x, masks)
        ll = -np.mean(np.log(a[np.arange(len(y)), y]))
        l2 = sum(np.sum(layer.w ** 2) for layer in self.layers)
        return ll + 0.5 * lmbda * l2 / num_training_batches

    def _forward(self, x, masks):
        masks = masks if masks is not None else [None] * len(self.layers)
        a = x
        for layer, mask in zip(self.layers, masks):
            a = layer.forward(a, mask)
        return a

    def gradients(self, x, y, lmbda=0.0, num_training_batches=1, masks=None):
        """dC/dw, dC/db of every layer, in ``params()`` order."""
        a = self._forward(x, masks)
        m = len(y)
        delta = a.copy()
        delta[np.arange(m), y] -= 1.0
        delta /= m                      # dC/dz of the softmax layer, mean log-likelihood
        grads = []
        for layer in reversed(self.layers):
            dw, db, delta = layer.backward(delta)
            grads.append((dw + lmbda * layer.w / num_training_batches, db))
        return [g for pair in reversed(grads) for g in pair]

    def train_mini_batch(self, x, y, eta, lmbda=0.0, num_training_batches=1, masks=None):
        grads = self.gradients(x, y, lmbda, num_training_batches, masks)
        for layer, (dw, db) in zip(self.layers, zip(grads[0::2], grads[1::2])):
            layer.w -= eta * dw
            layer.b -= eta * db

    def predict(self, x):
        a = x
        for layer in self.layers:
            a = layer.predict(a)
        return np.argmax(a, axis=1)

    def accuracy(self, X, y):
        """Mean over the full mini-batches of each one's accuracy, as the original."""
        m = self.mini_batch_size
        return np.mean([np.mean(self.predict(X[j * m:(j + 1) * m]) == y[j * m:(j + 1) * m])
                        for j in range(len(X) // m)])

    def SGD(self, training_data, epochs, mini_batch_size, eta, validation_data, test_data=None,
            lmbda=0.0, masks=None):
        """The original's training loop; returns [(epoch, validation accuracy, test accuracy or None)].

        ``masks(epoch, j)``, if given, returns the list of per-layer masks for
        mini-batch j of that epoch (None for a layer without dropout).
        """
        X, y = training_data
        m = mini_batch_size
        num_training_batches = len(X) // m
        best, history = 0.0, []
        for epoch in range(epochs):
            for j in range(num_training_batches):
                self.train_mini_batch(X[j * m:(j + 1) * m], y[j * m:(j + 1) * m], eta, lmbda,
                                      num_training_batches, None if masks is None else masks(epoch, j))
            validation = self.accuracy(*validation_data)
            test = None
            if validation >= best:
                best = validation
                if test_data is not None:
                    test = self.accuracy(*test_data)
            history.append((epoch, validation, test))
        return history
