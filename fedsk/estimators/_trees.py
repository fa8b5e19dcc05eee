"""The federated tree engine shared by decision trees and forests.

Nothing here sees a party's rows. The coordinator grows every tree's
structure in mapped units (a bounded feature lies in [-1, 1] at the
parties, see :meth:`fedsk.privacy.Clipping.apply`) and asks the federation
for sums: ``tree_histograms`` while growing greedily, ``tree_leaves`` once
the structure is fixed (:mod:`fedsk._statistics._trees` states their
sensitivities). Everything after a release (split choice, pruning,
smoothing, conversion to scikit-learn's ``Tree``) is post-processing.

First, always: one ``tree_histograms`` release for the root with every
feature on a fine public grid of ``FINE_BINS`` bins (``MARGINAL_SHARE`` of
the budget). Its row counts are the features' marginals (:class:`Marginals`),
which place thresholds and bins where the rows are; its class counts (target
sums) give each feature's best split gain at the root.

Strategies
----------
``"random"``
    Random structures, drawn at the coordinator from public information
    only: at each node a feature with probability in proportion to its
    root gain (plus a floor), and a threshold drawn from that feature's
    marginal inside the node's box; then one release of leaf statistics
    for all trees.
``"greedy"``
    Level by level: one release of per-node, per-candidate-feature, per-bin
    histograms (bins at the marginals' quantiles) for the nodes at one depth
    of every tree (they partition the rows, so they compose in parallel),
    split by the largest gain computed from the noisy counts; then one
    release of leaf statistics. With ``splitter="random"`` (``ExtraTrees*``)
    each candidate feature gets one threshold drawn from its marginal.
``"random_disjoint"``, ``"greedy_disjoint"``
    The same, but every record reaches one tree only (a keyed hash of the
    record, computed by its party), so a release's sensitivity does not
    grow with the number of trees.

Budget (fractions of the fit's epsilon, or of rho with ``delta > 0``),
fixed before the first release: ``MARGINAL_SHARE`` for the marginals; with
``max_depth=None`` and finite epsilon, ``COUNT_SHARE`` for a noisy row count
that sets the depth (:func:`planned_depth`); greedy levels get ``(1 -
LEAF_SHARE)`` of what is left, split equally over the planned levels; the
leaves get the rest, including the shares of levels that were not needed,
so a fit spends exactly its budget.

Leaves: noisy counts are floored at 0, internal nodes get the sums of their
leaves, splits whose leaf count falls below ``min_samples_leaf`` are undone,
and a node's value is shrunk towards its parent's by the noise level
(class probabilities) or by an empirical-Bayes weight (regression means).
"""

import math
from dataclasses import dataclass

import numpy as np

from .._statistics import STATISTICS
from .._statistics._trees import TreeStructure
from ..privacy import Clipping, GridEncoding, budget_share
from ._bounds import private_bounds

TREE_STRATEGIES = ("random", "random_disjoint", "greedy", "greedy_disjoint")
# bins per feature of greedy histograms: at the noisy quantiles of the
# marginals (N_BINS), or, without noise, at their exact quantiles
N_BINS = 16
NOISE_FREE_BINS = 64
# the public grid of the marginal histograms, and their share of the budget
FINE_BINS = 128
MARGINAL_SHARE = 0.1
# noisy marginal counts below this many noise standard deviations count as 0
MARGINAL_SNR = 2.0
# smallest weight of a feature in random structures (see feature_weights)
FEATURE_WEIGHT_FLOOR = 0.05
COUNT_SHARE = 0.05
LEAF_SHARE = 0.3
# planned_depth: a leaf must expect LEAF_SNR noise standard deviations of its
# row count; a node at the last split level SPLIT_SNR standard deviations of
# a sum of N_BINS bins
LEAF_SNR = 2.0
SPLIT_SNR = 4.0
# a split's side must hold this many noise standard deviations of its count
MIN_SIDE_SNR = 2.0
MAX_RANDOM_DEPTH = 12
MAX_GREEDY_DEPTH = 64
# strength of the shrinkage of a node's values towards its parent's, in
# noise standard deviations of a leaf's row count (0 without noise)
SMOOTHING = 0.5


