"""The party agent: the only process that reads a party's rows.

It dials out to the server (it opens no port), long-polls for requests
addressed to it, and for each one: decodes it (refusing malformed, oversized
or unknown messages), checks it against its policy and its budget
(:mod:`fedsk.network._policy`), computes the party's side of the release
with :func:`fedsk._party.answer` (clip, noise with its own secret, mask or
share), commits the charge and the answer to its durable ledger, and only
then sends the answer. A replayed request gets the stored answer back. A
refused or failed request is logged and answered with a failure; the agent
keeps running.
"""

import hashlib
import logging
import threading
import time

from .._party import PartyRequest, answer
from .._rows import CsvLoader, LoadedRows, PartyDataError, describe
from ..privacy import BudgetExceededError, check_affordable
from . import _codec
from ._attest import Attester
from ._certs import read_kit
from ._ledger import ReplayMismatch
from ._policy import (
    KINDS,
    Refusal,
    check_guarantee,
    check_step,
    check_task,
    check_unit,
    release_event,
)
from ._transport import (
    ANSWER,
    DEFAULT_MAX_MB,
    POLL,
    channel,
    frame,
    require_grpc,
    unframe,
)

_LOG = logging.getLogger("fedsk.agent")


class PartyAgent:
    """One party's side of a networked federation.

    Parameters
    ----------
    name : str
    loader : callable
        ``loader() -> (X, y)``: the party's rows, read in this process.
    store : DurableLedger
        Its ledger, secret and answer store.
    policy : Policy
    kit : str
        Its start-up kit (``DIR/<name>`` of ``fedsk certs``): the mutual TLS
        identity it dials with, and the key it signs its key-exchange keys
        with (:mod:`fedsk.network._attest`).
    max_mb : float, default=256
        Largest message it accepts or sends.
    keep_answers : float, default=7 days
        Seconds its stored answers are kept for replays; older ones are
        dropped (a replay of them is then refused, never recomputed).
    """

    def __init__(
        self,
        name,
        loader,
        store,
        policy,
        *,
        kit,
        max_mb=DEFAULT_MAX_MB,
        keep_answers=7 * 86400.0,
    ):
        self.name = name
        self.store = store
        self.policy = policy
        self.kit = kit
        self.attester = Attester(read_kit(kit))
        self.keep_answers = keep_answers
        self.max_bytes = int(max_mb * 2**20)
        self.source = LoadedRows(name, loader, secret=store.secret)
        self.schema = describe(self.source)  # reads the rows once, here
        self.refusals = 0
        self.answered = 0

    @classmethod
    def from_csv(cls, name, path, target, store, policy, categories=None, **kwargs):
        parquet = str(path).endswith((".parquet", ".pq"))
        loader = CsvLoader(str(path), target, {}, parquet, categories or {})
        return cls(name, loader, store, policy, **kwargs)

    # -- one request -------------------------------------------------------
    def handle(self, payload):
        """Answer one encoded request (bytes -> bytes); never raises."""
        try:
            envelope = _codec.decode(payload, max_bytes=self.max_bytes)
            request, guarantee = self._parse(envelope)
        except (_codec.MessageError, Refusal) as exc:
            return self._refuse(f"malformed request: {exc}")
        try:
            return self._handle(request, guarantee)
        except (Refusal, ReplayMismatch, BudgetExceededError) as exc:
            return self._refuse(str(exc))
        except Exception as exc:  # noqa: BLE001 - the agent keeps running
            _LOG.exception("party %r: %s request failed", self.name, request.kind)
            return self._reply(
                failure=f"{type(exc).__name__} (details stay with the party)"
            )

    def _parse(self, envelope):
        if not isinstance(envelope, dict) or not isinstance(
            envelope.get("request"), PartyRequest
        ):
            raise Refusal("expected {'request': PartyRequest, 'guarantee': ...}")
        request = envelope["request"]
        if request.kind not in KINDS:
            raise Refusal(f"unknown request kind {request.kind!r}")
        guarantee = envelope.get("guarantee")
        if request.kind not in ("describe", "ledger"):
            check_guarantee(guarantee)
        return request, guarantee

    def _handle(self, request, guarantee):
        if request.kind == "describe":
            return self._reply(answer=self.schema)
        if request.kind == "ledger":
            ledger = self.store.ledger
            return self._reply(
                answer={
                    "epsilon": ledger.epsilon,
                    "delta": ledger.delta,
                    "events": list(ledger.events),
                }
            )
        if request.kind == "check":
            return self._check(guarantee)
        rows = request.kind in ("release", "contribute")
        release_id = request.task.release_id if request.task is not None else None
        if not isinstance(release_id, str) or not 0 < len(release_id) <= 128:
            raise Refusal("a release id must be a short text")
        # one row-touching answer per release id, ever: its noise is derived
        # from the id, so two statistics under one id would share noise
        key = release_id if rows else f"{release_id}/{request.protocol}/{request.step}"
        fingerprint = hashlib.sha256(
            _codec.encode({"request": request, "guarantee": guarantee})
        ).hexdigest()
        stored = self.store.stored(key, fingerprint)
        if stored is not None:  # the same answer, charged once
            _LOG.info("party %r: replayed %s, stored answer sent again", self.name, key)
            return stored
        n_features = self.schema["n_features"]
        events, reveal = [], None
        if rows:
            encoding = check_task(request, guarantee, self.policy, n_features)
            event = release_event(self.name, request.task, guarantee, encoding)
            check_affordable([(self.store.ledger, [event])])
            events = [event]
        else:
            check_step(request, guarantee, self.policy)
            if request.step in ("reveal", "partial"):  # the final step: once
                if release_id in self.store.revealed:
                    raise Refusal("this party has already revealed for this release")
                reveal = release_id
        if request.protocol is not None and request.step != "keys":
            message = request.message or {}
            self.attester.check_roster(
                release_id,
                request.protocol,
                message.get("roster"),
                message.get("attestations"),
            )
        try:
            value = answer(self.source, self.name, request)
            attestation = None
            if request.step == "keys":
                attestation = self.attester.sign(
                    release_id, request.protocol, self.name, value
                )
            reply = self._reply(answer=value, charged=events, attestation=attestation)
        except PartyDataError as exc:  # depends on the rows: stays charged
            reply = self._reply(failure=str(exc), charged=events)
        except Exception as exc:  # noqa: BLE001
            if not rows:
                raise
            _LOG.warning("party %r: statistic failed", self.name, exc_info=True)
            reply = self._reply(
                failure=f"{type(exc).__name__} while computing its statistic "
                "(the details stay with the party)",
                charged=events,
            )
        self.store.record(key, fingerprint, reply, events, reveal)  # committed first
        self.answered += 1
        return reply

    def _check(self, guarantee):
        check_unit(guarantee, self.policy)
        event = release_event(self.name, _WholeFit(), guarantee, None)
        check_affordable([(self.store.ledger, [event])])
        return self._reply(answer=True)

    def _reply(self, answer=None, failure=None, charged=(), attestation=None):
        body = {"charged": list(charged)}
        if failure is not None:
            body["failure"] = {"error": failure, "charged": bool(charged)}
        else:
            body["answer"] = answer
        if attestation is not None:
            body["attestation"] = attestation
        return _codec.encode(body, max_bytes=self.max_bytes)

    def _refuse(self, why):
        self.refusals += 1
        _LOG.warning("party %r refused a request: %s", self.name, why)
        return self._reply(failure=f"refused: {why}")

    # -- the loop ----------------------------------------------------------
    def run(self, address, *, stop=None, poll_wait=30.0):
        """Poll ``address`` for requests until ``stop`` (a threading.Event) is set."""
        grpc = require_grpc()
        stop = stop or threading.Event()
        ch = channel(address, self.kit, self.max_bytes / 2**20 + 1)
        poll = ch.unary_unary(POLL)
        send = ch.unary_unary(ANSWER)
        # a stop (SIGTERM) closes the channel, ending a long poll at once
        threading.Thread(target=lambda: (stop.wait(), ch.close()), daemon=True).start()
        backoff = 0.5
        _LOG.info("party %r: polling %s", self.name, address)
        pruned = 0.0
        while not stop.is_set():
            if time.monotonic() - pruned > 3600:
                dropped = self.store.prune(self.keep_answers)
                if dropped:
                    _LOG.info("party %r: dropped %d old answers", self.name, dropped)
                pruned = time.monotonic()
            try:
                data = poll(b"", timeout=poll_wait)
                backoff = 0.5
            except (grpc.RpcError, ValueError) as exc:
                if stop.is_set():
                    break
                code = exc.code() if isinstance(exc, grpc.RpcError) else None
                if code != grpc.StatusCode.DEADLINE_EXCEEDED:
                    _LOG.warning("party %r: poll failed: %s", self.name, exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                continue
            if not data:
                continue
            try:
                rid, payload = unframe(data)
            except ValueError:
                _LOG.warning("party %r: malformed frame from the server", self.name)
                continue
            reply = self.handle(payload)
            for attempt in range(3):
                try:
                    send(frame(rid, reply), timeout=60)
                    break
                except grpc.RpcError as exc:
                    _LOG.warning(
                        "party %r: sending the answer failed: %s", self.name, exc.code()
                    )
                    time.sleep(0.5 * (attempt + 1))
        ch.close()


class _WholeFit:
    statistic = "(whole fit)"
