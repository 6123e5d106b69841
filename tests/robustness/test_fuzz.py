"""Property-based tests (hypothesis) over every public entry point of cbp.

Each case ends in one of two ways:

* a result, checked against a plain NumPy computation written in this file
  (``Reference``), which carries a bound on the rounding error of every
  quantity alongside its value, so float32 and extreme magnitudes are checked
  as tightly as rounding allows; or
* a ``ValueError`` or ``TypeError`` (``cbp.DivergenceError`` is a ValueError),
  and only where the rules of the API say so.

Anything else fails: another exception type, a RuntimeWarning (every call is
made with warnings turned into errors), NaN out of finite input, or a crash
of the interpreter.

The number of examples per test comes from ``CBP_FUZZ_EXAMPLES`` (default
200, a few thousand cases in all); the long run is::

    CBP_FUZZ_EXAMPLES=5000 pytest tests/robustness/test_fuzz.py --hypothesis-show-statistics
"""
import copy
import gzip
import os
import pickle
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cbp

# Each property runs hundreds of examples: seconds apiece.
pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=int(os.environ.get("CBP_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
OUTPUTS = ["sigmoid", "tanh", "relu", "linear", "softmax"]
COSTS = ["quadratic", "sse", "cross_entropy", "log_likelihood"]
PAIRS = [(o, c) for o in OUTPUTS for c in COSTS
         if not (c == "cross_entropy" and o != "sigmoid")
         and not (c == "log_likelihood" and o not in ("sigmoid", "softmax"))]

F32MAX = float(np.finfo(np.float32).max)
F64MAX = float(np.finfo(np.float64).max)
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, -1e-300, 5e-324, 1e-40, -1e-40, 1e30, -1e30,
           1e300, -1e300, F32MAX, -F32MAX, F64MAX, -F64MAX, 3e38, 1e20, -1e20]
NONFINITE = [np.nan, np.inf, -np.inf]

# Wrong things to pass where numbers or arrays are expected.
JUNK = [None, "abc", "1.0", b"\x00", {}, {"a": 1}, [[1.0, 2.0], [3.0]], [[1.0], 2.0], 1j,
        np.array([1j, 2.0]), object(), {1, 2}, np.array(["a", "b"]), np.datetime64("2026-11-23"),
        np.array([None, 1.0]), [None], [[None]], (lambda: 0), np.timedelta64(3, "s"), Ellipsis]


# -- running a call --------------------------------------------------------------------

def attempt(fn, *args, **kwargs):
    """(result, None), or (None, exc) for a ValueError/TypeError.

    Every other exception propagates and fails the test; so does any warning,
    which is turned into an error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn(*args, **kwargs), None
        except (ValueError, TypeError) as exc:
            return None, exc


def expect_error(kind, fn, *args, **kwargs):
    name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
    result, exc = attempt(fn, *args, **kwargs)
    assert exc is not None, f"expected {name}, got a result {result!r:.200}"
    assert isinstance(exc, kind), f"expected {name}, got {type(exc).__name__}: {exc}"
    return exc


# -- the NumPy reference, with rounding-error bounds ----------------------------------

UNIT = {np.dtype(np.float64): 2.0 ** -53, np.dtype(np.float32): 2.0 ** -24}
TINY = {np.dtype(np.float64): float(np.finfo(np.float64).tiny),
        np.dtype(np.float32): float(np.finfo(np.float32).tiny)}
# Beyond this the reference does not vouch for values (overflow may be near).
BIG = {np.dtype(np.float64): 1e280, np.dtype(np.float32): 1e30}


def act(name, z):
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "linear":
        return z.copy()
    assert name == "softmax"
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softplus(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


class Extreme(Exception):
    """The reference met values too large to vouch for (overflow is near)."""


class Reference:
    """Forward pass, backprop, costs and one SGD step, in float64, from the notes.

    Each quantity comes with a bound on how far a correct float implementation
    in the network's dtype may be from it (absolute error, elementwise).
    """

    def __init__(self, net):
        self.dtype = np.dtype(net.dtype)
        self.u = UNIT[self.dtype]
        self.tiny = TINY[self.dtype]
        self.big = BIG[self.dtype]
        self.W = [w.astype(np.float64) for w in net.weights]
        self.b = [b.astype(np.float64).ravel() for b in net.biases]
        self.hidden, self.output, self.cost = net.activation, net.output_activation, net.cost

    def _vouch(self, *arrays, limit=None):
        limit = self.big if limit is None else limit
        for a in arrays:
            if not np.all(np.isfinite(a)) or (a.size and np.max(np.abs(a)) > limit):
                raise Extreme()

    def forward(self, X):
        """A^0..A^L, their error bounds, z^L and its bound, the derivative bounds."""
        u, tiny = self.u, self.tiny
        with np.errstate(all="ignore"):
            A, EA, Zs, EZs = [X], [np.zeros_like(X)], [], []
            for l, (W, b) in enumerate(zip(self.W, self.b)):
                a, ea = A[-1], EA[-1]
                Z = a @ W.T + b
                EZ = ((W.shape[1] + 4) * u * (np.abs(a) @ np.abs(W).T + np.abs(b))
                      + ea @ np.abs(W).T + tiny)
                self._vouch(Z, EZ)
                name = self.output if l == len(self.W) - 1 else self.hidden
                a2 = act(name, Z)
                # f itself to 4 ulp (8u): the core's vectorised sigmoid promises 3.
                if name == "sigmoid":
                    ea2 = np.minimum(0.25 * EZ, 1.0) + 8 * u * a2
                elif name == "tanh":
                    ea2 = np.minimum(EZ, 2.0) + 8 * u * np.abs(a2)
                elif name in ("relu", "linear"):
                    ea2 = EZ.copy()
                else:
                    spread = np.abs(Z - Z.max(axis=1, keepdims=True))
                    ea2 = (a2 * np.expm1(2 * EZ.max(axis=1, keepdims=True))
                           + u * a2 * (spread + Z.shape[1] + 8))
                    ea2 = np.minimum(ea2, 1.0)
                A.append(a2)
                EA.append(ea2 + tiny)
                Zs.append(Z)
                EZs.append(EZ)
        return A, EA, Zs, EZs

    def _fprime(self, name, a, ea, z, ez):
        """f'(z) read off a, as the core does, and a bound on its error."""
        u, tiny = self.u, self.tiny
        if name == "sigmoid":
            return a * (1 - a), ea * (1 + ea) + 3 * u + tiny
        if name == "tanh":
            return 1 - a * a, 2 * np.abs(a) * ea + ea * ea + 3 * u + tiny
        if name == "relu":
            # The core's f' is 1 where its a > 0: ambiguous where z is within its error of 0.
            return (a > 0).astype(np.float64), (np.abs(z) <= ez).astype(np.float64)
        return np.ones_like(a), np.zeros_like(a)

    def costs(self, A, EA, Zs, EZs, Y):
        """C_x for each row and its bound (the core sums in double from dtype z^L, a^L)."""
        a, ea, z, ez = A[-1], EA[-1], Zs[-1], EZs[-1]
        u, u64, O = self.u, 2.0 ** -53, a.shape[1]
        with np.errstate(all="ignore"):
            if self.cost in ("quadratic", "sse"):
                # The core forms a − y in the network's dtype, then squares and sums in double.
                k = 0.5 if self.cost == "quadratic" else 1.0
                d = a - Y
                c = k * np.sum(d * d, axis=1)
                ed = ea + u * np.abs(d)
                e = k * np.sum(2 * np.abs(d) * ed + ed * ed, axis=1) + (O + 2) * u64 * c
            elif self.output == "softmax":
                zmax = z.max(axis=1, keepdims=True)
                lse = np.log(np.sum(np.exp(z - zmax), axis=1, keepdims=True)) + zmax
                terms = np.where(Y != 0, -Y * (z - lse), 0.0)
                c = terms.sum(axis=1)
                ezmax = ez.max(axis=1, keepdims=True)
                e = (np.sum(np.abs(Y) * (ez + ezmax), axis=1)
                     + (O + 4) * u64 * np.sum(np.abs(Y) * (np.abs(z) + np.abs(lse)), axis=1))
            else:
                terms = np.where(Y != 0, Y * softplus(-z), 0.0)
                ab = np.where(Y != 0, np.abs(Y), 0.0)
                if self.cost == "cross_entropy":
                    terms = terms + np.where(Y != 1, (1 - Y) * softplus(z), 0.0)
                    ab = ab + np.where(Y != 1, np.abs(1 - Y), 0.0)
                c = terms.sum(axis=1)
                e = (np.sum(ab * ez, axis=1)
                     + (O + 8) * u * np.sum(ab * (np.abs(z) + 1), axis=1))
        self._vouch(c, e, limit=1e290)
        return c, e

    def gradient(self, X, Y, need_cost=True):
        """Σ_x ∇C_x as (grad_W list, grad_b list), bounds alike, and Σ_x C_x."""
        u, tiny = self.u, self.tiny
        A, EA, Zs, EZs = self.forward(X)
        try:
            c, ec = self.costs(A, EA, Zs, EZs, Y)
        except Extreme:
            if need_cost:
                raise
            c = ec = np.full(X.shape[0], np.inf)
        L, M = len(self.W), X.shape[0]
        with np.errstate(all="ignore"):
            a, ea = A[-1], EA[-1]
            O = a.shape[1]
            if self.cost == "cross_entropy":
                D, ED = a - Y, ea + u * np.abs(a - Y)
            elif self.cost == "log_likelihood" and self.output == "softmax":
                s = Y.sum(axis=1, keepdims=True)
                D = a * s - Y
                ED = ea * np.abs(s) + (O + 4) * u * (np.abs(a) * np.abs(Y).sum(axis=1, keepdims=True)
                                                     + np.abs(Y))
            elif self.cost == "log_likelihood":
                D = -Y * (1 - a)
                ED = np.abs(Y) * ea + 3 * u * np.abs(Y) * (1 + np.abs(a))
            else:
                k = 2.0 if self.cost == "sse" else 1.0
                g = k * (a - Y)
                eg = k * ea + 2 * u * np.abs(g)
                self._vouch(g, eg)          # Inf · f'(z) = Inf · 0 is NaN
                if self.output == "softmax":
                    s = np.sum(a * g, axis=1, keepdims=True)
                    es = (np.sum(ea * np.abs(g) + np.abs(a) * eg, axis=1, keepdims=True)
                          + (O + 4) * u * np.sum(np.abs(a * g), axis=1, keepdims=True))
                    self._vouch(s, es)
                    D = a * (g - s)
                    ED = ea * np.abs(g - s) + np.abs(a) * (eg + es) + 3 * u * np.abs(a) * (np.abs(g) + np.abs(s))
                else:
                    fp, efp = self._fprime(self.output, a, ea, Zs[-1], EZs[-1])
                    D = g * fp
                    ED = eg * np.abs(fp) + np.abs(g) * efp + 2 * u * np.abs(D)
            ED = ED + tiny
            self._vouch(D, ED)
            GW, GB, EW, EB = [None] * L, [None] * L, [None] * L, [None] * L
            for l in range(L - 1, -1, -1):
                a_in, ea_in = A[l], EA[l]
                GW[l] = D.T @ a_in
                EW[l] = (ED.T @ np.abs(a_in) + np.abs(D).T @ ea_in
                         + (M + 4) * u * (np.abs(D).T @ np.abs(a_in)) + tiny)
                GB[l] = D.sum(axis=0)
                EB[l] = ED.sum(axis=0) + (M + 4) * u * np.abs(D).sum(axis=0) + tiny
                self._vouch(GW[l], EW[l], GB[l], EB[l])
                if l > 0:
                    W = self.W[l]
                    E = D @ W
                    EE = ED @ np.abs(W) + (W.shape[0] + 4) * u * (np.abs(D) @ np.abs(W))
                    self._vouch(E, EE)
                    fp, efp = self._fprime(self.hidden, A[l], EA[l], Zs[l - 1], EZs[l - 1])
                    D = E * fp
                    ED = EE * np.abs(fp) + np.abs(E) * efp + 2 * u * np.abs(D) + tiny
                    self._vouch(D, ED)
        return (GW, GB), (EW, EB), float(c.sum()), float(ec.sum())

    def step(self, X, Y, eta, lmbda, n, momentum=0.0):
        """Parameters after one SGD step on the mini-batch (X, Y), from zero velocity."""
        # The core uses η, λ/n and ηλ/n in the network's dtype.
        limit = float(np.finfo(self.dtype).max) / 16
        if max(eta, lmbda / n, eta * lmbda / n) > limit:
            raise Extreme()
        (GW, GB), (EW, EB), _, _ = self.gradient(X, Y)
        m, u, tiny = X.shape[0], self.u, self.tiny
        new_w, new_b, bound_w, bound_b = [], [], [], []
        with np.errstate(all="ignore"):
            alpha = -eta / m
            decay = eta * lmbda / n
            for W, b, gw, gb, ew, eb in zip(self.W, self.b, GW, GB, EW, EB):
                if momentum:
                    vw = alpha * gw - decay * W
                    new_w.append(W + vw)
                    bound_w.append(6 * u * (np.abs(W) + np.abs(alpha * gw) + np.abs(decay * W))
                                   + abs(alpha) * ew + tiny)
                else:
                    new_w.append((1 - decay) * W + alpha * gw)
                    bound_w.append(6 * u * (np.abs((1 - decay) * W) + np.abs(alpha * gw) + np.abs(W))
                                   + abs(alpha) * ew + tiny)
                new_b.append(b + alpha * gb)
                bound_b.append(6 * u * (np.abs(b) + np.abs(alpha * gb)) + abs(alpha) * eb + tiny)
            self._vouch(*new_w, *new_b, *bound_w, *bound_b)
        return new_w, new_b, bound_w, bound_b


def overflows(compute, *args, **kwargs):
    """True when the reference meets values it cannot vouch for (overflow is near)."""
    try:
        compute(*args, **kwargs)
    except Extreme:
        return True
    return False


def refused_for_overflow(exc, compute, *args, **kwargs):
    """A ValueError for NaN out of overflow is right only where the reference overflows too."""
    assert isinstance(exc, ValueError) and "NaN" in str(exc), exc
    assert overflows(compute, *args, **kwargs), f"refused, but nothing overflows: {exc}"


def assert_within(got, want, bound, what):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite values from finite input: {got}"
    diff = np.abs(got - want)
    bad = diff > 4 * bound
    assert not bad.any(), (f"{what}: off by {diff[bad][:5]} (bound {4 * bound[bad][:5]}); "
                           f"got {got[bad][:5]}, expected {want[bad][:5]}")


# -- strategies ------------------------------------------------------------------------

def elements(mode):
    if mode == "unit":
        return st.floats(-1.0, 1.0)
    if mode == "moderate":
        return st.floats(-6.0, 6.0)
    return st.one_of(st.floats(-6.0, 6.0), st.sampled_from(SPECIAL),
                     st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def networks(draw, dtypes=("float64", "float32"), weights=("init", "unit", "moderate", "extreme")):
    """A small network (2-5 layers, widths 1-8) with its construction arguments."""
    depth = draw(st.integers(2, 5))
    sizes = draw(st.lists(st.integers(1, 8), min_size=depth, max_size=depth))
    hidden = draw(st.sampled_from(HIDDEN))
    output, cost = draw(st.sampled_from(PAIRS))
    kwargs = dict(activation=hidden, output_activation=output, cost=cost,
                  init=draw(st.sampled_from(["gaussian", "scaled"])),
                  dtype=draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2 ** 32 - 1)))
    net = cbp.Network(sizes, **kwargs)
    mode = draw(st.sampled_from(weights))
    if mode != "init":
        ws = [draw(hnp.arrays(np.float64, w.shape, elements=elements(mode))) for w in net.weights]
        bs = [draw(hnp.arrays(np.float64, b.shape, elements=elements(mode))) for b in net.biases]
        if np.dtype(net.dtype) == np.float32:      # extremes at float32's own limits
            ws = [np.clip(w, -F32MAX, F32MAX) for w in ws]
            bs = [np.clip(b, -F32MAX, F32MAX) for b in bs]
        net.weights, net.biases = ws, bs
    note(f"net {net!r}, weights {mode}")
    return net, sizes, kwargs


