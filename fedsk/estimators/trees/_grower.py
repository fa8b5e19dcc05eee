"""Trees being grown, and the two ways to grow them.

:class:`Tree` is the one representation of a tree on the coordinator: per
node its split (feature and cut, a grid edge), children, depth and box,
and what the releases said about it. :func:`random_trees` draws structures
from public information only; :class:`LevelGrower` grows trees level by
level from one release of noisy histograms per depth (the nodes at one
depth partition the rows, so all trees' nodes at that depth share the
release, :func:`histogram_release`).
"""

import math

import numpy as np
from sklearn.utils import check_random_state

from ..._statistics._trees import TreeStructure
from ._binning import FINE_BINS, grid_edges
from ._splits import candidates


class Tree:
    """A tree on the coordinator; nodes are appended, children after parents.

    Attributes (lists, one entry per node)
    --------------------------------------
    feature, cut : split feature (-1 at leaves) and grid edge of the split.
    left, right, depth : children (-1 at leaves) and depth.
    first, last : the node's box, grid edges per feature.
    sums, variances : per block, the node's sums as the releases estimate
        them and their noise variance (``inf``: nothing known yet).
    gain : the gain of the node's split (0 at leaves).
    """

    def __init__(self, n_features, n_blocks=1):
        self.feature, self.cut, self.left, self.right = [-1], [0], [-1], [-1]
        self.depth, self.gain = [0], [0.0]
        self.first = [np.zeros(n_features, dtype=np.intp)]
        self.last = [np.full(n_features, FINE_BINS, dtype=np.intp)]
        self.sums = [[0.0] * n_blocks]
        self.variances = [[math.inf] * n_blocks]

    @property
    def n_nodes(self):
        return len(self.feature)

    @property
    def leaves(self):
        """Node ids of the leaves, in increasing order."""
        return np.flatnonzero(np.asarray(self.feature) < 0)

    def split(self, node, feature, cut, gain=0.0, children=((), ())):
        """Split ``node``; ``children`` are (sums, variances) of each side."""
        ids = []
        for side, stats in zip(("left", "right"), children):
            first, last = self.first[node].copy(), self.last[node].copy()
            if side == "left":
                last[feature] = cut
            else:
                first[feature] = cut
            ids.append(self.n_nodes)
            self.feature.append(-1)
            self.cut.append(0)
            self.left.append(-1)
            self.right.append(-1)
            self.depth.append(self.depth[node] + 1)
            self.gain.append(0.0)
            self.first.append(first)
            self.last.append(last)
            sums, variances = stats or (self.sums[node], self.variances[node])
            self.sums.append(list(sums))
            self.variances.append(list(variances))
        self.feature[node], self.cut[node], self.gain[node] = (
            int(feature),
            int(cut),
            gain,
        )
        self.left[node], self.right[node] = ids
        return ids

    def update(self, node, sums, variances):
        """Combine the node's sums with independent estimates (inverse variance)."""
        for b, (s, v) in enumerate(zip(sums, variances)):
            self.sums[node][b], self.variances[node][b] = _combine(
                self.sums[node][b], self.variances[node][b], s, v
            )

    def structure(self):
        """The public :class:`TreeStructure`, thresholds in mapped units."""
        feature = np.asarray(self.feature, dtype=np.intp)
        return TreeStructure(
            feature=feature,
            threshold=np.where(feature >= 0, grid_edges()[self.cut], -2.0),
            left=np.asarray(self.left, dtype=np.intp),
            right=np.asarray(self.right, dtype=np.intp),
        )


def public_rng(random_state, session):
    """The public randomness of tree structures, as a ``RandomState``.

    From the estimator's ``random_state``; when it is None and the fit's
    noise is seeded (``FederatedEstimator(random_state=...)``, simulation),
    from a stream of that seed kept apart from the noise's, so a seeded fit
    is reproducible. Structures are public: this randomness protects
    nothing.
    """
    if random_state is None and session.seed_sequence is not None:
        root = session.seed_sequence
        stream = np.random.SeedSequence(
            root.entropy, spawn_key=(*root.spawn_key, 2**32 - 1)
        )
        return np.random.RandomState(stream.generate_state(1)[0])
    return check_random_state(random_state)


def _combine(a, var_a, b, var_b):
    """Inverse-variance weighted mean of two independent estimates."""
    if var_a == 0 or not np.all(np.isfinite(var_b)):
        return a, var_a
    if var_b == 0 or not np.all(np.isfinite(var_a)):
        return b, var_b
    weight = var_b / (var_a + var_b)
    return weight * a + (1 - weight) * b, var_a * var_b / (var_a + var_b)


