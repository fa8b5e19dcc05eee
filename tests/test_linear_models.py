"""Linear models fitted across parties: LogisticRegression, LinearSVC, SGD.

Noise off (``epsilon=float("inf")``) the federated Newton rounds must land on
the optimum scikit-learn finds on the pooled rows. Data: 3,000 rows, 5
features of different scales and offsets, three parties of 700, 1,000 and
1,300 rows; the reference solvers run to ``tol=1e-10``. Tolerances (from the
brief; measured values in brackets): held-out accuracy within 0.002 [0],
coefficients and intercepts within 1e-3 of the largest reference coefficient
[at most 2.7e-7 for LogisticRegression and LinearSVC]. The SGD estimators
minimise ``mean loss + alpha |w|^2 / 2`` exactly, so their reference is that
optimum (``LogisticRegression(C=1 / (n alpha))``, ``Ridge(alpha=n alpha)``),
not scikit-learn's stochastic steps.

The other strategies, the round cap, the budget, the progress bar, party
failures, and the sensitivity bound of every new statistic (the privacy
claim itself: one record never moves a release by more than its stated
sensitivity) are tested below, each with its measured tolerance.
"""

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import (
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

import fedsk._estimator
import fedsk._statistics
import fedsk.estimators._glm
from fedsk import FederatedEstimator, Federation, PartyError, PrivacyAccountant
from fedsk._losses import derivative_factors
from fedsk.estimators._glm import (
    LONG_FIT_ROUNDS,
    REGION_RUN_LEVEL,
    REGION_SHARE,
    pure_dp_shares,
)
from fedsk.estimators._postprocessing import regularised_psd, symmetric_from_upper
from fedsk.estimators._region import private_region
from fedsk.estimators.linear import SPREAD_SHARE
from fedsk.privacy import BudgetLedger, Clipping

INF = float("inf")
N = 3000
SIZES = {"a": 700, "b": 1000, "c": 1300}
SCALE = np.array([1.0, 2.0, 0.5, 3.0, 1.0])
OFFSET = np.array([1.0, -2.0, 0.0, 3.0, 0.5])
WEIGHTS = np.array([1.0, -0.5, 2.0, 0.3, -1.0])

seeded = pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")


def _data(seed=0, n=N):
    """Features of different scales and offsets; binary, 3-class, real targets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) * SCALE + OFFSET
    score = X @ WEIGHTS
    binary = (score + rng.logistic(size=n) > 0.5).astype(int)
    three = np.digitize(score + rng.logistic(size=n), [-1.0, 1.5])
    real = score + rng.normal(size=n) + 4.0
    return X, binary, three, real


def _parties(seed=0):
    """One label per row: 700 rows of "a", 1,000 of "b", 1,300 of "c"."""
    labels = np.repeat(list(SIZES), list(SIZES.values()))
    return np.random.default_rng(seed).permutation(labels)


def _coefficients(estimator):
    """``coef_`` with ``intercept_`` as a last column, one row per output."""
    coef = np.atleast_2d(estimator.coef_)
    intercept = np.broadcast_to(np.ravel(estimator.intercept_), coef.shape[0])
    return np.column_stack([coef, intercept])


def _assert_relative(actual, expected, rtol=1e-3):
    """Max absolute difference within ``rtol`` of the largest reference value."""
    error = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert error <= rtol, f"relative error {error:.3g} > {rtol}"


def _assert_matches_pooled(model, reference, X_test, y_test, accuracy_atol=0.002):
    assert type(model.estimator_) is type(reference)
    assert_array_equal(model.classes_, reference.classes_)
    _assert_relative(_coefficients(model.estimator_), _coefficients(reference))
    assert abs(model.score(X_test, y_test) - reference.score(X_test, y_test)) <= (
        accuracy_atol
    )


# -- 1. noise off: the pooled optimum ------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "params",
    [
        dict(C=0.1),
        dict(C=1.0),
        dict(fit_intercept=False),
        dict(class_weight={0: 2.0, 1: 0.5}),
        dict(class_weight="balanced"),
    ],
    ids=["C=0.1", "C=1", "no-intercept", "weights-dict", "balanced"],
)
def test_logistic_regression_matches_pooled(n_classes, params):
    X, binary, three, _ = _data()
    X_test, binary_test, three_test, _ = _data(seed=1, n=1000)
    y, y_test = (binary, binary_test) if n_classes == 2 else (three, three_test)
    model = FederatedEstimator(LogisticRegression(**params), epsilon=INF)
    model.fit(X, y, parties=_parties())
    reference = LogisticRegression(**params, tol=1e-10, max_iter=10_000).fit(X, y)
    _assert_matches_pooled(model, reference, X_test, y_test)
    assert model.estimator_.coef_.shape == (1 if n_classes == 2 else 3, 5)
    assert_allclose(
        model.predict_proba(X_test), reference.predict_proba(X_test), atol=1e-4
    )


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_linear_svc_matches_pooled(n_classes, C):
    X, binary, three, _ = _data()
    X_test, binary_test, three_test, _ = _data(seed=1, n=1000)
    y, y_test = (binary, binary_test) if n_classes == 2 else (three, three_test)
    model = FederatedEstimator(LinearSVC(C=C), epsilon=INF).fit(
        X, y, parties=_parties()
    )
    reference = LinearSVC(C=C, tol=1e-10, max_iter=100_000).fit(X, y)
    _assert_matches_pooled(model, reference, X_test, y_test)
    assert_allclose(
        model.decision_function(X_test),
        reference.decision_function(X_test),
        atol=1e-3,
    )


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_linear_svc_hinge_reaches_liblinear_objective(C):
    # loss="hinge" is minimised in a smoothed form (width 0.1 around the
    # kink), so its optimum is not liblinear's exactly; measured: the
    # federated objective is 1e-5 to 5e-5 above it, relative.
    X, y, _, _ = _data()

    def objective(svc):
        margins = (2 * y - 1) * svc.decision_function(X)
        penalty = np.sum(svc.coef_**2) + svc.intercept_[0] ** 2
        return C * np.sum(np.maximum(0, 1 - margins)) + penalty / 2

    model = FederatedEstimator(LinearSVC(loss="hinge", C=C), epsilon=INF)
    model.fit(X, y, parties=_parties())
    reference = LinearSVC(loss="hinge", C=C, tol=1e-10, max_iter=100_000).fit(X, y)
    assert objective(model.estimator_) <= objective(reference) * (1 + 2e-4)


@pytest.mark.parametrize("alpha", [1e-4, 1e-2])
def test_sgd_classifier_log_loss_is_the_exact_optimum(alpha):
    X, y, _, _ = _data()
    X_test, y_test, _, _ = _data(seed=1, n=1000)
    model = FederatedEstimator(SGDClassifier(loss="log_loss", alpha=alpha), epsilon=INF)
    model.fit(X, y, parties=_parties())
    optimum = LogisticRegression(C=1 / (N * alpha), tol=1e-10, max_iter=10_000)
    optimum.fit(X, y)
    assert type(model.estimator_) is SGDClassifier
    _assert_relative(_coefficients(model.estimator_), _coefficients(optimum))
    assert abs(model.score(X_test, y_test) - optimum.score(X_test, y_test)) <= 0.002
    assert_allclose(
        model.predict_proba(X_test), optimum.predict_proba(X_test), atol=1e-4
    )


def test_sgd_classifier_log_loss_three_classes_is_one_vs_rest():
    alpha = 1e-3
    X, _, y, _ = _data()
    model = FederatedEstimator(SGDClassifier(loss="log_loss", alpha=alpha), epsilon=INF)
    model.fit(X, y, parties=_parties())
    optimum = OneVsRestClassifier(
        LogisticRegression(C=1 / (N * alpha), tol=1e-10, max_iter=10_000)
    ).fit(X, y)
    expected = np.vstack([_coefficients(e) for e in optimum.estimators_])
    _assert_relative(_coefficients(model.estimator_), expected)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-4, 1e-1])
def test_sgd_regressor_is_ridge(alpha, fit_intercept):
    X, _, _, y = _data()
    model = FederatedEstimator(
        SGDRegressor(alpha=alpha, fit_intercept=fit_intercept), epsilon=INF
    ).fit(X, y, parties=_parties())
    reference = Ridge(alpha=N * alpha, fit_intercept=fit_intercept).fit(X, y)
    assert type(model.estimator_) is SGDRegressor
    assert model.estimator_.coef_.shape == (5,)
    assert model.estimator_.intercept_.shape == (1,)
    _assert_relative(model.estimator_.coef_, reference.coef_)
    assert model.estimator_.intercept_[0] == pytest.approx(
        reference.intercept_, abs=1e-3 * np.max(np.abs(reference.coef_))
    )


@pytest.mark.parametrize("alpha", [1e-3, 1e-2])
def test_sgd_classifier_hinge_is_no_worse_than_sgd(alpha):
    # pooled SGD stops after a finite number of epochs; the federated fit
    # minimises the (smoothed) objective. Measured on seeds 0-2: federated
    # objective 0.390 / 0.402 vs SGD's 0.397-0.440 / 0.403-0.406, accuracy
    # 0.839 / 0.844 vs 0.824-0.841 / 0.838-0.841.
    X, y, _, _ = _data()
    X_test, y_test, _, _ = _data(seed=1, n=1000)

    def objective(estimator):
        margins = (2 * y - 1) * estimator.decision_function(X)
        hinge = np.maximum(0, 1 - margins).mean()
        return hinge + alpha / 2 * np.sum(estimator.coef_**2)

    model = FederatedEstimator(SGDClassifier(loss="hinge", alpha=alpha), epsilon=INF)
    model.fit(X, y, parties=_parties())
    pooled = SGDClassifier(loss="hinge", alpha=alpha, random_state=0).fit(X, y)
    assert objective(model.estimator_) <= objective(pooled) + 1e-3
    assert model.score(X_test, y_test) >= pooled.score(X_test, y_test) - 0.01


CLASSIFIERS = [
    LogisticRegression(),
    LinearSVC(),
    SGDClassifier(loss="log_loss"),
    SGDClassifier(loss="hinge"),
]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("classifier", CLASSIFIERS, ids=lambda e: repr(e))
def test_fitted_estimator_is_plain_sklearn_with_string_labels(classifier, n_classes):
    X, binary, three, _ = _data()
    X_test = _data(seed=1, n=200)[0]
    # label names whose sorted order differs from the integer codes' order
    if n_classes == 2:
        names = np.array(["yes", "no"])[binary]
    else:
        names = np.array(["mid", "low", "high"])[three]
    model = FederatedEstimator(classifier, epsilon=INF).fit(
        X, names, parties=_parties()
    )
    fitted = model.estimator_
    assert type(fitted) is type(classifier)
    assert_array_equal(model.classes_, np.unique(names))
    assert_array_equal(fitted.classes_, sorted(set(names)))
    predicted = fitted.predict(X_test)
    assert_array_equal(model.predict(X_test), predicted)
    assert set(predicted) <= set(names)
    decision = fitted.decision_function(X_test)
    assert decision.shape == ((200,) if n_classes == 2 else (200, 3))
    assert_array_equal(model.decision_function(X_test), decision)
    expected = (
        fitted.classes_[(decision > 0).astype(int)]
        if n_classes == 2
        else fitted.classes_[decision.argmax(axis=1)]
    )
    assert_array_equal(predicted, expected)
    if hasattr(fitted, "predict_proba"):
        proba = fitted.predict_proba(X_test)
        assert_allclose(proba.sum(axis=1), 1.0)
        assert_array_equal(fitted.classes_[proba.argmax(axis=1)], predicted)
        assert_allclose(model.predict_proba(X_test), proba)
    # the same labels as integers give the same model
    codes = np.searchsorted(np.unique(names), names)
    as_codes = FederatedEstimator(classifier, epsilon=INF).fit(
        X, codes, parties=_parties()
    )
    assert_allclose(as_codes.estimator_.coef_, fitted.coef_, atol=1e-10)


# -- 2. strategies and rounds ---------------------------------------------------
#
# Features fill their public bounds here (uniform), with ranges of different
# widths and offsets. Gradient descent takes steps of 1 / L with L the public
# worst-case curvature, which is only close to the real one when rows do
# fill the bounds (on the normal rows above, with bounds at +-4 standard
# deviations, 10 noisy gradient rounds learn little more than the intercept).

CENTER = np.array([0.0, 100.0, -5.0, 20.0, 0.5])
HALF = np.array([1.0, 50.0, 2.0, 10.0, 0.5])
BOUNDS = (CENTER - HALF, CENTER + HALF)


def _bounded(seed=0, n=N):
    rng = np.random.default_rng(seed)
    Z = rng.uniform(-1, 1, size=(n, 5))
    y = Z @ [1.5, -1.0, 2.0, 0.5, -2.0] + 0.3 + rng.logistic(size=n) > 0
    return CENTER + HALF * Z, y.astype(int)


def _pooled_accuracy():
    X, y = _bounded()
    X_test, y_test = _bounded(seed=1, n=2000)
    return LogisticRegression().fit(X, y).score(X_test, y_test)


@pytest.mark.parametrize(
    "strategy, atol",
    # measured: gradient (100 rounds) 0.000, fedavg (6 rounds) 0.001 below
    [("gradient", 0.01), ("fedavg", 0.02)],
)
def test_strategies_without_noise_reach_pooled_accuracy(strategy, atol):
    X, y = _bounded()
    X_test, y_test = _bounded(seed=1, n=2000)
    model = FederatedEstimator(
        LogisticRegression(), epsilon=INF, bounds=BOUNDS, strategy=strategy
    ).fit(X, y, parties=_parties())
    assert model.score(X_test, y_test) >= _pooled_accuracy() - atol
    expected = "local_update" if strategy == "fedavg" else "glm_derivatives"
    assert expected in _statistics(model.fit_ledger_)


def test_gradient_strategy_without_bounds_and_noise():
    """Without bounds the step size comes from the exact sums of squares.

    (It used to be 1 / inf: all-zero coefficients after one "converged"
    round.) Plain gradient descent on these uncentred features is slow, so
    only progress is checked: every round runs and beats the majority class.
    """
    X, y = _bounded()
    X_test, y_test = _bounded(seed=1, n=2000)
    model = FederatedEstimator(
        LogisticRegression(), epsilon=INF, strategy="gradient"
    ).fit(X, y, parties=_parties())
    majority = max(y_test.mean(), 1 - y_test.mean())
    assert np.all(model.estimator_.coef_ != 0)
    assert model.estimator_.n_iter_[0] == LogisticRegression().max_iter
    assert model.score(X_test, y_test) > majority + 0.03


@seeded
@pytest.mark.parametrize(
    "strategy, epsilon, atol",
    # Over seeds 0-19 (default rounds), held-out accuracy below pooled (0.780)
    # by at most, pure / delta 1e-6: newton eps 1: 0.014 / 0.012; gradient
    # eps 1: 0.017 / 0.005; fedavg eps 100: 0.010 / 0.010. FedAvg at eps 1
    # (median 0.28 below pooled) and eps 10 (0.13) is at or below the
    # majority class (0.54): a record can move its party's whole clipped
    # update, and 3 parties do not average that noise away, so it is tested
    # at eps 100 only.
    [("newton", 1.0, 0.05), ("gradient", 1.0, 0.04), ("fedavg", 100.0, 0.04)],
)
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_strategies_with_noise_stay_close_to_pooled(strategy, epsilon, atol, delta):
    X, y = _bounded()
    X_test, y_test = _bounded(seed=1, n=2000)
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=epsilon,
        delta=delta,
        bounds=BOUNDS,
        classes=[0, 1],
        strategy=strategy,
        random_state=0,
    ).fit(X, y, parties=_parties())
    assert model.score(X_test, y_test) >= _pooled_accuracy() - atol
    assert np.all(np.isfinite(model.estimator_.coef_))


def _statistics(ledger):
    return [event.statistic for event in ledger.events]


ROUND_CASES = {
    # name: (estimator, strategy, statistics released before the rounds)
    "logistic-newton": (LogisticRegression(), "newton", []),
    "logistic-gradient": (LogisticRegression(), "gradient", ["moments"]),
    "logistic-balanced": (
        LogisticRegression(class_weight="balanced"),
        "auto",
        ["class_counts"],
    ),
    "logistic-fedavg": (LogisticRegression(), "fedavg", []),
    "multinomial": (LogisticRegression(), "auto", []),
    "linear-svc": (LinearSVC(), "auto", []),
    "sgd-classifier": (SGDClassifier(loss="log_loss"), "auto", ["class_counts"]),
    "sgd-gradient": (
        SGDClassifier(loss="squared_hinge"),
        "gradient",
        ["class_counts", "moments"],
    ),
    "sgd-regressor": (SGDRegressor(), "auto", ["class_counts"]),
}


def _round_fit(name, **params):
    estimator, strategy, _ = ROUND_CASES[name]
    X, y = _bounded()
    _, _, three, _ = _data()
    if name == "multinomial":
        y = three
    elif isinstance(estimator, SGDRegressor):
        y = X @ [1.0, 0.02, -0.5, 0.1, 2.0]
    params = {"bounds": BOUNDS, "strategy": strategy, **params}
    if isinstance(estimator, SGDRegressor):
        params["y_bounds"] = (-20.0, 20.0)
    else:
        params["classes"] = np.unique(y)
    return FederatedEstimator(estimator, **params).fit(X, y, parties=_parties())


@seeded
@pytest.mark.parametrize("epsilon", [1.0, INF])
@pytest.mark.parametrize("name", list(ROUND_CASES))
def test_max_rounds_is_honoured(name, epsilon):
    _, strategy, before = ROUND_CASES[name]
    model = _round_fit(name, epsilon=epsilon, max_rounds=3, random_state=0)
    rounds = "local_update" if strategy == "fedavg" else "glm_derivatives"
    # without noise every case needs more than 3 rounds except least squares,
    # whose first Newton step is exact: the second moves nothing, and it stops
    n_rounds = 2 if name == "sgd-regressor" and epsilon == INF else 3
    releases = [rounds] * n_rounds
    if epsilon == INF:  # a free count of the rows clipping changes comes first
        before = ["clipped_rows", *before]
    else:  # with noise the private clipping region comes before the rounds
        counts = [s for s in before if s != "moments"]
        before = [*counts, "feature_histogram", *before[len(counts) :]]
    if epsilon != INF and strategy in ("auto", "newton"):  # pure DP: a Hessian,
        # then a gradient per round and from the second a 2 x 2 curvature
        releases = [rounds, rounds] + [rounds, "glm_curvature"] * (n_rounds - 1)
    assert _statistics(model.fit_ledger_) == before + releases
    assert np.ravel(model.estimator_.n_iter_)[0] == n_rounds
    for ledger in model.ledgers_:
        assert _statistics(ledger) == _statistics(model.fit_ledger_)


@seeded
@pytest.mark.parametrize(
    "epsilon, delta, n_rounds",
    # a tenth of epsilon goes to the clipping region: 0.45 and 0.54 are left
    [(0.5, 0.0, 4), (0.6, 0.0, LONG_FIT_ROUNDS), (10.0, 1e-6, 4)],
)
def test_default_newton_rounds_follow_the_budget(epsilon, delta, n_rounds):
    model = _round_fit("logistic-newton", epsilon=epsilon, delta=delta, random_state=0)
    assert np.ravel(model.estimator_.n_iter_)[0] == n_rounds
    releases = _statistics(model.fit_ledger_)
    assert releases.count("glm_derivatives") == n_rounds + (delta == 0)


@pytest.mark.parametrize(
    "name", ["logistic-newton", "multinomial", "linear-svc", "sgd-regressor"]
)
def test_noise_free_newton_stops_early(name):
    estimator, _, before = ROUND_CASES[name]
    capped = _round_fit(name, epsilon=INF, max_rounds=1000)
    n_iter = np.ravel(capped.estimator_.n_iter_)[0]
    assert 1 <= n_iter < estimator.max_iter
    # and the free count of clipped rows of a noise-free fit
    assert len(capped.fit_ledger_.events) == 1 + len(before) + n_iter < 1000
    # max_rounds=None caps the rounds at max_iter: the same rounds are run
    default = _round_fit(name, epsilon=INF)
    assert np.ravel(default.estimator_.n_iter_)[0] == n_iter
    assert_array_equal(default.estimator_.coef_, capped.estimator_.coef_)


# -- 3. budget --------------------------------------------------------------------


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize(
    "name, trust",
    [(name, "central") for name in ROUND_CASES]
    + [("logistic-newton", "local"), ("sgd-gradient", "local")],
)
def test_noisy_fit_spends_exactly_its_budget(name, trust, delta):
    model = _round_fit(name, epsilon=2.0, delta=delta, trust=trust, random_state=0)
    spent = model.epsilon_spent_
    if delta == 0:
        assert spent == pytest.approx(2.0, abs=1e-9)
    else:  # rho splits exactly; converting back may round down a little
        assert 2.0 - 1e-6 <= spent <= 2.0 + 1e-9
    n_releases = len(model.fit_ledger_.events)
    assert n_releases >= 2
    pure = {"discrete_laplace", "discrete_linf"}
    mechanisms = {e.mechanism for e in model.fit_ledger_.events}
    assert mechanisms <= (pure if delta == 0 else {"discrete_gaussian"})
    for ledger in model.ledgers_:
        assert len(ledger.events) == n_releases
        assert ledger.spent()[0] == pytest.approx(spent, rel=1e-9)


# -- 4. progress bar ----------------------------------------------------------------


@seeded
@pytest.mark.parametrize("verbose", [0, 1])
def test_verbose_shows_a_progress_bar(verbose, capsys):
    X, y = _bounded(n=300)
    FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=BOUNDS,
        classes=[0, 1],
        max_rounds=3,
        verbose=verbose,
        random_state=0,
    ).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    if verbose:
        assert "LogisticRegression (newton)" in err
        assert "3/3" in err
        assert "round" in err
    else:
        assert err == ""


# -- 5. a party that fails --------------------------------------------------------


@pytest.fixture
def failing_party(monkeypatch):
    """Party "b" (the 1,000-row one) raises in its second glm_derivatives.

    Returns the list that collects every fit ledger created from then on.
    """
    original = fedsk._statistics.STATISTICS["glm_derivatives"]
    calls = []

    def compute(X, y, **params):
        if X.shape[0] == SIZES["b"]:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk full")
        return original.compute(X, y, **params)

    monkeypatch.setitem(
        fedsk._statistics.STATISTICS,
        "glm_derivatives",
        dataclasses.replace(original, compute=compute),
    )
    fit_ledgers = []

    class RecordedLedger(BudgetLedger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            fit_ledgers.append(self)

    monkeypatch.setattr(fedsk._estimator, "BudgetLedger", RecordedLedger)
    return fit_ledgers


@seeded
@pytest.mark.parametrize("trust", ["central", "local"])
def test_failing_party_is_named_and_stays_charged(failing_party, trust):
    # a failure after the first release may depend on the party's rows, so
    # it stays charged (issue 14), and its details stay with the party
    X, y = _bounded()
    accountant = PrivacyAccountant()
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=BOUNDS,
        classes=[0, 1],
        max_rounds=4,
        trust=trust,
        accountant=accountant,
        n_jobs=1,
        random_state=0,
    )
    with pytest.raises(PartyError, match="party 'b': RuntimeError") as e:
        model.fit(X, y, parties=_parties())
    assert "disk full" not in str(e.value)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)

    (fit_ledger,) = failing_party
    ledgers = accountant.ledgers
    # the region's histogram and the Hessian release went through; "b"
    # failed in the gradient release that follows and is charged for it
    hessian, gradient, _ = pure_dp_shares(4)
    training = 1 - REGION_SHARE
    assert _statistics(fit_ledger)[:2] == ["feature_histogram", "glm_derivatives"]
    assert _statistics(ledgers["b"]) == ["feature_histogram"] + ["glm_derivatives"] * 2
    assert ledgers["b"].spent()[0] == pytest.approx(
        REGION_SHARE + training * (hessian + gradient)
    )
    # with local noise "a" and "c" handed over noisy gradients: charged too
    charged = 3 if trust == "local" else 2
    for name in ("a", "c"):
        assert len(ledgers[name].events) == charged
    assert ("'a'" in str(e.value).split("Parties ")[1]) == (trust == "local")


# -- 6. sensitivity is a bound ------------------------------------------------------
#
# For each statistic: rows are clipped as ``fedsk._party.party_release`` does
# (``Clipping.apply`` then ``STATISTICS[name].compute``), and the statistic
# of 20 base rows is compared with that of the same rows plus one record. The
# records include every corner of the clipping box with every label (the
# worst cases), and the coefficients include 0 (largest log-loss and
# squared-hinge curvature), values that put a corner exactly on the hinge's
# kink (its largest curvature), and values up to 1e3 (saturated gradients).
# Each (L1, L2) change must stay within the stated sensitivity; the largest
# L1 changes must also reach it (ratio > 0.99), so the records did probe the
# worst case (measured: 1.0 for both blocks; Hessian L2 ratios 0.5-0.99).

LOWER = np.array([-2.0, 0.0, 1.0, -5.0, 10.0])
UPPER = np.array([2.0, 1.0, 3.0, 5.0, 20.0])
CLIPPINGS = {
    "bounds": dict(lower=LOWER, upper=UPPER),
    "data_norm": dict(data_norm=3.0),
    "bounds-and-data_norm": dict(lower=LOWER, upper=UPPER, data_norm=1.5),
}
LOSSES = {
    "log": dict(loss="log", classes=np.array([0, 1])),
    "log-ovr": dict(loss="log", classes=np.array([0, 1, 2])),
    "log-clipped": dict(loss="log", classes=np.array([0, 1]), gradient_clip=0.5),
    "multinomial": dict(
        loss="multinomial",
        classes=np.array([0, 1, 2]),
        class_weight=np.array([0.5, 3.0, 1.0]),
    ),
    "squared_hinge": dict(
        loss="squared_hinge", classes=np.array([0, 1]), gradient_clip=2.0
    ),
    "squared_hinge-ovr": dict(
        loss="squared_hinge", classes=np.array([0, 1, 2]), gradient_clip=2.0
    ),
    "hinge": dict(loss="hinge", classes=np.array([0, 1])),
    "squared_error": dict(loss="squared_error", gradient_clip=2.0),
}
SLACK = 1e-9  # relative float slack of a bound


def _clipping(kind, loss):
    y_bounds = dict(y_lower=-3.0, y_upper=7.0) if loss == "squared_error" else {}
    return Clipping(**CLIPPINGS[kind], **y_bounds)


def _n_outputs(params):
    classes = params.get("classes")
    if classes is None or len(classes) == 2:
        return 1
    return len(classes)


def _released(statistic, clipping, X, y, params):
    X, y = clipping.apply(X, y)  # as fedsk._party.party_release
    return fedsk._statistics.STATISTICS[statistic].compute(X, y, **params)


def _changes(statistic, clipping, base, records, params):
    """Per block, the (L1, L2, L-infinity) change that each record makes when added."""
    (base_X, base_y), (X, y) = base, records
    without = _released(statistic, clipping, base_X, base_y, params)
    changes = np.zeros((len(X), len(without), 3))
    for i in range(len(X)):
        with_record = _released(
            statistic,
            clipping,
            np.vstack([base_X, X[i : i + 1]]),
            np.append(base_y, y[i]),
            params,
        )
        for b, (a, w) in enumerate(zip(with_record, without)):
            diff = np.ravel(a - w)
            norms = np.abs(diff).sum(), np.linalg.norm(diff), np.abs(diff).max()
            changes[i, b] = norms
    return changes


def _targets(params, rng, n):
    classes = params.get("classes")
    if classes is None:  # raw targets, half of them beyond y_bounds
        return rng.uniform(-20.0, 30.0, size=n)
    return rng.choice(classes, size=n)


def _corner_records(clipping, params):
    """Every corner of the clipping box, with every label (or extreme target)."""
    if clipping.lower is not None:
        corners = np.array(list(itertools.product(*zip(LOWER, UPPER))))
    else:  # equal-magnitude entries: the largest L1 norm at data_norm
        corners = 10.0 * np.array(list(itertools.product([-1.0, 1.0], repeat=5)))
    labels = params.get("classes")
    if labels is None:
        labels = np.array([-1e3, 1e3, 2.0])
    X = np.repeat(corners, len(labels), axis=0)
    return X, np.tile(labels, len(corners))


def _random_records(clipping, params, rng, n):
    if clipping.lower is not None:
        span = UPPER - LOWER
        X = rng.uniform(LOWER - span, UPPER + span, size=(n, 5))
    else:
        X = rng.normal(scale=5.0, size=(n, 5))
    return X, _targets(params, rng, n)


def _coefficient_sets(clipping, params, intercept, rng):
    k = _n_outputs(params)
    p = 5 + intercept
    corner = clipping.apply(_corner_records(clipping, params)[0][:1])[0][0]
    if intercept:
        corner = np.append(corner, 1.0)
    kink = corner / np.sum(corner**2)  # a score of exactly 1 at that corner
    sets = [np.zeros((k, p)), np.tile(kink, (k, 1)), np.tile(-kink, (k, 1))]
    sets += [rng.normal(scale=s, size=(k, p)) for s in (0.3, 3.0, 1e3)]
    return sets


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("kind", list(CLIPPINGS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_glm_derivatives_sensitivity_is_a_bound(loss, kind, intercept):
    rng = np.random.default_rng(0)
    params = dict(LOSSES[loss], intercept=intercept)
    clipping = _clipping(kind, loss)
    base = _random_records(clipping, params, rng, 20)
    corners = _corner_records(clipping, params)
    records = tuple(
        np.concatenate([a, b])
        for a, b in zip(corners, _random_records(clipping, params, rng, 40))
    )
    statistic = fedsk._statistics.STATISTICS["glm_derivatives"]
    ratios = []
    for coef in _coefficient_sets(clipping, params, intercept, rng):
        bound = np.array(statistic.sensitivity(clipping, 5, coef=coef, **params))
        changes = _changes(
            "glm_derivatives", clipping, base, records, dict(params, coef=coef)
        )
        assert bound.shape == (2, 3)  # gradient, Hessian: (L1, L2, Linf) each
        assert np.all(changes <= bound * (1 + SLACK)), (coef, changes.max(axis=0))
        ratios.append(changes.max(axis=0) / bound)
    worst = np.max(ratios, axis=0)
    assert worst[0, 0] > 0.99 and worst[0, 1] > 0.99  # gradient L1, L2
    assert worst[1, 0] > 0.99  # Hessian L1
    # the gradient's coordinate bound within 15% (a record of one entry at
    # data_norm is not among the corners tried); the Hessian's, like its L2
    # bound, may be loose where the curvature's maximum is not reached
    assert worst[0, 2] > 0.85, worst


def _directions(params, intercept, rng, scale):
    return rng.normal(scale=scale, size=(2, _n_outputs(params), 5 + intercept))


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("kind", list(CLIPPINGS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_glm_curvature_sensitivity_is_a_bound(loss, kind, intercept):
    rng = np.random.default_rng(1)
    params = dict(LOSSES[loss], intercept=intercept)
    clipping = _clipping(kind, loss)
    base = _random_records(clipping, params, rng, 20)
    corners = _corner_records(clipping, params)
    records = tuple(
        np.concatenate([a, b])
        for a, b in zip(corners, _random_records(clipping, params, rng, 40))
    )
    statistic = fedsk._statistics.STATISTICS["glm_curvature"]
    for coef in _coefficient_sets(clipping, params, intercept, rng)[:4]:
        for scale in (0.01, 1.0):
            directions = _directions(params, intercept, rng, scale)
            call = dict(params, coef=coef, directions=directions)
            bound = np.array(statistic.sensitivity(clipping, 5, **call))
            changes = _changes("glm_curvature", clipping, base, records, call)
            assert np.all(changes <= bound * (1 + SLACK)), changes.max(axis=0)


@pytest.mark.parametrize("loss", ["log", "log-ovr", "multinomial", "squared_error"])
def test_glm_curvature_is_the_hessian_on_the_directions(loss):
    rng = np.random.default_rng(2)
    params = dict(LOSSES[loss], intercept=True)
    clipping = _clipping("bounds", loss)
    X, y = clipping.apply(*_random_records(clipping, params, rng, 50))
    k = _n_outputs(params)
    coef = rng.normal(scale=0.3, size=(k, 6))
    directions = _directions(params, True, rng, 1.0)
    derivatives = fedsk._statistics.STATISTICS["glm_derivatives"]
    full = derivatives.compute(X, y, coef=coef, **params)
    (hessian_only,) = derivatives.compute(X, y, coef=coef, gradient=False, **params)
    assert_allclose(hessian_only, full[1])
    if loss == "multinomial":
        hessian = symmetric_from_upper(full[1], k * 6)
    else:
        hessian = np.zeros((k * 6, k * 6))
        for j, row in enumerate(np.reshape(full[1], (k, -1))):
            hessian[j * 6 : (j + 1) * 6, j * 6 : (j + 1) * 6] = symmetric_from_upper(
                row, 6
            )
    flat = directions.reshape(2, -1)
    (upper,) = fedsk._statistics.STATISTICS["glm_curvature"].compute(
        X, y, coef=coef, directions=directions, **params
    )
    assert_allclose(symmetric_from_upper(upper, 2), flat @ hessian @ flat.T, rtol=1e-10)


@settings(max_examples=150, deadline=None, database=None)
@given(
    loss=st.sampled_from(list(LOSSES)),
    kind=st.sampled_from(list(CLIPPINGS)),
    record=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=5, max_size=5),
    label=st.integers(0, 2),
    target=st.floats(-1e4, 1e4, allow_nan=False),
    coef_scale=st.sampled_from([0.0, 1e-2, 1.0, 1e2, 1e5]),
    seed=st.integers(0, 2**32 - 1),
    intercept=st.booleans(),
)
def test_glm_derivatives_sensitivity_property(
    loss, kind, record, label, target, coef_scale, seed, intercept
):
    rng = np.random.default_rng(seed)
    params = LOSSES[loss]
    clipping = _clipping(kind, loss)
    classes = params.get("classes")
    y = target if classes is None else classes[label % len(classes)]
    coef = rng.normal(scale=coef_scale, size=(_n_outputs(params), 5 + intercept))
    params = dict(params, coef=coef, intercept=intercept)
    base = _random_records(clipping, params, rng, 5)
    changes = _changes(
        "glm_derivatives", clipping, base, (np.array([record]), [y]), params
    )
    bound = fedsk._statistics.STATISTICS["glm_derivatives"].sensitivity(
        clipping, 5, **params
    )
    assert np.all(changes[0] <= np.array(bound) * (1 + SLACK))


def _total_loss(loss, coef, design, y, classes, weights):
    """Weighted summed loss whose derivative factors fedsk._losses computes."""
    scores = design @ coef.T
    if loss == "multinomial":
        picked = scores[np.arange(len(y)), np.searchsorted(classes, y)]
        per_record = np.logaddexp.reduce(scores, axis=1) - picked
    elif loss == "log":
        s = scores[:, 0]
        per_record = np.logaddexp(0.0, s) - (y == classes[-1]) * s
    elif loss == "squared_hinge":
        sign = np.where(y == classes[-1], 1.0, -1.0)
        per_record = np.maximum(0.0, 1.0 - sign * scores[:, 0]) ** 2
    else:
        per_record = (scores[:, 0] - y) ** 2 / 2
    return np.sum(weights * per_record)


@pytest.mark.parametrize(
    "loss", ["log", "multinomial", "squared_hinge", "squared_error"]
)
def test_glm_derivatives_are_the_loss_derivatives(loss):
    # central differences of the weighted summed loss (steps 1e-5 for the
    # gradient, 1e-4 for the Hessian), with class weights
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(40, 3))
    classes = np.array([0, 1, 2]) if loss == "multinomial" else np.array([0, 1])
    y = rng.choice(classes, size=40)
    class_weight = np.array([0.5, 3.0, 1.0])[: len(classes)]
    params = dict(loss=loss, classes=classes, class_weight=class_weight)
    if loss == "squared_error":
        y = rng.normal(size=40)
        params = dict(loss=loss)
        class_weight = None
    weights = np.ones(40) if class_weight is None else class_weight[y]
    k = 3 if loss == "multinomial" else 1
    coef = rng.normal(scale=0.5, size=(k, 4))
    design = np.column_stack([X, np.ones(40)])
    gradient, upper = fedsk._statistics.STATISTICS["glm_derivatives"].compute(
        X, y, coef=coef, **params
    )

    def total(flat):
        return _total_loss(loss, flat.reshape(k, 4), design, y, classes, weights)

    def numeric_gradient(flat, h=1e-5):
        steps = np.eye(flat.size) * h
        return np.array([(total(flat + e) - total(flat - e)) / (2 * h) for e in steps])

    flat = coef.ravel()
    assert_allclose(gradient, numeric_gradient(flat), rtol=1e-5, atol=1e-6)
    h = 1e-4
    hessian = np.array(
        [
            (numeric_gradient(flat + e) - numeric_gradient(flat - e)) / (2 * h)
            for e in np.eye(flat.size) * h
        ]
    )
    expected = hessian[np.triu_indices(flat.size)]
    assert_allclose(np.ravel(upper), expected, rtol=1e-4, atol=1e-4)


def test_log_loss_clip_changes_no_record_on_its_side_of_the_boundary():
    # capped at 0.5, p - y is unchanged wherever the score has the sign of
    # the label (|p - y| <= 0.5 there), and at score 0 (a fit's start);
    # beyond the boundary it is 0.5 with no curvature
    scores = np.array([[-3.0], [-0.5], [0.0], [0.5], [3.0]] * 2)
    y = np.repeat([0, 1], 5)
    classes = np.array([0, 1])
    g, h = derivative_factors(scores, y, "log", classes)
    g_clip, h_clip = derivative_factors(scores, y, "log", classes, gradient_clip=0.5)
    right_side = (scores[:, 0] == 0) | ((scores[:, 0] > 0) == (y == 1))
    assert_allclose(g_clip[right_side], g[right_side])
    assert_allclose(h_clip[right_side], h[right_side])
    assert_allclose(np.abs(g_clip[~right_side]), 0.5)
    assert np.all(h_clip[~right_side] == 0)


@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_noisy_logistic_regression_releases_half_the_gradient_noise(monkeypatch, delta):
    # under pure DP every gradient release of a noisy fit carries the clip,
    # and its noise is half of what the unclipped loss would need at the
    # same share; with delta > 0 the full Newton rounds keep the exact loss
    seen = []
    real = Federation.release

    def recording(self, request, *args, **kwargs):
        release = real(self, request, *args, **kwargs)
        if request.statistic == "glm_derivatives" and request.params["gradient"]:
            seen.append((request, release.noise_std[0]))
        return release

    monkeypatch.setattr(Federation, "release", recording)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(3000, 3))
    y = (X[:, 0] + rng.logistic(size=3000) > 0).astype(int)
    FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        delta=delta,
        bounds=([-1] * 3, [1] * 3),
        classes=[0, 1],
    ).fit(X, y, parties=rng.choice(3, 3000))
    assert len(seen) == (4 if delta > 0 else LONG_FIT_ROUNDS)  # one per round
    if delta > 0:
        assert all(request.params["gradient_clip"] is None for request, _ in seen)
        return
    statistic = fedsk._statistics.STATISTICS["glm_derivatives"]
    for request, noise in seen:
        params = request.params
        assert params["gradient_clip"] == 0.5
        sensitivity = statistic.sensitivity(request.clipping, 3, **params)[0]
        unclipped = dict(params, gradient_clip=None)
        assert sensitivity == pytest.approx(
            np.divide(statistic.sensitivity(request.clipping, 3, **unclipped)[0], 2)
        )
        # the K-norm mechanism on 4 coordinates (3 features and the
        # intercept), each moved by at most linf: std sqrt(5 * 6 / 3) * linf
        # / epsilon (within the grid's rounding)
        assert noise == pytest.approx(
            math.sqrt(10) * sensitivity[2] / request.epsilon, rel=0.01
        )


@pytest.mark.parametrize("update_clip", [0.05, 0.5])
@pytest.mark.parametrize(
    "estimator", [LogisticRegression(), LinearSVC()], ids=["logistic", "svc"]
)
def test_local_update_sensitivity_is_a_bound(estimator, update_clip):
    rng = np.random.default_rng(1)
    clipping = _clipping("bounds", "log")
    params = dict(
        coef=rng.normal(size=(1, 6)),
        estimator=estimator,
        classes=np.array([0, 1]),
        intercept=True,
        update_clip=update_clip,
    )
    base_X = rng.uniform(LOWER, UPPER, size=(30, 5))
    base = base_X, (base_X @ [1, -1, 1, 0.2, 0.1] > 2.5).astype(int)
    assert 5 <= base[1].sum() <= 25
    corners, labels = _corner_records(clipping, params)
    picked = rng.choice(len(corners), size=12, replace=False)
    records = corners[picked], labels[picked]
    (update,) = _released("local_update", clipping, *base, params)
    if update_clip == 0.05:  # the clip is active
        assert np.linalg.norm(update) == pytest.approx(update_clip)
    changes = _changes("local_update", clipping, base, records, params)
    statistic = fedsk._statistics.STATISTICS["local_update"]
    ((l1, l2),) = statistic.sensitivity(clipping, 5, **params)
    assert l2 == pytest.approx(2 * update_clip)
    assert np.all(changes[:, 0, 1] <= l2 * (1 + SLACK))
    assert np.all(changes[:, 0, 0] <= l1 * (1 + SLACK))
    assert changes.max() > 0  # a record does move the update


# -- 7. post-processing -------------------------------------------------------------


def test_regularised_psd_adds_a_scalar_to_the_diagonal_only():
    psd = np.array([[2.0, 1.0], [1.0, 2.0]])  # unchanged by the projection
    assert_allclose(regularised_psd(psd, 0.5), [[2.5, 1.0], [1.0, 2.5]])
    # eigenvalues 3 and -1: the -1 is projected to 0, then the ridge added
    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert_allclose(regularised_psd(indefinite, 0.25), [[1.75, 1.5], [1.5, 1.75]])
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(4, 4))
    noisy = noisy + noisy.T
    projected = regularised_psd(noisy, 0.0)
    assert np.linalg.eigvalsh(projected).min() >= -1e-12
    assert_allclose(regularised_psd(noisy, 3.0), projected + 3.0 * np.eye(4))
    assert_allclose(regularised_psd(noisy, 3.0 * np.eye(4)), projected + 3 * np.eye(4))


# -- 8. bad input -------------------------------------------------------------------


def _assert_nothing_charged(accountant):
    assert all(ledger.events == [] for ledger in accountant.ledgers.values())


@pytest.mark.parametrize(
    "estimator, name",
    [
        (LogisticRegression(l1_ratio=1), "l1_ratio"),
        (LinearSVC(penalty="l1", dual=False), "penalty"),
        (LinearSVC(multi_class="crammer_singer"), "multi_class"),
        (LinearSVC(class_weight="balanced"), "class_weight"),
        (SGDClassifier(loss="perceptron"), "loss"),
        (SGDClassifier(penalty="l1"), "penalty"),
        (SGDClassifier(class_weight={0: 2.0}), "class_weight"),
        (SGDClassifier(early_stopping=True), "early_stopping"),
        (SGDClassifier(average=True), "average"),
        (SGDRegressor(loss="huber"), "loss"),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v),
)
def test_unsupported_hyperparameter(estimator, name):
    X, y = _bounded(n=300)
    params = {"y_bounds": (-5.0, 5.0)} if isinstance(estimator, SGDRegressor) else {}
    accountant = PrivacyAccountant()
    model = FederatedEstimator(
        estimator,
        epsilon=1.0,
        bounds=BOUNDS,
        classes=None if params else [0, 1],
        accountant=accountant,
        **params,
    )
    with pytest.raises(ValueError, match=f"{name}=.*is not supported"):
        model.fit(X, y, parties=_parties()[:300])
    _assert_nothing_charged(accountant)


@pytest.mark.parametrize(
    "estimator, name",
    [
        (LogisticRegression(C=-1.0), "C"),
        (LinearSVC(C=0.0), "C"),
        (SGDClassifier(alpha=-1.0), "alpha"),
        (SGDRegressor(alpha=-1.0), "alpha"),
    ],
)
def test_out_of_range_hyperparameter(estimator, name):
    X, y = _bounded(n=300)
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        FederatedEstimator(estimator, epsilon=INF).fit(X, y)


def test_class_weight_with_an_unknown_label():
    X, y = _bounded(n=300)
    accountant = PrivacyAccountant()
    model = FederatedEstimator(
        LogisticRegression(class_weight={0: 1.0, 5: 2.0}),
        epsilon=1.0,
        bounds=BOUNDS,
        classes=[0, 1],
        accountant=accountant,
    )
    with pytest.raises(ValueError, match=r"class_weight has labels \[5\]"):
        model.fit(X, y, parties=_parties()[:300])
    _assert_nothing_charged(accountant)


def test_negative_class_weight_is_refused_before_any_release():
    # issue 14, item 6: the sensitivity used max(w), so {0: -50, 1: 1} was
    # noised for a weight of 1 while a record moved the gradient 50 times more
    X, y = _bounded(n=300)
    accountant = PrivacyAccountant()
    model = FederatedEstimator(
        LogisticRegression(class_weight={0: -50.0, 1: 1.0}),
        epsilon=1.0,
        bounds=BOUNDS,
        classes=[0, 1],
        accountant=accountant,
    )
    with pytest.raises(ValueError, match=r"class_weight must map every class to a"):
        model.fit(X, y, parties=_parties()[:300])
    _assert_nothing_charged(accountant)


def test_glm_derivatives_sensitivity_uses_the_largest_absolute_weight():
    statistic = fedsk._statistics.STATISTICS["glm_derivatives"]
    clipping = Clipping(np.full(3, -1.0), np.full(3, 1.0))
    coef = np.zeros((1, 4))

    def bound(weights):
        return statistic.sensitivity(
            clipping, 3, coef, "log", classes=[0, 1], class_weight=np.array(weights)
        )

    assert bound([-50.0, 1.0]) == bound([50.0, 1.0])
    assert bound([-50.0, 1.0])[0][0] == pytest.approx(50 * bound([1.0, 1.0])[0][0])


@pytest.mark.parametrize(
    "params, name",
    [(dict(strategy="bogus"), "strategy"), (dict(max_rounds=0), "max_rounds")],
)
def test_bad_strategy_or_rounds(params, name):
    X, y = _bounded(n=300)
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        FederatedEstimator(LogisticRegression(), epsilon=INF, **params).fit(X, y)


@pytest.mark.parametrize(
    "estimator, params, message",
    [
        (LinearSVC(), {}, "bounds is required when epsilon is finite"),
        (
            SGDClassifier(),
            {},
            "bounds is required when epsilon is finite",
        ),
        (
            SGDRegressor(),
            dict(y_bounds=(-5.0, 5.0)),
            "bounds is required when epsilon is finite",
        ),
        (
            SGDRegressor(),
            dict(bounds=BOUNDS),
            "y_bounds is required for a regressor",
        ),
    ],
)
def test_noisy_fit_without_bounds(estimator, params, message):
    X, y = _bounded(n=300)
    accountant = PrivacyAccountant()
    with pytest.raises(ValueError, match=message):
        FederatedEstimator(
            estimator, epsilon=1.0, classes=[0, 1], accountant=accountant, **params
        ).fit(X, y, parties=_parties()[:300])
    _assert_nothing_charged(accountant)


@pytest.mark.parametrize("estimator", [LogisticRegression(), LinearSVC()])
def test_y_bounds_do_not_touch_class_labels(estimator):
    X, _, y, _ = _data()
    plain = FederatedEstimator(estimator, epsilon=INF).fit(X, y)
    try:
        with_y_bounds = FederatedEstimator(
            estimator, epsilon=INF, y_bounds=(0.0, 2.0)
        ).fit(X, y)
    except ValueError as error:
        assert "y_bounds" in str(error)
    else:
        assert_allclose(with_y_bounds.estimator_.coef_, plain.estimator_.coef_)


def test_tree_strategy_names_are_refused_by_linear_models():
    X, y = _bounded()
    model = FederatedEstimator(LogisticRegression(), epsilon=INF, strategy="greedy")
    with pytest.raises(ValueError, match="does not apply to linear models"):
        model.fit(X, y, parties=_parties())


# -- 8. least squares: the private region -----------------------------------------


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_least_squares_spends_a_share_on_the_private_region(delta):
    X, _ = _bounded()
    y = X @ [1.0, 0.02, -0.5, 0.1, 2.0]
    model = FederatedEstimator(
        Ridge(),
        epsilon=2.0,
        delta=delta,
        bounds=BOUNDS,
        y_bounds=(-100.0, 100.0),
        random_state=0,
    ).fit(X, y, parties=_parties())
    events = model.fit_ledger_.events
    assert [e.statistic for e in events] == ["feature_histogram", "linear_moments"]
    if delta == 0:
        share = SPREAD_SHARE * 2.0
        assert [e.epsilon for e in events] == pytest.approx([share, 2.0 - share])
    # the target spans 1/20 of its public range: the region finds it, so
    # the fit is close to the noise-free one (R^2 1)
    assert model.score(X, y) > 0.95


@seeded
def test_private_region_keeps_rare_binary_values():
    # 3% of the rows have the value 1 of a 0/1 feature, below the region's 2%
    # to 98% quantiles: the region must keep the public bounds of that
    # feature (its quantiles are too close), not clip its 1s onto 0
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0, 1, N), rng.uniform(0, 1, N) < 0.03])
    y = X @ [1.0, 0.5] + rng.normal(scale=0.1, size=N)
    model = FederatedEstimator(
        Ridge(), epsilon=1.0, bounds=(0.0, 1.0), y_bounds=(-10.0, 10.0), random_state=0
    ).fit(X, y, parties=_parties())
    assert model.estimator_.coef_[1] == pytest.approx(0.5, abs=0.2)


class _HistogramSession:
    """Just what ``private_region`` reads: the histogram with Laplace noise of
    a given standard deviation on every bin, and the public clipping."""

    def __init__(self, X, clipping, noise_std, seed, binary_features=None):
        self.X, self.clipping, self.noise_std = X, clipping, noise_std
        self.n_features = X.shape[1]
        self.binary_features = binary_features
        self.rng = np.random.default_rng(seed)

    def release(self, statistic, fraction, edges, include_target, columns):
        assert statistic == "feature_histogram" and not include_target
        mapped, _ = self.clipping.apply(self.X, None)
        (counts,) = fedsk._statistics.STATISTICS[statistic].compute(
            mapped, None, edges=edges, columns=columns
        )
        scale = self.noise_std / np.sqrt(2)
        noisy = counts + self.rng.laplace(scale=scale, size=counts.shape)
        return fedsk._federation.Release([noisy], [self.noise_std])


@pytest.mark.parametrize("seed", range(5))
def test_private_region_of_a_classifier_ignores_noise_in_sparse_tails(seed):
    # a delay-like feature (most rows near 0 of a wide public range
    # [-60, 360], a sparse tail), a 0/1 feature with 3% of ones and one
    # whose rows fill a narrow band inside its range. Noise (std 300 on
    # each of 32 bins, 20,000 rows) in the empty tail bins pushed the
    # delay's 98% quantile towards its public bound; a linear classifier's
    # region takes only the run of bins above REGION_RUN_LEVEL noise
    # standard deviations around the largest. The 0/1 feature keeps its
    # public bounds (its quantiles are close, at a bound); the narrow band
    # is clipped to.
    rng = np.random.default_rng(seed)
    n = 20_000
    X = np.column_stack(
        [
            np.minimum(rng.exponential(15.0, n) - 10.0, 360.0),
            rng.uniform(0, 1, n) < 0.03,
            rng.uniform(40.0, 60.0, n),
        ]
    )
    public = Clipping(np.array([-60.0, 0.0, 0.0]), np.array([360.0, 1.0, 100.0]))
    session = _HistogramSession(X, public, noise_std=300.0, seed=seed)
    region = private_region(session, 0.1, target=False, run_level=REGION_RUN_LEVEL)
    assert 30.0 <= region.upper[0] <= 100.0  # 98% quantile: 49
    assert (region.lower[1], region.upper[1]) == (0.0, 1.0)
    # the band [40, 60]: region edges are bin edges (100 / 32 apart)
    assert 35.0 <= region.lower[2] <= 45.0 and 55.0 <= region.upper[2] <= 65.0
    # least squares' level (negative counts only are empty) widens the delay
    wide = private_region(
        _HistogramSession(X, public, noise_std=300.0, seed=seed), 0.1, target=False
    )
    assert wide.upper[0] > region.upper[0]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("share, noise_std", [(0.4, 300.0), (0.15, 600.0)])
def test_private_region_of_a_classifier_keeps_both_values_of_a_scaled_indicator(
    seed, share, noise_std
):
    # A 0/1 column after a StandardScaler (examples/regions.py's pipeline):
    # ``share`` of 20,000 rows at 1.22, the others at -0.82, on public bounds
    # of three standard units, 11 of its 32 bins apart. The run of bins
    # around the largest one stopped short of the other value, so the region
    # collapsed onto one of them and the feature was constant for the model
    # (test ROC AUC 0.87 -> 0.76 on Ecdat/HI at epsilon 1e6). A bin that far
    # above the noise is rows, and must be kept: 27 noise standard
    # deviations, and 5 (a scaled count column at epsilon 0.3).
    rng = np.random.default_rng(seed)
    ones = rng.uniform(size=20_000) < share
    X = np.where(ones, 1.22, -0.82)[:, None]
    public = Clipping(np.array([-3.0]), np.array([3.0]))
    session = _HistogramSession(X, public, noise_std=noise_std, seed=seed)
    region = private_region(session, 0.1, target=False, run_level=REGION_RUN_LEVEL)
    assert region.lower[0] <= -0.82 and region.upper[0] >= 1.22


@pytest.mark.parametrize("seed", range(3))
def test_private_region_clips_less_where_the_noise_allows(seed):
    # N(50, 15) on a public [0, 100]: the 2% quantile (19.2) is in the bin
    # starting at 18.75, the 1% (15.1) in the one at 12.5. With a total far
    # above fine_level noise standard deviations the region's lower edge is
    # the 1% quantile's; with a total below, or no level, the 2%'s (with
    # noise of std 25 that may be a bin off: both are given the same draws).
    rng = np.random.default_rng(seed)
    X = rng.normal(50.0, 15.0, (20_000, 1)).clip(0.0, 100.0)
    public = Clipping(np.array([0.0]), np.array([100.0]))

    def lower(noise_std, fine_level):
        session = _HistogramSession(X, public, noise_std=noise_std, seed=seed)
        region = private_region(session, 0.1, target=False, fine_level=fine_level)
        return region.lower[0]

    assert lower(2.0, 1000.0) == 12.5  # total / noise: 10,000
    assert lower(2.0, None) == 18.75
    assert lower(25.0, 1000.0) == lower(25.0, None)  # 800: the same noise


def _binary_set(seed=0, n=3000):
    """A band in [40, 60] of a public [0, 100], three 0/1 features; labels."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(40.0, 60.0, n), rng.uniform(size=(n, 3)) < 0.4])
    y = (X[:, 0] - 50 + 5 * X[:, 1] + rng.logistic(size=n) * 3 > 0).astype(int)
    return X, y, ([0.0, 0, 0, 0], [100.0, 1, 1, 1])


def _binary_fit(X, y, bounds, binary):
    """A simulated-noise LogisticRegression fit with ``binary_features``."""
    return FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=bounds,
        binary_features=binary,
        classes=[0, 1],
        random_state=0,
    ).fit(X, y, parties=_parties())


