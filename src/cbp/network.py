"""Drop-in for the book's ``network.py`` (chapter 1).

``import cbp.network as network`` replaces ``import network`` in teaching code:
``network.Network([784, 30, 10])`` builds the same network, and ``SGD``,
``update_mini_batch``, ``backprop``, ``feedforward`` and ``evaluate`` take the
same arguments and return what the original returns.  The model itself is
:class:`cbp.Network` (``cbp/model.py``); this module only adapts it.
"""
from .model import MAX_LAYERS, Network, sigmoid, sigmoid_prime

__all__ = ["Network", "sigmoid", "sigmoid_prime", "MAX_LAYERS"]
