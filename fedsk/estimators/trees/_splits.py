"""Split finding on one node's (noisy) histograms.

A node's histograms hold, per candidate feature and bin, either class
counts (one block of shape (m, n_bins, n_classes)) or two sums (blocks of
shape (m, n_bins)): target sums and row counts for a regression tree,
gradient and Hessian sums for boosting. Every candidate split "bins up to
``b`` go left" gets

- class counts: the impurity decrease times the node's rows, ``n I(node) -
  n_L I(left) - n_R I(right)`` (Gini or entropy);
- sums ``G`` and weights ``H``: ``G_L^2 / (H_L + l2) + G_R^2 / (H_R + l2) -
  G^2 / (H + l2)``, each squared sum less its noise variance (else a split
  summing more noisy cells looks better than it is). With ``G`` the target
  sum and ``H`` the row count this is the variance decrease times the rows;
  with gradients it is XGBoost's gain (Chen and Guestrin, 2016).

A side is trusted when its weight (rows, or Hessian) is at least the
minimum the estimator asks and ``MIN_SIDE_SNR`` noise standard deviations of
the sum of its cells: below that its gain is mostly noise.
"""

import math
from dataclasses import dataclass

import numpy as np

MIN_SIDE_SNR = 2.0


@dataclass(frozen=True)
class Candidates:
    """Every candidate split of one node; arrays of shape (m, n_bins - 1).

    Attributes
    ----------
    gain : ndarray
    valid : ndarray of bool
        Both sides trusted, and the right side holds a bin of its feature.
    left, right : list of ndarray
        Per block, the sums of each side (class counts with a last axis).
    cells_left, cells_right : ndarray
        Noisy cells summed into each side (to state their noise).
    weight_per_bin : ndarray of shape (m, n_bins)
        Rows (or Hessian) per bin.
    weight_std : float
        Noise standard deviation of one bin's weight.
    """

    gain: np.ndarray
    valid: np.ndarray
    left: list
    right: list
    cells_left: np.ndarray
    cells_right: np.ndarray
    weight_per_bin: np.ndarray
    weight_std: float


def impurity(counts, criterion):
    """Gini or entropy (bits) of class counts along the last axis."""
    n = counts.sum(axis=-1, keepdims=True)
    p = np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
    if criterion == "gini":
        return 1.0 - np.sum(p * p, axis=-1)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -np.sum(p * logs, axis=-1)


def candidates(blocks, stds, sizes, *, criterion=None, l2=0.0, min_weight=0.0):
    """The :class:`Candidates` of one node.

    Parameters
    ----------
    blocks : list of ndarray
        The node's histograms: ``[class counts (m, n_bins, k)]`` or ``[G,
        H]`` of shape (m, n_bins).
    stds : list of float
        Noise standard deviation of one cell of each block.
    sizes : ndarray of shape (m,)
        Bins of each candidate feature; cells beyond are set to 0.
    criterion : {"gini", "entropy"} or None
        For class counts.
    l2 : float, default=0.0
        L2 regularisation of the sums' gain.
    min_weight : float, default=0.0
        Smallest weight of a side.
    """
    m, n_bins = blocks[0].shape[:2]
    real = np.arange(n_bins)[None, :] < np.asarray(sizes)[:, None]
    cells_left = np.broadcast_to(np.arange(1, n_bins, dtype=float), (m, n_bins - 1))
    cells_right = np.asarray(sizes, dtype=float)[:, None] - cells_left
    if criterion is not None:
        hist = np.where(real[..., None], blocks[0], 0.0)
        k = hist.shape[-1]
        left = np.maximum(np.cumsum(hist, axis=1)[:, :-1], 0.0)
        total = np.maximum(hist.sum(axis=1), 0.0)
        right = np.maximum(total[:, None] - left, 0.0)
        n_left, n_right = left.sum(axis=-1), right.sum(axis=-1)
        gain = (
            (n_left + n_right) * impurity(total, criterion)[:, None]
            - n_left * impurity(left, criterion)
            - n_right * impurity(right, criterion)
        )
        weight_per_bin, weight_std = hist.sum(axis=-1), stds[0] * math.sqrt(k)
        left, right = [left], [right]
    else:
        G, H = (np.where(real, block, 0.0) for block in blocks)
        var_g = stds[0] ** 2
        GL, HL = np.cumsum(G, axis=1)[:, :-1], np.cumsum(H, axis=1)[:, :-1]
        G_total, H_total = G.sum(axis=1)[:, None], H.sum(axis=1)[:, None]
        GR, HR = G_total - GL, H_total - HL
        n_left, n_right = HL, HR

        def score(g, h, cells):
            square = g * g - cells * var_g
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(h + l2 > 0, square / (h + l2), 0.0)

        gain = (
            score(GL, HL, cells_left)
            + score(GR, HR, cells_right)
            - score(G_total, H_total, np.asarray(sizes, dtype=float)[:, None])
        )
        weight_per_bin, weight_std = H, stds[1]
        left, right = [GL, HL], [GR, HR]
    floor_left = np.maximum(min_weight, MIN_SIDE_SNR * weight_std * np.sqrt(cells_left))
    floor_right = np.maximum(
        min_weight, MIN_SIDE_SNR * weight_std * np.sqrt(np.maximum(cells_right, 0))
    )
    valid = (cells_right >= 1) & (n_left >= floor_left) & (n_right >= floor_right)
    valid &= np.isfinite(gain)
    return Candidates(
        gain, valid, left, right, cells_left, cells_right, weight_per_bin, weight_std
    )
