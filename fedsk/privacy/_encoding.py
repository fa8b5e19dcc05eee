"""Grid encoding: how a real-valued statistic becomes an integer release.

A statistic is a list of blocks (arrays), each with its own sensitivity. To
release it, every block is divided by its sensitivity (so each block has
sensitivity 1 and gets an equal share of the budget), the whole vector is
rounded to a grid of step ``step``, and integer noise is added. Rounding the
sum of records can move each coordinate by one extra grid step between
neighbouring datasets, so the integer sensitivity is ``blocks / step`` plus
that rounding term (L1: ``+ n_coordinates``; L2: ``+ sqrt(n_coordinates)``).
``step`` is chosen so the rounding term is 1/1000 of the total.
"""

import math
from dataclasses import dataclass

import numpy as np

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
        return epsilon * fraction, 0.0, None
    rho = zcdp_rho(epsilon, delta) * fraction
    return zcdp_epsilon(rho, delta * fraction), delta * fraction, rho


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

    @classmethod
    def calibrate(cls, block_shapes, block_sensitivities, *, epsilon, rho):
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
        """
        gaussian = rho is not None
        scales = []
        for l1, l2 in block_sensitivities:
            s = l2 if gaussian else l1
            if not math.isfinite(s):
                raise ValueError(
                    "A statistic has infinite sensitivity: the data are not "
                    "bounded. Pass bounds (or data_norm) and y_bounds."
                )
            scales.append(s if s > 0 else 1.0)
        n_blocks = len(block_shapes)
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
        return cls(
            mechanism="discrete_gaussian" if gaussian else "discrete_laplace",
            block_shapes=tuple(tuple(shape) for shape in block_shapes),
            block_scales=tuple(scales),
            step=step,
            sensitivity=sensitivity,
            noise_scale=noise_scale,
        )

    def encode(self, blocks):
        """Round the blocks, each divided by its scale, to the integer grid."""
        flat = np.concatenate(
            [np.ravel(b) / s for b, s in zip(blocks, self.block_scales)]
        )
        return np.rint(flat / self.step).astype(np.int64)

    def noise(self, rng):
        """Draw integer noise for one encoded vector."""
        n = sum(math.prod(shape) for shape in self.block_shapes)
        if self.mechanism == "discrete_gaussian":
            return discrete_gaussian(self.noise_scale, n, rng)
        return discrete_laplace(self.noise_scale, n, rng)

    def decode(self, encoded):
        """Map an integer vector back to blocks in the statistic's units."""
        blocks, start = [], 0
        for shape, scale in zip(self.block_shapes, self.block_scales):
            size = math.prod(shape)
            chunk = encoded[start : start + size].astype(float) * (self.step * scale)
            blocks.append(chunk.reshape(shape))
            start += size
        return blocks

    def noise_std(self):
        """Standard deviation of the noise on each block, in its own units."""
        if self.mechanism == "discrete_gaussian":
            std = self.noise_scale
        else:
            std = discrete_laplace_std(self.noise_scale)
        return [std * self.step * scale for scale in self.block_scales]
