"""Empirical privacy audits: a lower bound on epsilon from observed outputs.

A differential privacy claim says that for neighbouring datasets ``D`` and
``D'`` and every event ``E``, ``P[M(D) in E] <= e^epsilon P[M(D') in E] +
delta``. An audit runs the release many times on both datasets, counts how
often a threshold event ``{output > c}`` happens on each, and turns the
counts into a lower bound on the epsilon that the release really has,

    epsilon >= log((p_lower - delta) / q_upper),

where ``p_lower`` is a Clopper-Pearson lower confidence bound on the event's
probability on one dataset and ``q_upper`` an upper bound on the other's.
If that lower bound exceeds the claimed epsilon, the claim is false (at the
stated confidence). A bound at or below the claim proves nothing by itself:
it is evidence only when the same audit catches a release with slightly
less noise (a power control).

The event is chosen honestly: either fixed before the trials (a list of
candidate thresholds, with a Bonferroni correction over every candidate
event), or searched on a first part of the trials and evaluated on the rest.

References
----------
.. [1] M. Jagielski, J. Ullman, A. Oprea, "Auditing differentially private
   machine learning: how private is private SGD?", NeurIPS 2020.
.. [2] M. Nasr, S. Song, A. Thakurta, N. Papernot, N. Carlini, "Adversary
   instantiation: lower bounds for differentially private machine
   learning", IEEE S&P 2021.
.. [3] Z. Ding, Y. Wang, G. Wang, D. Zhang, D. Kifer, "Detecting violations
   of differential privacy", CCS 2018.
.. [4] C. J. Clopper, E. S. Pearson, "The use of confidence or fiducial
   limits illustrated in the case of the binomial", Biometrika 1934.
"""

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.base import clone

ALTERNATIVES = ("two-sided", "greater", "less")

# Most candidate thresholds tried when searching on the selection trials.
_MAX_CANDIDATES = 512


@dataclass(frozen=True)
class AuditResult:
    """The outcome of an empirical privacy audit.

    Attributes
    ----------
    epsilon_lower : float
        Lower confidence bound on the epsilon of the release (``>= 0``),
        at ``confidence``: with probability at least ``confidence`` over the
        trials, the release's true epsilon (at ``delta``) is at least this.
    confidence : float
        Joint confidence of the bound (Clopper-Pearson, both probabilities,
        corrected for every event that was tried on the trials used).
    delta : float
        The delta subtracted, as in ``log((p_lower - delta) / q_upper)``.
    event : str
        The event whose counts give the bound, e.g. ``"output > 3.5"``.
    threshold : float
        The threshold ``c`` of that event.
    favoured : {"dataset", "neighbour"}
        Which of the two datasets makes the event more likely (the numerator
        of the ratio).
    counts : tuple of (int, int)
        How often the event happened on the favoured dataset and on the
        other one, in the trials used for the bound.
    n_trials : tuple of (int, int)
        Trials of each used for the bound (after the selection split).
    p_lower, q_upper : float
        Lower confidence bound on the event's probability on the favoured
        dataset; upper bound on the other.
    n_events : int
        Number of events the confidence was shared over (Bonferroni): 1 when
        the event was searched on separate selection trials.
    claimed_epsilon : float or None
        The epsilon the release claims, when given.
    """

    epsilon_lower: float
    confidence: float
    delta: float
    event: str
    threshold: float
    favoured: str
    counts: tuple
    n_trials: tuple
    p_lower: float
    q_upper: float
    n_events: int
    claimed_epsilon: float | None = None

    @property
    def exceeds_claim(self):
        """True when the lower bound shows the claim is false (None: no claim)."""
        if self.claimed_epsilon is None:
            return None
        return self.epsilon_lower > self.claimed_epsilon


