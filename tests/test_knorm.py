"""The L-infinity K-norm mechanism: its exact sampler and its calibration.

Statistical tests are seeded and deterministic; each states why its
tolerance is safe. The mechanism's privacy rests on two facts checked here:
the sampler draws exactly ``P(z)`` proportional to ``q^|z|_inf`` (chi-square
against the exact law, with a power control), and the grid encoding moves
no coordinate of neighbouring totals by more than its sensitivity.
"""

import math

import numpy as np
import pytest
from exact_pmf import chi_square_pvalue, laplace_pmf

from fedsk.privacy import (
    GridEncoding,
    discrete_laplace_std,
    discrete_linf,
    discrete_linf_std,
    noise_generator,
)
from fedsk.privacy._mechanisms import rational_scale


def source(seed):
    return noise_generator(seed.to_bytes(32, "little"))


def _exact_scale(scale):
    t, s = rational_scale(scale)
    return t / s


def _radius_pmf(scale, n, width):
    """Exact law of ``|z|_inf``: the points of norm ``M`` times ``q^M``."""
    m = np.arange(width + 1)
    count = (2.0 * m + 1) ** n - np.where(m > 0, (2.0 * m - 1) ** n, 0.0)
    log_w = np.log(count) - m / _exact_scale(scale)
    w = np.exp(log_w - log_w.max())
    return m, w / w.sum()


def _coordinate_pmf(scale, n, width):
    """Exact law of one coordinate: sum over the others of ``q^max``."""
    a = np.arange(-width, width + 1)
    r = np.arange(width + 1)
    others = (2.0 * r + 1) ** (n - 1) - np.where(r > 0, (2.0 * r - 1) ** (n - 1), 0.0)
    largest = np.maximum(np.abs(a)[:, None], r[None, :])
    w = (others[None, :] * np.exp(-largest / _exact_scale(scale))).sum(axis=1)
    return a, w / w.sum()


# -- the sampler ---------------------------------------------------------------


@pytest.mark.parametrize(("scale", "n"), [(2.5, 3), (1.6, 6), (6.0, 2)])
def test_radius_and_coordinates_fit_the_exact_law(scale, n):
    # 2 * 10^5 draws; a correct sampler fails a chi-square at p < 1e-4 with
    # probability 1e-4 per test, and these are seeded
    z = discrete_linf(scale, n, source(1), n_draws=200_000)
    assert z.shape == (200_000, n) and z.dtype == np.int64
    width = math.ceil(80 * (n + 1) * scale) + 10
    radius = np.abs(z).max(axis=1)
    assert chi_square_pvalue(radius, *_radius_pmf(scale, n, width)) > 1e-4
    for j in (0, n - 1):
        assert chi_square_pvalue(z[:, j], *_coordinate_pmf(scale, n, width)) > 1e-4


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_a_wrong_scale_is_detected(factor):
    # the power control of the test above: draws at a scale 10% off fail it
    scale, n = 2.5, 3
    z = discrete_linf(factor * scale, n, source(2), n_draws=200_000)
    width = math.ceil(80 * (n + 1) * scale) + 10
    radius = np.abs(z).max(axis=1)
    assert chi_square_pvalue(radius, *_radius_pmf(scale, n, width)) < 1e-6


def test_one_coordinate_is_discrete_laplace():
    # |z|_inf = |z| in one dimension: the law is discrete Laplace's
    scale = 3.0
    z = discrete_linf(scale, 1, source(3), n_draws=200_000)[:, 0]
    assert chi_square_pvalue(z, *laplace_pmf(_exact_scale(scale))) > 1e-4
    assert discrete_linf_std(1000.0, 1) == pytest.approx(
        discrete_laplace_std(1000.0), rel=1e-6
    )


@pytest.mark.parametrize(("scale", "n"), [(20.0, 1), (20.0, 5), (50.0, 30), (5.0, 3)])
def test_std_formula_matches_the_exact_sum(scale, n):
    # given the mixture's radius M, whose law is (2M + 1)^n q^M, a
    # coordinate is uniform in [-M, M]: E[M (M + 1)] / 3, summed exactly
    m = np.arange(math.ceil(60 * (n + 1) * scale))
    log_w = n * np.log(2.0 * m + 1) - m / _exact_scale(scale)
    w = np.exp(log_w - log_w.max())
    exact = math.sqrt(float(np.sum(w * m * (m + 1)) / w.sum()) / 3)
    assert discrete_linf_std(_exact_scale(scale), n) == pytest.approx(exact, rel=2e-3)


