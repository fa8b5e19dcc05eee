"""Federated DP ``SGDClassifier`` and ``SGDRegressor``, trained full-batch.

scikit-learn's SGD estimators minimise ``mean_i loss_i + alpha |w|^2 / 2``
by stochastic steps. The federated versions minimise the same objective
exactly, by the strategies of :mod:`fedsk.estimators._glm` (noisy Newton
steps by default), so they land where SGD would converge rather than where
a finite number of epochs leaves it. The mean needs the number of rows,
released first as a noisy count with ``COUNT_SHARE`` of the budget; the
objective is then ``C * sum_i loss_i + |w|^2 / 2`` with ``C = 1 / (n
alpha)``. Classifiers with more than two classes are one-vs-rest, as in
scikit-learn.

The optimiser's own hyperparameters (``learning_rate``, ``eta0``,
``power_t``, ``shuffle``, ``average``, ``n_iter_no_change``,
``random_state``, ``warm_start``) do not apply; ``tol`` and ``max_iter``
bound the noise-free rounds. The loss ``hinge`` is minimised in its smoothed
form (see :mod:`fedsk._losses`).
"""

import math

import numpy as np

from ._checks import reject_unsupported
from ._glm import COUNT_SHARE, fit_linear_model, noisy_count

CLASSIFIER_LOSSES = {
    "log_loss": "log",
    "hinge": "hinge",
    "squared_hinge": "squared_hinge",
}


def _check(estimator, losses):
    reject_unsupported(
        estimator,
        loss=lambda v: v in losses,
        penalty=lambda v: v in ("l2", None),
        early_stopping=lambda v: not v,
        average=lambda v: not v,
    )


def _loss_weight(estimator, session):
    """``C = 1 / (n alpha)`` from a noisy count (``inf`` without penalty)."""
    rows = noisy_count(session, COUNT_SHARE)[0]
    if estimator.penalty is None or estimator.alpha == 0:
        return math.inf
    return 1.0 / (rows * estimator.alpha)


def fit_sgd_classifier(classifier, session, classes):
    """Fit ``classifier`` (an ``SGDClassifier``) across parties.

    Losses ``log_loss``, ``hinge`` and ``squared_hinge``; penalty ``l2`` or
    None; ``alpha`` and ``fit_intercept`` honoured; ``class_weight`` must be
    None.
    """
    _check(classifier, CLASSIFIER_LOSSES)
    reject_unsupported(classifier, class_weight=lambda v: v is None)
    binary = len(classes) == 2
    classifier = fit_linear_model(
        classifier,
        session,
        loss=CLASSIFIER_LOSSES[classifier.loss],
        C=_loss_weight(classifier, session),
        classes=classes,
        n_outputs=1 if binary else len(classes),
        fraction=1 - COUNT_SHARE,
    )
    classifier.classes_ = np.asarray(classes)
    return classifier


def fit_sgd_regressor(regressor, session):
    """Fit ``regressor`` (an ``SGDRegressor``) across parties.

    Loss ``squared_error``; penalty ``l2`` or None; ``alpha`` and
    ``fit_intercept`` honoured. The target is clipped to ``y_bounds``.
    """
    _check(regressor, ("squared_error",))
    regressor = fit_linear_model(
        regressor,
        session,
        loss="squared_error",
        C=_loss_weight(regressor, session),
        fraction=1 - COUNT_SHARE,
    )
    clipping = session.clipping
    # the target was mapped to [-1, 1]: y = y_center + y_scale * score
    regressor.coef_ = clipping.y_scale * regressor.coef_[0]
    regressor.intercept_ = clipping.y_center + clipping.y_scale * regressor.intercept_
    return regressor
