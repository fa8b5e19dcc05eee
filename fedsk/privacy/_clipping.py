"""Clipping: how far one record can move a statistic.

Sensitivities are only meaningful if every record is forced into a public
region before any statistic is computed. ``Clipping`` holds that public
region (per-feature ``bounds``, a row L2 norm ``data_norm``, target
``y_bounds``), applies it to a party's rows, and answers the questions a
sensitivity calculation asks of it (the largest absolute value of each
feature, the largest row norm).

With bounds, clipped rows are also mapped to [-1, 1] per feature: centred at
the middle of the bounds and divided by their half-range (both public). This
gives every feature the same sensitivity, so a feature with a small range is
not drowned by the noise that a feature with a large range needs; estimators
map the released statistics back, so the mapping never changes a noise-free
result.
"""

import math
from dataclasses import dataclass

import numpy as np


def clip_to_bounds(X, lower, upper):
    """Clip each column of ``X`` into ``[lower[j], upper[j]]`` (a new array)."""
    return np.clip(X, lower, upper)


def clip_row_norms(X, max_norm):
    """Scale every row of ``X`` whose L2 norm exceeds ``max_norm`` down to it.

    Rows with a norm of zero, or below ``max_norm``, are unchanged (no
    division by a zero norm happens).
    """
    norms = np.linalg.norm(X, axis=1)
    overflow = np.isinf(norms) & np.all(np.isfinite(X), axis=1)
    if overflow.any():  # rows beyond ~1e154: take the norm of a scaled copy
        peak = np.max(np.abs(X[overflow]), axis=1)
        norms[overflow] = peak * np.linalg.norm(X[overflow] / peak[:, None], axis=1)
    too_long = norms > max_norm
    if not too_long.any():
        return X
    X = np.array(X, dtype=float, copy=True)
    X[too_long] *= (max_norm / norms[too_long])[:, None]
    return X


@dataclass(frozen=True)
class Clipping:
    """The public region every record is clipped into.

    Parameters
    ----------
    lower, upper : ndarray of shape (n_features,) or None
        Per-feature bounds. ``None`` when no per-feature bounds were given.
    data_norm : float or None
        Largest L2 norm of a row: of the raw row without bounds, of the row
        mapped to [-1, 1] per feature with bounds.
    y_lower, y_upper : float or None
        Bounds of a regression target.
    """

    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    data_norm: float | None = None
    y_lower: float | None = None
    y_upper: float | None = None

    @property
    def x_center(self):
        """The public centre of the features: mid-bounds, or 0."""
        if self.lower is None:
            return 0.0
        return (self.lower + self.upper) / 2

    @property
    def x_scale(self):
        """The public scale of the features: half the bounds' range, or 1."""
        if self.lower is None:
            return 1.0
        return (self.upper - self.lower) / 2

    @property
    def y_center(self):
        """The public centre of the target: mid-y_bounds, or 0."""
        if self.y_lower is None:
            return 0.0
        return (self.y_lower + self.y_upper) / 2

    @property
    def y_scale(self):
        """The public scale of the target: half the y_bounds' range, or 1."""
        if self.y_lower is None:
            return 1.0
        return (self.y_upper - self.y_lower) / 2

    def apply(self, X, y=None):
        """Return ``X`` and ``y`` clipped into the region and mapped."""
        if self.lower is not None:  # one copy, then mapped in place
            X = clip_to_bounds(np.asarray(X, dtype=float), self.lower, self.upper)
            X -= self.x_center
            X /= self.x_scale
        if self.data_norm is not None:
            X = clip_row_norms(X, self.data_norm)
        if y is not None and self.y_lower is not None:
            y = (np.clip(y, self.y_lower, self.y_upper) - self.y_center) / (
                self.y_scale
            )
        return X, y

    def feature_abs_max(self, n_features):
        """Largest absolute value of each feature after clipping and mapping."""
        limit = np.full(n_features, math.inf)
        if self.lower is not None:
            limit = np.ones(n_features)
        if self.data_norm is not None:
            limit = np.minimum(limit, self.data_norm)
        return limit

    def row_norm(self, n_features):
        """Largest L2 norm a row can have after clipping."""
        norm = float(np.linalg.norm(self.feature_abs_max(n_features)))
        if self.data_norm is not None:
            norm = min(norm, self.data_norm)
        return norm

    def row_l1_norm(self, n_features):
        """Largest L1 norm a row can have after clipping."""
        l1 = float(self.feature_abs_max(n_features).sum())
        if self.data_norm is not None:
            l1 = min(l1, math.sqrt(n_features) * self.data_norm)
        return l1

    def y_abs_max(self):
        """Largest absolute mapped target after clipping (inf if unbounded)."""
        if self.y_lower is None:
            return math.inf
        return 1.0
