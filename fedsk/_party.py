"""A party: rows that never leave, a budget, and the work done on its side.

The functions at the end of this module are the party's side of a release.
They run in the party's own task (its process, or its joblib / Dask worker)
and are the only code that reads its rows. What they return is what crosses
to the coordinator: exact clipped statistics only under central trust (or
with no noise at all), otherwise a vector the party has already noised with
its own randomness and, under secure aggregation, masked or secret-shared.
"""

import logging
import math
import os
from dataclasses import dataclass, replace

import numpy as np

from ._aggregation import AnsweredReleases, masking_step, sharing_step
from ._rows import (
    CsvLoader,
    InMemoryRows,
    LoadedRows,
    PartyDataError,
    checked_rows,
    describe,
    feature_names,
    rows,
)
from ._statistics import STATISTICS
from .privacy import BudgetLedger, derive_key, noise_generator

_LOG = logging.getLogger("fedsk.party")


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
        Public schema (``n_features``, ``feature_names``, ``y_kind``: the
        numpy dtype kind of the targets); for a loader, read on the party's
        side when it joins a :class:`~fedsk.Federation`. Nothing else about
        the rows (not even their label set) is in it.
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
        self.source = replace(self.source, y=y)
        self.schema = {**self.schema, "y_kind": "f"}

    def __repr__(self):
        where = "rows on its worker" if self.X is None else f"{len(self.X)} rows"
        return f"Party({self.name!r}, {where}, ledger={self.ledger!r})"


class PartyError(RuntimeError):
    """A party's side of a release failed; the error names the party."""


@dataclass(frozen=True)
class PartyFailure:
    """What a party's worker returns instead of an answer when it fails.

    Attributes
    ----------
    party : str
    error : str
        Public description (no values or counts of the party's rows).
    charged : bool, default=False
        True when the failure happened while computing on the party's rows:
        whether it fails depends on them, so the failure is itself a release
        and the party stays charged for it.
    """

    party: str
    error: str
    charged: bool = False


@dataclass(frozen=True)
class PartyTask:
    """What one release asks of every party: public, except in simulation.

    Parameters
    ----------
    release_id : str
        Public id of the release; the party derives its noise (and its
        masking keys) from its own secret and this id, so a retried request
        gets the same noise.
    clipping : Clipping
        Public region the rows are clipped into first.
    statistic : str
        Name in the catalogue (:data:`fedsk._statistics.STATISTICS`).
    params : dict
        Public parameters of the statistic.
    encoding : GridEncoding or None
        With noise added by the party (local or distributed trust): the
        party rounds its statistic to the grid and adds integer noise.
        ``None``: the exact clipped statistic is returned (central trust,
        or epsilon = inf).
    n_shares : int, default=1
        With distributed noise, the number of parties whose noise shares
        add up to (at least) the release's noise; 1 for a full draw.
    max_rows : int or None, default=None
        Most rows the party may hold: for which the encoded sum is proved
        not to overflow, or the public cap of party-level privacy.
    delta : float, default=0.0
        The release's delta; a party refuses one of at least 1 / its rows.
    seed : int or None, default=None
        Simulation only (a user ``random_state``): the noise seed the
        coordinator derived for this party. ``None``, always outside
        simulation: the party draws its noise from its own secret.
    """

    release_id: str
    clipping: object
    statistic: str
    params: dict
    encoding: object = None
    n_shares: int = 1
    max_rows: int | None = None
    delta: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class PartyRequest:
    """One message from the coordinator to a party: what to run, all public.

    Parameters
    ----------
    kind : {"describe", "release", "contribute", "protocol"}
        ``"describe"``: the public schema of its rows. ``"release"``: a
        statistic (``task``). ``"contribute"``: a statistic, noised, then
        masked or secret-shared (``task``, ``protocol``, ``message``).
        ``"protocol"``: a step of a secure-sum protocol that does not touch
        the rows (``protocol``, ``step``, ``message``; ``task`` for its
        release id).
    task : PartyTask, default=None
    protocol : {"masking", "sharing"}, default=None
    step : str, default=None
    message : dict, default=None
        What the coordinator relays for this step.
    """

    kind: str
    task: PartyTask | None = None
    protocol: str | None = None
    step: str | None = None
    message: dict | None = None


