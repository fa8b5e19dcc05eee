"""Encrypted channels between two parties, through a relay that cannot read them.

Two parties that have published X25519 public keys agree on a key without
sending it (Diffie-Hellman), derive a ChaCha20-Poly1305 key from it with
HKDF-SHA256, and seal messages for each other; the coordinator (or relay)
that carries them sees only nonces and ciphertexts, and any tampering makes
opening fail.
"""

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def agreed_key(private, peer_public, purpose):
    """32 bytes that only the holders of ``private`` and of ``peer_public``'s
    private key can compute, for ``purpose`` (bytes)."""
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(hashes.SHA256(), 32, salt=None, info=purpose).derive(shared)


def _cipher(private, peer_public):
    return ChaCha20Poly1305(agreed_key(private, peer_public, b"fedsk channel"))


def seal(private, peer_public, plaintext):
    """Encrypt and authenticate ``plaintext`` (bytes) for the peer."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + _cipher(private, peer_public).encrypt(nonce, plaintext, None)


def open_sealed(private, peer_public, sealed):
    """Decrypt what the peer sealed for us (raises if it was tampered with)."""
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    return _cipher(private, peer_public).decrypt(nonce, body, None)
