"""Smoke run of benchmarks/bench_core.py: it writes its RESULTS section."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_core.py"


@pytest.mark.slow
def test_bench_core_quick_writes_its_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n\n"
        "<!-- bench_core:start -->\nstale\n<!-- bench_core:end -->\n\ntail\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--repeat",
            "1",
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    text = results.read_text()
    assert text.count("<!-- bench_core:start -->") == 1
    assert text.count("<!-- bench_core:end -->") == 1
    assert "stale" not in text
    assert "<!-- other:start -->\nkept\n<!-- other:end -->" in text
    assert text.endswith("tail\n")
    section = text.split("<!-- bench_core:start -->")[1].split(
        "<!-- bench_core:end -->"
    )[0]
    assert "--quick" in section and "--results" in section
    for heading in ("Fit time", "Coordinator peak memory", "Noise draws per second"):
        assert heading in section
    assert "| Ridge | fedsk epsilon=1, parties= labels |" in section
    assert "| discrete_gaussian |" in section
