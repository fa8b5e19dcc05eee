"""What a trusted server is worth: cost and accuracy of the trust models.

Usage::

    python benchmarks/bench_secure.py            # full run, about 6 minutes
    python benchmarks/bench_secure.py --quick    # smoke run on small samples

Two parts, written to the ``bench_secure`` section of
``benchmarks/RESULTS.md``:

1. Overhead. The synthetic set (150,000 training rows x 20 features) is
   split over 10 and over 100 parties (a ``Federation`` built beforehand).
   For every trust model (``central``, ``local``, ``secure``,
   ``peer_to_peer``) it times one
   ``Federation.release`` of ``linear_moments`` (the 20 x 20 statistic:
   upper triangle of X^T X, 210 values, plus X^T y, the sums of X and y and
   the count, 252 coordinates) and one ``FederatedEstimator(Ridge())`` fit,
   which is that release plus a solve (best of ``--repeat`` after a
   warm-up, configurations interleaved so that load from other processes
   hits all of them alike), as a ratio to ``central`` in the same run. The
   bytes each party sends and receives per release are counted from
   ``Federation.last_transcript_`` (see ``payload_bytes``).
2. Utility. Test accuracy of ``FederatedEstimator(LogisticRegression())``
   and ``FederatedEstimator(GaussianNB())`` for each trust model at
   epsilon 0.1, 0.3 and 1 (``delta=0``), 10 parties, on the synthetic set.

The simulation runs every party's cryptography one after the other in one
process, so a "secure" time is the sum of all parties' work plus the
coordinator's; in a deployment the parties work in parallel.
"""

import argparse
import math
import shlex
import sys
import time
import warnings

import numpy as np
from _datasets import synthetic
from _report import RESULTS, markers, section_head, write_section
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB

from fedsk import FederatedEstimator, Federation, Party
from fedsk._federation import Request
from fedsk._statistics import STATISTICS
from fedsk.privacy import Clipping, budget_share

EPSILON = 1.0
EPSILONS = (0.1, 0.3, 1.0)
Y_BOUNDS = (0.0, 1.0)  # the synthetic target is a 0/1 label
# (label, trust)
MODES = [
    ("central", "central"),
    ("local", "local"),
    ("secure (masking)", "secure"),
    ("peer_to_peer", "peer_to_peer"),
]
TRUSTS = ("central", "local", "secure", "peer_to_peer")
TARGET = 2.0  # masking must add less than 2x to a 10-party ridge fit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per cell")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (best)")
    parser.add_argument("--results", default=RESULTS, help="RESULTS.md to update")
    return parser.parse_args(argv)


# -- bytes on the wire ------------------------------------------------------------


def payload_bytes(payload):
    """Size of a message payload as it would go over the wire.

    numpy arrays: ``nbytes``; bytes: their length; Python integers (Shamir
    shares, roster indices): their minimal big-endian length; strings (party
    names): UTF-8 length; containers: the sum of their items (keys
    included).
    """
    if isinstance(payload, np.ndarray):
        return payload.nbytes
    if isinstance(payload, (bytes, bytearray)):
        return len(payload)
    if isinstance(payload, str):
        return len(payload.encode())
    if isinstance(payload, (bool, np.bool_)):
        return 1
    if isinstance(payload, (int, np.integer)):
        return max((int(payload).bit_length() + 7) // 8, 1)
    if isinstance(payload, dict):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in payload.items())
    if isinstance(payload, (list, tuple)):
        return sum(payload_bytes(v) for v in payload)
    if payload is None:
        return 0
    raise TypeError(f"no wire size for {type(payload).__name__}")


def traffic(federation, trust, n_coords):
    """Mean bytes sent and received per party in the last release, and messages.

    A message to ``"*"`` (published) counts as received by every party.
    Central and local trust keep no transcript: a party sends its statistic
    (float64 or int64, 8 bytes a coordinate) and receives nothing.
    """
    names = federation.party_names
    if trust in ("central", "local"):
        return 8.0 * n_coords, 0.0, len(names)
    messages = federation.last_transcript_.messages
    sent = dict.fromkeys(names, 0)
    received = dict.fromkeys(names, 0)
    for message in messages:
        size = payload_bytes(message.payload)
        if message.sender in sent:
            sent[message.sender] += size
        for name in names if message.recipient == "*" else [message.recipient]:
            if name in received:
                received[name] += size
    return (
        float(np.mean(list(sent.values()))),
        float(np.mean(list(received.values()))),
        len(messages),
    )