def _recorded_releases(monkeypatch):
    """Every (request, release) of the fits that follow."""
    seen = []
    real = Federation.release

    def recording(self, request, *args, **kwargs):
        release = real(self, request, *args, **kwargs)
        seen.append((request, release))
        return release

    monkeypatch.setattr(Federation, "release", recording)
    return seen


# (n + 1) (n + 2) / 3 over 2 l1^2: the K-norm's noise variance per
# coordinate against Laplace's, for n coordinates each moved by at most 1 and
# an L1 bound l1 (n where every coordinate can move at once)
def _k_norm_std_ratio(n, l1=None):
    return math.sqrt((n + 1) * (n + 2) / 3 / (2 * (l1 or n) ** 2))


@seeded
@pytest.mark.parametrize("trust", ["central", "local"])
def test_pure_dp_rounds_use_k_norm_noise_unless_it_is_split(monkeypatch, trust):
    # A record moves each coordinate of the gradient (p = 5 with the
    # intercept), of the Hessian's upper triangle (15) and of the 2 x 2
    # curvature (3) by at most the factor's bound, so with one party's or
    # the coordinator's own noise the rounds use the L-infinity K-norm
    # mechanism: its noise std is 0.53, 0.45 and 0.46 times that of the
    # Laplace shares secure aggregation must keep. The region's histogram
    # keeps Laplace in both (a record adds 1 to one bin of 32).
    X, y, bounds = _binary_set()
    releases = {}
    seen = _recorded_releases(monkeypatch)
    for mode in (trust, "secure"):
        model = FederatedEstimator(
            LogisticRegression(),
            epsilon=1.0,
            bounds=bounds,
            classes=[0, 1],
            trust=mode,
            random_state=0,
        ).fit(X, y, parties=_parties())
        releases[mode] = list(seen)
        seen.clear()
        mechanisms = {e.statistic: e.mechanism for e in model.fit_ledger_.events}
        k_norm = "discrete_linf" if mode == trust else "discrete_laplace"
        assert mechanisms == {
            "feature_histogram": "discrete_laplace",
            "glm_derivatives": k_norm,
            "glm_curvature": k_norm,
        }
    # each kind of release has one noise level per fit, whatever the rounds
    stds = {
        mode: {
            (request.statistic, request.params.get("hessian")): release.noise_std[0]
            for request, release in seen
        }
        for mode, seen in releases.items()
    }
    assert stds[trust].keys() == stds["secure"].keys()
    # local noise: every party's own, in full (sqrt(3) times the central)
    parties = 1.0 if trust == "central" else math.sqrt(3)
    expected = {
        ("feature_histogram", None): 1.0,
        ("glm_derivatives", False): _k_norm_std_ratio(5),  # the gradients
        ("glm_derivatives", True): _k_norm_std_ratio(15),  # the Hessian
        # the upper triangle of a 2 x 2 matrix: entries at most 1 each, at
        # most (1 + 1)^2 in L1 (the sensitivity of glm_curvature)
        ("glm_curvature", None): _k_norm_std_ratio(3, l1=4),
    }
    assert stds[trust].keys() == expected.keys()
    for key, ratio in expected.items():
        ours, theirs = stds[trust][key], stds["secure"][key]
        assert ours / theirs == pytest.approx(parties * ratio, rel=3e-3), key