def answer(source, name, request):
    """The party's side of every request: the only code that reads its rows.

    Parameters
    ----------
    source : InMemoryRows or LoadedRows
        The party's rows and secret, where the party runs.
    name : str
        The party's name.
    request : PartyRequest

    Returns
    -------
    What crosses back to the coordinator (see :class:`PartyRequest`).
    """
    if request.kind == "describe":
        return describe(source)
    if request.kind == "release":
        return party_release(source, request.task)
    if request.kind == "contribute":
        vector = party_release(source, request.task)
        step = "contribute"
    elif request.kind == "protocol":
        vector, step = None, request.step
    else:
        raise ValueError(f"Unknown request kind {request.kind!r}.")
    protocols = {"masking": masking_step, "sharing": sharing_step}
    if request.protocol not in protocols:
        raise ValueError(f"Unknown protocol {request.protocol!r}.")
    return protocols[request.protocol](
        step,
        source.secret,
        request.task.release_id,
        name,
        request.message,
        request.task.n_shares,  # the threshold, as the party accepted it
        vector,
        AnsweredReleases(source.secret),
    )


def named_answer(source, name, request):
    """``(name, answer(...))``, or ``(name, PartyFailure)`` if it raises.

    Returning the failure (rather than raising in the worker) lets the
    federation see which parties failed. Only the message of a
    :class:`PartyDataError` (charged) or of a connection, timeout or import error
    (not charged: unreachable, or missing software) crosses; any other error
    crosses as its type, charged if it happened while computing on the
    party's rows, and its details are logged on the party's side only (they
    could quote its data).
    """
    try:
        return name, answer(source, name, request)
    except PartyDataError as exc:
        return name, PartyFailure(name, str(exc), charged=True)
    except (ConnectionError, TimeoutError, ImportError) as exc:  # unreachable,
        # or missing software: nothing about its rows
        return name, PartyFailure(name, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - reported with the party's name
        _LOG.warning("party %r: %s request failed", name, request.kind, exc_info=True)
        charged = request.kind in ("release", "contribute")
        what = "computing its statistic" if charged else f"answering {request.kind}"
        return name, PartyFailure(
            name,
            f"{type(exc).__name__} while {what} (the details stay with the party)",
            charged=charged,
        )


def named_answers(calls):
    """:func:`named_answer` for each ``(source, name, request)`` of a chunk."""
    return [named_answer(*call) for call in calls]


def party_release(source, task):
    """Compute one statistic on a party's rows, on the party's side.

    Parameters
    ----------
    source : InMemoryRows or LoadedRows
        The party's rows (they never leave this function), or the loader
        that produces them here, and the party's secret.
    task : PartyTask

    Returns
    -------
    release : list of ndarray, or ndarray of int64
        Exact blocks (``task.encoding`` is None), or the noisy encoded
        vector.
    """
    X, y = rows(source)
    if task.max_rows is not None and X.shape[0] > task.max_rows:
        raise PartyDataError(
            f"it holds more rows than the {task.max_rows} allowed (the public cap "
            "of party-level privacy, or the most for which the encoded sum cannot "
            "overflow); split the party into several"
        )
    if task.delta > 0 and task.delta * X.shape[0] >= 1:
        raise PartyDataError(
            f"delta={task.delta:g} is not below 1 / its number of rows, so a "
            "release could expose a whole record; use a smaller delta"
        )
    classes = task.params.get("classes")
    if classes is not None and y is not None:  # labels outside the public set
        known = np.isin(y, np.asarray(classes))  # are dropped, not reported
        if not known.all():
            X, y = X[known], y[known]
    X, y = task.clipping.apply(X, y)
    blocks = STATISTICS[task.statistic].compute(X, y, **task.params)
    encoding = task.encoding
    if encoding is None:
        return blocks
    key = (
        task.seed
        if task.seed is not None
        else derive_key(source.secret, task.release_id, b"noise")
    )
    return encoding.encode(blocks) + encoding.noise(noise_generator(key), task.n_shares)