PRESENTATIONS = ["c64", "f32", "f16", "longdouble", "bigendian", "int", "bool", "fortran",
                 "strided", "negstride", "readonly", "list", "transposed"]


@st.composite
def presented(draw, base, kinds=PRESENTATIONS):
    """``base`` (float64) as one of the many things NumPy users hand over."""
    kind = draw(st.sampled_from(kinds))
    note(f"presented as {kind}")
    with np.errstate(all="ignore"):
        if kind == "f32":
            return base.astype(np.float32)
        if kind == "f16":
            return base.astype(np.float16)
        if kind == "longdouble":
            return base.astype(np.longdouble)
        if kind == "bigendian":
            return base.astype(">f8")
        if kind == "int":
            dt = np.dtype(draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64,
                                                np.uint8, np.uint16, np.uint64])))
            info = np.iinfo(dt)
            return np.rint(np.clip(base, int(info.min), min(int(info.max), 2 ** 62))).astype(dt)
        if kind == "bool":
            return base > 0
        if kind == "fortran":
            return np.asfortranarray(base)
        if kind == "strided" and base.ndim:
            big = np.full(tuple(2 * s + 1 for s in base.shape), np.nan)
            view = big[tuple(slice(1, None, 2) for _ in base.shape)]
            view[...] = base
            return view
        if kind == "negstride":
            return np.flip(np.flip(base).copy())
        if kind == "readonly":
            a = base.copy()
            a.flags.writeable = False
            return a
        if kind == "list":
            return base.tolist()
        if kind == "transposed":
            return np.ascontiguousarray(base.T).T
        return base.copy()


