"""Secure aggregation by pairwise masks, with dropout recovery, simulated.

The protocol of Bonawitz et al. (2017), for honest-but-curious parties and
coordinator:

1. Every party makes two fresh X25519 key pairs for this round (one for its
   masks, one for its channels to peers) and a fresh 256-bit self-mask seed,
   and publishes the public keys through the coordinator.
2. It splits its mask private key and its self-mask seed into Shamir shares
   (threshold ``t``) and sends one pair of shares to each peer, encrypted
   with a key agreed with that peer (ChaCha20-Poly1305), through the
   coordinator, which sees only ciphertexts.
3. It sends ``x + PRG(self seed) + sum_{j} +-PRG(s_ij)`` modulo 2^64, with
   ``s_ij`` the key agreed with peer ``j`` (``+`` towards peers after it in
   the roster, ``-`` towards peers before). Pairwise masks cancel in the
   sum; each vector alone is uniform.
4. The coordinator announces who sent (alive) and who did not (dropped).
   Each surviving party reveals, for every alive party, its share of the
   self-mask seed, and for every dropped party, its share of the mask key,
   never both for one party (a request that lists a party as both alive and
   dropped is refused), and only once per round.
5. With at least ``t`` reveals the coordinator removes the self masks and
   the dropped parties' pairwise masks and obtains the sum; below ``t`` it
   aborts with no output.

PRG: the ChaCha20 keystream of a seed derived by HKDF-SHA256.

References
----------
.. [1] K. Bonawitz et al., "Practical secure aggregation for
   privacy-preserving machine learning", CCS 2017.
"""

import secrets

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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


def _derive(shared, purpose):
    return HKDF(hashes.SHA256(), 32, salt=None, info=purpose).derive(shared)


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
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return prg(_derive(shared, b"fedsk pairwise mask"), size)


class MaskingParty:
    """One party's side of a round: its secrets never leave this object.

    Parameters
    ----------
    name : str
    index : int
        Its position in the roster, from 1 (its Shamir x-coordinate).
    """

    def __init__(self, name, index):
        self.name = name
        self.index = index
        self._mask_key = X25519PrivateKey.generate()
        self._channel_key = X25519PrivateKey.generate()
        self._self_seed = secrets.token_bytes(32)
        self._held = {}  # peer -> (share of its mask key, of its self seed)
        self._revealed = False

    def public_keys(self):
        """The two public keys to advertise."""
        return _public_bytes(self._mask_key), _public_bytes(self._channel_key)

    def _channel(self, peer_channel_public):
        shared = self._channel_key.exchange(
            X25519PublicKey.from_public_bytes(peer_channel_public)
        )
        return ChaCha20Poly1305(_derive(shared, b"fedsk channel"))

    def encrypted_shares(self, roster, threshold):
        """Shares of this party's secrets, encrypted for each peer."""
        n = len(roster)
        key = int.from_bytes(_private_bytes(self._mask_key), "big")
        seed = int.from_bytes(self._self_seed, "big")
        key_shares = share_secret(key, n, threshold)
        seed_shares = share_secret(seed, n, threshold)
        out = {}
        for peer, (index, _, channel_public) in roster.items():
            share = (key_shares[index - 1][1], seed_shares[index - 1][1])
            if peer == self.name:
                self._held[peer] = share
                continue
            plain = b"".join(v.to_bytes(_SHARE_BYTES, "big") for v in share)
            nonce = secrets.token_bytes(12)
            out[peer] = nonce + self._channel(channel_public).encrypt(
                nonce, plain, None
            )
        return out

    def receive_shares(self, sender, ciphertext, roster):
        """Decrypt and keep a peer's shares."""
        nonce, body = ciphertext[:12], ciphertext[12:]
        plain = self._channel(roster[sender][2]).decrypt(nonce, body, None)
        self._held[sender] = (
            int.from_bytes(plain[:_SHARE_BYTES], "big"),
            int.from_bytes(plain[_SHARE_BYTES:], "big"),
        )

    def masked_input(self, vector, roster):
        """``vector`` (int64) plus its self mask and pairwise masks, mod 2^64."""
        size = len(vector)
        masked = to_ring(vector) + prg(self._self_seed, size)
        for peer, (index, mask_public, _) in roster.items():
            if peer == self.name:
                continue
            mask = _pairwise_mask(self._mask_key, mask_public, size)
            if self.index < index:
                masked += mask
            else:
                masked -= mask
        return masked

    def reveal(self, alive, dropped):
        """Shares to unmask: self-seed shares of ``alive``, key shares of ``dropped``.

        Raises
        ------
        ValueError
            If a party is listed as both alive and dropped (revealing both
            of its shares would expose its input).
        RuntimeError
            On a second request in the same round.
        """
        both = set(alive) & set(dropped)
        if both:
            raise ValueError(
                f"Party {self.name!r} refuses to unmask: {sorted(both)} listed as "
                "both alive and dropped."
            )
        if self._revealed:
            raise RuntimeError(f"Party {self.name!r} has already revealed this round.")
        self._revealed = True
        return {
            "seeds": {p: self._held[p][1] for p in alive if p in self._held},
            "keys": {p: self._held[p][0] for p in dropped if p in self._held},
        }


