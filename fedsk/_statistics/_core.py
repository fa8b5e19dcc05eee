"""Statistics of moments, least squares and linear models' losses.

Counts, sums and sums of squares (per class), the sufficient statistics of
least squares, per-feature histograms, the gradient and Hessian of a linear
model's loss, and a party's own FedAvg update.
"""

import math

import numpy as np

from .._local_fit import local_fit
from .._losses import (
    class_index,
    curvature_max,
    derivative_factors,
    loss_bound,
    targets,
)
from ._base import Statistic, coordinate_max, square_norms, vector_norms

# -- moments: count, sum and sum of squares of every feature -----------------


def _moments(X, y):
    return [np.array([X.shape[0]], dtype=float), X.sum(axis=0), (X**2).sum(axis=0)]


def _moments_shapes(n_features):
    return [(1,), (n_features,), (n_features,)]


def _moments_sensitivity(clipping, n_features):
    m = coordinate_max(clipping, n_features)
    return [
        (1.0, 1.0, 1.0),
        (*vector_norms(clipping, n_features), m),
        (*square_norms(clipping, n_features), m**2),
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
# Five blocks (upper triangle of X^T X, X^T y, sums of X and y, count), or,
# with ``augmented=True``, one: the upper triangle of Z^T Z with
# Z = [X, y, 1], which holds the same totals (and y^T y). One block spends
# the release's whole budget on every entry instead of a fifth per block.


def _linear_moments(X, y, augmented=False):
    if augmented:
        Z = np.column_stack([X, y, np.ones(X.shape[0])])
        return [(Z.T @ Z)[np.triu_indices(Z.shape[1])]]
    upper = np.triu_indices(X.shape[1])
    return [
        (X.T @ X)[upper],
        X.T @ y,
        X.sum(axis=0),
        np.array([y.sum()]),
        np.array([X.shape[0]], dtype=float),
    ]


def _linear_moments_shapes(n_features, augmented=False):
    d = n_features
    if augmented:
        return [((d + 2) * (d + 3) // 2,)]
    return [(d * (d + 1) // 2,), (d,), (d,), (1,), (1,)]


def _upper_gram_norms(l1, l2):
    # upper triangle of z z^T: sum_{i<=j} |z_i z_j| <= (|z|_1^2 + |z|_2^2) / 2,
    # and its L2 norm is at most |z|_2^2
    return ((l1**2 + l2**2) / 2, l2**2)


def _linear_moments_sensitivity(clipping, n_features, augmented=False):
    # an entry x_i x_j (or x_i y, z_i z_j) moves by at most the product of
    # the largest entries
    l1, l2 = vector_norms(clipping, n_features)
    m = coordinate_max(clipping, n_features)
    y_max = clipping.y_abs_max()
    if augmented:  # z = [x, y, 1]
        z_max = max(m, y_max, 1.0)
        norms = _upper_gram_norms(l1 + y_max + 1.0, math.sqrt(l2**2 + y_max**2 + 1.0))
        return [(*norms, z_max**2)]
    return [
        (*_upper_gram_norms(l1, l2), m**2),
        (l1 * y_max, l2 * y_max, m * y_max),
        (l1, l2, m),
        (y_max, y_max, y_max),
        (1.0, 1.0, 1.0),
    ]


# -- feature_histogram: counts per bin of every feature (and of y) -----------


def _feature_histogram(X, y, edges, include_target=False, columns=None):
    if columns is not None:
        X = X[:, columns]
    if include_target:
        X = np.column_stack([X, y])
    n_bins = len(edges) - 1
    bins = _bin_indices(X, np.asarray(edges, dtype=float))
    bins += np.arange(X.shape[1]) * n_bins  # one bincount for every column
    counts = np.bincount(bins.ravel(), minlength=X.shape[1] * n_bins)
    return [counts.reshape(X.shape[1], n_bins).astype(float)]


def _bin_indices(X, edges):
    """Bin of every entry: the last edge at or below it, the end bins beyond.

    What ``np.searchsorted(edges, X, side="right") - 1`` clipped to the bins
    gives, but for equal-width edges in a few passes over all columns at
    once (a column-wise search was most of a noisy least-squares fit's time
    on 900,000 rows): the arithmetic guess is off by at most one bin where
    rounding puts a value next to an edge, and is corrected by comparing
    with the edges themselves.
    """
    n_bins = len(edges) - 1
    width = (edges[-1] - edges[0]) / n_bins
    if not np.allclose(np.diff(edges), width, rtol=1e-9, atol=0.0):
        bins = np.searchsorted(edges, X, side="right") - 1
        return np.clip(bins, 0, n_bins - 1)
    bins = np.floor((X - edges[0]) / width)
    bins = np.clip(bins, 0, n_bins - 1, out=bins).astype(np.intp)
    bins -= X < edges[bins]
    bins += X >= edges[bins + 1]
    return np.clip(bins, 0, n_bins - 1, out=bins)


def _feature_histogram_shapes(n_features, edges, include_target=False, columns=None):
    n_columns = _histogram_columns(n_features, columns) + include_target
    return [(n_columns, len(edges) - 1)]


def _feature_histogram_sensitivity(
    clipping, n_features, edges, include_target=False, columns=None
):
    # one record adds one count to one bin of every column
    n_columns = _histogram_columns(n_features, columns) + include_target
    return [(float(n_columns), math.sqrt(n_columns))]


def _histogram_columns(n_features, columns):
    """How many features a histogram covers: all, or distinct ``columns``."""
    if columns is None:
        return n_features
    indices = [
        j
        for j in columns
        if isinstance(j, int) and not isinstance(j, bool) and 0 <= j < n_features
    ]
    if len(indices) != len(columns) or len(set(indices)) != len(indices):
        raise ValueError(
            f"columns must be distinct feature indices in [0, {n_features}), "
            f"got {columns!r}."
        )
    return len(indices)


# -- class_counts: rows per public class (or all rows) ------------------------


def _class_counts(X, y, classes=None):
    if classes is None:
        return [np.array([X.shape[0]], dtype=float)]
    return [targets(y, classes, len(classes)).sum(axis=0)]


def _class_counts_shapes(n_features, classes=None):
    return [(1 if classes is None else len(classes),)]


def _class_counts_sensitivity(clipping, n_features, classes=None):
    return [(1.0, 1.0)]


# -- glm_derivatives: gradient and Hessian of a linear model's loss at `coef` --


def _design(X, intercept):
    return np.column_stack([X, np.ones(X.shape[0])]) if intercept else X


def _weighted_gram(design, weights):
    """``design.T @ diag(weights) @ design`` for ``weights >= 0``.

    As ``R.T @ R`` with ``R`` the rows scaled by the root of their weight,
    which BLAS computes as one symmetric product (syrk): half the
    multiplications of the general one (on 150,000 x 21, single-threaded,
    8% faster).
    """
    root = design * np.sqrt(weights)[:, None]
    return root.T @ root


def _glm_derivatives(
    X,
    y,
    coef,
    loss,
    classes=None,
    intercept=True,
    class_weight=None,
    gradient_clip=None,
    hessian=True,
    gradient=True,
):
    design = _design(X, intercept)
    p = design.shape[1]
    scores = design @ coef.T
    factor, curvature = derivative_factors(scores, y, loss, classes, gradient_clip)
    weights = np.ones(X.shape[0])
    if class_weight is not None:
        weights = np.asarray(class_weight)[class_index(y, classes)]
    blocks = []
    if gradient:
        blocks.append(((factor * weights[:, None]).T @ design).ravel())
    if not hessian:
        return blocks
    k = coef.shape[0]
    if loss != "multinomial":
        upper = np.triu_indices(p)
        curvature = curvature * weights[:, None]
        blocks.append(
            np.stack([_weighted_gram(design, curvature[:, j])[upper] for j in range(k)])
        )
        return blocks
    full = np.empty((k * p, k * p))
    for a in range(k):
        for b in range(a, k):
            factor = weights * (curvature[:, a] * ((a == b) - curvature[:, b]))
            block = (design.T * factor) @ design
            full[a * p : (a + 1) * p, b * p : (b + 1) * p] = block
            full[b * p : (b + 1) * p, a * p : (a + 1) * p] = block.T
    blocks.append(full[np.triu_indices(k * p)])
    return blocks


def _glm_derivatives_shapes(
    n_features, coef, loss, intercept=True, hessian=True, gradient=True, **params
):
    k, p = coef.shape
    shapes = [(k * p,)] if gradient else []
    if hessian:
        size = k * p * (k * p + 1) // 2 if loss == "multinomial" else p * (p + 1) // 2
        shapes.append((k, size) if loss != "multinomial" else (size,))
    return shapes


def _glm_derivatives_sensitivity(
    clipping,
    n_features,
    coef,
    loss,
    classes=None,
    intercept=True,
    class_weight=None,
    gradient_clip=None,
    hessian=True,
    gradient=True,
):
    # a record adds g (x) d to the gradient and (h (x) d d^T) to the Hessian,
    # with d = [x, 1]; the class weight multiplies both
    l1, l2 = vector_norms(clipping, n_features)
    if intercept:
        l1, l2 = l1 + 1.0, math.sqrt(l2**2 + 1.0)
    m = coordinate_max(clipping, n_features, intercept)
    k = coef.shape[0]
    bound = loss_bound(loss, k, gradient_clip)
    # the largest weight in absolute value bounds a record's factor (the
    # estimators refuse negative weights; the bound holds for them anyway)
    w = 1.0 if class_weight is None else float(np.max(np.abs(class_weight)))
    (g1, g2), (h1, h2) = bound.gradient, bound.curvature
    # one output's factor: |p_k - y_k| <= 1 and entries of diag(p) - p p^T
    # within 1/4 (multinomial), else the per-output bounds
    g, h = (1.0, 0.25) if loss == "multinomial" else (g1 / k, h1 / k)
    sensitivities = [(w * g1 * l1, w * g2 * l2, w * g * m)] if gradient else []
    if hessian:
        # upper triangle of a symmetric matrix: half its L1 norm plus half its
        # trace; for the multinomial loss h2 also bounds the trace of the
        # curvature matrix
        trace = h2 if loss == "multinomial" else h1
        sensitivities.append(
            (w * (h1 * l1**2 + trace * l2**2) / 2, w * h2 * l2**2, w * h * m**2)
        )
    return sensitivities


# -- glm_curvature: the Hessian of a linear model's loss on a few directions --


def _direction_scores(design, directions):
    """``u[i, a, k]``: change of record ``i``'s score ``k`` along direction ``a``."""
    return np.einsum("ip,akp->iak", design, directions)


def _glm_curvature(
    X,
    y,
    coef,
    directions,
    loss,
    classes=None,
    intercept=True,
    class_weight=None,
    gradient_clip=None,
):
    design = _design(X, intercept)
    scores = design @ coef.T
    _, curvature = derivative_factors(scores, y, loss, classes, gradient_clip)
    weights = np.ones(X.shape[0])
    if class_weight is not None:
        weights = np.asarray(class_weight)[class_index(y, classes)]
    u = _direction_scores(design, directions)
    if loss == "multinomial":  # u_a^T (diag(p) - p p^T) u_b
        pu = np.einsum("ik,iak->ia", curvature, u)
        matrix = np.einsum("i,ik,iak,ibk->ab", weights, curvature, u, u)
        matrix -= np.einsum("i,ia,ib->ab", weights, pu, pu)
    else:
        matrix = np.einsum("i,ik,iak,ibk->ab", weights, curvature, u, u)
    return [matrix[np.triu_indices(len(directions))]]


def _glm_curvature_shapes(n_features, coef, directions, loss, **params):
    k = len(directions)
    return [(k * (k + 1) // 2,)]


def _glm_curvature_sensitivity(
    clipping,
    n_features,
    coef,
    directions,
    loss,
    classes=None,
    intercept=True,
    class_weight=None,
    gradient_clip=None,
):
    # |u_ak| <= |v_ak|_1 * m with m the largest |entry| of a design row; with
    # s = sum_a sum_k |u_ak| (at most sum_a |v_a|_1 m), one record moves the
    # k x k matrix by at most h s^2 in L1 (diagonal losses: sum_k h_k
    # (sum_a |u_ak|)^2; multinomial: the entries of diag(p) - p p^T sum to at
    # most 2 in absolute value), its trace by at most h s^2 too, so its upper
    # triangle by h s^2 in L1 and in L2; its entry (a, b) by h s_a s_b, with
    # s_a = sum_k |u_ak| for direction a alone
    m = coordinate_max(clipping, n_features, intercept)
    per_direction = np.abs(np.asarray(directions)).reshape(len(directions), -1)
    s_a = m * per_direction.sum(axis=1)
    s = float(s_a.sum())
    h = 2.0 if loss == "multinomial" else curvature_max(loss)
    w = 1.0 if class_weight is None else float(np.max(np.abs(class_weight)))
    return [(w * h * s**2, w * h * s**2, w * h * float(s_a.max(initial=0.0)) ** 2)]


# -- local_update: a party's own fit from the global model (FedAvg) ----------


def _local_update(X, y, coef, estimator, classes=None, intercept=True, update_clip=1.0):
    start = coef.copy()
    local = local_fit(estimator, X, y, start, classes, intercept)
    update = (local - start).ravel()
    norm = np.linalg.norm(update)
    if norm > update_clip:
        update *= update_clip / norm
    return [update]


def _local_update_shapes(n_features, coef, **params):
    return [(coef.size,)]


def _local_update_sensitivity(clipping, n_features, coef, update_clip=1.0, **params):
    # one record can move a party's clipped update anywhere in the ball
    return [(2 * update_clip * math.sqrt(coef.size), 2 * update_clip)]


CORE_STATISTICS = {
    "moments": Statistic(_moments, _moments_shapes, _moments_sensitivity),
    "class_moments": Statistic(
        _class_moments, _class_moments_shapes, _class_moments_sensitivity
    ),
    "linear_moments": Statistic(
        _linear_moments, _linear_moments_shapes, _linear_moments_sensitivity
    ),
    "class_counts": Statistic(
        _class_counts, _class_counts_shapes, _class_counts_sensitivity
    ),
    "glm_derivatives": Statistic(
        _glm_derivatives, _glm_derivatives_shapes, _glm_derivatives_sensitivity
    ),
    "glm_curvature": Statistic(
        _glm_curvature, _glm_curvature_shapes, _glm_curvature_sensitivity
    ),
    "local_update": Statistic(
        _local_update, _local_update_shapes, _local_update_sensitivity
    ),
    "feature_histogram": Statistic(
        _feature_histogram, _feature_histogram_shapes, _feature_histogram_sensitivity
    ),
}