def random_trees(n_trees, depth, n_features, rng, marginals, power=1.0, n_blocks=1):
    """Random structures of ``depth`` levels, drawn from public information.

    At each node a feature is drawn by :meth:`Marginals.feature_weights`
    (of ``power``) and a cut by :meth:`Marginals.draw` inside the node's
    box; a feature that cannot be split there is redrawn, and a node with
    no splittable feature after ``4 * n_features`` draws stays a leaf. Each
    tree's nodes hold ``n_blocks`` sums.
    """
    weights = marginals.feature_weights(power)
    trees = [Tree(n_features, n_blocks) for _ in range(n_trees)]
    frontier = [(t, 0) for t in range(n_trees)]
    for _ in range(depth):
        if not frontier:
            break
        chosen = np.full(len(frontier), -1, dtype=np.intp)
        cut = np.full(len(frontier), -1, dtype=np.intp)
        todo = np.arange(len(frontier))
        for _ in range(4 * n_features):
            if todo.size == 0:
                break
            features = rng.choice(n_features, size=todo.size, p=weights)
            boxes = [frontier[i] for i in todo]
            first = np.array(
                [trees[t].first[n][f] for (t, n), f in zip(boxes, features)]
            )
            last = np.array([trees[t].last[n][f] for (t, n), f in zip(boxes, features)])
            drawn = marginals.draw(rng, features, first, last)
            done = drawn >= 0
            chosen[todo[done]], cut[todo[done]] = features[done], drawn[done]
            todo = todo[~done]
        next_frontier = []
        for (t, node), f, c in zip(frontier, chosen, cut):
            if f >= 0:
                next_frontier += [(t, child) for child in trees[t].split(node, f, c)]
        frontier = next_frontier
    return trees


def histogram_release(session, share, clipping, target, assign_seed=None):
    """The ``release`` of :meth:`LevelGrower.grow`: one level's histograms."""

    def release(forest, nodes, features, lut):
        return session.release(
            "tree_histograms",
            share,
            clipping=clipping,
            forest=forest,
            nodes=nodes,
            features=features,
            edges=grid_edges()[1:-1],
            lut=lut,
            target=target,
            assign_seed=assign_seed,
        )

    return release


