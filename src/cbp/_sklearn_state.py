"""The fitted state of cbp's scikit-learn estimators: read, write, copy, export.

``cbp.sklearn`` keeps its training loop; this module holds what touches the
fitted network from outside that loop:

- ``coefs_``/``intercepts_`` in scikit-learn's layout, read as read-only
  arrays (an in-place edit raises instead of being silently lost) in a list
  that writes back (``est.coefs_[0] = W`` and ``est.coefs_ = [...]`` are
  validated, then written into the network);
- a copy of a network through its public constructor and setters;
- the export to scikit-learn's own ``MLPClassifier``/``MLPRegressor``
  (``to_sklearn``), which is what skops, skl2onnx and the like understand.
"""
import numpy as np

from .model import Network

_HOW = ("assign a whole array instead: est.{name}[{k}] = new (or est.{name} = [...]); the "
        "arrays read from est.{name} are copies of the network's parameters")


class FittedArray(np.ndarray):
    """One array of ``coefs_`` or ``intercepts_`` as read: read-only.

    Writing into it in place raises a ``ValueError`` saying how to change
    the network instead; everything else behaves as the ndarray it is, and
    results computed from it are plain ndarrays.
    """

    def __array_finalize__(self, obj):
        self._what = getattr(obj, "_what", None)

    def _refuse(self):
        name, k = self._what or ("coefs_", 0)
        raise ValueError(f"{name}[{k}] is read-only: " + _HOW.format(name=name, k=k))

    def __setitem__(self, key, value):
        if not self.flags.writeable:
            self._refuse()
        super().__setitem__(key, value)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        outs = () if out is None else out
        for o in outs:
            if isinstance(o, FittedArray) and not o.flags.writeable:
                o._refuse()
        plain = tuple(x.view(np.ndarray) if isinstance(x, FittedArray) else x for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, FittedArray) else o
                                  for o in outs)
        return getattr(ufunc, method)(*plain, **kwargs)

    def __reduce__(self):
        # A pickled copy is a plain array (nothing of cbp needed to load it).
        return np.array(self.view(np.ndarray)).__reduce__()

    def __repr__(self):
        return repr(self.view(np.ndarray))


def _fitted(array, name, k):
    out = np.array(array).view(FittedArray)
    out._what = (name, k)
    out.flags.writeable = False
    return out


class ParamList(list):
    """``est.coefs_`` or ``est.intercepts_``: a list that writes assignments back.

    ``params[k] = new`` is checked (shape, finite values) and written into
    the estimator's network; the list's length is fixed.
    """

    def __init__(self, estimator, name, items):
        super().__init__(items)
        self._estimator = estimator
        self._name = name

    def __setitem__(self, k, value):
        if isinstance(k, slice):
            items = list(self)
            items[k] = value
        else:
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
                raise TypeError(f"{self._name} indices must be integers; got {type(k).__name__}")
            if not -len(self) <= k < len(self):
                raise IndexError(f"{self._name} index {k} out of range for {len(self)} layers")
            items = list(self)
            items[int(k)] = value
        setattr(self._estimator, self._name, items)
        super().__setitem__(slice(None), getattr(self._estimator, self._name))

    def _fixed(self, *args, **kwargs):
        raise TypeError(f"{self._name} has one array per layer; it cannot grow or shrink "
                        f"(assign {self._name}[k] = new to change a layer)")

    __delitem__ = append = extend = insert = pop = remove = clear = __iadd__ = _fixed
    sort = reverse = _fixed

    def __reduce__(self):
        return list, (list(self),)


def read(estimator, net, name):
    """``coefs_`` (the network's Wᵀ) or ``intercepts_`` (its b) as a :class:`ParamList`."""
    if name == "coefs_":
        items = [_fitted(w.T, name, k) for k, w in enumerate(net.weights)]
    else:
        items = [_fitted(np.ravel(b), name, k) for k, b in enumerate(net.biases)]
    return ParamList(estimator, name, items)


def write(net, name, value):
    """Check ``value`` (a list of arrays in scikit-learn's layout) and write it into ``net``."""
    sizes = net.sizes
    if name == "coefs_":
        shapes = [(i, o) for i, o in zip(sizes[:-1], sizes[1:])]
    else:
        shapes = [(o,) for o in sizes[1:]]
    if isinstance(value, (str, bytes, np.ndarray)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list of {len(shapes)} arrays, one per layer; got "
                        f"{type(value).__name__}")
    if len(value) != len(shapes):
        raise ValueError(f"{name} must be a list of {len(shapes)} arrays, one per layer; got "
                         f"{len(value)}")
    checked = []
    for k, (a, shape) in enumerate(zip(value, shapes)):
        try:
            a = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}[{k}] must be an array of numbers: {exc}") from None
        if a.shape != shape:
            raise ValueError(f"{name}[{k}] must have shape {shape}; got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name}[{k}] holds NaN or infinite values")
        checked.append(a)
    if name == "coefs_":
        net.weights = [a.T for a in checked]
    else:
        net.biases = checked


def copy_network(net):
    """A copy of ``net`` through its public constructor and setters: same layout, same values."""
    twin = Network(net.sizes, activation=net.activation, output_activation=net.output_activation,
                   cost=net.cost, dtype=net.dtype)
    twin.weights = net.weights
    twin.biases = net.biases
    return twin


def parameters(net):
    """The network's weights and biases as two plain lists of arrays (picklable by anything)."""
    return [np.array(w) for w in net.weights], [np.array(b) for b in net.biases]


def to_sklearn(net, sklearn_class, params, fitted):
    """scikit-learn's ``sklearn_class`` fitted with ``net``'s parameters and ``fitted`` attributes.

    ``params`` are the constructor's parameters (without cbp's own),
    ``fitted`` the other fitted attributes by name (copied).  The result
    predicts what the cbp estimator predicts; optimizer state is not
    carried (a further ``partial_fit`` or warm-started ``fit`` in
    scikit-learn starts a new optimizer).
    """
    import copy

    dtype = np.dtype(net.dtype)
    twin = sklearn_class(**params)
    twin.coefs_ = [np.array(w.T, dtype=dtype) for w in net.weights]
    twin.intercepts_ = [np.array(np.ravel(b), dtype=dtype) for b in net.biases]
    for name, value in fitted.items():
        setattr(twin, name, copy.deepcopy(value))
    return twin
