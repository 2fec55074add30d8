"""`securepdu gateway` between real peers: dcmtk storescu (plain, 127.0.0.1) ->
gateway A -> gateway B over mutual TLS on ::1 -> dcmtk storescp or Orthanc
(127.0.0.1). Gateway A runs in-process (the Python API); gateway B is the
`securepdu gateway --config FILE` command. What arrives must equal what was
sent; refusals must carry the right A-ASSOCIATE-RJ; a receiver killed in the
middle of an object must never let the sender see Success.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from peers import (
    SUBPROCESS_TIMEOUT,
    by_instance,
    free_port,
    ipv6_loopback_problem,
    run_tool,
    stop_process,
    wait_listening,
)
from pydicom import dcmread

import securepdu
from securepdu import _synthetic
from securepdu.gateway import Gateway, GatewayRecord, Route

ORTHANC = os.environ.get("ORTHANC", "/usr/sbin/Orthanc")


def _need_ipv6() -> None:
    problem = ipv6_loopback_problem()
    if problem:
        pytest.fail(f"the gateway tests need a ::1 loopback: {problem}")


@dataclass
class Records:
    """What a gateway logged, one record per association."""

    items: list[GatewayRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: GatewayRecord) -> None:
        with self.lock:
            self.items.append(record)

    def wait(self, n: int, timeout: float = 20.0) -> list[GatewayRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.items) >= n:
                    return list(self.items)
            time.sleep(0.05)
        raise AssertionError(f"{n} association records expected, got {self.items}")


# ----------------------------------------------------------------------- receivers


@pytest.fixture
def storescp(dcmtk: Any, tmp_path: Path) -> Iterator[Any]:
    """A factory for dcmtk storescp on a free port (stopped by PID at the end)."""
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> tuple[subprocess.Popen[str], int, Path]:
        port = free_port()
        out = tmp_path / f"storescp{len(procs)}"
        out.mkdir()
        proc = subprocess.Popen(
            [dcmtk.storescp, "-aet", "STORESCP", "-od", str(out), *extra, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        wait_listening(port, proc)
        return proc, port, out

    yield start
    for p in procs:
        stop_process(p)


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Orthanc in the foreground with its own configuration: DICOM on a free port,
    HTTP off, storage in tmp. Its (DICOM port, storage folder)."""
    if not os.access(ORTHANC, os.X_OK):
        pytest.fail(f"Orthanc is missing ({ORTHANC}): run scripts/install-peers.sh (apt-get install orthanc)")
    port = free_port()
    root = tmp_path / "orthanc"
    storage, index = root / "storage", root / "index"
    storage.mkdir(parents=True)
    index.mkdir()
    config = {
        "Name": "securepdu-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(index),
        "StorageCompression": False,
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "HttpServerEnabled": False,
        "HttpPort": free_port(),
        "RemoteAccessAllowed": False,
        "Plugins": [],
        "DicomScpTimeout": 30,
    }
    cfg = root / "orthanc.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_listening(port, proc)
        yield port, storage
    finally:
        stop_process(proc)


