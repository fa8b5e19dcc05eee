"""What every benchmark writes: the machine it ran on, and its RESULTS.md section.

Each benchmark owns one section of ``benchmarks/RESULTS.md`` between
``<!-- name:start -->`` and ``<!-- name:end -->`` markers and replaces only
that section, so benchmarks can be re-run one at a time.
"""

import datetime
import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

import numpy as np
import sklearn

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("fedsk") is None:  # a checkout, fedsk not installed
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
import fedsk  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def markers(name):
    """The start and end markers of benchmark ``name``'s section."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def environment():
    """One line on the software and machine, for the section's header."""
    from threadpoolctl import threadpool_info

    blas = ", ".join(
        f"{p.get('internal_api')} {p.get('num_threads')} threads"
        for p in threadpool_info()
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, fedsk {fedsk.__version__}; "
        f"{os.cpu_count()} CPUs; BLAS: {blas or 'unknown'}; "
        f"load average at start: {load}"
    )


def section_head(name, title, command, quick, elapsed):
    """The first lines of benchmark ``name``'s section.

    Its start marker, ``## name: title``, the command that produced it
    (marked as a smoke run when ``quick``) and a line with the date, the
    ``elapsed`` seconds and the :func:`environment`.
    """
    now = datetime.datetime.now().isoformat(timespec="seconds")
    return [
        markers(name)[0],
        f"## {name}: {title}",
        "",
        f"Command: `{command}`" + (" (quick smoke run)" if quick else ""),
        "",
        f"Run {now}, {elapsed:.0f} s. {environment()}.",
        "",
    ]


def write_results(path, name, title, command, quick, elapsed, body):
    """Write benchmark ``name``'s section of ``path``: its head, ``body``
    (lines), its end marker. Returns the section's text."""
    head = section_head(name, title, command, quick, elapsed)
    section = "\n".join([*head, *body, markers(name)[1]])
    write_section(path, name, section)
    return section


def write_section(path, name, section):
    """Replace benchmark ``name``'s section of ``path`` (or append it)."""
    start, end = markers(name)
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
