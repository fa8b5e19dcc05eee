"""The discrete l-infinity K-norm mechanism: less noise for box-bounded vectors.

Most pure-DP releases of fedsk sum, over records, a vector whose every
coordinate is bounded on its own: a gradient ``g x`` with ``|g| <= c`` and
each ``|x_j| <= 1``, a Hessian's entries ``h x_i x_j``. Between neighbouring
datasets the sum moves within a cube of half-side ``c``. Laplace noise
calibrated to the cube's L1 diameter, ``n c`` for ``n`` coordinates, pays
for a record that moves every coordinate by ``c`` at once in every
direction. The K-norm mechanism of Hardt and Talwar [1]_ shapes the noise
like the cube instead: the density is proportional to
``exp(-epsilon |z|_inf / c)``. Per coordinate, its variance is about
``(n + 1) (n + 2) / 3`` times ``(c / epsilon)^2``, against ``2 n^2`` for
Laplace: 1/4 of it at ``n = 7``, tending to 1/6 (a noise standard
deviation 2.4 times smaller) as ``n`` grows [2]_.

On fedsk's integer grid the noise is integer: ``P(z)`` proportional to
``q^(|z|_inf)``, ``q = exp(-1 / scale)``. An integer query whose neighbours
differ by at most ``S`` in every coordinate, plus this noise, is
``(S / scale)``-DP, since ``|z + d|_inf - |z|_inf <= |d|_inf``. It is
sampled exactly (:func:`discrete_linf`), from the same uniform integers as
the other samplers.

Its noise is not a sum of independent shares, so secure aggregation, where
every party adds a share, keeps discrete Laplace (see
:meth:`~fedsk.privacy.GridEncoding.calibrate`).

References
----------
.. [1] M. Hardt, K. Talwar, "On the geometry of differential privacy",
   STOC 2010.
.. [2] J. Awan, A. Slavkovic, "Structure and sensitivity in differential
   privacy: comparing K-norm mechanisms", JASA 2021.
"""

import math

import numpy as np

from ._mechanisms import _check_scale, _shape_of, geometric_rational, rational_scale
from ._random import uniform_below

# The radius M is drawn below this, so that 2 M + 2 n stays within uint64.
_RADIUS_LIMIT = 2**61
# Smallest scale per coordinate sampled: a draw is kept with probability
# about exp(-n / (2 scale)), 0.14 here (GridEncoding's scales are >= n).
MIN_SCALE_PER_COORDINATE = 0.25


def discrete_linf(scale, size, rng, n_draws=None):
    """Draw an integer vector ``z``, ``P(z)`` proportional to ``exp(-|z|_inf / scale)``.

    Parameters
    ----------
    scale : float
        Scale: 0 (zeros) or at least ``n / 4`` for ``n`` coordinates. An
        integer query whose neighbours differ by at most ``S`` in every
        coordinate, plus this noise, is ``(S / scale)``-DP.
    size : int or tuple of int
        Shape of the one vector drawn (its coordinates are not independent).
    rng : NoiseSource
        Noise source, from :func:`~fedsk.privacy.noise_generator`.
    n_draws : int or None, default=None
        With a number, that many independent vectors, stacked along a new
        first axis (what an audit of many releases needs).

    Returns
    -------
    noise : ndarray of int64

    Notes
    -----
    ``z`` is uniform in the integer cube ``[-M, M]^n`` of a random radius
    ``M`` whose law is proportional to ``(2M + 1)^n q^M``: the mixture
    gives ``P(z)`` proportional to the sum over ``M >= |z|_inf`` of
    ``q^M``, that is to ``q^(|z|_inf)``. ``M`` is drawn by rejection from
    a sum of ``n + 1`` geometric variables, whose law is
    ``C(M + n, n) q^M``, kept with probability
    ``prod_{i=1..n} (2M + 1) / (2M + 2i)``, the ratio of the two up to a
    constant. Every step is exact integer arithmetic: ``q`` is
    ``exp(-s / t)`` of the rational
    :func:`~fedsk.privacy._mechanisms.rational_scale` (the noise of the
    scale rounded up, never less), and the acceptance is ``n`` exact
    Bernoulli draws of rational probabilities. A draw is kept with
    probability about ``exp(-n / (2 scale))``: at least 0.6 for the
    calibrations of :class:`~fedsk.privacy.GridEncoding`, and the smallest
    scale taken, ``n / 4``, keeps 0.14.
    """
    _check_scale("scale", scale)
    shape = _shape_of(size)
    n = math.prod(shape)
    count = 1 if n_draws is None else int(n_draws)
    out_shape = shape if n_draws is None else (count, *shape)
    if scale == 0 or n == 0 or count == 0:
        return np.zeros(out_shape, dtype=np.int64)
    if scale < n * MIN_SCALE_PER_COORDINATE:
        raise ValueError(
            f"scale must be at least {MIN_SCALE_PER_COORDINATE} per coordinate "
            f"({n * MIN_SCALE_PER_COORDINATE:g} for {n}); got {scale!r}: the "
            "sampler would reject almost every draw."
        )
    t, s = rational_scale(scale)
    radii = _radii(rng, t, s, n, count)
    width = np.repeat(2 * radii + 1, n).astype(np.uint64)
    noise = uniform_below(rng, width).astype(np.int64) - np.repeat(radii, n)
    return noise.reshape(out_shape)


def _radii(rng, t, s, n, count):
    """``count`` exact radii of ``n``-coordinate noise (see ``discrete_linf``)."""
    out = np.empty(count, dtype=np.int64)
    steps = 2 * np.arange(1, n + 1, dtype=np.uint64)
    filled = 0
    while filled < count:
        batch = count - filled
        sums = geometric_rational(rng, t, s, batch * (n + 1)).reshape(batch, n + 1)
        if np.any(sums.max(axis=1) >= _RADIUS_LIMIT // (n + 1)):
            raise OverflowError("a noise value does not fit in int64")
        radius = sums.sum(axis=1)
        odd = (2 * radius + 1).astype(np.uint64)
        bounds = odd[:, None] - np.uint64(1) + steps[None, :]
        kept = radius[np.all(uniform_below(rng, bounds) < odd[:, None], axis=1)]
        out[filled : filled + kept.size] = kept
        filled += kept.size
    return out


def discrete_linf_std(scale, n):
    """Standard deviation of one coordinate of :func:`discrete_linf` noise.

    Parameters
    ----------
    scale : float
    n : int
        Number of coordinates of the vector.

    Notes
    -----
    Given the radius ``M``, a coordinate is uniform in ``[-M, M]``, of
    variance ``M (M + 1) / 3``. With ``u = M + 1/2`` the law of ``M`` is
    ``(2u)^n exp(-u / scale)`` on the half-integers, whose sums the
    integral of the Gamma(``n + 1``, ``scale``) density approximates
    (the midpoint rule; against the exact sum within 0.2% from scale 5,
    ``tests/test_knorm.py``), so ``E[M (M + 1)] = (n + 1) (n + 2)
    scale^2 - 1/4``.
    """
    if scale == 0:
        return 0.0
    return math.sqrt(((n + 1) * (n + 2) * scale**2 - 0.25) / 3)


def linf_radius_bound(scale, n):
    """A radius that :func:`discrete_linf` noise exceeds with probability about 1e-40.

    The Chernoff bound of the Gamma(``n + 1``, ``scale``) law that the
    radius follows up to the grid (``discrete_linf_std``): beyond
    ``2 (n + 1) + 150`` scales its tail is below ``exp(-92)``; 2 more grid
    steps for the half-integer shift.
    """
    return (2 * (n + 1) + 150) * scale + 2
