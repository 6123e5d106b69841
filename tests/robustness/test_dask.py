"""cbp.sklearn on a real Dask cluster: two worker processes that these tests start and stop.

* joblib's dask backend around scikit-learn's GridSearchCV gives the local result;
* dask-ml: GridSearchCV, Incremental (partial_fit over the blocks of a dask
  array) and ParallelPostFit (prediction over a dask array);
* a worker killed in the middle of a dask-ml search: the search recomputes the
  lost tasks and finishes with the local result (the fault-tolerant path; the
  README says so);
* dask-ml's adaptive searches (HyperbandSearchCV, IncrementalSearchCV), which
  train by partial_fit on the workers: they run (the dask extra is bounded to
  the distributed releases where they do), find a model that learns, and
  finish with the same result when a worker is killed in the middle.
"""
import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask_ml_ms = pytest.importorskip("dask_ml.model_selection")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")
joblib = pytest.importorskip("joblib")
pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from cbp.sklearn import MLPClassifier  # noqa: E402

GRID = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.01, 0.03]}


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           silence_logs=40)
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        try:
            cluster.close(timeout=120)
        except TimeoutError:
            # The last test kills a worker; its nanny may still be bringing
            # it back when the cluster closes, and the nanny's kill then ran
            # out of time once in CI (07:37, debug build; the tests had
            # passed).  The processes are this module's own children: what
            # is left of them ends with the interpreter.
            warnings.warn("dask's LocalCluster did not close within 120 s")


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def model(**kw):
    return MLPClassifier(hidden_layer_sizes=(10,), max_iter=10, random_state=0, **kw)


def quiet_fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


@pytest.fixture(scope="module")
def local_search(data):
    return quiet_fit(GridSearchCV(model(), GRID, cv=3), *data)


def assert_same_search(a, b, X):
    np.testing.assert_array_equal(a.cv_results_["mean_test_score"],
                                  b.cv_results_["mean_test_score"])
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.best_estimator_.predict_proba(X),
                                  b.best_estimator_.predict_proba(X))


def test_joblib_dask_backend_grid_search_equals_local(client, data, local_search):
    with joblib.parallel_backend("dask"):
        remote = quiet_fit(GridSearchCV(model(), GRID, cv=3, n_jobs=-1), *data)
    assert_same_search(remote, local_search, data[0])


def assert_same_splits(a, b, cv=3):
    # dask-ml weights its mean by the folds' sizes; each fold's score is the same.
    for k in range(cv):
        np.testing.assert_array_equal(a.cv_results_[f"split{k}_test_score"],
                                      b.cv_results_[f"split{k}_test_score"])
    assert a.best_params_ == b.best_params_


def test_dask_ml_grid_search_equals_local(client, data, local_search):
    remote = quiet_fit(dask_ml_ms.GridSearchCV(model(), GRID, cv=3), *data)
    assert_same_splits(remote, local_search)
    np.testing.assert_array_equal(remote.best_estimator_.predict_proba(data[0]),
                                  local_search.best_estimator_.predict_proba(data[0]))


def test_incremental_partial_fit_over_blocks(client, data):
    X, y = data
    dX = da.from_array(X, chunks=(75, X.shape[1]))
    dy = da.from_array(y, chunks=75)
    assert dX.numblocks[0] == 4
    inc = dask_ml_wrappers.Incremental(model(), shuffle_blocks=False)
    inc.fit(dX, dy, classes=np.arange(10))
    local = model()
    for k in range(4):
        local.partial_fit(X[75 * k:75 * (k + 1)], y[75 * k:75 * (k + 1)],
                          classes=np.arange(10))
    np.testing.assert_array_equal(inc.estimator_.predict_proba(X), local.predict_proba(X))
    assert inc.estimator_.t_ == 300


def test_parallel_post_fit_equals_local_prediction(client, data):
    X, y = data
    est = quiet_fit(dask_ml_wrappers.ParallelPostFit(model()), X, y)
    dX = da.from_array(X, chunks=(64, X.shape[1]))
    proba = est.predict_proba(dX)
    labels = est.predict(dX)
    assert isinstance(proba, da.Array)
    np.testing.assert_array_equal(proba.compute(), est.estimator.predict_proba(X))
    np.testing.assert_array_equal(labels.compute(), est.estimator.predict(X))