@dataclass(frozen=True)
class TreeProblem:
    """The public description of the trees to grow.

    ``classes`` is None for regression. ``max_depth`` None means planned
    from the budget. ``max_features`` is the number of candidate features
    per node (greedy strategies). ``impurity_scale`` turns the engine's
    impurities into scikit-learn's units (``y_scale ** 2`` for a mapped
    regression target).
    """

    classes: object
    criterion: str
    splitter: str
    max_depth: int | None
    min_samples_split: int
    min_samples_leaf: int
    min_impurity_decrease: float
    max_features: int
    impurity_scale: float = 1.0


@dataclass(frozen=True)
class GrownTree:
    """A finished tree in mapped units, with its (noisy) node statistics.

    ``counts`` are per node: class counts (n_nodes, n_classes), or row
    counts (n_nodes,) for regression; ``sums`` target sums (regression);
    ``values`` per node: smoothed class probabilities, or smoothed mapped
    target means.
    """

    structure: TreeStructure
    counts: np.ndarray
    sums: np.ndarray | None
    values: np.ndarray


class _Growing:
    """A tree being grown: parallel lists, children appended after parents."""

    def __init__(self, low, high):
        self.feature, self.threshold = [-1], [-2.0]
        self.left, self.right, self.depth = [-1], [-1], [0]
        self.low, self.high = [low], [high]

    def split(self, node, feature, threshold):
        ids = []
        for side in ("left", "right"):
            low, high = self.low[node].copy(), self.high[node].copy()
            if side == "left":
                high[feature] = threshold
            else:
                low[feature] = threshold
            ids.append(len(self.feature))
            self.feature.append(-1)
            self.threshold.append(-2.0)
            self.left.append(-1)
            self.right.append(-1)
            self.depth.append(self.depth[node] + 1)
            self.low.append(low)
            self.high.append(high)
        self.feature[node], self.threshold[node] = int(feature), float(threshold)
        self.left[node], self.right[node] = ids
        return ids

    def structure(self):
        return TreeStructure(
            feature=np.asarray(self.feature, dtype=np.intp),
            threshold=np.asarray(self.threshold, dtype=float),
            left=np.asarray(self.left, dtype=np.intp),
            right=np.asarray(self.right, dtype=np.intp),
        )


# -- the public box -------------------------------------------------------------


def tree_clipping(session):
    """The clipping region of the releases, and the half-width of its box.

    With bounds (or ``data_norm``) every feature reaches the parties in
    ``[-a, a]`` (``a = 1`` with bounds). Without either, which only
    ``epsilon=inf`` allows, the box comes from a noise-free histogram
    (:func:`fedsk.estimators._bounds.private_bounds`: the 0.5% and 99.5%
    points on a coarse grid), and rows are clipped into it and mapped.
    """
    clipping = session.clipping
    n = session.n_features
    if clipping.lower is not None or clipping.data_norm is not None:
        return clipping, float(np.max(clipping.feature_abs_max(n)))
    lower, upper = private_bounds(session, 1.0, include_target=False)
    return Clipping(lower, upper, None, clipping.y_lower, clipping.y_upper), 1.0


def bin_edges(half_width, n_bins=None):
    """Inner edges of ``n_bins`` (default ``N_BINS``) equal bins on ``[-a, a]``."""
    n_bins = N_BINS if n_bins is None else n_bins
    return half_width * (-1.0 + 2.0 * np.arange(1, n_bins) / n_bins)


