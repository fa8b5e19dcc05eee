"""What the examples share: their options, the results table, the plot.

Each example compares, on one common test set, fedsk at several privacy
budgets with two non-private references fitted by scikit-learn: the pooled
rows (what the parties could only do by handing their rows to someone) and
each party alone on its own rows. :func:`print_table` prints them;
:func:`plot_privacy_utility` draws the score against epsilon, one panel per
model, with the references as horizontal lines.
"""

import argparse
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from sklearn.base import clone

from fedsk import PrivacyAccountant

matplotlib.use("Agg")  # write PNG files; no display needed
import matplotlib.pyplot as plt  # noqa: E402

# With more parties than this, the parties alone are drawn as a median line
# and a band from the 10th to the 90th percentile instead of one line each.
MAX_PARTY_LINES = 6
# Smallest range of scores a panel's vertical axis shows.
MIN_SPAN = 0.05


def parse_args(description, argv=None, *, seeds=3):
    """The options every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--sample", type=int, metavar="N", help="use a random sample of N rows"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=seeds,
        metavar="N",
        help=f"noisy fits per epsilon, each with fresh noise (default {seeds})",
    )
    parser.add_argument(
        "--epsilons",
        type=float,
        nargs="+",
        metavar="EPS",
        help="privacy budgets to plot (default: the example's own)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where to save the plot (default: the current directory)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.sample is not None and args.sample < 100:
        parser.error("--sample must be at least 100 rows")
    return args


@dataclass
class Panel:
    """One model's results: fedsk per epsilon, and the references.

    Attributes
    ----------
    model : str
        The model's name, the panel's title.
    pooled : float
        scikit-learn on the pooled rows, no privacy.
    alone : dict
        Party name -> scikit-learn on that party's rows alone, no privacy.
    fedsk : dict
        Epsilon -> list of scores of the noisy fits (one per seed);
        ``math.inf`` -> the noise-free fit.
    """

    model: str
    pooled: float = math.nan
    alone: dict = field(default_factory=dict)
    fedsk: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """Training rows with their party, and one common test set."""

    X_train: object
    y_train: np.ndarray
    parties_train: np.ndarray
    X_test: object
    y_test: np.ndarray


def compare(name, split, *, pooled, federated, epsilons, seeds, metrics, party_kind):
    """Fit every model of one panel and score it on the common test set.

    Parameters
    ----------
    name : str
        The model's name, for the table and the plot.
    split : Split
    pooled : estimator
        The scikit-learn model of the references, fitted (a clone) on the
        pooled training rows, then on each party's rows alone.
    federated : callable
        ``federated(epsilon, accountant)`` returns an unfitted fedsk model
        that charges ``accountant``; it is fitted with ``parties=``.
    epsilons : sequence of float
        Budgets of the noisy fits, ``seeds`` fits each; one noise-free fit
        (``epsilon=inf``) is added.
    seeds : int
    metrics : dict
        Metric name -> ``score(model, X, y)``; the first is plotted.
    party_kind : str
        What a party is ("airport"), for the table.

    Returns
    -------
    panel : Panel
    rows : list of tuple of str
        Table rows: model, trained on, epsilon, each metric, epsilon spent
        per party, seconds per fit. With more than ``MAX_PARTY_LINES``
        parties, those alone are summarised in one row.
    reports : dict
        Epsilon -> privacy report of its first fit.
    """
    primary = next(iter(metrics))
    panel = Panel(name)
    rows = []

    def scored(model):
        return {
            m: score(model, split.X_test, split.y_test) for m, score in metrics.items()
        }

    def row(trained_on, epsilon, scores, spent="", seconds=""):
        cells = [mean_sd(scores[m]) for m in metrics]
        return (name, trained_on, epsilon, *cells, spent, seconds)

    started = time.perf_counter()
    reference = clone(pooled).fit(split.X_train, split.y_train)
    seconds = f"{time.perf_counter() - started:.2f}"
    scores = scored(reference)
    panel.pooled = scores[primary]
    rows.append(
        row("scikit-learn, pooled rows", "not private", _lists(scores), "", seconds)
    )
    names = np.unique(split.parties_train)
    alone_scores = {m: [] for m in metrics}
    for party in names:
        own = split.parties_train == party
        if np.unique(split.y_train[own]).size < 2:
            continue  # too few rows left (a small --sample) to fit alone
        alone = clone(pooled).fit(split.X_train[own], split.y_train[own])
        scores = scored(alone)
        panel.alone[str(party)] = scores[primary]
        for m, value in scores.items():
            alone_scores[m].append(value)
        if len(names) <= MAX_PARTY_LINES:
            rows.append(
                row(
                    f"{party} alone ({own.sum():,} rows)", "not private", _lists(scores)
                )
            )
    if len(names) > MAX_PARTY_LINES and panel.alone:
        # many parties: one row with the median and the 10-90% range
        cells = []
        for m in metrics:
            low, median, high = np.quantile(alone_scores[m], [0.1, 0.5, 0.9])
            cells.append(f"{median:.4f} ({low:.4f} to {high:.4f})")
        trained_on = f"one {party_kind} alone: median (10-90%) of {len(panel.alone)}"
        rows.append((name, trained_on, "not private", *cells, "", ""))

    reports = {}
    for epsilon in [*epsilons, math.inf]:
        results = {m: [] for m in metrics}
        spent = {}
        started = time.perf_counter()
        fits = seeds if math.isfinite(epsilon) else 1
        for _ in range(fits):
            # a ceiling of epsilon per party: a fit that would overspend is refused
            accountant = PrivacyAccountant(epsilon=epsilon)
            model = federated(epsilon, accountant)
            model.fit(split.X_train, split.y_train, parties=split.parties_train)
            for m, value in scored(model).items():
                results[m].append(value)
            report = accountant.privacy_report()
            reports.setdefault(epsilon, report)
            spent = {
                p["party"]: p["epsilon_spent"] for p in report.to_dict()["parties"]
            }
        panel.fedsk[epsilon] = results[primary]
        seconds = f"{(time.perf_counter() - started) / fits:.2f}"
        trained_on = f"fedsk, {len(names)} {party_kind}s"
        rows.append(
            row(
                trained_on, epsilon_label(epsilon), results, spent_label(spent), seconds
            )
        )
    return panel, rows, reports


def _lists(scores):
    return {m: [value] for m, value in scores.items()}


def mean_sd(scores):
    """``"0.8123 ± 0.0040"`` (or one value, for a single score)."""
    if len(scores) == 1:
        return f"{scores[0]:.4f}"
    return f"{statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f}"


def epsilon_label(epsilon):
    return "inf (no noise)" if math.isinf(epsilon) else f"{epsilon:g}"


def spent_label(spent):
    """Epsilon spent by each party: one value when they all spent the same."""
    values = sorted({float(f"{v:.3g}") for v in spent.values()})
    if len(values) == 1:
        return f"{values[0]:g} each"
    return f"{values[0]:g} to {values[-1]:g}"


def print_table(header, rows):
    """Print ``rows`` under ``header``, columns padded to their widest cell."""
    cells = [header, *rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))


def plot_privacy_utility(path, panels, *, metric, title, party_kind):
    """Save the score of every panel's model against epsilon as a PNG.

    fedsk is drawn as the mean over seeds with a bar of one standard
    deviation either side; its noise-free fit, the pooled scikit-learn fit
    and each party alone (scikit-learn, no privacy) as horizontal lines.
    """
    figure, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False
    )
    for ax, panel in zip(axes[0], panels):
        finite = sorted(e for e in panel.fedsk if math.isfinite(e))
        means = [statistics.mean(panel.fedsk[e]) for e in finite]
        sds = [
            statistics.stdev(panel.fedsk[e]) if len(panel.fedsk[e]) > 1 else 0.0
            for e in finite
        ]
        seeds = max(len(panel.fedsk[e]) for e in finite) if finite else 1
        curve = "fedsk (mean ± sd over seeds)" if seeds > 1 else "fedsk"
        ax.errorbar(
            finite,
            means,
            yerr=sds,
            marker="o",
            capsize=3,
            color="tab:blue",
            label=curve,
        )
        if math.inf in panel.fedsk:
            ax.axhline(
                statistics.mean(panel.fedsk[math.inf]),
                color="tab:blue",
                linestyle=":",
                label="fedsk, no noise (epsilon = inf)",
            )
        ax.axhline(
            panel.pooled, color="black", label="scikit-learn, pooled rows (not private)"
        )
        _draw_alone(ax, panel.alone, party_kind)
        ax.set_xscale("log")
        ax.set_xlabel("epsilon per party (log scale)")
        ax.set_ylabel(metric)
        ax.set_title(panel.model)
        ax.grid(True, which="major", alpha=0.3)
        low = min(
            [m - s for m, s in zip(means, sds)]
            + [panel.pooled]
            + _alone_levels(panel.alone)
        )
        high = max([m + s for m, s in zip(means, sds)] + [panel.pooled])
        # at least MIN_SPAN tall, so that a difference of 0.002 does not
        # look like a cliff
        span = max(high - low, MIN_SPAN)
        middle = (high + low) / 2
        ax.set_ylim(middle - 0.55 * span, middle + 0.55 * span)
        handles, labels = ax.get_legend_handles_labels()
        first = labels.index(curve)  # the curve first
        order = [first, *(i for i in range(len(labels)) if i != first)]
        ax.legend(
            [handles[i] for i in order],
            [labels[i] for i in order],
            fontsize="small",
            loc="best",
        )
    figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _alone_levels(alone):
    """The values the parties-alone references are drawn at."""
    scores = sorted(alone.values())
    if len(scores) <= MAX_PARTY_LINES:
        return scores
    return list(np.quantile(scores, [0.1, 0.5]))


def _draw_alone(ax, alone, party_kind):
    scores = sorted(alone.values())
    if not scores:
        return
    if len(scores) <= MAX_PARTY_LINES:
        colours = ["orange", "green", "red", "purple", "brown", "pink"]
        for colour, (name, score) in zip(colours, sorted(alone.items())):
            ax.axhline(
                score,
                color=f"tab:{colour}",
                linestyle="--",
                label=f"{name} alone (not private)",
            )
        return
    low, median, high = np.quantile(scores, [0.1, 0.5, 0.9])
    ax.axhspan(low, high, color="grey", alpha=0.15)
    ax.axhline(
        median,
        color="grey",
        linestyle="--",
        label=f"one {party_kind} alone: median, 10-90% band (not private)",
    )
