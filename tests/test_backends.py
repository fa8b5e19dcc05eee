"""Party-side work under joblib backends: same result, independent noise.

The backend is the user's choice (``joblib.parallel_config``); fedsk only
passes ``n_jobs``. Seeds are derived in the parent as integers, so a fit
with ``n_jobs=2`` under loky, threading or a dask.distributed cluster must
give exactly the result of ``n_jobs=1`` under the same ``random_state``,
and charge the same ledgers in the parent process. Local noise must be
drawn independently by every party.

The dask cluster has two worker processes on the loopback interface
(``127.0.0.1``, no dashboard) and is closed at the end of the module.
"""

import contextlib

import joblib
import numpy as np
import pytest
import sklearn
from numpy.testing import assert_array_equal
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from fedsk import FederatedEstimator, Federation, Party, PrivacyAccountant

pytestmark = pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")

BACKENDS = ["loky", "threading", "dask"]
PARTIES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def backend(request):
    """A context manager factory for the backend named by the parameter."""
    name = request.param
    if name == "dask":
        request.getfixturevalue("dask_client")

    def use():
        return joblib.parallel_config(backend=name)

    return use


def _data(n_samples=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n_samples, 3))
    y = X @ [1.0, 2.0, 3.0] + 0.1 * rng.normal(size=n_samples)
    labels = (X[:, 0] > 0.5).astype(int)
    parties = np.resize(PARTIES, n_samples)
    return X, y, labels, parties


CONFIGS = {
    "scaler-central": (StandardScaler(), "none", dict(bounds=(0.0, 1.0))),
    "ridge-local": (
        Ridge(alpha=0.5),
        "y",
        dict(bounds=(0.0, 1.0), y_bounds=(-1.0, 7.0), trust="local"),
    ),
    "nb-local-gaussian": (
        GaussianNB(),
        "labels",
        dict(bounds=(0.0, 1.0), classes=[0, 1], delta=1e-6, trust="local"),
    ),
    "linear-private-bounds": (
        LinearRegression(),
        "y",
        dict(bounds="private", y_bounds="private"),
    ),
}


def _fitted_state(model):
    """Every fitted attribute of the inner estimator, and the ledgers."""
    inner = {k: v for k, v in vars(model.estimator_).items() if k.endswith("_")}
    events = [[e.to_dict() for e in ledger.events] for ledger in model.ledgers_]
    return inner, events


def _assert_same_state(a, b):
    inner_a, events_a = a
    inner_b, events_b = b
    assert inner_a.keys() == inner_b.keys()
    for key in inner_a:
        assert_array_equal(inner_a[key], inner_b[key], err_msg=key)
    assert events_a == events_b


def _fit(config, n_jobs, random_state=0, accountant=None):
    estimator, target, params = CONFIGS[config]
    X, y, labels, parties = _data()
    model = FederatedEstimator(
        estimator,
        epsilon=1.0,
        n_jobs=n_jobs,
        random_state=random_state,
        accountant=accountant,
        **params,
    )
    target_values = {"none": None, "y": y, "labels": labels}[target]
    return model.fit(X, target_values, parties=parties)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_backend_matches_sequential(backend, config):
    sequential = _fitted_state(_fit(config, n_jobs=1))
    with backend():
        parallel = _fitted_state(_fit(config, n_jobs=2))
    _assert_same_state(sequential, parallel)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_backend_with_random_state_object(backend):
    # a RandomState is consumed in the parent (one integer drawn), never
    # shipped to workers, so every party still gets its own stream
    sequential = _fit("ridge-local", 1, np.random.RandomState(7))
    with backend():
        parallel = _fit("ridge-local", 2, np.random.RandomState(7))
    _assert_same_state(_fitted_state(sequential), _fitted_state(parallel))
    other = _fit("ridge-local", 1, np.random.RandomState(8))
    assert not np.array_equal(other.estimator_.coef_, sequential.estimator_.coef_)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_backend_charges_in_the_parent(backend):
    accountant = PrivacyAccountant()
    X, y, _, _ = _data()
    parties = [Party(name, X[i::4], y[i::4]) for i, name in enumerate(PARTIES)]
    with backend():
        _fit("ridge-local", 2, accountant=accountant)
        _fit("linear-private-bounds", 2, accountant=accountant)
        FederatedEstimator(
            Ridge(), epsilon=0.5, bounds=(0, 1), y_bounds=(-1, 7), random_state=0
        ).fit(Federation(parties, n_jobs=2))
    report = {p["party"]: p for p in accountant.privacy_report().to_dict()["parties"]}
    assert sorted(report) == PARTIES
    for party in report.values():
        # ridge (spread histogram + moments), then private bounds' histogram,
        # linear regression's spread histogram + moments
        assert party["releases"] == 5
        assert party["epsilon_spent"] == pytest.approx(2.0)
    for party in parties:
        assert len(party.ledger.events) == 2  # spread histogram + moments
        assert party.ledger.spent()[0] == pytest.approx(0.5)


