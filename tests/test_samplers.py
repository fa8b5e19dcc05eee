"""The exact noise samplers: their source, their building blocks, their tails.

What is checked, and why each check can fail:

- the source is ChaCha20 (a known-answer test), keyed by the party's 32
  bytes or by SHA-256 of a simulation seed; the same key gives the same
  noise, different keys give independent noise (with a power control that
  the independence check rejects dependent streams); no numpy generator is
  touched (with a control that the trap does catch one);
- every building block has exactly its probability: uniform integers
  (against the naive ``x mod m``, which the same test rejects), Bernoulli
  (``exp(-gamma)``) for small and big denominators, the geometric count
  behind every tail;
- the samplers fit their exact pmfs at small and large scales, including
  the big-integer path of the Gaussian above sigma ~ 1.5e9, each with 0.7x
  and 1.3x power controls;
- the tail is not cut: where the float sampler provably returns only 0,
  the exact one carries any geometric count into the value;
- Polya shares from the parties' own keys add up to discrete Laplace.

Statistical thresholds: a fit passes at p > 1e-3 and a wrong distribution
is rejected at p < 1e-6. Keys are fixed, so every test is deterministic.
"""

import hashlib
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from exact_pmf import chi_square_pvalue, gaussian_pmf, laplace_pmf
from scipy import stats
from test_noise_distribution import binned_pvalue

import fedsk.privacy._mechanisms as mechanisms
from fedsk.privacy import (
    discrete_gaussian,
    discrete_laplace,
    discrete_linf,
    noise_generator,
    noise_seed_sequence,
    spawn_seeds,
)
from fedsk.privacy._distributed import polya_laplace_share
from fedsk.privacy._random import (
    NoiseSource,
    bernoulli_exp,
    bernoulli_exp1,
    geometric_exp1,
    uniform_below,
)

N = 100_000


def key(i):
    return bytes([i]) * 32


# -- the source ---------------------------------------------------------------


def test_words_are_the_chacha20_keystream():
    # RFC 7539, appendix A.1, test vector 1: zero key, zero nonce, block 0.
    words = noise_generator(bytes(32)).words(2)
    assert words.tobytes().hex() == "76b8e0ada0f13d90405d6ae55386bd28"


def test_an_int_seed_is_expanded_into_a_key_with_sha256():
    digest = hashlib.sha256(b"fedsk simulation noise seed 7").digest()
    np.testing.assert_array_equal(
        noise_generator(7).words(100), noise_generator(digest).words(100)
    )


@pytest.mark.parametrize("seed", [key(1), 12345])
@pytest.mark.parametrize("draw", ["laplace", "gaussian", "polya"])
def test_the_same_seed_gives_the_same_noise(seed, draw):
    def noise(seed):
        rng = noise_generator(seed)
        if draw == "laplace":
            return discrete_laplace(3.0, 1000, rng)
        if draw == "gaussian":
            return discrete_gaussian(3.0, 1000, rng)
        return polya_laplace_share(3.0, 0.25, 1000, rng)

    np.testing.assert_array_equal(noise(seed), noise(seed))
    other = key(2) if isinstance(seed, bytes) else seed + 1
    assert not np.array_equal(noise(seed), noise(other))


def _independence_pvalue(x, y):
    """Chi-square test of independence on a 5 x 5 table of quantile bins."""
    cuts = [-2, -1, 1, 2]  # scale 3: five bins of 12% to 29% each
    table = np.zeros((5, 5))
    np.add.at(table, (np.digitize(x, cuts), np.digitize(y, cuts)), 1)
    return stats.chi2_contingency(table).pvalue


