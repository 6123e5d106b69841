"""Drop-in for the book's ``network3.py`` (chapter 6), without Theano.

``import cbp.network3 as network3`` replaces ``import network3``:
``load_data_shared``, ``Network``, ``ConvPoolLayer``, ``FullyConnectedLayer``,
``SoftmaxLayer``, the activation functions ``linear``, ``ReLU``,
``sigmoid``, ``tanh``, ``size`` and ``dropout_layer`` take the original's
arguments, and ``Network.SGD`` prints the original's lines and keeps its
best-validation bookkeeping.  The arithmetic is the original's: "valid"
true convolution (flipped filters, as Theano's ``conv2d``), max-pooling
(ignore_border) before ``f(· + b)``, no shuffling between epochs, the cost
mean log-likelihood of the mini-batch + 0.5·λ·Σ‖w‖²/num_training_batches,
plain SGD on every parameter, weights drawn by the same calls on NumPy's
global generator in the same order (so ``np.random.seed`` gives the
original's initial weights), dropout masks in training and the (1 − p)
scaling at inference.  The kernels are cbp's Cython core (``_conv.pxi``).

What differs:

* No GPU and no Theano: it runs on the CPU, on all the threads OpenMP
  allows (``config.num_threads``); results do not depend on the count.
  Training runs the mini-batches in chunks, each by one team of threads
  that meets at a barrier between layers (2L + 2 per mini-batch for L
  layers) or by one thread: on a machine busy with other work each barrier
  can wait for a thread the scheduler set aside, so every chunk is timed
  and the faster way is kept (tried again now and then).
* ``config.floatX`` is ``"float32"`` as the book sets it; set
  ``network3.config.floatX = "float64"`` before building layers (and
  loading data) for double precision.
* Dropout masks come from a counter-based generator (SplitMix64) seeded from
  NumPy's global state when the ``Network`` is built, so ``np.random.seed``
  repeats a run; they are not Theano's masks.
* Activation functions must be this module's four; filters must be square;
  the last layer must be the ``SoftmaxLayer`` (the original's ``cost``).
* ``layer.w`` and ``layer.b`` are :class:`SharedVariable` objects
  (``get_value``, ``set_value``, ``eval``), not symbolic: Theano
  expressions (``theano.function``, ``T.lscalar``) are not available, but
  ``net.test_mb_predictions(i)`` is, as ``SGD`` defines it.
"""
import hashlib
import math
import numbers
import time
from pathlib import Path

import numpy as np

from . import _core, _pace, datasets, mnist_loader
from ._layers3 import (Config, ConvPoolLayer, FullyConnectedLayer, SharedVariable, SoftmaxLayer,
                       ReLU, config, linear, sigmoid, tanh)

__all__ = ["load_data_shared", "Network", "ConvPoolLayer", "FullyConnectedLayer", "SoftmaxLayer",
           "linear", "ReLU", "sigmoid", "tanh", "size", "dropout_layer", "config", "Config",
           "SharedVariable"]

#: What the original calls ``GPU``: there is none here.
GPU = False

print(f"Running with cbp's Cython core on the CPU ({config.threads()} "
      f"thread{'s' * (config.threads() != 1)}, "
      f"{config.floatX}); no GPU.  Set network3.config.floatX and config.num_threads to change.")

_DEFAULT_FILE = "../data/mnist.pkl.gz"

