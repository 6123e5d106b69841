"""What reading ``net.weights`` and ``net.biases`` gives: read-only layers that write back."""
from collections.abc import Sequence
from typing import Any, List

import numpy as np

from . import _checks

_IN_PLACE = ("net.weights[l] and net.biases[l] are read-only snapshots: writing into one in "
             "place would not change the network. Assign a changed copy instead: "
             "w = net.weights[l].copy(); w[i, j] = ...; net.weights[l] = w")


def _in_place(name):
    """ndarray's in-place method ``name``, refused with :data:`_IN_PLACE` on a read-only array."""
    method = getattr(np.ndarray, name)

    def checked(self, *args, **kwargs):
        if not self.flags.writeable:
            raise ValueError(_IN_PLACE)
        return method(self, *args, **kwargs)
    checked.__name__ = name
    checked.__doc__ = (f"NumPy's ``ndarray.{name}``, refused with a ``ValueError`` that says "
                       "what to do instead on a read-only snapshot.")
    return checked


class Snapshot(np.ndarray):
    """One layer of ``net.weights`` or ``net.biases`` as read: a read-only array.

    It behaves as the ndarray it is; only writing into it in place (item
    assignment, ``+=`` and other ufuncs with it as ``out``) raises a
    ``ValueError`` that says what to do instead of NumPy's bare
    "assignment destination is read-only".  ``.copy()`` is writable.
    """

    def __setitem__(self, key, value):
        if not self.flags.writeable:
            raise ValueError(_IN_PLACE)
        super().__setitem__(key, value)

    # The methods that write into the array in place.
    fill, sort, put, partition = (_in_place("fill"), _in_place("sort"), _in_place("put"),
                                  _in_place("partition"))

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        outs = () if out is None else out
        if any(isinstance(o, Snapshot) and not o.flags.writeable for o in outs):
            raise ValueError(_IN_PLACE)
        # Computed on plain arrays: results are ndarrays, as from any array.
        plain = tuple(x.view(np.ndarray) if isinstance(x, Snapshot) else x for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Snapshot) else o
                                  for o in outs)
        return getattr(ufunc, method)(*plain, **kwargs)

    def __repr__(self):
        return repr(self.view(np.ndarray))


class Layers(Sequence):
    """``net.weights`` or ``net.biases``: a list of read-only arrays that writes back.

    Items are read-only snapshots taken when the list was read (training
    afterwards does not change them).  ``layers[l] = new`` validates ``new``
    as assignment to the whole list does and writes it into the network (and
    into this list); writing into an item (a :class:`Snapshot`) in place
    raises a ``ValueError`` saying to assign ``net.weights[l] = new``
    instead.  The number of layers is fixed: ``append``, ``del`` and the
    like raise ``TypeError``.

    Parameters
    ----------
    write : callable
        ``write(k, value)`` validates ``value`` as layer ``k`` (or, for
        ``k=None``, as the whole list), writes it into the network and
        returns the network's layers as read afterwards.
    which : {0, 1}
        0 for the weights, 1 for the biases.
    items : list of ndarray
        The read-only snapshots, one per layer.
    """

    __slots__ = ("_write", "_which", "_items")

    def __init__(self, write, which, items):
        self._write = write
        self._which = which
        self._items = list(items)

    def __len__(self):
        return len(self._items)

    def __getitem__(self, k):
        return self._items[k]

    def __iter__(self):
        return iter(self._items)

    def __setitem__(self, k, value):
        name = ("weights", "biases")[self._which]
        if isinstance(k, slice):
            items = list(self._items)
            items[k] = value
            if len(items) != len(self._items):
                raise ValueError(f"{name} keeps one array per layer ({len(self._items)}); "
                                 "a slice assignment may not change the length")
            self._items = list(self._write(None, items))
            return
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"{name} indices must be integers; got {type(k).__name__}")
        n = len(self._items)
        if not -n <= k < n:
            raise IndexError(f"{name} index {k} out of range for {n} layers")
        k = int(k) % n
        self._items[k] = self._write(k, value)[k]

    def __add__(self, other):
        # net.weights + net.biases: a plain list, as with the original's lists.
        return list(self) + list(other)

    def __radd__(self, other):
        return list(other) + list(self)

    def _fixed(self, *args, **kwargs):
        name = ("weights", "biases")[self._which]
        raise TypeError(f"{name} has one array per layer; it cannot grow or shrink "
                        f"(assign {name}[l] = new to change a layer)")

    __delitem__ = append = extend = insert = pop = remove = clear = __iadd__ = _fixed

    def __repr__(self):
        return repr(self._items)


