"""cbp.sklearn: scikit-learn's conformance suite, and scikit-learn's own MLP as the oracle.

Given the same parameters and random_state, cbp's estimators draw the same
initial weights, shuffles and validation split as scikit-learn's and apply
the same step rules, so the trained coefficients agree to rounding.
"""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sknn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression  # noqa: E402,E501
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import cbp  # noqa: E402
from cbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_conformance(estimator, check):
    check(estimator)


def _float32_expected_failures(estimator):
    # Weights 0..4 against removed or repeated rows: the two fits sum the
    # same terms in another order, which float32 rounds 1e-7 apart (one
    # ulp); the check asks for rtol 1e-7.  test_sklearn_weights.py checks
    # the same equivalence to float32's precision.
    return {"check_sample_weight_equivalence_on_dense_data":
            "float32 rounding: the check's rtol=1e-7 is one float32 ulp"}


@parametrize_with_checks([MLPClassifier(solver="sgd", dtype="float32", activation="logistic"),
                          MLPRegressor(solver="sgd", learning_rate="adaptive", activation="tanh",
                                       dtype="float32")],
                         expected_failed_checks=_float32_expected_failures)
def test_sklearn_conformance_sgd_float32(estimator, check):
    check(estimator)


# -- data -------------------------------------------------------------------------

def digits(n=300, classes=10):
    X, y = load_digits(n_class=classes, return_X_y=True)
    return X[:n] / 16.0, y[:n]


def regression(n=120, n_targets=1):
    X, y = make_regression(n_samples=n, n_features=6, n_targets=n_targets, noise=0.1,
                           random_state=0)
    return X, y / np.std(y)


def both(cbp_cls, sk_cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cbp_cls(**kw).fit(X, y), sk_cls(**kw).fit(X, y)


def assert_same_model(a, b, rtol=1e-9, atol=1e-11, loss_rtol=1e-12):
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert a.n_layers_ == b.n_layers_ and a.n_outputs_ == b.n_outputs_
    assert a.out_activation_ == b.out_activation_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=loss_rtol)


# -- the same training as scikit-learn ---------------------------------------------

SOLVERS = [
    dict(solver="adam", learning_rate_init=0.01),
    dict(solver="sgd", learning_rate_init=0.1),                           # Nesterov
    dict(solver="sgd", learning_rate_init=0.1, nesterovs_momentum=False),  # classical
    dict(solver="sgd", learning_rate_init=0.1, momentum=0.0),
    dict(solver="sgd", learning_rate_init=0.5, learning_rate="invscaling", power_t=0.3),
]


@pytest.mark.parametrize("kw", SOLVERS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_classifier_follows_scikit_learn(kw):
    X, y = digits()
    a, b = both(MLPClassifier, sknn.MLPClassifier, X, y, hidden_layer_sizes=(20, 10),
                max_iter=6, random_state=0, alpha=0.0, batch_size=64, **kw)
    assert_same_model(a, b)
    np.testing.assert_array_equal(a.classes_, b.classes_)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_l2_term_follows_scikit_learn():
    # The weights and loss_ (its L2 part summed before each mini-batch) match.
    X, y = digits()
    a, b = both(MLPClassifier, sknn.MLPClassifier, X, y, hidden_layer_sizes=(15,),
                max_iter=5, random_state=1, alpha=0.5, learning_rate_init=0.01)
    assert_same_model(a, b, loss_rtol=1e-12)


@pytest.mark.parametrize("target", ["binary", "multilabel", "strings"])
def test_logistic_outputs_follow_scikit_learn(target):
    X, y = digits(200)
    if target == "binary":
        y = (y > 4).astype(int)
    elif target == "multilabel":
        X, y = make_multilabel_classification(n_samples=150, n_features=8, n_classes=4,
                                              random_state=0)
    else:
        y = np.array(["odd", "even"])[y % 2]
    a, b = both(MLPClassifier, sknn.MLPClassifier, X, y, hidden_layer_sizes=(12,),
                activation="tanh", max_iter=5, random_state=2, alpha=0.0,
                learning_rate_init=0.02)
    assert a.out_activation_ == "logistic"
    assert_same_model(a, b)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_regressor_follows_scikit_learn(n_targets, solver):
    X, y = regression(n_targets=n_targets)
    a, b = both(MLPRegressor, sknn.MLPRegressor, X, y, hidden_layer_sizes=(10,),
                activation="logistic", solver=solver, max_iter=8, random_state=3, alpha=0.0,
                learning_rate_init=0.01, batch_size=25)
    assert a.out_activation_ == "identity"
    assert_same_model(a, b)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8, atol=1e-10)
    assert a.predict(X).shape == y.shape
    assert a.score(X, y) == pytest.approx(b.score(X, y), rel=1e-9)


def test_early_stopping_follows_scikit_learn():
    X, y = digits(400)
    a, b = both(MLPClassifier, sknn.MLPClassifier, X, y, hidden_layer_sizes=(10,),
                early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, tol=0.01,
                max_iter=60, random_state=4, alpha=0.0, learning_rate_init=0.05)
    assert a.n_iter_ < 60          # it stopped early
    assert a.validation_scores_ == b.validation_scores_
    assert a.best_validation_score_ == b.best_validation_score_ and a.best_loss_ is None
    assert_same_model(a, b)        # best weights restored, as scikit-learn does


def test_tol_stopping_and_adaptive_rate_follow_scikit_learn():
    X, y = digits(200)
    a, b = both(MLPClassifier, sknn.MLPClassifier, X, y, hidden_layer_sizes=(8,),
                solver="sgd", learning_rate="adaptive", learning_rate_init=0.3, tol=0.05,
                n_iter_no_change=2, max_iter=40, random_state=5, alpha=0.0)
    assert a._optimizer.eta < 0.3 and a._optimizer.eta == pytest.approx(b._optimizer.learning_rate)
    assert a.best_loss_ == pytest.approx(b.best_loss_, rel=1e-12)
    assert_same_model(a, b)


