"""Who may associate with a StorageSCP, and its limits, through the Python API
and the command line: AE title and network allow-lists, user identity (from
securepdu and from pynetdicom), per-peer limits, object size, free space."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import Verification

import securepdu
from securepdu.errors import AssociationRejected
from securepdu.scp import STATUS_OUT_OF_SPACE

CT = "1.2.840.10008.5.1.4.1.1.2"


def _ct(size: int = 1000) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Policy^Test"
    # Private bytes: pydicom needs no image attributes to encode them.
    ds.add_new(0x00090010, "LO", "SECUREPDU TEST")
    ds.add_new(0x00091010, "OB", bytes(size))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _reason(exc: pytest.ExceptionInfo[AssociationRejected]) -> tuple[int, int, int]:
    return exc.value.result, exc.value.source, exc.value.reason


def test_calling_ae_and_network_allow_lists(tmp_path: Path) -> None:
    with securepdu.StorageSCP("STORE", tmp_path, calling_aes=["CT1"], networks=["127.0.0.0/8", "::1"]).start(
        "::", 0
    ) as scp:
        with pytest.raises(AssociationRejected) as exc:
            securepdu.associate("127.0.0.1", scp.port, calling_ae="MR9")
        assert _reason(exc) == (1, 1, 3)
        for host in ("127.0.0.1", "::1"):
            with securepdu.associate(host, scp.port, calling_ae="CT1") as assoc:
                assert assoc.echo() == 0
    with securepdu.StorageSCP("STORE", tmp_path, networks=["198.18.0.0/15", "2001:2::/48"]).start("::", 0) as scp:
        for host in ("127.0.0.1", "::1"):
            with pytest.raises(AssociationRejected) as exc:
                securepdu.associate(host, scp.port)
            assert _reason(exc) == (1, 1, 1)
    with pytest.raises(ValueError, match="CIDR"):
        securepdu.StorageSCP("STORE", tmp_path, networks=["10.0.0.0/33"]).start("127.0.0.1", 0)


def test_user_identity_from_securepdu_and_pynetdicom(tmp_path: Path) -> None:
    seen: list[securepdu.UserIdentity] = []

    def verify(identity: securepdu.UserIdentity) -> bool | bytes:
        seen.append(identity)
        if identity.kind == 5:
            return b"server-token" if identity.primary == b"good.jwt" else False
        return identity.primary == b"alice" and identity.secondary == b"s3cret"

    with securepdu.StorageSCP("STORE", tmp_path, on_user_identity=verify, require_user_identity=True).start(
        "127.0.0.1", 0
    ) as scp:
        with pytest.raises(AssociationRejected) as exc:
            securepdu.associate("127.0.0.1", scp.port)
        assert _reason(exc) == (1, 1, 1)
        with securepdu.associate(
            "127.0.0.1", scp.port, user_identity=securepdu.Identity.username("alice", "s3cret")
        ) as assoc:
            assert assoc.echo() == 0
            assert assoc.user_identity_response is None  # not asked for
        with securepdu.associate("127.0.0.1", scp.port, user_identity=securepdu.Identity.jwt("good.jwt")) as assoc:
            assert assoc.user_identity_response == b"server-token"
        with pytest.raises(AssociationRejected):
            securepdu.associate("127.0.0.1", scp.port, user_identity=securepdu.Identity.jwt("forged.jwt"))

        # A standard peer: pynetdicom's user identity negotiation.
        ae = AE(ae_title="PND")
        ae.add_requested_context(Verification)
        item = UserIdentityNegotiation()
        item.user_identity_type = 2
        item.primary_field = b"alice"
        item.secondary_field = b"s3cret"
        item.positive_response_requested = True
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORE", ext_neg=[item])
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
        item.secondary_field = b"guess"
        refused = ae.associate("127.0.0.1", scp.port, ae_title="STORE", ext_neg=[item])
        assert not refused.is_established
    assert [(i.kind_name, i.primary) for i in seen][:2] == [("username and passcode", b"alice"), ("JWT", b"good.jwt")]
    assert seen[-1].peer_address[0] == "127.0.0.1" and seen[-1].secondary == b"guess"


def test_per_peer_limit(tmp_path: Path) -> None:
    with securepdu.StorageSCP("STORE", tmp_path, max_associations_per_peer=1).start("127.0.0.1", 0) as scp:
        with securepdu.associate("127.0.0.1", scp.port) as first:
            with pytest.raises(AssociationRejected) as exc:
                securepdu.associate("127.0.0.1", scp.port)
            assert _reason(exc) == (2, 3, 2)
            assert first.echo() == 0


def test_object_size_and_free_space_limits_leave_no_file(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    with securepdu.StorageSCP("STORE", inbox, max_object_size=50_000).start("127.0.0.1", 0) as scp:
        with securepdu.associate("127.0.0.1", scp.port, contexts=[(CT, [ExplicitVRLittleEndian])]) as assoc:
            big = assoc.store(_ct(100_000))
            assert big.status == 0xA700 and "limit" in (big.error_comment or "")
            assert assoc.store(_ct(1000)).ok
    with securepdu.StorageSCP("STORE", inbox, min_free_space=1 << 62).start("127.0.0.1", 0) as scp:
        with securepdu.associate("127.0.0.1", scp.port, contexts=[(CT, [ExplicitVRLittleEndian])]) as assoc:
            full = assoc.store(_ct())
            assert full.status == STATUS_OUT_OF_SPACE and "reserve" in (full.error_comment or "")
    stored = [p for p in inbox.iterdir() if p.suffix == ".dcm"]
    assert len(stored) == 1
    assert not [p for p in inbox.iterdir() if p.name.endswith(".partial")]


def test_listen_command_line_limits(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "securepdu", "listen", "--allow-net", "10.0.0.0/99", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "CIDR" in out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "securepdu", "listen", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for flag in ("--allow-aet", "--allow-net", "--max-per-peer", "--max-object-size", "--min-free", "--shutdown-grace"):
        assert flag in help_text
