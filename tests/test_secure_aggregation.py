"""No trusted server: secure aggregation, distributed noise, peer-to-peer.

What is tested, and how (sample sizes and tolerances are stated at each test):

1. Protocols are exact: ``masked_sum`` under 100 random dropout schedules
   (10 parties, t = 6; dropouts before sending and between sending and
   unmasking) returns the exact sum or aborts with no output below t;
   ``shared_sum`` and ``paillier_sum`` are exact.
2. What the coordinator sees: a masked vector (from the transcript) is
   indistinguishable from uniform on Z / 2^64 and uncorrelated with the
   plaintext; power controls show the same tests reject the plaintext and
   weak masks. No message equals a party's encoded input; peer-to-peer has
   no coordinator at all; masks are fresh every round; a party refuses an
   unmasking request that lists a party both alive and dropped, and a
   second request.
3. Shamir: any t shares reconstruct, t - 1 do not.
4. Distributed noise: n Polya shares add up to discrete Laplace (chi-square
   against the exact pmf, with a power control at 0.7x and 1.3x the scale),
   top-ups restore the full level, distributed discrete Gaussian shares add
   up to the central variance and their calibration meets rho.
5. End to end: secure and peer-to-peer accuracy equal central (10 seeds),
   beat local, cost the same epsilon; dropouts with survivors >=
   ``min_parties`` (the masking threshold) go on (the failing party is not
   charged, the report says so), below it nothing is released or charged.
6. Overflow and validation: the no-wrap bound, NaN refused, bad
   ``min_parties`` and ``secure_protocol`` refused.

The masking protocol draws its keys and masks from the operating system's
CSPRNG (never seeded), so the tests on masked vectors are not seeded: each
states its false-alarm probability, chosen below 1e-6. Every other
statistical test is seeded and so deterministic.

Protocol internals have no public path; they are imported from
``fedsk._aggregation`` and ``fedsk.privacy._distributed``.

Three tests guard defects found while writing them (now fixed):
``trust="secure"`` at ``epsilon=inf`` sent plaintext statistics to the
aggregator (now refused); the dropout note could land on an earlier,
identical release in the ledger; ``GridEncoding.max_rows`` lost its no-wrap
guarantee to floating-point rounding for one or two parties.
"""

import dataclasses
import itertools
import math
import secrets

import numpy as np
import pytest
from exact_pmf import chi_square_pvalue, laplace_pmf
from numpy.testing import assert_array_equal
from scipy import stats
from sklearn.linear_model import Ridge

import fedsk._estimator
import fedsk._federation
import fedsk._statistics
from fedsk import FederatedEstimator, Federation, Party, PartyError
from fedsk._aggregation import (
    COORDINATOR,
    SecureAggregationAbort,
    Transcript,
    masked_sum,
    paillier_sum,
    shared_sum,
)
from fedsk._aggregation._masking import MaskingParty, _pairwise_mask, prg
from fedsk._aggregation._shamir import PRIME, reconstruct_secret, share_secret
from fedsk._federation import Request
from fedsk.privacy import (
    BudgetLedger,
    Clipping,
    GridEncoding,
    budget_share,
    discrete_gaussian,
)
from fedsk.privacy._distributed import (
    distributed_gaussian_sigma,
    distributed_rho,
    polya_laplace_share,
)

INF = float("inf")
DISTRIBUTED = ["secure", "peer_to_peer"]
seeded = pytest.mark.filterwarnings("ignore::fedsk.privacy.SeededNoiseWarning")


# -- helpers -------------------------------------------------------------------


def _vectors(n_parties, size, seed, magnitude=2**58):
    """Random int64 vectors whose sum over <= 16 parties cannot overflow."""
    rng = np.random.default_rng(seed)
    return {
        f"p{i}": rng.integers(-magnitude, magnitude, size, dtype=np.int64)
        for i in range(n_parties)
    }


def _sum(vectors):
    return np.sum([v for v in vectors.values() if v is not None], axis=0)


def _arrays(payload):
    """Every integer array inside a message payload (recursively)."""
    if isinstance(payload, np.ndarray):
        yield payload
    elif isinstance(payload, dict):
        for value in payload.values():
            yield from _arrays(value)
    elif isinstance(payload, (list, tuple)):
        if payload and all(isinstance(v, (int, np.integer)) for v in payload):
            yield np.array([int(v) % 2**64 for v in payload], dtype=np.uint64)
        else:
            for value in payload:
                yield from _arrays(value)


def _close_fraction(observed, plain, within=2**40):
    """Share of coordinates where ``observed`` is within ``within`` of ``plain``.

    Differences are taken modulo 2^64; a uniform mask lands that close with
    probability 2^-23 per coordinate, a forgotten or low-bit mask always.
    """
    if observed.shape != plain.shape:
        return 0.0
    diff = observed.astype(np.uint64) - plain.astype(np.int64).view(np.uint64)
    return float(np.mean((diff < within) | (diff > np.uint64(2**64 - within))))


def top_byte_pvalue(ring_values):
    """Chi-square p-value of the top 8 bits of uint64 values against uniform."""
    counts = np.bincount((ring_values >> np.uint64(56)).astype(np.int64), minlength=256)
    return stats.chisquare(counts).pvalue


def correlation(ring_values, plain):
    """Pearson correlation of ring elements (read as int64) with the plaintext."""
    signed = ring_values.view(np.int64).astype(float)
    return float(np.corrcoef(signed, plain.astype(float))[0, 1])


def _masking_round(names, threshold=2):
    """A set-up masking round: keys advertised, shares exchanged."""
    parties = {name: MaskingParty(name, i + 1) for i, name in enumerate(names)}
    roster = {n: (p.index, *p.public_keys()) for n, p in parties.items()}
    for name, party in parties.items():
        for peer, ciphertext in party.encrypted_shares(roster, threshold).items():
            parties[peer].receive_shares(name, ciphertext, roster)
    return parties, roster


# -- federation fixtures --------------------------------------------------------

