"""The federation: parties, and the one way to get anything from them.

:meth:`Federation.release` is the boundary. It calibrates the noise from the
statistic's public sensitivity, charges every ledger the release touches
(all or nothing, before any noise is drawn), runs the party-side work through
joblib, aggregates, and returns only noisy totals.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.parallel import Parallel, delayed

from ._aggregation import sum_blocks, sum_encoded
from ._party import Party, PartyError, PartyFailure, guarded_party_release
from ._statistics import STATISTICS
from .privacy import (
    GridEncoding,
    PrivacyReport,
    ReleaseEvent,
    charge,
    noise_generator,
    refund,
    spawn_seeds,
)

TRUST_MODELS = ("central", "local")


@dataclass(frozen=True)
class Request:
    """What an estimator asks the federation for, all of it public.

    Parameters
    ----------
    statistic : str
        Name in the statistic catalogue.
    epsilon, delta, rho : float
        The guarantee of this release (``rho`` is None for pure DP).
    clipping : Clipping
        Region the rows are clipped into.
    estimator : str
        Name of the fit, for the ledgers.
    trust : {"central", "local"}
        Who adds the noise.
    params : dict
        Public parameters of the statistic (e.g. ``classes``).
    """

    statistic: str
    epsilon: float
    delta: float
    rho: float | None
    clipping: object
    estimator: str
    trust: str = "central"
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """The aggregated result of a request.

    Attributes
    ----------
    blocks : list of ndarray
        The noisy totals, block by block.
    noise_std : list of float
        Public standard deviation of the noise on each block (0 without
        noise), for estimators to regularise against.
    """

    blocks: list
    noise_std: list


class Federation:
    """Parties whose rows stay with them, and the statistics they release.

    Parameters
    ----------
    parties : list of Party
        Parties with distinct names and the same features.
    n_jobs : int, default=None
        Number of joblib workers for party-side work. The backend is chosen
        with ``joblib.parallel_config`` (loky, threading, dask, ray, ...).

    Attributes
    ----------
    n_features_in_ : int
        Number of features, shared by all parties.
    feature_names_in_ : ndarray of str or None
        Column names, when the parties' data were DataFrames.
    """

    def __init__(self, parties, *, n_jobs=None):
        self.parties = list(parties)
        self.n_jobs = n_jobs
        if not self.parties:
            raise ValueError("A Federation needs at least one party.")
        names = [p.name for p in self.parties]
        if len(set(names)) != len(names):
            raise ValueError(f"Party names must be distinct; got {names}.")
        first = self.parties[0]
        for party in self.parties[1:]:
            if party.n_features != first.n_features:
                raise ValueError(
                    f"Party {party.name!r} has {party.n_features} features but "
                    f"party {first.name!r} has {first.n_features}."
                )
            if not _same_names(party.feature_names, first.feature_names):
                raise ValueError(
                    f"Party {party.name!r} has different feature names from "
                    f"party {first.name!r}."
                )
        self.n_features_in_ = first.n_features
        self.feature_names_in_ = first.feature_names

    @classmethod
    def from_labels(cls, X, y, parties, *, accountant=None, n_jobs=None):
        """Simulate a federation from pooled rows and a party label per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or None
        parties : array-like of shape (n_samples,) or None
            The party of each row. ``None`` puts every row in one party.
        accountant : PrivacyAccountant, default=None
            Where the simulated parties' ledgers live (shared across fits).
            ``None`` gives each party a fresh ledger with no ceiling.
        n_jobs : int, default=None
        """
        if not hasattr(X, "iloc"):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        n_samples = X.shape[0]
        if y is not None and _num_rows(y) != n_samples:
            raise ValueError(
                f"X has {n_samples} rows but y has {_num_rows(y)}; they must match."
            )
        labels = (
            np.zeros(n_samples, dtype=int) if parties is None else np.asarray(parties)
        )
        if labels.shape != (n_samples,):
            raise ValueError(
                f"parties must have one label per row: expected shape "
                f"({n_samples},), got {labels.shape}."
            )
        members = []
        for label in _unique_in_order(labels):
            rows = np.flatnonzero(labels == label)
            name = "all" if parties is None else str(label)
            party = Party(name, _take(X, rows), None if y is None else _take(y, rows))
            if accountant is not None:
                party.ledger = accountant.ledger(name)
            members.append(party)
        return cls(members, n_jobs=n_jobs)

    @property
    def party_names(self):
        return [p.name for p in self.parties]

    @property
    def n_parties(self):
        return len(self.parties)

    def label_sets(self):
        """Each party's set of target labels.

        Label sets are information about the parties' rows; estimators use
        them only when the user declared no classes, and warn when they do.
        """
        return {p.name: np.unique(p.y) for p in self.parties}

    def require_targets(self, *, numeric):
        """Check, on each party's side, that it holds targets.

        With ``numeric``, they must also be finite numbers; numeric targets
        stored as objects are converted to float, as scikit-learn regressors
        do. Errors name the party.
        """
        for party in self.parties:
            party.require_targets(numeric=numeric)

    def release(self, request, *, seed_sequence, fit_ledger=None):
        """Release one noisy statistic aggregated over all parties.

        Parameters
        ----------
        request : Request
            What to compute, with which guarantee.
        seed_sequence : numpy.random.SeedSequence or None
            Root of this fit's noise; fresh seeds are spawned for every
            release and party. May be None when epsilon is infinite.
        fit_ledger : BudgetLedger, default=None
            The fit's own budget, charged once per release (parties are
            disjoint, so they compose in parallel).

        Returns
        -------
        release : Release

        Raises
        ------
        BudgetExceededError
            Before any noise is drawn, when any party or the fit would
            exceed its budget.
        PartyError
            When a party's side fails; the message names it. Nothing is
            released, and the charge is taken back from every ledger whose
            party did not hand over a noisy value (with local noise, the
            parties that did stay charged).
        """
        if request.trust not in TRUST_MODELS:
            raise ValueError(
                f"trust must be one of {TRUST_MODELS}; got {request.trust!r}."
            )
        statistic = STATISTICS[request.statistic]
        encoding = None
        if math.isfinite(request.epsilon):
            encoding = GridEncoding.calibrate(
                statistic.shapes(self.n_features_in_, **request.params),
                statistic.sensitivity(
                    request.clipping, self.n_features_in_, **request.params
                ),
                epsilon=request.epsilon,
                rho=request.rho,
            )
        charges = self._charge(request, encoding, fit_ledger)

        if encoding is None:  # no noise: nothing to seed
            seeds = [None] * (self.n_parties + 1)
        else:
            seeds = spawn_seeds(seed_sequence, self.n_parties + 1)
        local = encoding if request.trust == "local" else None
        contributions = Parallel(n_jobs=self.n_jobs)(
            delayed(guarded_party_release)(
                p.name,
                p.X,
                p.y,
                request.clipping,
                request.statistic,
                request.params,
                local,
                seed,
            )
            for p, seed in zip(self.parties, seeds)
        )
        failures = [c for c in contributions if isinstance(c, PartyFailure)]
        if failures:
            self._fail(request, failures, charges, local is not None)
        if encoding is None:
            blocks = sum_blocks(contributions)
            return Release(blocks, [0.0] * len(blocks))
        if local is not None:
            total = sum_encoded(contributions)
            std = np.sqrt(self.n_parties) * np.asarray(encoding.noise_std())
        else:
            total = encoding.encode(sum_blocks(contributions))
            total = total + encoding.noise(noise_generator(seeds[-1]))
            std = np.asarray(encoding.noise_std())
        return Release(encoding.decode(total), list(std))

    def _charge(self, request, encoding, fit_ledger):
        def event(party):
            return ReleaseEvent(
                party=party,
                estimator=request.estimator,
                statistic=request.statistic,
                mechanism="none" if encoding is None else encoding.mechanism,
                epsilon=request.epsilon,
                delta=request.delta,
                rho=request.rho,
                sensitivity=0.0 if encoding is None else encoding.sensitivity,
                noise_scale=0.0 if encoding is None else encoding.noise_scale,
                trust=request.trust,
            )

        charges = [(p.ledger, [event(p.name)]) for p in self.parties]
        if fit_ledger is not None:
            charges.append((fit_ledger, [event("all parties")]))
        charge(charges)
        return charges

    def _fail(self, request, failures, charges, local):
        """Take back the charges of a release that failed, then raise."""
        failed = {f.party for f in failures}
        kept = []
        if local:  # these parties' noisy values did reach the aggregator
            kept = [p.name for p in self.parties if p.name not in failed]
        kept_ledgers = {id(p.ledger) for p in self.parties if p.name in kept}
        refund(
            [(led, events) for led, events in charges if id(led) not in kept_ledgers]
        )
        details = "; ".join(f"party {f.party!r}: {f.error}" for f in failures)
        charged = (
            f" Parties {kept} already sent noisy values and stay charged."
            if kept
            else " Nothing was released or charged for it."
        )
        raise PartyError(
            f"The release of {request.statistic!r} failed on the parties' side "
            f"({details}).{charged}"
        )

    def privacy_report(self):
        """Return the :class:`~fedsk.privacy.PrivacyReport` of every party."""
        return PrivacyReport([p.ledger for p in self.parties])

    def __repr__(self):
        return f"Federation({self.party_names}, n_jobs={self.n_jobs})"


def _num_rows(data):
    return data.shape[0] if hasattr(data, "shape") else np.shape(data)[0]


def _take(data, rows):
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    return np.asarray(data)[rows]


def _unique_in_order(labels):
    _, first = np.unique(labels, return_index=True)
    return labels[np.sort(first)]


def _same_names(a, b):
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and bool(np.all(a == b))
