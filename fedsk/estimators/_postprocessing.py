"""Post-processing of noisy totals: nothing here sees a party's rows.

Noisy counts can be negative, noisy variances too, and a noisy Gram or
Hessian matrix need not be positive semi-definite. These functions turn
released totals into values an estimator can use; as post-processing of DP
releases they cost no budget.
"""

import numpy as np


def positive(values, floor):
    """Noisy counts or variances floored at a small positive value."""
    return np.maximum(values, floor)


def mean_and_variance(count, sums, squares, clipping, noise_std=0.0):
    """Means and variances in the features' units from released moments.

    ``count`` broadcasts against ``sums`` and ``squares`` (one count per
    row of per-class moments). The moments are of rows mapped by
    ``clipping``; a mapped feature lies in [-1, 1], so its variance is at
    most 1. A noisy variance is floored at the public noise level of the
    squares (``noise_std / count``), never at 0: a variance at 0 would make
    a noisy feature look exact.
    """
    mapped_mean = sums / count
    floor = noise_std / count
    mapped_var = positive(squares / count - mapped_mean**2, floor)
    if clipping.lower is not None:
        mapped_var = np.minimum(mapped_var, 1.0)
    mean = mapped_mean * clipping.x_scale + clipping.x_center
    return mean, mapped_var * np.square(clipping.x_scale)


def symmetric_from_upper(upper, size):
    """The symmetric ``size x size`` matrix whose upper triangle is ``upper``."""
    matrix = np.zeros((size, size))
    matrix[np.triu_indices(size)] = upper
    return matrix + np.triu(matrix, 1).T


def regularised_psd(matrix, ridge):
    """Project a noisy symmetric matrix onto the PSD cone, then add ``ridge``.

    ``ridge`` (a scalar, added to the diagonal, or a matrix) should match
    the public noise level: the spectral norm of a symmetric noise matrix is
    about ``2 sqrt(d)`` times its entries' standard deviation.
    """
    eigenvalues, vectors = np.linalg.eigh(matrix)
    if np.ndim(ridge) == 0:
        ridge = ridge * np.eye(matrix.shape[0])
    return (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T + ridge


def eigenvalue_floor(matrix, floor):
    """A noisy symmetric matrix with its eigenvalues raised to at least ``floor``.

    Unlike :func:`regularised_psd`, well-determined directions (eigenvalues
    far above the noise) are left as released, so a Newton step is damped
    only where the curvature is lost in the noise.
    """
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(eigenvalues, floor)) @ vectors.T
