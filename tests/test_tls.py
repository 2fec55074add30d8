"""TLS between securepdu peers over real sockets (port 0), on 127.0.0.1 and ::1.

Every certificate comes from the session's throwaway PKI (``pki`` fixture,
tests/tls_pki.py). Each error a person can act on is provoked once and must
arrive as its own ``TLSError`` subtype; the SCP must log it and keep serving.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import securepdu
from securepdu import _synthetic
from securepdu.cli import main as cli_main
from securepdu.errors import (
    AssociationRejected,
    CertificateExpiredError,
    ClientCertificateError,
    HostnameMismatchError,
    NoCommonTLSParametersError,
    SecurePDUError,
    TLSConfigError,
    TLSError,
    TLSToPlainPortError,
    UntrustedCertificateError,
)
from securepdu.tls import TLSConfig
from listeners import wait_listening
from tls_pki import PKI, Issued

SCP_AET = "STORE-SCP"
OPENSSL = "/usr/bin/openssl"
#: Every association in these tests gets these bounds, so a bug cannot hang the run.
QUICK: dict[str, Any] = {"timeout": 10.0, "acse_timeout": 10.0, "dimse_timeout": 20.0}

TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
ECDSA_TLS12 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
ECDSA_TLS12_256 = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
RSA_TLS12 = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"


# --------------------------------------------------------------------------- fixtures


def _ipv6_problem() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return str(exc)
    return None


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def host(request: pytest.FixtureRequest) -> str:
    """127.0.0.1 and ::1; no IPv6 loopback is a failure, not a skip."""
    value = str(request.param)
    if value == "::1" and (problem := _ipv6_problem()):
        pytest.fail(f"the IPv6 TLS tests need a ::1 loopback: {problem}")
    return value


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A few Part 10 files: small ones and one of 0.5 MB (many TLS records and PDUs)."""
    out = tmp_path_factory.mktemp("tls-objects")
    paths = []
    for i, (modality, rows, cols) in enumerate([("CT", 512, 512), ("MR", 64, 64), ("CR", 128, 96)], start=1):
        ds = _synthetic.make_dataset(modality, rows, cols, seed=i)
        path = out / f"{modality}{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def server_tls(pki: PKI, issued: Issued | None = None, **options: Any) -> TLSConfig:
    """An SCP's settings: ``issued`` (default: the good server certificate), the test CA."""
    issued = issued or pki.server
    options.setdefault("ca", pki.ca)
    return TLSConfig(cert=issued.cert, key=issued.key, **options)


def client_tls(pki: PKI, issued: Issued | None = None, *, certificate: bool = True, **options: Any) -> TLSConfig:
    """An SCU's settings: the test CA, and the MODALITY1 client certificate unless told not to."""
    options.setdefault("ca", pki.ca)
    if certificate:
        issued = issued or pki.client
        return TLSConfig(cert=issued.cert, key=issued.key, **options)
    return TLSConfig(**options)


@dataclass
class Running:
    scp: securepdu.StorageSCP
    host: str
    storage: Path
    events: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.scp.port

    def stored(self) -> dict[str, Any]:
        with self.lock:
            return {str(e.sop_instance_uid): e for e in self.events}


@pytest.fixture
def tls_scp(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """``tls_scp(host, tls=TLSConfig|None, **options)`` starts a StorageSCP on port 0;
    all are shut down after the test."""
    started: list[Running] = []

    def start(host: str = "127.0.0.1", tls: TLSConfig | None = None, **options: Any) -> Running:
        storage = tmp_path / f"scp{len(started)}"
        holder: list[Running] = []

        def on_store(event: Any) -> None:
            with holder[0].lock:
                holder[0].events.append(event)

        options.setdefault("ae_title", SCP_AET)
        options.setdefault("acse_timeout", 10.0)
        extra: dict[str, Any] = {} if tls is None else {"tls": tls}
        scp = securepdu.StorageSCP(storage_dir=storage, on_store=on_store, **options, **extra)
        running = Running(scp, host, storage)
        holder.append(running)
        scp.start(host, 0)
        started.append(running)
        return running

    yield start
    for r in started:
        r.scp.shutdown()


def wait_for_log(
    caplog: pytest.LogCaptureFixture, pattern: str, *, timeout: float = 5.0, level: int = logging.WARNING
) -> logging.LogRecord:
    """The first record of logger "securepdu" at ``level`` or above whose message matches
    ``pattern`` (case-insensitive); the SCP logs from its association threads, so poll."""
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern, re.IGNORECASE)
    while True:
        for rec in list(caplog.records):
            if rec.name.startswith("securepdu") and rec.levelno >= level and rx.search(rec.getMessage()):
                return rec
        if time.monotonic() > deadline:
            seen = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records]
            raise AssertionError(f"no log record matching {pattern!r} within {timeout} s; got {seen}")
        time.sleep(0.05)


