"""Grid encoding: how a real-valued statistic becomes an integer release.

A statistic is a list of blocks (arrays), each with its own sensitivity. To
release it, every block is divided by its sensitivity over its budget share
(by default equal shares: each block then has sensitivity 1), the whole
vector is rounded to a grid of step ``step``, and integer noise is added.
Rounding the sum of records can move each coordinate by one extra grid
step between neighbouring datasets, so the integer sensitivity is
``blocks / step`` plus that rounding term (L1: ``+ n_coordinates``; L2:
``+ sqrt(n_coordinates)``). ``step`` is chosen so the rounding term is
1/1000 of the total.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._distributed import distributed_gaussian_sigma, polya_laplace_share
from ._mechanisms import (
    discrete_gaussian,
    discrete_laplace,
    discrete_laplace_std,
    gaussian_sigma,
    laplace_scale,
    zcdp_epsilon,
    zcdp_rho,
)

_ROUNDING_SHARE = 1e-3


def budget_share(epsilon, delta, fraction):
    """Split ``fraction`` of an ``(epsilon, delta)`` budget for one release.

    Pure budgets (``delta == 0``) split epsilon linearly. Approximate budgets
    split the zCDP parameter ``rho`` that converts to ``(epsilon, delta)``, so
    releases that use fractions adding up to 1 compose to exactly the budget.

    Returns
    -------
    epsilon_i, delta_i, rho_i : float, float, float or None
        The release's own guarantee; ``rho_i`` is ``None`` for pure DP.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}.")
    if math.isinf(epsilon):
        return math.inf, 0.0, None
    if delta == 0:
        return _product_down(epsilon, fraction), 0.0, None
    rho = _product_down(zcdp_rho(epsilon, delta), fraction)
    delta_i = _product_down(delta, fraction)
    return zcdp_epsilon(rho, delta_i), delta_i, rho


def _product_down(a, b):
    """``a * b`` rounded down, never up: shares whose fractions add up to 1
    then add up to at most the whole, so ledgers need no slack for rounding."""
    product = a * b
    if Fraction(product) > Fraction(a) * Fraction(b):
        product = math.nextafter(product, 0.0)
    return product