N_PARTIES = 10
D = 3
CLIPPING = Clipping(-np.ones(D), np.ones(D), None, -3.0, 3.0)


def _federation(n_parties=N_PARTIES, seed=0, **kwargs):
    """Parties p0..p{n-1} with 100 + i rows each (the row count names a party)."""
    rng = np.random.default_rng(seed)
    parties = []
    for i in range(n_parties):
        X = rng.uniform(-1, 1, (100 + i, D))
        parties.append(Party(f"p{i}", X, X @ [1.0, -1.0, 0.5]))
    return Federation(parties, n_jobs=1, **kwargs)


def _request(trust, epsilon=1.0, delta=0.0, statistic="linear_moments"):
    epsilon_i, delta_i, rho = budget_share(epsilon, delta, 1.0)
    if math.isinf(epsilon):
        epsilon_i, delta_i, rho = INF, 0.0, None
    return Request(
        statistic=statistic,
        epsilon=epsilon_i,
        delta=delta_i,
        rho=rho,
        clipping=CLIPPING,
        estimator="test",
        trust=trust,
    )


@pytest.fixture
def fail_parties(monkeypatch):
    """Make the parties with the given row counts raise in linear_moments."""

    def install(*row_counts):
        original = fedsk._statistics.STATISTICS["linear_moments"]

        def compute(X, y, **params):
            if X.shape[0] in row_counts:
                raise RuntimeError("party offline")
            return original.compute(X, y, **params)

        monkeypatch.setitem(
            fedsk._statistics.STATISTICS,
            "linear_moments",
            dataclasses.replace(original, compute=compute),
        )

    return install


@pytest.fixture
def fit_ledgers(monkeypatch):
    """Collects every fit ledger FederatedEstimator creates from then on."""
    created = []

    class RecordedLedger(BudgetLedger):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(fedsk._estimator, "BudgetLedger", RecordedLedger)
    return created


@pytest.fixture
def protocol_inputs(monkeypatch):
    """Records what each party fed into the protocol and its encoded statistic."""
    seen = {"encoded": [], "inputs": []}
    encode = GridEncoding.encode

    def recording_encode(self, blocks):
        out = encode(self, blocks)
        seen["encoded"].append(out.copy())
        return out

    monkeypatch.setattr(GridEncoding, "encode", recording_encode)
    for name in ("masked_sum", "shared_sum", "paillier_sum"):
        protocol = getattr(fedsk._federation, name)

        def wrapped(vectors, *args, _protocol=protocol, **kwargs):
            seen["inputs"].extend(v.copy() for v in vectors.values() if v is not None)
            return _protocol(vectors, *args, **kwargs)

        monkeypatch.setattr(fedsk._federation, name, wrapped)
    return seen


# -- 1. the protocols are exact ----------------------------------------------------


def test_masked_sum_is_exact_or_aborts_under_100_dropout_schedules():
    # 10 parties, t = 6, vectors of 20 int64 in (-2^58, 2^58). Each schedule
    # drops 0-6 parties before they send and 0-3 of the senders between
    # sending and unmasking. Below t senders, or t revealers, the
    # coordinator must raise and output nothing; otherwise the sum of the
    # senders' vectors is exact.
    rng = np.random.default_rng(0)
    names = [f"p{i}" for i in range(10)]
    outcomes = {"exact": 0, "abort before unmasking": 0, "abort at unmasking": 0}
    for schedule in range(100):
        vectors = _vectors(10, 20, seed=schedule)
        before = rng.choice(names, rng.integers(0, 7), replace=False)
        senders = [n for n in names if n not in before]
        after = rng.choice(senders, min(rng.integers(0, 4), len(senders)), False)
        for name in before:
            vectors[name] = None
        transcript = Transcript()
        if len(senders) < 6 or len(senders) - len(after) < 6:
            with pytest.raises(SecureAggregationAbort, match="no sum was output"):
                masked_sum(vectors, 6, transcript, leave_before_reveal=after)
            if len(senders) < 6:  # nobody was asked to reveal anything
                assert "reveal" not in transcript.kinds()
                outcomes["abort before unmasking"] += 1
            else:
                outcomes["abort at unmasking"] += 1
            continue
        total = masked_sum(vectors, 6, transcript, leave_before_reveal=after)
        assert total.dtype == np.int64
        assert_array_equal(total, _sum(vectors))
        outcomes["exact"] += 1
    # the schedules exercised every branch (measured: 43 / 31 / 26)
    assert min(outcomes.values()) >= 10, outcomes


def test_masked_sum_with_all_parties_and_threshold_n():
    vectors = _vectors(5, 7, seed=1)
    assert_array_equal(masked_sum(vectors, 5), _sum(vectors))
    vectors["p2"] = None
    with pytest.raises(SecureAggregationAbort):
        masked_sum(vectors, 5)


def test_shared_sum_is_exact_with_and_without_dropouts():
    for seed in range(10):
        vectors = _vectors(10, 20, seed=seed)
        assert_array_equal(shared_sum(vectors), _sum(vectors))
        vectors[f"p{seed}"] = None
        assert_array_equal(shared_sum(vectors), _sum(vectors))


def test_sums_wrap_only_beyond_int64():
    # Near the int64 limits, modulo 2^64 arithmetic still gives the exact
    # int64 sum as long as the true sum is in range.
    big = 2**62
    vectors = {"a": np.array([big, -big]), "b": np.array([big - 1, -big])}
    expected = np.array([2**63 - 1, -(2**63)], dtype=np.int64)
    assert_array_equal(masked_sum(vectors, 2), expected)
    assert_array_equal(shared_sum(vectors), expected)


def test_paillier_sum_is_exact_on_a_short_vector():
    pytest.importorskip("phe")
    vectors = _vectors(3, 4, seed=2, magnitude=2**40)
    vectors["p1"] = None  # a dropout is left out
    transcript = Transcript()
    total = paillier_sum(vectors, transcript, key_bits=1024)
    assert_array_equal(total, _sum(vectors))
    assert transcript.kinds() == [
        "public_key",
        "ciphertexts",
        "encrypted_total",
        "total",
    ]


