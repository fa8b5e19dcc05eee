"""A party: rows that never leave, a budget, and the work done on its side."""

import math
import os
from dataclasses import dataclass

import numpy as np

from ._rows import (
    CsvLoader,
    InMemoryRows,
    LoadedRows,
    checked_rows,
    describe,
    feature_names,
    rows,
)
from ._statistics import STATISTICS
from .privacy import BudgetLedger, noise_generator


class Party:
    """One organisation's rows and its own privacy budget.

    Parameters
    ----------
    name : str
        The party's name, used in reports and error messages.
    X : array-like or DataFrame of shape (n_samples, n_features), default=None
        The party's rows, held in memory (simulation). They stay with the
        party: only statistics named in fedsk's catalogue are computed on
        them. Pass either ``X`` (and ``y``) or ``loader``.
    y : array-like of shape (n_samples,), default=None
        The party's targets.
    loader : callable, default=None
        ``loader() -> (X, y)``, run where the party's work runs (a joblib
        worker, a Dask worker) and cached there, so the rows never pass
        through the coordinator. Must be picklable. See :meth:`from_csv`
        and :meth:`from_parquet`.
    epsilon : float, default=inf
        The party's total privacy budget across all fits.
    delta : float or None, default=None
        The delta at which the party's epsilon is composed and capped.
        ``None`` means no delta ceiling (the total is stated at the sum of
        the deltas spent).
    resources : dict, default=None
        Dask worker resources the party's tasks require, e.g.
        ``{"north": 1}`` for a worker the organisation started with
        ``dask worker SCHEDULER --resources north=1``: its tasks then run
        only there (needs an active ``dask.distributed`` client).

    Attributes
    ----------
    ledger : BudgetLedger
        Every release charged to this party.
    source : InMemoryRows or LoadedRows
        Where the rows are; what each party-side task receives.
    schema : dict or None
        Public schema (``n_features``, ``feature_names``, ``labels``,
        ``y_kind``); for a loader, read on the party's side when it joins a
        :class:`~fedsk.Federation`.
    """

    def __init__(
        self,
        name,
        X=None,
        y=None,
        *,
        loader=None,
        epsilon=math.inf,
        delta=None,
        resources=None,
    ):
        self.name = str(name)
        self.resources = resources
        if (X is None) == (loader is None):
            raise ValueError(
                f"Party {self.name!r}: pass its rows X (and y), or a loader, not both."
            )
        if loader is None:
            names = feature_names(X)
            X, y = checked_rows(self.name, X, y)
            self.source = InMemoryRows(X, y)
            self.schema = {
                "n_features": X.shape[1],
                "feature_names": names,
                "labels": None if y is None else np.unique(y),
                "y_kind": None if y is None else y.dtype.kind,
            }
        else:
            if y is not None:
                raise ValueError(
                    f"Party {self.name!r}: with a loader, y comes from the loader."
                )
            self.source = LoadedRows(self.name, loader)
            self.schema = None
        self.ledger = BudgetLedger(self.name, epsilon=epsilon, delta=delta)

    @classmethod
    def from_csv(
        cls,
        path,
        *,
        target=None,
        name=None,
        categories=None,
        epsilon=math.inf,
        delta=None,
        **options,
    ):
        """A party whose rows are a CSV file, read where its work runs.

        Parameters
        ----------
        path : str
            The file, as the worker running the party's tasks sees it.
        target : str, default=None
            Column with the targets.
        name : str, default=None
            The party's name (default: the file name without extension).
        epsilon, delta : float
            The party's budget.
        categories : dict, default=None
            ``{column: [categories]}``: text columns to one-hot encode with
            these public categories, on the party's side.
        **options
            Passed to ``pandas.read_csv``.
        """
        return cls._from_file(
            path, target, name, epsilon, delta, options, False, categories
        )

    @classmethod
    def from_parquet(
        cls,
        path,
        *,
        target=None,
        name=None,
        categories=None,
        epsilon=math.inf,
        delta=None,
        **options,
    ):
        """A party whose rows are a Parquet file (see :meth:`from_csv`)."""
        return cls._from_file(
            path, target, name, epsilon, delta, options, True, categories
        )

    @classmethod
    def _from_file(
        cls, path, target, name, epsilon, delta, options, parquet, categories
    ):
        loader = CsvLoader(str(path), target, dict(options), parquet, categories or {})
        if name is None:
            name = os.path.splitext(os.path.basename(str(path)))[0]
        return cls(name, loader=loader, epsilon=epsilon, delta=delta)

    @property
    def X(self):
        """The rows of a party held in memory (None with a loader)."""
        return getattr(self.source, "X", None)

    @property
    def y(self):
        """The targets of a party held in memory (None with a loader)."""
        return getattr(self.source, "y", None)

    @property
    def n_features(self):
        return self.schema["n_features"]

    @property
    def feature_names(self):
        return self.schema["feature_names"]

    @property
    def labels(self):
        """The set of the party's target values (None without targets)."""
        return self.schema["labels"]

    def require_targets(self, *, numeric):
        """Raise, naming this party, if it has no (numeric) targets."""
        kind = self.schema["y_kind"]
        if kind is None:
            raise ValueError(f"Party {self.name!r} has no targets y.")
        if not numeric or kind in "fiu":
            return
        if self.X is None:
            raise ValueError(
                f"Party {self.name!r}: a regressor needs numeric targets; its "
                f"loader returns dtype kind {kind!r}."
            )
        try:
            y = self.y.astype(float)
        except (TypeError, ValueError):
            raise ValueError(
                f"Party {self.name!r}: a regressor needs numeric targets; got "
                f"dtype {self.y.dtype}."
            ) from None
        if not np.all(np.isfinite(y)):
            raise ValueError(f"Party {self.name!r}: y contains NaN or infinity.")
        self.source = InMemoryRows(self.X, y)
        self.schema = {**self.schema, "y_kind": "f"}

    def __repr__(self):
        where = "rows on its worker" if self.X is None else f"{len(self.X)} rows"
        return f"Party({self.name!r}, {where}, ledger={self.ledger!r})"