def masked_sum(vectors, threshold, transcript=None, leave_before_reveal=()):
    """The sum of parties' int64 vectors, with no party's vector revealed.

    Parameters
    ----------
    vectors : dict of str to ndarray of int64 or None
        Every party of the round; ``None`` for a party that drops out after
        sharing its secrets, before sending its masked input.
    threshold : int
        Fewest surviving parties with which the sum is output.
    transcript : Transcript, default=None
        Receives every message.
    leave_before_reveal : iterable of str, default=()
        Parties that send their input but drop out before unmasking.

    Returns
    -------
    total : ndarray of int64
        The sum of the non-``None`` vectors.

    Raises
    ------
    SecureAggregationAbort
        If fewer than ``threshold`` parties send their input or reveal.
    """
    transcript = Transcript() if transcript is None else transcript
    names = list(vectors)
    parties = {name: MaskingParty(name, i + 1) for i, name in enumerate(names)}
    roster = {}
    for name, party in parties.items():
        keys = transcript.send(name, COORDINATOR, "public_keys", party.public_keys())
        roster[name] = (party.index, *keys)
    transcript.send(COORDINATOR, EVERYONE, "roster", roster)
    for name, party in parties.items():
        for peer, ciphertext in party.encrypted_shares(roster, threshold).items():
            # relayed by the coordinator, which sees only the ciphertext
            transcript.send(name, COORDINATOR, "encrypted_shares", (peer, ciphertext))
            transcript.send(COORDINATOR, peer, "encrypted_shares", ciphertext)
            parties[peer].receive_shares(name, ciphertext, roster)

    masked = {}
    for name, vector in vectors.items():
        if vector is not None:
            masked[name] = transcript.send(
                name,
                COORDINATOR,
                "masked_input",
                parties[name].masked_input(vector, roster),
            )
    alive = list(masked)
    dropped = [n for n in names if n not in masked]
    if len(alive) < threshold:
        raise SecureAggregationAbort(
            f"Only {len(alive)} of {len(names)} parties sent their input, below "
            f"the threshold {threshold}; no sum was output."
        )
    transcript.send(COORDINATOR, EVERYONE, "unmask_request", (alive, dropped))
    reveals = {}
    for name in alive:
        if name not in leave_before_reveal:
            reveals[name] = transcript.send(
                name, COORDINATOR, "reveal", parties[name].reveal(alive, dropped)
            )
    if len(reveals) < threshold:
        raise SecureAggregationAbort(
            f"Only {len(reveals)} parties answered the unmasking request, below "
            f"the threshold {threshold}; no sum was output."
        )
    return from_ring(_unmask(masked, alive, dropped, reveals, roster))


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