# -- independent local noise ------------------------------------------------------
#
# K = 5 parties hold identical rows (200 each, 3 features uniform on [0, 1]).
# With central trust the aggregator adds one noise draw to the sum; with
# local trust each party adds its own. If the parties' local draws are
# independent, the local error variance is K times the central one; if they
# shared a stream (same seed in every worker) the draws would be identical
# and the variance K^2 = 25 times. Over 60 seeds x 3 features the variance
# ratio has a relative standard error of about 15%, so 2.5 < ratio < 10
# separates the two cases with a wide margin.

K = 5
N_SEEDS = 60


def _mean_errors(trust, n_jobs):
    rng = np.random.default_rng(1)
    rows = rng.uniform(0, 1, size=(200, 3))
    federation_rows = np.tile(rows, (K, 1))
    parties = np.repeat([f"p{i}" for i in range(K)], len(rows))
    truth = rows.mean(axis=0)
    errors = []
    for seed in range(N_SEEDS):
        model = FederatedEstimator(
            StandardScaler(),
            epsilon=1.0,
            bounds=(0.0, 1.0),
            trust=trust,
            n_jobs=n_jobs,
            random_state=seed,
        ).fit(federation_rows, parties=parties)
        errors.append(model.estimator_.mean_ - truth)
    return np.concatenate(errors)


@pytest.mark.parametrize("backend", [None, "loky"], ids=["sequential", "loky"])
def test_local_noise_is_independent_across_parties(backend):
    context = (
        contextlib.nullcontext()
        if backend is None
        else joblib.parallel_config(backend=backend)
    )
    n_jobs = 1 if backend is None else 2
    with context:
        local = _mean_errors("local", n_jobs)
        central = _mean_errors("central", n_jobs)
    ratio = np.mean(local**2) / np.mean(central**2)
    assert 2.5 < ratio < 10, ratio


# -- searches in parallel -----------------------------------------------------------


def _search(accountant, n_jobs):
    X, y, _, parties = _data(n_samples=600)
    search = GridSearchCV(
        FederatedEstimator(
            Ridge(),
            epsilon=1.0,
            bounds=(0.0, 1.0),
            y_bounds=(-1.0, 7.0),
            accountant=accountant,
        ),
        {"estimator__alpha": [0.1, 1.0]},
        cv=3,
        n_jobs=n_jobs,
        error_score="raise",
    )
    with sklearn.config_context(enable_metadata_routing=True):
        return search.fit(X, y, parties=parties)


N_SEARCH_FITS = 2 * 3 + 1


def test_threaded_search_charges_the_shared_accountant():
    accountant = PrivacyAccountant()
    with joblib.parallel_config(backend="threading"):
        _search(accountant, n_jobs=2)
    report = accountant.privacy_report().to_dict()
    # each Ridge fit: the spread histogram, then the moments
    assert [p["releases"] for p in report["parties"]] == [2 * N_SEARCH_FITS] * 4
    assert [p["epsilon_spent"] for p in report["parties"]] == pytest.approx(
        [float(N_SEARCH_FITS)] * 4
    )


def test_process_search_refuses_copied_ledgers():
    accountant = PrivacyAccountant()
    for name in PARTIES:
        accountant.ledger(name)
    with joblib.parallel_config(backend="loky"):
        with pytest.raises(RuntimeError, match="copied into another process"):
            _search(accountant, n_jobs=2)


def test_process_search_with_fresh_accountant_loses_no_spend():
    accountant = PrivacyAccountant()
    with joblib.parallel_config(backend="loky"):
        try:
            _search(accountant, n_jobs=2)
        except RuntimeError:
            return  # refusing is acceptable; losing spends is not
    report = accountant.privacy_report().to_dict()
    assert [p["releases"] for p in report["parties"]] == [N_SEARCH_FITS] * 4
