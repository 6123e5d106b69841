"""scikit-learn estimators over :class:`cbp.Network`: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameters with scikit-learn's meaning (``solver``
'sgd' or 'adam'; 'lbfgs' is not offered) and follow its training semantics:
Glorot-uniform initialisation and the shuffles drawn from ``random_state``
in scikit-learn's order, the L2 term α/m on each mini-batch of m, Nesterov
momentum and Adam as its optimizers apply them, ``tol``/``n_iter_no_change``,
``early_stopping``, the 'invscaling' and 'adaptive' schedules.  Each epoch
runs in the core (``cbp.SGD``/``cbp.Adam``); Python only sees epochs.

Needs scikit-learn (``pip install cbp[sklearn]``); ``import cbp`` does not.

Differences from scikit-learn, by design: dense input only; ``dtype`` picks
the network's precision whatever the input's; ``loss_`` takes the L2 part
from ‖W‖² at the start and end of each epoch (scikit-learn sums it before
every mini-batch); no ``sample_weight``.
"""
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d, shuffle as _sk_shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import Network
from .sgd import SGD, Adam, DivergenceError

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names for the hidden activations -> cbp's.
_HIDDEN = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# out_activation_ -> (cbp output activation, cbp cost).
_OUTPUT = {"softmax": ("softmax", "log_likelihood"), "logistic": ("sigmoid", "cross_entropy"),
           "identity": ("linear", "quadratic")}


