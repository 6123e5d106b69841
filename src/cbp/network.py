"""Drop-in for the book's ``network.py`` (chapter 1).

``import cbp.network as network`` replaces ``import network`` in teaching code:
``network.Network([784, 30, 10])`` builds the same network (the same weights,
drawn from NumPy's global generator as the original draws them), and ``SGD``,
``update_mini_batch``, ``backprop``, ``feedforward``, ``evaluate`` and
``cost_derivative`` take the same arguments and return what the original
returns.  ``SGD`` shuffles the caller's list with ``random.shuffle`` as the
original does, so ``random.seed``/``np.random.seed`` give the original's
printed lines.  A subclass replacing any of these methods (the book's
exercises) has its own methods called.  Replacing this module's ``sigmoid``
and ``sigmoid_prime`` (``network.sigmoid = np.tanh``, another of the book's
exercises) is honoured as in the original: feedforward, backprop, training
and evaluation then run in Python through the module's functions.  The
model is :class:`cbp.Network` (``cbp/model.py``); this module only adapts it.
"""
from typing import Any, List, Optional, Tuple

from . import _python_path, model
from ._python_path import fast, overridden
from ._typing import Array, ArrayLike, Data
from .model import MAX_LAYERS, sigmoid, sigmoid_prime

__all__ = ["Network", "sigmoid", "sigmoid_prime", "MAX_LAYERS"]


class Network(model.Network):
    """network.py's ``Network(sizes)`` over :class:`cbp.Network`.

    Parameters
    ----------
    sizes : list of int
        Units per layer, input first, as in network.py.
    activation, output_activation, cost, init, dtype, seed : optional
        The options of :class:`cbp.Network`; without ``seed`` the random
        streams are the original's.
    """

    # The book's code never warns about hopeless training: neither does its drop-in.
    training_warnings = False

    def replaced_functions(self):
        """This module's ``sigmoid`` and ``sigmoid_prime`` when either was replaced, else None.

        With them replaced, everything that computes an activation runs
        through the Python methods, as in network.py.

        Returns
        -------
        tuple of two callables, or None
        """
        if sigmoid is model.sigmoid and sigmoid_prime is model.sigmoid_prime:
            return None
        return sigmoid, sigmoid_prime

    @fast
    def feedforward(self, a: ArrayLike, num_threads: Optional[int] = None) -> Array:
        """a^L for an input column: a ← sigmoid(W a + b) layer by layer (network.py).

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
    def cost_derivative(self, output_activations: Array, y: Array) -> Array:
        """∂C_x/∂a for the quadratic cost: ``output_activations - y`` (network.py).

        Parameters
        ----------
        output_activations : ndarray
            a^L, a column (n_out, 1).
        y : ndarray
            The target column.

        Returns
        -------
        ndarray
            The difference a^L − y.
        """
        return output_activations - y

    @fast
    def backprop(self, x: ArrayLike, y: ArrayLike) -> Tuple[List[Array], List[Array]]:
        """(nabla_b, nabla_w) for one example, as network.py's ``backprop``.

        With a subclass's own ``cost_derivative``, δ^L = cost_derivative(a^L, y)
        ⊙ σ'(z^L) is computed through it, in Python.

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
        if functions is not None or overridden(self, "cost_derivative"):
            f_prime = (functions or _python_path.elementwise(self.output_activation))[1]
            return _python_path.backprop(
                self, x, y, lambda z, a, target: self.cost_derivative(a, target) * f_prime(z),
                functions)
        return super().backprop(x, y)

    def SGD(self, training_data: Data, epochs: int, mini_batch_size: int,  # type: ignore[override]
            eta: float, test_data: Data = None, **options: Any) -> None:
        """network.py's ``SGD``: trains, prints its lines, returns ``None``.

        ``training_data`` (a list of (x, y) tuples) is shuffled in place each
        epoch, as the original shuffles it.  An empty ``test_data`` counts as
        none, as in the original.  Further keyword options are those of
        :meth:`cbp.Network.SGD`; its history (per-epoch cost, seconds, correct
        answers) is kept on ``net.history``.

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
        test_data : list of (x, label) tuples, optional
            Evaluated after each epoch ("Epoch j: correct / total").
        **options
            Keyword options of :meth:`cbp.Network.SGD`.
        """
        if isinstance(test_data, (list, tuple)) and len(test_data) == 0:
            test_data = None
        self.history = super().SGD(training_data, epochs, mini_batch_size, eta,
                                   test_data=test_data, **options)

    def _call_update_mini_batch(self, batch, eta, lmbda, n):
        # network.py's signature is update_mini_batch(mini_batch, eta).
        if lmbda:
            self.update_mini_batch(batch, eta, lmbda, n)
        else:
            self.update_mini_batch(batch, eta)