# -- 2. what the coordinator sees -------------------------------------------------

N_ENTRIES = 100_000
# False alarms: chi-square p < 1e-7 for a uniform vector has probability 1e-7;
# |r| > 6 / sqrt(n) (r is ~ N(0, 1/n) under independence) has ~2e-9.
P_REJECT = 1e-7
R_BOUND = 6 / math.sqrt(N_ENTRIES)


@pytest.mark.parametrize("plaintext", ["encoded statistic", "wide"])
def test_a_masked_vector_looks_uniform_and_uncorrelated(plaintext):
    # The coordinator's view of one party's input, from the transcript of a
    # 3-party round over 10^5 entries. "encoded statistic": small integers as
    # a real encoding gives (|x| < 2^30); "wide": x uniform in (-2^62, 2^62),
    # so that a correlation with the plaintext could show.
    rng = np.random.default_rng(3)
    magnitude = 2**30 if plaintext == "encoded statistic" else 2**62
    vectors = {
        n: rng.integers(-magnitude, magnitude, N_ENTRIES, dtype=np.int64)
        for n in ("a", "b", "c")
    }
    transcript = Transcript()
    assert_array_equal(masked_sum(vectors, 2, transcript), _sum(vectors))
    (masked,) = [
        m.payload
        for m in transcript.seen_by(COORDINATOR)
        if m.kind == "masked_input" and m.sender == "a"
    ]
    assert masked.dtype == np.uint64 and masked.shape == (N_ENTRIES,)
    assert top_byte_pvalue(masked) > P_REJECT
    assert abs(correlation(masked, vectors["a"])) < R_BOUND
    assert _close_fraction(masked, vectors["a"]) < 1e-3


def test_uniformity_and_correlation_tests_have_power():
    # Power controls at the same size and thresholds, built from the real
    # protocol pieces of a 2-party round (a before b):
    # masked_a = x + self_mask_a + pairwise_ab.
    rng = np.random.default_rng(4)
    x = rng.integers(-(2**62), 2**62, N_ENTRIES, dtype=np.int64)
    parties, roster = _masking_round(["a", "b"])
    a, b = parties["a"], parties["b"]
    masked = a.masked_input(x, roster)
    pairwise = _pairwise_mask(b._mask_key, roster["a"][1], N_ENTRIES)
    self_mask = prg(a._self_seed, N_ENTRIES)

    # Pairwise mask removed (what b could do): the self mask still hides x.
    only_self = masked - pairwise
    assert top_byte_pvalue(only_self) > P_REJECT
    assert abs(correlation(only_self, x)) < R_BOUND

    # Both removed: the plaintext. Rejected by both tests.
    plain = only_self - self_mask
    assert_array_equal(plain.view(np.int64), x)
    assert top_byte_pvalue(plain) < 1e-100
    assert correlation(plain, x) > 0.99

    # A mask that does not cover the ring: an encoded statistic (0 <= x <
    # 2^40) plus a mask of only 56 random bits keeps its top byte at 0 ...
    small = rng.integers(0, 2**40, N_ENTRIES).astype(np.uint64)
    weak = small + (self_mask >> np.uint64(8))
    assert top_byte_pvalue(weak) < 1e-100
    # ... and a full-width mask added without wrapping (|x + m| < 2^63):
    # its top byte is triangular, and it keeps r = 1 / sqrt(2) with x.
    unwrapped = (x + rng.integers(-(2**62), 2**62, N_ENTRIES)).view(np.uint64)
    assert top_byte_pvalue(unwrapped) < 1e-100
    assert correlation(unwrapped, x) > 0.6  # measured 0.707


def test_masks_are_fresh_every_round():
    # Same inputs, two rounds: the masked vectors (and keys) differ everywhere.
    vectors = _vectors(4, 1000, seed=5)
    views = []
    for _ in range(2):
        transcript = Transcript()
        masked_sum(vectors, 3, transcript)
        views.append(
            {
                (m.kind, m.sender): m.payload
                for m in transcript.messages
                if m.kind in ("masked_input", "public_keys")
            }
        )
    for key, first in views[0].items():
        second = views[1][key]
        if key[0] == "public_keys":
            assert first[0] != second[0] and first[1] != second[1]
        else:  # equal coordinates: 2^-64 each by chance
            assert not np.any(first == second)


@seeded
def test_masks_are_fresh_even_when_the_noise_is_seeded(protocol_inputs):
    # Two fits with the same random_state give the same protocol inputs
    # (same noise), but the coordinator sees unrelated masked vectors.
    fed = _federation(4, min_parties=3)
    masked = []
    for _ in range(2):
        FederatedEstimator(
            Ridge(),
            epsilon=1.0,
            bounds=(-1, 1),
            y_bounds=(-3, 3),
            trust="secure",
            random_state=0,
            n_jobs=1,
        ).fit(fed)
        masked.append(
            [
                m.payload
                for m in fed.last_transcript_.messages
                if m.kind == "masked_input"
            ]
        )
    inputs = protocol_inputs["inputs"]
    for first, second in zip(inputs[:4], inputs[4:]):
        assert_array_equal(first, second)
    for first, second in zip(*masked):
        assert np.mean(first == second) == 0