#: Least work (flops) of one layer's phase per thread for a team to be
#: tried at all: a barrier costs about a microsecond when both cores are
#: free, so even the book's ``shallow`` net (about 0.4 MFLOP a phase and
#: thread) gains from a second core then (1.66x measured).  Whether it
#: does on a given machine at a given moment is measured, not assumed:
#: see _PACE.  ``_core.conv_min_flops(0)`` still forces teams (tests).
TEAM_MIN_FLOPS = 100_000
#: Training runs are cut into chunks of at least this many flops (and 8
#: mini-batches), timed, so that a team and one thread can be compared:
#: 1-3 ms on this 2-core VM.  (500 MFLOP cut the book's ``shallow`` epoch,
#: 200 mini-batches of 3.2 MFLOP, into two chunks: trying both sides took
#: several epochs.)
CHUNK_FLOPS = 100_000_000
#: Seconds per mini-batch (per chunk, evaluating) with a team and with one
#: thread, per shape of network, kept across calls and networks (the newest
#: PACE_SHAPES shapes): each chunk runs with whichever was faster, the other
#: tried again now and then (cbp._pace says why and how often).
_PACE: dict = {}
PACE_SHAPES = 64
#: Chunks between two tries of the slower way (times how much slower it
#: was): a try costs one chunk at the slower pace, about 2% of the time
#: at this interval when the team is 1.6x faster.
RETRY_EVERY = 32
#: Seconds of a network's first runs on a team (training chunks, evaluation
#: calls) that are not timed for _PACE; on one thread, only the first run is
#: untimed.  On this 2-core VM a team whose second core had been idle ran
#: basic_conv's chunks at 0.9-1.0 ms a mini-batch for the first 30 ms or
#: more, 0.4-0.5 later; timed, they kept one thread (0.65) for whole
#: benchmark runs.
WARM_SECONDS = 0.1
#: Evaluation runs in chunks of whole mini-batches, at least 100 rows and as
#: many more (up to EVAL_ROWS) as the layers' buffers for them fit in
#: EVAL_BYTES.  Each chunk packs the weights again for each thread's rows:
#: the ``shallow`` net's 1,000 evaluated rows took 1.28 ms on two threads in
#: chunks of 100 and 0.98 ms in one (one thread: 2.17 and 1.94 ms).  The
#: outputs are the same bits whatever the chunk.
EVAL_BYTES = 8 << 20
EVAL_ROWS = 1000
#: Timed chunks of each side before the faster is chosen, each replacing the
#: one before (cbp._pace's ``settle``: a team's first timed chunk is often
#: twice as slow as its next ones).
SETTLE = 3


#### Load the MNIST data
def load_data_shared(filename=_DEFAULT_FILE):
    """``[(training_x, training_y), (validation_x, validation_y), (test_x, test_y)]``.

    Each ``x`` is a :class:`SharedVariable` of ``config.floatX`` images
    (n, 784), each ``y`` one of int32 labels, as the original's shared
    variables and ``T.cast(shared_y, "int32")`` are used by scripts
    (``size(data)``, ``x.get_value(borrow=True)``, ``y.eval()``).

    ``filename`` is parsed by :func:`cbp.datasets.read_mnist_pickle`, never
    unpickled.  With the default name and no such file, the data is found as
    :func:`cbp.mnist_loader.load_data` finds it (``./mnist.pkl.gz``, cbp's
    data directory, or the embedded 5,000-image sample, with a warning).

    Parameters
    ----------
    filename : str or path, default="../data/mnist.pkl.gz"
        The book's ``mnist.pkl.gz`` (the original's default path).

    Returns
    -------
    list of three pairs
        Training, validation and test data as shared variables.
    """
    if not isinstance(filename, (str, Path)):
        raise TypeError(f"filename must be a str or a path; got {type(filename).__name__}")
    if Path(filename).is_file():
        parts = datasets.read_mnist_pickle(filename)
    elif str(filename) == _DEFAULT_FILE:
        parts = mnist_loader.load_data()
    else:
        raise FileNotFoundError(f"load_data_shared: no file at {filename!r}")
    dtype = np.dtype(config.floatX)

    def shared(data):
        x = np.ascontiguousarray(data[0], dtype=dtype)
        y = np.asarray(data[1], dtype=np.int32)
        return SharedVariable(x, "x"), SharedVariable(y, "y")

    return [shared(part) for part in parts]


