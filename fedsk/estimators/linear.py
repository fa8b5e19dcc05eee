"""Federated DP least squares: ``LinearRegression`` and ``Ridge``.

One release of the ``linear_moments`` statistic: the upper triangle of
X^T X, X^T y, the sums of X and y, and the count, of clipped rows mapped to
[-1, 1] by the public bounds. The five blocks share the budget equally. The
coordinator maps the totals back to the features' units (centred at the
middle of the bounds) and solves the (noisy) normal equations. With noise,
the centred Gram matrix is projected onto the positive semi-definite cone
and a ridge term proportional to the public noise level is added (the
spectral norm of a symmetric noise matrix is about ``2 sqrt(d)`` times its
entry standard deviation), as in AdaSSP [1]_; the ridge is public, so it
spends nothing.

References
----------
.. [1] Y.-X. Wang, "Revisiting differentially private linear regression:
   optimal and adaptive prediction & estimation in unbounded domain",
   UAI 2018.
"""

import numpy as np

from ._checks import reject_unsupported
from ._postprocessing import positive, regularised_psd, symmetric_from_upper


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
    release = session.release("linear_moments")
    gram_upper, xty, sum_x, sum_y, count = release.blocks
    d = session.n_features
    gram = symmetric_from_upper(gram_upper, d)
    n = positive(count[0], 1.0)
    clipping = session.clipping
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
    if noise_std > 0:  # the noise on entry (i, j) scales with x_scale_i x_scale_j
        lhs = regularised_psd(lhs, 2 * np.sqrt(d) * noise_std * np.diag(x_scale**2))
    coef = np.linalg.lstsq(lhs + alpha * np.eye(d), rhs, rcond=None)[0]

    regressor.coef_ = coef
    if regressor.fit_intercept:
        regressor.intercept_ = float(mean_y + y_center - (mean_x + x_center) @ coef)
    else:
        regressor.intercept_ = 0.0
    return regressor