def store_all(host: str, port: int, tls: TLSConfig | None, paths: list[Path], **options: Any) -> Any:
    """Associates, echoes, stores every path; returns the association (closed) for its attributes."""
    with securepdu.associate(
        host, port, called_ae=SCP_AET, contexts=securepdu.contexts_for(paths), tls=tls, **{**QUICK, **options}
    ) as assoc:
        assert assoc.echo() == 0
        results = [assoc.store(p) for p in paths]
    assert all(r.ok and r.status == 0 for r in results), results
    return assoc


def assert_intact(scp: Running, paths: list[Path]) -> None:
    stored = scp.stored()
    for path in paths:
        meta, _ = _synthetic.split_part10(path)
        event = stored[str(meta.MediaStorageSOPInstanceUID)]
        assert _synthetic.same_dataset(path, event.path), f"{path} arrived different"


def echo_ok(host: str, port: int, tls: TLSConfig | None, **options: Any) -> Any:
    with securepdu.associate(host, port, called_ae=SCP_AET, tls=tls, **{**QUICK, **options}) as assoc:
        assert assoc.echo() == 0
    return assoc


# --------------------------------------------------------------------------- it works


def test_echo_and_store_over_tls13_with_mutual_authentication(
    host: str, pki: PKI, tls_scp: Any, objects: list[Path]
) -> None:
    scp = tls_scp(host, server_tls(pki))
    with securepdu.associate(
        host, scp.port, called_ae=SCP_AET, calling_ae="MODALITY1", contexts=securepdu.contexts_for(objects),
        tls=client_tls(pki), **QUICK,
    ) as assoc:
        assert assoc.tls_version == "TLSv1.3"
        assert assoc.cipher_suite in TLS13_SUITES
        assert assoc.peer_address[0] == host
        assert assoc.echo() == 0
        results = [assoc.store(p) for p in objects]
    assert all(r.ok and r.status == 0 for r in results), results
    assert_intact(scp, objects)
    for event in scp.stored().values():
        assert event.peer_certificate_subject is not None
        assert "CN=MODALITY1" in event.peer_certificate_subject
        assert "O=securepdu tests" in event.peer_certificate_subject
        assert event.peer_address[0] == host
        assert event.calling_ae == "MODALITY1"


def test_send_over_tls(host: str, pki: PKI, tls_scp: Any, objects: list[Path]) -> None:
    scp = tls_scp(host, server_tls(pki))
    results = securepdu.send(host, scp.port, [objects[0].parent], called_ae=SCP_AET, tls=client_tls(pki), **QUICK)
    assert len(results) == len(objects) and all(r.ok for r in results), results
    assert_intact(scp, objects)


def test_plain_association_reports_no_tls(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1")
    assoc = echo_ok("127.0.0.1", scp.port, None)
    assert assoc.tls_version is None
    assert assoc.cipher_suite is None


def test_tls12_when_the_client_offers_only_tls12_suites(
    host: str, pki: PKI, tls_scp: Any, objects: list[Path]
) -> None:
    scp = tls_scp(host, server_tls(pki))
    assoc = store_all(host, scp.port, client_tls(pki, min_version="1.2", ciphers=[ECDSA_TLS12_256]), objects)
    assert assoc.tls_version == "TLSv1.2"
    assert assoc.cipher_suite == ECDSA_TLS12_256
    assert_intact(scp, objects)
    assert all("CN=MODALITY1" in (e.peer_certificate_subject or "") for e in scp.stored().values())


def test_tls12_when_the_server_allows_only_tls12_suites(pki: PKI, tls_scp: Any, objects: list[Path]) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, ciphers=[ECDSA_TLS12]))
    assoc = store_all("127.0.0.1", scp.port, client_tls(pki), objects)
    assert assoc.tls_version == "TLSv1.2"
    assert assoc.cipher_suite == ECDSA_TLS12


