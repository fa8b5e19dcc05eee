"""Regression tests for the privacy holes of issue 14: each reproduces the attack.

1. Party-owned randomness: the coordinator, knowing everything it sent to a
   party, tries to recompute the party's noise and subtract it.
2. Masking in the party: what the coordinator receives from a party under
   ``secure`` / ``peer_to_peer`` is intercepted and compared with the
   party's encoded statistic; the protocol steps must run in the party's
   own process (checked with a process-based backend).
3. No label set in the party schema.
4. Data-dependent failures are not a free oracle: they stay charged, and
   messages quote no value or count; FedAvg and unknown labels are robust.
5. ``classes=None`` with finite epsilon is refused, nothing charged.
7. An accountant passed with a Federation is enforced.
8. A fit that cannot finish is refused before its first release.
9. Party-level privacy says what it protects.
10. delta of at least 1/n refused; a plain step before a federated step
    warns; clipping that changes most rows warns at epsilon=inf.
"""

import dataclasses
import math
import warnings

import numpy as np
import pytest
import sklearn
from joblib import parallel_config
from ring_checks import close_fraction
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fedsk._federation
import fedsk._party
from fedsk import FederatedEstimator, Federation, Party, PartyError
from fedsk._federation import Request
from fedsk._party import PartyTask, party_release
from fedsk.privacy import (
    BudgetExceededError,
    Clipping,
    GridEncoding,
    PrivacyAccountant,
    PrivacyWarning,
    budget_share,
)

BOUNDS = (-3.0, 3.0)


def _parties(n_parties=3, n_rows=400, seed=0, classes=(0, 1), **party_params):
    rng = np.random.default_rng(seed)
    parties = []
    for i in range(n_parties):
        X = rng.normal(size=(n_rows, 4))
        y = np.asarray(classes)[(X[:, 0] + rng.normal(size=n_rows) > 0).astype(int)]
        parties.append(Party(f"p{i}", X, y, **party_params))
    return parties


def _recording(monkeypatch):
    """Record every (party, request, party's rows, answer) the coordinator
    exchanges (the rows are looked up by the test, to replay the party)."""
    seen = []
    original = Federation._call_parties

    def recording(self, requests, what, verbose):
        out = original(self, requests, what, verbose)
        for name, request in requests.items():
            source = self._party(name).source  # the test, not the coordinator
            seen.append((name, request, source, out[name]))
        return out

    monkeypatch.setattr(Federation, "_call_parties", recording)
    return seen


def _request(trust, epsilon=1.0, statistic="moments", params=None):
    return Request(
        statistic=statistic,
        epsilon=epsilon,
        delta=0.0,
        rho=None,
        clipping=Clipping(np.full(4, -3.0), np.full(4, 3.0)),
        estimator="test",
        trust=trust,
        params=params or {},
    )


# -- 1. the coordinator cannot reproduce a party's noise ------------------------


def test_coordinator_cannot_recompute_a_partys_local_noise(monkeypatch):
    # The attack: everything the coordinator sends a party is in `args`; it
    # replays the party's computation on the party's rows (a worst case: it
    # even knows the rows) with what it sent, and subtracts. With noise
    # seeded by the coordinator, the replay equals the party's answer.
    seen = _recording(monkeypatch)
    parties = _parties()
    Federation(parties).release(_request("local"), seed_sequence=None)
    assert len(seen) == len(parties)
    for _, request, source, answer in seen:
        task = request.task
        assert task.seed is None  # no seed crosses
        guessed = dataclasses.replace(source, secret=bytes(32))  # any guess
        replay = party_release(guessed, task)
        assert not np.array_equal(replay, answer)
        # the party itself, asked again (a retry), answers the same
        assert np.array_equal(party_release(source, task), answer)
        # and its noise is really there: the answer is not the bare statistic
        bare = dataclasses.replace(task, encoding=None)
        exact = task.encoding.encode(party_release(source, bare))
        assert not np.array_equal(answer, exact)


