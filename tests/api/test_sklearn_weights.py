"""cbp.sklearn with sample weights and with the Poisson loss, against scikit-learn's own MLP.

Given the same parameters and random_state both draw the same initial
weights, shuffles and validation split; with ``sample_weight`` both scale
each output error by its weight and divide each mini-batch's gradient and L2
term by the batch's Σw, so the coefficients agree to rounding, to the
tolerances of test_sklearn.py.
"""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import config_context  # noqa: E402
from sklearn import neural_network as sknn  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import KFold, cross_val_score  # noqa: E402

from cbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

SK_POISSON = "poisson" in sknn.MLPRegressor._parameter_constraints["loss"][0].options


def digits(n=300):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def regression(n=120, n_targets=1):
    X, y = make_regression(n_samples=n, n_features=6, n_targets=n_targets, noise=0.1,
                           random_state=0)
    return X, y / np.std(y)


def counts(n=150, n_targets=1, seed=0):
    # Poisson counts whose log-mean is linear in X.
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, (n, 5))
    rate = np.exp(X @ rng.uniform(-0.8, 0.8, (5, n_targets)) + 0.5)
    y = rng.poisson(rate).astype(float)
    return X, (y.ravel() if n_targets == 1 else y)


def weights(n, seed=0, zeros=True):
    # Real weights in [0, 3), about a sixth of them 0.
    rng = np.random.RandomState(seed)
    w = rng.uniform(0, 3, n)
    if zeros:
        w[rng.rand(n) < 1 / 6] = 0.0
    return w


def fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


def assert_same_model(a, b, rtol=1e-9, atol=1e-11, loss_rtol=1e-12):
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert a.out_activation_ == b.out_activation_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=loss_rtol)


SOLVERS = [
    dict(solver="adam", learning_rate_init=0.01),
    dict(solver="sgd", learning_rate_init=0.1),                           # Nesterov
    dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False),  # classical
    dict(solver="sgd", learning_rate_init=0.1, momentum=0.0),
    dict(solver="sgd", learning_rate_init=0.5, learning_rate="invscaling", power_t=0.3),
]


# -- the same weighted training as scikit-learn -------------------------------------

@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("kw", SOLVERS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_weighted_classifier_follows_scikit_learn(kw, alpha):
    X, y = digits()
    sw = weights(len(y))
    args = dict(hidden_layer_sizes=(20, 10), max_iter=5, random_state=0, alpha=alpha,
                batch_size=64, **kw)
    a = fit(MLPClassifier(**args), X, y, sample_weight=sw)
    b = fit(sknn.MLPClassifier(**args), X, y, sample_weight=sw)
    assert_same_model(a, b)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_weighted_regressor_follows_scikit_learn(n_targets, solver):
    X, y = regression(n_targets=n_targets)
    sw = weights(len(X), seed=1)
    args = dict(hidden_layer_sizes=(10,), activation="logistic", solver=solver, max_iter=8,
                random_state=3, alpha=0.1, learning_rate_init=0.01, batch_size=25)
    a = fit(MLPRegressor(**args), X, y, sample_weight=sw)
    b = fit(sknn.MLPRegressor(**args), X, y, sample_weight=sw)
    assert_same_model(a, b)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8, atol=1e-10)
    assert a.score(X, y, sample_weight=sw) == pytest.approx(b.score(X, y, sample_weight=sw),
                                                            rel=1e-9)


def test_weighted_early_stopping_follows_scikit_learn():
    # The weights split with the rows and weigh the validation score.
    X, y = digits(400)
    sw = weights(len(y), seed=2)
    args = dict(hidden_layer_sizes=(10,), early_stopping=True, validation_fraction=0.2,
                n_iter_no_change=3, tol=0.01, max_iter=60, random_state=4, alpha=1e-3,
                learning_rate_init=0.05)
    a = fit(MLPClassifier(**args), X, y, sample_weight=sw)
    b = fit(sknn.MLPClassifier(**args), X, y, sample_weight=sw)
    assert a.n_iter_ < 60
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-12)
    assert_same_model(a, b)
    # Weighted and unweighted validation scores differ: the weights are used.
    c = fit(MLPClassifier(**args), X, y)
    assert c.validation_scores_ != a.validation_scores_


def test_weighted_partial_fit_follows_scikit_learn():
    X, y = digits(240)
    sw = weights(len(y), seed=3)
    args = dict(hidden_layer_sizes=(10,), random_state=6, alpha=0.2, learning_rate_init=0.02)
    a, b = MLPClassifier(**args), sknn.MLPClassifier(**args)
    for k in range(3):
        rows = slice(80 * k, 80 * (k + 1))
        a.partial_fit(X[rows], y[rows], sample_weight=sw[rows], classes=np.arange(10))
        b.partial_fit(X[rows], y[rows], sample_weight=sw[rows], classes=np.arange(10))
    assert_same_model(a, b)


