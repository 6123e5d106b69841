"""Training never hangs, whatever team OpenMP grants, and a forked child never deadlocks (issue 18).

Each scenario runs in a child process with a timeout: a regression shows up
as a timeout, not as a test run that never ends.  The children compare the
weights a team leaves with the one-thread driver's, bit for bit.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import cbp
import cbp.network2
from cbp import _core
from conftest import ROOT, default_sigint

TIMEOUT = 60    # seconds; each child needs a second or two on a quiet machine

# Trains [30, 40, 5] with teams forced on (team_min_flops(0)) for each count
# of threads asked for, then reports whether every count gave the one-thread
# weights and the team size OpenMP started for the last request.
TEAM_CHILD = textwrap.dedent("""
    import json, os, sys
    if os.environ.get("CHILD_ONE_CPU"):
        # before libgomp loads: it counts the CPUs it may use once
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import cbp
    from cbp import _core
    _core.team_min_flops(0)
    X = np.random.default_rng(0).random((200, 30))
    y = np.arange(200) % 5
    weights, teams = {}, {}
    for nt in [1] + json.loads(sys.argv[1]):
        net = cbp.Network([30, 40, 5], seed=1)
        cbp.SGD(0.5, mini_batch_size=7, momentum=0.5, num_threads=nt).run(net, (X, y), 2)
        weights[nt] = net._params.tobytes()
        teams[nt] = _core.last_team_size()
    print(json.dumps({"same": all(w == weights[1] for w in weights.values()), "teams": teams}))
""")


def run_child(code, *args, env=None, timeout=TIMEOUT):
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung for {timeout} s (env {env})")


def team_run(requested, env):
    import json
    proc = run_child(TEAM_CHILD, json.dumps(requested), env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_thread_limit_of_one_never_hangs_training():
    # The issue's case: OMP_THREAD_LIMIT=1 while cbp asks for 2 or 3.
    report = team_run([2, 3], {"OMP_THREAD_LIMIT": "1"})
    assert report["same"], report


def test_a_team_cut_by_the_thread_limit_gives_the_one_thread_weights():
    report = team_run([3, 4], {"OMP_THREAD_LIMIT": "2"})
    assert report["same"], report
    assert report["teams"]["3"] == report["teams"]["4"] == 2, report


def test_a_team_openmp_cuts_inside_the_region_gives_the_one_thread_weights():
    # OMP_DYNAMIC lets libgomp start fewer threads than asked (at most the
    # CPUs it may use, fewer on a loaded machine): the team is cut inside
    # the parallel region, after cbp sized it.
    report = team_run([8, 5, 3], {"OMP_DYNAMIC": "true", "OMP_NUM_THREADS": "8"})
    assert report["same"], report
    assert 1 <= report["teams"]["8"] < 8, report


def test_a_lone_thread_in_the_region_runs_the_one_thread_driver():
    # One CPU and OMP_DYNAMIC: libgomp starts a team of one.
    report = team_run([4, 2], {"OMP_DYNAMIC": "true", "CHILD_ONE_CPU": "1"})
    assert report["same"], report
    assert report["teams"]["4"] == report["teams"]["2"] == 1, report


def test_the_issue_scenario_under_default_settings():
    # [784, 100, 10], mini-batches of 100, every default, OMP_THREAD_LIMIT=1;
    # the same run through the scikit-learn estimator.
    code = textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        import numpy as np, cbp
        X = np.random.default_rng(0).random((300, 784)); y = np.arange(300) % 10
        net = cbp.Network([784, 100, 10], seed=0)
        cbp.SGD(3.0, mini_batch_size=100).run(net, (X, y), 1)
        if sys.argv[1] == "sklearn":
            try:
                from cbp.sklearn import MLPClassifier
            except ImportError:
                pass
            else:
                MLPClassifier(hidden_layer_sizes=(100,), batch_size=100, max_iter=1,
                              solver="sgd").fit(X, y)
        print("ok")
    """)
    for env, extra in (({"OMP_THREAD_LIMIT": "1"}, "sklearn"), ({"OMP_DYNAMIC": "true"}, "")):
        proc = run_child("import sys\n" + code, extra, env=env)
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


CTRL_C_CHILD = textwrap.dedent("""
    import sys, time, warnings
    warnings.simplefilter("ignore")
    import numpy as np, cbp
    from cbp import _core
    _core.team_min_flops(0)
    X = np.random.default_rng(0).random((2000, 30)); y = np.arange(2000) % 5
    net = cbp.Network([30, 40, 5], seed=1)
    print("training", flush=True)
    start = time.perf_counter()
    try:
        cbp.SGD(0.5, mini_batch_size=7, num_threads=8).run(net, (X, y), 100000)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        print("finite" if np.isfinite(net._params).all() else "nan", flush=True)
""")


