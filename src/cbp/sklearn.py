"""scikit-learn estimators over :class:`cbp.Network`: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameters with scikit-learn's meaning (``solver``
'sgd' or 'adam'; 'lbfgs' is not offered) and follow its training semantics:
Glorot-uniform initialisation and the shuffles drawn from ``random_state``
in scikit-learn's order, the L2 term α/m on each mini-batch of m, Nesterov
momentum and Adam as its optimizers apply them, ``tol``/``n_iter_no_change``,
``early_stopping``, the 'invscaling' and 'adaptive' schedules.  Each epoch
runs in the core (``cbp.SGD``/``cbp.Adam``); Python only sees epochs.

Needs scikit-learn (``pip install "cbp-backprop[sklearn]"``); ``import cbp`` does not.

``to_sklearn()`` gives scikit-learn's own estimator, fitted with the same
weights (same predictions): the form skops, skl2onnx and other tools of the
ecosystem read.

``sample_weight`` in ``fit``/``partial_fit`` is scikit-learn's weighted
loss: in each mini-batch the output errors δ^L_x are scaled by w_x and the
mean's 1/m (gradient and L2 term α/m alike) becomes 1/Σw; ``loss_`` adds each
mini-batch's weighted mean cost plus ½α‖W‖²/Σw times its m, over n; with
``early_stopping`` the weights split with the rows and weigh the validation
score.  They request metadata routing as scikit-learn's do
(``set_fit_request(sample_weight=True)``).

Differences from scikit-learn, by design: dense input only; ``dtype`` picks
the network's precision whatever the input's; ``sample_weight`` must be
non-negative, and a mini-batch whose weights sum to 0 takes no step and adds
nothing to ``loss_`` (scikit-learn raises ``ZeroDivisionError`` there).  Not
offered: ``solver='lbfgs'``.
"""
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from ._sklearn_fit import BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier on cbp's core, scikit-learn's ``MLPClassifier``.

    Softmax outputs with the log-likelihood cost for more than two classes;
    one logistic output with cross-entropy for two classes, one per label for
    multilabel targets.  It pickles, for joblib and Dask; unpickling runs
    code, so unpickle only estimators from a trusted source (``network_.save``
    writes a model file, which loading never executes).

    Parameters
    ----------
    hidden_layer_sizes : array-like or int, default=(100,)
        Units of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
    solver : {'sgd', 'adam'}, default='adam'
        'sgd' is :class:`cbp.SGD` (with ``momentum`` and ``nesterovs_momentum``),
        'adam' is :class:`cbp.Adam`.
    alpha : float, default=1e-4
        L2 strength; (alpha/m) W joins each mini-batch's mean gradient.
    batch_size : int or 'auto', default='auto'
        'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule for 'sgd'.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs.
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
        Draws the initial weights, the shuffles and the validation split.
    tol : float, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
    momentum : float in [0, 1), default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
    validation_fraction : float, default=0.1
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
    epsilon : float, default=1e-8
    n_iter_no_change : int, default=10
    dtype : {'float64', 'float32'}, default='float64'
        The network's precision.
    num_threads : int or None, default=None
        Most threads for training (the core's team runs for 'sgd' without
        Nesterov momentum; Nesterov and Adam steps run on one thread) and
        for prediction.  None: OpenMP's count for training (OMP_NUM_THREADS,
        threadpoolctl), every available core for prediction.  Results do not
        depend on it.

    Attributes
    ----------
    classes_, coefs_, intercepts_, n_iter_, loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_, t_, n_layers_, n_outputs_,
    out_activation_, n_features_in_, feature_names_in_
        As scikit-learn's.
    network_ : cbp.Network
        The trained network (``to_network()`` gives a copy).
    """

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _stratify(self):
        # As scikit-learn: stratified only for a single output (binary).
        return self.n_outputs_ == 1

    def _val_targets(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    def _score_function(self, y, pred, sample_weight=None):
        return accuracy_score(y, pred, sample_weight=sample_weight)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y)

    def _predict_arrays(self, net, X):
        a = self._forward(X, net)
        if self.n_outputs_ == 1:
            a = a.ravel()
        return self._label_binarizer.inverse_transform(a)

    def predict(self, X):
        """Predicted classes, shape (n_samples,) or (n_samples, n_classes) for multilabel.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray
            The classes, from ``classes_``.
        """
        X = self._checked(X)
        return self._predict_arrays(self.network_, X)

    def predict_proba(self, X):
        """Probability of each class, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probabilities.
        """
        a = self._forward(self._checked(X))
        if self.n_outputs_ == 1:
            a = a.ravel()
            return np.vstack([1 - a, a]).T
        return a

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The log-probabilities.
        """
        p = self.predict_proba(X)
        return np.log(p, out=p)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over X, y (scikit-learn's ``partial_fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The classes (or label indicator rows).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, not all zero (as in ``fit``).
        classes : array-like, optional
            Every class of the whole data; required on the first call.

        Returns
        -------
        MLPClassifier
            The estimator.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor on cbp's core, scikit-learn's ``MLPRegressor``.

    Identity outputs with the squared error ``loss='squared_error'`` (cbp's
    quadratic cost), or exponential outputs with half the Poisson deviance
    ``loss='poisson'`` (cbp's ``exp`` output and ``poisson`` cost, whose output
    error is δ^L = a − y).  Other parameters and attributes as :class:`MLPClassifier`;
    as there, unpickle only estimators from a trusted source (unpickling runs code).

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The cost per example: ½‖a − y‖² ('squared_error'; ``loss_`` takes
        its mean over the outputs, as scikit-learn's), or
        Σ [y ln(y/a) − y + a] with a = e^z ('poisson', for counts: y >= 0).
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate : see MLPClassifier
        As :class:`MLPClassifier`.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol : see MLPClassifier
        As :class:`MLPClassifier`.
    verbose, warm_start, momentum, nesterovs_momentum, early_stopping : see MLPClassifier
        As :class:`MLPClassifier`.
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change : see MLPClassifier
        As :class:`MLPClassifier`.
    dtype, num_threads : see MLPClassifier
        As :class:`MLPClassifier`.
    """

    _parameter_constraints: dict = {**BaseMLP._parameter_constraints,
                                    "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 dtype="float64", num_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            dtype=dtype, num_threads=num_threads)
        self.loss = loss

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _stratify(self):
        return False

    def _val_targets(self, Y_val):
        return Y_val.ravel() if Y_val.shape[1] == 1 else Y_val

    def _score_function(self, y, pred, sample_weight=None):
        return r2_score(y, pred, sample_weight=sample_weight)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("y must be non-negative for loss='poisson' (counts or rates); "
                             f"got a target of {float(np.min(y))}")
        return X, y

    def _predict_arrays(self, net, X):
        # float64 whatever the network's dtype, as scikit-learn's checks expect
        # of a regressor's predictions.
        a = self._forward(X, net).astype(np.float64, copy=False)
        return a.ravel() if a.shape[1] == 1 else a

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray
            The predictions.
        """
        X = self._checked(X)
        return self._predict_arrays(self.network_, X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over X, y (scikit-learn's ``partial_fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, not all zero (as in ``fit``).

        Returns
        -------
        MLPRegressor
            The estimator.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
