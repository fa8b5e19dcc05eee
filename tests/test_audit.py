"""Empirical privacy audits of every release path, with power controls.

Each audit runs a real release (``Federation.release``, the party-side code
included) on two neighbouring datasets, many times, and bounds the release's
epsilon from below with :func:`fedsk.privacy.audit_release`'s statistics.
The pass rule: the lower bound does not exceed the claimed epsilon (the one
charged to the party's ledger). A bound below the claim proves something
only if the same audit catches a release with less noise, so every audit is
paired with a power control: the same release with its noise scale cut (by
10% where the trial count can see it) must give a bound above the claim.

How the trials are vectorised. The exact statistic of a dataset is
deterministic, so one real release is run per dataset with the noise
sampler (``GridEncoding.noise``) replaced by zeros and recorded: that gives
the encoding the federation calibrated, the exact encoded total, and how
many noise draws (shares) were added to it. The trials then add real noise
from the same ``GridEncoding.noise`` (through a copy of the encoding whose
one block holds all trials), as many draws as the release made; the
L-infinity K-norm mechanism's coordinates are drawn jointly, one vector
per trial.

Where the tightest event lies. With discrete Laplace noise of scale ``t``
and exact totals ``a`` (without the record) and ``b`` (with it), the event
"every coordinate that differs is at or beyond ``b``, away from ``a``" has
probability exactly ``exp(|b - a|_1 / t)`` times larger under ``b``: the
likelihood ratio is at its maximum there (:func:`orthant_reduction`). With
``k`` differing coordinates the event has probability about ``2**-k``, so
each worst case is chosen with as few differing coordinates as the
statistic allows (one feature). Gaussian releases are audited through the
projection on ``b - a`` (their likelihood-ratio statistic).

Trial counts and mutations (claimed epsilon 2, pure DP):

===========================  =========  ================  =================
differing coordinates ``k``  trials     mutant noise      mutant noise
                             (default)  (default run)     (slow run, 10^6)
===========================  =========  ================  =================
1 to 3                       10^5       0.9 x             0.95 x
5                            10^5       0.8 x             0.9 x
===========================  =========  ================  =================

At 10^5 trials the Clopper-Pearson bound on the tight event loses about
0.02 (k = 1) to 0.15 (k = 5) of epsilon at 95% confidence, which fixes the
smallest mutation each audit can see: the expected bound of each mutant
is at least 5 standard deviations of the bound above the claim. Gaussian
releases at (2, 1e-3) have rare tight events: they are audited at 3 x 10^5
trials with the 0.7 x mutant (10^6 and 0.8 x in the slow run), with 11
thresholds fixed in advance (1.5 to 4 public sigmas, Bonferroni-corrected);
across 8 seeds the 0.7 x mutant's bound was 2.40 +- 0.07 against a claim
of 2 (the slow run's 0.8 x mutant clears the claim by about 3 standard
deviations). Every audit is seeded, so the suite is deterministic. With
fresh seeds each audit of a correct release would fail with probability at
most 5% (the confidence), so after a change of seeds or of the samplers'
random streams a failing audit should be rerun with a second seed before it
is read as a defect.
"""

import dataclasses
import doctest
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.preprocessing import StandardScaler

import fedsk.privacy.audit
from fedsk import FederatedEstimator, Federation, Party
from fedsk._federation import Request
from fedsk._statistics._trees import Ensemble, TreeStructure, TreeTarget
from fedsk.privacy import (
    AuditResult,
    Clipping,
    GridEncoding,
    SeededNoiseWarning,
    audit_outputs,
    audit_release,
    budget_share,
    discrete_laplace,
    discrete_linf,
    fit_mechanism,
    orthant_reduction,
    projection_reduction,
)

ROOT = Path(__file__).resolve().parent.parent
REAL_NOISE = GridEncoding.noise

