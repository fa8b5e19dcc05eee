"""Tree models across parties: one engine for trees, forests and boosting.

Modelled on scikit-learn's ``sklearn/ensemble/_hist_gradient_boosting``,
one module per job:

- :mod:`._binning`: the public fine grid, the root's fine histogram (the
  first release of every model), bins at its quantiles, raw thresholds;
- :mod:`._splits`: candidate splits and their gains on noisy histograms;
- :mod:`._grower`: the tree representation, random structures, the
  level-by-level grower;
- :mod:`._leaves`: node values from the leaves' release;
- :mod:`._plan`: budget shares, the noise of planned releases;
- :mod:`._convert`: real scikit-learn trees and boosting predictors;
- :mod:`._forest`, :mod:`._models`: decision trees, forests, extra-trees;
- :mod:`._boosting`: histogram gradient boosting.

The party-side statistics are in :mod:`fedsk._statistics._trees`.
"""

from ._boosting import (
    fit_hist_gradient_boosting_classifier,
    fit_hist_gradient_boosting_regressor,
)
from ._forest import TREE_STRATEGIES
from ._models import (
    fit_decision_tree_classifier,
    fit_decision_tree_regressor,
    fit_extra_trees_classifier,
    fit_extra_trees_regressor,
    fit_random_forest_classifier,
    fit_random_forest_regressor,
)

__all__ = [
    "TREE_STRATEGIES",
    "fit_decision_tree_classifier",
    "fit_decision_tree_regressor",
    "fit_extra_trees_classifier",
    "fit_extra_trees_regressor",
    "fit_hist_gradient_boosting_classifier",
    "fit_hist_gradient_boosting_regressor",
    "fit_random_forest_classifier",
    "fit_random_forest_regressor",
]
