"""The privacy engine: mechanisms, clipping, accounting and reports.

Noise and clipping live only here. Nothing in this package imports from the
rest of fedsk.
"""

from ._accountant import (
    BudgetLedger,
    PrivacyAccountant,
    charge,
    check_affordable,
    refund,
)
from ._clipping import Clipping, clip_row_norms, clip_to_bounds
from ._composition import composed_epsilon
from ._encoding import GridEncoding, budget_share
from ._errors import BudgetExceededError, PrivacyWarning, SeededNoiseWarning
from ._events import ReleaseEvent
from ._keys import derive_key, new_release_id, new_secret
from ._knorm import discrete_linf, discrete_linf_std
from ._mechanisms import (
    discrete_gaussian,
    discrete_laplace,
    discrete_laplace_std,
    gaussian_sigma,
    laplace_scale,
    zcdp_epsilon,
    zcdp_rho,
)
from ._random import noise_generator, noise_seed_sequence, spawn_seeds
from ._report import PrivacyReport
from .audit import (
    AuditResult,
    audit_outputs,
    audit_release,
    fit_mechanism,
    orthant_reduction,
    projection_reduction,
)

__all__ = [
    "AuditResult",
    "BudgetExceededError",
    "BudgetLedger",
    "Clipping",
    "GridEncoding",
    "PrivacyAccountant",
    "PrivacyReport",
    "PrivacyWarning",
    "ReleaseEvent",
    "SeededNoiseWarning",
    "audit_outputs",
    "audit_release",
    "budget_share",
    "charge",
    "check_affordable",
    "clip_row_norms",
    "clip_to_bounds",
    "composed_epsilon",
    "derive_key",
    "discrete_gaussian",
    "discrete_laplace",
    "discrete_laplace_std",
    "discrete_linf",
    "discrete_linf_std",
    "fit_mechanism",
    "gaussian_sigma",
    "laplace_scale",
    "new_release_id",
    "new_secret",
    "noise_generator",
    "noise_seed_sequence",
    "orthant_reduction",
    "projection_reduction",
    "refund",
    "spawn_seeds",
    "zcdp_epsilon",
    "zcdp_rho",
]