# -- the auditor --------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 50), (1, 50), (17, 50), (50, 50), (1, 3)])
def test_clopper_pearson_bounds_match_scipy(k, n):
    # one-sided bounds at level alpha are the ends of the exact two-sided
    # interval at confidence 1 - 2 alpha
    lower, upper = fedsk.privacy.audit._clopper_pearson(k, n, 0.025)
    interval = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert float(lower) == pytest.approx(interval.low, abs=1e-12)
    assert float(upper) == pytest.approx(interval.high, abs=1e-12)


def test_bound_formula_and_delta():
    # 600 of 1000 against 100 of 1000 at one fixed event: the bound is
    # log((p_lower - delta) / q_upper) with 97.5% one-sided bounds each
    a = np.r_[np.ones(600), np.zeros(400)]
    b = np.r_[np.ones(100), np.zeros(900)]
    for delta in (0.0, 0.1):
        result = audit_outputs(
            a, b, thresholds=[0.5], alternative="greater", delta=delta
        )
        p = stats.binomtest(600, 1000).proportion_ci(0.95, method="exact").low
        q = stats.binomtest(100, 1000).proportion_ci(0.95, method="exact").high
        assert result.epsilon_lower == pytest.approx(math.log((p - delta) / q))
        assert result.counts == (600, 100)
        assert result.n_trials == (1000, 1000)
        assert result.event == "output > 0.5"
        assert result.favoured == "dataset"
        assert result.n_events == 1
    # a delta above the event's probability leaves no evidence at all
    assert audit_outputs(a, b, thresholds=[0.5], delta=0.7).epsilon_lower == 0.0
    # identical outputs: nothing to see
    assert audit_outputs(a, a).epsilon_lower == 0.0


def test_two_sided_audit_finds_the_event_whichever_dataset_it_favours():
    rng = np.random.default_rng(0)
    low, high = (
        discrete_laplace(1.0, 20_000, rng),
        1 + discrete_laplace(1.0, 20_000, rng),
    )
    forward = audit_outputs(high, low, thresholds=np.arange(-3, 4) + 0.5)
    backward = audit_outputs(low, high, thresholds=np.arange(-3, 4) + 0.5)
    assert forward.n_events == backward.n_events == 28
    assert 0.85 < forward.epsilon_lower <= 1.0
    assert 0.85 < backward.epsilon_lower <= 1.0
    assert {forward.favoured, backward.favoured} == {"dataset", "neighbour"}


def _false_alarms(thresholds, trials, repeats, seed):
    """How often an audit of an exact epsilon = 1 count exceeds 1."""
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(repeats):
        a = 1 + discrete_laplace(1.0, trials, rng)
        b = discrete_laplace(1.0, trials, rng)
        alarms += audit_outputs(a, b, thresholds=thresholds).epsilon_lower > 1.0
    return alarms


@pytest.mark.parametrize(
    "thresholds", [None, np.arange(-6, 7) + 0.5], ids=["searched", "bonferroni"]
)
def test_audits_of_a_correct_release_rarely_exceed_its_epsilon(thresholds):
    # The bound must be a valid 95% lower bound even after the event search.
    # 300 independent audits (2,000 trials each) of a release whose epsilon
    # is exactly 1: at most 5% should exceed 1 (15 expected; more than 30
    # has probability ~1e-4 under Binomial(300, 0.05)). Measured: 0 in both
    # modes. Power of this check: the best of the same 52 events by point
    # estimates (no confidence bounds) exceeds 1 in 299 of the 300.
    assert _false_alarms(thresholds, 2_000, 300, seed=1) <= 30


def test_docstring_example_catches_an_under_noised_release():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(fedsk.privacy.audit.audit_release, "audit_release"):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_example_script_catches_the_under_noised_mechanism():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "audit_under_noised.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        "correct" in line and "consistent with the claim" in line for line in lines
    )
    assert any("half the noise" in line and "VIOLATES" in line for line in lines)