def test_a_party_refuses_a_request_listing_a_party_alive_and_dropped():
    names = ["a", "b", "c", "d"]
    parties, _ = _masking_round(names, threshold=3)
    with pytest.raises(ValueError, match=r"'a' refuses to unmask: \['c'\]"):
        parties["a"].reveal(["a", "b", "c"], ["c", "d"])
    # refusing revealed nothing, so an honest request is still answered once
    reveal = parties["a"].reveal(["a", "b", "c"], ["d"])
    assert set(reveal["seeds"]) == {"a", "b", "c"} and set(reveal["keys"]) == {"d"}
    with pytest.raises(RuntimeError, match="already revealed this round"):
        parties["a"].reveal(["a", "b", "c"], ["d"])
    # a party never reveals both shares of one peer
    assert not set(reveal["seeds"]) & set(reveal["keys"])


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize("protocol", ["masking", "paillier"])
def test_the_coordinator_never_sees_a_plaintext(protocol_inputs, protocol, delta):
    # Every array in every message of a secure release (not only those
    # addressed to the coordinator: it relays the encrypted shares too) is
    # compared with every party's encoded statistic and noised input: none
    # is equal, or even within 2^40 of it on 0.1% of its coordinates. The
    # one exception is Paillier's "total", the released sum itself. Paillier
    # runs on "moments" (7 coordinates) to stay fast.
    if protocol == "paillier":
        pytest.importorskip("phe")
    fed = _federation(4, min_parties=3, secure_protocol=protocol)
    request = _request("secure", delta=delta)
    if protocol == "paillier":
        request = dataclasses.replace(request, statistic="moments")
    fed.release(request, seed_sequence=np.random.SeedSequence(0))
    plaintexts = protocol_inputs["encoded"] + protocol_inputs["inputs"]
    assert len(protocol_inputs["inputs"]) == 4
    messages = fed.last_transcript_.messages
    to_coordinator = fed.last_transcript_.seen_by(COORDINATOR)
    assert any(m.kind in ("masked_input", "ciphertexts") for m in to_coordinator)
    for message in messages:
        if message.kind == "total":
            continue
        for array in _arrays(message.payload):
            for plain in plaintexts:
                assert _close_fraction(array, plain) < 1e-3, message.kind


@seeded
def test_peer_to_peer_has_no_coordinator_and_no_plaintext(protocol_inputs):
    fed = _federation(5)
    fed.release(_request("peer_to_peer"), seed_sequence=np.random.SeedSequence(1))
    transcript = fed.last_transcript_
    assert transcript.kinds() == ["share", "partial_sum"]
    assert all(COORDINATOR not in (m.sender, m.recipient) for m in transcript.messages)
    assert transcript.seen_by(COORDINATOR) == [  # only what is public
        m for m in transcript.messages if m.recipient == "*"
    ]
    plaintexts = protocol_inputs["encoded"] + protocol_inputs["inputs"]
    for message in transcript.messages:
        for array in _arrays(message.payload):
            for plain in plaintexts:
                assert _close_fraction(array, plain) < 1e-3
    # each party receives exactly one share from each peer
    for party in fed.party_names:
        senders = [m.sender for m in transcript.messages if m.recipient == party]
        assert sorted(senders) == sorted(set(fed.party_names) - {party})


def test_secure_trust_without_noise_still_hides_party_statistics():
    fed = _federation(4, min_parties=3)
    try:
        fed.release(_request("secure", epsilon=INF), seed_sequence=None)
    except ValueError:
        return  # refusing secure trust without noise would also be a fix
    assert "masked_input" in fed.last_transcript_.kinds()


# -- 3. Shamir ----------------------------------------------------------------------


def test_any_t_shares_reconstruct_and_t_minus_1_do_not():
    # n = 7, t = 4: every subset of 4 to 7 shares gives the secret back.
    # Interpolating 3 shares x1, x2, x3 of the cubic instead gives
    # secret + c x1 x2 x3, with c the polynomial's random leading
    # coefficient (uniform modulo PRIME ~ 2^521): wrong unless c = 0, and
    # shifted by an amount nobody holding 3 shares knows.
    secret = secrets.randbits(256)
    shares = share_secret(secret, 7, 4)
    assert [x for x, _ in shares] == list(range(1, 8))
    for k in range(4, 8):
        for subset in itertools.combinations(shares, k):
            assert reconstruct_secret(list(subset)) == secret
    leading = set()
    for subset in itertools.combinations(shares, 3):
        wrong = reconstruct_secret(list(subset))
        assert wrong != secret
        product = math.prod(x for x, _ in subset)
        leading.add((wrong - secret) * pow(product, -1, PRIME) % PRIME)
    (c,) = leading  # the same c for all 35 subsets
    assert c != 0


@pytest.mark.parametrize("threshold", [0, 6])
def test_shamir_threshold_out_of_range_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold must be in"):
        share_secret(1, 5, threshold)


# -- 4. distributed noise ------------------------------------------------------------

N_NOISE = 100_000


@pytest.mark.parametrize(("scale", "n_parties"), [(3.0, 10), (0.7, 10), (25.0, 100)])
def test_polya_shares_add_up_to_discrete_laplace(scale, n_parties):
    # 10^5 sums of n shares against the exact pmf exp(-|k| / t) / Z. Seeded,
    # so deterministic; the right distribution gives p < 1e-3 for 1 seed in
    # 1,000.
    rng = np.random.default_rng(6)
    total = sum(
        polya_laplace_share(scale, 1 / n_parties, N_NOISE, rng)
        for _ in range(n_parties)
    )
    assert total.dtype == np.int64
    assert chi_square_pvalue(total, *laplace_pmf(scale)) > 1e-3


@pytest.mark.parametrize("factor", [0.7, 1.3])
def test_polya_chi_square_rejects_a_wrong_scale(factor):
    # Power control: the same samples (scale 3) tested against 0.7x and 1.3x
    # the scale are rejected (p ~ 0, far below 1e-6).
    rng = np.random.default_rng(6)
    total = sum(polya_laplace_share(3.0, 0.1, N_NOISE, rng) for _ in range(10))
    assert chi_square_pvalue(total, *laplace_pmf(factor * 3.0)) < 1e-6


def test_polya_share_edge_cases():
    rng = np.random.default_rng(0)
    assert_array_equal(polya_laplace_share(0, 0.1, 5, rng), np.zeros(5, np.int64))
    assert polya_laplace_share(3.0, 0.1, 0, rng).shape == (0,)


