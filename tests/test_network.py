"""Real processes on localhost: a server, three party agents, mutual TLS.

Every test here starts (or reuses, per module) ``fedsk serve`` and three
``fedsk party`` processes with kits from ``fedsk certs``, and fits through
:meth:`fedsk.Federation.connect`, as three organisations would. The
in-process tests at the top check the wire format and the durable ledger
without sockets.
"""

import contextlib
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

grpc = pytest.importorskip("grpc")

from ring_checks import close_fraction  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # noqa: E402
from sklearn.linear_model import (  # noqa: E402
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import GaussianNB  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from fedsk import (  # noqa: E402
    BudgetExceededError,
    FederatedEstimator,
    Federation,
    Party,
    PartyError,
)
from fedsk._aggregation._channels import open_sealed  # noqa: E402
from fedsk._aggregation._masking import masking_step  # noqa: E402
from fedsk._party import PartyRequest, PartyTask, party_release  # noqa: E402
from fedsk._statistics import STATISTICS  # noqa: E402
from fedsk.network import (  # noqa: E402
    DurableLedger,
    MessageError,
    decode,
    encode,
    provision,
)
from fedsk.network._attest import Attester  # noqa: E402
from fedsk.network._certs import read_kit  # noqa: E402
from fedsk.network._policy import Policy, Refusal, check_step, check_task  # noqa: E402
from fedsk.network._transport import frame  # noqa: E402
from fedsk.privacy import (  # noqa: E402
    Clipping,
    GridEncoding,
    ReleaseEvent,
    new_secret,
)

pytestmark = pytest.mark.network
NAMES = ["a", "b", "c"]
INF = math.inf


# -- without sockets ---------------------------------------------------------


def test_codec_round_trip_and_refusals():
    task = PartyTask(
        release_id="r1",
        clipping=Clipping(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), None, 0.0, 1.0),
        statistic="moments",
        params={"classes": np.array(["x", "y"], dtype=object), 3: (1, 2**70)},
        encoding=GridEncoding.calibrate([(2,)], [(1.0, 1.0)], epsilon=1.0, rho=None),
    )
    value = {
        "request": PartyRequest("release", task),
        "blocks": [np.arange(6, dtype=np.int64).reshape(2, 3), np.float32(2.5)],
        "bytes": b"\x00\xff",
        "inf": -math.inf,
    }
    out = decode(encode(value))
    assert out["request"].task.encoding == task.encoding
    assert out["request"].task.params[3] == (1, 2**70)
    assert list(out["request"].task.params["classes"]) == ["x", "y"]
    assert np.array_equal(out["blocks"][0], value["blocks"][0])
    assert out["blocks"][0].dtype == np.int64
    assert out["bytes"] == b"\x00\xff" and out["inf"] == -math.inf
    data = encode({"x": 1})
    with pytest.raises(MessageError, match="version"):
        decode(data[:3] + bytes([9]) + data[4:])
    with pytest.raises(MessageError, match="not a fedsk message"):
        decode(b"\x80\x04pickle-bytes-here")
    with pytest.raises(MessageError, match="over the limit"):
        decode(encode(np.zeros(1000)), max_bytes=100)
    with pytest.raises(MessageError, match="cannot send"):
        encode(object())
    with pytest.raises(MessageError, match="cannot send"):
        encode(LinearRegression())  # no objects but fedsk's public records
    # FedAvg's wrapped estimator: rebuilt from its class and parameters
    sgd = decode(encode(SGDClassifier(alpha=0.01, class_weight={0: 1.0, 1: 2.0})))
    assert (
        sgd.get_params()
        == SGDClassifier(alpha=0.01, class_weight={0: 1.0, 1: 2.0}).get_params()
    )
    with pytest.raises(MessageError, match="unknown parameters"):
        decode(encode(SGDClassifier()).replace(b'"alpha"', b'"alphx"'))
    forged = data.replace(b'"map"', b'"obj"')
    with pytest.raises(MessageError, match="unknown tag"):
        decode(forged)


