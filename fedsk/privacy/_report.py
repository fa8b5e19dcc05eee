"""Who spent how much privacy budget on what, in printable forms."""

import json
import math

from ._composition import composed_epsilon
from ._html import report_html


class PrivacyReport:
    """A snapshot of privacy ledgers: per party and per estimator.

    Parameters
    ----------
    ledgers : list of BudgetLedger
        The ledgers to report, one per party.

    Notes
    -----
    A party's total is the composition of all its releases at the party's
    delta (see :func:`~fedsk.privacy.composed_epsilon`); the per-estimator
    rows compose only that estimator's releases, so they need not add up to
    the total (composition is sub-additive).
    """

    def __init__(self, ledgers):
        self._ledgers = list(ledgers)
        self.parties = [self._party_summary(ledger) for ledger in self._ledgers]

    @staticmethod
    def _party_summary(ledger):
        spent, delta = ledger.spent()
        estimators = {}
        for event in ledger.events:
            estimators.setdefault(event.estimator, []).append(event)
        return {
            "party": ledger.name,
            "epsilon_spent": spent,
            "delta": delta,
            "epsilon_budget": ledger.epsilon,
            "epsilon_remaining": ledger.remaining(),
            "releases": len(ledger.events),
            "estimators": [
                {
                    "estimator": name,
                    "epsilon_spent": composed_epsilon(events, delta),
                    "releases": len(events),
                    "statistics": sorted({e.statistic for e in events}),
                    "mechanisms": sorted({e.mechanism for e in events}),
                    "trust": sorted({e.trust for e in events}),
                    "notes": list(dict.fromkeys(e.note for e in events if e.note)),
                }
                for name, events in estimators.items()
            ],
            "events": [event.to_dict() for event in ledger.events],
        }

    def to_dict(self):
        """Return the report as a dict: ``{"parties": [...]}``."""
        return {"parties": self.parties}

    def to_json(self, **kwargs):
        """Return the report as JSON text (infinite values as ``null``)."""

        def finite(value):
            if isinstance(value, float) and math.isinf(value):
                return None
            if isinstance(value, dict):
                return {k: finite(v) for k, v in value.items()}
            if isinstance(value, list):
                return [finite(v) for v in value]
            return value

        return json.dumps(finite(self.to_dict()), **kwargs)

    def to_html(self, path=None, title="fedsk privacy report"):
        """Return (and with ``path``, write) a self-contained HTML page.

        Per party: its ledger, one row per release, and a plot of the
        epsilon spent after each release against the budget (inline SVG;
        the page loads nothing else).
        """
        page = report_html(self.parties, self._ledgers, title)
        if path is not None:
            with open(path, "w", encoding="utf-8") as file:
                file.write(page)
        return page

    def to_frame(self):
        """Return one row per party and estimator as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self._rows())

    def _rows(self):
        rows = []
        for party in self.parties:
            for est in party["estimators"]:
                rows.append(
                    {
                        "party": party["party"],
                        "estimator": est["estimator"],
                        "epsilon": est["epsilon_spent"],
                        "releases": est["releases"],
                        "mechanisms": ", ".join(est["mechanisms"]),
                        "party_epsilon_spent": party["epsilon_spent"],
                        "party_epsilon_remaining": party["epsilon_remaining"],
                        "delta": party["delta"],
                    }
                )
        return rows

    def __str__(self):
        header = (
            "party",
            "estimator",
            "epsilon",
            "releases",
            "mechanisms",
            "party spent",
            "party left",
            "delta",
        )
        body = [
            (
                r["party"],
                r["estimator"],
                f"{r['epsilon']:.4g}",
                str(r["releases"]),
                r["mechanisms"],
                f"{r['party_epsilon_spent']:.4g}",
                f"{r['party_epsilon_remaining']:.4g}",
                f"{r['delta']:.2g}",
            )
            for r in self._rows()
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(8)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths))
            for row in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = dict.fromkeys(
            f"note ({est['estimator']}): {note}"
            for party in self.parties
            for est in party["estimators"]
            for note in est["notes"]
        )
        return "\n".join(lines + list(notes))

    def __repr__(self):
        return str(self)
