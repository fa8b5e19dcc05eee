"""Noise off equals centralized scikit-learn; noise on stays close to it.

With ``epsilon=float("inf")`` no noise is added and no clipping region is
needed, so every federated algorithm must reproduce scikit-learn fitted on
the pooled rows of all parties, up to floating-point rounding (maximum
absolute difference 1e-8 on data whose features have means and spreads of
order 1 to 10). With a finite epsilon and public bounds the fitted
attributes must be within stated tolerances of pooled scikit-learn on a
large dataset, and the error must grow as epsilon shrinks.
"""

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from fedsk import FederatedEstimator, Federation, Party
from fedsk.privacy import SeededNoiseWarning

INF = float("inf")
ATOL = 1e-8
FEATURES = ["age", "income", "height", "weight"]

# fits with random_state warn that the noise is reproducible; these tests
# seed on purpose (simulation), so the warning is filtered here only.
seeded = pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")


def _data(n_samples=600, n_parties=3, seed=0):
    """Rows with features of different scales and offsets, labels, parties."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 4)) * [1.0, 2.0, 0.5, 3.0] + [1.0, -2.0, 0.0, 3.0]
    y = X @ [1.0, -2.0, 0.5, 3.0] + 0.5 * rng.normal(size=n_samples) + 4.0
    labels = np.digitize(X[:, 0] + X[:, 2] + rng.normal(size=n_samples), [0.5, 1.5])
    parties = rng.choice([f"party{i}" for i in range(n_parties)], size=n_samples)
    return X, y, labels, parties


def _assert_close(actual, expected, atol=ATOL):
    assert_allclose(actual, expected, rtol=0, atol=atol)


def _assert_same_scaler(fed, ref):
    assert fed.n_samples_seen_ == ref.n_samples_seen_
    for name in ("mean_", "var_", "scale_"):
        a, b = getattr(fed, name), getattr(ref, name)
        if b is None:
            assert a is None, name
        else:
            _assert_close(a, b)


def _assert_same_linear(fed, ref):
    assert type(fed) is type(ref)
    assert fed.coef_.shape == ref.coef_.shape
    _assert_close(fed.coef_, ref.coef_)
    _assert_close(fed.intercept_, ref.intercept_)


def _assert_same_nb(fed, ref):
    assert_array_equal(fed.classes_, ref.classes_)
    _assert_close(fed.class_count_, ref.class_count_)
    _assert_close(fed.theta_, ref.theta_)
    _assert_close(fed.var_, ref.var_)
    _assert_close(fed.class_prior_, ref.class_prior_)
    _assert_close(fed.epsilon_, ref.epsilon_)


# -- epsilon = inf: exactly the pooled fit ------------------------------------


@pytest.mark.parametrize("n_parties", [1, 3, 10])
@pytest.mark.parametrize(
    "with_mean, with_std", [(True, True), (False, True), (True, False), (False, False)]
)
def test_standard_scaler_matches_pooled(n_parties, with_mean, with_std):
    X, _, _, parties = _data(n_parties=n_parties)
    scaler = StandardScaler(with_mean=with_mean, with_std=with_std)
    model = FederatedEstimator(scaler, epsilon=INF).fit(X, parties=parties)
    reference = StandardScaler(with_mean=with_mean, with_std=with_std).fit(X)
    assert type(model.estimator_) is StandardScaler
    _assert_same_scaler(model.estimator_, reference)
    _assert_close(model.transform(X), reference.transform(X))
    _assert_close(model.inverse_transform(model.transform(X)), X)


def test_no_parties_is_one_party():
    X, _, _, _ = _data()
    model = FederatedEstimator(StandardScaler(), epsilon=INF).fit(X)
    _assert_same_scaler(model.estimator_, StandardScaler().fit(X))
    assert [ledger.name for ledger in model.ledgers_] == ["all"]


@pytest.mark.parametrize("n_parties", [3, 10])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_matches_pooled(n_parties, fit_intercept):
    X, y, _, parties = _data(n_parties=n_parties)
    model = FederatedEstimator(
        LinearRegression(fit_intercept=fit_intercept), epsilon=INF
    ).fit(X, y, parties=parties)
    reference = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    _assert_same_linear(model.estimator_, reference)
    _assert_close(model.predict(X), reference.predict(X))


@pytest.mark.parametrize("n_parties", [3, 10])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 30.0, 1000.0])
def test_ridge_matches_pooled(n_parties, fit_intercept, alpha):
    X, y, _, parties = _data(n_parties=n_parties)
    ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept)
    model = FederatedEstimator(ridge, epsilon=INF).fit(X, y, parties=parties)
    reference = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    _assert_same_linear(model.estimator_, reference)
    _assert_close(model.predict(X), reference.predict(X))
    assert model.estimator_.alpha == alpha  # hyperparameters are kept


@pytest.mark.parametrize("n_parties", [3, 10])
@pytest.mark.parametrize("priors", [None, [0.2, 0.3, 0.5]])
@pytest.mark.parametrize("var_smoothing", [1e-9, 1e-3, 0.1])
def test_gaussian_nb_matches_pooled(n_parties, priors, var_smoothing):
    X, _, labels, parties = _data(n_parties=n_parties)
    # every party holds every class, so the classes need not be declared
    nb = GaussianNB(priors=priors, var_smoothing=var_smoothing)
    model = FederatedEstimator(nb, epsilon=INF).fit(X, labels, parties=parties)
    reference = GaussianNB(priors=priors, var_smoothing=var_smoothing).fit(X, labels)
    _assert_same_nb(model.estimator_, reference)
    assert_array_equal(model.classes_, reference.classes_)
    _assert_close(model.predict_proba(X), reference.predict_proba(X))
    assert_array_equal(model.predict(X), reference.predict(X))


def test_gaussian_nb_string_labels_and_declared_classes():
    X, _, labels, parties = _data()
    names = np.array(["low", "mid", "high"])[labels]
    reference = GaussianNB().fit(X, names)
    classes = ["high", "low", "mid"]
    model = FederatedEstimator(GaussianNB(), epsilon=INF, classes=classes).fit(
        X, names, parties=parties
    )
    _assert_same_nb(model.estimator_, reference)
    assert_array_equal(model.predict(X), reference.predict(X))


# -- pandas input: feature names are kept on both objects ---------------------


def _frame(X):
    return pd.DataFrame(X, columns=FEATURES)


@pytest.mark.parametrize(
    "estimator, target",
    [
        (StandardScaler(), None),
        (LinearRegression(), "y"),
        (Ridge(alpha=2.0), "y"),
        (GaussianNB(), "labels"),
    ],
    ids=["scaler", "linear", "ridge", "nb"],
)
def test_dataframe_input_keeps_feature_names(estimator, target):
    X, y, labels, parties = _data(n_parties=3)
    target_values = {"y": y, "labels": labels, None: None}[target]
    frame = _frame(X)
    model = FederatedEstimator(estimator, epsilon=INF).fit(
        frame,
        None if target is None else pd.Series(target_values),
        parties=pd.Series(parties),
    )
    reference = estimator.__class__(**estimator.get_params()).fit(frame, target_values)
    assert_array_equal(model.feature_names_in_, FEATURES)
    assert_array_equal(model.estimator_.feature_names_in_, FEATURES)
    assert model.n_features_in_ == model.estimator_.n_features_in_ == 4
    method = "transform" if target is None else "predict"
    _assert_close(getattr(model, method)(frame), getattr(reference, method)(frame))
    if target is not None:
        # predicting with a DataFrame whose columns are in another order fails
        with pytest.raises(ValueError, match="feature names"):
            model.predict(frame[FEATURES[::-1]])


def test_refit_on_array_forgets_feature_names():
    X, _, _, parties = _data()
    model = FederatedEstimator(StandardScaler(), epsilon=INF)
    model.fit(_frame(X), parties=parties)
    assert hasattr(model, "feature_names_in_")
    model.fit(X, parties=parties)
    assert not hasattr(model, "feature_names_in_")
    assert not hasattr(model.estimator_, "feature_names_in_")


# -- the Federation of Party objects path -------------------------------------


def _federation(X, target, parties, frames=False):
    members = []
    for name in np.unique(parties):
        rows = parties == name
        data = _frame(X[rows]) if frames else X[rows]
        members.append(Party(name, data, None if target is None else target[rows]))
    return Federation(members)


@pytest.mark.parametrize("frames", [False, True])
def test_federation_of_parties_matches_pooled(frames):
    X, y, labels, parties = _data(n_parties=4)
    pooled = _frame(X) if frames else X

    scaler = FederatedEstimator(StandardScaler(), epsilon=INF)
    scaler.fit(_federation(X, None, parties, frames))
    _assert_same_scaler(scaler.estimator_, StandardScaler().fit(pooled))

    ridge = FederatedEstimator(Ridge(alpha=0.5), epsilon=INF)
    ridge.fit(_federation(X, y, parties, frames))
    _assert_same_linear(ridge.estimator_, Ridge(alpha=0.5).fit(pooled, y))

    linear = FederatedEstimator(LinearRegression(), epsilon=INF)
    linear.fit(_federation(X, y, parties, frames))
    _assert_same_linear(linear.estimator_, LinearRegression().fit(pooled, y))

    # a Federation reveals no labels: even without noise, classes are declared
    nb = FederatedEstimator(GaussianNB(), epsilon=INF, classes=np.unique(labels))
    nb.fit(_federation(X, labels, parties, frames))
    _assert_same_nb(nb.estimator_, GaussianNB().fit(pooled, labels))

    for model in (scaler, ridge, linear, nb):
        assert [ledger.name for ledger in model.ledgers_] == list(np.unique(parties))
        if frames:
            assert_array_equal(model.feature_names_in_, FEATURES)
            assert_array_equal(model.estimator_.feature_names_in_, FEATURES)
        else:
            assert not hasattr(model, "feature_names_in_")


def test_party_order_does_not_matter():
    X, y, _, parties = _data(n_parties=5)
    order = np.argsort(parties, kind="stable")
    a = FederatedEstimator(Ridge(), epsilon=INF).fit(X, y, parties=parties)
    b = FederatedEstimator(Ridge(), epsilon=INF).fit(
        X[order], y[order], parties=parties[order]
    )
    _assert_same_linear(a.estimator_, b.estimator_)


@pytest.mark.parametrize("trust", ["central", "local"])
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_infinite_epsilon_ignores_trust_and_delta(trust, delta):
    X, y, _, parties = _data()
    model = FederatedEstimator(Ridge(), epsilon=INF, delta=delta, trust=trust).fit(
        X, y, parties=parties
    )
    _assert_same_linear(model.estimator_, Ridge().fit(X, y))
    events = [e for ledger in model.ledgers_ for e in ledger.events]
    assert {e.mechanism for e in events} == {"none"}


@pytest.mark.xfail(
    reason="fedsk releases raw (uncentred) sums of squares and Gram entries and "
    "subtracts n * mean**2 afterwards; with epsilon=inf nothing is centred, so "
    "features with a large offset lose digits to cancellation (intercept off by "
    "~3e-2 at offset 1e4, StandardScaler var_ by ~3e-7)",
    strict=True,
)
@pytest.mark.parametrize("estimator", [StandardScaler(), LinearRegression()])
def test_matches_pooled_with_large_feature_offset(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4)) * [1.0, 2.0, 0.5, 3.0] + 1e4
    y = X @ [1.0, -2.0, 0.5, 3.0] + rng.normal(size=3000) + 5.0
    parties = rng.integers(0, 3, size=3000)
    if isinstance(estimator, StandardScaler):
        model = FederatedEstimator(estimator, epsilon=INF).fit(X, parties=parties)
        _assert_same_scaler(model.estimator_, StandardScaler().fit(X))
    else:
        model = FederatedEstimator(estimator, epsilon=INF).fit(X, y, parties=parties)
        _assert_same_linear(model.estimator_, LinearRegression().fit(X, y))


# -- finite epsilon: close to the pooled fit, closer with more budget --------
#
# Data: 30_000 rows, 3 features uniform on the public bounds [0, 10], so
# clipping changes nothing and the only difference from pooled scikit-learn is
# the noise. With pure DP the ``moments`` release splits epsilon over three
# blocks, each block's values mapped to [-1, 1] (half-range 5): the noise on a
# feature's sum has standard deviation about sqrt(2) * 3 * 3 / epsilon, so at
# epsilon = 1 the error of a mean has std about 13 / 30_000 * 5 ~= 2e-3 and
# the error of a variance (half-range^2 = 25) about 1e-2. Tolerances are
# about 10 of these standard deviations (mean 0.02, variance 0.1, count 30).

N_LARGE = 30_000
BOUNDS = (0.0, 10.0)


def _large(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(*BOUNDS, size=(N_LARGE, 3))
    y = X @ [0.5, -1.0, 2.0] + rng.normal(scale=0.5, size=N_LARGE)
    labels = (X[:, 0] + X[:, 1] + rng.normal(size=N_LARGE) > 10).astype(int)
    parties = rng.choice(["a", "b", "c"], size=N_LARGE)
    return X, y, labels, parties


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_finite_epsilon_scaler_close_to_pooled(delta):
    X, _, _, parties = _large()
    model = FederatedEstimator(
        StandardScaler(), epsilon=1.0, delta=delta, bounds=BOUNDS, random_state=0
    ).fit(X, parties=parties)
    reference = StandardScaler().fit(X)
    _assert_close(model.estimator_.mean_, reference.mean_, atol=0.02)
    _assert_close(model.estimator_.var_, reference.var_, atol=0.1)
    assert abs(model.estimator_.n_samples_seen_ - N_LARGE) <= 30
    assert model.epsilon_spent_ == pytest.approx(1.0)


@seeded
@pytest.mark.parametrize("estimator", [LinearRegression(), Ridge(alpha=1.0)])
def test_finite_epsilon_regression_close_to_pooled(estimator):
    # y lies in about [-10, 25]; y_bounds (-15, 30). Coefficients of order 1:
    # over seeds 0-9 the noisy normal equations (and the AdaSSP ridge term)
    # move them by at most 0.04 and the intercept by at most 0.16 at
    # epsilon = 1; the tolerances are about 4x those.
    X, y, _, parties = _large()
    model = FederatedEstimator(
        estimator, epsilon=1.0, bounds=BOUNDS, y_bounds=(-15, 30), random_state=0
    ).fit(X, y, parties=parties)
    reference = estimator.__class__(**estimator.get_params()).fit(X, y)
    _assert_close(model.estimator_.coef_, reference.coef_, atol=0.15)
    _assert_close(model.estimator_.intercept_, reference.intercept_, atol=0.6)
    assert model.score(X, y) > reference.score(X, y) - 0.01


@seeded
def test_finite_epsilon_gaussian_nb_close_to_pooled():
    X, _, labels, parties = _large()
    model = FederatedEstimator(
        GaussianNB(), epsilon=1.0, bounds=BOUNDS, classes=[0, 1], random_state=0
    ).fit(X, labels, parties=parties)
    reference = GaussianNB().fit(X, labels)
    _assert_close(model.estimator_.theta_, reference.theta_, atol=0.05)
    _assert_close(model.estimator_.var_, reference.var_, atol=0.2)
    _assert_close(model.estimator_.class_prior_, reference.class_prior_, atol=0.01)
    agreement = np.mean(model.predict(X) == reference.predict(X))
    assert agreement > 0.99


@seeded
def test_noisy_gaussian_nb_variances_are_positive():
    # features far from the origin, clipped to a row norm of 20: every row
    # is about (14.1, 14.1), so the true variances are tiny and noise can
    # push the released ones below zero (seed 0 did, and var_ was 0 and
    # predict_proba NaN, before variances were floored at the noise level).
    rng = np.random.default_rng(0)
    X = rng.normal(loc=100, size=(100, 2))
    y = np.arange(100) % 2
    for seed in range(5):
        model = FederatedEstimator(
            GaussianNB(), epsilon=1e3, data_norm=20.0, classes=[0, 1], random_state=seed
        ).fit(X, y)
        assert np.all(model.estimator_.var_ > 0)
        with np.errstate(all="ignore"):
            assert np.all(np.isfinite(model.predict_proba(X)))


@seeded
def test_private_bounds_close_to_pooled():
    # bounds="private" spends 10% of epsilon on a histogram over log-spaced
    # bins (four per decade) and drops bins below six noise std (~250 rows
    # here), so the sparse bins near 0 are dropped: the lower bound lands on
    # an edge a little above 0 (0.1 or 0.18) and the upper bound on 10.
    X, _, _, parties = _large()
    model = FederatedEstimator(
        StandardScaler(), epsilon=1.0, bounds="private", random_state=0
    ).fit(X, parties=parties)
    lower, upper = model.bounds_
    assert np.all((lower >= 0.0) & (lower <= 0.5))
    assert np.all((upper >= 9.5) & (upper <= 10.0**1.25))
    reference = StandardScaler().fit(X)
    _assert_close(model.estimator_.mean_, reference.mean_, atol=0.1)
    _assert_close(model.estimator_.scale_, reference.scale_, atol=0.1)
    statistics = [e.statistic for e in model.ledgers_[0].events]
    assert statistics == ["feature_histogram", "moments"]
    assert model.epsilon_spent_ == pytest.approx(1.0)


@seeded
@pytest.mark.parametrize("trust", ["central", "local"])
def test_error_shrinks_as_epsilon_grows(trust):
    # 2_000 rows, 20 seeds: at epsilon 0.1 the mean's noise std is ~100x that
    # at epsilon 10 (~0.3 vs ~3e-3), so averaged errors differ by far more
    # than the factor 10 asserted.
    X, _, _, parties = _large()
    X, parties = X[:2000], parties[:2000]
    reference = X.mean(axis=0)

    def mean_error(epsilon):
        errors = [
            np.abs(
                FederatedEstimator(
                    StandardScaler(),
                    epsilon=epsilon,
                    bounds=BOUNDS,
                    trust=trust,
                    random_state=seed,
                )
                .fit(X, parties=parties)
                .estimator_.mean_
                - reference
            ).mean()
            for seed in range(20)
        ]
        return np.mean(errors)

    small, large = mean_error(0.1), mean_error(10.0)
    assert small > 10 * large
    assert large < 0.05


def test_seeded_fit_warns_and_is_reproducible():
    X, _, _, parties = _large()
    X, parties = X[:1000], parties[:1000]

    def fit(seed):
        with pytest.warns(SeededNoiseWarning, match="reproducible"):
            return FederatedEstimator(
                StandardScaler(), epsilon=1.0, bounds=BOUNDS, random_state=seed
            ).fit(X, parties=parties)

    a, b, c = fit(3), fit(3), fit(4)
    assert_array_equal(a.estimator_.mean_, b.estimator_.mean_)
    assert not np.array_equal(a.estimator_.mean_, c.estimator_.mean_)
    assert math.isfinite(a.epsilon_spent_)
