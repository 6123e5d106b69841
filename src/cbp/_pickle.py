"""A reader for the NumPy arrays in network.py's ``mnist.pkl.gz``, without unpickling.

Unpickling lets the file name callables and apply them to values it built,
and NumPy objects offer enough of those (``dtype.__setstate__`` with any item
size and offsets, ``ndarray.__setitem__`` on the result) to read and write
memory outside any array. No allow-list of globals makes that safe, so this
module never hands the stream to :mod:`pickle`. It walks the opcodes itself
and understands only what a pickle of nested tuples/lists of plain numeric
arrays contains:

- containers: tuples and lists of small values, the memo, marks, framing;
- the names NumPy's array pickles refer to -- ``_reconstruct``, ``ndarray``,
  ``dtype``, ``_frombuffer`` and ``_codecs.encode`` -- kept as tokens, never
  imported or called;
- REDUCE and BUILD only in the exact shapes NumPy writes for an array
  (``_reconstruct(ndarray, (0,), b'b')`` then its state, or protocol 5's
  ``_frombuffer(data, dtype, shape, order)``), for a dtype (``dtype(code,
  align, copy)`` then its state), and for ``_codecs.encode(text, 'latin1')``.
  The reader then makes the array itself with :func:`numpy.frombuffer`, on
  bytes it read, with a dtype from a short list of numeric types.

Anything else raises ``ValueError`` naming the opcode and its offset in the
(decompressed) stream. The opcode table of :mod:`pickletools` is used only for
the opcodes' names in those messages.

Resources are bounded: every length the file declares is checked against
the bytes left under ``max_bytes`` before anything is allocated, large
strings are read in chunks into memory that is only touched as data
arrives, and the number of opcodes is capped.  The budget is charged for
what the reader allocates, not only for what it reads: a string decoded,
encoded to bytes or copied into an array is charged again, and a long
string or byte string fetched from the memo a second time is refused (one
stored string handed to ``_codecs.encode`` again and again would multiply
its bytes).  So everything the reader builds stays within ``max_bytes``.
"""

import pickletools
import struct
import sys

import numpy as np

__all__ = ["load"]

_OPNAMES = {op.code.encode("latin-1"): op.name for op in pickletools.opcodes}

# network.py's file holds ~150 opcodes; a generous cap stops a file of
# a billion one-byte opcodes from building a billion Python objects.
_MAX_OPCODES = 100_000
# Module and attribute names, dtype codes: short texts only.
_MAX_NAME = 256
# Strings up to this size are read as bytes objects; larger ones (array
# data) into an uninitialised NumPy buffer filled chunk by chunk.
_SMALL = 4096
_CHUNK = 1 << 20
_MAX_NDIM = 32

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


class _Mark:
    __slots__ = ()


_MARK = _Mark()


def _describe(value):
    """A short name for a stack value, for messages (never its repr: it may be huge)."""
    if isinstance(value, _Global):
        return value.what
    if isinstance(value, _Raw):
        return "a string"
    if isinstance(value, _Dtype):
        return "a dtype"
    if isinstance(value, _Array):
        return "an array"
    if isinstance(value, np.ndarray):
        return "an array"
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


class _Reader:
    """The decompressed stream, read exactly, with its offset and a byte budget."""

    def __init__(self, f, max_bytes):
        self.f = f
        self.offset = 0
        self.left = max_bytes
        self.max_bytes = max_bytes

    def charge(self, n, what):
        """Count ``n`` bytes the reader allocates (a copy, a conversion) against the limit."""
        self._claim(n, what)

    def _claim(self, n, what):
        if n > self.left:
            raise ValueError(
                f"offset {self.offset}: {what} of {n} bytes goes past the limit of "
                f"{self.max_bytes} bytes (max_bytes)")
        self.left -= n

    def read(self, n, what="data"):
        self._claim(n, what)
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError(f"offset {self.offset + len(data)}: the file ends in the middle of {what}")
        self.offset += n
        return data

    def read_large(self, n, what):
        """``n`` bytes as a uint8 array, filled in chunks as the data arrives."""
        self._claim(n, what)
        # np.empty leaves the pages untouched: a length the file claims but
        # does not supply costs address space, not memory.
        out = np.empty(n, dtype=np.uint8)
        view = memoryview(out)
        done = 0
        while done < n:
            got = self.f.readinto(view[done:done + _CHUNK])
            if not got:
                raise ValueError(f"offset {self.offset + done}: the file ends in the middle of {what} "
                                 f"({done} of {n} bytes present)")
            done += got
        self.offset += n
        return out

    def line(self, what):
        out = bytearray()
        while True:
            c = self.read(1, what)
            if c == b"\n":
                return bytes(out)
            out += c
            if len(out) > _MAX_NAME:
                raise ValueError(f"offset {self.offset}: {what} longer than {_MAX_NAME} bytes")


