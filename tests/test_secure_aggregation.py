"""No trusted server: secure aggregation, distributed noise, peer-to-peer.

Every party holds its own secret; per release the coordinator sends a public
release id, and the party derives its noise and its protocol keys from
both. The protocol steps run on the party's side (``masking_step``,
``sharing_step``); the coordinator only relays and sums (``run_masking``,
``run_sharing``).

What is tested, and how (sample sizes and tolerances are stated at each test):

1. Protocols are exact: ``masked_sum`` under 100 random dropout schedules
   (10 parties, t = 6; dropouts after sharing keys and before sending, and
   between sending and unmasking) returns the exact sum or aborts with no
   output below t; ``shared_sum`` is exact; peer-to-peer survives parties
   that publish their key and then fail (above t the others add back the
   shares they had sealed for them; below t nothing is relayed), and aborts
   with no partial sum published if a party fails after sending its shares.
2. What the coordinator sees: a masked vector (from the transcript) is
   indistinguishable from uniform on Z / 2^64 and uncorrelated with the
   plaintext; power controls show the same tests reject the plaintext and
   weak masks. No message (masked inputs, sealed shares read as ring
   elements, partial sums) equals a party's encoded or noised input; a
   party's sealed peer-to-peer shares, summed as the relay could, are far
   from its input, while opened with its channel key they add up to it;
   peer-to-peer has no coordinator at all; masks are fresh every round;
   shares are sealed for their recipient only (its own pair included;
   others and tampering fail authentication); a party rebuilds its keys
   from (secret, release id) alone; it refuses an unmasking request that
   lists a party both alive and dropped, and a second request for one
   release (``masking_step``'s record, also in a federated release).
   Distributed trust without noise is refused before anything is sent.
3. Shamir: any t shares reconstruct, t - 1 do not.
4. Distributed noise: m Polya shares add up to discrete Laplace (chi-square
   against the exact pmf, with a power control at 0.7x and 1.3x the
   scale); shares are calibrated for the threshold m, so k >= m survivors
   add more noise, never less (2m shares: chi-square against the exact pmf
   of two Laplace draws; k shares of either mechanism have k / m times the
   central variance, as ``noise_std(m, k)`` states); distributed discrete
   Gaussian shares add up to the central variance and their calibration
   meets rho for n to 2n shares.
5. End to end: secure and peer-to-peer accuracy equal central (10 seeds),
   beat local, cost the same epsilon, and (seeded) release identical
   totals, with and without a dropout; a dropout is left out of the sum
   exactly. Dropouts with survivors >= the threshold (``min_parties``, at
   least a majority) go on: an unreachable party (ConnectionError,
   TimeoutError) is not charged and its message crosses, the others'
   events note "left out N of M parties (names)", and the released
   noise_std is ``noise_std(threshold, survivors)``, every party having
   drawn its share for the threshold. Below it nothing is released or
   charged and nothing that could unmask is sent. A failure while computing
   on its rows stays charged and crosses as its type only.
6. Overflow and validation: the no-wrap bound; a party over ``max_rows``
   refuses with a message quoting the cap but not its count and stays
   charged (the others are refunded; above ``min_parties`` it is left out
   and noted); NaN refused; bad ``min_parties`` and trust refused.

The protocols draw their keys and masks from the parties' secrets (fresh
from the operating system, never seeded), so the tests on masked vectors
are not seeded: each states its false-alarm probability, chosen below
1e-6. Every other statistical test is seeded and so deterministic.

Protocol internals have no public path; they are imported from
``fedsk._aggregation``, ``fedsk._party`` and ``fedsk.privacy._distributed``.

Three tests guard defects found while writing them (now fixed):
``trust="secure"`` at ``epsilon=inf`` sent plaintext statistics to the
aggregator (now refused); the dropout note could land on an earlier,
identical release in the ledger; ``GridEncoding.max_rows`` lost its no-wrap
guarantee to floating-point rounding for one or two parties; the
reveal-once record did not survive process workers (loky, Dask), so a
second unmasking request sent as a new task was answered (the record is now
kept in files where the party runs).
"""

import dataclasses
import itertools
import math
import secrets

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from exact_pmf import chi_square_pvalue, laplace_pmf
from joblib import Parallel, delayed, parallel_config
from numpy.testing import assert_array_equal
from ring_checks import close_fraction
from scipy import stats
from sklearn.linear_model import Ridge

