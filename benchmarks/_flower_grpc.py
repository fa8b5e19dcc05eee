"""Flower 1.42's gRPC FedAvg (``start_server`` / ``start_client``, grpc-bidi).

Run by ``bench_network.py`` with the Python of a venv that has ``flwr==1.42``
(never fedsk's). Flower 1.42's deployment engine (SuperLink, SuperNodes,
``flwr run``) talks HTTP; this legacy API, deprecated since Flower 1.13 but
still shipped, is the one whose server and clients talk gRPC. Same model and
task as ``flower_app/``: FedAvg over LogisticRegression, one lbfgs iteration
per round from the global model.

    python _flower_grpc.py server ADDRESS --parties 3 --rounds 10 \
        --features 20 --test test.npz --out out.json
    python _flower_grpc.py client ADDRESS --data party.npz
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "flower_app"))
warnings.simplefilter("ignore", DeprecationWarning)

import flwr  # noqa: E402
from fedsk_flower.task import accuracy, load, local_epoch, zeros  # noqa: E402
from flwr.common import ndarrays_to_parameters  # noqa: E402


class _FedAvg(flwr.server.strategy.FedAvg):
    """FedAvg that notes when round 1's clients are sampled (start-up is over)."""

    sampled = None

    def configure_fit(self, server_round, parameters, client_manager):
        chosen = super().configure_fit(server_round, parameters, client_manager)
        if self.sampled is None:
            self.sampled = time.time()
        return chosen


class _Party(flwr.client.NumPyClient):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def fit(self, parameters, config):
        return local_epoch(parameters, self.X, self.y), len(self.y), {}


def server(args):
    started = time.time()
    X_test, y_test = load(args.test)
    rounds = []

    def evaluate(server_round, arrays, config):
        score = accuracy(arrays, X_test, y_test)
        rounds.append({"round": server_round, "time": time.time(), "accuracy": score})
        return 0.0, {"accuracy": score}

    strategy = _FedAvg(
        fraction_evaluate=0.0,
        min_fit_clients=args.parties,
        min_available_clients=args.parties,
        evaluate_fn=evaluate,
        initial_parameters=ndarrays_to_parameters(zeros(args.features)),
    )
    flwr.server.start_server(
        server_address=args.address,
        config=flwr.server.ServerConfig(num_rounds=args.rounds),
        strategy=strategy,
    )
    result = {"started": started, "sampled": strategy.sampled, "rounds": rounds}
    Path(args.out).write_text(json.dumps(result))


def client(args):
    X, y = load(args.data)
    flwr.client.start_client(
        server_address=args.address, client=_Party(X, y).to_client(), insecure=True
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server")
    s.add_argument("address")
    s.add_argument("--parties", type=int, required=True)
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--features", type=int, required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("client")
    c.add_argument("address")
    c.add_argument("--data", required=True)
    args = parser.parse_args()
    server(args) if args.role == "server" else client(args)


if __name__ == "__main__":
    main()