#### Main class used to construct and train networks
class Network:
    """``Network(layers, mini_batch_size)``: the layers, checked to fit one another.

    Refused with a ``ValueError`` naming the layer and the shapes: an
    ``image_shape`` that is not the previous layer's output, an ``n_in``
    that is not the previous layer's output size, a ``ConvPoolLayer`` whose
    ``image_shape`` has another mini-batch size, layers of mixed dtypes, and
    a last layer that is not a ``SoftmaxLayer``.

    Parameters
    ----------
    layers : list
        ``ConvPoolLayer``, ``FullyConnectedLayer`` and ``SoftmaxLayer``
        objects, input side first; the last is a ``SoftmaxLayer``.
    mini_batch_size : int
        Examples per mini-batch, the same as each ``ConvPoolLayer``'s
        ``image_shape[0]``.
    """

    def __init__(self, layers, mini_batch_size):
        if not isinstance(layers, (list, tuple)) or not layers:
            raise TypeError("layers must be a non-empty list of network3 layers")
        for j, layer in enumerate(layers):
            if not isinstance(layer, (ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer)):
                raise TypeError(f"layers[{j}] must be a ConvPoolLayer, FullyConnectedLayer or "
                                f"SoftmaxLayer; got {type(layer).__name__}")
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, numbers.Integral):
            raise TypeError(f"mini_batch_size must be an int; got {type(mini_batch_size).__name__}")
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be positive; got {mini_batch_size}")
        mini_batch_size = int(mini_batch_size)
        _check_chain(layers, mini_batch_size)
        self.layers = list(layers)
        self.mini_batch_size = mini_batch_size
        self.params = [param for layer in self.layers for param in layer.params]
        self.dtype = self.layers[0].dtype
        # The dropout masks' stream: a hash of NumPy's global state (read, not
        # advanced, so the next layers' weights are the original's).
        self.dropout_seed = _seed_from_numpy()
        self.dropout_counter = 0
        self._plans = {}
        # (work, threads) this network has run -> seconds of its untimed runs:
        # its runs are not timed for _PACE until they add up to WARM_SECONDS
        # (they wake or start the team's threads and first touch the buffers
        # of this network's plan; timed, one such chunk of the dropout net,
        # 7.2 ms a mini-batch against 2.5 after it, handed a whole benchmark
        # run to one thread)
        self._warm = {}

    # -- the passes ------------------------------------------------------------
    def _threads(self):
        return config.threads()

    def _feedforward(self, X, nt):
        # Inference: no masks, products scaled by 1 − p.
        for layer in self.layers:
            X = layer.forward_batch(X, nt, False, self)
        return X

    def _plan(self, M, nt):
        # The layers laid out for the core's team (cached per mini-batch size
        # and thread count).  Fewer threads when a phase's share would be too
        # small to pay for the barrier after it (the kernels' threshold).
        key = (M, nt)
        plan = self._plans.get(key)
        if plan is None:
            phases = 2 * len(self.layers) + 2
            flops = sum(layer.train_flops(M) for layer in self.layers)
            team = nt
            least = min(TEAM_MIN_FLOPS, _core.conv_min_flops())
            while team > 1 and flops // (phases * team) < least:
                team -= 1
            entries = []
            for j, layer in enumerate(self.layers):
                below = self.layers[j - 1].act_code if j > 0 else 3   # linear: the input
                entries.append(layer.team_entry(M, team, below, j > 0))
            plan = self._plans[key] = _core.plan3(entries, M, team, self.dtype)
        return plan

    def _warmed(self, work):
        # True if this network's untimed runs of ``work`` took WARM_SECONDS on
        # a team, one run on one thread (the caller's own, already running;
        # see self._warm: the caller adds each untimed run's time)
        return self._warm.get(work, -1.0) >= (WARM_SECONDS if work[-1] > 1 else 0.0)

    def _warming(self, work, seconds):
        self._warm[work] = self._warm.get(work, 0.0) + seconds

    def _choice(self, kind, team):
        # (threads, pace) for the next chunk of ``kind`` work that ``team``
        # threads could share (see _PACE).
        M = self.mini_batch_size
        key = (kind, tuple((type(layer).__name__, layer.train_flops(M)) for layer in self.layers),
               np.dtype(self.dtype).str, team)
        return _pace.choose(_PACE, key, team, PACE_SHAPES, RETRY_EVERY, SETTLE)

    def _team_choice(self, M, nt):
        # training chunks: the team the plan sizes, or one thread
        return self._choice(("train", M), self._plan(M, nt).threads)

    def _train_run(self, X, y, first, last, eta, beta, nt):
        """SGD steps on mini-batches ``first``..``last``-1 of (X, y); returns Σ of their mean log-likelihoods.

        w <- β w − η ∂C/∂w with β = 1 − η λ / num_training_batches (the L2 term's
        gradient folded into the step), b <- b − η ∂C/∂b; every gradient is
        taken with the weights before the step, as Theano's updates are.  One
        team of threads, or one thread, runs each chunk of the run (see
        _team3.pxi and _PACE); the weights are the same either way.
        """
        M = self.mini_batch_size
        flops = max(1, sum(layer.train_flops(M) for layer in self.layers))
        chunk = max(8, math.ceil(CHUNK_FLOPS / flops))
        total = 0.0
        for start in range(first, last, chunk):
            stop = min(last, start + chunk)
            threads, pace = self._team_choice(M, nt)
            plan = self._plan(M, threads)
            timed = self._warmed(("train", M, threads))
            began = time.perf_counter()
            total += _core.train_batches3(plan, X, y, start, stop, -eta / M, beta,
                                          self.dropout_seed, self.dropout_counter, plan.threads)
            if pace is not None and timed:
                _pace.record(pace, threads, (time.perf_counter() - began) / (stop - start))
            elif pace is not None:
                self._warming(("train", M, threads), time.perf_counter() - began)
            self.dropout_counter += plan.draws * (stop - start)
        return total / M

    def _train_mb(self, X, y, eta, beta, nt):
        """One SGD step on the mini-batch (X, y); returns the mean log-likelihood."""
        return self._train_run(X, y, 0, 1, eta, beta, nt)

    def _predict(self, X, nt):
        # argmax of the output for each row of X, in chunks of whole mini-batches.
        # The whole call on nt threads or on one, whichever was faster (see
        # _PACE), timed as a whole: a chunk of the book's small nets takes a
        # few hundred microseconds, and a team's first chunk after its
        # threads slept waits for them to wake, so timing chunks one by one
        # held every retried team to its slowest chunk and kept evaluation on
        # one thread (shallow, 1,000 rows: 2.8 ms per call on one thread or
        # on two; chunks on the team alone, 1.7-2.1 ms).
        mbs = self.mini_batch_size
        fits = EVAL_BYTES // max(1, sum(layer.row_bytes() for layer in self.layers))
        chunk = mbs * max(1, max(100, min(EVAL_ROWS, fits)) // mbs)
        out = np.empty(X.shape[0], dtype=np.int64)
        threads, pace = self._choice(("predict", chunk), nt)
        # a call of less than a chunk is neither timed nor this network's
        # untimed first call (test_mb_predictions' calls are such)
        work = ("predict", chunk, threads)
        timed = pace is not None and X.shape[0] >= chunk and self._warmed(work)
        began = time.perf_counter()
        for start in range(0, X.shape[0], chunk):
            A = self._feedforward(X[start:start + chunk], threads)
            out[start:start + chunk] = np.argmax(A, axis=1)
        if timed:
            # per chunk of rows, so that calls of any length compare
            _pace.record(pace, threads, (time.perf_counter() - began) * chunk / X.shape[0])
        elif pace is not None and X.shape[0] >= chunk:
            self._warming(work, time.perf_counter() - began)
        return out

    def _accuracy(self, x, y, num_batches, nt):
        # The mean over mini-batches of each mini-batch's accuracy, as the original.
        n = num_batches * self.mini_batch_size
        right = (self._predict(x[:n], nt) == y[:n]).reshape(num_batches, self.mini_batch_size)
        return np.mean(right.mean(axis=1))

    def SGD(self, training_data, epochs, mini_batch_size, eta, validation_data, test_data,
            lmbda=0.0):
        """Train the network using mini-batch stochastic gradient descent.

        Mini-batches are taken in order (no shuffling), as the original takes
        them.  After each epoch the validation accuracy is printed; when it
        is the best to date (ties included), the test accuracy too.  Sets
        ``self.test_mb_predictions(i)``, the predicted digits of test
        mini-batch ``i``.

        Parameters
        ----------
        training_data : pair of shared variables
            ``(x, y)`` as :func:`load_data_shared` returns them.
        epochs : int
            Passes over the training data.
        mini_batch_size : int
            Examples per mini-batch (the network's).
        eta : float
            The learning rate η.
        validation_data, test_data : pair of shared variables
            Evaluated after each epoch, as ``training_data``.
        lmbda : float, default=0.0
            The L2 regularisation parameter λ (the cost gains
            0.5·λ·Σ‖w‖² / number of training mini-batches).
        """
        training_x, training_y = _arrays(training_data, "training_data", self)
        validation_x, validation_y = _arrays(validation_data, "validation_data", self)
        test_x, test_y = (_arrays(test_data, "test_data", self) if test_data
                          else (None, None))
        epochs = _count(epochs, "epochs", minimum=0)
        mini_batch_size = _count(mini_batch_size, "mini_batch_size", minimum=1)
        if mini_batch_size != self.mini_batch_size:
            raise ValueError(f"mini_batch_size={mini_batch_size} differs from the network's "
                             f"{self.mini_batch_size} (Network(layers, mini_batch_size))")
        eta = _real(eta, "eta")
        lmbda = _real(lmbda, "lmbda")
        n_out = self.layers[-1].n_out
        for y, name in ((training_y, "training_data"), (validation_y, "validation_data"),
                        (test_y, "test_data")):
            if y is not None and y.size and (y.min() < 0 or y.max() >= n_out):
                raise ValueError(f"{name}: labels must be in 0..{n_out - 1}; got "
                                 f"{y.min()}..{y.max()}")

        # compute number of minibatches for training, validation and testing
        num_training_batches = training_x.shape[0] // mini_batch_size
        num_validation_batches = validation_x.shape[0] // mini_batch_size
        num_test_batches = test_x.shape[0] // mini_batch_size if test_x is not None else 0
        for n, name in ((num_training_batches, "training_data"),
                        (num_validation_batches, "validation_data")):
            if n == 0:
                raise ValueError(f"{name} has fewer than mini_batch_size={mini_batch_size} "
                                 "examples")
        if test_x is not None and num_test_batches == 0:
            raise ValueError(f"test_data has fewer than mini_batch_size={mini_batch_size} "
                             "examples")
        beta = 1.0 - eta * lmbda / num_training_batches
        nt = self._threads()
        mbs = self.mini_batch_size

        def test_mb_predictions(i):
            return self._predict(test_x[i * mbs:(i + 1) * mbs], nt)

        self.test_mb_predictions = test_mb_predictions

        # Do the actual training
        best_validation_accuracy = 0.0
        best_iteration = None
        test_accuracy = None
        for epoch in range(epochs):
            minibatch_index = 0
            while minibatch_index < num_training_batches:
                iteration = num_training_batches * epoch + minibatch_index
                if iteration % 1000 == 0:
                    print("Training mini-batch number {0}".format(iteration))
                # the mini-batches up to the next printed line, in one call
                run = min(num_training_batches - minibatch_index, 1000 - iteration % 1000)
                self._train_run(training_x, training_y, minibatch_index, minibatch_index + run,
                                eta, beta, nt)
                minibatch_index += run
                iteration = num_training_batches * epoch + minibatch_index - 1
                if (iteration + 1) % num_training_batches == 0:
                    validation_accuracy = self._accuracy(validation_x, validation_y,
                                                         num_validation_batches, nt)
                    print("Epoch {0}: validation accuracy {1:.2%}".format(
                        epoch, validation_accuracy))
                    if validation_accuracy >= best_validation_accuracy:
                        print("This is the best validation accuracy to date.")
                        best_validation_accuracy = validation_accuracy
                        best_iteration = iteration
                        if test_x is not None:
                            test_accuracy = self._accuracy(test_x, test_y, num_test_batches, nt)
                            print('The corresponding test accuracy is {0:.2%}'.format(
                                test_accuracy))
        print("Finished training network.")
        print("Best validation accuracy of {0:.2%} obtained at iteration {1}".format(
            best_validation_accuracy, best_iteration))
        if test_accuracy is not None:
            print("Corresponding test accuracy of {0:.2%}".format(test_accuracy))


def _check_chain(layers, mini_batch_size):
    # Each layer must read what the previous one gives, as the original's
    # reshapes would demand at the first mini-batch.
    dtypes = {layer.dtype for layer in layers}
    if len(dtypes) > 1:
        raise ValueError(f"the layers have different dtypes {sorted(map(str, dtypes))}: build "
                         "them all with the same network3.config.floatX")
    for j, layer in enumerate(layers):
        name = f"layers[{j}] ({type(layer).__name__})"
        if isinstance(layer, ConvPoolLayer) and layer.image_shape[0] != mini_batch_size:
            raise ValueError(f"{name}: image_shape {layer.image_shape} is for mini-batches of "
                             f"{layer.image_shape[0]}, the network's are {mini_batch_size}")
        if isinstance(layer, SoftmaxLayer) and j != len(layers) - 1:
            raise ValueError(f"{name}: a SoftmaxLayer can only be the last layer")
        if j == 0:
            continue
        prev = layers[j - 1]
        prev_name = f"layers[{j - 1}] ({type(prev).__name__})"
        if isinstance(layer, ConvPoolLayer):
            if not isinstance(prev, ConvPoolLayer):
                if layer.n_in != prev.n_out:
                    raise ValueError(f"{name}: image_shape {layer.image_shape} takes "
                                     f"{layer.n_in} inputs but {prev_name} gives {prev.n_out}")
            elif tuple(layer.image_shape) != tuple(prev.output_shape):
                raise ValueError(f"{name}: image_shape {layer.image_shape} does not match the "
                                 f"output of {prev_name}, {prev.output_shape}")
        elif layer.n_in != prev.n_out:
            shape = (f" {prev.output_shape} = {prev.n_out}" if isinstance(prev, ConvPoolLayer)
                     else f" {prev.n_out}")
            raise ValueError(f"{name}: n_in={layer.n_in} but {prev_name} gives{shape} outputs")
    if not isinstance(layers[-1], SoftmaxLayer):
        raise ValueError(f"the last layer must be a SoftmaxLayer (its log-likelihood is the "
                         f"cost); got {type(layers[-1]).__name__}")


def _count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value}")
    return value


