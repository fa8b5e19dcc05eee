"""Network deployment: wall time and bytes per fit, network vs in-process.

Starts ``fedsk serve`` and one ``fedsk party`` process per party on
127.0.0.1 (mutual TLS, kits from ``fedsk certs``), each agent reading its own
Parquet file, and fits through ``Federation.connect``; the same rows as
in-process ``Party`` objects give the baseline. Timings are the best of
``--repeat`` fits after a warm-up; bytes are what the coordinator sent and
received (each also crosses the server-agent leg once), and everything the
agents and the server exchanged, counted by a byte-counting proxy in front of
the server.

Then, in the same run, Flower 1.42 on the same LogisticRegression task (same
rows, same parties, same test rows): FedAvg over scikit-learn
LogisticRegression, one lbfgs iteration per round, deployed twice on
127.0.0.1 without TLS: its deployment engine (``flower-superlink``, one
``flower-supernode`` per party, ``flwr run`` of ``benchmarks/flower_app``) and
its gRPC API (``_flower_grpc.py``). Flower runs in its own venv, never in
fedsk's: build it once with ``--make-flower-venv`` (into
``benchmarks/.flower-venv``, gitignored) or pass ``--flower-python``; without
it the Flower rows are skipped and the section says so.

    python benchmarks/bench_network.py [--quick] [--flower-python PATH]
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _flower_compare import (
    ByteProxy,
    PeakRss,
    flower_version,
    free_port,
    run_deployment,
    run_grpc,
)
from _report import RESULTS, environment, write_section
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge

from fedsk import FederatedEstimator, Federation, Party
from fedsk.network import provision

N_PARTIES = 3
FLOWER = "1.42.0"
FLOWER_VENV = Path(__file__).resolve().parent / ".flower-venv"
MB = 2**20


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ridge-rows", type=int, default=1_000_000)
    parser.add_argument("--logistic-rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument(
        "--flower-python",
        default=str(FLOWER_VENV / "bin" / "python"),
        help="Python of a venv with flwr==1.42 (default: the one "
        "--make-flower-venv builds)",
    )
    parser.add_argument("--flower-rounds", type=int, default=10)
    parser.add_argument(
        "--make-flower-venv",
        action="store_true",
        help=f"build {FLOWER_VENV} (flwr=={FLOWER}, scikit-learn, numpy) and exit",
    )
    parser.add_argument("--no-flower", action="store_true")
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_flower_venv():
    """A venv of its own for Flower, so its pins never touch fedsk's."""
    subprocess.run([sys.executable, "-m", "venv", str(FLOWER_VENV)], check=True)
    pip = [str(FLOWER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"flwr=={FLOWER}", "scikit-learn", "numpy"], check=True)
    print(f"Flower venv ready: --flower-python {FLOWER_VENV / 'bin' / 'python'}")


def datasets(args):
    rng = np.random.default_rng(0)
    d = args.features
    n = args.ridge_rows
    X = rng.normal(size=(n, d))
    w = rng.uniform(-1, 1, size=d)
    ridge = (X, X @ w + rng.normal(size=n))
    n = args.logistic_rows
    X = rng.normal(size=(n, d))
    logit = (X, (X @ w + rng.logistic(size=n) > 0).astype(int))
    return {"ridge": ridge, "logit": logit}


def split(X, y, k=N_PARTIES, held_out=0.1):
    n_test = int(len(y) * held_out)
    test = (X[:n_test], y[:n_test])
    parts = np.array_split(np.arange(n_test, len(y)), k)
    return [(X[p], y[p]) for p in parts], test


