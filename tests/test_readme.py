"""Every Python code block in README.md and docs/*.md runs as written.

The blocks of one file share a namespace and run in order, as a reader
would run them. Shell blocks (```bash) are not run.
"""

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import pytest
import sklearn

from fedsk.privacy import PrivacyWarning

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def run_blocks(path):
    namespace = {"__name__": f"__{path.stem}__"}
    for block in python_blocks(path):
        exec(compile(block, str(path), "exec"), namespace)
    return namespace


def test_readme_python_blocks_run():
    assert len(python_blocks(README)) >= 2
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        namespace = run_blocks(README)
    report = namespace["fed"].privacy_report().to_dict()
    assert [p["epsilon_spent"] for p in report["parties"]] == [1.0, 1.0]


def test_docs_pages_exist():
    names = {page.name for page in DOCS}
    expected = {"index.md", "privacy.md", "bounds.md", "trust.md", "estimators.md"}
    assert expected | {"results.md", "cli.md"} <= names
    assert "docs/index.md" in README.read_text()


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_docs_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    # the docs show good practice: declared classes and bounds, no seeded
    # noise, so no privacy warning may be raised
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyWarning)
        run_blocks(page)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_relative_links_resolve(page):
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    for link in links:
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        target = (page.parent / link.split("#")[0]).resolve()
        assert target.exists(), f"{page.name} links to missing {link}"


def _results_doc():
    """``benchmarks/make_results_doc.py``, imported from its directory."""
    spec = importlib.util.spec_from_file_location(
        "make_results_doc", ROOT / "benchmarks" / "make_results_doc.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))  # for its `_report` import
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_measured_figures_are_generated_from_results():
    """Every include block holds what RESULTS.md gives it, and nothing else.

    A figure edited by hand inside a block, or a benchmark rerun without
    ``python benchmarks/make_results_doc.py``, fails here.
    """
    results_doc = _results_doc()
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert {README, ROOT / "examples" / "README.md"} <= set(results_doc.PAGES)
    for page in results_doc.PAGES:
        text = page.read_text()
        assert results_doc.BLOCK.search(text), f"{page} has no include block"
        assert results_doc.render(results, text, page) == text, (
            f"{page} is out of date: run python benchmarks/make_results_doc.py"
        )
