"""Activation functions: a small table from names to the core's codes.

Each entry gives f and f' in the notes' notation; the core computes f'(z)
from a = f(z), so the forward pass keeps only the activations.
"""
from typing import NamedTuple

from ._core import ACTIVATION_CODES as _CODES


class Activation(NamedTuple):
    code: int          #: the number ``_core.pyx`` knows it by (its ACTIVATION_CODES)
    formula: str       #: f(z)
    derivative: str    #: f'(z), written in terms of a = f(z)
    hidden: bool       #: allowed in hidden layers


ACTIVATIONS = {
    "sigmoid": Activation(_CODES["sigmoid"], "σ(z) = 1 / (1 + e^(−z))", "σ'(z) = a (1 − a)", True),
    "tanh": Activation(_CODES["tanh"], "tanh(z)", "1 − a²", True),
    "relu": Activation(_CODES["relu"], "max(z, 0)", "1 if z > 0 else 0", True),
    "linear": Activation(_CODES["linear"], "z", "1", True),
    "softmax": Activation(_CODES["softmax"], "e^(z_j) / Σ_k e^(z_k)", "Jacobian a_j (δ_jk − a_k)", False),
    # The log link of a Poisson regression (scikit-learn's loss='poisson').
    "exp": Activation(_CODES["exp"], "e^z", "a", False),
}


def lookup(name, argument, output=False):
    """The table entry for ``name``; ``ValueError`` naming ``argument`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string, one of {sorted(ACTIVATIONS)}; "
                        f"got {type(name).__name__}")
    entry = ACTIVATIONS.get(name.lower())
    if entry is None:
        raise ValueError(f"{argument} must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    if not output and not entry.hidden:
        raise ValueError(f"{argument}={name!r} is only allowed on the output layer "
                         f"(use output_activation={name.lower()!r})")
    return entry