class _BaseMLP(BaseEstimator):
    """The training loop shared by the two estimators (scikit-learn's ``_fit_stochastic``)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "dtype": [StrOptions({"float64", "float32"})],
        "num_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 dtype="float64", num_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.num_threads = num_threads

    # -- fitted attributes in scikit-learn's layout ---------------------------------

    @property
    def coefs_(self):
        """Weight matrices, ``coefs_[i]`` of shape (n_in, n_out): the network's Wᵀ (copies)."""
        return [np.array(w.T) for w in self.network_.weights]

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` of shape (n_out,) (copies)."""
        return [np.array(b.ravel()) for b in self.network_.biases]

    def to_network(self):
        """The trained :class:`cbp.Network` (for ``explain``, ``save``, plots): a copy."""
        check_is_fitted(self)
        return _copy_network(self.network_)

    # -- fit ----------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model to X and y (scikit-learn's ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def _fit(self, X, y, incremental):
        # Everything is computed aside and the previous fitted state comes
        # back on any failure: a failed fit leaves a fitted estimator usable.
        saved = dict(self.__dict__)
        try:
            return self._fit_unguarded(X, y, incremental)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_unguarded(self, X, y, incremental):
        hidden = self.hidden_layer_sizes
        if not hasattr(hidden, "__iter__"):
            hidden = [hidden]
        hidden = list(hidden)
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        dtype = np.dtype(self.dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y.reshape(Y.shape[0], -1), dtype=dtype)
        n_outputs = Y.shape[1]
        sizes = [X.shape[1]] + hidden + [n_outputs]
        rs = check_random_state(self.random_state)
        if first_pass:
            net = self._initialize(sizes, n_outputs, rs)
            opt = None
        else:
            if self.network_.sizes != sizes:
                raise ValueError(f"the network has layers {self.network_.sizes}; this data and "
                                 f"hidden_layer_sizes need {sizes}")
            net = _copy_network(self.network_)
            opt = self._optimizer._fork(self.network_, net) if incremental else None
        if opt is None:
            opt = self._make_optimizer()
        opt.num_threads = self.num_threads
        self.network_, self._optimizer = net, opt
        self._fit_stochastic(net, opt, X, Y, rs, incremental)
        return self

    def _initialize(self, sizes, n_outputs, rs):
        # scikit-learn's _initialize and _init_coef: Glorot-uniform weights
        # and biases, drawn layer by layer (coef, then intercept).
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._out_activation()
        output, cost = _OUTPUT[self.out_activation_]
        net = Network(sizes, activation=_HIDDEN[self.activation], output_activation=output,
                      cost=cost, dtype=self.dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        ws, bs = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            ws.append(rs.uniform(-bound, bound, (fan_in, fan_out)).T)
            bs.append(rs.uniform(-bound, bound, fan_out))
        net.weights = ws
        net.biases = bs
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best = (net.weights, net.biases)
        return net

    def _make_optimizer(self):
        if self.solver == "sgd":
            opt = SGD(self.learning_rate_init, momentum=self.momentum, shuffle=False,
                      nesterov=bool(self.nesterovs_momentum), batch_l2=self.alpha)
        else:
            opt = Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon,
                       shuffle=False, batch_l2=self.alpha)
        return opt

    def _fit_stochastic(self, net, opt, X, Y, rs, incremental):
        if self.early_stopping:
            stratify = Y if self._stratify() else None
            X_train, X_val, Y_train, Y_val = train_test_split(
                X, Y, random_state=rs, test_size=self.validation_fraction, stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train, Y_train = np.ascontiguousarray(X_train), np.ascontiguousarray(Y_train)
            y_val = self._val_targets(Y_val)
        else:
            X_train, Y_train, X_val, y_val = X, Y, None, None
        n = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than "
                              "sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        opt.mini_batch_size = batch_size
        sample_idx = np.arange(n, dtype=np.intp)
        n_batches = -(-n // batch_size)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _sk_shuffle(sample_idx, random_state=rs)
                w2_start = _sum_w2(net) if self.alpha else 0.0
                try:
                    cost_sum = opt._epoch(net, X_train, Y_train, sample_idx, self.n_iter_)
                except DivergenceError as exc:
                    raise ValueError("Solver produced non-finite parameter weights. The input "
                                     "data may contain large values and need to be "
                                     f"preprocessed. ({exc})") from None
                if self.out_activation_ == "identity":
                    cost_sum /= self.n_outputs_     # scikit-learn's squared loss: mean over outputs
                l2 = 0.0
                if self.alpha:
                    l2 = 0.5 * self.alpha * n_batches * 0.5 * (w2_start + _sum_w2(net))
                self.n_iter_ += 1
                self.loss_ = (cost_sum + l2) / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(net, X_val, y_val)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    opt.eta = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    if self.early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    if self._trigger_stopping(opt, msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:
            net.weights, net.biases = self._best

    def _trigger_stopping(self, opt, msg):
        # scikit-learn's optimizers: only SGD with learning_rate='adaptive'
        # goes on, with the rate divided by 5, until it is below 1e-6.
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if opt.eta <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        opt.eta /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % opt.eta)
        return False

    def _update_no_improvement_count(self, net, X_val, y_val):
        if self.early_stopping:
            val_score = self._score_arrays(net, X_val, y_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last = self.validation_scores_[-1]
            if last < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                self._best = (net.weights, net.biases)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- prediction ---------------------------------------------------------------

    def _forward(self, X, net=None):
        net = self.network_ if net is None else net
        return net._predict(np.ascontiguousarray(X, dtype=net.dtype), self.num_threads)

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.dtype(self.dtype), order="C")

    def _score_arrays(self, net, X, y):
        pred = self._predict_arrays(net, X)
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan
        return self._score_function(y, pred)


class MLPClassifier(ClassifierMixin, _BaseMLP):
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

    def _score_function(self, y, pred):
        return accuracy_score(y, pred)

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
    def partial_fit(self, X, y, classes=None):
        """One epoch over X, y (scikit-learn's ``partial_fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The classes (or label indicator rows).
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
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor on cbp's core, scikit-learn's ``MLPRegressor``.

    Identity outputs with the squared error ``loss='squared_error'`` (cbp's
    quadratic cost).  Other parameters and attributes as :class:`MLPClassifier`;
    as there, unpickle only estimators from a trusted source (unpickling runs code).

    Parameters
    ----------
    loss : {'squared_error'}, default='squared_error'
        The cost: ½‖a − y‖² per example.
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

    _parameter_constraints: dict = {**_BaseMLP._parameter_constraints,
                                    "loss": [StrOptions({"squared_error"})]}

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
        return "identity"

    def _stratify(self):
        return False

    def _val_targets(self, Y_val):
        return Y_val.ravel() if Y_val.shape[1] == 1 else Y_val

    def _score_function(self, y, pred):
        return r2_score(y, pred)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
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
    def partial_fit(self, X, y):
        """One epoch over X, y (scikit-learn's ``partial_fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.

        Returns
        -------
        MLPRegressor
            The estimator.
        """
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _copy_network(net):
    # Through the public constructor and setters: same layout, same values.
    twin = Network(net.sizes, activation=net.activation, output_activation=net.output_activation,
                   cost=net.cost, dtype=net.dtype)
    twin.weights = net.weights
    twin.biases = net.biases
    return twin


def _sum_w2(net):
    # Past the float range it is +Inf, without a warning (as total_cost).
    with np.errstate(over="ignore"):
        return float(sum(np.sum(np.square(w, dtype=np.float64)) for w in net.weights))
