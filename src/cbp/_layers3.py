"""The layers of :mod:`cbp.network3`: what the book's Theano layers hold, computed by the core.

Each layer keeps its parameters in the layout its kernels want and shows
them to scripts in the original's layout through :class:`SharedVariable`:

* ``FullyConnectedLayer``/``SoftmaxLayer``: ``w`` is (n_in, n_out) as in the
  original; the core holds wᵀ (n_out, n_in), one weight row per unit, as
  cbp's dense kernels do.
* ``ConvPoolLayer``: ``w`` is (filters, channels, height, width); the core
  holds the filters flipped and flattened, (filters, channels·height·width),
  so that the convolution is one product with the input's patches.

``get_value(borrow=True)`` returns a view that writes through, as Theano's
does on the CPU; ``set_value`` copies into the held array.
"""
import numbers

import numpy as np

from . import _core

__all__ = ["SharedVariable", "ConvPoolLayer", "FullyConnectedLayer", "SoftmaxLayer",
           "linear", "ReLU", "sigmoid", "tanh", "activation_code", "config", "Config"]


# Activation functions.  Scripts pass these objects as ``activation_fn``;
# they also work on NumPy arrays.  The codes are the core's (cbp.activations).
def linear(z):
    """f(z) = z.

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The activations.
    """
    return z


def ReLU(z):
    """f(z) = max(0, z).

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The activations.
    """
    return np.maximum(0.0, z)


def sigmoid(z):
    """f(z) = 1 / (1 + e^(−z)).

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The activations.
    """
    return 1.0 / (1.0 + np.exp(-z))


def tanh(z):
    """f(z) = tanh(z).

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The activations.
    """
    return np.tanh(z)


_CODES = {sigmoid: 0, tanh: 1, ReLU: 2, linear: 3}
SOFTMAX = 4


def activation_code(fn, argument):
    """The core's code for one of this module's activation functions."""
    try:
        return _CODES[fn]
    except (KeyError, TypeError):
        raise TypeError(
            f"{argument} must be one of network3's activation functions (sigmoid, tanh, ReLU, "
            f"linear); got {fn!r}: cbp computes their derivatives in its core, so it cannot "
            "take an arbitrary function") from None


class SharedVariable:
    """A Theano shared variable as the book's scripts use one.

    ``get_value(borrow=False)`` returns a copy (``borrow=True``: the held
    array itself, or a view of it that writes through), ``set_value(value)``
    copies ``value`` in (same shape; cast to the variable's dtype; finite),
    ``eval()`` is ``get_value()``.

    Parameters
    ----------
    view : ndarray
        The array held (the layer's weights or biases, or a data set).
    name : str, optional
        A name, as Theano's.
    """

    def __init__(self, view, name=None):
        self._view = view
        self.name = name

    @property
    def dtype(self):
        """The dtype of the held values."""
        return self._view.dtype

    def get_value(self, borrow=False):
        """The values: a copy, or with ``borrow=True`` the held array (a view).

        Parameters
        ----------
        borrow : bool, default=False
            Return the held array itself (writes go through).

        Returns
        -------
        ndarray
            The values.
        """
        return self._view if borrow else np.array(self._view, order="C")

    def set_value(self, value, borrow=False):
        """Copy ``value`` into the held array.

        Parameters
        ----------
        value : array_like
            Finite values of the held array's shape (cast to its dtype).
        borrow : bool, default=False
            Accepted, as Theano's, and ignored.
        """
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"set_value({self.name}): an array is needed ({exc})") from None
        if value.dtype.kind not in "biuf":
            raise TypeError(f"set_value({self.name}): a real array is needed; got dtype "
                            f"{value.dtype}")
        if value.shape != self._view.shape:
            raise ValueError(f"set_value({self.name}): shape {self._view.shape} expected; got "
                             f"{value.shape} (a layer's shapes are fixed when it is built)")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"set_value({self.name}): the values must be finite")
        self._view[...] = value

    def eval(self):
        """The values, as a new array (Theano's ``eval()``)."""
        return self.get_value()

    def __repr__(self):
        return f"<SharedVariable {self.name} {self._view.shape} {self._view.dtype}>"


def _positive_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{argument} must be positive; got {value}")
    return int(value)


def _shape(value, n, argument):
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise TypeError(f"{argument} must be a tuple of {n} ints; got {value!r}")
    return tuple(_positive_int(v, f"{argument}[{k}]") for k, v in enumerate(value))


