"""Copies and pickles of a network: its state as plain data, and back, checked."""
import threading

import numpy as np

from . import _checks, activations, costs
from ._layout import Layout


class Pickling:
    """:class:`cbp.Network`'s ``__getstate__``, ``__setstate__`` and ``__copy__``.

    A part of the network class (its state is read and rebuilt here as ``self``'s).
    """

    # What __getstate__ writes out itself; the rest of __dict__ (a drop-in's
    # cost class, a history) travels as it is.
    _STATE = frozenset(("dtype", "activation", "output_activation", "cost", "init", "_layout",
                        "_rng", "_lock", "_params"))
    _BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")

    def __getstate__(self):
        """The network as plain data: description, a copy of the parameters, the generator's state.

        For ``pickle`` and :mod:`copy` (to ship a network to another process,
        e.g. with joblib or Dask); model files are :meth:`save`'s ``.npz``.
        Unpickling runs code the pickle names: unpickle only networks from a
        trusted source; loading a model file runs nothing.
        """
        with self._lock:
            params = self._params.copy()
            rng = None if self._rng is None else self._rng.bit_generator.state
        return {"format": "cbp.Network", "version": 1, "sizes": self.sizes,
                "activation": self.activation, "output_activation": self.output_activation,
                "cost": next(name for name, entry in costs.COSTS.items()
                             if entry.code == self._layout.codes[2]),
                "init": self.init, "dtype": np.dtype(self.dtype).name, "params": params,
                "rng": rng,
                "extra": {k: v for k, v in self.__dict__.items() if k not in self._STATE}}

    def __setstate__(self, state):
        """Rebuild from :meth:`__getstate__`'s data, checked: a bad state raises ``ValueError``."""
        try:
            self._restore(state)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"not a valid cbp.Network state: {exc}") from None

    def _restore(self, state):
        if not isinstance(state, dict) or state.get("format") != "cbp.Network":
            raise ValueError("expected the dict written by Network.__getstate__")
        if state.get("version") != 1:
            raise ValueError(f"unknown version {state.get('version')!r}")
        sizes = _checks.layer_sizes(state["sizes"])
        hidden = activations.lookup(state["activation"], "activation")
        output = activations.lookup(state["output_activation"], "output_activation",
                                    output=True)
        cost = costs.lookup(state["cost"], state["output_activation"].lower())
        init = state["init"]
        if init not in _checks.INITS:
            raise ValueError(f"init must be one of {list(_checks.INITS)}; got {init!r}")
        dtype = _checks.dtype(state["dtype"])
        rng = state["rng"]
        if rng is not None:
            name = rng.get("bit_generator") if isinstance(rng, dict) else None
            if name not in self._BIT_GENERATORS:
                raise ValueError(f"rng must be the state of one of NumPy's bit generators "
                                 f"{list(self._BIT_GENERATORS)}; got {name!r}")
            bit_generator = getattr(np.random, name)()
            bit_generator.state = rng
            rng = np.random.Generator(bit_generator)
        extra = state["extra"]
        if not isinstance(extra, dict) or any(not isinstance(k, str) or k in self._STATE
                                              for k in extra):
            raise ValueError("extra must be a dict of attributes other than the network's own")
        layout = Layout(sizes, (hidden.code, output.code, cost.code), dtype)
        params = state["params"]
        if (not isinstance(params, np.ndarray) or params.dtype != dtype
                or params.shape != (layout.n_params,)):
            raise ValueError(f"params must be a {np.dtype(dtype).name} vector of "
                             f"{layout.n_params} values for sizes {sizes}")
        if not np.isfinite(params).all():
            raise ValueError("params must be finite")
        self.dtype = dtype
        self.activation = state["activation"].lower()
        self.output_activation = state["output_activation"].lower()
        self.init = init
        if not isinstance(getattr(type(self), "cost", None), property):
            self.cost = state["cost"].lower()
        self._layout = layout
        self._rng = rng
        self._lock = threading.RLock()
        self._params = np.array(params, dtype=dtype, order="C", copy=True)
        self.__dict__.update(extra)

    def __copy__(self):
        """An independent network: ``copy.copy`` copies the parameters too (as ``deepcopy``)."""
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        return new