@dataclass(frozen=True)
class Marginals:
    """Per-feature histograms on the public fine grid, floored at zero.

    Post-processed from the root histograms (:func:`release_marginals`);
    they place the thresholds of random splits and the bins of greedy
    histograms where the rows are.
    """

    edges: np.ndarray  # (FINE_BINS + 1,), mapped units
    counts: np.ndarray  # (n_features, FINE_BINS)
    gains: np.ndarray  # (n_features,) best (noisy) split gain at the root

    def quantile_edges(self, n_bins):
        """Inner edges at the ``1/n_bins, ...`` quantiles of every feature.

        Returns an array of shape (n_features, n_bins - 1): grid edges, with
        both sides holding rows, duplicates removed, padded with ``inf``.
        A feature without rows gets equal-width bins.
        """
        n_features, fine = self.counts.shape
        inner = self.edges[1:-1]
        out = np.full((n_features, n_bins - 1), np.inf)
        targets = np.arange(1, n_bins) / n_bins
        for j, counts in enumerate(self.counts):
            total = counts.sum()
            if total <= 0:
                chosen = bin_edges(self.edges[-1], n_bins)
            else:
                cdf = np.cumsum(counts)[:-1] / total  # at each inner edge
                index = np.unique(np.minimum(np.searchsorted(cdf, targets), fine - 2))
                chosen = inner[index[(cdf[index] > 0) & (cdf[index] < 1)]]
            out[j, : chosen.size] = chosen
        return out

    def feature_weights(self):
        """The chance of each feature to split a node of a random structure.

        In proportion to the feature's best split gain at the root (from the
        noisy class counts or target sums), plus ``FEATURE_WEIGHT_FLOOR``
        times the largest gain, so every feature can be drawn; uniform when
        no gain is known.
        """
        top = float(np.max(self.gains, initial=0.0))
        if top <= 0:
            return np.full(len(self.gains), 1.0 / len(self.gains))
        weights = self.gains + FEATURE_WEIGHT_FLOOR * top
        return weights / weights.sum()

    def edge_index(self, values):
        """Grid index of values that are grid edges (box bounds)."""
        return np.searchsorted(self.edges, values)

    def draw(self, rng, features, first, last):
        """Random grid thresholds, one per (feature, box), rows on both sides.

        The box of ``features[i]`` is grid edges ``first[i]`` to ``last[i]``.
        A threshold is drawn like the row just below it: edge ``e`` weighs
        the count of the bin under it, among the edges that leave rows of
        the box on both sides (a contiguous range, since counts are not
        negative). Returns grid indices, -1 where no such edge exists.
        """
        prefix = np.concatenate(
            [np.zeros((len(self.counts), 1)), np.cumsum(self.counts, axis=1)], axis=1
        )
        width = prefix.shape[1]
        # rows made increasing across features, to search them all at once
        offset = np.arange(len(prefix)) * (prefix[:, -1].max() + 1.0)
        flat = (prefix + offset[:, None]).ravel()
        base = features * width

        def search(values, side):
            return np.searchsorted(flat, values + offset[features], side=side) - base

        low, high = prefix[features, first], prefix[features, last]
        e_min = search(low, "right")  # first edge with rows of the box below it
        e_max = search(high, "left") - 1  # last edge with rows above it
        ok = (high > low) & (e_min <= e_max)
        e_min, e_max = np.where(ok, e_min, 1), np.where(ok, e_max, 1)
        u = rng.uniform(prefix[features, e_min - 1], prefix[features, e_max])
        drawn = np.clip(search(u, "left"), e_min, e_max)
        return np.where(ok, drawn, -1)


def release_marginals(session, fraction, clipping, half_width, problem):
    """One noisy root histogram of every feature on the fine grid.

    A ``tree_histograms`` release for the root of one tree with every
    feature as a candidate (class counts, or target sums and row counts,
    per grid bin). Its row counts, summed over classes and floored, are the
    :class:`Marginals`; the best split gain of each feature at the root
    weighs the features of random structures.
    """
    n_features = session.n_features
    edges = half_width * np.linspace(-1.0, 1.0, FINE_BINS + 1)
    root = TreeStructure(*(np.array([v]) for v in (-1, -2.0, -1, -1)))
    release = session.release(
        "tree_histograms",
        fraction,
        clipping=clipping,
        forest=(root,),
        nodes=(np.zeros(1, dtype=np.intp),),
        features=np.arange(n_features)[None, :],
        edges=edges[1:-1],
        classes=problem.classes,
    )
    blocks = [block[0] for block in release.blocks]
    if problem.classes is not None:
        counts, count_std = blocks[0].sum(axis=-1), release.noise_std[0]
        count_std *= math.sqrt(len(problem.classes))
    else:
        counts, count_std = blocks[1], release.noise_std[1]
    counts = np.where(counts > MARGINAL_SNR * count_std, counts, 0.0)
    found = _gains(blocks, release.noise_std, problem)
    gain = np.max(np.where(found.trusted, found.gain, 0.0), axis=1, initial=0.0)
    return Marginals(edges, counts, np.maximum(gain, 0.0))


# -- budget planning ------------------------------------------------------------


