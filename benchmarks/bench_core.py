"""Core benchmark of fedsk: fit time, coordinator memory, noise throughput.

Run from the repository root::

    python benchmarks/bench_core.py            # 1M rows, about a minute
    python benchmarks/bench_core.py --quick    # 100k rows, a smoke run

It prints the figures and writes them, with the exact command line, between
the ``<!-- bench_core:start -->`` and ``<!-- bench_core:end -->`` markers of
``benchmarks/RESULTS.md`` (or ``--results PATH``); the rest of that file is
kept as it is.

What is measured
----------------
1. Fit time on ``make_regression(n_samples=1_000_000, n_features=20,
   noise=10, random_state=0)``, 10% held out, the training rows split
   equally over 10 parties by a label array: pooled scikit-learn
   ``LinearRegression`` and ``Ridge``, and ``FederatedEstimator`` around
   each at ``epsilon=inf`` (no noise) and ``epsilon=1`` (noise), as a ratio
   to the pooled fit of the same class in the same run (best of
   ``--repeat``, configurations interleaved so that load from other
   processes hits all of them alike). R^2 on the held-out rows.
2. Peak memory added in the coordinator's process by one federated fit on
   a ``Federation`` built beforehand, at two sizes (see ``MEMORY_METHOD``).
3. Draws per second of ``fedsk.privacy.discrete_laplace`` and
   ``discrete_gaussian``.
"""

import argparse
import datetime
import gc
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _report import environment, markers, write_section  # noqa: E402
from sklearn.datasets import make_regression
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import train_test_split

from fedsk import FederatedEstimator, Federation, Party  # noqa: E402
from fedsk.privacy import (  # noqa: E402
    discrete_gaussian,
    discrete_laplace,
    discrete_linf,
    noise_generator,
)

