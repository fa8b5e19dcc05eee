"""The noise of real releases has the distribution their events claim.

``tests/test_mechanisms.py`` checks the samplers against their exact pmf at
small scales (one bin per integer), and ``tests/test_secure_aggregation.py``
checks that Polya shares add up to discrete Laplace. Here the noise is taken
from real releases (``Federation.release``, party-side code included) at the
scales a calibration really produces (10^6 to 10^8 grid steps, where one bin
per integer is impossible), and compared, by a chi-square test over 100
bins of the exact distribution, with the mechanism and scale that the
release's :class:`~fedsk.privacy.ReleaseEvent` records. Each fit is paired
with a power control: the same release with its noise scale set to 0.7x and
1.3x of the calibrated one must be rejected by the same test.

Sample size: one release of a 100,000-bin histogram gives 10^5 noise values.
Thresholds: a fit passes at p > 1e-3 (a correct sampler fails with
probability 1e-3 for a new seed; the seeds are fixed, so the tests are
deterministic); a mutant is rejected at p < 1e-6.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from fedsk import Federation, Party
from fedsk._federation import Request
from fedsk.privacy import (
    Clipping,
    GridEncoding,
    budget_share,
    discrete_gaussian,
    discrete_laplace,
    noise_generator,
)

REAL_NOISE = GridEncoding.noise
N_VALUES = 100_000
N_BINS = 100


# -- exact distributions, binned ----------------------------------------------


def laplace_cdf(x, scale):
    """P(X <= x) for discrete Laplace, P(k) proportional to exp(-|k| / scale)."""
    x = np.floor(np.asarray(x, dtype=float))
    q = math.exp(-1.0 / scale)
    upper = 1.0 - np.exp(-(np.maximum(x, 0) + 1) / scale) / (1 + q)
    lower = np.exp(np.minimum(x, 0) / scale) / (1 + q)
    return np.where(x >= 0, upper, lower)


def gaussian_cdf(x, sigma):
    """P(X <= x) for the discrete Gaussian with parameter ``sigma >= 100``.

    The midpoint rule: sum_{k <= x} exp(-k^2 / (2 sigma^2)) equals the
    integral up to x + 1/2 with a relative error of order 1 / sigma^2, and
    the normaliser equals sqrt(2 pi) sigma up to exp(-2 pi^2 sigma^2)
    (Poisson summation). At sigma >= 100 both are below 1e-4 of any bin
    probability here, far below what 10^5 samples resolve.
    """
    assert sigma >= 100
    return stats.norm.cdf((np.floor(np.asarray(x, dtype=float)) + 0.5) / sigma)


def binned_pvalue(values, mechanism, scale):
    """Chi-square p-value of integer ``values`` against the exact distribution.

    The bins are cut at the quantiles of the continuous approximation
    (about equally likely, at least 5 expected values each), and their
    probabilities come from the exact CDF.
    """
    levels = np.linspace(0, 1, N_BINS + 1)[1:-1]
    if mechanism == "discrete_laplace":
        cuts, cdf = stats.laplace.ppf(levels, scale=scale), laplace_cdf
    else:
        cuts, cdf = stats.norm.ppf(levels, scale=scale), gaussian_cdf
    cuts = np.unique(np.floor(cuts))
    probabilities = np.diff(np.concatenate([[0.0], cdf(cuts, scale), [1.0]]))
    expected = values.size * probabilities
    assert expected.min() >= 5
    observed = np.bincount(
        np.searchsorted(cuts, values, side="left"), minlength=cuts.size + 1
    )
    return stats.chisquare(observed, expected).pvalue


# -- the noise of real releases -----------------------------------------------

CLIPPING = Clipping(np.zeros(1), np.ones(1))
EDGES = np.linspace(-1.0, 1.0, N_VALUES + 1)  # 10^5 bins: 10^5 noise values


def _release(trust, delta, factor=1.0):
    """One noisy 10^5-bin histogram release, and the noise it added.

    Returns the integer noise (released encoded total minus the exact one)
    and the event charged to the first party.
    """
    rng = np.random.default_rng(0)
    n_parties = 3 if trust == "secure" else 1
    parties = [Party(f"p{i}", rng.uniform(0, 1, (30, 1))) for i in range(n_parties)]
    federation = Federation(parties)
    eps, delta_i, rho = budget_share(1.0, delta, 1.0)

    def request(epsilon, trust):
        return Request(
            statistic="feature_histogram",
            epsilon=epsilon,
            delta=delta_i,
            rho=rho if math.isfinite(epsilon) else None,
            clipping=CLIPPING,
            estimator="noise",
            trust=trust,
            params={"edges": EDGES},
        )

    encodings = []

    def noise(encoding, rng, n_parties=1):  # the real sampler, maybe rescaled
        encodings.append(encoding)
        mutant = dataclasses.replace(
            encoding, noise_scale=factor * encoding.noise_scale
        )
        return REAL_NOISE(mutant, rng, n_parties)

    GridEncoding.noise = noise
    try:
        noisy = federation.release(
            request(eps, trust), seed_sequence=np.random.SeedSequence(1)
        )
    finally:
        GridEncoding.noise = REAL_NOISE
    # the exact total: the same statistic without noise (central: no grid)
    exact = federation.release(request(math.inf, "central"), seed_sequence=None)
    encoding = encodings[0]
    added = encoding.encode(noisy.blocks) - encoding.encode(exact.blocks)
    (event, *_) = parties[0].ledger.events
    return added, event


TRUSTS = ["central", "local", "secure"]


@pytest.mark.parametrize("delta", [0.0, 1e-6], ids=["laplace", "gaussian"])
@pytest.mark.parametrize("trust", TRUSTS)
def test_release_noise_has_the_claimed_distribution(trust, delta):
    added, event = _release(trust, delta)
    assert added.size == N_VALUES
    assert event.mechanism == (
        "discrete_laplace" if delta == 0 else "discrete_gaussian"
    )
    assert event.noise_scale > 1e5  # the real scale, in grid steps
    assert binned_pvalue(added, event.mechanism, event.noise_scale) > 1e-3


@pytest.mark.parametrize("factor", [0.7, 1.3])
@pytest.mark.parametrize("delta", [0.0, 1e-6], ids=["laplace", "gaussian"])
@pytest.mark.parametrize("trust", TRUSTS)
def test_release_noise_check_rejects_a_wrong_scale(trust, delta, factor):
    # power control: 30% less or more noise than the event claims is seen
    added, event = _release(trust, delta, factor)
    assert binned_pvalue(added, event.mechanism, event.noise_scale) < 1e-6


# -- samplers at the small scales the other tests leave out -------------------


def _exact_pvalue(samples, support, pmf):
    """Chi-square over single integers (expected count >= 5), tails pooled."""
    expected = samples.size * pmf
    core = expected >= 5
    lo, hi = support[core].min(), support[core].max()
    inside = samples[(samples >= lo) & (samples <= hi)] - lo
    counts = np.bincount(inside, minlength=hi - lo + 1)
    observed = np.append(counts, samples.size - counts.sum())
    return stats.chisquare(
        observed, np.append(expected[core], samples.size - expected[core].sum())
    ).pvalue


def _pmf(mechanism, scale):
    x = np.arange(-60, 61)
    if mechanism == "discrete_laplace":
        w = np.exp(-np.abs(x) / scale)
    else:
        w = np.exp(-(x.astype(float) ** 2) / (2 * scale**2))
    return x, w / w.sum()


SMALL = [("discrete_laplace", 0.2), ("discrete_gaussian", 0.4)]


@pytest.mark.parametrize(("mechanism", "scale"), SMALL)
def test_small_scale_samplers_fit_their_pmf(mechanism, scale):
    # scale 0.2 / sigma 0.4: nearly all mass on 0 and +-1, where the
    # exact samplers are at their edge cases (a rational scale t / 2^k with
    # k = 42, so floor(X / s) is 0 most of the time; the Gaussian's proposal
    # scale t = 1). 10^5 samples from a party's noise source, exact pmf,
    # p > 1e-3.
    sampler = discrete_laplace if mechanism == "discrete_laplace" else discrete_gaussian
    samples = sampler(scale, N_VALUES, noise_generator(bytes([21]) * 32))
    assert _exact_pvalue(samples, *_pmf(mechanism, scale)) > 1e-3


@pytest.mark.parametrize("factor", [0.7, 1.3])
@pytest.mark.parametrize(("mechanism", "scale"), SMALL)
def test_small_scale_check_rejects_a_wrong_scale(mechanism, scale, factor):
    sampler = discrete_laplace if mechanism == "discrete_laplace" else discrete_gaussian
    samples = sampler(factor * scale, N_VALUES, noise_generator(bytes([22]) * 32))
    assert _exact_pvalue(samples, *_pmf(mechanism, scale)) < 1e-6
