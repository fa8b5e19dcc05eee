"""Federated DP least squares: ``LinearRegression`` and ``Ridge``.

With noise, two releases whose shares are fixed before the first:

1. ``SPREAD_SHARE`` of the budget: a noisy histogram (``feature_histogram``,
   equal bins of the public bounds) of every feature and of the target.
   Its noisy quantiles give a tighter region where the rows are
   (``private_region``): a wide public range, such as a log wage in
   [ln 50, ln 20000], or a feature whose values sit in a corner of its
   bounds (experience squared), would otherwise waste most of the range
   that the noise is calibrated to. The region is a charged, noisy release
   (it shows in the privacy report); with few rows for the budget its
   quantiles widen towards the public bounds.
2. The rest: the ``linear_moments`` statistic of rows clipped into that
   region and mapped to [-1, 1], as one block (``augmented=True``): the
   upper triangle of Z^T Z with Z = [X, y, 1], which holds X^T X, X^T y,
   the sums of X and y and the count. Every entry gets the release's whole
   budget; as five blocks each would get a fifth, and the Gram matrix,
   whose noise matters most, about three times more noise (CPS1988 wages,
   epsilon=1, 10 seeds, both with a tenth on the region: R^2 0.449 against
   0.433).

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

from ._checks import reject_unsupported
from ._postprocessing import positive, regularised_psd, symmetric_from_upper
from ._region import private_region

# Share of the budget spent on the private region (see ``_region``);
# measured on the wage data (benchmarks/RESULTS.md, bench_linear): with the
# moments in one block, 0.3 did better than 0.1 and 0.2 at epsilon 0.1 to 3.
SPREAD_SHARE = 0.3
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


def _fit_least_squares(regressor, session, alpha):
    clipping, fraction = session.clipping, 1.0
    if math.isfinite(session.epsilon) and clipping.lower is not None:
        clipping = private_region(session, SPREAD_SHARE, target=True)
        fraction = 1 - SPREAD_SHARE
    d = session.n_features
    release = session.release(
        "linear_moments", fraction, clipping=clipping, augmented=True
    )
    # Z^T Z with Z = [X, y, 1]: its blocks are the totals least squares needs
    augmented = symmetric_from_upper(release.blocks[0], d + 2)
    gram, xty, sum_x = augmented[:d, :d], augmented[:d, d], augmented[:d, d + 1]
    sum_y, count = augmented[d, d + 1 :], augmented[d + 1, d + 1 :]
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
