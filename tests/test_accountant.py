"""Tests of composition, budget ledgers, the accountant, and charging releases.

A release must be charged to every ledger it touches before any noise is
drawn, all or nothing; ledgers must never lose spends (clones share the
accountant, copies in other processes refuse to be charged); and parties must
draw independent noise whatever the joblib backend.
"""

import copy
import itertools
import math
import pickle
import warnings

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler

import fedsk._federation
from fedsk import (
    BudgetExceededError,
    FederatedEstimator,
    Federation,
    Party,
    PrivacyAccountant,
)
from fedsk._federation import Request
from fedsk.privacy import (
    BudgetLedger,
    Clipping,
    ReleaseEvent,
    SeededNoiseWarning,
    budget_share,
    charge,
    composed_epsilon,
    noise_seed_sequence,
    zcdp_epsilon,
    zcdp_rho,
)

# -- events -------------------------------------------------------------------


def pure(epsilon, party="p"):
    return ReleaseEvent(
        party=party,
        estimator="est",
        statistic="moments",
        mechanism="discrete_laplace",
        epsilon=epsilon,
        delta=0.0,
        rho=None,
        sensitivity=1.0,
        noise_scale=1.0 / epsilon,
        trust="central",
    )


def gaussian(rho, delta, party="p"):
    return ReleaseEvent(
        party=party,
        estimator="est",
        statistic="moments",
        mechanism="discrete_gaussian",
        epsilon=zcdp_epsilon(rho, delta),
        delta=delta,
        rho=rho,
        sensitivity=1.0,
        noise_scale=1.0 / math.sqrt(2 * rho),
        trust="central",
    )


# -- composed_epsilon ---------------------------------------------------------


def test_no_events_cost_nothing():
    assert composed_epsilon([], 1e-6) == 0.0
    assert composed_epsilon([], 0.0) == 0.0
    assert BudgetLedger("p").spent() == (0.0, 0.0)


def test_pure_events_sum_exactly():
    # Ten releases of 0.1: a plain float sum gives 0.9999999999999999,
    # the exactly rounded sum (math.fsum) gives 1.0.
    events = [pure(0.1) for _ in range(10)]
    assert sum(e.epsilon for e in events) != 1.0
    assert composed_epsilon(events, 0.0) == 1.0
    epsilons = [0.3, 1e-8, 2.5, 1 / 3, 1e-16, 7.0]
    assert composed_epsilon([pure(e) for e in epsilons], 0.0) == math.fsum(epsilons)


def test_single_gaussian_event_reports_its_own_epsilon_at_its_own_delta():
    epsilon, delta, rho = budget_share(1.0, 1e-6, 1.0)
    event = gaussian(rho, delta)
    assert event.epsilon == epsilon
    assert composed_epsilon([event], delta) == epsilon
    assert composed_epsilon([event], delta) == pytest.approx(1.0, rel=1e-6)
    # more delta buys less epsilon; no delta is infinitely expensive
    assert composed_epsilon([event], 1e-4) < epsilon
    assert epsilon < composed_epsilon([event], 1e-8) < math.inf
    assert composed_epsilon([event], 0.0) == math.inf


def test_mixed_events():
    delta = 1e-6
    rho = zcdp_rho(0.5, delta)
    events = [pure(0.5), gaussian(rho, delta)]
    total = composed_epsilon(events, delta)
    # basic composition (0.5 + 0.5) and pure + zCDP total are both valid
    # bounds; the result is the best valid bound and costs more than either
    # release alone.
    assert total <= 0.5 + events[1].epsilon
    assert total == pytest.approx(0.5 + zcdp_epsilon(rho, delta), rel=1e-12)
    assert total > max(0.5, events[1].epsilon)
    # a pure release is eps^2/2-zCDP: many small pure releases compose
    # through zCDP far below their plain sum (1.0 here)
    small = [pure(0.01) for _ in range(100)] + [gaussian(1e-4, delta)]
    all_rho = 100 * 0.01**2 / 2 + 1e-4
    assert composed_epsilon(small, delta) == pytest.approx(
        zcdp_epsilon(all_rho, delta), rel=1e-9
    )
    assert composed_epsilon(small, delta) < 0.6