def test_different_keys_give_independent_noise():
    # Keys one bit apart, 10^5 pairs of scale-3 draws. Independent pairs
    # pass the contingency test (p > 1e-3) and have a correlation within
    # 4.5 standard errors (1 / sqrt(n)) of 0.
    a = bytearray(key(3))
    b = bytearray(a)
    b[0] ^= 1
    x = discrete_laplace(3.0, N, noise_generator(bytes(a)))
    y = discrete_laplace(3.0, N, noise_generator(bytes(b)))
    assert abs(np.corrcoef(x, y)[0, 1]) < 4.5 / math.sqrt(N)
    assert _independence_pvalue(x, y) > 1e-3
    # simulation seeds spawned for the parties of one release, likewise
    seeds = spawn_seeds(np.random.SeedSequence(5), 2)
    u, v = (discrete_gaussian(3.0, N, noise_generator(s)) for s in seeds)
    assert _independence_pvalue(u, v) > 1e-3
    # power control: a dependent pair (y shares half its noise with x)
    z = discrete_laplace(3.0, N, noise_generator(key(4)))
    assert _independence_pvalue(x, (x + z) // 2) < 1e-6


def test_no_numpy_generator_is_used(monkeypatch):
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state)

    def trap(*args, **kwargs):
        raise AssertionError("a numpy random generator was used for noise")

    names = ["default_rng", "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"]
    names += ["RandomState", "random", "randint", "geometric", "negative_binomial"]
    for name in names:
        monkeypatch.setattr(np.random, name, trap)
    with pytest.raises(AssertionError):  # control: the trap does catch one
        np.random.default_rng(0)
    for seed in [key(5), 5]:
        rng = noise_generator(seed)
        assert isinstance(rng, NoiseSource)
        discrete_laplace(2.0, 1000, rng)
        discrete_gaussian(2.0, 1000, rng)
        discrete_gaussian(4e9, 100, rng)  # the big-integer path
        polya_laplace_share(2.0, 0.1, 1000, rng)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize(
    ("seed", "error"),
    [
        (bytes(31), ValueError),
        (bytes(33), ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("key", TypeError),
        (None, TypeError),
    ],
)
def test_bad_seeds_are_refused(seed, error):
    with pytest.raises(error, match="32 bytes"):
        noise_generator(seed)


def test_a_source_cannot_be_pickled():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(noise_generator(key(6)))


def test_an_unknown_rng_is_refused():
    with pytest.raises(TypeError, match="noise source"):
        discrete_laplace(1.0, 3, np.random.RandomState(0))


def test_the_simulation_path_still_gives_integer_seeds():
    with pytest.warns(UserWarning, match="simulation only"):
        sequence = noise_seed_sequence(3)
    seeds = spawn_seeds(sequence, 3)
    assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) == 3


# -- building blocks ------------------------------------------------------------


def test_uniform_below_is_exactly_uniform():
    # m = 3 * 2^62: the words from 2^62 down are a quarter of all and must
    # be redrawn; kept, each third of [0, m) has probability 1/3. 10^5
    # draws. The naive x mod m gives the lowest third probability 1/2.
    m = 3 * 2**62
    rng = noise_generator(key(7))
    thirds = (uniform_below(rng, m, N) >> np.uint64(62)).astype(int)
    assert stats.chisquare(np.bincount(thirds, minlength=3)).pvalue > 1e-3
    naive = (rng.words(N) % np.uint64(m)) >> np.uint64(62)
    counts = np.bincount(naive.astype(int), minlength=3)
    assert stats.chisquare(counts).pvalue < 1e-6
    # one bound per draw, m = 1 included
    bounds = np.tile([1, 2, 5], N // 3)
    values = uniform_below(rng, bounds).astype(int)
    assert np.all(values < bounds) and not values[bounds == 1].any()
    assert stats.chisquare(np.bincount(values[bounds == 5])).pvalue > 1e-3


@pytest.mark.parametrize(
    ("num", "den"),
    [(0, 1), (1, 3), (2, 3), (1, 1), (5, 7), (3 * 2**70, 7 * 2**70)],
)
def test_bernoulli_exp_has_probability_exp_minus_gamma(num, den):
    # 2 * 10^5 draws: the frequency is within 4.5 standard errors of
    # exp(-num / den), and more than 4.5 away from exp(-1.05 num / den)
    # (power control; at num = 0 both are 1 and exactness is checked).
    n = 200_000
    gamma = num / den
    numerators = np.full(n, num, dtype=object if den >= 2**64 else np.int64)
    freq = bernoulli_exp(noise_generator(key(8)), numerators, den).mean()
    p = math.exp(-gamma)
    se = math.sqrt(p * (1 - p) / n)
    if num == 0:
        assert freq == 1.0
        return
    assert abs(freq - p) < 4.5 * se
    assert abs(freq - math.exp(-1.05 * gamma)) > 4.5 * se


def test_geometric_count_has_the_exact_tail():
    # P(G = k) = (1 - e^-1) e^-k for every k: nothing caps it. 10^6 draws,
    # exact pmf up to k = 60; power control with ratio exp(-1.05).
    g = geometric_exp1(noise_generator(key(9)), 1_000_000)
    k = np.arange(-60, 61)

    def pmf(rate):
        return np.where(k >= 0, -math.expm1(-rate) * np.exp(-rate * k), 0.0)

    assert chi_square_pvalue(g, k, pmf(1.0)) > 1e-3
    assert chi_square_pvalue(g, k, pmf(1.05)) < 1e-6


class ScriptedSource(NoiseSource):
    """A source that gives chosen words first, then a real keystream."""

    def __init__(self, words):
        super().__init__(key(10))
        self.script = list(words)

    def words(self, n):
        head = [self.script.pop(0) for _ in range(min(n, len(self.script)))]
        return np.concatenate([np.array(head, np.uint64), super().words(n - len(head))])


def test_bernoulli_exp1_takes_its_one_in_20_factorial_branch():
    # The word 20! makes X = 0 (probability 1 / 20!): the steps K = 2..20
    # all succeeded, and the draws go on one at a time: the next word's low
    # half 1 gives Bernoulli(1/21) = 1 (1 * 21 >> 32 == 0), the one after
    # (all ones) gives 0. The first failing K is 22: even, so the result is
    # 0; had the chain been cut at 20, K = 21 would give 1.
    lo_one, all_ones = 1, 2**64 - 1
    rng = ScriptedSource([math.factorial(20), lo_one, all_ones])
    assert bernoulli_exp1(rng, 1).tolist() == [False]
    rng = ScriptedSource([math.factorial(20), all_ones])  # K = 21: odd
    assert bernoulli_exp1(rng, 1).tolist() == [True]


# -- exact distributions ----------------------------------------------------------


@pytest.mark.parametrize("scale", [0.05, 0.2, 1.0, 3.3, 40.0])
def test_discrete_laplace_fits_its_exact_pmf(scale):
    samples = discrete_laplace(scale, N, noise_generator(key(11)))
    assert chi_square_pvalue(samples, *laplace_pmf(scale)) > 1e-3
    if scale >= 0.2:  # below, both scales put all 10^5 draws on 0, +-1
        for factor in [0.7, 1.3]:
            assert chi_square_pvalue(samples, *laplace_pmf(factor * scale)) < 1e-6


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5, 7.0, 60.0])
def test_discrete_gaussian_fits_its_exact_pmf(sigma):
    samples = discrete_gaussian(sigma, N, noise_generator(key(12)))
    assert chi_square_pvalue(samples, *gaussian_pmf(sigma)) > 1e-3
    for factor in [0.7, 1.3]:
        assert chi_square_pvalue(samples, *gaussian_pmf(factor * sigma)) < 1e-6


