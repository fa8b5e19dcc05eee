"""Start-up kits: a federation CA and one certificate per participant.

``provision(out, server_host, parties)`` writes::

    out/ca/ca.pem, ca-key.pem      the federation CA (keep ca-key.pem offline)
    out/server/ca.pem, cert.pem, key.pem
    out/client/...                 the coordinator (data scientist)
    out/<party>/...                one kit per party

Each certificate's common name is the participant's name (``server``,
``client``, or the party's name) and its organisational unit its role
(``server``, ``coordinator``, ``party``): the server reads both from the
certificate a peer presented in the mutual TLS handshake, so a party can only
poll for its own requests and only the coordinator can submit them. Keys are
ECDSA P-256; the server's certificate names ``server_host`` (and localhost)
as subject alternative names.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("server", "coordinator", "party")
RESERVED = ("ca", "server", "client")


def _name(common_name, role):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedsk federation"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path, data, private=False):
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644
    )
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _san(host):
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            names.insert(0, x509.DNSName(host))
    else:
        if str(address) != "127.0.0.1":
            names.insert(0, x509.IPAddress(address))
    return x509.SubjectAlternativeName(names)


def make_ca(days=365):
    """A new CA: ``(key, certificate)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name("fedsk federation CA", "ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca_key, ca_cert, common_name, role, *, host=None, days=365):
    """A certificate for one participant, signed by the CA: ``(key, cert)``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}; got {role!r}.")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH
        if role == "server"
        else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, role))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if role == "server":
        builder = builder.add_extension(_san(host), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def provision(out, server_host, parties, *, days=365):
    """Write a federation's start-up kits into ``out`` (see the module docstring).

    Parameters
    ----------
    out : str
        Directory to create (it may exist, but not hold a kit already).
    server_host : str
        Host name or IP address the parties and the coordinator dial.
    parties : list of str
        Party names; each gets ``out/<name>``.
    days : int, default=365
        Validity of every certificate.

    Returns
    -------
    kits : dict
        ``{participant: directory}``.
    """
    parties = [str(p).strip() for p in parties]
    bad = [
        p for p in parties if not p or p in RESERVED or "/" in p or p.startswith(".")
    ]
    if bad or len(set(parties)) != len(parties):
        raise ValueError(
            f"parties must be distinct names other than {RESERVED}, without '/'; "
            f"got {parties}."
        )
    if os.path.exists(os.path.join(out, "ca", "ca.pem")):
        raise ValueError(
            f"{out} already holds a federation CA: choose another --out (a new CA "
            "would not be trusted by the kits already handed out)."
        )
    ca_key, ca_cert = make_ca(days)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    os.makedirs(os.path.join(out, "ca"), exist_ok=True)
    _write(os.path.join(out, "ca", "ca.pem"), ca_pem)
    _write(os.path.join(out, "ca", "ca-key.pem"), _key_pem(ca_key), private=True)
    kits = {}
    for who, role in [("server", "server"), ("client", "coordinator")] + [
        (p, "party") for p in parties
    ]:
        key, cert = issue(ca_key, ca_cert, who, role, host=server_host, days=days)
        directory = os.path.join(out, who)
        os.makedirs(directory, exist_ok=True)
        _write(os.path.join(directory, "ca.pem"), ca_pem)
        _write(
            os.path.join(directory, "cert.pem"),
            cert.public_bytes(serialization.Encoding.PEM),
        )
        _write(os.path.join(directory, "key.pem"), _key_pem(key), private=True)
        kits[who] = directory
    return kits


def read_kit(directory):
    """``(ca_pem, cert_pem, key_pem)`` of a start-up kit directory."""
    parts = []
    for name in ("ca.pem", "cert.pem", "key.pem"):
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as file:
                parts.append(file.read())
        except OSError as exc:
            raise ValueError(
                f"cannot read {path}: {exc.strerror or exc}; --certs must be a "
                "directory made by 'fedsk certs' (ca.pem, cert.pem, key.pem)"
            ) from None
    return tuple(parts)


def identity(cert_pem):
    """``(common name, role)`` of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return (cn[0].value if cn else None), (ou[0].value if ou else None)