@seeded
def test_binary_features_are_left_out_of_the_region_histogram(monkeypatch):
    # one record adds a count to every column histogrammed: with three of
    # four features declared binary, the histogram covers one column, the
    # parties compute nothing on the others, and its noise is a quarter;
    # the binary features keep their public bounds in every later release.
    # At this budget only the quarter noise finds the band [40, 60]
    # (simulated noise: the region without binary features is [31, 88]).
    X, y, bounds = _binary_set()
    noise, band = {}, {}
    for binary in (None, [1, 2, 3]):
        seen = _recorded_releases(monkeypatch)
        _binary_fit(X, y, bounds, binary)
        (request, release), *rounds = seen
        assert request.statistic == "feature_histogram"
        columns = (0, 1, 2, 3) if binary is None else (0,)
        assert request.params["columns"] == columns
        assert release.blocks[0].shape == (len(columns), 32)
        noise[binary is None] = release.noise_std[0]
        for later, _ in rounds:
            assert_array_equal(later.clipping.lower[1:], 0.0)
            assert_array_equal(later.clipping.upper[1:], 1.0)
        region = rounds[0][0].clipping
        band[binary is None] = (region.lower[0], region.upper[0])
    assert noise[True] == pytest.approx(4 * noise[False], rel=0.01)
    assert 35.0 <= band[False][0] and band[False][1] <= 65.0
    assert band[True][1] - band[True][0] > 40.0


