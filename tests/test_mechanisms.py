"""Tests of the noise mechanisms, their calibration, grid encoding and clipping.

Statistical tests use fixed seeds, so they are deterministic; every one states
its sample size and why its tolerance is safe (how many standard errors it
allows), so that a failure means a wrong distribution, not bad luck.
"""

import math
import time
from fractions import Fraction

import numpy as np
import pytest
from exact_pmf import chi_square_pvalue, gaussian_pmf, laplace_pmf
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsk.privacy import (
    BudgetLedger,
    Clipping,
    GridEncoding,
    ReleaseEvent,
    budget_share,
    charge,
    clip_row_norms,
    composed_epsilon,
    discrete_gaussian,
    discrete_laplace,
    discrete_laplace_std,
    gaussian_sigma,
    laplace_scale,
    noise_generator,
    zcdp_epsilon,
    zcdp_rho,
)

SAMPLERS = [discrete_laplace, discrete_gaussian]


def source(seed):
    """The noise source a party uses, keyed by 32 bytes made from ``seed``."""
    return noise_generator(seed.to_bytes(32, "little"))


# -- exact distributions ------------------------------------------------------


# -- edge cases ---------------------------------------------------------------


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_zero_scale_gives_zeros_of_the_requested_shape(sampler):
    rng = source(0)
    noise = sampler(0.0, (3, 4), rng)
    assert noise.shape == (3, 4)
    assert noise.dtype == np.int64
    assert not noise.any()
    assert sampler(0, 5, rng).tolist() == [0] * 5


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("scale", [-1.0, -1e-300, math.inf, -math.inf, math.nan])
def test_invalid_scale_is_refused(sampler, scale):
    with pytest.raises(ValueError, match="finite and >= 0"):
        sampler(scale, 10, source(0))


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("scale", [0.3, 5.0, 1e4])
def test_noise_is_int64_with_the_requested_shape(sampler, scale):
    rng = source(0)
    assert sampler(scale, 7, rng).shape == (7,)
    noise = sampler(scale, (2, 3, 4), rng)
    assert noise.shape == (2, 3, 4)
    assert noise.dtype == np.int64
    assert sampler(scale, 0, rng).shape == (0,)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_noise_comes_from_the_source_passed_in(sampler):
    a = sampler(5.0, 1000, source(42))
    b = sampler(5.0, 1000, source(42))
    c = sampler(5.0, 1000, source(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# -- noise scale --------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.3, 3.0, 50.0])
def test_discrete_laplace_variance_matches_its_std(scale):
    # 10^6 samples. The relative standard error of a sample variance is
    # sqrt((kurtosis - 1) / n); the kurtosis of these distributions is at most
    # 13 (scale 0.3), so it is at most 0.35%. A 2% tolerance is > 5.7 SE.
    rng = source(1)
    samples = discrete_laplace(scale, 1_000_000, rng)
    assert samples.var() == pytest.approx(discrete_laplace_std(scale) ** 2, rel=0.02)
    # The mean is 0; its standard error is std / 1000, allow 6 SE.
    assert abs(samples.mean()) < 6 * discrete_laplace_std(scale) / 1000


def test_discrete_laplace_std_formula():
    # Var = 2q / (1 - q)^2 with q = exp(-1/t), checked against the exact pmf.
    for scale in [0.3, 1.0, 7.5]:
        x, pmf = laplace_pmf(scale)
        exact = math.sqrt(np.sum(pmf * x.astype(float) ** 2))
        assert discrete_laplace_std(scale) == pytest.approx(exact, rel=1e-9)
    assert discrete_laplace_std(0) == 0.0
    # For a large scale, it tends to the continuous Laplace std sqrt(2) t.
    assert discrete_laplace_std(1e4) == pytest.approx(math.sqrt(2) * 1e4, rel=1e-6)


def test_discrete_gaussian_variance_and_mean():
    # 10^5 samples at sigma = 5. Relative SE of the sample variance is
    # sqrt(2 / n) = 0.45%; the 3% tolerance is > 6 SE. The SE of the mean is
    # 5 / sqrt(n) = 0.016; the tolerance 0.1 is > 6 SE.
    sigma = 5.0
    samples = discrete_gaussian(sigma, 100_000, source(2))
    assert samples.var() == pytest.approx(sigma**2, rel=0.03)
    assert abs(samples.mean()) < 0.1


def test_discrete_gaussian_variance_is_below_sigma_squared_for_small_sigma():
    # The discrete Gaussian's variance is below sigma^2, visibly so for small
    # sigma (0.2147 vs 0.25 at sigma = 0.5). 10^6 samples; the kurtosis here is
    # about 4, so the relative SE of the variance is 0.17% and the 2% tolerance
    # around the exact variance is > 10 SE, while sigma^2 is 16% away.
    sigma = 0.5
    x, pmf = gaussian_pmf(sigma)
    exact_var = float(np.sum(pmf * x.astype(float) ** 2))
    assert exact_var < 0.9 * sigma**2
    samples = discrete_gaussian(sigma, 1_000_000, source(3))
    assert samples.var() == pytest.approx(exact_var, rel=0.02)
    assert samples.var() < sigma**2


def test_discrete_gaussian_chi_square_fits_the_exact_pmf():
    # 10^5 samples against normalised exp(-x^2 / (2 sigma^2)). Seeded, so
    # deterministic; for the right distribution p < 1e-3 would happen with
    # probability 1e-3 for a new seed.
    for sigma, seed in [(5.0, 4), (1.3, 5), (40.0, 6)]:
        samples = discrete_gaussian(sigma, 100_000, source(seed))
        assert chi_square_pvalue(samples, *gaussian_pmf(sigma)) > 1e-3


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_discrete_gaussian_chi_square_rejects_a_wrong_sigma(factor):
    # Power control for the test above: the same test, at the same sample
    # size, rejects samples whose sigma is 30% off (p is ~0, far below 1e-6).
    sigma = 5.0
    samples = discrete_gaussian(factor * sigma, 100_000, source(7))
    assert chi_square_pvalue(samples, *gaussian_pmf(sigma)) < 1e-6


def test_discrete_laplace_chi_square_fits_the_exact_pmf():
    # 10^5 samples against normalised exp(-|x| / t); threshold as above.
    for scale, seed in [(3.0, 8), (0.7, 9), (25.0, 10)]:
        samples = discrete_laplace(scale, 100_000, source(seed))
        assert chi_square_pvalue(samples, *laplace_pmf(scale)) > 1e-3


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_discrete_laplace_chi_square_rejects_a_wrong_scale(factor):
    scale = 3.0
    samples = discrete_laplace(factor * scale, 100_000, source(11))
    assert chi_square_pvalue(samples, *laplace_pmf(scale)) < 1e-6


# -- throughput ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "scale", "floor"),
    [
        (discrete_laplace, 3.0, 1e6),
        (discrete_laplace, 1e4, 1e6),
        (discrete_gaussian, 5.0, 4e5),
        (discrete_gaussian, 1e4, 4e5),
    ],
)
def test_throughput(sampler, scale, floor):
    # 10^6 draws, best of 3 runs of CPU time, so that a busy shared machine
    # does not fail the test. On the shared 2-core machine the exact samplers
    # run at 2.4-4.6 * 10^6 (Laplace) and 1.4-2.4 * 10^6 (Gaussian) per
    # second; the floors are 2.4x or more below, and 10x above a
    # per-coordinate Python loop.
    rng = source(12)
    n = 1_000_000
    best = math.inf
    for _ in range(3):
        start = time.process_time()
        noise = sampler(scale, n, rng)
        best = min(best, time.process_time() - start)
    assert noise.size == n
    assert n / best >= floor


# -- calibration --------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.01, 0.5, 1.0, 3.0, 100.0])
@pytest.mark.parametrize("sensitivity", [0.5, 1.0, 1001.0])
def test_laplace_scale_is_sensitivity_over_epsilon(epsilon, sensitivity):
    assert laplace_scale(epsilon, sensitivity) == sensitivity / epsilon


def test_laplace_scale_edge_cases():
    assert laplace_scale(math.inf, 3.0) == 0.0
    assert laplace_scale(1.0, 0.0) == 0.0
    for epsilon in [0.0, -1.0, math.nan]:
        with pytest.raises(ValueError, match="epsilon must be > 0"):
            laplace_scale(epsilon, 1.0)


@pytest.mark.parametrize("epsilon", [0.05, 0.5, 1.0, 2.0, 8.0])
@pytest.mark.parametrize("delta", [1e-10, 1e-6, 1e-3])
def test_zcdp_rho_converts_back_to_at_most_epsilon(epsilon, delta):
    rho = zcdp_rho(epsilon, delta)
    assert 0 < rho <= epsilon
    back = zcdp_epsilon(rho, delta)
    assert back <= epsilon
    assert back == pytest.approx(epsilon, rel=1e-6)


def test_zcdp_rho_is_increasing_in_epsilon_and_delta():
    epsilons = [0.01, 0.1, 0.5, 1.0, 1.01, 2.0, 10.0]
    rhos = [zcdp_rho(e, 1e-6) for e in epsilons]
    assert all(a < b for a, b in zip(rhos, rhos[1:]))
    deltas = [1e-12, 1e-9, 1e-6, 1e-3, 0.1]
    rhos = [zcdp_rho(1.0, d) for d in deltas]
    assert all(a < b for a, b in zip(rhos, rhos[1:]))


def test_zcdp_edge_cases():
    assert zcdp_rho(math.inf, 1e-6) == math.inf
    for delta in [0.0, 1.0, -1e-6]:
        with pytest.raises(ValueError, match="delta"):
            zcdp_rho(1.0, delta)
    with pytest.raises(ValueError, match="epsilon"):
        zcdp_rho(0.0, 1e-6)
    assert zcdp_epsilon(0.0, 1e-6) == 0.0
    assert zcdp_epsilon(math.inf, 1e-6) == math.inf
    assert zcdp_epsilon(0.1, 0.0) == math.inf


@pytest.mark.parametrize("rho", [1e-4, 0.02, 0.5, 3.0])
@pytest.mark.parametrize("sensitivity", [1.0, 2.5, 1000.0])
def test_gaussian_sigma_is_sensitivity_over_root_two_rho(rho, sensitivity):
    sigma = gaussian_sigma(rho, sensitivity)
    assert sigma == pytest.approx(sensitivity / math.sqrt(2 * rho), rel=1e-15)
    # and it delivers exactly rho: s^2 / (2 sigma^2)
    assert sensitivity**2 / (2 * sigma**2) == pytest.approx(rho, rel=1e-12)


def test_gaussian_sigma_edge_cases():
    assert gaussian_sigma(math.inf, 1.0) == 0.0
    assert gaussian_sigma(0.5, 0.0) == 0.0
    for rho in [0.0, -1.0, math.nan]:
        with pytest.raises(ValueError, match="rho must be > 0"):
            gaussian_sigma(rho, 1.0)


def test_zcdp_calibration_is_tighter_than_the_classical_gaussian_formula():
    # Classical: sigma = s sqrt(2 ln(1.25 / delta)) / epsilon = 5.30 at
    # epsilon = 1, delta = 1e-6; the zCDP route gives 4.53.
    epsilon, delta, s = 1.0, 1e-6, 1.0
    classical = s * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    zcdp = gaussian_sigma(zcdp_rho(epsilon, delta), s)
    assert zcdp < classical
    assert zcdp < 0.9 * classical


# -- budget shares and grid encoding -----------------------------------------


def _event(epsilon, delta, rho):
    return ReleaseEvent(
        party="p",
        estimator="e",
        statistic="moments",
        mechanism="discrete_laplace" if rho is None else "discrete_gaussian",
        epsilon=epsilon,
        delta=delta,
        rho=rho,
        sensitivity=1.0,
        noise_scale=1.0,
        trust="central",
    )


BUDGETS = [(1.0, 0.0), (0.1, 0.0), (1.0, 1e-6), (3.0, 1e-5), (0.1, 1e-8)]
FRACTIONS = [
    (1.0,),
    (0.3, 0.3, 0.4),
    (0.1, 0.2, 0.7),
    (0.1,) * 10,
    (1 / 3, 1 / 3, 1 / 3),
    (0.05, 0.15, 0.8),
]


@pytest.mark.parametrize(("epsilon", "delta"), BUDGETS)
@pytest.mark.parametrize("fractions", FRACTIONS)
def test_budget_shares_summing_to_one_compose_to_the_budget(epsilon, delta, fractions):
    events = [_event(*budget_share(epsilon, delta, f)) for f in fractions]
    total = composed_epsilon(events, delta)
    # Pure shares are epsilon * fraction, so float rounding can put the sum
    # one ulp above epsilon (10 x 0.1 x 0.1 = 0.10000000000000002); that is
    # the documented slack of the ledgers (relative 1e-14), nothing more.
    assert total <= epsilon * (1 + 1e-14)
    assert total == pytest.approx(epsilon, rel=1e-6)  # nothing wasted
    # and a ledger with exactly this budget accepts all of them
    ledger = BudgetLedger("p", epsilon=epsilon, delta=delta)
    charge([(ledger, events)])
    assert len(ledger.events) == len(fractions)


@settings(max_examples=60, deadline=None, database=None)
@given(
    weights=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=8),
    budget=st.sampled_from(BUDGETS),
)
def test_random_budget_shares_never_exceed_the_budget(weights, budget):
    epsilon, delta = budget
    # fractions whose float values add up to at most 1 exactly, as a fit's
    # session takes them
    fractions, left = [], Fraction(1)
    for w in weights:
        f = math.nextafter(min(w / math.fsum(weights), float(left)), 0.0)
        if f <= 0:
            break
        fractions.append(f)
        left -= Fraction(f)
    events = [_event(*budget_share(epsilon, delta, f)) for f in fractions]
    ledger = BudgetLedger("p", epsilon=epsilon, delta=delta)
    charge([(ledger, events)])  # raises BudgetExceededError if over budget
    assert composed_epsilon(events, delta) <= epsilon


