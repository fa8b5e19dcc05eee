"""Aggregation: how party contributions become one total.

Plain sums (:mod:`._plain`) serve the trusted aggregator and local noise.
Without a trusted aggregator the encoded, noised statistics are summed by a
protocol that reveals only the total: pairwise masking through a
coordinator (:mod:`._masking`) or additive secret sharing among peers
(:mod:`._sharing`). Each protocol has a party side (``*_step``, run in the
party's own task with its own secret) and a coordinator or relay side
(``run_*``, which only moves messages and sums). Every protocol message goes
through a :class:`Transcript`.
"""

from ._masking import SecureAggregationAbort, masked_sum, masking_step, run_masking
from ._messages import COORDINATOR, EVERYONE, Message, Transcript
from ._plain import sum_blocks, sum_encoded
from ._record import AnsweredReleases
from ._sharing import run_sharing, shared_sum, sharing_step

__all__ = [
    "AnsweredReleases",
    "COORDINATOR",
    "EVERYONE",
    "Message",
    "SecureAggregationAbort",
    "Transcript",
    "masked_sum",
    "masking_step",
    "run_masking",
    "run_sharing",
    "shared_sum",
    "sharing_step",
    "sum_blocks",
    "sum_encoded",
]