def effective(value, dtype):
    """What the network computes with: ``value`` converted to its dtype, or None for a TypeError.

    A scalar counts as a vector of one value (NumPy's ``ascontiguousarray`` rule).
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        return None
    with np.errstate(all="ignore"):
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
            arr = arr.astype(np.float64)
        return np.atleast_1d(arr.astype(dtype))


def finite(arr):
    return bool(np.all(np.isfinite(arr)))


def clone(net, kwargs):
    twin = cbp.Network(net.sizes, **kwargs)
    twin.weights, twin.biases = net.weights, net.biases
    twin._rng = copy.deepcopy(net._rng)
    return twin


def params(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def same(xs, ys):
    return len(xs) == len(ys) and all(x.dtype == y.dtype and np.array_equal(x, y)
                                      for x, y in zip(xs, ys))


@st.composite
def batches(draw, net, n_min=0, n_max=6, modes=("unit", "moderate", "extreme"), nonfinite=True):
    """Inputs X (n, n_in) and targets Y (n, n_out) as float64, before presentation."""
    n_in, n_out = net.sizes[0], net.sizes[-1]
    n = draw(st.integers(n_min, n_max))
    mode = draw(st.sampled_from(modes))
    X = draw(hnp.arrays(np.float64, (n, n_in), elements=elements(mode)))
    if net.output_activation == "softmax" or net.cost == "log_likelihood":
        ymode = draw(st.sampled_from(["onehot", "unit", mode]))
    else:
        ymode = draw(st.sampled_from(["unit", mode]))
    if ymode == "onehot":
        labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_out - 1)))
        Y = np.zeros((n, n_out))
        Y[np.arange(n), labels] = 1.0
    else:
        Y = draw(hnp.arrays(np.float64, (n, n_out), elements=elements(ymode)))
    if nonfinite and n and draw(st.integers(0, 9)) == 0:
        target = draw(st.sampled_from([X, Y]))
        target.flat[draw(st.integers(0, target.size - 1))] = draw(st.sampled_from(NONFINITE))
    note(f"X mode {mode}, Y mode {ymode}")
    return X, Y


NO_LIST = [k for k in PRESENTATIONS if k != "list"]


@st.composite
def training_data(draw, net, X, Y):
    """(X, Y) in one of the accepted forms, with what the network should see from it.

    Returns ``(data, X_seen, Y_seen)``: the latter two are the float64 values
    of the inputs and targets after conversion to the network's dtype (labels
    made one-hot), possibly non-finite.
    """
    n_in, n_out = net.sizes[0], net.sizes[-1]

    def seen(value, width):
        return effective(value, net.dtype).astype(np.float64).reshape(-1, width)

    onehot = (Y.shape[0] > 0 and n_out > 1 and np.all((Y == 0) | (Y == 1))
              and np.all(Y.sum(axis=1) == 1))
    form = draw(st.sampled_from(["pair", "pair-labels", "tuples", "tuples-labels", "zip"]))
    if form.endswith("labels") and not onehot:
        form = form[:-7]
    note(f"data form {form}")
    if form == "pair":
        # A nested list is not an array: the pair form takes X as an array.
        Xv, Yv = draw(presented(X, NO_LIST)), draw(presented(Y))
        return (Xv, Yv), seen(Xv, n_in), seen(Yv, n_out)
    if form == "pair-labels":
        Xv = draw(presented(X, NO_LIST))
        labels = np.argmax(Y, axis=1)
        dt = draw(st.sampled_from([np.int64, np.int32, np.uint8, np.float64]))
        return [Xv, labels.astype(dt)], seen(Xv, n_in), np.eye(n_out)[labels]
    column = draw(st.booleans())
    xs = [draw(presented(x.reshape(-1, 1) if column else x,
                         ["c64", "f32", "int", "list", "readonly", "strided", "bool"]))
          for x in X]
    X_seen = np.array([seen(x, n_in)[0] for x in xs]).reshape(-1, n_in)
    if form == "tuples-labels":
        labels = np.argmax(Y, axis=1)
        ys = [int(k) if draw(st.booleans()) else np.int64(k) for k in labels]
        Y_seen = np.eye(n_out)[labels]
    else:
        ys = [y.reshape(-1, 1) if column else y for y in Y]
        Y_seen = seen(Y, n_out)
    pairs = list(zip(xs, ys))
    data = zip(*zip(*pairs)) if form == "zip" and pairs else pairs
    return data, X_seen, Y_seen


def data_outcome(X_seen, Y_seen):
    """(X, Y) as the network should see them, or None when they hold NaN or ±Inf."""
    if not (finite(X_seen) and finite(Y_seen)):
        return None
    return X_seen, Y_seen


# -- Network construction -----------------------------------------------------------------

SIZE_ITEMS = st.one_of(st.integers(1, 8), st.integers(-3, 0), st.sampled_from(
    [np.int64(3), np.int32(2), np.uint8(4), 2.0, np.float64(3), True, False, "3", None, 1j, [2]]))
ACT_NAMES = st.sampled_from(["sigmoid", "SIGMOID", "Tanh", "relu", "linear", "softmax", "",
                             "sigmoid ", "gelu", None, 3, b"tanh", ["relu"]])
COST_NAMES = st.sampled_from(["quadratic", "sse", "cross_entropy", "log_likelihood", "Quadratic",
                              "mse", None, 0, "cross-entropy"])
DTYPES = st.sampled_from(["float64", "float32", np.float64, np.float32, np.dtype("float32"), float,
                          "int32", "float16", "f8", "complex128", "nonsense", 3, object(), [1]])
SEEDS = st.one_of(st.none(), st.integers(0, 2 ** 70), st.integers(-5, -1),
                  st.sampled_from([np.int64(7), np.uint32(3), 1.5, True, "1", np.random.SeedSequence(5)]))


def valid_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@FUZZ
@given(sizes=st.one_of(st.lists(SIZE_ITEMS, min_size=0, max_size=6),
                       st.lists(st.integers(1, 8), min_size=2, max_size=5).map(tuple),
                       st.lists(st.integers(1, 8), min_size=2, max_size=5).map(np.array),
                       st.sampled_from([None, "784,30,10", 5, 3.0, {"a": 1}, b"ab", [[2, 3]],
                                        [1] * 65, [1] * 64, iter([2, 3])])),
       activation=ACT_NAMES, output_activation=st.one_of(st.none(), ACT_NAMES), cost=COST_NAMES,
       init=st.sampled_from(["gaussian", "scaled", "xavier", None]), dtype=DTYPES, seed=SEEDS)
def test_network_construction(sizes, activation, output_activation, cost, init, dtype, seed):
    net, exc = attempt(cbp.Network, sizes, activation=activation,
                       output_activation=output_activation, cost=cost, init=init, dtype=dtype,
                       seed=seed)
    # The rules, restated: which arguments are acceptable.
    ok_sizes = (isinstance(sizes, (list, tuple, np.ndarray)) and 2 <= len(sizes) <= 64
                and all(valid_int(s) and s >= 1 for s in sizes))
    out = activation if output_activation is None else output_activation
    ok_act = isinstance(activation, str) and activation.lower() in HIDDEN
    ok_out = isinstance(out, str) and out.lower() in OUTPUTS
    ok_cost = (isinstance(cost, str) and ok_out
               and (cost.lower(), out.lower()) in [(c, o) for o, c in PAIRS]) if ok_out else False
    ok_init = init in ("gaussian", "scaled")
    try:
        ok_dtype = np.dtype(dtype) in (np.float64, np.float32)
    except Exception:
        ok_dtype = False
    ok_seed = seed is None or isinstance(seed, np.random.SeedSequence) or (
        valid_int(seed) and seed >= 0)
    should_work = ok_sizes and ok_act and ok_out and ok_cost and ok_init and ok_dtype and ok_seed
    assert (exc is None) == should_work, f"accepted={exc is None}, rules say {should_work}: {exc}"
    if exc is not None:
        assert str(exc)
        return
    sizes = [int(s) for s in sizes]
    assert net.sizes == sizes and net.num_layers == len(sizes)
    assert [w.shape for w in net.weights] == list(zip(sizes[1:], sizes[:-1]))
    assert [b.shape for b in net.biases] == [(s, 1) for s in sizes[1:]]
    assert all(finite(a) and a.dtype == np.dtype(dtype) for a in net.weights + net.biases)
    assert all(not a.flags.writeable for a in net.weights + net.biases)
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        again = cbp.Network(sizes, activation=activation, output_activation=output_activation,
                            cost=cost, init=init, dtype=dtype, seed=seed)
        assert same(params(net), params(again))
    assert repr(net)


# -- weights and biases assignment ----------------------------------------------------------

@FUZZ
@given(data=st.data(), spec=networks(weights=("init",)))
def test_weights_biases_assignment(data, spec):
    net, sizes, _ = spec
    which = data.draw(st.sampled_from(["weights", "biases"]))
    shapes = [a.shape for a in getattr(net, which)]
    before = params(net)
    how = data.draw(st.sampled_from(["right", "nonfinite", "shape", "count", "junk", "container"]))
    mode = data.draw(st.sampled_from(["unit", "moderate", "extreme"]))
    bases = [data.draw(hnp.arrays(np.float64, s, elements=elements(mode))) for s in shapes]
    if which == "biases" and data.draw(st.booleans()):
        bases = [b.ravel() for b in bases]        # (n,) is accepted for a bias column
    if how == "nonfinite":
        k = data.draw(st.integers(0, len(bases) - 1))
        bases[k].flat[data.draw(st.integers(0, bases[k].size - 1))] = data.draw(
            st.sampled_from(NONFINITE))
    value = [data.draw(presented(b)) for b in bases]
    if how == "shape":
        k = data.draw(st.integers(0, len(value) - 1))
        value[k] = np.zeros(data.draw(st.sampled_from(
            [(shapes[k][0] + 1, shapes[k][1]), (shapes[k][1] + 1,), (), (1, 1, 1),
             (shapes[k][0], shapes[k][1] + 1)])))
        if np.atleast_1d(value[k]).shape in (shapes[k],
                                             shapes[k][:1] if which == "biases" else None):
            value[k] = np.zeros((9, 9))
    elif how == "count":
        value = value[:-1] if data.draw(st.booleans()) else value + [value[0]]
    elif how == "junk":
        k = data.draw(st.integers(0, len(value) - 1))
        value[k] = data.draw(st.sampled_from(JUNK))
    if how == "container":
        value = data.draw(st.sampled_from([tuple(value), np.array(0.0), "weights", None, 3,
                                           (v for v in value), bases[0]]))
    _, exc = attempt(setattr, net, which, value)
    if exc is not None:
        assert same(params(net), before), "a refused assignment changed the network"
    if how == "count" or (how == "container" and not isinstance(value, tuple)):
        assert exc is not None
        return
    if how == "junk":
        assert exc is not None
        return
    if how == "shape":
        assert isinstance(exc, ValueError)
        return
    effs = [effective(v, net.dtype) for v in value]
    if any(e is None for e in effs):
        assert isinstance(exc, TypeError)
        return
    if not all(e.shape == s or (which == "biases" and e.shape == s[:1])
               for e, s in zip(effs, shapes)):
        assert isinstance(exc, ValueError)
        return
    if not all(finite(e) for e in effs):
        assert isinstance(exc, ValueError), exc
        return
    assert exc is None, exc
    for got, e, s in zip(getattr(net, which), effs, shapes):
        assert got.shape == s and got.dtype == np.dtype(net.dtype)
        assert np.array_equal(got, e.reshape(s))
    # The other list is untouched.
    other = net.biases if which == "weights" else net.weights
    old_other = before[len(net.weights):] if which == "weights" else before[:len(net.weights)]
    assert same(other, old_other)


# -- feedforward ----------------------------------------------------------------------------

def forward_shape(arr, n_in, n_out):
    """The output shape the documented rules give for input shape ``arr.shape``, or None."""
    if arr.ndim == 2 and arr.shape == (n_in, 1):
        return (n_out, 1)
    if arr.ndim == 1 and arr.shape[0] == n_in:
        return (n_out,)
    if arr.ndim == 2 and arr.shape[1] == n_in:
        return (arr.shape[0], n_out)
    return None


def check_forward(net, eff, out):
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X = eff.reshape(-1, n_in).astype(np.float64)
    assert out.dtype == np.dtype(net.dtype)
    got = np.asarray(out, dtype=np.float64).reshape(-1, n_out)
    ref = Reference(net)
    try:
        A, EA, _, _ = ref.forward(X)
    except Extreme:
        # No value to vouch for; still within the output function's range.
        if net.output_activation in ("sigmoid", "softmax"):
            assert np.all((got >= 0) & (got <= 1)), got
        return
    assert_within(got, A[-1], EA[-1], "feedforward")


@FUZZ
@given(data=st.data(), spec=networks())
def test_feedforward(data, spec):
    net, _, _ = spec
    n_in, n_out = net.sizes[0], net.sizes[-1]
    mode = data.draw(st.sampled_from(["unit", "moderate", "extreme"]))
    shape = data.draw(st.sampled_from([(n_in, 1), (n_in,), "batch", "batch", "wrong"]))
    if shape == "batch":
        shape = (data.draw(st.integers(0, 7)), n_in)
    elif shape == "wrong":
        shape = data.draw(st.sampled_from([(n_in + 1,), (1, n_in + 1), (n_in, 2), (2, n_in, 1), (),
                                           (0,), (n_in + 1, 1)]))
    base = data.draw(hnp.arrays(np.float64, shape, elements=elements(mode)))
    if base.size and data.draw(st.integers(0, 9)) == 0:
        base.flat[data.draw(st.integers(0, base.size - 1))] = data.draw(st.sampled_from(NONFINITE))
    value = data.draw(presented(base))
    before = params(net)
    out, exc = attempt(net.feedforward, value)
    assert same(params(net), before)
    eff = effective(value, net.dtype)
    if eff is None:
        assert isinstance(exc, TypeError), exc
        return
    want_shape = forward_shape(eff, n_in, n_out)
    if not finite(eff) or want_shape is None:
        assert isinstance(exc, ValueError), f"{exc!r}, out {out!r}"
        return
    if exc is not None:
        refused_for_overflow(exc, Reference(net).forward, eff.reshape(-1, n_in).astype(np.float64))
        return
    assert out.shape == want_shape
    assert not np.isnan(out).any(), "NaN out of finite input"
    check_forward(net, eff, out)


@FUZZ
@given(spec=networks(weights=("init",)), junk=st.sampled_from(JUNK))
def test_feedforward_wrong_types(spec, junk):
    net, _, _ = spec
    expect_error((TypeError, ValueError), net.feedforward, junk)


@FUZZ
@given(base=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                       elements=st.one_of(st.floats(-50, 50), st.sampled_from(SPECIAL))),
       dtype=st.sampled_from([np.float64, np.float32, np.int64, np.float16]))
def test_sigmoid_functions(base, dtype):
    with np.errstate(all="ignore"):
        z = base.astype(dtype) if dtype is not np.int64 else np.clip(base, -2 ** 62, 2 ** 62).astype(dtype)
    if not np.all(np.isfinite(z)):
        return
    # The module-level sigmoid/sigmoid_prime (network.py's helpers): no warning at any magnitude.
    s, exc = attempt(cbp.sigmoid, z)
    assert exc is None
    sp, exc = attempt(cbp.sigmoid_prime, z)
    assert exc is None
    zf = z.astype(np.float64)
    want = act("sigmoid", zf)
    assert s.shape == z.shape and np.allclose(s, want, rtol=1e-15, atol=0)
    assert np.allclose(sp, want * (1 - want), rtol=1e-12, atol=1e-300)
    assert np.all((s >= 0) & (s <= 1))


# -- backprop -----------------------------------------------------------------------------------

@FUZZ
@given(data=st.data(), spec=networks())
def test_backprop(data, spec):
    net, _, _ = spec
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X, Y = data.draw(batches(net, n_min=1, n_max=1))
    xshape = data.draw(st.sampled_from([(n_in, 1), (n_in,), "wrong"]))
    yshape = data.draw(st.sampled_from([(n_out, 1), (n_out,), (n_out,), "wrong"]))
    wrong = "wrong" in (xshape, yshape)
    x = X[0].reshape(xshape) if xshape != "wrong" else np.zeros((1, n_in + 1))
    y = Y[0].reshape(yshape) if yshape != "wrong" else np.zeros((2, n_out))
    xv, yv = data.draw(presented(x)), data.draw(presented(y))
    before = params(net)
    result, exc = attempt(net.backprop, xv, yv)
    assert same(params(net), before)
    xe, ye = effective(xv, net.dtype), effective(yv, net.dtype)
    if xe is None or ye is None:
        assert isinstance(exc, TypeError), exc
        return
    if wrong or not (finite(xe) and finite(ye)):
        assert isinstance(exc, ValueError), exc
        return
    X1, Y1 = xe.reshape(1, n_in).astype(np.float64), ye.reshape(1, n_out).astype(np.float64)
    if exc is not None:
        refused_for_overflow(exc, Reference(net).gradient, X1, Y1, need_cost=False)
        return
    nabla_b, nabla_w = result
    assert not any(np.isnan(a).any() for a in nabla_b + nabla_w), "NaN out of finite input"
    assert [b.shape for b in nabla_b] == [b.shape for b in net.biases]
    assert [w.shape for w in nabla_w] == [w.shape for w in net.weights]
    assert all(a.dtype == np.dtype(net.dtype) for a in nabla_b + nabla_w)
    ref = Reference(net)
    try:
        (GW, GB), (EW, EB), _, _ = ref.gradient(X1, Y1, need_cost=False)
    except Extreme:
        return
    for k in range(len(GW)):
        assert_within(nabla_w[k], GW[k], EW[k], f"nabla_w[{k}]")
        assert_within(nabla_b[k].ravel(), GB[k], EB[k], f"nabla_b[{k}]")


@FUZZ
@given(spec=networks(weights=("init",)), junk_x=st.booleans(), junk=st.sampled_from(JUNK))
def test_backprop_wrong_types(spec, junk_x, junk):
    net, _, _ = spec
    x, y = np.zeros(net.sizes[0]), np.zeros(net.sizes[-1])
    expect_error((TypeError, ValueError), net.backprop, *((junk, y) if junk_x else (x, junk)))


# -- update_mini_batch ---------------------------------------------------------------------------

HYPER = st.one_of(st.floats(1e-3, 5.0), st.sampled_from([1e-300, 1e30, 1e300, 0.0, -1.0, np.nan,
                                                         np.inf, np.float32(0.5), 1, True, "0.1",
                                                         None, 1j, [0.1]]))


def real_ok(v, positive=False):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return None                    # TypeError
    v = float(v)
    return np.isfinite(v) and (v > 0 if positive else v >= 0)


@FUZZ
@given(data=st.data(), spec=networks())
def test_update_mini_batch(data, spec):
    net, _, kwargs = spec
    X, Y = data.draw(batches(net, n_min=0, n_max=5))
    mb, X_seen, Y_seen = data.draw(training_data(net, X, Y))
    eta = data.draw(HYPER)
    lmbda = data.draw(st.one_of(st.just(0.0), HYPER))
    n = data.draw(st.one_of(st.none(), st.integers(-1, 50), st.sampled_from([2.0, "3", True])))
    before = params(net)
    _, exc = attempt(net.update_mini_batch, mb, eta, lmbda=lmbda, n=n)
    if exc is not None:
        assert same(params(net), before), f"refused step changed the network: {exc!r}"
    assert all(finite(p) for p in params(net)), "non-finite parameters after update_mini_batch"
    # Every problem present, as the exception class it calls for; any one may be reported.
    problems = []
    for ok in (real_ok(eta, positive=True), real_ok(lmbda),
               None if not (n is None or valid_int(n)) else (n is None or n >= 1)):
        if ok is None:
            problems.append(TypeError)
        elif not ok:
            problems.append(ValueError)
    seen = data_outcome(X_seen, Y_seen)
    if seen is None or X.shape[0] == 0:
        problems.append(ValueError)
    if problems:
        assert isinstance(exc, tuple(problems)), f"{exc!r}, problems {problems}"
        return
    ref = Reference(ParamsView(before, net))
    try:
        new_w, new_b, bw, bb = ref.step(*seen, float(eta), float(lmbda),
                                        X.shape[0] if n is None else n)
    except Extreme:
        if exc is not None:
            assert isinstance(exc, cbp.DivergenceError), exc
        return
    assert exc is None, f"{exc!r}"
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        assert_within(w, new_w[k], bw[k], f"weights[{k}]")
        assert_within(b.ravel(), new_b[k], bb[k], f"biases[{k}]")


class ParamsView:
    """Enough of a Network for Reference(): given parameters and the net's kind."""

    def __init__(self, ps, net):
        L = len(net.weights)
        self.weights, self.biases = ps[:L], ps[L:]
        self.dtype = net.dtype
        self.activation, self.output_activation, self.cost = (
            net.activation, net.output_activation, net.cost)


