"""Peer-to-peer aggregation by additive secret sharing: no trusted server.

Each party splits its noisy encoded statistic into one uniformly random
share per peer (modulo 2^64) plus a remainder for itself, and seals each
share for its recipient with a key agreed with it (X25519, then
ChaCha20-Poly1305): whoever relays the messages sees only ciphertexts. Each
party adds up the shares it receives and publishes only that partial sum;
the total is the sum of the partial sums. Any set of parties short of all
others learns nothing about a party's statistic beyond the total.

Steps, each run in the party's own task (its keys are re-derived from its
own secret every time):

1. ``keys``: publish a channel public key for this release.
2. ``contribute``: send the sealed shares, one per roster member.
3. ``partial``: open the shares addressed to it and publish their sum.

A party that fails to send its shares is left out: the coordinator names
it in the ``partial`` step, and every other party adds back the share it had
sealed for it (each share is drawn from a key the party derives from its own
secret, so it can draw it again). A party that fails after that leaves
shares nobody else can open, and the release aborts.
"""

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ..privacy import derive_key, new_release_id, new_secret
from ._channels import open_sealed, seal
from ._masking import (
    SecureAggregationAbort,
    _public_bytes,
    _require,
    answer_once,
    prg,
)
from ._messages import EVERYONE, Transcript
from ._ring import from_ring, ring_sum, to_ring


def sharing_step(
    step, secret, release_id, name, message, threshold, vector=None, revealed=None
):
    """Run one step of peer-to-peer sharing on a party's side.

    Parameters
    ----------
    step : {"keys", "contribute", "partial"}
    secret : bytes
        The party's own secret.
    release_id : str
    name : str
    message : dict
        ``roster`` (contribute, partial: ``{name: channel public key}``),
        ``ciphertexts`` (partial: the shares sealed for this party) and
        ``dropped`` (partial: roster members that sent no shares).
    threshold : int
        The release's public threshold, as the party knows it (from the
        request it accepted): the fewest parties whose shares it sums.
    revealed : set or AnsweredReleases, default=None
        The ids of the releases this party has published a partial sum for
        (its only state); a second request for one release is refused.
    vector : ndarray of int64, default=None
        The party's noisy encoded statistic (contribute).

    Returns
    -------
    The public key (keys); ``{peer: sealed share}`` (contribute); the sum
    of the received shares modulo 2^64 (partial).
    """
    key = X25519PrivateKey.from_private_bytes(
        derive_key(secret, release_id, b"sharing channel key")
    )
    if step == "keys":
        return _public_bytes(key)
    roster = message["roster"]

    def share_for(peer, size):
        return prg(derive_key(secret, release_id, b"share for " + peer.encode()), size)

    if step == "contribute":
        remainder = to_ring(vector).copy()
        sealed = {}
        for peer, public in roster.items():
            if peer != name:
                share = share_for(peer, len(remainder))
                remainder -= share
                sealed[peer] = seal(key, public, share.tobytes())
        sealed[name] = seal(key, roster[name], remainder.tobytes())
        return sealed
    if step == "partial":
        senders = set(roster) - set(message["dropped"])
        if set(message["ciphertexts"]) != senders or len(senders) < threshold:
            raise ValueError(
                f"Party {name!r} refuses a partial sum that is not over the shares "
                f"of every remaining party, at least {threshold} of them."
            )
        answer_once(revealed, release_id, name)
        shares = [
            np.frombuffer(open_sealed(key, roster[sender], sealed), dtype=np.uint64)
            for sender, sealed in message["ciphertexts"].items()
        ]
        size = len(shares[0])
        shares += [share_for(peer, size) for peer in message["dropped"]]
        return ring_sum(shares)
    raise ValueError(f"Unknown sharing step {step!r}.")


def run_sharing(run, names, threshold, transcript):
    """Relay the parties' steps and add up their partial sums.

    Parameters
    ----------
    run : callable
        ``run(step, {name: message}) -> {name: answer}`` (a party that
        failed is absent from the answers).
    names : list of str
    threshold : int
        Fewest parties whose statistics the sum may hold.
    transcript : Transcript

    Returns
    -------
    total : ndarray of int64
    members : list of str
        The parties whose statistics are in the total.

    Raises
    ------
    SecureAggregationAbort
        If fewer than ``threshold`` parties send their shares, or a party
        fails after sending them.
    """
    keys = run("keys", {name: {} for name in names})
    roster = {n: transcript.send(n, EVERYONE, "public_key", keys[n]) for n in keys}
    _require(len(roster), len(names), threshold, "sent their keys")
    sealed = run("contribute", {name: {"roster": roster} for name in roster})
    alive = [name for name in roster if name in sealed]
    dropped = [name for name in roster if name not in sealed]
    _require(len(alive), len(names), threshold, "sent their shares")
    inbox = {name: {} for name in alive}
    for sender, shares in sealed.items():
        for peer, ciphertext in shares.items():
            if peer in inbox:
                inbox[peer][sender] = transcript.send(sender, peer, "share", ciphertext)
    partials = run(
        "partial",
        {
            name: {"roster": roster, "ciphertexts": inbox[name], "dropped": dropped}
            for name in alive
        },
    )
    missing = [name for name in alive if name not in partials]
    if missing:
        raise SecureAggregationAbort(
            f"Parties {missing} failed before they published their partial sums, "
            "holding shares nobody else can open; no sum was output."
        )
    for name, partial in partials.items():
        transcript.send(name, EVERYONE, "partial_sum", partial)
    return from_ring(ring_sum(list(partials.values()))), alive


def shared_sum(vectors, transcript=None):
    """The sum of int64 vectors by additive sharing, every party in this process.

    Parameters
    ----------
    vectors : dict of str to ndarray of int64 or None
        ``None`` for a party that drops out before the roster is set (it is
        left out of the sum).
    transcript : Transcript, default=None

    Returns
    -------
    total : ndarray of int64
    """
    transcript = Transcript() if transcript is None else transcript
    release_id = new_release_id()
    secrets_ = {name: new_secret() for name in vectors}

    def run(step, messages):
        return {
            name: sharing_step(
                step, secrets_[name], release_id, name, message, 1, vectors[name]
            )
            for name, message in messages.items()
        }

    members = [n for n, v in vectors.items() if v is not None]
    return run_sharing(run, members, 1, transcript)[0]