@seeded
def test_binary_features_by_index_mask_or_name_fit_the_same_model():
    pd = pytest.importorskip("pandas")
    X, y, bounds = _binary_set()
    frame = pd.DataFrame(X, columns=["band", "a", "b", "c"])
    models = [
        _binary_fit(data, y, bounds, binary)
        for data, binary in [
            (X, [1, 2, 3]),
            (X, [False, True, True, True]),
            (frame, ["a", "b", "c"]),
        ]
    ]
    for model in models[1:]:
        assert_array_equal(model.estimator_.coef_, models[0].estimator_.coef_)
    undeclared = _binary_fit(X, y, bounds, None)
    assert not np.array_equal(undeclared.estimator_.coef_, models[0].estimator_.coef_)
    # an empty list declares none
    assert_array_equal(
        _binary_fit(X, y, bounds, []).estimator_.coef_, undeclared.estimator_.coef_
    )


def test_all_binary_features_release_no_histogram():
    X, y, _ = _binary_set()
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=(0.0, 1.0),
        binary_features=[True] * 3,
        classes=[0, 1],
    ).fit(X[:, 1:], y, parties=_parties())
    assert "feature_histogram" not in _statistics(model.fit_ledger_)
    assert model.epsilon_spent_ == pytest.approx(1.0)