import fedsk._aggregation
import fedsk._estimator
import fedsk._federation
import fedsk._party
import fedsk._statistics
from fedsk import FederatedEstimator, Federation, Party, PartyError
from fedsk._aggregation import (
    COORDINATOR,
    AnsweredReleases,
    SecureAggregationAbort,
    Transcript,
    masked_sum,
    masking_step,
    run_sharing,
    shared_sum,
    sharing_step,
)
from fedsk._aggregation._channels import NONCE_BYTES, open_sealed
from fedsk._aggregation._masking import (
    _SHARE_BYTES,
    MaskingParty,
    _pairwise_mask,
    _private_bytes,
    prg,
)
from fedsk._aggregation._shamir import PRIME, reconstruct_secret, share_secret
from fedsk._federation import Request
from fedsk._party import PartyRequest, PartyTask
from fedsk.privacy import (
    BudgetLedger,
    Clipping,
    GridEncoding,
    budget_share,
    derive_key,
    discrete_gaussian,
    new_release_id,
    new_secret,
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
    """Every integer array inside a message payload (recursively); a sealed
    message (bytes) counts by its encrypted body, read as ring elements."""
    if isinstance(payload, np.ndarray):
        yield payload
    elif isinstance(payload, bytes):
        yield _sealed_body(payload)
    elif isinstance(payload, dict):
        for value in payload.values():
            yield from _arrays(value)
    elif isinstance(payload, (list, tuple)):
        if payload and all(isinstance(v, (int, np.integer)) for v in payload):
            yield np.array([int(v) % 2**64 for v in payload], dtype=np.uint64)
        else:
            for value in payload:
                yield from _arrays(value)


def top_byte_pvalue(ring_values):
    """Chi-square p-value of the top 8 bits of uint64 values against uniform."""
    counts = np.bincount((ring_values >> np.uint64(56)).astype(np.int64), minlength=256)
    return stats.chisquare(counts).pvalue


def correlation(ring_values, plain):
    """Pearson correlation of ring elements (read as int64) with the plaintext."""
    signed = ring_values.view(np.int64).astype(float)
    return float(np.corrcoef(signed, plain.astype(float))[0, 1])


def _masking_round(names, threshold=2):
    """A set-up masking round: keys advertised, shares sealed and relayed.

    Returns the parties (each with a fresh secret, one release id), the
    roster ``{name: (index, mask public, channel public)}`` and each party's
    inbox ``{sender: ciphertext}`` (its own pair included), as the
    coordinator relays them with the unmasking request.
    """
    release_id = new_release_id()
    parties = {
        name: MaskingParty(name, i + 1, new_secret(), release_id)
        for i, name in enumerate(names)
    }
    roster = {n: (p.index, *p.public_keys()) for n, p in parties.items()}
    inbox = {name: {} for name in names}
    for name, party in parties.items():
        for peer, ciphertext in party.encrypted_shares(roster, threshold).items():
            inbox[peer][name] = ciphertext
    return parties, roster, inbox


def _sealed_body(ciphertext):
    """The encrypted body of a sealed message (nonce and tag cut off), read as
    ring elements: what the relay would add up if sealing were the identity."""
    body = ciphertext[NONCE_BYTES:-16]
    return np.frombuffer(body[: len(body) // 8 * 8], dtype=np.uint64)


def _sharing_run(vectors, threshold, transcript, gone=None):
    """Peer-to-peer steps in this process; ``gone[step]`` fail at that step.

    Unlike ``shared_sum`` (whose ``None`` parties never join the roster),
    a party listed under ``"contribute"`` publishes its key, then fails
    before sending its shares; under ``"partial"``, after sending them.
    """
    gone = gone or {}
    release_id = new_release_id()
    secrets_ = {name: new_secret() for name in vectors}

    def run(step, messages):
        return {
            name: sharing_step(
                step,
                secrets_[name],
                release_id,
                name,
                message,
                threshold,
                vectors[name],
            )
            for name, message in messages.items()
            if name not in gone.get(step, ())
        }

    return run_sharing(run, list(vectors), threshold, transcript)


# -- federation fixtures --------------------------------------------------------


def _moments(events):
    """The events of the ``linear_moments`` releases (the one that fails in
    these tests; a least-squares fit may release other statistics first)."""
    return [event for event in events if event.statistic == "linear_moments"]


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
    """Make the parties with the given row counts raise ``error`` in
    linear_moments (default: ConnectionError, an unreachable party)."""

    def install(*row_counts, error=None):
        error = ConnectionError("party offline") if error is None else error
        original = fedsk._statistics.STATISTICS["linear_moments"]

        def compute(X, y, **params):
            if X.shape[0] in row_counts:
                raise error
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
    """Records each party's encoded statistic, the noisy vector it fed into
    the protocol, and the release id of its protocol steps."""
    seen = {"encoded": [], "inputs": [], "release_ids": set()}
    encode = GridEncoding.encode

    def recording_encode(self, blocks):
        out = encode(self, blocks)
        seen["encoded"].append(out.copy())
        return out

    monkeypatch.setattr(GridEncoding, "encode", recording_encode)
    for name in ("masking_step", "sharing_step"):
        step_function = getattr(fedsk._party, name)

        def wrapped(step, *args, _step=step_function, **kwargs):
            seen["release_ids"].add(args[1])  # (secret, release_id, name, ...)
            if step == "contribute":  # the party's noisy vector, before masking
                seen["inputs"].append(args[5].copy())  # after the threshold
            return _step(step, *args, **kwargs)

        monkeypatch.setattr(fedsk._party, name, wrapped)
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


def test_peer_to_peer_survives_dropouts_after_publishing_keys():
    # 10 parties, t = 6. Parties that publish their key and then fail
    # before sending their shares are left out: each other party adds back
    # the share it had sealed for them, and the total is the exact sum of
    # the others' vectors, for 0 to 4 dropouts (5 schedules each). With 5
    # dropouts (5 < t senders) it aborts before relaying a single share.
    rng = np.random.default_rng(11)
    names = [f"p{i}" for i in range(10)]
    for n_gone in range(6):
        for schedule in range(5):
            vectors = _vectors(10, 20, seed=10 * n_gone + schedule)
            gone = set(rng.choice(names, n_gone, replace=False).tolist())
            alive = [n for n in names if n not in gone]
            transcript = Transcript()
            if n_gone == 5:
                with pytest.raises(SecureAggregationAbort, match="sent their shares"):
                    _sharing_run(vectors, 6, transcript, {"contribute": gone})
                assert transcript.kinds() == ["public_key"]
                continue
            total, members = _sharing_run(vectors, 6, transcript, {"contribute": gone})
            assert members == alive
            assert_array_equal(total, _sum({n: vectors[n] for n in alive}))
            published = [
                m.sender for m in transcript.messages if m.kind == "public_key"
            ]
            assert published == names
            shares = [m for m in transcript.messages if m.kind == "share"]
            # every survivor gets one sealed share from each survivor (itself
            # included), and nothing is relayed to or from a dropped party
            assert sorted((m.sender, m.recipient) for m in shares) == sorted(
                itertools.product(alive, alive)
            )
            assert sorted(
                m.sender for m in transcript.messages if m.kind == "partial_sum"
            ) == sorted(alive)


def test_peer_to_peer_aborts_when_a_party_fails_after_sending_its_shares():
    # Its partial sum holds shares nobody else can open: no total, and no
    # partial sum is published.
    vectors = _vectors(5, 8, seed=12)
    transcript = Transcript()
    with pytest.raises(SecureAggregationAbort, match=r"\['p3'\] failed before"):
        _sharing_run(vectors, 3, transcript, {"partial": {"p3"}})
    assert "partial_sum" not in transcript.kinds()


def test_sums_wrap_only_beyond_int64():
    # Near the int64 limits, modulo 2^64 arithmetic still gives the exact
    # int64 sum as long as the true sum is in range.
    big = 2**62
    vectors = {"a": np.array([big, -big]), "b": np.array([big - 1, -big])}
    expected = np.array([2**63 - 1, -(2**63)], dtype=np.int64)
    assert_array_equal(masked_sum(vectors, 2), expected)
    assert_array_equal(shared_sum(vectors), expected)


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
    assert close_fraction(masked, vectors["a"]) < 1e-3


def test_uniformity_and_correlation_tests_have_power():
    # Power controls at the same size and thresholds, built from the real
    # protocol pieces of a 2-party round (a before b):
    # masked_a = x + self_mask_a + pairwise_ab.
    rng = np.random.default_rng(4)
    x = rng.integers(-(2**62), 2**62, N_ENTRIES, dtype=np.int64)
    parties, roster, _ = _masking_round(["a", "b"])
    a, b = parties["a"], parties["b"]
    masked = a.masked_input(x, roster, ["a", "b"])
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
    inputs = protocol_inputs["inputs"]  # every release of both fits
    half = len(inputs) // 2
    assert half >= 4
    for first, second in zip(inputs[:half], inputs[half:]):
        assert_array_equal(first, second)
    for first, second in zip(*masked):
        assert np.mean(first == second) == 0


def test_a_party_refuses_a_request_listing_a_party_alive_and_dropped():
    names = ["a", "b", "c", "d"]
    parties, roster, inbox = _masking_round(names, threshold=3)
    a = parties["a"]
    with pytest.raises(ValueError, match=r"'a' refuses to unmask: \['c'\]"):
        a.reveal(inbox["a"], roster, ["a", "b", "c"], ["c", "d"])
    reveal = a.reveal(inbox["a"], roster, ["a", "b", "c"], ["d"])
    assert set(reveal["seeds"]) == {"a", "b", "c"} and set(reveal["keys"]) == {"d"}
    # a party never reveals both shares of one peer
    assert not set(reveal["seeds"]) & set(reveal["keys"])
    # the shares revealed are those each peer dealt to a (its own included)
    for name in names:
        held = a.open_shares({name: inbox["a"][name]}, roster)[name]
        if name == "d":
            assert reveal["keys"]["d"] == held[0]
        else:
            assert reveal["seeds"][name] == held[1]


def _masking_steps(names, threshold):
    """keys and share steps through ``masking_step``, as the federation runs
    them: returns each party's secret, the release id, roster and inboxes."""
    release_id = new_release_id()
    secrets_ = {name: new_secret() for name in names}
    roster = {
        name: (
            i + 1,
            *masking_step("keys", secrets_[name], release_id, name, {}, threshold),
        )
        for i, name in enumerate(names)
    }
    inbox = {name: {} for name in names}
    message = {"roster": roster}
    for name in names:
        sealed = masking_step(
            "share", secrets_[name], release_id, name, message, threshold
        )
        for peer, ciphertext in sealed.items():
            inbox[peer][name] = ciphertext
    return secrets_, release_id, roster, inbox


def test_a_party_reveals_only_once_per_release():
    # The rule lives in masking_step, with the ids of the releases the party
    # has revealed for (its only state): a second request for the same
    # release (here one that would now hand over c's mask key after c's
    # self seed) is refused; another release is answered.
    names = ["a", "b", "c"]
    secrets_, release_id, roster, inbox = _masking_steps(names, 2)
    revealed = set()

    def request(alive, dropped, rid=release_id):
        message = {
            "roster": roster,
            "ciphertexts": inbox["a"],
            "alive": alive,
            "dropped": dropped,
        }
        return masking_step(
            "reveal", secrets_["a"], rid, "a", message, 2, revealed=revealed
        )

    first = request(names, [])
    assert set(first["seeds"]) == set(names) and first["keys"] == {}
    assert revealed == {release_id}
    with pytest.raises(RuntimeError, match="already answered for this release"):
        request(["a", "b"], ["c"])
    # without the state the step would answer: the refusal is the rule's
    assert (
        "c"
        in masking_step(
            "reveal",
            secrets_["a"],
            release_id,
            "a",
            {
                "roster": roster,
                "ciphertexts": inbox["a"],
                "alive": ["a", "b"],
                "dropped": ["c"],
            },
            2,
        )["keys"]
    )
    # a request listing a party alive and dropped reveals nothing
    other = new_release_id()
    with pytest.raises(ValueError, match="refuses to unmask"):
        request(["a", "c"], ["c"], rid=other)


def _reveal_request(release_id, message):
    """The coordinator's unmasking request to a party, as the federation
    delivers it (the task carries only the release id here)."""
    task = PartyTask(release_id, clipping=None, statistic="", params={})
    return PartyRequest("protocol", task, "masking", "reveal", message)


def test_each_party_reveals_once_per_federated_release(protocol_inputs):
    # After a secure release every party has recorded its one reveal; the
    # coordinator asking p0 again (now listing p3 as dropped, which would
    # hand over p3's mask key share after its self-seed share) is refused.
    fed = _federation(4, min_parties=3)
    fed.release(_request("secure"), seed_sequence=None)
    (release_id,) = protocol_inputs["release_ids"]
    assert all(release_id in AnsweredReleases(p.source.secret) for p in fed.parties)
    messages = fed.last_transcript_.messages
    (roster,) = [m.payload for m in messages if m.kind == "roster"]
    inbox = {
        m.sender: m.payload[1]
        for m in messages
        if m.kind == "encrypted_shares" and m.recipient == COORDINATOR
        if m.payload[0] == "p0"
    }
    again = {
        "roster": roster,
        "ciphertexts": inbox,
        "alive": ["p0", "p1", "p2"],
        "dropped": ["p3"],
    }
    p0 = fed.parties[0].source
    with pytest.raises(RuntimeError, match="already answered"):
        fedsk._party.answer(p0, "p0", _reveal_request(release_id, again))
    # control: without the record, the same request would be answered
    answer = fedsk._aggregation.masking_step(
        "reveal", p0.secret, release_id, "p0", again, 3, revealed=set()
    )
    assert set(answer["keys"]) == {"p3"}


def test_a_party_reveals_once_even_in_process_workers():
    # The federation delivers each step as a joblib task; under loky (the
    # default backend for n_jobs > 1) a party's steps run in worker processes.
    names = ["p0", "p1", "p2"]
    secrets_, release_id, roster, inbox = _masking_steps(names, 2)
    source = dataclasses.replace(
        _federation(3).parties[0].source, secret=secrets_["p0"]
    )

    def request(alive, dropped):
        message = {
            "roster": roster,
            "ciphertexts": inbox["p0"],
            "alive": alive,
            "dropped": dropped,
        }
        return delayed(fedsk._party.answer)(
            source, "p0", _reveal_request(release_id, message)
        )

    with parallel_config(backend="loky", n_jobs=2):
        (first,) = Parallel()([request(names, [])])
        assert set(first["seeds"]) == set(names)
        with pytest.raises(RuntimeError, match="already answered"):
            Parallel()([request(["p0", "p1"], ["p2"])])


def test_a_party_rebuilds_its_keys_from_its_secret_and_the_release_id():
    # The party keeps no key between steps: the same (secret, release id)
    # gives the same public keys and shares it can open; another release id
    # or another secret gives unrelated keys.
    secret, release_id = new_secret(), new_release_id()
    keys = MaskingParty("a", 1, secret, release_id).public_keys()
    assert masking_step("keys", secret, release_id, "a", {}, 1) == keys
    assert len(keys) == 2 and all(len(k) == 32 for k in keys) and keys[0] != keys[1]
    for other in (
        MaskingParty("a", 1, secret, new_release_id()),
        MaskingParty("a", 1, new_secret(), release_id),
    ):
        assert not set(other.public_keys()) & set(keys)


def test_shares_are_sealed_for_their_recipient_only():
    # Each party seals one pair per roster member, its own included; the
    # recipient opens it, anyone else (a peer, or the coordinator with a
    # guessed key) gets an authentication failure, and a tampered
    # ciphertext is refused. No ciphertext contains its share's bytes.
    names = ["a", "b", "c", "d"]
    parties, roster, inbox = _masking_round(names, threshold=3)
    assert all(set(inbox[name]) == set(names) for name in names)
    for recipient in names:
        held = parties[recipient].open_shares(inbox[recipient], roster)
        for sender, (key_share, seed_share) in held.items():
            ciphertext = inbox[recipient][sender]
            for value in (key_share, seed_share):
                assert value.to_bytes(_SHARE_BYTES, "big") not in ciphertext
    # what b, c and d (t = 3) opened of a's pairs gives back a's mask key
    key_shares = [
        (roster[n][0], parties[n].open_shares({"a": inbox[n]["a"]}, roster)["a"][0])
        for n in ("b", "c", "d")
    ]
    assert reconstruct_secret(key_shares).to_bytes(32, "big") == _private_bytes(
        parties["a"]._mask_key
    )
    with pytest.raises(InvalidTag):
        parties["b"].open_shares({"a": inbox["c"]["a"]}, roster)
    tampered = bytearray(inbox["b"]["a"])
    tampered[-1] ^= 1
    with pytest.raises(InvalidTag):
        parties["b"].open_shares({"a": bytes(tampered)}, roster)


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_the_coordinator_never_sees_a_plaintext(protocol_inputs, trust, delta):
    # Every array in every message of a release (not only those addressed
    # to the coordinator: it relays the sealed shares too, whose encrypted
    # bodies are read as ring elements) is compared with every party's
    # encoded statistic and noised input: none is equal, or even within
    # 2^40 of it on 0.1% of its coordinates (peer-to-peer's partial sums
    # included: each is masked by the other parties' shares).
    fed = _federation(4, min_parties=3)
    fed.release(_request(trust, delta=delta), seed_sequence=np.random.SeedSequence(0))
    plaintexts = protocol_inputs["encoded"] + protocol_inputs["inputs"]
    assert len(protocol_inputs["inputs"]) == 4
    messages = fed.last_transcript_.messages
    kinds = {m.kind for m in messages}
    if trust == "secure":
        assert {"masked_input", "encrypted_shares", "reveal"} <= kinds
    else:
        assert {"public_key", "share", "partial_sum"} == kinds
    n_checked = 0
    for message in messages:
        for array in _arrays(message.payload):
            for plain in plaintexts:
                n_checked += array.shape == plain.shape
                assert close_fraction(array, plain) < 1e-3, message.kind
    # masked inputs, or sealed shares (4 x 4) and partial sums, were compared
    assert n_checked >= 8 * (4 if trust == "secure" else 20)


@seeded
def test_peer_to_peer_shares_cross_sealed_and_no_coordinator_is_involved(
    protocol_inputs,
):
    fed = _federation(5)
    fed.release(_request("peer_to_peer"), seed_sequence=np.random.SeedSequence(1))
    transcript = fed.last_transcript_
    assert transcript.kinds() == ["public_key", "share", "partial_sum"]
    assert all(COORDINATOR not in (m.sender, m.recipient) for m in transcript.messages)
    assert transcript.seen_by(COORDINATOR) == [  # only what is public
        m for m in transcript.messages if m.recipient == "*"
    ]
    assert [m.kind for m in transcript.seen_by(COORDINATOR)] == (
        ["public_key"] * 5 + ["partial_sum"] * 5
    )
    plaintexts = protocol_inputs["encoded"] + protocol_inputs["inputs"]
    for message in transcript.messages:
        for array in _arrays(message.payload):
            for plain in plaintexts:
                assert close_fraction(array, plain) < 1e-3
    # each party receives exactly one sealed share from each party (itself
    # included); the relay cannot read them: the bodies of a party's shares,
    # summed as if they were plaintext, are far from its input, while the
    # same ciphertexts opened with the channel key (from its secret and the
    # release id) add up to it exactly
    for party in fed.party_names:
        senders = [m.sender for m in transcript.messages if m.recipient == party]
        assert sorted(senders) == fed.party_names
    (release_id,) = protocol_inputs["release_ids"]
    public = {
        m.sender: m.payload for m in transcript.messages if m.kind == "public_key"
    }
    for party, vector in zip(fed.parties, protocol_inputs["inputs"]):
        sealed = [
            m
            for m in transcript.messages
            if m.kind == "share" and m.sender == party.name
        ]
        assert all(isinstance(m.payload, bytes) for m in sealed)
        as_plain = np.sum([_sealed_body(m.payload) for m in sealed], axis=0)
        assert close_fraction(as_plain, vector) < 1e-3
        key = X25519PrivateKey.from_private_bytes(
            derive_key(party.source.secret, release_id, b"sharing channel key")
        )
        opened = np.sum(
            [
                np.frombuffer(
                    open_sealed(key, public[m.recipient], m.payload), np.uint64
                )
                for m in sealed
            ],
            axis=0,
        )
        assert_array_equal(opened.view(np.int64), vector)


def test_distributed_trust_without_noise_is_refused_before_anything_is_sent():
    # Without noise there is no grid to sum securely: the release is refused
    # (rather than summing the parties' exact statistics in the clear),
    # before any charge or protocol message.
    fed = _federation(4, min_parties=3)
    for trust in DISTRIBUTED:
        with pytest.raises(ValueError, match="in the clear"):
            fed.release(_request(trust, epsilon=INF), seed_sequence=None)
        assert fed.last_transcript_.messages == []
        assert all(p.ledger.events == [] for p in fed.parties)


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
    """The calibration of a linear_moments release of 3 features, in shares."""
    statistic = fedsk._statistics.STATISTICS["linear_moments"]
    _, _, rho = budget_share(epsilon, delta, 1.0)
    return GridEncoding.calibrate(
        statistic.shapes(D),
        statistic.sensitivity(CLIPPING, D),
        epsilon=epsilon,
        rho=rho if mechanism == "discrete_gaussian" else None,
        divisible=True,
    )


def test_more_polya_shares_than_the_threshold_add_noise():
    # Shares calibrated for m = 6 parties (shape 1/6, scale 3): any 6 add up
    # to DLap(3) exactly; 12 (more survivors than the threshold; at most
    # 2m - 1 can survive, 12 is a bound with an exact pmf) add up to the sum
    # of two independent DLap(3), twice its variance: chi-square against
    # the exact pmf of each (10^5 sums, seeded; the right distribution gives
    # p < 1e-3 for 1 seed in 1,000), and the 12 shares are rejected as
    # DLap(3) (power control: p ~ 0, far below 1e-6).
    rng = np.random.default_rng(7)
    m = 6
    first = sum(polya_laplace_share(3.0, 1 / m, N_NOISE, rng) for _ in range(m))
    second = sum(polya_laplace_share(3.0, 1 / m, N_NOISE, rng) for _ in range(m))
    support, pmf = laplace_pmf(3.0)
    assert chi_square_pvalue(first, support, pmf) > 1e-3
    twelve = first + second
    double = np.arange(2 * support[0], 2 * support[-1] + 1)
    assert chi_square_pvalue(twelve, double, np.convolve(pmf, pmf)) > 1e-3
    assert chi_square_pvalue(twelve, support, pmf) < 1e-6


@pytest.mark.parametrize("mechanism", ["discrete_laplace", "discrete_gaussian"])
def test_noise_of_k_shares_calibrated_for_m(mechanism):
    # A calibrated release with one block of 20,000 coordinates; every party
    # draws encoding.noise(rng, m) with m = 6 (the threshold), and k = 6 or
    # 10 of them survive. Variance of the total over 5 rounds = 10^5 values:
    # the relative SE of a sample variance is sqrt((kurtosis - 1) / n) <=
    # sqrt(5 / 10^5) = 0.7%, so 4% is > 5 SE, and k = 10 (10/6 = 1.67x the
    # variance) cannot pass for k = 6. Stated: noise_std(m, k), whose square
    # is k / m times the central variance (Laplace exactly; Gaussian: the
    # distributed sigma for m, whose m shares give the central variance at
    # this calibration, tau ~ 0).
    _, _, rho = budget_share(1.0, 1e-6, 1.0)
    encoding = GridEncoding.calibrate(
        [(20_000,)],
        [(1.0, 1.0)],
        epsilon=1.0,
        rho=rho if mechanism == "discrete_gaussian" else None,
    )
    assert encoding.mechanism == mechanism
    grid = encoding.step * encoding.block_scales[0]
    central_var = (encoding.noise_std()[0] / grid) ** 2
    rng = np.random.default_rng(7)
    m = 6
    assert encoding.noise_std(m, m) == encoding.noise_std(m)
    for k in (6, 10):
        total = np.concatenate(
            [sum(encoding.noise(rng, m) for _ in range(k)) for _ in range(5)]
        )
        stated_var = (encoding.noise_std(m, k)[0] / grid) ** 2
        assert stated_var == pytest.approx(k / m * central_var, rel=1e-9)
        assert total.var() == pytest.approx(stated_var, rel=0.04), k


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
    # For every number of shares N from n to 2n (n is the threshold, at
    # least a majority, so at most 2n - 1 parties survive; each adds its
    # share) the Kairouz-Liu-Steinke bound is <= rho, and sigma is the
    # smallest such (1% less breaks it for some N).
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
def test_secure_and_local_accuracy_against_central(epsilon, delta):
    # Ridge test R^2 over 10 noise seeds (same data, 20,000 rows x 10
    # features, 10 parties). eps=0.3, delta=1e-6, measured (mean, sd):
    # central 0.886 (0.018), secure 0.881 (0.021), local 0.595 (0.081);
    # secure - central Welch t = -0.6, secure - local 10.8. Equal within
    # noise: |t| < 3; beats local: t > 4 and by more than 0.1 R^2. Under
    # pure DP (eps=1) central and local noise is the L-infinity K-norm
    # mechanism's, which shares cannot carry: central 0.959 (0.002), secure
    # 0.946 (0.009), local 0.939 (0.009); central beats both (t = 4.6 and
    # 6.8). Masking and peer-to-peer sum the same noisy inputs exactly, so
    # with the same seed their coefficients are identical.
    X, y, parties, X_test, y_test = _regression()
    scores = {trust: [] for trust in ("central", "local", *DISTRIBUTED)}
    for seed in range(10):
        coefs = {}
        for trust in scores:
            model = _ridge(trust, epsilon, delta, seed).fit(X, y, parties=parties)
            scores[trust].append(model.score(X_test, y_test))
            coefs[trust] = model.estimator_.coef_
        assert_array_equal(coefs["secure"], coefs["peer_to_peer"])
    if delta == 0:
        assert _welch_t(scores["central"], scores["secure"]) > 3
        assert _welch_t(scores["central"], scores["local"]) > 3
        return
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
    # pure DP: central noise is the K-norm mechanism's (linear_moments'
    # entries are each bounded), which shares cannot carry; the shares add
    # up to the Laplace noise a central release in shares would have
    shared = central
    if delta == 0:
        shared = np.asarray(_grid("discrete_laplace", delta=0.0).noise_std())
        assert central[0] < 0.5 * shared[0]  # X^T X, most of the entries
    for trust in DISTRIBUTED:
        np.testing.assert_allclose(reported[trust], shared, rtol=1e-9)
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


@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_a_dropout_is_left_out_of_the_sum_exactly(monkeypatch, fail_parties, trust):
    # Noise patched to zero; p3 (103 rows) fails when asked for its
    # statistic, after publishing its keys. The release is exactly the sum
    # of the other three parties' encoded statistics: the masks (or shares)
    # dealt with p3 cancel.
    def zeros(self, rng, *args):
        return np.zeros(self.n_coords, dtype=np.int64)

    monkeypatch.setattr(GridEncoding, "noise", zeros)
    fail_parties(103)
    fed = _federation(4, min_parties=3)
    release = fed.release(_request(trust), seed_sequence=None)
    encoding = _grid("discrete_laplace")
    survivors = sum(
        encoding.encode(
            fedsk._statistics.STATISTICS["linear_moments"].compute(
                *CLIPPING.apply(p.X, p.y)
            )
        )
        for p in fed.parties[:3]
    )
    assert_array_equal(encoding.encode(release.blocks), survivors)


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
def test_protocols_agree_exactly_under_the_same_seed(fail_parties, delta):
    # Masking and peer-to-peer sum the same seeded noisy inputs exactly: the
    # released totals are identical, with every party and with p1 dropping
    # out (left out by both; peer-to-peer adds back the shares sealed for
    # it). Unseeded, each party's noise comes from its own secret and the
    # totals differ (control).
    totals = {}
    for dropout in (False, True):
        if dropout:
            fail_parties(101)
        for trust in DISTRIBUTED:
            fed = _federation(3, min_parties=2)
            release = fed.release(
                _request(trust, delta=delta), seed_sequence=np.random.SeedSequence(2)
            )
            totals[trust, dropout] = np.concatenate(release.blocks)
    for dropout in (False, True):
        assert_array_equal(totals["secure", dropout], totals["peer_to_peer", dropout])
    assert not np.array_equal(totals["secure", False], totals["secure", True])
    unseeded = [
        np.concatenate(
            _federation(3, min_parties=2)
            .release(_request(trust, delta=delta), seed_sequence=None)
            .blocks
        )
        for trust in DISTRIBUTED
    ]
    assert not np.array_equal(*unseeded)


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
    # p3 and p7 (103 and 107 rows) are unreachable (ConnectionError) when
    # asked for their statistic: 8 of 10 >= min_parties 6 (and the masking
    # threshold is max(6, majority 6) = 6). They are not charged; the others
    # are, with a note naming them.
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
    # budget shares are rounded down: never above the budget, by no slack
    assert 1.0 - 1e-9 < model.epsilon_spent_ <= 1.0
    (fit_ledger,) = fit_ledgers
    assert len(_moments(fit_ledger.events)) == 1
    for party in fed.parties:
        if party.name in ("p3", "p7"):
            assert _moments(party.ledger.events) == []
        else:
            (event,) = _moments(party.ledger.events)
            assert 1.0 - 1e-9 < party.ledger.spent()[0] <= 1.0
            # seeded (random_state), then the dropout: nothing else
            assert event.note == (
                "noise seeded from random_state: reproducible by whoever holds "
                "it (simulation only); left out 2 of 10 parties (p3, p7)"
            )
    assert _moments(fit_ledger.events)[0].note.endswith(
        "; left out 2 of 10 parties (p3, p7)"
    )
    text = str(model.privacy_report())
    assert "left out 2 of 10 parties (p3, p7)" in text
    messages = fed.last_transcript_.messages
    # the protocol itself saw them drop out after publishing their keys
    kind = "public_keys" if trust == "secure" else "public_key"
    assert {m.sender for m in messages if m.kind == kind} == set(fed.party_names)
    if trust == "secure":
        (request,) = [m.payload for m in messages if m.kind == "unmask_request"]
        assert sorted(request[1]) == ["p3", "p7"]
    else:
        senders = {m.sender for m in messages if m.kind == "share"}
        assert senders == set(fed.party_names) - {"p3", "p7"}


@seeded
@pytest.mark.parametrize("delta", [0.0, 1e-6])
@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_released_noise_std_is_that_of_the_survivors_shares(
    monkeypatch, fail_parties, trust, delta
):
    # min_parties 6: every party draws its share for 6 parties (the
    # threshold), whoever survives. With 7 survivors the release states
    # noise_std(6, 7) = sqrt(7/6) x the central std (more noise, never
    # less); with all 10, noise_std(6, 10).
    drawn = []
    noise = GridEncoding.noise

    def recording_noise(self, rng, n_parties=1):
        drawn.append(n_parties)
        return noise(self, rng, n_parties)

    monkeypatch.setattr(GridEncoding, "noise", recording_noise)
    encoding = _grid("discrete_gaussian" if delta else "discrete_laplace", delta=delta)
    central = np.asarray(encoding.noise_std())
    request = _request(trust, delta=delta)
    for failing, survivors in [((), 10), ((103, 107, 108), 7)]:
        fail_parties(*failing)
        drawn.clear()
        release = _federation(min_parties=6).release(
            request, seed_sequence=np.random.SeedSequence(3)
        )
        assert drawn == [6] * survivors
        np.testing.assert_allclose(
            release.noise_std, encoding.noise_std(6, survivors), rtol=1e-12
        )
        np.testing.assert_allclose(
            release.noise_std, math.sqrt(survivors / 6) * central, rtol=1e-9
        )


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
    assert "party 'p1': ConnectionError: party offline" in message
    assert not hasattr(model, "estimator_")
    (fit_ledger,) = fit_ledgers
    assert _moments(fit_ledger.events) == []
    for party in fed.parties:
        assert _moments(party.ledger.events) == []
    # the survivors sent masked inputs or nothing, and nothing that could
    # unmask them was sent: no unmasking request, no share relayed
    kinds = fed.last_transcript_.kinds()
    assert not {"unmask_request", "reveal", "share", "partial_sum"} & set(kinds)
    if trust == "secure":
        masked = [m for m in fed.last_transcript_.messages if m.kind == "masked_input"]
        assert len(masked) == 7


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


@pytest.mark.parametrize("trust", ["central", *DISTRIBUTED])
def test_a_failure_computing_on_its_rows_stays_charged_and_quotes_nothing(
    fail_parties, trust
):
    # p3 and p7 raise inside the statistic (an error that depends on their
    # rows, with a detail it could quote): unlike an unreachable party they
    # stay charged, their error crosses as its type only, and below the
    # threshold the others are refunded. Above it (min_parties 8) the
    # release goes on, every party is charged, the note names p3 and p7.
    fail_parties(103, 107, error=RuntimeError("row 17 holds 42.5"))
    fed = _federation()
    ledger = BudgetLedger("fit", epsilon=1.0)
    with pytest.raises(PartyError, match="needs 10 of 10 parties") as error:
        fed.release(_request(trust), seed_sequence=None, fit_ledger=ledger)
    message = str(error.value)
    assert (
        "party 'p3': RuntimeError while computing its statistic (the details "
        "stay with the party)" in message
    )
    assert "42.5" not in message and "row 17" not in message
    assert "Parties ['p3', 'p7'] stay charged" in message
    for party in fed.parties:
        assert len(party.ledger.events) == (party.name in ("p3", "p7"))
    assert ledger.events == []
    fed = _federation(min_parties=8)
    fed.release(_request(trust), seed_sequence=None)
    for party in fed.parties:
        (event,) = party.ledger.events
        assert event.note == "left out 2 of 10 parties (p3, p7)"


@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_a_timeout_is_unreachable_and_not_charged(fail_parties, trust):
    fail_parties(105, error=TimeoutError("no answer in 5 s"))
    fed = _federation()
    with pytest.raises(PartyError) as error:
        fed.release(_request(trust), seed_sequence=None)
    assert "party 'p5': TimeoutError: no answer in 5 s" in str(error.value)
    assert "Nothing was released or charged" in str(error.value)
    assert all(p.ledger.events == [] for p in fed.parties)


def test_the_dropout_note_lands_on_the_release_that_had_the_dropout(fail_parties):
    # Unseeded, so the two releases' events are identical but for the note.
    fed = _federation(4, min_parties=3)
    model = FederatedEstimator(
        Ridge(),
        epsilon=1.0,
        bounds=(-1, 1),
        y_bounds=(-3, 3),
        trust="secure",
        n_jobs=1,
    )
    model.fit(fed)  # everybody answers
    fail_parties(103)
    model.fit(fed)  # p3 drops out
    notes = [event.note for event in _moments(fed.parties[0].ledger.events)]
    assert notes == ["", "left out 1 of 4 parties (p3)"]
    assert len(_moments(fed.parties[3].ledger.events)) == 1  # unreachable: not charged


# -- 6. overflow and validation --------------------------------------------------


@pytest.mark.parametrize("trust", ["central", *DISTRIBUTED])
def test_a_party_beyond_max_rows_is_refused_and_stays_charged(monkeypatch, trust):
    # Pretend the encoding can only take 104 rows per party: p5..p9 have
    # more. Each refuses on its own side (its row count may only be known
    # there), so the release fails naming them, with a message that quotes
    # the public cap but not their counts. Whether a party refuses depends
    # on its rows, so p5..p9 stay charged; p0..p4 and the fit are refunded.
    monkeypatch.setattr(GridEncoding, "max_rows", lambda self, n_parties: 104)
    fed = _federation()
    ledger = BudgetLedger("fit", epsilon=1.0)
    with pytest.raises(PartyError) as error:
        fed.release(_request(trust), seed_sequence=None, fit_ledger=ledger)
    message = str(error.value)
    assert "party 'p5': it holds more rows than the 104 allowed" in message
    assert "overflow" in message
    assert "party 'p4'" not in message
    assert not any(str(rows) in message for rows in range(105, 110))
    assert "Parties ['p5', 'p6', 'p7', 'p8', 'p9'] stay charged" in message
    assert ledger.events == []
    for party in fed.parties:
        assert len(party.ledger.events) == (party.name >= "p5")


@pytest.mark.parametrize("trust", DISTRIBUTED)
def test_parties_beyond_max_rows_are_left_out_above_min_parties(monkeypatch, trust):
    # max_rows 106: p7, p8, p9 refuse; 7 of 10 >= min_parties 6 go on.
    # Everybody is charged (p7..p9 because their refusal depends on their
    # rows), and every event notes the three left out.
    monkeypatch.setattr(GridEncoding, "max_rows", lambda self, n_parties: 106)
    fed = _federation(min_parties=6)
    release = fed.release(_request(trust), seed_sequence=None)
    encoding = _grid("discrete_laplace")
    np.testing.assert_allclose(release.noise_std, encoding.noise_std(6, 7))
    for party in fed.parties:
        (event,) = party.ledger.events
        assert event.note == "left out 3 of 10 parties (p7, p8, p9)"


def _worst_case_sum(mechanism, n_parties, record_steps=1.0):
    """n parties at max_rows, every record at full sensitivity, worst noise.

    A hand-built encoding with a very fine grid (step 2^-40) so that
    max_rows is a few million and the bound can be reached; a record moves a
    coordinate by ``record_steps`` grid units (a block with more than an
    equal budget share). Returns the party vectors and their true sum as
    Python integers.
    """
    encoding = GridEncoding(
        mechanism, ((2,),), (1.0,), 2.0**-40, 2.0**40 + 1, 3.0, record_steps
    )
    rows = encoding.max_rows(n_parties)
    noise = (95 if mechanism == "discrete_laplace" else 14) * 3 + 1
    total = rows * record_steps
    with np.errstate(invalid="ignore"):  # the defect below: 2^63 does not cast
        encoded = encoding.encode([np.array([total, -total], dtype=float)])
    party = encoded + np.array([noise, -noise])
    vectors = {f"p{i}": party for i in range(n_parties)}
    true = [n_parties * (round(total / 2.0**-40) + noise), 0]
    true[1] = -true[0]
    return vectors, true


@pytest.mark.parametrize("record_steps", [1.0, 1.8])
@pytest.mark.parametrize("n_parties", [3, 10])
@pytest.mark.parametrize("mechanism", ["discrete_laplace", "discrete_gaussian"])
def test_max_rows_keeps_the_worst_case_sum_in_int64(n_parties, mechanism, record_steps):
    # The sum of n parties of max_rows records, each record moving every
    # coordinate by its full sensitivity, plus the noise allowance of
    # max_rows (95 Laplace scales, 14 Gaussian sigmas), stays in int64 and
    # the ring sum is exact; with twice the rows it leaves int64 and the
    # ring sum wraps, which is why the bound is enforced.
    vectors, true = _worst_case_sum(mechanism, n_parties, record_steps)
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


def test_unknown_trust_is_refused_by_the_federation():
    fed = _federation(2)
    with pytest.raises(ValueError, match="trust must be one of"):
        fed.release(_request("bogus"), seed_sequence=np.random.SeedSequence(0))