def test_vectorized_and_plain_mechanisms_agree():
    def plain(data, rng):
        return len(data) + discrete_laplace(1.0, 1, rng)[0]

    def batch(data, rng, n):
        return len(data) + discrete_laplace(1.0, n, rng)

    kwargs = dict(n_trials=3_000, thresholds=[2.5], alternative="greater")
    one = audit_release(plain, [0] * 3, [0] * 2, random_state=5, **kwargs)
    many = audit_release(
        batch, [0] * 3, [0] * 2, vectorized=True, random_state=5, **kwargs
    )
    assert isinstance(one, AuditResult)
    assert 0.5 < one.epsilon_lower <= 1.0
    assert 0.5 < many.epsilon_lower <= 1.0
    # the seed makes an audit reproducible
    again = audit_release(
        batch, [0] * 3, [0] * 2, vectorized=True, random_state=5, **kwargs
    )
    assert again == many


def test_invalid_arguments_are_refused():
    a = np.arange(10.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        audit_outputs(a, a, confidence=1.0)
    with pytest.raises(ValueError, match="delta must be in"):
        audit_outputs(a, a, delta=1.0)
    with pytest.raises(ValueError, match="alternative must be one of"):
        audit_outputs(a, a, alternative="up")
    with pytest.raises(ValueError, match="selection_fraction"):
        audit_outputs(a, a, selection_fraction=1.0)
    with pytest.raises(ValueError, match="thresholds must be"):
        audit_outputs(a, a, thresholds=[np.nan])
    with pytest.raises(ValueError, match="1-d array"):
        audit_outputs(np.ones((5, 2)), a)
    with pytest.raises(ValueError, match="NaN"):
        audit_outputs(np.r_[a, np.nan], a)
    with pytest.raises(ValueError, match="n_trials must be an integer >= 2"):
        audit_release(lambda d, r: 0.0, 1, 2, n_trials=1)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        audit_release(lambda d, r, n: np.zeros(3), 1, 2, n_trials=5, vectorized=True)
    with pytest.raises(ValueError, match="are equal"):
        orthant_reduction([1, 2], [1, 2])
    with pytest.raises(ValueError, match="same shape"):
        projection_reduction([1, 2], [1, 2, 3])


def test_reductions():
    b, a = np.array([10, 5, 7]), np.array([8, 5, 9])
    orthant = orthant_reduction(b, a)
    # coordinates 0 (up) and 2 (down) differ; the worst one counts
    assert orthant(np.array([12, 0, 6])) == 1
    assert orthant(np.array([[9, 0, 0], [10, 99, 7]])).tolist() == [-1, 0]
    projection = projection_reduction(b, a)
    assert projection(a) == 0.0
    assert projection(b) == pytest.approx(math.sqrt(8))


def test_fit_mechanism_audits_a_whole_fit():
    # 200 fits of a federated StandardScaler; the output is the fitted mean.
    # Few trials give a weak bound, but it must stay below the claim.
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (20, 1))
    base = {"X": X, "parties": np.zeros(20)}
    more = {"X": np.vstack([X, [[1.0]]]), "parties": np.zeros(21)}
    model = FederatedEstimator(StandardScaler(), epsilon=1.0, bounds=(0.0, 1.0))
    mechanism = fit_mechanism(model, lambda m: m.estimator_.mean_[0])
    with pytest.warns(SeededNoiseWarning):  # each trial's fit is seeded
        result = audit_release(
            mechanism, more, base, n_trials=100, random_state=0, claimed_epsilon=1.0
        )
    assert result.exceeds_claim is False
    assert result.n_trials == (50, 50)


# -- the release paths --------------------------------------------------------

D = 1  # one feature: the fewest differing coordinates, the tightest audit
CLIPPING = Clipping(np.zeros(D), np.ones(D), y_lower=-1.0, y_upper=1.0)
LABELS = np.array([0, 1])
N_BASE = 20


