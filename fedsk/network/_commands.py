"""The ``fedsk certs``, ``fedsk serve`` and ``fedsk party`` commands, and the
``--server`` options of ``fedsk fit``.

``fedsk/cli.py`` adds these to its parser with :func:`add_commands` and runs
them from :func:`commands`; nothing here imports grpc until a command runs.
"""

import json
import logging
import math
import signal
import sys
import threading

import numpy as np

from ._transport import DEFAULT_MAX_MB


def add_commands(subparsers, fit=None):
    """Add ``certs``, ``serve`` and ``party`` to ``subparsers``; ``--server``
    and friends to the ``fit`` parser."""
    certs = subparsers.add_parser(
        "certs",
        help="make a federation CA and every participant's start-up kit",
        description="Write a federation CA and, in DIR/server, DIR/client and "
        "DIR/<party>, each participant's CA certificate, certificate and key.",
    )
    certs.add_argument("--out", required=True, metavar="DIR")
    certs.add_argument(
        "--server-host",
        required=True,
        metavar="HOST",
        help="host name or IP address everyone dials",
    )
    certs.add_argument("--parties", required=True, metavar="A,B,C")
    certs.add_argument("--days", type=int, default=365, help="validity (default 365)")

    serve = subparsers.add_parser(
        "serve",
        help="run the aggregation server (a relay that holds no data)",
        description="Relay requests from the coordinator to the party agents "
        "and their answers back, over mutual TLS.",
    )
    serve.add_argument("--address", required=True, metavar="HOST:PORT")
    serve.add_argument("--certs", required=True, metavar="DIR/server")
    serve.add_argument(
        "--max-mb",
        type=float,
        default=DEFAULT_MAX_MB,
        help="largest message in MiB (default 256)",
    )

    party = subparsers.add_parser(
        "party",
        help="run a party's agent: it dials out and answers fedsk's requests",
        description="Answer fedsk's statistic requests on this party's rows, "
        "after checking each one against its policy and budget; charge the "
        "durable ledger before anything is sent. Opens no port.",
    )
    party.add_argument("--server", required=True, metavar="HOST:PORT")
    party.add_argument("--certs", required=True, metavar="DIR/NAME")
    party.add_argument("--name", required=True)
    party.add_argument(
        "--data", required=True, metavar="FILE.csv", help="CSV (or .parquet) file"
    )
    party.add_argument("--target", default=None, metavar="COL")
    party.add_argument(
        "--epsilon",
        type=float,
        required=True,
        help="the party's total budget ('inf': no limit, and "
        "noise-free requests are answered)",
    )
    party.add_argument("--delta", type=float, default=None)
    party.add_argument(
        "--categories",
        default=None,
        metavar="FILE",
        help="JSON {column: [categories]} for text columns",
    )
    party.add_argument("--ledger", required=True, metavar="FILE.db")
    party.add_argument(
        "--trust",
        default="local,secure,peer_to_peer",
        help="trust modes accepted (default local,secure,"
        "peer_to_peer; add central to hand exact statistics "
        "to the coordinator)",
    )
    party.add_argument(
        "--bounds",
        default=None,
        metavar="FILE",
        help="JSON {column: [lower, upper]}: the widest clipping accepted "
        "(the target's too, if it is listed)",
    )
    party.add_argument(
        "--min-parties",
        type=int,
        default=2,
        metavar="N",
        help="under secure and peer_to_peer trust, take part only in sums of "
        "at least N parties' inputs (default 2)",
    )
    party.add_argument(
        "--privacy-unit",
        choices=("record", "party"),
        default="record",
        help="'party': answer only fits that protect all of this party's rows "
        "as one unit (privacy_unit='party')",
    )
    party.add_argument(
        "--keep-answers",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="days its answers are kept for retried requests (default 7)",
    )
    party.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB)
    party.add_argument("--verbose", action="store_true")

    if fit is not None:
        fit.add_argument(
            "--server",
            default=None,
            metavar="HOST:PORT",
            help="fit across party agents through this server "
            "(instead of --party CSV files)",
        )
        fit.add_argument("--certs", default=None, metavar="DIR/client")
        fit.add_argument("--parties", default=None, metavar="A,B,C")
        fit.add_argument("--timeout", type=float, default=60.0)


