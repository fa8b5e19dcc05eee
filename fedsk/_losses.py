"""Per-record loss derivatives of linear models, and how large they can be.

A linear model scores a record with ``s = [x, 1] @ coef.T`` (one score per
output). Its loss has a per-record gradient ``g * [x, 1]`` and Hessian
``h * [x, 1][x, 1]^T`` whose factors ``g`` and ``h`` depend only on the
scores and the target. This module computes those factors on a party's side
and states their largest possible size, from which
:mod:`fedsk._statistics` derives the sensitivity of the released sums.

Losses whose gradient factor is unbounded (squared hinge, squared error) are
clipped at ``gradient_clip``, and so may the log loss be (its factor is
within 1, a clip below that lowers the bound): a record's factor is capped
at that value and its curvature set to 0 there, which is the derivative of
the Huber-like loss that continues linearly beyond the clip.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

# Width of the quadratic piece that smooths the hinge's kink (the hinge is
# kept exactly for margins more than half of it away from 1).
HINGE_SMOOTHING = 0.1


@dataclass(frozen=True)
class LossBound:
    """Largest size of one record's derivative factors over all outputs.

    ``gradient`` and ``curvature`` are ``(l1, l2)`` pairs; for the
    multinomial loss ``curvature`` bounds the (L1, Frobenius) norm of the
    record's ``K x K`` curvature matrix, otherwise of the vector of its
    per-output curvatures.
    """

    gradient: tuple
    curvature: tuple


def class_index(y, classes):
    """Position of each label of ``y`` in the public ``classes``."""
    classes = np.asarray(classes)
    order = np.argsort(classes)
    return order[np.searchsorted(classes, y, sorter=order)]


def targets(y, classes, n_outputs):
    """Indicator targets: ``(n, 1)`` for the positive class, else one-hot."""
    classes = np.asarray(classes)
    if n_outputs == 1:
        return (np.asarray(y) == classes[-1]).astype(float)[:, None]
    return (np.asarray(y)[:, None] == classes[None, :]).astype(float)


def derivative_factors(scores, y, loss, classes, gradient_clip=None):
    """Per-record gradient and curvature factors of ``loss`` at ``scores``.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_outputs)
    y : ndarray of shape (n_samples,)
        Labels (classifiers) or mapped real targets (``"squared_error"``).
    loss : {"log", "multinomial", "squared_hinge", "hinge", "squared_error"}
    classes : array-like or None
        Public class labels (classifiers only).
    gradient_clip : float or None
        Cap on the absolute gradient factor (not applied to the
        multinomial loss).

    Returns
    -------
    gradient : ndarray of shape (n_samples, n_outputs)
    curvature : ndarray
        ``(n_samples, n_outputs)``; for ``"multinomial"`` the class
        probabilities, from which the curvature matrices are built.
    """
    k = scores.shape[1]
    if loss == "squared_error":
        gradient, curvature = scores - np.asarray(y, dtype=float)[:, None], None
    elif loss == "multinomial":
        prob = softmax(scores, axis=1)
        return prob - targets(y, classes, k), prob
    elif loss == "log":
        prob = expit(scores)
        gradient, curvature = prob - targets(y, classes, k), prob * (1.0 - prob)
    else:
        sign = 2.0 * targets(y, classes, k) - 1.0
        slack = 1.0 - sign * scores  # > 0 where the margin is violated
        if loss == "squared_hinge":
            active = slack > 0
            gradient, curvature = -2.0 * sign * slack * active, 2.0 * active
        elif loss == "hinge":
            # the hinge (slack + |slack|) / 2 with |.| Huber-smoothed within
            # w / 2 of 0; the curvature is that of its quadratic majoriser at
            # this slack (iteratively reweighted least squares), at most 1 / w
            w = HINGE_SMOOTHING
            gradient = -sign * (1.0 + np.clip(2.0 * slack / w, -1.0, 1.0)) / 2.0
            curvature = 1.0 / (2.0 * np.maximum(np.abs(slack), w / 2.0))
        else:
            raise ValueError(f"Unknown loss {loss!r}.")
    if curvature is None:
        curvature = np.ones_like(gradient)
    if gradient_clip is not None:
        clipped = np.abs(gradient) > gradient_clip
        gradient = np.clip(gradient, -gradient_clip, gradient_clip)
        curvature = np.where(clipped, 0.0, curvature)
    return gradient, curvature


def curvature_max(loss):
    """Largest curvature of one record's loss along one output's scores.

    (For the multinomial loss: the spectral norm of ``diag(p) - p p^T``.)
    """
    return {
        "log": 0.25,
        "multinomial": 0.5,
        "squared_hinge": 2.0,
        "hinge": 1.0 / HINGE_SMOOTHING,
        "squared_error": 1.0,
    }[loss]


def loss_bound(loss, n_outputs, gradient_clip=None):
    """The :class:`LossBound` of ``loss`` with ``n_outputs`` outputs.

    Raises
    ------
    ValueError
        For a loss with an unbounded gradient and no ``gradient_clip``.
    """
    k = n_outputs
    if loss == "multinomial":
        # p - onehot has L1 norm 2 (1 - p_y) and L2 norm at most sqrt(2);
        # diag(p) - p p^T is PSD with trace 1 - |p|^2 <= 1 - 1/K, which bounds
        # its Frobenius norm, and entries summing in absolute value to twice it.
        return LossBound((2.0, math.sqrt(2.0)), (2 * (1 - 1 / k), 1 - 1 / k))
    if loss == "log":  # |p - y| <= 1
        g = 1.0 if gradient_clip is None else min(1.0, gradient_clip)
        h = 0.25
    elif loss == "hinge":
        g, h = 1.0, 1.0 / HINGE_SMOOTHING
    elif loss in ("squared_hinge", "squared_error"):
        if gradient_clip is None:
            raise ValueError(
                f"The {loss} loss has an unbounded gradient; a gradient_clip "
                "is needed to release it with noise."
            )
        g, h = gradient_clip, 2.0 if loss == "squared_hinge" else 1.0
    else:
        raise ValueError(f"Unknown loss {loss!r}.")
    return LossBound((k * g, math.sqrt(k) * g), (k * h, math.sqrt(k) * h))
