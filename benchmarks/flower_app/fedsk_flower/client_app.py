"""The party's side: one local epoch on its own rows per round."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fedsk_flower.task import load, local_epoch

app = ClientApp()
_rows = {}


@app.train()
def train(msg: Message, context: Context):
    path = context.node_config["data-path"]
    if path not in _rows:  # a ClientApp process may serve several rounds
        _rows[path] = load(path)
    X, y = _rows[path]
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    updated = local_epoch(arrays, X, y)
    content = RecordDict(
        {
            "arrays": ArrayRecord(updated),
            "metrics": MetricRecord({"num-examples": len(y)}),
        }
    )
    return Message(content=content, reply_to=msg)
