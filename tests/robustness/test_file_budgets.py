"""No small file takes gigabytes (issue 18): every reader is bounded by what it allocates.

Each file is read in a child process that reports the growth of its peak
resident set (VmHWM) during the one call, so the bound is measured, not
inferred from the code.  The files are scaled down from the
issue's (a few tens of MB where the issue had gigabytes) to keep the suite
fast; each still needs several times its bound without the fix.
"""
import bz2
import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import cbp
import cbp.datasets
import cbp.io
import cbp.network2

MiB = 1 << 20

RSS_CHILD = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import cbp, cbp.datasets, cbp.network2
    kind, path, max_bytes = json.loads(sys.argv[1])
    calls = {
        "model": lambda: cbp.load(path, max_bytes=max_bytes),
        "pickle": lambda: cbp.datasets.read_mnist_pickle(path, max_bytes=max_bytes),
        "network2": lambda: cbp.network2.load(path, **({"max_bytes": max_bytes} if max_bytes else {})),
        "json": lambda: json.loads(open(path, "rb").read()),
    }
    def peak():
        # The peak RSS of this process's own memory (VmHWM).  getrusage's
        # ru_maxrss would do, but Linux carries it over exec from the parent
        # (pytest, hundreds of MB), hiding any growth below that.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    base = peak()
    start = time.perf_counter()
    try:
        value = calls[kind]()
        result = "ok"
    except Exception as exc:
        result = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"result": result, "bytes": peak() - base,
                      "seconds": time.perf_counter() - start}))
