"""Warnings a fit gives about what the user may not have meant.

- A plain scikit-learn step that learns from data, placed before a
  federated step in a Pipeline, is fitted on the pooled rows: in a real
  federation nobody holds them.
- Clipping that changes most rows ruins a model silently; at epsilon = inf
  it costs no privacy to count them, so the fit warns.
"""

import inspect
import warnings

from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from .privacy import Clipping, PrivacyWarning

# Share of the rows changed by clipping above which a noise-free fit warns.
CLIPPED_SHARE = 0.5


def warn_if_pooled_steps_before(estimator):
    """Warn if a Pipeline being fitted has a plain learning step before
    ``estimator`` (found on the call stack: Pipeline passes no such hint)."""
    frame = inspect.currentframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Pipeline):
            steps = [step for _, step in owner.steps]
            position = next((i for i, s in enumerate(steps) if s is estimator), None)
            if position is not None:
                pooled = [
                    type(step).__name__
                    for step in steps[:position]
                    if step not in (None, "passthrough")
                    and type(step).__name__ != type(estimator).__name__
                    and get_tags(step).requires_fit
                ]
                if pooled:
                    warnings.warn(
                        f"Pipeline steps {pooled} come before a federated step but "
                        "are plain scikit-learn estimators: they are fitted on the "
                        "pooled rows, which no party would hand over in a real "
                        "federation. Wrap them in FederatedEstimator too.",
                        PrivacyWarning,
                        stacklevel=2,
                    )
                return
        frame = frame.f_back


def warn_if_clipping_changes_most_rows(session):
    """At epsilon = inf, warn if the fit's clipping changes most rows."""
    counts = session.release(
        "clipped_rows", clipping=Clipping(), region=session.clipping
    ).blocks[0]
    changed, y_changed, n_rows = (float(c) for c in counts)
    if n_rows and max(changed, y_changed) > CLIPPED_SHARE * n_rows:
        what = "bounds or data_norm" if changed >= y_changed else "y_bounds"
        share = max(changed, y_changed) / n_rows
        warnings.warn(
            f"Clipping into the given {what} changes {share:.0%} "
            "of the rows: check that they describe the data. (Counted only "
            "because epsilon=inf, where it costs no privacy.)",
            PrivacyWarning,
            stacklevel=3,
        )
