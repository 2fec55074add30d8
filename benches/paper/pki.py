"""The throwaway PKI of a paper run: the same five PEM texts as securepdu's demo PKI
(ca_cert, server_cert/_key, client_cert/_key, ECDSA P-256 so that TLS 1.2 runs the
suite's ECDSA suite on every stack), but with a server certificate that names every
address of the test network, so that every client checks the name as it would in a
hospital. benches.peers.make_secrets writes them with the integrity key and the
OpenSSL pins."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from benches.peers import SCU_AET


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securepdu paper bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _issue(cn: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *, server: bool,
           addresses: list[str]) -> tuple[str, str]:
    """A leaf certificate and key, signed by the CA, valid for a day around now."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ["127.0.0.1", "::1", *addresses]]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key)


def make_pki(addresses: list[str]) -> dict[str, str]:
    """CA, a server certificate for localhost, 127.0.0.1, ::1 and ``addresses``, and a
    client certificate (CN = the suite's calling AE title), as PEM texts."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(_name("securepdu paper CA")).issuer_name(_name("securepdu paper CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_cert, server_key = _issue("BENCH-SCP", ca, ca_key, server=True, addresses=addresses)
    client_cert, client_key = _issue(SCU_AET, ca, ca_key, server=False, addresses=[])
    return {"ca_cert": ca.public_bytes(serialization.Encoding.PEM).decode(), "server_cert": server_cert,
            "server_key": server_key, "client_cert": client_cert, "client_key": client_key}
