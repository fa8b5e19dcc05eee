"""Federated DP binary ``LogisticRegression`` by noisy Newton steps.

Each round releases the ``logistic_derivatives`` statistic at the current
coefficients: the sum of per-record log-loss gradients and the upper
triangle of the summed Hessians, of rows mapped to [-1, 1] by the public
bounds (or capped at ``data_norm``). A record's gradient has norm at most
that of ``[x, 1]`` and its Hessian a quarter of its square, so no extra
clipping is needed. The coordinator takes a Newton step on scikit-learn's
objective, ``C * sum(log-loss) + ||coef||^2 / 2`` (intercept not
penalised). With noise the summed Hessian is projected onto the positive
semi-definite cone and regularised by its public noise level.

The budget is split equally over ``rounds`` releases before the first one;
Newton's method needs few rounds, so little is lost to composition. Without
noise, rounds continue until the step is below ``tol`` (at most
``max_iter``), which reproduces scikit-learn's solution.
"""

import math

import numpy as np

from ._checks import reject_unsupported
from ._postprocessing import regularised_psd, symmetric_from_upper

# Rounds of noisy Newton steps when epsilon is finite.
NOISY_ROUNDS = 4


def fit_logistic_regression(classifier, session, classes):
    """Fit ``classifier`` (a binary ``LogisticRegression``) across parties.

    Honours ``C``, ``fit_intercept``, ``tol`` and ``max_iter`` (noise-free
    only). ``solver`` does not apply.
    """
    reject_unsupported(
        classifier,
        l1_ratio=lambda v: v in (0, 0.0, None),
        class_weight=lambda v: v is None,
        penalty=lambda v: v in ("deprecated", "l2"),
    )
    if len(classes) != 2:
        raise ValueError(
            "The federated LogisticRegression is binary for now; got "
            f"{len(classes)} classes."
        )
    d = session.n_features
    clipping = session.clipping
    x_scale = np.broadcast_to(clipping.x_scale, (d,))
    x_center = np.broadcast_to(clipping.x_center, (d,))
    # penalty ||coef||^2 / 2 in the features' units, written for mapped rows
    penalty = np.diag(np.append(1.0 / x_scale**2, 0.0))
    noisy = math.isfinite(session.epsilon)
    rounds = NOISY_ROUNDS if noisy else classifier.max_iter
    coef = np.zeros(d + 1)
    done = 0
    while done < rounds:
        done += 1
        release = session.release(
            "logistic_derivatives", 1.0 / rounds, coef=coef, classes=classes
        )
        gradient, hessian_upper = release.blocks
        hessian = symmetric_from_upper(hessian_upper, d + 1)
        if not classifier.fit_intercept:
            gradient[-1], hessian[-1, :], hessian[:, -1] = 0.0, 0.0, 0.0
            hessian[-1, -1] = 1.0
        system = classifier.C * hessian + penalty
        if noisy:
            noise = classifier.C * release.noise_std[1]
            system = regularised_psd(system, 2 * math.sqrt(d + 1) * noise)
        step = np.linalg.solve(
            system + 1e-12 * np.eye(d + 1), classifier.C * gradient + penalty @ coef
        )
        coef = coef - step
        if not noisy and np.max(np.abs(step)) <= classifier.tol * 1e-4:
            break

    classifier.classes_ = np.asarray(classes)
    weights = coef[:-1] / x_scale
    classifier.coef_ = weights[None, :]
    intercept = coef[-1] - weights @ x_center if classifier.fit_intercept else 0.0
    classifier.intercept_ = np.array([intercept])
    classifier.n_iter_ = np.array([done])
    return classifier
