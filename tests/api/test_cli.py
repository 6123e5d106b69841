"""The cbp command: run as ``python -m cbp`` in a subprocess, and main() in-process."""
import gzip
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import cbp
from cbp import datasets
from cbp.cli import main
from conftest import default_sigint

ACCURACY = re.compile(r"accuracy (\d+\.\d\d)% \((\d+)/(\d+)\)")


def run(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "cbp", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def call(capsys, *argv):
    """main(argv) in-process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_usage_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cbp: error" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for w in words:
        assert w in result.stderr, (w, result.stderr)


# -- train / evaluate ---------------------------------------------------------


def test_train_quiet_prints_accuracy():
    r = run("train", "--epochs", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and ACCURACY.search(lines[0]), r.stdout
    assert r.stderr == ""


@pytest.mark.slow
def test_train_save_plot_then_evaluate(tmp_path):
    model, png = tmp_path / "m.npz", tmp_path / "c.png"
    r = run("train", "--epochs", "2", "--save", model, "--plot", png, cwd=tmp_path)
    if r.returncode == 2 and "needs matplotlib" in r.stderr:
        pytest.skip("matplotlib is not installed")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Epoch 1/2: accuracy" in out and "Epoch 2/2: accuracy" in out
    assert "784, 30, 10" in out and "4000 training examples, 1000 test examples" in out
    final = ACCURACY.findall(out.strip().splitlines()[-3])   # the summary line
    assert final == ACCURACY.findall(out)[-1:]
    assert png.read_bytes().startswith(b"\x89PNG") and model.stat().st_size > 0
    net = cbp.load(model)
    assert net.sizes == [784, 30, 10]
    e = run("evaluate", model)
    assert e.returncode == 0, e.stderr
    assert ACCURACY.findall(e.stdout) == final


def test_train_is_reproducible_and_honours_flags(capsys):
    args = ("train", "--epochs", "1", "--quiet", "--sizes", "784,12,10", "--activation", "tanh",
            "--output-activation", "softmax", "--cost", "log_likelihood", "-m", "20",
            "--eta", "0.5", "--momentum", "0.5", "--lmbda", "1", "--dtype", "float32",
            "--seed", "7")
    code, out, err = call(capsys, *args)
    assert code == 0, err
    first = ACCURACY.findall(out)
    assert len(first) == 1
    assert ACCURACY.findall(call(capsys, *args)[1]) == first




# -- explain ------------------------------------------------------------------


def test_explain_prints_slide_numbers():
    r = run("explain")
    assert r.returncode == 0, r.stderr
    for number in ["-0.8800", "-0.7300", "0.2100", "-0.1054", "-0.0492", "0.0033", "-0.0054",
                   "-0.0053", "-0.0309", "-0.0582", "-0.0272"]:
        assert number in r.stdout, number
    assert "Output error (BP1): δ^3 = ∇_a C ⊙ σ'(z^3)" in r.stdout


def test_explain_options(capsys):
    code, out, _ = call(capsys, "explain", "--digits", "2", "--x", "1,0", "--y", "0,1")
    assert code == 0
    assert "a^1 = x = [1.00  0.00]ᵀ" in out
    code, _, err = call(capsys, "explain", "--x", "1,2,3")
    assert code == 2 and "x must have shape" in err


def test_explain_model(tmp_path, capsys):
    model = tmp_path / "m.npz"
    cbp.Network([784, 30, 10], seed=0).save(model)
    code, out, err = call(capsys, "explain", model, "--index", "3")
    assert code == 0, err
    assert "Example 3 of the embedded sample's held-out images: label 3" in out
    assert "30×784 matrix" in out and "δ^2" in out
    assert max(len(line) for line in out.splitlines()) < 200
    code, _, err = call(capsys, "explain", model, "--x", "0.5")
    assert code == 2 and "--y" in err


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize("flags, words", [
    (["--eta", "-1"], ["eta"]),
    (["--sizes", "784,0,10"], ["sizes"]),
    (["--cost", "nope"], ["cost", "nope"]),
])
def test_bad_flags_subprocess(flags, words):
    assert_usage_error(run("train", "--epochs", "1", *flags), *words)


@pytest.mark.parametrize("flags, words", [
    (["--sizes", "784,abc,10"], ["--sizes"]),
    (["--sizes", "2,3,2"], ["784 inputs"]),
    (["--sizes", "784,30,5"], ["labels up to 9"]),
    (["--activation", "softmax"], ["softmax"]),
    (["--cost", "cross_entropy", "--output-activation", "tanh"], ["cross_entropy"]),
    (["--epochs", "-1"], ["epochs"]),
    (["-m", "0"], ["mini_batch_size"]),
    (["--momentum", "1"], ["momentum"]),
    (["--eta", "nan"], ["eta"]),
    (["--lmbda", "-0.1"], ["lmbda"]),
    (["--dtype", "int8"], ["dtype"]),
    (["--seed", "-3"], ["seed"]),
    (["--epochs", "two"], ["--epochs"]),
    (["--save", "/no/such/dir/m.npz"], ["/no/such/dir"]),
    (["--bogus"], ["--bogus"]),
])
def test_bad_flags_in_process(capsys, flags, words):
    assert main(["train", "--epochs", "1", "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert "cbp: error" in err and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_missing_data_path(tmp_path):
    missing = tmp_path / "no-mnist-here"
    r = run("train", "--epochs", "1", "--data", missing)
    assert_usage_error(r, str(missing))


def test_evaluate_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    r = run("evaluate", bad)
    assert_usage_error(r, "bad.npz", "not a cbp model file")
    small = tmp_path / "small.npz"
    cbp.Network([2, 3, 2]).save(small)
    assert main(["evaluate", str(small)]) == 2
    assert "784 inputs" in capsys.readouterr().err


def test_no_command_and_help_and_version(capsys):
    assert main([]) == 2
    assert "cbp: error" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert cbp.__version__ in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "--mini-batch-size" in capsys.readouterr().out


# -- data from files -----------------------------------------------------------


def write_idx(directory, kind, images, labels):
    """MNIST IDX files (gzipped): magic, counts, then the raw bytes."""
    n = len(labels)
    with gzip.open(directory / f"{kind}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(directory / f"{kind}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


def test_train_on_idx_directory(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.arange(50) % 10
    images = rng.integers(0, 256, (50, 28, 28))
    write_idx(tmp_path, "t10k", images, labels)
    code, out, err = call(capsys, "train", "--epochs", "2", "--data", tmp_path)
    assert code == 0, err
    assert "40 training examples, 10 test examples" in out
    assert "(t10k only), last 10 held out" in out
    write_idx(tmp_path, "train", images[:30], labels[:30])
    code, out, err = call(capsys, "train", "--epochs", "1", "--data", tmp_path)
    assert code == 0, err
    assert "30 training examples, 50 test examples" in out
    model = tmp_path / "m.npz"
    cbp.Network([784, 5, 10], seed=0).save(model)
    code, out, err = call(capsys, "evaluate", model, "--data", tmp_path)
    assert code == 0, err
    assert re.search(r"accuracy \d+\.\d\d% \(\d+/50\)", out) and "(t10k)" in out


# -- Ctrl-C and bench ----------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_saves_and_exits_130(tmp_path):
    model = tmp_path / "m.npz"
    p = subprocess.Popen([sys.executable, "-m", "cbp", "train", "--epochs", "100000",
                          "--save", str(model)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if line.startswith("Epoch 2/") or not line:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    final = [line for line in out.splitlines() if line.startswith("Interrupted in epoch")]
    assert len(final) == 1 and ACCURACY.search(final[0]), out
    # The accuracy reported is the saved network's, evaluated afresh (Ctrl-C
    # lands within an epoch, after the last epoch line).
    saved = cbp.load(model)
    assert saved.sizes == [784, 30, 10]
    correct = int(re.search(r"\((\d+)/1000\)", final[0]).group(1))
    assert correct == saved.evaluate(datasets.load_sample()[1])
    done = int(re.search(r"\((\d+) complete\)", final[0]).group(1))
    assert f"Interrupted in epoch {done + 1}/100000" in final[0] and "as saved" in final[0]


def test_bench_runs_the_suite(tmp_path):
    # cbp bench runs bench/run.py of the source tree (the suite is not shipped).
    from cbp import cli
    if cli._bench_script() is None:
        pytest.skip("cbp is installed from a copy, not a source tree (the debug build's phase): "
                    "test_bench_outside_a_source_tree covers it")
    out = tmp_path / "quick.json"
    r = run("bench", "--quick", "--sections", "checks", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "Self-check" in r.stdout and "host:" in r.stdout
    assert out.exists()


def test_entry_point_module():
    r = run("--help")
    assert r.returncode == 0
    for command in ("train", "evaluate", "explain", "bench"):
        assert command in r.stdout


def test_bench_outside_a_source_tree(capsys, monkeypatch):
    from cbp import cli
    monkeypatch.setattr(cli, "_bench_script", lambda: None)
    code, out, err = call(capsys, "bench", "--quick")
    assert code == 1 and "bench/run.py" in err and "source tree" in err