@FUZZ
@given(spec=networks(weights=("init",)), where=st.sampled_from(["data", "x", "y", "item", "eta"]),
       junk=st.sampled_from(JUNK))
def test_update_mini_batch_wrong_types(spec, where, junk):
    net, _, _ = spec
    x, y = np.zeros((net.sizes[0], 1)), np.zeros((net.sizes[-1], 1))
    mb, eta = [(x, y), (x, y)], 1.0
    if where == "data":
        mb = junk
    elif where == "x":
        mb = [(junk, y)]
    elif where == "y":
        mb = [(x, junk)]
    elif where == "item":
        # (A two-item list would be an (x, y) pair, and may be a valid one.)
        mb = [(x, y), None if isinstance(junk, list) and len(junk) == 2 else junk]
    else:
        eta = junk
    before = params(net)
    expect_error((TypeError, ValueError), net.update_mini_batch, mb, eta)
    assert same(params(net), before)


# -- SGD: the method and the class ---------------------------------------------------------------

def replay(twin, Xs, Ys, orders, m, step):
    """Train ``twin`` one mini-batch at a time; returns the (epoch, k) that diverged, or None."""
    for j, order in enumerate(orders):
        for k, start in enumerate(range(0, len(order), m)):
            idx = order[start:start + m]
            try:
                step(twin, Xs[idx], Ys[idx])
            except cbp.DivergenceError:
                return j, k
    return None