def audit_release(
    mechanism: Callable,
    dataset,
    neighbour,
    *,
    n_trials: int,
    confidence: float = 0.95,
    delta: float = 0.0,
    thresholds=None,
    alternative: str = "two-sided",
    selection_fraction: float = 0.5,
    vectorized: bool = False,
    claimed_epsilon: float | None = None,
    random_state=None,
) -> AuditResult:
    """Lower-bound the epsilon of a release from repeated runs on neighbours.

    Parameters
    ----------
    mechanism : callable
        The release, reduced to one number: ``mechanism(dataset, rng) ->
        float``, drawing all its randomness from the
        ``numpy.random.Generator`` ``rng``. With ``vectorized=True``,
        ``mechanism(dataset, rng, n) -> ndarray of shape (n,)``, ``n``
        independent runs at once. See :func:`orthant_reduction`,
        :func:`projection_reduction` and :func:`fit_mechanism` to reduce a
        vector release or a whole fit to one number.
    dataset, neighbour : object
        Two neighbouring datasets (under the claim's unit of privacy: e.g.
        one record added), passed to ``mechanism`` as they are.
    n_trials : int
        Runs on each dataset, ``>= 2``. The bound cannot exceed about
        ``log(n_trials)``; 10^5 runs resolve epsilon to a few hundredths
        when the event has probability near 1/2.
    confidence : float, default=0.95
        Confidence of the lower bound, in (0, 1).
    delta : float, default=0.0
        The claim's delta, in [0, 1).
    thresholds : array-like of float or None, default=None
        Candidate thresholds ``c`` of the events ``{output > c}``, fixed
        before the trials: every trial is used, and the confidence is
        shared (Bonferroni) over every candidate event. ``None`` searches
        the thresholds on the first ``selection_fraction`` of the trials and
        bounds epsilon with the chosen event on the others.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        Which events are tried: ``"greater"``, only ``{output > c}`` made
        more likely by ``dataset``; ``"less"``, only ``{output <= c}`` made
        more likely by ``dataset``; ``"two-sided"``, both events with either
        dataset favoured (four events per threshold).
    selection_fraction : float, default=0.5
        Share of the trials used to choose the event when ``thresholds`` is
        None, in (0, 1).
    vectorized : bool, default=False
        Whether ``mechanism`` takes a third argument, the number of runs.
    claimed_epsilon : float or None, default=None
        The claim under audit, stored in the result (see
        :attr:`AuditResult.exceeds_claim`).
    random_state : None, int or numpy.random.Generator, default=None
        Seed of the trials. ``None`` uses fresh operating-system entropy.

    Returns
    -------
    result : AuditResult

    See Also
    --------
    audit_outputs : the same bound from outputs already drawn.

    Notes
    -----
    A valid lower bound only needs the trials to be independent runs of the
    release: the event is either fixed in advance (with the confidence split
    over all candidates) or chosen on trials that are not used for the
    bound, as in [3]_. The two Clopper-Pearson bounds [4]_ each hold with
    probability ``1 - (1 - confidence) / (2 m)`` for ``m`` candidate
    events, so all of them hold together with probability ``confidence``.
    For the discrete Laplace mechanism, the event "the output is at or
    beyond the larger of the two exact values" has a likelihood ratio of
    exactly ``e^epsilon``, so its audit is tight; events of other
    mechanisms are looser (the Gaussian's at small ``delta`` especially).

    References
    ----------
    .. [1] M. Jagielski, J. Ullman, A. Oprea, "Auditing differentially
       private machine learning: how private is private SGD?", NeurIPS 2020.
    .. [2] M. Nasr, S. Song, A. Thakurta, N. Papernot, N. Carlini,
       "Adversary instantiation: lower bounds for differentially private
       machine learning", IEEE S&P 2021.
    .. [3] Z. Ding, Y. Wang, G. Wang, D. Zhang, D. Kifer, "Detecting
       violations of differential privacy", CCS 2018.
    .. [4] C. J. Clopper, E. S. Pearson, "The use of confidence or fiducial
       limits illustrated in the case of the binomial", Biometrika 1934.

    Examples
    --------
    A count (sensitivity 1) that claims epsilon = 1 but adds discrete Laplace
    noise of scale 0.5 instead of 1; its true epsilon is 2. The event
    "output > 10.5", at the larger exact count, catches it:

    >>> import numpy as np
    >>> from fedsk.privacy import audit_release, discrete_laplace
    >>> def count(rows, rng, n):
    ...     return len(rows) + discrete_laplace(0.5, n, rng)
    >>> result = audit_release(
    ...     count, [0] * 11, [0] * 10, n_trials=100_000, vectorized=True,
    ...     thresholds=[10.5], alternative="greater", claimed_epsilon=1.0,
    ...     random_state=0,
    ... )
    >>> result.exceeds_claim, round(result.epsilon_lower, 1)
    (True, 2.0)
    """
    n_trials = _check_trials(n_trials)
    seeds = np.random.SeedSequence(_entropy(random_state)).spawn(2)
    outputs = [
        _run(mechanism, data, np.random.default_rng(seed), n_trials, vectorized)
        for data, seed in zip((dataset, neighbour), seeds)
    ]
    return audit_outputs(
        *outputs,
        confidence=confidence,
        delta=delta,
        thresholds=thresholds,
        alternative=alternative,
        selection_fraction=selection_fraction,
        claimed_epsilon=claimed_epsilon,
    )