def test_warm_start_and_partial_fit_follow_scikit_learn():
    X, y = digits(250)
    kw = dict(hidden_layer_sizes=(10,), max_iter=3, random_state=6, alpha=0.0,
              learning_rate_init=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(warm_start=True, **kw).fit(X, y).fit(X, y)
        b = sknn.MLPClassifier(warm_start=True, **kw).fit(X, y).fit(X, y)
    assert_same_model(a, b)
    a, b = MLPClassifier(**kw), sknn.MLPClassifier(**kw)
    for k in range(3):
        rows = slice(80 * k, 80 * (k + 1))
        a.partial_fit(X[rows], y[rows], classes=np.arange(10))
        b.partial_fit(X[rows], y[rows], classes=np.arange(10))
    assert_same_model(a, b)
    assert a.n_iter_ == 1


# -- the ecosystem ----------------------------------------------------------------

def test_pipeline_grid_search_cross_val_score():
    X, y = digits(300)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=40,
                                                         learning_rate_init=0.01,
                                                         random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3).fit(X, y)
    assert scores.shape == (3,) and scores.mean() > 0.7
    assert search.best_score_ > 0.7
    assert search.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-1)


def test_network_is_a_cbp_network():
    X, y = digits(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(12,), max_iter=20, random_state=0).fit(X, y)
    net = clf.to_network()
    assert isinstance(net, cbp.Network) and isinstance(clf.network_, cbp.Network)
    assert net.sizes == [64, 12, 10] and net.output_activation == "softmax"
    np.testing.assert_allclose(net.feedforward(X), clf.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(net.weights[0], clf.coefs_[0].T)
    net.weights = [np.zeros_like(w) for w in net.weights]      # a copy: the model is intact
    assert np.any(clf.coefs_[0] != 0)
    trained = clf.to_network()
    gb, gw = trained.explain(X[0], np.eye(10)[y[0]]).gradients()
    nb, nw = trained.backprop(X[0], np.eye(10)[y[0]])
    np.testing.assert_allclose(gw[0], nw[0], rtol=1e-12)


def test_float32_and_threads():
    X, y = digits(200)
    kw = dict(hidden_layer_sizes=(12,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(dtype="float32", **kw).fit(X, y)
        b = MLPClassifier(**kw).fit(X, y)
        c = MLPClassifier(num_threads=1, **kw).fit(X, y)
        d = MLPClassifier(num_threads=2, **kw).fit(X, y)
        sgd = dict(kw, solver="sgd", nesterovs_momentum=False, hidden_layer_sizes=(256,),
                   batch_size=128)
        e = MLPClassifier(num_threads=1, **sgd).fit(X, y)
        f = MLPClassifier(num_threads=2, **sgd).fit(X, y)
    assert a.network_.dtype == np.float32 and a.predict_proba(X).dtype == np.float32
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(c.predict_proba(X), d.predict_proba(X))
    np.testing.assert_array_equal(e.predict_proba(X), f.predict_proba(X))
    assert e._optimizer.num_threads == 1 and f._optimizer.num_threads == 2


def test_clone_and_pickle_round_trip():
    X, y = digits(150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert not hasattr(clone(clf), "network_")
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, y)       # the optimizer's state came along
    clf.partial_fit(X, y)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


# -- bad input --------------------------------------------------------------------

@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("param, value", [("activation", "softmax"), ("solver", "lbfgs"),
                                          ("dtype", "float16"), ("batch_size", 0),
                                          ("momentum", 1.5), ("num_threads", 0)])
def test_bad_parameters_name_the_parameter(cls, param, value):
    X, y = digits(40)
    with pytest.raises(ValueError, match=param):
        cls(**{param: value}).fit(X, y)


def test_partial_fit_rules():
    X, y = digits(100)
    clf = MLPClassifier(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 5], y[y < 5], classes=np.arange(5))
    before = clf.coefs_
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y)
    for p, q in zip(before, clf.coefs_):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.arange(10))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_unfitted_and_feature_count(cls):
    X, y = digits(60)
    est = cls(hidden_layer_sizes=(5,), max_iter=3)
    with pytest.raises(NotFittedError):
        est.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    with pytest.raises(ValueError, match="X has 10 features, but .* is expecting 64 features"):
        est.predict(X[:, :10])


@pytest.mark.parametrize("where", ["X-nan", "X-inf", "y-nan"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_nan_inf_refused_and_previous_fit_kept(where, cls):
    X, y = digits(80)
    y = y.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    before = est.predict(X)
    state = (est.n_iter_, list(est.loss_curve_), est.network_)
    Xb, yb = X.copy(), y.copy()
    if where == "X-nan":
        Xb[3, 4] = np.nan
    elif where == "X-inf":
        Xb[3, 4] = np.inf
    else:
        yb[5] = np.nan
    with pytest.raises(ValueError, match="NaN|infinity"):
        est.fit(Xb, yb)
    assert (est.n_iter_, est.loss_curve_, est.network_) == state
    np.testing.assert_array_equal(est.predict(X), before)


def test_divergence_is_a_value_error_and_keeps_the_previous_fit():
    X, y = regression()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
        before = est.predict(X)
        with pytest.raises(ValueError, match="non-finite parameter weights"):
            est.set_params(solver="sgd", learning_rate_init=1e6, momentum=0.0).fit(X, y * 1e150)
    np.testing.assert_array_equal(est.predict(X), before)