class PartyError(RuntimeError):
    """A party's side of a release failed; the error names the party."""


@dataclass(frozen=True)
class PartyFailure:
    """What a party's worker returns instead of a statistic when it fails."""

    party: str
    error: str


def named_party_release(name, *args):
    """``(name, party_release(*args))``, or a :class:`PartyFailure` if it raises.

    Returning the failure (rather than raising in the worker) lets the
    federation see which parties failed and which released.
    """
    try:
        return name, party_release(*args)
    except Exception as exc:  # noqa: BLE001 - reported with the party's name
        return name, PartyFailure(name, f"{type(exc).__name__}: {exc}")


def party_releases(tasks):
    """:func:`named_party_release` for each ``(name, args)`` of a chunk, in turn."""
    return [named_party_release(name, *args) for name, args in tasks]


def named_describe(name, source):
    """``(name, describe(source))`` on the party's side, or a failure."""
    try:
        return name, describe(source)
    except Exception as exc:  # noqa: BLE001 - reported with the party's name
        return name, PartyFailure(name, f"{type(exc).__name__}: {exc}")


def party_release(
    source, clipping, statistic, params, encoding, seed, n_shares=1, max_rows=None
):
    """Compute one statistic on a party's rows, on the party's side.

    Parameters
    ----------
    source : InMemoryRows or LoadedRows
        The party's rows (they never leave this function), or the loader
        that produces them here.
    clipping : Clipping
        Public region the rows are clipped into first.
    statistic : str
        Name in the catalogue (:data:`fedsk._statistics.STATISTICS`).
    params : dict
        Public parameters of the statistic.
    encoding : GridEncoding or None
        With noise added by the party (local or distributed trust): the
        party rounds its statistic to the grid and adds integer noise from
        ``seed`` before returning it. ``None``: the exact clipped statistic
        is returned (central trust, or epsilon = inf).
    seed : int or None
        Noise seed derived in the parent for this party and release.
    n_shares : int, default=1
        With distributed noise, the number of parties whose noise shares
        add up to the release's noise; 1 for a full (local) draw.
    max_rows : int or None, default=None
        Most rows the party may hold: for which the encoded sum is proved not
        to overflow, or the public cap of party-level privacy. The party
        refuses to take part with more.

    Returns
    -------
    release : list of ndarray, or ndarray of int64
        Exact blocks, or the noisy encoded vector.
    """
    X, y = rows(source)
    if max_rows is not None and X.shape[0] > max_rows:
        raise ValueError(
            f"{X.shape[0]} rows, more than the {max_rows} allowed (the public cap "
            "of party-level privacy, or the most for which the encoded sum "
            "cannot overflow); split the party into several"
        )
    X, y = clipping.apply(X, y)
    blocks = STATISTICS[statistic].compute(X, y, **params)
    if encoding is None:
        return blocks
    return encoding.encode(blocks) + encoding.noise(noise_generator(seed), n_shares)