def test_tls13_only_on_both_sides(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, min_version="1.3"))
    assoc = echo_ok("127.0.0.1", scp.port, client_tls(pki, min_version="1.3", ciphers=["TLS_CHACHA20_POLY1305_SHA256"]))
    assert assoc.tls_version == "TLSv1.3"
    assert assoc.cipher_suite == "TLS_CHACHA20_POLY1305_SHA256"


@pytest.mark.parametrize("which", ["server_rsa_pkcs1", "server_ec_sec1"], ids=["rsa-pkcs1", "ec-sec1"])
def test_server_key_formats(which: str, pki: PKI, tls_scp: Any, objects: list[Path]) -> None:
    issued: Issued = getattr(pki, which)
    first = issued.key.read_text().splitlines()[0]
    assert first == ("-----BEGIN RSA PRIVATE KEY-----" if "rsa" in which else "-----BEGIN EC PRIVATE KEY-----")
    scp = tls_scp("127.0.0.1", server_tls(pki, issued))
    assoc = store_all("127.0.0.1", scp.port, client_tls(pki), objects)
    assert assoc.tls_version == "TLSv1.3"
    assert_intact(scp, objects)
    # and TLS 1.2 with the suite family that matches the key
    suite = RSA_TLS12 if "rsa" in which else ECDSA_TLS12
    assoc = echo_ok("127.0.0.1", scp.port, client_tls(pki, ciphers=[suite]))
    assert (assoc.tls_version, assoc.cipher_suite) == ("TLSv1.2", suite)


# --------------------------------------------------------------------------- mutual TLS refused / relaxed


def test_client_without_certificate_is_refused_and_the_scp_keeps_serving(
    pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki))
    with pytest.raises(TLSError) as info:
        echo_ok("127.0.0.1", scp.port, client_tls(pki, certificate=False))
    assert isinstance(info.value, ClientCertificateError), f"{type(info.value).__name__}: {info.value}"
    rec = wait_for_log(caplog, r"certificate")
    assert "127.0.0.1" in rec.getMessage(), rec.getMessage()
    echo_ok("127.0.0.1", scp.port, client_tls(pki))  # a good client afterwards
    assert not list(scp.storage.glob("*.dcm"))


def test_client_certificate_from_another_ca_is_refused(
    pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki))
    with pytest.raises(TLSError) as info:
        echo_ok("127.0.0.1", scp.port, client_tls(pki, pki.untrusted_client))
    assert isinstance(info.value, ClientCertificateError), f"{type(info.value).__name__}: {info.value}"
    rec = wait_for_log(caplog, r"certificate|issuer|trusted")
    assert "127.0.0.1" in rec.getMessage(), rec.getMessage()
    echo_ok("127.0.0.1", scp.port, client_tls(pki))


def test_client_certificate_can_be_optional(pki: PKI, tls_scp: Any, objects: list[Path]) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, require_client_cert=False))
    store_all("127.0.0.1", scp.port, client_tls(pki, certificate=False), objects[1:2])
    (event,) = scp.stored().values()
    assert event.peer_certificate_subject is None
    # a client that does present one is still verified, and named
    store_all("127.0.0.1", scp.port, client_tls(pki), objects[2:3])
    named = [e for e in scp.stored().values() if e.peer_certificate_subject]
    assert len(named) == 1 and "CN=MODALITY1" in (named[0].peer_certificate_subject or "")


def test_plain_scp_events_have_no_subject(tls_scp: Any, objects: list[Path]) -> None:
    scp = tls_scp("127.0.0.1")
    store_all("127.0.0.1", scp.port, None, objects[1:2])
    (event,) = scp.stored().values()
    assert event.peer_certificate_subject is None