def _refuse(op, pos, why):
    name = _OPNAMES.get(op, f"unknown opcode 0x{op[0]:02x}")
    raise ValueError(f"offset {pos}: {name}: {why}")


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


def _raw_bytes(value):
    """The buffer of array data: bytes/bytearray-like from the stream, or None."""
    if isinstance(value, _Raw):
        return value.data
    return None


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


def _reduce(reader, func, args, pos, op):
    """The value of ``func(*args)`` for the few calls NumPy's pickles make."""
    what = func.what if isinstance(func, _Global) else None
    if not isinstance(args, tuple):
        _refuse(op, pos, "the arguments must be a tuple")
    if what == _DTYPE:
        if not (len(args) == 3 and _is_small_int(args[1], 0) and _is_small_int(args[2], 1)):
            _refuse(op, pos, "numpy.dtype takes (code, False, True) in an array pickle")
        code = _text(args[0])
        if code not in _DTYPE_CODES:
            shown = repr(code) if code is not None else _describe(args[0])
            _refuse(op, pos, f"dtype {shown} refused; only {', '.join(sorted(_DTYPE_CODES))} are read")
        return _Dtype(code)
    if what == _RECONSTRUCT:
        if not (len(args) == 3 and isinstance(args[0], _Global) and args[0].what == _NDARRAY
                and _is_zero_shape(args[1]) and _is_b(args[2])):
            _refuse(op, pos, "_reconstruct is read only as _reconstruct(numpy.ndarray, (0,), b'b')")
        return _Array()
    if what == _FROMBUFFER:
        if not (len(args) == 4 and isinstance(args[1], _Dtype) and args[1].dtype is not None
                and _text(args[3]) in ("C", "F") and _raw_bytes(args[0]) is not None):
            _refuse(op, pos, "_frombuffer is read only as _frombuffer(data, dtype, shape, 'C' or 'F')")
        return _array_from(reader, _raw_bytes(args[0]), args[1].dtype, args[2],
                           _text(args[3]) == "F", pos, op)
    if what == _ENCODE:
        if not (len(args) == 2 and isinstance(args[0], str) and _text(args[1]) in ("latin1", "latin-1")):
            _refuse(op, pos, "_codecs.encode is read only as encode(text, 'latin1')")
        reader.charge(len(args[0]), "the bytes _codecs.encode makes")
        try:
            data = bytearray(args[0], "latin-1")
        except UnicodeEncodeError:
            data = None
        if data is None:
            _refuse(op, pos, "the text has characters outside latin-1")
        return _Raw(np.frombuffer(data, dtype=np.uint8) if len(data) > _SMALL else bytes(data),
                    text=False)
    _refuse(op, pos, f"refusing to call {_describe(func)}: only NumPy's array reconstruction is read")


def _is_long(value):
    """True for a string or byte string longer than _SMALL (array data)."""
    if isinstance(value, str):
        return len(value) > _SMALL
    return isinstance(value, _Raw) and len(value.data) > _SMALL


def _decode_utf8(reader, n, what):
    if n <= _SMALL:
        raw = reader.read(n, what)
    else:
        raw = reader.read_large(n, what)
        # Only latin-1 text (array data through _codecs.encode) is long;
        # refusing other lead bytes keeps the decoded str at one byte per
        # character.
        if n and raw.max() >= 0xC4:
            raise ValueError(f"offset {reader.offset}: long text with characters outside latin-1")
        reader.charge(n, "the decoded text")
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"offset {reader.offset}: text that is not valid UTF-8 ({exc.reason})") from None


