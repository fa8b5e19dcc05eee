"""Node values from the leaves' release: pruning, totals, shrinkage.

Decision trees and forests: noisy leaf counts are floored at 0, internal
nodes get the sums of their leaves, splits with a child below
``min_samples_leaf`` rows are undone, and a node's value is shrunk towards
its parent's: class probabilities by ``SMOOTHING`` noise standard
deviations of pseudo-rows, regression means by an empirical-Bayes weight.
Boosting: a node's value is the Newton step ``-G / (H + l2)`` of its
combined sums (:func:`newton_values`); the first tree of a noisy classifier
is finished as a decision tree's. All of it is post-processing.
"""

import math
from dataclasses import dataclass

import numpy as np

# strength of the shrinkage of class probabilities towards the parent's, in
# noise standard deviations of a leaf's row count (0 without noise)
SMOOTHING = 0.5


@dataclass(frozen=True)
class FittedTree:
    """A finished tree: its nodes and (noisy) node statistics, mapped units.

    ``feature`` is the tree's split features after pruning (-1 at leaves);
    ``counts`` class counts (n_nodes, n_classes) or row counts (n_nodes,);
    ``sums`` target sums (regression) or None; ``values`` class
    probabilities or mapped target means.
    """

    tree: object
    feature: np.ndarray
    counts: np.ndarray
    sums: np.ndarray | None
    values: np.ndarray


def levels(feature, left, right):
    """Node ids by depth (the root's level first), following the children."""
    out, level = [], np.array([0])
    while level.size:
        out.append(level)
        inner = level[feature[level] >= 0]
        level = np.concatenate([left[inner], right[inner]])
    return out


def finish(trees, release, classes, min_samples_leaf):
    """A :class:`FittedTree` per tree from the ``tree_leaves`` release."""
    grown, start = [], 0
    for tree in trees:
        leaves = tree.leaves
        stop = start + leaves.size
        if classes is not None:
            counts = np.zeros((tree.n_nodes, len(classes)))
            counts[leaves] = np.maximum(release.blocks[0][start:stop], 0.0)
            sums = None
        else:
            counts, sums = np.zeros(tree.n_nodes), np.zeros(tree.n_nodes)
            counts[leaves] = np.maximum(release.blocks[1][start:stop], 0.0)
            sums[leaves] = release.blocks[0][start:stop]
        start = stop
        feature = _prune_and_total(tree, counts, sums, min_samples_leaf)
        grown.append((tree, feature, counts, sums))
    if classes is not None:
        alpha = SMOOTHING * release.noise_std[0] * math.sqrt(len(classes))
        return [
            FittedTree(t, f, c, None, _smoothed(t, f, c, alpha)) for t, f, c, _ in grown
        ]
    sum_std, count_std = release.noise_std
    spread = _leaf_spread(grown, sum_std, count_std)
    return [
        FittedTree(t, f, c, s, _shrunk_means(t, f, c, s, sum_std, spread))
        for t, f, c, s in grown
    ]


def _arrays(tree, feature):
    return feature, np.asarray(tree.left), np.asarray(tree.right)


def _prune_and_total(tree, counts, sums, min_samples_leaf):
    """Totals of internal nodes, bottom-up; collapse splits with a small side.

    A split is undone when both children are leaves and one has a (noisy)
    row count below ``min_samples_leaf``. ``counts`` and ``sums`` are filled
    in place; returns the split features with collapsed nodes as leaves.
    """
    feature, left, right = _arrays(tree, np.array(tree.feature, dtype=np.intp))
    for level in reversed(levels(feature, left, right)):
        inner = level[feature[level] >= 0]
        a, b = left[inner], right[inner]
        counts[inner] = counts[a] + counts[b]
        if sums is not None:
            sums[inner] = sums[a] + sums[b]
        rows_a = counts[a] if counts.ndim == 1 else counts[a].sum(axis=1)
        rows_b = counts[b] if counts.ndim == 1 else counts[b].sum(axis=1)
        small = np.minimum(rows_a, rows_b) < min_samples_leaf
        feature[inner[small & (feature[a] < 0) & (feature[b] < 0)]] = -1
    return feature


