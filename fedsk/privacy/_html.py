"""A privacy report as one self-contained HTML page (no scripts, no links).

Per party: the ledger (every release, in order, with its mechanism, noise
and guarantee) and a plot, drawn as inline SVG, of the epsilon spent after
each release against the party's budget.
"""

import html
import math

from ._composition import composed_epsilon

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #a40; }
"""
_WIDTH, _HEIGHT, _PAD = 480, 160, 36
# CSS class of the ledger table's columns: numbers right-aligned, notes red
_CELL_CLASS = {0: "num", 6: "num", 7: "num", 8: "num", 9: "note"}


def report_html(parties, ledgers, title="fedsk privacy report"):
    """The page for a :class:`~fedsk.privacy.PrivacyReport`'s parties."""
    sections = [
        _party_section(summary, ledger) for summary, ledger in zip(parties, ledgers)
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n"
    )


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "inf"
    return f"{value:.4g}"


def _party_section(summary, ledger):
    name = html.escape(summary["party"])
    head = (
        f"<h2>Party {name}</h2><p>Spent epsilon {_fmt(summary['epsilon_spent'])} "
        f"of {_fmt(summary['epsilon_budget'])} (delta {_fmt(summary['delta'])}); "
        f"remaining {_fmt(summary['epsilon_remaining'])}; "
        f"{summary['releases']} releases.</p>"
    )
    columns = (
        "#",
        "estimator",
        "statistic",
        "mechanism",
        "trust",
        "unit",
        "epsilon",
        "delta",
        "noise scale",
        "note",
    )
    rows = []
    for i, event in enumerate(ledger.events, start=1):
        cells = (
            str(i),
            event.estimator,
            event.statistic,
            event.mechanism,
            event.trust,
            event.unit,
            _fmt(event.epsilon),
            _fmt(event.delta),
            _fmt(event.noise_scale),
            event.note,
        )
        rows.append(
            "<tr>"
            + "".join(
                f"<td class='{_CELL_CLASS.get(c, '')}'>{html.escape(v)}</td>"
                for c, v in enumerate(cells)
            )
            + "</tr>"
        )
    table = (
        "<table><tr>"
        + "".join(f"<th>{c}</th>" for c in columns)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    return head + _spend_plot(ledger, summary["delta"]) + table


def _spend_plot(ledger, delta):
    """Inline SVG: epsilon spent after each release, and the budget line."""
    spent = [
        composed_epsilon(ledger.events[: i + 1], delta)
        for i in range(len(ledger.events))
    ]
    finite = [s for s in spent if math.isfinite(s)]
    budget = ledger.epsilon
    top = max([*finite, budget if math.isfinite(budget) else 0.0, 1e-9])
    n = max(len(spent), 1)

    def x(i):
        return _PAD + (_WIDTH - 2 * _PAD) * (i + 1) / n

    def y(v):
        return _HEIGHT - _PAD + (2 * _PAD - _HEIGHT) * min(v, top) / top

    points = " ".join(
        f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(spent) if math.isfinite(v)
    )
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' "
        f"height='{_HEIGHT}' role='img' aria-label='epsilon spent per release'>",
        f"<line x1='{_PAD}' y1='{_HEIGHT - _PAD}' x2='{_WIDTH - _PAD}' "
        f"y2='{_HEIGHT - _PAD}' stroke='#444'/>",
        f"<line x1='{_PAD}' y1='{_PAD}' x2='{_PAD}' y2='{_HEIGHT - _PAD}' "
        "stroke='#444'/>",
        f"<text x='{_PAD}' y='{_PAD - 8}' font-size='11'>epsilon spent "
        f"(max {_fmt(top)})</text>",
        f"<text x='{_WIDTH - _PAD}' y='{_HEIGHT - 10}' font-size='11' "
        "text-anchor='end'>release</text>",
    ]
    if math.isfinite(budget):
        parts.append(
            f"<line x1='{_PAD}' y1='{y(budget):.1f}' x2='{_WIDTH - _PAD}' "
            f"y2='{y(budget):.1f}' stroke='#c33' stroke-dasharray='4 3'/>"
            f"<text x='{_WIDTH - _PAD}' y='{y(budget) - 4:.1f}' font-size='11' "
            "text-anchor='end' fill='#c33'>budget</text>"
        )
    if points:
        parts.append(
            f"<polyline points='{points}' fill='none' stroke='#26a' stroke-width='2'/>"
        )
    parts.append("</svg>")
    return "".join(parts)
