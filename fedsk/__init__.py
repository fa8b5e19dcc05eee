"""fedsk: federated learning with differential privacy for scikit-learn.

Layers, each importing only the ones below it: ``FederatedEstimator`` ->
``fedsk.estimators`` (algorithms) -> ``Federation`` -> aggregation and
``Party`` -> ``fedsk.privacy``.
"""

from ._estimator import FederatedEstimator
from ._federation import Federation
from ._party import Party, PartyError
from .privacy import BudgetExceededError, PrivacyAccountant, PrivacyReport

__version__ = "0.1.0"

__all__ = [
    "BudgetExceededError",
    "FederatedEstimator",
    "Federation",
    "Party",
    "PartyError",
    "PrivacyAccountant",
    "PrivacyReport",
]
