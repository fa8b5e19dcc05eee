"""What the examples print, run as a user runs them, for the docs to quote.

Usage::

    python benchmarks/bench_examples.py          # every example in full
    python benchmarks/bench_examples.py --quick  # samples, for the smoke test

``README.md`` and ``examples/README.md`` quote the examples' figures, and
those move whenever an algorithm does. This benchmark runs each script of
``examples/`` in a subprocess from a scratch directory, as
``python examples/<script>``, and keeps what it printed (its plot and the
line naming it are left out); for the main demo it also refits the demo's
model ``--demo-fits`` times, each with fresh noise, so that the README can
quote a median and a lowest fit rather than one draw. Everything goes to the
``bench_examples`` section of ``benchmarks/RESULTS.md``, and from there into
the include blocks of the pages (``make_results_doc.py``).
"""

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _report import RESULTS, ROOT, write_results
from make_results_doc import update_pages
from sklearn.linear_model import LogisticRegression

EXAMPLES = ROOT / "examples"
# (script, arguments of the full run, arguments of the quick run); the demo
# first (``render_demo`` quotes its time), and the scripts that draw a plot
# also get ``--out`` a scratch directory
SCRIPTS = (
    ("demo.py", [], []),
    ("airports.py", [], ["--sample", "4000", "--epsilons", "1", "10"]),
    ("regions.py", [], ["--sample", "4000", "--seeds", "1", "--epsilons", "1"]),
    ("schools.py", [], ["--sample", "3000", "--seeds", "1", "--epsilons", "1"]),
    ("audit_under_noised.py", [], []),
)
PLOTTING = {"airports.py", "regions.py", "schools.py"}
DEMO_FITS, QUICK_DEMO_FITS = 100, 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--demo-fits",
        type=int,
        default=None,
        help=f"noisy refits of the demo's model (default {DEMO_FITS}, "
        f"{QUICK_DEMO_FITS} with --quick)",
    )
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to update")
    args = parser.parse_args(argv)
    if args.demo_fits is None:
        args.demo_fits = QUICK_DEMO_FITS if args.quick else DEMO_FITS
    if args.demo_fits < 1:
        parser.error("--demo-fits must be at least 1")
    return args


def run_script(script, arguments, directory):
    """Run ``examples/<script>`` as a user would; its output and times.

    Returns
    -------
    output : str
        What it printed, without the line naming its plot file.
    wall, cpu : float
        Seconds of wall time, and of CPU in the child (user and system).
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        "MPLBACKEND": "Agg",
    }
    out = ["--out", directory] if script in PLOTTING else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *arguments, *out],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"examples/{script} failed:\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [
        line for line in result.stdout.splitlines() if not line.startswith("Plot ")
    ]
    return "\n".join(lines).strip("\n"), wall, cpu


def demo_fits(n_fits):
    """The demo's references and ``n_fits`` noisy fits of its headline model."""
    sys.path.insert(0, str(EXAMPLES))
    import demo

    X_train, X_test, y_train, y_test, school_train = demo.split_schools()
    pooled = demo.scores(LogisticRegression().fit(X_train, y_train), X_test, y_test)
    alone, one_class = demo.schools_alone(
        X_train, y_train, school_train, X_test, y_test
    )
    fits = []
    for _ in range(n_fits):
        model = demo.federated(demo.HEADLINE_EPSILON, "central")
        model.fit(X_train, y_train, parties=school_train)
        fits.append(demo.scores(model, X_test, y_test))
    return dict(
        epsilon=demo.HEADLINE_EPSILON,
        schools=len(np.unique(school_train)),
        pupils=(len(X_train), len(X_test)),
        pooled=pooled,
        alone=alone,
        one_class=one_class,
        fits=np.array(fits),
    )


def render_demo(result, run):
    """The demo's table: references, then fedsk's median and lowest fit.

    ``run`` is the demo script's ``(command, output, wall, cpu)``.
    """
    fits, alone, n = result["fits"], result["alone"], len(result["fits"])
    epsilon, schools = f"{result['epsilon']:g}", result["schools"]
    lowest = fits.min(axis=0)
    rows = [
        (f"scikit-learn, {schools} schools pooled (not private)", result["pooled"]),
        (f"scikit-learn, one school alone: best of {len(alone)}", alone.max(axis=0)),
        ("scikit-learn, one school alone: median", np.median(alone, axis=0)),
        (
            f"fedsk, epsilon={epsilon} per school: median of {n} fits",
            np.median(fits, axis=0),
        ),
        (f"fedsk, epsilon={epsilon} per school: lowest of {n} fits", lowest),
    ]
    train, test = result["pupils"]
    reached = (alone >= lowest).sum(axis=0)
    return [
        f"`examples/demo.py`'s split ({train:,} training pupils in {schools} "
        f"schools, {test:,} test pupils) and model, "
        f"`FederatedEstimator(LogisticRegression(), epsilon={epsilon}, "
        f'trust="central")`, fitted {n} times, each with fresh noise. '
        f"{result['one_class']} schools cannot fit a classifier alone (all their "
        "training pupils on one side of the threshold).",
        "",
        "| model | ROC AUC | accuracy |",
        "|---|---:|---:|",
        *(f"| {what} | {auc:.3f} | {accuracy:.3f} |" for what, (auc, accuracy) in rows),
        "",
        f"Schools alone that reach fedsk's lowest fit: {reached[0]} of {len(alone)} "
        f"on ROC AUC, {reached[1]} on accuracy. `{run[0]}` took {run[2]:.0f} s "
        f"({run[3]:.0f} s of CPU) on this run's machine.",
        "",
    ]


def render_runs(runs):
    """A table of each script's command and times, then what each printed."""
    lines = [
        "### Run times",
        "",
        "Wall time of the whole script, and CPU time of its process (user and "
        "system), on the machine of this run (its load average is in the run "
        "line of `benchmarks/RESULTS.md`).",
        "",
        "| command | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for command, _, wall, cpu in runs:
        lines.append(f"| `{command}` | {wall:.0f} | {cpu:.0f} |")
    lines.append("")
    for command, output, _, _ in runs:
        script = command.split()[1].removeprefix("examples/")
        lines += [f"### {script}", "", f"`{command}` printed:", "", "```text"]
        lines += [output, "```", ""]
    return lines


def main(argv=None):
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    warnings.simplefilter("ignore")  # convergence warnings of the schools alone
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as directory:
        for script, full, quick in SCRIPTS:
            arguments = quick if args.quick else full
            print(f"examples/{script}", *arguments, flush=True)
            output, wall, cpu = run_script(script, arguments, directory)
            shown = shlex.join(["python", f"examples/{script}", *arguments])
            runs.append((shown, output, wall, cpu))
    print(f"demo: {args.demo_fits} fits", flush=True)
    body = [
        "### demo.py: fedsk against each school alone",
        "",
        *render_demo(demo_fits(args.demo_fits), runs[0]),
        *render_runs(runs),
    ]
    elapsed = time.perf_counter() - started
    section = write_results(
        args.results,
        "bench_examples",
        "what the examples print",
        command,
        args.quick,
        elapsed,
        body,
    )
    update_pages(args.results)
    print(section)


if __name__ == "__main__":
    main()
