"""Parties that fail, hang or lie: left out above min_parties, fatal below.

Every case checks the ledgers. A party that fails while computing on its
rows stays charged (whether it fails may depend on them; refunding would
make the failure a free, repeatable oracle), and its error text stays on
its side (only the exception type crosses). A party that times out or
sends a malformed statistic is not charged; a release that did not happen
is charged to nobody else.
"""

import dataclasses
import time

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.naive_bayes import GaussianNB

import fedsk._statistics as statistics
from fedsk import FederatedEstimator, Federation, Party, PartyError
from fedsk._federation import Request
from fedsk.privacy import Clipping

SIZES = [300, 301, 302, 303]  # party q1 is the one with 301 rows
FAULTY = 301


def _parties():
    rng = np.random.default_rng(0)
    return [
        Party(f"q{i}", rng.normal(size=(n, 3)), rng.integers(0, 2, n))
        for i, n in enumerate(SIZES)
    ]


def _nb(**params):
    return FederatedEstimator(
        GaussianNB(), epsilon=1.0, bounds=(-4, 4), classes=[0, 1], **params
    )


@pytest.fixture
def faulty(monkeypatch):
    """Make the party with FAULTY rows misbehave in ``class_moments``."""
    original = statistics.STATISTICS["class_moments"]

    def install(behaviour):
        def compute(X, y, **params):
            blocks = original.compute(X, y, **params)
            return behaviour(blocks) if X.shape[0] == FAULTY else blocks

        monkeypatch.setitem(
            statistics.STATISTICS,
            "class_moments",
            dataclasses.replace(original, compute=compute),
        )

    return install


def _raise(blocks):
    raise RuntimeError("disk failure")


MALFORMED = {
    "nan": lambda b: [b[0], b[1] * np.nan, b[2]],
    "inf": lambda b: [b[0], b[1], b[2] + np.inf],
    "huge": lambda b: [b[0] + 1e300, b[1], b[2]],
    "shape": lambda b: [b[0], b[1][:, :2], b[2]],
    "blocks": lambda b: b[:2],
}


def _charged(parties):
    return [len(p.ledger.events) for p in parties]


def test_a_failing_party_is_fatal_by_default(faulty):
    faulty(_raise)
    parties = _parties()
    with pytest.raises(PartyError, match="'q1': RuntimeError.*stay charged") as error:
        _nb().fit(Federation(parties))
    assert "disk failure" not in str(error.value)  # the details stay with q1
    assert _charged(parties) == [0, 1, 0, 0]


def test_above_min_parties_the_release_goes_on_without_it(faulty):
    faulty(_raise)
    parties = _parties()
    fed = Federation(parties, min_parties=3)
    model = _nb().fit(fed)
    assert _charged(parties) == [1, 1, 1, 1]
    assert model.estimator_.class_count_.sum() == pytest.approx(
        sum(SIZES) - FAULTY, abs=60
    )
    assert "left out 1 of 4 parties (q1)" in str(fed.privacy_report())


def test_below_min_parties_nothing_is_released(faulty):
    faulty(_raise)
    parties = _parties()
    with pytest.raises(PartyError, match="needs 4 of 4"):
        _nb().fit(Federation(parties, min_parties=4))
    assert _charged(parties) == [0, 1, 0, 0]


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_statistics_never_reach_the_sum(faulty, kind):
    faulty(MALFORMED[kind])
    parties = _parties()
    with pytest.raises(PartyError, match="'q1': malformed statistic"):
        _nb().fit(Federation(parties))
    fed = Federation(_parties(), min_parties=3)
    model = _nb().fit(fed)
    assert np.all(np.isfinite(model.estimator_.theta_))
    assert np.all(np.isfinite(model.estimator_.var_))


def test_a_hanging_party_times_out(faulty):
    def hang(blocks):
        time.sleep(3)
        return blocks

    faulty(hang)
    parties = _parties()
    with parallel_config(backend="threading"):
        fed = Federation(parties, n_jobs=2, timeout=0.5, min_parties=3)
        start = time.perf_counter()
        _nb().fit(fed)
    assert time.perf_counter() - start < 2.5
    assert _charged(parties) == [1, 0, 1, 1]
    assert "q1" in str(fed.privacy_report())


@pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")
def test_a_retried_party_draws_the_same_noise(faulty):
    calls = []

    def flaky(blocks):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return blocks

    faulty(flaky)
    parties = _parties()
    retried = _nb(trust="local", random_state=0).fit(Federation(parties, retries=1))
    assert len(calls) == 2 and _charged(parties) == [1, 1, 1, 1]  # charged once
    faulty(lambda blocks: blocks)
    clean = _nb(trust="local", random_state=0).fit(Federation(_parties()))
    # same seeds: the retry returned exactly the noisy value of a clean run
    np.testing.assert_array_equal(retried.estimator_.theta_, clean.estimator_.theta_)


def test_min_parties_and_retries_are_checked():
    with pytest.raises(ValueError, match="min_parties"):
        Federation(_parties(), min_parties=5)
    with pytest.raises(ValueError, match="retries"):
        Federation(_parties(), retries=-1)


def test_party_level_privacy_scales_the_noise():
    def noise_std(group_size):
        request = Request(
            "class_moments",
            1.0,
            0.0,
            None,
            Clipping(np.full(3, -4.0), np.full(3, 4.0)),
            "test",
            params={"classes": np.array([0, 1])},
            group_size=group_size,
        )
        fed = Federation(_parties())
        release = fed.release(request, seed_sequence=np.random.SeedSequence(0))
        return np.asarray(release.noise_std), fed.parties[0].ledger.events[0]

    record, _ = noise_std(1)
    party, event = noise_std(400)
    np.testing.assert_allclose(party, 400 * record)
    assert event.unit == "party's rows (up to 400 records)"
    with pytest.raises(PartyError, match="more rows than the 300 allowed"):
        _nb(privacy_unit="party", max_party_rows=300).fit(Federation(_parties()))
    with pytest.raises(ValueError, match="max_party_rows"):
        _nb(privacy_unit="party").fit(Federation(_parties()))
    model = _nb(privacy_unit="party", max_party_rows=400).fit(Federation(_parties()))
    assert model.ledgers_[0].events[0].unit == "party's rows (up to 400 records)"


def test_fit_reports_time_per_phase_and_shows_party_progress(capsys):
    model = _nb(verbose=2).fit(Federation(_parties()))
    assert set(model.timings_) == {"parties", "aggregation"}
    assert all(t >= 0 for t in model.timings_.values())
    assert "class_moments" in capsys.readouterr().err
