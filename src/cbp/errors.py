"""The exceptions and warnings that training raises.

They live here, apart from the optimizers, so that every part of cbp (the
model, the trainers, the command line, the estimators) and a user's own code
can catch them without importing the training machinery.  ``cbp.sgd`` and
``cbp`` re-export them under the same names.
"""

__all__ = ["DivergenceError", "TrainingInterrupted", "TrainingWarning"]


class DivergenceError(ValueError, FloatingPointError):
    """Training produced NaN or ±Inf; the network was left at its last finite state.

    Parameters
    ----------
    message : str
        What diverged, and where.
    epoch, mini_batch : int
        Where it diverged, both counted from 0 (also attributes).
    history : dict or None
        The history of the epochs completed before (also an attribute).
    """

    def __init__(self, message, epoch, mini_batch, history):
        super().__init__(message)
        self.epoch = epoch
        self.mini_batch = mini_batch
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: raised at a mini-batch boundary with ``history``.

    Parameters
    ----------
    history : dict
        The history of the completed epochs (also an attribute).
    """

    def __init__(self, history):
        super().__init__("training interrupted")
        self.history = history


class TrainingWarning(UserWarning):
    """Training that can be seen to be hopeless from the start.

    Issued at most once per kind and per call of ``SGD``/``run``: inputs far
    outside the usual scale, or a training cost that grows, or is no better
    than always answering the mean target, after the first epoch.  Silence it
    with ``warnings.filterwarnings("ignore", category=cbp.TrainingWarning)``.
    """
