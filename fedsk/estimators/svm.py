"""Federated DP ``LinearSVC``.

liblinear's primal objective, ``C * sum_i loss_i + (|w|^2 + b^2 / s^2) / 2``
with ``s = intercept_scaling`` (liblinear penalises the intercept), one
binary problem per class for more than two classes (one-vs-rest). The
squared hinge is minimised by generalised Newton steps (as liblinear's own
primal solver does); with noise a record's gradient factor is capped (see
:mod:`fedsk._losses`). ``loss="hinge"`` is minimised in its smoothed form,
which differs from the hinge only for margins within
``fedsk._losses.HINGE_SMOOTHING`` below 1.
"""

import numpy as np

from ._checks import reject_unsupported
from ._glm import fit_linear_model


def fit_linear_svc(classifier, session, classes):
    """Fit ``classifier`` (a ``LinearSVC``) across parties.

    Honours ``C``, ``loss``, ``fit_intercept``, ``intercept_scaling`` and,
    without noise, ``tol`` and ``max_iter``. ``dual`` and ``random_state``
    do not apply (the federated optimiser replaces liblinear). Only the L2
    penalty, one-vs-rest and ``class_weight=None`` are supported.
    """
    reject_unsupported(
        classifier,
        penalty=lambda v: v == "l2",
        multi_class=lambda v: v == "ovr",
        class_weight=lambda v: v is None,
    )
    binary = len(classes) == 2
    classifier = fit_linear_model(
        classifier,
        session,
        loss=classifier.loss,
        C=classifier.C,
        classes=classes,
        n_outputs=1 if binary else len(classes),
        intercept_penalty=1.0 / classifier.intercept_scaling**2,
    )
    classifier.classes_ = np.asarray(classes)
    return classifier
