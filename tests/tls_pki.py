"""A throwaway PKI for the TLS tests, made per test session with ``cryptography``.

Nothing here is committed as a key: every run makes fresh ones. The private CA
is what a hospital would run; the odd certificates (expired, wrong name, other
CA) exist to provoke each error securepdu must name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = dt.datetime.now(dt.timezone.utc)
_DAY = dt.timedelta(days=1)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its key on disk (PEM)."""

    cert: Path
    key: Path
    subject: str


@dataclass(frozen=True)
class PKI:
    """Everything the TLS tests use."""

    ca: Path
    other_ca: Path
    server: Issued  # localhost, 127.0.0.1, ::1
    client: Issued  # CN=MODALITY1
    server_rsa_pkcs1: Issued  # RSA key in PKCS#1 ("BEGIN RSA PRIVATE KEY")
    server_ec_sec1: Issued  # EC key in SEC1 ("BEGIN EC PRIVATE KEY")
    expired_server: Issued
    wrong_name_server: Issued  # only "elsewhere.example"
    untrusted_server: Issued  # issued by other_ca
    untrusted_client: Issued  # issued by other_ca


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securepdu tests"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - _DAY)
        .not_valid_after(_NOW + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    cn: str,
    *,
    names: list[str] | None = None,
    client: bool = False,
    key: PrivateKey | None = None,
    expired: bool = False,
) -> tuple[x509.Certificate, PrivateKey]:
    ca_cert, ca_key = ca
    key = key or ec.generate_private_key(ec.SECP256R1())
    start, end = (_NOW - 10 * _DAY, _NOW - 2 * _DAY) if expired else (_NOW - _DAY, _NOW + 30 * _DAY)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
    )
    if names:
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(
    out: Path, stem: str, cert: x509.Certificate, key: PrivateKey, fmt: serialization.PrivateFormat
) -> Issued:
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Issued(cert_path, key_path, cert.subject.rfc4514_string())


def make_pki(out: Path) -> PKI:
    """Writes a fresh PKI into ``out`` and describes it."""
    out.mkdir(parents=True, exist_ok=True)
    ca, other = _ca("securepdu test CA"), _ca("some other CA")
    (out / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    (out / "other-ca.crt").write_bytes(other[0].public_bytes(serialization.Encoding.PEM))
    local = ["localhost", "127.0.0.1", "::1"]
    pkcs8 = serialization.PrivateFormat.PKCS8
    legacy = serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA, SEC1 for EC
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return PKI(
        ca=out / "ca.crt",
        other_ca=out / "other-ca.crt",
        server=_write(out, "server", *_leaf(ca, "STORE-SCP", names=local), pkcs8),
        client=_write(out, "client", *_leaf(ca, "MODALITY1", client=True), pkcs8),
        server_rsa_pkcs1=_write(out, "server-rsa", *_leaf(ca, "STORE-SCP", names=local, key=rsa_key), legacy),
        server_ec_sec1=_write(out, "server-ec", *_leaf(ca, "STORE-SCP", names=local), legacy),
        expired_server=_write(out, "expired", *_leaf(ca, "STORE-SCP", names=local, expired=True), pkcs8),
        wrong_name_server=_write(out, "wrong-name", *_leaf(ca, "STORE-SCP", names=["elsewhere.example"]), pkcs8),
        untrusted_server=_write(out, "untrusted", *_leaf(other, "STORE-SCP", names=local), pkcs8),
        untrusted_client=_write(out, "untrusted-client", *_leaf(other, "MODALITY1", client=True), pkcs8),
    )