# -- overhead ---------------------------------------------------------------------


def federation_of(split, n_parties, n_features):
    """The training rows dealt over ``n_parties`` parties (row i to i % n)."""
    X = split.X_train[:, :n_features]
    y = split.y_train.astype(float)
    labels = np.arange(len(y)) % n_parties
    return Federation(
        [Party(f"p{p}", X[labels == p], y[labels == p]) for p in range(n_parties)],
        n_jobs=1,
    )


def release_request(split, n_features, trust):
    epsilon, delta, rho = budget_share(EPSILON, 0.0, 1.0)
    lower, upper = (b[:n_features] for b in split.bounds)
    return Request(
        statistic="linear_moments",
        epsilon=epsilon,
        delta=delta,
        rho=rho,
        clipping=Clipping(lower, upper, None, *Y_BOUNDS),
        estimator="bench_secure",
        trust=trust,
    )


def ridge(split, n_features, trust):
    lower, upper = (b[:n_features] for b in split.bounds)
    return FederatedEstimator(
        Ridge(),
        epsilon=EPSILON,
        bounds=(lower, upper),
        y_bounds=Y_BOUNDS,
        trust=trust,
        n_jobs=1,
    )


def timed(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_overhead(split, party_counts, n_features, repeat):
    """Seconds (release, fit) and traffic per (n_parties, mode)."""
    n_coords = sum(
        math.prod(s) for s in STATISTICS["linear_moments"].shapes(n_features)
    )
    results = {}
    for n_parties in party_counts:
        print(f"overhead, {n_parties} parties", flush=True)
        runs = {}
        for label, trust in MODES:
            federation = federation_of(split, n_parties, n_features)
            request = release_request(split, n_features, trust)
            model = ridge(split, n_features, trust)
            seeds = np.random.SeedSequence(0)

            def release(f=federation, r=request, s=seeds):
                return f.release(r, seed_sequence=s)

            def fit(m=model, f=federation):
                return m.fit(f)

            runs[label] = (federation, trust, release, fit)
        times = {label: {"release": [], "fit": []} for label in runs}
        for round_ in range(repeat + 1):  # round 0 is the warm-up
            for label, (_, _, release, fit) in runs.items():
                t_release, t_fit = timed(release), timed(fit)
                if round_ > 0:
                    times[label]["release"].append(t_release)
                    times[label]["fit"].append(t_fit)
        for label, (federation, trust, _, _) in runs.items():
            # the fit made one release of the same statistic: its transcript
            sent, received, n_messages = traffic(federation, trust, n_coords)
            results[n_parties, label] = {
                "release": min(times[label]["release"]),
                "fit": min(times[label]["fit"]),
                "sent": sent,
                "received": received,
                "messages": n_messages,
                "runs": len(times[label]["fit"]),
            }
            print(f"  {label:<20} {results[n_parties, label]}", flush=True)
    return n_coords, results


# -- utility ----------------------------------------------------------------------


def bench_utility(seeds, sample):
    """Accuracy per (model, trust, epsilon): lists over seeds."""
    results = {}
    for seed in range(seeds):
        print(f"utility, seed {seed}", flush=True)
        split = synthetic(seed, sample=sample)
        for name, estimator in (
            ("LogisticRegression", LogisticRegression()),
            ("GaussianNB", GaussianNB()),
        ):
            for epsilon in EPSILONS:
                for trust in TRUSTS:
                    model = FederatedEstimator(
                        estimator,
                        epsilon=epsilon,
                        bounds=split.bounds,
                        classes=split.classes,
                        trust=trust,
                        random_state=seed,
                        n_jobs=1,
                    ).fit(split.X_train, split.y_train, parties=split.parties_train)
                    results.setdefault((name, trust, epsilon), []).append(
                        model.score(split.X_test, split.y_test)
                    )
    return results


# -- report -----------------------------------------------------------------------


def _mean_sd(values):
    values = np.asarray(values)
    return f"{values.mean():.4f} ± {values.std():.4f}"


def _kib(n_bytes):
    return f"{n_bytes / 1024:,.1f}"


def render(args, command, overhead, utility, shape, elapsed, repeat):
    end = markers("bench_secure")[1]
    n_coords, rows = overhead
    seeds = 1 if args.quick else args.seeds
    party_counts = sorted({n for n, _ in rows})
    lines = [
        *section_head(
            "bench_secure",
            "secure aggregation, distributed noise, peer-to-peer",
            command,
            args.quick,
            elapsed,
        ),
        "### Overhead per release and per fit",
        "",
        f"Synthetic set, {shape[0]:_} training rows x {shape[1]} features, rows "
        "dealt over the parties in turn (a `Federation` built beforehand, "
        f"`n_jobs=1`). Release: one `Federation.release` of `linear_moments` "
        f"({n_coords} coordinates: the upper triangle of the {shape[1]} x "
        f"{shape[1]} X^T X plus X^T y, the sums of X and y and the count) at "
        f"epsilon={EPSILON:g}, delta=0. Fit: `FederatedEstimator(Ridge())` on "
        f"the same federation (that release plus a solve). Best of {repeat} "
        "after a warm-up, configurations interleaved. "
        "Ratios to `central` in the same run. Bytes: mean per party per "
        "release, counted from `Federation.last_transcript_` (arrays: "
        "`nbytes`; keys and ciphertexts: their length; Shamir shares: 66 "
        "bytes); messages "
        "published to everyone count as received by every party. Central and "
        "local keep no transcript: a party sends its 8-byte-a-coordinate "
        "statistic. The simulation runs all parties' cryptography in one "
        "process, one after the other: a deployment's wall time is about the "
        "coordinator's share plus one party's.",
        "",
        "| parties | trust | release s | ratio | fit s | ratio | KiB sent / party "
        "| KiB received / party | messages |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in party_counts:
        central = rows[n, "central"]
        for label, _ in MODES:
            row = rows.get((n, label))
            if row is None:
                continue
            lines.append(
                f"| {n} | {label} | {row['release']:.3f} | "
                f"{row['release'] / central['release']:.2f}x | {row['fit']:.3f} | "
                f"{row['fit'] / central['fit']:.2f}x | {_kib(row['sent'])} | "
                f"{_kib(row['received'])} | {row['messages']:_} |"
            )
    ten = rows.get((10, "secure (masking)"))
    if ten is not None:
        ratio = ten["fit"] / rows[10, "central"]["fit"]
        verdict = "holds" if ratio < TARGET else "does NOT hold"
        lines += [
            "",
            f"Target: masking adds less than {TARGET:g}x to a 10-party ridge fit. "
            f"Measured {ratio:.2f}x: the target {verdict}.",
        ]
    lines += [
        "",
        "### Accuracy by trust model",
        "",
        f"Synthetic set, 10 parties (IID), test accuracy, mean ± sd over {seeds} "
        "seeds (each: its own split, party assignment and noise), `delta=0`, "
        "public bounds and classes. Secure and peer-to-peer sum the same "
        "noisy shares, so with the same seed they give identical models; "
        "local noise is about sqrt(10) times central.",
        "",
        "| model | epsilon | " + " | ".join(TRUSTS) + " |",
        "|---|---:|" + "---:|" * len(TRUSTS),
    ]
    for name in ("LogisticRegression", "GaussianNB"):
        for epsilon in EPSILONS:
            cells = [_mean_sd(utility[name, trust, epsilon]) for trust in TRUSTS]
            lines.append(f"| {name} | {epsilon:g} | " + " | ".join(cells) + " |")
    lines += ["", end]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    warnings.simplefilter("ignore")  # seeded-noise and convergence warnings
    started = time.perf_counter()
    sample = 5_000 if args.quick else None
    n_features = 3 if args.quick else 20
    party_counts = (10,) if args.quick else (10, 100)
    repeat = 1 if args.quick else args.repeat
    split = synthetic(0, sample=sample)
    overhead = bench_overhead(split, party_counts, n_features, repeat)
    utility = bench_utility(1 if args.quick else args.seeds, sample)
    shape = (split.X_train.shape[0], n_features)
    section = render(
        args,
        command,
        overhead,
        utility,
        shape,
        time.perf_counter() - started,
        repeat,
    )
    write_section(args.results, "bench_secure", section)
    print(section)


if __name__ == "__main__":
    main()
