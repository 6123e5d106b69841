"""The values the restricted pickle reader builds, and NumPy's array reconstruction.

:mod:`._pickle` walks the opcodes; this module says what the values on its
stack are (tokens for the names a file refers to, strings from the stream,
dtypes and arrays awaiting their state) and turns the few calls and states
NumPy's array pickles contain into real arrays, made here with
:func:`numpy.frombuffer` from bytes the reader read.  Nothing a file names is
ever imported or called.
"""

import pickletools
import sys

import numpy as np

_OPNAMES = {op.code.encode("latin-1"): op.name for op in pickletools.opcodes}

# Module and attribute names, dtype codes: short texts only.
_MAX_NAME = 256
# Strings up to this size are read as bytes objects; larger ones (array
# data) into an uninitialised NumPy buffer filled chunk by chunk.
_SMALL = 4096
_MAX_NDIM = 32
# The final value: tuples and lists of arrays, a few levels deep.
_MAX_DEPTH = 8

# The only element types an MNIST pickle needs (float images, integer
# labels); no object, string, structured or void types.
_DTYPE_CODES = frozenset({"f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"})

_RECONSTRUCT = "numpy _reconstruct"
_NDARRAY = "numpy.ndarray"
_DTYPE = "numpy.dtype"
_FROMBUFFER = "numpy _frombuffer"
_ENCODE = "_codecs.encode"
# NumPy 1 (so network.py's file) wrote numpy.core, NumPy 2 writes numpy._core.
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): _ENCODE,
}


class _Global:
    """A name the stream referred to: a token, not the object it names."""

    __slots__ = ("what",)

    def __init__(self, what):
        self.what = what


class _Raw:
    """Bytes from the stream: ``data`` is bytes or a uint8 array.

    ``text`` marks a Python 2 ``str`` (SHORT_BINSTRING, BINSTRING), which is
    text or bytes depending on the use, as ``encoding='latin1'`` reads it.
    """

    __slots__ = ("data", "text")

    def __init__(self, data, text):
        self.data = data
        self.text = text


class _Dtype:
    """``numpy.dtype(code, ...)`` awaiting its state (BUILD); then ``dtype`` is set."""

    __slots__ = ("code", "dtype")

    def __init__(self, code):
        self.code = code
        self.dtype = None


class _Array:
    """``_reconstruct(ndarray, (0,), b'b')`` awaiting its state; then ``array`` is set."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None


def _refuse(op, pos, why):
    name = _OPNAMES.get(op, f"unknown opcode 0x{op[0]:02x}")
    raise ValueError(f"offset {pos}: {name}: {why}")


_NAMES = ((_Raw, "a string"), (_Dtype, "a dtype"), (_Array, "an array"), (np.ndarray, "an array"))


def _describe(value):
    """A short name for a stack value, for messages (never its repr: it may be huge)."""
    if isinstance(value, _Global):
        return value.what
    for kind, name in _NAMES:
        if isinstance(value, kind):
            return name
    if value is None or isinstance(value, bool):
        return repr(value)
    return f"a {type(value).__name__}"


def _text(value):
    """``value`` as a short str if it is text (str or a Python 2 str), else None."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_NAME else None
    if isinstance(value, _Raw) and value.text and isinstance(value.data, bytes):
        return value.data.decode("latin-1")
    return None


def _is_small_int(value, *allowed):
    return type(value) in (int, bool) and value in allowed


def _is_zero_shape(value):
    return isinstance(value, tuple) and len(value) == 1 and _is_small_int(value[0], 0)


def _is_b(value):
    """True for the typecode ``'b'`` NumPy passes to _reconstruct, as text or bytes."""
    if isinstance(value, str):
        return value == "b"
    return isinstance(value, _Raw) and isinstance(value.data, bytes) and value.data == b"b"


def _is_long(value):
    """True for a string or byte string longer than _SMALL (array data)."""
    if isinstance(value, str):
        return len(value) > _SMALL
    return isinstance(value, _Raw) and len(value.data) > _SMALL


def _raw_bytes(value):
    """The buffer of array data: bytes/bytearray-like from the stream, or None."""
    if isinstance(value, _Raw):
        return value.data
    return None


