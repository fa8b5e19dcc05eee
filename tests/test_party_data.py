"""Parties whose rows are loaded where their work runs, and cached there."""

import os

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression, Ridge

from fedsk import FederatedEstimator, Federation, Party, PartyError


class CountingLoader:
    """Makes a party's rows and appends the loading process id to a log."""

    def __init__(self, seed, log, n=600):
        self.seed, self.log, self.n = seed, str(log), n

    def __call__(self):
        with open(self.log, "a") as log:
            log.write(f"{os.getpid()}\n")
        rng = np.random.default_rng(self.seed)
        X = rng.normal(size=(self.n, 3))
        y = (X @ [1.0, -1.0, 0.5] + rng.logistic(size=self.n) > 0).astype(int)
        return X, y


def _loads(log):
    return log.read_text().split()


def _in_memory(seed, n=600):
    return CountingLoader(seed, os.devnull, n)()


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_loaded_rows_are_cached_across_rounds(tmp_path, backend):
    log = tmp_path / "loads.txt"
    log.touch()
    parties = [Party(f"p{i}", loader=CountingLoader(i, log)) for i in range(3)]
    with parallel_config(backend=backend, n_jobs=1):
        fed = Federation(parties)
        model = FederatedEstimator(
            LogisticRegression(), epsilon=float("inf"), classes=[0, 1]
        ).fit(fed)
    rounds = model.estimator_.n_iter_[0]
    assert rounds >= 4
    # one load per party and worker process, not one per round
    assert len(_loads(log)) <= 3 * len(set(_loads(log)))
    assert len(_loads(log)) < 3 * rounds


def test_loaded_party_fits_like_an_in_memory_party(tmp_path):
    loaded = [
        Party(f"p{i}", loader=CountingLoader(i, tmp_path / "l")) for i in range(3)
    ]
    held = [Party(f"p{i}", *_in_memory(i)) for i in range(3)]
    coefs = [
        FederatedEstimator(LogisticRegression(), epsilon=float("inf"), classes=[0, 1])
        .fit(Federation(parties))
        .estimator_.coef_
        for parties in (loaded, held)
    ]
    np.testing.assert_allclose(coefs[0], coefs[1])
    assert loaded[0].X is None  # the coordinator never held the rows


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_party_from_file(tmp_path, kind):
    if kind == "parquet":
        pytest.importorskip("pyarrow")
    parties = []
    for i in range(2):
        X, y = _in_memory(i)
        frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=y)
        path = tmp_path / f"clinic{i}.{kind}"
        if kind == "csv":
            frame.to_csv(path, index=False)
            parties.append(Party.from_csv(path, target="label"))
        else:
            frame.to_parquet(path)
            parties.append(Party.from_parquet(path, target="label"))
    fed = Federation(parties)
    assert fed.party_names == ["clinic0", "clinic1"]
    model = FederatedEstimator(
        LogisticRegression(), epsilon=1.0, bounds=(-4, 4), classes=[0, 1]
    ).fit(fed)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    X, y = _in_memory(5)
    assert model.score(pd.DataFrame(X, columns=["a", "b", "c"]), y) > 0.6


def test_file_party_errors_name_the_party(tmp_path):
    path = tmp_path / "north.csv"
    pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(PartyError, match="'north'.*no column 'label'"):
        Federation([Party.from_csv(path, target="label")])
    with pytest.raises(PartyError, match="'gone'"):
        Federation([Party.from_csv(tmp_path / "gone.csv", target="y")])


def test_party_needs_rows_or_loader_not_both():
    with pytest.raises(ValueError, match="rows X .* or a loader"):
        Party("p")
    with pytest.raises(ValueError, match="rows X .* or a loader"):
        Party("p", np.ones((2, 2)), loader=lambda: None)


def test_loaded_regression_target_must_be_numeric(tmp_path):
    path = tmp_path / "south.csv"
    pd.DataFrame({"a": [1.0, 2.0], "y": ["x", "z"]}).to_csv(path, index=False)
    fed = Federation([Party.from_csv(path, target="y")])
    with pytest.raises(ValueError, match="'south'.*numeric targets"):
        FederatedEstimator(Ridge(), epsilon=float("inf")).fit(fed)


def test_resources_need_a_dask_client():
    # without the dask extra: an ImportError naming it; with it, but no
    # client running: a RuntimeError saying to start one
    try:
        import distributed  # noqa: F401

        expected, match = RuntimeError, "start a dask.distributed Client"
    except ImportError:
        expected, match = ImportError, r"fedsk\[dask\]"
    party = Party("north", *_in_memory(0), resources={"north": 1})
    with pytest.raises(expected, match=match):
        FederatedEstimator(
            LogisticRegression(), epsilon=float("inf"), classes=[0, 1]
        ).fit(Federation([party]))


def test_resources_pin_a_party_to_its_organisation_worker(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    log = tmp_path / "loads.txt"
    log.touch()
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources={"north": 1},  # the only worker is north's
        ) as cluster,
        distributed.Client(cluster),
    ):
        north = Party("north", loader=CountingLoader(0, log), resources={"north": 1})
        fed = Federation([north])
        model = FederatedEstimator(
            LogisticRegression(), epsilon=float("inf"), classes=[0, 1]
        ).fit(fed)
        assert model.estimator_.n_iter_[0] >= 4
        # loaded once, in north's worker, never in the coordinator
        assert len(_loads(log)) == 1 and _loads(log)[0] != str(os.getpid())
        # a party whose worker never joined gets no task: it times out
        south = Party("south", *_in_memory(1), resources={"south": 1})
        fed = Federation([north, south], timeout=2, min_parties=1)
        FederatedEstimator(
            LogisticRegression(), epsilon=1.0, bounds=(-4, 4), classes=[0, 1]
        ).fit(fed)
        assert len(south.ledger.events) == 0 and len(north.ledger.events) >= 1
