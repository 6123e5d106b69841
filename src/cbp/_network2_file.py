"""network2.py's JSON model file, read as untrusted input (for :func:`cbp.network2.load`)."""
import json
import os

import numpy as np

from . import _files
from .model import MAX_LAYERS

#: Most memory ``load`` may take by default (bytes); see :func:`load`.
MAX_FILE_BYTES = 1 << 30
# Memory json.loads may build per byte of text: ~26 for "[{},{},...]" (a
# 64-byte dict and an 8-byte slot per 3 bytes), ~30 for nested empty lists,
# plus the text and its decoded copy (measured in tests/robustness/test_file_budgets.py).
JSON_EXPANSION = 64


def _refuse_constant(name):
    raise ValueError(f"{name} is not a finite number")


def read(filename, max_bytes, cost_names):
    """(sizes, cost, {"weights": [...], "biases": [...]}) from a network2 JSON file, checked.

    ``cost`` is the file's cost class name, one of ``cost_names``; anything
    else, or a file too large for ``max_bytes``, is a ``ValueError``.
    """
    max_bytes = _files.check_max_bytes(max_bytes)
    try:
        path = os.fspath(filename)
    except TypeError:
        raise TypeError(f"filename must be a path; got {type(filename).__name__}") from None
    # A regular file only: a FIFO or device would block or never end.
    limit = max_bytes // JSON_EXPANSION
    with _files.open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(raw) > limit:
        raise ValueError(f"{path}: {max(size, len(raw))} bytes, larger than max_bytes/"
                         f"{JSON_EXPANSION} = {limit} (parsing JSON takes up to "
                         f"{JSON_EXPANSION} bytes of memory per byte of text); pass a larger "
                         "max_bytes to load it")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not a network2 JSON model file ({exc})") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases", "cost"} <= set(data):
        raise ValueError(f'{path}: a network2 model file is a JSON object with "sizes", '
                         '"weights", "biases" and "cost"')
    cost = data["cost"]
    if not isinstance(cost, str) or cost not in cost_names:
        raise ValueError(f"{path}: cost must be one of {list(cost_names)}; got {cost!r}")
    sizes = data["sizes"]
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_LAYERS + 1
            or not all(type(s) is int and s >= 1 for s in sizes)):
        raise ValueError(f"{path}: sizes must be a list of 2 to {MAX_LAYERS + 1} positive "
                         f"integers; got {str(sizes)[:80]}")
    # Every weight is written in the file: sizes declaring more numbers than
    # it could hold are refused before anything is allocated.
    declared = sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))
    if declared > len(raw) // 2:
        raise ValueError(f"{path}: sizes {sizes} declare {declared} parameters, more than "
                         "the file holds")
    layers = {}
    for key, shapes in (("weights", [(o, i) for i, o in zip(sizes[:-1], sizes[1:])]),
                        ("biases", [(o, 1) for o in sizes[1:]])):
        value = data[key]
        if not isinstance(value, list) or len(value) != len(shapes):
            raise ValueError(f"{path}: {key} must be a list of {len(shapes)} arrays")
        layers[key] = [_layer(path, f"{key}[{k}]", v, shape)
                       for k, (v, shape) in enumerate(zip(value, shapes))]
    return sizes, cost, layers


def _layer(path, name, value, shape):
    try:
        arr = np.array(value)
    except (ValueError, TypeError):
        raise ValueError(f"{path}: {name} is not a rectangular array of numbers") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{path}: {name} must hold numbers; got {arr.dtype.name} values")
    if arr.shape != shape:
        raise ValueError(f"{path}: {name} must have shape {shape} for these sizes; "
                         f"got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: {name} holds NaN or infinite values")
    return arr
