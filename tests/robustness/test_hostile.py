"""Hostile files: every reader and writer of cbp against files made to attack it.

Attack classes (issue 9) and where they are tested:

- code execution through the book's pickle: the pickle is parsed, never
  unpickled -- crafted pickles trying BUILD/SETITEM on dtypes and arrays,
  object arrays, REDUCE gadgets (os.system, eval, NumPy functions), with a
  marker file that must never appear: ``test_gadget_*``, ``test_reduce_*``,
  ``test_build_*``, ``test_setitem_*``, ``test_object_arrays_*``,
  ``test_cli_refuses_evil_pickle``;
- crashes: a hypothesis fuzz of the parser (random opcode streams, mutated
  valid files, gadgets spliced in): ``test_fuzz_*``;
- memory exhaustion: bombs and lying headers for each format, RSS measured
  in a child process, MemoryError: ``test_bombs_*``, ``test_lying_*``,
  ``test_zip*_directory_bounds``, ``test_rss_*``, ``test_memory_error_*``;
- blocking and device files: FIFOs, device nodes made with mknod, sockets,
  directories, in child processes with a timeout: ``test_special_*``,
  ``test_cli_on_fifo_and_device_does_not_block``;
- saving: symlinks, permission bits, devices and FIFOs at the target, a
  missing directory: ``test_save_*``;
- downloads larger than the real file: ``test_download_*``.
"""

import gzip
import http.server
import io
import json
import os
import pickle
import pickletools
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cbp
from cbp import datasets
from cbp.datasets import _download, _pickle

TIMEOUT = 60  # seconds for a child process; a hang fails the test instead of CI


# --------------------------------------------------------------------------
# pickle opcodes, written by hand


def proto(p):
    return b"\x80" + bytes([p])


def glob(module, name):  # GLOBAL, the form protocols 2 and 3 use
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def su(text):  # SHORT_BINUNICODE
    raw = text.encode("utf-8")
    return b"\x8c" + bytes([len(raw)]) + raw


def bu(text):  # BINUNICODE
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def sglob(module, name):  # STACK_GLOBAL, protocol 4 and later
    return su(module) + su(name) + b"\x93"


def py2str(data):  # SHORT_BINSTRING / BINSTRING: a Python 2 str
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def binbytes(data, wide=False):  # SHORT_BINBYTES / BINBYTES / BINBYTES8
    if wide:
        return b"\x8e" + struct.pack("<Q", len(data)) + data
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def integer(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    return b"J" + struct.pack("<i", n)


def tup(*items):
    if len(items) == 0:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + bytes([0x84 + len(items)])
    return b"(" + b"".join(items) + b"t"


NONE, TRUE, FALSE, REDUCE, BUILD, STOP = b"N", b"\x88", b"\x89", b"R", b"b", b"."


def codecs_bytes(data):  # Python 3, protocol 2: _codecs.encode(text, 'latin1')
    return glob("_codecs", "encode") + tup(bu(data.decode("latin-1")), bu("latin1")) + REDUCE


def text_for(form):
    return py2str if form == "py2" else (lambda s: bu(s.decode()))


def dtype_ops(dt, form, state=None):
    code, order = dt.str[1:].encode(), dt.str[:1].encode()
    text = text_for(form)
    name = sglob("numpy", "dtype") if form in ("binbytes8", "frombuffer") else glob("numpy", "dtype")
    flags = integer(0) + integer(1) if form == "py2" else FALSE + TRUE
    if state is None:
        state = tup(integer(3), text(order), NONE, NONE, NONE, integer(-1), integer(-1), integer(0))
    return name + text(code) + flags + b"\x87" + REDUCE + state + BUILD


def shape_ops(shape):
    return tup(*(integer(d) for d in shape))


def array_ops(a, form):
    """Opcodes for array `a` in one of the forms NumPy's pickles take.

    py2: Python 2's cPickle (the book's file); codecs: Python 3, protocol 2;
    binbytes: protocol 3; binbytes8: protocol 4 with STACK_GLOBAL;
    frombuffer: protocol 5.
    """
    data = a.tobytes(order="A")
    fortran = a.flags.f_contiguous and not a.flags.c_contiguous
    if form == "frombuffer":
        return (sglob("numpy._core.numeric", "_frombuffer")
                + b"(" + b"\x96" + struct.pack("<Q", len(data)) + data
                + dtype_ops(a.dtype, form) + shape_ops(a.shape) + su("F" if fortran else "C")
                + b"t" + REDUCE)
    module = "numpy.core.multiarray" if form == "py2" else "numpy._core.multiarray"
    if form == "binbytes8":
        recon = sglob(module, "_reconstruct") + sglob("numpy", "ndarray")
    else:
        recon = glob(module, "_reconstruct") + glob("numpy", "ndarray")
    raw = {"py2": py2str, "codecs": codecs_bytes, "binbytes": binbytes,
           "binbytes8": lambda d: binbytes(d, wide=True)}[form]
    flag = integer(int(fortran)) if form == "py2" else (TRUE if fortran else FALSE)
    return (recon + tup(integer(0)) + raw(b"b") + b"\x87" + REDUCE
            + b"(" + integer(1) + shape_ops(a.shape) + dtype_ops(a.dtype, form) + flag + raw(data)
            + b"t" + BUILD)


FORMS = ["py2", "codecs", "binbytes", "binbytes8", "frombuffer"]
PROTOCOL = {"py2": 2, "codecs": 2, "binbytes": 3, "binbytes8": 4, "frombuffer": 5}


def fake_parts(seed=0, sizes=(5, 3, 2)):
    rng = np.random.default_rng(seed)
    return tuple(((rng.integers(0, 256, size=(n, 784)) / 256).astype(np.float32),
                  rng.integers(0, 10, size=n).astype(np.int64)) for n in sizes)


def mnist_ops(parts, form):
    body = tup(*(tup(array_ops(X, form), array_ops(y, form)) for X, y in parts))
    return proto(PROTOCOL[form]) + body + STOP


def write(path, blob, gz=True):
    # Level 1: level 9 takes seconds on these pixel values.
    path.write_bytes(gzip.compress(blob, compresslevel=1, mtime=0) if gz else blob)
    return path


def parse(blob, max_bytes=1 << 30):
    return _pickle.load(io.BytesIO(blob), max_bytes)


# --------------------------------------------------------------------------
# the forms the book's pickle and its re-saved copies take


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("gz", [True, False])
def test_each_hand_written_form_is_read(tmp_path, form, gz):
    parts = fake_parts()
    path = write(tmp_path / "mnist.pkl.gz", mnist_ops(parts, form), gz)
    got = datasets.read_mnist_pickle(path)
    assert len(got) == 3
    for (X, y), (X0, y0) in zip(got, parts):
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.flags.writeable and y.flags.writeable
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
    X, y = datasets.load_mnist(path, kind="validation")
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, parts[1][0])


