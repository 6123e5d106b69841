"""The Python path: a network whose subclass replaces some of cbp's fast methods.

The book's exercises replace ``backprop``, ``update_mini_batch``,
``feedforward``, ``cost_derivative``, a cost class or the module's
``sigmoid``.  cbp's own versions of those methods are marked ``@fast``; a
class whose method of that name is not the marked one has replaced it, and
the network then calls the replacement, example by example, in Python.  This
module is the one place that decides so (:func:`overridden`); the equations
that path runs are :mod:`cbp.reference`'s, the lecture's in NumPy.
"""
from typing import Any, Callable, Optional, Tuple, TypeVar

import numpy as np

from . import _checks, _data, reference


_F = TypeVar("_F", bound=Callable[..., Any])


def fast(method: _F) -> _F:
    """Mark ``method`` as cbp's own fast version of a method a subclass may replace.

    Parameters
    ----------
    method : function

    Returns
    -------
    function
        ``method`` itself, marked.
    """
    method.cbp_fast = True  # type: ignore[attr-defined]
    return method


def _is_fast(attribute):
    return getattr(attribute, "cbp_fast", False)


def overridden(net, *names):
    """Whether ``type(net)`` replaces any of ``names`` among cbp's ``@fast`` methods.

    A name counts when the class that defines it first in the method
    resolution order did not mark it ``@fast`` while a class further down
    did.  A drop-in whose module's ``sigmoid`` was replaced (its
    ``replaced_functions()`` gives them) counts every method that computes
    an activation as replaced.

    Parameters
    ----------
    net : Network
    *names : str

    Returns
    -------
    bool
    """
    if net.replaced_functions() is not None and any(n in ACTIVATION_METHODS for n in names):
        return True
    mro = type(net).__mro__
    for name in names:
        for k, klass in enumerate(mro):
            if name in klass.__dict__:
                if not _is_fast(klass.__dict__[name]) and any(
                        _is_fast(later.__dict__.get(name)) for later in mro[k + 1:]):
                    return True
                break
    return False


#: The methods that compute an activation: all run in Python once a drop-in's
#: module-level sigmoid is replaced.
ACTIVATION_METHODS = ("feedforward", "backprop", "update_mini_batch", "evaluate")