class LevelGrower:
    """Grow trees level by level from one histogram release per depth.

    Parameters
    ----------
    bins : Bins
        The bins of every feature.
    rng : numpy.random.Generator or RandomState
        Public randomness: candidate features, random cuts.
    n_candidates : int
        Candidate features per node (all when equal to n_features).
    feature_weights : ndarray of shape (n_features,) or None
        Chance of each feature to be drawn as a candidate; the feature of
        largest weight is always one (None: uniform, as scikit-learn's
        ``max_features``).
    splitter : {"best", "random"}
        ``"random"``: each candidate feature offers one random valid cut, as
        scikit-learn's ``ExtraTree*``.
    criterion : {"gini", "entropy"} or None
        Class counts' impurity; None for sums.
    l2 : float
        L2 regularisation of the sums' gain.
    min_weight : float
        Smallest weight (rows, or Hessian) of a child.
    min_split_weight : float
        Smallest weight of a node to split.
    min_gain : float
        Smallest gain of a split.
    max_leaf_nodes : int or None
        At each level the splits of largest gain go first until a tree
        has this many leaves.
    """

    def __init__(
        self,
        bins,
        rng,
        *,
        n_candidates,
        feature_weights=None,
        splitter="best",
        criterion=None,
        l2=0.0,
        min_weight=0.0,
        min_split_weight=0.0,
        min_gain=0.0,
        max_leaf_nodes=None,
    ):
        self.cut_table = bins.cut_table()
        self.sizes = np.array([len(c) + 1 for c in bins.cuts])
        self.lut = bins.lut()
        self.rng = rng
        self.n_candidates = n_candidates
        self.feature_weights = feature_weights
        self.splitter = splitter
        self.criterion = criterion
        self.l2 = l2
        self.min_weight = min_weight
        self.min_split_weight = min_split_weight
        self.min_gain = min_gain
        self.max_leaf_nodes = max_leaf_nodes or math.inf

    def grow(self, trees, n_levels, release):
        """Grow ``trees`` for up to ``n_levels`` levels; return levels released.

        ``release(forest, nodes, features, lut)`` makes one
        ``tree_histograms`` release and returns it.
        """
        d = len(self.sizes)
        frontier = [[0] for _ in trees]
        for level in range(n_levels):
            listed = [(t, node) for t, ids in enumerate(frontier) for node in ids]
            if not listed:
                return level
            features = self._features(len(listed), d)
            out = release(
                tuple(t.structure() for t in trees),
                tuple(np.asarray(ids, dtype=np.intp) for ids in frontier),
                features,
                self.lut,
            )
            chosen = [[] for _ in trees]
            for i, (t, node) in enumerate(listed):
                split = self._best(
                    trees[t],
                    node,
                    [b[i] for b in out.blocks],
                    out.noise_std,
                    features[i],
                )
                if split is not None:
                    chosen[t].append((node, *split))
            frontier = [
                self._apply(tree, splits) for tree, splits in zip(trees, chosen)
            ]
        return n_levels

    def _features(self, n_nodes, d):
        """Candidate features of each listed node: (n_nodes, n_candidates)."""
        if self.n_candidates >= d:
            return np.tile(np.arange(d, dtype=np.intp), (n_nodes, 1))
        if self.feature_weights is None:
            drawn = [
                self.rng.choice(d, self.n_candidates, replace=False)
                for _ in range(n_nodes)
            ]
            return np.sort(np.array(drawn, dtype=np.intp), axis=1)
        # the feature of largest weight always, the others drawn by weight
        top = int(np.argmax(self.feature_weights))
        others = np.delete(np.arange(d), top)
        weights = np.delete(self.feature_weights, top)
        drawn = [
            np.append(
                self.rng.choice(
                    others,
                    self.n_candidates - 1,
                    replace=False,
                    p=weights / weights.sum(),
                ),
                top,
            )
            for _ in range(n_nodes)
        ]
        return np.sort(np.array(drawn, dtype=np.intp), axis=1)

    def _best(self, tree, node, blocks, stds, features):
        """The best split of ``node``: (gain, feature, cut, children) or None."""
        sizes = self.sizes[features]
        found = candidates(
            blocks,
            stds,
            sizes,
            criterion=self.criterion,
            l2=self.l2,
            min_weight=self.min_weight,
        )
        # every candidate's bins add up to the node's sums: their mean
        m = len(features)
        sums = [block.sum(axis=1).mean(axis=0) for block in blocks]
        cells = sizes.sum() / m**2
        tree.update(node, sums, [cells * s**2 for s in stds])
        cuts = self.cut_table[features]
        first = tree.first[node][features, None]
        last = tree.last[node][features, None]
        valid = found.valid & (cuts > first) & (cuts < last)
        valid &= found.gain > self.min_gain
        if self.splitter == "random":
            valid = _one_random_per_row(valid, self.rng)
        if not valid.any():
            return None
        gain = np.where(valid, found.gain, -np.inf)
        j, b = np.unravel_index(np.argmax(gain), gain.shape)
        children = tuple(
            ([block[j, b] for block in side], [cells[j, b] * s**2 for s in stds])
            for side, cells in (
                (found.left, found.cells_left),
                (found.right, found.cells_right),
            )
        )
        return float(gain[j, b]), int(features[j]), int(cuts[j, b]), children

    def _apply(self, tree, splits):
        """Split a tree's nodes, best gain first; return the next frontier."""
        n_leaves = len(tree.leaves)
        frontier = []
        for node, gain, feature, cut, children in sorted(splits, key=lambda s: -s[1]):
            if n_leaves >= self.max_leaf_nodes:
                break
            n_leaves += 1
            for child in tree.split(node, feature, cut, gain, children):
                if _splittable(tree, child, self.min_split_weight):
                    frontier.append(child)
        return sorted(frontier)


def _splittable(tree, node, min_weight):
    """Enough weight (rows of class counts, or ``H``), and not known pure."""
    sums = tree.sums[node]
    if len(sums) == 2:
        return float(sums[1]) >= min_weight
    counts = np.asarray(sums[0])
    exact = all(v == 0 for v in tree.variances[node])
    return counts.sum() >= min_weight and not (exact and np.count_nonzero(counts) < 2)


def _one_random_per_row(valid, rng):
    """Keep one random True per row of ``valid``."""
    out = np.zeros_like(valid)
    for j in np.flatnonzero(valid.any(axis=1)):
        out[j, rng.choice(np.flatnonzero(valid[j]))] = True
    return out
