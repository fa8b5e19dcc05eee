"""A party's own fit of the wrapped estimator, from the global model (FedAvg).

Runs on the party's side, inside the ``local_update`` statistic: the party
fits a clone of the public estimator on its mapped rows for a few epochs,
starting from the global coefficients where the estimator can warm-start.
"""

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor

# Optimiser iterations (L-BFGS) or epochs (SGD) of one local fit.
LOCAL_EPOCHS = 5


def local_fit(estimator, X, y, start, classes, intercept):
    """Coefficients ``(n_outputs, n_features + intercept)`` after a local fit.

    ``LogisticRegression`` warm-starts from ``start`` and runs
    ``LOCAL_EPOCHS`` L-BFGS iterations; ``SGDClassifier`` and
    ``SGDRegressor`` run ``LOCAL_EPOCHS`` epochs from ``start``; other
    estimators (``LinearSVC``) cannot warm-start and fit from scratch.

    A party without rows, or without rows of every class, cannot fit the
    model: it returns ``start`` (a zero update) rather than an error, whose
    occurrence would tell the coordinator which classes it holds.
    """
    local = clone(estimator)
    coef = start[:, :-1] if intercept else start
    offset = start[:, -1] if intercept else np.zeros(start.shape[0])
    if len(y) == 0 or (classes is not None and np.setdiff1d(classes, y).size):
        return start.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if isinstance(local, LogisticRegression):
            local.set_params(warm_start=True, max_iter=LOCAL_EPOCHS)
            local.coef_, local.intercept_ = coef, offset
            local.fit(X, y)
        elif isinstance(local, SGDClassifier | SGDRegressor):
            local.set_params(max_iter=LOCAL_EPOCHS, tol=None)
            single = isinstance(local, SGDRegressor) or coef.shape[0] == 1
            local.fit(
                X,
                y,
                coef_init=coef[0] if single else coef,
                intercept_init=offset,
            )
        else:
            local.fit(X, y)
    fitted = np.reshape(local.coef_, (start.shape[0], -1))
    if intercept:
        fitted = np.column_stack([fitted, np.ravel(local.intercept_)])
    return fitted
