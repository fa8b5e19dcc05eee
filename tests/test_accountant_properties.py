"""Property tests of the budget: order, monotonicity, refusal, exhaustion.

``tests/test_accountant.py`` checks these on single examples and on bare
ledgers; here hypothesis drives them through ``Federation.release``, the
only way anything leaves a party, with spies on the party-side computation
and on the noise sampler:

- the total never depends on the order of the releases;
- less noise never costs less epsilon: the charge is monotone, and matches
  the noise that is really drawn;
- a request that would exceed a party's budget by any margin (1e-12 of the
  budget) is refused before the party computes anything or any noise is
  drawn, and charges nobody;
- once a budget is spent, nothing more is released, not even a request
  far below float rounding (ledgers compare with no slack; budget splits
  leave a relative margin of 1e-12 instead);
- a party refuses on its own ledger whichever federation object, and
  however often, the coordinator asks.

A request below float rounding used to be released after exhaustion (the
ledger forgave 1e-14 of the budget); it is now refused. An epsilon so small
that its noise scale overflows used to be charged before it failed; it is
now refused before any charge.
"""

import dataclasses
import math
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedsk._statistics
from fedsk import Federation, Party, PrivacyAccountant
from fedsk._federation import Request
from fedsk.privacy import (
    BudgetLedger,
    Clipping,
    GridEncoding,
    ReleaseEvent,
    budget_share,
    composed_epsilon,
    zcdp_epsilon,
    zcdp_rho,
)
from fedsk.privacy._composition import DISPLAY_TOLERANCE

D = 2
CLIPPING = Clipping(np.zeros(D), np.ones(D))
REAL_NOISE = GridEncoding.noise
SETTINGS = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _rows(seed):
    return np.random.default_rng(seed).uniform(size=(12, D))


def _request(epsilon, delta=0.0, rho=None, statistic="moments", trust="central"):
    return Request(
        statistic=statistic,
        epsilon=epsilon,
        delta=delta,
        rho=rho,
        clipping=CLIPPING,
        estimator="property",
        trust=trust,
    )


def _pure(epsilon, **kwargs):
    return _request(epsilon, **kwargs)


def _gaussian(epsilon, delta, fraction=1.0, **kwargs):
    eps, delta_i, rho = budget_share(epsilon, delta, fraction)
    return _request(eps, delta_i, rho, **kwargs)


class _Seeds:
    """A seed sequence that counts how often noise seeds are derived."""

    def __init__(self, seed=0):
        self.root = np.random.SeedSequence(seed)
        self.spawned = 0

    def spawn(self, n):
        self.spawned += 1
        return self.root.spawn(n)


@contextmanager
def _spies():
    """Count party-side computations and noise draws, by statistic name."""
    calls = {"computed": 0, "noise": 0, "encodings": []}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("moments", "class_counts"):
            original = fedsk._statistics.STATISTICS[name]

            def compute(X, y, _original=original, **params):
                calls["computed"] += 1
                return _original.compute(X, y, **params)

            mp.setitem(
                fedsk._statistics.STATISTICS,
                name,
                dataclasses.replace(original, compute=compute),
            )

        def noise(encoding, rng, n_parties=1):
            calls["noise"] += 1
            calls["encodings"].append(encoding)
            return REAL_NOISE(encoding, rng, n_parties)

        mp.setattr(GridEncoding, "noise", noise)
        yield calls


def _refused(federation, request, fit_ledger=None):
    """Assert the request is refused before anything happens; return the error."""
    before = {p.name: list(p.ledger.events) for p in federation.parties}
    fit_before = None if fit_ledger is None else list(fit_ledger.events)
    seeds = _Seeds()
    with _spies() as calls:
        # over budget or, for tiny epsilons, too small to encode: refused alike
        with pytest.raises(ValueError) as info:
            federation.release(request, seed_sequence=seeds, fit_ledger=fit_ledger)
    assert calls["computed"] == 0, "a party computed its statistic"
    assert calls["noise"] == 0 and seeds.spawned == 0, "noise was drawn"
    assert {p.name: p.ledger.events for p in federation.parties} == before
    if fit_ledger is not None:
        assert fit_ledger.events == fit_before
    return info.value


