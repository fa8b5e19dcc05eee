"""Signed key exchange: parties vouch for the keys the server relays.

The secure protocols agree pairwise keys between parties through the
server (:mod:`fedsk._aggregation`). Relayed as they are, the public keys
could be swapped by an active server or coordinator, who would then hold
the keys the parties encrypt their shares with, or could invent parties to
make a sum of one party's input look like a sum of many. So every party
agent signs the keys it advertises for a release with the key of its
certificate, and sends the certificate with them; before it uses a roster
it checks, for every member, that

- the certificate was issued by the federation's CA, is valid now, and is
  a party's (role ``party``) named as the roster names it, and
- the signature covers this release, this protocol, that name and exactly
  the keys the roster lists.

A roster is then a set of real parties of the federation with their own
keys; the coordinator can still leave parties out, but not add or
impersonate any, so the party's ``--min-parties`` policy counts real peers.
Verified members are remembered for the rest of the release.
"""

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._policy import Refusal

_CONTEXT = b"fedsk key attestation v1"


def _signed_bytes(release_id, protocol, name, keys):
    parts = [_CONTEXT, release_id.encode(), protocol.encode(), name.encode(), *keys]
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def advertised_keys(protocol, entry):
    """The public keys a roster entry lists for a party, as bytes."""
    keys = entry[1:] if protocol == "masking" else (entry,)
    if not all(isinstance(k, bytes) for k in keys):
        raise Refusal("a roster entry must list public keys as bytes")
    return tuple(keys)


class Attester:
    """A party's signing identity, and its check of other parties' keys.

    Parameters
    ----------
    kit : tuple of bytes
        ``(ca_pem, cert_pem, key_pem)`` of the party's start-up kit.
    """

    def __init__(self, kit):
        ca_pem, cert_pem, key_pem = kit
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        self._cert_pem = cert_pem
        self._key = serialization.load_pem_private_key(key_pem, password=None)
        self._verified = {}  # release id -> {name: keys}, for the last releases

    def sign(self, release_id, protocol, name, answer):
        """The attestation of the keys ``answer`` (of the ``keys`` step)."""
        keys = answer if isinstance(answer, tuple) else (answer,)
        signature = self._key.sign(
            _signed_bytes(release_id, protocol, name, keys), ec.ECDSA(hashes.SHA256())
        )
        return {"certificate": self._cert_pem, "signature": signature}

    def check_roster(self, release_id, protocol, roster, attestations):
        """Refuse a roster any of whose members is not a vouched-for party.

        Raises
        ------
        Refusal
        """
        if not isinstance(roster, dict) or not isinstance(attestations, dict):
            raise Refusal("a roster must come with its members' signed keys")
        known = self._verified.setdefault(release_id, {})
        for name, entry in roster.items():
            keys = advertised_keys(protocol, entry)
            if known.get(name) == keys:
                continue
            proof = attestations.get(name)
            if not isinstance(proof, dict):
                raise Refusal(f"roster member {name!r} comes without signed keys")
            self._check(release_id, protocol, name, keys, proof)
            known[name] = keys
        while len(self._verified) > 64:  # keep the last releases only
            del self._verified[next(iter(self._verified))]

    def _check(self, release_id, protocol, name, keys, proof):
        try:
            cert = x509.load_pem_x509_certificate(proof["certificate"])
            cert.verify_directly_issued_by(self._ca)
        except (KeyError, TypeError, ValueError, InvalidSignature):
            raise Refusal(
                f"roster member {name!r}: its certificate was not issued by this "
                "federation's CA"
            ) from None
        now = datetime.datetime.now(datetime.timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Refusal(f"roster member {name!r}: its certificate is not valid now")
        subject = cert.subject
        cn = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ou = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        if [a.value for a in cn] != [name] or [a.value for a in ou] != ["party"]:
            raise Refusal(
                f"roster member {name!r}: its keys are vouched for by a certificate "
                "that is not that party's"
            )
        try:
            cert.public_key().verify(
                proof.get("signature"),
                _signed_bytes(release_id, protocol, name, keys),
                ec.ECDSA(hashes.SHA256()),
            )
        except (InvalidSignature, TypeError, ValueError):
            raise Refusal(
                f"roster member {name!r}: the keys listed are not the keys it signed "
                "for this release"
            ) from None