START, END = markers("bench_core")
N_FEATURES = 20
# Coordinates of LinearRegression's one release of moments: the upper
# triangle of Z^T Z, Z = [X, y, 1] with N_FEATURES columns in X.
MOMENT_COORDS = (N_FEATURES + 2) * (N_FEATURES + 3) // 2
N_PARTIES = 10
# Public clipping region, fixed before looking at the data. make_regression
# draws X from N(0, 1): |x| > 5 has probability 6e-7. y is X @ coef plus
# N(0, 10^2) noise, with 10 informative coefficients drawn from U(0, 100),
# so sd(y) <= sqrt(10 * 100^2 + 10^2) = 316 and 2000 is more than 6 sd.
BOUNDS = (-5.0, 5.0)
Y_BOUNDS = (-2000.0, 2000.0)
MEMORY_MODES = {
    "inprocess": "n_jobs=1: party work in the coordinator's process",
    "loky": "n_jobs=2 (loky): party rows in the coordinator's memory",
    "loky-mmap": "n_jobs=2 (loky): party rows memory-mapped from .npy files",
}
MEMORY_METHOD = """\
Each size runs in a fresh Python process (`--memory-child`) that generates
the rows, builds `Federation([Party(...) x 10])` from them and deletes the
pooled arrays, then warms up (one fit on a 1,000-row federation with the same
`n_jobs`: imports done, loky workers started). It then measures one
`FederatedEstimator(Ridge(), epsilon=1, bounds=..., y_bounds=...).fit(federation)`:

- *RSS*: the process's peak resident set (`VmHWM`, reset through
  `/proc/self/clear_refs` just before the fit) minus its resident set then.
- *tracemalloc*: peak of Python and numpy allocations during a second fit.

In simulation the parties' work (clipping copies, the Gram matrix of their
rows) runs wherever joblib puts it. With `n_jobs=1` that is the
coordinator's process, so its peak grows with the rows. With `n_jobs=2`
(loky) the parties' work runs in the workers, but joblib must ship rows held
in the coordinator's memory to them on every release: it dumps each array
larger than 1 MB to a memory-mapped file, writing through a buffer of at
most 16 MiB, and that buffer is what the coordinator's peak shows (it grows
with the rows of the largest party up to 16 MiB, then stays: checked once
at 3,000,000 rows, 48 MB per party, it was 16.1 MiB). With the
parties' rows memory-mapped from their own `.npy` files, as when each party
keeps its data on its side, joblib passes only the file names, and the
coordinator's peak is what it does itself: receive and sum ten sets of
statistics of size O(d^2), add noise, solve a d x d system."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100k rows, memory at 10k and 100k, fewer noise draws",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).resolve().parent / "RESULTS.md",
        help="Markdown file whose bench_core section is replaced "
        "(default: benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed repetitions (best is kept)"
    )
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("N_SAMPLES", "MODE"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def equal_split(n_samples, n_parties=N_PARTIES):
    """Party label of each row: ``n_parties`` contiguous blocks of equal size."""
    return np.arange(n_samples) * n_parties // n_samples


# -- 1. fit time and R^2 ------------------------------------------------------


def bench_fit(n_samples, repeat):
    X, y = make_regression(
        n_samples=n_samples, n_features=N_FEATURES, noise=10, random_state=0
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.1, random_state=0
    )
    del X, y
    labels = equal_split(len(y_train))
    federations = {}

    def pooled(model):
        return lambda: model().fit(X_train, y_train)

    def federated(model, epsilon, prebuilt):
        estimator = FederatedEstimator(
            model(), epsilon=epsilon, bounds=BOUNDS, y_bounds=Y_BOUNDS
        )
        if prebuilt:
            if "federation" not in federations:
                federations["federation"] = Federation.from_labels(
                    X_train, y_train, labels
                )
            return lambda: estimator.fit(federations["federation"])
        return lambda: estimator.fit(X_train, y_train, parties=labels)

    configs = []
    for model in (LinearRegression, Ridge):
        name = model.__name__
        configs.append((name, "scikit-learn, pooled rows", pooled(model)))
        for prebuilt, how in (
            (False, "parties= labels"),
            (True, "Federation built beforehand"),
        ):
            for epsilon in (math.inf, 1.0):
                eps = "inf" if math.isinf(epsilon) else f"{epsilon:g}"
                configs.append(
                    (
                        name,
                        f"fedsk epsilon={eps}, {how}",
                        federated(model, epsilon, prebuilt),
                    )
                )

    times = {(name, label): [] for name, label, _ in configs}
    scores = {}
    for run in range(repeat + 1):  # run 0 warms up and is not timed
        for name, label, fit in configs:
            gc.collect()
            start = time.perf_counter()
            fitted = fit()
            elapsed = time.perf_counter() - start
            if run:
                times[name, label].append(elapsed)
            scores[name, label] = fitted.score(X_test, y_test)
    rows = []
    for name, label, _ in configs:
        best = min(times[name, label])
        base = min(times[name, "scikit-learn, pooled rows"])
        rows.append(
            {
                "model": name,
                "fit": label,
                "seconds": best,
                "ratio": best / base,
                "r2": scores[name, label],
            }
        )
    return {"n_train": len(y_train), "n_test": len(y_test), "rows": rows}


# -- 2. coordinator memory ----------------------------------------------------


def _status_kib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _federation(X, y, n_jobs, directory=None, prefix="p"):
    parties = []
    for i, rows in enumerate(np.array_split(np.arange(len(y)), N_PARTIES)):
        X_i, y_i = X[rows], y[rows]
        if directory is not None:  # the party's rows live in its own files
            np.save(Path(directory, f"X{i}.npy"), X_i)
            np.save(Path(directory, f"y{i}.npy"), y_i)
            X_i = np.load(Path(directory, f"X{i}.npy"), mmap_mode="r")
            y_i = np.load(Path(directory, f"y{i}.npy"), mmap_mode="r")
        parties.append(Party(f"{prefix}{i}", X_i, y_i))
    return Federation(parties, n_jobs=n_jobs)


def memory_child(n_samples, mode):
    """Measure one fit's added peak memory; print the figures as JSON."""
    n_jobs = 1 if mode == "inprocess" else 2
    with tempfile.TemporaryDirectory() as directory:
        X, y = make_regression(
            n_samples=n_samples, n_features=N_FEATURES, noise=10, random_state=0
        )
        federation = _federation(
            X, y, n_jobs, directory if mode == "loky-mmap" else None
        )
        del X, y
        X_small, y_small = make_regression(
            n_samples=1000, n_features=N_FEATURES, noise=10, random_state=1
        )
        warm = _federation(X_small, y_small, n_jobs, prefix="w")
        estimator = FederatedEstimator(
            Ridge(), epsilon=1.0, bounds=BOUNDS, y_bounds=Y_BOUNDS
        )
        estimator.fit(warm)
        gc.collect()

        rss_delta = None
        if _reset_peak_rss():
            rss_before = _status_kib("VmRSS:")
            estimator.fit(federation)
            rss_delta = (_status_kib("VmHWM:") - rss_before) * 1024
        else:
            estimator.fit(federation)
        gc.collect()
        tracemalloc.start()
        estimator.fit(federation)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del federation
    print(json.dumps({"rss_delta": rss_delta, "traced_peak": traced_peak}))