def _stump():
    """A public tree with one split at 0 (mapped units): leaves 1 and 2."""
    return TreeStructure(
        feature=np.array([0, -1, -1]),
        threshold=np.array([0.0, 0.0, 0.0]),
        left=np.array([1, 0, 0]),
        right=np.array([2, 0, 0]),
    )


# 4 fine bins of one feature, each its own bin
FINE = {
    "edges": np.array([-0.5, 0.0, 0.5]),
    "lut": np.arange(4, dtype=np.uint8)[None, :],
}
# gradients of the squared error at a zero ensemble
GRADIENTS = TreeTarget(None, "squared_error", Ensemble(np.zeros(1)), 1.0)


@dataclasses.dataclass(frozen=True)
class Case:
    """A statistic, its public parameters, and its worst-case extra record.

    ``x`` is the record's feature at the clip bound (raw units) and ``y`` its
    target: a class label, or a regression target at its bound. ``k`` is the
    number of encoded coordinates the record moves.
    """

    name: str
    statistic: str
    params: dict
    x: float
    y: float
    k: int
    classification: bool = False


CASES = [
    # counts: one coordinate
    Case("count", "class_counts", {}, 1.0, 1, 1, True),
    Case("class_counts", "class_counts", {"classes": LABELS}, 1.0, 1, 1, True),
    # count, sum and sum of squares: the record at the upper bound moves all
    # three up; at the lower bound the sum goes down and the square up
    Case("moments_upper", "moments", {}, 1.0, 1, 3, True),
    Case("moments_lower", "moments", {}, 0.0, 1, 3, True),
    Case("class_moments", "class_moments", {"classes": LABELS}, 1.0, 1, 3, True),
    # X^T X, X^T y, sums, y sum and count: every block at full sensitivity
    Case("linear_moments", "linear_moments", {}, 1.0, 1.0, 5),
    # gradient sum of the logistic loss where the record's factor is -1
    Case(
        "glm_log_gradient",
        "glm_derivatives",
        {
            "coef": np.array([[-30.0, -30.0]]),
            "loss": "log",
            "classes": LABELS,
            "hessian": False,
        },
        1.0,
        1,
        2,
        True,
    ),
    # gradient and Hessian of the clipped squared error: the residual is
    # exactly the clip, so the gradient is at its bound and the curvature 1
    Case(
        "glm_squared_error",
        "glm_derivatives",
        {"coef": np.zeros((1, 2)), "loss": "squared_error", "gradient_clip": 1.0},
        1.0,
        -1.0,
        5,
    ),
    Case(
        "feature_histogram",
        "feature_histogram",
        {"edges": np.linspace(-1.0, 1.0, 5)},
        1.0,
        1,
        1,
        True,
    ),
    Case(
        "tree_leaves_classifier",
        "tree_leaves",
        {"forest": (_stump(),), "target": TreeTarget(classes=LABELS)},
        1.0,
        1,
        1,
        True,
    ),
    Case(
        "tree_leaves_regressor",
        "tree_leaves",
        {"forest": (_stump(),), "target": TreeTarget()},
        1.0,
        1.0,
        2,
    ),
    Case(
        "tree_histograms",
        "tree_histograms",
        {
            "forest": (_stump(),),
            "nodes": (np.array([1, 2]),),
            "features": np.array([[0], [0]]),
            "target": TreeTarget(classes=LABELS),
            **FINE,
        },
        1.0,
        1,
        1,
        True,
    ),
    Case(
        "tree_histograms_gradients",
        "tree_histograms",
        {
            "forest": (TreeStructure.leaf(),),
            "nodes": (np.array([0]),),
            "features": np.array([[0]]),
            "target": GRADIENTS,
            **FINE,
        },
        1.0,
        -1.0,
        2,
    ),
    Case(
        "tree_leaves_gradients",
        "tree_leaves",
        {"forest": (TreeStructure.leaf(),), "target": GRADIENTS},
        1.0,
        -1.0,
        2,
    ),
]
CASE_IDS = [c.name for c in CASES]
GAUSSIAN_CASES = [
    c for c in CASES if c.name in ("count", "moments_upper", "glm_log_gradient")
]
EPSILON = 2.0
GAUSSIAN_BUDGET = (2.0, 1e-3)
FAST, SLOW = 100_000, 1_000_000
GAUSSIAN_FAST = 300_000


