"""cbp.network3's team of threads: never hangs, and gives the one-thread weights, whatever OpenMP grants."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 120   # seconds; each child needs a few on a quiet machine

# Trains a conv + dropout net (teams forced on: conv_min_flops(0)) for each
# count of threads asked for; reports whether every count gave the
# one-thread weights and the team OpenMP started for each.
CHILD = textwrap.dedent("""
    import contextlib, io, json, os, sys
    if os.environ.get("CHILD_ONE_CPU"):
        # before libgomp loads: it counts the CPUs it may use once
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import numpy as np
    with contextlib.redirect_stdout(io.StringIO()):
        import cbp.network3 as n3
    from cbp import _core
    _core.conv_min_flops(0)
    _core.bp2_halves_from(1)        # the dense layer's BP2 by halves
    rng = np.random.default_rng(0)
    X = rng.random((60, 144)).astype(np.float32)
    y = (np.arange(60) % 10).astype(np.int32)
    weights, teams = {}, {}
    for nt in [1] + json.loads(sys.argv[1]):
        np.random.seed(3)
        net = n3.Network([
            n3.ConvPoolLayer((4, 1, 5, 5), (10, 1, 12, 12), activation_fn=n3.ReLU),
            n3.ConvPoolLayer((6, 4, 3, 3), (10, 4, 4, 4), poolsize=(1, 1), activation_fn=n3.ReLU),
            n3.FullyConnectedLayer(24, 30, activation_fn=n3.ReLU, p_dropout=0.5),
            n3.SoftmaxLayer(30, 10, p_dropout=0.5)], 10)
        with contextlib.redirect_stdout(io.StringIO()):
            for _ in range(2):
                net._train_run(X, y, 0, 6, 0.05, 0.999, nt)
        weights[nt] = b"".join(p.get_value().tobytes() for p in net.params)
        teams[nt] = net._plan(10, nt).last_team
    print(json.dumps({"same": all(w == weights[1] for w in weights.values()), "teams": teams}))
