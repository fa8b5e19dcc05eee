"""diffprivlib baseline: centralised private models on pooled rows.

Runs in its own environment, because diffprivlib 0.6.6 imports only with
``scikit-learn<1.8`` (and its LogisticRegression needs ``<1.8`` too)::

    python -m venv /work/venvs/dpl
    /work/venvs/dpl/bin/pip install "diffprivlib==0.6.6" "scikit-learn<1.8" \\
        numpy scipy pandas
    /work/venvs/dpl/bin/python benchmarks/baseline_diffprivlib.py \\
        --data split.npz --epsilons 0.1 1 --seeds 0 1 --data-norm 4.47

It imports neither fedsk nor the benchmark helpers. ``--data`` is an ``.npz``
file with ``X_train``, ``y_train``, ``X_test`` and ``y_test``. For each
epsilon and seed it fits one model on all training rows (no parties: this is
the centralised baseline) and scores it on the test rows. It prints one JSON
object::

    {"logistic_regression": {"0.1": [accuracy per seed], ...},
     "fit_seconds": {"0.1": [seconds per seed], ...},
     "versions": {...}}

Models
------
``logistic_regression``
    ``diffprivlib.models.LogisticRegression(epsilon, data_norm, random_state)``
    (objective perturbation). diffprivlib clips every training row to L2
    norm ``data_norm`` before fitting, so pass rows already scaled to a
    public box: with features in [0, 1], ``data_norm = sqrt(n_features)``
    clips nothing. ``--data-norm`` is required.
``gaussian_nb``
    ``diffprivlib.models.GaussianNB(epsilon, bounds, random_state)``, with
    public per-feature bounds read from ``--bounds-file`` (an ``.npz`` with
    ``lower`` and ``upper``); diffprivlib clips features to them.
``random_forest``
    ``diffprivlib.models.RandomForestClassifier(n_estimators, epsilon,
    bounds, classes, max_depth, random_state)``: random tree structures
    drawn from the bounds, leaf labels from noisy counts. ``--n-estimators``
    (default 10) and ``--max-depth`` (default 5, diffprivlib's) set the
    forest; bounds from ``--bounds-file``; classes are the labels of the
    training and test rows.
``decision_tree``
    ``diffprivlib.models.DecisionTreeClassifier(max_depth, epsilon, bounds,
    classes, random_state)``, the same tree alone.
"""

import argparse
import json
import sys
import time

import diffprivlib
import numpy as np
import sklearn
from diffprivlib.models import (
    DecisionTreeClassifier,
    GaussianNB,
    LogisticRegression,
    RandomForestClassifier,
)

NEEDS_BOUNDS = ("gaussian_nb", "random_forest", "decision_tree")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help=".npz with X/y train/test")
    parser.add_argument("--epsilons", type=float, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument(
        "--model",
        choices=("logistic_regression", *NEEDS_BOUNDS),
        default="logistic_regression",
    )
    parser.add_argument(
        "--data-norm",
        type=float,
        help="L2 norm diffprivlib clips rows to (logistic_regression)",
    )
    parser.add_argument(
        "--bounds-file",
        help=".npz with public 'lower' and 'upper' (gaussian_nb, trees)",
    )
    parser.add_argument("--n-estimators", type=int, default=10)
    parser.add_argument("--max-depth", type=int, default=5)
    args = parser.parse_args(argv)
    if args.model == "logistic_regression" and args.data_norm is None:
        parser.error("--model logistic_regression needs --data-norm")
    if args.model in NEEDS_BOUNDS and args.bounds_file is None:
        parser.error(f"--model {args.model} needs --bounds-file")
    return args


def make_model(args, epsilon, seed, classes=None):
    if args.model == "logistic_regression":
        return LogisticRegression(
            epsilon=epsilon, data_norm=args.data_norm, random_state=seed
        )
    with np.load(args.bounds_file) as bounds:
        lower, upper = bounds["lower"], bounds["upper"]
    if args.model == "random_forest":
        return RandomForestClassifier(
            n_estimators=args.n_estimators,
            epsilon=epsilon,
            bounds=(lower, upper),
            classes=classes,
            max_depth=args.max_depth,
            random_state=seed,
        )
    if args.model == "decision_tree":
        return DecisionTreeClassifier(
            max_depth=args.max_depth,
            epsilon=epsilon,
            bounds=(lower, upper),
            classes=classes,
            random_state=seed,
        )
    return GaussianNB(epsilon=epsilon, bounds=(lower, upper), random_state=seed)


def main(argv=None):
    args = parse_args(argv)
    with np.load(args.data) as data:
        X_train, y_train = data["X_train"], data["y_train"]
        X_test, y_test = data["X_test"], data["y_test"]
    accuracy, seconds = {}, {}
    for epsilon in args.epsilons:
        key = f"{epsilon:g}"
        accuracy[key], seconds[key] = [], []
        for seed in args.seeds:
            model = make_model(
                args, epsilon, seed, np.unique(np.concatenate([y_train, y_test]))
            )
            start = time.perf_counter()
            model.fit(X_train, y_train)
            seconds[key].append(time.perf_counter() - start)
            accuracy[key].append(float(model.score(X_test, y_test)))
    versions = {
        "python": sys.version.split()[0],
        "diffprivlib": diffprivlib.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }
    result = {args.model: accuracy, "fit_seconds": seconds, "versions": versions}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
