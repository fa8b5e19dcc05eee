"""How a tree model splits its budget, and the noise of releases to come.

Fractions are of the fit's epsilon (pure DP) or of its zCDP rho (``delta >
0``), so releases compose to exactly the budget. Every model spends
``MARGINAL_SHARE`` on the root's fine histogram first
(:func:`._binning.release_marginals`); its noisy row count is the only
data-dependent input of the plan of the rest, which is fixed before the
next release and spends the whole remainder (a share a model did not need,
such as a level with no node to split, goes to the releases after it).
"""

import math
from dataclasses import dataclass

from ..._statistics import STATISTICS

MARGINAL_SHARE = 0.1
# Share of what follows the marginals (trees), or of each boosting
# iteration, for the leaves; the rest goes to the levels equally.
LEAF_SHARE = 0.3


@dataclass(frozen=True)
class NoiseScale:
    """Noise of a planned release, scaled from a release the federation made.

    The federation calibrates each block's noise in proportion to its
    sensitivity (L1 for pure DP, L2 with ``delta > 0``) and to ``1 /
    epsilon`` (or ``1 / sqrt(rho)``); a planned release with the same
    blocks, sensitivities ``s`` and budget fraction ``f`` gets about
    ``std * (s / s0) * (f0 / f)`` (or ``* sqrt(f0 / f)``). The grid's
    rounding adds a term that does not scale; it is small.

    Parameters
    ----------
    stds : list of float
        ``Release.noise_std`` of the release made.
    sensitivity : list of (float, float)
        Its blocks' sensitivities, from the statistic catalogue.
    fraction : float
        Its share of the budget.
    pure : bool
        Pure DP (``delta == 0``).
    """

    stds: list
    sensitivity: list
    fraction: float
    pure: bool

    @classmethod
    def of(cls, session, stds, fraction, clipping, statistic, **params):
        """The scale of a release made with ``params``; ``stds`` its noise."""
        spec = STATISTICS[statistic]
        sensitivity = spec.sensitivity(clipping, session.n_features, **params)
        return cls(list(stds), sensitivity, fraction, session.delta == 0)

    def stds_of(self, session, fraction, clipping, statistic, **params):
        """Per block, the noise standard deviation of a planned release."""
        spec = STATISTICS[statistic]
        planned = spec.sensitivity(clipping, session.n_features, **params)
        out = []
        for std, (l1, l2), (m1, m2) in zip(self.stds, self.sensitivity, planned):
            if self.pure:
                out.append(std * (m1 / l1) * (self.fraction / fraction))
            else:
                out.append(std * (m2 / l2) * math.sqrt(self.fraction / fraction))
        return out


def level_fraction(remaining, n_levels):
    """Share of one greedy level when ``n_levels`` are planned."""
    return remaining * (1.0 - LEAF_SHARE) / n_levels
