"""Integers modulo 2^64: the ring in which encoded statistics are summed.

Encoded statistics are int64; their sum, bounded by the overflow check of
the federation, lies in (-2^63, 2^63), so summing their two's complement
images modulo 2^64 and reading the result back as int64 is exact.
"""

import os

import numpy as np


def to_ring(values):
    """int64 values as elements of Z / 2^64 (uint64, wrapping arithmetic)."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def from_ring(values):
    """Elements of Z / 2^64 back to int64 (two's complement)."""
    return np.asarray(values, dtype=np.uint64).view(np.int64)


def uniform_ring(size):
    """Uniform elements of Z / 2^64 from the operating system's CSPRNG."""
    return np.frombuffer(os.urandom(8 * size), dtype=np.uint64).copy()


def ring_sum(vectors):
    """Sum of uint64 vectors modulo 2^64."""
    total = np.zeros_like(vectors[0])
    for vector in vectors:
        total += vector  # uint64 addition wraps modulo 2^64
    return total
