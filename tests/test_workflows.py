"""fedsk inside scikit-learn workflows: Pipelines, cross-validation, search.

Party membership is data, so ``parties`` travels through metadata routing,
which every test here turns on with ``sklearn.config_context`` (restored on
exit). A shared :class:`~fedsk.PrivacyAccountant` must see every fit of a
search, including clones, and stop the search once a party's ceiling is
reached.
"""

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedsk import BudgetExceededError, FederatedEstimator, PrivacyAccountant
from fedsk.privacy import BudgetLedger

INF = float("inf")
PARTIES = ["north", "south", "west"]
ALPHAS = [0.1, 1.0, 10.0]
CV = 3

seeded = pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield
    assert sklearn.get_config()["enable_metadata_routing"] is False


def _data(n_samples=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n_samples, 3))
    y = X @ [1.0, 2.0, 3.0] + 0.1 * rng.normal(size=n_samples)
    # parties interleaved, so that every cross-validation fold has all three
    parties = np.array(PARTIES * (n_samples // 3))
    return X, y, parties


def _private_ridge(accountant, epsilon=1.0, **params):
    return FederatedEstimator(
        Ridge(**params),
        epsilon=epsilon,
        bounds=(0.0, 1.0),
        y_bounds=(-1.0, 7.0),
        accountant=accountant,
        random_state=0,
    )


# Releases of one noisy least-squares fit: the spread histogram, then the
# moments (fedsk/estimators/linear.py).
RIDGE_RELEASES = 2


def _n_releases(report):
    return {p["party"]: p["releases"] for p in report.to_dict()["parties"]}


def _spent(report):
    return {p["party"]: p["epsilon_spent"] for p in report.to_dict()["parties"]}


# -- Pipeline ----------------------------------------------------------------


def test_pipeline_routes_parties_to_every_step(routing):
    X, y, parties = _data()
    pipe = make_pipeline(
        FederatedEstimator(StandardScaler(), epsilon=INF),
        FederatedEstimator(Ridge(alpha=2.0), epsilon=INF),
    )
    pipe.fit(X, y, parties=parties)
    for step in pipe:
        assert [ledger.name for ledger in step.ledgers_] == PARTIES
    reference = make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X, y)
    assert_allclose(pipe.predict(X), reference.predict(X), rtol=0, atol=1e-8)
    assert_allclose(pipe[-1].estimator_.coef_, reference[-1].coef_, rtol=0, atol=1e-8)


@seeded
def test_pipeline_steps_charge_a_shared_accountant(routing):
    X, y, parties = _data(n_samples=30_000)
    accountant = PrivacyAccountant()
    pipe = make_pipeline(
        FederatedEstimator(
            StandardScaler(),
            epsilon=0.5,
            bounds=(0.0, 1.0),
            accountant=accountant,
            random_state=0,
        ),
        FederatedEstimator(
            Ridge(),
            epsilon=1.0,
            bounds=(-3.0, 3.0),  # the scaled features' public range
            y_bounds=(-1.0, 7.0),
            accountant=accountant,
            random_state=0,
        ),
    )
    pipe.fit(X, y, parties=parties)
    report = accountant.privacy_report()
    assert _n_releases(report) == dict.fromkeys(PARTIES, 1 + RIDGE_RELEASES)
    assert _spent(report) == pytest.approx(dict.fromkeys(PARTIES, 1.5))
    by_estimator = {
        e["estimator"]: e["epsilon_spent"]
        for e in report.to_dict()["parties"][0]["estimators"]
    }
    assert by_estimator == pytest.approx({"StandardScaler": 0.5, "Ridge": 1.0})
    assert pipe.score(X, y) > 0.8


# -- cross-validation ----------------------------------------------------------


def test_cross_val_score_splits_parties_with_the_rows(routing):
    X, y, parties = _data()
    pipe = make_pipeline(
        FederatedEstimator(StandardScaler(), epsilon=INF),
        FederatedEstimator(Ridge(), epsilon=INF),
    )
    cv = KFold(n_splits=CV, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv, params={"parties": parties})
    reference = cross_val_score(make_pipeline(StandardScaler(), Ridge()), X, y, cv=cv)
    assert_allclose(scores, reference, rtol=0, atol=1e-8)


@seeded
def test_cross_val_score_charges_every_fold(routing):
    X, y, parties = _data()
    accountant = PrivacyAccountant()
    scores = cross_val_score(
        _private_ridge(accountant), X, y, cv=CV, params={"parties": parties}
    )
    assert scores.shape == (CV,)
    assert _n_releases(accountant.privacy_report()) == dict.fromkeys(
        PARTIES, CV * RIDGE_RELEASES
    )


# -- GridSearchCV with a shared accountant -------------------------------------


@seeded
def test_grid_search_charges_every_fit_to_the_accountant(routing):
    X, y, parties = _data()
    accountant = PrivacyAccountant()
    search = GridSearchCV(
        _private_ridge(accountant, epsilon=0.7),
        {"estimator__alpha": ALPHAS},
        cv=CV,
        error_score="raise",
    )
    search.fit(X, y, parties=parties)

    n_fits = len(ALPHAS) * CV + 1  # and the refit
    report = accountant.privacy_report()
    assert _n_releases(report) == dict.fromkeys(PARTIES, n_fits * RIDGE_RELEASES)
    # pure DP: the releases of one party add up
    assert _spent(report) == pytest.approx(dict.fromkeys(PARTIES, 0.7 * n_fits))
    for party in report.to_dict()["parties"]:
        assert party["epsilon_remaining"] == INF
        assert party["delta"] == 0
        (ridge,) = party["estimators"]
        assert ridge["estimator"] == "Ridge"
        assert ridge["releases"] == n_fits * RIDGE_RELEASES
        # the histogram's Laplace; the moments' K-norm noise (entries bounded)
        assert ridge["mechanisms"] == ["discrete_laplace", "discrete_linf"]
        assert set(ridge["statistics"]) == {"feature_histogram", "linear_moments"}
        per_fit = [e["epsilon"] for e in party["events"][:RIDGE_RELEASES]]
        assert math.fsum(per_fit) == pytest.approx(0.7)
    # clones share the accountant: the refitted model charges it too
    assert search.best_estimator_.accountant is accountant
    assert search.best_estimator_.epsilon_spent_ == pytest.approx(0.7)


@seeded
def test_party_ceiling_stops_the_search(routing):
    X, y, parties = _data()
    accountant = PrivacyAccountant()  # no ceiling for north and west
    accountant.ledgers["south"] = BudgetLedger("south", epsilon=2.5)
    search = GridSearchCV(
        _private_ridge(accountant, epsilon=1.0),
        {"estimator__alpha": ALPHAS},
        cv=CV,
        error_score="raise",
    )
    with pytest.raises(BudgetExceededError, match="'south' would spend epsilon 3"):
        search.fit(X, y, parties=parties)
    # two fits fitted; the third was refused for every party (all or nothing)
    report = accountant.privacy_report()
    assert _n_releases(report) == dict.fromkeys(PARTIES, 2 * RIDGE_RELEASES)
    south = next(p for p in report.to_dict()["parties"] if p["party"] == "south")
    assert south["epsilon_spent"] == pytest.approx(2.0)
    assert south["epsilon_remaining"] == pytest.approx(0.5)

    # what still fits in the budget can be fitted
    small = _private_ridge(accountant, epsilon=0.5).fit(X, y, parties=parties)
    assert small.epsilon_spent_ == pytest.approx(0.5)
    assert accountant.ledger("south").remaining() == pytest.approx(0.0)
    with pytest.raises(BudgetExceededError, match="south"):
        _private_ridge(accountant, epsilon=0.01).fit(X, y, parties=parties)
    assert _n_releases(accountant.privacy_report()) == dict.fromkeys(
        PARTIES, 3 * RIDGE_RELEASES
    )


@seeded
def test_accountant_ceiling_for_every_party(routing):
    X, y, parties = _data()
    accountant = PrivacyAccountant(epsilon=4.0)
    search = GridSearchCV(
        _private_ridge(accountant, epsilon=1.0),
        {"estimator__alpha": ALPHAS},
        cv=CV,
        error_score="raise",
    )
    with pytest.raises(BudgetExceededError) as info:
        search.fit(X, y, parties=parties)
    for party in PARTIES:
        assert repr(party) in str(info.value)
    assert "Nothing was released or charged" in str(info.value)
    assert _n_releases(accountant.privacy_report()) == dict.fromkeys(
        PARTIES, 4 * RIDGE_RELEASES
    )


# -- the privacy report ----------------------------------------------------------


@seeded
def test_privacy_report_forms():
    X, y, parties = _data()
    accountant = PrivacyAccountant()
    model = _private_ridge(accountant, epsilon=0.8).fit(X, y, parties=parties)
    FederatedEstimator(
        StandardScaler(), epsilon=0.2, bounds=(0, 1), accountant=accountant
    ).fit(X, parties=parties)

    report = accountant.privacy_report()
    data = report.to_dict()
    assert [p["party"] for p in data["parties"]] == PARTIES
    for party in data["parties"]:
        assert party["epsilon_spent"] == pytest.approx(1.0)
        assert party["epsilon_budget"] == INF
        assert party["releases"] == RIDGE_RELEASES + 1
        assert [e["estimator"] for e in party["estimators"]] == [
            "Ridge",
            "StandardScaler",
        ]
        event = party["events"][0]
        assert event["party"] == party["party"]
        assert event["mechanism"] == "discrete_laplace"
        assert event["unit"] == "record"
        assert event["trust"] == "central"
        assert event["sensitivity"] > 0 and event["noise_scale"] > 0

    parsed = json.loads(report.to_json())
    assert parsed["parties"][0]["epsilon_budget"] is None  # inf as null
    assert parsed["parties"][0]["epsilon_spent"] == pytest.approx(1.0)
    assert json.loads(report.to_json(indent=2)) == parsed

    text = str(report)
    assert text.splitlines()[0].split()[:4] == [
        "party",
        "estimator",
        "epsilon",
        "releases",
    ]
    assert all(name in text for name in PARTIES)
    assert "discrete_laplace" in text
    assert repr(report) == text

    frame = report.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == len(PARTIES) * 2
    assert {"party", "estimator", "epsilon", "releases"} <= set(frame.columns)
    assert frame.groupby("party")["epsilon"].sum().to_dict() == pytest.approx(
        dict.fromkeys(PARTIES, 1.0)
    )

    # the estimator's own report covers the parties it charged
    own = model.privacy_report().to_dict()
    assert [p["party"] for p in own["parties"]] == PARTIES


def test_privacy_report_after_noise_free_fit_is_valid_json():
    X, y, parties = _data()
    model = FederatedEstimator(Ridge(), epsilon=INF).fit(X, y, parties=parties)
    for party in model.privacy_report().to_dict()["parties"]:
        # no ceiling: inf remains (inf - inf used to give nan)
        assert party["epsilon_spent"] == INF
        assert party["epsilon_remaining"] == INF

    def reject(constant):
        raise ValueError(f"not JSON: {constant}")

    json.loads(model.privacy_report().to_json(), parse_constant=reject)


def test_privacy_report_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FederatedEstimator(Ridge()).privacy_report()


def test_empty_accountant_report():
    report = PrivacyAccountant().privacy_report()
    assert report.to_dict() == {"parties": []}
    assert json.loads(report.to_json()) == {"parties": []}
    assert len(report.to_frame()) == 0
    assert "party" in str(report)


# -- the fitted model -----------------------------------------------------------


@pytest.mark.parametrize(
    "estimator, target",
    [(StandardScaler(), None), (Ridge(alpha=0.3), "y"), (GaussianNB(), "labels")],
    ids=["scaler", "ridge", "nb"],
)
def test_estimator_is_plain_sklearn_after_pickling(estimator, target):
    X, y, parties = _data()
    labels = (y > np.median(y)).astype(int)
    target_values = {"y": y, "labels": labels, None: None}[target]
    model = FederatedEstimator(estimator, epsilon=INF).fit(
        X, target_values, parties=parties
    )
    inner = pickle.loads(pickle.dumps(model.estimator_))
    assert type(inner) is type(estimator)
    assert type(inner).__module__.startswith("sklearn.")
    method = "transform" if target is None else "predict"
    assert_array_equal(getattr(inner, method)(X), getattr(model, method)(X))

    restored = pickle.loads(pickle.dumps(model))
    assert_array_equal(getattr(restored, method)(X), getattr(model, method)(X))
    assert restored.privacy_report().to_json() == model.privacy_report().to_json()


def _same_params(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if hasattr(x, "get_params"):
            assert type(x) is type(y)
            _same_params(x.get_params(), y.get_params())
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert_array_equal(x, y)
        elif isinstance(x, float) and math.isnan(x):
            assert math.isnan(y)
        else:
            assert x is y or x == y, key


@seeded
@pytest.mark.parametrize(
    "make",
    [
        lambda acc: FederatedEstimator(
            StandardScaler(), epsilon=1.0, bounds="private", accountant=acc
        ),
        lambda acc: FederatedEstimator(
            Ridge(alpha=2.0),
            epsilon=1.0,
            delta=1e-6,
            bounds="private",
            y_bounds="private",
            accountant=acc,
        ),
        lambda acc: FederatedEstimator(
            GaussianNB(priors=[0.5, 0.5]),
            epsilon=1.0,
            bounds=([0, 0, 0], [1, 1, 1]),
            classes=np.array([0, 1]),
            trust="local",
            accountant=acc,
        ),
    ],
    ids=["scaler-private-bounds", "ridge-gaussian", "nb-local"],
)
def test_fit_leaves_parameters_unchanged(make):
    X, y, parties = _data(n_samples=3000)
    labels = (y > np.median(y)).astype(int)
    accountant = PrivacyAccountant()
    model = make(accountant)
    model.set_params(random_state=0)
    before = clone(model).get_params(deep=True)
    target = labels if isinstance(model.estimator, GaussianNB) else y
    model.fit(X, target, parties=parties)
    _same_params(model.get_params(deep=True), before)
    assert model.get_params()["accountant"] is accountant
    # fitting again (with the same parameters) also works and changes nothing
    model.fit(X, target, parties=parties)
    _same_params(model.get_params(deep=True), before)


def test_clone_of_fitted_model_is_unfitted_and_shares_accountant():
    X, y, parties = _data()
    accountant = PrivacyAccountant()
    model = FederatedEstimator(Ridge(), epsilon=INF, accountant=accountant)
    model.fit(X, y, parties=parties)
    copy = clone(model)
    assert not hasattr(copy, "estimator_")
    assert copy.accountant is accountant
    assert copy.estimator is not model.estimator