def _noise_std(session, fraction, statistic, **params):
    """Public noise standard deviation of each block of a planned release."""
    if not math.isfinite(session.epsilon):
        return [0.0] * len(STATISTICS[statistic].shapes(session.n_features, **params))
    epsilon, _, rho = budget_share(
        session.epsilon, session.delta, fraction * session.share
    )
    spec = STATISTICS[statistic]
    encoding = GridEncoding.calibrate(
        spec.shapes(session.n_features, **params),
        spec.sensitivity(session.clipping, session.n_features, **params),
        epsilon=epsilon,
        rho=rho,
    )
    std = np.asarray(encoding.noise_std(), dtype=float)
    if session.trust == "local":
        std = std * math.sqrt(session.federation.n_parties)
    return list(std)


def _placeholder_forest(n_trees):
    leaf = TreeStructure(*(np.array([v]) for v in (-1, -2.0, -1, -1)))
    return (leaf,) * n_trees


def _leaf_total_std(session, fraction, problem, n_trees, assign_seed):
    std = _noise_std(
        session,
        fraction,
        "tree_leaves",
        forest=_placeholder_forest(n_trees),
        classes=problem.classes,
        assign_seed=assign_seed,
    )
    if problem.classes is None:
        return std[1]
    return std[0] * math.sqrt(len(problem.classes))


def _bin_std(session, fraction, problem, n_trees, assign_seed):
    std = _noise_std(
        session,
        fraction,
        "tree_histograms",
        forest=_placeholder_forest(n_trees),
        nodes=(np.zeros(1, dtype=np.intp),) * n_trees,
        features=np.zeros((1, problem.max_features), dtype=np.intp),
        edges=bin_edges(1.0),
        classes=problem.classes,
        assign_seed=assign_seed,
    )
    if problem.classes is None:
        return std[1]
    return std[0] * math.sqrt(len(problem.classes))


def level_fraction(depth, spent):
    """Budget share of one greedy level when ``depth`` levels are planned."""
    return (1.0 - spent) * (1.0 - LEAF_SHARE) / depth


def planned_depth(session, problem, n_rows, n_trees, assign_seed, greedy, spent):
    """Depth for ``max_depth=None``, from a row count and the public noise.

    The deepest depth at which a leaf of a tree expects ``LEAF_SNR`` noise
    standard deviations of rows (of its leaf count, divided by the square
    root of the number of trees, whose noise the forest averages), and, for
    greedy trees, a node at the last split level ``SPLIT_SNR`` standard deviations
    per bin of its histograms. Without noise: greedy trees grow until no
    split is left (capped at ``MAX_GREEDY_DEPTH``), random ones until a leaf
    expects ``min_samples_split`` rows (capped at ``MAX_RANDOM_DEPTH``).
    """
    rows = n_rows / n_trees if assign_seed is not None else n_rows
    if not math.isfinite(session.epsilon):
        if greedy:
            return MAX_GREEDY_DEPTH
        leaf_rows = max(problem.min_samples_split, 2 * problem.min_samples_leaf)
        depth = int(math.floor(math.log2(max(rows / leaf_rows, 2.0))))
        return min(max(depth, 1), MAX_RANDOM_DEPTH)
    cap = MAX_GREEDY_DEPTH if greedy else MAX_RANDOM_DEPTH
    best = 1
    for depth in range(1, cap + 1):
        leaves = 1.0 - spent
        if greedy:
            share = level_fraction(depth, spent)
            leaves -= depth * share
            bin_std = _bin_std(session, share, problem, n_trees, assign_seed)
            if rows / 2 ** (depth - 1) < SPLIT_SNR * bin_std * math.sqrt(N_BINS):
                break
        # a forest averages its trees' independent leaf noise
        leaf_std = _leaf_total_std(session, leaves, problem, n_trees, assign_seed)
        if rows / 2**depth < LEAF_SNR * leaf_std / math.sqrt(n_trees):
            break
        best = depth
    return best


def _row_count(session, fraction, clipping):
    release = session.release("class_counts", fraction, clipping=clipping)
    return max(float(release.blocks[0][0]), 1.0)


# -- growing --------------------------------------------------------------------