@pytest.mark.parametrize(
    "binary, bounds, message",
    [
        ([1], None, "needs bounds=\\(lower, upper\\)"),
        ([1], "private", "needs bounds=\\(lower, upper\\)"),
        ([True, False], (0.0, 100.0), "needs 4 entries"),
        ([4], (0.0, 100.0), "indices \\[4\\] are outside \\[0, 4\\)"),
        ([-1], (0.0, 100.0), "indices \\[-1\\] are outside"),
        (["a"], (0.0, 100.0), "the columns have none"),
        ([0.5], (0.0, 100.0), "must be feature indices"),
    ],
)
def test_bad_binary_features_are_refused_before_any_release(binary, bounds, message):
    X, y, _ = _binary_set()
    accountant = PrivacyAccountant(epsilon=10.0)
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=bounds,
        data_norm=None if bounds else 2.0,
        binary_features=binary,
        classes=[0, 1],
        accountant=accountant,
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, parties=_parties())
    assert all(ledger.spent()[0] == 0 for ledger in accountant.ledgers.values())


def test_unknown_binary_feature_names_are_refused():
    pd = pytest.importorskip("pandas")
    X, y, bounds = _binary_set()
    frame = pd.DataFrame(X, columns=["band", "a", "b", "c"])
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=1.0,
        bounds=bounds,
        binary_features=["a", "d"],
        classes=[0, 1],
    )
    with pytest.raises(ValueError, match="no feature is named \\['d'\\]"):
        model.fit(frame, y, parties=_parties())


