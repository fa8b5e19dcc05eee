"""Federated DP algorithms, one module per scikit-learn model family.

Each algorithm receives an unfitted clone of the user's estimator and a
:class:`~fedsk.estimators._session.FitSession`, asks the session for noisy
statistics, and sets the estimator's fitted attributes. ``ALGORITHMS`` maps
each supported scikit-learn class to its algorithm.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ._bounds import private_bounds
from ._glm import STRATEGIES as _GLM_STRATEGIES
from ._session import FitSession
from .linear import fit_linear_regression, fit_ridge
from .logistic import fit_logistic_regression
from .naive_bayes import fit_gaussian_nb
from .preprocessing import fit_standard_scaler
from .sgd import fit_sgd_classifier, fit_sgd_regressor
from .svm import fit_linear_svc
from .trees import (
    TREE_STRATEGIES,
    fit_decision_tree_classifier,
    fit_decision_tree_regressor,
    fit_extra_trees_classifier,
    fit_extra_trees_regressor,
    fit_hist_gradient_boosting_classifier,
    fit_hist_gradient_boosting_regressor,
    fit_random_forest_classifier,
    fit_random_forest_regressor,
)

# every value FederatedEstimator(strategy=...) accepts; each algorithm
# raises if given one that is not its own
STRATEGIES = (*_GLM_STRATEGIES, *TREE_STRATEGIES)


@dataclass(frozen=True)
class Algorithm:
    """A federated algorithm and what it needs from the user.

    Attributes
    ----------
    fit : callable
        ``fit(estimator, session)`` or, for classifiers,
        ``fit(estimator, session, classes)``; returns the fitted estimator.
    needs_y : {"none", "bounded", "labels"}
        Whether the algorithm uses no target, a bounded real target, or
        class labels.
    """

    fit: Callable
    needs_y: str


ALGORITHMS = {
    StandardScaler: Algorithm(fit_standard_scaler, "none"),
    LinearRegression: Algorithm(fit_linear_regression, "bounded"),
    Ridge: Algorithm(fit_ridge, "bounded"),
    GaussianNB: Algorithm(fit_gaussian_nb, "labels"),
    LogisticRegression: Algorithm(fit_logistic_regression, "labels"),
    LinearSVC: Algorithm(fit_linear_svc, "labels"),
    SGDClassifier: Algorithm(fit_sgd_classifier, "labels"),
    SGDRegressor: Algorithm(fit_sgd_regressor, "bounded"),
    HistGradientBoostingClassifier: Algorithm(
        fit_hist_gradient_boosting_classifier, "labels"
    ),
    HistGradientBoostingRegressor: Algorithm(
        fit_hist_gradient_boosting_regressor, "bounded"
    ),
    DecisionTreeClassifier: Algorithm(fit_decision_tree_classifier, "labels"),
    DecisionTreeRegressor: Algorithm(fit_decision_tree_regressor, "bounded"),
    RandomForestClassifier: Algorithm(fit_random_forest_classifier, "labels"),
    RandomForestRegressor: Algorithm(fit_random_forest_regressor, "bounded"),
    ExtraTreesClassifier: Algorithm(fit_extra_trees_classifier, "labels"),
    ExtraTreesRegressor: Algorithm(fit_extra_trees_regressor, "bounded"),
}


def get_algorithm(estimator):
    """Return the :class:`Algorithm` for ``estimator``'s class.

    Raises
    ------
    TypeError
        If the class has no federated algorithm; the message lists the
        supported classes.
    """
    algorithm = ALGORITHMS.get(type(estimator))
    if algorithm is None:
        supported = ", ".join(sorted(cls.__name__ for cls in ALGORITHMS))
        raise TypeError(
            f"fedsk has no federated algorithm for {type(estimator).__name__}. "
            f"Supported estimators: {supported}."
        )
    return algorithm


__all__ = [
    "ALGORITHMS",
    "STRATEGIES",
    "Algorithm",
    "FitSession",
    "get_algorithm",
    "private_bounds",
]
