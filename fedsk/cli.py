"""The ``fedsk`` command: fit across organisations' CSV files, report, demo.

::

    fedsk fit --party north.csv --party south.csv --target y \\
        --model logistic_regression --epsilon 1 --bounds auto --out model.joblib
    fedsk report model.joblib [--format text|json|html] [--output FILE]
    fedsk demo
    fedsk --version

Each CSV file is one organisation (a party named after the file), read by
:meth:`fedsk.Party.from_csv`. Column types are inferred from the first
file's header and types; text columns are one-hot encoded on each party's
side with the categories given in ``--categories FILE`` (public input: they
are never read from the data). Errors are one line on stderr and a non-zero
exit code. Everything here works on a core install (no extras).
"""

import argparse
import json
import os
import re
import sys

import numpy as np

from . import __version__
from ._estimator import FederatedEstimator
from ._federation import Federation
from ._party import Party
from .estimators import ALGORITHMS

EXIT_ERROR = 2


def model_names():
    """``snake_case`` name of every supported estimator -> its class."""
    return {
        re.sub(
            r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", c.__name__
        ).lower(): c
        for c in ALGORITHMS
    }


class _Usage(Exception):
    """A user error, reported as one line."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="fedsk",
        description="Federated learning with differential privacy for scikit-learn.",
    )
    parser.add_argument("--version", action="version", version=f"fedsk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit",
        help="fit a model across parties' CSV files",
        description="Fit a scikit-learn model across organisations' CSV files "
        "with differential privacy; save the fitted FederatedEstimator.",
    )
    fit.add_argument(
        "--party",
        action="append",
        default=None,
        metavar="CSV",
        help="one organisation's CSV file (repeat per party)",
    )
    fit.add_argument("--target", required=True, help="name of the target column")
    fit.add_argument(
        "--model",
        required=True,
        choices=sorted(model_names()),
        help="the scikit-learn estimator to fit",
    )
    fit.add_argument(
        "--epsilon",
        type=float,
        default=1.0,
        help="privacy budget of the fit (default 1; 'inf': no noise)",
    )
    fit.add_argument("--delta", type=float, default=0.0, help="delta (default 0)")
    fit.add_argument(
        "--bounds",
        default=None,
        metavar="auto|FILE",
        help="'auto' estimates per-feature bounds privately (10%% of "
        "the budget); FILE is JSON {column: [lower, upper]}, public",
    )
    fit.add_argument(
        "--y-bounds",
        default=None,
        metavar="LOW,HIGH",
        help="public range of a regression target (a negative LOW needs "
        "the = form: --y-bounds=-5,10)",
    )
    fit.add_argument(
        "--categories",
        default=None,
        metavar="FILE",
        help="JSON {column: [categories]} for text columns (public)",
    )
    fit.add_argument(
        "--classes",
        default=None,
        metavar="A,B,...",
        help="public class labels of a classifier",
    )
    fit.add_argument(
        "--trust",
        default="central",
        choices=["central", "local", "secure", "peer_to_peer"],
    )
    fit.add_argument(
        "--out",
        required=True,
        help="where to save the model (joblib); checked to be writable before "
        "any budget is spent",
    )

    report = commands.add_parser(
        "report",
        help="print the privacy report of a saved fit",
        description="Print who spent how much privacy budget on what in a saved fit. "
        "The file is unpickled: open only files you trust.",
    )
    report.add_argument("model", help="a model saved by 'fedsk fit' (trusted file)")
    report.add_argument("--format", choices=["text", "json", "html"], default="text")
    report.add_argument("--output", default=None, help="write to FILE, not stdout")

    commands.add_parser(
        "demo",
        help="fit a model across three simulated hospitals",
        description="Fit a federated DP logistic regression across three "
        "simulated hospitals and print its accuracy and privacy report.",
    )
    # certs, serve, party (party agents, issue 15); --server options of fit
    from .network._commands import add_commands

    add_commands(commands, fit)
    return parser


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError) as exc:
        raise _Usage(f"cannot read {what} file {path}: {exc}") from None


def _schema(path, target, categories):
    """Feature columns (after one-hot) and text columns, from the first file."""
    import pandas as pd

    try:
        head = pd.read_csv(path, nrows=100)
    except (OSError, ValueError) as exc:
        raise _Usage(f"cannot read {path}: {exc}") from None
    if target not in head.columns:
        raise _Usage(f"{path} has no target column {target!r}")
    text = [c for c in head.columns if c != target and head[c].dtype.kind not in "biuf"]
    missing = [c for c in text if c not in categories]
    if missing:
        raise _Usage(
            f"text columns {missing} need their categories: pass --categories FILE "
            "with {column: [categories]} (public; never read from the data)"
        )
    features = []
    for column in head.columns:
        if column == target:
            continue
        if column in text:
            features += [f"{column}={value}" for value in categories[column]]
        else:
            features.append(column)
    return features


def _bounds(spec, features):
    if spec in (None, "auto"):
        return "private" if spec == "auto" else None
    given = _read_json(spec, "bounds")
    # one-hot columns ("column=category") are 0 or 1: their bounds are known
    given = {**{f: (0, 1) for f in features if "=" in f}, **given}
    missing = [f for f in features if f not in given]
    if missing:
        raise _Usage(f"the bounds file has no range for {missing}")
    lower = np.array([float(given[f][0]) for f in features])
    upper = np.array([float(given[f][1]) for f in features])
    return lower, upper


def _claim_output(path):
    """Check that ``path`` can be written, before any budget is spent.

    Opens it for appending (an existing file is left as it is). Returns
    whether the file already existed, so that a fit that fails does not
    leave an empty file behind.
    """
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _Usage(
            f"cannot write --out {path}: {reason}; nothing was fitted and no "
            "budget was spent: choose a writable path"
        ) from None
    return existed


def fit_command(args):
    import joblib

    existed = _claim_output(args.out)
    try:
        _fit(args, joblib)
    except BaseException:
        if not existed and os.path.exists(args.out):
            os.remove(args.out)
        raise


def _fit(args, joblib):
    categories = _read_json(args.categories, "categories") if args.categories else {}
    if args.server:  # party agents at their own sites (fedsk party)
        from .network._commands import connect_from_args

        federation = connect_from_args(args)
        names = federation.feature_names_in_
        features = [] if names is None else [str(n) for n in names]
    elif not args.party:
        raise _Usage("pass --party CSV (once per party), or --server HOST:PORT")
    else:
        features = _schema(args.party[0], args.target, categories)
        parties = [
            Party.from_csv(path, target=args.target, categories=categories)
            for path in args.party
        ]
        federation = Federation(parties)
    params = {
        "epsilon": args.epsilon,
        "delta": args.delta,
        "bounds": _bounds(args.bounds, features),
        "trust": args.trust,
    }
    if args.y_bounds:
        low, high = (float(v) for v in args.y_bounds.split(","))
        params["y_bounds"] = (low, high)
    if args.classes:
        params["classes"] = [_label(v) for v in args.classes.split(",")]
    model = FederatedEstimator(model_names()[args.model](), **params)
    model.fit(federation)
    joblib.dump(model, args.out)
    print(
        f"fitted {args.model} across {federation.n_parties} parties; saved to "
        f"{args.out}"
    )
    print(federation.privacy_report() if args.server else model.privacy_report())


def _label(value):
    try:
        return int(value)
    except ValueError:
        return value


def report_command(args):
    import joblib

    if not os.path.isfile(args.model):
        reason = "is a directory" if os.path.isdir(args.model) else "no such file"
        raise _Usage(f"cannot load {args.model}: {reason}")
    try:
        model = joblib.load(args.model)
    except Exception as exc:  # any unpickling failure: not a saved model
        raise _Usage(
            f"cannot load {args.model}: not a model saved by 'fedsk fit' "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from None
    if not isinstance(model, FederatedEstimator) or not hasattr(model, "ledgers_"):
        raise _Usage(
            f"{args.model} is not a fitted FederatedEstimator saved by 'fedsk fit'"
        )
    report = model.privacy_report()
    text = {
        "text": lambda: str(report),
        "json": lambda: report.to_json(indent=2),
        "html": report.to_html,
    }[args.format]()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        print(text)


def demo_command(args):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 4))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.logistic(size=6000) > 0).astype(int)
    hospitals = np.repeat(["north", "south", "east"], 2000)
    model = FederatedEstimator(
        LogisticRegression(), epsilon=1.0, bounds=(-4.0, 4.0), classes=[0, 1]
    ).fit(X[:4500], y[:4500], parties=hospitals[:4500])
    pooled = LogisticRegression().fit(X[:4500], y[:4500]).score(X[4500:], y[4500:])
    print(
        f"federated DP logistic regression, epsilon=1: accuracy "
        f"{model.score(X[4500:], y[4500:]):.3f} (pooled, no privacy: {pooled:.3f})"
    )
    print(model.privacy_report())


def main(argv=None):
    """Run the ``fedsk`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    command = {"fit": fit_command, "report": report_command, "demo": demo_command}
    from .network._commands import commands as network_commands

    command.update(network_commands())
    try:
        command[args.command](args)
    except (_Usage, ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"fedsk {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _one_line(exc):
    """An exception's message on one line (messages may span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main_exit():
    """Console-script entry point: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
