"""Grid encoding: how a real-valued statistic becomes an integer release.

A statistic is a list of blocks (arrays), each with its own sensitivity. To
release it, every block is divided by its sensitivity over its budget share
(by default equal shares: each block then has sensitivity 1), the whole
vector is rounded to a grid of step ``step``, and integer noise is added.
Rounding the sum of records can move each coordinate by one extra grid
step between neighbouring datasets, so the integer sensitivity is
``blocks / step`` plus that rounding term (L1: ``+ n_coordinates``; L2:
``+ sqrt(n_coordinates)``; L-infinity: ``+ 1``). ``step`` is chosen so the
rounding term is 1/1000 of the total.

Under pure DP a statistic whose blocks also bound how far one record moves
any single coordinate (a third, L-infinity sensitivity) is released with
the discrete L-infinity K-norm mechanism (:mod:`fedsk.privacy._knorm`)
where that is less noisy than discrete Laplace, unless the noise must be
split into parties' shares.
"""

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._distributed import distributed_gaussian_sigma, polya_laplace_share
from ._knorm import discrete_linf, discrete_linf_std, linf_radius_bound
from ._mechanisms import (
    MAX_NOISE_SCALE,
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
    def calibrate(
        cls,
        block_shapes,
        block_sensitivities,
        *,
        epsilon,
        rho,
        shares=None,
        divisible=False,
    ):
        """Calibrate a release to a pure ``epsilon`` or to ``rho``-zCDP.

        Parameters
        ----------
        block_shapes : list of tuple
            Shape of each block.
        block_sensitivities : list of tuple
            ``(l1, l2)`` or ``(l1, l2, linf)`` sensitivity of each block,
            after clipping: how far one record moves it in L1 and L2 norm,
            and any one of its coordinates.
        epsilon : float
            Used when ``rho`` is None (pure DP).
        rho : float or None
            zCDP parameter (discrete Gaussian).
        shares : list of float or None
            Each block's share of the budget (of epsilon, or of rho), adding
            up to 1; None: equal shares. Block ``b`` is divided by its
            sensitivity over ``n_blocks * shares[b]`` (the root of that under
            zCDP), so the blocks' sensitivities on the grid still add up to
            ``n_blocks`` (their squares, under zCDP).
        divisible : bool, default=False
            Whether the noise will be drawn as parties' shares (secure
            aggregation): only discrete Laplace and Gaussian divide so.

        Notes
        -----
        Under pure DP, when every block has an ``linf`` sensitivity and
        ``divisible`` is False, the release uses the L-infinity K-norm
        mechanism if its noise variance, summed over the coordinates in the
        blocks' units, is below discrete Laplace's. Its blocks are divided
        by ``linf`` over their weight, and one record then moves every
        coordinate by at most the largest weight; its grid keeps the
        rounding term at 1/1000 and at most ``1 / (n_coords epsilon)`` of
        the sensitivity, where the sampler keeps most of its draws.
        """
        gaussian = rho is not None
        n_blocks = len(block_shapes)
        if shares is None:
            shares = [1.0 / n_blocks] * n_blocks
        if len(shares) != n_blocks or not all(0 < f <= 1 for f in shares):
            raise ValueError(f"shares must be one in (0, 1] per block; got {shares!r}.")
        if not math.isclose(math.fsum(shares), 1.0, rel_tol=1e-12):
            raise ValueError(f"shares must add up to 1; got {shares!r}.")
        sensitivities = [tuple(b) for b in block_sensitivities]
        if any(not math.isfinite(b[1 if gaussian else 0]) for b in sensitivities):
            raise ValueError(
                "A statistic has infinite sensitivity: the data are not "
                "bounded. Pass bounds (or data_norm) and y_bounds."
            )
        weights = [
            math.sqrt(n_blocks * share) if gaussian else n_blocks * share
            for share in shares
        ]
        sizes = [math.prod(shape) for shape in block_shapes]
        n_coords = sum(sizes)
        # (mechanism, norm of the sensitivities, step, sensitivity, scale)
        if gaussian:
            rounding = math.sqrt(n_coords)
            step = math.sqrt(n_blocks) * _ROUNDING_SHARE / rounding
            sensitivity = math.sqrt(n_blocks) / step + rounding
            noise_scale = gaussian_sigma(rho, sensitivity)
            calibration = ("discrete_gaussian", 1, step, sensitivity, noise_scale)
        else:
            step = n_blocks * _ROUNDING_SHARE / n_coords
            sensitivity = n_blocks / step + n_coords
            noise_scale = laplace_scale(epsilon, sensitivity)
            calibration = ("discrete_laplace", 0, step, sensitivity, noise_scale)
            if not divisible and all(len(b) == 3 for b in sensitivities):
                calibration = min(
                    calibration,
                    _linf_calibration(weights, n_coords, epsilon),
                    key=lambda c: _noise_variance(c, sizes, sensitivities, weights),
                )
        mechanism, norm, step, sensitivity, noise_scale = calibration
        scales = _block_scales(sensitivities, norm, weights)
        if not math.isfinite(noise_scale):
            raise ValueError(
                "epsilon is too small: the noise scale it needs overflows a float. "
                "Nothing was released or charged."
            )
        return cls(
            mechanism=mechanism,
            block_shapes=tuple(tuple(shape) for shape in block_shapes),
            block_scales=scales,
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
        if self.mechanism == "discrete_linf":
            if n_parties != 1:
                raise ValueError(
                    "L-infinity K-norm noise cannot be split into shares; "
                    "calibrate with divisible=True."
                )
            return discrete_linf(self.noise_scale, n, rng)
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
        if self.mechanism == "discrete_linf":
            per_party_noise = linf_radius_bound(self.noise_scale, self.n_coords)
        else:
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
        elif self.mechanism == "discrete_linf":
            std = discrete_linf_std(self.noise_scale, self.n_coords)
        else:
            std = discrete_laplace_std(self.noise_scale) * math.sqrt(
                n_summed / n_parties
            )
        return [std * self.step * scale for scale in self.block_scales]


def _block_scales(sensitivities, norm, weights):
    """Each block's divisor: its sensitivity in ``norm`` over its weight."""
    return tuple(
        (b[norm] if b[norm] > 0 else 1.0) / w for b, w in zip(sensitivities, weights)
    )


def _linf_calibration(weights, n_coords, epsilon):
    """The L-infinity K-norm calibration, as ``calibrate`` builds it.

    One record moves a coordinate of block ``b`` by at most ``weights[b]``
    on the scaled blocks; rounding adds one grid step. The grid has
    ``R = max(1000, n_coords epsilon)`` steps per largest weight, so the
    rounding term is at most 1/1000 and the sampler's scale (``R + 1``
    over epsilon) at least ``n_coords``, where it keeps most draws.
    """
    steps = max(1.0 / _ROUNDING_SHARE, n_coords * epsilon)
    sensitivity = steps + 1.0
    noise_scale = laplace_scale(epsilon, sensitivity)
    if linf_radius_bound(noise_scale, n_coords) > MAX_NOISE_SCALE:
        noise_scale = math.inf  # beyond int64: Laplace is chosen
    return ("discrete_linf", 2, max(weights) / steps, sensitivity, noise_scale)


def _noise_variance(calibration, sizes, sensitivities, weights):
    """Noise variance summed over the coordinates, in the blocks' units."""
    mechanism, norm, step, _, noise_scale = calibration
    if not noise_scale <= MAX_NOISE_SCALE:  # refused when sampled
        return math.inf
    if mechanism == "discrete_linf":
        std = discrete_linf_std(noise_scale, sum(sizes))
    else:
        std = discrete_laplace_std(noise_scale)
    scales = _block_scales(sensitivities, norm, weights)
    return sum(size * (std * step * scale) ** 2 for size, scale in zip(sizes, scales))