# -- order --------------------------------------------------------------------

SPEND = st.one_of(
    st.tuples(st.just("pure"), st.floats(1e-4, 3.0)),
    st.tuples(st.just("gaussian"), st.floats(0.05, 3.0), st.sampled_from([1e-8, 1e-6])),
)


def _spend_request(spend, statistic):
    if spend[0] == "pure":
        return _pure(spend[1], statistic=statistic)
    return _gaussian(spend[1], spend[2], statistic=statistic)


@settings(max_examples=25, **SETTINGS)
@given(
    st.lists(
        st.tuples(SPEND, st.sampled_from(["moments", "class_counts"])),
        min_size=1,
        max_size=6,
    ).flatmap(lambda spends: st.tuples(st.just(spends), st.permutations(spends))),
    st.sampled_from([None, 1e-5]),
)
def test_release_order_never_changes_the_total(pair, delta_ceiling):
    # The same releases in two orders, through two federations of the same
    # party: the ledgers end at the same total, bit for bit.
    totals = []
    for order in pair:
        party = Party("north", _rows(0), delta=delta_ceiling)
        federation = Federation([party])
        for spend, statistic in order:
            federation.release(
                _spend_request(spend, statistic),
                seed_sequence=np.random.SeedSequence(0),
            )
        totals.append(party.ledger.spent())
    assert totals[0] == totals[1]


@settings(max_examples=25, **SETTINGS)
@given(
    st.lists(st.floats(1e-3, 1.0), min_size=2, max_size=8),
    st.randoms(use_true_random=False),
)
def test_interleaving_two_federations_never_changes_a_partys_total(spends, random):
    # Two federations share a party through one accountant; which of them
    # asks for which release does not change what the party has spent.
    accountant = PrivacyAccountant()
    X = np.vstack([_rows(0), _rows(1)])
    labels = np.repeat(["north", "south"], 12)
    first = Federation.from_labels(X, None, labels, accountant=accountant)
    second = Federation.from_labels(X[:12], None, labels[:12], accountant=accountant)
    for epsilon in spends:
        federation = random.choice([first, second])
        federation.release(_pure(epsilon), seed_sequence=np.random.SeedSequence(0))
    assert accountant.ledger("north").spent()[0] == math.fsum(spends)


# -- monotone: less noise never costs less ------------------------------------

SHAPES = st.lists(
    st.tuples(st.integers(1, 4), st.floats(0.01, 100.0), st.floats(0.01, 100.0)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=100, **SETTINGS)
@given(
    blocks=SHAPES,
    epsilons=st.tuples(st.floats(1e-3, 20.0), st.floats(1e-3, 20.0)),
    stretch=st.floats(1.0, 10.0),
    delta=st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]),
)
def test_less_noise_never_costs_less_epsilon(blocks, epsilons, stretch, delta):
    # Calibration: at a larger epsilon the noise is never larger, in grid
    # steps and in the statistic's units; at a larger sensitivity (every
    # block stretched) and the same epsilon it is never smaller.
    shapes = [(n,) for n, _, _ in blocks]
    sens = [(l1, l1 * l2 / 100.0) for _, l1, l2 in blocks]  # l2 <= l1
    low, high = sorted(epsilons)

    def calibrate(epsilon, sensitivities):
        _, _, rho = budget_share(epsilon, delta, 1.0)
        return GridEncoding.calibrate(shapes, sensitivities, epsilon=epsilon, rho=rho)

    cheap, dear = calibrate(low, sens), calibrate(high, sens)
    assert cheap.noise_scale >= dear.noise_scale
    assert all(a >= b for a, b in zip(cheap.noise_std(), dear.noise_std()))
    wide = calibrate(low, [(stretch * l1, stretch * l2) for l1, l2 in sens])
    assert all(
        a >= b * (1 - 1e-12) for a, b in zip(wide.noise_std(), cheap.noise_std())
    )
    # the charge goes the other way: more epsilon, less noise
    if delta == 0:
        assert budget_share(low, 0.0, 1.0)[0] <= budget_share(high, 0.0, 1.0)[0]
    else:
        rho_low, rho_high = zcdp_rho(low, delta), zcdp_rho(high, delta)
        assert rho_low <= rho_high
        assert zcdp_epsilon(rho_low, delta) <= zcdp_epsilon(rho_high, delta)


