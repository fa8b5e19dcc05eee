"""Federated DP least squares: ``LinearRegression`` and ``Ridge``.

With noise, two releases whose shares are fixed before the first:

1. ``SPREAD_SHARE`` of the budget: a noisy histogram (``feature_histogram``,
   ``SPREAD_BINS`` equal bins of the public bounds) of every feature and of
   the target. Its noisy quantiles give a tighter region where the rows
   are (``private_region``): a wide public range, such as a log wage in
   [ln 50, ln 20000], or a feature whose values sit in a corner of its
   bounds (experience squared), would otherwise waste most of the range
   that the noise is calibrated to. The region is a charged, noisy release
   (it shows in the privacy report); with few rows for the budget its
   quantiles widen towards the public bounds.
2. The rest: the ``linear_moments`` statistic (upper triangle of X^T X,
   X^T y, sums of X and y, count) of rows clipped into that region and
   mapped to [-1, 1]; its five blocks share the budget equally.

The coordinator maps the totals back to the features' units and solves the
normal equations. The centred Gram matrix is projected onto the positive
semi-definite cone, and a ridge is added only where its smallest eigenvalue
is below ``sqrt(d)`` times the noise on one entry, as in AdaSSP [1]_ (the
noise level is public, so this spends nothing). Without noise: one exact
release on the public bounds, scikit-learn's solution.

References
----------
.. [1] Y.-X. Wang, "Revisiting differentially private linear regression:
   optimal and adaptive prediction & estimation in unbounded domain",
   UAI 2018.
"""

import math

import numpy as np

from ..privacy import Clipping
from ._checks import reject_unsupported
from ._postprocessing import positive, regularised_psd, symmetric_from_upper

# Share of the budget spent on the private region, and its histogram's bins;
# measured on the wage data (benchmarks/RESULTS.md, bench_linear).
SPREAD_SHARE = 0.1
SPREAD_BINS = 32
# The region holds the noisy 2% to 98% quantiles of each column (rows
# beyond are clipped into it: a little bias for much less noise).
SPREAD_QUANTILE = 0.02
# Noisy bin counts of the target below this many noise standard deviations
# are taken as empty (its tails would be stretched by the noise). A
# feature's negative counts only are: it may have rare values at its bounds
# (a 0/1 feature), which must not be clipped away.
EMPTY_BIN_TARGET, EMPTY_BIN_FEATURE = 3.0, 0.0
# A feature's region narrower than this share of its public range is not
# used (see ``private_region``).
MIN_FEATURE_WIDTH = 0.25
# The ridge: sqrt(d) times the noise on one entry of the Gram matrix.
RIDGE_FACTOR = 1.0


def fit_linear_regression(regressor, session):
    """Fit ``regressor`` (a ``LinearRegression``) from federated moments."""
    reject_unsupported(regressor, positive=lambda v: not v)
    return _fit_least_squares(regressor, session, alpha=0.0)


def fit_ridge(regressor, session):
    """Fit ``regressor`` (a ``Ridge``) from federated moments.

    ``alpha`` and ``fit_intercept`` are honoured; ``solver``, ``tol`` and
    ``max_iter`` do not apply (the system is solved directly).
    """
    reject_unsupported(
        regressor,
        positive=lambda v: not v,
        alpha=np.isscalar,
    )
    return _fit_least_squares(regressor, session, alpha=float(regressor.alpha))