def grow_forest(session, problem, n_trees, strategy, rng):
    """Grow ``n_trees`` trees by ``strategy``; return them and the clipping.

    Returns
    -------
    trees : list of GrownTree
    clipping : Clipping
        The region the rows were clipped into (thresholds are in its
        mapped units).
    """
    clipping, half_width = tree_clipping(session)
    greedy = strategy.startswith("greedy")
    disjoint = strategy.endswith("_disjoint") and n_trees > 1
    assign_seed = int(rng.randint(np.iinfo(np.int64).max)) if disjoint else None
    finite = math.isfinite(session.epsilon)
    spent = MARGINAL_SHARE if finite else 0.0
    marginals = release_marginals(
        session, MARGINAL_SHARE, clipping, half_width, problem
    )
    depth = problem.max_depth
    if depth is None:
        n_rows = math.inf
        if finite or not greedy:
            n_rows = _row_count(session, COUNT_SHARE, clipping)
            spent += COUNT_SHARE if finite else 0.0
        depth = planned_depth(
            session, problem, n_rows, n_trees, assign_seed, greedy, spent
        )
    low = np.full(session.n_features, -half_width)
    high = np.full(session.n_features, half_width)
    if greedy:
        growing, spent = _grow_greedy(
            session,
            problem,
            n_trees,
            depth,
            (low, high),
            rng,
            clipping,
            assign_seed,
            spent,
            marginals,
        )
        structures = [g.structure() for g in growing]
    else:
        structures = [
            _random_tree(depth, session.n_features, rng, marginals)
            for _ in range(n_trees)
        ]
    release = session.release(
        "tree_leaves",
        1.0 - spent,
        clipping=clipping,
        forest=tuple(structures),
        classes=problem.classes,
        assign_seed=assign_seed,
    )
    trees = _finish(structures, release, problem)
    return trees, clipping


def _random_tree(depth, n_features, rng, marginals):
    """A random structure grown level by level.

    At each node a feature is drawn by :meth:`Marginals.feature_weights`
    and a threshold by :meth:`Marginals.draw` in the node's box; a feature
    that cannot be split there is redrawn (so features are drawn by weight
    among the splittable ones), and a node with no splittable feature after
    ``4 * n_features`` draws stays a leaf.
    """
    weights = marginals.feature_weights()
    size = 2 ** (depth + 1) - 1
    feature = np.full(size, -1, dtype=np.intp)
    threshold = np.full(size, -2.0)
    left = np.full(size, -1, dtype=np.intp)
    right = np.full(size, -1, dtype=np.intp)
    first = np.zeros((size, n_features), dtype=np.intp)  # box, as grid edges
    last = np.full((size, n_features), FINE_BINS, dtype=np.intp)
    frontier, n_nodes = np.array([0]), 1
    for _ in range(depth):
        chosen = np.full(frontier.size, -1, dtype=np.intp)
        edge = np.full(frontier.size, -1, dtype=np.intp)
        todo = np.arange(frontier.size)
        for _ in range(4 * n_features):
            if todo.size == 0:
                break
            nodes = frontier[todo]
            features = rng.choice(n_features, size=todo.size, p=weights)
            drawn = marginals.draw(
                rng, features, first[nodes, features], last[nodes, features]
            )
            done = drawn >= 0
            chosen[todo[done]], edge[todo[done]] = features[done], drawn[done]
            todo = todo[~done]
        split = chosen >= 0
        parents, features, edges = frontier[split], chosen[split], edge[split]
        children = n_nodes + np.arange(2 * parents.size)
        n_nodes += children.size
        lefts, rights = children[0::2], children[1::2]
        feature[parents] = features
        threshold[parents] = marginals.edges[edges]
        left[parents], right[parents] = lefts, rights
        for side in (lefts, rights):
            first[side], last[side] = first[parents], last[parents]
        last[lefts, features] = edges
        first[rights, features] = edges
        frontier = children
        if frontier.size == 0:
            break
    return TreeStructure(
        feature=feature[:n_nodes],
        threshold=threshold[:n_nodes],
        left=left[:n_nodes],
        right=right[:n_nodes],
    )