@settings(max_examples=40, **SETTINGS)
@given(
    epsilon=st.floats(0.01, 10.0),
    fraction=st.floats(0.01, 1.0),
    delta=st.sampled_from([0.0, 1e-8, 1e-5]),
    trust=st.sampled_from(["central", "local"]),
    statistic=st.sampled_from(["moments", "class_counts"]),
)
def test_the_charge_pays_for_the_noise_really_drawn(
    epsilon, fraction, delta, trust, statistic
):
    # The event in the ledger states the noise scale that was sampled, and
    # its epsilon (rho) is at least what that noise buys: a release can not
    # draw less noise than it is charged for.
    party = Party("north", _rows(0))
    eps, delta_i, rho = budget_share(epsilon, delta, fraction)
    request = _request(eps, delta_i, rho, statistic=statistic, trust=trust)
    with _spies() as calls:
        Federation([party]).release(request, seed_sequence=np.random.SeedSequence(0))
    (encoding,) = calls["encodings"]
    (event,) = party.ledger.events
    assert event.noise_scale == encoding.noise_scale
    assert event.sensitivity == encoding.sensitivity
    if delta == 0:
        bought = encoding.sensitivity / encoding.noise_scale
        assert event.epsilon >= bought * (1 - 1e-12)
        assert event.mechanism == encoding.mechanism
        assert encoding.mechanism in ("discrete_laplace", "discrete_linf")
    else:
        bought = encoding.sensitivity**2 / (2 * encoding.noise_scale**2)
        assert event.rho >= bought * (1 - 1e-12)
        assert event.epsilon >= zcdp_epsilon(bought, event.delta) * (1 - 1e-12)
        assert event.mechanism == encoding.mechanism == "discrete_gaussian"


@settings(max_examples=60, **SETTINGS)
@given(
    prior=st.lists(st.floats(1e-3, 2.0), max_size=4),
    pair=st.tuples(st.floats(1e-3, 5.0), st.floats(1e-3, 5.0)),
    delta=st.sampled_from([0.0, 1e-6]),
)
def test_a_ledger_never_charges_less_for_less_noise(prior, pair, delta):
    # Two ledgers with the same history; one is charged a release with less
    # noise (larger epsilon). Its total is never the smaller one.
    low, high = sorted(pair)
    totals = []
    for epsilon in (low, high):
        party = Party("north", _rows(0), delta=delta or None)
        federation = Federation([party])
        for spent in prior:
            federation.release(_pure(spent), seed_sequence=np.random.SeedSequence(0))
        request = _gaussian(epsilon, delta) if delta else _pure(epsilon)
        federation.release(request, seed_sequence=np.random.SeedSequence(0))
        totals.append(party.ledger.spent()[0])
    assert totals[0] <= totals[1]