@FUZZ
@given(data=st.data(), spec=networks(weights=("init", "unit", "moderate")))
def test_sgd_method_equals_mini_batch_steps(data, spec):
    net, _, kwargs = spec
    X, Y = data.draw(batches(net, n_min=1, n_max=9, modes=("unit", "moderate"), nonfinite=False))
    td, X_seen, Y_seen = data.draw(training_data(net, X, Y))
    epochs = data.draw(st.integers(0, 3))
    m = data.draw(st.integers(1, 10))
    eta = data.draw(st.one_of(st.floats(0.01, 3.0), st.just(1e30)))
    lmbda = data.draw(st.sampled_from([0.0, 0.5]))
    shuffle = data.draw(st.booleans())
    twin = clone(net, kwargs)
    rng = copy.deepcopy(net._rng)
    history, exc = attempt(net.SGD, td, epochs, m, eta, lmbda=lmbda, shuffle=shuffle,
                           verbose=False)
    Xs, Ys = data_outcome(X_seen, Y_seen)
    n = X.shape[0]
    orders = [rng.permutation(n) if shuffle else np.arange(n) for _ in range(epochs)]
    where = replay(twin, Xs, Ys, orders, m,
                   lambda t, xb, yb: t.update_mini_batch((xb, yb), eta, lmbda=lmbda, n=n))
    assert same(params(net), params(twin)), "SGD differs from update_mini_batch on the same order"
    if where is None:
        assert exc is None, exc
        assert history["epoch"] == list(range(epochs))
        assert len(history["cost"]) == epochs and all(np.isfinite(history["cost"]))
    else:
        assert isinstance(exc, cbp.DivergenceError), exc
        assert (exc.epoch, exc.mini_batch) == where
        assert f"epoch {where[0]}" in str(exc) and f"mini-batch {where[1]}" in str(exc)
        assert exc.history["epoch"] == list(range(where[0]))
    assert all(finite(p) for p in params(net))