def test_durable_ledger_survives_reopen_and_refuses_mismatched_replays(tmp_path):
    path = str(tmp_path / "p.db")
    store = DurableLedger(path, "p", epsilon=2.0)
    event = ReleaseEvent(
        "p", "E", "moments", "discrete_laplace", 1.0, 0.0, None, 1.0, 1.0, "local"
    )
    store.record("r1", "f1", b"answer", [event], reveal="r1")
    secret = store.secret
    store.close()
    again = DurableLedger(path, "p", epsilon=2.0)
    assert again.secret == secret
    assert again.ledger.events == [event] and "r1" in again.revealed
    assert again.stored("r1", "f1") == b"answer"
    with pytest.raises(ValueError, match="other parameters"):
        again.stored("r1", "f2")
    with pytest.raises(ValueError, match="belongs to party"):
        DurableLedger(path, "q")


def test_old_answers_are_dropped_and_their_replays_refused(tmp_path):
    store = DurableLedger(str(tmp_path / "p.db"), "p")
    store.record("old", "f", b"answer")
    assert store.prune(3600) == 0  # younger than an hour: kept
    assert store.stored("old", "f") == b"answer"
    assert store.prune(0) == 1
    with pytest.raises(ValueError, match="no longer kept"):
        store.stored("old", "f")  # refused, never answered with a fresh draw
    assert store.stored("new", "f") is None


def _policy_request(step, roster, n_shares=1, **message):
    task = dataclasses.replace(_task(epsilon=0.5), n_shares=n_shares)
    return PartyRequest(
        "protocol", task, "masking", step, {"roster": roster, **message}
    )


def test_agent_policy_counts_parties_and_checks_bounds_and_unit():
    roster = {n: (i + 1, bytes(32), bytes(32)) for i, n in enumerate(NAMES)}
    policy = Policy(min_parties=3)
    check_step(_policy_request("share", roster), _guarantee(0.5, "secure"), policy)
    two = {n: roster[n] for n in NAMES[:2]}
    with pytest.raises(Refusal, match="--min-parties"):
        check_step(_policy_request("share", two), _guarantee(0.5, "secure"), policy)
    reveal = _policy_request("reveal", roster, alive=["a", "b"], dropped=["c"])
    with pytest.raises(Refusal, match="--min-parties"):
        check_step(reveal, _guarantee(0.5, "secure"), policy)
    invented = _policy_request("reveal", roster, alive=[*NAMES, "d"], dropped=[])
    with pytest.raises(Refusal, match="roster members"):
        check_step(invented, _guarantee(0.5, "secure"), policy)
    # the target's clipping range: no wider than the policy's
    policy = Policy(y_bounds=(0.0, 1.0))
    request = PartyRequest("release", _task(epsilon=0.5))
    check_task(request, _guarantee(0.5), policy, 4)
    wide = dataclasses.replace(
        request.task,
        clipping=dataclasses.replace(_clipping(), y_upper=10.0),
    )
    with pytest.raises(Refusal, match="target's clipping"):
        check_task(PartyRequest("release", wide), _guarantee(0.5), policy, 4)
    # the features' clipping ranges: no wider than the policy's
    policy = Policy(bounds=(np.full(4, -5.0), np.full(4, 5.0)))
    check_task(request, _guarantee(0.5), policy, 4)
    lower = np.array([-5.0, -5.0, -6.0, -5.0])
    wide = dataclasses.replace(
        request.task, clipping=dataclasses.replace(_clipping(), lower=lower)
    )
    with pytest.raises(Refusal, match="wider than this party's bounds policy"):
        check_task(PartyRequest("release", wide), _guarantee(0.5), policy, 4)
    # party-level privacy required: a record-level request is refused
    with pytest.raises(Refusal, match="privacy-unit party"):
        check_task(request, _guarantee(0.5), Policy(privacy_unit="party"), 4)


def test_missing_network_extra_is_one_line_naming_it():
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from fedsk import Federation\n"
        "try:\n"
        "    Federation.connect('127.0.0.1:1', certs='x', parties=['a'])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "'network' extra" in out.stdout and out.stdout.count("\n") == 1, out


def test_import_fedsk_does_not_import_grpc():
    code = "import sys, fedsk, fedsk.network; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# -- real processes ----------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(directory):
    rng = np.random.default_rng(0)
    for i, name in enumerate(NAMES):
        n = 400 + 50 * i
        X = rng.normal(size=(n, 4)) + 0.3 * i
        y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.logistic(size=n) > 0).astype(int)
        frame_ = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"])
        frame_["y"] = y
        frame_.to_csv(directory / f"{name}.csv", index=False)