def test_client_certificate_bound_to_calling_ae_titles(pki: PKI, tls_scp: Any, objects: list[Path]) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, allowed_calling_aes={"MODALITY1": ["MODALITY1"]}))
    store_all("127.0.0.1", scp.port, client_tls(pki), objects[1:2], calling_ae="MODALITY1")
    assert len(scp.stored()) == 1
    with pytest.raises(AssociationRejected) as info:
        echo_ok("127.0.0.1", scp.port, client_tls(pki), calling_ae="OTHER")
    assert info.value.reason == 3, repr(info.value)  # PS3.8 Table 9-21: calling AE title not recognised
    assert info.value.source == 1
    echo_ok("127.0.0.1", scp.port, client_tls(pki), calling_ae="MODALITY1")  # still serving


# --------------------------------------------------------------------------- the server's certificate


def test_untrusted_issuer(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, pki.untrusted_server))
    with pytest.raises(UntrustedCertificateError):
        echo_ok("127.0.0.1", scp.port, client_tls(pki))
    echo_ok("127.0.0.1", scp.port, client_tls(pki, ca=pki.other_ca))  # trusting its CA works


def test_expired_server_certificate(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, pki.expired_server))
    with pytest.raises(CertificateExpiredError):
        echo_ok("127.0.0.1", scp.port, client_tls(pki))


def test_wrong_host_name(host: str, pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp(host, server_tls(pki, pki.wrong_name_server))
    with pytest.raises(HostnameMismatchError) as info:
        echo_ok(host, scp.port, client_tls(pki))
    assert host in str(info.value), str(info.value)


def test_hostname_verification_can_be_turned_off_loudly(
    pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki, pki.wrong_name_server))
    assoc = echo_ok("127.0.0.1", scp.port, client_tls(pki, verify_hostname=False))
    assert assoc.tls_version is not None
    wait_for_log(caplog, r"host ?name verification is off", timeout=1)
    # the chain is still checked
    untrusted = tls_scp("127.0.0.1", server_tls(pki, pki.untrusted_server))
    with pytest.raises(UntrustedCertificateError):
        echo_ok("127.0.0.1", untrusted.port, client_tls(pki, verify_hostname=False))


def test_server_name_is_what_the_certificate_is_checked_against(pki: PKI, tls_scp: Any) -> None:
    good = tls_scp("127.0.0.1", server_tls(pki))
    echo_ok("127.0.0.1", good.port, client_tls(pki, server_name="localhost"))
    with pytest.raises(HostnameMismatchError):
        echo_ok("127.0.0.1", good.port, client_tls(pki, server_name="elsewhere.example"))
    # the wrong-name server is right when asked for by its own name
    other = tls_scp("127.0.0.1", server_tls(pki, pki.wrong_name_server))
    echo_ok("127.0.0.1", other.port, client_tls(pki, server_name="elsewhere.example"))


# --------------------------------------------------------------------------- nothing in common


def test_tls13_only_client_against_tls12_only_server(
    pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki, ciphers=[ECDSA_TLS12, ECDSA_TLS12_256]))
    with pytest.raises(NoCommonTLSParametersError):
        echo_ok("127.0.0.1", scp.port, client_tls(pki, min_version="1.3"))
    wait_for_log(caplog, r"127\.0\.0\.1")
    echo_ok("127.0.0.1", scp.port, client_tls(pki))  # still serving


def test_tls12_only_client_against_tls13_only_server(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, min_version="1.3"))
    with pytest.raises(NoCommonTLSParametersError):
        echo_ok("127.0.0.1", scp.port, client_tls(pki, ciphers=[ECDSA_TLS12]))


def test_no_common_cipher_suite(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, ciphers=["TLS_AES_256_GCM_SHA384"]))
    with pytest.raises(NoCommonTLSParametersError):
        echo_ok("127.0.0.1", scp.port, client_tls(pki, ciphers=["TLS_AES_128_GCM_SHA256"]))


# --------------------------------------------------------------------------- plain vs TLS ports


def test_plain_client_to_tls_port_fails_fast_and_is_logged(
    pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki))
    t0 = time.monotonic()
    with pytest.raises(SecurePDUError):
        echo_ok("127.0.0.1", scp.port, None)
    assert time.monotonic() - t0 < 5, "a plain client to a TLS port must fail fast"
    rec = wait_for_log(caplog, r"PlainTCPToTLSPort|plain")
    assert "127.0.0.1" in rec.getMessage(), rec.getMessage()
    echo_ok("127.0.0.1", scp.port, client_tls(pki))


