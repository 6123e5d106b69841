"""Type aliases of the public signatures (for type checkers and readers).

Training and test data come in two forms, a pair of arrays ``(X, Y)`` or
network.py's list of ``(x, y)`` tuples; both are ``Data``.
"""
import os
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Array = npt.NDArray[Any]
PathLike = Union[str, "os.PathLike[str]"]
Data = Any
History = Dict[str, List[Any]]
Progress = Optional[Callable[[int], object]]
DType = Union[str, type, np.dtype]

__all__ = ["ArrayLike", "Array", "PathLike", "Data", "History", "Progress", "DType"]