def _dropout(p, argument="p_dropout"):
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{argument} must be a float; got {type(p).__name__}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{argument} must be in [0, 1); got {p}")
    return float(p)


class Config:
    """network3's settings, read when a layer or a network is built (Theano's ``config``).

    ``floatX``: ``"float32"`` (the default, as the book sets it) or
    ``"float64"``: the dtype of the layers built afterwards and of the data
    ``load_data_shared`` loads.  ``num_threads``: threads for training and
    evaluation; ``None`` (default) is OpenMP's count (``OMP_NUM_THREADS``,
    threadpoolctl), results are the same for any count.
    """

    def __init__(self):
        self._floatX = "float32"
        self._num_threads = None

    @property
    def floatX(self):
        """"float32" (default) or "float64": the dtype of layers and data built afterwards."""
        return self._floatX

    @floatX.setter
    def floatX(self, value):
        if value not in ("float32", "float64"):
            raise ValueError(f"config.floatX must be 'float32' or 'float64'; got {value!r}")
        self._floatX = value

    @property
    def num_threads(self):
        """Threads for training and evaluation; ``None`` (default) is OpenMP's count."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value):
        if value is not None:
            value = _positive_int(value, "config.num_threads")
        self._num_threads = value

    def threads(self):
        """The thread count in force: ``num_threads``, else OpenMP's.

        Cut as every cbp call cuts it (``cbp._core.usable_threads``): to
        ``OMP_THREAD_LIMIT``, and to one in a child forked from a process that
        imported cbp (its OpenMP thread pool does not survive the fork).
        """
        if self._num_threads is None:
            return max(1, _core.default_threads())
        return _core.usable_threads(self._num_threads)


config = Config()


def _dtype():
    return np.dtype(config.floatX)


class _Buffers(dict):
    # Arrays a layer's kernels work in, for one mini-batch size.
    pass


def _empty(shape, dtype):
    # np.empty, starting on a 64-byte line (NumPy's allocations start 16
    # bytes past one as often as not).  The weights' rows and the kernels'
    # vectors then load whole lines: measured in one process, the book's
    # shallow net trained 5% slower with its weights 16 bytes off a line.
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + n].view(dtype).reshape(shape)


def _aligned(a):
    # a C-contiguous copy of ``a`` on a 64-byte line
    out = _empty(np.shape(a), np.asarray(a).dtype)
    out[...] = a
    return out


def _packs(nt, dtype):
    return _empty((nt, _core.PACK_ELEMENTS), dtype)


class ConvPoolLayer:
    """A convolutional layer ("valid", flipped filters) followed by max-pooling, then f(· + b).

    Parameters are the original's: ``filter_shape`` (filters, input feature
    maps, height, width), ``image_shape`` (mini-batch size, input feature
    maps, height, width), ``poolsize`` (rows, columns; the border that does
    not fill a window is ignored), ``activation_fn``.  Weights are drawn as
    the original draws them, from NumPy's global generator:
    w ~ N(0, 1/n_out) with n_out = filters·height·width / pool area, then
    b ~ N(0, 1).  Filters must be square.

    Parameters
    ----------
    filter_shape : tuple of 4 ints
        Filters, input feature maps, filter height, filter width.
    image_shape : tuple of 4 ints
        Mini-batch size, input feature maps, image height, image width.
    poolsize : tuple of 2 ints, default=(2, 2)
        Rows and columns of a max-pooling window.
    activation_fn : function, default=sigmoid
        One of this module's ``linear``, ``ReLU``, ``sigmoid``, ``tanh``.
    """

    def __init__(self, filter_shape, image_shape, poolsize=(2, 2), activation_fn=sigmoid):
        self.filter_shape = _shape(filter_shape, 4, "filter_shape")
        self.image_shape = _shape(image_shape, 4, "image_shape")
        self.poolsize = _shape(poolsize, 2, "poolsize")
        self.activation_fn = activation_fn
        self.act_code = activation_code(activation_fn, "activation_fn")
        F, C, K, K2 = self.filter_shape
        _, C_in, H, W = self.image_shape
        if K != K2:
            raise ValueError(f"ConvPoolLayer: cbp takes square filters; filter_shape "
                             f"{self.filter_shape} has {K}x{K2}")
        if C != C_in:
            raise ValueError(f"ConvPoolLayer: filter_shape {self.filter_shape} reads {C} input "
                             f"feature maps but image_shape {self.image_shape} has {C_in}")
        if K > H or K > W:
            raise ValueError(f"ConvPoolLayer: {K}x{K} filters do not fit in {H}x{W} images "
                             f"(image_shape {self.image_shape})")
        ph, pw = self.poolsize
        if ph > H - K + 1 or pw > W - K + 1:
            raise ValueError(f"ConvPoolLayer: poolsize {self.poolsize} is larger than the "
                             f"{H - K + 1}x{W - K + 1} convolution output")
        n_out = F * K * K // (ph * pw)   # the original's n_out (Python 2 integer division)
        if n_out < 1:
            raise ValueError(f"ConvPoolLayer: filters·height·width / pool area is 0 for "
                             f"filter_shape {self.filter_shape}, poolsize {self.poolsize}")
        dtype = _dtype()
        w = np.asarray(np.random.normal(loc=0, scale=np.sqrt(1.0 / n_out), size=self.filter_shape),
                       dtype=dtype)
        b = np.asarray(np.random.normal(loc=0, scale=1.0, size=(F,)), dtype=dtype)
        self._Wf = _aligned(w[:, :, ::-1, ::-1].reshape(F, C * K * K))
        self._b = b
        self.w = SharedVariable(self._Wf.reshape(F, C, K, K)[:, :, ::-1, ::-1], "w")
        self.b = SharedVariable(self._b, "b")
        self.params = [self.w, self.b]
        self._ws = {}

    # -- shapes ------------------------------------------------------------
    @property
    def n_in(self):
        """Inputs per example: channels·height·width of the image."""
        _, C, H, W = self.image_shape
        return C * H * W

    @property
    def output_shape(self):
        """(mini-batch, filters, pooled height, pooled width)."""
        F, _, K, _ = self.filter_shape
        M, _, H, W = self.image_shape
        return (M, F, (H - K + 1) // self.poolsize[0], (W - K + 1) // self.poolsize[1])

    @property
    def n_out(self):
        """Outputs per example, flattened as the original's reshape does."""
        _, F, Py, Px = self.output_shape
        return F * Py * Px

    @property
    def dtype(self):
        """The dtype of the layer's parameters."""
        return self._Wf.dtype

    def _buffers(self, M, nt):
        key = (M, nt)
        ws = self._ws.get(key)
        if ws is None:
            F, C, K, _ = self.filter_shape
            _, _, H, W = self.image_shape
            Oy, Ox = H - K + 1, W - K + 1
            dt = self.dtype
            ws = self._ws[key] = _Buffers(
                Z=_empty((M, F * Oy * W), dt), A=_empty((M, self.n_out), dt),
                xpad=_empty((nt, C * H * W + K), dt),
                rows=np.empty((nt, C * K * K), np.intp),
                packs=_packs(nt, dt), backward=None)
        return ws

    def _backward_buffers(self, ws, M, nt):
        if ws["backward"] is None:
            F, C, K, _ = self.filter_shape
            _, _, H, W = self.image_shape
            Oy = H - K + 1
            dt = self.dtype
            R = Oy * (W - K + 1)
            patches = C * K * K >= _core.PATCH_TAPS     # the core's choice (see _conv.pxi)
            ws["backward"] = _Buffers(
                WfT=_empty((C * K * K, F), dt), Dz=_empty((M, F * Oy * W), dt),
                G=_empty((M, 0 if patches else C * K * K * F), dt),
                P=_empty((M * R if patches else 0, C * K * K), dt),
                Dt=_empty((F, M * R if patches else 0), dt),
                prows=np.empty(M * R if patches else 0, np.intp),
                E=_empty((nt, C * K * K * Oy * W), dt),
                dxpad=_empty((nt, C * H * W + K), dt), Dx=_empty((M, C * H * W), dt),
                rows=np.empty((nt, C * K * K + F), np.intp), zeros=np.zeros(F, dt),
                pool=_empty((nt, self.n_out + 2 * W), dt))
        return ws["backward"]

    def row_bytes(self):
        """Bytes of the buffers one more example takes in forward_batch (z and the output)."""
        F, C, K, _ = self.filter_shape
        _, _, H, W = self.image_shape
        return (F * (H - K + 1) * W + self.n_out) * self.dtype.itemsize

    def train_flops(self, M):
        """Multiply-adds x 2 of a training step on ``M`` examples (forward, filters' and input's gradients)."""
        F, C, K, _ = self.filter_shape
        _, _, H, W = self.image_shape
        return 2 * M * F * C * K * K * (H - K + 1) * W * 3

    def team_entry(self, M, nt, act_below, need_input):
        """The arrays and shapes _core.Plan3 lays out for training on ``nt`` threads (for network3.Network)."""
        ws = self._buffers(M, nt)
        bw = self._backward_buffers(ws, M, nt)
        F, C, K, _ = self.filter_shape
        _, _, H, W = self.image_shape
        P = bw["P"]
        prows = bw["prows"]
        if P.size:
            prows[:] = P.ctypes.data + np.arange(P.shape[0], dtype=np.intp) * P.strides[0]
        return dict(kind="conv", act=self.act_code, act_below=act_below, need_input=need_input,
                    n_in=self.n_in, n_out=self.n_out, C=C, H=H, Wd=W, K=K, F=F,
                    ph=self.poolsize[0], pw=self.poolsize[1], W=self._Wf, b=self._b, Z=ws["Z"],
                    A=ws["A"], E=bw["Dx"], Dt=bw["Dt"], WfT=bw["WfT"], Dz=bw["Dz"], G=bw["G"], P=P,
                    prows=prows, zeros=bw["zeros"], xpad=ws["xpad"], dxpad=bw["dxpad"],
                    rows=bw["rows"], Et=bw["E"], pool=bw["pool"])

    def forward_batch(self, X, nt, training, net):
        """This layer's output for the mini-batch ``X`` (rows), on ``nt`` threads (for network3.Network)."""
        M = X.shape[0]
        ws = self._buffers(M, nt)
        _, C, H, W = self.image_shape
        _core.conv_pool_forward(X, self._Wf, self._b, ws["Z"], ws["A"], ws["xpad"],
                                ws["rows"], ws["packs"], C, H, W, self.filter_shape[2],
                                self.poolsize[0], self.poolsize[1], self.act_code, nt)
        if training:
            ws["X"] = X
        return ws["A"]

    def backward_batch(self, D, nt, act_below, need_input, alpha, beta):
        """Apply this layer's SGD step from its output error ``D``; the error below if ``need_input`` (for network3.Network)."""
        M = D.shape[0]
        ws = self._buffers(M, nt)
        bw = self._backward_buffers(ws, M, nt)
        _, C, H, W = self.image_shape
        K = self.filter_shape[2]
        X = ws["X"]
        _core.conv_pool_backward(D, ws["Z"], X, self._Wf, self._b, bw["WfT"], bw["Dz"], bw["G"],
                                 bw["P"], bw["Dt"], bw["prows"], bw["E"], ws["xpad"], bw["dxpad"], bw["rows"], bw["zeros"],
                                 bw["pool"], bw["Dx"], X, act_below, need_input, alpha, beta, ws["packs"],
                                 C, H, W, K, self.poolsize[0], self.poolsize[1], nt)
        return bw["Dx"] if need_input else None


