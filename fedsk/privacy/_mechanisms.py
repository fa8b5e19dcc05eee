"""Integer noise mechanisms and their calibration.

Textbook floating-point Laplace and Gaussian noise leaks the exact input
through the set of reachable low-order bits (Mironov 2012). fedsk therefore
releases every statistic on a fixed grid: the statistic is rounded to an
integer number of grid steps (the rounding is counted in the sensitivity by
the caller), and integer noise is added: discrete Laplace for pure
epsilon-DP, discrete Gaussian for approximate DP, calibrated through
zero-concentrated DP.

The samplers are exact: they follow Algorithms 1-3 of [2]_ with uniform
random integers from a cryptographic stream (:func:`noise_generator`) and
integer arithmetic only, so every integer has exactly its probability and
no tail is cut off by a floating-point logarithm. They are vectorised with
numpy: loops run over rounds of rejection, never over coordinates.

References
----------
.. [1] I. Mironov, "On significance of the least significant bits for
   differential privacy", CCS 2012.
.. [2] C. Canonne, G. Kamath, T. Steinke, "The discrete Gaussian for
   differential privacy", NeurIPS 2020.
.. [3] M. Bun, T. Steinke, "Concentrated differential privacy:
   simplifications, extensions, and lower bounds", TCC 2016.
"""

import functools
import math
from fractions import Fraction

import dp_accounting
import numpy as np
from dp_accounting import rdp

from ._random import (
    bernoulli_exp,
    geometric_exp1,
    random_bits,
    uniform_below,
)

# Largest scale (or sigma) sampled: the noise must stay inside int64, and at
# 2^52 a value beyond 2^63 has probability below exp(-2048).
MAX_NOISE_SCALE = 2.0**52
_INT64_MAX = 2**63 - 1
# Bits kept of a scale: it is rounded up to t / 2^k with t near 2^40.
_SCALE_BITS = 40
# The Gaussian's exact acceptance works in uint64 while 2 m t L < 2^62.
_GAUSS_DEN_LIMIT = 2**62


def _shape_of(size):
    return (int(size),) if np.ndim(size) == 0 else tuple(int(n) for n in size)


def _check_scale(name, scale):
    if not (scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"{name} must be finite and >= 0; got {scale!r}.")
    if scale > MAX_NOISE_SCALE:
        raise ValueError(
            f"{name} must be at most 2^52 grid steps (noise beyond it does not "
            f"fit in int64); got {scale!r}. Use a larger epsilon."
        )


def rational_scale(scale):
    """The rational ``t / s >= scale`` that the samplers use for ``scale``.

    ``s = 2^k`` and ``t = ceil(scale * 2^k)``, with ``k`` chosen so that
    ``t`` has about 40 bits (``k = 0`` above ``2^40``, ``k <= 62`` below).
    Rounding the scale up adds noise, which never weakens the privacy
    guarantee; the relative increase is below ``2^-39`` for any scale
    above ``2^-22``, and below ``1 / scale`` above ``2^40``.

    Returns
    -------
    t, s : int
    """
    k = min(62, max(0, _SCALE_BITS - math.frexp(scale)[1]))
    s = 1 << k
    return max(1, math.ceil(Fraction(scale) * s)), s


def geometric_rational(rng, t, s, n):
    """``n`` exact draws of ``floor(X / s)``, ``X`` geometric of ratio ``exp(-1 / t)``.

    So ``P(G = g)`` is proportional to ``exp(-g s / t)``. Algorithm 2 of
    [2]_ without its sign: ``U`` uniform in ``[0, t)`` kept with probability
    ``exp(-U / t)``, ``V`` the number of Bernoulli(``exp(-1)``) successes
    before a failure, ``X = U + t V``.
    """
    out = np.empty(n, dtype=np.int64)
    accept = 1.0 if t == 1 else -math.expm1(-1) / (t * -math.expm1(-1 / t))
    filled = 0
    while filled < n:
        batch = int((n - filled) / accept * 1.05) + 16
        if t > 1:
            u = uniform_below(rng, t, batch)
            u = u[bernoulli_exp(rng, u, t)]
        else:  # U = 0, kept with probability exp(0)
            u = np.zeros(batch, dtype=np.uint64)
        v = geometric_exp1(rng, u.size)
        if v.size and v.max() > (_INT64_MAX - t) // t:
            raise OverflowError("a noise value does not fit in int64")
        x = u.astype(np.int64) + t * v
        y = x // s if s > 1 else x
        take = min(y.size, n - filled)
        out[filled : filled + take] = y[:take]
        filled += take
    return out


def _laplace_rational(rng, t, s, n):
    """``n`` exact discrete Laplace draws of rational scale ``t / s``."""
    out = np.empty(n, dtype=np.int64)
    zero = -math.expm1(-s / t)  # P(floor(X / s) = 0)
    filled = 0
    while filled < n:
        batch = int((n - filled) / (1 - zero / 2) * 1.05) + 16
        y = geometric_rational(rng, t, s, batch)
        negative = random_bits(rng, batch)
        keep = ~(negative & (y == 0))  # -0 is rejected, so 0 is not counted twice
        z = np.where(negative, -y, y)[keep]
        take = min(z.size, n - filled)
        out[filled : filled + take] = z[:take]
        filled += take
    return out


