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
                 "dtype", "_spans")
    sizes: Array
    weight_offsets: Array
    bias_offsets: Array
    n_weights: int
    n_params: int
    codes: Tuple[int, int, int]
    dtype: np.dtype
    _spans: Tuple[List[Tuple[int, int, Tuple[int, int]]], List[Tuple[int, int, Tuple[int, int]]]]

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
        # (start, stop, shape) of each W^l and b^l in plain ints: views() runs
        # at every parameters() call, and NumPy scalars would make it slow.
        shapes_w = [(o, i) for i, o in zip(sizes[:-1], sizes[1:])]
        w_starts = [int(v) for v in self.weight_offsets]
        b_starts = [int(v) for v in self.bias_offsets]
        set_(self, "_spans", ([(a, a + o * i, (o, i)) for a, (o, i) in zip(w_starts, shapes_w)],
                              [(a, a + o, (o, 1)) for a, o in zip(b_starts, sizes[1:])]))

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
        return [shape for _, _, shape in self._spans[which]]

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
        w_spans, b_spans = self._spans
        return ([flat[a:b].reshape(shape) for a, b, shape in w_spans],
                [flat[a:b].reshape(shape) for a, b, shape in b_spans])

    def __repr__(self):
        return (f"Layout(sizes={[int(s) for s in self.sizes]}, codes={self.codes}, "
                f"dtype={self.dtype.name!r})")
