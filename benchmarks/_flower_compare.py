"""What ``bench_network.py`` needs to measure Flower next to fedsk in one run.

- ``ByteProxy``: the byte-counting proxy (``_flower_proxy.py``) as a process.
- ``PeakRss``: the peak summed RSS of process trees, sampled every 50 ms.
- ``run_deployment``: Flower 1.42's deployment engine: ``flower-superlink``,
  one ``flower-supernode`` per party and ``flwr run`` of ``flower_app/``.
- ``run_grpc``: Flower 1.42's gRPC API (``_flower_grpc.py``): one server and
  one client process per party.

Flower runs with the Python of its own venv (``--flower-python``), never in
fedsk's environment, always on 127.0.0.1 and without TLS (``--insecure``).
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
APP = HERE / "flower_app"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def flower_version(python):
    """The flwr version importable by ``python``, or None."""
    if not python or not Path(python).exists():
        return None
    done = subprocess.run(
        [python, "-c", "import flwr; print(flwr.__version__)"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def popen(command, log, env=None):
    """A process in its own session (so ``stop`` ends it and its children)."""
    return subprocess.Popen(
        command,
        stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def stop(procs):
    """SIGTERM each process group we started, then SIGKILL what is left."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


class ByteProxy:
    """``_flower_proxy.py`` in front of ``127.0.0.1:target_port``."""

    def __init__(self, root, name, target_port, python):
        self.port = free_port()
        self.path = Path(root) / f"{name}.counts.json"
        self.process = popen(
            [
                python,
                str(HERE / "_flower_proxy.py"),
                str(self.port),
                str(target_port),
                str(self.path),
            ],
            Path(root) / f"{name}.proxy.log",
        )
        wait_port(self.port)

    def total(self):
        """Bytes that crossed the proxy so far, both directions."""
        self.path.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        while not self.path.exists():
            time.sleep(0.01)
        counts = json.loads(self.path.read_text())
        return counts["up"] + counts["down"]


