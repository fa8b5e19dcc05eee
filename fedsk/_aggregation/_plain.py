"""Aggregation: how party contributions become one total.

Only plain sums for now: blockwise sums of exact statistics (for the trusted
aggregator, who then adds the noise once) and sums of integer-encoded noisy
vectors (for local noise).
"""

import numpy as np


def sum_blocks(contributions):
    """Sum per-party lists of blocks, block by block."""
    return [np.sum(parts, axis=0) for parts in zip(*contributions)]


def sum_encoded(contributions):
    """Sum per-party integer vectors."""
    return np.sum(contributions, axis=0, dtype=np.int64)
