"""Regenerate the measured tables of ``docs/results.md`` from ``RESULTS.md``.

Usage::

    python benchmarks/make_results_doc.py            # rewrite docs/results.md
    python benchmarks/make_results_doc.py --check    # exit 1 if out of date

``docs/results.md`` is prose written by hand around tables that are never
copied by hand. Each table is an include block naming a benchmark's
section of ``benchmarks/RESULTS.md`` and, optionally, one of its ``###``
subsections::

    <!-- results: bench_linear / Classifiers: test accuracy against epsilon -->
    (generated: replaced on every run)
    <!-- /results -->

The block is replaced by that subsection's text (without its heading),
after a line naming the command and date of the run it comes from. Without
a subsection (``<!-- results: bench_scale -->``) the whole section is
included, without its ``##`` title and its command and run lines. A
benchmark calls :func:`update_doc` after writing its section, so the two
files never disagree; any benchmark can add blocks for its own sections. A
block whose section or subsection is missing says so in the page (and on
standard error) instead of failing the benchmark that called it.
"""

import argparse
import re
import sys
from pathlib import Path

from _report import RESULTS, markers

DOC = Path(__file__).resolve().parent.parent / "docs" / "results.md"
BLOCK = re.compile(
    r"(<!-- results: (?P<section>[\w-]+)(?: / (?P<subsection>[^>]*?))? -->\n)"
    r".*?"
    r"(<!-- /results -->)",
    re.DOTALL,
)
RUN_LINES = re.compile(r"^(Command: .*|Run \d{4}-\d\d-\d\dT[\d:]+, .*)$", re.M)


def section_text(results, section):
    """The body of benchmark ``section`` in the text of ``RESULTS.md``."""
    start, end = markers(section)
    found = re.search(re.escape(start) + "(.*?)" + re.escape(end), results, re.DOTALL)
    if found is None:
        raise KeyError(f"RESULTS.md has no section {section!r}; run its benchmark.")
    return found.group(1)


def provenance(body):
    """'Command `...`, run YYYY-MM-DD' from a section's body."""
    command = re.search(r"^Command: (`[^`]*`)", body, re.M)
    run = re.search(r"^Run (\d{4}-\d\d-\d\d)", body, re.M)
    parts = [f"command {command.group(1)}" if command else "command unknown"]
    parts.append(f"run {run.group(1)}" if run else "date unknown")
    return ", ".join(parts)


def subsection_text(body, subsection):
    """The text under ``### subsection`` up to the next ``###`` heading."""
    pattern = r"^### " + re.escape(subsection) + r"\n(.*?)(?=^### |\Z)"
    found = re.search(pattern, body, re.DOTALL | re.M)
    if found is None:
        raise KeyError(f"RESULTS.md has no subsection {subsection!r}.")
    return found.group(1)


def included(results, section, subsection):
    """What an include block of ``section`` (and ``subsection``) holds."""
    body = section_text(results, section)
    if subsection:
        text = subsection_text(body, subsection)
    else:
        text = RUN_LINES.sub("", re.sub(r"^## .*\n", "", body, count=1, flags=re.M))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    source = f"From [`RESULTS.md`](../benchmarks/RESULTS.md) ({provenance(body)})."
    return f"{source}\n\n{text}\n"


def render(results, doc):
    """``doc`` with every include block filled from ``results``."""

    def fill(match):
        try:
            text = included(results, match["section"], match["subsection"])
        except KeyError as missing:  # a section renamed or not run yet
            print(f"make_results_doc: {missing.args[0]}", file=sys.stderr)
            text = f"*Not in `RESULTS.md`: {missing.args[0]}*\n"
        return match.group(1) + text + match.group(4)

    return BLOCK.sub(fill, doc)


def update_doc(results_path=RESULTS, doc_path=DOC):
    """Rewrite ``doc_path``'s include blocks from ``results_path``.

    Returns
    -------
    changed : bool
        Whether the file was rewritten.
    """
    doc_path = Path(doc_path)
    old = doc_path.read_text()
    new = render(Path(results_path).read_text(), old)
    if new != old:
        doc_path.write_text(new)
    return new != old


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to read")
    parser.add_argument("--doc", default=DOC, help="the page to regenerate")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the page is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        doc = Path(args.doc).read_text()
        stale = render(Path(args.results).read_text(), doc) != doc
        print(f"{args.doc} is {'out of date' if stale else 'up to date'}.")
        return 1 if stale else 0
    changed = update_doc(args.results, args.doc)
    print(f"{args.doc} {'rewritten' if changed else 'already up to date'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
