"""Real scikit-learn models assembled from finished trees.

Thresholds are the raw values of the grid edges (:func:`._binning.raw_edges`),
so the fitted model routes raw rows exactly as the parties routed mapped
rows. Private scikit-learn API is reached through
:mod:`fedsk.utils._sklearn_compat` only.
"""

import numpy as np

from ...utils._sklearn_compat import (
    fitted_hist_gradient_boosting,
    fitted_tree,
    tree_node_records,
)
from ._leaves import levels
from ._splits import impurity


def _preorder(feature, left, right):
    """Node ids reachable from the root, in depth-first (pre-)order."""
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if feature[node] >= 0:
            stack += [right[node], left[node]]
    return np.asarray(order, dtype=np.intp)


def _node_impurity(fitted, criterion, clipping):
    if fitted.sums is None:
        return impurity(fitted.counts, criterion)
    means = np.divide(
        fitted.sums,
        fitted.counts,
        out=np.zeros_like(fitted.sums),
        where=fitted.counts > 0,
    )
    means = clipping.y_center + clipping.y_scale * means
    # the parties release no sums of squares: impurity up to a constant
    return float(np.max(means**2)) - means**2


def to_decision_tree(
    estimator, fitted, *, criterion, raw, clipping, classes, n_features
):
    """Set ``estimator``'s fitted ``tree_`` from a :class:`FittedTree`.

    A regressor's ``impurity`` is ``c - mean ** 2`` for one constant ``c``
    per tree; differences between nodes, and so the importances, are exact.
    """
    tree = fitted.tree
    left_all, right_all = np.asarray(tree.left), np.asarray(tree.right)
    order = _preorder(fitted.feature, left_all, right_all)
    new_id = np.full(len(fitted.feature), -1, dtype=np.intp)
    new_id[order] = np.arange(order.size)
    inner = fitted.feature[order] >= 0
    left = np.where(inner, new_id[left_all[order]], -1)
    right = np.where(inner, new_id[right_all[order]], -1)
    feature = np.where(inner, fitted.feature[order], -2)
    threshold = np.full(order.size, -2.0)
    cut = np.asarray(tree.cut)[order]
    threshold[inner] = raw[feature[inner], cut[inner] - 1]
    counts = fitted.counts if fitted.sums is not None else fitted.counts.sum(axis=1)
    weighted = counts[order]
    goes_left = np.zeros(order.size, dtype=np.uint8)
    goes_left[inner] = weighted[left[inner]] >= weighted[right[inner]]
    values = fitted.values[order]
    if classes is None:
        values = clipping.y_center + clipping.y_scale * values
        if clipping.y_lower is not None:
            values = np.clip(values, clipping.y_lower, clipping.y_upper)
    depth = len(levels(fitted.feature, left_all, right_all)) - 1
    fitted_tree(
        estimator,
        nodes={
            "left_child": left,
            "right_child": right,
            "feature": feature,
            "threshold": threshold,
            "impurity": _node_impurity(fitted, criterion, clipping)[order],
            "n_node_samples": np.rint(weighted).astype(np.int64),
            "weighted_n_node_samples": weighted,
            "missing_go_to_left": goes_left,
        },
        values=values,
        max_depth=depth,
        n_features=n_features,
        classes=classes,
    )
    return estimator


def _predictor_records(tree, values, bins, raw, count_scale):
    """One boosting tree as scikit-learn predictor node records, raw units."""
    feature = np.maximum(np.asarray(tree.feature), 0)
    cut = np.asarray(tree.cut)
    is_leaf = np.asarray(tree.feature) < 0
    bin_threshold = np.array(
        [np.searchsorted(bins.cuts[f], c) for f, c in zip(feature, cut)], dtype=np.intp
    )
    weight = np.array([max(float(sums[1]), 0.0) for sums in tree.sums]) * count_scale
    left, right = np.asarray(tree.left), np.asarray(tree.right)
    return tree_node_records(
        value=values,
        feature=feature,
        threshold=np.where(is_leaf, 0.0, raw[feature, np.maximum(cut, 1) - 1]),
        bin_threshold=bin_threshold,
        left=np.maximum(left, 0),
        right=np.maximum(right, 0),
        is_leaf=is_leaf,
        missing_go_to_left=[
            not leaf and weight[a] >= weight[b]
            for leaf, a, b in zip(is_leaf, left, right)
        ],
        count=np.rint(np.minimum(weight, np.iinfo(np.uint32).max)),
        gain=tree.gain,
        depth=tree.depth,
    )


def to_hist_gradient_boosting(
    estimator, iterations, *, baseline, bins, raw, count_scale, classes
):
    """Give ``estimator`` the fitted state of the boosted ``iterations``.

    ``iterations`` holds, per iteration, one (Tree, node values) per output,
    values and ``baseline`` in the model's raw units; ``count_scale[k]``
    turns output ``k``'s Hessian sums into the predictors' ``count``.
    """
    predictors = [
        [
            _predictor_records(tree, values, bins, raw, count_scale[k])
            for k, (tree, values) in enumerate(trees)
        ]
        for trees in iterations
    ]
    return fitted_hist_gradient_boosting(
        estimator,
        trees=predictors,
        bin_thresholds=[
            raw[j, np.asarray(c, dtype=np.intp) - 1] for j, c in enumerate(bins.cuts)
        ],
        baseline=baseline,
        classes=classes,
    )