def _grid(mechanism, epsilon=1.0, delta=1e-6):
    """The calibration of a linear_moments release of 3 features."""
    statistic = fedsk._statistics.STATISTICS["linear_moments"]
    _, _, rho = budget_share(epsilon, delta, 1.0)
    return GridEncoding.calibrate(
        statistic.shapes(D),
        statistic.sensitivity(CLIPPING, D),
        epsilon=epsilon,
        rho=rho if mechanism == "discrete_gaussian" else None,
    )


def test_polya_topup_restores_discrete_laplace_exactly():
    # 6 of 10 parties survive: each adds its 1/10 share and a top-up share of
    # shape (10 - 6) / (10 x 6); the 12 Polya variables add up to DLap(3)
    # (10^5 sums, chi-square against the exact pmf, threshold as above),
    # while the 6 shares alone do not (power control: p ~ 0).
    rng = np.random.default_rng(7)
    n, m = 10, 6
    shares = sum(polya_laplace_share(3.0, 1 / n, N_NOISE, rng) for _ in range(m))
    topups = sum(
        polya_laplace_share(3.0, (n - m) / (n * m), N_NOISE, rng) for _ in range(m)
    )
    assert chi_square_pvalue(shares + topups, *laplace_pmf(3.0)) > 1e-3
    assert chi_square_pvalue(shares, *laplace_pmf(3.0)) < 1e-6


@pytest.mark.parametrize("mechanism", ["discrete_laplace", "discrete_gaussian"])
def test_topup_restores_the_full_noise_level(mechanism):
    # A calibrated release with one block of 20,000 coordinates; 6 of 10
    # parties survive and each adds encoding.noise (its share) and
    # encoding.topup_noise. Variance of the total over 5 rounds = 10^5
    # values: the relative SE of a sample variance is sqrt((kurtosis - 1) /
    # n) <= sqrt(5 / 10^5) = 0.7%, so 4% is > 5 SE. Laplace: exactly the
    # central variance. Gaussian: 6 x (1 + 1) = 12 shares, 1.2x the central
    # variance, as survivors_noise_std says. Shares without top-up: 0.6x.
    _, _, rho = budget_share(1.0, 1e-6, 1.0)
    encoding = GridEncoding.calibrate(
        [(20_000,)],
        [(1.0, 1.0)],
        epsilon=1.0,
        rho=rho if mechanism == "discrete_gaussian" else None,
    )
    assert encoding.mechanism == mechanism
    rng = np.random.default_rng(7)
    n, m = 10, 6
    full, shares_only = [], []
    for _ in range(5):
        shares = sum(encoding.noise(rng, n) for _ in range(m))
        topups = sum(encoding.topup_noise(rng, n, m) for _ in range(m))
        shares_only.append(shares)
        full.append(shares + topups)
    full, shares_only = np.concatenate(full), np.concatenate(shares_only)
    grid = encoding.step * encoding.block_scales[0]
    central_var = (encoding.noise_std()[0] / grid) ** 2
    stated_var = (encoding.survivors_noise_std(n, m)[0] / grid) ** 2
    assert full.var() == pytest.approx(stated_var, rel=0.04)
    if mechanism == "discrete_laplace":
        assert stated_var == pytest.approx(central_var, rel=1e-12)
    else:
        assert stated_var == pytest.approx(1.2 * central_var, rel=1e-6)
    assert shares_only.var() == pytest.approx(0.6 * central_var, rel=0.04)


def test_distributed_gaussian_shares_add_up_to_the_central_variance():
    # 10 parties, each one discrete Gaussian share per coordinate, 10^5 sums.
    # At the calibration of a real release (sigma in grid steps ~ 10^4) the
    # tau term of the bound is ~0, so n share variances equal the central
    # sigma^2; relative SE of the variance sqrt(2 / n) = 0.45%, 3% tolerance.
    encoding = _grid("discrete_gaussian")
    share = encoding.share_sigma(10)
    assert 10 * share**2 == pytest.approx(encoding.noise_scale**2, rel=1e-9)
    rng = np.random.default_rng(8)
    total = sum(discrete_gaussian(share, N_NOISE, rng) for _ in range(10))
    assert total.var() == pytest.approx(encoding.noise_scale**2, rel=0.03)
    # the noise_std the federation reports is that of the sum
    assert encoding.noise_std(10)[0] == pytest.approx(
        encoding.noise_std(1)[0], rel=1e-9
    )


@pytest.mark.parametrize(
    ("rho", "sensitivity", "n_coords", "n_parties"),
    [
        (0.5, 1e5, 252, 10),  # a real release: tau ~ 0
        (0.5, 1.0, 252, 10),  # small sigma: the tau term dominates
        (2.0, 1.0, 1000, 10),
        (0.1, 1.0, 10, 100),
        (1e-4, 3.0, 5, 2),
    ],
)
def test_distributed_gaussian_sigma_meets_rho(rho, sensitivity, n_coords, n_parties):
    # For every number of shares N from n to 2n (dropouts with top-ups) the
    # Kairouz-Liu-Steinke bound is <= rho, and sigma is the smallest such
    # (1% less breaks it for some N).
    sigma = distributed_gaussian_sigma(rho, sensitivity, n_coords, n_parties)
    for shares in range(n_parties, 2 * n_parties + 1):
        assert distributed_rho(sigma, sensitivity, n_coords, shares) <= rho * (1 + 1e-9)
    assert sigma >= sensitivity / math.sqrt(2 * rho * n_parties) * (1 - 1e-12)
    assert (
        distributed_rho(0.99 * sigma, sensitivity, n_coords, n_parties, 2 * n_parties)
        > rho
    )


def test_distributed_rho_formula():
    # eps^2 = Delta^2 / (N sigma^2) + tau(N) d / 2, tau = 10 sum_{k<N} e^{...}
    sigma, delta2, d, n = 0.8, 1.0, 20, 5
    tau = 10 * sum(
        math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, n)
    )
    expected = (delta2**2 / (n * sigma**2) + tau * d / 2) / 2
    assert distributed_rho(sigma, delta2, d, n) == pytest.approx(expected, rel=1e-12)
    assert distributed_rho(sigma, delta2, d, 1) == delta2**2 / (2 * sigma**2)


