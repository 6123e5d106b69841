"""The fitted state of cbp.sklearn's estimators: export to scikit-learn, coefs_ and
intercepts_ written and refused, loss_ summed as scikit-learn sums it, pickles.

scikit-learn's own MLP is the oracle, to the tolerances of test_sklearn.py.
"""
import io
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as sknn  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from cbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def digits(n=300, classes=10):
    X, y = load_digits(n_class=classes, return_X_y=True)
    return X[:n] / 16.0, y[:n]


def regression(n=120, n_targets=1):
    X, y = make_regression(n_samples=n, n_features=6, n_targets=n_targets, noise=0.1,
                           random_state=0)
    return X, y / np.std(y)


def fitted(cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(**kw).fit(X, y)


# -- to_sklearn ---------------------------------------------------------------------

@pytest.mark.parametrize("classes", [10, 2])
def test_to_sklearn_classifier_predicts_the_same(classes):
    X, y = digits(classes=classes)
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(12, 7), max_iter=8, random_state=0)
    sk = est.to_sklearn()
    assert type(sk) is sknn.MLPClassifier
    np.testing.assert_array_equal(sk.predict(X), est.predict(X))
    np.testing.assert_allclose(sk.predict_proba(X), est.predict_proba(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(sk.classes_, est.classes_)
    assert sk.n_iter_ == est.n_iter_ and sk.loss_curve_ == est.loss_curve_
    assert sk.get_params()["hidden_layer_sizes"] == (12, 7)
    # A copy: changing the export leaves the cbp estimator alone.
    sk.coefs_[0][...] = 0
    assert np.abs(est.coefs_[0]).sum() > 0


def test_to_sklearn_regressor_multioutput_predicts_the_same():
    X, y = regression(n_targets=2)
    est = fitted(MLPRegressor, X, y, hidden_layer_sizes=(9,), max_iter=6, random_state=0)
    sk = est.to_sklearn()
    assert type(sk) is sknn.MLPRegressor
    np.testing.assert_allclose(sk.predict(X), est.predict(X), rtol=1e-12, atol=1e-14)
    assert sk.score(X, y) == pytest.approx(est.score(X, y), rel=1e-12)


def test_to_sklearn_refuses_an_unfitted_estimator():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        MLPClassifier().to_sklearn()


def test_skops_round_trip_through_to_sklearn():
    sio = pytest.importorskip("skops.io", reason="skops is not installed (optional)")
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    blob = sio.dumps(est.to_sklearn())
    back = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_skops_reads_the_cbp_estimator_state():
    # No Layers objects (with __slots__) in the state: skops' own dump works.
    sio = pytest.importorskip("skops.io", reason="skops is not installed (optional)")
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=5, random_state=0,
                 early_stopping=True)
    assert all(type(a) is np.ndarray for part in est._best for a in part)
    sio.dumps(est)


def test_onnx_conversion_through_to_sklearn():
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed (optional)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (optional)")
    from skl2onnx.common.data_types import FloatTensorType
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    onx = skl2onnx.convert_sklearn(est.to_sklearn(),
                                   initial_types=[("X", FloatTensorType([None, X.shape[1]]))])
    session = ort.InferenceSession(onx.SerializeToString())
    labels = session.run(None, {"X": X.astype(np.float32)})[0]
    assert np.mean(labels == est.predict(X)) > 0.99


# -- coefs_ and intercepts_ ---------------------------------------------------------

def test_assigning_coefs_and_intercepts_changes_the_predictions_as_in_scikit_learn():
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    sk = est.to_sklearn()
    rng = np.random.default_rng(0)
    new_coefs = [rng.normal(size=c.shape) for c in est.coefs_]
    new_intercepts = [rng.normal(size=b.shape) for b in est.intercepts_]
    est.coefs_ = new_coefs
    sk.coefs_ = new_coefs
    est.intercepts_[1] = new_intercepts[1]        # one layer, through the list
    sk.intercepts_[1] = new_intercepts[1]
    np.testing.assert_array_equal(est.coefs_[0], new_coefs[0])
    np.testing.assert_array_equal(est.intercepts_[1], new_intercepts[1])
    np.testing.assert_allclose(est.predict_proba(X), sk.predict_proba(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(est.network_.weights[0], new_coefs[0].T)


def test_in_place_edits_raise_instead_of_being_lost():
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    before = est.predict_proba(X)
    with pytest.raises(ValueError, match=r"coefs_\[0\] is read-only.*est.coefs_\[0\] = new"):
        est.coefs_[0][:] = 0
    with pytest.raises(ValueError, match=r"intercepts_\[1\] is read-only"):
        est.intercepts_[1] += 1.0
    with pytest.raises(TypeError, match="one array per layer"):
        est.coefs_.append(np.zeros((10, 10)))
    np.testing.assert_array_equal(est.predict_proba(X), before)
    # What is computed from them is an ordinary array.
    doubled = est.coefs_[0] * 2
    doubled[0, 0] = 1.0
    assert type(doubled) is np.ndarray


@pytest.mark.parametrize("value, error, match", [
    ([np.zeros((64, 10))], ValueError, r"list of 2 arrays"),
    ([np.zeros((10, 64)), np.zeros((10, 10))], ValueError, r"coefs_\[0\] must have shape \(64, 10\)"),
    ([np.zeros((64, 10)), np.full((10, 10), np.nan)], ValueError, r"coefs_\[1\] holds NaN"),
    (np.zeros((64, 10)), TypeError, r"must be a list of 2 arrays"),
    ([np.zeros((64, 10)), "abc"], TypeError, r"coefs_\[1\] must be an array of numbers"),
])
def test_bad_coefs_refused_and_network_unchanged(value, error, match):
    X, y = digits()
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    before = est.predict_proba(X)
    with pytest.raises(error, match=match):
        est.coefs_ = value
    np.testing.assert_array_equal(est.predict_proba(X), before)


# -- loss_ ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(solver="adam", learning_rate_init=0.01, alpha=1.0),
                                dict(solver="sgd", learning_rate_init=0.1, alpha=0.5,
                                     batch_size=64)],
                         ids=["adam", "sgd"])
def test_loss_with_l2_is_summed_as_scikit_learn_sums_it(kw):
    X, y = digits()
    a = fitted(MLPClassifier, X, y, hidden_layer_sizes=(15,), max_iter=6, random_state=1, **kw)
    b = fitted(sknn.MLPClassifier, X, y, hidden_layer_sizes=(15,), max_iter=6, random_state=1,
               **kw)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-11)


