"""Every private scikit-learn name fedsk uses, in one place.

When a scikit-learn release moves one of these, this is the only file to
change.
"""

import numpy as np
from sklearn.base import _fit_context
from sklearn.ensemble._hist_gradient_boosting._predictor import (
    _predict_from_raw_data,
)
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.common import (
    PREDICTOR_RECORD_DTYPE,
    X_BITSET_INNER_DTYPE,
)
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.preprocessing._data import _handle_zeros_in_scale
from sklearn.tree._tree import NODE_DTYPE, Tree
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions", "_fit_context", "_handle_zeros_in_scale"]

# -- histogram gradient boosting (fedsk/estimators/trees/_boosting.py) --------

__all__ += [
    "fitted_hist_gradient_boosting",
    "predict_tree_nodes",
    "tree_node_records",
    "validate_estimator_params",
]

_NO_BITSETS = np.zeros((0, 8), dtype=X_BITSET_INNER_DTYPE)


def tree_node_records(
    *,
    value,
    feature,
    threshold,
    bin_threshold,
    left,
    right,
    is_leaf,
    missing_go_to_left,
    count,
    gain,
    depth,
):
    """One tree as scikit-learn's HistGradientBoosting predictor node records.

    Every argument is an array of shape (n_nodes,); node 0 is the root and
    ``left`` / ``right`` hold child indices (ignored at leaves). A row goes
    left when its feature value is ``<= threshold`` (NaN: as
    ``missing_go_to_left`` says).
    """
    nodes = np.zeros(len(value), dtype=PREDICTOR_RECORD_DTYPE)
    nodes["value"] = value
    nodes["feature_idx"] = feature
    nodes["num_threshold"] = threshold
    nodes["bin_threshold"] = bin_threshold
    nodes["left"] = left
    nodes["right"] = right
    nodes["is_leaf"] = is_leaf
    nodes["missing_go_to_left"] = missing_go_to_left
    nodes["count"] = count
    nodes["gain"] = gain
    nodes["depth"] = depth
    return nodes


def predict_tree_nodes(nodes, X):
    """The value of the leaf each row of ``X`` reaches in the tree ``nodes``."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty(X.shape[0], dtype=np.float64)
    no_categories = np.zeros(X.shape[1], dtype=np.uint32)
    _predict_from_raw_data(nodes, X, _NO_BITSETS, _NO_BITSETS, no_categories, 1, out)
    return out


def fitted_hist_gradient_boosting(
    estimator, *, trees, bin_thresholds, baseline, classes=None
):
    """Give an unfitted HistGradientBoosting* the fitted state of ``trees``.

    Parameters
    ----------
    estimator : HistGradientBoostingClassifier or HistGradientBoostingRegressor
    trees : list of list of ndarray
        Per iteration, the node records (:func:`tree_node_records`) of each
        of the ``n_trees_per_iteration_`` trees, thresholds in raw units.
    bin_thresholds : list of ndarray
        Per feature, the raw upper edges of its bins but the last.
    baseline : ndarray of shape (n_trees_per_iteration_,)
        Raw prediction of the intercept-only model.
    classes : ndarray, default=None
        Class labels of a classifier.
    """
    n_features = len(bin_thresholds)
    n_bins = max(len(t) for t in bin_thresholds) + 1
    mapper = _BinMapper(n_bins=n_bins + 1)
    mapper.bin_thresholds_ = [np.asarray(t, dtype=np.float64) for t in bin_thresholds]
    mapper.n_bins_non_missing_ = np.array(
        [len(t) + 1 for t in bin_thresholds], dtype=np.uint32
    )
    mapper.is_categorical_ = np.zeros(n_features, dtype=np.uint8)
    mapper.missing_values_bin_idx_ = n_bins
    estimator._bin_mapper = mapper
    estimator._preprocessor = None
    estimator._is_categorical_remapped = None
    estimator.is_categorical_ = None
    estimator._n_features = n_features
    estimator._predictors = [
        [TreePredictor(nodes, _NO_BITSETS.copy(), _NO_BITSETS.copy()) for nodes in it]
        for it in trees
    ]
    baseline = np.asarray(baseline, dtype=np.float64)
    estimator._baseline_prediction = baseline.reshape(1, -1)
    estimator.n_trees_per_iteration_ = baseline.size
    if classes is not None:
        estimator.classes_ = np.asarray(classes)
    estimator._loss = estimator._get_loss(sample_weight=None)
    estimator.do_early_stopping_ = False
    estimator.train_score_ = np.asarray([])
    estimator.validation_score_ = np.asarray([])
    return estimator


def validate_estimator_params(estimator):
    """Check ``estimator``'s hyperparameters against its declared constraints."""
    estimator._validate_params()


# -- decision trees and forests (estimators/trees/_models.py, _forest.py) -----

__all__ += ["fitted_tree", "forest_members"]


def fitted_tree(estimator, *, nodes, values, max_depth, n_features, classes=None):
    """Give an unfitted DecisionTree* / ExtraTree* the fitted state of a tree.

    Parameters
    ----------
    estimator : DecisionTreeClassifier, DecisionTreeRegressor, ExtraTree*
    nodes : dict of ndarray
        Per node (node 0 is the root): ``left_child``, ``right_child``
        (-1 at leaves), ``feature`` (-2 at leaves), ``threshold`` (raw
        units; a row goes left when ``x <= threshold``), ``impurity``,
        ``n_node_samples``, ``weighted_n_node_samples`` and
        ``missing_go_to_left``.
    values : ndarray of shape (n_nodes, n_classes) or (n_nodes,)
        Class probabilities (classifier) or predictions (regressor).
    max_depth : int
    n_features : int
    classes : ndarray, default=None
        Class labels of a classifier.
    """
    n_nodes = len(values)
    n_classes = 1 if classes is None else len(classes)
    records = np.zeros(n_nodes, dtype=NODE_DTYPE)
    for name in NODE_DTYPE.names:
        records[name] = nodes[name]
    tree = Tree(n_features, np.array([n_classes], dtype=np.intp), 1)
    tree.__setstate__(
        {
            "max_depth": int(max_depth),
            "node_count": n_nodes,
            "nodes": records,
            "values": np.ascontiguousarray(
                np.reshape(values, (n_nodes, 1, n_classes)), dtype=np.float64
            ),
        }
    )
    estimator.tree_ = tree
    estimator.n_outputs_ = 1
    estimator.n_features_in_ = n_features
    if classes is not None:
        estimator.classes_ = np.asarray(classes)
        estimator.n_classes_ = n_classes
    return estimator


def forest_members(forest, n_trees):
    """``n_trees`` unfitted trees, made as ``forest`` makes its own.

    Each is the forest's tree class with the forest's tree parameters
    (``criterion``, ``max_depth``, ...); ``forest.estimator_`` is set.
    """
    forest._validate_estimator()
    return [forest._make_estimator(append=False) for _ in range(n_trees)]