""")


def team_run(requested, env):
    full_env = dict(os.environ)
    full_env.update(env)
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(requested)],
                              capture_output=True, text=True, timeout=TIMEOUT, env=full_env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung for {TIMEOUT} s (env {env})")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_thread_limit_of_one_never_hangs_training():
    report = team_run([2, 3], {"OMP_THREAD_LIMIT": "1"})
    assert report["same"], report
    assert report["teams"]["2"] == report["teams"]["3"] == 1, report


def test_a_team_cut_by_the_thread_limit_gives_the_one_thread_weights():
    report = team_run([3, 4], {"OMP_THREAD_LIMIT": "2"})
    assert report["same"], report
    assert report["teams"]["3"] == report["teams"]["4"] == 2, report


def test_a_team_openmp_cuts_inside_the_region_gives_the_one_thread_weights():
    # OMP_DYNAMIC lets libgomp start fewer threads than asked, inside the
    # region, after network3 sized the team.
    report = team_run([8, 3], {"OMP_DYNAMIC": "true", "OMP_NUM_THREADS": "8"})
    assert report["same"], report
    assert 1 <= report["teams"]["8"] < 8, report


def test_a_lone_thread_in_the_region_gives_the_one_thread_weights():
    report = team_run([4, 2], {"OMP_DYNAMIC": "true", "CHILD_ONE_CPU": "1"})
    assert report["same"], report
    assert report["teams"]["4"] == report["teams"]["2"] == 1, report


# -- one thread or a team, chunk by chunk ---------------------------------------------

def _pace_net(n3):
    return n3.Network([
        n3.ConvPoolLayer((4, 1, 5, 5), (10, 1, 12, 12), activation_fn=n3.ReLU),
        n3.FullyConnectedLayer(4 * 4 * 4, 30, activation_fn=n3.ReLU, p_dropout=0.5),
        n3.SoftmaxLayer(30, 10, p_dropout=0.5)], 10)


@pytest.fixture
def n3_paced(monkeypatch, capsys):
    import cbp.network3 as n3
    from cbp import _core
    capsys.readouterr()
    old = _core.conv_min_flops(0)               # teams even for this small net
    monkeypatch.setattr(n3, "_PACE", {})
    monkeypatch.setattr(n3, "WARM_SECONDS", 0.0)   # one untimed run per side
    yield n3
    _core.conv_min_flops(old)


def test_a_run_cut_into_team_and_one_thread_chunks_gives_the_one_thread_weights(n3_paced,
                                                                                 monkeypatch):
    import numpy as np
    from cbp import _core
    n3 = n3_paced
    monkeypatch.setattr(n3, "CHUNK_FLOPS", 1)   # chunks of 8 mini-batches
    rng = np.random.default_rng(1)
    X = rng.random((400, 144)).astype(np.float32)
    y = (np.arange(400) % 10).astype(np.int32)
    real, teams = _core.train_batches3, []

    def recording(plan, X, y, first, last, *args):
        teams.append((last - first, args[-1]))
        return real(plan, X, y, first, last, *args)

    monkeypatch.setattr(_core, "train_batches3", recording)
    weights = {}
    for nt in (1, 2):
        np.random.seed(3)
        net = _pace_net(n3)
        teams.clear()
        net._train_run(X, y, 0, 40, 0.05, 0.999, nt)
        weights[nt] = b"".join(p.get_value().tobytes() for p in net.params)
        counter = net.dropout_counter
    assert [size for size, _ in teams] == [8] * 5
    # each side's first chunk on this network is not timed, then each is
    # timed network3.SETTLE (3) times, team first
    assert n3.SETTLE == 3
    assert [threads for _, threads in teams] == [2, 2, 2, 2, 1], teams
    assert weights[1] == weights[2]
    np.random.seed(3)
    whole = _pace_net(n3)
    monkeypatch.setattr(n3, "CHUNK_FLOPS", 10 ** 12)
    whole._train_run(X, y, 0, 40, 0.05, 0.999, 1)
    assert whole.dropout_counter == counter                  # the masks' stream goes on alike
    assert b"".join(p.get_value().tobytes() for p in whole.params) == weights[1]


def test_the_faster_is_kept_and_a_much_slower_team_is_tried_rarely(n3_paced):
    net = _pace_net(n3_paced)
    assert net._team_choice(10, 2)[0] == 2
    pace = net._team_choice(10, 2)[1]
    assert net._team_choice(10, 1) == (1, None)              # one thread asked: nothing to time
    pace[2], pace[1] = 20e-3, 1e-3                           # the team 20 times slower
    picks = [net._team_choice(10, 2)[0] for _ in range(1920)]
    assert picks.count(2) == 3                               # once every 32 x 20 chunks
    pace[2], pace[1] = 1e-3, 1.2e-3                          # the team a little faster
    picks = [net._team_choice(10, 2)[0] for _ in range(2560)]
    assert picks.count(1) == 10                              # one thread tried every 8 x 32 chunks


# -- plans laid out two ways give the same bits -------------------------------------------

def _weights_either_way(switch, layers, floatX, nt, monkeypatch, M=12):
    """The weights after 20 mini-batches of ``M`` from plans made with ``switch(True)`` and ``switch(False)``.

    On a team of ``nt`` threads, however small the layers (conv_min_flops(0)),
    for every chunk of the run (WARM_SECONDS: no chunk is timed, so none is
    handed to one thread).
    """
    import numpy as np
    import cbp.network3 as n3
    from cbp import _core
    monkeypatch.setattr(n3.config, "floatX", floatX)
    monkeypatch.setattr(n3, "_PACE", {})
    monkeypatch.setattr(n3, "WARM_SECONDS", float("inf"))
    rng = np.random.default_rng(5)
    X = rng.random((240, 144)).astype(floatX)
    y = (np.arange(240) % 10).astype(np.int32)
    old, old_min = switch(), _core.conv_min_flops(0)
    finals = {}
    try:
        for on in (True, False):
            switch(on)
            np.random.seed(4)
            net = n3.Network(layers(n3), M)
            net._train_run(X, y, 0, 20, 0.05, 0.999, nt)
            assert net._plan(M, nt).last_team == nt
            finals[on] = [p.get_value().copy() for p in net.params]
    finally:
        switch(old)
        _core.conv_min_flops(old_min)
    return finals[True], finals[False]


@pytest.mark.parametrize("floatX", ["float32", "float64"])
@pytest.mark.parametrize("nt", [1, 2])
def test_bp2_and_the_step_in_one_pass_give_the_same_bits_as_apart(floatX, nt, monkeypatch):
    # A dense layer's BP2 and step fused (64-byte build, mini-batches of at
    # most 12: cbp_bp2_step_ok) sum every element as the two kernels do
    # apart.  Elsewhere both plans run apart and the test compares them alike.
    from cbp import _core

    def layers(n3):
        return [n3.ConvPoolLayer((4, 1, 5, 5), (12, 1, 12, 12), activation_fn=n3.ReLU),
                n3.FullyConnectedLayer(4 * 4 * 4, 37, activation_fn=n3.ReLU, p_dropout=0.3),
                n3.FullyConnectedLayer(37, 50, activation_fn=n3.sigmoid),
                n3.SoftmaxLayer(50, 10, p_dropout=0.2)]
    fused, apart = _weights_either_way(_core.bp2_step_fused, layers, floatX, nt, monkeypatch)
    for a, b in zip(fused, apart):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("floatX", ["float32", "float64"])
@pytest.mark.parametrize("nt", [1, 2, 3])
def test_dense_rows_padded_to_lines_give_the_same_bits_as_unpadded(floatX, nt, monkeypatch):
    # A dense layer under a dense one keeps its outputs, and the layer above
    # its dropout mask and masked input, in rows padded to 64-byte lines
    # (dense_rows_padded); only where the elements lie changes.
    from cbp import _core

    def layers(n3):
        return [n3.FullyConnectedLayer(144, 100, activation_fn=n3.sigmoid),
                n3.FullyConnectedLayer(100, 37, activation_fn=n3.ReLU, p_dropout=0.3),
                n3.FullyConnectedLayer(37, 50, activation_fn=n3.tanh, p_dropout=0.2),
                n3.SoftmaxLayer(50, 10, p_dropout=0.2)]
    padded, unpadded = _weights_either_way(_core.dense_rows_padded, layers, floatX, nt, monkeypatch)
    for a, b in zip(padded, unpadded):
        assert a.tobytes() == b.tobytes()


def _halves_everywhere(on=None):
    # _weights_either_way's switch: plans by halves wherever the layer below
    # allows (True), nowhere (False); called with the old count, restores it
    from cbp import _core
    return _core.bp2_halves_from({True: 1, False: 1 << 30}.get(on, on))


@pytest.mark.parametrize("nt", [1, 2, 3])
def test_bp2_by_halves_of_the_rows_agrees_with_bp2_by_columns(nt, monkeypatch):
    # A wide dense layer over a conv layer, or over a layer by halves, runs
    # BP2 and its step by halves of W's rows (bp2_halves_from, forced down to
    # these small layers here); its input's error is then the sum of two
    # sums over the units, so the weights are not the same bits as BP2 by
    # columns, but they agree to float64 rounding, and either way every count
    # of threads gives the one-thread bits.
    import numpy as np

    def layers(n3):
        return [n3.ConvPoolLayer((4, 1, 5, 5), (12, 1, 12, 12), activation_fn=n3.ReLU),
                n3.FullyConnectedLayer(4 * 4 * 4, 37, activation_fn=n3.ReLU, p_dropout=0.3),
                n3.FullyConnectedLayer(37, 50, activation_fn=n3.sigmoid, p_dropout=0.2),
                n3.SoftmaxLayer(50, 10, p_dropout=0.2)]
    halves, columns = _weights_either_way(_halves_everywhere, layers, "float64", nt, monkeypatch)
    assert any(a.tobytes() != b.tobytes() for a, b in zip(halves, columns))
    for a, b in zip(halves, columns):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    halves1, columns1 = _weights_either_way(_halves_everywhere, layers, "float64", 1, monkeypatch)
    for a, b in zip(halves + columns, halves1 + columns1):
        assert a.tobytes() == b.tobytes()


def test_plans_name_the_layers_run_by_halves():
    # By halves: a dense layer of at least bp2_halves_from() units (256) that
    # needs its input's error, where the layer below reads it in slices (a
    # conv layer, or a layer by halves).
    import numpy as np
    import cbp.network3 as n3
    from cbp import _core
    assert _core.bp2_halves_from() == 256
    conv = (20, 1, 5, 5), (10, 1, 28, 28)
    nets = {(2, 3): [n3.ConvPoolLayer(*conv), n3.ConvPoolLayer((40, 20, 5, 5), (10, 20, 12, 12)),
                     n3.FullyConnectedLayer(640, 1000, p_dropout=0.5),
                     n3.FullyConnectedLayer(1000, 1000, p_dropout=0.5),
                     n3.SoftmaxLayer(1000, 10, p_dropout=0.5)],
            (1,): [n3.ConvPoolLayer(*conv), n3.FullyConnectedLayer(2880, 300),
                   n3.FullyConnectedLayer(300, 100), n3.SoftmaxLayer(100, 10)],
            (): [n3.ConvPoolLayer(*conv), n3.FullyConnectedLayer(2880, 100),
                 n3.SoftmaxLayer(100, 10)]}
    for expected, layers in nets.items():
        np.random.seed(0)
        assert n3.Network(layers, 10)._plan(10, 2).halves == list(expected)
    np.random.seed(0)
    dense = n3.Network([n3.FullyConnectedLayer(784, 1000), n3.FullyConnectedLayer(1000, 1000),
                        n3.SoftmaxLayer(1000, 10)], 10)
    assert dense._plan(10, 2).halves == []


@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("M", [12, 1])
def test_a_conv_layers_gradient_by_halves_of_the_examples_agrees_with_the_whole(M, nt, monkeypatch):
    # A conv layer with patches (C·K·K >= 64: the book's second, 20 x 5 x 5)
    # sums its filters' gradient over each half of the mini-batch, then adds
    # the halves (conv_step_by_halves); the weights are then not the same
    # bits as one sum over the whole, but agree to float64 rounding, and
    # either way every count of threads gives the one-thread bits.  With one
    # example, the first half is empty.
    import numpy as np
    from cbp import _core

    def layers(n3):
        return [n3.ConvPoolLayer((8, 1, 3, 3), (M, 1, 12, 12), activation_fn=n3.ReLU),
                n3.ConvPoolLayer((6, 8, 3, 3), (M, 8, 5, 5), poolsize=(1, 1),
                                 activation_fn=n3.ReLU),
                n3.SoftmaxLayer(6 * 3 * 3, 10)]

    def switch(on=None):
        return _core.conv_step_by_halves(on)
    halves, whole = _weights_either_way(switch, layers, "float64", nt, monkeypatch, M=M)
    if M > 1:
        assert any(a.tobytes() != b.tobytes() for a, b in zip(halves, whole))
    for a, b in zip(halves, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    halves1, whole1 = _weights_either_way(switch, layers, "float64", 1, monkeypatch, M=M)
    for a, b in zip(halves + whole, halves1 + whole1):
        assert a.tobytes() == b.tobytes()


# -- a child forked after training ----------------------------------------------------------

# The parent trains with config.num_threads = 2 (its OpenMP pool is then up),
# forks, and the child goes on training the parent's network (whose cached
# plan names a team) and a new one, then evaluates: GNU OpenMP's pool does not
# survive fork(), so the child must run on one thread, with the same weights.
FORK_CHILD = textwrap.dedent("""
    import contextlib, io, json, os
    import numpy as np
    with contextlib.redirect_stdout(io.StringIO()):
        import cbp.network3 as n3
    from cbp import _core
    _core.conv_min_flops(0)
    rng = np.random.default_rng(0)
    X = rng.random((60, 144)).astype(np.float32)
    y = (np.arange(60) % 10).astype(np.int32)

    def build():
        np.random.seed(3)
        return n3.Network([
            n3.ConvPoolLayer((4, 1, 5, 5), (10, 1, 12, 12), activation_fn=n3.ReLU),
            n3.FullyConnectedLayer(64, 30, activation_fn=n3.ReLU, p_dropout=0.5),
            n3.SoftmaxLayer(30, 10)], 10)

    def weights(net):
        return b"".join(p.get_value().tobytes() for p in net.params).hex()

    n3.config.num_threads = 1
    alone = build()
    for _ in range(2):
        alone._train_run(X, y, 0, 6, 0.05, 0.999, 1)
    n3.config.num_threads = 2
    net = build()
    net._train_run(X, y, 0, 6, 0.05, 0.999, n3.config.threads())
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fresh = build()
        for _ in range(2):
            fresh._train_run(X, y, 0, 6, 0.05, 0.999, n3.config.threads())
        net._train_run(X, y, 0, 6, 0.05, 0.999, 2)
        out = {"threads": n3.config.threads(), "fresh": weights(fresh), "net": weights(net),
               "pred": net._predict(X, 2).tolist()}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    child = json.loads(os.read(r, 1 << 20).decode())
    os.waitpid(pid, 0)
    print(json.dumps({"threads": child["threads"], "fresh": child["fresh"] == weights(alone),
                      "net": child["net"] == weights(alone),
                      "pred": child["pred"] == alone._predict(X, 1).tolist()}))
