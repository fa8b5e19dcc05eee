"""What a statistic is: a party-side computation and its sensitivity."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..privacy import GridEncoding


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
        ``sensitivity(clipping, n_features, **params) -> list of (l1, l2)``
        or of ``(l1, l2, linf)``, one per block, for adding or removing one
        record: how far it moves the block in L1 and L2 norm, and (where the
        statistic bounds it) any one coordinate, which lets a pure-DP
        release use the less noisy L-infinity K-norm mechanism.
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

    def encoding(
        self, clipping, n_features, params, *, epsilon, rho, group_size, divisible
    ):
        """The public calibration of one release of this statistic.

        The coordinator and a party agent both compute it from public
        parameters, so a party can check what it is asked to calibrate.

        Parameters
        ----------
        clipping : Clipping
        n_features : int
        params : dict
        epsilon : float
            The release's pure epsilon (used when ``rho`` is None).
        rho : float or None
        group_size : int
            Records a unit of privacy holds: a group changes every block
            ``group_size`` times as much as one record.
        divisible : bool
            Whether the noise is drawn as parties' shares (see
            :meth:`GridEncoding.calibrate`).

        Returns
        -------
        encoding : GridEncoding
        """
        return GridEncoding.calibrate(
            self.shapes(n_features, **params),
            [
                tuple(group_size * bound for bound in block)
                for block in self.sensitivity(clipping, n_features, **params)
            ],
            epsilon=epsilon,
            rho=rho,
            shares=self.budget_shares(params),
            divisible=divisible,
        )


def vector_norms(clipping, n_features):
    """(L1, L2) bound of one clipped row."""
    return clipping.row_l1_norm(n_features), clipping.row_norm(n_features)


def coordinate_max(clipping, n_features, intercept=False):
    """Largest absolute value of any entry of one clipped row (or of ``[x, 1]``)."""
    limit = float(np.max(clipping.feature_abs_max(n_features), initial=0.0))
    return max(limit, 1.0) if intercept else limit


def square_norms(clipping, n_features):
    """(L1, L2) bound of the element-wise square of one clipped row."""
    limit = clipping.feature_abs_max(n_features)
    l1 = float(np.sum(limit**2))
    l2 = float(np.sqrt(np.sum(limit**4)))
    if clipping.data_norm is not None:
        l1 = min(l1, clipping.data_norm**2)
        l2 = min(l2, clipping.data_norm**2)
    return l1, l2