class Cluster:
    """``fedsk serve`` and one ``fedsk party`` per name, as subprocesses."""

    def __init__(
        self, root, epsilon, trust="local,secure,peer_to_peer,central", max_mb=4
    ):
        self.root = root
        self.epsilon = epsilon
        self.trust = trust
        self.max_mb = max_mb
        _data(root)
        provision(str(root / "kits"), "127.0.0.1", NAMES)
        self.address = f"127.0.0.1:{_free_port()}"
        self.server = self._spawn(
            "server",
            ["serve", "--address", self.address, "--certs", str(root / "kits/server")],
        )
        self.agents = {}
        try:
            for name in NAMES:
                self.start(name)
            self.fed = self.connect()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, log, args):
        out = open(self.root / f"{log}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "-m", "fedsk", *args], stdout=out, stderr=subprocess.STDOUT
        )

    def start(self, name, *options):
        self.agents[name] = self._spawn(
            name,
            [
                "party",
                "--server",
                self.address,
                "--certs",
                str(self.root / "kits" / name),
                "--name",
                name,
                "--data",
                str(self.root / f"{name}.csv"),
                "--target",
                "y",
                "--epsilon",
                str(self.epsilon),
                "--ledger",
                str(self.root / f"{name}.db"),
                "--trust",
                self.trust,
                "--max-mb",
                str(self.max_mb),
                *options,
            ],
        )

    def restart_server(self):
        """kill -9 the server and start it again at the same address."""
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        self.server = self._spawn(
            "server",
            [
                "serve",
                "--address",
                self.address,
                "--certs",
                str(self.root / "kits/server"),
            ],
        )

    def kill9(self, name):
        self.agents[name].send_signal(signal.SIGKILL)
        self.agents[name].wait()

    def connect(self, certs="client", **kwargs):
        kwargs.setdefault("timeout", 60)
        deadline = time.monotonic() + 120
        while True:  # the processes take a while to import on a busy machine
            try:
                return Federation.connect(
                    self.address,
                    certs=str(self.root / "kits" / certs),
                    parties=NAMES,
                    **kwargs,
                )
            except PartyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def log(self, name):
        return (self.root / f"{name}.log").read_text()

    def stop(self):
        for process in [*self.agents.values(), self.server]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.agents.values(), self.server]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def open_cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("open"), INF)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("private"), 10.0)
    yield cluster
    cluster.stop()


def _local(cluster):
    return Federation(
        [Party.from_csv(cluster.root / f"{n}.csv", target="y", name=n) for n in NAMES]
    )


FAMILIES = [
    (LinearRegression(), {}),
    (SGDRegressor(random_state=0), {"bounds": (-5, 5), "y_bounds": (0, 1)}),
    (LinearSVC(), {"classes": [0, 1], "bounds": (-5, 5)}),
    (
        SGDClassifier(random_state=0),
        {"classes": [0, 1], "bounds": (-5, 5), "strategy": "fedavg"},
    ),
    (Ridge(alpha=2.0), {}),
    (StandardScaler(), {}),
    (GaussianNB(), {"classes": [0, 1]}),
    (LogisticRegression(), {"classes": [0, 1], "bounds": (-5, 5)}),
    (
        DecisionTreeClassifier(max_depth=3, random_state=0),
        {"classes": [0, 1], "bounds": (-5, 5)},
    ),
    (
        RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0),
        {"classes": [0, 1], "bounds": (-5, 5)},
    ),
    (
        HistGradientBoostingClassifier(max_iter=3, random_state=0),
        {"classes": [0, 1], "bounds": (-5, 5)},
    ),
]