def discrete_laplace(scale, size, rng):
    """Draw discrete Laplace noise, P(x) proportional to exp(-|x| / scale).

    Parameters
    ----------
    scale : float
        Scale ``t >= 0``, at most ``2^52``. An integer query of L1
        sensitivity ``s`` plus this noise is ``(s / t)``-DP [2]_.
        ``scale=0`` returns zeros.
    size : int or tuple of int
        Output shape.
    rng : NoiseSource
        Noise source, from :func:`~fedsk.privacy.noise_generator`.

    Returns
    -------
    noise : ndarray of int64

    Notes
    -----
    Exact: Algorithm 2 of [2]_ on uniform integers from ``rng``, in integer
    arithmetic, so every integer has exactly its probability (up to int64:
    a value beyond ``2^63`` has probability below ``exp(-2048)`` and raises
    ``OverflowError``). The float ``scale`` is first rounded up to a
    rational ``t / 2^k`` (:func:`rational_scale`); the noise is that of the
    rounded scale, never less.
    """
    _check_scale("scale", scale)
    shape = _shape_of(size)
    n = math.prod(shape)
    if scale == 0 or n == 0:
        return np.zeros(shape, dtype=np.int64)
    t, s = rational_scale(scale)
    return _laplace_rational(rng, t, s, n).reshape(shape)


def rational_sigma(sigma):
    """The exact parameters the discrete Gaussian sampler uses for ``sigma``.

    Returns
    -------
    t, m, L : int
        Proposal scale ``t = floor(sigma) + 1``, and the variance parameter
        actually used, ``sigma^2 <= m t / L`` with ``L = 2^j`` and
        ``m = ceil(sigma^2 L / t)``. ``L`` is the largest power of two
        (at most ``2^64``) that keeps ``2 m t L`` below ``2^62``, so the
        relative increase of ``sigma^2`` is about ``2^-30 / sigma`` or
        less; above ``sigma ~ 1.5e9``, ``L = 1`` (increase below
        ``1 / sigma``).
    """
    t = math.floor(sigma) + 1
    var = Fraction(sigma) ** 2
    j = min(64, max(0, 30 - math.frexp(sigma)[1]))
    while True:
        L = 1 << j
        m = max(1, math.ceil(var * L / t))
        if j == 0 or 2 * m * t * L < _GAUSS_DEN_LIMIT:
            return t, m, L
        j -= 1


def _gaussian_accept(rng, y, t, m, L):
    """Bernoulli(exp(-(|y| - m / L)^2 / (2 m t / L))) for each candidate, exactly.

    With ``w = |L |y| - m|`` and ``D = 2 m t L`` the exponent is
    ``gamma = w^2 / D = k + r / D``. ``exp(-gamma)`` is the product of
    ``k`` Bernoulli(``exp(-1)``) successes (``k <= G``, ``G`` from
    :func:`geometric_exp1`, drawn only where ``k >= 1`` is possible) and
    Bernoulli(``exp(-r / D)``). A float estimate of ``gamma`` only skips
    candidates with ``gamma > G + 1`` (rejected whatever the exact value);
    ``k`` and ``r`` are then computed exactly, in uint64 arithmetic modulo
    2^64 corrected by one ``D`` (needs ``D < 2^62``), or in Python integers
    above that.
    """
    D = 2 * m * t * L
    a = np.abs(y)
    gamma = (a.astype(np.float64) * L - float(m)) ** 2 / float(D)
    # A count is only needed where k >= 1 is possible; elsewhere k = 0 <= G.
    g = np.zeros(y.size, dtype=np.int64)
    need = np.flatnonzero(gamma >= 0.999)
    g[need] = geometric_exp1(rng, need.size)
    accept = np.zeros(y.size, dtype=bool)
    maybe = np.flatnonzero(gamma < g + 1.5)
    if D < _GAUSS_DEN_LIMIT:
        w = np.abs(a[maybe] * L - m).astype(np.uint64)
        k = np.floor(gamma[maybe]).astype(np.uint64)
        d = np.uint64(D)
        r = w * w - k * d  # exact modulo 2^64
        low = (r >= d) & (r < 2 * d)  # k one too small
        high = r >= np.uint64(2**64 - D)  # k one too large
        k[low] += np.uint64(1)
        r[low] -= d
        k[high] -= np.uint64(1)
        r[high] += d
        assert np.all(r < d), "float estimate of gamma off by more than 1"
        k = k.astype(np.int64)
    else:
        w = np.abs(a[maybe].astype(object) * L - m)
        k = (w * w) // D
        r = w * w - k * D
        k = k.astype(np.int64)
    possible = k <= g[maybe]
    idx = maybe[possible]
    accept[idx] = bernoulli_exp(rng, r[possible], D)
    return accept