class _DenseLayer:
    # What FullyConnectedLayer and SoftmaxLayer share: z = (1 − p) a w + b.
    act_code = 0

    def _init(self, n_in, n_out, p_dropout, w, b):
        self._W = _aligned(w.T)
        self._b = b
        self.w = SharedVariable(self._W.T, "w")
        self.b = SharedVariable(self._b, "b")
        self.params = [self.w, self.b]
        self._ws = {}

    @property
    def dtype(self):
        """The dtype of the layer's parameters."""
        return self._W.dtype

    def _buffers(self, M, nt):
        key = (M, nt)
        ws = self._ws.get(key)
        if ws is None:
            dt = self.dtype
            ws = self._ws[key] = _Buffers(
                Z=_empty((M, self.n_out), dt), rows=np.empty(M, np.intp),
                zeros=np.zeros(self.n_out, dt), packs=_packs(nt, dt),
                Dt=_empty((self.n_out, M), dt), E=_empty((M, self.n_in), dt),
                mask=_empty((M, self.n_in), dt), Xm=_empty((M, self.n_in), dt))
        return ws

    def row_bytes(self):
        """Bytes of the buffers one more example takes in forward_batch (z, δ, the masks, α δᵀ)."""
        return (2 * self.n_out + 3 * self.n_in) * self.dtype.itemsize

    def train_flops(self, M):
        """Multiply-adds x 2 of a training step on ``M`` examples (forward, BP2, step)."""
        return 2 * M * self.n_in * self.n_out * 3

    def team_entry(self, M, nt, act_below, need_input):
        """The arrays and shapes _core.Plan3 lays out for training on ``nt`` threads (for network3.Network)."""
        ws = self._buffers(M, nt)
        return dict(kind="dense", act=self.act_code, act_below=act_below, need_input=need_input,
                    n_in=self.n_in, n_out=self.n_out, p_dropout=self.p_dropout, W=self._W,
                    b=self._b, Z=ws["Z"], A=ws["Z"], mask=ws["mask"], Xm=ws["Xm"], E=ws["E"],
                    Dt=ws["Dt"])

    def forward_batch(self, X, nt, training, net):
        """This layer's output for the mini-batch ``X`` (rows), on ``nt`` threads (for network3.Network)."""
        M = X.shape[0]
        ws = self._buffers(M, nt)
        keep = 1.0
        if training:
            ws["X"] = X
            if self.p_dropout > 0:
                _core.dropout_apply(X, ws["mask"], ws["Xm"], net.dropout_seed,
                                    net.dropout_counter, self.p_dropout)
                net.dropout_counter += ws["mask"].size
                X = ws["Xm"]
        else:
            keep = 1.0 - self.p_dropout
        _core.dense_forward(X, self._W, self._b, ws["Z"], ws["Z"], ws["rows"], ws["zeros"],
                            ws["packs"], keep, self.act_code, nt)
        return ws["Z"]

    def backward_batch(self, D, nt, act_below, need_input, alpha, beta):
        """Apply this layer's SGD step from its output error ``D``; the error below if ``need_input`` (for network3.Network)."""
        M = D.shape[0]
        ws = self._buffers(M, nt)
        X = ws["X"]
        masked = self.p_dropout > 0
        if need_input:
            _core.dense_backward(D, self._W, ws["E"], X, act_below, ws["mask"], masked,
                                 ws["packs"], nt)
        _core.dense_step(D, ws["Xm"] if masked else X, self._W, self._b, ws["Dt"], ws["rows"],
                         alpha, beta, ws["packs"], nt)
        return ws["E"] if need_input else None