@pytest.mark.parametrize("estimator, params", FAMILIES, ids=lambda v: type(v).__name__)
def test_epsilon_inf_fits_equal_the_in_process_federation(
    open_cluster, estimator, params
):
    remote = FederatedEstimator(estimator, epsilon=INF, **params).fit(open_cluster.fed)
    local = FederatedEstimator(estimator, epsilon=INF, **params).fit(
        _local(open_cluster)
    )
    X = pd.DataFrame(
        np.random.default_rng(5).normal(size=(200, 4)), columns=["x0", "x1", "x2", "x3"]
    )
    if hasattr(remote.estimator_, "predict"):
        assert np.array_equal(remote.predict(X), local.predict(X))
    else:
        assert np.array_equal(remote.transform(X), local.transform(X))
    for attribute in ("coef_", "intercept_", "theta_", "var_", "mean_", "scale_"):
        if hasattr(local.estimator_, attribute):
            assert np.array_equal(
                getattr(remote.estimator_, attribute),
                getattr(local.estimator_, attribute),
            ), attribute


def test_party_ledgers_are_reported_by_the_agents(open_cluster):
    FederatedEstimator(Ridge(), epsilon=INF).fit(open_cluster.fed)
    report = open_cluster.fed.privacy_report().to_dict()
    assert [p["party"] for p in report["parties"]] == NAMES
    assert all(p["releases"] >= 1 for p in report["parties"]) or report


def test_foreign_certificate_and_wrong_role_are_refused(open_cluster, tmp_path):
    provision(str(tmp_path / "foreign"), "127.0.0.1", NAMES)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    # trusts the real server, but presents a certificate of another CA
    (mixed / "ca.pem").write_bytes(
        (open_cluster.root / "kits/client/ca.pem").read_bytes()
    )
    for name in ("cert.pem", "key.pem"):
        (mixed / name).write_bytes((tmp_path / "foreign/client" / name).read_bytes())
    with pytest.raises(PartyError, match="UNAVAILABLE|handshake|SSL"):
        Federation.connect(
            open_cluster.address, certs=str(mixed), parties=NAMES, timeout=5
        )
    # a party's own kit cannot act as the coordinator
    with pytest.raises(PartyError, match="PERMISSION_DENIED"):
        Federation.connect(
            open_cluster.address,
            certs=str(open_cluster.root / "kits/a"),
            parties=NAMES,
            timeout=5,
        )
    # and the federation still works
    FederatedEstimator(LinearRegression(), epsilon=INF).fit(open_cluster.fed)


