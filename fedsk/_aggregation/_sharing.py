"""Peer-to-peer aggregation by additive secret sharing: no coordinator.

Each party splits its encoded statistic into one uniformly random share per
peer (modulo 2^64) plus a remainder it keeps, sends each share straight to
that peer, adds up what it receives, and publishes only that partial sum.
The total is the sum of the partial sums. Any set of parties short of all
others learns nothing about a party's statistic beyond the total; there is
no coordinator, so nobody holds more than a peer could.
"""

from ._messages import EVERYONE, Transcript
from ._ring import from_ring, ring_sum, to_ring, uniform_ring


def shared_sum(vectors, transcript=None):
    """The sum of parties' int64 vectors by additive secret sharing.

    Parameters
    ----------
    vectors : dict of str to ndarray of int64 or None
        ``None`` for a party that dropped out before sharing (it is left
        out of the sum).
    transcript : Transcript, default=None
        Receives every message.

    Returns
    -------
    total : ndarray of int64
    """
    transcript = Transcript() if transcript is None else transcript
    alive = [name for name, vector in vectors.items() if vector is not None]
    received = {name: [] for name in alive}
    for name in alive:
        remainder = to_ring(vectors[name]).copy()
        for peer in alive:
            if peer != name:
                share = uniform_ring(len(remainder))
                remainder -= share
                received[peer].append(transcript.send(name, peer, "share", share))
        received[name].append(remainder)
    partials = [
        transcript.send(name, EVERYONE, "partial_sum", ring_sum(received[name]))
        for name in alive
    ]
    return from_ring(ring_sum(partials))
