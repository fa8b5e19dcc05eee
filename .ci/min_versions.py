"""The declared lower bounds of fedsk's core dependencies, as pins.

.ci/run installs exactly these versions on the oldest supported Python and
runs the fast test suite on them, so every ``>=`` in pyproject.toml is a
version that was installed and tested::

    python .ci/min_versions.py              # constraints: one name==version a line
    python .ci/min_versions.py --python     # oldest supported Python, e.g. 3.10
    python .ci/min_versions.py --check      # installed versions == the pins

Every core dependency must have a ``>=`` lower bound (an exact minimum to
test); extras are not pinned.
"""

import re
import sys
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
REQUIREMENT = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)"
)


def _project_table(text):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the two keys we need
        dependencies = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
        python = re.search(r'^requires-python\s*=\s*"([^"]*)"', text, re.M)
        lines = [] if dependencies is None else dependencies.group(1).splitlines()
        return {
            "dependencies": [
                match.group(1)
                for line in lines
                if (match := re.match(r'\s*"([^"]+)"', line.split("#")[0]))
            ],
            "requires-python": python.group(1) if python else "",
        }
    return tomllib.loads(text)["project"]


def minimum_pins(text=None):
    """``{distribution: lowest declared version}`` of every core dependency."""
    project = _project_table(PYPROJECT.read_text() if text is None else text)
    pins = {}
    for requirement in project["dependencies"]:
        match = REQUIREMENT.match(requirement.strip())
        if match is None:
            raise SystemExit(
                f"pyproject.toml: core dependency {requirement!r} has no '>=' lower "
                "bound; declare the oldest version fedsk supports"
            )
        pins[match.group(1)] = match.group(3)
    return pins


def oldest_python(text=None):
    project = _project_table(PYPROJECT.read_text() if text is None else text)
    match = re.match(r"\s*>=\s*(\d+\.\d+)", project["requires-python"])
    if match is None:
        raise SystemExit("pyproject.toml: requires-python must read '>=X.Y'")
    return match.group(1)


def _release(version):
    """``"1.24"`` and ``"1.24.0"`` alike: the release numbers, zeros dropped."""
    numbers = [int(part) for part in re.findall(r"\d+", version.split("+")[0])]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return numbers


def main(argv):
    if argv == ["--python"]:
        print(oldest_python())
    elif argv == ["--check"]:
        wrong = []
        for name, version in minimum_pins().items():
            installed = metadata.version(name)
            print(f"{name}=={installed}")
            if _release(installed) != _release(version):
                wrong.append(f"{name} {installed} (declared minimum {version})")
        if wrong:
            raise SystemExit("not the declared minimum: " + ", ".join(wrong))
    elif not argv:
        for name, version in minimum_pins().items():
            print(f"{name}=={version}")
    else:
        raise SystemExit("usage: min_versions.py [--python | --check]")


if __name__ == "__main__":
    main(sys.argv[1:])