# -- 5. end to end ---------------------------------------------------------------------

E2E_ROWS, E2E_FEATURES = 20_000, 10


def _regression():
    """20,000 training rows x 10 features in [-1, 1], 10 parties, 5,000 test rows."""
    rng = np.random.default_rng(9)
    w = rng.normal(size=E2E_FEATURES)
    X = rng.uniform(-1, 1, (E2E_ROWS + 5000, E2E_FEATURES))
    y = X @ w + 0.3 * rng.normal(size=len(X))
    parties = np.arange(E2E_ROWS) % 10
    return X[:E2E_ROWS], y[:E2E_ROWS], parties, X[E2E_ROWS:], y[E2E_ROWS:]


def _ridge(trust, epsilon, delta, seed):
    return FederatedEstimator(
        Ridge(alpha=1.0),
        epsilon=epsilon,
        delta=delta,
        bounds=(-1, 1),
        y_bounds=(-8, 8),
        trust=trust,
        random_state=seed,
        n_jobs=1,
    )


def _welch_t(a, b):
    a, b = np.asarray(a), np.asarray(b)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return (a.mean() - b.mean()) / se


@seeded
@pytest.mark.parametrize(("epsilon", "delta"), [(1.0, 0.0), (0.3, 1e-6)])
def test_secure_accuracy_equals_central_and_beats_local(epsilon, delta):
    # Ridge test R^2 over 10 noise seeds (same data, 20,000 rows x 10
    # features, 10 parties). Measured (mean, sd): eps=1, delta=0: central
    # 0.886 (0.027), secure 0.893 (0.024), local 0.674 (0.078); secure -
    # central Welch t = 0.6, secure - local t = 8.5. eps=0.3, delta=1e-6:
    # central 0.886 (0.018), secure 0.881 (0.021), local 0.595 (0.081); t =
    # -0.6 and 10.8. Equal within noise: |t| < 3; beats local: t > 4 and by
    # more than 0.1 R^2. Masking and peer-to-peer sum the same noisy inputs
    # exactly, so with the same seed their coefficients are identical.
    X, y, parties, X_test, y_test = _regression()
    scores = {trust: [] for trust in ("central", "local", *DISTRIBUTED)}
    for seed in range(10):
        coefs = {}
        for trust in scores:
            model = _ridge(trust, epsilon, delta, seed).fit(X, y, parties=parties)
            scores[trust].append(model.score(X_test, y_test))
            coefs[trust] = model.estimator_.coef_
        assert_array_equal(coefs["secure"], coefs["peer_to_peer"])
    assert abs(_welch_t(scores["secure"], scores["central"])) < 3
    assert _welch_t(scores["secure"], scores["local"]) > 4
    assert np.mean(scores["local"]) < np.mean(scores["central"]) - 0.1


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_released_noise_is_central_for_distributed_trust(delta):
    # 30 releases of linear_moments (14 coordinates) per trust model at
    # epsilon = 1 on 10 parties, against the exact total: the error divided
    # by the reported noise_std has sd 1 (420 values; the sd of a sample sd
    # is <= sqrt((kurtosis - 1) / 4n) = 5.5% for Laplace, so 25% is > 4 SE;
    # measured 0.94 to 1.02). Reported std: secure = peer_to_peer = central
    # (Laplace exactly, Gaussian within 1e-9 at this calibration); local =
    # sqrt(10) x central.
    fed = _federation()
    exact = np.concatenate(
        fed.release(_request("central", epsilon=INF), seed_sequence=None).blocks
    )
    reported, spread = {}, {}
    for trust in ("central", "local", *DISTRIBUTED):
        root = np.random.default_rng(10)
        errors = []
        for _ in range(30):
            release = fed.release(
                _request(trust, delta=delta),
                seed_sequence=np.random.SeedSequence(int(root.integers(2**32))),
            )
            stds = np.concatenate(
                [np.full(b.size, s) for b, s in zip(release.blocks, release.noise_std)]
            )
            errors.append((np.concatenate(release.blocks) - exact) / stds)
            reported[trust] = release.noise_std
        spread[trust] = np.std(errors)
    central = np.asarray(reported["central"])
    for trust in DISTRIBUTED:
        np.testing.assert_allclose(reported[trust], central, rtol=1e-9)
    np.testing.assert_allclose(reported["local"], math.sqrt(10) * central, rtol=1e-9)
    for trust, value in spread.items():
        assert value == pytest.approx(1.0, rel=0.25), trust


def test_noise_off_secure_trust_is_refused():
    # without noise there is no grid to sum securely: refused rather than
    # summing the parties' exact statistics in the clear
    X, y, parties, _, _ = _regression()
    for trust in DISTRIBUTED:
        with pytest.raises(ValueError, match="in the clear"):
            _ridge(trust, INF, 0.0, None).fit(X, y, parties=parties)


