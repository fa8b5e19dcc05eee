"""Decision trees, random forests and extra-trees across parties.

Decision trees grow greedily by default, forests draw random structures
(:mod:`._forest` describes the strategies; ``FederatedEstimator(strategy=...)``
chooses). All ``n_estimators`` trees of a forest grow together, so a release
covers every tree.

Honoured: ``criterion`` (``gini``, ``entropy``, ``log_loss``;
``squared_error``, ``friedman_mse``, both as squared-error gain),
``splitter`` (``"random"``: one random cut per candidate feature, as
``ExtraTree*``), ``max_depth`` (``None``: with noise, the deepest depth the
budget supports), ``min_samples_split``, ``min_samples_leaf`` (on noisy
counts; leaves whose released count falls below it are merged back),
``min_impurity_decrease`` (on noisy gains), ``max_features`` (candidate
features per node, greedy strategies), ``n_estimators`` and
``random_state`` (the public randomness of the structures; the noise is
seeded by ``FederatedEstimator(random_state=...)``). Ignored: ``bootstrap``
(a record enters a release once; resampling would multiply its weight and
so the sensitivity), ``n_jobs`` and ``verbose``. Rejected: ``class_weight``,
``max_leaf_nodes``, ``min_weight_fraction_leaf``, ``ccp_alpha``,
``monotonic_cst``, ``oob_score``, ``warm_start``, ``max_samples`` other than
their defaults, and fractional ``min_samples_split`` / ``min_samples_leaf``
(they need the private row count).

The fitted estimator is the real scikit-learn tree or forest: node counts
are the noisy counts, values are shrunk towards the parent's
(:mod:`._leaves`), impurities come from the same counts.
"""

import math
import numbers

import numpy as np

from ...utils._sklearn_compat import forest_members, validate_estimator_params
from .._checks import reject_unsupported
from ._binning import raw_edges
from ._convert import to_decision_tree
from ._forest import TREE_STRATEGIES, TreeProblem, grow_forest
from ._grower import public_rng

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


def _problem(estimator, session, classes, splitter):
    criterion = "entropy" if estimator.criterion == "log_loss" else estimator.criterion
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


def _fit(estimator, session, classes, criteria, n_trees, splitter, default):
    check_tree_params(estimator, criteria)
    strategy = resolve_strategy(session, default)
    problem = _problem(estimator, session, classes, splitter)
    rng = public_rng(estimator.random_state, session)
    fitted, clipping = grow_forest(session, problem, n_trees or 1, strategy, rng)
    raw = raw_edges(clipping)

    def convert(member, tree):
        to_decision_tree(
            member,
            tree,
            criterion=problem.criterion,
            raw=raw,
            clipping=clipping,
            classes=problem.classes,
            n_features=session.n_features,
        )
        member.max_features_ = problem.max_features
        return member

    if n_trees is None:
        return convert(estimator, fitted[0])
    estimator.estimators_ = [
        convert(member, tree)
        for member, tree in zip(forest_members(estimator, n_trees), fitted)
    ]
    estimator.n_outputs_ = 1
    estimator.n_features_in_ = session.n_features
    if classes is not None:
        estimator.classes_ = np.asarray(classes)
        estimator.n_classes_ = len(classes)
    return estimator


def fit_decision_tree_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``DecisionTreeClassifier``) across parties."""
    return _fit(
        classifier,
        session,
        classes,
        CLASSIFIER_CRITERIA,
        None,
        classifier.splitter,
        "greedy",
    )


def fit_decision_tree_regressor(regressor, session):
    """Fit ``regressor`` (a ``DecisionTreeRegressor``) across parties."""
    return _fit(
        regressor, session, None, REGRESSOR_CRITERIA, None, regressor.splitter, "greedy"
    )


def fit_random_forest_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``RandomForestClassifier``) across parties."""
    return _fit(
        classifier,
        session,
        classes,
        CLASSIFIER_CRITERIA,
        classifier.n_estimators,
        "best",
        "random",
    )


def fit_random_forest_regressor(regressor, session):
    """Fit ``regressor`` (a ``RandomForestRegressor``) across parties."""
    return _fit(
        regressor,
        session,
        None,
        REGRESSOR_CRITERIA,
        regressor.n_estimators,
        "best",
        "random",
    )


def fit_extra_trees_classifier(classifier, session, classes):
    """Fit ``classifier`` (an ``ExtraTreesClassifier``) across parties."""
    return _fit(
        classifier,
        session,
        classes,
        CLASSIFIER_CRITERIA,
        classifier.n_estimators,
        "random",
        "random",
    )


def fit_extra_trees_regressor(regressor, session):
    """Fit ``regressor`` (an ``ExtraTreesRegressor``) across parties."""
    return _fit(
        regressor,
        session,
        None,
        REGRESSOR_CRITERIA,
        regressor.n_estimators,
        "random",
        "random",
    )
