"""What the benchmark-driven changes rely on: the one-pass input scan and the pace kept per shape."""
import numpy as np
import pytest

import cbp
from cbp import _checks, _core, _runs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 7, 16, 17, 1001])
def test_scan_matches_numpy(dtype, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 100).astype(dtype)
    ok, lo, hi = _core.scan(x)
    assert ok
    if n:
        assert lo == float(x.min()) and hi == float(x.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 5, 16, 40, 99])
def test_scan_finds_every_non_finite_value(dtype, bad, where):
    x = np.linspace(-1, 1, 100).astype(dtype)
    x[where] = bad
    assert _core.scan(x)[0] is False


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 3, 16, 17, 33, 1001])
def test_all_finite_is_true_for_any_finite_values(dtype, n):
    info = np.finfo(dtype)
    x = np.resize(np.array([info.max, -info.max, info.tiny / 4, -0.0, 0.0, -1.5], dtype), n)
    assert _core.all_finite(x) is True


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n, where", [(1, 0), (17, 0), (17, 16), (33, 31), (1001, 500), (1001, 1000)])
def test_all_finite_finds_every_non_finite_value(dtype, bad, n, where):
    x = np.full(n, np.finfo(dtype).max, dtype)
    x[where] = bad
    assert _core.all_finite(x) is False


def test_checked_array_range_is_reused_and_correct():
    X = np.random.default_rng(0).random((50, 9)) * 7 - 3
    out = _checks.array(X, "X", np.float64)
    assert _checks.value_range(out) == (X.min(), X.max())
    other = X[::2]      # never checked: scanned (or reduced) on its own
    assert _checks.value_range(other) == (other.min(), other.max())
    with pytest.raises(ValueError, match="finite"):
        _checks.array(np.array([1.0, np.nan]), "X", np.float64)


def test_sgd_still_warns_on_huge_inputs():
    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 4)) * 255, rng.random((40, 2))
    net = cbp.Network([4, 3, 2], seed=0)
    with pytest.warns(UserWarning, match=r"\|x\| = 25"):
        net.SGD((X, Y), 1, 10, 0.1)


def test_pace_is_kept_across_optimizers():
    # net.SGD builds a new optimizer per call: the second call reuses the
    # pace measured by the first instead of probing both sides again.
    _core_bar = _core.team_min_flops()
    _core.team_min_flops(0)
    try:
        _runs.PACES.clear()
        rng = np.random.default_rng(0)
        X, Y = rng.random((200, 30)), rng.random((200, 5))
        net = cbp.Network([30, 40, 5], seed=1)
        a = cbp.SGD(0.1, mini_batch_size=7, num_threads=2)
        a.run(net, (X, Y), 1)
        (pace,) = a._pace.values()
        b = cbp.SGD(0.1, mini_batch_size=7, num_threads=2)
        runs = pace["runs"]
        b.run(net, (X, Y), 1)
        assert list(b._pace.values()) == [pace] and pace["runs"] > runs
    finally:
        _core.team_min_flops(_core_bar)