def test_weighted_team_of_threads_gives_the_one_thread_weights():
    # The team path (plain SGD, wide layer) weighs δ^L and divides by Σw as
    # the one-thread driver does: the weights do not depend on the threads.
    X, y = digits(256)
    sw = weights(len(y), seed=4)
    args = dict(hidden_layer_sizes=(256,), solver="sgd", momentum=0.0, batch_size=128,
                max_iter=3, random_state=0, alpha=0.01)
    one = fit(MLPClassifier(num_threads=1, **args), X, y, sample_weight=sw)
    two = fit(MLPClassifier(num_threads=2, **args), X, y, sample_weight=sw)
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))
    assert one.loss_curve_ == two.loss_curve_
    b = fit(sknn.MLPClassifier(**args), X, y, sample_weight=sw)
    assert_same_model(one, b)


# -- weights as repeated and removed rows ---------------------------------------------

def _one_batch(cls, **kw):
    # One mini-batch per epoch (batch_size >= n): the shuffle only reorders
    # sums, so weights and repeated/removed rows give the same steps.
    return cls(hidden_layer_sizes=(8,), batch_size=1000, max_iter=6, random_state=0,
               learning_rate_init=0.05, alpha=0.01, **kw)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-5)])
def test_integer_weights_are_repeated_rows_and_zero_weights_removed_rows(cls, dtype, rtol):
    X, y = digits(90) if cls is MLPClassifier else regression(90)
    sw = np.random.RandomState(0).randint(0, 4, len(X))
    sw[:10] = [0, 1, 2, 3, 0, 1, 2, 3, 1, 2]      # every class of the first rows kept
    keep = np.repeat(np.arange(len(X)), sw)
    weighted = fit(_one_batch(cls, dtype=dtype), X, y, sample_weight=sw)
    repeated = fit(_one_batch(cls, dtype=dtype), X[keep], y[keep])
    assert weighted.n_iter_ == repeated.n_iter_
    for p, q in zip(weighted.coefs_ + weighted.intercepts_,
                    repeated.coefs_ + repeated.intercepts_):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=rtol)


def test_a_mini_batch_of_zero_weight_takes_no_step():
    # Without shuffling, zero weights on exactly the first mini-batch leave
    # the same steps as those rows removed (scikit-learn divides by 0 there);
    # loss_ is still taken over every row, as scikit-learn's n.
    X, y = digits(200)
    sw = weights(len(y), seed=5, zeros=False)
    sw[:50] = 0.0
    args = dict(hidden_layer_sizes=(10,), batch_size=50, shuffle=False, max_iter=4,
                random_state=0, alpha=0.1, learning_rate_init=0.02)
    a = fit(MLPClassifier(**args), X, y, sample_weight=sw)
    b = fit(MLPClassifier(**args), X[50:], y[50:], sample_weight=sw[50:])
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_allclose(np.array(a.loss_curve_) * 200, np.array(b.loss_curve_) * 150,
                               rtol=1e-12)
    # Adam's step count: three steps per epoch, as on the 150 rows.
    assert a._optimizer.state(a.network_)[1] == b._optimizer.state(b.network_)[1] == 12


def test_unit_weights_change_nothing():
    X, y = digits(150)
    args = dict(hidden_layer_sizes=(10,), max_iter=4, random_state=0, alpha=0.1)
    a = fit(MLPClassifier(**args), X, y, sample_weight=np.ones(len(y)))
    b = fit(MLPClassifier(**args), X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-13)


# -- checks at the boundary ------------------------------------------------------------

