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
  bytes it read, with a dtype from a short list of numeric types
  (:mod:`._pickle_numpy`).

The grammar is the table ``_HANDLERS`` at the end: one entry per opcode read,
each a small function of the machine's state.  Any other opcode raises
``ValueError`` naming the opcode and its offset in the (decompressed) stream.
The opcode table of :mod:`pickletools` is used only for the opcodes' names in
those messages.

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

import struct
from functools import partial

import numpy as np

from ._pickle_numpy import (_GLOBALS, _MAX_NAME, _SMALL, _Global, _Raw, _build, _call,
                            _is_long, _refuse, _resolve)

__all__ = ["load"]

# network.py's file holds ~150 opcodes; a generous cap stops a file of
# a billion one-byte opcodes from building a billion Python objects.
_MAX_OPCODES = 100_000
_CHUNK = 1 << 20


class _Reader:
    """The decompressed stream, read exactly, with its offset and a byte budget."""

    def __init__(self, f, max_bytes):
        self.f = f
        self.offset = 0
        self.left = max_bytes
        self.max_bytes = max_bytes

    def charge(self, n, what):
        """Count ``n`` bytes the reader allocates (a copy, a conversion) against the limit."""
        if n > self.left:
            raise ValueError(
                f"offset {self.offset}: {what} of {n} bytes goes past the limit of "
                f"{self.max_bytes} bytes (max_bytes)")
        self.left -= n

    def read(self, n, what="data"):
        self.charge(n, what)
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError(f"offset {self.offset + len(data)}: the file ends in the middle of {what}")
        self.offset += n
        return data

    def unpack(self, fmt, what):
        """One little-endian number of struct format ``fmt``."""
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))[0]

    def read_large(self, n, what):
        """``n`` bytes as a uint8 array, filled in chunks as the data arrives."""
        self.charge(n, what)
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

    def string(self, n, what):
        """``n`` bytes: a bytes object if short, else a uint8 array filled as data arrives."""
        return self.read(n, what) if n <= _SMALL else self.read_large(n, what)

    def line(self, what):
        out = bytearray()
        while True:
            c = self.read(1, what)
            if c == b"\n":
                return bytes(out)
            out += c
            if len(out) > _MAX_NAME:
                raise ValueError(f"offset {self.offset}: {what} longer than {_MAX_NAME} bytes")


class _Machine:
    """The unpickler's state: the stream, the stack, the marks, the memo."""

    def __init__(self, reader):
        self.reader = reader
        self.stack = []
        self.marks = []
        self.memo = {}
        self.fetched = set()  # ids of the long strings fetched from the memo once
        self.stopped = False

    def base(self):
        """Where the stack above the innermost MARK begins."""
        return self.marks[-1] if self.marks else 0

    def pop_mark(self, op, pos):
        if not self.marks:
            _refuse(op, pos, "no MARK to pop to")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def pop(self, op, pos, n=1):
        if len(self.stack) - self.base() < n:
            _refuse(op, pos, "the stack is empty")
        items = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return items

    def top(self):
        """The value on top of the stack above the innermost MARK, or None."""
        return self.stack[-1] if len(self.stack) > self.base() else None


# --------------------------------------------------------------------------
# the handlers: handler(m, op, pos), with any parameter from the table first


def _stop(m, op, pos):
    if m.marks or len(m.stack) != 1:
        _refuse(op, pos, "the stream does not end with exactly one value")
    m.stopped = True


def _frame(m, op, pos):
    # A buffering hint, checked against the limit only.
    n = m.reader.unpack("<Q", "a frame length")
    if n > m.reader.left:
        _refuse(op, pos, f"a frame of {n} bytes goes past the limit of {m.reader.max_bytes} bytes")


def _refused(why, m, op, pos):
    _refuse(op, pos, why)


def _mark(m, op, pos):
    m.marks.append(len(m.stack))


def _push(value, m, op, pos):
    """Push a constant (only immutable ones: the same object serves every push)."""
    m.stack.append(value)


