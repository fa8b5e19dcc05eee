"""The aggregation server: a relay that holds no data.

Parties dial out and long-poll for requests addressed to them; the
coordinator submits a request for one party and waits for its answer. The
server never decodes what it relays (opaque bytes: public requests one way,
noisy, masked or sealed statistics the other); it checks who is speaking
from the certificate of the mutual TLS handshake:

- ``Poll`` / ``Answer``: a peer with a party certificate; it receives only
  requests addressed to the name in its certificate, and may answer only
  those;
- ``Call`` / ``Status``: a peer with the coordinator certificate.

A request that is not taken or answered within the coordinator's timeout
is dropped, and the coordinator gets DEADLINE_EXCEEDED.
"""

import logging
import queue
import threading
import time
from concurrent import futures

from ._transport import (
    ANSWER,
    CALL,
    DEFAULT_MAX_MB,
    POLL,
    SERVICE,
    STATUS,
    frame,
    identity,
    require_grpc,
    server_options,
    unframe,
)

_LOG = logging.getLogger("fedsk.server")
POLL_WAIT = 15.0  # seconds a long poll waits before returning empty


class _Pending:
    def __init__(self, party):
        self.party = party
        self.done = threading.Event()
        self.answer = None


class Relay:
    """The server's state: per-party queues and requests awaiting answers."""

    def __init__(self, poll_wait=POLL_WAIT):
        self.poll_wait = poll_wait
        self._lock = threading.Lock()
        self._queues = {}
        self._pending = {}
        self.last_seen = {}
        self.relayed_bytes = 0

    def _queue(self, party):
        with self._lock:
            return self._queues.setdefault(party, queue.Queue())

    # -- party side --------------------------------------------------------
    def poll(self, data, context):
        name, role = identity(context)
        if role != "party":
            _refuse(context, "only a party certificate may poll")
        self.last_seen[name] = time.time()
        deadline = time.monotonic() + self.poll_wait
        q = self._queue(name)
        while context.is_active():
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            try:
                rid, payload = q.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            with self._lock:
                live = rid in self._pending
            if live:
                self.last_seen[name] = time.time()
                return frame(rid, payload)
        return b""

    def answer(self, data, context):
        name, role = identity(context)
        if role != "party":
            _refuse(context, "only a party certificate may answer")
        self.last_seen[name] = time.time()
        try:
            rid, payload = unframe(data)
        except ValueError:
            _refuse(context, "malformed answer frame")
        with self._lock:
            pending = self._pending.get(rid)
        if pending is None:
            return b"late"  # the coordinator gave up on it
        if pending.party != name:
            _refuse(context, f"request {rid} is not addressed to {name!r}")
        pending.answer = payload
        self.relayed_bytes += len(payload)
        pending.done.set()
        return b"ok"

    # -- coordinator side -------------------------------------------------
    def call(self, data, context):
        _, role = identity(context)
        if role != "coordinator":
            _refuse(context, "only the coordinator certificate may submit requests")
        try:
            rid, rest = unframe(data)
            party, payload = unframe(rest)
        except ValueError:
            _refuse(context, "malformed request frame")
        pending = _Pending(party)
        with self._lock:
            if rid in self._pending:
                _refuse(context, f"request {rid} is already in flight")
            self._pending[rid] = pending
        self.relayed_bytes += len(payload)
        self._queue(party).put((rid, payload))
        try:
            remaining = context.time_remaining()
            deadline = time.monotonic() + (
                3600.0 if remaining is None else max(remaining - 0.2, 0.0)
            )
            while not pending.done.wait(timeout=0.5):
                if not context.is_active() or time.monotonic() > deadline:
                    break
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        if not pending.done.is_set():
            grpc = require_grpc()
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"party {party!r} did not answer in time (not connected, or down)",
            )
        return pending.answer

    def status(self, data, context):
        _, role = identity(context)
        if role != "coordinator":
            _refuse(context, "only the coordinator certificate may ask for status")
        now = time.time()
        seen = {n: now - t for n, t in self.last_seen.items()}
        text = ",".join(f"{n}={age:.1f}" for n, age in sorted(seen.items()))
        return text.encode()


def _refuse(context, why):
    grpc = require_grpc()
    _LOG.warning("refused: %s (peer %s)", why, context.peer())
    context.abort(grpc.StatusCode.PERMISSION_DENIED, why)


def build_server(
    address, kit, *, max_mb=DEFAULT_MAX_MB, workers=128, poll_wait=POLL_WAIT
):
    """A started gRPC server on ``address`` with mutual TLS; returns
    ``(server, relay, port)``."""
    grpc = require_grpc()
    from ._certs import read_kit

    ca, cert, key = read_kit(kit)
    relay = Relay(poll_wait)

    def unary(fn):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=None, response_serializer=None
        )

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            POLL.rsplit("/", 1)[1]: unary(relay.poll),
            ANSWER.rsplit("/", 1)[1]: unary(relay.answer),
            CALL.rsplit("/", 1)[1]: unary(relay.call),
            STATUS.rsplit("/", 1)[1]: unary(relay.status),
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        handlers=[handler],
        options=server_options(max_mb),
        maximum_concurrent_rpcs=workers,
    )
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )
    port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, relay, port
