"""Statistics of decision trees and forests.

The coordinator owns every tree's structure (split features and thresholds
in the mapped units of :meth:`fedsk.privacy.Clipping.apply`, where a bounded
feature lies in [-1, 1]) and passes it as a public parameter. A party routes
its own rows down the trees and returns sums only:

- ``tree_leaves``: per leaf of every tree, class counts, or the target sum
  and the row count (regression);
- ``tree_histograms``: for chosen nodes of the trees being grown (the nodes
  at one depth), per candidate feature and bin, class counts, or target sums
  and row counts.

A row goes left at a node when ``x[feature] <= threshold``; a value ``x``
falls in bin ``b`` of inner edges ``e`` when ``e[b - 1] < x <= e[b]``, so
"bins up to ``b``" and "``x <= e[b]``" are the same rows. Edges are shared
by all features (shape ``(n_edges,)``), per feature (``(n_features,
n_edges)``, padded with ``inf``), or per listed node and candidate
(``(n_nodes, m, n_edges)``).

Which trees see which rows
--------------------------
``assign_seed=None``: every tree sees every row. Otherwise each record goes
to exactly one tree, ``hash(assign_seed, record) mod n_trees``, where the
record is the clipped, mapped row and its target. The assignment is a
function of the record alone (and of the public seed), so adding or removing
one record changes no other record's tree; an assignment by position (a
seeded permutation of row numbers) would not have that property, since
removing a row shifts the rows after it.

Sensitivity (add or remove one record)
--------------------------------------
Let ``T`` be the number of trees a record can reach: all trees that take
part in the release when ``assign_seed`` is None, else 1. In each tree the
record ends in exactly one leaf (leaves partition the rows), and at one
depth in at most one of the listed nodes (the nodes at one depth partition
the rows). So:

- ``tree_leaves``, classifier: one count of one leaf per tree: L1 ``T``,
  L2 ``sqrt(T)``. Regressor: its target ``|y| <= y_max`` in one sum per
  tree (L1 ``T y_max``, L2 ``sqrt(T) y_max``), and 1 in one count per tree
  (L1 ``T``, L2 ``sqrt(T)``).
- ``tree_histograms`` with ``m`` candidate features per node: in each tree,
  one bin of each of the ``m`` candidates of its node, i.e. ``T m``
  coordinates, each moved by 1 (counts) or by ``|y| <= y_max`` (sums):
  L1 ``T m`` and L2 ``sqrt(T m)``, times ``y_max`` for sums. The number of
  bins does not enter: a record is in one bin per feature.

``T`` counts only trees with at least one listed node (the others get no
coordinates), which is still an upper bound.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._losses import class_index
from ._base import Statistic

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True, eq=False)
class TreeStructure:
    """A public tree: split features and thresholds, no data.

    Attributes
    ----------
    feature : ndarray of int of shape (n_nodes,)
        Split feature of each node; negative at leaves (and at nodes not
        split yet).
    threshold : ndarray of float of shape (n_nodes,)
        Split threshold in mapped units: a row goes left when
        ``x[feature] <= threshold``.
    left, right : ndarray of int of shape (n_nodes,)
        Children of each node (ignored at leaves). Node 0 is the root.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def n_nodes(self):
        return len(self.feature)

    @property
    def leaves(self):
        """Node ids of the leaves, in increasing order."""
        return np.flatnonzero(self.feature < 0)


def route(tree, X):
    """Node id of the leaf each row of ``X`` reaches in ``tree``."""
    node = np.zeros(X.shape[0], dtype=np.intp)
    active = np.arange(X.shape[0])
    while active.size:
        at = node[active]
        feature = tree.feature[at]
        inner = feature >= 0
        active, at, feature = active[inner], at[inner], feature[inner]
        go_left = X[active, feature] <= tree.threshold[at]
        node[active] = np.where(go_left, tree.left[at], tree.right[at])
    return node


def _mix(h):
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def record_shares(X, codes, n_shares, seed):
    """The share (tree) of every record: ``hash(seed, row, target) mod n_shares``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Clipped, mapped rows.
    codes : ndarray of shape (n_samples,)
        The target as numbers (class index, or mapped value).
    n_shares : int
    seed : int
        Public key of the hash.

    Returns
    -------
    shares : ndarray of int of shape (n_samples,)
    """
    # +0.0 turns -0.0 into 0.0, so equal values hash alike
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64) + 0.0)
    codes = np.ascontiguousarray(np.asarray(codes, dtype=np.float64) + 0.0)
    with np.errstate(over="ignore"):
        h = np.full(X.shape[0], np.uint64(seed % 2**64)) * _GOLDEN
        for column in [*X.T, codes]:
            h = _mix(h + _GOLDEN + np.ascontiguousarray(column).view(np.uint64))
    return (h % np.uint64(n_shares)).astype(np.intp)


def _codes(y, classes):
    if classes is None:
        return np.asarray(y, dtype=float)
    return class_index(y, classes)


def _rows_by_tree(X, codes, n_trees, assign_seed):
    """For each tree, the rows it sees (all rows, or its share)."""
    if assign_seed is None:
        every = np.arange(X.shape[0])
        return [every] * n_trees
    shares = record_shares(X, codes, n_trees, assign_seed)
    order = np.argsort(shares, kind="stable")
    bounds = np.searchsorted(shares[order], np.arange(n_trees + 1))
    return [order[bounds[t] : bounds[t + 1]] for t in range(n_trees)]