def test_budget_share_kinds_and_validation():
    assert budget_share(2.0, 0.0, 0.25) == (0.5, 0.0, None)
    assert budget_share(math.inf, 1e-6, 0.5) == (math.inf, 0.0, None)
    eps, delta, rho = budget_share(1.0, 1e-6, 0.5)
    assert rho == pytest.approx(zcdp_rho(1.0, 1e-6) / 2, rel=1e-15)
    assert delta == 5e-7
    assert eps == zcdp_epsilon(rho, delta)
    for fraction in [0.0, -0.1, 1.5, math.nan]:
        with pytest.raises(ValueError, match="fraction"):
            budget_share(1.0, 0.0, fraction)


SHAPES = [(1,), (3,), (2, 4)]
SENSITIVITIES = [(1.0, 1.0), (3.0, math.sqrt(3)), (4.0, 0.5)]


# unequal budget shares of the three blocks
SHARES = (0.7, 0.2, 0.1)


def _encoding(kind, shares=None):
    rho = None if kind == "laplace" else 0.1
    return GridEncoding.calibrate(
        SHAPES, SENSITIVITIES, epsilon=1.0, rho=rho, shares=shares
    )


def test_grid_encoding_calibration():
    n_blocks, n_coords = len(SHAPES), 1 + 3 + 8
    pure = _encoding("laplace")
    assert pure.mechanism == "discrete_laplace"
    assert pure.block_scales == (1.0, 3.0, 4.0)  # L1 sensitivities
    # the integer L1 sensitivity: blocks / step, plus one step per coordinate
    assert pure.sensitivity == pytest.approx(n_blocks / pure.step + n_coords)
    assert pure.noise_scale == laplace_scale(1.0, pure.sensitivity)

    gauss = _encoding("gaussian")
    assert gauss.mechanism == "discrete_gaussian"
    assert gauss.block_scales == (1.0, math.sqrt(3), 0.5)  # L2 sensitivities
    rounding = math.sqrt(n_coords)
    assert gauss.sensitivity == pytest.approx(
        math.sqrt(n_blocks) / gauss.step + rounding
    )
    assert gauss.noise_scale == gaussian_sigma(0.1, gauss.sensitivity)
    # the rounding term is a small part (1/1000) of the sensitivity
    for enc, term in [(pure, n_coords), (gauss, rounding)]:
        assert term / (enc.sensitivity - term) == pytest.approx(1e-3)


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_budget_shares_set_each_blocks_noise(kind):
    # The total calibration is that of equal shares; a block's noise std is
    # its sensitivity over n_blocks * share (its root under zCDP) times the
    # equal-share noise of a unit block.
    equal, weighted = _encoding(kind), _encoding(kind, SHARES)
    assert (weighted.step, weighted.sensitivity, weighted.noise_scale) == (
        equal.step,
        equal.sensitivity,
        equal.noise_scale,
    )
    power = 1.0 if kind == "laplace" else 0.5
    unit = equal.noise_std()[0] / equal.block_scales[0]
    for std, scale, share in zip(weighted.noise_std(), equal.block_scales, SHARES):
        assert std == pytest.approx(unit * scale / (len(SHAPES) * share) ** power)
    # the largest weight, n_blocks * 0.7
    assert weighted.record_steps == pytest.approx((len(SHAPES) * 0.7) ** power)


