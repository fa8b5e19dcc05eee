"""How many rows a clipping region changes: a check, for noise-free fits.

Clipping into far-off bounds costs no privacy at epsilon = inf, but can
silently ruin a model; this count lets the fit warn. Its rows arrive
unclipped (the release's own region is empty) and ``region`` is the fit's.
"""

import numpy as np

from ._base import Statistic


def _clipped_rows(X, y, region):
    X = np.asarray(X, dtype=float)
    changed = np.zeros(X.shape[0], dtype=bool)
    if region.lower is not None:
        changed |= np.any((X < region.lower) | (X > region.upper), axis=1)
    if region.data_norm is not None:
        mapped, _ = region.apply(X)
        changed |= np.linalg.norm(mapped, axis=1) > region.data_norm * (1 + 1e-12)
    y_changed = 0
    if y is not None and region.y_lower is not None:
        y = np.asarray(y, dtype=float)
        y_changed = int(np.sum((y < region.y_lower) | (y > region.y_upper)))
    return [np.array([changed.sum(), y_changed, X.shape[0]], dtype=float)]


def _clipped_rows_shapes(n_features, region):
    return [(3,)]


def _clipped_rows_sensitivity(clipping, n_features, region):
    return [(3.0, float(np.sqrt(3)))]  # one record moves each count by one


CLIPPING_STATISTICS = {
    "clipped_rows": Statistic(
        _clipped_rows, _clipped_rows_shapes, _clipped_rows_sensitivity
    ),
}
