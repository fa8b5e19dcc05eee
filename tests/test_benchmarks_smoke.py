"""Smoke runs of benchmarks/bench_core.py and bench_examples.py: each writes
its RESULTS section."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_quick(script, results, *arguments):
    """Run ``benchmarks/<script> --quick`` into the file ``results``."""
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / script),
            "--quick",
            *arguments,
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_bench_core_quick_writes_its_section(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n\n"
        "<!-- bench_core:start -->\nstale\n<!-- bench_core:end -->\n\ntail\n"
    )
    run_quick("bench_core.py", results, "--repeat", "1")
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


@pytest.mark.slow
def test_bench_examples_quick_writes_what_the_examples_printed(tmp_path):
    results = tmp_path / "RESULTS.md"
    run_quick("bench_examples.py", results, "--demo-fits", "2")
    text = results.read_text()
    assert text.count("<!-- bench_examples:start -->") == 1
    for script in ("demo", "airports", "regions", "schools", "audit_under_noised"):
        assert f"### {script}.py\n" in text
    assert "| fedsk, epsilon=1 per school: median of 2 fits |" in text
    assert "160 schools pooled" in text  # the demo's own printout
    assert "Plot saved" not in text  # a scratch path, left out
