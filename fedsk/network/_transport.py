"""gRPC plumbing shared by the server, the agents and the coordinator.

Generic handlers carry raw bytes (no generated code, no protobuf messages):
what they carry is a :mod:`fedsk.network._codec` message, or a small frame
of the relay. Every channel is mutual TLS with the federation's CA.
"""

import struct

SERVICE = "fedsk.Relay"
POLL = f"/{SERVICE}/Poll"
ANSWER = f"/{SERVICE}/Answer"
CALL = f"/{SERVICE}/Call"
STATUS = f"/{SERVICE}/Status"
DEFAULT_MAX_MB = 256
_ID = struct.Struct("<H")


def require_grpc():
    """Import grpc, or raise a one-line error naming the extra."""
    try:
        import grpc
    except ImportError:
        raise ImportError(
            "fedsk's network deployment needs the 'network' extra: "
            "pip install 'fedsk[network]' (grpcio)"
        ) from None
    return grpc


def server_options(max_mb=DEFAULT_MAX_MB):
    """:func:`options`, and accepting the clients' keepalive pings (the
    default allows one per 5 minutes without data, and answers more with
    GOAWAY "too_many_pings")."""
    return [
        *options(max_mb),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def options(max_mb=DEFAULT_MAX_MB):
    """Channel options: message size limits, keepalives."""
    size = int(max_mb * 2**20)
    return [
        ("grpc.max_send_message_length", size),
        ("grpc.max_receive_message_length", size),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def frame(request_id, payload):
    """``request_id`` (text) and ``payload`` (bytes) in one byte string."""
    rid = request_id.encode()
    return _ID.pack(len(rid)) + rid + payload


def unframe(data):
    """Inverse of :func:`frame`; raises ValueError on a malformed frame."""
    if len(data) < _ID.size:
        raise ValueError("frame too short")
    (n,) = _ID.unpack(data[: _ID.size])
    if len(data) < _ID.size + n:
        raise ValueError("frame shorter than its id")
    return data[_ID.size : _ID.size + n].decode(), data[_ID.size + n :]


def channel(address, kit, max_mb=DEFAULT_MAX_MB):
    """A mutual-TLS channel to the server with the start-up kit ``kit``."""
    grpc = require_grpc()
    from ._certs import read_kit

    ca, cert, key = read_kit(kit)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    return grpc.secure_channel(address, credentials, options=options(max_mb))


def identity(context):
    """``(common name, role)`` of the peer, from its verified certificate."""
    from ._certs import identity as cert_identity

    auth = context.auth_context()
    pem = auth.get("x509_pem_cert")
    if not pem:
        return None, None
    return cert_identity(pem[0])
