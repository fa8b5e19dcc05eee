"""A party's own secret, and the keys it derives from it for each release.

Each party holds 32 bytes from its operating system's cryptographic source,
made on its side and never sent anywhere. Everything random that a party
contributes to a release (its noise, its masking keys, its secret shares'
channel keys) is derived from that secret and the release's public id, with
HKDF-SHA256. The coordinator, who only knows the id, can neither reproduce
nor subtract a party's noise; a retried request with the same id gets the
same noise, so a retry never buys a fresh draw to average away.
"""

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32


def new_secret():
    """32 fresh bytes from the operating system's cryptographic source."""
    return secrets.token_bytes(SECRET_BYTES)


def new_release_id():
    """A fresh public identifier for one release (128 random bits, hex)."""
    return secrets.token_hex(16)


def derive_key(secret, release_id, purpose):
    """The 32-byte key for ``purpose`` in release ``release_id``.

    Parameters
    ----------
    secret : bytes
        The party's own secret.
    release_id : str
        Public identifier of the release.
    purpose : bytes
        What the key is for (``b"noise"``, ``b"mask key"``, ...); distinct
        purposes give independent keys.

    Returns
    -------
    key : bytes of length 32
    """
    info = b"fedsk " + purpose + b" " + release_id.encode()
    return HKDF(hashes.SHA256(), SECRET_BYTES, salt=None, info=info).derive(secret)