@pytest.mark.parametrize(
    ("mechanism", "scale", "n"),
    [
        ("discrete_laplace", 1e8, N),
        ("discrete_laplace", 3e15, N),
        ("discrete_gaussian", 1e8, N),
        ("discrete_gaussian", 4e9, 20_000),  # 2 m t L >= 2^62: Python integers
    ],
)
def test_large_scales_fit_their_exact_distribution(mechanism, scale, n):
    # 100 bins of the exact CDF (tests/test_noise_distribution.py), with
    # 0.7x and 1.3x power controls at the same sample size.
    sampler = discrete_laplace if mechanism == "discrete_laplace" else discrete_gaussian
    samples = sampler(scale, n, noise_generator(key(13)))
    assert binned_pvalue(samples, mechanism, scale) > 1e-3
    for factor in [0.7, 1.3]:
        assert binned_pvalue(samples, mechanism, factor * scale) < 1e-6


# -- rounding of the parameters ---------------------------------------------------


@pytest.mark.parametrize(
    "scale", [1e-30, 1e-7, 2.0**-22, 0.2, 1.0, 3.3, 1e4, 2.0**40 + 0.5, 1e15, 2.0**52]
)
def test_the_scale_is_rounded_up_to_a_close_rational(scale):
    t, s = mechanisms.rational_scale(scale)
    used = Fraction(t, s)
    assert used >= Fraction(scale)  # more noise, never less
    if scale >= 2.0**-22:
        assert used / Fraction(scale) - 1 <= max(
            Fraction(1, 2**39), 1 / Fraction(scale)
        )
    assert s & (s - 1) == 0 and s <= 2**62 and t < 2**53


@pytest.mark.parametrize(
    "sigma", [1e-9, 1e-3, 0.3, 1.0, 7.0, 1e4, 1e8, 1.4e9, 4e9, 2.0**52]
)
def test_sigma_squared_is_rounded_up_to_a_close_rational(sigma):
    t, m, L = mechanisms.rational_sigma(sigma)
    assert t == math.floor(sigma) + 1
    used = Fraction(m * t, L)
    excess = used / Fraction(sigma) ** 2 - 1
    assert excess >= 0
    if 1e-3 <= sigma <= 1.4e9:
        assert excess < 2.0**-20
        assert 2 * m * t * L < 2**62  # the uint64 path
    elif sigma > 1.4e9:
        assert L == 1 and excess < 2 / sigma


@pytest.mark.parametrize(
    "sampler", [discrete_laplace, discrete_gaussian, discrete_linf]
)
def test_a_scale_beyond_int64_is_refused(sampler):
    with pytest.raises(ValueError, match="at most 2\\^52"):
        sampler(2.0**53, 3, noise_generator(key(14)))


# -- the tail is not cut ----------------------------------------------------------


