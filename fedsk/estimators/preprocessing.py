"""Federated DP ``StandardScaler``: noisy count, sums and sums of squares.

One release of the ``moments`` statistic (count, per-feature sums and sums of
squares of the clipped rows, mapped by the public bounds); the three blocks
share the budget equally. Means and variances are post-processing of the
noisy totals, mapped back to the features' units.
"""

import numpy as np

from ..utils._sklearn_compat import _handle_zeros_in_scale
from ._postprocessing import mean_and_variance, positive


def fit_standard_scaler(scaler, session):
    """Fit ``scaler`` (a ``StandardScaler``) from federated moments.

    Honours ``with_mean`` and ``with_std``; ``copy`` only affects transform.
    """
    release = session.release("moments")
    count, sums, squares = release.blocks
    n = positive(count[0], 1.0)
    mean, var = mean_and_variance(
        n, sums, squares, session.clipping, release.noise_std[2]
    )
    scaler.n_samples_seen_ = int(round(float(n)))
    scaler.mean_ = mean
    scaler.var_ = var
    scaler.scale_ = _handle_zeros_in_scale(np.sqrt(var), copy=False)
    if not scaler.with_std:
        scaler.var_ = scaler.scale_ = None
        if not scaler.with_mean:
            scaler.mean_ = None
    return scaler