def _empty_list(m, op, pos):
    m.stack.append([])


def _tuple(m, op, pos):
    m.stack.append(tuple(m.pop_mark(op, pos)))


def _tuple_n(n, m, op, pos):
    m.stack.append(tuple(m.pop(op, pos, n)))


def _list(m, op, pos):
    m.stack.append(m.pop_mark(op, pos))


def _extend(items, m, op, pos):
    if type(m.top()) is not list:
        _refuse(op, pos, "appending to something that is not a list")
    m.stack[-1].extend(items)


def _append(m, op, pos):
    _extend(m.pop(op, pos), m, op, pos)


def _appends(m, op, pos):
    _extend(m.pop_mark(op, pos), m, op, pos)


def _int(fmt, m, op, pos):
    m.stack.append(m.reader.unpack(fmt, "an integer"))


def _long1(m, op, pos):
    n = m.reader.read(1, "an integer length")[0]
    if n > 8:
        _refuse(op, pos, f"an integer of {n} bytes; array shapes need at most 8")
    m.stack.append(int.from_bytes(m.reader.read(n, "an integer"), "little", signed=True))


def _bytes(fmt, text, m, op, pos):
    """A byte string (``text``: a Python 2 str) whose length has struct format ``fmt``."""
    n = m.reader.unpack(fmt, "a string length")
    if n < 0:
        _refuse(op, pos, f"negative length {n}")
    m.stack.append(_Raw(m.reader.string(n, "a string"), text=text))