def _grow_greedy(
    session, problem, n_trees, depth, box, rng, clipping, assign_seed, spent, marginals
):
    n_features = session.n_features
    share = level_fraction(depth, spent)
    finite = math.isfinite(session.epsilon)
    edges = marginals.quantile_edges(N_BINS if finite else NOISE_FREE_BINS)
    growing = [_Growing(*box) for _ in range(n_trees)]
    frontier = [[0] for _ in range(n_trees)]
    root_rows = None
    with session.progress(depth, "greedy levels") as progress:
        for _ in range(depth):
            listed = [(t, node) for t in range(n_trees) for node in frontier[t]]
            if not listed:
                break
            features = np.array(
                [
                    np.sort(rng.choice(n_features, problem.max_features, replace=False))
                    for _ in listed
                ],
                dtype=np.intp,
            )
            if problem.splitter == "random":  # one drawn threshold per candidate
                lows = np.array([growing[t].low[node] for t, node in listed])
                highs = np.array([growing[t].high[node] for t, node in listed])
                drawn = marginals.draw(
                    rng,
                    features.ravel(),
                    marginals.edge_index(np.take_along_axis(lows, features, 1)).ravel(),
                    marginals.edge_index(
                        np.take_along_axis(highs, features, 1)
                    ).ravel(),
                ).reshape(features.shape)
                level_edges = np.where(
                    drawn >= 0, marginals.edges[np.maximum(drawn, 0)], np.inf
                )[..., None]
            else:
                level_edges = edges
            release = session.release(
                "tree_histograms",
                share,
                clipping=clipping,
                forest=tuple(g.structure() for g in growing),
                nodes=tuple(np.asarray(f, dtype=np.intp) for f in frontier),
                features=features,
                edges=level_edges,
                classes=problem.classes,
                assign_seed=assign_seed,
            )
            spent += share
            progress.update()
            blocks, stds = release.blocks, release.noise_std
            if root_rows is None:
                root_rows = _node_rows(blocks, 0, problem)
            frontier = [[] for _ in range(n_trees)]
            for i, (t, node) in enumerate(listed):
                tree = growing[t]
                node_edges = (
                    level_edges[features[i]]
                    if level_edges.ndim == 2
                    else level_edges[i]
                )
                split = _best_split(
                    blocks,
                    stds,
                    i,
                    features[i],
                    node_edges,
                    tree.low[node],
                    tree.high[node],
                    problem,
                    root_rows,
                )
                if split is None:
                    continue
                feature, threshold, children_rows, children_impure = split
                children = tree.split(node, feature, threshold)
                for child, rows, impure in zip(
                    children, children_rows, children_impure
                ):
                    if (
                        tree.depth[child] < depth
                        and impure
                        and rows >= problem.min_samples_split
                        and rows >= 2 * problem.min_samples_leaf
                    ):
                        frontier[t].append(child)
    return growing, spent


def _node_rows(blocks, i, problem):
    """A node's row count from its histograms (mean over the candidates)."""
    counts = blocks[0][i] if problem.classes is not None else blocks[1][i]
    totals = counts.reshape(counts.shape[0], -1).sum(axis=1)
    return max(float(np.mean(totals)), 1.0)


def _impurity(counts, criterion):
    """Gini or entropy (bits) of class counts along the last axis."""
    n = counts.sum(axis=-1, keepdims=True)
    p = np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
    if criterion == "gini":
        return 1.0 - np.sum(p * p, axis=-1)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return -np.sum(p * logs, axis=-1)


@dataclass(frozen=True)
class _Gains:
    """Candidate splits of one node, from its (noisy) histograms.

    Arrays of shape (m, n_bins - 1): one row per candidate feature, one
    column per inner edge ("left" is bins up to that edge).
    """

    gain: np.ndarray  # impurity decrease per row of the node
    n_left: np.ndarray
    n_right: np.ndarray
    trusted: np.ndarray  # both sides above their noise and min_samples_leaf
    left_counts: np.ndarray | None  # class counts (classification)
    right_counts: np.ndarray | None


