"""securepdu against pynetdicom 3.0.4, both directions, on 127.0.0.1 and ::1.

pynetdicom runs in this process (its SCP with ``block=False``); what arrives must
equal what was sent, dataset for dataset.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

import securepdu
from securepdu import _synthetic

from peers import SCP_AET, assert_stored_like, by_instance, same

try:
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification
except ImportError as exc:  # a missing peer fails the run: install the `test` extra
    raise ImportError(f"pynetdicom is required for the interop tests (pip install pynetdicom==3.0.4): {exc}") from exc

PEER_AET = "PYNETDICOM"


def sop_classes(paths: list[Path]) -> list[str]:
    seen: list[str] = []
    for p in paths:
        meta, _ = _synthetic.split_part10(p)
        uid = str(meta.MediaStorageSOPClassUID)
        if uid not in seen:
            seen.append(uid)
    return seen


# ------------------------------------------------------ pynetdicom SCU -> securepdu SCP


def test_pynetdicom_echo_into_storage_scp(loopback: str, storage_scp: Any) -> None:
    scp = storage_scp(loopback)
    ae = AE(ae_title=PEER_AET)
    ae.add_requested_context(Verification)
    assoc = ae.associate(loopback, scp.port, ae_title=SCP_AET)
    assert assoc.is_established, "pynetdicom could not associate with securepdu's SCP"
    try:
        status = assoc.send_c_echo()
        assert status and status.Status == 0x0000
    finally:
        assoc.release()
    assert not assoc.is_established


@pytest.mark.parametrize(
    "transfer_syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"]
)
def test_pynetdicom_store_into_storage_scp(
    loopback: str, storage_scp: Any, study: list[Path], transfer_syntax: str
) -> None:
    scp = storage_scp(loopback)
    ae = AE(ae_title=PEER_AET)
    for uid in sop_classes(study):
        ae.add_requested_context(uid, [transfer_syntax])
    assoc = ae.associate(loopback, scp.port, ae_title=SCP_AET)
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
    # Exactly the objects (and the SCP's manifest of them), nothing else.
    names = sorted(p.name for p in scp.storage.iterdir() if p.name != "securepdu-manifest.jsonl")
    assert names == sorted(f"{uid}.dcm" for uid in sent)
    for uid, path in sent.items():
        event = stored[uid]
        assert event.called_ae == SCP_AET
        assert event.peer_address[0] == loopback
        assert_stored_like(path, event, storage=scp.storage, calling_ae=PEER_AET, transfer_syntax=transfer_syntax)
        # and the handler's view of it
        assert same(event.dataset(), pydicom.dcmread(path))


def test_ipv4_peer_of_dual_stack_scp_is_reported_as_ipv4(storage_scp: Any, study: list[Path]) -> None:
    """An SCP on [::] takes IPv4 too, and names the peer 127.0.0.1, not ::ffff:127.0.0.1."""
    scp = storage_scp("::")
    ae = AE(ae_title=PEER_AET)
    ae.add_requested_context(sop_classes(study[:1])[0], [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=SCP_AET)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(pydicom.dcmread(study[0]))
        assert status.Status == 0
    finally:
        assoc.release()
    (event,) = scp.stored().values()
    assert event.peer_address[0] == "127.0.0.1"


# ------------------------------------------------------ securepdu SCU -> pynetdicom SCP


class PynetdicomSCP:
    """pynetdicom's storage SCP in this process, keeping what it receives."""

    def __init__(self, host: str, sop_class_uids: list[str]) -> None:
        self.received: dict[str, pydicom.Dataset] = {}
        self.calling: list[str] = []
        self.lock = threading.Lock()
        self.ae = AE(ae_title=PEER_AET)
        self.ae.add_supported_context(Verification)
        for uid in sop_class_uids:
            self.ae.add_supported_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        self.server = self.ae.start_server(
            (host, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self.on_store)]
        )
        self.port = int(self.server.server_address[1])

    def on_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self.lock:
            self.received[str(ds.SOPInstanceUID)] = ds
            self.calling.append(str(event.assoc.requestor.ae_title).strip())
        return 0x0000

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def pynetdicom_scp(study: list[Path]) -> Iterator[Any]:
    servers: list[PynetdicomSCP] = []

    def start(host: str) -> PynetdicomSCP:
        s = PynetdicomSCP(host, sop_classes(study))
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_securepdu_echo_into_pynetdicom(loopback: str, pynetdicom_scp: Any) -> None:
    peer = pynetdicom_scp(loopback)
    with securepdu.associate(loopback, peer.port, called_ae=PEER_AET, calling_ae="SECUREPDU") as assoc:
        assert assoc.is_established
        assert assoc.peer_address[0] == loopback
        assert assoc.echo() == 0x0000
    assert not assoc.is_established


def test_securepdu_store_files_into_pynetdicom(loopback: str, pynetdicom_scp: Any, study: list[Path]) -> None:
    peer = pynetdicom_scp(loopback)
    with securepdu.associate(
        loopback, peer.port, called_ae=PEER_AET, contexts=securepdu.contexts_for(study)
    ) as assoc:
        results = [assoc.store(p) for p in study]
    assert all(r.ok and r.status == 0 for r in results), results
    sent = by_instance(study)
    assert set(peer.received) == set(sent)
    assert set(peer.calling) == {"SECUREPDU"}
    for uid, path in sent.items():
        got = peer.received[uid]
        assert same(got, pydicom.dcmread(path)), f"{path} arrived different"
        assert got.file_meta.MediaStorageSOPClassUID == pydicom.dcmread(path).SOPClassUID


def test_securepdu_store_datasets_into_pynetdicom(loopback: str, pynetdicom_scp: Any, study: list[Path]) -> None:
    """A pydicom Dataset (no file) is encoded once in the negotiated syntax."""
    peer = pynetdicom_scp(loopback)
    datasets = [pydicom.dcmread(p) for p in study]
    for ds in datasets:
        del ds.file_meta  # an in-memory dataset, as an application builds it
    contexts = [(str(ds.SOPClassUID), [ImplicitVRLittleEndian]) for ds in datasets]
    with securepdu.associate(loopback, peer.port, called_ae=PEER_AET, contexts=contexts) as assoc:
        results = [assoc.store(ds) for ds in datasets]
    assert all(r.ok for r in results), results
    for ds in datasets:
        assert same(peer.received[str(ds.SOPInstanceUID)], ds)
        assert peer.received[str(ds.SOPInstanceUID)].file_meta.TransferSyntaxUID == ImplicitVRLittleEndian


def test_securepdu_send_folder_into_pynetdicom(loopback: str, pynetdicom_scp: Any, study: list[Path]) -> None:
    peer = pynetdicom_scp(loopback)
    # pynetdicom answers our window proposal with 1: one C-STORE at a time.
    with securepdu.associate(loopback, peer.port, called_ae=PEER_AET) as assoc:
        assert assoc.async_window == 1
    seen: list[tuple[int, int]] = []
    folder = study[0].parent.parent
    results = securepdu.send(
        loopback, peer.port, [folder], called_ae=PEER_AET, progress=lambda d, t, r: seen.append((d, t))
    )
    assert len(results) == len(study)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert seen[-1] == (len(study), len(study))
    assert set(peer.received) == set(by_instance(study))
    for r in results:
        assert r.path is not None
        assert same(peer.received[str(r.sop_instance_uid)], pydicom.dcmread(r.path))
