"""Step rules in the core (Nesterov momentum, Adam) against NumPy re-implementations.

The references apply each rule to the mini-batch's mean gradient, summed from
:func:`cbp.reference.backprop` one example at a time, plus the L2 terms
(λ/n) W and (α/m) W on the weights alone; and, where scikit-learn is
installed, its own ``SGDOptimizer``/``AdamOptimizer`` are a second oracle.
"""
import pickle

import numpy as np
import pytest

import cbp
from cbp import reference
from cbp.sgd import RULES


def data(seed, m, n_in=4, n_out=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n_in)), rng.random((m, n_out))


def params(net):
    return [w.copy() for w in net.weights] + [b.copy() for b in net.biases]


def mean_gradient(net, X, Y, n, lmbda, alpha):
    """(1/m) Σ_x ∇C_x + (λ/n + α/m) W, in params() order."""
    m = X.shape[0]
    fs = reference.functions(net.activation, net.output_activation, net.cost)
    weights, biases = net.weights, net.biases
    gb, gw = reference.sum_gradients(
        zip(X, Y), lambda x, y: reference.backprop(weights, biases, x, y, **fs), biases, weights)
    d = lmbda / n + alpha / m
    return ([g / m + d * w for g, w in zip(gw, net.weights)] + [g / m for g in gb])


def set_params(net, ps):
    k = len(net.weights)
    net.weights = ps[:k]
    net.biases = ps[k:]


