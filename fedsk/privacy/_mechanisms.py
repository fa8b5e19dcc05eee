"""Integer noise mechanisms and their calibration.

Textbook floating-point Laplace and Gaussian noise leaks the exact input
through the set of reachable low-order bits (Mironov 2012). fedsk therefore
releases every statistic on a fixed grid: the statistic is rounded to an
integer number of grid steps (the rounding is counted in the sensitivity by
the caller), and integer noise is added: discrete Laplace for pure
epsilon-DP, discrete Gaussian for approximate DP, calibrated through
zero-concentrated DP. The samplers are vectorised with numpy.

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

import dp_accounting
import numpy as np
from dp_accounting import rdp


def discrete_laplace(scale, size, rng):
    """Draw discrete Laplace noise, P(x) proportional to exp(-|x| / scale).

    Parameters
    ----------
    scale : float
        Scale ``t >= 0``. An integer query of L1 sensitivity ``s`` plus this
        noise is ``(s / t)``-DP [2]_. ``scale=0`` returns zeros.
    size : int or tuple of int
        Output shape.
    rng : numpy.random.Generator
        Noise source.

    Returns
    -------
    noise : ndarray of int64

    Notes
    -----
    Sampled as the difference of two geometric variables. The geometric
    sampler works in double precision, so probabilities below about 2**-52
    in the far tails are not represented exactly.
    """
    if scale < 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be finite and >= 0; got {scale!r}.")
    if scale == 0:
        return np.zeros(size, dtype=np.int64)
    p = -math.expm1(-1.0 / scale)
    return rng.geometric(p, size).astype(np.int64) - rng.geometric(p, size)


def discrete_gaussian(sigma, size, rng):
    """Draw discrete Gaussian noise, P(x) proportional to exp(-x^2 / (2 sigma^2)).

    Parameters
    ----------
    sigma : float
        Scale ``sigma >= 0``. An integer query of L2 sensitivity ``s`` plus
        this noise is ``s^2 / (2 sigma^2)``-zCDP [2]_. ``sigma=0`` returns
        zeros.
    size : int or tuple of int
        Output shape.
    rng : numpy.random.Generator
        Noise source.

    Returns
    -------
    noise : ndarray of int64

    Notes
    -----
    Rejection sampling from discrete Laplace proposals (Algorithm 3 of [2]_),
    vectorised over the whole output.
    """
    if sigma < 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be finite and >= 0; got {sigma!r}.")
    shape = (size,) if np.isscalar(size) else tuple(size)
    n = math.prod(shape)
    if sigma == 0 or n == 0:
        return np.zeros(shape, dtype=np.int64)
    t = math.floor(sigma) + 1
    out = np.empty(n, dtype=np.int64)
    filled = 0
    while filled < n:
        want = n - filled
        batch = int(want * 1.6) + 16  # acceptance rate is above 0.6 [2]
        y = discrete_laplace(t, batch, rng)
        log_accept = -((np.abs(y) - sigma**2 / t) ** 2) / (2 * sigma**2)
        accepted = y[np.log(rng.random(batch)) < log_accept][:want]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
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
