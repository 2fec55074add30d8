"""securepdu against dcmtk 3.6.7 (Debian), both directions, on 127.0.0.1.

dcmtk 3.6.7 has no IPv6, so only IPv4 here. Its tools run as subprocesses with a
timeout; storescp is stopped by its PID at the end of each test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

import securepdu
from securepdu import _synthetic

from peers import (
    SCP_AET,
    Dcmtk,
    assert_stored_like,
    by_instance,
    free_port,
    run_tool,
    stop_process,
    wait_listening,
)

HOST = "127.0.0.1"
PEER_AET = "DCMTK"


# ------------------------------------------------------------ dcmtk SCU -> securepdu SCP


def test_echoscu_into_storage_scp(dcmtk: Dcmtk, storage_scp: Any) -> None:
    scp = storage_scp(HOST)
    done = run_tool([dcmtk.echoscu, "-aet", PEER_AET, "-aec", SCP_AET, HOST, str(scp.port)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "options",
    [[], ["-xi"], ["-pdu", "131072", "+sd", "+r"]],
    ids=["default", "implicit-only", "folder-pdu131072"],
)
def test_storescu_into_storage_scp(dcmtk: Dcmtk, storage_scp: Any, study: list[Path], options: list[str]) -> None:
    scp = storage_scp(HOST)
    inputs = [str(study[0].parent.parent)] if "+sd" in options else [str(p) for p in study]
    done = run_tool([dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, *options, HOST, str(scp.port), *inputs])
    assert done.returncode == 0, done.stdout + done.stderr
    stored = scp.stored()
    sent = by_instance(study)
    assert set(stored) == set(sent)
    for uid, path in sent.items():
        assert_stored_like(path, stored[uid], storage=scp.storage, calling_ae=PEER_AET)
        if "-xi" in options:
            assert stored[uid].transfer_syntax == pydicom.uid.ImplicitVRLittleEndian


def test_storescu_with_wrong_called_aet_is_rejected(dcmtk: Dcmtk, storage_scp: Any, study: list[Path]) -> None:
    scp = storage_scp(HOST, require_called_ae=True)
    done = run_tool([dcmtk.storescu, "-aet", PEER_AET, "-aec", "NOT-THE-SCP", HOST, str(scp.port), str(study[0])])
    assert done.returncode != 0
    assert "reject" in (done.stdout + done.stderr).lower()
    assert not list(scp.storage.glob("*.dcm"))


# ------------------------------------------------------------ securepdu SCU -> dcmtk SCP


class Storescp:
    def __init__(self, tool: str, out_dir: Path, *extra: str) -> None:
        self.port = free_port(HOST)
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [tool, "-aet", "STORESCP", "-od", str(out_dir), *extra, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_listening(self.port, self.proc)

    def received(self) -> dict[str, Path]:
        return by_instance(sorted(p for p in self.out_dir.iterdir() if p.is_file()))

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def storescp(dcmtk: Dcmtk, tmp_path: Path) -> Iterator[Any]:
    started: list[Storescp] = []

    def start(*extra: str) -> Storescp:
        s = Storescp(dcmtk.storescp, tmp_path / f"storescp{len(started)}", *extra)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_securepdu_echo_into_storescp(storescp: Any) -> None:
    peer = storescp()
    with securepdu.associate(HOST, peer.port, called_ae="STORESCP") as assoc:
        assert assoc.echo() == 0


@pytest.mark.parametrize("pdu", ["16384", "131072"])
def test_securepdu_store_into_storescp(storescp: Any, study: list[Path], pdu: str) -> None:
    peer = storescp("-pdu", pdu)
    with securepdu.associate(HOST, peer.port, called_ae="STORESCP", contexts=securepdu.contexts_for(study)) as assoc:
        assert assoc.peer_max_pdu == int(pdu)
        results = [assoc.store(p) for p in study]
    assert all(r.ok and r.status == 0 for r in results), results
    got = peer.received()
    sent = by_instance(study)
    assert set(got) == set(sent)
    for uid, path in sent.items():
        assert _synthetic.same_dataset(path, got[uid]), f"{path} arrived different"


def test_securepdu_send_into_storescp(storescp: Any, study: list[Path]) -> None:
    peer = storescp()
    # storescp answers no asynchronous operations window: one C-STORE at a time.
    with securepdu.associate(HOST, peer.port, called_ae="STORESCP") as assoc:
        assert assoc.async_window == 1
    results = securepdu.send(HOST, peer.port, [study[0].parent.parent], called_ae="STORESCP")
    assert len(results) == len(study) and all(r.ok for r in results), results
    got = peer.received()
    for r in results:
        assert r.path is not None
        assert _synthetic.same_dataset(r.path, got[str(r.sop_instance_uid)])


def test_securepdu_store_cli_into_storescp(storescp: Any, study: list[Path]) -> None:
    """The `securepdu store` command against storescp: exit 0 and the closing line."""
    import sys

    peer = storescp()
    done = subprocess.run(
        [sys.executable, "-m", "securepdu", "store", HOST, str(peer.port), "-aec", "STORESCP", str(study[0].parent.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"sent {len(study)} objects (" in done.stdout
    assert set(peer.received()) == set(by_instance(study))


def test_storescu_into_securepdu_listen(dcmtk: Dcmtk, study: list[Path], tmp_path: Path) -> None:
    """storescu into the `securepdu listen` command (a separate process), then SIGTERM."""
    import sys

    port = free_port(HOST)
    out = tmp_path / "incoming"
    proc = subprocess.Popen(
        [sys.executable, "-m", "securepdu", "listen", str(port), "--bind", HOST, "--aet", SCP_AET, "--output-dir", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_listening(port, proc)
        done = run_tool([dcmtk.storescu, "-aet", PEER_AET, "-aec", SCP_AET, HOST, str(port), *map(str, study)])
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        stop_process(proc)
    log = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, log
    assert log.count("stored ") == len(study), log
    assert "shutting down" in log
    got = by_instance(sorted(out.glob("*.dcm")))
    for uid, path in by_instance(study).items():
        assert _synthetic.same_dataset(path, got[uid])
