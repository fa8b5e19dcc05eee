"""Where a party's rows come from, on the party's side.

A party's rows are either held in memory (simulation: they are pickled to
the worker with each task) or produced by a loader that runs where the
party's work runs. Loaded rows are cached in that worker process, keyed by a
token made when the party was created, so a multi-round fit loads them once
per worker and sends only the public parameters of each round.
"""

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_array, column_or_1d

from .privacy import new_secret

# Loaded parties kept per worker process (least recently used dropped).
CACHE_SIZE = 64
_CACHE = OrderedDict()


class PartyDataError(ValueError):
    """A party refuses a request because of its rows; the message is public.

    Raised on the party's side with a message that quotes none of its
    values or counts: it is the only error text that crosses to the
    coordinator (other errors cross as their type alone).
    """


def _secret_field():
    return field(default_factory=new_secret, repr=False, compare=False)


@dataclass(frozen=True)
class InMemoryRows:
    """Rows held by the party object itself (validated at construction).

    ``secret`` is the party's own randomness (see
    :func:`fedsk.privacy.new_secret`).
    """

    X: np.ndarray
    y: np.ndarray | None
    secret: bytes = _secret_field()


@dataclass(frozen=True)
class LoadedRows:
    """Rows produced on the worker by ``loader() -> (X, y)``."""

    name: str
    loader: object
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    secret: bytes = _secret_field()


@dataclass(frozen=True)
class CsvLoader:
    """Read a party's CSV file where the party's work runs.

    Parameters
    ----------
    path : str
        Path as seen by the worker that runs the party's tasks.
    target : str or None
        Column holding y (``None``: no targets).
    read_options : dict
        Keyword arguments of ``pandas.read_csv`` (or ``read_parquet``).
    parquet : bool
        Read Parquet instead of CSV.
    categories : dict
        ``{column: [categories]}``: text columns one-hot encoded with these
        public categories (a value outside them is an error), in this order.
    """

    path: str
    target: str | None = None
    read_options: dict = field(default_factory=dict)
    parquet: bool = False
    categories: dict = field(default_factory=dict)

    def __call__(self):
        import pandas as pd

        if self.parquet:
            try:
                import pyarrow  # noqa: F401 - pandas reads Parquet through it
            except ImportError as exc:
                raise ImportError(
                    "Party.from_parquet needs the parquet extra: "
                    "pip install 'fedsk[parquet]'."
                ) from exc
        read = pd.read_parquet if self.parquet else pd.read_csv
        frame = read(self.path, **self.read_options)
        y = None
        if self.target is not None:
            if self.target not in frame.columns:
                raise PartyDataError(f"{self.path} has no column {self.target!r}.")
            y = frame[self.target].to_numpy()
            frame = frame.drop(columns=[self.target])
        return self._one_hot(frame), y

    def _one_hot(self, frame):
        import pandas as pd

        columns = {}
        for column in frame.columns:
            if column not in self.categories:
                columns[column] = frame[column]
                continue
            known = list(self.categories[column])
            unknown = set(frame[column].dropna()) - set(known)
            if unknown:
                raise PartyDataError(
                    f"column {column!r} has values outside its declared categories"
                )
            for value in known:
                columns[f"{column}={value}"] = (frame[column] == value).astype(float)
        return pd.DataFrame(columns, index=frame.index)


def checked_rows(name, X, y):
    """Validate a party's rows; errors name the party."""
    X = _checked(name, "X", X, ensure_2d=True)
    if X.shape[0] == 0:
        raise PartyDataError(f"Party {name!r} has no rows.")
    if y is not None:
        y = column_or_1d(_checked(name, "y", y, ensure_2d=False), warn=True)
        if y.shape[0] != X.shape[0]:
            raise PartyDataError(
                f"Party {name!r}: X and y have different numbers of rows."
            )
    return X, y


def feature_names(X):
    """Column names of a DataFrame, or None."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    return np.asarray(columns, dtype=object)


def rows(source):
    """``(X, y)`` of a row source, loading (once per worker) if needed."""
    if isinstance(source, InMemoryRows):
        return source.X, source.y
    if source.token in _CACHE:
        _CACHE.move_to_end(source.token)
        return _CACHE[source.token][:2]
    X, y = source.loader()
    names = feature_names(X)
    X, y = checked_rows(source.name, X, y)
    _CACHE[source.token] = (X, y, names)
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return X, y


def describe(source):
    """A party's public schema, computed where its rows are.

    Returns
    -------
    schema : dict
        ``n_features``, ``feature_names`` and ``y_kind`` (numpy dtype kind
        of y, or None): nothing that depends on the values of the rows.
    """
    X, y = rows(source)
    names = _CACHE[source.token][2] if isinstance(source, LoadedRows) else None
    return {
        "n_features": X.shape[1],
        "feature_names": names,
        "y_kind": None if y is None else y.dtype.kind,
    }


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
        if "could not convert" in str(exc):  # numpy quotes the offending value
            raise PartyDataError(
                f"Party {name!r}: {what} has values that are not numbers."
            ) from None
        raise PartyDataError(f"Party {name!r}: {exc}") from None


def _is_labels(values):
    kind = np.asarray(values).dtype.kind
    return kind in "OUSb"