# -- refusal before anything happens ------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(
    budget=st.floats(0.05, 50.0),
    fractions=st.lists(st.floats(0.01, 0.2), max_size=4),
    margin=st.one_of(st.just(1e-12), st.floats(1e-12, 1.0)),
    with_fit=st.booleans(),
)
def test_a_request_over_the_budget_by_any_margin_is_refused_first(
    budget, fractions, margin, with_fit
):
    # A party's budget is partly spent by real releases; a request for what
    # remains plus `margin` of the budget is refused, naming the party,
    # before the party computes anything or a noise seed is derived.
    party = Party("north", _rows(0), epsilon=budget)
    rich = Party("south", _rows(1))
    federation = Federation([party, rich])
    for fraction in fractions:
        if fraction > 0:
            federation.release(
                _pure(budget * fraction), seed_sequence=np.random.SeedSequence(0)
            )
    remaining = budget - party.ledger.spent()[0]
    fit_ledger = BudgetLedger("fit") if with_fit else None
    error = _refused(federation, _pure(remaining + margin * budget), fit_ledger)
    assert "'north'" in str(error) and "'south'" not in str(error)
    # the boundary is at the budget, not below it: just under it is released
    federation.release(
        _pure(remaining * (1 - 1e-9)), seed_sequence=np.random.SeedSequence(0)
    )
    assert party.ledger.spent()[0] <= budget


@settings(max_examples=30, **SETTINGS)
@given(
    budget=st.floats(0.1, 10.0),
    delta=st.sampled_from([1e-8, 1e-6, 1e-4]),
    spent_fraction=st.one_of(st.just(0.0), st.floats(0.01, 0.9)),
    margin=st.floats(1e-10, 1.0),
)
def test_an_approximate_request_over_the_budget_is_refused_first(
    budget, delta, spent_fraction, margin
):
    # zCDP composition: the request's rho is what brings the composed epsilon
    # to (1 + margin) times the budget. (Margins start at 1e-10: zcdp_rho's
    # bisection pins rho to 1e-12 of itself.)
    party = Party("north", _rows(0), epsilon=budget, delta=delta)
    federation = Federation([party])
    if spent_fraction > 0:
        federation.release(
            _gaussian(budget, delta, spent_fraction),
            seed_sequence=np.random.SeedSequence(0),
        )
    prior = math.fsum(e.rho for e in party.ledger.events)
    rho = zcdp_rho(budget * (1 + margin), delta) - prior
    request = _request(zcdp_epsilon(rho, delta), delta, rho)
    asked = ReleaseEvent(
        party="north",
        estimator="property",
        statistic="moments",
        mechanism="discrete_gaussian",
        epsilon=request.epsilon,
        delta=delta,
        rho=rho,
        sensitivity=1.0,
        noise_scale=1.0,
        trust="central",
    )
    assert composed_epsilon([*party.ledger.events, asked], delta) > budget
    _refused(federation, request)


# -- exhaustion ---------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(
    budget=st.floats(0.05, 1000.0),
    weights=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5),
    small=st.floats(1e-12, 1.0),
    again=st.integers(1, 3),
)
def test_after_exhaustion_nothing_is_released(budget, weights, small, again):
    # Spend the budget exactly (pure shares adding up to it), then ask again
    # for `small` of the budget, several times: every request is refused
    # before any computation or noise.
    party = Party("north", _rows(0), epsilon=budget)
    federation = Federation([party])
    total = math.fsum(weights)
    shares = [budget * w / total for w in weights[:-1]]
    shares.append(budget - math.fsum(shares))
    while math.fsum(shares) > budget:  # rounding must not overspend
        shares[-1] = math.nextafter(shares[-1], 0)
    for share in shares:
        if share > 0:
            federation.release(_pure(share), seed_sequence=np.random.SeedSequence(0))
    assert party.ledger.remaining() <= DISPLAY_TOLERANCE * max(1.0, budget)
    for _ in range(again):
        _refused(federation, _pure(small * budget))
        _refused(federation, _pure(small * budget, statistic="class_counts"))


def test_float_slack_after_exhaustion_is_bounded():
    # After exact exhaustion, however many tiny requests arrive, none is
    # accepted (the ledger has no float slack).
    budget = 1000.0
    party = Party("north", _rows(0), epsilon=budget)
    federation = Federation([party])
    federation.release(_pure(budget), seed_sequence=np.random.SeedSequence(0))
    accepted = 0
    for _ in range(20):
        try:
            federation.release(_pure(3e-12), seed_sequence=np.random.SeedSequence(0))
            accepted += 1
        except ValueError:  # over budget, or too small to encode: refused
            pass
    assert party.ledger.spent()[0] <= budget
    assert accepted == 0