def test_tls_client_to_plain_port(host: str, pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp(host)
    t0 = time.monotonic()
    with pytest.raises(TLSToPlainPortError):
        echo_ok(host, scp.port, client_tls(pki))
    assert time.monotonic() - t0 < 5
    echo_ok(host, scp.port, None)  # the plain SCP is fine


def test_a_silent_client_does_not_stall_others(pki: PKI, tls_scp: Any) -> None:
    """The handshake runs in the association's thread, never in the accept loop."""
    scp = tls_scp("127.0.0.1", server_tls(pki))
    silent = [socket.create_connection(("127.0.0.1", scp.port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)  # they are accepted and sit in their handshakes
        t0 = time.monotonic()
        echo_ok("127.0.0.1", scp.port, client_tls(pki))
        assert time.monotonic() - t0 < 2.5, f"took {time.monotonic() - t0:.1f} s behind silent clients"
        # a plain client that says nothing either
        half = socket.create_connection(("127.0.0.1", scp.port), timeout=5)
        half.sendall(b"\x01\x00")  # two bytes of an A-ASSOCIATE-RQ, then nothing
        silent.append(half)
        t0 = time.monotonic()
        echo_ok("127.0.0.1", scp.port, client_tls(pki))
        assert time.monotonic() - t0 < 2.5
    finally:
        for s in silent:
            s.close()


def test_tls_handshake_times_out_on_the_scp(pki: PKI, tls_scp: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A client that never finishes its handshake is dropped after the SCP's ACSE timeout."""
    caplog.set_level(logging.INFO, logger="securepdu")
    scp = tls_scp("127.0.0.1", server_tls(pki), acse_timeout=1.0)
    with socket.create_connection(("127.0.0.1", scp.port), timeout=10) as s:
        s.settimeout(6)
        t0 = time.monotonic()
        try:
            data: bytes | None = s.recv(1024)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            data = None
        assert data is not None, "the SCP kept a silent TLS client for over 6 s with acse_timeout=1"
        assert data == b"" or data[:1] == b"\x15", data  # closed, or a TLS alert before closing
        assert time.monotonic() - t0 < 5.5
    echo_ok("127.0.0.1", scp.port, client_tls(pki))


# --------------------------------------------------------------------------- old TLS cannot get in


def _openssl() -> str:
    if not Path(OPENSSL).is_file():
        pytest.fail(f"{OPENSSL} is missing (apt-get install openssl): the TLS 1.1 refusal test needs it")
    return OPENSSL


def test_openssl_tls11_client_is_refused(pki: PKI, tls_scp: Any) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki))
    # SECLEVEL=0 so that OpenSSL 3 really offers TLS 1.1 instead of refusing locally.
    done = subprocess.run(
        [_openssl(), "s_client", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-connect", f"127.0.0.1:{scp.port}",
         "-CAfile", str(pki.ca), "-cert", str(pki.client.cert), "-key", str(pki.client.key)],
        input="", capture_output=True, text=True, timeout=30,
    )
    out = done.stdout + done.stderr
    assert "CONNECTED(" in out, f"openssl did not even connect: {out}"
    # s_client prints "Protocol : TLSv1.1" even for a refused attempt (the version it
    # tried); what shows that nothing was established is the absent cipher and the alert.
    assert "Cipher is (NONE)" in out, out
    assert not re.search(r"New, TLSv1\.1, Cipher is (?!\(NONE\))", out), out
    assert re.search(r"alert|handshake failure|wrong version|unsupported protocol", out, re.IGNORECASE), out
    assert done.returncode != 0, out
    echo_ok("127.0.0.1", scp.port, client_tls(pki))


def test_openssl_tls12_client_with_certificate_is_accepted(pki: PKI, tls_scp: Any) -> None:
    """The counterpart of the TLS 1.1 test: the same client at TLS 1.2 gets in."""
    scp = tls_scp("127.0.0.1", server_tls(pki))
    done = subprocess.run(
        [_openssl(), "s_client", "-tls1_2", "-connect", f"127.0.0.1:{scp.port}", "-CAfile", str(pki.ca),
         "-cert", str(pki.client.cert), "-key", str(pki.client.key), "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=30,
    )
    out = done.stdout + done.stderr
    assert re.search(r"Protocol\s*:\s*TLSv1\.2", out), out
    assert "ECDHE" in out and "GCM" in out, out


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "name",
    [
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",  # no forward secrecy
        "TLS_RSA_WITH_NULL_SHA256",
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
        "NOT_A_SUITE",
    ],
)
def test_forbidden_or_unknown_cipher_names_are_refused_with_the_allowed_list(
    name: str, pki: PKI, tls_scp: Any
) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki))
    with pytest.raises(TLSConfigError) as info:
        echo_ok("127.0.0.1", scp.port, client_tls(pki, ciphers=[name]))
    text = str(info.value)
    assert name in text
    for allowed in ("TLS_AES_128_GCM_SHA256", ECDSA_TLS12, RSA_TLS12):
        assert allowed in text, text
    with pytest.raises(TLSConfigError):
        tls_scp("127.0.0.1", server_tls(pki, ciphers=[name]))