def test_feature_histogram_of_some_columns_counts_those_only():
    statistic = fedsk._statistics.STATISTICS["feature_histogram"]
    edges = np.linspace(-1.0, 1.0, 5)
    X = np.array([[-0.9, 0.1, 0.9], [-0.1, 0.6, 0.2]])
    (counts,) = statistic.compute(X, None, edges=edges, columns=(2, 0))
    assert_array_equal(counts, [[0, 0, 1, 1], [1, 1, 0, 0]])
    assert statistic.shapes(3, edges=edges, columns=(2, 0)) == [(2, 4)]
    # one record adds a count to each of the two columns
    assert statistic.sensitivity(Clipping(), 3, edges=edges, columns=(2, 0)) == [
        (2.0, pytest.approx(math.sqrt(2)))
    ]
    for columns in [(0, 0), (3,), (-1,), (True,), (0.0,)]:
        with pytest.raises(ValueError, match="distinct feature indices"):
            statistic.shapes(3, edges=edges, columns=columns)


def test_augmented_linear_moments_hold_the_five_blocks():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    statistic = fedsk._statistics.STATISTICS["linear_moments"]
    gram, xty, sum_x, sum_y, count = statistic.compute(X, y)
    (upper,) = statistic.compute(X, y, augmented=True)
    full = symmetric_from_upper(upper, 6)
    assert_allclose(full[np.triu_indices(4)], gram)
    assert_allclose(full[:4, 4], xty)
    assert_allclose(full[:4, 5], sum_x)
    assert_allclose([full[4, 5], full[5, 5]], np.append(sum_y, count))
    assert full[4, 4] == pytest.approx(y @ y)


