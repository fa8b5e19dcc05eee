"""Exact pmfs of the integer noise and a chi-square test against them.

Shared by the statistical tests of the mechanisms and of distributed noise.
"""

import math

import numpy as np
from scipy import stats


def support(width):
    return np.arange(-width, width + 1)


def gaussian_pmf(sigma):
    """Exact discrete Gaussian pmf on a window holding all but ~e^-112 of it."""
    x = support(math.ceil(15 * sigma) + 10)
    w = np.exp(-(x.astype(float) ** 2) / (2 * sigma**2))
    return x, w / w.sum()


def laplace_pmf(scale):
    """Exact discrete Laplace pmf on a window holding all but ~e^-60 of it."""
    x = support(math.ceil(60 * scale) + 10)
    w = np.exp(-np.abs(x) / scale)
    return x, w / w.sum()


def chi_square_pvalue(samples, support, pmf):
    """Chi-square goodness of fit of integer samples against an exact pmf.

    Every integer whose expected count is at least 5 is its own bin; the two
    tails beyond them are pooled into one bin.
    """
    n = samples.size
    expected = n * pmf
    core = expected >= 5
    lo, hi = support[core].min(), support[core].max()
    counts = np.bincount(samples[(samples >= lo) & (samples <= hi)] - lo)
    counts = np.pad(counts, (0, hi - lo + 1 - counts.size))
    observed = np.append(counts, n - counts.sum())
    expected = np.append(expected[core], n - expected[core].sum())
    return stats.chisquare(observed, expected).pvalue