@pytest.mark.parametrize("version", ["1.0", "1.1", "ssl3", "1.4", ""])
def test_min_version_is_12_or_13(version: str, pki: PKI) -> None:
    with pytest.raises(TLSConfigError):
        TLSConfig(ca=pki.ca, min_version=version)


def test_missing_files_are_config_errors(pki: PKI, tmp_path: Path, tls_scp: Any) -> None:
    with pytest.raises(TLSConfigError, match="does not exist"):
        securepdu.associate("127.0.0.1", 9, tls=TLSConfig(ca=tmp_path / "nope.pem"), **QUICK)
    with pytest.raises(TLSConfigError):
        TLSConfig(cert=pki.server.cert)  # a certificate without its key
    with pytest.raises(TLSConfigError):
        securepdu.associate("127.0.0.1", 9, tls=TLSConfig(), **QUICK)  # nothing to trust


def test_unusable_pem_is_a_config_error(pki: PKI, tls_scp: Any) -> None:
    with pytest.raises(TLSConfigError):
        tls_scp("127.0.0.1", TLSConfig(cert=pki.server.cert, key=pki.server.cert))  # a certificate as the key
    with pytest.raises(TLSConfigError):
        tls_scp("127.0.0.1", TLSConfig(cert=pki.server.key, key=pki.server.key))  # a key as the certificate
    scp = tls_scp("127.0.0.1", server_tls(pki))
    with pytest.raises(TLSConfigError):
        echo_ok("127.0.0.1", scp.port, TLSConfig(ca=pki.server.key))  # no certificate in the CA file


def test_a_tls_scp_needs_a_certificate(pki: PKI, tls_scp: Any) -> None:
    with pytest.raises(TLSConfigError):
        tls_scp("127.0.0.1", TLSConfig(ca=pki.ca))


def test_tls_errors_are_securepdu_errors() -> None:
    from securepdu import errors

    for name in (
        "TLSConfigError", "UntrustedCertificateError", "CertificateExpiredError", "HostnameMismatchError",
        "ClientCertificateError", "NoCommonTLSParametersError", "PlainTCPToTLSPortError", "TLSToPlainPortError",
    ):
        cls = getattr(errors, name)
        assert issubclass(cls, errors.TLSError) and issubclass(cls, errors.SecurePDUError)


# --------------------------------------------------------------------------- the command line


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli_main(list(argv), stdout=out)
    return code, out.getvalue()


