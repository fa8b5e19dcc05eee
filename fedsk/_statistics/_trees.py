"""Statistics of tree models: decision trees, forests and gradient boosting.

The coordinator owns every tree (split features and thresholds in the mapped
units of :meth:`fedsk.privacy.Clipping.apply`, where a bounded feature lies
in [-1, 1]) and passes it as a public parameter. A party routes its own rows
down the trees and returns sums only:

- ``tree_histograms``: for chosen nodes of the trees being grown (the nodes
  at one depth), per candidate feature and bin, sums of the rows' values;
- ``tree_leaves``: per leaf of every tree, sums of the rows' values.

What a row adds (its "values") is the public :class:`TreeTarget`: its class
as a one-hot vector (one block of class counts), its target and 1 (two
blocks: target sums and row counts), or its gradient and Hessian of a loss
at a public :class:`Ensemble` (two blocks). A value ``x`` falls in fine bin
``i`` of the grid ``edges`` when ``edges[i - 1] < x <= edges[i]``, as in
scikit-learn's ``_BinMapper``; the bins of a histogram are runs of fine
bins given by a public lookup table ``lut`` (fine bin -> bin, per feature),
and every threshold is a fine edge, so "bins up to ``b``" and "``x <=
threshold``" are the same rows.

Which trees see which rows
--------------------------
``assign_seed=None``: every tree sees every row. Otherwise each record goes
to exactly one tree, ``hash(assign_seed, record) mod n_trees``, where the
record is the clipped, mapped row and its target: a function of the record
alone, so adding or removing one record changes no other record's tree.

Sensitivity (add or remove one record)
--------------------------------------
In each tree a record ends in one leaf, and at one depth in at most one of
the listed nodes (both partition the rows). Let ``(b1_t, b2_t)`` bound the
L1 and L2 norms of what the record adds to one cell of tree ``t`` (per
block: 1 for class counts and row counts, ``y_max`` for target sums, the
clipped gradient or Hessian of output ``t``). Over the trees it reaches,
``B1 = sum_t b1_t`` and ``B2 = sqrt(sum_t b2_t ** 2)``; for the softmax,
whose gradients sum to zero, ``B1 <= 2`` over one tree per class whatever
the number of classes (:func:`_derivative_bounds`), times the number of
trees per output. Then:

- ``tree_leaves``: one leaf per tree: L1 ``B1``, L2 ``B2``;
- ``tree_histograms`` with ``m`` candidate features per node: one bin of
  each candidate: L1 ``m B1``, L2 ``sqrt(m) B2``. The number of bins does
  not enter.

A forest's trees reached are all trees with a listed node (``assign_seed``
None) or 1 (disjoint shares).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from .._losses import class_index
from ..utils._sklearn_compat import predict_tree_nodes, tree_node_records
from ._base import Statistic

LOSSES = ("log_loss", "squared_error")

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

    @classmethod
    def leaf(cls):
        """A tree of one node."""
        return cls(*(np.array([v]) for v in (-1, -2.0, -1, -1)))

    @property
    def n_nodes(self):
        return len(self.feature)

    @property
    def leaves(self):
        """Node ids of the leaves, in increasing order."""
        return np.flatnonzero(self.feature < 0)


def route(tree, X):
    """Node id of the leaf each row of ``X`` reaches in ``tree``.

    Runs scikit-learn's compiled predictor on the tree with node ids as
    values (it sends a row left when ``x <= threshold``, as the tree says).
    """
    n = tree.n_nodes
    leaf = tree.feature < 0
    records = tree_node_records(
        value=np.arange(n, dtype=float),
        feature=np.where(leaf, 0, tree.feature),
        threshold=np.where(leaf, 0.0, tree.threshold),
        bin_threshold=np.zeros(n, dtype=np.intp),
        left=np.where(leaf, 0, tree.left),
        right=np.where(leaf, 0, tree.right),
        is_leaf=leaf,
        missing_go_to_left=np.zeros(n, dtype=bool),
        count=np.zeros(n),
        gain=np.zeros(n),
        depth=np.zeros(n, dtype=np.intp),
    )
    return predict_tree_nodes(records, X).astype(np.intp)


@dataclass(frozen=True, eq=False)
class Ensemble:
    """A public boosted model: a baseline and trees with node values.

    Attributes
    ----------
    baseline : ndarray of shape (n_outputs,)
        Raw prediction of the intercept-only model.
    trees : tuple of tuple of (TreeStructure, ndarray)
        Per iteration, one tree and its node values per output, in mapped
        units.
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
            for k, (tree, values) in enumerate(iteration):
                raw[:, k] += values[route(tree, X)]
        return raw


