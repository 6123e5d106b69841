r"""Mini-batch stochastic gradient descent, as an optimizer object.

The update for each mini-batch of m examples, out of n in the training set
(note 001, with network2.py's L2 term and optional momentum μ):

.. math::

   W^l &\leftarrow \Bigl(1 - \frac{\eta\lambda}{n}\Bigr) W^l
        - \frac{\eta}{m} \sum_x \delta^l_x \, (a^{l-1}_x)^T \\
   b^l &\leftarrow b^l - \frac{\eta}{m} \sum_x \delta^l_x

or, with momentum μ > 0, for every parameter θ:

.. math::

   v &\leftarrow \mu v - \eta \Bigl(\frac{1}{m} \sum_x \nabla C_x
        + \frac{\lambda}{n} W\Bigr) \\
   \theta &\leftarrow \theta + v

Every step rule shares the base class :class:`cbp.optimizer.Optimizer`: an optimizer is its
settings, its state per network, and one call to the core per run of
mini-batches.  Each optimizer class names its rule in the core
(:data:`cbp.optimizer.RULES`), its hyper-parameters and the size of its per-network state;
the core's ``train_epoch`` applies it.  The epochs themselves are
:func:`cbp.training.train`'s: it hands the optimizer one epoch at a time,
which runs it as a few runs of mini-batches; Python only sees the boundaries
of those runs, where it checks for divergence and reports progress.
"""
from typing import List, Optional

import numpy as np

from . import _checks, _data, _python_path, model, training
from ._typing import Array
from .errors import DivergenceError, TrainingInterrupted, TrainingWarning
from .optimizer import RULES, Optimizer, Rule, flag  # noqa: F401
# cbp.sgd's names from before the loop and the base class had modules of their own.
from .training import INPUT_SCALE, JUDGED_BATCHES, SPEED_MEASURES, SPEED_ROWS  # noqa: F401

__all__ = ["SGD", "Adam", "DivergenceError", "TrainingInterrupted", "TrainingWarning"]