TOL = {"float64": dict(rtol=1e-12, atol=1e-13), "float32": dict(rtol=2e-5, atol=2e-6)}
SIZES = [[4, 6, 5, 3], [4, 3]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", SIZES)
def test_nesterov_matches_numpy(dtype, sizes):
    eta, mu, lmbda, alpha, n = 0.3, 0.8, 0.5, 0.02, 40
    net = cbp.Network(sizes, activation="tanh", output_activation="sigmoid", dtype=dtype, seed=1)
    ref = cbp.Network(sizes, activation="tanh", output_activation="sigmoid", dtype="float64",
                      seed=1)
    set_params(ref, params(net))
    opt = cbp.SGD(eta, momentum=mu, lmbda=lmbda, nesterov=True, batch_l2=alpha)
    v = [np.zeros_like(p, dtype=np.float64) for p in params(ref)]
    for step in range(6):
        X, Y = data(step, 5 + step)
        opt.step(net, X, Y, n=n)
        g = mean_gradient(ref, X, Y, n, lmbda, alpha)
        v = [mu * vi - eta * gi for vi, gi in zip(v, g)]
        set_params(ref, [p + mu * vi - eta * gi for p, vi, gi in zip(params(ref), v, g)])
        if dtype == "float32":
            set_params(ref, [p.astype(np.float32) for p in params(net)])  # no drift
    for a, b in zip(params(net), params(ref)):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    assert not np.allclose(params(net)[0], params(cbp.Network(sizes, dtype=dtype, seed=1))[0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes", SIZES)
def test_adam_matches_numpy(dtype, sizes):
    eta, b1, b2, eps, lmbda, alpha, n = 0.01, 0.9, 0.99, 1e-7, 0.3, 0.05, 30
    net = cbp.Network(sizes, activation="relu", output_activation="softmax",
                      cost="log_likelihood", dtype=dtype, seed=2)
    ref = cbp.Network(sizes, activation="relu", output_activation="softmax",
                      cost="log_likelihood", seed=2)
    set_params(ref, params(net))
    opt = cbp.Adam(eta, b1, b2, eps, lmbda=lmbda, batch_l2=alpha)
    ms = [np.zeros_like(p) for p in params(ref)]
    vs = [np.zeros_like(p) for p in params(ref)]
    for t in range(1, 8):
        X, Y = data(10 + t, 3 + t)
        Y = np.eye(sizes[-1])[np.argmax(Y, axis=1)]
        opt.step(net, X, Y, n=n)
        g = mean_gradient(ref, X, Y, n, lmbda, alpha)
        ms = [b1 * m + (1 - b1) * gi for m, gi in zip(ms, g)]
        vs = [b2 * v + (1 - b2) * gi ** 2 for v, gi in zip(vs, g)]
        lr = eta * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        set_params(ref, [p - lr * m / (np.sqrt(v) + eps) for p, m, v in zip(params(ref), ms, vs)])
        if dtype == "float32":
            set_params(ref, [p.astype(np.float64) for p in params(net)])
        assert opt.state(net)[1] == t
    for a, b in zip(params(net), params(ref)):
        np.testing.assert_allclose(a, b, **TOL[dtype])


def test_adam_state_layout_and_epoch_runs_count_steps():
    net = cbp.Network([4, 5, 3], seed=0)
    opt = cbp.Adam(0.01, mini_batch_size=7)
    X, Y = data(0, 50)
    opt.run(net, (X, Y), 3, verbose=False)
    buf, steps = opt.state(net)
    assert steps == 3 * 8                       # ceil(50 / 7) mini-batches per epoch
    n = 4 * 5 + 5 * 3 + 5 + 3
    # m and v; the third copy the core keeps is the gradient's scratch
    assert RULES["adam"].state == 3 and buf.shape == (2 * n,)
    m, v = buf[:n], buf[n:2 * n]
    assert np.all(v >= 0) and np.any(m != 0)


def test_rule_table_and_codes():
    assert cbp.SGD(0.1).rule_name() == "sgd"
    assert cbp.SGD(0.1, momentum=0.5).rule_name() == "momentum"
    assert cbp.SGD(0.1, momentum=0.5, nesterov=True).rule_name() == "nesterov"
    assert cbp.SGD(0.1, momentum=0.0, nesterov=True).rule_name() == "sgd"
    assert cbp.Adam().rule_name() == "adam"
    assert {r.code for r in RULES.values()} == {0, 1, 2}


def test_plain_sgd_with_batch_l2_is_decay_over_batch_size():
    # α/m per mini-batch of m equals λ/n with λ = α, n = m.
    X, Y = data(3, 8)
    a = cbp.Network([4, 5, 3], seed=4)
    b = cbp.Network([4, 5, 3], seed=4)
    cbp.SGD(0.5, batch_l2=0.2).step(a, X, Y)
    cbp.SGD(0.5, lmbda=0.2).step(b, X, Y, n=8)
    for p, q in zip(params(a), params(b)):
        np.testing.assert_allclose(p, q, rtol=1e-14, atol=1e-15)


def test_against_scikit_learn_optimizers():
    so = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    for make, opt in [
        (lambda ps: so.SGDOptimizer(ps, 0.2, "constant", 0.7, True),
         cbp.SGD(0.2, momentum=0.7, nesterov=True)),
        (lambda ps: so.SGDOptimizer(ps, 0.2, "constant", 0.7, False),
         cbp.SGD(0.2, momentum=0.7)),
        (lambda ps: so.AdamOptimizer(ps, 0.01, 0.9, 0.999, 1e-8), cbp.Adam(0.01)),
    ]:
        net = cbp.Network([4, 6, 3], activation="tanh", seed=5)
        ref = cbp.Network([4, 6, 3], activation="tanh", seed=5)
        ps = params(ref)
        sk = make(ps)
        for step in range(5):
            X, Y = data(20 + step, 6)
            opt.step(net, X, Y)
            sk.update_params(ps, mean_gradient(ref, X, Y, 6, 0.0, 0.0))
            set_params(ref, ps)
        for a, b in zip(params(net), ps):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("opt", [cbp.Adam(0.05, mini_batch_size=4),
                                 cbp.SGD(0.3, mini_batch_size=4, momentum=0.9, nesterov=True)],
                         ids=repr)
def test_divergence_rolls_back_params_and_state(opt):
    net = cbp.Network([4, 5, 3], seed=6)
    X, Y = data(7, 20)
    opt.run(net, (X, Y), 1, verbose=False)
    before_p, (before_s, before_t) = params(net), opt.state(net)
    Ybad = Y.copy()
    Ybad[9] = 1e200      # mini-batch 2 of the next epoch (no shuffle): the cost overflows
    opt.shuffle = False
    with pytest.raises(cbp.DivergenceError) as err:
        opt.run(net, (X, Ybad), 1, verbose=False)
    assert err.value.mini_batch == 2
    s, t = opt.state(net)
    assert all(np.isfinite(p).all() for p in params(net))
    assert np.isfinite(s).all()
    # left as it was after mini-batches 0 and 1
    assert t == before_t + 2
    assert not np.array_equal(s, before_s) and not np.array_equal(params(net)[0], before_p[0])


def test_optimizer_pickles_with_its_networks_state():
    net = cbp.Network([4, 5, 3], seed=8)
    opt = cbp.Adam(0.02, mini_batch_size=5)
    X, Y = data(9, 20)
    opt.run(net, (X, Y), 2, verbose=False)
    opt2, net2 = pickle.loads(pickle.dumps((opt, net)))
    assert repr(opt2) == repr(opt)
    b1, t1 = opt.state(net)
    b2, t2 = opt2.state(net2)
    assert t1 == t2 == 8 and np.array_equal(b1, b2)
    opt.run(net, (X, Y), 1, verbose=False)
    opt2.run(net2, (X, Y), 1, verbose=False)
    for a, b in zip(params(net), params(net2)):
        np.testing.assert_array_equal(a, b)


def test_optimizer_pickles_hyper_parameters_alone():
    opt = pickle.loads(pickle.dumps(cbp.SGD(0.4, 7, 0.1, 0.6, False, nesterov=True,
                                            batch_l2=0.3)))
    assert (opt.eta, opt.mini_batch_size, opt.lmbda, opt.momentum, opt.shuffle, opt.nesterov,
            opt.batch_l2) == (0.4, 7, 0.1, 0.6, False, True, 0.3)
    assert opt.state(cbp.Network([2, 2])) is None


def test_reset_forgets_state():
    net = cbp.Network([4, 3], seed=0)
    opt = cbp.Adam(0.01)
    opt.step(net, *data(0, 4))
    assert opt.state(net)[1] == 1
    opt.reset(net)
    assert opt.state(net) is None


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta2=-0.1), ValueError, "beta2"),
    (dict(epsilon=0.0), ValueError, "epsilon"),
    (dict(eta=float("nan")), ValueError, "eta"),
    (dict(batch_l2=-1.0), ValueError, "batch_l2"),
    (dict(beta1="0.9"), TypeError, "beta1"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
])
def test_adam_bad_hyper_parameters(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        cbp.Adam(**kwargs)


def test_sgd_bad_nesterov():
    with pytest.raises(TypeError, match="nesterov"):
        cbp.SGD(0.1, momentum=0.5, nesterov=1)


def test_batch_l2_is_applied_whatever_the_thread_count():
    # A team of threads (forced here, whatever the size) applies α/m as one
    # thread does: bit-identical weights; the last mini-batch is shorter.
    from cbp import _core
    rng = np.random.default_rng(0)
    X, Y = rng.random((500, 64)), rng.random((500, 10))
    nets = [cbp.Network([64, 256, 10], seed=3) for _ in range(3)]
    before = _core.team_min_flops(0)
    try:
        for net, threads in zip(nets, (1, 2, 2)):
            cbp.SGD(0.5, 128, momentum=0.5, batch_l2=0.0 if net is nets[2] else 3.0,
                    shuffle=False, num_threads=threads).run(net, (X, Y), 2, verbose=False)
    finally:
        _core.team_min_flops(before)
    for a, b in zip(params(nets[0]), params(nets[1])):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(params(nets[0])[0], params(nets[2])[0])