def test_long_strings_take_the_chunked_path(tmp_path):
    # 2,000 images: each array's data is far above the small-string size.
    parts = fake_parts(sizes=(2000, 30, 20))
    for form in FORMS:
        got = datasets.read_mnist_pickle(write(tmp_path / f"{form}.pkl.gz", mnist_ops(parts, form)))
        np.testing.assert_array_equal(got[0][0], parts[0][0])
        np.testing.assert_array_equal(got[2][1], parts[2][1])


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_module_output_is_read(tmp_path, protocol):
    parts = fake_parts(sizes=(300, 4, 3))
    path = write(tmp_path / "m.pkl.gz", pickle.dumps(parts, protocol=protocol))
    for (X, y), (X0, y0) in zip(datasets.read_mnist_pickle(path), parts):
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)


def test_lists_and_other_dtypes_are_read(tmp_path):
    # Re-saved copies may hold lists, float64 images, int32 labels,
    # Fortran order, big-endian data: values are what count.
    X = np.asfortranarray(np.linspace(0, 1, 784 * 3).reshape(3, 784)).astype(">f8")
    y = np.array([1, 2, 3], dtype="<i4")
    data = [(X, y), (X, y), (X, y)]
    path = write(tmp_path / "m.pkl.gz", pickle.dumps(data, protocol=2))
    (X1, y1), _, _ = datasets.read_mnist_pickle(path)
    assert X1.dtype == np.float32 and y1.dtype == np.int64
    np.testing.assert_array_equal(X1, X.astype(np.float32))
    np.testing.assert_array_equal(y1, y)


def test_out_of_band_buffers_are_refused(tmp_path):
    buffers = []
    blob = pickle.dumps(pickle.PickleBuffer(np.zeros(8, np.uint8)), protocol=5,
                        buffer_callback=buffers.append)
    assert buffers  # really out of band
    with pytest.raises(ValueError, match=r"NEXT_BUFFER: out-of-band buffers are not read"):
        datasets.read_mnist_pickle(write(tmp_path / "m.pkl", blob))


def test_refusal_names_opcode_and_offset():
    with pytest.raises(ValueError, match=r"^offset 2: GLOBAL: refusing to load the global os\.system"):
        parse(proto(2) + glob("os", "system") + STOP)
    with pytest.raises(ValueError, match=r"^offset 3: EMPTY_DICT"):
        parse(proto(4) + b"N}")


# --------------------------------------------------------------------------
# code execution: gadgets, BUILD, SETITEM, object arrays


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _marker_command(marker):
    return f"touch {marker}"


GADGETS = [
    ("os", "system"), ("posix", "system"), ("nt", "system"), ("builtins", "eval"),
    ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("subprocess", "call"), ("numpy", "load"), ("numpy", "frombuffer"),
    ("numpy.testing._private.utils", "runstring"), ("numpy.ctypeslib", "load_library"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct.__globals__"), ("numpy", "ndarray.__setstate__"),
]


@pytest.mark.parametrize("module, name", GADGETS)
@pytest.mark.parametrize("stacked", [False, True])
def test_gadget_globals_are_refused(tmp_path, module, name, stacked):
    marker = tmp_path / "pwned"
    ref = sglob(module, name) if stacked else glob(module, name)
    # A valid first part, then the gadget called with a shell command.
    parts = fake_parts()
    blob = (proto(4) + tup(tup(array_ops(parts[0][0], "binbytes"), array_ops(parts[0][1], "binbytes")),
                           ref + tup(bu(_marker_command(marker))) + REDUCE, NONE) + STOP)
    path = write(tmp_path / "evil.pkl.gz", blob)
    with pytest.raises(ValueError, match=r"GLOBAL: refusing to load the global") as info:
        datasets.read_mnist_pickle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_gadget_from_pickle_module_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = (fake_parts()[0], _Evil(_marker_command(marker)), None)
    path = write(tmp_path / "evil.pkl.gz", pickle.dumps(payload, protocol=protocol))
    with pytest.raises(ValueError, match=r"refusing to load the global (posix|nt|os)\.system"):
        datasets.load_mnist(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Evil(_marker_command(marker))))  # control: the payload is real
    assert marker.exists()