def _base_rows(case):
    rng = np.random.default_rng(0)
    X = rng.uniform(0.0, 1.0, (N_BASE, D))
    y = (
        rng.integers(0, 2, N_BASE)
        if case.classification
        else rng.uniform(-1, 1, N_BASE)
    )
    return X, y


def _neighbours(case, kind, n_parties=1):
    """Party rows without and with the extra record (it joins party p0).

    ``kind``: ``"at_bound"`` puts the record on the clip bound;
    ``"far_outside"`` puts it 10^9 beyond (clipping must bring it back).
    """
    X, y = _base_rows(case)
    x, target = case.x, case.y
    if kind == "far_outside":
        x = 1e9 if x > 0 else -1e9
        target = target if case.classification else 1e9 * target
    rows_without = [(X, y)] + [_base_rows(case) for _ in range(n_parties - 1)]
    rows_with = [(np.vstack([X, [[x] * D]]), np.append(y, target))] + rows_without[1:]
    return rows_without, rows_with


@dataclasses.dataclass
class ExactRelease:
    """One real release, with its noise taken out."""

    encoding: GridEncoding
    exact: np.ndarray  # the encoded total the noise is added to
    shares: list  # the n_parties argument of every noise draw the release made
    epsilon: float  # what the party's ledger was charged
    delta: float


def _exact_release(rows, case, trust, budget):
    """Run ``Federation.release`` once with the noise sampler replaced by zeros."""
    epsilon, delta = budget
    eps_i, delta_i, rho = budget_share(epsilon, delta, 1.0)
    request = Request(
        statistic=case.statistic,
        epsilon=eps_i,
        delta=delta_i,
        rho=rho,
        clipping=CLIPPING,
        estimator="audit",
        trust=trust,
        params=case.params,
    )
    parties = [Party(f"p{i}", X, y) for i, (X, y) in enumerate(rows)]
    draws = []

    def no_noise(encoding, rng, n_parties=1):
        draws.append((encoding, n_parties))
        return np.zeros(encoding.n_coords, dtype=np.int64)

    GridEncoding.noise = no_noise
    try:
        release = Federation(parties).release(
            request, seed_sequence=np.random.SeedSequence(0)
        )
    finally:
        GridEncoding.noise = REAL_NOISE
    (encoding,) = {e for e, _ in draws}
    (event,) = parties[0].ledger.events
    return ExactRelease(
        encoding,
        encoding.encode(release.blocks),
        [n for _, n in draws],
        event.epsilon,
        event.delta,
    )


def _noisy(release, n_trials, rng, factor=1.0):
    """``n_trials`` noisy outputs: the exact total plus every draw, vectorised.

    ``factor`` scales the noise (a mutant release when below 1). All trials
    come from one call of the real ``GridEncoding.noise`` per draw, on a
    copy of the encoding whose single block holds every trial.
    """
    enc = release.encoding
    if enc.mechanism == "discrete_linf":  # one joint vector per trial
        assert release.shares == [1]
        noise = discrete_linf(
            factor * enc.noise_scale, enc.n_coords, rng, n_draws=n_trials
        )
        return release.exact + noise
    wide = dataclasses.replace(
        enc,
        block_shapes=((n_trials * enc.n_coords,),),
        noise_scale=factor * enc.noise_scale,
    )
    noise = sum(REAL_NOISE(wide, rng, n) for n in release.shares)
    return release.exact + noise.reshape(n_trials, enc.n_coords)


