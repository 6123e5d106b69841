"""Drop-in for the book's ``network2.py`` (chapter 3).

``import cbp.network2 as network2`` replaces ``import network2``: the same
names (``Network``, ``QuadraticCost``, ``CrossEntropyCost``, ``load``,
``vectorized_result``, ``sigmoid``, ``sigmoid_prime``), signatures, printed
lines and return values, and the same JSON model files both ways.  Without a
seed the weights come from NumPy's global generator and each epoch shuffles
the caller's list with ``random.shuffle``, as the original does, so the same
``random.seed``/``np.random.seed`` give the original's numbers.

What differs, and why: a mini-batch's gradient is summed in the core, not
example by example in Python, so results agree with the original's to
rounding (about 1e-15 per step), not bit for bit; the evaluation accuracy is
computed once per epoch (the original computes it twice for its printed
line); ``SGD`` also takes the widely used Python 3 port's
``early_stopping_n``; ``load`` reads the file as untrusted input (size cap,
validation, only the two cost names it knows); ``net.history`` keeps cbp's
record of the run with the four monitored lists.

As in the original, the book's exercises change what they should: a cost
class of your own (with static ``fn(a, y)`` and ``delta(z, a, y)``) trains
through its Python methods, example by example; a subclass's own
``update_mini_batch``, ``backprop``, ``feedforward``, ``accuracy`` or
``total_cost`` is called (an own ``feedforward`` also computes the training
monitors); a subclass's own ``default_weight_initializer`` draws the initial
weights; and replacing this module's ``sigmoid``/``sigmoid_prime`` runs
feedforward, backprop and training in Python through them.
"""
import json
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy as np

from . import (_checks, _data, _files, _network2_file, _network2_monitors, _python_path, costs,
               model, training)
from ._network2_file import MAX_FILE_BYTES
from ._python_path import fast, overridden
from .sgd import SGD
from ._typing import Array, ArrayLike, Data, PathLike

if TYPE_CHECKING:
    from .explain import Trace
from .model import sigmoid, sigmoid_prime

__all__ = ["Network", "QuadraticCost", "CrossEntropyCost", "load", "vectorized_result",
           "sigmoid", "sigmoid_prime"]

class QuadraticCost:
    """C_x = ½‖a − y‖², with δ^L = (a − y) ⊙ σ'(z^L)."""

    @staticmethod
    def fn(a: Array, y: Array) -> float:
        """The cost of output ``a`` for the desired output ``y``.

        Parameters
        ----------
        a : ndarray
            The output a^L, a column.
        y : ndarray
            The desired output, a column.

        Returns
        -------
        float
            C_x.
        """
        return 0.5 * np.sum(np.square(a - y))

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """The output layer's error δ^L.

        Parameters
        ----------
        z : ndarray
            The weighted input z^L, a column.
        a : ndarray
            The output a^L = σ(z^L).
        y : ndarray
            The desired output.

        Returns
        -------
        ndarray
            The error δ^L, a column.
        """
        return (a - y) * sigmoid_prime(z)


