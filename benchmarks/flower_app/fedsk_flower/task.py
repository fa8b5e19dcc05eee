"""The model both sides share: a binary LogisticRegression as two arrays."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def load(path):
    """Rows ``X`` and labels ``y`` from an ``.npz`` file written by the benchmark."""
    with np.load(path) as data:
        return data["X"], data["y"]


def zeros(n_features):
    """Initial arrays: coefficients of shape (1, n_features) and the intercept."""
    return [np.zeros((1, n_features)), np.zeros(1)]


def local_epoch(arrays, X, y):
    """One lbfgs iteration from the global model (warm start), as in FACTS.md."""
    model = LogisticRegression(max_iter=1, warm_start=True)
    model.classes_ = np.array([0, 1])
    model.coef_, model.intercept_ = (a.copy() for a in arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return [model.coef_, model.intercept_]


def accuracy(arrays, X, y):
    """Test accuracy of the model held in ``arrays``."""
    coef, intercept = arrays
    return float(np.mean((X @ coef.T + intercept > 0).ravel() == y))