class SGD(Optimizer):
    """Stochastic gradient descent on a :class:`cbp.Network`.

    Parameters
    ----------
    eta : float > 0
        Learning rate η.
    mini_batch_size : int >= 1
        m; 1 is online learning, len(data) is batch gradient descent.
    lmbda : float >= 0
        L2 strength λ (weights decay by 1 − ηλ/n per step).
    momentum : float in [0, 1)
        μ; 0 is plain SGD.
    shuffle : bool
        Reshuffle the training data at each epoch (with the network's generator).
    nesterov : bool
        Nesterov's momentum as scikit-learn applies it:
        v ← μv − ηg, θ ← θ + μv − ηg (no effect when μ = 0).
    batch_l2 : float >= 0
        scikit-learn's ``alpha``: (α/m) W joins each mini-batch's gradient.
    num_threads : int >= 1, optional
        Most threads one step may use (plain SGD and momentum); default
        OpenMP's count, so ``OMP_NUM_THREADS`` and
        ``threadpoolctl.threadpool_limits`` limit it.  Small networks use
        one thread where more would not pay.  The weights are bit-identical
        for every thread count.
    """

    def __init__(self, eta: float, mini_batch_size: int = 10, lmbda: float = 0.0,
                 momentum: float = 0.0, shuffle: bool = True, *, nesterov: bool = False,
                 batch_l2: float = 0.0, num_threads: Optional[int] = None) -> None:
        super().__init__(eta, mini_batch_size, lmbda, shuffle, batch_l2)
        if num_threads is not None:
            num_threads = _checks.integer(num_threads, "num_threads", minimum=1)
        self.num_threads = num_threads
        self.momentum = _checks.real(momentum, "momentum", minimum=0.0, below=1.0)
        self.nesterov = flag(nesterov, "nesterov")

    def rule_name(self) -> str:
        """'sgd', or with momentum 'momentum' or 'nesterov'.

        Returns
        -------
        str
            A key of :data:`cbp.optimizer.RULES`.
        """
        if not self.momentum:
            return "sgd"
        return "nesterov" if self.nesterov else "momentum"

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, default in
                        (("nesterov", False), ("batch_l2", 0.0), ("num_threads", None))
                        if getattr(self, k) != default)
        return (f"SGD(eta={self.eta}, mini_batch_size={self.mini_batch_size}, "
                f"lmbda={self.lmbda}, momentum={self.momentum}, shuffle={self.shuffle}{extra})")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) on a :class:`cbp.Network`, as scikit-learn applies it.

    With g the mini-batch's mean gradient (plus the L2 terms) and t the steps
    taken so far on this network:
    m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², and
    θ ← θ − η √(1 − β2^t) / (1 − β1^t) · m / (√v + ε).

    Parameters
    ----------
    eta : float > 0
        Learning rate η (scikit-learn's ``learning_rate_init``).
    beta1, beta2 : float in [0, 1)
        Decay rates of the first and second moment estimates.
    epsilon : float > 0
        Added to √v, for numerical stability.
    mini_batch_size, lmbda, shuffle, batch_l2 : optional
        As :class:`SGD`.
    """

    def __init__(self, eta: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, mini_batch_size: int = 10, lmbda: float = 0.0,
                 shuffle: bool = True, *, batch_l2: float = 0.0) -> None:
        super().__init__(eta, mini_batch_size, lmbda, shuffle, batch_l2)
        self.beta1 = _checks.real(beta1, "beta1", minimum=0.0, below=1.0)
        self.beta2 = _checks.real(beta2, "beta2", minimum=0.0, below=1.0)
        self.epsilon = _checks.real(epsilon, "epsilon", positive=True)

    def rule_name(self) -> str:
        """'adam'.

        Returns
        -------
        str
            A key of :data:`cbp.optimizer.RULES`.
        """
        return "adam"

    def rule_args(self, steps: int) -> Array:
        """``[batch_l2, beta1, beta2, epsilon, steps]`` for the core.

        Parameters
        ----------
        steps : int
            Steps taken so far on the network.

        Returns
        -------
        ndarray of 5 float64
            The rule's arguments.
        """
        return np.array([self.batch_l2, self.beta1, self.beta2, self.epsilon, steps],
                        dtype=np.float64)

    def __repr__(self):
        return (f"Adam(eta={self.eta}, beta1={self.beta1}, beta2={self.beta2}, "
                f"epsilon={self.epsilon}, mini_batch_size={self.mini_batch_size}, "
                f"lmbda={self.lmbda}, shuffle={self.shuffle}, batch_l2={self.batch_l2})")


# -- what Network's book-style methods carry out (see cbp.model.implements) ------


@model.implements("step")
def _network_step(net, X, Y, n, eta, lmbda, num_threads):
    opt = SGD(eta, mini_batch_size=X.shape[0], lmbda=lmbda, num_threads=num_threads)
    m = X.shape[0]
    with net.parameters():
        opt.run_batches(net, X, Y, np.arange(m, dtype=np.intp), m, 0, 1, n, opt.buffers(net, m),
                        epoch=0)


@model.implements("SGD")
def _network_sgd(net, training_data, epochs, mini_batch_size, eta, test_data, lmbda, momentum,
                 shuffle, verbose, progress, monitor_learning_speed, num_threads, step=None,
                 evaluate=None):
    """Network.SGD: the core's steps, or ``step`` (a subclass's own update) in Python.

    ``evaluate``: the subclass's own, which then evaluates the test data.
    """
    if step is None and evaluate is None:
        opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda, momentum=momentum,
                  shuffle=shuffle, num_threads=num_threads)
        return opt.run(net, training_data, epochs, test_data=test_data, verbose=verbose,
                       progress=progress, monitor_learning_speed=monitor_learning_speed)
    callbacks: List[training.Callback] = []
    if step is None:
        # Training in the core; evaluation through the subclass's methods.
        opt = SGD(eta, mini_batch_size=mini_batch_size, lmbda=lmbda, momentum=momentum,
                  shuffle=shuffle, num_threads=num_threads)
        measure = training.speed_measure(monitor_learning_speed)
        if measure:
            callbacks.append(training.LearningSpeed(measure))
        if net.training_warnings:
            callbacks.append(training.Watch())
    else:
        if momentum or progress is not None or monitor_learning_speed:
            raise TypeError("momentum, progress and monitor_learning_speed need cbp's own "
                            "update_mini_batch and backprop; this subclass replaces them")
        eta = _checks.real(eta, "eta", positive=True)
        lmbda = _checks.real(lmbda, "lmbda", minimum=0.0)
        opt = _python_path.PythonSteps(lambda batch, n: step(batch, eta, lmbda, n),
                                       mini_batch_size, shuffle)
    if step is not None and evaluate is None:
        evaluate = net.evaluate     # as the book's loop: the number right, no test cost
    n_test = None
    if test_data is not None:
        if evaluate is None:
            test = _data.examples(test_data, net.sizes[0], net.sizes[-1], net.dtype,
                                  "test_data", want_labels=True)
            callbacks.append(training.Monitor(test))
            n_test = test[0].shape[0]
        else:
            callbacks.append(training.Evaluation(evaluate, test_data))
            n_test = callbacks[-1].n_test
    if verbose:
        callbacks.append(training.Printer(n_test))
    return training.train(net, opt, training_data, epochs, callbacks, progress)