class KillOneBusyWorker:
    """Kill (SIGKILL) a worker process as soon as it runs a task, in a thread."""

    def __init__(self, client):
        self.client = client
        self.pids = client.run(os.getpid)
        self.killed = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.is_set():
            busy = sorted(w for w, tasks in self.client.processing().items() if tasks)
            if busy:
                os.kill(self.pids[busy[0]], signal.SIGKILL)
                self.killed.update(pid=self.pids[busy[0]], at=time.perf_counter())
                return
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.done = time.perf_counter()

    def check(self, replaced=True):
        assert self.killed and self.killed["at"] < self.done   # the kill landed during the search
        if replaced:
            # the nanny starts a new worker (a fresh interpreter importing NumPy,
            # scikit-learn and cbp: slow on a loaded machine, hence the long wait)
            self.client.wait_for_workers(2, timeout=240)
        assert self.killed["pid"] not in self.client.run(os.getpid).values()


def test_dask_ml_search_survives_a_killed_worker(client, data, local_search):
    # dask-ml recomputes what was lost and the result is the local one.
    with KillOneBusyWorker(client) as killer:
        remote = quiet_fit(dask_ml_ms.GridSearchCV(model(), GRID, cv=3), *data)
    killer.check()
    assert_same_splits(remote, local_search)
    np.testing.assert_array_equal(remote.best_estimator_.predict_proba(data[0]),
                                  local_search.best_estimator_.predict_proba(data[0]))


# -- dask-ml's adaptive searches (partial_fit on the workers) ----------------------

def digits_blocks(n=900, block=150):
    X, y = load_digits(return_X_y=True)
    X, y = X[:n] / 16.0, y[:n]
    return da.from_array(X, chunks=(block, X.shape[1])), da.from_array(y, chunks=block), X, y


ADAPTIVE = {"alpha": [1e-4, 1e-2], "learning_rate_init": [3e-3, 1e-2, 3e-2, 1e-1]}


def hyperband():
    return dask_ml_ms.HyperbandSearchCV(
        MLPClassifier(hidden_layer_sizes=(20,), random_state=0), ADAPTIVE, max_iter=27,
        random_state=0, test_size=0.2)


def test_hyperband_search_runs_and_finds_a_model_that_learns(client):
    dX, dy, X, y = digits_blocks()
    search = hyperband().fit(dX, dy, classes=np.arange(10))
    assert isinstance(search.best_estimator_, MLPClassifier)
    assert search.best_score_ > 0.85, search.best_score_
    assert search.best_estimator_.score(X, y) > 0.85
    assert len(search.cv_results_["params"]) > 1          # it tried several models


def test_incremental_search_runs_and_finds_a_model_that_learns(client):
    dX, dy, X, y = digits_blocks()
    search = dask_ml_ms.IncrementalSearchCV(
        MLPClassifier(hidden_layer_sizes=(20,), random_state=0), ADAPTIVE, n_initial_parameters=4,
        max_iter=20, random_state=0, test_size=0.2).fit(dX, dy, classes=np.arange(10))
    assert search.best_score_ > 0.85, search.best_score_
    assert search.best_estimator_.n_iter_ >= 1


def test_hyperband_search_survives_a_killed_worker(client):
    # The same search with a worker killed in the middle: the lost
    # partial_fit calls are recomputed and the result is the same.
    dX, dy, X, y = digits_blocks()
    calm = hyperband().fit(dX, dy, classes=np.arange(10))
    with KillOneBusyWorker(client) as killer:
        hit = hyperband().fit(dX, dy, classes=np.arange(10))
    # (Whether dask's nanny brings the killed worker back is dask's affair and
    # the last use of this cluster: in two CI runs on 2 cores it had not after
    # 240 s, while the search below had finished on the other worker.)
    killer.check(replaced=False)
    assert hit.best_params_ == calm.best_params_
    assert hit.best_score_ == calm.best_score_
    np.testing.assert_array_equal(hit.best_estimator_.predict_proba(X),
                                  calm.best_estimator_.predict_proba(X))