@pytest.mark.parametrize("shares", [(1.0,), (1.2, -0.2), (0.6, 0.6), (0.3, 0.3, 0.4)])
def test_budget_shares_are_validated(shares):
    with pytest.raises(ValueError, match="shares must"):
        GridEncoding.calibrate(
            [(1,), (2,)], [(1.0, 1.0)] * 2, epsilon=1, rho=None, shares=shares
        )


def test_grid_encoding_refuses_infinite_sensitivity():
    with pytest.raises(ValueError, match="infinite sensitivity"):
        GridEncoding.calibrate([(2,)], [(math.inf, math.inf)], epsilon=1, rho=None)


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_encode_decode_round_trip_error_is_at_most_half_a_step(kind):
    enc = _encoding(kind)
    rng = np.random.default_rng(13)
    for magnitude in [1e-3, 1.0, 1e4]:
        blocks = [magnitude * rng.standard_normal(s) for s in SHAPES]
        encoded = enc.encode(blocks)
        assert encoded.dtype == np.int64
        assert encoded.shape == (12,)
        decoded = enc.decode(encoded)
        for block, back, scale in zip(blocks, decoded, enc.block_scales):
            assert back.shape == block.shape
            half_step = enc.step * scale / 2
            assert np.all(np.abs(back - block) <= half_step * (1 + 1e-9))