def _reach(n_trees, assign_seed):
    """How many trees one record can reach."""
    return 1 if assign_seed is not None else n_trees


def _sums(cells, codes, size, classes):
    """Counts per cell and class, or (target sums, counts) per cell."""
    if classes is None:
        return [
            np.bincount(cells, weights=codes, minlength=size),
            np.bincount(cells, minlength=size).astype(float),
        ]
    k = len(classes)
    return [np.bincount(cells * k + codes, minlength=size * k).astype(float)]


def _blocks_sensitivity(clipping, coordinates, classes):
    l1, l2 = float(coordinates), math.sqrt(coordinates)
    if classes is not None:
        return [(l1, l2)]
    y_max = clipping.y_abs_max()
    return [(l1 * y_max, l2 * y_max), (l1, l2)]


def _blocks_shapes(shape, classes):
    if classes is None:
        return [shape, shape]
    return [(*shape, len(classes))]


# -- tree_leaves: per leaf, class counts or (target sum, count) -----------------


def _tree_leaves(X, y, forest, classes=None, assign_seed=None):
    codes = _codes(y, classes)
    size = sum(len(tree.leaves) for tree in forest)
    totals = None
    start = 0
    for tree, rows in zip(forest, _rows_by_tree(X, codes, len(forest), assign_seed)):
        slot = np.full(tree.n_nodes, -1, dtype=np.intp)
        leaves = tree.leaves
        slot[leaves] = start + np.arange(leaves.size)
        start += leaves.size
        cells = slot[route(tree, X[rows])]
        blocks = _sums(cells, codes[rows], size, classes)
        totals = blocks if totals is None else [a + b for a, b in zip(totals, blocks)]
    shape = (size,) if classes is None else (size, len(classes))
    return [block.reshape(shape) for block in totals]


def _tree_leaves_shapes(n_features, forest, classes=None, assign_seed=None):
    return _blocks_shapes((sum(len(tree.leaves) for tree in forest),), classes)


def _tree_leaves_sensitivity(
    clipping, n_features, forest, classes=None, assign_seed=None
):
    # one leaf per tree the record reaches
    return _blocks_sensitivity(clipping, _reach(len(forest), assign_seed), classes)


# -- tree_histograms: per listed node, candidate feature and bin ----------------


def _feature_bins(X, edges):
    """Bin of every value of every feature: shared (1-D) or per-feature edges."""
    edges = np.broadcast_to(edges, (X.shape[1], edges.shape[-1]))
    return np.stack(
        [np.searchsorted(e, X[:, j], side="left") for j, e in enumerate(edges)],
        axis=1,
    )


def _tree_histograms(
    X, y, forest, nodes, features, edges, classes=None, assign_seed=None
):
    codes = _codes(y, classes)
    n_slots, m = features.shape
    n_bins = edges.shape[-1] + 1
    size = n_slots * m * n_bins
    totals = [np.zeros(size * (1 if classes is None else len(classes)))]
    if classes is None:
        totals.append(np.zeros(size))
    per_candidate = edges.ndim == 3
    binned = None if per_candidate else _feature_bins(X, edges)
    start = 0
    for tree, ids, rows in zip(
        forest, nodes, _rows_by_tree(X, codes, len(forest), assign_seed)
    ):
        ids = np.asarray(ids, dtype=np.intp)
        if ids.size == 0:
            continue
        slot = np.full(tree.n_nodes, -1, dtype=np.intp)
        slot[ids] = start + np.arange(ids.size)
        start += ids.size
        slots = slot[route(tree, X[rows])]
        kept = slots >= 0
        rows, slots = rows[kept], slots[kept]
        if per_candidate:  # (rows, m): compare with each candidate's edges
            values = X[rows[:, None], features[slots]]
            bins = np.sum(values[..., None] > edges[slots], axis=-1)
        else:
            bins = binned[rows[:, None], features[slots]]
        cells = ((slots[:, None] * m + np.arange(m)) * n_bins + bins).ravel()
        blocks = _sums(cells, np.repeat(codes[rows], m), size, classes)
        totals = [a + b for a, b in zip(totals, blocks)]
    shape = (n_slots, m, n_bins)
    return [t.reshape(s) for t, s in zip(totals, _blocks_shapes(shape, classes))]


def _tree_histograms_shapes(
    n_features, forest, nodes, features, edges, classes=None, assign_seed=None
):
    shape = (features.shape[0], features.shape[1], edges.shape[-1] + 1)
    return _blocks_shapes(shape, classes)


def _tree_histograms_sensitivity(
    clipping,
    n_features,
    forest,
    nodes,
    features,
    edges,
    classes=None,
    assign_seed=None,
):
    # one bin of each of the m candidates of one listed node, per tree reached
    active = sum(np.size(ids) > 0 for ids in nodes)
    coordinates = _reach(active, assign_seed) * features.shape[1]
    return _blocks_sensitivity(clipping, coordinates, classes)


TREE_STATISTICS = {
    "tree_leaves": Statistic(
        _tree_leaves, _tree_leaves_shapes, _tree_leaves_sensitivity
    ),
    "tree_histograms": Statistic(
        _tree_histograms, _tree_histograms_shapes, _tree_histograms_sensitivity
    ),
}