def bench_memory(sizes):
    rows = []
    for mode, description in MEMORY_MODES.items():
        for n_samples in sizes:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    str(n_samples),
                    mode,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode:
                raise RuntimeError(
                    f"memory child ({n_samples}, {mode}) failed:\n{out.stderr}"
                )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"mode": description, "n_samples": n_samples, **figures})
    return rows


# -- 3. noise throughput ------------------------------------------------------


def fedsk_noise_scales():
    """Noise scales fedsk uses for its least-squares moments at epsilon=1.

    Read from the privacy report of a fit on 2,000 rows (the scale depends
    on the number of features and the budget, not on the rows).
    """
    X, y = make_regression(
        n_samples=2000, n_features=N_FEATURES, noise=10, random_state=0
    )
    scales = {}
    for delta, mechanism in ((0.0, "discrete_linf"), (1e-5, "discrete_gaussian")):
        estimator = FederatedEstimator(
            LinearRegression(),
            epsilon=1.0,
            delta=delta,
            bounds=BOUNDS,
            y_bounds=Y_BOUNDS,
        ).fit(X, y)
        events = estimator.privacy_report().to_dict()["parties"][0]["events"]
        # the moments' release (the histogram of the clipping region before it)
        (event,) = [e for e in events if e["statistic"] == "linear_moments"]
        assert event["mechanism"] == mechanism, event
        scales[mechanism] = event["noise_scale"]
    return scales


