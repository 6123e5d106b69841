"""Cost functions: a small table from names to the core's codes.

``outputs`` lists the output activations a cost may be paired with: the log
costs need 0 < a < 1, the Poisson cost a = e^z.  Where the pair cancels
f'(z^L), the core uses the simplified output error (BP1): δ^L = a − y for
sigmoid + cross_entropy, softmax + log_likelihood and exp + poisson.
"""
from typing import NamedTuple

from ._core import COST_CODES as _CODES

ANY = ("sigmoid", "tanh", "relu", "linear", "softmax", "exp")


class Cost(NamedTuple):
    code: int          #: the number ``_core.pyx`` knows it by (its COST_CODES)
    formula: str       #: C_x
    gradient: str      #: ∇_a C_x
    outputs: tuple     #: output activations it may follow


COSTS = {
    "quadratic": Cost(_CODES["quadratic"], "½ ‖a − y‖²", "a − y", ANY),
    "sse": Cost(_CODES["sse"], "Σ (y − a)²", "2 (a − y)", ANY),
    "cross_entropy": Cost(_CODES["cross_entropy"], "−Σ [y ln a + (1 − y) ln(1 − a)]",
                          "(a − y) / (a (1 − a))", ("sigmoid",)),
    "log_likelihood": Cost(_CODES["log_likelihood"], "−Σ y ln a", "−y / a", ("softmax", "sigmoid")),
    # Half the Poisson deviance (scikit-learn's loss='poisson'); after e^z, δ = a − y.
    "poisson": Cost(_CODES["poisson"], "Σ [y ln(y / a) − y + a]", "1 − y / a", ("exp",)),
}


def lookup(name, output_activation):
    """The table entry for ``name``, checked against the output activation."""
    if not isinstance(name, str):
        raise TypeError(f"cost must be a string, one of {sorted(COSTS)}; "
                        f"got {type(name).__name__}")
    entry = COSTS.get(name.lower())
    if entry is None:
        raise ValueError(f"cost must be one of {sorted(COSTS)}; got {name!r}")
    if output_activation not in entry.outputs:
        raise ValueError(f"cost={name!r} needs an output activation in {list(entry.outputs)}; "
                         f"got output_activation={output_activation!r}")
    return entry