@FUZZ
@given(data=st.data(), spec=networks(weights=("init", "unit", "moderate")))
def test_sgd_class_run_equals_steps(data, spec):
    net, _, kwargs = spec
    X, Y = data.draw(batches(net, n_min=1, n_max=9, modes=("unit", "moderate"), nonfinite=False))
    td, X_seen, Y_seen = data.draw(training_data(net, X, Y))
    hyper = dict(eta=data.draw(st.floats(0.01, 3.0)), mini_batch_size=data.draw(st.integers(1, 10)),
                 lmbda=data.draw(st.sampled_from([0.0, 0.3])),
                 momentum=data.draw(st.sampled_from([0.0, 0.5, 0.9])),
                 shuffle=data.draw(st.booleans()))
    epochs = data.draw(st.integers(0, 3))
    twin = clone(net, kwargs)
    rng = copy.deepcopy(net._rng)
    opt, opt_twin = cbp.SGD(**hyper), cbp.SGD(**hyper)
    history, exc = attempt(opt.run, net, td, epochs)
    Xs, Ys = data_outcome(X_seen, Y_seen)
    n, m = X.shape[0], hyper["mini_batch_size"]
    orders = [rng.permutation(n) if hyper["shuffle"] else np.arange(n) for _ in range(epochs)]
    where = replay(twin, Xs, Ys, orders, m, lambda t, xb, yb: opt_twin.step(t, xb, yb, n=n))
    assert same(params(net), params(twin)), "SGD.run differs from SGD.step on the same order"
    if where is None:
        assert exc is None, exc
        assert len(history["cost"]) == epochs
    else:
        assert isinstance(exc, cbp.DivergenceError) and (exc.epoch, exc.mini_batch) == where
    # One step from zero velocity against the NumPy reference.
    fresh = cbp.SGD(**hyper)
    ref = Reference(net)
    before = params(net)
    cost, exc = attempt(fresh.step, net, Xs, Ys, n=n)
    try:
        new_w, new_b, bw, bb = ref.step(Xs, Ys, hyper["eta"], hyper["lmbda"], n,
                                        momentum=hyper["momentum"])
        _, _, c, ec = ref.gradient(Xs, Ys)
    except Extreme:
        if exc is not None:
            assert isinstance(exc, cbp.DivergenceError) and same(params(net), before)
        return
    assert exc is None, exc
    assert abs(cost - c / n) <= 4 * ec / n + 1e-300
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        assert_within(w, new_w[k], bw[k], f"weights[{k}]")
        assert_within(b.ravel(), new_b[k], bb[k], f"biases[{k}]")


ARG_VALUES = {
    "epochs": st.one_of(st.integers(-2, 2), st.sampled_from([1.0, "2", None, True, np.int64(1)])),
    "mini_batch_size": st.one_of(st.integers(-1, 3), st.sampled_from([2.0, None, "5", False,
                                                                       np.uint8(2)])),
    "eta": HYPER, "lmbda": HYPER,
    "momentum": st.one_of(st.floats(-0.5, 1.5), st.sampled_from([np.nan, "0.5", None, 1, True])),
    "shuffle": st.sampled_from([True, False, np.bool_(True), 1, 0, "yes", None]),
    "test_data": st.sampled_from(JUNK + ["ok", "labels-out-of-range", "float-labels",
                                         "huge-labels", "uint64-labels"]),
    "progress": st.sampled_from([None, print, 3, "x", lambda k: None]),
    "training_data": st.sampled_from(JUNK + [[], (), ([], []), [(None, None)]]),
}


