"""The catalogue of statistics a party will compute on its rows.

This is the privacy boundary. Estimator code names a statistic from this
catalogue; the party computes it on its own clipped rows and only the result
(noised, unless epsilon is infinite) leaves. Each statistic is a list of
blocks, and says for every block how far one record can move it (its L1 and
L2 sensitivity), given the public clipping region. Nothing else is ever
computed on a party's rows, so auditing this package audits every release
path. One module per family of statistics; ``STATISTICS`` joins them.
"""

from ._base import Statistic
from ._clipping import CLIPPING_STATISTICS
from ._core import CORE_STATISTICS
from ._trees import TREE_STATISTICS

STATISTICS = {
    **CORE_STATISTICS,
    **TREE_STATISTICS,
    **CLIPPING_STATISTICS,
}

__all__ = ["STATISTICS", "Statistic"]