def test_after_exhaustion_even_the_smallest_request_is_refused():
    budget = 1000.0
    party = Party("north", _rows(0), epsilon=budget)
    federation = Federation([party])
    federation.release(_pure(budget), seed_sequence=np.random.SeedSequence(0))
    _refused(federation, _pure(3e-12))


# -- each party refuses on its own ledger -------------------------------------

BUDGETS = st.lists(st.floats(0.2, 3.0), min_size=2, max_size=4)


@settings(max_examples=30, **SETTINGS)
@given(
    budgets=BUDGETS,
    asks=st.lists(
        st.tuples(st.integers(0, 15), st.floats(0.05, 1.5)), min_size=1, max_size=12
    ),
)
def test_each_party_refuses_on_its_own_ledger(budgets, asks):
    # Parties with their own budgets; several federation objects over
    # subsets of the same parties (new coordinators, or the same one asking
    # again). A model of each party's spending predicts every answer: a
    # request goes through only if every party in it can pay, and no party
    # ever spends beyond its budget, whoever asks and however often.
    parties = [Party(f"p{i}", _rows(i), epsilon=b) for i, b in enumerate(budgets)]
    n = len(parties)
    subsets = [
        [p for j, p in enumerate(parties) if mask >> j & 1] for mask in range(1, 2**n)
    ]
    model = {p.name: [] for p in parties}
    for which, epsilon in asks:
        members = subsets[which % len(subsets)]
        federation = Federation(members)  # a fresh coordinator each time
        pays = all(
            math.fsum([*model[p.name], epsilon]) <= p.ledger.epsilon for p in members
        )
        if pays:
            federation.release(_pure(epsilon), seed_sequence=np.random.SeedSequence(0))
            for p in members:
                model[p.name].append(epsilon)
        else:
            error = _refused(federation, _pure(epsilon))
            named = {p.name for p in members if f"'{p.name}'" in str(error)}
            short = {
                p.name
                for p in members
                if math.fsum([*model[p.name], epsilon]) > p.ledger.epsilon
            }
            assert named == short, str(error)
    for p in parties:
        assert p.ledger.spent()[0] == math.fsum(model[p.name])
        assert p.ledger.spent()[0] <= p.ledger.epsilon


def test_shared_accountant_refuses_across_federations_and_repeats():
    # Two federation objects over the same accountant: once north's budget is
    # spent through the first, the second is refused for north, every time;
    # south alone still releases.
    accountant = PrivacyAccountant(epsilon=1.0)
    X = np.vstack([_rows(0), _rows(1)])
    labels = np.repeat(["north", "south"], 12)
    first = Federation.from_labels(X[:12], None, labels[:12], accountant=accountant)
    second = Federation.from_labels(X, None, labels, accountant=accountant)
    first.release(_pure(1.0), seed_sequence=np.random.SeedSequence(0))
    for federation in (second, second, first, second):
        error = _refused(federation, _pure(0.01))
        assert "'north'" in str(error)
    only_south = Federation.from_labels(
        X[12:], None, labels[12:], accountant=accountant
    )
    only_south.release(_pure(1.0), seed_sequence=np.random.SeedSequence(0))
    assert accountant.ledger("south").spent()[0] == 1.0
    assert len(accountant.ledger("north").events) == 1


def test_an_epsilon_too_small_for_floats_is_refused_before_any_charge():
    # epsilon = 5e-324 (or any below about 1e-305 here): the noise scale
    # 5005 / epsilon is infinite in floats. Nothing can be released; the
    # ledger must not be charged for it.
    party = Party("north", _rows(0), epsilon=1.0)
    federation = Federation([party])
    with pytest.raises(ValueError):
        federation.release(_pure(5e-324), seed_sequence=_Seeds())
    assert party.ledger.events == []
