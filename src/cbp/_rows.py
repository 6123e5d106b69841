"""The network's interface for optimizers, estimators, model files and traces.

Everything outside the model that works on a :class:`cbp.Network` (the
optimizers and the training loop, the scikit-learn estimators, the model
files, the step-by-step trace) goes through these members and nothing else:
the :class:`~cbp.model.Layout`, the parameters under the network's lock, and
whole batches of rows already in the network's form (C-contiguous, its
dtype), checked cheaply but not converted.
"""
import contextlib
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np

from . import _checks, _core, _data, costs
from ._layout import Layout
from ._typing import Array, Data


class RowInterface:
    """The members of :class:`cbp.Network` that other parts of cbp use; a part of the class."""

    # The network's state, set by its constructor.
    _layout: Layout
    _params: Array
    _lock: Any
    _rng: Any
    dtype: Any

    @property
    def layout(self) -> Layout:
        """The parameters' :class:`~cbp.model.Layout`: sizes, offsets, core codes, dtype."""
        return self._layout

    @contextlib.contextmanager
    def parameters(self):
        """Write access to the parameters in place, for readers and optimizers.

        Yields ``(flat, weights, biases)``: the network's one parameter
        vector (all of W, then all of b, layer by layer; see :attr:`layout`)
        and writable views of it shaped as :attr:`weights` and
        :attr:`biases`.  The network is locked meanwhile (re-entrantly), so
        no other thread trains or reads it half-written.  Values written must
        be finite; nothing checks them here.

        Yields
        ------
        (ndarray, list of ndarray, list of ndarray)
            The flat vector, the weight views and the bias views.
        """
        with self._lock:
            ws, bs = self._layout.views(self._params)
            yield self._params, ws, bs

    def forward_rows(self, X: Array, num_threads: Optional[int] = None,
                     with_z: bool = False) -> Union[Array, Tuple[Array, Array]]:
        """a^L for rows X that are already in the network's form; no conversion.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous, of the network's dtype (else ``TypeError`` or
            ``ValueError``); values finite (not checked).
        num_threads : int, optional
            Threads for blocks of 64 rows; the result does not depend on it.
        with_z : bool, default=False
            Also return z^L.

        Returns
        -------
        ndarray of shape (n, n_out), or a pair of them
            The outputs a^L, or (a^L, z^L) with ``with_z``.
        """
        _checks.rows_of(X, "X", int(self._layout.sizes[0]), self.dtype)
        return self._predict(X, num_threads, with_z)

    def gradient_rows(self, X: Array, Y: Array) -> Tuple[Array, float]:
        """Σ_x ∇C_x as one flat vector (laid out as the parameters), and Σ_x C_x.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous rows of the network's dtype, finite (not checked).
        Y : ndarray of shape (n, n_out)
            Targets, in the same form.

        Returns
        -------
        (ndarray, float)
            The summed gradient (``layout.views`` splits it by layer) and the
            summed cost.
        """
        _checks.rows_of(X, "X", int(self._layout.sizes[0]), self.dtype)
        _checks.rows_of(Y, "Y", int(self._layout.sizes[-1]), self.dtype)
        if X.shape[0] != Y.shape[0] or not X.shape[0]:
            raise ValueError(f"X and Y must hold the same number (>= 1) of rows; got "
                             f"{X.shape[0]} and {Y.shape[0]}")
        grad = np.empty(self._layout.n_params, dtype=self.dtype)
        work = np.empty(_core.workspace_size(self._layout.sizes, X.shape[0]), dtype=self.dtype)
        with self._lock:
            total = _core.gradient(self._params, grad, *self._layout.core_args,
                                   *self._layout.codes, X, Y, work)
        return grad, total

    def cost_rows(self, X: Array, Y: Array,
                  outputs: Optional[Tuple[Array, Array]] = None) -> Array:
        """C_x for each row, in float64.

        Parameters
        ----------
        X : ndarray of shape (n, n_in)
            C-contiguous rows of the network's dtype.
        Y : ndarray of shape (n, n_out)
            Their targets, in the same form.
        outputs : (ndarray, ndarray), optional
            ``forward_rows(X, with_z=True)`` when already computed.

        Returns
        -------
        ndarray of shape (n,)
            The cost of each row.
        """
        _checks.rows_of(Y, "Y", int(self._layout.sizes[-1]), self.dtype)
        a, z = self.forward_rows(X, with_z=True) if outputs is None else outputs
        if a.shape != Y.shape or z.shape != Y.shape:
            raise ValueError("outputs must be forward_rows(X, with_z=True) for these rows")
        c = np.empty(X.shape[0], dtype=np.float64)
        _core.costs(z, a, Y, self._layout.codes[1], self._layout.codes[2], c)
        return c

    def epoch_orders(self, training_data: Data, n: int) -> Callable[[], Array]:
        """A function giving each epoch's order of the n training rows (mini-batches in turn).

        A seeded network permutes with its own generator.  Without a seed,
        each epoch is network.py's ``random.shuffle(training_data)``: a list
        of (x, y) tuples is shuffled in place, exactly as the original
        shuffles it, so several networks trained in turn from one list see
        the original's orders; other input (arrays, a ``zip``) is shuffled as
        such a list would be, epoch after epoch, without being touched.

        Parameters
        ----------
        training_data : list of (x, y) tuples, or a pair (X, Y)
            The caller's training data (shuffled in place when a list).
        n : int
            Its number of examples.

        Returns
        -------
        callable
            Called once per epoch, returns that epoch's order: an intp array
            of the row numbers (of the data as first given).
        """
        return _data.epoch_orders(self._rng, training_data, n)

    @property
    def cost_name(self) -> str:
        """cbp's name of the cost (a key of ``cbp.costs.COSTS``), as model files store it."""
        return next(name for name, entry in costs.COSTS.items()
                    if entry.code == self._layout.codes[2])

    def _predict(self, X, num_threads=None, with_z=False):
        """(n, n_out) outputs for checked C-contiguous rows X of the right dtype."""
        # No more threads than 64-row blocks; by default OpenMP's count, which
        # OMP_NUM_THREADS and threadpoolctl limit as they limit NumPy's BLAS.
        blocks = max(1, -(-X.shape[0] // 64))
        num_threads = min(blocks, _core.usable_threads(num_threads or _core.default_threads()))
        out = np.empty((X.shape[0], int(self._layout.sizes[-1])), dtype=self.dtype)
        z = np.empty_like(out)
        layout = self._layout
        work = np.empty(_core.workspace_size(layout.sizes, _core.FEEDFORWARD_CHUNK) * num_threads,
                        dtype=self.dtype)
        with self._lock:
            _core.feedforward(self._params, *layout.core_args, *layout.codes[:2], X, out, z,
                              work, num_threads)
        return (out, z) if with_z else out
