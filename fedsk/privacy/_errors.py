"""Exceptions and warnings of the privacy engine.

Privacy warnings have their own classes so that a user can filter them
precisely; fedsk never changes the user's warning filters.
"""


class BudgetExceededError(ValueError):
    """A release was refused because it would exceed a privacy budget.

    Raised before any noise is drawn, so nothing was released and nothing
    was charged for the refused request.
    """


class PrivacyWarning(UserWarning):
    """Something weakens or qualifies the privacy guarantee."""


class SeededNoiseWarning(PrivacyWarning):
    """Noise was drawn from a user-seeded generator.

    Seeded noise is reproducible, so it is for simulation only: anybody who
    knows the seed can subtract the noise.
    """