class PeakRss:
    """Peak of the summed RSS of named process trees, sampled in a thread.

    ``groups`` maps a label to a callable returning root pids; every
    descendant of a root counts, under its root's label unless ``relabel``
    (a process's command line -> label or None) says otherwise. ``peak`` maps
    each label to its peak in bytes, and ``"total"`` to the peak of the sum.
    """

    def __init__(self, groups, relabel=None, interval=0.05):
        self.groups, self.interval = groups, interval
        self.relabel = relabel or (lambda cmdline: None)
        self.peak = dict.fromkeys([*groups, "total"], 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sizes(self):
        sizes, seen = dict.fromkeys(self.groups, 0), set()
        for label, roots in self.groups.items():
            for pid in roots():
                try:
                    root = psutil.Process(pid)
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for p in tree:
                    if p.pid in seen:
                        continue
                    seen.add(p.pid)
                    try:
                        where = self.relabel(" ".join(p.cmdline())) or label
                        sizes[where] += p.memory_info().rss
                    except psutil.Error:
                        continue
        return sizes

    def _run(self):
        while not self._stop.is_set():
            sizes = self._sizes()
            for k, v in sizes.items():
                self.peak[k] = max(self.peak[k], v)
            self.peak["total"] = max(self.peak["total"], sum(sizes.values()))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def save_parts(root, parts, test):
    """The parties' rows and the test rows as ``.npz`` files for Flower."""
    paths = []
    for i, (X, y) in enumerate(parts):
        paths.append(root / f"flower_party{i}.npz")
        np.savez(paths[-1], X=X, y=y)
    np.savez(root / "flower_test.npz", X=test[0], y=test[1])
    return paths, root / "flower_test.npz"


def _summary(out, launched, startup, run_started, proxy, rss, target):
    """One Flower run's figures from its ServerApp's JSON and our counters."""
    result = json.loads(Path(out).read_text())
    rounds = result["rounds"]
    final = rounds[-1]
    reached = next((r for r in rounds[1:] if r["accuracy"] >= target), None)
    return {
        "startup": startup,
        "run": final["time"] - run_started,
        "total": final["time"] - launched,
        "rounds": final["round"],
        "accuracy": final["accuracy"],
        "reached_round": reached and reached["round"],
        "reached_s": reached and reached["time"] - run_started,
        "bytes": proxy.total(),
        "rss": rss.peak,
    }


def run_deployment(python, root, parts, test, rounds, target):
    """Flower's deployment engine on 127.0.0.1, timed and counted.

    ``startup``: launching the SuperLink and SuperNodes until every SuperNode
    has registered. ``run``: ``flwr run`` until the ServerApp holds the final
    model (building and submitting the app, starting the ServerApp process,
    one ClientApp process per message, ``rounds`` FedAvg rounds). Bytes: all
    traffic of the SuperNodes with the SuperLink (the proxy); the ServerApp
    and ``flwr`` talk to the SuperLink directly, on the server's side.
    """
    root = Path(root) / "flower_deployment"
    (root / "home").mkdir(parents=True)
    bin_dir = str(Path(python).parent)
    env = {
        **os.environ,
        "FLWR_HOME": str(root / "home"),
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
    }
    port = free_port()
    (root / "home/config.toml").write_text(
        '[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
        f'address = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    paths, test_path = save_parts(root, parts, test)
    proxy = ByteProxy(root, "fleet", port, python)
    procs = [proxy.process]
    launched = time.time()
    procs.append(
        popen(
            [
                f"{bin_dir}/flower-superlink",
                "--insecure",
                "--disable-runtime-dependency-installation",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            root / "superlink.log",
            env,
        )
    )
    parties = []
    for i, path in enumerate(paths):
        parties.append(
            popen(
                [
                    f"{bin_dir}/flower-supernode",
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{proxy.port}",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    f'data-path="{path}"',
                ],
                root / f"supernode{i}.log",
                env,
            )
        )
    procs += parties
    server = [procs[1]]
    cli = []
    try:
        with PeakRss(
            {
                "server": lambda: [p.pid for p in server],
                "parties": lambda: [p.pid for p in parties],
                "coordinator": lambda: [p.pid for p in cli],
            },
            relabel=lambda cmd: "coordinator" if "flwr-serverapp" in cmd else None,
        ) as rss:
            logs = [root / f"supernode{i}.log" for i in range(len(paths))]
            while not all("SuperNode ID" in p.read_text() for p in logs):
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"a Flower process stopped; see {root}")
                time.sleep(0.05)
            startup = time.time() - launched
            out = root / "out.json"
            config = (
                f"num-server-rounds={rounds} num-parties={len(paths)} "
                f"n-features={test[0].shape[1]} "
                f'test-path="{test_path}" out-path="{out}"'
            )
            run_started = time.time()
            cli.append(
                popen(
                    [
                        f"{bin_dir}/flwr",
                        "run",
                        str(APP),
                        "bench",
                        "--run-config",
                        config,
                        "--stream",
                    ],
                    root / "flwr_run.log",
                    env,
                )
            )
            while not out.exists():
                if cli[0].poll() is not None and not out.exists():
                    raise RuntimeError(f"flwr run failed; see {root}/flwr_run.log")
                time.sleep(0.05)
            time.sleep(0.1)  # the JSON is written in one call; let it close
        return _summary(out, launched, startup, run_started, proxy, rss, target)
    finally:
        stop(cli + procs)


def run_grpc(python, root, parts, test, rounds, target):
    """Flower's gRPC API (``start_server``/``start_client``), timed and counted.

    ``startup``: launching the server and client processes until the server
    has sampled its clients for round 1. ``run``: from then to the final
    model. Bytes: all client-server traffic (the proxy).
    """
    root = Path(root) / "flower_grpc"
    root.mkdir(parents=True)
    paths, test_path = save_parts(root, parts, test)
    port = free_port()
    proxy = ByteProxy(root, "grpc", port, python)
    out = root / "out.json"
    script = str(HERE / "_flower_grpc.py")
    launched = time.time()
    server = popen(
        [
            python,
            script,
            "server",
            f"127.0.0.1:{port}",
            "--parties",
            str(len(paths)),
            "--rounds",
            str(rounds),
            "--features",
            str(test[0].shape[1]),
            "--test",
            str(test_path),
            "--out",
            str(out),
        ],
        root / "server.log",
    )
    wait_port(port)
    parties = [
        popen(
            [python, script, "client", f"127.0.0.1:{proxy.port}", "--data", str(p)],
            root / f"client{i}.log",
        )
        for i, p in enumerate(paths)
    ]
    try:
        with PeakRss(
            {
                "server": lambda: [server.pid],
                "parties": lambda: [p.pid for p in parties],
                "coordinator": lambda: [],
            }
        ) as rss:
            while server.poll() is None:
                time.sleep(0.05)
            if server.returncode != 0 or not out.exists():
                raise RuntimeError(f"Flower's gRPC server failed; see {root}")
        run_started = json.loads(out.read_text())["sampled"]
        startup = run_started - launched
        return _summary(out, launched, startup, run_started, proxy, rss, target)
    finally:
        stop([*parties, server, proxy.process])
