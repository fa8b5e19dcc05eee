"""Federated DP ``LogisticRegression``, binary and multinomial.

The objective is scikit-learn's, ``C * sum_i w_i log-loss_i + |w|^2 / 2``
with the intercept not penalised: the sigmoid loss for two classes, the
softmax (multinomial) loss for more. It is minimised by the strategies of
:mod:`fedsk.estimators._glm` (noisy Newton steps by default), on rows mapped
to [-1, 1] by the public bounds or capped at ``data_norm``; a record's
gradient and Hessian are then bounded without further clipping.

``class_weight`` is honoured: a dict is public; ``"balanced"`` needs the
class counts, which are released first with ``COUNT_SHARE`` of the budget
and turned into weights ``n / (n_classes * n_k)``.
"""

import numpy as np

from ._checks import reject_unsupported
from ._glm import COUNT_SHARE, fit_linear_model, noisy_count


def public_class_weights(class_weight, classes, session):
    """Class weights as an array over ``classes``, and the budget left.

    Returns
    -------
    weights : ndarray or None
    fraction : float
        Share of the budget still available for training.

    Raises
    ------
    ValueError
        Before anything is released, for labels not in ``classes`` or for a
        negative weight (a record's weighted gradient is bounded by the
        largest weight; a negative one would break that bound).
    """
    if class_weight is None:
        return None, 1.0
    if class_weight == "balanced":
        counts = noisy_count(session, COUNT_SHARE, classes=classes)
        return counts.sum() / (len(classes) * counts), 1 - COUNT_SHARE
    unknown = set(class_weight) - set(classes.tolist())
    if unknown:
        raise ValueError(
            f"class_weight has labels {sorted(unknown)!r} that are not among the "
            f"classes {classes.tolist()!r}."
        )
    negative = {c: w for c, w in class_weight.items() if not float(w) >= 0}
    if negative:
        raise ValueError(
            f"class_weight must map every class to a weight >= 0; got {negative!r}. "
            "Use non-negative weights (0 ignores a class). Nothing was released."
        )
    return np.array([float(class_weight.get(c, 1.0)) for c in classes]), 1.0


def fit_logistic_regression(classifier, session, classes):
    """Fit ``classifier`` (a ``LogisticRegression``) across parties.

    Honours ``C`` (``inf``: no penalty), ``fit_intercept``, ``class_weight``,
    and, without noise, ``tol`` and ``max_iter``. ``solver``, ``dual``,
    ``warm_start``, ``n_jobs`` and ``random_state`` do not apply: the
    federated optimiser replaces the solver. Only the L2 penalty is
    supported.
    """
    reject_unsupported(
        classifier,
        l1_ratio=lambda v: v in (0, 0.0, None),
        penalty=lambda v: v in ("deprecated", "l2"),
    )
    weights, fraction = public_class_weights(classifier.class_weight, classes, session)
    multinomial = len(classes) > 2
    classifier = fit_linear_model(
        classifier,
        session,
        loss="multinomial" if multinomial else "log",
        C=classifier.C,
        classes=classes,
        n_outputs=len(classes) if multinomial else 1,
        class_weight=weights,
        fraction=fraction,
    )
    classifier.classes_ = np.asarray(classes)
    classifier.n_iter_ = np.array([classifier.n_iter_])
    return classifier