def test_parties_draw_independent_noise_without_a_seed():
    parties = _parties(n_parties=2, n_rows=10)
    twin = Party("p1", parties[0].X, parties[0].y)  # same rows, own secret
    task = PartyTask(
        release_id="r1",
        clipping=Clipping(np.full(4, -3.0), np.full(4, 3.0)),
        statistic="moments",
        params={},
        encoding=GridEncoding.calibrate(
            [(1,), (4,), (4,)], [(1, 1), (12, 6), (36, 18)], epsilon=1.0, rho=None
        ),
    )
    a = party_release(parties[0].source, task)
    b = party_release(twin.source, task)
    assert not np.array_equal(a, b)


@pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")
@pytest.mark.parametrize("trust", ["local", "secure", "peer_to_peer"])
def test_a_user_seed_is_marked_in_the_report(trust):
    parties = _parties()
    FederatedEstimator(
        StandardScaler(), epsilon=1.0, bounds=BOUNDS, trust=trust, random_state=0
    ).fit(Federation(parties))
    notes = {e.note for p in parties for e in p.ledger.events}
    assert notes and all("simulation only" in note for note in notes)
    parties = _parties()
    FederatedEstimator(StandardScaler(), epsilon=1.0, bounds=BOUNDS, trust=trust).fit(
        Federation(parties)
    )
    assert all("simulation" not in e.note for p in parties for e in p.ledger.events)


# -- 2. masking and sharing happen in the party -----------------------------------


@pytest.mark.parametrize("trust", ["secure", "peer_to_peer"])
def test_what_the_coordinator_receives_is_masked_or_sealed(monkeypatch, trust):
    seen = _recording(monkeypatch)
    parties = _parties(n_rows=2000)
    federation = Federation(parties)
    federation.release(_request(trust), seed_sequence=None)
    contributions = [s for s in seen if s[1].kind == "contribute"]
    assert {s[0] for s in contributions} == {p.name for p in parties}
    for _, request, source, answer in contributions:
        task = request.task
        exact = task.encoding.encode(
            party_release(source, dataclasses.replace(task, encoding=None))
        )
        if trust == "secure":
            arrays = [answer]  # the masked vector alone
        else:
            assert all(isinstance(v, bytes) for v in answer.values())  # sealed
            arrays = [np.frombuffer(v[12:-16], np.uint64) for v in answer.values()]
        for array in arrays:
            assert array.size == exact.size
            assert close_fraction(array, exact) < 0.2
    # nothing a party handed to the coordinator is the plain statistic
    for message in federation.last_transcript_.seen_by("coordinator"):
        if isinstance(message.payload, np.ndarray) and message.payload.size == 9:
            assert close_fraction(message.payload, exact) < 0.2


@pytest.mark.parametrize("trust", ["secure", "peer_to_peer"])
def test_protocol_steps_run_in_the_parties_processes(monkeypatch, trust):
    # In this (the coordinator's) process the party-side steps are broken;
    # the fit still succeeds because loky runs them in the parties' workers.
    def not_here(*args, **kwargs):
        raise AssertionError("a party's protocol step ran in the coordinator")

    monkeypatch.setattr(fedsk._party, "masking_step", not_here)
    monkeypatch.setattr(fedsk._party, "sharing_step", not_here)
    parties = _parties()
    with parallel_config(backend="loky", n_jobs=2):
        model = FederatedEstimator(
            StandardScaler(), epsilon=1.0, bounds=BOUNDS, trust=trust, n_jobs=2
        ).fit(Federation(parties, n_jobs=2))
    assert np.all(np.abs(model.estimator_.mean_) < 0.5)
    with pytest.raises(PartyError, match="AssertionError"):  # control
        FederatedEstimator(
            StandardScaler(), epsilon=1.0, bounds=BOUNDS, trust=trust
        ).fit(Federation(_parties(), n_jobs=1))


# -- 3. no labels in the schema ------------------------------------------------------


def test_the_party_schema_holds_only_public_facts():
    for party in _parties() + [Party("r", np.ones((5, 4)), np.arange(5.0))]:
        assert set(party.schema) == {"n_features", "feature_names", "y_kind"}
    assert not hasattr(Federation, "label_sets")


# -- 4. data-dependent failures -----------------------------------------------------


