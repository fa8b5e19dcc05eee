"""Regenerate the measured figures of the docs from ``RESULTS.md``.

Usage::

    python benchmarks/make_results_doc.py            # rewrite every page
    python benchmarks/make_results_doc.py --check    # exit 1 if one is out of date

``docs/results.md``, ``README.md`` and ``examples/README.md`` (``PAGES``)
are prose written by hand around figures that are never copied by hand.
Each table is an include block naming a benchmark's section of
``benchmarks/RESULTS.md`` and, optionally, one of its ``###`` subsections::

    <!-- results: bench_linear / Classifiers: test accuracy against epsilon -->
    (generated: replaced on every run)
    <!-- /results -->

The block is replaced by that subsection's text (without its heading),
after a line naming the command and date of the run it comes from (and
linking to ``RESULTS.md`` from the page's own directory). Without
a subsection (``<!-- results: bench_scale -->``) the whole section is
included, without its ``##`` title and its command and run lines. A
benchmark calls :func:`update_doc` after writing its section, so the two
files never disagree; any benchmark can add blocks for its own sections. A
block whose section or subsection is missing says so in the page (and on
standard error) instead of failing the benchmark that called it.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from _report import RESULTS, markers

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "results.md"
# every page with include blocks
PAGES = (DOC, ROOT / "README.md", ROOT / "examples" / "README.md")
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


def included(results, section, subsection, page=DOC):
    """What an include block of ``section`` (and ``subsection``) holds on ``page``."""
    body = section_text(results, section)
    if subsection:
        text = subsection_text(body, subsection)
    else:
        text = RUN_LINES.sub("", re.sub(r"^## .*\n", "", body, count=1, flags=re.M))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    link = Path(os.path.relpath(RESULTS, Path(page).resolve().parent)).as_posix()
    source = f"From [`RESULTS.md`]({link}) ({provenance(body)})."
    return f"{source}\n\n{text}\n"


def render(results, doc, page=DOC):
    """``doc``, the text of ``page``, with its blocks filled from ``results``."""

    def fill(match):
        try:
            text = included(results, match["section"], match["subsection"], page)
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
    new = render(Path(results_path).read_text(), old, doc_path)
    if new != old:
        doc_path.write_text(new)
    return new != old


def update_pages(results_path, pages=None):
    """Rewrite ``pages`` from ``results_path`` (by default every page of
    ``PAGES``, and only from the repository's ``RESULTS.md``: a development
    run into another file leaves them)."""
    if pages is None:
        repository = Path(results_path).resolve() == Path(RESULTS).resolve()
        pages = PAGES if repository else ()
    for page in pages:
        update_doc(results_path, page)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to read")
    parser.add_argument(
        "--doc", default=None, help="one page to regenerate (default: every page)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a page is out of date"
    )
    args = parser.parse_args(argv)
    pages = [Path(args.doc)] if args.doc else PAGES
    results = Path(args.results).read_text()
    stale = False
    for page in pages:
        if args.check:
            text = page.read_text()
            out_of_date = render(results, text, page) != text
            stale |= out_of_date
            print(f"{page} is {'out of date' if out_of_date else 'up to date'}.")
        else:
            changed = update_doc(args.results, page)
            print(f"{page} {'rewritten' if changed else 'already up to date'}.")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
