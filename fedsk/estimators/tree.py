"""Federated DP ``DecisionTreeClassifier`` and ``DecisionTreeRegressor``.

The tree is grown by the engine of :mod:`fedsk.estimators._trees`: by
default greedily, level by level, from noisy per-node, per-feature, per-bin
histograms of class counts (or target sums and row counts), then one noisy
release of the leaves' statistics. ``strategy="random"`` draws the whole
structure at random from the public bounds instead and releases only the
leaves.

Honoured: ``criterion`` (``gini``, ``entropy``, ``log_loss``;
``squared_error``, ``friedman_mse``, both as squared-error gain),
``splitter`` (``"best"``: best bin edge of each candidate feature;
``"random"``: one uniform threshold per candidate feature, as
``ExtraTreeClassifier``), ``max_depth`` (``None``: grow until no valid
split without noise; with noise, the deepest depth the budget supports,
from a noisy row count), ``min_samples_split``, ``min_samples_leaf``
(checked on noisy counts; leaves whose released row count falls below it
are merged back into their parent), ``min_impurity_decrease`` (on noisy
gains), ``max_features`` (candidate features per node, drawn at the
coordinator) and ``random_state`` (the public randomness of the structure;
the noise is seeded by ``FederatedEstimator(random_state=...)``).
Rejected: ``class_weight``, ``max_leaf_nodes``, ``min_weight_fraction_leaf``,
``ccp_alpha``, ``monotonic_cst`` other than their defaults, and fractional
``min_samples_split`` / ``min_samples_leaf`` (they need the private row
count).

The fitted estimator is a real scikit-learn tree whose ``tree_`` is
assembled from the federated structure: thresholds are mapped back from
[-1, 1] to the features' units exactly (the largest float ``x`` that the
parties' map sends to the threshold or below), node counts are the noisy
counts (floored at 0, parents the sums of their children), node values are
class probabilities or target means shrunk towards the parent's by the
noise level, and impurities are computed from the same counts, so
``feature_importances_`` is the noisy impurity decrease. A regressor's
``impurity`` is ``c - mean ** 2`` for one constant ``c`` per tree (the
parties release no sums of squares); differences between nodes, and so
the importances, are exact.
"""

import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

from ..utils._sklearn_compat import fitted_tree, validate_estimator_params
from ._checks import reject_unsupported
from ._trees import TREE_STRATEGIES, TreeProblem, grow_forest

CLASSIFIER_CRITERIA = ("gini", "entropy", "log_loss")
REGRESSOR_CRITERIA = ("squared_error", "friedman_mse")


def check_tree_params(estimator, criteria):
    """Raise if ``estimator`` has a hyperparameter the engine cannot honour."""
    validate_estimator_params(estimator)
    params = estimator.get_params(deep=False)
    checks = dict(
        criterion=lambda v: v in criteria,
        min_weight_fraction_leaf=lambda v: v == 0,
        max_leaf_nodes=lambda v: v is None,
        ccp_alpha=lambda v: v == 0,
        monotonic_cst=lambda v: v is None,
    )
    if "class_weight" in params:
        checks["class_weight"] = lambda v: v is None
    for name in ("oob_score", "warm_start"):
        if name in params:
            checks[name] = lambda v: not v
    if "max_samples" in params:
        checks["max_samples"] = lambda v: v is None
    reject_unsupported(estimator, **checks)
    for name in ("min_samples_split", "min_samples_leaf"):
        value = params[name]
        if not isinstance(value, numbers.Integral):
            raise ValueError(
                f"{type(estimator).__name__}({name}={value!r}) is not supported "
                f"by its federated algorithm: a fraction of the rows needs the "
                f"private row count; pass an integer number of rows."
            )


def resolve_strategy(session, default):
    """The tree strategy of this fit (``default`` for ``"auto"``)."""
    strategy = default if session.strategy == "auto" else session.strategy
    if strategy not in TREE_STRATEGIES:
        raise ValueError(
            f"strategy={session.strategy!r} does not apply to trees; use one of "
            f"{('auto', *TREE_STRATEGIES)}."
        )
    return strategy