@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_zero_noise_protocols_sum_the_encoded_statistics_exactly(monkeypatch, delta):
    # With the noise draws patched to zero, every protocol returns exactly
    # the sum of the parties' encoded statistics (which differs from
    # central's encoding of the float sum by at most n / 2 grid steps).
    def zeros(self, rng, *args):
        return np.zeros(self.n_coords, dtype=np.int64)

    monkeypatch.setattr(GridEncoding, "noise", zeros)
    fed = _federation(4, min_parties=3)
    exact = np.concatenate(
        fed.release(_request("central", epsilon=INF), seed_sequence=None).blocks
    )
    request = _request("central", delta=delta)
    central = np.concatenate(
        fed.release(request, seed_sequence=np.random.SeedSequence(0)).blocks
    )
    encoding = _grid("discrete_gaussian" if delta else "discrete_laplace", delta=delta)
    steps = np.concatenate(
        [
            np.full(np.prod(s), encoding.step * c)
            for s, c in zip(encoding.block_shapes, encoding.block_scales)
        ]
    )
    per_party = sum(
        encoding.encode(
            fedsk._statistics.STATISTICS["linear_moments"].compute(
                *CLIPPING.apply(p.X, p.y)
            )
        )
        for p in fed.parties
    )
    for trust in DISTRIBUTED:
        total = np.concatenate(
            fed.release(
                dataclasses.replace(request, trust=trust),
                seed_sequence=np.random.SeedSequence(0),
            ).blocks
        )
        assert_array_equal(np.rint(total / steps).astype(np.int64), per_party)
        assert np.all(np.abs(total - central) <= 2.5 * steps)
        assert np.all(np.abs(total - exact) <= 2 * steps)


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_protocols_agree_exactly_under_the_same_seed(delta):
    # Masking, Paillier and peer-to-peer sum the same noised inputs: the
    # released totals are identical (a 1-feature statistic keeps Paillier
    # under a second: 3 coordinates x 3 parties).
    pytest.importorskip("phe")
    totals = {}
    for trust, protocol in [
        ("secure", "masking"),
        ("secure", "paillier"),
        ("peer_to_peer", "masking"),
    ]:
        fed = _federation(3, min_parties=2, secure_protocol=protocol)
        request = dataclasses.replace(_request(trust, delta=delta), statistic="moments")
        release = fed.release(request, seed_sequence=np.random.SeedSequence(2))
        totals[trust, protocol] = np.concatenate(release.blocks)
    first, *others = totals.values()
    for other in others:
        assert_array_equal(other, first)


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_distributed_noise_costs_no_extra_budget(delta):
    X, y, parties, _, _ = _regression()
    spent = {}
    for trust in ("central", "local", *DISTRIBUTED):
        model = _ridge(trust, 0.5, delta, 0).fit(X, y, parties=parties)
        spent[trust] = (model.epsilon_spent_, [led.spent() for led in model.ledgers_])
        assert {e.trust for led in model.ledgers_ for e in led.events} == {trust}
    for trust in ("local", *DISTRIBUTED):
        assert spent[trust] == spent["central"]


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_dropouts_above_threshold_are_survived_and_noted(
    fail_parties, fit_ledgers, trust, delta
):
    # p3 and p7 (103 and 107 rows) fail: 8 of 10 >= min_parties 6 (and the
    # masking threshold is max(6, majority 6) = 6).
    fail_parties(103, 107)
    fed = _federation(min_parties=6)
    model = FederatedEstimator(
        Ridge(),
        epsilon=1.0,
        delta=delta,
        bounds=(-1, 1),
        y_bounds=(-3, 3),
        trust=trust,
        random_state=0,
        n_jobs=1,
    ).fit(fed)
    assert model.epsilon_spent_ == pytest.approx(1.0)
    (fit_ledger,) = fit_ledgers
    assert len(fit_ledger.events) == 1
    for party in fed.parties:
        if party.name in ("p3", "p7"):
            assert party.ledger.events == []
        else:
            (event,) = party.ledger.events
            assert party.ledger.spent()[0] == pytest.approx(1.0)
            assert "left out 2 of 10 parties (p3, p7)" in event.note
            assert "topped up the noise" in event.note
    assert "left out 2 of 10 parties (p3, p7)" in fit_ledger.events[0].note
    text = str(model.privacy_report())
    assert "note (Ridge): left out 2 of 10 parties (p3, p7)" in text
    if trust == "secure":  # the protocol itself saw them as dropped
        (request,) = [
            m.payload
            for m in fed.last_transcript_.messages
            if m.kind == "unmask_request"
        ]
        assert sorted(request[1]) == ["p3", "p7"]


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_dropout_release_reports_the_topped_up_noise(fail_parties, delta):
    fail_parties(103, 107, 108)
    fed = _federation(min_parties=6)
    request = _request("secure", delta=delta)
    release = fed.release(request, seed_sequence=np.random.SeedSequence(3))
    encoding = _grid("discrete_gaussian" if delta else "discrete_laplace", delta=delta)
    np.testing.assert_allclose(
        release.noise_std, encoding.survivors_noise_std(10, 7), rtol=1e-9
    )
    assert np.all(np.asarray(release.noise_std) >= np.asarray(encoding.noise_std(10)))


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_dropouts_below_threshold_release_and_charge_nothing(
    fail_parties, fit_ledgers, trust, delta
):
    # 3 of 10 fail: 7 < min_parties 8.
    fail_parties(101, 104, 109)
    fed = _federation(min_parties=8)
    model = FederatedEstimator(
        Ridge(),
        epsilon=1.0,
        delta=delta,
        bounds=(-1, 1),
        y_bounds=(-3, 3),
        trust=trust,
        random_state=0,
        n_jobs=1,
    )
    with pytest.raises(PartyError, match="needs 8 of 10 parties") as error:
        model.fit(fed)
    message = str(error.value)
    assert "but 3 failed" in message and "Nothing was released or charged" in message
    assert "party 'p1': RuntimeError: party offline" in message
    assert not hasattr(model, "estimator_")
    (fit_ledger,) = fit_ledgers
    assert fit_ledger.events == []
    for party in fed.parties:
        assert party.ledger.events == []
    assert fed.last_transcript_.messages == []  # no protocol message was sent


@seeded
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_a_failed_distributed_release_leaves_every_ledger_empty(fail_parties, trust):
    # Direct release with a fit ledger, min_parties left at every party and
    # one failure: nothing released, the fit ledger and every party ledger
    # left empty.
    fail_parties(100)
    fed = _federation()
    ledger = BudgetLedger("fit", epsilon=1.0)
    with pytest.raises(PartyError, match="needs 10 of 10 parties"):
        fed.release(
            _request(trust),
            seed_sequence=np.random.SeedSequence(0),
            fit_ledger=ledger,
        )
    assert ledger.events == []
    assert all(p.ledger.events == [] for p in fed.parties)