@FUZZ
@given(data=st.data(), spec=networks(weights=("init",)), which=st.sampled_from(sorted(ARG_VALUES)),
       use_class=st.booleans())
def test_sgd_arguments(data, spec, which, use_class):
    net, _, _ = spec
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X = np.linspace(-1, 1, 4 * n_in).reshape(4, n_in)
    Y = np.full((4, n_out), 0.5)
    args = dict(epochs=1, mini_batch_size=2, eta=0.5, lmbda=0.0, momentum=0.0, shuffle=True,
                test_data=None, progress=None, training_data=(X, Y))
    value = data.draw(ARG_VALUES[which])
    labels = np.arange(4) % n_out
    if not isinstance(value, str):
        pass
    elif value == "ok":
        value = (X, labels)
    elif value == "labels-out-of-range":
        value = (X, labels + n_out)
    elif value == "float-labels":
        value = (X, labels + 0.5)
    elif value == "huge-labels":
        value = (X, np.full(4, 1e300))
    elif value == "uint64-labels":
        value = (X, np.full(4, 2 ** 64 - 1, dtype=np.uint64))
    args[which] = value
    before = params(net)
    if use_class:
        hyper = {k: args[k] for k in ("eta", "mini_batch_size", "lmbda", "momentum", "shuffle")}
        opt, exc = attempt(cbp.SGD, **hyper)
        if exc is None:
            _, exc = attempt(opt.run, net, args["training_data"], args["epochs"],
                             test_data=args["test_data"], progress=args["progress"])
    else:
        _, exc = attempt(net.SGD, args["training_data"], args["epochs"], args["mini_batch_size"],
                         args["eta"],
                         test_data=args["test_data"], lmbda=args["lmbda"],
                         momentum=args["momentum"], shuffle=args["shuffle"], verbose=False,
                         progress=args["progress"])
    if which == "training_data":
        assert exc is not None, f"training_data={value!r} was accepted"
    if exc is not None and not isinstance(exc, cbp.DivergenceError):
        assert same(params(net), before)
    assert all(finite(p) for p in params(net))


@FUZZ
@given(junk=st.sampled_from(JUNK + [3, np.zeros(3), [cbp.Network([2, 2])]]),
       method=st.sampled_from(["run", "step"]))
def test_sgd_class_refuses_non_networks(junk, method):
    opt = cbp.SGD(0.1, momentum=0.5)
    X, Y = np.zeros((2, 2)), np.zeros((2, 2))
    if method == "run":
        expect_error(TypeError, opt.run, junk, (X, Y), 1)
    else:
        expect_error(TypeError, opt.step, junk, X, Y)


# -- evaluate and total_cost --------------------------------------------------------------------

@FUZZ
@given(data=st.data(), spec=networks())
def test_evaluate(data, spec):
    net, _, _ = spec
    n_in, n_out = net.sizes[0], net.sizes[-1]
    X, _ = data.draw(batches(net, n_min=0, n_max=7))
    n = X.shape[0]
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, n_out - 1)))
    form = data.draw(st.sampled_from(["pair", "onehot-pair", "tuples", "tuples-onehot", "bad-label"]))
    Xv = data.draw(presented(X, NO_LIST))
    # Labels written as targets: one-hot rows, or for one output unit the label itself.
    onehot = np.eye(n_out) if n_out > 1 else np.array([[0.0], [1.0]])
    if form == "pair":
        td = (Xv, labels.astype(data.draw(st.sampled_from([np.int64, np.uint8, np.float64]))))
    elif form == "onehot-pair":
        td = (Xv, onehot[labels])
    elif form == "tuples":
        td = [(x.reshape(-1, 1), int(k)) for x, k in zip(X, labels)]
    elif form == "tuples-onehot":
        td = [(x, onehot[k].reshape(-1, 1)) for x, k in zip(X, labels)]
    else:
        # (one output unit has the classes 0 and 1)
        bad = data.draw(st.sampled_from([-1, max(n_out, 2), 2 ** 40, 0.5, 1e300, np.nan,
                                         -1e300]))
        td = (Xv, np.concatenate([labels.astype(np.float64), [bad]]))
    correct, exc = attempt(net.evaluate, td)
    seen = (effective(Xv, net.dtype) if form in ("pair", "onehot-pair") else
            effective(X, net.dtype))
    if form == "bad-label" or not finite(seen):
        assert isinstance(exc, ValueError), exc
        return
    if exc is not None:
        refused_for_overflow(exc, Reference(net).forward, seen.reshape(n, n_in).astype(np.float64))
        return
    assert isinstance(correct, int) and 0 <= correct <= n
    if n:
        out = np.array([net.feedforward(x) for x in seen.reshape(n, n_in)])
        # The class answered: argmax, or a >= 0.5 for one output unit.
        answers = (out[:, 0] >= 0.5) if n_out == 1 else np.argmax(out, axis=1)
        assert correct == int(np.sum(answers == labels))
    else:
        assert correct == 0


@FUZZ
@given(data=st.data(), spec=networks())
def test_total_cost(data, spec):
    net, _, _ = spec
    X, Y = data.draw(batches(net, n_min=0, n_max=6))
    td, X_seen, Y_seen = data.draw(training_data(net, X, Y))
    lmbda = data.draw(st.one_of(st.just(0.0), st.floats(0, 10), st.sampled_from([-1.0, np.nan, "1"])))
    total, exc = attempt(net.total_cost, td, lmbda=lmbda)
    ok = real_ok(lmbda)
    if ok is None:
        assert isinstance(exc, TypeError)
        return
    seen = data_outcome(X_seen, Y_seen)
    if not ok or seen is None or X.shape[0] == 0:
        assert isinstance(exc, ValueError), exc
        return
    ref = Reference(net)
    Xs, Ys = seen
    if exc is not None:
        refused_for_overflow(exc, lambda: ref.costs(*ref.forward(Xs), Ys))
        return
    assert isinstance(total, float) and not np.isnan(total), total
    try:
        A, EA, Zs, EZs = ref.forward(Xs)
        c, ec = ref.costs(A, EA, Zs, EZs, Ys)
    except Extreme:
        return
    n = X.shape[0]
    with np.errstate(all="ignore"):
        l2 = 0.5 * lmbda / n * sum(float(np.sum(w * w)) for w in ref.W) if lmbda else 0.0
        want = float(np.sum(c / n)) + l2
        bound = float(np.sum(ec / n)) + 1e-12 * (abs(want) + abs(l2)) + 1e-300
    if not np.isfinite(want):
        return
    assert abs(total - want) <= 4 * bound, (total, want, bound)


# -- model files ---------------------------------------------------------------------------------

def _io():
    try:
        import cbp.io as module
    except ImportError:
        pytest.skip("cbp.io is not there yet")
    return module


def _load():
    return getattr(cbp, "load", None) or _io().load


@FUZZ
@given(spec=networks(weights=("init", "unit", "extreme")))
def test_save_load_round_trip(spec, tmp_path_factory):
    net, _, _ = spec
    module = _io()
    path = tmp_path_factory.mktemp("model") / "net.npz"
    _, exc = attempt(module.save, net, path)
    assert exc is None, exc
    loaded, exc = attempt(_load(), path)
    assert exc is None, exc
    assert repr(loaded) == repr(net)
    assert same(params(loaded), params(net))