@pytest.mark.parametrize("env", [{}, {"OMP_DYNAMIC": "true"}, {"OMP_THREAD_LIMIT": "1"}],
                         ids=["full team", "dynamic team", "thread limit 1"])
def test_ctrl_c_stops_training_with_any_team(env):
    full_env = dict(os.environ, **env)
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env,
                            preexec_fn=default_sigint)
    try:
        assert proc.stdout.readline().strip() == "training"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"Ctrl-C did not stop training within {TIMEOUT} s (env {env})")
    assert out.split() == ["interrupted", "finite"], (out, err)


FORK_CHILD = textwrap.dedent("""
    import json, multiprocessing as mp, warnings
    warnings.simplefilter("ignore")
    import numpy as np, cbp
    from cbp import _core

    X = np.random.default_rng(0).random((600, 30)); y = np.arange(600) % 5

    def work(threads=None):
        net = cbp.Network([30, 40, 5], seed=1)
        out = net.feedforward(X, num_threads=threads)
        cbp.SGD(0.5, mini_batch_size=7, num_threads=threads).run(net, (X, y), 1)
        return out.tobytes().hex(), net._params.tobytes().hex()

    def child(q):
        q.put([work(), work(4), _core.default_threads(), _core.usable_threads(4)])

    if __name__ == "__main__":
        _core.team_min_flops(0)
        one = work(1)
        work(2)          # the parent's OpenMP pool is now up
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        try:
            default, four, threads, usable = q.get(timeout=60)
        except Exception:       # queue.Empty: the child hung
            p.kill()
            print(json.dumps("hung"))
        else:
            p.join(60)
            print(json.dumps({"default": default == one, "four": four == one,
                              "threads": threads, "usable": usable, "code": p.exitcode}))
""")


def test_a_forked_child_runs_on_one_thread_with_identical_results(tmp_path):
    import json
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report != "hung", "the forked child hung in OpenMP"
    assert report == {"default": True, "four": True, "threads": 1, "usable": 1, "code": 0}


# -- impossible thread counts and sizes -------------------------------------


def test_impossible_thread_counts_are_value_errors():
    net = cbp.Network([4, 3, 2], seed=0)
    X = np.random.default_rng(0).random((50, 4))
    for bad in (2 ** 31, 2 ** 63):
        with pytest.raises(ValueError, match="num_threads"):
            cbp.SGD(0.1, mini_batch_size=5, num_threads=bad).run(net, (X, np.arange(50) % 2), 1)
        with pytest.raises(ValueError, match="num_threads"):
            net.feedforward(X, num_threads=bad)
    with pytest.raises(ValueError, match="num_threads"):
        _core.usable_threads(0)


def test_a_huge_thread_count_is_cut_before_any_workspace_is_sized():
    # 10**6 threads: the workspace is sized for the team that can run (at
    # most four per core), not 244 GiB.
    sizes = np.array([4, 3, 2], dtype=np.intp)
    usable = _core.usable_threads(10 ** 6)
    assert 1 <= usable <= max(4 * os.cpu_count(), _core.default_threads())
    assert _core.workspace_size(sizes, 5, 10 ** 6) == _core.workspace_size(sizes, 5, usable)
    net = cbp.Network([4, 3, 2], seed=0)
    ref = cbp.Network([4, 3, 2], seed=0)
    X = np.random.default_rng(0).random((50, 4))
    y = np.arange(50) % 2
    cbp.SGD(0.1, mini_batch_size=5, num_threads=10 ** 6).run(net, (X, y), 1)
    cbp.SGD(0.1, mini_batch_size=5, num_threads=1).run(ref, (X, y), 1)
    np.testing.assert_array_equal(net._params, ref._params)
    np.testing.assert_array_equal(net.feedforward(X, num_threads=10 ** 6), ref.feedforward(X))


@pytest.mark.parametrize("sizes, why", [
    ([2 ** 63, 1], r"sizes\[0\] must be a layer width from 1 to 2147483647"),
    ([3, 2 ** 40], r"sizes\[1\] must be a layer width"),
    ([2 ** 20, 2 ** 20, 2 ** 20], r"more than this machine's memory"),
])
def test_impossible_sizes_are_value_errors(sizes, why):
    with pytest.raises(ValueError, match=why):
        cbp.Network(sizes)


# -- misaligned inputs --------------------------------------------------------