def test_rounding_term_is_needed_and_sufficient_l1():
    # One block of two coordinates, L1 sensitivity 1: step = 1e-3 / 2. Two
    # neighbouring sums at L1 distance 0.9995 <= 1 whose encodings are 2001
    # steps apart: more than blocks / step = 2000, so without the rounding
    # term the sensitivity would be wrong; with it (2002) it holds.
    enc = GridEncoding.calibrate([(2,)], [(1.0, 1.0)], epsilon=1.0, rho=None)
    step = enc.step
    a = np.array([0.495, 0.495]) * step
    b = a + np.array([1000.01, 999.01]) * step
    assert np.abs(b - a).sum() <= 1.0
    distance = np.abs(enc.encode([b]) - enc.encode([a])).sum()
    assert distance > 1 / step
    assert distance <= enc.sensitivity


@pytest.mark.parametrize("shares", [None, SHARES])
@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_encoded_neighbours_stay_within_the_integer_sensitivity(kind, shares):
    # Random neighbouring totals: every block moves by at most its own
    # sensitivity (L1 for Laplace, L2 for Gaussian), split unevenly; with
    # equal or unequal budget shares.
    enc = _encoding(kind, shares)
    order = 1 if kind == "laplace" else 2
    rng = np.random.default_rng(14)
    for _ in range(500):
        a = [rng.uniform(-50, 50, s) for s in SHAPES]
        moves = []
        for shape, (l1, l2) in zip(SHAPES, SENSITIVITIES):
            move = rng.standard_normal(shape) * rng.exponential(size=shape)
            moves.append(
                move / np.linalg.norm(move.ravel(), order) * (l1, l2)[order - 1]
            )
        b = [x + m for x, m in zip(a, moves)]
        diff = (enc.encode(b) - enc.encode(a)).astype(float)
        assert np.linalg.norm(diff, order) <= enc.sensitivity * (1 + 1e-12)


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_encoding_noise_matches_its_public_std(kind):
    # One block of 2 * 10^5 coordinates: the decoded noise's sample std is
    # within 3% of noise_std() (relative SE of a std is below 0.4% here).
    shapes = [(200_000,)]
    rho = None if kind == "laplace" else 0.5
    enc = GridEncoding.calibrate(shapes, [(2.0, 2.0)], epsilon=1.0, rho=rho)
    noise = enc.noise(source(15))
    assert noise.dtype == np.int64
    assert noise.shape == (200_000,)
    (decoded,) = enc.decode(noise)
    (std,) = enc.noise_std()
    assert decoded.std() == pytest.approx(std, rel=0.03)