class CrossEntropyCost:
    """C_x = −Σ [y ln a + (1 − y) ln(1 − a)], with δ^L = a − y (σ' cancels)."""

    @staticmethod
    def fn(a: Array, y: Array) -> float:
        """The cost of output ``a`` for ``y``; 0 · ln 0 terms count as 0 (``nan_to_num``).

        Parameters
        ----------
        a : ndarray
            The output a^L, a column.
        y : ndarray
            The desired output, a column.

        Returns
        -------
        float
            C_x.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """The output layer's error δ^L; ``z`` is unused, kept for the common signature.

        Parameters
        ----------
        z : ndarray
            The weighted input z^L (unused).
        a : ndarray
            The output a^L.
        y : ndarray
            The desired output.

        Returns
        -------
        ndarray
            The error δ^L = a − y.
        """
        return a - y


# The two cost classes the core computes itself, by cbp's name; files name
# them by class name.  Nothing else is ever looked up.
_KNOWN = {QuadraticCost: "quadratic", CrossEntropyCost: "cross_entropy"}
_BY_CBP_NAME = {v: k for k, v in _KNOWN.items()}
_BY_FILE_NAME = {"QuadraticCost": QuadraticCost, "CrossEntropyCost": CrossEntropyCost}


def vectorized_result(j: int) -> Array:
    """The (10, 1) column with 1.0 in place ``j`` and zeros elsewhere (a digit's target).

    Parameters
    ----------
    j : int
        A digit, 0 to 9.

    Returns
    -------
    ndarray
        The one-hot column.
    """
    j = _checks.integer(j, "j")
    if not 0 <= j < 10:
        raise ValueError(f"j must be a digit 0..9; got {j}")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e


class Network(model.Network):
    """network2.py's ``Network(sizes, cost=CrossEntropyCost)`` over :class:`cbp.Network`.

    Sigmoid units, weights N(0, 1/n_in) and biases N(0, 1)
    (``default_weight_initializer``).  ``net.cost`` may be reassigned to
    either cost class, or to a class of your own with static ``fn`` and
    ``delta`` (trained through them, in Python).

    Parameters
    ----------
    sizes : list of int
        Units per layer, input first.
    cost : class
        ``CrossEntropyCost`` (default), ``QuadraticCost`` or your own.
    **options
        Keyword options of :class:`cbp.Network` (``dtype``, ``seed``).
    """

    def __init__(self, sizes: Sequence[int], cost: Any = CrossEntropyCost,
                 **options: Any) -> None:
        self._check_cost(cost)
        # network2.py's __init__ calls self.default_weight_initializer(): a
        # subclass's own initializer draws the weights, from the random stream
        # as it stood before cbp's own draw.
        own = type(self).default_weight_initializer is not Network.default_weight_initializer
        state = np.random.get_state() if own and options.get("seed") is None else None
        super().__init__(sizes, cost="quadratic", init="scaled", **options)
        if own:
            if state is not None:
                np.random.set_state(state)
            else:
                self._rng = np.random.default_rng(options["seed"])
            self.default_weight_initializer()
        self.cost = cost

    # -- the cost class -----------------------------------------------------

    @staticmethod
    def _check_cost(cost):
        if cost in _KNOWN or type(cost) in _KNOWN:
            return
        if not (callable(getattr(cost, "fn", None)) and callable(getattr(cost, "delta", None))):
            raise TypeError("cost must be a cost class with static methods fn(a, y) and "
                            "delta(z, a, y), such as CrossEntropyCost or QuadraticCost; "
                            f"got {cost!r}")

    @property
    def cost(self):
        """The cost class (``CrossEntropyCost``, ``QuadraticCost`` or your own)."""
        return self._cost_class

    @cost.setter
    def cost(self, value):
        if isinstance(value, str) and value in _BY_CBP_NAME:
            value = _BY_CBP_NAME[value]     # as cbp.Network's constructor sets it
        self._check_cost(value)
        # A cost of one's own trains through its fn and delta in Python, one
        # example at a time, as in the original (which says nothing either).
        known = _KNOWN.get(value, _KNOWN.get(type(value)))
        self._cost_class = value
        self._user_cost = known is None
        if "_layout" in self.__dict__:
            code = costs.COSTS[known or "quadratic"].code
            self._layout = self._layout.with_codes(self._layout.codes[:2] + (code,))

    @property
    def cost_name(self) -> str:
        """cbp's name of the cost class, as model files store it; TypeError for a class of your own."""
        known = _KNOWN.get(self._cost_class, _KNOWN.get(type(self._cost_class)))
        if known is None:
            raise TypeError("only a network with CrossEntropyCost or QuadraticCost can be "
                            f"written as a cbp model file; this network's cost is "
                            f"{self._cost_name} (net.save(filename) writes network2.py's JSON)")
        return known

    @property
    def _cost_name(self):
        cost = self._cost_class
        return getattr(cost, "__name__", type(cost).__name__)

    # -- initialisers -------------------------------------------------------

    def default_weight_initializer(self) -> None:
        """New weights N(0, 1/n_in) and biases N(0, 1), drawn as network2.py draws them."""
        self._draw("scaled")
        self.init = "scaled"

    def large_weight_initializer(self) -> None:
        """New weights and biases N(0, 1), chapter 1's, drawn as network2.py draws them."""
        self._draw("gaussian")
        self.init = "gaussian"

    # -- training -----------------------------------------------------------

    # The book's code never warns about hopeless training: neither does its drop-in.
    training_warnings = False

    def replaced_functions(self):
        """This module's ``sigmoid`` and ``sigmoid_prime`` when either was replaced, else None.

        With them replaced, everything that computes an activation runs
        through the Python methods, as in network2.py.

        Returns
        -------
        tuple of two callables, or None
        """
        if sigmoid is model.sigmoid and sigmoid_prime is model.sigmoid_prime:
            return None
        return sigmoid, sigmoid_prime

    def _slow_training(self):
        return self._user_cost or overridden(self, "update_mini_batch", "backprop")

    @fast
    def feedforward(self, a: ArrayLike, num_threads: Optional[int] = None) -> Array:
        """The output for an input column: a ← sigmoid(W a + b) layer by layer (network2.py).

        Through this module's ``sigmoid`` when it was replaced; otherwise as
        :meth:`cbp.Network.feedforward` (which also takes a batch of rows).

        Parameters
        ----------
        a : array_like
            The input column (n_in, 1) (or what :meth:`cbp.Network.feedforward` takes).
        num_threads : int, optional
            As for :meth:`cbp.Network.feedforward`.

        Returns
        -------
        ndarray
            The output.
        """
        functions = self.replaced_functions()
        if functions is None:
            return super().feedforward(a, num_threads)
        return _python_path.feedforward(self, a, functions[0])

    @fast
    def backprop(self, x: ArrayLike, y: ArrayLike) -> Tuple[List[Array], List[Array]]:
        """(nabla_b, nabla_w) for one example, δ^L from the cost class (network2.py).

        Parameters
        ----------
        x : array_like
            The input column (n_in, 1).
        y : array_like
            The target column (n_out, 1).

        Returns
        -------
        (nabla_b, nabla_w) : tuple of lists of ndarray
            Shaped like ``biases`` and ``weights``.
        """
        functions = self.replaced_functions()
        if self._user_cost or functions is not None:
            return _python_path.backprop(self, x, y, self._cost_class.delta, functions)
        return super().backprop(x, y)

    @fast
    def update_mini_batch(self, mini_batch: Data, eta: float,  # type: ignore[override]
                          lmbda: float, n: int) -> None:
        """One step: W ← (1 − ηλ/n) W − (η/m) Σ ∂C_x/∂W, b ← b − (η/m) Σ ∂C_x/∂b.

        Parameters
        ----------
        mini_batch : list of (x, y) tuples
            The m examples of the step.
        eta : float
            Learning rate η.
        lmbda : float
            L2 strength λ.
        n : int
            Size of the training set.
        """
        if self._slow_training():
            return _python_path.update_mini_batch(self, mini_batch, eta, lmbda, n)
        return super().update_mini_batch(mini_batch, eta, lmbda, n)

    def SGD(self, training_data: Data, epochs: int,  # type: ignore[override]
            mini_batch_size: int, eta: float, lmbda: float = 0.0, evaluation_data: Data = None,
            monitor_evaluation_cost: bool = False, monitor_evaluation_accuracy: bool = False,
            monitor_training_cost: bool = False, monitor_training_accuracy: bool = False,
            early_stopping_n: int = 0) -> Tuple[List[float], List[int], List[float], List[int]]:
        """network2.py's ``SGD``: trains, prints its lines, returns its four lists.

        Returns ``(evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy)``, one value per epoch for each flag set (empty
        lists otherwise).  ``training_data`` is shuffled in place each epoch.
        ``early_stopping_n`` (from the Python 3 port): stop once the last
        accuracy monitored (evaluation's, else training's) has not beaten
        its best for that many epochs in a row; 0 never stops.  cbp's
        history of the run is kept on ``net.history``, with the monitored
        lists as ``training_cost``, ``training_accuracy``,
        ``evaluation_cost`` and ``evaluation_accuracy`` (accuracies as
        fractions): ``cbp.plot.plot_history(net.history)`` draws chapter 3's
        overfitting figures.

        Parameters
        ----------
        training_data : list of (x, y) tuples
            Shuffled in place each epoch.
        epochs : int
            Passes over the data.
        mini_batch_size : int
            Examples per step.
        eta : float
            Learning rate η.
        lmbda : float
            L2 strength λ.
        evaluation_data : list of (x, label) tuples, optional
            Data for the evaluation monitors.
        monitor_evaluation_cost, monitor_evaluation_accuracy : bool
            Record (and print) the cost and accuracy on ``evaluation_data``.
        monitor_training_cost, monitor_training_accuracy : bool
            Record (and print) the cost and accuracy on ``training_data``.
        early_stopping_n : int
            Epochs without a better accuracy before stopping; 0 never stops.

        Returns
        -------
        tuple of four lists
            ``(evaluation_cost, evaluation_accuracy, training_cost,
            training_accuracy)``.
        """
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        early_stopping_n = _checks.integer(early_stopping_n, "early_stopping_n", minimum=0)
        # Iterators (a zip) are read once, as the Python 3 port does: the
        # monitors walk the data again each epoch.
        if training_data is not None and not isinstance(training_data, (list, tuple)):
            training_data = _data.as_tuples(training_data, "training_data")
        if evaluation_data is not None and not isinstance(evaluation_data, (list, tuple)):
            evaluation_data = _data.as_tuples(evaluation_data, "evaluation_data")
        if early_stopping_n and not (monitor_evaluation_accuracy or monitor_training_accuracy):
            raise ValueError("early_stopping_n needs an accuracy to watch: set "
                             "monitor_evaluation_accuracy or monitor_training_accuracy")
        if (monitor_evaluation_cost or monitor_evaluation_accuracy) and not evaluation_data:
            raise ValueError("monitor_evaluation_cost and monitor_evaluation_accuracy need "
                             "evaluation_data")
        slow = self._slow_training()
        if slow:
            opt = _python_path.PythonSteps(
                lambda batch, size: self.update_mini_batch(batch, eta, lmbda, size),
                mini_batch_size)
        else:
            opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda)
        flags = (monitor_training_cost, monitor_training_accuracy, monitor_evaluation_cost,
                 monitor_evaluation_accuracy)
        monitors = _network2_monitors.Monitors(training_data, evaluation_data, lmbda, flags,
                             self._total_cost, self._count_correct)
        callbacks: List[training.Callback] = [monitors]
        if early_stopping_n:
            callbacks.append(training.EarlyStopping(
                early_stopping_n, lambda run: monitors.last_accuracy, best=0))
        history = training.train(self, opt, training_data, epochs, callbacks)
        evaluation_cost, evaluation_accuracy = monitors.evaluation_cost, monitors.evaluation_accuracy
        training_cost, training_accuracy = monitors.training_cost, monitors.training_accuracy
        n, n_data = monitors.n, monitors.n_data
        # The four monitored lists, accuracies as fractions, for cbp.plot.plot_history
        # (chapter 3's overfitting figures).
        for key, values, total in (("training_cost", training_cost, None),
                                   ("training_accuracy", training_accuracy, n),
                                   ("evaluation_cost", evaluation_cost, None),
                                   ("evaluation_accuracy", evaluation_accuracy, n_data)):
            if values:
                history[key] = (list(values) if total is None
                                else [v / total if total else float("nan") for v in values])
        self.history = history
        return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    # -- monitoring ---------------------------------------------------------

    def _count_correct(self, X, labels):
        if X.shape[0] == 0:
            return 0
        return int(np.sum(np.argmax(_checks.no_nan(self._predict(X), "a^L"), axis=1) == labels))

    @fast
    def accuracy(self, data: Data, convert: bool = False) -> int:
        """How many inputs in ``data`` the network classifies right (argmax of the output).

        Parameters
        ----------
        data : list of (x, y) tuples
            The examples.
        convert : bool
            False for validation/test data (integer labels), True for
            training data (vector targets, their argmax).

        Returns
        -------
        int
            The number classified right.
        """
        if overridden(self, "feedforward"):
            column = (lambda y: np.argmax(y)) if convert else (lambda y: y)
            return sum(int(np.argmax(self.feedforward(x)) == column(y))
                       for x, y in _data.as_tuples(data, "data"))
        n_in, n_out = self.sizes[0], self.sizes[-1]
        if convert:
            X, Y = _data.cached(self, "targets", data, lambda: _data.training_arrays(
                data, n_in, n_out, self.dtype, name="data"))
            labels = np.argmax(Y, axis=1)
        else:
            X, labels = _data.cached(self, "labels", data, lambda: _data.test_arrays(
                data, n_in, n_out, self.dtype, name="data"))
        return self._count_correct(X, labels)

    @fast
    def total_cost(self, data: Data, lmbda: float,  # type: ignore[override]
                   convert: bool = False) -> float:
        """The mean cost over ``data`` plus the L2 term (λ/2n) Σ‖W‖² (network2.py).

        Parameters
        ----------
        data : list of (x, y) tuples
            The examples.
        lmbda : float
            L2 strength λ.
        convert : bool
            True when ``data`` holds integer labels (validation/test data):
            they are made one-hot targets, as ``vectorized_result`` does.

        Returns
        -------
        float
            The cost.
        """
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        if self._user_cost or overridden(self, "feedforward"):
            return self._total_cost_python(data, lmbda, convert)
        n_in, n_out = self.sizes[0], self.sizes[-1]
        X, Y = _data.cached(self, "targets", data, lambda: _data.training_arrays(
            data, n_in, n_out, self.dtype, name="data"))
        if X.shape[0] == 0:
            raise ValueError("data must hold at least one example")
        return self._total_cost(X, Y, lmbda)

    def _total_cost_python(self, data, lmbda, convert):
        # Through the cost class's fn and the (maybe overridden) feedforward.
        items = _data.as_tuples(data, "data")
        if not items:
            raise ValueError("data must hold at least one example")
        n_out = self.sizes[-1]
        cost = 0.0
        for x, y in items:
            a = self.feedforward(x)
            if convert:
                target = np.zeros((n_out, 1))
                target[_checks.labels(np.asarray(y), "data y", n_out)[0]] = 1.0
                y = target
            cost += self._cost_class.fn(a, y) / len(items)
        cost += 0.5 * (lmbda / len(items)) * sum(np.sum(np.square(w)) for w in self.weights)
        return cost

    def explain(self, x: ArrayLike, y: ArrayLike) -> "Trace":
        """Backpropagation step by step for one example; see :func:`cbp.explain.explain`.

        Explained on a :class:`cbp.Network` with the same weights and cbp's
        name for the cost (the trace knows the two book costs only).

        Parameters
        ----------
        x : array_like
            The input, (n_in, 1) or (n_in,).
        y : array_like or int
            The target vector, or a class label.

        Returns
        -------
        cbp.explain.Trace
            Every intermediate value.
        """
        if self._user_cost:
            raise TypeError(f"explain knows CrossEntropyCost and QuadraticCost; this "
                            f"network's cost is {self._cost_name}")
        twin = model.Network(self.sizes, cost=self.cost_name, dtype=self.dtype, seed=0)
        twin.weights, twin.biases = self.weights, self.biases
        return twin.explain(x, y)

    # -- files --------------------------------------------------------------

    def save(self, filename: PathLike) -> None:
        """Write the network to ``filename`` as network2.py does (JSON).

        {"sizes", "weights", "biases", "cost": the cost class's name}; files
        load in network2.py and in :func:`load`.

        Parameters
        ----------
        filename : str or os.PathLike
            The file to write.
        """
        data = {"sizes": self.sizes,
                "weights": [w.tolist() for w in self.weights],
                "biases": [b.tolist() for b in self.biases],
                "cost": self._cost_name}
        _files.write_atomic(filename, lambda f: f.write(json.dumps(data).encode()), "a network")



