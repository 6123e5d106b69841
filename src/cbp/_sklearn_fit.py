"""The training loop shared by cbp's scikit-learn estimators (scikit-learn's ``_fit_stochastic``).

``cbp.sklearn`` defines the two estimators on :class:`BaseMLP`; this module
holds their parameters, the epoch loop (each epoch in the core), the
stopping rules and the fitted attributes in scikit-learn's layout.
"""
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle as _sk_shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _sklearn_state as state
from .model import Network
from .sgd import SGD, Adam, DivergenceError

# scikit-learn's names for the hidden activations -> cbp's.
_HIDDEN = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# out_activation_ -> (cbp output activation, cbp cost).
_OUTPUT = {"softmax": ("softmax", "log_likelihood"), "logistic": ("sigmoid", "cross_entropy"),
           "identity": ("linear", "quadratic"), "exp": ("exp", "poisson")}


class BaseMLP(BaseEstimator):
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
        """Weight matrices, ``coefs_[i]`` of shape (n_in, n_out): the network's Wᵀ.

        Read-only copies: ``est.coefs_[i][...] = 0`` raises ``ValueError``;
        ``est.coefs_[i] = W`` or ``est.coefs_ = [...]`` checks the shapes
        and values and writes them into the network.
        """
        return state.read(self, self.network_, "coefs_")

    @coefs_.setter
    def coefs_(self, value):
        check_is_fitted(self)
        state.write(self.network_, "coefs_", value)

    @property
    def intercepts_(self):
        """Bias vectors, ``intercepts_[i]`` of shape (n_out,), read and written as ``coefs_``."""
        return state.read(self, self.network_, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, value):
        check_is_fitted(self)
        state.write(self.network_, "intercepts_", value)

    def to_network(self):
        """The trained :class:`cbp.Network` (for ``explain``, ``save``, plots): a copy.

        Returns
        -------
        cbp.Network
            A copy of ``network_``.
        """
        check_is_fitted(self)
        return state.copy_network(self.network_)

    def to_sklearn(self):
        """scikit-learn's own estimator, fitted with this one's weights and attributes.

        It predicts what this estimator predicts (the same classes, and
        probabilities equal to rounding for ``dtype='float64'``), so what
        reads scikit-learn's MLPs reads it: skops and pickle to persist it,
        skl2onnx to convert it.  The optimizer's state is not carried: a
        further ``partial_fit`` or warm-started ``fit`` there starts anew.

        Returns
        -------
        sklearn.neural_network.MLPClassifier or MLPRegressor
            A fitted estimator of scikit-learn's class of the same name.
        """
        import sklearn.neural_network

        check_is_fitted(self)
        cls = getattr(sklearn.neural_network, type(self).__name__)
        if self.out_activation_ == "exp" and "exp" not in _sk_activations():
            raise ValueError("to_sklearn() of an MLPRegressor(loss='poisson') needs "
                             f"scikit-learn >= 1.7 (its loss='poisson'); this is "
                             f"{sklearn.__version__}")
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("dtype", "num_threads")}
        fitted = {k: v for k, v in self.__dict__.items()
                  if k in _EXPORTED or (k.endswith("_") and not k.startswith("_")
                                        and k != "network_")}
        return state.to_sklearn(self.network_, cls, params, fitted)

    # -- fit ----------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y (scikit-learn's ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, not all zero: scikit-learn's weighted loss
            (see :mod:`cbp.sklearn` on mini-batches whose weights sum to 0).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(self, X, y, incremental, sample_weight=None):
        # Everything is computed aside and the previous fitted state comes
        # back on any failure: a failed fit leaves a fitted estimator usable.
        saved = dict(self.__dict__)
        try:
            return self._fit_unguarded(X, y, incremental, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _sample_weight(self, sample_weight, X):
        """``sample_weight`` checked (1-D, one per row, finite, >= 0, not all 0) in X's dtype."""
        if sample_weight is None:
            return None
        try:
            sw = _check_sample_weight(sample_weight, X, dtype=X.dtype, allow_all_zero_weights=True)
        except ValueError as exc:
            message = str(exc)
            if "sample_weight" not in message:
                message = f"sample_weight: {message}"
            raise ValueError(message) from None
        if np.any(sw < 0):
            raise ValueError("sample_weight must be non-negative; got a weight of "
                             f"{float(sw.min())}")
        if not np.any(sw):
            raise ValueError("sample_weight must contain at least one non-zero weight; all "
                             "weights are zero")
        if sw is sample_weight:
            sw = sw.copy()          # the caller's array is never written
        return sw

    def _fit_unguarded(self, X, y, incremental, sample_weight=None):
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
        sample_weight = self._sample_weight(sample_weight, X)
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
            net = state.copy_network(self.network_)
            opt = self._optimizer.fork(self.network_, net) if incremental else None
        if opt is None:
            opt = self._make_optimizer()
        opt.num_threads = self.num_threads
        self.network_, self._optimizer = net, opt
        self._fit_stochastic(net, opt, X, Y, rs, incremental, sample_weight)
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
            # The best parameters so far, as plain arrays (skops and any
            # pickler read them); kept, as scikit-learn's, with early stopping only.
            self._best = state.parameters(net)
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        return net

    def _make_optimizer(self):
        if self.solver == "sgd":
            opt = SGD(self.learning_rate_init, momentum=self.momentum, shuffle=False,
                      nesterov=bool(self.nesterovs_momentum), batch_l2=self.alpha)
        else:
            opt = Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon,
                       shuffle=False, batch_l2=self.alpha)
        return opt

    def _fit_stochastic(self, net, opt, X, Y, rs, incremental, sample_weight=None):
        sw_train = sw_val = None
        if self.early_stopping:
            stratify = Y if self._stratify() else None
            # As scikit-learn: the weights split with the rows (the split
            # itself ignores them) and weigh the validation score.
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            parts = train_test_split(*arrays, random_state=rs,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, Y_train, Y_val = parts[:4]
            if sample_weight is not None:
                sw_train, sw_val = np.ascontiguousarray(parts[4]), parts[5]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            X_train, Y_train = np.ascontiguousarray(X_train), np.ascontiguousarray(Y_train)
            y_val = self._val_targets(Y_val)
        else:
            X_train, Y_train, X_val, y_val, sw_train = X, Y, None, None, sample_weight
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
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _sk_shuffle(sample_idx, random_state=rs)
                try:
                    cost_sum, w2_sum = self._epoch(net, opt, X_train, Y_train, sample_idx,
                                                   sw_train)
                except DivergenceError as exc:
                    raise ValueError("Solver produced non-finite parameter weights. The input "
                                     "data may contain large values and need to be "
                                     f"preprocessed. ({exc})") from None
                if self.out_activation_ == "identity":
                    cost_sum /= self.n_outputs_     # scikit-learn's squared loss: mean over outputs
                self.n_iter_ += 1
                # scikit-learn's loss_: each mini-batch's (weighted) mean cost
                # plus ½α‖W‖²/Σw, times its m, summed over the epoch, over n.
                self.loss_ = (cost_sum + 0.5 * self.alpha * w2_sum) / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(net, X_val, y_val, sw_val)
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

    def _epoch(self, net, opt, X, Y, order, sample_weight):
        """One epoch in ``order``, one call to the core: (Σ C_x, Σ ‖W‖² before each step).

        With sample weights both sums take each mini-batch's terms times
        m/Σw (see the core's ``train_epoch``); the ‖W‖² sum, the L2 part of
        scikit-learn's loss, is only taken when alpha > 0.
        """
        extra = {}
        if sample_weight is not None:
            extra["sample_weight"] = sample_weight
        w2 = np.zeros(1) if self.alpha else None
        if w2 is not None:
            extra["w2_sum"] = w2
        cost_sum = opt.run_epoch(net, X, Y, order, self.n_iter_, extra or None)
        return cost_sum, (float(w2[0]) if w2 is not None else 0.0)

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

    def _update_no_improvement_count(self, net, X_val, y_val, sw_val=None):
        if self.early_stopping:
            val_score = self._score_arrays(net, X_val, y_val, sw_val)
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
                self._best = state.parameters(net)
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
        return net.forward_rows(np.ascontiguousarray(X, dtype=net.dtype), self.num_threads)

    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.dtype(self.dtype), order="C")

    def _score_arrays(self, net, X, y, sample_weight=None):
        pred = self._predict_arrays(net, X)
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan
        return self._score_function(y, pred, sample_weight)


def _sk_activations():
    # The output activations scikit-learn's MLP knows ('exp' from 1.7 on).
    from sklearn.neural_network import _base
    return _base.ACTIVATIONS


# Private fitted state that scikit-learn's own estimator reads too.
_EXPORTED = frozenset({"_label_binarizer"})