# -- clipping -----------------------------------------------------------------


def test_clip_row_norms():
    X = np.array(
        [
            [0.0, 0.0, 0.0],  # zero row
            [3.0, 4.0, 0.0],  # norm 5: exactly at the limit
            [1.0, -2.0, 2.0],  # norm 3: below
            [30.0, -40.0, 0.0],  # norm 50: above
            [0.0, 0.0, -7.0],  # norm 7: above
        ]
    )
    before = X.copy()
    with np.errstate(all="raise"):
        clipped = clip_row_norms(X, 5.0)
    np.testing.assert_array_equal(X, before)  # input not modified
    np.testing.assert_array_equal(clipped[:3], X[:3])
    norms = np.linalg.norm(clipped[3:], axis=1)
    np.testing.assert_allclose(norms, 5.0, rtol=1e-12)
    np.testing.assert_allclose(clipped[3], [3.0, -4.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(clipped[4], [0.0, 0.0, -5.0], rtol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_clip_row_norms_scales_huge_finite_rows_to_the_norm():
    X = np.array([[1e300, 1e300], [-1e200, 0.0]])
    clipped = clip_row_norms(X, 5.0)
    np.testing.assert_allclose(
        clipped, [[5 / math.sqrt(2), 5 / math.sqrt(2)], [-5.0, 0.0]], rtol=1e-12
    )


def test_clip_row_norms_all_zero_and_all_short_rows_are_unchanged():
    with np.errstate(all="raise"):
        zeros = clip_row_norms(np.zeros((4, 3)), 1.0)
        short = clip_row_norms(np.full((2, 2), 0.1), 1.0)
        to_zero = clip_row_norms(np.ones((2, 2)), 0.0)
    np.testing.assert_array_equal(zeros, 0.0)
    np.testing.assert_array_equal(short, 0.1)
    np.testing.assert_array_equal(to_zero, 0.0)


def test_clipping_apply_maps_bounded_features_into_unit_interval():
    lower, upper = np.array([0.0, -10.0, 100.0]), np.array([1.0, 10.0, 300.0])
    clipping = Clipping(lower, upper)
    rng = np.random.default_rng(16)
    X = rng.uniform(-500, 500, size=(1000, 3))  # mostly out of bounds
    mapped, y = clipping.apply(X)
    assert y is None
    assert mapped.min() >= -1.0 and mapped.max() <= 1.0
    # the bounds map to -1 and +1, their middle to 0
    edges, _ = clipping.apply(np.vstack([lower, upper, (lower + upper) / 2]))
    np.testing.assert_allclose(edges, [[-1, -1, -1], [1, 1, 1], [0, 0, 0]])
    # in-bounds values are mapped affinely (and can be mapped back)
    inside = lower + rng.uniform(size=(50, 3)) * (upper - lower)
    back = clipping.apply(inside)[0] * clipping.x_scale + clipping.x_center
    np.testing.assert_allclose(back, inside)


def test_clipping_apply_with_data_norm_and_target_bounds():
    clipping = Clipping(
        np.zeros(4), np.full(4, 2.0), data_norm=1.5, y_lower=-3.0, y_upper=5.0
    )
    rng = np.random.default_rng(17)
    X = rng.uniform(-1, 3, size=(500, 4))
    y = rng.uniform(-10, 10, size=500)
    mapped, mapped_y = clipping.apply(X, y)
    assert mapped.min() >= -1.0 and mapped.max() <= 1.0
    assert np.linalg.norm(mapped, axis=1).max() <= 1.5 * (1 + 1e-12)
    assert mapped_y.min() >= -1.0 and mapped_y.max() <= 1.0
    assert clipping.row_norm(4) == 1.5
    np.testing.assert_array_equal(clipping.feature_abs_max(4), 1.0)
