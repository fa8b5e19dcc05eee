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
"""

import argparse
import json
import sys
import time

import diffprivlib
import numpy as np
import sklearn
from diffprivlib.models import GaussianNB, LogisticRegression


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help=".npz with X/y train/test")
    parser.add_argument("--epsilons", type=float, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument(
        "--model",
        choices=("logistic_regression", "gaussian_nb"),
        default="logistic_regression",
    )
    parser.add_argument(
        "--data-norm",
        type=float,
        help="L2 norm diffprivlib clips rows to (logistic_regression)",
    )
    parser.add_argument(
        "--bounds-file", help=".npz with public 'lower' and 'upper' (gaussian_nb)"
    )
    args = parser.parse_args(argv)
    if args.model == "logistic_regression" and args.data_norm is None:
        parser.error("--model logistic_regression needs --data-norm")
    if args.model == "gaussian_nb" and args.bounds_file is None:
        parser.error("--model gaussian_nb needs --bounds-file")
    return args


def make_model(args, epsilon, seed):
    if args.model == "logistic_regression":
        return LogisticRegression(
            epsilon=epsilon, data_norm=args.data_norm, random_state=seed
        )
    with np.load(args.bounds_file) as bounds:
        lower, upper = bounds["lower"], bounds["upper"]
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
            model = make_model(args, epsilon, seed)
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