@pytest.mark.parametrize("sw, match", [
    (np.ones(5), "sample_weight"),                      # wrong length
    (np.ones((60, 2)), "sample_weight"),                # 2-D
    (np.r_[np.nan, np.ones(59)], "sample_weight"),      # NaN
    (np.r_[np.inf, np.ones(59)], "sample_weight"),      # inf
    (np.r_[-1.0, np.ones(59)], "sample_weight must be non-negative"),
    (np.zeros(60), "sample_weight must contain at least one non-zero"),
    (["a"] * 60, "sample_weight"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_sample_weight_is_a_value_error_naming_it(sw, match, method):
    X, y = digits(60)
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2)
    extra = {"classes": np.arange(10)} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(X, y, sample_weight=sw, **extra)
    assert not hasattr(est, "network_")


def test_callers_weights_are_not_written_and_lists_work():
    X, y = digits(60)
    sw = weights(60, seed=6)
    before = sw.copy()
    a = fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0), X, y,
            sample_weight=sw)
    b = fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0), X, y,
            sample_weight=list(sw))
    np.testing.assert_array_equal(sw, before)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_weights_are_not_kept_in_the_pickle():
    X, y = digits(150)
    args = dict(hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    a = fit(MLPClassifier(**args), X, y, sample_weight=weights(150))
    b = fit(MLPClassifier(**args), X, y)
    assert len(pickle.dumps(a)) == len(pickle.dumps(b))


# -- metadata routing -----------------------------------------------------------------

def test_metadata_routing_passes_the_weights_to_fit():
    X, y = digits(240)
    sw = weights(len(y), seed=7)
    args = dict(hidden_layer_sizes=(10,), max_iter=5, random_state=0, learning_rate_init=0.02)
    cv = KFold(3)
    with config_context(enable_metadata_routing=True):
        est = MLPClassifier(**args).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            routed = cross_val_score(est, X, y, cv=cv, params={"sample_weight": sw})
        assert MLPClassifier().set_partial_fit_request(sample_weight=True, classes=True) \
            .get_metadata_routing().consumes("partial_fit", ["sample_weight", "classes"]) \
            == {"sample_weight", "classes"}
    by_hand = [fit(MLPClassifier(**args), X[tr], y[tr], sample_weight=sw[tr]).score(X[te], y[te])
               for tr, te in cv.split(X)]
    np.testing.assert_allclose(routed, by_hand, rtol=1e-12)
    unweighted = [fit(MLPClassifier(**args), X[tr], y[tr]).score(X[te], y[te])
                  for tr, te in cv.split(X)]
    assert not np.allclose(routed, unweighted)


# -- MLPRegressor(loss="poisson") ---------------------------------------------------------

@pytest.mark.skipif(not SK_POISSON, reason="this scikit-learn has no loss='poisson' to compare")
@pytest.mark.parametrize("n_targets", [1, 2])
@pytest.mark.parametrize("kw", [dict(solver="adam", learning_rate_init=0.01, alpha=1e-3),
                                dict(solver="sgd", learning_rate_init=0.01, alpha=0.0),
                                dict(solver="sgd", learning_rate_init=0.01, alpha=0.1,
                                     momentum=0.0)],
                         ids=["adam", "nesterov", "sgd"])
def test_poisson_regressor_follows_scikit_learn(kw, n_targets):
    X, y = counts(n_targets=n_targets)
    args = dict(loss="poisson", hidden_layer_sizes=(12,), activation="tanh", max_iter=8,
                random_state=2, batch_size=32, **kw)
    a = fit(MLPRegressor(**args), X, y)
    b = fit(sknn.MLPRegressor(**args), X, y)
    assert a.out_activation_ == b.out_activation_ == "exp"
    assert a.network_.output_activation == "exp" and a.network_.cost == "poisson"
    assert_same_model(a, b)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8, atol=1e-10)
    assert np.all(a.predict(X) > 0)
    np.testing.assert_allclose(a.to_sklearn().predict(X), a.predict(X), rtol=1e-12)


@pytest.mark.skipif(not SK_POISSON, reason="this scikit-learn has no loss='poisson' to compare")
def test_weighted_poisson_regressor_follows_scikit_learn():
    X, y = counts(seed=1)
    sw = weights(len(y), seed=8)
    args = dict(loss="poisson", hidden_layer_sizes=(12,), max_iter=6, random_state=5,
                batch_size=40, learning_rate_init=0.01, alpha=0.05)
    a = fit(MLPRegressor(**args), X, y, sample_weight=sw)
    b = fit(sknn.MLPRegressor(**args), X, y, sample_weight=sw)
    assert_same_model(a, b)


def test_poisson_loss_is_half_the_deviance_and_learns():
    # The first loss_ (one mini-batch, no L2: the cost before the step) is
    # the mean half deviance Σ_j [y ln(y/ŷ) − y + ŷ] of the initial network,
    # whose Glorot-uniform weights are redrawn here from the same random_state.
    X, y = counts(n_targets=2)
    est = MLPRegressor(loss="poisson", hidden_layer_sizes=(12,), batch_size=len(X),
                       alpha=0.0, random_state=0, learning_rate_init=0.01)
    est.partial_fit(X, y)
    rs = np.random.RandomState(0)
    layers = []
    for fan_in, fan_out in [(X.shape[1], 12), (12, 2)]:
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        layers.append((rs.uniform(-bound, bound, (fan_in, fan_out)),
                       rs.uniform(-bound, bound, fan_out)))
    (W1, b1), (W2, b2) = layers
    pred = np.exp(np.maximum(X @ W1 + b1, 0) @ W2 + b2)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / pred), 0.0) - y + pred
    assert est.loss_ == pytest.approx(terms.sum(axis=1).mean(), rel=1e-12)
    start = est.loss_
    for _ in range(30):
        est.partial_fit(X, y)
    assert est.loss_ < 0.8 * start


def test_poisson_refuses_negative_targets():
    X, y = counts()
    y[3] = -1.0
    with pytest.raises(ValueError, match="y must be non-negative for loss='poisson'"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="huber").fit(X, np.abs(y))


def test_poisson_export_needs_a_scikit_learn_with_the_exp_output(monkeypatch):
    # scikit-learn < 1.7 has no 'exp' output: to_sklearn says so instead of
    # handing back an estimator whose predict fails.
    from sklearn.neural_network import _base
    X, y = counts()
    est = fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=2), X, y)
    monkeypatch.setattr(_base, "ACTIVATIONS",
                        {k: v for k, v in _base.ACTIVATIONS.items() if k != "exp"})
    with pytest.raises(ValueError, match="scikit-learn >= 1.7"):
        est.to_sklearn()