def test_tol_stopping_with_l2_stops_at_scikit_learns_epoch():
    # The per-epoch L2 approximation made n_iter_ differ in a few runs like these.
    X, y = digits()
    for seed in range(6):
        kw = dict(hidden_layer_sizes=(12,), max_iter=60, random_state=seed, alpha=1.0,
                  tol=1e-3, n_iter_no_change=2, learning_rate_init=0.01)
        a = fitted(MLPClassifier, X, y, **kw)
        b = fitted(sknn.MLPClassifier, X, y, **kw)
        assert a.n_iter_ == b.n_iter_, seed
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


def test_regressor_loss_with_l2_as_scikit_learn():
    X, y = regression(n_targets=2)
    kw = dict(hidden_layer_sizes=(9,), max_iter=5, random_state=0, alpha=0.3, batch_size=32)
    a = fitted(MLPRegressor, X, y, **kw)
    b = fitted(sknn.MLPRegressor, X, y, **kw)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


# -- pickles ---------------------------------------------------------------------------

def test_pickle_holds_no_more_than_scikit_learns():
    # The network's parameters and the optimizer's moments, as scikit-learn
    # keeps them; no copy of the best parameters without early stopping and
    # no gradient scratch.
    X, y = digits()
    kw = dict(hidden_layer_sizes=(50,), max_iter=3, random_state=0)
    a = fitted(MLPClassifier, X, y, **kw)
    b = fitted(sknn.MLPClassifier, X, y, **kw)
    assert "_best" not in a.__dict__
    size_a, size_b = len(pickle.dumps(a)), len(pickle.dumps(b))
    assert size_a <= 1.05 * size_b, (size_a, size_b)
    back = pickle.load(io.BytesIO(pickle.dumps(a)))
    np.testing.assert_array_equal(back.predict_proba(X), a.predict_proba(X))


@pytest.mark.parametrize("solver, copies", [("adam", 2), ("sgd", 1)], ids=["adam", "nesterov"])
def test_pickle_carries_no_gradient_scratch(solver, copies):
    # Adam keeps m and v, Nesterov v: the gradient buffer the core fills at
    # every step is left out, and a resumed fit is the same to the bit.
    X, y = digits(150)
    est = fitted(MLPClassifier, X, y, hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                 solver=solver)
    n_params = sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_)
    (_, buf, _), = pickle.loads(pickle.dumps(est._optimizer.__getstate__()))["_state"]
    assert buf.shape == (copies * n_params,)
    back = pickle.loads(pickle.dumps(est))
    back.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
