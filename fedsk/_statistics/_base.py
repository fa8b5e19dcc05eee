"""What a statistic is: a party-side computation and its sensitivity."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Statistic:
    """A named party-side computation and its sensitivity.

    Parameters
    ----------
    compute : callable
        ``compute(X, y, **params) -> list of ndarray``, on clipped rows.
    shapes : callable
        ``shapes(n_features, **params) -> list of tuple``, the block shapes.
    sensitivity : callable
        ``sensitivity(clipping, n_features, **params) -> list of (l1, l2)``,
        one pair per block, for adding or removing one record.
    shares : callable or None
        ``shares(**params) -> list of float or None``, each block's share of
        the release's budget (see :meth:`GridEncoding.calibrate`); None:
        equal shares.
    """

    compute: Callable
    shapes: Callable
    sensitivity: Callable
    shares: Callable | None = None

    def budget_shares(self, params):
        """The blocks' budget shares for ``params`` (None: equal)."""
        return None if self.shares is None else self.shares(**params)


def vector_norms(clipping, n_features):
    """(L1, L2) bound of one clipped row."""
    return clipping.row_l1_norm(n_features), clipping.row_norm(n_features)


def square_norms(clipping, n_features):
    """(L1, L2) bound of the element-wise square of one clipped row."""
    limit = clipping.feature_abs_max(n_features)
    l1 = float(np.sum(limit**2))
    l2 = float(np.sqrt(np.sum(limit**4)))
    if clipping.data_norm is not None:
        l1 = min(l1, clipping.data_norm**2)
        l2 = min(l2, clipping.data_norm**2)
    return l1, l2