def misaligned(a):
    buf = np.frombuffer(b"\0" + np.ascontiguousarray(a).tobytes(), dtype=a.dtype, offset=1,
                        count=a.size).reshape(a.shape)
    assert buf.flags.c_contiguous and not buf.flags.aligned
    return buf


def test_misaligned_inputs_reach_the_core_aligned(monkeypatch):
    seen = []
    for name in ("feedforward", "train_epoch", "gradient"):
        real = getattr(_core, name)

        def spy(*args, _real=real, **kwargs):
            seen.extend(a.flags.aligned for a in args if isinstance(a, np.ndarray) and a.ndim == 2)
            return _real(*args, **kwargs)
        monkeypatch.setattr(_core, name, spy)
    X = np.random.default_rng(0).random((40, 5))
    Y = np.eye(2)[np.arange(40) % 2]
    bad_X, bad_Y = misaligned(X), misaligned(Y)
    net, ref = cbp.Network([5, 3, 2], seed=0), cbp.Network([5, 3, 2], seed=0)
    np.testing.assert_array_equal(net.feedforward(bad_X), ref.feedforward(X))
    cbp.SGD(0.5, mini_batch_size=4).run(net, (bad_X, bad_Y), 1)
    cbp.SGD(0.5, mini_batch_size=4).run(ref, (X, Y), 1)
    np.testing.assert_array_equal(net._params, ref._params)
    net.update_mini_batch(list(zip(misaligned(X[:4].reshape(4, 5, 1)), Y[:4].reshape(4, 2, 1))), 0.5)
    assert seen and all(seen), seen


def test_the_core_copies_misaligned_rows_it_is_handed():
    # The scikit-learn estimators hand arrays to the core directly: the core
    # makes its own aligned copy; the weights equal the aligned input's.
    pytest.importorskip("sklearn")
    from cbp.sklearn import MLPClassifier
    X = np.random.default_rng(0).random((60, 5))
    y = np.arange(60) % 3
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # three epochs do not converge
        a = MLPClassifier(**kw).fit(misaligned(X), y).predict_proba(misaligned(X))
        b = MLPClassifier(**kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


# -- cached conversions see edited targets --------------------------------------


def test_network2_cached_test_data_sees_targets_edited_in_place():
    # network2's accuracy(convert=True) and total_cost reuse the conversion of
    # a list evaluated again; editing every target in place must be seen.
    net = cbp.network2.Network([4, 3, 2])
    rng = np.random.default_rng(0)
    data = [(rng.random((4, 1)), np.eye(2)[[int(k % 3 == 0)]].reshape(2, 1))
            for k in range(40)]
    before = (net.accuracy(data, convert=True), net.total_cost(data, 0.0))
    for _, y in data:
        y[...] = y[::-1].copy()              # swap the one-hot targets in place
    fresh = [(x, y.copy()) for x, y in data]
    after = (net.accuracy(data, convert=True), net.total_cost(data, 0.0))
    assert after == (net.accuracy(fresh, convert=True), net.total_cost(fresh, 0.0))
    assert after != before


def test_cached_labels_see_one_hot_labels_edited_in_place():
    net = cbp.Network([4, 3, 2], seed=0)
    rng = np.random.default_rng(1)
    data = [(rng.random((4, 1)), np.eye(2)[[int(k % 3 == 0)]].reshape(2, 1))
            for k in range(40)]
    first = net.evaluate(data)
    for _, y in data:
        y[...] = y[::-1].copy()
    assert net.evaluate(data) == net.evaluate([(x, y.copy()) for x, y in data])
    assert net.evaluate(data) == 40 - first


# -- what users are told about pickles -------------------------------------------


DOCS = str(ROOT / "docs")


@pytest.mark.parametrize("page", ["model_files.rst", "sklearn_dask.rst"])
def test_pages_that_offer_pickling_warn_that_unpickling_runs_code(page):
    path = os.path.join(DOCS, page)
    if not os.path.exists(path):
        pytest.skip("docs/ not shipped with this copy")
    text = " ".join(open(path, encoding="utf-8").read().split())
    assert ".. warning::" in text and "Unpickling runs whatever code the pickle names" in text


def test_docstrings_that_offer_pickling_warn_that_unpickling_runs_code():
    import cbp.sgd
    docs = [cbp.Network.__getstate__.__doc__, cbp.sgd.SGD.__getstate__.__doc__]
    try:
        import cbp.sklearn
    except ImportError:
        pass
    else:
        docs += [cbp.sklearn.MLPClassifier.__doc__, cbp.sklearn.MLPRegressor.__doc__]
    for doc in docs:
        assert "unpickling runs code" in " ".join(doc.split()).lower(), doc[:200]
