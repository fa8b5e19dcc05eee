"""The catalogue of statistics a party will compute on its rows.

This is the privacy boundary. Estimator code names a statistic from this
catalogue; the party computes it on its own clipped rows and only the result
(noised, unless epsilon is infinite) leaves. Each statistic is a list of
blocks, and says for every block how far one record can move it (its L1 and
L2 sensitivity), given the public clipping region. Nothing else is ever
computed on a party's rows, so auditing this file audits every release path.
"""

import math
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
    """

    compute: Callable
    shapes: Callable
    sensitivity: Callable


def _vector_norms(clipping, n_features):
    """(L1, L2) bound of one clipped row."""
    return clipping.row_l1_norm(n_features), clipping.row_norm(n_features)


def _square_norms(clipping, n_features):
    """(L1, L2) bound of the element-wise square of one clipped row."""
    limit = clipping.feature_abs_max(n_features)
    l1 = float(np.sum(limit**2))
    l2 = float(np.sqrt(np.sum(limit**4)))
    if clipping.data_norm is not None:
        l1 = min(l1, clipping.data_norm**2)
        l2 = min(l2, clipping.data_norm**2)
    return l1, l2


# -- moments: count, sum and sum of squares of every feature -----------------


def _moments(X, y):
    return [np.array([X.shape[0]], dtype=float), X.sum(axis=0), (X**2).sum(axis=0)]


def _moments_shapes(n_features):
    return [(1,), (n_features,), (n_features,)]


def _moments_sensitivity(clipping, n_features):
    return [
        (1.0, 1.0),
        _vector_norms(clipping, n_features),
        _square_norms(clipping, n_features),
    ]


# -- class_moments: the same, per class (a record is in one class) ----------


def _class_moments(X, y, classes):
    onehot = (np.asarray(y)[:, None] == np.asarray(classes)[None, :]).astype(float)
    return [onehot.sum(axis=0), onehot.T @ X, onehot.T @ X**2]


def _class_moments_shapes(n_features, classes):
    k = len(classes)
    return [(k,), (k, n_features), (k, n_features)]


def _class_moments_sensitivity(clipping, n_features, classes):
    return _moments_sensitivity(clipping, n_features)


# -- linear_moments: what least squares needs ---------------------------------


def _linear_moments(X, y):
    upper = np.triu_indices(X.shape[1])
    return [
        (X.T @ X)[upper],
        X.T @ y,
        X.sum(axis=0),
        np.array([y.sum()]),
        np.array([X.shape[0]], dtype=float),
    ]


def _linear_moments_shapes(n_features):
    d = n_features
    return [(d * (d + 1) // 2,), (d,), (d,), (1,), (1,)]


def _linear_moments_sensitivity(clipping, n_features):
    l1, l2 = _vector_norms(clipping, n_features)
    y_max = clipping.y_abs_max()
    # upper triangle of x x^T: sum_{i<=j} |x_i x_j| <= (|x|_1^2 + |x|_2^2) / 2,
    # and its L2 norm is at most |x|_2^2.
    gram = ((l1**2 + l2**2) / 2, l2**2)
    return [gram, (l1 * y_max, l2 * y_max), (l1, l2), (y_max, y_max), (1.0, 1.0)]


# -- feature_histogram: counts per bin of every feature (and of y) -----------


def _feature_histogram(X, y, edges, include_target=False):
    if include_target:
        X = np.column_stack([X, y])
    counts = np.empty((X.shape[1], len(edges) - 1))
    for j in range(X.shape[1]):
        inner = np.clip(
            np.searchsorted(edges, X[:, j], side="right") - 1, 0, len(edges) - 2
        )
        counts[j] = np.bincount(inner, minlength=len(edges) - 1)
    return [counts]


def _feature_histogram_shapes(n_features, edges, include_target=False):
    return [(n_features + include_target, len(edges) - 1)]


def _feature_histogram_sensitivity(clipping, n_features, edges, include_target=False):
    # one record adds one count to one bin of every column
    columns = n_features + include_target
    return [(float(columns), math.sqrt(columns))]


# -- logistic_derivatives: gradient and Hessian of the log-loss at `coef` ----


def _logistic_derivatives(X, y, coef, classes):
    design = np.column_stack([X, np.ones(X.shape[0])])
    target = (np.asarray(y) == classes[1]).astype(float)
    prob = 1.0 / (1.0 + np.exp(-(design @ coef)))
    weights = prob * (1.0 - prob)
    upper = np.triu_indices(design.shape[1])
    hessian = (design.T * weights) @ design
    return [design.T @ (prob - target), hessian[upper]]


def _logistic_derivatives_shapes(n_features, coef, classes):
    d = n_features + 1
    return [(d,), (d * (d + 1) // 2,)]


def _logistic_derivatives_sensitivity(clipping, n_features, coef, classes):
    # a record's gradient is (p - y) [x, 1], |p - y| <= 1; its Hessian is
    # p (1 - p) [x, 1][x, 1]^T with p (1 - p) <= 1/4
    l1, l2 = _vector_norms(clipping, n_features)
    l1, l2 = l1 + 1.0, math.sqrt(l2**2 + 1.0)
    return [(l1, l2), ((l1**2 + l2**2) / 8, l2**2 / 4)]


STATISTICS = {
    "moments": Statistic(_moments, _moments_shapes, _moments_sensitivity),
    "class_moments": Statistic(
        _class_moments, _class_moments_shapes, _class_moments_sensitivity
    ),
    "linear_moments": Statistic(
        _linear_moments, _linear_moments_shapes, _linear_moments_sensitivity
    ),
    "logistic_derivatives": Statistic(
        _logistic_derivatives,
        _logistic_derivatives_shapes,
        _logistic_derivatives_sensitivity,
    ),
    "feature_histogram": Statistic(
        _feature_histogram, _feature_histogram_shapes, _feature_histogram_sensitivity
    ),
}