@dataclass(frozen=True)
class GridEncoding:
    """The public calibration of one release of a block statistic.

    Build it with :meth:`calibrate`. ``encode`` and ``decode`` are the same
    on both sides of the boundary; ``noise`` draws the integer noise.
    """

    mechanism: str
    block_shapes: tuple
    block_scales: tuple
    step: float
    sensitivity: float
    noise_scale: float
    # the largest block weight (n_blocks * share, its root under zCDP)
    record_steps: float = 1.0

    @classmethod
    def calibrate(cls, block_shapes, block_sensitivities, *, epsilon, rho, shares=None):
        """Calibrate a release to a pure ``epsilon`` or to ``rho``-zCDP.

        Parameters
        ----------
        block_shapes : list of tuple
            Shape of each block.
        block_sensitivities : list of (float, float)
            ``(l1, l2)`` sensitivity of each block, after clipping.
        epsilon : float
            Used when ``rho`` is None (discrete Laplace).
        rho : float or None
            zCDP parameter (discrete Gaussian).
        shares : list of float or None
            Each block's share of the budget (of epsilon, or of rho), adding
            up to 1; None: equal shares. Block ``b`` is divided by its
            sensitivity over ``n_blocks * shares[b]`` (the root of that under
            zCDP), so the blocks' sensitivities on the grid still add up to
            ``n_blocks`` (their squares, under zCDP).
        """
        gaussian = rho is not None
        n_blocks = len(block_shapes)
        if shares is None:
            shares = [1.0 / n_blocks] * n_blocks
        if len(shares) != n_blocks or not all(0 < f <= 1 for f in shares):
            raise ValueError(f"shares must be one in (0, 1] per block; got {shares!r}.")
        if not math.isclose(math.fsum(shares), 1.0, rel_tol=1e-12):
            raise ValueError(f"shares must add up to 1; got {shares!r}.")
        scales, weights = [], []
        for (l1, l2), share in zip(block_sensitivities, shares):
            s = l2 if gaussian else l1
            if not math.isfinite(s):
                raise ValueError(
                    "A statistic has infinite sensitivity: the data are not "
                    "bounded. Pass bounds (or data_norm) and y_bounds."
                )
            weight = math.sqrt(n_blocks * share) if gaussian else n_blocks * share
            weights.append(weight)
            scales.append((s if s > 0 else 1.0) / weight)
        n_coords = sum(math.prod(shape) for shape in block_shapes)
        if gaussian:
            rounding = math.sqrt(n_coords)
            step = math.sqrt(n_blocks) * _ROUNDING_SHARE / rounding
            sensitivity = math.sqrt(n_blocks) / step + rounding
            noise_scale = gaussian_sigma(rho, sensitivity)
        else:
            step = n_blocks * _ROUNDING_SHARE / n_coords
            sensitivity = n_blocks / step + n_coords
            noise_scale = laplace_scale(epsilon, sensitivity)
        if not math.isfinite(noise_scale):
            raise ValueError(
                "epsilon is too small: the noise scale it needs overflows a float. "
                "Nothing was released or charged."
            )
        return cls(
            mechanism="discrete_gaussian" if gaussian else "discrete_laplace",
            block_shapes=tuple(tuple(shape) for shape in block_shapes),
            block_scales=tuple(scales),
            step=step,
            sensitivity=sensitivity,
            noise_scale=noise_scale,
            record_steps=max(weights, default=1.0),
        )

    def encode(self, blocks):
        """Round the blocks, each divided by its scale, to the integer grid.

        Raises
        ------
        ValueError
            If a value is NaN or infinite (it would encode to garbage).
        """
        flat = np.concatenate(
            [np.ravel(b) / s for b, s in zip(blocks, self.block_scales)]
        )
        if not np.all(np.isfinite(flat)):
            raise ValueError("the statistic contains NaN or infinite values")
        if np.any(np.abs(flat) / self.step >= 2.0**63):
            raise ValueError("the statistic is too large for the integer grid")
        return np.rint(flat / self.step).astype(np.int64)

    @property
    def n_coords(self):
        """Length of the encoded vector."""
        return sum(math.prod(shape) for shape in self.block_shapes)

    def noise(self, rng, n_parties=1):
        """Draw integer noise for one encoded vector.

        With ``n_parties > 1``, one party's share of distributed noise (see
        :mod:`fedsk.privacy._distributed`): the shares of ``n_parties``
        parties add up to this release's guarantee.
        """
        n = self.n_coords
        if self.mechanism == "discrete_gaussian":
            return discrete_gaussian(self.share_sigma(n_parties), n, rng)
        if n_parties == 1:
            return discrete_laplace(self.noise_scale, n, rng)
        return polya_laplace_share(self.noise_scale, 1.0 / n_parties, n, rng)

    def share_sigma(self, n_parties):
        """Discrete Gaussian parameter of one of ``n_parties`` shares."""
        if n_parties == 1:
            return self.noise_scale
        rho = self.sensitivity**2 / (2 * self.noise_scale**2)
        return distributed_gaussian_sigma(
            rho, self.sensitivity, self.n_coords, n_parties
        )

    def max_rows(self, n_parties):
        """Most records per party for which the encoded total cannot wrap.

        Each block is divided by its sensitivity over its weight (at most
        ``record_steps``), so one record moves a party's coordinate by at
        most ``record_steps / step`` grid steps (plus half a step of
        rounding). Each party's noise (a full draw or a share) exceeds 95
        Laplace scales or 14 Gaussian sigmas with probability below 1e-40.
        With ``n_parties`` parties of at most this many records, the encoded
        total stays within int64 (and so within the ring modulo 2^64).
        """
        per_party_noise = (95 if self.mechanism == "discrete_laplace" else 14) * (
            self.noise_scale
        ) + 1
        room = (2**63 - 1) // n_parties - math.ceil(per_party_noise) - 1
        rows = max(int(room * self.step / self.record_steps), 0)
        while rows > 0 and rows * self.record_steps / self.step + 1 > room:
            rows -= 1
        return rows

    def decode(self, encoded):
        """Map an integer vector back to blocks in the statistic's units."""
        blocks, start = [], 0
        for shape, scale in zip(self.block_shapes, self.block_scales):
            size = math.prod(shape)
            chunk = encoded[start : start + size].astype(float) * (self.step * scale)
            blocks.append(chunk.reshape(shape))
            start += size
        return blocks

    def noise_std(self, n_parties=1, n_summed=None):
        """Standard deviation of the noise on each block, in its own units.

        ``n_parties``: the noise is a sum of distributed shares, each
        calibrated so that ``n_parties`` of them carry the guarantee;
        ``n_summed`` (default ``n_parties``) of them were summed (more than
        ``n_parties`` when fewer parties than the whole federation were
        required to survive, and more survived: more noise, never less).
        """
        n_summed = n_parties if n_summed is None else n_summed
        if self.mechanism == "discrete_gaussian":
            std = math.sqrt(n_summed) * self.share_sigma(n_parties)
        else:
            std = discrete_laplace_std(self.noise_scale) * math.sqrt(
                n_summed / n_parties
            )
        return [std * self.step * scale for scale in self.block_scales]