def test_an_infinite_epsilon_event_costs_infinity():
    assert composed_epsilon([pure(math.inf)], 0.0) == math.inf
    assert composed_epsilon([pure(0.1), pure(math.inf)], 0.0) == math.inf
    mixed = [pure(math.inf), gaussian(0.01, 1e-6)]
    assert composed_epsilon(mixed, 1e-6) == math.inf
    assert composed_epsilon(mixed, 1e-3) == math.inf


def test_composition_of_pure_events_at_positive_delta_uses_zcdp_bound():
    delta = 1e-5
    events = [pure(0.01) for _ in range(100)]
    assert composed_epsilon(events, delta) <= zcdp_epsilon(100 * 0.01**2 / 2, delta)
    # adding a release never lowers the total at the same delta
    more = [*events, gaussian(1e-6, 1e-7)]
    assert composed_epsilon(events, delta) <= composed_epsilon(more, delta)


# -- ledgers and charge -------------------------------------------------------


def test_charge_is_all_or_nothing_across_ledgers():
    a = BudgetLedger("alice", epsilon=1.0)
    b = BudgetLedger("bob", epsilon=0.5)
    c = BudgetLedger("carol", epsilon=1.0)
    charge([(a, [pure(0.2)]), (b, [pure(0.2)]), (c, [pure(0.2)])])
    with pytest.raises(BudgetExceededError) as info:
        charge([(a, [pure(0.6)]), (b, [pure(0.6)]), (c, [pure(0.6)])])
    for ledger in (a, b, c):
        assert len(ledger.events) == 1
        assert ledger.spent()[0] == 0.2
    message = str(info.value)
    assert "'bob'" in message
    assert "alice" not in message and "carol" not in message  # they could pay
    assert "0.3 remains" in message
    assert "Nothing was released or charged" in message
    # without bob, the same charge goes through everywhere
    charge([(a, [pure(0.6)]), (c, [pure(0.6)])])
    assert len(a.events) == len(c.events) == 2


def test_several_events_in_one_charge_are_checked_together():
    ledger = BudgetLedger("p", epsilon=1.0)
    with pytest.raises(BudgetExceededError):
        charge([(ledger, [pure(0.6), pure(0.6)])])
    assert ledger.events == []


def test_spend_above_the_ceiling_by_1e_12_is_refused():
    ledger = BudgetLedger("p", epsilon=1.0)
    with pytest.raises(BudgetExceededError, match="'p'"):
        charge([(ledger, [pure(1.0 + 1e-12)])])
    charge([(ledger, [pure(0.5)])])
    with pytest.raises(BudgetExceededError):
        charge([(ledger, [pure(0.5 + 1e-12)])])
    assert ledger.spent()[0] == 0.5


def test_exact_fit_is_accepted_and_then_nothing_more():
    ledger = BudgetLedger("north", epsilon=1.0)
    for epsilon in (0.3, 0.3, 0.4):
        charge([(ledger, [pure(epsilon)])])
    assert ledger.spent()[0] == 1.0
    assert ledger.remaining() == 0.0
    for tiny in (1e-9, 1e-12):
        with pytest.raises(BudgetExceededError) as info:
            charge([(ledger, [pure(tiny)])])
        assert "'north'" in str(info.value)
        assert "0 remains" in str(info.value)
    assert len(ledger.events) == 3


def test_approximate_budget_is_enforced_at_its_delta():
    # A ledger of (1, 1e-6): two half shares fit, a third release does not.
    ledger = BudgetLedger("p", epsilon=1.0, delta=1e-6)
    for _ in range(2):
        eps, delta, rho = budget_share(1.0, 1e-6, 0.5)
        charge([(ledger, [gaussian(rho, delta)])])
    assert ledger.spent() == (pytest.approx(1.0, rel=1e-6), 1e-6)
    eps, delta, rho = budget_share(1.0, 1e-6, 0.01)
    with pytest.raises(BudgetExceededError):
        charge([(ledger, [gaussian(rho, delta)])])
    # a Gaussian release against a pure (delta = 0) budget costs infinity
    with pytest.raises(BudgetExceededError):
        charge([(BudgetLedger("q", epsilon=100.0, delta=0.0), [gaussian(0.01, 1e-9)])])


def test_ledger_validates_its_budget():
    with pytest.raises(ValueError, match="'alice'.*epsilon > 0"):
        BudgetLedger("alice", epsilon=0.0)
    with pytest.raises(ValueError, match="'alice'.*delta in"):
        BudgetLedger("alice", epsilon=1.0, delta=1.0)


