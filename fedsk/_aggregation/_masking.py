"""Secure aggregation by pairwise masks, with dropout recovery.

The protocol of Bonawitz et al. (2017), for honest-but-curious parties and
coordinator. The party's steps run in the party's own task (its process, or
its worker): the coordinator only relays and sums.

1. ``keys``: every party derives, from its own secret and the release id,
   two X25519 key pairs (one for its masks, one for its channels to peers)
   and a 256-bit self-mask seed, and publishes the public keys through the
   coordinator, who announces the roster.
2. ``share``: it sends Shamir shares (threshold ``t``) of its mask key and
   self seed, one pair per roster member, encrypted for that member
   (ChaCha20-Poly1305 under a key agreed with it); the coordinator sees
   only ciphertexts, and announces who shared.
3. ``contribute``: the party computes its noisy encoded statistic and sends
   ``x + PRG(self seed) + sum_{j} +-PRG(s_ij)`` modulo 2^64 over the peers
   ``j`` that shared, with ``s_ij`` the key agreed with ``j`` (``+``
   towards peers after it in the roster, ``-`` towards peers before).
   Pairwise masks cancel in the sum; each vector alone is uniform.
4. ``reveal``: the coordinator announces who sent (alive) and who did not
   (dropped), and relays to each surviving party the ciphertexts addressed
   to it. The party decrypts them and reveals, for every alive party, its
   share of the self-mask seed, and for every dropped party, its share of
   the mask key, never both for one party (a request that lists a party as
   both alive and dropped is refused), and only once per release.
5. With at least ``t`` reveals the coordinator removes the self masks and
   the dropped parties' pairwise masks and obtains the sum; below ``t`` it
   aborts with no output.

A party keeps no state between steps but the ids of the releases it has
revealed for (:class:`AnsweredReleases`, kept where it runs): its keys are
re-derived from its secret at every step.

PRG: the ChaCha20 keystream of a seed derived by HKDF-SHA256.

References
----------
.. [1] K. Bonawitz et al., "Practical secure aggregation for
   privacy-preserving machine learning", CCS 2017.
"""

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ..privacy import derive_key, new_release_id, new_secret
from ._channels import agreed_key, open_sealed, seal
from ._messages import COORDINATOR, EVERYONE, Transcript
from ._ring import from_ring, ring_sum, to_ring
from ._shamir import PRIME, reconstruct_secret, share_secret

_SHARE_BYTES = (PRIME.bit_length() + 7) // 8
_RAW = {"encoding": serialization.Encoding.Raw}


class SecureAggregationAbort(RuntimeError):
    """Too few parties survived to unmask the sum; nothing was output."""


def prg(seed, size):
    """``size`` pseudo-random elements of Z / 2^64 expanded from a 32-byte seed."""
    cipher = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    return np.frombuffer(cipher.update(bytes(8 * size)), dtype=np.uint64).copy()


def _public_bytes(private):
    return private.public_key().public_bytes(
        **_RAW, format=serialization.PublicFormat.Raw
    )