def test_fit_command_through_the_server(open_cluster, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedsk",
            "fit",
            "--server",
            open_cluster.address,
            "--certs",
            str(open_cluster.root / "kits/client"),
            "--parties",
            "a,b,c",
            "--target",
            "y",
            "--model",
            "ridge",
            "--epsilon",
            "inf",
            "--out",
            str(tmp_path / "model.joblib"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "across 3 parties" in out.stdout and (tmp_path / "model.joblib").exists()


def test_agent_refuses_a_kit_of_another_party(open_cluster):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedsk",
            "party",
            "--server",
            open_cluster.address,
            "--certs",
            str(open_cluster.root / "kits/a"),
            "--name",
            "b",
            "--data",
            str(open_cluster.root / "b.csv"),
            "--target",
            "y",
            "--epsilon",
            "1",
            "--ledger",
            str(open_cluster.root / "wrong.db"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "kit of 'a'" in out.stderr


def test_server_restart(open_cluster):
    open_cluster.restart_server()
    fed = open_cluster.connect()  # agents and the coordinator reconnect
    remote = FederatedEstimator(LinearRegression(), epsilon=INF).fit(fed)
    local = FederatedEstimator(LinearRegression(), epsilon=INF).fit(
        _local(open_cluster)
    )
    assert np.array_equal(remote.estimator_.coef_, local.estimator_.coef_)


def _raw_call(fed, party, payload, timeout=30):
    return fed._call(
        frame("raw" + os.urandom(8).hex(), frame(party, payload)), timeout=timeout
    )


def test_hostile_messages_are_refused_and_the_agent_keeps_running(private_cluster):
    fed = private_cluster.fed
    out = decode(_raw_call(fed, "a", b"\x80\x04garbage"))
    assert "malformed" in out["failure"]["error"]
    huge = encode({"request": PartyRequest("describe"), "pad": b"x" * (4 * 2**20 + 10)})
    try:
        reply = decode(_raw_call(fed, "a", huge, timeout=10))
        assert "over the limit" in reply["failure"]["error"]
    except grpc.RpcError as exc:  # refused before it reached the agent's codec
        assert exc.code() in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
    out = fed._one("a", PartyRequest("steal_rows"), None)
    assert "unknown request kind" in out.error
    task = _task(statistic="raw_rows")
    out = fed._one("a", PartyRequest("release", task), _guarantee(1.0))
    assert "unknown statistic kind" in out.error
    # still running, and nothing was charged for any of it
    assert private_cluster.agents["a"].poll() is None
    assert fed._one("a", PartyRequest("describe"), None)["n_features"] == 4
    assert "refused" in private_cluster.log("a")


def _clipping():
    return Clipping(np.full(4, -5.0), np.full(4, 5.0), None, 0.0, 1.0)


def _task(statistic="linear_moments", epsilon=1.0, release_id=None):
    clipping = _clipping()
    encoding = None
    if statistic in STATISTICS:
        stat = STATISTICS[statistic]
        encoding = GridEncoding.calibrate(
            stat.shapes(4), stat.sensitivity(clipping, 4), epsilon=epsilon, rho=None
        )
    return PartyTask(
        release_id=release_id or os.urandom(16).hex(),
        clipping=clipping,
        statistic=statistic,
        params={},
        encoding=encoding,
    )


def _guarantee(epsilon, trust="local"):
    return {
        "epsilon": epsilon,
        "delta": 0.0,
        "rho": None,
        "trust": trust,
        "group_size": 1,
        "estimator": "test",
    }


def _spent(fed, name):
    report = fed.privacy_report().to_dict()
    return next(p for p in report["parties"] if p["party"] == name)["epsilon_spent"]


def test_replay_returns_the_same_answer_charged_once(private_cluster):
    fed = private_cluster.fed
    before = _spent(fed, "b")
    task = _task(epsilon=0.5)
    request = PartyRequest("release", task)
    first = fed._one("b", request, _guarantee(0.5))
    second = fed._one("b", request, _guarantee(0.5))
    assert isinstance(first, np.ndarray) and np.array_equal(first, second)
    assert _spent(fed, "b") == pytest.approx(before + 0.5)
    # the same release id with other parameters: refused, not charged
    other = _task(epsilon=0.25, release_id=task.release_id)
    out = fed._one("b", PartyRequest("release", other), _guarantee(0.25))
    assert "other parameters" in out.error
    assert _spent(fed, "b") == pytest.approx(before + 0.5)


def test_agent_recomputes_the_calibration_and_its_policy(private_cluster):
    fed = private_cluster.fed
    before = _spent(fed, "c")
    # noise calibrated for epsilon=50 but stated as epsilon=0.5: refused
    cheat = _task(epsilon=50.0)
    out = fed._one("c", PartyRequest("release", cheat), _guarantee(0.5))
    assert "calibration does not match" in out.error
    # noise-free requests need --epsilon inf
    out = fed._one(
        "c", PartyRequest("release", _task("linear_moments", INF)), _guarantee(INF)
    )
    assert "epsilon=inf" in out.error or "inf" in out.error
    # a partly-noised distributed share must not be released in the clear
    task = _task(epsilon=0.5)
    out = fed._one("c", PartyRequest("release", task), _guarantee(0.5, "secure"))
    assert "secure sum" in out.error or "calibration" in out.error
    # over budget
    out = fed._one(
        "c", PartyRequest("release", _task(epsilon=100.0)), _guarantee(100.0)
    )
    assert "budget" in out.error.lower()
    assert _spent(fed, "c") == pytest.approx(before)


def test_protocol_steps_are_stored_and_checked(private_cluster):
    fed = private_cluster.fed
    task = dataclasses.replace(_task(epsilon=0.5), n_shares=2)
    keys = PartyRequest("protocol", task, "masking", "keys", {})
    first = fed._one("a", keys, _guarantee(0.5, "secure"))
    assert fed._one("a", keys, _guarantee(0.5, "secure")) == first
    other = dataclasses.replace(keys, message={"roster": {}})
    assert "other parameters" in fed._one("a", other, _guarantee(0.5, "secure")).error
    # a party refuses to help unmask a sum of fewer noise shares than calibrated
    reveal = PartyRequest(
        "protocol",
        task,
        "masking",
        "reveal",
        {
            "roster": {"a": (1, bytes(32), bytes(32))},
            "ciphertexts": {},
            "alive": ["a"],
            "dropped": [],
        },
    )
    out = fed._one("a", reveal, _guarantee(0.5, "secure"))
    assert "fewer than the 2" in out.error


def _assert_a_sound_model(model, cluster):
    """A noisy GaussianNB from totals that were unmasked right: its means lie
    in the clipping range (a sum left masked is uniform on the 2^64 ring) and
    it beats chance on all rows (at these budgets its 1st percentile is 0.58,
    from 100 in-process fits)."""
    assert np.all(np.abs(model.estimator_.theta_) <= 5)
    rows = pd.concat([pd.read_csv(cluster.root / f"{n}.csv") for n in NAMES])
    assert model.score(rows.drop(columns="y"), rows["y"]) > 0.5


@pytest.mark.parametrize("trust", ["central", "local", "secure", "peer_to_peer"])
def test_private_fits_under_each_trust_mode(private_cluster, trust):
    fed = private_cluster.fed
    before = {n: _spent(fed, n) for n in NAMES}
    model = FederatedEstimator(
        GaussianNB(), epsilon=1.0, bounds=(-5, 5), classes=[0, 1], trust=trust
    ).fit(fed)
    _assert_a_sound_model(model, private_cluster)
    after = {n: _spent(fed, n) for n in NAMES}
    for name in NAMES:  # each agent charged itself once for the fit
        assert after[name] == pytest.approx(before[name] + 1.0, rel=1e-6)
    assert model.ledgers_[0].events[-1].note == "charged by the party agent"


def test_kill_9_and_restart_keeps_the_ledger(private_cluster):
    fed = private_cluster.fed
    FederatedEstimator(
        Ridge(), epsilon=1.0, bounds=(-5, 5), y_bounds=(0, 1), trust="local"
    ).fit(fed)
    spent = _spent(fed, "a")
    left = private_cluster.epsilon - spent
    assert left > 0.5
    private_cluster.kill9("a")
    private_cluster.start("a")
    again = private_cluster.connect()
    assert _spent(again, "a") == pytest.approx(spent)
    # what the earlier spending no longer allows is still refused
    over = FederatedEstimator(
        Ridge(), epsilon=left + 0.1, bounds=(-5, 5), y_bounds=(0, 1), trust="local"
    )
    with pytest.raises(BudgetExceededError, match="'a'"):
        over.fit(again)
    assert _spent(again, "a") == pytest.approx(spent)
    private_cluster.fed = again


def test_agent_killed_mid_fit_is_named_and_what_happened_stays_charged(private_cluster):
    fed = private_cluster.fed
    before = {n: _spent(fed, n) for n in NAMES}
    calls = []

    def kill_b_after_the_first_release(deliver, requests, what, verbose):
        out = deliver(requests, what, verbose)
        calls.append(what)
        if len(calls) == 1:
            private_cluster.kill9("b")
        return out

    fed.timeout = 8
    try:
        with _intercepted(fed, kill_b_after_the_first_release):
            with pytest.raises(PartyError, match="'b'"):
                FederatedEstimator(
                    LogisticRegression(),
                    epsilon=1.0,
                    bounds=(-5, 5),
                    classes=[0, 1],
                    trust="local",
                ).fit(fed)
    finally:
        private_cluster.start("b")
    again = private_cluster.connect()
    first = _spent(again, "b") - before["b"]
    assert first > 0  # the release b answered stays charged, after its restart
    assert _spent(again, "a") - before["a"] > first  # a answered one more
    private_cluster.fed = again


@pytest.mark.parametrize("trust", ["secure", "peer_to_peer"])
def test_what_the_agents_send_is_masked_or_sealed(private_cluster, trust):
    # Everything an agent sends reaches the coordinator through the server:
    # record it there and compare each input with the party's own statistic,
    # recomputed here from its file (which the coordinator does not have).
    fed = private_cluster.fed
    seen = []

    def recording(deliver, requests, what, verbose):
        answers = deliver(requests, what, verbose)
        seen.extend((n, requests[n], answers[n]) for n in requests)
        return answers

    with _intercepted(fed, recording):
        FederatedEstimator(
            StandardScaler(), epsilon=0.2, bounds=(-5, 5), trust=trust
        ).fit(fed)
    inputs = [s for s in seen if s[1].kind == "contribute"]
    assert sorted(s[0] for s in inputs) == NAMES
    for name, request, answer in inputs:
        rows = Party.from_csv(private_cluster.root / f"{name}.csv", target="y").source
        task = request.task
        exact = task.encoding.encode(
            party_release(rows, dataclasses.replace(task, encoding=None))
        )
        if trust == "secure":
            arrays = [answer]  # the masked vector alone
        else:  # a share per party, sealed for it: nonce, ciphertext, tag
            assert sorted(answer) == NAMES and all(
                isinstance(v, bytes) for v in answer.values()
            )
            arrays = [np.frombuffer(v[12:-16], np.uint64) for v in answer.values()]
        for array in arrays:
            assert array.size == exact.size
            assert close_fraction(array, exact) < 0.2
    # control: the same comparison finds a party's own noised answer
    assert close_fraction(party_release(rows, task), exact) > 0.8


def _releases(fed):
    report = fed.privacy_report().to_dict()
    return {p["party"]: p["releases"] for p in report["parties"]}


def test_stop_conditions_hold_across_processes(private_cluster):
    # max_rounds and max_time bound what the agents are asked and charge:
    # counted in the ledgers the agents report, not the coordinator's copy.
    fed = private_cluster.fed

    def fit(**stop):
        before, spent = _releases(fed), {n: _spent(fed, n) for n in NAMES}
        FederatedEstimator(
            LogisticRegression(),
            epsilon=0.2,
            bounds=(-5, 5),
            classes=[0, 1],
            trust="local",
            **stop,
        ).fit(fed)
        after = _releases(fed)
        return (
            {n: after[n] - before[n] for n in NAMES},
            {n: _spent(fed, n) - spent[n] for n in NAMES},
        )

    two, two_spent = fit(max_rounds=2)
    one, one_spent = fit(max_rounds=2, max_time=1e-9)
    for name in NAMES:
        assert two_spent[name] == pytest.approx(0.2, rel=1e-6)
        assert one[name] < two[name]  # the second round was never asked
        assert 0 < one_spent[name] < 0.9 * 0.2  # and its budget left unspent


def test_dead_agent_named_in_local_mode_and_dropped_in_secure_mode(private_cluster):
    private_cluster.kill9("c")
    try:
        fed = private_cluster.fed
        fed.timeout = 8
        with pytest.raises(PartyError, match="'c'"):
            FederatedEstimator(
                GaussianNB(), epsilon=0.2, bounds=(-5, 5), classes=[0, 1], trust="local"
            ).fit(fed)
        fed.min_parties = 2  # secure modes: the fit completes without c
        for trust in ("secure", "peer_to_peer"):
            model = FederatedEstimator(
                GaussianNB(), epsilon=0.2, bounds=(-5, 5), classes=[0, 1], trust=trust
            ).fit(fed)
            assert "left out 1 of 3 parties (c)" in model.fit_ledger_.events[-1].note
            assert hasattr(model, "estimator_")
    finally:
        private_cluster.start("c")
        private_cluster.fed = private_cluster.connect()


def _public(private):
    from cryptography.hazmat.primitives import serialization

    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return private.public_key().public_bytes(*raw)


def test_swapped_keys_would_expose_shares_and_are_refused(private_cluster):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    # the attack on relayed, unsigned keys: a coordinator that lists its own
    # channel key as c's opens the shares a encrypts for c
    secrets_ = {n: new_secret() for n in NAMES}
    roster = {
        n: (i + 1, *masking_step("keys", secrets_[n], "r", n, {}, 2))
        for i, n in enumerate(NAMES)
    }
    attacker = X25519PrivateKey.generate()
    roster["c"] = (3, roster["c"][1], _public(attacker))
    sealed = masking_step("share", secrets_["a"], "r", "a", {"roster": roster}, 2)
    assert len(open_sealed(attacker, roster["a"][2], sealed["c"])) > 0  # exposed

    # over the network each agent checks the keys against c's signature
    def swap_c_key(request):
        if request.step == "share":
            entry = request.message["roster"]["c"]
            request.message["roster"]["c"] = (entry[0], entry[1], _public(attacker))

    error = _secure_fit_tampered(private_cluster.fed, swap_c_key)
    assert "not the keys it signed" in error


def test_a_party_invented_by_the_coordinator_is_refused(private_cluster):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    fed = private_cluster.fed
    # the coordinator signs the keys of a party "d" with its own certificate
    coordinator = Attester(read_kit(str(private_cluster.root / "kits" / "client")))
    fake = (_public(X25519PrivateKey.generate()), _public(X25519PrivateKey.generate()))

    def invent_d(request):
        if request.step == "share":
            rid = request.task.release_id
            request.message["roster"]["d"] = (4, *fake)
            signed = coordinator.sign(rid, "masking", "d", fake)
            fed._attestations.setdefault(rid, {})["d"] = signed

    assert "that is not that party's" in _secure_fit_tampered(fed, invent_d)


@contextlib.contextmanager
def _intercepted(fed, around):
    """Within the block, every delivery of ``fed`` (the coordinator's single
    point of contact with the parties) goes through ``around(deliver,
    requests, what, verbose)``, ``deliver`` being the real one."""
    deliver = fed._call_parties
    fed._call_parties = lambda requests, what, verbose: around(
        deliver, requests, what, verbose
    )
    try:
        yield
    finally:
        del fed._call_parties


def _secure_fit_tampered(fed, tamper):
    """A secure fit whose requests ``tamper(request)`` edits before they are
    sent; it must fail before any party is charged. Returns the error."""
    before = {n: _spent(fed, n) for n in NAMES}

    def tampered(deliver, requests, what, verbose):
        for request in requests.values():
            tamper(request)
        return deliver(requests, what, verbose)

    with _intercepted(fed, tampered), pytest.raises(Exception) as raised:
        FederatedEstimator(
            GaussianNB(),
            epsilon=0.5,
            bounds=(-5, 5),
            classes=[0, 1],
            trust="secure",
        ).fit(fed)
    assert {n: _spent(fed, n) for n in NAMES} == before  # refused before any input
    return str(raised.value)


def test_a_fit_survives_a_server_restart_mid_release(private_cluster):
    fed = private_cluster.fed
    before = {n: _spent(fed, n) for n in NAMES}
    calls = []

    def restart_after_the_first_step(deliver, requests, what, verbose):
        out = deliver(requests, what, verbose)
        calls.append(what)
        if len(calls) == 1:  # keys sent; the rest of the release awaits
            private_cluster.restart_server()
        return out

    with _intercepted(fed, restart_after_the_first_step):
        model = FederatedEstimator(
            GaussianNB(), epsilon=0.5, bounds=(-5, 5), classes=[0, 1], trust="secure"
        ).fit(fed)
    _assert_a_sound_model(model, private_cluster)
    for name in NAMES:  # every agent charged the fit once
        assert _spent(fed, name) == pytest.approx(before[name] + 0.5, rel=1e-6)


def test_agent_policy_options(private_cluster, tmp_path):
    bounds = tmp_path / "bounds.json"
    ranges = {f"x{i}": [-5, 5] for i in range(4)}
    bounds.write_text(json.dumps({**ranges, "y": [0, 1]}))
    private_cluster.agents["c"].send_signal(signal.SIGTERM)
    private_cluster.agents["c"].wait()
    private_cluster.start("c", "--privacy-unit", "party", "--bounds", str(bounds))
    try:
        fed = private_cluster.connect()
        before = _spent(fed, "c")
        with pytest.raises(BudgetExceededError, match="'c'.*privacy-unit party"):
            FederatedEstimator(
                Ridge(), epsilon=0.5, bounds=(-5, 5), y_bounds=(0, 1), trust="local"
            ).fit(fed)
        task = dataclasses.replace(
            _task(epsilon=0.5), clipping=dataclasses.replace(_clipping(), y_upper=3.0)
        )
        party_level = {**_guarantee(0.5), "group_size": 2}
        out = fed._one("c", PartyRequest("release", task), party_level)
        assert "target's clipping bounds are wider" in out.error
        assert _spent(fed, "c") == before
    finally:
        private_cluster.agents["c"].send_signal(signal.SIGTERM)
        private_cluster.agents["c"].wait()
        private_cluster.start("c")
        private_cluster.fed = private_cluster.connect()