def n_candidates(max_features, n_features):
    """``max_features`` resolved to a number of features, as scikit-learn."""
    if max_features is None:
        return n_features
    if max_features == "sqrt":
        return max(1, int(math.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(math.log2(n_features)))
    if isinstance(max_features, numbers.Integral):
        return min(int(max_features), n_features)
    return max(1, int(max_features * n_features))


def tree_problem(estimator, session, classes, splitter):
    """The :class:`TreeProblem` of ``estimator``'s hyperparameters."""
    criterion = estimator.criterion
    if criterion == "log_loss":
        criterion = "entropy"
    impurity_scale = 1.0
    if classes is None:
        criterion = "squared_error"
        impurity_scale = session.clipping.y_scale**2
    return TreeProblem(
        classes=None if classes is None else np.asarray(classes),
        criterion=criterion,
        splitter=splitter,
        max_depth=estimator.max_depth,
        min_samples_split=int(estimator.min_samples_split),
        min_samples_leaf=int(estimator.min_samples_leaf),
        min_impurity_decrease=float(estimator.min_impurity_decrease),
        max_features=n_candidates(estimator.max_features, session.n_features),
        impurity_scale=impurity_scale,
    )


def raw_thresholds(thresholds, features, clipping):
    """Thresholds in mapped units turned into the features' units, exactly.

    A party maps a value ``x`` to ``(clip(x) - center) / scale``; the raw
    threshold is the largest float whose image is at most the mapped
    threshold, so ``x <= raw`` and ``mapped(x) <= threshold`` agree on
    every float ``x`` (beyond the bounds too: the mapped bounds are ±1 and
    thresholds lie strictly inside, else the raw threshold is ±inf).
    """
    if clipping.lower is None:
        return np.asarray(thresholds, dtype=float)
    center = np.broadcast_to(clipping.x_center, clipping.lower.shape)[features]
    scale = np.broadcast_to(clipping.x_scale, clipping.lower.shape)[features]
    lower, upper = clipping.lower[features], clipping.upper[features]
    t = np.asarray(thresholds, dtype=float)

    def image(x):
        return (np.clip(x, lower, upper) - center) / scale

    raw = center + scale * t
    for _ in range(64):  # a few steps suffice; the bound is a safeguard
        high = image(raw) > t
        if not high.any():
            break
        raw = np.where(high, np.nextafter(raw, -np.inf), raw)
    for _ in range(64):
        step = np.nextafter(raw, np.inf)
        low = image(step) <= t
        if not low.any():
            break
        raw = np.where(low, step, raw)
    raw = np.where(image(upper) <= t, np.inf, raw)
    return np.where(image(lower) > t, -np.inf, raw)


def _reachable(structure):
    """Node ids reachable from the root, in depth-first (pre-)order."""
    order, stack = [], [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if structure.feature[node] >= 0:
            stack += [structure.right[node], structure.left[node]]
    return np.asarray(order, dtype=np.intp)


def _node_impurity(grown, problem, clipping):
    if problem.classes is not None:
        counts = grown.counts
        n = counts.sum(axis=1, keepdims=True)
        p = np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
        if problem.criterion == "gini":
            return 1.0 - np.sum(p * p, axis=1)
        logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
        return -np.sum(p * logs, axis=1)
    means = np.divide(
        grown.sums, grown.counts, out=np.zeros_like(grown.sums), where=grown.counts > 0
    )
    means = clipping.y_center + clipping.y_scale * means
    return float(np.max(means**2)) - means**2


def to_sklearn(estimator, grown, problem, clipping, n_features):
    """Set ``estimator``'s fitted tree from a :class:`GrownTree`."""
    structure = grown.structure
    order = _reachable(structure)
    new_id = np.full(structure.n_nodes, -1, dtype=np.intp)
    new_id[order] = np.arange(order.size)
    inner = structure.feature[order] >= 0
    left = np.where(inner, new_id[structure.left[order]], -1)
    right = np.where(inner, new_id[structure.right[order]], -1)
    feature = np.where(inner, structure.feature[order], -2)
    threshold = np.full(order.size, -2.0)
    threshold[inner] = raw_thresholds(
        structure.threshold[order][inner], feature[inner], clipping
    )
    counts = grown.counts if problem.classes is None else grown.counts.sum(axis=1)
    weighted = counts[order]
    goes_left = np.zeros(order.size, dtype=np.uint8)
    goes_left[inner] = weighted[left[inner]] >= weighted[right[inner]]
    values = grown.values[order]
    if problem.classes is None:
        values = clipping.y_center + clipping.y_scale * values
        if clipping.y_lower is not None:
            values = np.clip(values, clipping.y_lower, clipping.y_upper)
    depth = np.zeros(order.size, dtype=np.intp)
    for node in range(order.size):  # parents come before children
        if inner[node]:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    nodes = {
        "left_child": left,
        "right_child": right,
        "feature": feature,
        "threshold": threshold,
        "impurity": _node_impurity(grown, problem, clipping)[order],
        "n_node_samples": np.rint(weighted).astype(np.int64),
        "weighted_n_node_samples": weighted,
        "missing_go_to_left": goes_left,
    }
    fitted_tree(
        estimator,
        nodes=nodes,
        values=values,
        max_depth=int(depth.max()),
        n_features=n_features,
        classes=problem.classes,
    )
    estimator.max_features_ = problem.max_features
    return estimator


def _fit_tree(estimator, session, classes, criteria):
    check_tree_params(estimator, criteria)
    strategy = resolve_strategy(session, "greedy")
    problem = tree_problem(estimator, session, classes, estimator.splitter)
    rng = check_random_state(estimator.random_state)
    (grown,), clipping = grow_forest(session, problem, 1, strategy, rng)
    return to_sklearn(estimator, grown, problem, clipping, session.n_features)


def fit_decision_tree_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``DecisionTreeClassifier``) across parties."""
    return _fit_tree(classifier, session, classes, CLASSIFIER_CRITERIA)


def fit_decision_tree_regressor(regressor, session):
    """Fit ``regressor`` (a ``DecisionTreeRegressor``) across parties."""
    return _fit_tree(regressor, session, None, REGRESSOR_CRITERIA)
