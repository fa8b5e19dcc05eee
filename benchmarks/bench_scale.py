"""Scale: many parties, many rows, rows that never reach the coordinator.

Usage::

    python benchmarks/bench_scale.py            # full run
    python benchmarks/bench_scale.py --quick    # small smoke run

Writes the ``bench_scale`` section of ``benchmarks/RESULTS.md``:

1. Fit time and coordinator peak memory of ``FederatedEstimator(Ridge())``
   and ``FederatedEstimator(GaussianNB())`` at epsilon = 1 for parties in
   {10, 100, 1,000, 10,000} x rows per party in {100, 10,000}, 20 features,
   under joblib's loky backend and a Dask ``LocalCluster`` (2 worker
   processes). Every party's rows are made by a loader on the worker that
   runs its tasks (``Party(loader=...)``), so the coordinator's memory shows
   what the coordinator itself holds. Each cell runs in a fresh process,
   whose peak resident memory is the figure.
2. A 20-round logistic regression: bytes of the party tasks shipped to the
   workers each round, with rows held by the coordinator and with loaders
   (then it is about the size of the model).
"""

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np
from _report import RESULTS, markers, section_head, write_section
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB

from fedsk import FederatedEstimator, Federation, Party

N_FEATURES = 20
MODELS = {"Ridge": Ridge, "GaussianNB": GaussianNB}


class SyntheticRows:
    """A party's rows, generated where the party's work runs."""

    def __init__(self, seed, n_rows):
        self.seed, self.n_rows = seed, n_rows

    def __call__(self):
        rng = np.random.default_rng(self.seed)
        X = rng.uniform(-1, 1, size=(self.n_rows, N_FEATURES))
        y = X[:, :5].sum(axis=1) + 0.1 * rng.normal(size=self.n_rows)
        return X, y


def federation(n_parties, n_rows, classify=False):
    loader = SyntheticLabels if classify else SyntheticRows
    return Federation(
        [Party(f"p{i}", loader=loader(i, n_rows)) for i in range(n_parties)],
        n_jobs=-1,
    )


class SyntheticLabels(SyntheticRows):
    def __call__(self):
        X, y = super().__call__()
        return X, (y > 0).astype(int)


def estimator(model):
    params = {"epsilon": 1.0, "bounds": (-1.0, 1.0)}
    if model == "Ridge":
        params["y_bounds"] = (-6.0, 6.0)
    else:
        params["classes"] = [0, 1]
    return FederatedEstimator(MODELS[model](), **params)


def cell(n_parties, n_rows, model, backend):
    """One fit in this (fresh) process: seconds and peak RSS."""
    import joblib

    def fit():
        fed = federation(n_parties, n_rows, classify=model == "GaussianNB")
        start = time.perf_counter()
        estimator(model).fit(fed)
        return time.perf_counter() - start

    if backend == "dask":
        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster),
            joblib.parallel_config(backend="dask"),
        ):
            seconds = fit()
    else:
        with joblib.parallel_config(backend="loky"):
            seconds = fit()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_rss": peak}


def task_bytes(n_parties, n_rows, rounds, loaded):
    """Bytes of the party tasks pickled in each round of a logistic fit.

    What joblib ships to the workers each round: the parties' row sources
    and the public parameters. With loaders the rows stay on the workers.
    """
    import cloudpickle

    from fedsk import _federation

    fed = federation(n_parties, n_rows, classify=True)
    if not loaded:  # the same rows, held by the coordinator
        fed = Federation(
            [
                Party(p.name, *SyntheticLabels(i, n_rows)())
                for i, p in enumerate(fed.parties)
            ]
        )
    sizes = []
    run = _federation.Federation._chunked_calls

    def counted(self, todo):  # the (source, name, request) calls joblib ships
        sizes.append(sum(len(cloudpickle.dumps(call)) for call in todo))
        return run(self, todo)

    _federation.Federation._chunked_calls = counted
    try:
        model = FederatedEstimator(
            LogisticRegression(),
            epsilon=1.0,
            delta=1e-6,
            bounds=(-1.0, 1.0),
            classes=[0, 1],
            max_rounds=rounds,
        ).fit(fed)
    finally:
        _federation.Federation._chunked_calls = run
    coef = model.estimator_
    return sizes, coef.coef_.nbytes + coef.intercept_.nbytes


def run_cell(args):
    cmd = [sys.executable, __file__, "--cell", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(command, rows, traffic, elapsed, quick):
    end = markers("bench_scale")[1]
    lines = [
        *section_head(
            "bench_scale", "parties, rows and memory", command, quick, elapsed
        ),
        f"epsilon = 1, {N_FEATURES} features, every party's rows made by its "
        "loader on the worker that runs its tasks; one fresh process per cell "
        "(its peak RSS includes the interpreter, numpy, scikit-learn and, for "
        "dask, the client). Dask: LocalCluster of 2 worker processes.",
        "",
        "| model | backend | parties | rows/party | total rows | fit s | "
        "coordinator peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['parties']:_} | "
            f"{r['rows']:_} | {r['parties'] * r['rows']:_} | "
            f"{r['seconds']:.2f} | {r['peak_rss'] / 2**20:.0f} MiB |"
        )
    if traffic:
        lines += [
            "",
            "### Bytes shipped to the workers per round",
            "",
            "`FederatedEstimator(LogisticRegression(), epsilon=1, delta=1e-6, "
            f"max_rounds={traffic['rounds']})` on {traffic['parties']} parties "
            f"x {traffic['rows']:_} rows: the pickled party tasks of each round "
            "(what joblib sends, for any backend), rows held by the "
            "coordinator against rows made by each party's loader. Model "
            f"coefficients: {traffic['model_bytes']} bytes.",
            "",
            "| rows | first round | later rounds (mean) | per party per later round |",
            "|---|---:|---:|---:|",
        ]
        for kind in ("in memory", "loader"):
            sizes = traffic[kind]
            later = float(np.mean(sizes[1:]))
            lines.append(
                f"| {kind} | {sizes[0]:_} | {later:_.0f} | "
                f"{later / traffic['parties']:_.0f} |"
            )
    lines += ["", end]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    parser.add_argument("--cell", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.cell:
        n_parties, n_rows, model, backend = args.cell
        print(json.dumps(cell(int(n_parties), int(n_rows), model, backend)))
        return
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    started = time.perf_counter()
    parties = (10, 100) if args.quick else (10, 100, 1_000, 10_000)
    sizes = (100,) if args.quick else (100, 10_000)
    backends = ("loky",) if args.quick else ("loky", "dask")
    rows = []
    for model in MODELS:
        for backend in backends:
            for n_rows in sizes:
                for n_parties in parties:
                    if n_parties * n_rows > 10_000_000:
                        continue  # 1e8 rows: beyond this machine's time budget
                    result = run_cell((n_parties, n_rows, model, backend))
                    rows.append(
                        {
                            "model": model,
                            "backend": backend,
                            "parties": n_parties,
                            "rows": n_rows,
                            **result,
                        }
                    )
                    print(rows[-1], flush=True)
    n_traffic = 1_000 if args.quick else 10_000
    traffic = {"parties": 10, "rows": n_traffic, "rounds": 20}
    for kind, loaded in (("in memory", False), ("loader", True)):
        traffic[kind], traffic["model_bytes"] = task_bytes(10, n_traffic, 20, loaded)
    print(traffic, flush=True)
    section = render(command, rows, traffic, time.perf_counter() - started, args.quick)
    write_section(args.results, "bench_scale", section)
    print(section)


if __name__ == "__main__":
    main()
