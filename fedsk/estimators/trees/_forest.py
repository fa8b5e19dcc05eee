"""Decision trees and forests from class counts or target sums.

First, always: the root's fine histogram (``MARGINAL_SHARE`` of the
budget, :func:`._binning.release_marginals`). Then, by strategy:

``"random"``
    Random structures drawn at the coordinator from public information
    (:func:`._grower.random_trees`), then one ``tree_leaves`` release.
``"greedy"``
    Level by level (:class:`._grower.LevelGrower`), one ``tree_histograms``
    release per depth for every tree's nodes at that depth, with bins at
    the marginals' quantiles; then one ``tree_leaves`` release.
``"random_disjoint"``, ``"greedy_disjoint"``
    The same, but every record reaches one tree only (a keyed hash of the
    record, computed by its party), so a release's sensitivity does not
    grow with the number of trees.

Budget: greedy levels get ``1 - LEAF_SHARE`` of what the marginals leave,
equally over the planned levels; the leaves get the rest, including the
shares of levels that were not needed, so a fit spends exactly its budget.
With ``max_depth=None`` and noise the depth is planned from the marginals'
noisy row count (:func:`planned_depth`).
"""

import math
from dataclasses import dataclass

import numpy as np

from ..._statistics._trees import TreeStructure, TreeTarget
from ._binning import marginal_params, release_marginals, tree_clipping
from ._grower import LevelGrower, Tree, histogram_release, random_trees
from ._leaves import finish
from ._plan import MARGINAL_SHARE, NoiseScale, level_fraction
from ._splits import candidates

TREE_STRATEGIES = ("random", "random_disjoint", "greedy", "greedy_disjoint")
# bins per feature of greedy histograms with noise (without: NOISE_FREE_BINS)
N_BINS = 16
NOISE_FREE_BINS = 255
# planned_depth: a leaf must expect LEAF_SNR noise standard deviations of its
# row count; a node at the last split level SPLIT_SNR standard deviations of
# a sum of N_BINS bins
LEAF_SNR = 2.0
SPLIT_SNR = 4.0
MAX_RANDOM_DEPTH = 12
MAX_GREEDY_DEPTH = 64