# --------------------------------------------------------------------------
# BUILD: the state of a dtype or an array


def _make_dtype(spec, state, pos):
    """Apply a dtype's BUILD state, accepting only a plain numeric type."""
    if spec.dtype is not None:
        raise ValueError(f"offset {pos}: BUILD: this dtype already has its state")
    # Version 3 is (3, order, subarray, names, fields, elsize, alignment,
    # flags); version 4 appends metadata.
    if not (isinstance(state, tuple) and len(state) in (8, 9)
            and _is_small_int(state[0], len(state) - 5)):
        raise ValueError(f"offset {pos}: BUILD: a dtype's state must be NumPy's tuple of version 3 or 4")
    order = _text(state[1])
    rest = state[2:]
    expected = (None, None, None, -1, -1, 0) + ((None,) if len(state) == 9 else ())
    if (order not in ("<", ">", "|", "=")
            or any(type(a) not in (type(None), int) or a != b for a, b in zip(rest, expected))):
        raise ValueError(
            f"offset {pos}: BUILD: dtype state of a structured, sub-array, object or "
            "otherwise unusual type; only plain numeric types are read")
    if order == "=":
        order = "<" if sys.byteorder == "little" else ">"
    itemsize = int(spec.code[1:])
    if order == "|" and itemsize != 1:
        raise ValueError(f"offset {pos}: BUILD: dtype {spec.code} needs a byte order, got '|'")
    spec.dtype = np.dtype(("|" if itemsize == 1 else order) + spec.code)


def _check_shape(shape, pos, op):
    if not (isinstance(shape, tuple) and len(shape) <= _MAX_NDIM
            and all(type(d) is int and d >= 0 for d in shape)):
        _refuse(op, pos, f"an array shape must be a tuple of at most {_MAX_NDIM} non-negative ints")
    count = 1
    for d in shape:
        count *= d
    return count


def _array_from(reader, raw, dtype, shape, fortran, pos, op):
    count = _check_shape(shape, pos, op)
    nbytes = count * dtype.itemsize
    if len(raw) != nbytes:
        _refuse(op, pos, f"an array of shape {shape} and dtype {dtype.str} needs {nbytes} bytes "
                f"of data; the file gives {len(raw)}")
    if count == 0:
        return np.empty(shape, dtype=dtype)
    flat = np.frombuffer(raw, dtype=dtype, count=count)
    if not flat.flags.writeable:  # data held in a small bytes object
        reader.charge(nbytes, "a copy of array data")
        flat = flat.copy()
    return flat.reshape(shape, order="F" if fortran else "C")


def _build_array(reader, pending, state, pos, op):
    if pending.array is not None:
        _refuse(op, pos, "this array already has its state")
    if not (isinstance(state, tuple) and len(state) == 5 and _is_small_int(state[0], 1)):
        _refuse(op, pos, "an array's state must be NumPy's (1, shape, dtype, fortran, data)")
    _, shape, spec, fortran, data = state
    if not (isinstance(spec, _Dtype) and spec.dtype is not None):
        _refuse(op, pos, "an array's dtype must be a numeric dtype built earlier in the file")
    if not _is_small_int(fortran, 0, 1):
        _refuse(op, pos, "an array's Fortran flag must be a bool")
    raw = _raw_bytes(data)
    if raw is None:
        # A list here is how object arrays are pickled.
        _refuse(op, pos, f"array data must be a byte string, got {_describe(data)} "
                "(object arrays are never read)")
    pending.array = _array_from(reader, raw, spec.dtype, shape, bool(fortran), pos, op)


def _build(reader, target, state, pos, op):
    """BUILD on ``target``: only a dtype or an array this reader made, once."""
    if isinstance(target, _Dtype):
        _make_dtype(target, state, pos)
    elif isinstance(target, _Array):
        _build_array(reader, target, state, pos, op)
    else:
        _refuse(op, pos, f"refusing to set the state of {_describe(target)}: only arrays and "
                "dtypes this reader made itself get a state, once")


# --------------------------------------------------------------------------
# REDUCE: the calls NumPy's array pickles make, one function per callee