def _moment_vectors(scale, size, rng):
    """``size`` coordinates of K-norm noise, drawn as vectors of the moments' length.

    Its coordinates are not independent: one draw is a whole vector of the
    ``LinearRegression`` release (``MOMENT_COORDS``); the last vector drawn
    is cut to ``size`` coordinates.
    """
    vectors = discrete_linf(
        scale, MOMENT_COORDS, rng, n_draws=-(-size // MOMENT_COORDS)
    )
    return vectors.ravel()[:size]


def bench_noise(sizes, repeat):
    rng = noise_generator(12345)
    fedsk_scales = fedsk_noise_scales()
    samplers = {
        "discrete_laplace": (discrete_laplace, (1.0,)),
        "discrete_linf": (_moment_vectors, (fedsk_scales["discrete_linf"],)),
        "discrete_gaussian": (
            discrete_gaussian,
            (1.0, fedsk_scales["discrete_gaussian"]),
        ),
    }
    rows = []
    for mechanism, (sampler, scales) in samplers.items():
        for scale in scales:
            for size in sizes:
                best = math.inf
                for _ in range(repeat):
                    start = time.perf_counter()
                    noise = sampler(scale, size, rng)
                    best = min(best, time.perf_counter() - start)
                    assert noise.shape == (size,)
                    del noise
                rows.append(
                    {
                        "mechanism": mechanism,
                        "scale": scale,
                        "draws": size,
                        "seconds": best,
                        "per_second": size / best,
                    }
                )
    return rows


# -- report -------------------------------------------------------------------


def _bytes(value):
    if value is None:
        return "n/a"
    return f"{value / 2**20:.2f} MiB"


def render(args, command, env, fit, memory, noise, elapsed):
    n_memory = sorted({row["n_samples"] for row in memory})
    lines = [
        START,
        "## bench_core: fit time, coordinator memory, noise throughput",
        "",
        f"Command: `{command}`" + (" (quick smoke run)" if args.quick else ""),
        "",
        f"Run {datetime.datetime.now().isoformat(timespec='seconds')}, "
        f"{elapsed:.0f} s. {env}.",
        "",
        "### Fit time and held-out R^2",
        "",
        f"`make_regression(n_samples={fit['n_train'] + fit['n_test']:_}, "
        f"n_features={N_FEATURES}, noise=10, random_state=0)`; "
        f"{fit['n_test']:_} rows held out, {fit['n_train']:_} training rows "
        f"split equally over {N_PARTIES} parties. Public bounds fixed a priori: "
        f"`bounds={BOUNDS}` (X is N(0, 1)), `y_bounds={Y_BOUNDS}` (sd(y) <= "
        "316 for the generator's coefficients in [0, 100]). `n_jobs=None`. "
        f"Best of {args.repeat} after a warm-up; ratio to the pooled "
        "scikit-learn fit of the same class in the same run (target <= 1.5). "
        "`parties= labels` includes splitting the pooled rows into parties; "
        "'Federation built beforehand' is the fit alone.",
        "",
        "| model | fit | seconds | ratio | R^2 (held out) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in fit["rows"]:
        lines.append(
            f"| {row['model']} | {row['fit']} | {row['seconds']:.3f} | "
            f"{row['ratio']:.2f}x | {row['r2']:.4f} |"
        )
    lines += [
        "",
        "### Coordinator peak memory added by one fit",
        "",
        "`FederatedEstimator(Ridge(), epsilon=1)` on 10 equal parties, "
        f"{N_FEATURES} features, at {' and '.join(f'{n:_}' for n in n_memory)} "
        "rows.",
        "",
        "| party work | rows | peak RSS added | tracemalloc peak |",
        "|---|---:|---:|---:|",
    ]
    for row in memory:
        lines.append(
            f"| {row['mode']} | {row['n_samples']:_} | {_bytes(row['rss_delta'])} | "
            f"{_bytes(row['traced_peak'])} |"
        )
    lines += ["", "Method:", "", MEMORY_METHOD, ""]
    lines += [
        "### Noise draws per second",
        "",
        "Best of "
        f"{args.repeat}, one `noise_generator` stream (ChaCha20, exact "
        "samplers). The scale "
        "fedsk uses for the `LinearRegression` release at epsilon=1 with "
        f"{N_FEATURES} features (pure DP: L-infinity K-norm noise on vectors "
        f"of its {MOMENT_COORDS} coordinates; delta=1e-5: Gaussian), and scale "
        "1 (Laplace: the shares of secure aggregation; Gaussian).",
        "",
        "| mechanism | scale | draws | seconds | draws/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in noise:
        lines.append(
            f"| {row['mechanism']} | {row['scale']:.6g} | {row['draws']:.0e} | "
            f"{row['seconds']:.3f} | {row['per_second']:.3g} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    env = environment()
    start = time.perf_counter()
    n_samples = 100_000 if args.quick else 1_000_000
    memory_sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    noise_sizes = (10**5, 10**6) if args.quick else (10**6, 10**7)

    print(f"fit time on {n_samples:_} rows ...", flush=True)
    fit = bench_fit(n_samples, args.repeat)
    for row in fit["rows"]:
        print(
            f"  {row['model']:<16} {row['fit']:<48} {row['seconds']:7.3f} s "
            f"{row['ratio']:5.2f}x  R^2 {row['r2']:.4f}"
        )
    print(f"coordinator memory at {memory_sizes} rows ...", flush=True)
    memory = bench_memory(memory_sizes)
    for row in memory:
        print(
            f"  {row['mode']:<58} {row['n_samples']:>9_}  RSS +"
            f"{_bytes(row['rss_delta']):>10}  tracemalloc {_bytes(row['traced_peak'])}"
        )
    print("noise draws ...", flush=True)
    noise = bench_noise(noise_sizes, args.repeat)
    for row in noise:
        print(
            f"  {row['mechanism']:<18} scale {row['scale']:<10.6g} "
            f"{row['draws']:.0e} draws  {row['per_second']:.3g}/s"
        )
    section = render(
        args, command, env, fit, memory, noise, time.perf_counter() - start
    )
    write_section(args.results, "bench_core", section)
    print(f"wrote the bench_core section of {args.results}")


if __name__ == "__main__":
    main()
