"""Private bounds: per-feature ranges estimated with a DP histogram.

Opt-in only (``bounds="private"``, ``y_bounds="private"``). Every party
releases a noisy histogram of each column over a fixed public grid, four
bins per decade from 1e-3 to 1e6 in magnitude on both sides of zero (values
beyond it fall in the end bins). Noisy counts below six noise standard
deviations are treated as empty, so noise in the many empty bins does not
pull the bounds outwards; the bounds are the grid edges at the 0.5% and
99.5% points of the remaining cumulative counts. The grid is coarse, so a
bound can be up to a factor 10**0.25 wider than the data need. The release
is charged like any other and shows in the privacy report as ``feature_histogram``.
"""

import numpy as np

from ..privacy import Clipping

_MAGNITUDES = np.logspace(-3, 6, 9 * 4 + 1)
EDGES = np.concatenate([-_MAGNITUDES[::-1], [0.0], _MAGNITUDES])
QUANTILES = (0.005, 0.995)


def private_bounds(session, fraction, *, include_target):
    """Estimate ``(lower, upper)`` per column from one noisy histogram.

    Returns
    -------
    lower, upper : ndarray of shape (n_columns,)
        Columns are the features, then the target if ``include_target``.
    """
    release = session.release(
        "feature_histogram",
        fraction,
        clipping=Clipping(),
        edges=EDGES,
        include_target=include_target,
    )
    counts = release.blocks[0]
    counts = np.where(counts > 6 * release.noise_std[0], counts, 0.0)
    empty = np.flatnonzero(counts.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"Too few rows for the budget to estimate bounds privately (columns "
            f"{empty.tolist()}); pass bounds=(lower, upper) instead."
        )
    cumulative = np.cumsum(counts, axis=1)
    total = np.maximum(cumulative[:, -1:], 1.0)
    low_bin = np.argmax(cumulative >= QUANTILES[0] * total, axis=1)
    high_bin = np.argmax(cumulative >= QUANTILES[1] * total, axis=1)
    lower, upper = EDGES[low_bin], EDGES[high_bin + 1]
    return lower, np.maximum(upper, lower + 1e-3)
