"""The coordinator's side: a Federation whose parties are agents elsewhere.

:class:`RemoteFederation` is a :class:`~fedsk.Federation` in every respect
but one: :meth:`_call_parties` sends each party's request through the
server to that party's agent, attaching the release's public guarantee so
the agent can check the calibration and charge its own ledger. The agents'
ledgers are the parties' ledgers: the coordinator keeps, per party, a copy
of the events each agent reports having charged (never charging it itself);
the fit's own ledger and a shared accountant, if any, are charged here as
usual. :meth:`privacy_report` asks every agent for its ledger.

In the secure protocols it relays each party's signed key-exchange keys
(:mod:`fedsk.network._attest`) with every roster it sends. A request the
server could not deliver (it restarted) is sent again until the timeout:
the agent answers a retried request from its ledger, charged once, so a
fit survives a server restart.
"""

import dataclasses
import math
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .._federation import Federation
from .._party import PartyError, PartyFailure, PartyRequest
from ..privacy import BudgetExceededError, BudgetLedger, PrivacyReport, charge
from . import _codec
from ._transport import CALL, DEFAULT_MAX_MB, STATUS, channel, frame, require_grpc


class RemoteParty:
    """A party as the coordinator sees it: a name, a public schema and the
    events its agent reports having charged (``ledger``)."""

    resources = None
    source = None

    def __init__(self, name):
        self.name = str(name)
        self.schema = None
        self.ledger = BudgetLedger(self.name)

    @property
    def n_features(self):
        return self.schema["n_features"]

    @property
    def feature_names(self):
        return self.schema["feature_names"]

    def require_targets(self, *, numeric):
        kind = self.schema["y_kind"]
        if kind is None:
            raise ValueError(
                f"Party {self.name!r} has no targets (start its agent with --target)."
            )
        if numeric and kind not in "fiub":
            raise ValueError(
                f"Party {self.name!r}: a regressor needs numeric targets; its agent "
                f"reads dtype kind {kind!r}."
            )

    def __repr__(self):
        return f"RemoteParty({self.name!r})"