def test_labels_outside_classes_are_dropped_on_the_partys_side():
    parties = _parties(n_parties=2)
    X, y = parties[0].X, parties[0].y
    extra = Party("p0", np.vstack([X, X[:5]]), np.concatenate([y, [7] * 5]))
    fits = []
    for first in (parties[0], extra):
        fits.append(
            FederatedEstimator(GaussianNB(), epsilon=math.inf, classes=[0, 1])
            .fit(Federation([first, parties[1]]))
            .estimator_
        )
    np.testing.assert_allclose(fits[0].theta_, fits[1].theta_)
    np.testing.assert_allclose(fits[0].class_count_, fits[1].class_count_)


def test_fedavg_party_without_a_class_contributes_zero_update():
    parties = _parties(n_parties=3)
    lonely = Party("p2", parties[2].X[:50], np.zeros(50, dtype=int))
    model = FederatedEstimator(
        LogisticRegression(),
        epsilon=2.0,
        bounds=BOUNDS,
        classes=[0, 1],
        strategy="fedavg",
        max_rounds=2,
    ).fit(Federation(parties[:2] + [lonely]))
    assert model.estimator_.coef_.shape == (1, 4)


def test_a_data_dependent_failure_stays_charged_and_quotes_no_count():
    # The oracle: a party-level cap below one party's row count fails. If
    # it were refunded, the coordinator could ask again and again for free,
    # learning (from the failure) whether the party holds more rows than a
    # cap it chooses.
    parties = _parties(n_parties=2, n_rows=400, epsilon=5.0)
    parties[1] = Party("p1", parties[1].X[:123], parties[1].y[:123], epsilon=5.0)
    model = FederatedEstimator(
        StandardScaler(),
        epsilon=1.0,
        bounds=BOUNDS,
        privacy_unit="party",
        max_party_rows=200,
    )
    with pytest.raises(PartyError) as error:
        model.fit(Federation(parties))
    assert "400" not in str(error.value) and "p0" in str(error.value)
    assert parties[0].ledger.spent()[0] == pytest.approx(1.0)  # charged
    assert parties[1].ledger.spent()[0] == 0.0  # did nothing wrong, not charged


def test_csv_errors_do_not_quote_cell_values(tmp_path):
    path = tmp_path / "north.csv"
    path.write_text("a,b,y\n1,2,0\n3,secret-value-17,1\n")
    with pytest.raises(PartyError) as error:
        Federation([Party.from_csv(path, target="y")])
    assert "secret-value-17" not in str(error.value)
    assert "north" in str(error.value)


# -- 5. classes are declared ----------------------------------------------------------


@pytest.mark.parametrize("pooled", [True, False])
def test_classes_are_required_with_finite_epsilon(pooled):
    accountant = PrivacyAccountant(epsilon=5.0)
    parties = _parties()
    model = FederatedEstimator(GaussianNB(), epsilon=1.0, bounds=BOUNDS)
    with pytest.raises(ValueError, match="classes is required"):
        if pooled:
            X = np.vstack([p.X for p in parties])
            y = np.concatenate([p.y for p in parties])
            model.set_params(accountant=accountant).fit(
                X, y, parties=np.repeat(["a", "b", "c"], 400)
            )
        else:
            model.fit(Federation(parties))
    assert all(not p.ledger.events for p in parties)
    assert all(not led.events for led in accountant.ledgers.values())


# -- 7. the accountant is enforced with a Federation -------------------------------


def test_an_accountant_caps_fits_on_a_federation():
    accountant = PrivacyAccountant(epsilon=1.0)
    federation = Federation(_parties())
    model = FederatedEstimator(
        StandardScaler(), epsilon=1.0, bounds=BOUNDS, accountant=accountant
    )
    model.fit(federation)
    with pytest.raises(BudgetExceededError):
        model.fit(federation)
    assert accountant.ledgers["p0"].spent()[0] == pytest.approx(1.0)
    report = accountant.privacy_report().to_dict()
    assert report  # the accountant's report shows the spend


# -- 8. a fit that cannot finish is refused before its first release ----------------