def test_the_float_sampler_cannot_reach_what_the_exact_one_reaches(monkeypatch):
    # At scale 0.02, P(X = +-20) = exp(-400) (1 - q) / (1 + q) > 0. The float
    # sampler drew geometric(p) with p = 1 - exp(-1 / scale), which rounds to
    # exactly 1.0: every geometric draw is 1 and the noise is always 0.
    scale = 0.02
    p = -math.expm1(-1 / scale)
    assert p == 1.0
    assert np.all(np.random.default_rng(0).geometric(p, 10_000) == 1)
    # The exact sampler turns any geometric count V into X = U + t V and
    # floor(X / s): it has no cap. A count of 1000 (probability e^-1000)
    # gives |noise| = floor(1000 * t / s + U / s) = 20.
    real = mechanisms.geometric_exp1

    def rare(rng, n):
        g = real(rng, n)
        g[:1] = 1000
        return g

    monkeypatch.setattr(mechanisms, "geometric_exp1", rare)
    noise = discrete_laplace(scale, 5, noise_generator(key(15)))
    assert abs(int(noise[0])) == 20


def test_the_gaussian_accepts_far_candidates_with_their_probability(monkeypatch):
    # sigma = 0.3: a candidate at |y| = 6 has acceptance exp(-gamma), gamma
    # = (6 - 0.09)^2 / 0.18 = 194.0 (exactly, after rounding sigma^2 up):
    # 194 Bernoulli(e^-1) successes and then Bernoulli(exp(-r / D)). With
    # every count set to 1000 the proposal is at |y| = 1000 t = 1000, out
    # of reach, so force proposals to 6: the acceptance needs G >= 194; it
    # is always met with G = 1000 and never with G = 193.
    t, m, L = mechanisms.rational_sigma(0.3)
    y = np.full(2000, 6, dtype=np.int64)
    gamma = Fraction((L * 6 - m) ** 2, 2 * m * t * L)
    assert math.floor(gamma) == 194
    for count, accepted in [(1000, True), (193, False)]:
        monkeypatch.setattr(
            mechanisms, "geometric_exp1", lambda rng, n, c=count: np.full(n, c)
        )
        accept = mechanisms._gaussian_accept(noise_generator(key(16)), y, t, m, L)
        # given G >= k, acceptance is Bernoulli(exp(-(gamma - 194))), ~ 0.6-1
        assert accept.any() == accepted
        if accepted:
            frac = float(gamma - 194)
            p = math.exp(-frac)
            assert abs(accept.mean() - p) < 4.5 * math.sqrt(p * (1 - p) / y.size)


# -- Polya shares -----------------------------------------------------------------


@pytest.mark.parametrize(("scale", "n_parties"), [(3.0, 7), (0.7, 10), (25.0, 3)])
def test_polya_shares_from_party_keys_add_up_to_discrete_laplace(scale, n_parties):
    # Each party draws its share from its own key; 10^5 sums of n shares
    # against the exact pmf, with 0.7x and 1.3x power controls.
    total = sum(
        polya_laplace_share(scale, 1 / n_parties, N, noise_generator(key(20 + i)))
        for i in range(n_parties)
    )
    assert total.dtype == np.int64
    assert chi_square_pvalue(total, *laplace_pmf(scale)) > 1e-3
    for factor in [0.7, 1.3]:
        assert chi_square_pvalue(total, *laplace_pmf(factor * scale)) < 1e-6


def test_polya_share_of_shape_one_is_exact_discrete_laplace():
    samples = polya_laplace_share(2.0, 1.0, N, noise_generator(key(30)))
    assert chi_square_pvalue(samples, *laplace_pmf(2.0)) > 1e-3
    assert chi_square_pvalue(samples, *laplace_pmf(1.3 * 2.0)) < 1e-6


def test_polya_shares_at_a_real_scale_have_the_full_variance():
    # 10 shares of scale 10^6, 10^5 sums: the variance of discrete Laplace,
    # 2q / (1 - q)^2; relative SE sqrt((kurtosis - 1) / n) = 0.77% for
    # kurtosis 6, so a 4% tolerance is > 5 SE.
    scale = 1e6
    total = sum(
        polya_laplace_share(scale, 0.1, N, noise_generator(key(40 + i)))
        for i in range(10)
    )
    q = math.exp(-1 / scale)
    assert total.var() == pytest.approx(2 * q / (1 - q) ** 2, rel=0.04)


@pytest.mark.parametrize("shape", [0.0, -0.1, 1.5])
def test_polya_share_shape_out_of_range_is_refused(shape):
    with pytest.raises(ValueError, match="shape must be in"):
        polya_laplace_share(3.0, shape, 5, noise_generator(key(50)))