def _private_bytes(private):
    return private.private_bytes(
        **_RAW,
        format=serialization.PrivateFormat.Raw,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _pairwise_mask(private, peer_public, size):
    return prg(agreed_key(private, peer_public, b"fedsk pairwise mask"), size)


class MaskingParty:
    """One party's side of a release; its secrets never leave this object.

    Everything is derived from the party's own secret and the release id,
    so each step can rebuild it in a fresh task.

    Parameters
    ----------
    name : str
    index : int
        Its position in the roster, from 1 (its Shamir x-coordinate).
    secret : bytes
        The party's own secret (see :func:`fedsk.privacy.new_secret`).
    release_id : str
        Public id of the release.
    """

    def __init__(self, name, index, secret, release_id):
        self.name = name
        self.index = index
        self._mask_key = X25519PrivateKey.from_private_bytes(
            derive_key(secret, release_id, b"mask key")
        )
        self._channel_key = X25519PrivateKey.from_private_bytes(
            derive_key(secret, release_id, b"mask channel key")
        )
        self._self_seed = derive_key(secret, release_id, b"self mask")

    def public_keys(self):
        """The two public keys to advertise."""
        return _public_bytes(self._mask_key), _public_bytes(self._channel_key)

    def encrypted_shares(self, roster, threshold):
        """Shares of this party's secrets, encrypted for each roster member.

        Its own pair is encrypted to itself too, and comes back with the
        unmasking request, so the party keeps nothing between steps.
        """
        n = len(roster)
        key = int.from_bytes(_private_bytes(self._mask_key), "big")
        seed = int.from_bytes(self._self_seed, "big")
        key_shares = share_secret(key, n, threshold)
        seed_shares = share_secret(seed, n, threshold)
        out = {}
        for peer, (index, _, channel_public) in roster.items():
            share = (key_shares[index - 1][1], seed_shares[index - 1][1])
            plain = b"".join(v.to_bytes(_SHARE_BYTES, "big") for v in share)
            out[peer] = seal(self._channel_key, channel_public, plain)
        return out

    def open_shares(self, ciphertexts, roster):
        """Decrypt the shares peers sent this party: ``{sender: (key, seed)}``."""
        held = {}
        for sender, ciphertext in ciphertexts.items():
            plain = open_sealed(self._channel_key, roster[sender][2], ciphertext)
            held[sender] = (
                int.from_bytes(plain[:_SHARE_BYTES], "big"),
                int.from_bytes(plain[_SHARE_BYTES:], "big"),
            )
        return held

    def masked_input(self, vector, roster, members):
        """``vector`` (int64) plus its self mask and its pairwise masks with
        ``members`` (the parties that shared), mod 2^64."""
        size = len(vector)
        masked = to_ring(vector) + prg(self._self_seed, size)
        for peer, (index, mask_public, _) in roster.items():
            if peer == self.name or peer not in members:
                continue
            mask = _pairwise_mask(self._mask_key, mask_public, size)
            if self.index < index:
                masked += mask
            else:
                masked -= mask
        return masked

    def reveal(self, ciphertexts, roster, alive, dropped):
        """Shares to unmask: self-seed shares of ``alive``, key shares of ``dropped``.

        Raises
        ------
        ValueError
            If a party is listed as both alive and dropped (revealing both
            of its shares would expose its input).
        """
        both = set(alive) & set(dropped)
        if both:
            raise ValueError(
                f"Party {self.name!r} refuses to unmask: {sorted(both)} listed as "
                "both alive and dropped."
            )
        held = self.open_shares(ciphertexts, roster)
        return {
            "seeds": {p: held[p][1] for p in alive if p in held},
            "keys": {p: held[p][0] for p in dropped if p in held},
        }


def masking_step(
    step, secret, release_id, name, message, threshold, vector=None, revealed=None
):
    """Run one step of the protocol on a party's side.

    Parameters
    ----------
    step : {"keys", "share", "contribute", "reveal"}
    secret : bytes
        The party's own secret.
    release_id : str
    name : str
        The party's name.
    message : dict
        What the coordinator sent for this step: ``roster`` (share);
        ``roster`` and ``members`` (contribute); ``roster``, ``ciphertexts``
        (addressed to this party), ``alive`` and ``dropped`` (reveal).
    threshold : int
        The release's public threshold, as the party knows it (from the
        request it accepted, not from the coordinator's protocol messages):
        its Shamir threshold, and the fewest alive parties it unmasks for.
    vector : ndarray of int64, default=None
        The party's noisy encoded statistic (contribute).
    revealed : set or AnsweredReleases, default=None
        The ids of the releases this party has revealed for (its only
        state); a second unmasking request for one release is refused.

    Returns
    -------
    The public keys (keys); the encrypted shares (share); the masked vector
    (contribute); the revealed shares (reveal).
    """
    roster = message.get("roster", {})
    index = roster[name][0] if name in roster else 0
    party = MaskingParty(name, index, secret, release_id)
    if step == "keys":
        return party.public_keys()
    if step == "share":
        return party.encrypted_shares(roster, threshold)
    if step == "contribute":
        return party.masked_input(vector, roster, message["members"])
    if step == "reveal":
        if len(message["alive"]) < threshold:
            raise ValueError(
                f"Party {name!r} refuses to unmask for fewer than {threshold} "
                "alive parties."
            )
        shares = party.reveal(
            message["ciphertexts"], roster, message["alive"], message["dropped"]
        )
        answer_once(revealed, release_id, name)
        return shares
    raise ValueError(f"Unknown masking step {step!r}.")


def answer_once(revealed, release_id, name):
    """Record that the party answered the final step of ``release_id``; refuse
    a second time (two answers to different final messages could expose its
    input). ``revealed`` is the party's own record (None: not kept)."""
    if revealed is None:
        return
    if release_id in revealed:
        raise RuntimeError(f"Party {name!r} has already answered for this release.")
    try:
        revealed.add(release_id)  # atomic where the record is kept in files
    except RuntimeError:
        raise RuntimeError(
            f"Party {name!r} has already answered for this release."
        ) from None


def run_masking(run, names, threshold, transcript):
    """The coordinator's side: drive the parties' steps and unmask the sum.

    Parameters
    ----------
    run : callable
        ``run(step, {name: message}) -> {name: answer}``: delivers each
        message to that party's side and returns the answers of those that
        answered (a party that failed is absent).
    names : list of str
        The parties of the release, in roster order.
    threshold : int
        Fewest surviving parties with which the sum is output.
    transcript : Transcript
        Receives every message.

    Returns
    -------
    total : ndarray of int64
        The sum of the vectors of the parties that contributed.
    alive : list of str
        Those parties.

    Raises
    ------
    SecureAggregationAbort
        If fewer than ``threshold`` parties send their input or reveal.
    """
    keys = run("keys", {name: {} for name in names})
    roster = {}
    for i, name in enumerate(n for n in names if n in keys):
        transcript.send(name, COORDINATOR, "public_keys", keys[name])
        roster[name] = (i + 1, *keys[name])
    transcript.send(COORDINATOR, EVERYONE, "roster", roster)
    _require(len(roster), len(names), threshold, "sent their keys")
    shared = run("share", {name: {"roster": roster} for name in roster})
    members = [n for n in roster if n in shared]
    _require(len(members), len(roster), threshold, "sent their shares")
    inbox = {name: {} for name in roster}
    for name, shares in shared.items():
        for peer, ciphertext in shares.items():
            # relayed by the coordinator, which sees only the ciphertext
            transcript.send(name, COORDINATOR, "encrypted_shares", (peer, ciphertext))
            inbox[peer][name] = ciphertext
    transcript.send(COORDINATOR, EVERYONE, "members", members)
    sent = run(
        "contribute", {name: {"roster": roster, "members": members} for name in members}
    )
    masked = {
        name: transcript.send(name, COORDINATOR, "masked_input", sent[name])
        for name in members
        if name in sent
    }
    alive = [n for n in members if n in masked]
    dropped = [n for n in members if n not in masked]
    _require(len(alive), len(roster), threshold, "sent their input")
    transcript.send(COORDINATOR, EVERYONE, "unmask_request", (alive, dropped))
    for name in alive:
        for ciphertext in inbox[name].values():
            transcript.send(COORDINATOR, name, "encrypted_shares", ciphertext)
    reveals = run(
        "reveal",
        {
            name: {
                "roster": roster,
                "ciphertexts": inbox[name],
                "alive": alive,
                "dropped": dropped,
            }
            for name in alive
        },
    )
    for name, reveal in reveals.items():
        transcript.send(name, COORDINATOR, "reveal", reveal)
    _require(len(reveals), len(roster), threshold, "answered the unmasking request")
    return from_ring(_unmask(masked, alive, dropped, reveals, roster)), alive


def _require(count, total, threshold, what):
    if count < threshold:
        raise SecureAggregationAbort(
            f"Only {count} of {total} parties {what}, below the threshold "
            f"{threshold}; no sum was output."
        )


def masked_sum(vectors, threshold, transcript=None, leave_before_reveal=()):
    """The sum of int64 vectors by the protocol, every party in this process.

    Each party gets a fresh secret; the steps are those the federation runs
    in the parties' own tasks.

    Parameters
    ----------
    vectors : dict of str to ndarray of int64 or None
        Every party of the release; ``None`` for a party that drops out
        after sending its keys, before sending its masked input.
    threshold : int
    transcript : Transcript, default=None
    leave_before_reveal : iterable of str, default=()
        Parties that send their input but drop out before unmasking.

    Returns
    -------
    total : ndarray of int64
    """
    transcript = Transcript() if transcript is None else transcript
    release_id = new_release_id()
    secrets_ = {name: new_secret() for name in vectors}
    gone = {"contribute": {n for n, v in vectors.items() if v is None}}
    gone["reveal"] = set(leave_before_reveal)

    def run(step, messages):
        return {
            name: masking_step(
                step,
                secrets_[name],
                release_id,
                name,
                message,
                threshold,
                vectors[name],
                set(),
            )
            for name, message in messages.items()
            if name not in gone.get(step, ())
        }

    return run_masking(run, list(vectors), threshold, transcript)[0]


def _unmask(masked, alive, dropped, reveals, roster):
    """The coordinator's side: remove self masks and dropped parties' masks."""
    total = ring_sum(list(masked.values()))
    size = len(total)

    def secret_of(party, kind):
        shares = [
            (roster[holder][0], reveal[kind][party])
            for holder, reveal in reveals.items()
            if party in reveal[kind]
        ]
        return reconstruct_secret(shares)

    for name in alive:
        total -= prg(secret_of(name, "seeds").to_bytes(32, "big"), size)
    for gone in dropped:
        key = X25519PrivateKey.from_private_bytes(
            secret_of(gone, "keys").to_bytes(32, "big")
        )
        for name in alive:
            mask = _pairwise_mask(key, roster[name][1], size)
            # `name` added +mask if it comes before `gone` in the roster
            if roster[name][0] < roster[gone][0]:
                total -= mask
            else:
                total += mask
    return total