@dataclass(frozen=True, eq=False)
class TreeTarget:
    """What a row adds to its cells: public, chosen by the estimator.

    Parameters
    ----------
    classes : ndarray or None
        Class counts (one block of shape (..., n_classes)); with a ``loss``,
        the labels of ``log_loss``.
    loss : {"log_loss", "squared_error"} or None
        Gradients and Hessians of ``loss`` at ``ensemble`` (two blocks).
        None without ``classes``: target sums and row counts (two blocks).
    ensemble : Ensemble or None
    gradient_clip, hessian_clip : float or None
        Clips of a row's gradient to ``[-gradient_clip, gradient_clip]`` and
        of its Hessian to ``[0, hessian_clip]``.
    gradient_share : float
        With a ``loss``, the gradients' share of a release's budget (the
        Hessians get the rest).
    """

    classes: np.ndarray | None = None
    loss: str | None = None
    ensemble: Ensemble | None = None
    gradient_clip: float | None = None
    hessian_clip: float | None = None
    gradient_share: float = 0.5

    @property
    def n_outputs(self):
        """Outputs of the values; tree ``t`` sums output ``t % n_outputs``."""
        return 1 if self.loss is None else self.ensemble.n_outputs

    def n_blocks(self):
        return 1 if self.loss is None and self.classes is not None else 2

    def block_width(self):
        """Values per cell of each block (the last axis of class counts)."""
        if self.loss is None and self.classes is not None:
            return [len(self.classes)]
        return [1, 1]

    def shares(self):
        """Each block's share of a release's budget (None: equal)."""
        if self.loss is None:
            return None
        if not 0 < self.gradient_share < 1:
            raise ValueError(
                f"gradient_share must be in (0, 1); got {self.gradient_share!r}."
            )
        return [self.gradient_share, 1.0 - self.gradient_share]

    def values(self, X, y):
        """Per block, the values of every row: (n_samples, n_outputs, width)."""
        if self.loss is not None:
            gradient, hessian = derivatives(
                X,
                y,
                self.ensemble,
                self.loss,
                self.classes,
                self.gradient_clip,
                self.hessian_clip,
            )
            return [gradient[..., None], hessian[..., None]]
        if self.classes is not None:
            index = class_index(y, self.classes)
            onehot = index[:, None] == np.arange(len(self.classes))[None, :]
            return [onehot.astype(float)[:, None, :]]
        y = np.asarray(y, dtype=float)
        return [y[:, None, None], np.ones((y.size, 1, 1))]

    def codes(self, y):
        """The target as numbers, for the record hash."""
        if self.classes is not None:
            return class_index(y, self.classes).astype(float)
        return np.asarray(y, dtype=float)

    def bounds(self, clipping, n_trees):
        """Per block, the (L1, L2) bound of one record over ``n_trees`` trees."""
        if self.loss is not None:
            # tree t sums output t % n_outputs: each output at most `uses` times
            uses = math.ceil(n_trees / self.n_outputs)
            bounds = _derivative_bounds(
                self.loss, self.n_outputs, self.gradient_clip, self.hessian_clip
            )
            return [(uses * l1, math.sqrt(uses) * l2) for l1, l2 in bounds]
        root = math.sqrt(n_trees)
        if self.classes is not None:
            return [(float(n_trees), root)]
        y_max = clipping.y_abs_max()
        return [(n_trees * y_max, root * y_max), (float(n_trees), root)]


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


# -- the fine grid ----------------------------------------------------------------


def fine_bins(X, edges):
    """Index of every value of ``X`` on the fine grid of inner ``edges``.

    ``x`` goes to fine bin ``i`` when ``edges[i - 1] < x <= edges[i]``.
    ``edges`` are equally spaced; the index is computed arithmetically,
    then moved by one where rounding put ``x`` on the wrong side of an edge,
    so it equals a binary search over ``edges``.
    """
    X = np.asarray(X, dtype=float)
    n_fine = edges.size + 1
    low, step = edges[0], edges[1] - edges[0]
    full = np.concatenate([[-np.inf], edges, [np.inf]])
    bins = np.clip(np.floor((X - low) / step) + 1, 0, n_fine - 1).astype(np.intp)
    bins -= X <= full[bins]
    bins += X > full[bins + 1]
    return bins


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


def _mix(h):
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def _rows_by_tree(X, y, target, n_trees, assign_seed):
    """For each tree, the rows it sees (all rows, or its share)."""
    if assign_seed is None:
        every = np.arange(X.shape[0])
        return [every] * n_trees
    shares = record_shares(X, target.codes(y), n_trees, assign_seed)
    order = np.argsort(shares, kind="stable")
    bounds = np.searchsorted(shares[order], np.arange(n_trees + 1))
    return [order[bounds[t] : bounds[t + 1]] for t in range(n_trees)]