def received_by_uid(folder: Path) -> dict[str, Path]:
    """SOP Instance UID -> file, for every DICOM file under ``folder``."""
    out: dict[str, Path] = {}
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        try:
            ds = dcmread(p, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - index files and the like
            continue
        uid = ds.get("SOPInstanceUID")
        if uid:
            out[str(uid)] = p
    return out


# ----------------------------------------------------------------------- gateways


@dataclass
class Site:
    """Gateway A (in-process, plain inside) and gateway B (the CLI, TLS outside)."""

    a: Gateway
    a_records: Records
    b_port: int
    b_proc: subprocess.Popen[str]


def start_gateway_b(tmp_path: Path, pki: Any, routes: list[dict[str, Any]]) -> tuple[subprocess.Popen[str], int]:
    port = free_port("::1")
    lines = [f'listen = "[::1]:{port}"', "[tls]", f'cert = "{pki.server.cert}"', f'key = "{pki.server.key}"',
             f'ca = "{pki.ca}"', ""]
    for r in routes:
        lines.append("[[route]]")
        for k, v in r.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    cfg = tmp_path / f"gateway-b-{port}.toml"
    cfg.write_text("\n".join(lines))
    proc = subprocess.Popen(
        [sys.executable, "-m", "securepdu", "gateway", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_listening(port, proc)
    return proc, port


def start_gateway_a(b_port: int, pki: Any, *, client: Any = None) -> tuple[Gateway, Records]:
    """Gateway A: plain on 127.0.0.1, every called AE title to gateway B over mutual TLS on ::1."""
    records = Records()
    client = client or pki.client
    route = Route(
        to=f"[::1]:{b_port}",
        name="site-b",
        tls=securepdu.TLSConfig(cert=client.cert, key=client.key, ca=pki.ca),
    )
    gw = Gateway(route, on_association=records, acse_timeout=10, dimse_timeout=30)
    gw.start("127.0.0.1", 0)
    return gw, records


@pytest.fixture
def site(tmp_path: Path, pki: Any, storescp: Any, orthanc: tuple[int, Path]) -> Iterator[tuple[Site, Any, Path, Path]]:
    _need_ipv6()
    _, scp_port, scp_dir = storescp()
    orthanc_port, orthanc_dir = orthanc
    b_proc, b_port = start_gateway_b(
        tmp_path,
        pki,
        [
            {"called_ae": "STORESCP", "to": f"127.0.0.1:{scp_port}", "allow_aet": ["CT1"], "allow_cert_cn": ["MODALITY1"]},
            {"called_ae": "ORTHANC", "to": f"127.0.0.1:{orthanc_port}", "allow_aet": ["CT1"],
             "allow_net": ["::1/128"]},
            {"called_ae": "CNLOCK", "to": f"127.0.0.1:{scp_port}", "to_ae": "STORESCP", "allow_cert_cn": ["SITE-Z"]},
        ],
    )
    a, records = start_gateway_a(b_port, pki)
    try:
        yield Site(a, records, b_port, b_proc), storescp, scp_dir, orthanc_dir
    finally:
        a.shutdown()
        stop_process(b_proc)


def storescu(dcmtk: Any, port: int, called: str, files: list[Path], calling: str = "CT1") -> subprocess.CompletedProcess[str]:
    return run_tool([dcmtk.storescu, "-v", "-aet", calling, "-aec", called, "127.0.0.1", str(port),
                     *map(str, files)])


# ----------------------------------------------------------------------- tests


@pytest.mark.parametrize("receiver", ["STORESCP", "ORTHANC"])
def test_storescu_through_two_gateways(
    receiver: str, site: tuple[Site, Any, Path, Path], dcmtk: Any, study: list[Path]
) -> None:
    s, _, scp_dir, orthanc_dir = site
    done = storescu(dcmtk, s.a.port, receiver, study)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert out.count("Received Store Response (Success)") == len(study), out
    folder = scp_dir if receiver == "STORESCP" else orthanc_dir
    got = received_by_uid(folder)
    sent = by_instance(study)
    assert set(got) == set(sent)
    for uid, path in sent.items():
        assert _synthetic.same_dataset(path, got[uid]), f"{uid} differs after two gateways"
    (record,) = s.a_records.wait(1)
    assert record.ok and record.objects == len(study), record.log_line()
    assert record.calling_ae == "CT1" and record.called_ae == receiver
    # The data sets went through once each (dcmtk may re-encode them on the way: about).
    total = sum(len(_synthetic.dataset_bytes(p)) for p in study)
    assert 0.9 * total < record.bytes < 1.1 * total, (record.bytes, total)
    counters = s.a.counters()["site-b"]
    assert (counters.associations, counters.objects, counters.failures) == (1, len(study), 0)


def test_refusals_carry_the_right_reject(site: tuple[Site, Any, Path, Path], dcmtk: Any, study: list[Path]) -> None:
    s, _, _, _ = site
    cases = [
        ("NOWHERE", "CT1", (1, 1, 7)),  # no route at gateway B, passed back by A
        ("STORESCP", "INTRUDER", (1, 1, 3)),  # calling AE title not allowed
        ("CNLOCK", "CT1", (1, 1, 1)),  # gateway A's certificate CN is not allowed
    ]
    for called, calling, want in cases:
        with pytest.raises(securepdu.AssociationRejected) as info:
            securepdu.associate("127.0.0.1", s.a.port, called_ae=called, calling_ae=calling, timeout=10)
        got = (info.value.result, info.value.source, info.value.reason)
        assert got == want, f"{called}/{calling}: {got}"
    records = s.a_records.wait(3)
    # Each association's thread reports as it ends: in any order.
    assert sorted(r.reject for r in records) == sorted(w for _, _, w in cases)
    assert all(r.result == "rejected" for r in records)
    # dcmtk says so too, and stores nothing.
    done = storescu(dcmtk, s.a.port, "NOWHERE", study[:1])
    assert "Rejected" in done.stdout + done.stderr, done.stdout + done.stderr


def test_untrusted_certificate_is_refused(tmp_path: Path, pki: Any, storescp: Any) -> None:
    """Gateway A presents a certificate from another CA: gateway B ends the TLS
    handshake, and A answers its caller rejected-transient 2/1/1."""
    _need_ipv6()
    _, scp_port, _ = storescp()
    b_proc, b_port = start_gateway_b(tmp_path, pki, [{"to": f"127.0.0.1:{scp_port}"}])
    a, records = start_gateway_a(b_port, pki, client=pki.untrusted_client)
    try:
        with pytest.raises(securepdu.AssociationRejected) as info:
            securepdu.associate("127.0.0.1", a.port, called_ae="STORESCP", calling_ae="CT1", timeout=10)
        assert (info.value.result, info.value.source, info.value.reason) == (2, 1, 1)
        (record,) = records.wait(1)
        assert record.result == "unavailable" and "TLS" in record.detail, record.log_line()
    finally:
        a.shutdown()
        stop_process(b_proc)
    out = b_proc.stdout.read() if b_proc.stdout else ""
    assert "route default" in out


def test_receiver_killed_mid_transfer_is_never_success(
    site: tuple[Site, Any, Path, Path], dcmtk: Any, tmp_path: Path, pki: Any
) -> None:
    s, storescp_factory, _, _ = site
    # A slow receiver (one second per PDU), killed while the object streams in.
    slow, slow_port, _ = storescp_factory("--sleep-during", "1")
    b_proc, b_port = start_gateway_b(tmp_path, pki, [{"to": f"127.0.0.1:{slow_port}"}])
    a, records = start_gateway_a(b_port, pki)
    big = _synthetic.make_large(tmp_path / "big.dcm", 4)
    try:
        sender = subprocess.Popen(
            [dcmtk.storescu, "-v", "-aet", "CT1", "-aec", "STORESCP", "127.0.0.1", str(a.port), str(big)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3)
        assert sender.poll() is None, "the transfer should still be going on"
        slow.send_signal(signal.SIGKILL)
        out, _ = sender.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert "Received Store Response (Success)" not in out, out
        assert sender.returncode != 0 or "Store Failed" in out or "Abort" in out, out
        (record,) = records.wait(1)
        assert record.result == "aborted" and record.objects == 0, record.log_line()
        assert a.counters()["site-b"].failures == 1
    finally:
        a.shutdown()
        stop_process(b_proc)

