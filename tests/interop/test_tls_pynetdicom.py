"""securepdu against pynetdicom 3.0.4 over TLS, both directions, on 127.0.0.1 and ::1.

pynetdicom takes a standard-library ``ssl.SSLContext`` (OpenSSL): ``tls_args`` for its
SCU, ``ssl_context`` for its SCP. Mutual TLS in both directions, certificates from the
session's throwaway PKI; what arrives must equal what was sent.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import securepdu
from securepdu import _synthetic
from securepdu.errors import ClientCertificateError, TLSError, UntrustedCertificateError
from securepdu.tls import TLSConfig
from tls_pki import PKI, Issued

from peers import SCP_AET, assert_stored_like, by_instance, same

try:
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification
except ImportError as exc:  # a missing peer fails the run: install the `test` extra
    raise ImportError(f"pynetdicom is required for the interop tests (pip install pynetdicom==3.0.4): {exc}") from exc

PEER_AET = "PYNETDICOM"
QUICK: dict[str, Any] = {"timeout": 10.0, "acse_timeout": 10.0, "dimse_timeout": 20.0}


def sop_classes(paths: list[Path]) -> list[str]:
    seen: list[str] = []
    for p in paths:
        meta, _ = _synthetic.split_part10(p)
        uid = str(meta.MediaStorageSOPClassUID)
        if uid not in seen:
            seen.append(uid)
    return seen


def client_context(pki: PKI, issued: Issued | None = None, *, ca: Path | None = None) -> ssl.SSLContext:
    """An OpenSSL client context: trusts the test CA, checks the host name, presents a
    client certificate (``issued``, default MODALITY1)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca or pki.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    issued = issued or pki.client
    ctx.load_cert_chain(str(issued.cert), str(issued.key))
    return ctx


def server_context(pki: PKI, *, require_client_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def scp_tls(pki: PKI, **options: Any) -> TLSConfig:
    return TLSConfig(cert=pki.server.cert, key=pki.server.key, ca=pki.ca, **options)


def scu_tls(pki: PKI, **options: Any) -> TLSConfig:
    options.setdefault("ca", pki.ca)
    return TLSConfig(cert=pki.client.cert, key=pki.client.key, **options)


# ------------------------------------------------------ pynetdicom SCU -> securepdu SCP


def test_pynetdicom_tls_echo_into_storage_scp(loopback: str, storage_scp: Any, pki: PKI) -> None:
    scp = storage_scp(loopback, tls=scp_tls(pki))
    ae = AE(ae_title=PEER_AET)
    ae.add_requested_context(Verification)
    assoc = ae.associate(loopback, scp.port, ae_title=SCP_AET, tls_args=(client_context(pki), loopback))
    assert assoc.is_established, "pynetdicom could not associate with securepdu's TLS SCP"
    try:
        sock = assoc.dul.socket.socket
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        status = assoc.send_c_echo()
        assert status and status.Status == 0x0000
    finally:
        assoc.release()
    assert not assoc.is_established


@pytest.mark.parametrize(
    "transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"]
)
def test_pynetdicom_tls_store_into_storage_scp(
    loopback: str, storage_scp: Any, study: list[Path], pki: PKI, transfer_syntax: str
) -> None:
    scp = storage_scp(loopback, tls=scp_tls(pki))
    ae = AE(ae_title=PEER_AET)
    for uid in sop_classes(study):
        ae.add_requested_context(uid, [transfer_syntax])
    assoc = ae.associate(loopback, scp.port, ae_title=SCP_AET, tls_args=(client_context(pki), loopback))
    assert assoc.is_established
    sent: dict[str, Path] = {}
    try:
        for path in study:
            ds = pydicom.dcmread(path)
            status = assoc.send_c_store(ds)
            assert status and status.Status == 0x0000, f"{path}: status {status}"
            sent[str(ds.SOPInstanceUID)] = path
    finally:
        assoc.release()
    stored = scp.stored()
    assert set(stored) == set(sent)
    for uid, path in sent.items():
        event = stored[uid]
        assert event.peer_address[0] == loopback
        assert "CN=MODALITY1" in (event.peer_certificate_subject or ""), event.peer_certificate_subject
        assert_stored_like(path, event, storage=scp.storage, calling_ae=PEER_AET, transfer_syntax=transfer_syntax)


def test_pynetdicom_tls12_into_storage_scp(storage_scp: Any, study: list[Path], pki: PKI) -> None:
    """OpenSSL held to TLS 1.2: rustls meets it with an ECDHE AES-GCM suite."""
    scp = storage_scp("127.0.0.1", tls=scp_tls(pki))
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ae = AE(ae_title=PEER_AET)
    ae.add_requested_context(sop_classes(study[:1])[0], [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=SCP_AET, tls_args=(ctx, "127.0.0.1"))
    assert assoc.is_established
    try:
        sock = assoc.dul.socket.socket
        assert sock.version() == "TLSv1.2"
        name, _, _ = sock.cipher()
        assert name.startswith("ECDHE-") and "GCM" in name, name
        assert assoc.send_c_store(pydicom.dcmread(study[0])).Status == 0
    finally:
        assoc.release()
    assert len(scp.stored()) == 1


def test_pynetdicom_without_client_certificate_is_refused(storage_scp: Any, pki: PKI) -> None:
    scp = storage_scp("127.0.0.1", tls=scp_tls(pki))
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))  # no certificate
    ae = AE(ae_title=PEER_AET)
    ae.add_requested_context(Verification)
    ae.acse_timeout = 10
    ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=SCP_AET, tls_args=(ctx, "127.0.0.1"))
    assert not assoc.is_established
    # and a good client afterwards
    good = ae.associate("127.0.0.1", scp.port, ae_title=SCP_AET, tls_args=(client_context(pki), "127.0.0.1"))
    assert good.is_established
    good.release()


