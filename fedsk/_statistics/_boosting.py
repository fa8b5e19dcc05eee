"""Statistics of histogram gradient boosting.

A party evaluates the public ensemble (the baseline and the trees so far,
passed as parameters) on its own rows, computes each row's gradient and
Hessian of the loss there, clips them, and returns sums of them: per node of
the trees being grown, per feature and per bin (``boosting_histograms``), or
per leaf (``boosting_leaves``). ``boosting_baseline`` gives what the
intercept-only model needs (class counts, or the row count and target sum).

Rows arrive clipped into the public bounds and mapped to [-1, 1] per feature
(:meth:`fedsk.privacy.Clipping.apply`), so one grid of ``n_fine`` equal fine
bins on [-1, 1] serves every feature: a value ``x`` falls in fine bin ``i``
when ``edges[i - 1] < x <= edges[i]`` (``edges`` from :func:`bin_edges`), as
in scikit-learn's ``_BinMapper``. ``boosting_bin_counts`` counts rows per
fine bin; the bins of the trees are runs of fine bins, given as a public
lookup table ``lut`` (fine bin -> bin, per feature). Trees are arrays of
scikit-learn's predictor node records whose thresholds are fine edges, so a
split "bin <= b" and the comparison ``x <= threshold`` agree exactly.

Sensitivity. One record lands in exactly one node of each tree (the nodes at
one depth, and the leaves, partition the rows) and in one bin of every
feature there, so it adds its gradient ``g_k`` (tree ``k``) to ``d`` cells
of one node of each tree, and nothing else: the L1 change of the gradient
block is ``d * sum_k |g_k|`` and the L2 change ``sqrt(d * sum_k g_k^2)``;
likewise for the Hessian block. ``_derivative_bounds`` states the largest
``sum_k |g_k|`` and ``sqrt(sum_k g_k^2)`` (and the same for ``h_k``) after
clipping; for a softmax the gradients of one record sum to zero, which makes
the bound over all classes about 2 rather than ``K``.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from .._losses import class_index
from ..utils._sklearn_compat import predict_tree_nodes
from ._base import Statistic

LOSSES = ("log_loss", "squared_error")


def bin_edges(n_bins):
    """The ``n_bins - 1`` inner edges of ``n_bins`` equal bins on [-1, 1]."""
    return -1.0 + 2.0 * np.arange(1, n_bins) / n_bins


def fine_bins(X, n_fine):
    """Index of every value of ``X`` (mapped to [-1, 1]) on the fine grid.

    ``x`` goes to fine bin ``i`` when ``edges[i - 1] < x <= edges[i]``
    (``edges = bin_edges(n_fine)``), as in scikit-learn's ``_BinMapper``.
    The index is computed arithmetically, then moved by one where rounding
    put ``x`` on the wrong side of an edge, so it equals a binary search
    over ``edges``.
    """
    X = np.asarray(X, dtype=float)
    edges = np.concatenate([[-np.inf], bin_edges(n_fine), [np.inf]])
    bins = ((X + 1.0) * (n_fine / 2)).astype(np.int16)
    np.clip(bins, 0, n_fine - 1, out=bins)
    bins -= X <= edges[bins]
    bins += X > edges[bins + 1]
    return bins


def coarse_bins(X, lut):
    """Bin of every value of ``X``: ``lut[j, fine bin of X[:, j]]``.

    ``lut`` of shape (n_features, n_fine) maps each feature's fine bins to
    its bins (non-decreasing along a row), so every bin edge is a fine edge.
    """
    n_features, n_fine = lut.shape
    offsets = np.arange(n_features, dtype=np.intp) * n_fine
    return np.asarray(lut).ravel()[fine_bins(X, n_fine) + offsets]


@dataclass(frozen=True)
class Ensemble:
    """The public model a party evaluates: a baseline and trees.

    Attributes
    ----------
    baseline : ndarray of shape (n_outputs,)
        Raw prediction of the intercept-only model.
    trees : tuple of tuple of ndarray
        Per iteration, one array of predictor node records per output, with
        thresholds in mapped units.
    """

    baseline: np.ndarray
    trees: tuple = ()

    @property
    def n_outputs(self):
        return len(self.baseline)

    def raw_predict(self, X):
        """Raw predictions of shape (n_samples, n_outputs) on mapped rows."""
        raw = np.tile(np.asarray(self.baseline, dtype=float), (X.shape[0], 1))
        for iteration in self.trees:
            for k, nodes in enumerate(iteration):
                raw[:, k] += predict_tree_nodes(nodes, X)
        return raw


def derivatives(
    X, y, ensemble, loss, classes=None, gradient_clip=None, hessian_clip=None
):
    """Per-row gradients and Hessians of ``loss`` at the ensemble's prediction.

    Returns
    -------
    gradient, hessian : ndarray of shape (n_samples, n_outputs)
        Clipped to ``[-gradient_clip, gradient_clip]`` and
        ``[0, hessian_clip]`` (no clipping where the clip is None).
    """
    raw = ensemble.raw_predict(X)
    k = raw.shape[1]
    if loss == "squared_error":
        gradient = raw - np.asarray(y, dtype=float)[:, None]
        hessian = np.ones_like(gradient)
    elif loss == "log_loss":
        index = class_index(y, classes)
        if k == 1:
            prob = expit(raw)
            onehot = (index == 1).astype(float)[:, None]
        else:
            prob = softmax(raw, axis=1)
            onehot = (index[:, None] == np.arange(k)[None, :]).astype(float)
        gradient = prob - onehot
        hessian = prob * (1.0 - prob)
    else:
        raise ValueError(f"Unknown boosting loss {loss!r}; expected one of {LOSSES}.")
    if gradient_clip is not None:
        gradient = np.clip(gradient, -gradient_clip, gradient_clip)
    if hessian_clip is not None:
        hessian = np.clip(hessian, 0.0, hessian_clip)
    return gradient, hessian


def _derivative_bounds(loss, n_outputs, gradient_clip=None, hessian_clip=None):
    """Largest (L1, L2) norm of one record's gradients, and of its Hessians.

    Over the ``n_outputs`` trees of one iteration, after clipping.
    """
    k = n_outputs
    if loss == "squared_error":
        g = math.inf if gradient_clip is None else gradient_clip
        return (g, g), (1.0, 1.0)
    g = 1.0 if gradient_clip is None else min(1.0, gradient_clip)
    h = 0.25 if hessian_clip is None else min(0.25, hessian_clip)
    if k == 1:  # |p - y| <= 1, p (1 - p) <= 1/4
        return (g, g), (h, h)
    # softmax: the true class has |g_y| = 1 - p_y <= 1; the others are
    # p_j >= 0 with sum 1 - p_y <= 1, each clipped at g, so their sum is at
    # most min(1, (k - 1) g) and their squares sum to at most g times that.
    rest = min(1.0, (k - 1) * g)
    gradient = (g + rest, math.sqrt(g * g + g * rest))
    # sum_j p_j (1 - p_j) = 1 - |p|^2 <= 1 - 1/k, each term at most h
    total = min(1.0 - 1.0 / k, k * h)
    return gradient, (total, math.sqrt(h * total))


def _slots(X, growing, nodes):
    """Slot of every row in each growing tree: (n_samples, n_outputs), -1: none.

    ``growing[k]`` is tree ``k`` with its leaves' values set to their node
    ids; ``nodes[k]`` lists the node ids that get slots, numbered in order
    across trees.
    """
    slots = np.full((X.shape[0], len(growing)), -1, dtype=np.intp)
    start = 0
    for k, (tree, ids) in enumerate(zip(growing, nodes)):
        ids = np.asarray(ids, dtype=np.intp)
        if ids.size:
            lookup = np.full(len(tree), -1, dtype=np.intp)
            lookup[ids] = start + np.arange(ids.size)
            node = predict_tree_nodes(tree, X).astype(np.intp)
            slots[:, k] = lookup[node]
        start += ids.size
    return slots


def _n_slots(nodes):
    return int(sum(np.size(ids) for ids in nodes))


# -- boosting_baseline: class counts, or the row count and target sum --------


def _baseline(X, y, loss, classes=None):
    if loss == "log_loss":
        index = class_index(y, classes)
        return [np.bincount(index, minlength=len(classes)).astype(float)]
    return [np.array([X.shape[0]], dtype=float), np.array([np.sum(y)], dtype=float)]


def _baseline_shapes(n_features, loss, classes=None):
    if loss == "log_loss":
        return [(len(classes),)]
    return [(1,), (1,)]


def _baseline_sensitivity(clipping, n_features, loss, classes=None):
    if loss == "log_loss":
        return [(1.0, 1.0)]  # a record is in one class
    y_max = clipping.y_abs_max()
    return [(1.0, 1.0), (y_max, y_max)]


# -- boosting_bin_counts: rows per fine bin of every feature -----------------


def _bin_counts(X, y, n_fine):
    d = X.shape[1]
    cells = (fine_bins(X, n_fine) + np.arange(d) * n_fine).ravel()
    return [np.bincount(cells, minlength=d * n_fine).astype(float).reshape(d, n_fine)]


def _bin_counts_shapes(n_features, n_fine):
    return [(n_features, n_fine)]


def _bin_counts_sensitivity(clipping, n_features, n_fine):
    # one record adds one count to one fine bin of every feature
    return [(float(n_features), math.sqrt(n_features))]


# -- boosting_histograms: per node, feature and bin sums of g and h ----------


def _histograms(
    X,
    y,
    ensemble,
    growing,
    nodes,
    lut,
    n_bins,
    loss,
    classes=None,
    gradient_clip=None,
    hessian_clip=None,
):
    n_samples, d = X.shape
    size = _n_slots(nodes) * d * n_bins
    gradient, hessian = derivatives(
        X, y, ensemble, loss, classes, gradient_clip, hessian_clip
    )
    slots = _slots(X, growing, nodes)
    # flat cell of (slot, feature, bin) = (slot * d + feature) * n_bins + bin
    within = np.arange(d) * n_bins + coarse_bins(X, lut)
    sum_g, sum_h = np.zeros(size), np.zeros(size)
    for k in range(slots.shape[1]):
        rows = np.flatnonzero(slots[:, k] >= 0)
        if rows.size == 0:
            continue
        cells = (slots[rows, k, None] * (d * n_bins) + within[rows]).ravel()
        sum_g += np.bincount(
            cells, weights=np.repeat(gradient[rows, k], d), minlength=size
        )
        sum_h += np.bincount(
            cells, weights=np.repeat(hessian[rows, k], d), minlength=size
        )
    shape = (_n_slots(nodes), d, n_bins)
    return [sum_g.reshape(shape), sum_h.reshape(shape)]


def _histograms_shapes(n_features, nodes, n_bins, **params):
    shape = (_n_slots(nodes), n_features, n_bins)
    return [shape, shape]


def _histograms_sensitivity(
    clipping,
    n_features,
    ensemble,
    loss,
    gradient_clip=None,
    hessian_clip=None,
    **params,
):
    # one record: its g_k (h_k) in one bin of each of the d features of its
    # one node in tree k
    (g1, g2), (h1, h2) = _derivative_bounds(
        loss, ensemble.n_outputs, gradient_clip, hessian_clip
    )
    root = math.sqrt(n_features)
    return [(n_features * g1, root * g2), (n_features * h1, root * h2)]


# -- boosting_leaves: per leaf sums of g and h --------------------------------


def _leaves(
    X,
    y,
    ensemble,
    growing,
    nodes,
    loss,
    classes=None,
    gradient_clip=None,
    hessian_clip=None,
):
    gradient, hessian = derivatives(
        X, y, ensemble, loss, classes, gradient_clip, hessian_clip
    )
    slots = _slots(X, growing, nodes)
    size = _n_slots(nodes)
    sum_g, sum_h = np.zeros(size), np.zeros(size)
    for k in range(slots.shape[1]):
        rows = np.flatnonzero(slots[:, k] >= 0)
        sum_g += np.bincount(slots[rows, k], weights=gradient[rows, k], minlength=size)
        sum_h += np.bincount(slots[rows, k], weights=hessian[rows, k], minlength=size)
    return [sum_g, sum_h]


def _leaves_shapes(n_features, nodes, **params):
    return [(_n_slots(nodes),), (_n_slots(nodes),)]


def _leaves_sensitivity(
    clipping,
    n_features,
    ensemble,
    loss,
    gradient_clip=None,
    hessian_clip=None,
    **params,
):
    # one record: its g_k (h_k) in its one leaf of tree k
    return list(
        _derivative_bounds(loss, ensemble.n_outputs, gradient_clip, hessian_clip)
    )


BOOSTING_STATISTICS = {
    "boosting_bin_counts": Statistic(
        _bin_counts, _bin_counts_shapes, _bin_counts_sensitivity
    ),
    "boosting_baseline": Statistic(_baseline, _baseline_shapes, _baseline_sensitivity),
    "boosting_histograms": Statistic(
        _histograms, _histograms_shapes, _histograms_sensitivity
    ),
    "boosting_leaves": Statistic(_leaves, _leaves_shapes, _leaves_sensitivity),
}