def audit_outputs(
    outputs,
    neighbour_outputs,
    *,
    confidence: float = 0.95,
    delta: float = 0.0,
    thresholds=None,
    alternative: str = "two-sided",
    selection_fraction: float = 0.5,
    claimed_epsilon: float | None = None,
) -> AuditResult:
    """Lower-bound epsilon from outputs already drawn on two neighbours.

    Parameters
    ----------
    outputs : array-like of shape (n_trials,)
        Independent outputs of the release on ``dataset``.
    neighbour_outputs : array-like of shape (n_neighbour_trials,)
        Independent outputs on the neighbouring dataset.
    confidence, delta, thresholds, alternative, selection_fraction, \
claimed_epsilon
        As in :func:`audit_release`. With ``thresholds=None`` the first
        ``selection_fraction`` of each array chooses the event and the rest
        bounds epsilon.

    Returns
    -------
    result : AuditResult
    """
    a = _outputs("outputs", outputs)
    b = _outputs("neighbour_outputs", neighbour_outputs)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}.")
    if not 0 <= delta < 1:
        raise ValueError(f"delta must be in [0, 1); got {delta!r}.")
    if alternative not in ALTERNATIVES:
        raise ValueError(
            f"alternative must be one of {ALTERNATIVES}; got {alternative!r}."
        )
    alpha = 1.0 - confidence
    if thresholds is None:
        if not 0 < selection_fraction < 1:
            raise ValueError(
                f"selection_fraction must be in (0, 1); got {selection_fraction!r}."
            )
        cut_a = _cut("outputs", a.size, selection_fraction)
        cut_b = _cut("neighbour_outputs", b.size, selection_fraction)
        sel_a, sel_b = a[:cut_a], b[:cut_b]
        candidates = _candidates(np.concatenate([sel_a, sel_b]))
        # choose the event with the best bound on the selection trials ...
        best = max(
            _events(sel_a, sel_b, candidates, alternative, alpha, delta),
            key=lambda e: e[0],
        )
        threshold, kind, favoured = best[1:4]
        # ... and bound epsilon with it, alone, on the trials left
        (result,) = _events(
            a[cut_a:],
            b[cut_b:],
            np.array([threshold]),
            alternative,
            alpha,
            delta,
            only=(kind, favoured),
        )
        n_events = 1
    else:
        candidates = np.unique(np.asarray(thresholds, dtype=float).ravel())
        if candidates.size == 0 or not np.all(np.isfinite(candidates)):
            raise ValueError(
                "thresholds must be a non-empty list of finite numbers (or None "
                f"to search them); got {thresholds!r}."
            )
        n_events = candidates.size * (4 if alternative == "two-sided" else 1)
        result = max(
            _events(a, b, candidates, alternative, alpha / n_events, delta),
            key=lambda e: e[0],
        )
    epsilon, threshold, kind, favoured, counts, sizes, p_lower, q_upper = result
    return AuditResult(
        epsilon_lower=epsilon,
        confidence=confidence,
        delta=delta,
        event=f"output {'>' if kind == 'above' else '<='} {threshold:.17g}",
        threshold=float(threshold),
        favoured=favoured,
        counts=counts,
        n_trials=sizes,
        p_lower=p_lower,
        q_upper=q_upper,
        n_events=n_events,
        claimed_epsilon=claimed_epsilon,
    )