class RemoteFederation(Federation):
    """Parties whose agents run at their own sites, reached through a server.

    Build it with :meth:`fedsk.Federation.connect`.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` of the server (``fedsk serve``).
    certs : str
        The coordinator's start-up kit (``DIR/client`` of ``fedsk certs``).
    parties : list of str
        The parties to fit across (their agents must be polling).
    timeout : float, default=60
        Seconds to wait for each party's answer to one request.
    min_parties, retries
        As in :class:`~fedsk.Federation`. A retry carries the same request,
        which the agent answers from its ledger (same noise, charged once).
    max_mb : float, default=256
        Largest message sent or accepted.

    Attributes
    ----------
    bytes_sent_, bytes_received_ : int
        Bytes of requests sent and answers received since it connected.
    """

    def __init__(
        self,
        address,
        *,
        certs,
        parties,
        timeout=60,
        min_parties=None,
        retries=0,
        max_mb=DEFAULT_MAX_MB,
    ):
        self._grpc = require_grpc()
        self.address = address
        self.max_bytes = int(max_mb * 2**20)
        self._channel = channel(address, certs, max_mb)
        self._call = self._channel.unary_unary(CALL)
        self._status = self._channel.unary_unary(STATUS)
        self._guarantee = None
        self._attestations = {}  # release id -> {party: signed keys}
        self._mirrored = set()  # (party, release id) whose charges are copied
        self._lock = threading.Lock()
        self.bytes_sent_ = 0
        self.bytes_received_ = 0
        names = [str(p) for p in parties]
        self._pool = ThreadPoolExecutor(max_workers=max(len(names), 1))
        super().__init__(
            [RemoteParty(n) for n in names],
            n_jobs=None,
            min_parties=min_parties,
            timeout=timeout,
            retries=retries,
        )
        self._mirror_ledgers()

    # -- what changes: delivery, charging, reports --------------------------
    def release(
        self, request, *, seed_sequence, fit_ledger=None, accountant=None, verbose=0
    ):
        """:meth:`Federation.release` through the agents.

        ``seed_sequence`` is ignored: noise is drawn by each agent from its
        own secret (a coordinator-chosen seed would let it subtract it).
        """
        self._guarantee = {
            "epsilon": request.epsilon,
            "delta": request.delta,
            "rho": request.rho,
            "trust": request.trust,
            "group_size": request.group_size,
            "estimator": request.estimator,
        }
        try:
            return super().release(
                request,
                seed_sequence=None,
                fit_ledger=fit_ledger,
                accountant=accountant,
                verbose=verbose,
            )
        finally:
            self._guarantee = None
            self._attestations.clear()

    def _charge(self, request, encoding, fit_ledger, accountant, seeded):
        """Charge the fit's ledger and the accountant only: each party's
        ledger is charged by its agent, before it answers."""
        events = self._events(request, encoding, seeded)
        charges = {
            p.name: (
                []
                if accountant is None
                else [(accountant.ledger(p.name), [events(p.name)])]
            )
            for p in self.parties
        }
        charges[None] = (
            [] if fit_ledger is None else [(fit_ledger, [events("all parties")])]
        )
        charge([pair for pairs in charges.values() for pair in pairs])
        return charges

    def check_budget(self, request, fit_ledger=None, accountant=None):
        """Refuse a fit before its first release if the coordinator's ledgers
        or any party's agent cannot afford its whole budget."""
        if accountant is not None or fit_ledger is not None:
            self._local_check(request, fit_ledger, accountant)
        guarantee = {
            "epsilon": request.epsilon,
            "delta": request.delta,
            "rho": request.rho,
            "trust": request.trust,
            "group_size": request.group_size,
            "estimator": request.estimator,
        }
        answers = self._send(
            {p.name: PartyRequest("check") for p in self.parties}, guarantee
        )
        refusals, unreachable = [], []
        for name, out in answers.items():
            if isinstance(out, PartyFailure):
                what = f"party {name!r}: {out.error}"
                (refusals if out.error.startswith("refused") else unreachable).append(
                    what
                )
        if refusals:
            raise BudgetExceededError(
                "The fit was refused before its first release: " + "; ".join(refusals)
            )
        if len(answers) - len(unreachable) < self.required_parties:
            raise PartyError(
                f"The fit needs {self.required_parties} of {self.n_parties} parties, "
                f"but {len(unreachable)} did not answer ({'; '.join(unreachable)}). "
                "Nothing was released or charged."
            )

    def _local_check(self, request, fit_ledger, accountant):
        from ..privacy import check_affordable

        events = self._events(request, None, False)
        pairs = []
        if accountant is not None:
            pairs += [
                (accountant.ledger(p.name), [events(p.name)]) for p in self.parties
            ]
        if fit_ledger is not None:
            pairs.append((fit_ledger, [events("all parties")]))
        check_affordable(pairs)

    def privacy_report(self):
        """Each party's ledger as its agent reports it (all its releases,
        by every coordinator), as a :class:`~fedsk.privacy.PrivacyReport`."""
        return PrivacyReport(self._agent_ledgers())

    def _mirror_ledgers(self):
        """Start each party's copy from its agent's ledger (budget, history):
        the fitted estimators' reports then show what the agents charged."""
        for party, ledger in zip(self.parties, self._agent_ledgers()):
            party.ledger = ledger

    def _agent_ledgers(self):
        answers = self._send(
            {p.name: PartyRequest("ledger") for p in self.parties}, None
        )
        ledgers = []
        for name, out in answers.items():
            if isinstance(out, PartyFailure):
                raise PartyError(
                    f"Party {name!r} did not report its ledger: {out.error}"
                )
            ledger = BudgetLedger(name, epsilon=out["epsilon"], delta=out["delta"])
            ledger.events.extend(out["events"])
            ledgers.append(ledger)
        return ledgers

    def status(self):
        """``{party: seconds since its agent last polled}`` as the server sees it."""
        text = self._status(b"", timeout=10).decode()
        return {k: float(v) for k, v in (p.split("=") for p in text.split(",") if p)}

    def close(self):
        self._pool.shutdown(wait=False)
        self._channel.close()

    def __repr__(self):
        return f"RemoteFederation({self.address!r}, {self.party_names})"

    def __getstate__(self):
        raise TypeError(
            "A RemoteFederation holds a live connection; it cannot be pickled."
        )

    # -- delivery ----------------------------------------------------------
    def _call_parties(self, requests, what, verbose):
        """Send ``{name: PartyRequest}`` to the agents; failures are values.

        Each party is retried up to ``retries`` times with the same request
        (its agent returns the stored answer, charged once).
        """
        results = {}
        for _ in range(self.retries + 1):
            todo = {
                n: r
                for n, r in requests.items()
                if isinstance(results.get(n, PartyFailure(n, "")), PartyFailure)
                and not getattr(results.get(n), "charged", False)
            }
            if not todo:
                break
            results.update(self._send(todo, self._guarantee))
        return {name: results[name] for name in requests}

    def _send(self, requests, guarantee):
        """One round trip per party, in parallel: ``{name: answer or PartyFailure}``."""
        futures = {
            name: self._pool.submit(self._one, name, request, guarantee)
            for name, request in requests.items()
        }
        return {name: future.result() for name, future in futures.items()}

    def _one(self, name, request, guarantee):
        payload = _codec.encode(
            {"request": self._with_attestations(request), "guarantee": guarantee},
            max_bytes=self.max_bytes,
        )
        reply = self._deliver(name, frame(name, payload))
        if isinstance(reply, PartyFailure):
            return reply
        try:
            body = _codec.decode(reply, max_bytes=self.max_bytes)
        except _codec.MessageError as exc:
            return PartyFailure(name, f"malformed answer: {exc}")
        if not isinstance(body, dict):
            return PartyFailure(name, "malformed answer")
        release_id = getattr(request.task, "release_id", None)
        self._mirror(name, release_id, body.get("charged") or [])
        if "attestation" in body and request.step == "keys":
            with self._lock:
                self._attestations.setdefault(release_id, {})[name] = body[
                    "attestation"
                ]
        if "failure" in body:
            failure = body["failure"]
            return PartyFailure(
                name, str(failure.get("error")), bool(failure.get("charged"))
            )
        return body.get("answer")

    def _deliver(self, name, data):
        """Send one framed request through the server: the reply, or a
        PartyFailure. While the server is unreachable (restarting) the same
        request is sent again until the timeout."""
        grpc = self._grpc
        timeout = self.timeout if self.timeout is not None else 60
        deadline = time.monotonic() + timeout
        wait = 0.25
        while True:
            framed = frame(secrets.token_hex(16), data)
            left = deadline - time.monotonic()
            try:
                self.bytes_sent_ += len(framed)
                reply = self._call(
                    framed, timeout=max(left, 0.001) if math.isfinite(left) else None
                )
                self.bytes_received_ += len(reply)
                return reply
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNAVAILABLE and left > wait:
                    time.sleep(wait)
                    wait = min(wait * 2, 2.0)
                    continue
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return PartyFailure(
                        name,
                        f"no answer within {timeout} s (its agent is not connected, "
                        "or is down)",
                    )
                return PartyFailure(name, f"{code.name}: {exc.details()}")

    def _with_attestations(self, request):
        """``request`` with the signed keys of the members of its roster."""
        message = request.message
        if request.protocol is None or request.step == "keys" or not message:
            return request
        signed = self._attestations.get(request.task.release_id, {})
        roster = message.get("roster", {})
        message = {
            **message,
            "attestations": {n: signed[n] for n in roster if n in signed},
        }
        return dataclasses.replace(request, message=message)

    def _mirror(self, name, release_id, charged):
        """Copy the events an agent reports having charged into the party's
        ledger here, once per release (a replayed answer reports them again)."""
        if not charged or not self._has_party(name):
            return
        with self._lock:
            if (name, release_id) in self._mirrored:
                return
            self._mirrored.add((name, release_id))
        self._party(name).ledger.events.extend(charged)

    def _has_party(self, name):
        return name in {p.name for p in self.parties}


def connect(
    address,
    *,
    certs,
    parties,
    timeout=60,
    min_parties=None,
    retries=0,
    max_mb=DEFAULT_MAX_MB,
):
    """Connect to a federation's server: see :class:`RemoteFederation`."""
    return RemoteFederation(
        address,
        certs=certs,
        parties=parties,
        timeout=timeout,
        min_parties=min_parties,
        retries=retries,
        max_mb=max_mb,
    )
