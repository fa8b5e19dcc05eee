"""How releases about the same records add up (sequential composition)."""

import math

from ._mechanisms import zcdp_epsilon

# Below this share of a budget, what is left of it after a fit is rounding
# in its planned split, shown as nothing left (never used to accept a charge).
DISPLAY_TOLERANCE = 1e-9


def composed_epsilon(events, delta):
    """Epsilon of a sequence of releases on the same records, at ``delta``.

    Parameters
    ----------
    events : sequence of ReleaseEvent
        Releases about the same records (sequential composition).
    delta : float
        The delta at which to state the total.

    Returns
    -------
    epsilon : float
        The smallest of three valid bounds: the basic sum of the events'
        ``(epsilon, delta)`` (when their deltas fit in ``delta``); pure
        epsilons summed plus the zCDP total of the Gaussian events; and the
        zCDP total of all events (a pure ``eps`` release is
        ``eps^2 / 2``-zCDP). zCDP totals are converted through
        dp-accounting's Renyi accountant.

    References
    ----------
    .. [1] M. Bun, T. Steinke, "Concentrated differential privacy:
       simplifications, extensions, and lower bounds", TCC 2016.
    """
    if not events:
        return 0.0
    pure_eps = math.fsum(e.epsilon for e in events if e.pure)
    gaussian = [e for e in events if not e.pure]
    candidates = []
    if math.fsum(e.delta for e in gaussian) <= delta:
        candidates.append(pure_eps + math.fsum(e.epsilon for e in gaussian))
    if 0 < delta < 1 and math.isfinite(pure_eps):
        rho = math.fsum(e.rho for e in gaussian)
        if gaussian:
            candidates.append(pure_eps + zcdp_epsilon(rho, delta))
        all_rho = rho + math.fsum(e.epsilon**2 / 2 for e in events if e.pure)
        candidates.append(zcdp_epsilon(all_rho, delta))
    return min(candidates, default=math.inf)