def orthant_reduction(release, neighbour_release):
    """Reduce a vector release to the number that audits discrete Laplace tightly.

    Parameters
    ----------
    release, neighbour_release : array-like of shape (n_coords,)
        The exact (noise-free, encoded) outputs on the two datasets.

    Returns
    -------
    reduce : callable
        ``reduce(z)`` maps noisy outputs of shape (..., n_coords) to
        ``min_i s_i (z_i - release_i)`` over the coordinates where the two
        exact outputs differ, with ``s_i`` the sign of
        ``release_i - neighbour_release_i``: how far the output lies beyond
        ``release``, away from ``neighbour_release``, in its worst
        coordinate.

    Notes
    -----
    With independent discrete Laplace noise of scale ``t`` on every
    coordinate, the event ``reduce(z) >= 0`` (``> -0.5`` on integers) has
    probability exactly ``exp(|release - neighbour_release|_1 / t)`` times
    larger on ``release``'s dataset: it is the region where the likelihood
    ratio is largest, so auditing with it (``alternative="greater"``) is
    tight. Its probability is about ``2**-k`` for ``k`` differing
    coordinates, so few differing coordinates audit best.
    """
    center, sign = _difference(release, neighbour_release)
    differ = sign != 0
    center, sign = center[differ], sign[differ]

    def reduce(z):
        return np.min(sign * (np.asarray(z)[..., differ] - center), axis=-1)

    return reduce


def projection_reduction(release, neighbour_release):
    """Reduce a vector release to its projection on the neighbours' difference.

    Parameters
    ----------
    release, neighbour_release : array-like of shape (n_coords,)
        The exact (noise-free, encoded) outputs on the two datasets.

    Returns
    -------
    reduce : callable
        ``reduce(z)`` maps outputs of shape (..., n_coords) to
        ``(z - neighbour_release) . u`` with ``u`` the unit vector from
        ``neighbour_release`` to ``release``.

    Notes
    -----
    For independent Gaussian noise this is the likelihood-ratio statistic:
    a one-dimensional Gaussian shifted by the L2 distance of the two exact
    outputs, so ``alternative="greater"`` events audit it best.
    """
    center, _ = _difference(release, neighbour_release)
    base = np.asarray(neighbour_release, dtype=float)
    direction = center - base
    direction /= np.linalg.norm(direction)

    def reduce(z):
        return (np.asarray(z, dtype=float) - base) @ direction

    return reduce


def fit_mechanism(estimator, output: Callable) -> Callable:
    """Reduce a whole ``fit`` to one number, as a mechanism to audit.

    Parameters
    ----------
    estimator : estimator object
        An unfitted estimator (e.g. a ``FederatedEstimator``) with a
        ``random_state`` parameter that seeds its noise.
    output : callable
        ``output(fitted) -> float``, e.g.
        ``lambda m: m.estimator_.coef_[0]``.

    Returns
    -------
    mechanism : callable
        ``mechanism(dataset, rng) -> float``: clones ``estimator``, sets
        ``random_state`` to an integer drawn from ``rng``, calls
        ``fit(**dataset)`` (``dataset`` is a dict of ``fit`` arguments, such
        as ``{"X": X, "y": y, "parties": parties}``) and returns
        ``output`` of the fitted clone.

    Notes
    -----
    Each trial is a full fit, so audits of fits take seconds per thousand
    trials; a seeded fit emits fedsk's ``SeededNoiseWarning`` (seeding only
    makes the trials reproducible, the noise distribution is unchanged).
    """

    def mechanism(dataset, rng):
        model = clone(estimator).set_params(random_state=int(rng.integers(0, 2**32)))
        return float(output(model.fit(**dataset)))

    return mechanism


# -- internals ----------------------------------------------------------------


def _entropy(random_state):
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    raise ValueError(
        f"random_state must be None, an int or a numpy Generator; got {random_state!r}."
    )


def _check_trials(n_trials):
    if not isinstance(n_trials, numbers.Integral) or n_trials < 2:
        raise ValueError(f"n_trials must be an integer >= 2; got {n_trials!r}.")
    return int(n_trials)


