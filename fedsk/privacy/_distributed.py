"""Distributed noise: every party adds a share, the sum carries central noise.

With secure aggregation nobody sees a party's statistic, so nobody can add
the noise for everyone: each party adds a share of it to its own encoded
statistic before it leaves, and the shares add up to (about) the noise a
trusted aggregator would have added once.

- Discrete Laplace is infinitely divisible: ``DLap(t)`` is the difference of
  two geometric variables, and a geometric variable is the sum of ``n``
  independent Polya (negative binomial) variables of shape ``1 / n``. Each
  party adds the difference of two such Polya shares; the sum is exactly
  ``DLap(t)``. If parties drop out, each survivor adds a top-up share of
  shape ``(n - m) / (n m)`` (``m`` survivors), which restores it exactly.
- A sum of discrete Gaussians is not a discrete Gaussian, but is close to
  one: Kairouz, Liu and Steinke bound its concentrated-DP parameter.
  :func:`distributed_gaussian_sigma` calibrates each party's share so that
  the bound meets the target ``rho`` for any number of identical shares
  from ``n`` to ``2 n``; after dropouts each survivor adds whole extra
  shares until there are at least ``n`` (never more than ``2 n``).

References
----------
.. [1] P. Kairouz, Z. Liu, T. Steinke, "The distributed discrete Gaussian
   mechanism for federated learning with secure aggregation", ICML 2021.
"""

import functools
import math

import numpy as np


def polya_laplace_share(scale, shape, size, rng):
    """One party's share of discrete Laplace noise of ``scale``.

    Parameters
    ----------
    scale : float
        Scale ``t`` of the full discrete Laplace noise.
    shape : float
        Share of it, in (0, 1]: ``1 / n`` for one of ``n`` parties.
    size : int
    rng : numpy.random.Generator

    Returns
    -------
    noise : ndarray of int64
        The difference of two Polya(``shape``, ``exp(-1 / t)``) variables.
        numpy samples them as Poisson mixtures of Gamma variables in double
        precision, so far-tail probabilities are approximate.
    """
    if scale == 0:
        return np.zeros(size, dtype=np.int64)
    success = -math.expm1(-1.0 / scale)
    first = rng.negative_binomial(shape, success, size).astype(np.int64)
    return first - rng.negative_binomial(shape, success, size)


def _tau(sigma, n_parties):
    k = np.arange(1, n_parties)
    return 10.0 * float(np.sum(np.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1))))


def distributed_rho(sigma, sensitivity, n_coords, n_shares, max_shares=None):
    """zCDP ``rho`` of a sum of discrete Gaussian shares.

    Each share has parameter ``sigma`` (in grid steps) on each of
    ``n_coords`` coordinates; ``sensitivity`` is the L2 sensitivity of the
    integer statistic. Theorem of [1]_: ``rho = eps^2 / 2`` with
    ``eps^2 = sensitivity^2 / (N sigma^2) + tau(N) * n_coords / 2`` for ``N``
    shares. With ``max_shares``, the bound holds for every ``N`` from
    ``n_shares`` to ``max_shares`` (the first term falls with ``N``, ``tau``
    grows).
    """
    most = n_shares if max_shares is None else max_shares
    if most == 1:
        return sensitivity**2 / (2 * sigma**2)
    eps_sq = sensitivity**2 / (n_shares * sigma**2)
    eps_sq += _tau(sigma, most) * n_coords / 2
    return eps_sq / 2


@functools.lru_cache(maxsize=1024)
def distributed_gaussian_sigma(rho, sensitivity, n_coords, n_parties):
    """Smallest share ``sigma`` whose sum is ``rho``-zCDP for ``n_parties`` to
    ``2 n_parties`` shares."""

    def rho_of(sigma):
        return distributed_rho(sigma, sensitivity, n_coords, n_parties, 2 * n_parties)

    low = sensitivity / math.sqrt(2 * rho * n_parties)  # tau = 0
    high = low
    while rho_of(high) > rho:
        high *= 2
    if high == low:
        return low
    for _ in range(60):
        mid = (low + high) / 2
        if rho_of(mid) > rho:
            low = mid
        else:
            high = mid
    return high