@FUZZ
@given(data=st.data(), spec=networks(weights=("init",)))
def test_load_random_and_damaged_bytes(data, spec, tmp_path_factory):
    net, _, _ = spec
    module = _io()
    d = tmp_path_factory.mktemp("bytes")
    good = d / "good.npz"
    module.save(net, good)
    raw = good.read_bytes()
    how = data.draw(st.sampled_from(["random", "flip", "truncate", "append", "zip-of-junk",
                                     "npy", "pickle", "empty"]))
    if how == "random":
        blob = data.draw(st.binary(min_size=0, max_size=2000))
    elif how == "flip":
        blob = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
        blob = bytes(blob)
    elif how == "truncate":
        blob = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "append":
        blob = raw + data.draw(st.binary(min_size=1, max_size=200))
    elif how == "zip-of-junk":
        blob = b"PK\x03\x04" + data.draw(st.binary(max_size=500))
    elif how == "npy":
        blob = b"\x93NUMPY\x01\x00" + data.draw(st.binary(max_size=300))
    elif how == "pickle":
        blob = pickle.dumps({"format": "cbp-model", "W0": np.zeros(3)})
    else:
        blob = b""
    path = d / "model.npz"
    path.write_bytes(blob)
    note(f"{how}: {len(blob)} bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            loaded = _load()(path)
        except (ValueError, OSError):
            return
    # Damage that left a valid model: it must be a consistent, finite network.
    assert isinstance(loaded, cbp.Network)
    assert all(finite(p) for p in params(loaded))
    out = loaded.feedforward(np.zeros(loaded.sizes[0]))
    assert out.shape == (loaded.sizes[-1],)


def _patch_zip(raw, central=None, local=None):
    """``raw`` with fields of every central-directory / local header set: {offset: (fmt, fn)}."""
    blob = bytearray(raw)
    for signature, fields in ((b"PK\x01\x02", central or {}), (b"PK\x03\x04", local or {})):
        at = blob.find(signature)
        while at >= 0:
            for offset, (fmt, fn) in fields.items():
                (value,) = struct.unpack_from(fmt, blob, at + offset)
                struct.pack_into(fmt, blob, at + offset, fn(value))
            at = blob.find(signature, at + 4)
    return bytes(blob)


@pytest.mark.parametrize("damage", ["version", "method", "patched", "encrypted"])
def test_load_refuses_zip_entries_it_cannot_read(damage, tmp_path):
    # Found by test_load_random_and_damaged_bytes: one flipped bit in a zip
    # header made zipfile raise NotImplementedError or RuntimeError.
    module = _io()
    good = tmp_path / "good.npz"
    module.save(cbp.Network([3, 4, 2], seed=0), good)
    raw = good.read_bytes()
    if damage == "version":        # "version needed to extract" 10.9
        bad = _patch_zip(raw, central={6: ("<H", lambda v: 109)})
    elif damage == "method":       # compression method 99
        bad = _patch_zip(raw, central={10: ("<H", lambda v: 99)}, local={8: ("<H", lambda v: 99)})
    elif damage == "patched":      # flag bit 5, compressed patched data
        bad = _patch_zip(raw, central={8: ("<H", lambda v: v | 0x20)})
    else:                          # flag bit 0, encrypted
        bad = _patch_zip(raw, central={8: ("<H", lambda v: v | 0x1)},
                         local={6: ("<H", lambda v: v | 0x1)})
    path = tmp_path / "bad.npz"
    path.write_bytes(bad)
    with pytest.raises((ValueError, OSError)):
        _load()(path)


def test_load_refuses_an_array_header_that_claims_more_than_the_file_holds(tmp_path):
    # A 2 KB model file whose W0.npy header claims 400e9 x 3 float64: reading it
    # must not try to allocate terabytes (MemoryError) or, for a claim that does
    # fit in memory, gigabytes that the file cannot fill.
    import io as pyio
    import zipfile
    module = _io()
    good = tmp_path / "good.npz"
    module.save(cbp.Network([3, 4, 2], seed=0), good)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "W0.npy":
                head = pyio.BytesIO()
                np.lib.format.write_array_header_1_0(
                    head, {"descr": "<f8", "fortran_order": False, "shape": (400_000_000_000, 3)})
                data = head.getvalue() + bytes(96)
            zout.writestr(item, data)
    with pytest.raises((ValueError, OSError)):
        _load()(bad)


# -- datasets loaders -----------------------------------------------------------------------------

def test_load_mnist_refuses_a_pickle_frame_longer_than_the_file(tmp_path):
    # Found by test_load_mnist_random_bytes: 9 bytes, a pickle FRAME opcode whose
    # length is 2**56, made load_mnist raise MemoryError instead of ValueError.
    from cbp import datasets
    path = tmp_path / "mnist.pkl"
    path.write_bytes(b"\x95" + (2 ** 56).to_bytes(8, "little"))
    with pytest.raises(ValueError):
        datasets.load_mnist(path)


def _idx(magic, dims, payload):
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


@FUZZ
@given(data=st.data())
def test_load_mnist_random_bytes(data, tmp_path_factory):
    from cbp import datasets
    d = tmp_path_factory.mktemp("mnist")
    how = data.draw(st.sampled_from(["random", "idx", "idx-bad-dims", "gzip", "pickle-junk",
                                     "labels-only", "directory"]))
    n = data.draw(st.integers(0, 3))
    images = d / "train-images-idx3-ubyte"
    labels = d / "train-labels-idx1-ubyte"
    label_bytes = data.draw(st.binary(min_size=n, max_size=n))
    if how == "random":
        images.write_bytes(data.draw(st.binary(max_size=3000)))
        labels.write_bytes(data.draw(st.binary(max_size=20)))
    elif how == "idx":
        extra = data.draw(st.integers(-3, 3))
        body = data.draw(st.binary(min_size=max(0, n * 784 + extra), max_size=max(0, n * 784 + extra)))
        images.write_bytes(_idx(0x803, (n, 28, 28), body))
        labels.write_bytes(_idx(0x801, (n + data.draw(st.integers(-1, 1)) if n else n,),
                                label_bytes))
    elif how == "idx-bad-dims":
        dims = tuple(data.draw(st.lists(st.integers(0, 2 ** 32 - 1), min_size=3, max_size=3)))
        images.write_bytes(_idx(0x803, dims, data.draw(st.binary(max_size=100))))
        labels.write_bytes(_idx(0x801, (n,), label_bytes))
    elif how == "gzip":
        raw = data.draw(st.binary(max_size=500))
        images.write_bytes(gzip.compress(raw)[:data.draw(st.integers(0, 600))])
        labels.write_bytes(gzip.compress(label_bytes))
    elif how == "pickle-junk":
        images = d / "mnist.pkl.gz"
        choice = data.draw(st.sampled_from([
            (np.zeros((2, 784)), np.zeros(2)), ((1, 2), (3, 4), (5, 6)), "x",
            ((np.full((1, 784), 2.0), np.zeros(1)),) * 3,
            ((np.zeros((1, 784)), np.array([11])),) * 3,
            ((np.zeros((1, 783)), np.zeros(1)),) * 3]))
        images.write_bytes(gzip.compress(pickle.dumps(choice)))
    elif how == "labels-only":
        images = labels
        labels.write_bytes(_idx(0x801, (n,), label_bytes))
    else:
        images = d
        (d / "t10k-images-idx3-ubyte.gz").write_bytes(data.draw(st.binary(max_size=100)))
    kind = data.draw(st.sampled_from([None, None, "train", "t10k", "test", 3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            X, y = datasets.load_mnist(images, kind=kind)
        except (ValueError, OSError, TypeError):
            return
    assert X.dtype == np.float64 and X.ndim == 2 and X.shape[1] == 784
    assert y.dtype == np.int64 and y.shape == (X.shape[0],)
    assert np.all((X >= 0) & (X <= 1)) and np.all((y >= 0) & (y <= 9))