def _gains(node_blocks, stds, problem):
    """Gains of every candidate split of one node (see :class:`_Gains`)."""
    n_bins = node_blocks[0].shape[1]
    # bins summed into each side of each edge
    bins_left = np.arange(1, n_bins, dtype=float)
    bins_right = n_bins - bins_left
    left = right = None
    if problem.classes is not None:
        hist = node_blocks[0]  # (m, n_bins, k)
        count_std = stds[0] * math.sqrt(hist.shape[-1])
        left = np.cumsum(hist, axis=1)[:, :-1]
        total = hist.sum(axis=1)
        right = total[:, None] - left
        left, right = np.maximum(left, 0.0), np.maximum(right, 0.0)
        n_left, n_right = left.sum(axis=-1), right.sum(axis=-1)
        n = n_left + n_right
        parent = _impurity(np.maximum(total, 0.0), problem.criterion)[:, None]
        children = (
            n_left * _impurity(left, problem.criterion)
            + n_right * _impurity(right, problem.criterion)
        ) / np.maximum(n, 1e-12)
        gain = parent - children
    else:
        sums, counts = node_blocks  # (m, n_bins) each
        sum_std, count_std = stds
        s_left = np.cumsum(sums, axis=1)[:, :-1]
        n_left = np.maximum(np.cumsum(counts, axis=1)[:, :-1], 0.0)
        s_total, n_total = sums.sum(axis=1), np.maximum(counts.sum(axis=1), 0.0)
        s_right = s_total[:, None] - s_left
        n_right = np.maximum(n_total[:, None] - n_left, 0.0)
        n = n_left + n_right

        def explained(s, c, bins):
            # s^2 / c, with s^2 debiased by the noise variance of the bins
            # summed into s (0 without noise)
            square = s * s - bins * sum_std**2
            return np.divide(square, c, out=np.zeros_like(s), where=c > 0)

        gain = (
            explained(s_left, n_left, bins_left)
            + explained(s_right, n_right, bins_right)
            - explained(s_total, n_total, n_bins)[:, None]
        ) / np.maximum(n, 1e-12)
    # a side must hold min_samples_leaf rows, and more than MIN_SIDE_SNR noise
    # standard deviations of its count (else its gain is mostly noise)
    msl = max(problem.min_samples_leaf, 1)
    floor_left = np.maximum(msl, MIN_SIDE_SNR * count_std * np.sqrt(bins_left))
    floor_right = np.maximum(msl, MIN_SIDE_SNR * count_std * np.sqrt(bins_right))
    trusted = (n_left >= floor_left) & (n_right >= floor_right)
    return _Gains(gain, n_left, n_right, trusted, left, right)


def _best_split(blocks, stds, i, features, edges, low, high, problem, root_rows):
    """The best valid split of listed node ``i``, from its noisy histograms.

    Returns ``(feature, threshold, (left_rows, right_rows), (left_impure,
    right_impure))``, or None when the node should stay a leaf.
    """
    found = _gains([block[i] for block in blocks], stds, problem)
    n = found.n_left + found.n_right
    node_rows = float(np.mean(n[:, 0]))
    if node_rows < problem.min_samples_split or node_rows < 2 * max(
        problem.min_samples_leaf, 1
    ):
        return None
    edge_grid = np.asarray(edges)
    inside = (edge_grid > low[features, None]) & (edge_grid < high[features, None])
    valid = inside & found.trusted
    if problem.min_impurity_decrease > 0:
        weighted = n / root_rows * found.gain * problem.impurity_scale
        valid &= weighted >= problem.min_impurity_decrease
    if not valid.any():
        return None
    gain = np.where(valid, found.gain, -np.inf)
    j, b = np.unravel_index(np.argmax(gain), gain.shape)
    rows = (float(found.n_left[j, b]), float(found.n_right[j, b]))
    if problem.classes is not None:
        impure = tuple(
            bool(np.count_nonzero(side[j, b] > 0) > 1) or stds[0] > 0
            for side in (found.left_counts, found.right_counts)
        )
    else:
        impure = (True, True)
    return int(features[j]), float(edge_grid[j, b]), rows, impure


# -- leaves: values, pruning, smoothing -------------------------------------------


def _finish(structures, release, problem):
    """Node statistics and values of every tree from the leaves' release."""
    classification = problem.classes is not None
    grown, start = [], 0
    for structure in structures:
        leaves = structure.leaves
        stop = start + leaves.size
        if classification:
            counts = np.zeros((structure.n_nodes, len(problem.classes)))
            counts[leaves] = np.maximum(release.blocks[0][start:stop], 0.0)
            sums = None
        else:
            counts = np.zeros(structure.n_nodes)
            sums = np.zeros(structure.n_nodes)
            counts[leaves] = np.maximum(release.blocks[1][start:stop], 0.0)
            sums[leaves] = release.blocks[0][start:stop]
        start = stop
        structure = _prune_and_total(structure, counts, sums, problem.min_samples_leaf)
        grown.append((structure, counts, sums))
    if classification:
        alpha = SMOOTHING * release.noise_std[0] * math.sqrt(len(problem.classes))
        return [
            GrownTree(st, c, None, _smoothed(st, c, None, alpha, True))
            for st, c, _ in grown
        ]
    sum_std, count_std = release.noise_std
    spread = _leaf_spread(grown, sum_std, count_std)
    return [
        GrownTree(st, c, s, _shrunk_means(st, c, s, sum_std, spread))
        for st, c, s in grown
    ]