def _try_charge(ledger, epsilon):
    try:
        charge([(ledger, [pure(epsilon)])])
    except BudgetExceededError:
        return False
    return True


def test_concurrent_charges_never_overspend():
    # 16 threads each try to spend 0.25 of a budget of 1: exactly 4 succeed.
    ledger = BudgetLedger("p", epsilon=1.0)
    with joblib.parallel_config(backend="threading"):
        accepted = joblib.Parallel(n_jobs=4)(
            joblib.delayed(_try_charge)(ledger, 0.25) for _ in range(16)
        )
    assert sum(accepted) == 4
    assert ledger.spent()[0] == 1.0


def test_accountant_shares_ledgers():
    accountant = PrivacyAccountant(epsilon=2.0, delta=1e-6)
    ledger = accountant.ledger("north")
    assert accountant.ledger("north") is ledger
    assert (ledger.name, ledger.epsilon, ledger.delta) == ("north", 2.0, 1e-6)
    assert set(accountant.ledgers) == {"north"}


def test_deepcopy_and_clone_keep_the_same_accountant():
    accountant = PrivacyAccountant(epsilon=1.5)
    assert copy.deepcopy(accountant) is accountant
    model = FederatedEstimator(
        StandardScaler(), epsilon=1.0, bounds=(0.0, 1.0), accountant=accountant
    )
    cloned = clone(model)
    assert cloned is not model
    assert cloned.accountant is accountant
    assert copy.deepcopy(model).accountant is accountant

    # the spends of a clone land in the shared ledgers, and are capped there
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 2))
    parties = np.repeat(["north", "south"], 20)
    cloned.fit(X, parties=parties)
    spent = {name: ledger.spent()[0] for name, ledger in accountant.ledgers.items()}
    assert spent == {"north": pytest.approx(1.0), "south": pytest.approx(1.0)}
    with pytest.raises(BudgetExceededError, match="north"):
        clone(model).fit(X, parties=parties)
    assert all(len(ledger.events) == 1 for ledger in accountant.ledgers.values())


def test_unpickled_ledger_cannot_be_charged():
    ledger = BudgetLedger("north", epsilon=1.0)
    other = BudgetLedger("south", epsilon=1.0)
    copied = pickle.loads(pickle.dumps(ledger))
    with pytest.raises(RuntimeError, match="'north'.*another process"):
        charge([(other, [pure(0.1)]), (copied, [pure(0.1)])])
    assert other.events == [] and copied.events == []
    # the original is still usable
    charge([(ledger, [pure(0.1)])])
    assert len(ledger.events) == 1


def test_charging_in_a_worker_process_fails_instead_of_losing_spends():
    ledger = BudgetLedger("north", epsilon=1.0)
    with joblib.parallel_config(backend="loky"):
        with pytest.raises(RuntimeError, match="another process"):
            joblib.Parallel(n_jobs=2)(
                joblib.delayed(charge)([(ledger, [pure(0.1)])]) for _ in range(2)
            )
    assert ledger.events == []


def test_acceptance_does_not_depend_on_charging_order():
    small = [pure(0.01) for _ in range(100)]
    tiny = gaussian(1e-6, 1e-7)
    first = BudgetLedger("p", epsilon=0.9, delta=1e-5)
    second = BudgetLedger("p", epsilon=0.9, delta=1e-5)
    charge([(second, [tiny])])
    charge([(second, small)])  # accepted
    charge([(first, small)])  # refused today
    charge([(first, [tiny])])
    assert first.spent() == second.spent()


# -- property tests -----------------------------------------------------------

EPSILONS = st.floats(1e-6, 10.0, allow_nan=False)
RHOS = st.floats(1e-6, 5.0, allow_nan=False)
DELTAS = st.sampled_from([1e-9, 1e-6, 1e-3])


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(EPSILONS, min_size=1, max_size=12).flatmap(
        lambda eps: st.tuples(st.just(eps), st.permutations(eps))
    )
)
def test_pure_composition_does_not_depend_on_order(pair):
    epsilons, shuffled = pair
    assert composed_epsilon([pure(e) for e in epsilons], 0.0) == composed_epsilon(
        [pure(e) for e in shuffled], 0.0
    )


