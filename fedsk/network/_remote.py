"""The coordinator's side: a Federation whose parties are agents elsewhere.

:class:`RemoteFederation` is a :class:`~fedsk.Federation` in every respect
but one: :meth:`_call_parties` sends each party's request through the
server to that party's agent, attaching the release's public guarantee so
the agent can check the calibration and charge its own ledger. The agents'
ledgers are the parties' ledgers: the coordinator keeps, per party, a copy
of the events each agent reports having charged (never charging it itself);
the fit's own ledger and a shared accountant, if any, are charged here as
usual. :meth:`privacy_report` asks every agent for its ledger.
"""

import math
import secrets
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
        grpc = self._grpc
        payload = _codec.encode(
            {"request": request, "guarantee": guarantee}, max_bytes=self.max_bytes
        )
        rid = secrets.token_hex(16)
        data = frame(rid, frame(name, payload))
        self.bytes_sent_ += len(data)
        timeout = self.timeout if self.timeout is not None else 60
        try:
            reply = self._call(
                data, timeout=timeout if math.isfinite(timeout) else None
            )
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return PartyFailure(
                    name,
                    f"no answer within {timeout} s (its agent is not connected, "
                    "or is down)",
                )
            return PartyFailure(name, f"{code.name}: {exc.details()}")
        self.bytes_received_ += len(reply)
        try:
            body = _codec.decode(reply, max_bytes=self.max_bytes)
        except _codec.MessageError as exc:
            return PartyFailure(name, f"malformed answer: {exc}")
        if not isinstance(body, dict):
            return PartyFailure(name, "malformed answer")
        charged = body.get("charged") or []
        party = self._party(name) if self._has_party(name) else None
        if party is not None:
            seen = {id(e) for e in party.ledger.events}
            party.ledger.events.extend(e for e in charged if id(e) not in seen)
        if "failure" in body:
            failure = body["failure"]
            return PartyFailure(
                name, str(failure.get("error")), bool(failure.get("charged"))
            )
        return body.get("answer")

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