""")


def measure(kind, path, max_bytes=None):
    """{"result", "bytes" (growth of the peak RSS), "seconds"} of one read in a child."""
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, json.dumps([kind, str(path), max_bytes])],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    print(kind, os.path.basename(str(path)), report)
    return report


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="peak RSS from /proc/self/status (Linux)")


def npy(dtype, shape, data=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + data


# -- zip members: stored or deflated only ---------------------------------------


def zip_with_raw(name, method, compressed, declared):
    """A one-member zip holding ``compressed`` as is, its directory declaring ``declared`` bytes."""
    name = name.encode()
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 46, 0, method, 0, 0, 0, len(compressed),
                        declared, len(name), 0) + name
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 46, 46, 0, method, 0, 0, 0,
                          len(compressed), declared, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(compressed), 0)
    return local + compressed + central + end


def test_a_bzip2_member_is_refused_before_it_inflates(tmp_path):
    # The 4.7 KB file took 6 GB: zipfile inflates a bzip2 (or LZMA)
    # chunk whole, whatever size the directory declares.  Here 64 MiB of
    # zeros behind a directory that declares a (2, 3) array.
    small = npy("<f8", (2, 3))
    c = bz2.BZ2Compressor(1)
    data = c.compress(small) + b"".join(c.compress(bytes(MiB)) for _ in range(64)) + c.flush()
    path = tmp_path / "bomb.npz"
    path.write_bytes(zip_with_raw("W0.npy", zipfile.ZIP_BZIP2, data, len(small) + 48))
    assert path.stat().st_size < 10_000
    report = measure("model", path)
    assert report["result"].startswith("ValueError") and "stored" in report["result"], report
    assert report["bytes"] < 16 * MiB, report


def test_an_lzma_member_is_refused(tmp_path):
    path = tmp_path / "lzma.npz"
    net = cbp.Network([3, 2], seed=0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_LZMA) as z:
        for key, value in cbp.io._arrays(net).items():
            z.writestr(key + ".npy", npy(value.dtype, value.shape, value.tobytes()))
    with pytest.raises(ValueError, match=r"compressed with zip method 14; .*stored .*deflated"):
        cbp.load(path)


# -- the zip64 end record, where zipfile reads it -----------------------------------


def test_the_zip64_record_zipfile_reads_is_the_one_checked(tmp_path):
    # A directory of 30,000 entries announced only by the zip64 record just
    # before the locator (where zipfile reads it); the plain record and the
    # locator's offset say otherwise.  The guard must refuse it before
    # zipfile builds 30,000 entries.
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as z:
        for k in range(30_000):
            z.writestr(f"x{k}", b"")
    blob = raw.getvalue()
    entries, cd_size, cd_offset = struct.unpack("<H2I", blob[-12:-2])
    body = blob[:-22]
    record = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size,
                         cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, 0, 1)    # points at offset 0
    plain = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, 46, cd_offset, 0)
    path = tmp_path / "zip64.npz"
    path.write_bytes(body + record + locator + plain)
    with zipfile.ZipFile(path) as z:     # zipfile does see every entry
        assert len(z.infolist()) == 30_000
    report = measure("model", path)
    assert "its zip directory lists 30000 entries" in report["result"], report
    assert report["bytes"] < 8 * MiB, report


# -- model members: no inflation past any trained network's, one copy ---------------


def member_ratios(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {i.filename: i.file_size / i.compress_size for i in z.infolist()
                if i.filename[0] in "Wb"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_trained_networks_deflate_far_less_than_the_refused_ratio(dtype):
    # What the 100:1 bound rests on: the weights of a trained network are
    # noise to deflate.
    (X, y), _ = cbp.datasets.load_sample()
    net = cbp.Network([784, 30, 10], seed=0, dtype=dtype)
    cbp.SGD(3.0, mini_batch_size=10).run(net, (X[:2000], y[:2000]), 1)
    blob = io.BytesIO()
    np.savez_compressed(blob, **cbp.io._arrays(net))
    ratios = member_ratios(blob.getvalue())
    print(dtype, ratios)
    assert max(ratios.values()) < 2, ratios
    assert cbp.io._MAX_RATIO >= 50 * max(ratios.values())


def zero_model(tmp_path, sizes=(3000, 2500)):
    """A [3000, 2500] network of zero weights (60 MB), stored and deflated (~60 kB)."""
    net = cbp.Network(list(sizes), seed=0)
    net.weights = [np.zeros(w.shape) for w in net.weights]
    stored = tmp_path / "zeros.npz"
    net.save(stored)
    deflated = tmp_path / "zeros-deflated.npz"
    with np.load(stored) as f:
        np.savez_compressed(deflated, **{k: f[k] for k in f.files})
    return stored, deflated


def test_a_member_inflating_past_any_network_is_refused_then_read_once(tmp_path):
    stored, deflated = zero_model(tmp_path)
    weights = 3000 * 2500 * 8
    assert deflated.stat().st_size < weights / 500
    report = measure("model", deflated)
    assert "inflates" in report["result"] and "max_bytes" in report["result"], report
    assert report["bytes"] < 16 * MiB, report
    # A max_bytes above the default lifts the ratio bound; either file is
    # then read straight into the network's parameters: one copy.
    for path, max_bytes in ((deflated, 2 << 30), (stored, None)):
        report = measure("model", path, max_bytes)
        assert report["result"] == "ok", report
        assert report["bytes"] < 1.3 * weights, report


def test_a_model_read_in_place_equals_the_saved_one(tmp_path):
    net = cbp.Network([7, 5, 3], seed=3, dtype="float32")
    net.save(tmp_path / "m.npz")
    back = cbp.load(tmp_path / "m.npz")
    assert back.dtype == np.float32
    for a, b in zip(net.weights + net.biases, back.weights + back.biases):
        np.testing.assert_array_equal(a, b)
    # a matrix another writer stored in Fortran order
    with np.load(tmp_path / "m.npz") as f:
        entries = {k: f[k] for k in f.files}
    entries["W0"] = np.asfortranarray(entries["W0"])
    np.savez(tmp_path / "f.npz", **entries)
    np.testing.assert_array_equal(cbp.load(tmp_path / "f.npz").weights[0], net.weights[0])


# -- the pickle parser: every allocation charged ---------------------------------


def amplifying_pickle(n_text, repeats):
    """A pickle that memoizes one long text and encodes it again and again (issue: 1.1 KB -> 1.5 GB)."""
    ops = [b"\x80\x02", b"X" + struct.pack("<I", n_text) + b"a" * n_text, b"q\x00", b"]", b"("]
    for _ in range(repeats):
        ops.append(b"c_codecs\nencode\nh\x00\x8c\x06latin1\x86R")
    ops += [b"e", b"."]
    return gzip.compress(b"".join(ops), compresslevel=9)


def test_memo_reuse_cannot_multiply_a_string(tmp_path):
    path = tmp_path / "amplify.pkl.gz"
    path.write_bytes(amplifying_pickle(MiB, 200))
    assert path.stat().st_size < 10_000
    report = measure("pickle", path, 4 * MiB)
    assert "fetched again" in report["result"], report
    assert report["bytes"] < 16 * MiB, report


def test_the_bytes_an_encode_makes_are_charged(tmp_path):
    # 1 MiB of text read, decoded, then encoded once: 3 MiB made from it.
    path = tmp_path / "once.pkl.gz"
    path.write_bytes(amplifying_pickle(MiB, 1))
    with pytest.raises(ValueError, match="the bytes _codecs.encode makes"):
        cbp.datasets.read_mnist_pickle(path, max_bytes=2 * MiB + MiB // 2)


def mnist_pickle(path, n_train, dtype):
    parts = tuple((np.zeros((n, 784), dtype=dtype), np.zeros(n, dtype=np.int64))
                  for n in (n_train, 10, 10))
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=4), compresslevel=1))


def test_the_float32_conversion_counts_against_max_bytes(tmp_path):
    # uint8 images become float32: four times the bytes read.  40,000 images
    # of zeros (31 MB) with max_bytes 48 MiB would have taken 156 MB.
    path = tmp_path / "uint8.pkl.gz"
    mnist_pickle(path, 40_000, np.uint8)
    report = measure("pickle", path, 48 * MiB)
    assert "as float32" in report["result"] and "max_bytes" in report["result"], report
    assert report["bytes"] < 48 * MiB, report
    # float32 images need no conversion: the same budget reads them
    small = tmp_path / "float32.pkl.gz"
    mnist_pickle(small, 10_000, np.float32)
    (X, _), _, _ = cbp.datasets.read_mnist_pickle(small, max_bytes=48 * MiB)
    assert X.dtype == np.float32 and X.shape == (10_000, 784)


# -- network2's JSON: refused above a size the budget can parse -------------------


@pytest.mark.parametrize("item", [b"{}", b"[]", b"0.5", b'"ab"', b'{"":[[]]}', b"[[[[[[[[]]]]]]]]"])
def test_json_takes_less_than_the_assumed_bytes_per_byte(tmp_path, item):
    # What network2.load's bound assumes: json.loads builds at most
    # _JSON_EXPANSION bytes per byte of text (worst: nested empty lists, ~30).
    n = (2 * MiB) // (len(item) + 1)
    path = tmp_path / "pad.json"
    path.write_bytes(b"[" + b",".join([item] * n) + b"]")
    report = measure("json", path)
    ratio = report["bytes"] / path.stat().st_size
    print(item, f"{ratio:.1f} bytes per byte")
    assert ratio < cbp._network2_file.JSON_EXPANSION, report


def test_network2_json_is_refused_before_parsing(tmp_path):
    # The 99 MB of padding took 2.5 GB; here 10 MB of empty dicts
    # under max_bytes 64 MiB (would take ~240 MB to parse).
    path = tmp_path / "pad.json"
    n = 10 * MiB // 3
    path.write_bytes(b'{"sizes": [' + b",".join([b"{}"] * n) + b"]}")
    report = measure("network2", path, 64 * MiB)
    assert "larger than max_bytes/64" in report["result"], report
    assert report["bytes"] < 8 * MiB, report
    # a real network2 file loads under the same budget
    net = cbp.network2.Network([30, 20, 10])
    net.save(str(tmp_path / "real.json"))
    assert cbp.network2.load(tmp_path / "real.json", max_bytes=64 * MiB).sizes == [30, 20, 10]