@dataclass(frozen=True)
class TreeProblem:
    """The public description of the trees to grow.

    ``classes`` is None for regression. ``max_depth`` None means planned.
    ``max_features`` is the number of candidate features per node (greedy
    strategies). ``impurity_scale`` turns the engine's impurities into
    scikit-learn's units (``y_scale ** 2`` for a mapped regression target).
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

    @property
    def target(self):
        return TreeTarget(classes=self.classes)

    @property
    def class_criterion(self):
        """The impurity of class counts; None for regression (sums)."""
        return None if self.classes is None else self.criterion


def grow_forest(session, problem, n_trees, strategy, rng):
    """Grow ``n_trees`` trees by ``strategy``.

    Returns
    -------
    trees : list of FittedTree
    clipping : Clipping
        The box the rows were clipped into.
    """
    clipping = tree_clipping(session)
    finite = math.isfinite(session.epsilon)
    greedy = strategy.startswith("greedy")
    disjoint = strategy.endswith("_disjoint") and n_trees > 1
    assign_seed = int(rng.randint(np.iinfo(np.int64).max)) if disjoint else None
    target = problem.target
    min_leaf = max(problem.min_samples_leaf, 1)
    marginal_share = MARGINAL_SHARE if finite else 1.0

    def root_candidates(blocks, stds, sizes):
        return candidates(
            blocks,
            stds,
            sizes,
            criterion=problem.class_criterion,
            min_weight=min_leaf,
        )

    marginals = release_marginals(
        session, marginal_share, clipping, target, root_candidates
    )
    remaining = 1.0 - MARGINAL_SHARE if finite else 1.0
    depth = problem.max_depth
    if depth is None:
        depth = planned_depth(
            session, problem, marginals, n_trees, assign_seed, greedy, clipping
        )
    if greedy:
        bins = marginals.bins(N_BINS if finite else NOISE_FREE_BINS)
        grower = LevelGrower(
            bins,
            rng,
            n_candidates=problem.max_features,
            splitter=problem.splitter,
            criterion=problem.class_criterion,
            min_weight=min_leaf,
            min_split_weight=max(problem.min_samples_split, 2 * min_leaf),
            min_gain=problem.min_impurity_decrease
            * marginals.n_rows
            / problem.impurity_scale,
        )
        share = level_fraction(remaining, depth)

        level = histogram_release(session, share, clipping, target, assign_seed)
        trees = [Tree(session.n_features, target.n_blocks()) for _ in range(n_trees)]
        with session.progress(depth, "greedy levels"):
            used = grower.grow(trees, depth, level)
        remaining -= used * share if finite else 0.0
    else:
        trees = random_trees(n_trees, depth, session.n_features, rng, marginals)
    leaves = session.release(
        "tree_leaves",
        remaining,
        clipping=clipping,
        forest=tuple(t.structure() for t in trees),
        target=target,
        assign_seed=assign_seed,
    )
    return finish(trees, leaves, problem.classes, problem.min_samples_leaf), clipping


def planned_depth(session, problem, marginals, n_trees, assign_seed, greedy, clipping):
    """Depth for ``max_depth=None``, from the noisy row count.

    The deepest depth at which a leaf expects ``LEAF_SNR`` noise standard
    deviations of its row count (a forest averages its trees' noise, so
    divided by ``sqrt(n_trees)``), and, for greedy trees, a node at the last
    split level ``SPLIT_SNR`` standard deviations of a sum of ``N_BINS``
    bins. Noise of releases to come is scaled from the marginals' release
    (:class:`._plan.NoiseScale`). Without noise: greedy trees grow until no
    split is left (``MAX_GREEDY_DEPTH``), random ones until a leaf expects
    ``min_samples_split`` rows (``MAX_RANDOM_DEPTH``).
    """
    rows = marginals.n_rows / (n_trees if assign_seed is not None else 1)
    if not math.isfinite(session.epsilon):
        if greedy:
            return MAX_GREEDY_DEPTH
        leaf_rows = max(problem.min_samples_split, 2 * problem.min_samples_leaf)
        depth = int(math.floor(math.log2(max(rows / leaf_rows, 2.0))))
        return min(max(depth, 1), MAX_RANDOM_DEPTH)
    d = session.n_features
    target = problem.target
    scale = NoiseScale.of(
        session,
        marginals.noise_std,
        MARGINAL_SHARE,
        clipping,
        "tree_histograms",
        **marginal_params(d, target),
    )
    remaining = 1.0 - MARGINAL_SHARE
    placeholder = (TreeStructure.leaf(),) * n_trees
    k = 1 if problem.classes is None else len(problem.classes)
    count_block = 0 if problem.classes is not None else 1
    best = 1
    for depth in range(1, (MAX_GREEDY_DEPTH if greedy else MAX_RANDOM_DEPTH) + 1):
        leaves = remaining
        if greedy:
            share = level_fraction(remaining, depth)
            leaves -= depth * share
            bin_std = scale.stds_of(
                session,
                share,
                clipping,
                "tree_histograms",
                **_level_params(n_trees, problem.max_features, target, assign_seed),
            )[count_block] * math.sqrt(k)
            if rows / 2 ** (depth - 1) < SPLIT_SNR * bin_std * math.sqrt(N_BINS):
                break
        leaf_std = scale.stds_of(
            session,
            leaves,
            clipping,
            "tree_leaves",
            forest=placeholder,
            target=target,
            assign_seed=assign_seed,
        )[count_block] * math.sqrt(k)
        if rows / 2**depth < LEAF_SNR * leaf_std / math.sqrt(n_trees):
            break
        best = depth
    return best


def _level_params(n_trees, m, target, assign_seed):
    """Parameters of a planned level release, as far as its sensitivity goes."""
    return dict(
        forest=(TreeStructure.leaf(),) * n_trees,
        nodes=(np.zeros(1, dtype=np.intp),) * n_trees,
        features=np.zeros((1, m), dtype=np.intp),
        edges=None,
        lut=None,
        target=target,
        assign_seed=assign_seed,
    )