""")


def test_a_child_forked_after_training_runs_on_one_thread_with_the_same_weights():
    try:
        proc = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the forked child hung for {TIMEOUT} s")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == {"threads": 1, "fresh": True, "net": True, "pred": True}, report


# -- fewer barriers ---------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("layers", ["shallow", "masked_input", "masked_second", "three_dense",
                                    "wide_output"])
def test_a_dense_first_layer_steps_beside_the_bp2_above_with_the_one_thread_bits(layers, fused,
                                                                                monkeypatch):
    # A team skips the barrier after an output layer of one share (thread 0's)
    # and steps a dense first layer right after its share of the BP2 above;
    # when every step ran with its BP2, that phase ends the mini-batch, and
    # under a fused second layer it runs on into the next forward (the first
    # layer's input unmasked): each thread reads only what it wrote.  Two
    # and three threads give one thread's bits, fused or apart.
    import numpy as np
    import cbp.network3 as n3
    from cbp import _core
    monkeypatch.setattr(n3, "_PACE", {})
    monkeypatch.setattr(n3, "TEAM_MIN_FLOPS", 0)
    rng = np.random.default_rng(6)
    X = rng.random((240, 144)).astype(np.float32)
    y = (np.arange(240) % 10).astype(np.int32)
    specs = {
        "shallow": lambda: [n3.FullyConnectedLayer(144, 100), n3.SoftmaxLayer(100, 10)],
        "masked_input": lambda: [n3.FullyConnectedLayer(144, 60, p_dropout=0.3),
                                 n3.SoftmaxLayer(60, 10, p_dropout=0.2)],
        "masked_second": lambda: [n3.FullyConnectedLayer(144, 100),
                                  n3.SoftmaxLayer(100, 10, p_dropout=0.4)],
        "three_dense": lambda: [n3.FullyConnectedLayer(144, 97, activation_fn=n3.ReLU),
                                n3.FullyConnectedLayer(97, 50), n3.SoftmaxLayer(50, 10)],
        "wide_output": lambda: [n3.FullyConnectedLayer(144, 50), n3.SoftmaxLayer(50, 30)],
    }
    old = _core.bp2_step_fused()
    old_min = _core.conv_min_flops()
    finals = {}
    try:
        _core.bp2_step_fused(fused)
        _core.conv_min_flops(0)
        for nt in (1, 2, 3):
            np.random.seed(8)
            net = n3.Network(specs[layers](), 10)
            net._train_run(X, y, 0, 24, 0.5, 0.999, nt)
            finals[nt] = b"".join(p.get_value().tobytes() for p in net.params)
            assert nt == 1 or net._plan(10, nt).threads > 1
    finally:
        _core.bp2_step_fused(old)
        _core.conv_min_flops(old_min)
    assert finals[2] == finals[1] and finals[3] == finals[1]