def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), elementwise, without overflow warnings.

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ(z), float64, of z's shape.
    """
    return reference.sigmoid(np.asarray(z, dtype=float))


def sigmoid_prime(z):
    """σ'(z) = σ(z) (1 − σ(z)).

    Parameters
    ----------
    z : array_like
        Weighted inputs.

    Returns
    -------
    ndarray
        The values σ'(z), float64, of z's shape.
    """
    return reference.sigmoid_prime(np.asarray(z, dtype=float))


def elementwise(name):
    """(f, f') as NumPy functions of z (:func:`cbp.reference.activation`), for the Python path."""
    if name == "softmax":
        raise TypeError(f"an overridden backprop or cost needs elementwise activations; "
                        f"{name!r} is not one")
    return reference.activation(name)


def _parameters64(net):
    # The Python path computes in float64, whatever the network's dtype.
    with net.parameters() as (flat, _, _):
        return net.layout.views(flat.astype(np.float64))


def feedforward(net, a, f):
    """a^L for one input through ``f`` (a drop-in's own sigmoid), in float64 (the reference's)."""
    a = _checks.array(a, "a", np.float64)
    ws, bs = _parameters64(net)
    return reference.feedforward(ws, bs, a, f)


def backprop(net, x, y, output_error, functions=None):
    """(nabla_b, nabla_w) in float64, with δ^L = output_error(z^L, a^L, y) (the reference's).

    ``functions`` (f, f') replaces the network's activation in every layer (a
    drop-in module's replaced ``sigmoid``/``sigmoid_prime``).
    """
    f, f_prime = functions or elementwise(net.activation)
    f_out = functions[0] if functions else elementwise(net.output_activation)[0]
    ws, bs = _parameters64(net)
    x = _checks.vector(x, "x", net.sizes[0], np.float64)
    return reference.backprop(ws, bs, x, y, f=f, f_prime=f_prime, f_out=f_out,
                              output_error=output_error)


def update_mini_batch(net, mini_batch, eta, lmbda=0.0, n=None):
    """One step through the network's own ``backprop``, one example at a time (the reference's).

    W ← (1 − ηλ/n) W − (η/m) Σ_x ∂C_x/∂W, b ← b − (η/m) Σ_x ∂C_x/∂b, in
    float64.  Every new layer is checked before any is written: a refused
    step changes nothing.
    """
    eta = _checks.real(eta, "eta", positive=True)
    lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
    batch = _data.as_tuples(mini_batch, "mini_batch")
    if not batch:
        raise ValueError("mini_batch must hold at least one example")
    n = len(batch) if n is None else _checks.integer(n, "n", minimum=1)
    ws, bs = _parameters64(net)
    sum_b, sum_w = reference.sum_gradients(batch, net.backprop, bs, ws)
    new_w, new_b = reference.sgd_step(ws, bs, sum_b, sum_w, eta, len(batch), lmbda, n)
    new_w = [_checks.layer(w, k, w.shape, 0, net.dtype) for k, w in enumerate(new_w)]
    new_b = [_checks.layer(b, k, b.shape, 1, net.dtype) for k, b in enumerate(new_b)]
    with net.parameters() as (_, ws, bs):
        for dst, src in zip(ws + bs, new_w + new_b):
            dst[...] = src


def evaluate(net, test_data):
    """``evaluate`` through the network's own ``feedforward``, one example at a time."""
    return sum(int(np.argmax(net.feedforward(x)) == (y if np.ndim(y) == 0 else np.argmax(y)))
               for x, y in _data.as_tuples(test_data, "test_data"))


class PythonSteps:
    """The training loop's stepper for a network whose ``update_mini_batch`` runs in Python.

    Stands where an optimizer stands in :func:`cbp.training.train`: each
    epoch takes the examples (a list of (x, y) tuples, as the caller's
    ``update_mini_batch`` expects them) in the epoch's order and calls
    ``step(mini_batch, n)`` once per mini-batch.  It records no cost.

    Parameters
    ----------
    step : callable
        ``step(mini_batch, n)``: one update on a list of (x, y) tuples, n
        the training-set size.
    mini_batch_size : int >= 1
    shuffle : bool
    """

    records_cost = False

    def __init__(self, step, mini_batch_size, shuffle=True):
        self.step = step
        self.mini_batch_size = _checks.integer(mini_batch_size, "mini_batch_size", minimum=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; got {shuffle!r}")
        self.shuffle = bool(shuffle)

    def prepare(self, net, training_data):
        """(examples, None, None, n): the examples as a list of (x, y) tuples."""
        # A copy in the caller's order: an unseeded epoch shuffles the
        # caller's list in place, and the epoch's order indexes this copy.
        data = list(_data.as_tuples(training_data, "training_data"))
        if not data:
            raise ValueError("training_data must hold at least one example")
        return data, None, None, len(data)

    def train_epoch(self, run, epoch, order, progress=None):
        """One epoch: ``step`` on each mini-batch of the examples taken in ``order``."""
        data, m, n = run.examples, self.mini_batch_size, run.n
        ordered = [data[k] for k in order.tolist()]
        run.ordered = ordered
        for k in range(0, n, m):
            self.step(ordered[k:k + m], n)
        return None


class Overridable:
    """The hooks of :class:`cbp.Network` that the book's drop-ins and their exercises change.

    A part of the network class.
    """

    #: Whether training warns (``TrainingWarning``) about a run that looks
    #: hopeless; the book's drop-ins, as quiet as the book's code, set False.
    training_warnings = True

    def replaced_functions(self) -> Optional[Tuple[Callable[..., Any], Callable[..., Any]]]:
        """The (σ, σ') a drop-in module's user replaced, or ``None`` (always, here).

        The drop-ins return their module's ``sigmoid``/``sigmoid_prime`` when
        either was reassigned: every method computing an activation then
        runs through them, in Python.

        Returns
        -------
        tuple of two callables, or None
        """
        return None

    def _call_update_mini_batch(self, batch, eta, lmbda, n):
        # The drop-ins call the user's method with their original's signature.
        self.update_mini_batch(batch, eta, lmbda, n)
