"""Aggregation under Paillier encryption (optional: the ``phe`` package).

One party (the key holder) makes a key pair and publishes the public key;
every party encrypts its encoded statistic coordinate by coordinate; the
coordinator multiplies the ciphertexts (adding the plaintexts) and sends the
encrypted total to the key holder, who decrypts and publishes it. The
coordinator sees only ciphertexts; the key holder sees only the total.
Encryption costs milliseconds per coordinate, against nanoseconds for
masking (``benchmarks/RESULTS.md``), so it suits only small statistics.
"""

import numpy as np

from ._messages import COORDINATOR, EVERYONE, Transcript

KEY_BITS = 2048


def paillier_sum(vectors, transcript=None, key_bits=KEY_BITS):
    """The sum of parties' int64 vectors, added under Paillier encryption.

    Parameters
    ----------
    vectors : dict of str to ndarray of int64 or None
        ``None`` for a party that dropped out (left out of the sum).
    transcript : Transcript, default=None
    key_bits : int, default=2048

    Returns
    -------
    total : ndarray of int64
    """
    try:
        import phe
    except ImportError as exc:
        raise ImportError(
            "Paillier aggregation needs the phe package: pip install 'fedsk[paillier]'."
        ) from exc
    transcript = Transcript() if transcript is None else transcript
    alive = [name for name, vector in vectors.items() if vector is not None]
    holder = alive[0]
    public, private = phe.generate_paillier_keypair(n_length=key_bits)
    transcript.send(holder, EVERYONE, "public_key", public)
    total = None
    for name in alive:
        encrypted = transcript.send(
            name,
            COORDINATOR,
            "ciphertexts",
            [public.encrypt(int(v)) for v in vectors[name]],
        )
        total = (
            encrypted if total is None else [a + b for a, b in zip(total, encrypted)]
        )
    transcript.send(COORDINATOR, holder, "encrypted_total", total)
    plain = np.array([private.decrypt(c) for c in total], dtype=np.int64)
    return transcript.send(holder, EVERYONE, "total", plain)
