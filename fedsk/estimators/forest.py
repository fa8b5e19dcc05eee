"""Federated DP random forests and extra-trees, classifiers and regressors.

All ``n_estimators`` trees are grown together by the engine of
:mod:`fedsk.estimators._trees`, so a release covers every tree:

- ``strategy="random"`` (the default): every tree's structure is drawn at
  the coordinator from the public bounds (a uniform feature, a uniform
  threshold in the node's box), then ONE release gives every leaf of every
  tree its class counts (or target sum and row count). A record reaches
  one leaf per tree, so the release's sensitivity is ``n_estimators``.
- ``"random_disjoint"``: the same structures, but each record feeds one
  tree only (a keyed hash of the record, computed by its party), so the
  sensitivity is 1 and each tree sees about ``1 / n_estimators`` of the
  rows: the parallel-composition counterpart of ``bootstrap``.
- ``"greedy"`` / ``"greedy_disjoint"``: every tree is grown level by level
  from noisy histograms of its nodes (one release per depth for all
  trees), with ``max_features`` candidate features per node;
  ``RandomForest*`` take the best bin edge of each candidate,
  ``ExtraTrees*`` one uniform threshold per candidate.

Honoured: ``n_estimators``, ``criterion``, ``max_depth`` (``None``: the
deepest depth the budget supports, from a noisy row count),
``min_samples_split``, ``min_samples_leaf`` (on noisy counts),
``min_impurity_decrease``, ``max_features`` (greedy strategies; random
structures draw one feature per node) and ``random_state`` (the public
randomness of the structures and of the record-to-tree hash). Ignored:
``bootstrap`` (a record enters a release once, or, with the ``_disjoint``
strategies, one tree: resampling would multiply its weight and so the
sensitivity), ``n_jobs`` and ``verbose`` (party-side work is parallelised by
``FederatedEstimator(n_jobs=...)``). Rejected: ``oob_score``,
``warm_start``, ``max_samples``, ``class_weight``, ``max_leaf_nodes``,
``min_weight_fraction_leaf``, ``ccp_alpha``, ``monotonic_cst`` other than
their defaults.

The fitted estimator is the real scikit-learn forest; its ``estimators_``
are real scikit-learn trees assembled as in :mod:`fedsk.estimators.tree`.
"""

import numpy as np
from sklearn.utils import check_random_state

from ..utils._sklearn_compat import forest_members
from ._trees import grow_forest
from .tree import (
    CLASSIFIER_CRITERIA,
    REGRESSOR_CRITERIA,
    check_tree_params,
    resolve_strategy,
    to_sklearn,
    tree_problem,
)

DEFAULT_STRATEGY = "random"


def _fit_forest(forest, session, classes, criteria, splitter):
    check_tree_params(forest, criteria)
    strategy = resolve_strategy(session, DEFAULT_STRATEGY)
    problem = tree_problem(forest, session, classes, splitter)
    rng = check_random_state(forest.random_state)
    grown, clipping = grow_forest(session, problem, forest.n_estimators, strategy, rng)
    members = forest_members(forest, forest.n_estimators)
    forest.estimators_ = [
        to_sklearn(member, tree, problem, clipping, session.n_features)
        for member, tree in zip(members, grown)
    ]
    forest.n_outputs_ = 1
    forest.n_features_in_ = session.n_features
    if classes is not None:
        forest.classes_ = np.asarray(classes)
        forest.n_classes_ = len(classes)
    return forest


def fit_random_forest_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``RandomForestClassifier``) across parties."""
    return _fit_forest(classifier, session, classes, CLASSIFIER_CRITERIA, "best")


def fit_random_forest_regressor(regressor, session):
    """Fit ``regressor`` (a ``RandomForestRegressor``) across parties."""
    return _fit_forest(regressor, session, None, REGRESSOR_CRITERIA, "best")


def fit_extra_trees_classifier(classifier, session, classes):
    """Fit ``classifier`` (an ``ExtraTreesClassifier``) across parties."""
    return _fit_forest(classifier, session, classes, CLASSIFIER_CRITERIA, "random")


def fit_extra_trees_regressor(regressor, session):
    """Fit ``regressor`` (an ``ExtraTreesRegressor``) across parties."""
    return _fit_forest(regressor, session, None, REGRESSOR_CRITERIA, "random")