def test_a_multi_round_fit_over_budget_is_refused_before_any_release():
    parties = _parties(epsilon=1.0)
    model = FederatedEstimator(
        LogisticRegression(), epsilon=0.6, bounds=BOUNDS, classes=[0, 1], max_rounds=3
    )
    model.fit(Federation(parties))
    before = [len(p.ledger.events) for p in parties]
    with pytest.raises(BudgetExceededError, match="before its first release"):
        model.fit(Federation(parties))
    assert [len(p.ledger.events) for p in parties] == before
    assert parties[0].ledger.spent()[0] == pytest.approx(0.6)


# -- 9. party-level privacy --------------------------------------------------------


def test_party_level_events_say_what_is_protected():
    parties = _parties()
    FederatedEstimator(
        StandardScaler(),
        epsilon=1.0,
        bounds=BOUNDS,
        privacy_unit="party",
        max_party_rows=500,
    ).fit(Federation(parties))
    assert parties[0].ledger.events[0].unit == "party's rows (up to 500 records)"


# -- 10. smaller holes ---------------------------------------------------------------


def test_delta_of_at_least_one_over_n_is_refused():
    parties = _parties()
    X = np.vstack([p.X for p in parties])
    y = np.concatenate([p.y for p in parties])
    model = FederatedEstimator(
        GaussianNB(), epsilon=1.0, delta=0.5, bounds=BOUNDS, classes=[0, 1]
    )
    with pytest.raises(ValueError, match="delta=0.5 is not below 1 / the number"):
        model.fit(X, y, parties=np.repeat(["a", "b", "c"], 400))
    with pytest.raises(PartyError, match="delta=0.5 is not below 1 / its number"):
        model.fit(Federation(parties))


def test_a_plain_step_before_a_federated_step_warns():
    sklearn.set_config(enable_metadata_routing=True)
    try:
        parties = np.repeat(["a", "b"], 200)
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(400, 3)), rng.normal(size=400)
        pipe = make_pipeline(
            StandardScaler(), FederatedEstimator(Ridge(), epsilon=math.inf)
        )
        with pytest.warns(PrivacyWarning, match="fitted on the pooled rows"):
            pipe.fit(X, y, parties=parties)
        federated = make_pipeline(
            FederatedEstimator(StandardScaler(), epsilon=math.inf),
            FederatedEstimator(Ridge(), epsilon=math.inf),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", PrivacyWarning)
            federated.fit(X, y, parties=parties)
    finally:
        sklearn.set_config(enable_metadata_routing=False)


def test_clipping_that_changes_most_rows_warns_without_noise():
    rng = np.random.default_rng(0)
    X, y = rng.normal(10, 1, size=(300, 3)), rng.normal(size=300)
    model = FederatedEstimator(Ridge(), epsilon=math.inf, bounds=(0, 1))
    with pytest.warns(PrivacyWarning, match="changes 100% of the rows"):
        model.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrivacyWarning)
        FederatedEstimator(Ridge(), epsilon=math.inf, bounds=(0, 20)).fit(X, y)


def test_budget_shares_never_add_up_to_more_than_the_budget():
    epsilon = 1.0
    shares = [budget_share(epsilon, 0.0, f)[0] for f in [0.1] * 10]
    assert math.fsum(shares) <= epsilon


# -- stop conditions: a maximum training time ----------------------------------


@pytest.mark.parametrize(
    ("estimator", "rounds"),
    [
        (LogisticRegression(), {"max_rounds": 3}),
        (HistGradientBoostingClassifier(max_iter=20), {}),
    ],
    ids=["newton", "boosting"],
)
def test_max_time_stops_rounds_and_leaves_their_budget_unspent(estimator, rounds):
    # One round always runs; with max_time spent, no further round starts.
    parties = _parties()

    def fit(**params):
        model = FederatedEstimator(
            estimator, epsilon=1.0, bounds=BOUNDS, classes=[0, 1], **rounds, **params
        )
        return model.fit(Federation(parties))

    unlimited, stopped = fit(), fit(max_time=1e-9)
    assert unlimited.epsilon_spent_ == pytest.approx(1.0)
    assert stopped.epsilon_spent_ < 0.9 * unlimited.epsilon_spent_
    assert stopped.predict(parties[0].X).shape == (len(parties[0].X),)
    if hasattr(unlimited.estimator_, "n_iter_"):
        assert np.max(stopped.estimator_.n_iter_) < np.max(unlimited.estimator_.n_iter_)
