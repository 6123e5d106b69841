"""A network's layout: where each layer's weights and biases sit in its one parameter vector.

The layout is a small value object: what an optimizer, an estimator, the
model file writer or the step-by-step explainer needs to know about a
network's shape, and nothing that changes while it trains.
"""
from typing import List, Tuple

import numpy as np

from ._typing import Array


def _frozen(values):
    arr = np.asarray(values, dtype=np.intp)
    arr.flags.writeable = False
    return arr


class Layout:
    """The shape of a network's parameters: layer sizes, offsets, codes and dtype.

    One flat parameter vector holds all the weights first (L2 decay applies
    to them alone), layer by layer, each W^l row-major (n_l, n_{l-1}), then
    all the biases.  Instances are immutable.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first (already checked).
    codes : tuple of int
        The compiled core's codes of the hidden activation, the output
        activation and the cost.
    dtype : numpy.dtype
        The parameters' dtype.

    Attributes
    ----------
    sizes : ndarray of intp
        Units per layer, input first (read-only).
    weight_offsets, bias_offsets : ndarray of intp
        Where W^l and b^l start in the flat vector, one per layer after the
        input (read-only).
    n_weights, n_params : int
        How many weights, and how many parameters in all.
    codes : tuple of int
        (hidden activation, output activation, cost), the core's codes.
    dtype : numpy.dtype
        The parameters' dtype.
    """

    __slots__ = ("sizes", "weight_offsets", "bias_offsets", "n_weights", "n_params", "codes",
                 "dtype")
    sizes: Array
    weight_offsets: Array
    bias_offsets: Array
    n_weights: int
    n_params: int
    codes: Tuple[int, int, int]
    dtype: np.dtype

    def __init__(self, sizes, codes: Tuple[int, int, int], dtype) -> None:
        sizes = [int(s) for s in sizes]
        w_counts = [o * i for i, o in zip(sizes[:-1], sizes[1:])]
        n_weights = int(sum(w_counts))
        set_ = object.__setattr__
        set_(self, "sizes", _frozen(sizes))
        set_(self, "weight_offsets", _frozen(np.concatenate([[0], np.cumsum(w_counts)[:-1]])))
        set_(self, "bias_offsets",
             _frozen(n_weights + np.concatenate([[0], np.cumsum(sizes[1:])[:-1]])))
        set_(self, "n_weights", n_weights)
        set_(self, "n_params", n_weights + int(sum(sizes[1:])))
        set_(self, "codes", (int(codes[0]), int(codes[1]), int(codes[2])))
        set_(self, "dtype", np.dtype(dtype))

    def __setattr__(self, name, value):
        raise AttributeError("a Layout is immutable; build another")

    def with_codes(self, codes: Tuple[int, int, int]) -> "Layout":
        """The same layout with other activation and cost codes.

        Parameters
        ----------
        codes : tuple of int
            (hidden activation, output activation, cost).

        Returns
        -------
        Layout
        """
        return Layout(self.sizes, codes, self.dtype)

    @property
    def core_args(self) -> Tuple[Array, Array, Array]:
        """``(sizes, weight_offsets, bias_offsets)``, as the core's functions take them."""
        return self.sizes, self.weight_offsets, self.bias_offsets

    def shapes(self, which: int) -> List[Tuple[int, int]]:
        """The shapes of the weight matrices (``which=0``) or bias columns (``which=1``).

        Parameters
        ----------
        which : {0, 1}

        Returns
        -------
        list of tuple
        """
        s = [int(v) for v in self.sizes]
        return ([(o, i) for i, o in zip(s[:-1], s[1:])] if which == 0
                else [(o, 1) for o in s[1:]])

    def views(self, flat: Array) -> Tuple[List[Array], List[Array]]:
        """(weights, biases) as views into a flat parameter vector (or gradient).

        Parameters
        ----------
        flat : ndarray of shape (n_params,)

        Returns
        -------
        (list of ndarray, list of ndarray)
            W^l shaped (n_l, n_{l-1}) and b^l shaped (n_l, 1), layer by layer.
        """
        s = self.sizes
        ws = [flat[w:w + s[l + 1] * s[l]].reshape(s[l + 1], s[l])
              for l, w in enumerate(self.weight_offsets)]
        bs = [flat[b:b + s[l + 1]].reshape(s[l + 1], 1) for l, b in enumerate(self.bias_offsets)]
        return ws, bs

    def __repr__(self):
        return (f"Layout(sizes={[int(s) for s in self.sizes]}, codes={self.codes}, "
                f"dtype={self.dtype.name!r})")