def _reached(nodes, assign_seed):
    """How many trees one record can reach: those with a listed node."""
    return 1 if assign_seed is not None else sum(np.size(i) > 0 for i in nodes)


def _cell_sums(forest, nodes, X, y, target, assign_seed, cells_of):
    """Sum every row's values into cells, per block: (n_cells, width).

    ``cells_of(rows, slots)`` gives the cells of the rows that reach listed
    slot ``slots``: an array of shape (n_rows, c) (a row adds its values to
    each of its ``c`` cells), the cells of slot ``s`` lying in ``[s *
    per_slot, (s + 1) * per_slot)``.
    """
    values = target.values(X, y)
    n_slots = sum(np.size(ids) for ids in nodes)
    sums = [None] * len(values)
    start = 0
    by_tree = _rows_by_tree(X, y, target, len(forest), assign_seed)
    for t, (tree, ids, rows) in enumerate(zip(forest, nodes, by_tree)):
        ids = np.asarray(ids, dtype=np.intp)
        if ids.size == 0:
            continue
        slot = np.full(tree.n_nodes, -1, dtype=np.intp)
        slot[ids] = start + np.arange(ids.size)
        start += ids.size
        slots = slot[route(tree, X[rows])]
        kept = slots >= 0
        rows, slots = rows[kept], slots[kept]
        cells, size = cells_of(rows, slots, n_slots)
        for b, block in enumerate(values):
            v = block[rows, t % target.n_outputs]  # (n_rows, width)
            width = v.shape[1]
            flat = cells[..., None] * width + np.arange(width)
            weights = np.broadcast_to(v[:, None, :], flat.shape)
            total = np.bincount(
                flat.ravel(), weights=weights.ravel(), minlength=size * width
            )
            sums[b] = total if sums[b] is None else sums[b] + total
    return sums


def _shaped(sums, shape, target):
    out = []
    for b, width in enumerate(target.block_width()):
        full = shape if width == 1 else (*shape, width)
        block = np.zeros(int(np.prod(full))) if sums[b] is None else sums[b]
        out.append(block.reshape(full))
    return out


def _shapes(shape, target):
    return [shape if w == 1 else (*shape, w) for w in target.block_width()]


# -- tree_leaves: per leaf of every tree ----------------------------------------


def _tree_leaves(X, y, forest, target, assign_seed=None):
    nodes = [tree.leaves for tree in forest]

    def cells_of(rows, slots, n_slots):
        return slots[:, None], n_slots

    sums = _cell_sums(forest, nodes, X, y, target, assign_seed, cells_of)
    return _shaped(sums, (sum(len(n) for n in nodes),), target)


def _tree_leaves_shapes(n_features, forest, target, assign_seed=None):
    return _shapes((sum(len(tree.leaves) for tree in forest),), target)


def _tree_leaves_sensitivity(clipping, n_features, forest, target, assign_seed=None):
    reached = _reached([tree.leaves for tree in forest], assign_seed)
    return target.bounds(clipping, reached)


# -- tree_histograms: per listed node, candidate feature and bin -----------------


def _tree_histograms(
    X, y, forest, nodes, features, edges, lut, target, assign_seed=None
):
    m = features.shape[1]
    n_bins = int(lut.max()) + 1
    d, n_fine = lut.shape
    binned = np.asarray(lut).ravel()[fine_bins(X, edges) + np.arange(d) * n_fine]

    def cells_of(rows, slots, n_slots):
        candidates = features[slots]  # (n_rows, m)
        bins = binned[rows[:, None], candidates]
        cells = (slots[:, None] * m + np.arange(m)) * n_bins + bins
        return cells, n_slots * m * n_bins

    sums = _cell_sums(forest, nodes, X, y, target, assign_seed, cells_of)
    return _shaped(sums, (features.shape[0], m, n_bins), target)


def _tree_histograms_shapes(
    n_features, forest, nodes, features, edges, lut, target, assign_seed=None
):
    return _shapes((features.shape[0], features.shape[1], int(lut.max()) + 1), target)


def _tree_histograms_sensitivity(
    clipping, n_features, forest, nodes, features, edges, lut, target, assign_seed=None
):
    # one bin of each of the m candidates of one listed node, per tree reached
    m = features.shape[1]
    bounds = target.bounds(clipping, _reached(nodes, assign_seed))
    return [(m * l1, math.sqrt(m) * l2) for l1, l2 in bounds]


def _target_shares(target, **params):
    return target.shares()


TREE_STATISTICS = {
    "tree_leaves": Statistic(
        _tree_leaves, _tree_leaves_shapes, _tree_leaves_sensitivity, _target_shares
    ),
    "tree_histograms": Statistic(
        _tree_histograms,
        _tree_histograms_shapes,
        _tree_histograms_sensitivity,
        _target_shares,
    ),
}
