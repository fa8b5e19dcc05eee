"""What a new user installs: every import is declared, and CI checks it.

A module that fedsk imports when ``import fedsk`` runs must be a core
dependency in pyproject.toml: the development machine has many packages
installed, so an undeclared one goes unnoticed until a user installs fedsk
on a fresh environment. These checks read the source; .ci/run proves the
same on fresh virtual environments (a core-only wheel install, the declared
minimum versions, and the README's commands verbatim).
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

import fedsk

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fedsk"
CI = ROOT / ".ci"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Import name -> distribution name, where they differ.
DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "dp_accounting": "dp-accounting",
    "distributed": "dask",
    "grpc": "grpcio",
    "google": "protobuf",
}


def _name(requirement):
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()


def _third_party_imports():
    """``{module: {"top": [files], "lazy": [files]}}`` over fedsk's source.

    ``top``: imported when the module is imported (module level, including
    inside a module-level ``try``); ``lazy``: imported inside a function.
    """
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        lazy = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy.update(id(child) for child in ast.walk(node))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "fedsk":
                    continue
                kind = "lazy" if id(node) in lazy else "top"
                where = found.setdefault(top, {"top": [], "lazy": []})
                where[kind].append(str(path.relative_to(ROOT)))
    return found


def test_every_module_imported_at_import_time_is_a_core_dependency():
    core = {_name(r) for r in PROJECT["dependencies"]}
    undeclared = {
        module: places["top"]
        for module, places in _third_party_imports().items()
        if places["top"] and DISTRIBUTION.get(module, module).lower() not in core
    }
    assert not undeclared, (
        f"imported when fedsk is imported but not a core dependency in "
        f"pyproject.toml: {undeclared}"
    )


def test_every_lazy_import_is_core_or_an_extra():
    declared = {_name(r) for r in PROJECT["dependencies"]}
    for requirements in PROJECT["optional-dependencies"].values():
        declared |= {_name(r) for r in requirements}
    missing = {
        module: places["lazy"]
        for module, places in _third_party_imports().items()
        if places["lazy"] and DISTRIBUTION.get(module, module).lower() not in declared
    }
    assert not missing, f"imported on demand but declared nowhere: {missing}"


def test_known_imports_are_seen():
    """The scan itself works: it finds what fedsk is known to import."""
    imports = _third_party_imports()
    assert imports["numpy"]["top"] and imports["cryptography"]["top"]
    assert "pandas" in imports


def test_pandas_and_cryptography_are_core():
    core = {_name(r) for r in PROJECT["dependencies"]}
    assert {"cryptography", "pandas", "numpy", "scikit-learn"} <= core


def test_version_is_single_sourced():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "fedsk.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", fedsk.__version__)


def _run(*args):
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, check=True
    ).stdout


def test_ci_reads_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    demo = _run(CI / "readme_commands.py", "demo")
    test = _run(CI / "readme_commands.py", "test")
    assert "pip install" in demo and "python examples/demo.py" in demo
    assert "pip install" in test and "python -m pytest" in test
    assert f"```bash\n{demo}```" in readme and f"```bash\n{test}```" in readme
    assert readme.index(demo) < readme.index(test)


def test_min_versions_pins_every_core_dependency():
    pins = dict(line.split("==") for line in _run(CI / "min_versions.py").splitlines())
    assert set(pins) == {
        re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in PROJECT["dependencies"]
    }
    for requirement in PROJECT["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        assert f">={pins[name]}" in requirement.replace(" ", "")
    oldest = _run(CI / "min_versions.py", "--python").strip()
    assert PROJECT["requires-python"] == f">={oldest}"


def test_ci_run_is_strict_and_ends_with_the_test_command():
    script = (CI / "run").read_text()
    assert "set -euo pipefail" in script
    assert "python -m venv" in script or '-m venv "$VENVS' in script
    # the last command is the README's test command: pytest's summary is the
    # last line printed
    last = [line for line in script.splitlines() if line.strip()][-1]
    assert last.startswith("exec bash") and "TEST_COMMAND" in last