@settings(max_examples=60, deadline=None, database=None)
@given(
    rho_a=RHOS,
    rho_b=RHOS,
    delta=DELTAS,
    others=st.lists(RHOS, max_size=4),
    pure_eps=st.lists(EPSILONS, max_size=3),
)
def test_more_noise_never_costs_more_epsilon(rho_a, rho_b, delta, others, pure_eps):
    # smaller rho = larger sigma for the same sensitivity
    low, high = sorted([rho_a, rho_b])
    rest = [gaussian(r, delta) for r in others] + [pure(e) for e in pure_eps]
    at = 2 * delta * (len(others) + 1)
    assert composed_epsilon([gaussian(low, delta)], delta) <= composed_epsilon(
        [gaussian(high, delta)], delta
    )
    assert composed_epsilon([*rest, gaussian(low, delta)], at) <= composed_epsilon(
        [*rest, gaussian(high, delta)], at
    )


MIXED = st.lists(
    st.one_of(
        EPSILONS.map(pure),
        st.tuples(RHOS, DELTAS).map(lambda a: gaussian(*a)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, database=None)
@given(
    MIXED.flatmap(lambda ev: st.tuples(st.just(ev), st.permutations(ev))),
    st.sampled_from([None, 1e-5, 0.01]),
)
def test_charging_in_any_order_ends_at_the_same_total(pair, delta):
    events, shuffled = pair
    ledgers = []
    for order in (events, shuffled):
        ledger = BudgetLedger("p", delta=delta)
        for event in order:
            charge([(ledger, [event])])
        ledgers.append(ledger)
    assert ledgers[0].spent() == ledgers[1].spent()
    assert ledgers[0].spent()[0] == composed_epsilon(events, ledgers[0].spent()[1])


# -- through the federation ---------------------------------------------------

N_FEATURES = 4


def _rows(seed=0, n=30):
    return np.random.default_rng(seed).uniform(size=(n, N_FEATURES))


def _request(epsilon=1.0, delta=0.0, trust="central", fraction=1.0):
    eps, delta, rho = budget_share(epsilon, delta, fraction)
    return Request(
        statistic="moments",
        epsilon=eps,
        delta=delta,
        rho=rho,
        clipping=Clipping(np.zeros(N_FEATURES), np.ones(N_FEATURES)),
        estimator="test",
        trust=trust,
    )


def _seeded(random_state):
    with pytest.warns(SeededNoiseWarning):
        return noise_seed_sequence(random_state)


def _unseeded():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeededNoiseWarning)
        return noise_seed_sequence(None)


def _equal(a, b):
    return len(a.blocks) == len(b.blocks) and all(
        np.array_equal(x, y) for x, y in zip(a.blocks, b.blocks)
    )


class _NoNoiseAllowed:
    """A seed sequence that fails the test if any noise seed is derived."""

    def spawn(self, n):
        raise AssertionError("noise seeds were derived before the budget check")


@pytest.fixture
def contributions(monkeypatch):
    """Record each party's noisy contribution under local trust.

    Aggregation runs in the parent process, so this works with any backend.
    """
    seen = []
    original = fedsk._federation.sum_encoded

    def spy(parts):
        seen.append([np.array(p) for p in parts])
        return original(parts)

    monkeypatch.setattr(fedsk._federation, "sum_encoded", spy)
    return seen


@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_release_over_budget_is_refused_before_noise_and_charges_nobody(delta):
    north = Party("north", _rows(0), epsilon=5.0, delta=delta or None)
    south = Party("south", _rows(1), epsilon=0.5, delta=delta or None)
    fit_ledger = BudgetLedger("fit", epsilon=5.0, delta=delta or None)
    federation = Federation([north, south])
    with pytest.raises(BudgetExceededError, match="'south'"):
        federation.release(
            _request(1.0, delta), seed_sequence=_NoNoiseAllowed(), fit_ledger=fit_ledger
        )
    assert north.ledger.events == south.ledger.events == fit_ledger.events == []

    # the fit's own ceiling is enforced the same way
    rich = Federation([Party("a", _rows(0)), Party("b", _rows(1))])
    small_fit = BudgetLedger("fit", epsilon=0.5, delta=delta or None)
    with pytest.raises(BudgetExceededError, match="'fit'"):
        rich.release(
            _request(1.0, delta), seed_sequence=_NoNoiseAllowed(), fit_ledger=small_fit
        )
    assert all(p.ledger.events == [] for p in rich.parties)
    assert small_fit.events == []


def test_release_charges_every_party_and_the_fit():
    parties = [Party("north", _rows(0), epsilon=1.0), Party("south", _rows(1))]
    fit_ledger = BudgetLedger("fit", epsilon=1.0)
    federation = Federation(parties)
    federation.release(
        _request(1.0, fraction=0.6), seed_sequence=_unseeded(), fit_ledger=fit_ledger
    )
    for ledger in [p.ledger for p in parties] + [fit_ledger]:
        (event,) = ledger.events
        assert event.epsilon == pytest.approx(0.6)
        assert event.mechanism == "discrete_linf"  # moments: entries bounded
    assert fit_ledger.events[0].party == "all parties"
    # 0.6 more would exceed north's budget and the fit's: refused, unchanged
    with pytest.raises(BudgetExceededError, match="'north'.*'fit'"):
        federation.release(
            _request(1.0, fraction=0.6),
            seed_sequence=_unseeded(),
            fit_ledger=fit_ledger,
        )
    assert [len(p.ledger.events) for p in parties] == [1, 1]
    assert len(fit_ledger.events) == 1


@pytest.mark.parametrize("trust", ["central", "local"])
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_seeded_noise_is_reproducible_and_warned_about(trust, delta):
    federation = Federation([Party("a", _rows(0)), Party("b", _rows(1))])
    request = _request(1.0, delta, trust)
    first = federation.release(request, seed_sequence=_seeded(7))
    second = federation.release(request, seed_sequence=_seeded(7))
    assert _equal(first, second)
    # noise is really there, and other seeds give other noise
    exact = federation.release(_request(math.inf), seed_sequence=_unseeded())
    assert not _equal(first, exact)
    assert not _equal(first, federation.release(request, seed_sequence=_seeded(8)))
    # successive releases of one fit draw fresh noise
    root = _seeded(7)
    assert not _equal(
        federation.release(request, seed_sequence=root),
        federation.release(request, seed_sequence=root),
    )


@pytest.mark.parametrize("trust", ["central", "local"])
def test_unseeded_noise_differs_between_runs(trust):
    federation = Federation([Party("a", _rows(0)), Party("b", _rows(1))])
    request = _request(1.0, 0.0, trust)
    first = federation.release(request, seed_sequence=_unseeded())
    second = federation.release(request, seed_sequence=_unseeded())
    assert not _equal(first, second)


def test_local_parties_with_identical_data_draw_different_noise(contributions):
    X = _rows(0)
    federation = Federation([Party("a", X), Party("b", X)])
    federation.release(_request(1.0, 0.0, "local"), seed_sequence=_seeded(3))
    ((a, b),) = contributions
    assert a.shape == b.shape == (1 + 2 * N_FEATURES,)
    # same rows, so any difference is noise: it must differ in (nearly) every
    # coordinate, not just somewhere
    assert np.count_nonzero(a != b) >= a.size - 1


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_parties_draw_independent_noise_under_joblib(backend, contributions):
    X = _rows(0)
    parties = [Party(f"p{i}", X) for i in range(4)]
    request = _request(1.0, 1e-6, "local")
    with joblib.parallel_config(backend=backend):
        parallel = Federation(parties, n_jobs=2).release(
            request, seed_sequence=_seeded(11)
        )
    serial = Federation(parties, n_jobs=1).release(request, seed_sequence=_seeded(11))
    parallel_parts, serial_parts = contributions
    for a, b in itertools.combinations(parallel_parts, 2):
        assert np.count_nonzero(a != b) >= a.size - 1
    # n_jobs does not change the noise: identical parts and totals
    for a, b in zip(parallel_parts, serial_parts):
        np.testing.assert_array_equal(a, b)
    assert _equal(parallel, serial)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_n_jobs_does_not_change_central_noise(backend):
    parties = [Party(f"p{i}", _rows(i)) for i in range(3)]
    request = _request(1.0, 0.0, "central")
    with joblib.parallel_config(backend=backend):
        parallel = Federation(parties, n_jobs=2).release(
            request, seed_sequence=_seeded(5)
        )
    serial = Federation(parties, n_jobs=1).release(request, seed_sequence=_seeded(5))
    assert _equal(parallel, serial)