def commands():
    """``{command name: function(args)}`` of the network commands."""
    return {"certs": certs_command, "serve": serve_command, "party": party_command}


def _grpc_or_error():
    from ._transport import require_grpc

    try:
        return require_grpc()
    except ImportError as exc:
        raise RuntimeError(str(exc)) from None


def certs_command(args):
    from ._certs import provision

    parties = [p for p in args.parties.split(",") if p]
    kits = provision(args.out, args.server_host, parties, days=args.days)
    for who, directory in kits.items():
        print(f"{who}: {directory}")
    print(
        f"CA key: {args.out}/ca/ca-key.pem (keep it offline; hand each kit "
        "to its owner)"
    )


def _wait_for_signal():
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve_command(args):
    _grpc_or_error()
    from ._server import build_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server, relay, port = build_server(args.address, args.certs, max_mb=args.max_mb)
    print(f"fedsk server listening on port {port} ({args.address})", flush=True)
    stop = _wait_for_signal()
    stop.wait()
    server.stop(grace=2).wait()
    print(f"fedsk server stopped; relayed {relay.relayed_bytes} bytes", flush=True)


def party_command(args):
    _grpc_or_error()
    from ._agent import PartyAgent
    from ._ledger import DurableLedger
    from ._policy import Policy

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("fedsk.agent").setLevel(logging.INFO)
    from ._certs import identity, read_kit

    common_name, role = identity(read_kit(args.certs)[1])
    if common_name != args.name or role != "party":
        raise ValueError(
            f"--certs {args.certs} is the kit of {common_name!r} ({role}), not of "
            f"party {args.name!r}: use DIR/{args.name} from 'fedsk certs'"
        )
    categories = _read_json(args.categories) if args.categories else None
    store = DurableLedger(
        args.ledger, args.name, epsilon=args.epsilon, delta=args.delta
    )
    policy = Policy(
        trust=[t for t in args.trust.split(",") if t],
        allow_inf=math.isinf(args.epsilon),
        min_parties=args.min_parties,
        privacy_unit=args.privacy_unit,
    )
    agent = PartyAgent.from_csv(
        args.name,
        args.data,
        args.target,
        store,
        policy,
        categories,
        kit=args.certs,
        max_mb=args.max_mb,
        keep_answers=args.keep_answers * 86400,
    )
    if args.bounds:
        given = _read_json(args.bounds)
        policy.bounds = _bounds_policy(given, agent.schema)
        if args.target in given:
            policy.y_bounds = tuple(float(v) for v in given[args.target])
    spent = store.ledger.spent()[0]
    print(
        f"party {args.name!r}: {agent.schema['n_features']} features; budget "
        f"{args.epsilon:g}, spent {spent:g} ({len(store.ledger.events)} releases); "
        f"polling {args.server}",
        flush=True,
    )
    stop = _wait_for_signal()
    agent.run(args.server, stop=stop)
    store.close()


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None


def _bounds_policy(given, schema):
    names = schema["feature_names"]
    if names is None:
        raise ValueError("--bounds needs named columns")
    missing = [n for n in names if n not in given and "=" not in str(n)]
    if missing:
        raise ValueError(f"--bounds has no range for {missing}")
    lower = np.array([float(given.get(n, (0, 1))[0]) for n in names])
    upper = np.array([float(given.get(n, (0, 1))[1]) for n in names])
    return lower, upper


def connect_from_args(args):
    """The RemoteFederation of ``fedsk fit --server ... --certs ... --parties ...``."""
    if not args.certs or not args.parties:
        raise ValueError("--server needs --certs DIR/client and --parties A,B,C")
    _grpc_or_error()
    from ._remote import connect

    return connect(
        args.server,
        certs=args.certs,
        parties=[p for p in args.parties.split(",") if p],
        timeout=args.timeout,
    )


def main():
    """``python -m fedsk.network``: the same as the ``fedsk`` command."""
    from ..cli import main_exit

    main_exit()


if __name__ == "__main__":
    sys.exit(main())