def load(filename: PathLike, max_bytes: int = MAX_FILE_BYTES) -> Network:
    """A :class:`Network` from a JSON file written by ``save`` or by network2.py.

    The file is untrusted input: parsing JSON builds a Python object per
    number or bracket, over 30 bytes per byte of text, so a file larger
    than ``max_bytes / 64`` is refused before it is parsed (the default
    reads files up to 16 MiB: a network2 file of some 800,000 weights).  It
    must be JSON with "sizes", "weights", "biases" of matching shapes, finite
    numbers, and a "cost" naming ``QuadraticCost`` or ``CrossEntropyCost``
    (nothing is looked up by name).  Otherwise ``ValueError``.  As in the
    original, the network is first built (its initial draw uses NumPy's
    global generator), then given the file's weights.

    Parameters
    ----------
    filename : str or os.PathLike
        The JSON file.
    max_bytes : int
        The most memory loading may take: files larger than ``max_bytes // 64``
        are refused unread.

    Returns
    -------
    Network
        The network the file describes.
    """
    sizes, cost, layers = _network2_file.read(filename, max_bytes, sorted(_BY_FILE_NAME))
    net = Network(sizes, cost=_BY_FILE_NAME[cost])
    net.weights = layers["weights"]
    net.biases = layers["biases"]
    return net