def _unicode(fmt, m, op, pos):
    """A UTF-8 string whose length has struct format ``fmt``."""
    reader = m.reader
    n = reader.unpack(fmt, "a string length")
    raw = reader.string(n, "a string")
    if n > _SMALL:
        # Only latin-1 text (array data through _codecs.encode) is long;
        # refusing other lead bytes keeps the decoded str at one byte per
        # character.
        if raw.max() >= 0xC4:
            raise ValueError(f"offset {reader.offset}: long text with characters outside latin-1")
        reader.charge(n, "the decoded text")
    try:
        m.stack.append(str(raw, "utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"offset {reader.offset}: text that is not valid UTF-8 ({exc.reason})") from None


def _store(m, key, op, pos):
    if not m.stack:
        _refuse(op, pos, "nothing to memoize")
    m.memo[key] = m.stack[-1]


def _put(fmt, m, op, pos):
    _store(m, m.reader.unpack(fmt, "a memo key"), op, pos)


def _memoize(m, op, pos):
    _store(m, len(m.memo), op, pos)


def _get(fmt, m, op, pos):
    key = m.reader.unpack(fmt, "a memo key")
    if key not in m.memo:
        _refuse(op, pos, f"memo key {key} was never stored")
    value = m.memo[key]
    if _is_long(value):
        if id(value) in m.fetched:
            _refuse(op, pos, f"memo key {key}, a string of over {_SMALL} bytes, fetched again: "
                    "an array pickle uses its data once, and each use would copy it")
        m.fetched.add(id(value))
    m.stack.append(value)


def _push_global(module, name, m, op, pos):
    what = _GLOBALS.get((module, name))
    if what is None:
        shown = f"{module[:_MAX_NAME]}.{name[:_MAX_NAME]}"
        _refuse(op, pos, f"refusing to load the global {shown}: an MNIST pickle names only "
                "NumPy's array reconstruction, and anything else could run code")
    m.stack.append(_Global(what))


def _global(m, op, pos):
    module = m.reader.line("a module name").decode("utf-8", "replace")
    name = m.reader.line("a global name").decode("utf-8", "replace")
    _push_global(module, name, m, op, pos)


def _stack_global(m, op, pos):
    module, name = m.pop(op, pos, 2)
    if not (type(module) is str and type(name) is str):
        _refuse(op, pos, "module and name must be strings")
    _push_global(module, name, m, op, pos)


def _reduce(m, op, pos):
    func, args = m.pop(op, pos, 2)
    m.stack.append(_call(m.reader, func, args, pos, op))


def _build_op(m, op, pos):
    (state,) = m.pop(op, pos)
    _build(m.reader, m.top(), state, pos, op)


_NO_BUFFERS = partial(_refused, "out-of-band buffers are not read (a file carries none)")

# The grammar: every opcode an array pickle of protocol 2 to 5 uses, named as
# in pickletools.  What is missing (dicts, sets, PERSID, EXT*, INST/OBJ,
# NEWOBJ, the text protocol 0 forms, ...) is refused.
_HANDLERS = {
    b".": _stop,                                   # STOP
    b"\x95": _frame,                               # FRAME
    b"\x80": partial(_refused, "a second PROTO"),  # PROTO
    b"(": _mark,                                   # MARK
    b")": partial(_push, ()),                      # EMPTY_TUPLE
    b"t": _tuple,                                  # TUPLE
    b"\x85": partial(_tuple_n, 1),                 # TUPLE1
    b"\x86": partial(_tuple_n, 2),                 # TUPLE2
    b"\x87": partial(_tuple_n, 3),                 # TUPLE3
    b"]": _empty_list,                             # EMPTY_LIST
    b"l": _list,                                   # LIST
    b"a": _append,                                 # APPEND
    b"e": _appends,                                # APPENDS
    b"N": partial(_push, None),                    # NONE
    b"\x88": partial(_push, True),                 # NEWTRUE
    b"\x89": partial(_push, False),                # NEWFALSE
    b"K": partial(_int, "<B"),                     # BININT1
    b"M": partial(_int, "<H"),                     # BININT2
    b"J": partial(_int, "<i"),                     # BININT
    b"\x8a": _long1,                               # LONG1
    b"U": partial(_bytes, "<B", True),             # SHORT_BINSTRING
    b"T": partial(_bytes, "<i", True),             # BINSTRING
    b"C": partial(_bytes, "<B", False),            # SHORT_BINBYTES
    b"B": partial(_bytes, "<I", False),            # BINBYTES
    b"\x8e": partial(_bytes, "<Q", False),         # BINBYTES8
    b"\x96": partial(_bytes, "<Q", False),         # BYTEARRAY8
    b"\x8c": partial(_unicode, "<B"),              # SHORT_BINUNICODE
    b"X": partial(_unicode, "<I"),                 # BINUNICODE
    b"\x8d": partial(_unicode, "<Q"),              # BINUNICODE8
    b"q": partial(_put, "<B"),                     # BINPUT
    b"r": partial(_put, "<I"),                     # LONG_BINPUT
    b"\x94": _memoize,                             # MEMOIZE
    b"h": partial(_get, "<B"),                     # BINGET
    b"j": partial(_get, "<I"),                     # LONG_BINGET
    b"c": _global,                                 # GLOBAL
    b"\x93": _stack_global,                        # STACK_GLOBAL
    b"R": _reduce,                                 # REDUCE
    b"b": _build_op,                               # BUILD
    b"\x97": _NO_BUFFERS,                          # NEXT_BUFFER
    b"\x98": _NO_BUFFERS,                          # READONLY_BUFFER
}

_OTHER = partial(_refused, "not part of an MNIST pickle's structure (tuples and NumPy arrays)")


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
    m = _Machine(_Reader(f, max_bytes))
    head = m.reader.read(2, "the pickle header")
    if head[:1] != b"\x80" or not 2 <= head[1] <= 5:
        raise ValueError(
            "offset 0: not a binary pickle of protocol 2 to 5 (the book's mnist.pkl.gz "
            "and Python 3's pickles start with the PROTO opcode 0x80, then 2..5)")
    for _ in range(_MAX_OPCODES):
        pos = m.reader.offset
        op = m.reader.read(1, "an opcode")
        _HANDLERS.get(op, _OTHER)(m, op, pos)
        if m.stopped:
            return _resolve(m.stack[0], pos, {})
    raise ValueError(f"more than {_MAX_OPCODES} opcodes: not an MNIST pickle")