def load(f, max_bytes):
    """Parse the pickle on the binary stream ``f``; return its value.

    Parameters
    ----------
    f : binary file object
        Positioned at the start of the pickle (decompressed already).
    max_bytes : int
        Most bytes of the stream to read; any declared length that would go
        past it is refused before being read.

    Returns
    -------
    object
        The pickled value, made of tuples, lists, ints, bools, None, str and
        ``numpy.ndarray`` of the numeric dtypes listed above.

    Raises
    ------
    ValueError
        For anything outside that structure, for a truncated stream or one
        longer than ``max_bytes``. The message gives the offset and opcode.
    """
    reader = _Reader(f, max_bytes)
    stack = []
    marks = []
    memo = {}
    fetched = set()  # ids of the long strings fetched from the memo once

    def pop_mark(op, pos):
        if not marks:
            _refuse(op, pos, "no MARK to pop to")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def pop(op, pos, n=1):
        base = marks[-1] if marks else 0
        if len(stack) - base < n:
            _refuse(op, pos, "the stack is empty")
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def memo_put(key, op, pos):
        if not stack:
            _refuse(op, pos, "nothing to memoize")
        memo[key] = stack[-1]

    def memo_get(key, op, pos):
        try:
            value = memo[key]
        except KeyError:
            _refuse(op, pos, f"memo key {key} was never stored")
        if _is_long(value):
            if id(value) in fetched:
                _refuse(op, pos, f"memo key {key}, a string of over {_SMALL} bytes, fetched again: "
                        "an array pickle uses its data once, and each use would copy it")
            fetched.add(id(value))
        stack.append(value)

    head_pos = reader.offset
    head = reader.read(2, "the pickle header")
    if head[:1] != b"\x80" or not 2 <= head[1] <= 5:
        raise ValueError(
            f"offset {head_pos}: not a binary pickle of protocol 2 to 5 (the book's mnist.pkl.gz "
            "and Python 3's pickles start with the PROTO opcode 0x80, then 2..5)")
    for _ in range(_MAX_OPCODES):
        pos = reader.offset
        op = reader.read(1, "an opcode")
        if op == b".":  # STOP
            if marks or len(stack) != 1:
                _refuse(op, pos, "the stream does not end with exactly one value")
            return _resolve(stack[0], pos, {})
        elif op == b"\x95":  # FRAME: a buffering hint, checked against the limit only
            (n,) = struct.unpack("<Q", reader.read(8, "a frame length"))
            if n > reader.left:
                _refuse(op, pos, f"a frame of {n} bytes goes past the limit of {reader.max_bytes} bytes")
        elif op == b"\x80":
            _refuse(op, pos, "a second PROTO")
        elif op == b"(":
            marks.append(len(stack))
        elif op == b")":
            stack.append(())
        elif op == b"t":
            stack.append(tuple(pop_mark(op, pos)))
        elif op in (b"\x85", b"\x86", b"\x87"):
            stack.append(tuple(pop(op, pos, op[0] - 0x84)))
        elif op == b"]":
            stack.append([])
        elif op == b"l":
            stack.append(pop_mark(op, pos))
        elif op in (b"a", b"e"):
            items = pop(op, pos) if op == b"a" else pop_mark(op, pos)
            if len(stack) <= (marks[-1] if marks else 0) or type(stack[-1]) is not list:
                _refuse(op, pos, "appending to something that is not a list")
            stack[-1].extend(items)
        elif op == b"N":
            stack.append(None)
        elif op == b"\x88":
            stack.append(True)
        elif op == b"\x89":
            stack.append(False)
        elif op == b"K":
            stack.append(reader.read(1)[0])
        elif op == b"M":
            stack.append(struct.unpack("<H", reader.read(2))[0])
        elif op == b"J":
            stack.append(struct.unpack("<i", reader.read(4))[0])
        elif op == b"\x8a":  # LONG1
            n = reader.read(1)[0]
            if n > 8:
                _refuse(op, pos, f"an integer of {n} bytes; array shapes need at most 8")
            stack.append(int.from_bytes(reader.read(n), "little", signed=True))
        elif op in (b"U", b"C"):  # SHORT_BINSTRING, SHORT_BINBYTES
            n = reader.read(1)[0]
            stack.append(_Raw(reader.read(n, "a string"), text=op == b"U"))
        elif op in (b"T", b"B", b"\x8e", b"\x96"):  # BINSTRING, BINBYTES, BINBYTES8, BYTEARRAY8
            fmt = "<i" if op == b"T" else "<I" if op == b"B" else "<Q"
            (n,) = struct.unpack(fmt, reader.read(struct.calcsize(fmt), "a string length"))
            if n < 0:
                _refuse(op, pos, f"negative length {n}")
            data = reader.read(n, "a string") if n <= _SMALL else reader.read_large(n, "a string")
            stack.append(_Raw(data, text=op == b"T"))
        elif op in (b"\x8c", b"X", b"\x8d"):  # SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
            fmt = "<B" if op == b"\x8c" else "<I" if op == b"X" else "<Q"
            (n,) = struct.unpack(fmt, reader.read(struct.calcsize(fmt), "a string length"))
            stack.append(_decode_utf8(reader, n, "a string"))
        elif op == b"q":
            memo_put(reader.read(1)[0], op, pos)
        elif op == b"r":
            memo_put(struct.unpack("<I", reader.read(4))[0], op, pos)
        elif op == b"\x94":
            memo_put(len(memo), op, pos)
        elif op == b"h":
            memo_get(reader.read(1)[0], op, pos)
        elif op == b"j":
            memo_get(struct.unpack("<I", reader.read(4))[0], op, pos)
        elif op in (b"c", b"\x93"):  # GLOBAL, STACK_GLOBAL
            if op == b"c":
                module = reader.line("a module name").decode("utf-8", "replace")
                name = reader.line("a global name").decode("utf-8", "replace")
            else:
                module, name = pop(op, pos, 2)
                if not (type(module) is str and type(name) is str):
                    _refuse(op, pos, "module and name must be strings")
            what = _GLOBALS.get((module, name))
            if what is None:
                shown = f"{module[:_MAX_NAME]}.{name[:_MAX_NAME]}"
                _refuse(op, pos, f"refusing to load the global {shown}: an MNIST pickle names only "
                        "NumPy's array reconstruction, and anything else could run code")
            stack.append(_Global(what))
        elif op == b"R":
            func, args = pop(op, pos, 2)
            stack.append(_reduce(reader, func, args, pos, op))
        elif op == b"b":
            (state,) = pop(op, pos)
            target = stack[-1] if len(stack) > (marks[-1] if marks else 0) else None
            if isinstance(target, _Dtype):
                _make_dtype(target, state, pos)
            elif isinstance(target, _Array):
                _build_array(reader, target, state, pos, op)
            else:
                _refuse(op, pos, f"refusing to set the state of {_describe(target)}: only arrays and "
                        "dtypes this reader made itself get a state, once")
        elif op in (b"\x97", b"\x98"):
            _refuse(op, pos, "out-of-band buffers are not read (a file carries none)")
        else:
            _refuse(op, pos, "not part of an MNIST pickle's structure (tuples and NumPy arrays)")
    raise ValueError(f"more than {_MAX_OPCODES} opcodes: not an MNIST pickle")


def _resolve(value, pos, done, depth=0):
    """The final value with each array token replaced by its array."""
    if isinstance(value, _Array):
        if value.array is None:
            raise ValueError(f"offset {pos}: STOP: an array never received its state (BUILD)")
        return value.array
    if isinstance(value, (tuple, list)):
        # Each container once (the memo lets a file share one many times);
        # the depth limit also ends lists that contain themselves.
        if id(value) in done:
            return done[id(value)]
        if depth > 8:
            raise ValueError(f"offset {pos}: STOP: containers nested more than 8 deep")
        items = [_resolve(v, pos, done, depth + 1) for v in value]
        out = tuple(items) if isinstance(value, tuple) else items
        done[id(value)] = out
        return out
    if isinstance(value, _Raw):
        if len(value.data) > _SMALL:
            raise ValueError(f"offset {pos}: STOP: the value holds a long byte string, not arrays")
        return bytes(value.data)
    if isinstance(value, (_Global, _Dtype)):
        raise ValueError(f"offset {pos}: STOP: the value holds {_describe(value)}, not data")
    return value