@seeded
def test_the_dropout_note_lands_on_the_release_that_had_the_dropout(fail_parties):
    fed = _federation(4, min_parties=3)
    model = FederatedEstimator(
        Ridge(),
        epsilon=1.0,
        bounds=(-1, 1),
        y_bounds=(-3, 3),
        trust="secure",
        random_state=0,
        n_jobs=1,
    )
    model.fit(fed)  # everybody answers
    fail_parties(103)
    model.fit(fed)  # p3 drops out
    notes = [event.note for event in fed.parties[0].ledger.events]
    assert notes[0] == "" and "left out 1 of 4 parties (p3)" in notes[1]


# -- 6. overflow and validation --------------------------------------------------


@pytest.mark.parametrize("trust", ["central", *DISTRIBUTED])
def test_a_party_beyond_max_rows_is_refused_and_nothing_is_charged(monkeypatch, trust):
    # Pretend the encoding can only take 104 rows per party: p5..p9 have
    # more. Each refuses on its own side (its row count may only be known
    # there), so the release fails naming them, and every charge is taken
    # back. (With trust="local" the parties that did send noisy values stay
    # charged, as for any failure.)
    monkeypatch.setattr(GridEncoding, "max_rows", lambda self, n_parties: 104)
    fed = _federation()
    ledger = BudgetLedger("fit", epsilon=1.0)
    with pytest.raises(PartyError) as error:
        fed.release(
            _request(trust), seed_sequence=np.random.SeedSequence(0), fit_ledger=ledger
        )
    message = str(error.value)
    assert "party 'p5': ValueError" in message and "104" in message
    assert "overflow" in message
    assert "party 'p4'" not in message
    assert "Nothing was released or charged" in message
    assert ledger.events == []
    assert all(p.ledger.events == [] for p in fed.parties)


@seeded
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_parties_beyond_max_rows_are_left_out_above_min_parties(monkeypatch, trust):
    # max_rows 106: p7, p8, p9 refuse; 7 of 10 >= min_parties 6 go on.
    monkeypatch.setattr(GridEncoding, "max_rows", lambda self, n_parties: 106)
    fed = _federation(min_parties=6)
    fed.release(_request(trust), seed_sequence=np.random.SeedSequence(0))
    for party in fed.parties:
        if party.name in ("p7", "p8", "p9"):
            assert party.ledger.events == []
        else:
            assert (
                "left out 3 of 10 parties (p7, p8, p9)" in party.ledger.events[0].note
            )


def _worst_case_sum(mechanism, n_parties):
    """n parties at max_rows, every record at full sensitivity, worst noise.

    A hand-built encoding with a very fine grid (step 2^-40) so that
    max_rows is a few million and the bound can be reached. Returns the
    party vectors and their true sum as Python integers.
    """
    encoding = GridEncoding(mechanism, ((2,),), (1.0,), 2.0**-40, 2.0**40 + 1, 3.0)
    rows = encoding.max_rows(n_parties)
    noise = (95 if mechanism == "discrete_laplace" else 14) * 3 + 1
    with np.errstate(invalid="ignore"):  # the defect below: 2^63 does not cast
        encoded = encoding.encode([np.array([rows, -rows], dtype=float)])
    party = encoded + np.array([noise, -noise])
    vectors = {f"p{i}": party for i in range(n_parties)}
    true = [n_parties * (round(rows / 2.0**-40) + noise), 0]
    true[1] = -true[0]
    return vectors, true


@pytest.mark.parametrize("n_parties", [3, 10])
@pytest.mark.parametrize("mechanism", ["discrete_laplace", "discrete_gaussian"])
def test_max_rows_keeps_the_worst_case_sum_in_int64(n_parties, mechanism):
    # The sum of n parties of max_rows records, each record moving every
    # coordinate by its full sensitivity, plus the noise allowance of
    # max_rows (95 Laplace scales, 14 Gaussian sigmas), stays in int64 and
    # the ring sum is exact; with twice the rows it leaves int64 and the
    # ring sum wraps, which is why the bound is enforced.
    vectors, true = _worst_case_sum(mechanism, n_parties)
    assert -(2**63) <= min(true) and max(true) < 2**63
    assert masked_sum(vectors, n_parties).tolist() == true
    doubled = {k: 2 * v for k, v in vectors.items()}
    assert shared_sum(doubled).tolist() != [2 * t for t in true]


@pytest.mark.parametrize(
    ("mechanism", "n_parties"),
    [("discrete_laplace", 1), ("discrete_gaussian", 1), ("discrete_gaussian", 2)],
)
def test_max_rows_holds_for_one_or_two_parties(mechanism, n_parties):
    vectors, true = _worst_case_sum(mechanism, n_parties)
    assert max(true) < 2**63
    assert masked_sum(vectors, n_parties).tolist() == true


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_encode_refuses_nan_and_inf(bad):
    encoding = _grid("discrete_laplace")
    blocks = fedsk._statistics.STATISTICS["linear_moments"].compute(
        *CLIPPING.apply(np.zeros((3, D)), np.zeros(3))
    )
    blocks[1] = blocks[1].copy()
    blocks[1][0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        encoding.encode(blocks)


@pytest.mark.parametrize("min_parties", [0, -1, 11])
def test_federation_min_parties_out_of_range_is_refused(min_parties):
    with pytest.raises(
        ValueError,
        match=rf"min_parties must be between 1 and .*\(10\); got {min_parties}",
    ):
        _federation(min_parties=min_parties)


def test_masking_threshold_is_min_parties_and_at_least_a_majority():
    assert _federation().mask_threshold == 10  # default: every party
    assert _federation(min_parties=6).mask_threshold == 6
    assert _federation(min_parties=1).mask_threshold == 6  # 10 // 2 + 1
    assert _federation(5, min_parties=2).mask_threshold == 3


def test_unknown_secure_protocol_is_refused():
    with pytest.raises(ValueError, match=r"secure_protocol must be one of .*'bogus'"):
        _federation(secure_protocol="bogus")


def test_unknown_trust_is_refused_by_the_federation():
    fed = _federation(2)
    with pytest.raises(ValueError, match="trust must be one of"):
        fed.release(_request("bogus"), seed_sequence=np.random.SeedSequence(0))