@pytest.mark.parametrize("flag", [["--cert", "x.pem"], ["--key", "x.key"], ["--ca", "ca.pem"], ["--tls13-only"]])
def test_cli_tls_flags_need_tls(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("echo", "127.0.0.1", "104", *flag)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "add --tls" in err and flag[0] in err


def test_cli_listen_tls_needs_cert_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("listen", "0", "--tls")
    assert info.value.code == 2
    assert "--cert" in capsys.readouterr().err


def test_cli_tls_client_needs_something_to_trust(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("echo", "127.0.0.1", "104", "--tls")
    assert info.value.code == 2
    assert "--ca" in capsys.readouterr().err


def _client_flags(pki: PKI, issued: Issued | None = None) -> list[str]:
    issued = issued or pki.client
    return ["--tls", "--ca", str(pki.ca), "--cert", str(issued.cert), "--key", str(issued.key)]


def test_cli_echo_and_store_over_tls(
    pki: PKI, tls_scp: Any, objects: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki))
    code, out = run_cli("echo", "127.0.0.1", str(scp.port), "-aec", SCP_AET, *_client_flags(pki), "--tls13-only")
    assert code == 0, out + capsys.readouterr().err
    assert "TLSv1.3" in out
    code, out = run_cli(
        "store", "127.0.0.1", str(scp.port), "-aec", SCP_AET, *_client_flags(pki), "--cipher", ECDSA_TLS12, "-q",
        str(objects[0].parent),
    )
    assert code == 0, out + capsys.readouterr().err
    assert f"sent {len(objects)} objects" in out
    assert_intact(scp, objects)


@pytest.mark.parametrize(
    ("which", "words"),
    [("untrusted_server", "untrusted"), ("expired_server", "expired"), ("wrong_name_server", "host name")],
)
def test_cli_tls_errors_are_one_clear_line(
    which: str, words: str, pki: PKI, tls_scp: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, getattr(pki, which)))
    code, _ = run_cli("echo", "127.0.0.1", str(scp.port), "-aec", SCP_AET, "-to", "10", *_client_flags(pki))
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert words in lines[0].lower(), lines[0]
    assert "Traceback" not in err


def test_cli_unknown_cipher_lists_the_allowed_ones(
    pki: PKI, tls_scp: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki))
    code, _ = run_cli(
        "echo", "127.0.0.1", str(scp.port), *_client_flags(pki), "--cipher", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "TLS_AES_128_GCM_SHA256" in err and len(err.strip().splitlines()) == 1, err


def test_cli_no_verify_hostname_warns_loudly(pki: PKI, tls_scp: Any, capsys: pytest.CaptureFixture[str]) -> None:
    scp = tls_scp("127.0.0.1", server_tls(pki, pki.wrong_name_server))
    code, out = run_cli("echo", "127.0.0.1", str(scp.port), "-aec", SCP_AET, *_client_flags(pki), "--no-verify-hostname")
    err = capsys.readouterr().err
    assert code == 0, out + err
    assert "WARNING" in err and "host name verification is OFF" in err
    code, _ = run_cli(
        "echo", "127.0.0.1", str(scp.port), "-aec", SCP_AET, *_client_flags(pki), "--server-name", "elsewhere.example"
    )
    assert code == 0, capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("client_auth", [True, False], ids=["mutual", "no-client-auth"])
def test_cli_listen_over_tls(client_auth: bool, pki: PKI, tmp_path: Path, objects: list[Path]) -> None:
    port = _free_port()
    out = tmp_path / "incoming"
    flags = ["--tls", "--cert", str(pki.server.cert), "--key", str(pki.server.key), "--ca", str(pki.ca)]
    if not client_auth:
        flags.append("--no-client-auth")
    proc = subprocess.Popen(
        [sys.executable, "-m", "securepdu", "listen", str(port), "--bind", "127.0.0.1", "--aet", SCP_AET,
         "--output-dir", str(out), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_listening(port, proc)
        client = client_tls(pki) if client_auth else client_tls(pki, certificate=False)
        store_all("127.0.0.1", port, client, objects)
        if client_auth:
            with pytest.raises(ClientCertificateError):
                echo_ok("127.0.0.1", port, client_tls(pki, certificate=False))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    log = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, log
    assert "TLS" in log
    assert log.count("stored ") == len(objects), log
    if client_auth:
        assert "CN=MODALITY1" in log, log
    for path in objects:
        meta, _ = _synthetic.split_part10(path)
        assert _synthetic.same_dataset(path, out / f"{meta.MediaStorageSOPInstanceUID}.dcm")


# --------------------------------------------------------------------------- the demo


def test_demo_shows_plain_and_tls_side_by_side() -> None:
    from securepdu import demo

    out = io.StringIO()
    code = demo.run(total_mb=2, stdout=out)
    text = out.getvalue()
    assert code == 0, text
    assert "TLS/plain" in text and "plain MB/s" in text and "TLS MB/s" in text, text
    assert "negotiated TLSv1.3" in text, text
    assert "over IPv4, IPv6, IPv4 TLS, IPv6 TLS" in text, text
    assert "skipping" not in text, text
