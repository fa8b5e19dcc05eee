"""Distributed noise: every party adds a share, the sum carries central noise.

With secure aggregation nobody sees a party's statistic, so nobody can add
the noise for everyone: each party adds a share of it to its own encoded
statistic before it leaves, and the shares add up to (about) the noise a
trusted aggregator would have added once.

- Discrete Laplace is infinitely divisible: ``DLap(t)`` is the difference of
  two geometric variables, and a geometric variable is the sum of ``n``
  independent Polya (negative binomial) variables of shape ``1 / n``. Each
  party adds the difference of two such Polya shares; the sum is
  ``DLap(t)``, exactly up to the double-precision steps of
  :func:`polya_laplace_share`. If parties drop out, each survivor adds a
  top-up share of shape ``(n - m) / (n m)`` (``m`` survivors), which
  restores it.
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
from fractions import Fraction

import numpy as np
from scipy.special import expit, gammaln

from ._mechanisms import _check_scale, geometric_rational, rational_scale
from ._random import random_words

# A float share 1 / n (or (n - m) / (n m)) is read as the nearest fraction
# with a denominator up to this: exactly 1 / n for n up to 10^6 parties.
_MAX_SHAPE_DENOMINATOR = 10**6


def polya_laplace_share(scale, shape, size, rng):
    """One party's share of discrete Laplace noise of ``scale``.

    Parameters
    ----------
    scale : float
        Scale ``t`` of the full discrete Laplace noise, rounded up as in
        :func:`~fedsk.privacy.discrete_laplace`.
    shape : float or fractions.Fraction
        Share of it, in (0, 1]: ``1 / n`` for one of ``n`` parties. A float
        is read as the nearest fraction with a denominator of at most
        10^6, so ``1 / n`` is exactly ``1 / n``.
    size : int
    rng : NoiseSource
        From :func:`~fedsk.privacy.noise_generator`.

    Returns
    -------
    noise : ndarray of int64
        The difference of two Polya(``shape``, ``exp(-1 / t)``) variables.

    Notes
    -----
    A Polya (negative binomial) variable of shape ``r`` in (0, 1] is drawn
    as ``Binomial(G, B)``: ``G`` geometric, ``P(G = g)`` proportional to
    ``exp(-g / t)``, and ``B ~ Beta(r, 1 - r)``. (Poisson-gamma: a
    Gamma(``r``) variable is Exp(1) times Beta(``r, 1 - r``), and a Poisson
    count over an exponential time is geometric; thinning it by ``B`` gives
    the Poisson count of the Gamma time.) ``G`` is exact (the discrete
    Laplace sampler's own geometric draw), so the tail of a share is never
    cut. ``B`` (Johnk's method) and the binomial draw (inversion below a
    mean of 10, Hormann's BTRS above) are computed in double precision
    from the same cryptographic uniforms: their probabilities are exact up
    to double rounding (relative error about 1e-15), not exactly. With
    ``shape = 1`` the share is exactly discrete Laplace.
    """
    _check_scale("scale", scale)
    n = int(size)
    r = Fraction(shape).limit_denominator(_MAX_SHAPE_DENOMINATOR)
    if not 0 < r <= 1:
        raise ValueError(f"shape must be in (0, 1]; got {shape!r}.")
    if scale == 0 or n == 0:
        return np.zeros(n, dtype=np.int64)
    t, s = rational_scale(scale)
    return _polya(rng, t, s, r, n) - _polya(rng, t, s, r, n)


def _uniform01(rng, n):
    """Doubles in (0, 1): 53 random bits, offset by half a unit."""
    return ((random_words(rng, n) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _polya(rng, t, s, r, n):
    g = geometric_rational(rng, t, s, n)
    if r == 1:
        return g
    return _binomial(rng, g, _beta_complement_pair(rng, float(r), n))


def _beta_complement_pair(rng, a, n):
    """``n`` draws of Beta(``a``, ``1 - a``), ``0 < a < 1`` (Johnk's method).

    ``x = U^(1/a)``, ``y = V^(1/(1-a))``, kept when ``x + y <= 1`` (at least
    78% of the time when ``a + b = 1``); the draw is ``x / (x + y)``. Works
    in logarithms, so tiny ``x`` or ``y`` do not underflow.
    """
    b = 1.0 - a
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        lx = np.log(_uniform01(rng, todo.size)) / a
        ly = np.log(_uniform01(rng, todo.size)) / b
        top = np.maximum(lx, ly)
        keep = top + np.log(np.exp(lx - top) + np.exp(ly - top)) <= 0
        out[todo[keep]] = expit(lx[keep] - ly[keep])  # x / (x + y)
        todo = todo[~keep]
    return out


def _binomial(rng, n, p):
    """Binomial(``n``, ``p``) for int64 ``n >= 0`` and float ``p`` in [0, 1]."""
    flip = p > 0.5
    q = np.where(flip, 1.0 - p, p)
    k = np.zeros(n.size, dtype=np.int64)
    small = n * q < 10
    idx = np.flatnonzero(small & (n > 0) & (q > 0))
    k[idx] = _binomial_inversion(rng, n[idx], q[idx])
    idx = np.flatnonzero(~small)
    k[idx] = _binomial_btrs(rng, n[idx], q[idx])
    return np.where(flip, n - k, k)


def _binomial_inversion(rng, n, p):
    """Sequential search of the cdf, for ``n p < 10`` (a few dozen rounds)."""
    u = _uniform01(rng, n.size)
    ratio = p / (1.0 - p)
    k = np.zeros(n.size, dtype=np.int64)
    pk = np.exp(n * np.log1p(-p))
    cdf = pk.copy()
    todo = np.flatnonzero((u > cdf) & (k < n))
    while todo.size:
        pk[todo] *= (n[todo] - k[todo]) / (k[todo] + 1.0) * ratio[todo]
        k[todo] += 1
        cdf[todo] += pk[todo]
        todo = todo[(u[todo] > cdf[todo]) & (k[todo] < n[todo]) & (pk[todo] > 0)]
    return k


def _binomial_btrs(rng, n, p):
    """Hormann's transformed rejection (BTRS), for ``n p >= 10``, ``p <= 1/2``.

    W. Hormann, "The generation of binomial random variates", J. Statist.
    Comput. Simul. 46 (1993).
    """
    nf = n.astype(np.float64)
    q = 1.0 - p
    spq = np.sqrt(nf * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = nf * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = np.log(p / q)
    m = np.floor((nf + 1) * p)
    h = gammaln(m + 1) + gammaln(nf - m + 1)
    out = np.empty(n.size, dtype=np.int64)
    todo = np.arange(n.size)
    while todo.size:
        u = _uniform01(rng, todo.size) - 0.5
        v = _uniform01(rng, todo.size)
        us = 0.5 - np.abs(u)
        kf = np.floor((2 * a[todo] / us + b[todo]) * u + c[todo])
        inside = (kf >= 0) & (kf <= nf[todo])
        quick = inside & (us >= 0.07) & (v <= v_r[todo])
        lv = np.log(v * alpha[todo] / (a[todo] / (us * us) + b[todo]))
        kc = np.where(inside, kf, 0.0)
        bound = (
            h[todo]
            - gammaln(kc + 1)
            - gammaln(nf[todo] - kc + 1)
            + (kc - m[todo]) * lpq[todo]
        )
        done = quick | (inside & (lv <= bound))
        out[todo[done]] = kf[done].astype(np.int64)
        todo = todo[~done]
    return out


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
