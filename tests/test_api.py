"""The Python API between securepdu peers: context choice, conversion, splitting
across associations, error classes."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

import securepdu
from securepdu import errors, uids
from securepdu._synthetic import make_dataset

# Storage SOP classes of PS3.4 Annex B; the SCP accepts every one.
_STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."


def _minimal(sop_class: str, ts: str = uids.EXPLICIT_VR_LITTLE_ENDIAN) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Api^Test"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture
def scp(tmp_path: Path):  # type: ignore[no-untyped-def]
    seen: list[securepdu.StoreEvent] = []
    server = securepdu.StorageSCP("STORE", tmp_path / "in", on_store=seen.append).start("127.0.0.1", 0)
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    server.shutdown()


def test_implicit_file_is_sent_as_is_when_its_syntax_is_accepted(scp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ds = make_dataset("CT", 64, 64)
    path = tmp_path / "ct.dcm"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    with securepdu.associate("127.0.0.1", scp.port, called_ae="STORE", contexts=securepdu.contexts_for([path])) as a:
        ctx = a.context_for(str(ds.SOPClassUID))
        assert ctx is not None and ctx.transfer_syntax == ImplicitVRLittleEndian
        assert a.store(path).ok
    event = scp.seen[0]
    assert event.transfer_syntax == ImplicitVRLittleEndian
    assert event.dataset().PixelData == ds.PixelData


def test_dataset_is_converted_to_an_accepted_syntax(scp) -> None:  # type: ignore[no-untyped-def]
    ds = make_dataset("MR", 32, 32)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    # Propose explicit VR only: the dataset must be re-encoded, once, in it.
    contexts = [(str(ds.SOPClassUID), [uids.EXPLICIT_VR_LITTLE_ENDIAN])]
    with securepdu.associate("127.0.0.1", scp.port, contexts=contexts) as a:
        result = a.store(ds)
    assert result.ok and result.sop_instance_uid == ds.SOPInstanceUID
    stored = dcmread(scp.seen[0].path)
    assert stored.file_meta.TransferSyntaxUID == uids.EXPLICIT_VR_LITTLE_ENDIAN
    assert stored.PixelData == ds.PixelData and stored.PatientName == ds.PatientName


def test_compressed_object_without_its_context_is_refused_locally(scp) -> None:  # type: ignore[no-untyped-def]
    ds = _minimal(_STORAGE_ROOT + "7", JPEGBaseline8Bit)
    with securepdu.associate("127.0.0.1", scp.port, contexts=[(_STORAGE_ROOT + "7", [uids.EXPLICIT_VR_LITTLE_ENDIAN])]) as a:
        with pytest.raises(securepdu.NoPresentationContext, match="1.2.840.10008.1.2.4.50"):
            a.store(ds)
        assert a.echo() == 0  # the association is still usable
    assert scp.seen == []


def test_send_splits_when_contexts_do_not_fit_one_association(scp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Each (SOP class, transfer syntax) pair needs a context of its own, and one
    # association carries 128 at most: 26 classes x 11 syntaxes need three.
    classes = [_STORAGE_ROOT + c for c in ("1", "2", "4", "7", "6.1", "12.1", "128", "481.2")]
    classes += [f"{_STORAGE_ROOT}88.{n}" for n in (11, 22, 33, 34, 35, 40, 50, 59, 65, 67, 69, 70, 71, 72, 73, 74, 75, 76)]
    syntaxes = [uids.EXPLICIT_VR_LITTLE_ENDIAN, uids.IMPLICIT_VR_LITTLE_ENDIAN, uids.EXPLICIT_VR_BIG_ENDIAN]
    syntaxes += [f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91)]
    paths = []
    for sop_class in classes:
        for ts in syntaxes:
            ds = _minimal(sop_class, ts)
            path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    assert len({(c, t) for c in classes for t in syntaxes}) > 128
    progress: list[int] = []
    results = securepdu.send("127.0.0.1", scp.port, paths, progress=lambda done, total, r: progress.append(done))
    assert len(results) == len(paths) and progress == list(range(1, len(paths) + 1))
    failed = [(r.path, r.status, r.error) for r in results if not r.ok]
    assert failed == []
    peers = {e.peer_address for e in scp.seen}
    assert len(peers) == 3, "expected the objects to be spread over three associations"
    assert {e.sop_instance_uid for e in scp.seen} == {dcmread(p).SOPInstanceUID for p in paths}


def test_send_keeps_a_window_of_stores_in_flight_and_reports_in_order(tmp_path: Path) -> None:
    # The handler holds up the first object, so the SCP answers later ones
    # first; send() still returns (and reports progress) in the files' order.
    paths = []
    for i in range(24):
        ds = _minimal(_STORAGE_ROOT + "2")
        path = tmp_path / f"{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    first = str(dcmread(paths[0]).SOPInstanceUID)
    answered: list[str] = []

    def on_store(event: securepdu.StoreEvent) -> None:
        if event.sop_instance_uid == first:
            time.sleep(0.3)
        answered.append(event.sop_instance_uid)

    with securepdu.StorageSCP("STORE", tmp_path / "in", on_store=on_store).start("127.0.0.1", 0) as scp:
        with securepdu.associate("127.0.0.1", scp.port) as assoc:
            assert assoc.async_window == securepdu.DEFAULT_MAX_OPS
        order: list[Path | None] = []
        results = securepdu.send("127.0.0.1", scp.port, paths, progress=lambda d, t, r: order.append(r.path))
    assert [r.path for r in results] == paths == order
    assert all(r.ok for r in results), results
    assert answered[0] != first, "expected later objects to be answered before the held-up one"
    with securepdu.StorageSCP("STORE", tmp_path / "sync", max_ops=1).start("127.0.0.1", 0) as scp:
        with securepdu.associate("127.0.0.1", scp.port) as assoc:
            assert assoc.async_window == 1
        assert all(r.ok for r in securepdu.send("127.0.0.1", scp.port, paths[:3]))


def test_send_reports_non_dicom_files_and_goes_on(scp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.dcm"
    _minimal(_STORAGE_ROOT + "2").save_as(good, enforce_file_format=True)
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    results = securepdu.send("127.0.0.1", scp.port, [junk, good])
    assert [r.path for r in results] == [junk, good]
    assert not results[0].ok and "Part 10" in (results[0].error or "")
    assert results[1].ok


@pytest.mark.parametrize(
    "exc",
    [
        errors.AssociationRejected(result=1, source=1, reason=7),
        errors.AssociationAborted(source=2, reason=6),
        errors.DIMSEStatusError(status=0xA700, error_comment="disk full"),
    ],
)
def test_errors_pickle_with_their_codes_and_read_well(exc: errors.SecurePDUError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc) and vars(back) == vars(exc)


def test_rejection_message_is_a_sentence() -> None:
    exc = errors.AssociationRejected(result=1, source=1, reason=7)
    assert "called AE title not recognised" in str(exc)
    assert "local limit exceeded" in str(errors.AssociationRejected(result=2, source=3, reason=2))


def test_connection_refused_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connect is refused
        with pytest.raises(securepdu.NetworkError, match="cannot connect"):
            securepdu.associate("127.0.0.1", port, timeout=5)


def test_sending_files_does_not_import_pydicom(scp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # pydicom (with numpy and PIL) is most of a command's start-up time, and a file
    # in a syntax the peer accepts is never decoded: only a data set needs it.
    path = tmp_path / "ct.dcm"
    make_dataset("CT", 32, 32).save_as(path, enforce_file_format=True)
    script = (
        "import sys, securepdu, securepdu.cli\n"
        f"results = securepdu.send('127.0.0.1', {scp.port}, [{str(path)!r}], called_ae='STORE')\n"
        "assert [r.ok for r in results] == [True], results\n"
        "print(sorted(m for m in ('pydicom', 'numpy', 'PIL') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(scp.seen) == 1