def test_shapes_sources_and_bad_scales():
    z = discrete_linf(4.0, (2, 3), source(4))
    assert z.shape == (2, 3) and z.dtype == np.int64
    assert discrete_linf(4.0, 0, source(4)).shape == (0,)
    assert not np.any(discrete_linf(0.0, 5, source(4)))
    assert discrete_linf(0.0, 5, source(4), n_draws=3).shape == (3, 5)
    same = discrete_linf(5.0, 20, source(42)), discrete_linf(5.0, 20, source(42))
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], discrete_linf(5.0, 20, source(43)))
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and >= 0"):
            discrete_linf(bad, 3, source(4))
    # below n / 4 almost every draw would be rejected: refused, not slow
    with pytest.raises(ValueError, match="at least 0.25 per coordinate"):
        discrete_linf(0.3, 24, source(4))


# -- the calibration -------------------------------------------------------------

# a gradient-like block: 7 coordinates, each moved by at most 0.5 by a record
BOX = [(7,)], [(3.5, 0.5 * math.sqrt(7), 0.5)]


def test_a_box_bounded_block_gets_the_k_norm_noise():
    linf = GridEncoding.calibrate(*BOX, epsilon=0.1, rho=None)
    laplace = GridEncoding.calibrate(*BOX, epsilon=0.1, rho=None, divisible=True)
    assert linf.mechanism == "discrete_linf"
    assert laplace.mechanism == "discrete_laplace"
    # per coordinate: sqrt((n + 1) (n + 2) / 3) / sqrt(2 n^2) of Laplace's,
    # 0.495 at n = 7, up to the rounding terms (1/1000 each)
    ratio = linf.noise_std()[0] / laplace.noise_std()[0]
    assert ratio == pytest.approx(math.sqrt(8 * 9 / 3) / math.sqrt(2 * 49), rel=3e-3)
    assert linf.sensitivity == 1001.0 and linf.record_steps == 1.0


def test_laplace_is_kept_where_it_is_less_noisy_or_nothing_bounds_a_coordinate():
    # a histogram of 4 columns of 32 bins: one record adds 1 to 4 of 128
    # coordinates; the cube [0, 1]^128 is far larger than that
    histogram = GridEncoding.calibrate(
        [(4, 32)], [(4.0, 2.0, 1.0)], epsilon=1.0, rho=None
    )
    assert histogram.mechanism == "discrete_laplace"
    two_blocks = GridEncoding.calibrate(
        [(7,), (3,)], [BOX[1][0], (1.0, 1.0)], epsilon=1.0, rho=None
    )
    assert two_blocks.mechanism == "discrete_laplace"
    gaussian = GridEncoding.calibrate(*BOX, epsilon=1.0, rho=0.1)
    assert gaussian.mechanism == "discrete_gaussian"


def test_encoded_neighbours_move_no_coordinate_beyond_the_sensitivity():
    # two blocks of unequal shares, each coordinate moved by up to its linf
    shapes = [(5,), (2, 3)]
    bounds = [(5.0, 3.0, 1.0), (12.0, 5.0, 2.0)]
    enc = GridEncoding.calibrate(
        shapes, bounds, epsilon=1.0, rho=None, shares=[0.3, 0.7]
    )
    assert enc.mechanism == "discrete_linf"
    rng = np.random.default_rng(5)
    worst = 0.0
    for _ in range(500):
        a = [rng.uniform(-50, 50, s) for s in shapes]
        b = [
            x + rng.choice([-1.0, 1.0], s) * rng.uniform(0.9, 1.0, s) * bound[2]
            for x, s, bound in zip(a, shapes, bounds)
        ]
        moved = np.abs(enc.encode(b) - enc.encode(a)).max()
        assert moved <= enc.sensitivity
        worst = max(worst, moved)
    assert worst > 0.99 * (enc.sensitivity - 1)  # the bound is tight


def test_encoding_noise_matches_its_public_std_and_is_not_split():
    # 20 000 vectors from the encoding's own sampler: the decoded std is
    # within 3% of noise_std() (the relative SE of a std here is below 1%)
    enc = GridEncoding.calibrate(*BOX, epsilon=1.0, rho=None)
    rng = source(7)
    noise = np.array([enc.noise(rng) for _ in range(20_000)])
    assert noise.shape == (20_000, 7) and noise.dtype == np.int64
    decoded = noise * enc.step * enc.block_scales[0]
    assert decoded.std() == pytest.approx(enc.noise_std()[0], rel=0.03)
    with pytest.raises(ValueError, match="shares"):
        enc.noise(source(6), n_parties=3)


def test_max_rows_keeps_the_noisy_total_inside_int64():
    enc = GridEncoding.calibrate(*BOX, epsilon=0.01, rho=None)
    rows = enc.max_rows(4)
    assert rows > 10**9
    largest = 4 * (rows * enc.record_steps / enc.step + 1)
    assert largest + 4 * (2 * 8 + 150) * enc.noise_scale < 2**63
