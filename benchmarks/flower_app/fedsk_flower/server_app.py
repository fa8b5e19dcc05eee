"""The server's side: FedAvg for a fixed number of rounds, test accuracy each round.

Writes ``out-path`` (JSON): the wall-clock time and test accuracy after each
round, so the benchmark can time the run from ``flwr run`` to the final model.
"""

import json
import time

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedsk_flower.task import accuracy, load, zeros

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    started = time.time()
    X_test, y_test = load(config["test-path"])
    n_parties = int(config["num-parties"])
    rounds = []

    def evaluate(server_round, arrays):
        score = accuracy(arrays.to_numpy_ndarrays(), X_test, y_test)
        rounds.append({"round": server_round, "time": time.time(), "accuracy": score})
        return MetricRecord({"accuracy": score})

    strategy = FedAvg(
        fraction_evaluate=0.0,
        min_train_nodes=n_parties,
        min_available_nodes=n_parties,
    )
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(zeros(int(config["n-features"]))),
        num_rounds=int(config["num-server-rounds"]),
        evaluate_fn=evaluate,
    )
    with open(config["out-path"], "w") as f:
        json.dump({"started": started, "rounds": rounds}, f)