def private_region(session, fraction):
    """A tighter clipping region from noisy quantiles of every column.

    Parameters
    ----------
    session : FitSession
        Its clipping must have per-feature bounds and ``y_bounds``.
    fraction : float
        Share of the session's budget for the histogram.

    Returns
    -------
    clipping : Clipping
        Bounds within the public ones, where the rows are; ``data_norm``
        is kept.
    """
    edges = np.linspace(-1.0, 1.0, SPREAD_BINS + 1)
    release = session.release(
        "feature_histogram", fraction, edges=edges, include_target=True
    )
    counts = release.blocks[0]
    d = session.n_features
    empty_below = np.full((d + 1, 1), EMPTY_BIN_FEATURE)
    empty_below[d] = EMPTY_BIN_TARGET
    kept = np.where(counts > empty_below * release.noise_std[0], counts, 0.0)
    # a column with most of its rows in bins below that level (few rows for
    # the budget): keep every positive count, so its quantiles widen
    lost = kept.sum(axis=1) < 0.5 * counts.sum(axis=1)
    counts = np.where(lost[:, None], np.maximum(counts, 0.0), kept)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1:]
    low = np.argmax(cumulative > SPREAD_QUANTILE * total, axis=1)
    high = np.argmax(cumulative >= (1 - SPREAD_QUANTILE) * total, axis=1)
    low_edge, high_edge = edges[low], edges[high + 1]
    # keep the public bounds where nothing is above the noise, and for a
    # feature whose quantiles are very close: more likely rare values at its
    # bounds (a 0/1 feature) than bounds chosen that much too wide
    narrow = high_edge - low_edge < 2 * MIN_FEATURE_WIDTH
    narrow[d] = False
    keep = (total[:, 0] <= 0) | narrow
    low_edge[keep], high_edge[keep] = -1.0, 1.0
    public = session.clipping
    center = np.append(np.broadcast_to(public.x_center, (d,)), public.y_center)
    scale = np.append(np.broadcast_to(public.x_scale, (d,)), public.y_scale)
    lower, upper = center + low_edge * scale, center + high_edge * scale
    return Clipping(
        lower[:d], upper[:d], public.data_norm, float(lower[d]), float(upper[d])
    )


def _fit_least_squares(regressor, session, alpha):
    clipping, fraction = session.clipping, 1.0
    if math.isfinite(session.epsilon) and clipping.lower is not None:
        clipping = private_region(session, SPREAD_SHARE)
        fraction = 1 - SPREAD_SHARE
    d = session.n_features
    release = session.release("linear_moments", fraction, clipping=clipping)
    gram_upper, xty, sum_x, sum_y, count = release.blocks
    gram = symmetric_from_upper(gram_upper, d)
    n = positive(count[0], 1.0)
    x_center = np.broadcast_to(clipping.x_center, (d,))
    y_center = clipping.y_center
    # back to the features' units, still centred at the public centre
    x_scale = np.broadcast_to(clipping.x_scale, (d,))
    gram = gram * np.outer(x_scale, x_scale)
    xty = xty * x_scale * clipping.y_scale
    sum_x = sum_x * x_scale
    sum_y = sum_y * clipping.y_scale

    if regressor.fit_intercept:
        mean_x, mean_y = sum_x / n, sum_y[0] / n
        lhs = gram - n * np.outer(mean_x, mean_x)
        rhs = xty - n * mean_x * mean_y
    else:  # undo the public centring: sums over x = x' + c, y = y' + c_y
        lhs = (
            gram
            + np.outer(x_center, sum_x)
            + np.outer(sum_x, x_center)
            + n * np.outer(x_center, x_center)
        )
        rhs = xty + y_center * sum_x + x_center * sum_y[0] + n * x_center * y_center

    noise_std = release.noise_std[0]
    if noise_std > 0:  # in mapped units, the noise on every entry is alike
        mapped = regularised_psd(lhs / np.outer(x_scale, x_scale), 0.0)
        threshold = RIDGE_FACTOR * math.sqrt(d) * noise_std
        ridge = max(0.0, threshold - np.linalg.eigvalsh(mapped)[0])
        lhs = (mapped + ridge * np.eye(d)) * np.outer(x_scale, x_scale)
    coef = np.linalg.lstsq(lhs + alpha * np.eye(d), rhs, rcond=None)[0]

    regressor.coef_ = coef
    if regressor.fit_intercept:
        regressor.intercept_ = float(mean_y + y_center - (mean_x + x_center) @ coef)
    else:
        regressor.intercept_ = 0.0
    return regressor
