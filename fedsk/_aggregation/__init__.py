"""Aggregation: how party contributions become one total.

Plain sums (:mod:`._plain`) serve the trusted aggregator and local noise.
Without a trusted aggregator the encoded, noised statistics are summed by a
protocol that reveals only the total: pairwise masking through a
coordinator (:mod:`._masking`), additive secret sharing among peers
(:mod:`._sharing`), or Paillier encryption (:mod:`._paillier`). Every
protocol message goes through a :class:`Transcript`.
"""

from ._masking import SecureAggregationAbort, masked_sum
from ._messages import COORDINATOR, EVERYONE, Message, Transcript
from ._paillier import paillier_sum
from ._plain import sum_blocks, sum_encoded
from ._sharing import shared_sum

__all__ = [
    "COORDINATOR",
    "EVERYONE",
    "Message",
    "SecureAggregationAbort",
    "Transcript",
    "masked_sum",
    "paillier_sum",
    "shared_sum",
    "sum_blocks",
    "sum_encoded",
]