class LayerAccess:
    """:class:`cbp.Network`'s layers as network.py names them: sizes, num_layers, weights, biases.

    A part of the network class (the network's own state, ``_layout`` and
    ``_params``, is read here as ``self``'s).
    """

    _layout: Any
    _params: Any
    _lock: Any
    dtype: Any

    @property
    def sizes(self) -> List[int]:
        """Units per layer, input first."""
        return [int(s) for s in self._layout.sizes]

    @sizes.setter
    def sizes(self, value):
        self._fixed_layout("sizes")

    @property
    def num_layers(self) -> int:
        """Number of layers, input included (network.py's ``num_layers``)."""
        return len(self._layout.sizes)

    @num_layers.setter
    def num_layers(self, value):
        self._fixed_layout("num_layers")

    def _fixed_layout(self, name):
        if "_params" not in self.__dict__:
            # network.py's and network2.py's __init__ set these attributes; a
            # subclass copying that __init__ must let cbp's run instead.
            raise AttributeError(
                f"cannot set {name}: cbp's Network sets sizes, num_layers, weights and biases "
                "itself. A subclass's __init__ must first call super().__init__(sizes) (with "
                "network2, super().__init__(sizes, cost=cost)), instead of setting them as the "
                "book's __init__ does; then change what you need (net.weights = ...)")
        raise AttributeError(f"{name} is fixed when the network is built; build a new network "
                             "for other layer sizes")

    def _read(self, which):
        # One copy of the parameter vector per read (a single memcpy), then
        # read-only views into it: cheap, and later training never changes it.
        with self._lock:
            snapshot = self._params.copy().view(Snapshot)
        snapshot.flags.writeable = False
        return Layers(lambda k, value: self._write(which, k, value), which,
                      self._layout.views(snapshot)[which])

    def _write(self, which, k, value):
        """Validate and write layer k (all layers for k=None); the layers as read afterwards."""
        name = ("weights", "biases")[which]
        shapes = self._layout.shapes(which)
        if k is None:
            if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
                raise TypeError(f"{name} must be a list of {len(shapes)} arrays")
            if len(value) != len(shapes):
                raise ValueError(f"{name} must be a list of {len(shapes)} arrays; "
                                 f"got {len(value)}")
            # Everything is validated first: a refused assignment changes nothing.
            checked = [_checks.layer(arr, j, shape, which, self.dtype)
                       for j, (arr, shape) in enumerate(zip(value, shapes))]
            layers = range(len(shapes))
        else:
            checked = [_checks.layer(value, k, shapes[k], which, self.dtype)]
            layers = [k]
        with self.parameters() as (_, *views):
            for j, src in zip(layers, checked):
                views[which][j][...] = src
        return self._read(which)

    @property
    def weights(self):
        """The weight matrices W^l, shape (n_out, n_in), as a :class:`Layers` list.

        Reading takes a read-only snapshot that later training does not
        change; ``net.weights[l] = new`` or ``net.weights = [...]`` validates
        and writes into the network.
        """
        return self._read(0)

    @weights.setter
    def weights(self, value):
        if "_params" not in self.__dict__:
            self._fixed_layout("weights")
        self._write(0, None, value)

    @property
    def biases(self):
        """The bias columns b^l, shape (n_out, 1), as a :class:`Layers` list (see ``weights``)."""
        return self._read(1)

    @biases.setter
    def biases(self, value):
        if "_params" not in self.__dict__:
            self._fixed_layout("biases")
        self._write(1, None, value)