def discrete_gaussian(sigma, size, rng):
    """Draw discrete Gaussian noise, P(x) proportional to exp(-x^2 / (2 sigma^2)).

    Parameters
    ----------
    sigma : float
        Scale ``sigma >= 0``, at most ``2^52``. An integer query of L2
        sensitivity ``s`` plus this noise is ``s^2 / (2 sigma^2)``-zCDP
        [2]_. ``sigma=0`` returns zeros.
    size : int or tuple of int
        Output shape.
    rng : NoiseSource
        Noise source, from :func:`~fedsk.privacy.noise_generator`.

    Returns
    -------
    noise : ndarray of int64

    Notes
    -----
    Exact: Algorithm 3 of [2]_, rejection from discrete Laplace proposals
    of scale ``floor(sigma) + 1`` with an exact Bernoulli acceptance, all on
    uniform integers from ``rng`` in integer arithmetic. ``sigma^2`` is
    first rounded up to a rational (:func:`rational_sigma`); the noise is
    that of the rounded variance parameter, never less.
    """
    _check_scale("sigma", sigma)
    shape = _shape_of(size)
    n = math.prod(shape)
    if sigma == 0 or n == 0:
        return np.zeros(shape, dtype=np.int64)
    t, m, L = rational_sigma(sigma)
    out = np.empty(n, dtype=np.int64)
    rate = 0.7 if sigma >= 2 else 0.45  # first guess of the acceptance rate
    filled = 0
    while filled < n:
        batch = int((n - filled) / rate * 1.05) + 16
        y = _laplace_rational(rng, t, 1, batch)
        y = y[_gaussian_accept(rng, y, t, m, L)]
        rate = max(y.size / batch, 0.05)
        take = min(y.size, n - filled)
        out[filled : filled + take] = y[:take]
        filled += take
    return out.reshape(shape)


def discrete_laplace_std(scale):
    """Standard deviation of :func:`discrete_laplace` noise of this scale."""
    if scale == 0:
        return 0.0
    q = math.exp(-1.0 / scale)
    return math.sqrt(2 * q) / (1 - q)


def laplace_scale(epsilon, l1_sensitivity):
    """Discrete Laplace scale that makes a query ``epsilon``-DP.

    Parameters
    ----------
    epsilon : float
        Privacy loss, ``> 0``; ``inf`` means no noise.
    l1_sensitivity : float
        L1 sensitivity of the integer query, ``>= 0``.

    Returns
    -------
    scale : float
    """
    _check_epsilon(epsilon)
    if math.isinf(epsilon) or l1_sensitivity == 0:
        return 0.0
    return l1_sensitivity / epsilon


def gaussian_sigma(rho, l2_sensitivity):
    """Discrete Gaussian sigma that makes a query ``rho``-zCDP.

    Parameters
    ----------
    rho : float
        zCDP parameter, ``> 0``; ``inf`` means no noise.
    l2_sensitivity : float
        L2 sensitivity of the integer query, ``>= 0``.

    Returns
    -------
    sigma : float
    """
    if not rho > 0:
        raise ValueError(f"rho must be > 0; got {rho!r}.")
    if math.isinf(rho) or l2_sensitivity == 0:
        return 0.0
    return l2_sensitivity / math.sqrt(2 * rho)


@functools.lru_cache(maxsize=4096)
def zcdp_epsilon(rho, delta):
    """Epsilon of a ``rho``-zCDP release at ``delta``, through RDP [3]_.

    Uses dp-accounting's Renyi accountant, the same conversion that the
    ledgers use to compose releases.
    """
    if rho == 0:
        return 0.0
    if math.isinf(rho) or delta <= 0:
        return math.inf
    if delta >= 1:
        return 0.0
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.ZCDpEvent(rho))
    return float(accountant.get_epsilon(delta))


@functools.lru_cache(maxsize=4096)
def zcdp_rho(epsilon, delta):
    """Largest ``rho`` whose zCDP guarantee converts to ``(epsilon, delta)``.

    Parameters
    ----------
    epsilon : float
        Target epsilon, ``> 0``; ``inf`` gives ``rho = inf``.
    delta : float
        Target delta, in ``(0, 1)``.

    Returns
    -------
    rho : float
        Found by bisection on :func:`zcdp_epsilon`, so that
        ``zcdp_epsilon(rho, delta) <= epsilon`` holds exactly.
    """
    _check_epsilon(epsilon)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1) for zCDP; got {delta!r}.")
    if math.isinf(epsilon):
        return math.inf
    low, high = 0.0, epsilon  # rho <= epsilon always holds
    for _ in range(100):
        mid = (low + high) / 2
        if zcdp_epsilon(mid, delta) <= epsilon:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * high:
            break
    return low


def _check_epsilon(epsilon):
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0 (or inf); got {epsilon!r}.")
