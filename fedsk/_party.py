"""A party: rows that never leave, a budget, and the work done on its side."""

import math
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_array, column_or_1d

from ._statistics import STATISTICS
from .privacy import BudgetLedger, noise_generator


class Party:
    """One organisation's rows and its own privacy budget.

    Parameters
    ----------
    name : str
        The party's name, used in reports and error messages.
    X : array-like or DataFrame of shape (n_samples, n_features)
        The party's rows. They stay with the party: only statistics named in
        fedsk's catalogue are computed on them.
    y : array-like of shape (n_samples,), default=None
        The party's targets.
    epsilon : float, default=inf
        The party's total privacy budget across all fits.
    delta : float or None, default=None
        The delta at which the party's epsilon is composed and capped.
        ``None`` means no delta ceiling (the total is stated at the sum of
        the deltas spent).

    Attributes
    ----------
    ledger : BudgetLedger
        Every release charged to this party.
    n_samples : int
        Number of rows (public: the federation reports it).
    """

    def __init__(self, name, X, y=None, *, epsilon=math.inf, delta=None):
        self.name = str(name)
        self.feature_names = _feature_names(X)
        self.X = _checked(self.name, "X", X, ensure_2d=True)
        if self.X.shape[0] == 0:
            raise ValueError(f"Party {self.name!r} has no rows.")
        self.y = None
        if y is not None:
            self.y = column_or_1d(
                _checked(self.name, "y", y, ensure_2d=False), warn=True
            )
            if self.y.shape[0] != self.X.shape[0]:
                raise ValueError(
                    f"Party {self.name!r}: X has {self.X.shape[0]} rows but y has "
                    f"{self.y.shape[0]}."
                )
        self.ledger = BudgetLedger(self.name, epsilon=epsilon, delta=delta)

    def require_targets(self, *, numeric):
        """Raise, naming this party, if it has no (numeric) targets."""
        if self.y is None:
            raise ValueError(f"Party {self.name!r} has no targets y.")
        if not numeric or self.y.dtype.kind in "fiu":
            return
        try:
            self.y = self.y.astype(float)
        except (TypeError, ValueError):
            raise ValueError(
                f"Party {self.name!r}: a regressor needs numeric targets; got "
                f"dtype {self.y.dtype}."
            ) from None
        if not np.all(np.isfinite(self.y)):
            raise ValueError(f"Party {self.name!r}: y contains NaN or infinity.")

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    def __repr__(self):
        return (
            f"Party({self.name!r}, n_samples={self.n_samples}, "
            f"n_features={self.n_features}, ledger={self.ledger!r})"
        )


def _feature_names(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    return np.asarray(columns, dtype=object)


def _checked(name, what, values, ensure_2d):
    numeric = what == "X" or not _is_labels(values)
    try:
        return check_array(
            values,
            ensure_2d=ensure_2d,
            dtype="numeric" if numeric else None,
            ensure_all_finite=numeric,
            ensure_min_samples=0,
            input_name=what,
        )
    except ValueError as exc:
        raise ValueError(f"Party {name!r}: {exc}") from exc


def _is_labels(values):
    kind = np.asarray(values).dtype.kind
    return kind in "OUSb"


class PartyError(RuntimeError):
    """A party's side of a release failed; the error names the party."""


@dataclass(frozen=True)
class PartyFailure:
    """What a party's worker returns instead of a statistic when it fails."""

    party: str
    error: str


def guarded_party_release(name, *args):
    """:func:`party_release`, returning a :class:`PartyFailure` if it raises.

    Returning the failure (rather than raising in the worker) lets the
    federation see which parties failed and which released.
    """
    try:
        return party_release(*args)
    except Exception as exc:  # noqa: BLE001 - reported with the party's name
        return PartyFailure(name, f"{type(exc).__name__}: {exc}")


def party_release(X, y, clipping, statistic, params, encoding, seed):
    """Compute one statistic on a party's rows, on the party's side.

    Parameters
    ----------
    X, y : ndarray
        The party's rows (they never leave this function).
    clipping : Clipping
        Public region the rows are clipped into first.
    statistic : str
        Name in the catalogue (:data:`fedsk._statistics.STATISTICS`).
    params : dict
        Public parameters of the statistic.
    encoding : GridEncoding or None
        With local noise: the party rounds its statistic to the grid and adds
        integer noise from ``seed`` before returning it. ``None``: the exact
        clipped statistic is returned (central trust, or epsilon = inf).
    seed : int or None
        Noise seed derived in the parent for this party and release.

    Returns
    -------
    release : list of ndarray, or ndarray of int64
        Exact blocks, or the noisy encoded vector.
    """
    X, y = clipping.apply(X, y)
    blocks = STATISTICS[statistic].compute(X, y, **params)
    if encoding is None:
        return blocks
    return encoding.encode(blocks) + encoding.noise(noise_generator(seed))