def _leaf_spread(grown, sum_std, count_std):
    """Variance of the true leaf means around the root's, estimated.

    Empirical Bayes over the leaves of all trees with a row count above
    twice its noise: the variance of their noisy means less the mean noise
    variance of those means (post-processing; 0 if too few leaves).
    """
    means, noise = [], []
    for structure, counts, sums in grown:
        reachable = np.concatenate(_levels(structure))
        leaves = reachable[structure.feature[reachable] < 0]
        rows = counts[leaves]
        kept = rows > max(2.0 * count_std, 0.0)
        means.append(sums[leaves][kept] / rows[kept])
        noise.append((sum_std / rows[kept]) ** 2)
    means, noise = np.concatenate(means), np.concatenate(noise)
    if means.size < 2:
        return 0.0
    return max(float(np.var(means) - np.mean(noise)), 0.0)


def _shrunk_means(structure, counts, sums, sum_std, spread):
    """Mapped target means, each shrunk towards its parent's.

    A node's mean ``sum / count`` has noise variance about ``sum_std ** 2 *
    leaves / count ** 2`` (its sum adds the noise of its leaves); it gets
    weight ``spread / (spread + noise variance)``, the rest going to its
    parent's value. Without noise every node keeps its own mean.
    """
    levels = _levels(structure)
    n_leaves = np.ones(structure.n_nodes)
    for level in reversed(levels):
        inner = level[structure.feature[level] >= 0]
        n_leaves[inner] = (
            n_leaves[structure.left[inner]] + n_leaves[structure.right[inner]]
        )
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
    for level in levels[:-1]:
        inner = level[structure.feature[level] >= 0]
        for children in (structure.left[inner], structure.right[inner]):
            w = weight[children]
            values[children] = w * own[children] + (1.0 - w) * values[inner]
    return values


def _levels(structure):
    """Node ids by depth (the root's level first), following the children."""
    levels, level = [], np.array([0])
    while level.size:
        levels.append(level)
        inner = level[structure.feature[level] >= 0]
        level = np.concatenate([structure.left[inner], structure.right[inner]])
    return levels


def _prune_and_total(structure, counts, sums, min_samples_leaf):
    """Totals of internal nodes, bottom-up; collapse splits with a small side.

    A split is undone when both children are leaves and one of them has a
    (noisy) row count below ``min_samples_leaf``. ``counts`` and ``sums``
    are filled in place; the returned structure has the collapsed nodes as
    leaves (their descendants become unreachable).
    """
    feature = structure.feature.copy()
    left, right = structure.left, structure.right
    for level in reversed(_levels(structure)):
        inner = level[feature[level] >= 0]
        a, b = left[inner], right[inner]
        counts[inner] = counts[a] + counts[b]
        if sums is not None:
            sums[inner] = sums[a] + sums[b]
        rows_a = counts[a] if counts.ndim == 1 else counts[a].sum(axis=1)
        rows_b = counts[b] if counts.ndim == 1 else counts[b].sum(axis=1)
        small = np.minimum(rows_a, rows_b) < min_samples_leaf
        feature[inner[small & (feature[a] < 0) & (feature[b] < 0)]] = -1
    return TreeStructure(feature, structure.threshold, left, right)


def _smoothed(structure, counts, sums, alpha, classification):
    """Node values shrunk towards the parent's by ``alpha`` pseudo-rows."""
    if classification:
        totals = counts.sum(axis=1)
        k = counts.shape[1]
        values = np.zeros_like(counts)
        values[0] = counts[0] / totals[0] if totals[0] > 0 else np.full(k, 1.0 / k)
        own = counts
    else:
        totals = counts
        values = np.zeros_like(counts)
        values[0] = sums[0] / totals[0] if totals[0] > 0 else 0.0
        own = sums
    for level in _levels(structure)[:-1]:
        inner = level[structure.feature[level] >= 0]
        for children in (structure.left[inner], structure.right[inner]):
            prior = values[inner]
            weight = totals[children] + alpha
            shape = (-1,) + (1,) * (values.ndim - 1)
            safe = np.where(weight > 0, weight, 1.0).reshape(shape)
            shrunk = (own[children] + alpha * prior) / safe
            values[children] = np.where(weight.reshape(shape) > 0, shrunk, prior)
    return values