# BP2's Hadamard product δ ⊙ f'(z), f'(z) read off a = f(z), is a vectorised
# kernel; its values must be what the scalar _derivative gives, to the bit:
# in double for float data, and tanh's a·a rounded before 1 − a·a (an FMA
# there changed the weights' last bits).  With W the identity, BP2's product
# is δ exactly, so the result is δ ⊙ f'(a) alone.
_FPRIME = {
    "sigmoid": lambda a: (a.astype(np.float64) * (1.0 - a.astype(np.float64))).astype(a.dtype),
    "tanh": lambda a: (1.0 - (a * a).astype(np.float64)).astype(a.dtype),
    "relu": lambda a: (a > 0).astype(a.dtype),
    "linear": lambda a: np.ones_like(a),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", sorted(_FPRIME))
@pytest.mark.parametrize("width", [1, 7, 37, 64])
def test_bp2_hadamard_product_matches_the_scalar_derivative_to_the_bit(act, dtype, width):
    rng = np.random.default_rng(width)
    M = 5
    D = rng.standard_normal((M, width)).astype(dtype)
    lo = -1.0 if act in ("tanh", "relu", "linear") else 0.0
    A = rng.uniform(lo, 1.0, (M, width)).astype(dtype)
    A[0, :width // 2] = 0                      # ReLU's kink; σ' and tanh' at their ends
    out = np.empty_like(D)
    _core.py_backpropagate_error(D, np.eye(width, dtype=dtype), A, out,
                                 _core.ACTIVATION_CODES[act])
    expected = D * _FPRIME[act](A)
    assert out.dtype == dtype
    assert np.array_equal(out.view(np.uint8), expected.view(np.uint8)), \
        f"{act} {np.dtype(dtype).name}: {np.max(np.abs(out - expected))}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("width, O", [(30, 40), (37, 40), (64, 40), (2101, 300)])
def test_bp2_sums_every_column_alike_in_the_tiles_and_the_gemm(dtype, width, O):
    # E = D W, each column one chain of multiply-adds over o from 0, whether
    # a mini-batch takes the tiles (M < 48) or the GEMM (M >= 48, O >= 32),
    # and in the columns past the tiles' 3-vector strips as in the strips
    # (30 and 37 columns leave 6 and 13 of them in float32, 6 and 1 in
    # float64): an example's δ does not depend on its mini-batch's size.
    # 300 units take the tiles' blocks of rows (more than CBP_BP2_TALL):
    # 19 blocks, 2 chunks of columns in float32, 13 and 1 last columns.
    rng = np.random.default_rng(width)
    M = 64
    D = rng.standard_normal((M, O)).astype(dtype)
    W = rng.standard_normal((O, width)).astype(dtype)
    A = np.ones((M, width), dtype)
    linear = _core.ACTIVATION_CODES["linear"]
    whole = np.empty((M, width), dtype)
    _core.py_backpropagate_error(D, W, A, whole, linear)
    for m0 in range(0, M, 8):
        part = np.empty((8, width), dtype)
        _core.py_backpropagate_error(D[m0:m0 + 8].copy(), W, A[m0:m0 + 8].copy(), part, linear)
        differ = np.flatnonzero((part != whole[m0:m0 + 8]).any(axis=0))
        assert differ.size == 0, f"columns {differ.tolist()} of rows {m0}..{m0 + 7}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_prefetch_plan_outlives_its_mini_batch(dtype):
    # The one-thread driver plans the next mini-batch's rows (pointers into
    # the caller's X) and the step asks for a few lines between its tiles; a
    # net this narrow has too few tiles to ask for them all, so only the
    # driver's flush after each batch empties the plan, also when a
    # non-finite row stops the run.
    rng = np.random.default_rng(0)
    X = rng.random((400, 784)).astype(dtype)
    Y = rng.random((400, 2)).astype(dtype)
    net = cbp.Network([784, 3, 2], dtype=dtype, seed=0)
    net.SGD((X, Y), 1, 10, 0.5, verbose=False)
    assert _core.py_prefetch_pending() == 0
    X[200, 7] = np.nan      # in a later mini-batch than the first (seed 0): one is planned
    with pytest.raises(ValueError, match="finite|NaN"):
        net.SGD((X, Y), 1, 10, 0.5, verbose=False)
    assert _core.py_prefetch_pending() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("I, O, M", [(784, 100, 10), (100, 10, 10), (1000, 300, 12), (640, 200, 64)])
def test_the_products_do_not_depend_on_where_the_pack_scratch_starts(dtype, I, O, M):
    # The dispatch moves the scratch to a 64-byte line (the packed panels'
    # loads then never split one); a scratch starting anywhere else gives the
    # same bits, and nothing is written before the line it starts on.
    rng = np.random.default_rng(I + O)
    A = rng.standard_normal((M, I)).astype(dtype)
    W = (rng.standard_normal((O, I)) * 0.05).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    D = rng.standard_normal((M, O)).astype(dtype)
    P = _core.PACK_ELEMENTS
    results = []
    for offset in (0, 1, 2, 3, 5, 8):
        big = np.full((1, P + 64), 7, dtype)
        packs = big[:, offset:offset + P]
        Z = np.empty((M, O), dtype)
        _core.dense_forward(A, W, b, Z, Z, np.empty(M, np.intp), np.zeros(O, dtype), packs, 1.0,
                            0, 1)
        E = np.empty((M, I), dtype)
        _core.dense_backward(D, W, E, A, 3, np.ones((M, I), dtype), False, packs, 1)
        W2, b2 = W.copy(), b.copy()
        _core.dense_step(D, A, W2, b2, np.empty((O, M), dtype), np.empty(M, np.intp), -0.01,
                         0.999, packs, 1)
        assert (big[0, :offset] == 7).all() and (big[0, offset + P:] == 7).all()
        results.append(b"".join(x.tobytes() for x in (Z, E, W2, b2)))
    assert all(r == results[0] for r in results)


def test_the_barrier_probe_times_a_team_or_says_it_had_none():
    # bench/network3.py brackets its rounds with this probe; a meeting costs
    # tens to hundreds of nanoseconds between two cores, and with three
    # threads on fewer cores each waiter yields (about a time slice).
    team, ns = _core.py_barrier_ns(100, 1)
    assert team == 1 and np.isnan(ns)
    for threads in (2, 3):
        team, ns = _core.py_barrier_ns(200, threads)
        assert 1 <= team <= threads
        if team == 1:       # OpenMP granted one thread (OMP_THREAD_LIMIT=1)
            assert np.isnan(ns)
        else:
            assert 0 < ns < 0.05e9
    with pytest.raises(ValueError, match="meetings must be from 1 to 10,000,000"):
        _core.py_barrier_ns(0)
    with pytest.raises(ValueError, match="meetings must be from 1 to 10,000,000"):
        _core.py_barrier_ns(10**8)
    for bad in (0, -2, 65):
        with pytest.raises(ValueError, match="num_threads must be from 1 to 64"):
            _core.py_barrier_ns(10, bad)
    with pytest.raises(TypeError):
        _core.py_barrier_ns(10.5)


def test_the_halves_switch_takes_a_count_of_units_and_refuses_anything_else():
    # network3's plans run dense layers of at least this many units by halves
    # of the weight rows (tests/robustness/test_network3_team.py).
    old = _core.bp2_halves_from()
    try:
        assert _core.bp2_halves_from(7) == 7 and _core.bp2_halves_from() == 7
        for bad in (0, -3):
            with pytest.raises(ValueError, match="at least 1"):
                _core.bp2_halves_from(bad)
        for bad in (2.5, "256", True):
            with pytest.raises(TypeError, match="integer"):
                _core.bp2_halves_from(bad)
        assert _core.bp2_halves_from() == 7
    finally:
        _core.bp2_halves_from(old)