# ------------------------------------------------------ securepdu SCU -> pynetdicom SCP


class PynetdicomTLSSCP:
    """pynetdicom's storage SCP with an SSLContext, in this process."""

    def __init__(self, host: str, sop_class_uids: list[str], ctx: ssl.SSLContext) -> None:
        self.received: dict[str, pydicom.Dataset] = {}
        self.peer_certs: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.ae = AE(ae_title=PEER_AET)
        self.ae.add_supported_context(Verification)
        for uid in sop_class_uids:
            self.ae.add_supported_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        self.server = self.ae.start_server(
            (host, 0), block=False, ssl_context=ctx,
            evt_handlers=[(evt.EVT_C_STORE, self.on_store), (evt.EVT_C_ECHO, self.on_echo)],
        )
        self.port = int(self.server.server_address[1])

    def _note_peer(self, event: Any) -> None:
        sock = event.assoc.dul.socket.socket
        cert = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
        with self.lock:
            self.peer_certs.append(cert or {})

    def on_echo(self, event: Any) -> int:
        self._note_peer(event)
        return 0x0000

    def on_store(self, event: Any) -> int:
        self._note_peer(event)
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self.lock:
            self.received[str(ds.SOPInstanceUID)] = ds
        return 0x0000

    def peer_common_names(self) -> set[str]:
        with self.lock:
            return {v for cert in self.peer_certs for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"}

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def pynetdicom_tls_scp(study: list[Path], pki: PKI) -> Iterator[Any]:
    servers: list[PynetdicomTLSSCP] = []

    def start(host: str, ctx: ssl.SSLContext | None = None) -> PynetdicomTLSSCP:
        s = PynetdicomTLSSCP(host, sop_classes(study), ctx or server_context(pki))
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_securepdu_tls_echo_into_pynetdicom(loopback: str, pynetdicom_tls_scp: Any, pki: PKI) -> None:
    peer = pynetdicom_tls_scp(loopback)
    with securepdu.associate(loopback, peer.port, called_ae=PEER_AET, tls=scu_tls(pki), **QUICK) as assoc:
        assert assoc.tls_version in ("TLSv1.2", "TLSv1.3")
        assert assoc.peer_address[0] == loopback
        assert assoc.echo() == 0x0000
    assert peer.peer_common_names() == {"MODALITY1"}


def test_securepdu_tls_store_into_pynetdicom(
    loopback: str, pynetdicom_tls_scp: Any, study: list[Path], pki: PKI
) -> None:
    peer = pynetdicom_tls_scp(loopback)
    with securepdu.associate(
        loopback, peer.port, called_ae=PEER_AET, contexts=securepdu.contexts_for(study), tls=scu_tls(pki), **QUICK
    ) as assoc:
        assert assoc.tls_version == "TLSv1.3"
        results = [assoc.store(p) for p in study]
    assert all(r.ok and r.status == 0 for r in results), results
    sent = by_instance(study)
    assert set(peer.received) == set(sent)
    for uid, path in sent.items():
        assert same(peer.received[uid], pydicom.dcmread(path)), f"{path} arrived different"
    assert peer.peer_common_names() == {"MODALITY1"}


@pytest.mark.parametrize(
    "cipher", ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
)
def test_securepdu_tls12_send_into_pynetdicom(
    pynetdicom_tls_scp: Any, study: list[Path], pki: PKI, cipher: str
) -> None:
    peer = pynetdicom_tls_scp("127.0.0.1")
    results = securepdu.send(
        "127.0.0.1", peer.port, [study[0].parent.parent], called_ae=PEER_AET, tls=scu_tls(pki, ciphers=[cipher]), **QUICK
    )
    assert len(results) == len(study) and all(r.ok for r in results), results
    for r in results:
        assert r.path is not None
        assert same(peer.received[str(r.sop_instance_uid)], pydicom.dcmread(r.path))


def test_securepdu_without_client_certificate_is_refused_by_pynetdicom(pynetdicom_tls_scp: Any, pki: PKI) -> None:
    peer = pynetdicom_tls_scp("127.0.0.1")
    with pytest.raises(TLSError) as info:
        with securepdu.associate("127.0.0.1", peer.port, called_ae=PEER_AET, tls=TLSConfig(ca=pki.ca), **QUICK) as assoc:
            assoc.echo()
    assert isinstance(info.value, ClientCertificateError), f"{type(info.value).__name__}: {info.value}"


def test_securepdu_refuses_pynetdicom_with_an_untrusted_certificate(pynetdicom_tls_scp: Any, pki: PKI) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.untrusted_server.cert), str(pki.untrusted_server.key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    peer = pynetdicom_tls_scp("127.0.0.1", ctx)
    with pytest.raises(UntrustedCertificateError):
        securepdu.associate("127.0.0.1", peer.port, called_ae=PEER_AET, tls=scu_tls(pki), **QUICK)