def _call_dtype(reader, args, pos, op):
    if not (len(args) == 3 and _is_small_int(args[1], 0) and _is_small_int(args[2], 1)):
        _refuse(op, pos, "numpy.dtype takes (code, False, True) in an array pickle")
    code = _text(args[0])
    if code not in _DTYPE_CODES:
        shown = repr(code) if code is not None else _describe(args[0])
        _refuse(op, pos, f"dtype {shown} refused; only {', '.join(sorted(_DTYPE_CODES))} are read")
    return _Dtype(code)


def _call_reconstruct(reader, args, pos, op):
    if not (len(args) == 3 and isinstance(args[0], _Global) and args[0].what == _NDARRAY
            and _is_zero_shape(args[1]) and _is_b(args[2])):
        _refuse(op, pos, "_reconstruct is read only as _reconstruct(numpy.ndarray, (0,), b'b')")
    return _Array()


def _call_frombuffer(reader, args, pos, op):
    if not (len(args) == 4 and isinstance(args[1], _Dtype) and args[1].dtype is not None
            and _text(args[3]) in ("C", "F") and _raw_bytes(args[0]) is not None):
        _refuse(op, pos, "_frombuffer is read only as _frombuffer(data, dtype, shape, 'C' or 'F')")
    return _array_from(reader, _raw_bytes(args[0]), args[1].dtype, args[2],
                       _text(args[3]) == "F", pos, op)


def _call_encode(reader, args, pos, op):
    if not (len(args) == 2 and isinstance(args[0], str) and _text(args[1]) in ("latin1", "latin-1")):
        _refuse(op, pos, "_codecs.encode is read only as encode(text, 'latin1')")
    reader.charge(len(args[0]), "the bytes _codecs.encode makes")
    try:
        data = bytearray(args[0], "latin-1")
    except UnicodeEncodeError:
        data = None
    if data is None:  # refused outside the except: the message is the whole story
        _refuse(op, pos, "the text has characters outside latin-1")
    return _Raw(np.frombuffer(data, dtype=np.uint8) if len(data) > _SMALL else bytes(data),
                text=False)


_CALLS = {
    _DTYPE: _call_dtype,
    _RECONSTRUCT: _call_reconstruct,
    _FROMBUFFER: _call_frombuffer,
    _ENCODE: _call_encode,
}


def _call(reader, func, args, pos, op):
    """The value of ``func(*args)`` for the few calls NumPy's pickles make."""
    if not isinstance(args, tuple):
        _refuse(op, pos, "the arguments must be a tuple")
    call = _CALLS.get(func.what) if isinstance(func, _Global) else None
    if call is None:
        _refuse(op, pos, f"refusing to call {_describe(func)}: only NumPy's array reconstruction is read")
    return call(reader, args, pos, op)


# --------------------------------------------------------------------------
# STOP: the value handed back


def _resolve(value, pos, done, depth=0):
    """The final value with each array token replaced by its array."""
    if isinstance(value, _Array):
        if value.array is None:
            raise ValueError(f"offset {pos}: STOP: an array never received its state (BUILD)")
        return value.array
    if isinstance(value, (tuple, list)):
        return _resolve_container(value, pos, done, depth)
    if isinstance(value, _Raw):
        if len(value.data) > _SMALL:
            raise ValueError(f"offset {pos}: STOP: the value holds a long byte string, not arrays")
        return bytes(value.data)
    if isinstance(value, (_Global, _Dtype)):
        raise ValueError(f"offset {pos}: STOP: the value holds {_describe(value)}, not data")
    return value


def _resolve_container(value, pos, done, depth):
    # Each container once (the memo lets a file share one many times);
    # the depth limit also ends lists that contain themselves.
    if id(value) in done:
        return done[id(value)]
    if depth > _MAX_DEPTH:
        raise ValueError(f"offset {pos}: STOP: containers nested more than {_MAX_DEPTH} deep")
    items = [_resolve(v, pos, done, depth + 1) for v in value]
    out = tuple(items) if isinstance(value, tuple) else items
    done[id(value)] = out
    return out