def _arrays(data, name, net):
    """(images, labels) of a ``load_data_shared`` part, as the network's dtype and int32."""
    if not isinstance(data, (list, tuple)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (x, y) as load_data_shared returns")
    x, y = (v.get_value(borrow=True) if isinstance(v, SharedVariable) else v for v in data)
    try:
        x = np.asarray(x)
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: arrays are needed ({exc})") from None
    n_in = net.layers[0].n_in
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"{name}: images of shape (n, {n_in}) expected; got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: real images expected; got dtype {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: {x.shape[0]} labels expected; got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: integer labels expected; got dtype {y.dtype}")
    x = np.ascontiguousarray(x, dtype=net.dtype)
    # the core's scan: np.isfinite(x).all() built a boolean copy of every
    # image first (0.4 ms of each call on 2,000 images, ~3% of the shallow
    # net's epoch)
    if not _core.all_finite(x.reshape(-1)):
        raise ValueError(f"{name}: the images must be finite")
    return x, np.ascontiguousarray(y, dtype=np.int32)


def _seed_from_numpy():
    # A 64-bit hash of NumPy's global generator state, which it leaves as it is.
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    digest = hashlib.blake2b(np.asarray(keys, dtype=np.uint32).tobytes()
                             + np.array([pos, has_gauss], dtype=np.int64).tobytes()
                             + np.float64(cached).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


#### Miscellanea
def size(data):
    """Return the size of the dataset ``data``.

    Parameters
    ----------
    data : pair of shared variables
        ``(x, y)`` as :func:`load_data_shared` returns them.

    Returns
    -------
    int
        The number of examples.
    """
    return data[0].get_value(borrow=True).shape[0]


def dropout_layer(layer, p_dropout):
    """``layer`` with each entry zeroed with probability ``p_dropout`` (a new array).

    The mask is drawn by the generator the networks use, seeded from
    NumPy's global state (which it does not advance).

    Parameters
    ----------
    layer : array of floats
        The activations to drop out.
    p_dropout : float
        The probability, in [0, 1), that an entry is zeroed.

    Returns
    -------
    ndarray
        ``layer`` times a mask of 0s and 1s.
    """
    try:
        layer = np.asarray(layer)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"layer must be an array ({exc})") from None
    if layer.dtype.kind != "f":
        raise TypeError(f"layer must be a float array; got dtype {layer.dtype}")
    if isinstance(p_dropout, bool) or not isinstance(p_dropout, numbers.Real):
        raise TypeError(f"p_dropout must be a float; got {type(p_dropout).__name__}")
    if not 0.0 <= p_dropout < 1.0:
        raise ValueError(f"p_dropout must be in [0, 1); got {p_dropout}")
    dtype = layer.dtype if layer.dtype in (np.float32, np.float64) else np.float64
    mask = np.empty(layer.size, dtype=dtype)
    _core.dropout_mask(mask, _seed_from_numpy(), 0, float(p_dropout))
    return layer * mask.reshape(layer.shape)
