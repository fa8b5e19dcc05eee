"""How close a vector on the 2^64 ring is to a plain one.

Shared by the tests that intercept what the coordinator receives in the
secure modes (in process and over the network).
"""

import numpy as np


def close_fraction(observed, plain, within=2**40):
    """Share of coordinates where ``observed`` is within ``within`` of ``plain``.

    Differences are taken modulo 2^64; a uniform mask lands that close with
    probability 2^-23 per coordinate, a forgotten or low-bit mask always.
    Vectors of different shapes share no coordinate: 0.
    """
    observed, plain = np.asarray(observed), np.asarray(plain)
    if observed.shape != plain.shape:
        return 0.0
    diff = observed.astype(np.uint64) - plain.astype(np.int64).view(np.uint64)
    return float(np.mean((diff < within) | (diff > np.uint64(2**64 - within))))