def start(root, groups):
    """The server, a byte-counting proxy in front of it, and the agents.

    The agents dial the proxy; the coordinator dials the server directly.
    Returns the server's address, the proxy, the processes (server first,
    proxy last) and the time (``time.time()``) the server was launched.
    """
    names = [n for g in groups.values() for n in g["names"]]
    provision(str(root / "kits"), "127.0.0.1", names)
    port = free_port()
    address = f"127.0.0.1:{port}"
    proxy = ByteProxy(root, "fedsk", port, sys.executable)
    fedsk = [sys.executable, "-m", "fedsk"]
    launched = time.time()
    procs = [
        subprocess.Popen(
            [
                *fedsk,
                "serve",
                "--address",
                address,
                "--certs",
                str(root / "kits/server"),
            ],
            stdout=open(root / "server.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
    ]
    for group in groups.values():
        group["agents"] = []
        for name, (X, y) in zip(group["names"], group["parts"]):
            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
            frame["y"] = y
            path = root / f"{name}.parquet"
            frame.to_parquet(path)
            procs.append(
                subprocess.Popen(
                    [
                        *fedsk,
                        "party",
                        "--server",
                        f"127.0.0.1:{proxy.port}",
                        "--certs",
                        str(root / "kits" / name),
                        "--name",
                        name,
                        "--data",
                        str(path),
                        "--target",
                        "y",
                        "--epsilon",
                        "inf",
                        "--ledger",
                        str(root / f"{name}.db"),
                        "--trust",
                        "central,local,secure,peer_to_peer",
                    ],
                    stdout=open(root / f"{name}.log", "wb"),  # noqa: SIM115
                    stderr=subprocess.STDOUT,
                )
            )
            group["agents"].append(procs[-1].pid)
    return address, proxy, [*procs, proxy.process], launched


def terminate(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def connect(address, root, names):
    deadline = time.monotonic() + 300
    while True:
        try:
            return Federation.connect(
                address, certs=str(root / "kits/client"), parties=names, timeout=300
            )
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def timed(make, fed, repeat, proxy=None):
    """Best of ``repeat`` fits after a warm-up, and the warm-up's own time.

    The warm-up is the first fit (agents load and cache their rows). Bytes are
    those of the last fit: the coordinator's, and with ``proxy`` the party
    leg's (agents and server, both directions).
    """
    t = time.perf_counter()
    make().fit(fed)
    first = time.perf_counter() - t
    best, nbytes, party_bytes, model = np.inf, 0, 0, None
    for _ in range(repeat):
        before = (fed.bytes_sent_ + fed.bytes_received_) if proxy else 0
        party_before = proxy.total() if proxy else 0
        t = time.perf_counter()
        model = make().fit(fed)
        best = min(best, time.perf_counter() - t)
        if proxy:
            nbytes = fed.bytes_sent_ + fed.bytes_received_ - before
            party_bytes = proxy.total() - party_before
    return best, first, nbytes, party_bytes, model


def make_cases():
    """(data set, label, estimator factory) for every fit measured."""
    return [
        (
            "ridge",
            "Ridge, epsilon=inf",
            lambda: FederatedEstimator(Ridge(), epsilon=np.inf),
        ),
        (
            "ridge",
            "Ridge, epsilon=1, local",
            lambda: FederatedEstimator(
                Ridge(), epsilon=1.0, bounds=(-5, 5), y_bounds=(-15, 15), trust="local"
            ),
        ),
        (
            "ridge",
            "Ridge, epsilon=1, secure",
            lambda: FederatedEstimator(
                Ridge(), epsilon=1.0, bounds=(-5, 5), y_bounds=(-15, 15), trust="secure"
            ),
        ),
        (
            "logit",
            "LogisticRegression, epsilon=inf",
            lambda: FederatedEstimator(
                LogisticRegression(), epsilon=np.inf, bounds=(-5, 5), classes=[0, 1]
            ),
        ),
        (
            "logit",
            "LogisticRegression, epsilon=1, local",
            lambda: FederatedEstimator(
                LogisticRegression(),
                epsilon=1.0,
                bounds=(-5, 5),
                classes=[0, 1],
                trust="local",
            ),
        ),
        (
            "logit",
            "LogisticRegression, epsilon=1, secure",
            lambda: FederatedEstimator(
                LogisticRegression(),
                epsilon=1.0,
                bounds=(-5, 5),
                classes=[0, 1],
                trust="secure",
            ),
        ),
        (
            "logit",
            "HistGradientBoostingClassifier, epsilon=1, local",
            lambda: FederatedEstimator(
                HistGradientBoostingClassifier(random_state=0),
                epsilon=1.0,
                bounds=(-5, 5),
                classes=[0, 1],
                trust="local",
            ),
        ),
    ]


def coordinator(spec):
    """A fresh data scientist's process: connect, fit once, report (JSON).

    Run as ``bench_network.py --coordinator SPEC`` by ``cold_start``.
    """
    spec = json.loads(Path(spec).read_text())
    root = Path(spec["root"])
    fed = connect(spec["address"], root, spec["names"])
    connected = time.time()
    make = next(m for _, label, m in make_cases() if label == LOGIT_INF)
    t = time.perf_counter()
    model = make().fit(fed)
    fit = time.perf_counter() - t
    with np.load(spec["test"]) as test:
        score = model.score(test["X"], test["y"])
    result = {"connected": connected, "fit": fit, "score": score}
    Path(spec["out"]).write_text(json.dumps(result))


def cold_start(root, group):
    """A fresh ``fedsk serve``, LogisticRegression agents and coordinator.

    Start-up: launching the server and agents (kits already provisioned)
    until a new coordinator process has connected; then its first fit. Peak
    RSS of each side over the whole, the coordinator's imports included.
    """
    root = Path(root) / "cold"
    root.mkdir()
    X_test, y_test = group["test"]
    np.savez(root / "test.npz", X=X_test, y=y_test)
    address, _, procs, launched = start(root, {"logit": group})
    spec = {
        "root": str(root),
        "address": address,
        "names": group["names"],
        "test": str(root / "test.npz"),
        "out": str(root / "coordinator.json"),
    }
    (root / "spec.json").write_text(json.dumps(spec))
    try:
        fit = subprocess.Popen(
            [sys.executable, __file__, "--coordinator", str(root / "spec.json")]
        )
        with PeakRss(
            {
                "server": lambda: [procs[0].pid],
                "parties": lambda: group["agents"],
                "coordinator": lambda: [fit.pid],
            }
        ) as rss:
            fit.wait()
    finally:
        terminate(procs)
    result = json.loads(Path(spec["out"]).read_text())
    result["startup"] = result["connected"] - launched
    result["rss"] = rss.peak
    return result


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    if args.coordinator:
        coordinator(args.coordinator)
        return
    if args.make_flower_venv:
        make_flower_venv()
        return
    command = shlex.join(["python", *(sys.argv if argv is None else [__file__, *argv])])
    if args.quick:
        args.ridge_rows, args.logistic_rows, args.repeat = 30_000, 20_000, 1
        args.flower_rounds = min(args.flower_rounds, 3)
    started = time.perf_counter()
    data = datasets(args)
    groups = {}
    for key, prefix in (("ridge", "r"), ("logit", "l")):
        parts, test = split(*data[key])
        groups[key] = {
            "names": [f"{prefix}{i}" for i in range(N_PARTIES)],
            "parts": parts,
            "test": test,
        }
    rows, flower = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        address, proxy, procs, _ = start(root, groups)
        try:
            remote = {k: connect(address, root, g["names"]) for k, g in groups.items()}
            local = {
                k: Federation(
                    [Party(n, X, y) for n, (X, y) in zip(g["names"], g["parts"])]
                )
                for k, g in groups.items()
            }
            for key, label, make in make_cases():
                X_test, y_test = groups[key]["test"]
                t_local, _, _, _, m_local = timed(make, local[key], args.repeat)
                with PeakRss(
                    {
                        "server": lambda: [procs[0].pid],
                        "parties": lambda key=key: groups[key]["agents"],
                        "coordinator": lambda: [os.getpid()],
                    }
                ) as rss:
                    t_net, first, nbytes, party_bytes, m_net = timed(
                        make, remote[key], args.repeat, proxy
                    )
                rows.append(
                    {
                        "label": label,
                        "key": key,
                        "t_local": t_local,
                        "t_net": t_net,
                        "first": first,
                        "bytes": nbytes,
                        "party_bytes": party_bytes,
                        "releases": len(m_net.fit_ledger_.events),
                        "s_local": m_local.score(X_test, y_test),
                        "s_net": m_net.score(X_test, y_test),
                        "rss": rss.peak,
                    }
                )
                print(rows[-1], flush=True)
        finally:
            terminate(procs)
        cold = cold_start(root, groups["logit"])
        print("cold", cold, flush=True)
        version = None if args.no_flower else flower_version(args.flower_python)
        if version:
            target = next(r for r in rows if r["label"] == LOGIT_INF)["s_net"]
            group = groups["logit"]
            for mode, run in (
                ("deployment engine", run_deployment),
                ("gRPC", run_grpc),
            ):
                try:
                    flower[mode] = run(
                        args.flower_python,
                        root,
                        group["parts"],
                        group["test"],
                        args.flower_rounds,
                        target,
                    )
                except RuntimeError as error:
                    flower[mode] = str(error)
                print(mode, flower[mode], flush=True)
    section = report(args, command, started, rows, cold, flower, version)
    write_section(args.results, "bench_network", section)
    print(section)


LOGIT_INF = "LogisticRegression, epsilon=inf"


def report(args, command, started, rows, cold, flower, version):
    """The RESULTS.md section: fedsk network vs in-process, then vs Flower."""
    d = args.features
    sizes = {
        "ridge": f"{args.ridge_rows:_} x {d}",
        "logit": f"{args.logistic_rows:_} x {d}",
    }
    lines = [
        "<!-- bench_network:start -->",
        "## bench_network: party agents over gRPC + mutual TLS vs in-process, "
        "and vs Flower",
        "",
        f"Command: `{command}`",
        "",
        f"Run {time.strftime('%Y-%m-%dT%H:%M:%S')}, "
        f"{time.perf_counter() - started:.0f} s. {environment()}.",
        "",
        f"One `fedsk serve` and {N_PARTIES} `fedsk party` processes per dataset on "
        "127.0.0.1 (mutual TLS, kits from `fedsk certs`), each agent reading its "
        "own Parquet file; the agents dial the server through a byte-counting "
        "TCP proxy (`benchmarks/_flower_proxy.py`), the coordinator fits through "
        "`Federation.connect` directly. In-process: the same rows as in-memory "
        "`Party` objects, `n_jobs=None`. "
        f"Best of {args.repeat} fits after a warm-up. Bytes: requests sent plus "
        "answers received by the coordinator in one fit; party leg: everything "
        "the agents and the server exchanged during that fit, both directions, "
        "TLS included (the proxy's count). 10% of the rows held out for the "
        "score (R^2 or accuracy). Everything shares the machine's 2 cores: "
        "server, agents, coordinator. In-process with `n_jobs=None` runs the "
        "parties' work one after the other in the coordinator's process, while "
        "the agents compute at the same time in their own processes: a network "
        "time below the in-process one is that parallelism, not a faster "
        "transport.",
        "",
        "| fit | rows x features | in-process s | network s | ratio | bytes per fit "
        "| party-leg bytes | releases | score in-process | score network |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {sizes[r['key']]} | {r['t_local']:.3f} | "
            f"{r['t_net']:.3f} | {r['t_net'] / r['t_local']:.2f}x | "
            f"{r['bytes']:_} | {r['party_bytes']:_} | {r['releases']} | "
            f"{r['s_local']:.4f} | {r['s_net']:.4f} |"
        )
    lines += ["", *flower_report(args, rows, cold, flower, version)]
    lines.append("<!-- bench_network:end -->")
    return "\n".join(lines)


def flower_report(args, rows, cold, flower, version):
    """The comparison with Flower on the LogisticRegression task."""
    title = (
        f"### LogisticRegression {args.logistic_rows:_} x {args.features}, "
        f"{N_PARTIES} parties: fedsk vs Flower"
    )
    if not version:
        why = (
            "`--no-flower`"
            if args.no_flower
            else f"no `flwr` importable by `{args.flower_python}` (build it with "
            "`python benchmarks/bench_network.py --make-flower-venv`, or pass "
            "`--flower-python`)"
        )
        return [title, "", f"Flower skipped: {why}. No Flower figure here.", ""]
    ours = [r for r in rows if r["label"].startswith("LogisticRegression")]
    base = next(r for r in ours if r["label"] == LOGIT_INF)
    rounds = args.flower_rounds
    lines = [
        title,
        "",
        f"Flower {version} in its own venv, on 127.0.0.1 without TLS "
        "(`--insecure`; fedsk keeps its mutual TLS), same rows, same "
        f"{N_PARTIES} parties, same test rows: FedAvg over scikit-learn "
        "`LogisticRegression` (warm start, one lbfgs iteration per round, "
        f"weighted by rows), {rounds} rounds, test accuracy of the global "
        "model after each round (on the server, not timed apart). Two ways to "
        "run it, neither of them Ray simulation:",
        "",
        "- **deployment engine**: `flower-superlink`, one `flower-supernode` "
        "per party, `flwr run benchmarks/flower_app` (a Flower app). In Flower "
        "1.42 the SuperNodes talk to the SuperLink over HTTP (its gRPC Fleet "
        "API is deprecated), and each SuperNode starts a new `flwr-clientapp` "
        "process for every message, which imports Flower and scikit-learn and "
        "reads the party's rows again. Start-up: launching the SuperLink and "
        "SuperNodes until all SuperNodes registered. Fit: `flwr run` until the "
        "ServerApp holds the final model.",
        "- **gRPC**: `flwr.server.start_server` and one `flwr.client.start_client` "
        "process per party (grpc-bidi; deprecated since Flower 1.13, still "
        "shipped), `benchmarks/_flower_grpc.py`. The clients keep their rows in "
        "memory between rounds. Start-up: launching the processes until the "
        "server sampled its clients for round 1. Fit: from then to the final "
        "model.",
        "",
        "fedsk: the network rows above (best warm fit, and the first fit, when "
        "the agents still load their Parquet files), whose coordinator is this "
        "benchmark's own process (its memory is not comparable: it holds every "
        "data set here); and a cold row: a fresh `fedsk serve` and "
        f"{N_PARTIES} agents (kits already provisioned) and a fresh coordinator "
        "process that connects and fits once. Its start-up: launching the "
        "server and agents until that coordinator connected (its own imports "
        "included). Party-leg bytes: what crossed the proxy in front of the "
        "server (fedsk: agents; Flower: SuperNodes or clients), both "
        "directions. Peak RSS, sampled every 50 ms: server + parties (fedsk: "
        f"`fedsk serve` and the {N_PARTIES} LogisticRegression agents; Flower: "
        "the SuperLink or server, SuperNodes or clients, and every process "
        "they start) and coordinator (fedsk: the cold row's coordinator "
        "process; Flower: `flwr run` and the ServerApp process; for gRPC the "
        "strategy runs inside the server, so it counts there). 'Reached' is "
        "the first round whose accuracy is at least fedsk's epsilon=inf "
        f"network score ({base['s_net']:.4f}), with the time from the start of "
        "the fit.",
        "",
        "| system | fit s | first fit s | start-up s | rounds or releases "
        "| accuracy | reached fedsk eps=inf accuracy | party-leg bytes "
        "| peak RSS server + parties MB | peak RSS coordinator MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in ours:
        lines.append(
            f"| fedsk, {r['label'].split(', ', 1)[1]} | {r['t_net']:.3f} | "
            f"{r['first']:.3f} | - | {r['releases']} | "
            f"{r['s_net']:.4f} | - | {r['party_bytes']:_} | "
            f"{(r['rss']['server'] + r['rss']['parties']) / MB:.0f} | - |"
        )
    lines.append(
        f"| fedsk, epsilon=inf, cold | - | {cold['fit']:.3f} | "
        f"{cold['startup']:.1f} | {base['releases']} | {cold['score']:.4f} | - | - "
        f"| {(cold['rss']['server'] + cold['rss']['parties']) / MB:.0f} | "
        f"{cold['rss']['coordinator'] / MB:.0f} |"
    )
    for mode, f in flower.items():
        if isinstance(f, str):
            lines.append(f"| Flower, {mode} | failed: {f} | | | | | | | | |")
            continue
        reached = (
            f"round {f['reached_round']}, {f['reached_s']:.2f} s"
            if f["reached_round"]
            else f"not in {f['rounds']} rounds"
        )
        lines.append(
            f"| Flower, {mode} | {f['run']:.3f} | - | {f['startup']:.1f} | "
            f"{f['rounds']} | {f['accuracy']:.4f} | {reached} | {f['bytes']:_} | "
            f"{(f['rss']['server'] + f['rss']['parties']) / MB:.0f} | "
            f"{f['rss']['coordinator'] / MB:.0f} |".replace("| 0 |", "| in server |")
        )
    lines += [
        "",
        "Time ratios, Flower / fedsk epsilon=inf (the target asks for at least "
        "10x). 'At fedsk's accuracy' uses Flower's time to the first round "
        "that reaches fedsk's score (fedsk's accuracy is then equal or better); "
        f"'{rounds} rounds' uses Flower's whole fit. Cold: start-up plus first "
        "fit (fedsk's cold row) on both sides.",
        "",
        "| Flower mode | at fedsk's accuracy / warm fit | "
        f"{rounds} rounds / warm fit | {rounds} rounds / cold fit | "
        "cold: start-up + fit |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, f in flower.items():
        if isinstance(f, str):
            continue
        at = (
            f"{f['reached_s'] / base['t_net']:.1f}x"
            if f["reached_round"]
            else "not reached"
        )
        lines.append(
            f"| {mode} | {at} | {f['run'] / base['t_net']:.1f}x | "
            f"{f['run'] / cold['fit']:.1f}x | "
            f"{(f['startup'] + f['run']) / (cold['startup'] + cold['fit']):.1f}x |"
        )
    lines += ["", *verdict(flower, base)]
    return lines


def verdict(flower, base):
    """One line per Flower mode: is fedsk at least 10x faster at its accuracy?"""
    lines = []
    for mode, f in flower.items():
        if isinstance(f, str) or not f["reached_round"]:
            continue
        ratio = f["reached_s"] / base["t_net"]
        met = "met" if ratio >= 10 else "not met"
        lines.append(
            f"Target (fedsk LogisticRegression at least 10x faster than Flower at "
            f"equal accuracy) against Flower's {mode}: {met}, {ratio:.1f}x "
            f"(Flower reached fedsk's accuracy after {f['reached_round']} rounds "
            f"in {f['reached_s']:.2f} s; fedsk's warm fit took {base['t_net']:.2f} s)."
        )
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