class FullyConnectedLayer(_DenseLayer):
    """A fully connected layer a = f((1 − p) a_in w + b), its input dropped out in training.

    As the original: w (n_in, n_out) ~ N(0, 1/n_out), then b ~ N(0, 1), from
    NumPy's global generator; ``p_dropout`` is the chance that each input is
    zeroed while training; at inference the product is scaled by 1 − p.

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs of the layer.
    activation_fn : function, default=sigmoid
        One of this module's ``linear``, ``ReLU``, ``sigmoid``, ``tanh``.
    p_dropout : float, default=0.0
        The chance that each input is zeroed in training.
    """

    def __init__(self, n_in, n_out, activation_fn=sigmoid, p_dropout=0.0):
        self.n_in = _positive_int(n_in, "n_in")
        self.n_out = _positive_int(n_out, "n_out")
        self.activation_fn = activation_fn
        self.act_code = activation_code(activation_fn, "activation_fn")
        self.p_dropout = _dropout(p_dropout)
        dtype = _dtype()
        w = np.asarray(np.random.normal(loc=0.0, scale=np.sqrt(1.0 / n_out), size=(n_in, n_out)),
                       dtype=dtype)
        b = np.asarray(np.random.normal(loc=0.0, scale=1.0, size=(n_out,)), dtype=dtype)
        self._init(n_in, n_out, p_dropout, w, b)


class SoftmaxLayer(_DenseLayer):
    """The output layer: softmax((1 − p) a_in w + b), trained on the log-likelihood.

    As the original, w and b start at zero (no draws from NumPy's generator).

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs (classes) of the layer.
    p_dropout : float, default=0.0
        The chance that each input is zeroed in training.
    """

    act_code = SOFTMAX

    def __init__(self, n_in, n_out, p_dropout=0.0):
        self.n_in = _positive_int(n_in, "n_in")
        self.n_out = _positive_int(n_out, "n_out")
        self.p_dropout = _dropout(p_dropout)
        dtype = _dtype()
        self._init(n_in, n_out, p_dropout, np.zeros((n_in, n_out), dtype=dtype),
                   np.zeros((n_out,), dtype=dtype))