def _audit(case, kind, trust, budget, n_trials, factor, n_parties=1, seed=0):
    without, with_ = _neighbours(case, kind, n_parties)
    a = _exact_release(without, case, trust, budget)
    b = _exact_release(with_, case, trust, budget)
    assert np.count_nonzero(b.exact - a.exact) == case.k
    assert (a.epsilon, a.delta) == (b.epsilon, b.delta)
    rng = np.random.default_rng(seed)
    if budget[1] == 0:
        reduce = orthant_reduction(b.exact, a.exact)
        options = dict(thresholds=[-0.5], alternative="greater")
    else:
        # the projection is about N(0, sigma^2) without the record and
        # shifted by |b - a|_2 with it; thresholds from the public sigma
        reduce = projection_reduction(b.exact, a.exact)
        sigma = b.encoding.noise_scale
        options = dict(
            thresholds=sigma * np.arange(1.5, 4.01, 0.25),
            alternative="greater",
            delta=b.delta,
        )
    return audit_outputs(
        reduce(_noisy(b, n_trials, rng, factor)),
        reduce(_noisy(a, n_trials, rng, factor)),
        claimed_epsilon=b.epsilon,
        **options,
    )


def _laplace_mutation(case, n_trials):
    """Smallest noise cut the trial count detects (see the module docstring)."""
    if n_trials >= SLOW:
        return 0.95 if case.k <= 3 else 0.9
    return 0.9 if case.k <= 3 else 0.8


def _check_laplace(case, kind, n_trials, trust="central", n_parties=1):
    budget = (EPSILON, 0.0)
    claim = _audit(case, kind, trust, budget, n_trials, 1.0, n_parties)
    assert claim.claimed_epsilon == EPSILON
    assert not claim.exceeds_claim, claim
    # the audit is close to tight: the release is not hiding a looser claim
    assert claim.epsilon_lower > 0.85 * EPSILON, claim
    factor = _laplace_mutation(case, n_trials)
    mutant = _audit(case, kind, trust, budget, n_trials, factor, n_parties, seed=1)
    assert mutant.exceeds_claim, (factor, mutant)


@pytest.mark.parametrize("kind", ["at_bound", "far_outside"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_laplace_release_audit(case, kind):
    _check_laplace(case, kind, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["at_bound", "far_outside"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_laplace_release_audit_slow(case, kind):
    _check_laplace(case, kind, SLOW)


MOMENTS = CASES[2]


@pytest.mark.parametrize(("trust", "n_parties"), [("local", 1), ("secure", 3)])
def test_laplace_audit_of_party_added_noise(trust, n_parties):
    # With local trust the party draws the noise itself (party_release);
    # with secure aggregation three parties each add a Polya share, and the
    # shares add up to the calibrated discrete Laplace.
    _check_laplace(MOMENTS, "at_bound", FAST, trust, n_parties)


def _check_gaussian(case, kind, n_trials, factor, trust="central", n_parties=1):
    claim = _audit(case, kind, trust, GAUSSIAN_BUDGET, n_trials, 1.0, n_parties)
    assert claim.claimed_epsilon <= GAUSSIAN_BUDGET[0]
    assert not claim.exceeds_claim, claim
    mutant = _audit(
        case, kind, trust, GAUSSIAN_BUDGET, n_trials, factor, n_parties, seed=1
    )
    assert mutant.exceeds_claim, (factor, mutant)


@pytest.mark.parametrize("kind", ["at_bound", "far_outside"])
@pytest.mark.parametrize("case", GAUSSIAN_CASES, ids=lambda c: c.name)
def test_gaussian_release_audit(case, kind):
    _check_gaussian(case, kind, GAUSSIAN_FAST, 0.7)


def test_gaussian_audit_of_secure_shares():
    _check_gaussian(MOMENTS, "at_bound", GAUSSIAN_FAST, 0.7, "secure", 3)


@pytest.mark.slow
@pytest.mark.parametrize("case", GAUSSIAN_CASES, ids=lambda c: c.name)
def test_gaussian_release_audit_slow(case):
    _check_gaussian(case, "at_bound", SLOW, 0.8)