@pytest.mark.parametrize("call", [
    # allowed names, wrong arguments
    glob("numpy._core.multiarray", "_reconstruct") + tup(glob("numpy", "dtype"), tup(integer(0)), binbytes(b"b")) + REDUCE,
    glob("numpy._core.multiarray", "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(5)), binbytes(b"b")) + REDUCE,
    glob("numpy._core.multiarray", "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(0))) + REDUCE,
    glob("_codecs", "encode") + tup(bu("x"), bu("rot13")) + REDUCE,
    glob("_codecs", "encode") + tup(binbytes(b"x"), bu("latin1")) + REDUCE,
    glob("_codecs", "encode") + tup(bu("\u20ac"), bu("latin1")) + REDUCE,
    glob("numpy", "dtype") + tup(bu("O8"), FALSE, TRUE) + REDUCE,
    glob("numpy", "dtype") + tup(bu("V8"), FALSE, TRUE) + REDUCE,
    glob("numpy", "dtype") + tup(bu("U4"), FALSE, TRUE) + REDUCE,
    glob("numpy", "dtype") + tup(bu("f4"), TRUE, TRUE) + REDUCE,
    glob("numpy", "ndarray") + tup(tup(integer(3))) + REDUCE,  # calling the type itself
    glob("numpy._core.numeric", "_frombuffer") + tup(binbytes(b"\0" * 8), glob("numpy", "dtype"), tup(integer(1)), su("C")) + REDUCE,
    tup(integer(1)) + tup() + REDUCE,  # calling a tuple
], ids=lambda b: b[:24].hex())
def test_reduce_only_in_numpys_exact_shapes(call):
    with pytest.raises(ValueError, match=r"REDUCE"):
        parse(proto(3) + call + STOP)


def test_build_on_dtype_with_hostile_state_is_refused():
    # The attack of issue 9: a dtype given an item size, offsets or flags of
    # the attacker's choice, then used to index memory outside an array.
    def state(*items):
        return tup(integer(3), bu("<"), *items)
    for hostile in [
        state(NONE, NONE, NONE, integer(1 << 20), integer(1), integer(0)),   # elsize
        state(NONE, NONE, NONE, integer(-1), integer(-1), integer(63)),      # object flags
        state(NONE, tup(bu("a")), NONE, integer(-1), integer(-1), integer(0)),  # names
        state(tup(glob("numpy", "dtype"), tup(integer(2))), NONE, NONE, integer(-1), integer(-1), integer(0)),
        tup(integer(3), bu("<"), NONE, NONE, NONE, integer(-1), integer(-1)),  # short
        tup(integer(9), bu("<"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)),  # version
        tup(integer(3), bu("|"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)),  # f4 without order
    ]:
        blob = proto(3) + dtype_ops(np.dtype("<f4"), "binbytes", state=hostile) + STOP
        with pytest.raises(ValueError, match=r"BUILD"):
            parse(blob)


def test_build_twice_or_on_other_objects_is_refused():
    dt = dtype_ops(np.dtype("<f4"), "binbytes")
    again = tup(integer(3), bu("<"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)) + BUILD
    arr = array_ops(np.zeros(2, np.float32), "binbytes")
    arr_state = b"(" + integer(1) + shape_ops((2,)) + dt + FALSE + binbytes(bytes(8)) + b"t" + BUILD
    for blob, why in [
        (dt + again, "already has its state"),
        (arr + arr_state, "already has its state"),
        (glob("numpy", "ndarray") + tup(integer(1)) + BUILD, "refusing to set the state of numpy.ndarray"),
        (glob("numpy", "dtype") + tup(integer(1)) + BUILD, "refusing to set the state of numpy.dtype"),
        (tup(integer(1)) + tup(integer(1)) + BUILD, "refusing to set the state of a tuple"),
        (tup() + BUILD, "refusing to set the state of None"),
        (BUILD, "stack is empty"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse(proto(3) + blob + STOP)


def test_array_state_must_match_its_data():
    dt = dtype_ops(np.dtype("<f4"), "binbytes")
    head = (glob("numpy._core.multiarray", "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(0)), binbytes(b"b"))
            + REDUCE)
    for state, why in [
        (b"(" + integer(1) + shape_ops((3,)) + dt + FALSE + binbytes(bytes(8)) + b"t", "needs 12 bytes"),
        (b"(" + integer(1) + shape_ops((1 << 30, 1 << 30)) + dt + FALSE + binbytes(bytes(8)) + b"t", "needs 4611686018427387904 bytes"),
        (b"(" + integer(1) + shape_ops((-1,)) + dt + FALSE + binbytes(bytes(8)) + b"t", "non-negative"),
        (b"(" + integer(2) + shape_ops((2,)) + dt + FALSE + binbytes(bytes(8)) + b"t", "state must be"),
        (b"(" + integer(1) + shape_ops((2,)) + integer(7) + FALSE + binbytes(bytes(8)) + b"t", "dtype must be"),
        (b"(" + integer(1) + shape_ops((2,)) + dt + FALSE + bu("\0" * 8) + b"t", "must be a byte string"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse(proto(3) + head + state + BUILD + STOP)


def test_setitem_and_other_opcodes_are_refused():
    arr = array_ops(np.zeros(2, np.float32), "binbytes")
    for tail, name in [
        (integer(0) + integer(1) + b"s", "SETITEM"),
        (b"(" + integer(0) + integer(1) + b"u", "SETITEMS"),
        (b"}", "EMPTY_DICT"), (b"\x8f", "EMPTY_SET"), (b"\x82\x01", "EXT1"),
        (b"P1\n", "PERSID"), (b"Q", "BINPERSID"), (b"\x81", "NEWOBJ"), (b"\x92", "NEWOBJ_EX"),
        (b"(i__main__\nX\n", "INST"), (b"o", "OBJ"), (b"0", "POP"), (b"2", "DUP"),
        (b"I1\n", "INT"), (b"S'x'\n", "STRING"), (b"G" + bytes(8), "BINFLOAT"),
        (b"\x80\x02", "a second PROTO"), (b"\xff", "unknown opcode 0xff"),
    ]:
        with pytest.raises(ValueError, match=name):
            parse(proto(4) + arr + tail + STOP)


def test_the_handler_table_is_the_grammar():
    # Every opcode pickle writes for the book's structure has a handler...
    used = set()
    for protocol in (2, 3, 4, 5):
        for parts in (fake_parts(), [list(p) for p in fake_parts()]):
            blob = pickle.dumps(parts, protocol=protocol)
            used |= {op.code.encode("latin-1") for op, _, _ in pickletools.genops(blob)}
    assert used <= set(_pickle._HANDLERS)
    # ...and every other opcode is refused where it stands, by name.
    for op in pickletools.opcodes:
        code = op.code.encode("latin-1")
        if code not in _pickle._HANDLERS:
            with pytest.raises(ValueError, match=rf"^offset 2: {op.name}: not part of"):
                parse(proto(4) + code + bytes(16) + STOP)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_object_arrays_are_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    obj = np.array([1, _Evil(_marker_command(marker))], dtype=object)
    path = write(tmp_path / "m.pkl.gz", pickle.dumps(((obj, obj), None, None), protocol=protocol))
    with pytest.raises(ValueError, match=r"dtype 'O8' refused"):
        datasets.read_mnist_pickle(path)
    assert not marker.exists()
    # Object data given as a list in the state of a numeric-looking array.
    dt = dtype_ops(np.dtype("<f8"), "binbytes")
    head = (glob("numpy._core.multiarray", "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(0)), binbytes(b"b"))
            + REDUCE)
    state = b"(" + integer(1) + shape_ops((1,)) + dt + FALSE + b"]" + integer(1) + b"a" + b"t"
    with pytest.raises(ValueError, match=r"object arrays are never read"):
        parse(proto(3) + head + state + BUILD + STOP)


def test_memo_and_marks_are_checked():
    for blob, why in [
        (b"h\x05", "memo key 5 was never stored"),
        (b"j\x05\x00\x00\x00", "memo key 5 was never stored"),
        (b"q\x00", "nothing to memoize"),
        (b"t", "no MARK"),
        (b"N(\x85", "stack is empty"),  # TUPLE1 may not reach below a MARK
        (b"N(a", "APPEND: the stack is empty"),
        (b"NNa", "appending to something that is not a list"),
        (b"N(e", "appending to something that is not a list"),
        (b"NN", "exactly one value"),
        (b"(N", "exactly one value"),
        (glob("numpy", "dtype"), "holds numpy.dtype, not data"),
        (b"]q\x00h\x00a", "nested more than 8 deep"),  # a list holding itself
    ]:
        with pytest.raises(ValueError, match=why):
            parse(proto(4) + blob + STOP)


def test_shared_references_are_resolved_once():
    # A tuple of 250 references to a tuple of 250 references ... is tiny in
    # the file; resolving each reference separately would take 250**6 steps.
    blob = proto(4) + b"]" + b"(" + integer(0) + b"q\x00"
    for level in range(1, 7):
        blob += b"(" + (b"h" + bytes([level - 1])) * 250 + b"t" + b"q" + bytes([level])
    value = parse(blob + b"e" + STOP)
    assert isinstance(value, list) and len(value) == 7
    assert len(value[-1]) == 250 and value[-1][0] is value[-1][1] and value[-1][0] is value[-2]


def test_structure_is_checked(tmp_path):
    X = np.zeros((2, 784), np.float32)
    y = np.zeros(2, np.int64)
    for data, why in [
        ((X, y), "layout"),
        (((X, y), (X, y), (X,)), "not a pair"),
        (((X, y), (X, y), (X[:, :5], y)), r"shape \(n, 784\)"),
        (((X, y), (X, y), (X, y[:1])), "one label per image"),
        (((X, y), (X, y), (X, y + 10)), r"outside the range 0\.\.9"),
        (((X, y), (X, y), (X - 1, y)), r"outside \[0, 1\]"),
        (((X, y), (X, y), (X * np.nan, y)), r"outside \[0, 1\]"),
        (((X, y), (X, y), (X, y.astype(np.float64) + 0.5)), "integer labels"),
    ]:
        path = write(tmp_path / "m.pkl", pickle.dumps(data, protocol=4), gz=False)
        with pytest.raises(ValueError, match=why):
            datasets.read_mnist_pickle(path)


def test_read_mnist_pickle_arguments(tmp_path):
    with pytest.raises(TypeError, match="path"):
        datasets.read_mnist_pickle(3)
    with pytest.raises(TypeError, match="max_bytes"):
        datasets.read_mnist_pickle(tmp_path / "x", max_bytes=1.5)
    with pytest.raises(ValueError, match="max_bytes"):
        datasets.read_mnist_pickle(tmp_path / "x", max_bytes=0)
    with pytest.raises(FileNotFoundError):
        datasets.read_mnist_pickle(tmp_path / "missing.pkl.gz")
    with pytest.raises(IsADirectoryError):
        datasets.read_mnist_pickle(tmp_path)


# --------------------------------------------------------------------------
# bombs and lying headers


def gzip_zeros(prefix, n_zeros, suffix=b""):
    """A gzip member of `prefix`, `n_zeros` zero bytes and `suffix`, made in 1 MiB steps."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [c.compress(prefix)]
    zeros = bytes(1 << 20)
    for _ in range(n_zeros >> 20):
        out.append(c.compress(zeros))
    out.append(c.compress(bytes(n_zeros & ((1 << 20) - 1))))
    out.append(c.compress(suffix))
    out.append(c.flush())
    return b"".join(out)


def test_bombs_pickle_claims_are_checked_before_reading(tmp_path):
    for claim in (2 ** 62, 2 ** 31):
        path = tmp_path / "bomb.pkl.gz"
        path.write_bytes(gzip_zeros(proto(4) + b"\x8e" + struct.pack("<Q", claim), 1 << 20))
        with pytest.raises(ValueError, match=rf"string of {claim} bytes goes past the limit of 1073741824"):
            datasets.read_mnist_pickle(path)
    path.write_bytes(gzip_zeros(proto(4) + b"\x95" + struct.pack("<Q", 2 ** 56), 1 << 10))
    with pytest.raises(ValueError, match=r"frame of 72057594037927936 bytes"):
        datasets.load_mnist(path)


def test_bombs_pickle_stops_at_max_bytes(tmp_path):
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(gzip_zeros(proto(3) + b"B" + struct.pack("<I", 32 << 20), 32 << 20, STOP))
    with pytest.raises(ValueError, match=r"past the limit of 4194304 bytes \(max_bytes\)"):
        datasets.read_mnist_pickle(path, max_bytes=4 << 20)
    with pytest.raises(ValueError, match=r"past the limit of 4194304 bytes"):
        datasets.load_mnist(path, max_bytes=4 << 20)


def test_bombs_many_small_opcodes(tmp_path):
    # A million NONEs: a few kB compressed, a million objects if obeyed.
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(gzip.compress(proto(4) + b"N" * 1_000_000 + STOP))
    with pytest.raises(ValueError, match=r"more than 100000 opcodes"):
        datasets.read_mnist_pickle(path)


def test_bombs_trailing_data_is_never_inflated(tmp_path):
    # Only what the opcodes ask for is decompressed: 256 MiB of zeros after
    # STOP cost nothing (the limit is 1 MiB here).
    blob = mnist_ops(fake_parts(), "binbytes")
    path = tmp_path / "m.pkl.gz"
    path.write_bytes(gzip_zeros(blob, 0) + gzip_zeros(b"", 256 << 20))
    got = datasets.read_mnist_pickle(path, max_bytes=1 << 20)
    assert got[0][0].shape == (5, 784)


def idx_header(magic, dims):
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims)


def write_labels(directory, n, stem="train"):
    (directory / f"{stem}-labels-idx1-ubyte").write_bytes(idx_header(0x801, (n,)) + bytes(n))


def test_lying_idx_header_is_refused_before_reading(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_zeros(idx_header(0x803, (2 ** 32 - 1, 28, 28)), 1 << 20))
    write_labels(tmp_path, 10)
    with pytest.raises(ValueError, match=r"more than the limit of 1073741824 bytes \(max_bytes\)"):
        datasets.load_mnist(path)
    # 200 images (1.4 MB of memory) are refused under a 1 MB limit.
    path.write_bytes(gzip_zeros(idx_header(0x803, (200, 28, 28)), 200 * 784))
    with pytest.raises(ValueError, match=r"limit of 1000000 bytes"):
        datasets.load_mnist(path, max_bytes=1_000_000)


def test_bombs_idx_too_long_stops_after_the_data(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_zeros(idx_header(0x803, (10, 28, 28)), 256 << 20))
    write_labels(tmp_path, 10)
    with pytest.raises(ValueError, match=r"too long: .* 7840 data bytes, but the file holds more"):
        datasets.load_mnist(path)


def test_lying_idx_header_truncated_data(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header(0x803, (100_000, 28, 28)) + bytes(1000))
    write_labels(tmp_path, 100_000)
    with pytest.raises(ValueError, match=r"truncated: .* 78400000 data bytes, but the file holds 1000"):
        datasets.load_mnist(tmp_path)


# model files: zips made by hand, so every size field can lie


def npy(dtype, shape, data, fortran=False):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": fortran, "shape": shape})
    return buf.getvalue() + data


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def make_zip(members):
    """Zip bytes from (name, stored bytes, method, declared size, crc) tuples."""
    out, central = bytearray(), bytearray()
    for name, data, method, size, crc in members:
        offset, raw = len(out), name.encode()
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += raw + data
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    start = len(out)
    out += central + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                 len(central), start, 0)
    return bytes(out)


def model_members(tmp_path, sizes=(3, 2)):
    path = tmp_path / "good.npz"
    cbp.Network(list(sizes), seed=0).save(path)
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def member(name, content, method=zipfile.ZIP_STORED, size=None, crc=None, stored=None):
    if stored is None:
        stored = deflate(content) if method == zipfile.ZIP_DEFLATED else content
    return (name, stored, method, len(content) if size is None else size,
            zlib.crc32(content) if crc is None else crc)


def test_hand_made_zip_is_a_valid_model(tmp_path):
    members = model_members(tmp_path)
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        path = tmp_path / "m.npz"
        path.write_bytes(make_zip([member(n, c, method) for n, c in members.items()]))
        assert cbp.load(path).sizes == [3, 2]


@pytest.mark.parametrize("case, why", [
    ("npy claims more", r"claims 80000000000 bytes of data but holds 48"),
    ("npy claims less", r"claims 8 bytes of data but holds 48"),
    ("directory claims more", r"claims 48 bytes of data but holds 4048"),
    ("inflates less", r"a damaged or truncated \.npz archive|inflates to a size other than"),
    ("bad crc", r"Bad CRC-32"),
    ("object dtype", r"object arrays \(pickled data\)"),
    ("structured dtype", r"structured records"),
    ("long strings", r"not a number or a short string"),
    ("huge npy header", r"\.npy header of 60000 bytes"),
    ("duplicate", r"appears twice"),
    ("declared total", r"declare 2000\d{6} bytes, more than the limit of 1073741824"),
])
def test_lying_model_files(tmp_path, case, why):
    members = model_members(tmp_path)
    w0 = members["W0.npy"]
    rows = [member(n, c, zipfile.ZIP_DEFLATED) for n, c in members.items() if n != "W0.npy"]
    header_len = len(npy("<f8", (2, 3), b""))
    data = w0[header_len:]
    if case == "npy claims more":
        rows.append(member("W0.npy", npy("<f8", (10 ** 10,), data)))
    elif case == "npy claims less":
        rows.append(member("W0.npy", npy("<f8", (1,), data)))
    elif case == "directory claims more":
        rows.append(member("W0.npy", w0, zipfile.ZIP_DEFLATED, size=len(w0) + 4000))
    elif case == "inflates less":
        rows.append(member("W0.npy", w0, zipfile.ZIP_DEFLATED, stored=deflate(w0[:-20])))
    elif case == "bad crc":
        rows.append(member("W0.npy", w0, zipfile.ZIP_DEFLATED, crc=zlib.crc32(w0) ^ 1))
    elif case == "object dtype":
        rows.append(member("W0.npy", npy("O", (2, 3), bytes(48))))
    elif case == "structured dtype":
        rows.append(member("W0.npy", npy([("a", "<f8")], (2, 3), data)))
    elif case == "long strings":
        rows.append(member("W0.npy", npy("<U100000", (1,), bytes(400000))))
    elif case == "huge npy header":
        body = b"{" + b" " * 59998 + b"}"
        rows.append(member("W0.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body)) + body))
    elif case == "duplicate":
        rows += [member("W0.npy", w0), member("W0.npy", w0)]
    else:
        rows.append(member("W0.npy", w0, zipfile.ZIP_DEFLATED, size=2_000_000_000))
    path = tmp_path / "m.npz"
    path.write_bytes(make_zip(rows))
    with pytest.raises(ValueError, match=why):
        cbp.load(path)


def test_bombs_model_member_over_max_bytes(tmp_path):
    # 64 MiB of deflated zero weights: 64 kB on disk.
    zeros = npy("<f8", (8 << 20,), bytes(64 << 20))
    path = tmp_path / "m.npz"
    path.write_bytes(make_zip([member("W0.npy", zeros, zipfile.ZIP_DEFLATED)]))
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match=r"declare 67108992 bytes, more than the limit of 16777216"):
        cbp.load(path, max_bytes=16 << 20)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_npy_header_versions_are_read(tmp_path, version):
    members = model_members(tmp_path)
    w0 = members["W0.npy"]
    header_len = len(npy("<f8", (2, 3), b""))
    text = w0[10:header_len]  # the dict, padded, ending in a newline
    if version == 1:
        head = w0[:header_len]
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(text)) + text
    members["W0.npy"] = head + w0[header_len:]
    path = tmp_path / "m.npz"
    path.write_bytes(make_zip([member(n, c) for n, c in members.items()]))
    net = cbp.load(path)
    np.testing.assert_array_equal(net.weights[0], cbp.Network([3, 2], seed=0).weights[0])


def test_zip64_directory_bounds(tmp_path):
    base = make_zip([member("x.npy", npy("<f8", (0,), b""))])
    body, eocd = base[:-22], base[-22:]
    cd_size, cd_offset = struct.unpack("<II", eocd[12:20])
    record = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 10 ** 9, 10 ** 9, cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    eocd64 = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path = tmp_path / "m.npz"
    path.write_bytes(body + record + locator + eocd64)
    with pytest.raises(ValueError, match=r"lists 1000000000 entries"):
        cbp.load(path)


def test_memory_error_never_escapes(tmp_path, monkeypatch):
    # With a limit above the memory free, allocation itself fails: the
    # readers must still answer ValueError.
    pkl = write(tmp_path / "m.pkl.gz", mnist_ops(fake_parts(sizes=(10, 2, 2)), "binbytes"))
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(idx_header(0x803, (1, 28, 28)) + bytes(784))
    write_labels(tmp_path / "idx", 1)
    model = tmp_path / "m.npz"
    small_net().save(model)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "empty", no_memory)
    for call in (lambda: datasets.read_mnist_pickle(pkl, max_bytes=2 ** 62),
                 lambda: datasets.load_mnist(pkl, max_bytes=2 ** 62),
                 lambda: datasets.load_mnist(tmp_path / "idx", max_bytes=2 ** 62),
                 lambda: cbp.load(model, max_bytes=2 ** 62)):
        with pytest.raises(ValueError, match=r"not enough memory"):
            call()


def test_zip_directory_bounds(tmp_path):
    row = member("x.npy", npy("<f8", (0,), b""))
    path = tmp_path / "m.npz"
    path.write_bytes(make_zip([row] * 5000))
    with pytest.raises(ValueError, match=r"lists 5000 entries"):
        cbp.load(path)


# --------------------------------------------------------------------------
# memory, measured in a child process


# ru_maxrss of a child starts at its parent's peak (Linux carries it across
# fork and exec: under pytest that hid a 300 MB peak), so the child resets
# its high-water mark through /proc/self/clear_refs and reads VmHWM, both in
# KiB like ru_maxrss; where /proc is missing it falls back to ru_maxrss.
_RSS_CHILD = textwrap.dedent("""
    import json, re, resource, sys
    import cbp
    from cbp import datasets

    def peak():
        try:
            with open("/proc/self/status") as f:
                return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = peak()
    results = {}
    for kind, path, max_bytes in json.loads(sys.argv[1]):
        try:
            if kind == "control":  # proves the measurement sees a real allocation
                import numpy as np
                touched = np.ones(max_bytes // 8)
                raise ValueError(f"allocated {touched.nbytes} bytes")
            if kind == "model":
                cbp.load(path, max_bytes=max_bytes)
            elif kind == "pickle":
                datasets.read_mnist_pickle(path, max_bytes=max_bytes)
            else:
                datasets.load_mnist(path, max_bytes=max_bytes)
            results[path] = "loaded"
        except ValueError as exc:
            results[path] = "ValueError: " + str(exc)[:200]
        except BaseException as exc:
            results[path] = type(exc).__name__ + ": " + str(exc)[:200]
    after = peak()
    print(json.dumps({"kib": after - before, "results": results}))
""")


def run_child(script, *args, timeout=TIMEOUT):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_rss_stays_bounded_on_bombs(tmp_path):
    jobs = []

    def add(kind, name, blob, max_bytes=None):
        path = tmp_path / name
        path.write_bytes(blob)
        jobs.append((kind, str(path), max_bytes))

    # Claims of up to 900 MB (within the default limit) with 1 MB present:
    # the memory set aside for them must not be touched.
    add("pickle", "claim.pkl.gz", gzip_zeros(proto(4) + b"\x8e" + struct.pack("<Q", 900 << 20), 1 << 20))
    add("pickle", "claim62.pkl.gz", gzip_zeros(proto(4) + b"\x8e" + struct.pack("<Q", 2 ** 62), 1 << 20))
    add("pickle", "codecs.pkl.gz", gzip_zeros(proto(2) + b"X" + struct.pack("<I", 900 << 20), 1 << 20))
    add("pickle", "limit.pkl.gz", gzip_zeros(proto(3) + b"B" + struct.pack("<I", 200 << 20), 200 << 20), 8 << 20)
    # The 61-byte attack: an object array of 3 * 2**27 elements.
    recon = glob("numpy.core.multiarray", "_reconstruct") + tup(glob("numpy", "ndarray"), tup(integer(0)), py2str(b"b")) + REDUCE
    add("pickle", "objects.pkl", proto(2) + recon + b"(" + integer(1) + shape_ops((3 * 2 ** 27,))
        + dtype_ops(np.dtype(object), "py2") + FALSE + b"]" + b"t" + BUILD + STOP)
    add("pickle", "nones.pkl.gz", gzip.compress(proto(4) + b"N" * 5_000_000 + STOP))
    (tmp_path / "idx").mkdir()
    write_labels(tmp_path / "idx", 100_000)
    add("mnist", "idx/train-images-idx3-ubyte", idx_header(0x803, (100_000, 28, 28)) + bytes(1 << 20))
    write_labels(tmp_path, 10, stem="long")
    write_labels(tmp_path, 10, stem="huge")
    add("mnist", "long-images-idx3-ubyte.gz", gzip_zeros(idx_header(0x803, (10, 28, 28)), 256 << 20))
    add("mnist", "huge-images-idx3-ubyte.gz", gzip_zeros(idx_header(0x803, (2 ** 32 - 1, 28, 28)), 1 << 20))
    add("model", "stored.npz", make_zip([member("W0.npy", npy("<f8", (100 << 20,), b""), size=(800 << 20) + 128)]))
    add("model", "deflated.npz", make_zip([member("W0.npy", npy("<f8", (32 << 20,), bytes(256 << 20)),
                                                  zipfile.ZIP_DEFLATED)]), 64 << 20)
    add("model", "npy-lies.npz", make_zip([member("W0.npy", npy("<f8", (2 ** 40,), bytes(800)))]))
    proc = run_child(_RSS_CHILD, json.dumps(jobs))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for kind, path, _ in jobs:
        assert report["results"][path].startswith("ValueError: "), (path, report["results"][path])
    # The largest buffer any of these files asks for is 900 MB; the peak
    # grows by at most a few chunks of 1 MiB plus the one bomb file that
    # holds 1 MiB of real data per read.
    assert report["kib"] < 48 * 1024, report
    control = json.loads(run_child(_RSS_CHILD, json.dumps([("control", "-", 96 << 20)])).stdout)
    assert control["kib"] > 80 * 1024, control


# --------------------------------------------------------------------------
# FIFOs, devices, sockets, directories: refused, without blocking


_SPECIAL_CHILD = textwrap.dedent("""
    import json, sys
    import cbp
    from cbp import datasets
    net = cbp.Network([2, 2], seed=0)
    out = {}
    for path in sys.argv[1:]:
        for what, call in [("load", lambda: cbp.load(path)),
                           ("load_mnist", lambda: datasets.load_mnist(path)),
                           ("read_mnist_pickle", lambda: datasets.read_mnist_pickle(path)),
                           ("save", lambda: net.save(path))]:
            try:
                call()
                out[path + " " + what] = "no error"
            except (ValueError, OSError) as exc:
                out[path + " " + what] = type(exc).__name__ + ": " + str(exc)
    print(json.dumps(out))
""")


def special_files(tmp_path):
    """{path: description} of a FIFO, device nodes, a socket and a directory in tmp_path."""
    made = {}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    made[str(fifo)] = "a FIFO"
    try:
        for name, minor in (("null", 3), ("zero", 5)):
            os.mknod(tmp_path / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
            made[str(tmp_path / name)] = "a character device"
    except (PermissionError, OSError):
        pass
    short = Path("/tmp") / f"cbp-sock-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(short))
        made[str(short)] = "a socket"
    except OSError:
        sock.close()
        sock = None
    (tmp_path / "dir").mkdir()
    made[str(tmp_path / "dir")] = "directory"
    return made, sock, short


def test_special_files_are_refused_without_blocking(tmp_path):
    made, sock, sock_path = special_files(tmp_path)
    try:
        proc = run_child(_SPECIAL_CHILD, *made)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        for path, kind in made.items():
            for what in ("load", "load_mnist", "read_mnist_pickle", "save"):
                result = out[f"{path} {what}"]
                if kind == "directory":
                    if what != "load_mnist":  # a directory of IDX files is a data set
                        assert result.startswith("IsADirectoryError"), (path, what, result)
                else:
                    assert result.startswith("ValueError") and f"is {kind}" in result, (path, what, result)
        # Nothing was replaced.
        assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
        if str(tmp_path / "null") in made:
            assert stat.S_ISCHR(os.lstat(tmp_path / "null").st_mode)
        if sock is not None:
            assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    finally:
        if sock is not None:
            sock.close()
            sock_path.unlink(missing_ok=True)
    if not any(kind == "a character device" for kind in made.values()):
        pytest.skip("mknod of a character device is not permitted here (FIFO, socket, directory checked)")


def test_special_fifo_inside_a_data_directory(tmp_path):
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    write_labels(tmp_path, 1)
    proc = run_child("import sys; from cbp import datasets\n"
                     "try:\n    datasets.load_mnist(sys.argv[1])\n"
                     "except ValueError as e:\n    print('ValueError', e)\n", str(tmp_path))
    assert proc.returncode == 0 and "is a FIFO" in proc.stdout, (proc.stdout, proc.stderr)


def cli(*args, timeout=TIMEOUT):
    return subprocess.run([sys.executable, "-m", "cbp", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.mark.slow
def test_cli_on_fifo_and_device_does_not_block(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    specials = {fifo: "a FIFO"}
    try:  # an endless device, like /dev/zero
        os.mknod(tmp_path / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
        specials[tmp_path / "zero"] = "a character device"
    except (PermissionError, OSError):
        pass
    model = tmp_path / "m.npz"
    cbp.Network([784, 10], seed=0).save(model)
    for special, kind in specials.items():
        for args in (["train", "--epochs", "0", "--data", str(special)],
                     ["evaluate", str(model), "--data", str(special)],
                     ["evaluate", str(special)],
                     ["train", "--epochs", "0", "--sizes", "784,10", "--save", str(special)]):
            proc = cli(*args)
            assert proc.returncode != 0 and f"is {kind}" in proc.stderr, (args, proc.stderr)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    if len(specials) == 1:
        pytest.skip("mknod of a character device is not permitted here (the FIFO was checked)")
    assert stat.S_ISCHR(os.lstat(tmp_path / "zero").st_mode)


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cli_refuses_evil_pickle(tmp_path, command):
    marker = tmp_path / "pwned"
    path = write(tmp_path / "mnist.pkl.gz",
                 pickle.dumps((fake_parts()[0], _Evil(_marker_command(marker)), None), protocol=2))
    model = tmp_path / "m.npz"
    cbp.Network([784, 10], seed=0).save(model)
    args = (["train", "--epochs", "0", "--data", str(path)] if command == "train"
            else ["evaluate", str(model), "--data", str(path)])
    proc = cli(*args)
    assert proc.returncode != 0, proc.stderr
    assert "refusing to load the global" in proc.stderr
    assert not marker.exists()


# --------------------------------------------------------------------------
# saving


def small_net(seed=0):
    return cbp.Network([3, 2], seed=seed)


def test_save_through_symlink_replaces_its_target(tmp_path):
    real = tmp_path / "models" / "v1.npz"
    real.parent.mkdir()
    small_net(0).save(real)
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    chain = tmp_path / "chain.npz"
    chain.symlink_to(link)
    small_net(1).save(chain)
    assert link.is_symlink() and chain.is_symlink()
    assert os.readlink(link) == str(real)
    np.testing.assert_array_equal(cbp.load(real).weights[0], small_net(1).weights[0])
    assert sorted(os.listdir(real.parent)) == ["v1.npz"]  # no temp file left, none beside the link
    assert sorted(os.listdir(tmp_path)) == ["chain.npz", "latest.npz", "models"]


def test_save_through_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "new.npz")
    small_net().save(link)
    assert link.is_symlink() and (tmp_path / "new.npz").is_file()
    assert cbp.load(link).sizes == [3, 2]


def test_save_through_symlink_to_a_device_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "m.npz"
    link.symlink_to(fifo)
    with pytest.raises(ValueError, match=r"a link to .*fifo\): is a FIFO"):
        small_net().save(link)
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("old, new", [(0o640, 0o640), (0o6755, 0o755), (0o1644, 0o644), (0o7777, 0o777)])
def test_save_keeps_permission_bits_only(tmp_path, old, new):
    path = tmp_path / "m.npz"
    small_net().save(path)
    os.chmod(path, old)
    assert stat.S_IMODE(os.stat(path).st_mode) == old
    small_net(1).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == new
    np.testing.assert_array_equal(cbp.load(path).weights[0], small_net(1).weights[0])


def test_save_into_missing_directory_names_the_path(tmp_path):
    path = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        small_net().save(path)
    assert info.value.filename == str(path)
    assert ".tmp" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        cbp.io.save(small_net(), str(path))
    assert info.value.filename == str(path)


# --------------------------------------------------------------------------
# downloads


class _Endless(http.server.BaseHTTPRequestHandler):
    sent = 0
    declare = False

    def do_GET(self):
        self.send_response(200)
        if type(self).declare:
            self.send_header("Content-Length", str(10 ** 9))
        self.end_headers()
        chunk = bytes(1 << 16)
        try:
            for _ in range(300 << 4):  # up to 300 MiB
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("declare", [False, True])
def test_download_stops_past_the_known_size(tmp_path, declare):
    _Endless.sent, _Endless.declare = 0, declare
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(ValueError, match=r"larger than the \d+ bytes any copy of this MNIST file takes"):
            datasets.download_mnist(tmp_path, base_url=url, kinds="t10k", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    limit = _download._download_limit("t10k-images-idx3-ubyte.gz")
    assert limit < 3_000_000
    # What the server pushed before the client hung up: the limit plus
    # socket buffers, far from the 300 MiB on offer.
    assert _Endless.sent < limit + (16 << 20)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# fuzz: the parser only ever returns or raises ValueError


OPCODES = [op.code.encode("latin-1") for op in pickletools.opcodes]
VALID = mnist_ops(fake_parts(sizes=(1, 1, 1)), "binbytes")
VALID_PY2 = mnist_ops(fake_parts(sizes=(1, 1, 1)), "py2")


def _fuzz_check(blob):
    try:
        value = parse(blob, max_bytes=1 << 16)
    except ValueError:
        return
    # What comes back is plain data.
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            stack.extend(v)
        else:
            assert v is None or isinstance(v, (bool, int, str, bytes, np.ndarray)), type(v)
            if isinstance(v, np.ndarray):
                assert not v.dtype.hasobject


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(OPCODES), st.binary(max_size=9)), max_size=40),
       protocol=st.integers(2, 5))
def test_fuzz_random_opcode_streams(ops, protocol):
    _fuzz_check(proto(protocol) + b"".join(op + arg for op, arg in ops))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from([VALID, VALID_PY2]),
       edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255),
                                st.sampled_from(["flip", "insert", "delete", "cut"])), min_size=1, max_size=6))
def test_fuzz_mutated_valid_files(tmp_path, base, edits):
    blob = bytearray(base)
    for at, byte, how in edits:
        at %= len(blob) + 1
        if how == "flip" and at < len(blob):
            blob[at] = byte
        elif how == "insert":
            blob[at:at] = bytes([byte])
        elif how == "delete":
            del blob[at:at + 1]
        elif how == "cut":
            del blob[at:]
    _fuzz_check(bytes(blob))
    # The whole reader, structure checks included, on the same bytes.
    path = tmp_path / "m.pkl"
    path.write_bytes(bytes(blob))
    try:
        datasets.read_mnist_pickle(path)
    except ValueError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, len(VALID) - 1), gadget=st.sampled_from(GADGETS), stacked=st.booleans())
def test_fuzz_gadget_spliced_into_valid_file(tmp_path, at, gadget, stacked):
    marker = tmp_path / "pwned"
    ref = (sglob if stacked else glob)(*gadget) + tup(bu(_marker_command(marker))) + REDUCE
    blob = VALID[:at] + ref + VALID[at:]
    path = tmp_path / "m.pkl"
    path.write_bytes(blob)
    with pytest.raises(ValueError):
        datasets.read_mnist_pickle(path)
    assert not marker.exists()