def _smoothed(tree, feature, counts, alpha):
    """Class probabilities shrunk towards the parent's by ``alpha`` pseudo-rows."""
    feature, left, right = _arrays(tree, feature)
    totals = counts.sum(axis=1)
    k = counts.shape[1]
    values = np.zeros_like(counts)
    values[0] = counts[0] / totals[0] if totals[0] > 0 else np.full(k, 1.0 / k)
    for level in levels(feature, left, right)[:-1]:
        inner = level[feature[level] >= 0]
        for children in (left[inner], right[inner]):
            weight = totals[children] + alpha
            safe = np.where(weight > 0, weight, 1.0)[:, None]
            shrunk = (counts[children] + alpha * values[inner]) / safe
            values[children] = np.where(weight[:, None] > 0, shrunk, values[inner])
    return values


def _leaf_spread(grown, sum_std, count_std):
    """Variance of the true leaf means around the root's, estimated.

    Empirical Bayes over the leaves of all trees with a row count above
    twice its noise: the variance of their noisy means less the mean noise
    variance of those means (0 if too few leaves).
    """
    means, noise = [], []
    for tree, feature, counts, sums in grown:
        reachable = np.concatenate(levels(*_arrays(tree, feature)))
        leaves = reachable[feature[reachable] < 0]
        rows = counts[leaves]
        kept = rows > max(2.0 * count_std, 0.0)
        means.append(sums[leaves][kept] / rows[kept])
        noise.append((sum_std / rows[kept]) ** 2)
    means, noise = np.concatenate(means), np.concatenate(noise)
    if means.size < 2:
        return 0.0
    return max(float(np.var(means) - np.mean(noise)), 0.0)


def _shrunk_means(tree, feature, counts, sums, sum_std, spread):
    """Mapped target means, each shrunk towards its parent's.

    A node's mean ``sum / count`` has noise variance about ``sum_std ** 2 *
    leaves / count ** 2``; it gets weight ``spread / (spread + noise
    variance)``, the rest going to its parent's value. Without noise every
    node keeps its own mean.
    """
    feature, left, right = _arrays(tree, feature)
    by_level = levels(feature, left, right)
    n_leaves = np.ones(len(feature))
    for level in reversed(by_level):
        inner = level[feature[level] >= 0]
        n_leaves[inner] = n_leaves[left[inner]] + n_leaves[right[inner]]
    own = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    noise = np.divide(
        sum_std**2 * n_leaves,
        counts**2,
        out=np.full_like(sums, np.inf),
        where=counts > 0,
    )
    if sum_std == 0:
        weight = (counts > 0).astype(float)
    else:
        weight = spread / (spread + noise)
    values = np.zeros_like(sums)
    values[0] = own[0] if counts[0] > 0 else 0.0
    for level in by_level[:-1]:
        inner = level[feature[level] >= 0]
        for children in (left[inner], right[inner]):
            w = weight[children]
            values[children] = w * own[children] + (1.0 - w) * values[inner]
    return values


def newton_values(tree, learning_rate, l2, min_hessian, noise_floor, step_bound):
    """Every node's value ``-learning_rate * G / (H + l2)``, with noise guards.

    ``H`` is floored at ``min_hessian`` and at ``noise_floor`` standard
    deviations of its noise, then the noise standard deviation of ``G`` is
    added to it: a step made mostly of noise shrinks towards 0 instead of
    reaching the bound (on ISLR Default at epsilon 1 every leaf of some fits
    hit the bound, a constant model); without noise nothing changes. The
    step is clipped to ``[-step_bound, step_bound]`` (inf: no clip).
    """
    values = np.zeros(tree.n_nodes)
    for node, ((G, H), (G_var, H_var)) in enumerate(zip(tree.sums, tree.variances)):
        H = max(H, min_hessian, noise_floor * math.sqrt(H_var)) + math.sqrt(G_var)
        step = min(max(G / (H + l2), -step_bound), step_bound)
        values[node] = -learning_rate * step
    return values