def _run(mechanism, data, rng, n_trials, vectorized):
    if vectorized:
        out = np.asarray(mechanism(data, rng, n_trials), dtype=float)
        if out.shape != (n_trials,):
            raise ValueError(
                f"A vectorized mechanism must return an array of shape "
                f"({n_trials},); got shape {out.shape}."
            )
        return out
    return np.array([float(mechanism(data, rng)) for _ in range(n_trials)])


def _outputs(name, values):
    out = np.asarray(values, dtype=float)
    if out.ndim != 1 or out.size < 2:
        raise ValueError(
            f"{name} must be a 1-d array of at least 2 outputs (reduce a vector "
            f"release to one number first); got shape {out.shape}."
        )
    if np.isnan(out).any():
        raise ValueError(f"{name} contains NaN; a release must output numbers.")
    return out


def _cut(name, size, fraction):
    cut = int(size * fraction)
    if not 1 <= cut < size:
        raise ValueError(
            f"{name} has {size} trials: too few to split {fraction} of them for "
            "choosing the event and keep the rest for the bound."
        )
    return cut


def _candidates(pooled):
    """Midpoints between the distinct pooled outputs (at most _MAX_CANDIDATES)."""
    values = np.unique(pooled)
    if values.size > _MAX_CANDIDATES + 1:
        values = np.unique(np.quantile(pooled, np.linspace(0, 1, _MAX_CANDIDATES)))
    if values.size == 1:
        return values
    return (values[:-1] + values[1:]) / 2


def _difference(release, neighbour_release):
    center = np.asarray(release, dtype=float).ravel()
    other = np.asarray(neighbour_release, dtype=float).ravel()
    if center.shape != other.shape:
        raise ValueError(
            f"release and neighbour_release must have the same shape; got "
            f"{center.shape} and {other.shape}."
        )
    sign = np.sign(center - other)
    if not sign.any():
        raise ValueError(
            "release and neighbour_release are equal: there is nothing to audit "
            "(the neighbours do not change the release)."
        )
    return center, sign


def _clopper_pearson(k, n, alpha):
    """One-sided Clopper-Pearson (lower, upper) bounds, each at level alpha."""
    k, n = np.asarray(k, dtype=float), float(n)
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(alpha, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - alpha, k + 1, n - k), 1.0)
    return lower, upper


def _epsilon(p_lower, q_upper, delta):
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.log((p_lower - delta) / q_upper)
    return np.where(p_lower > delta, np.maximum(eps, 0.0), 0.0)


def _events(a, b, thresholds, alternative, alpha, delta, only=None):
    """Every candidate event's bound: (eps, c, kind, favoured, counts, ...).

    ``alpha`` is the level of the pair of one-sided bounds of one event.
    """
    sorted_a, sorted_b = np.sort(a), np.sort(b)
    above_a = a.size - np.searchsorted(sorted_a, thresholds, side="right")
    above_b = b.size - np.searchsorted(sorted_b, thresholds, side="right")
    counts = {
        ("above", "dataset"): (above_a, a.size, above_b, b.size),
        ("above", "neighbour"): (above_b, b.size, above_a, a.size),
        ("below", "dataset"): (a.size - above_a, a.size, b.size - above_b, b.size),
        ("below", "neighbour"): (b.size - above_b, b.size, a.size - above_a, a.size),
    }
    kinds = {
        "greater": [("above", "dataset")],
        "less": [("below", "dataset")],
        "two-sided": list(counts),
    }[alternative]
    if only is not None:
        kinds = [only]
    results = []
    for kind, favoured in kinds:
        k_num, n_num, k_den, n_den = counts[kind, favoured]
        p_lower, _ = _clopper_pearson(k_num, n_num, alpha / 2)
        _, q_upper = _clopper_pearson(k_den, n_den, alpha / 2)
        eps = _epsilon(p_lower, q_upper, delta)
        for i, c in enumerate(thresholds):
            results.append(
                (
                    float(eps[i]),
                    float(c),
                    kind,
                    favoured,
                    (int(k_num[i]), int(k_den[i])),
                    (n_num, n_den),
                    float(p_lower[i]),
                    float(q_upper[i]),
                )
            )
    return results