@pytest.mark.parametrize("kind", list(CLIPPINGS))
def test_augmented_linear_moments_sensitivity_is_a_bound(kind):
    rng = np.random.default_rng(1)
    params = dict(augmented=True)
    clipping = _clipping(kind, "squared_error")
    base = _random_records(clipping, {}, rng, 20)
    corners = _corner_records(clipping, {})
    records = tuple(
        np.concatenate([a, b])
        for a, b in zip(corners, _random_records(clipping, {}, rng, 40))
    )
    statistic = fedsk._statistics.STATISTICS["linear_moments"]
    bound = np.array(statistic.sensitivity(clipping, 5, **params))
    changes = _changes("linear_moments", clipping, base, records, params)
    assert np.all(changes <= bound * (1 + SLACK)), changes.max(axis=0)
    # and it is attained within a factor 2 by a corner (not a loose bound)
    assert np.all(changes.max(axis=0) >= bound / 2)


@seeded
@pytest.mark.parametrize("estimator", [LogisticRegression(), LinearSVC()])
def test_noisy_classifier_clips_into_a_private_region(estimator):
    # a skewed feature (most rows below 30 of its public range [0, 100])
    # decides the label: the fit first releases a histogram for the region
    # (a tenth of the budget), trains in it and maps back to the features'
    # units. With noise negligible it predicts as scikit-learn on the rows;
    # its coefficients differ by the clipping and, under pure DP, by the
    # log loss's gradient factor capped at 0.5 (a wrongly mapped region
    # would scale the first one by the region's width, about 3).
    rng = np.random.default_rng(0)
    n = 6000
    X = np.column_stack([rng.exponential(8.0, n), rng.uniform(0, 1, n)])
    y = (X[:, 0] + rng.logistic(size=n) > 8).astype(int)
    model = FederatedEstimator(
        clone(estimator),
        epsilon=1e6,
        bounds=([0.0, 0.0], [100.0, 1.0]),
        classes=[0, 1],
        random_state=0,
    ).fit(X, y, parties=rng.choice(list("abc"), n))
    events = model.fit_ledger_.events
    assert events[0].statistic == "feature_histogram"
    assert events[0].epsilon == pytest.approx(REGION_SHARE * 1e6)
    pooled = clone(estimator).fit(X, y)
    assert model.score(X, y) >= pooled.score(X, y) - 0.005
    assert np.mean(model.predict(X) == pooled.predict(X)) >= 0.99
    assert_allclose(model.estimator_.coef_[0, 0], pooled.coef_[0, 0], rtol=0.35)
