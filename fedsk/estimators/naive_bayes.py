"""Federated DP ``GaussianNB``: noisy per-class counts, sums, sums of squares.

One release of the ``class_moments`` statistic for the public classes; a
record belongs to one class, so the blocks have the sensitivity of a single
record. The three blocks share the budget equally. ``var_smoothing`` is
applied to the largest pooled feature variance, computed from the same
released totals, as scikit-learn does on pooled rows.
"""

import numpy as np

from ._checks import reject_unsupported
from ._postprocessing import mean_and_variance, positive


def fit_gaussian_nb(classifier, session, classes):
    """Fit ``classifier`` (a ``GaussianNB``) from federated class moments.

    Honours ``priors`` and ``var_smoothing``.
    """
    reject_unsupported(classifier, priors=lambda p: p is None or len(p) == len(classes))
    release = session.release("class_moments", classes=classes)
    counts, sums, squares = release.blocks
    counts = positive(counts, 1.0)
    noise = release.noise_std[2]
    theta, var = mean_and_variance(
        counts[:, None], sums, squares, session.clipping, noise
    )
    total = counts.sum()
    _, pooled_var = mean_and_variance(
        total,
        sums.sum(axis=0),
        squares.sum(axis=0),
        session.clipping,
        noise * np.sqrt(len(classes)),
    )

    classifier.classes_ = np.asarray(classes)
    classifier.class_count_ = counts
    classifier.theta_ = theta
    classifier.epsilon_ = classifier.var_smoothing * float(np.max(pooled_var))
    classifier.var_ = var + classifier.epsilon_
    if classifier.priors is None:
        classifier.class_prior_ = counts / total
    else:
        classifier.class_prior_ = np.asarray(classifier.priors, dtype=float)
    return classifier
