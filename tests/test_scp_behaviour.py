"""How securepdu's storage SCP behaves under load, failure and abuse.

- a 200+ MB object is received by an SCP in a separate process with bounded memory;
- 16 associations at once into one SCP lose and mix up nothing;
- an SCP killed mid-transfer leaves no file under a final name and sent no Success;
- rejections: wrong called AE title, unsupported abstract syntax, too many
  associations, a SOP Instance UID that is not a UID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

import securepdu
from securepdu import _synthetic
from securepdu.errors import AssociationRejected, SecurePDUError

HOST = "127.0.0.1"
SCP_AET = "SECUREPDU"

#: Size of the big object, and how much the receiving process's peak RSS may grow
#: while it takes it in: the object must be streamed to disk, never held in memory.
LARGE_MB = 210
RSS_GROWTH_BOUND_MB = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class ListenProcess:
    """`python -m securepdu listen` in its own process, on a free loopback port."""

    def __init__(self, out_dir: Path, *extra: str) -> None:
        self.out_dir = out_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "securepdu", "listen", "0", "--bind", HOST, "--aet", SCP_AET,
             "--output-dir", str(out_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(60):
            self.stop(signal.SIGKILL)
            raise AssertionError("securepdu listen did not start: " + "".join(self.lines))
        if not self.port:
            raise AssertionError("securepdu listen did not say its port: " + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("listening on ") and not self._ready.is_set():
                # "listening on 127.0.0.1:PORT as ..."
                self.port = int(line.split()[2].rsplit(":", 1)[1])
                self._ready.set()
        self._ready.set()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        return int(self.proc.returncode)


@pytest.fixture(scope="module")
def large_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synthetic.make_large(tmp_path_factory.mktemp("large") / "large.dcm", LARGE_MB, seed=1)


@pytest.fixture
def listen(tmp_path: Path) -> Iterator[Any]:
    procs: list[ListenProcess] = []

    def start(*extra: str) -> ListenProcess:
        p = ListenProcess(tmp_path / f"listen{len(procs)}", *extra)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop(signal.SIGKILL)


@pytest.fixture
def scp(tmp_path: Path) -> Iterator[Any]:
    """A factory for in-process StorageSCPs on 127.0.0.1, shut down after the test."""
    servers: list[Any] = []

    def start(**options: Any) -> Any:
        options.setdefault("ae_title", SCP_AET)
        options.setdefault("storage_dir", tmp_path / f"scp{len(servers)}")
        s = securepdu.StorageSCP(**options).start(HOST, 0)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.shutdown()


# ---------------------------------------------------------------- memory


def test_large_object_received_with_bounded_memory(listen: Any, large_object: Path) -> None:
    assert large_object.stat().st_size >= 200_000_000
    server = listen()
    time.sleep(0.5)  # let the interpreter settle after imports
    before_kb = proc_status_kb(server.pid, "VmHWM")
    with securepdu.associate(HOST, server.port, called_ae=SCP_AET, contexts=securepdu.contexts_for([large_object])) as assoc:
        result = assoc.store(large_object)
    assert result.ok, result
    peak_kb = proc_status_kb(server.pid, "VmHWM")
    growth_mb = (peak_kb - before_kb) / 1024
    uid = str(_synthetic.split_part10(large_object)[0].MediaStorageSOPInstanceUID)
    stored = server.out_dir / f"{uid}.dcm"
    assert stored.is_file()
    assert _synthetic.dataset_digest(stored) == _synthetic.dataset_digest(large_object)
    print(f"SCP peak RSS {before_kb // 1024} MB before, {peak_kb // 1024} MB after: +{growth_mb:.1f} MB")
    assert growth_mb <= RSS_GROWTH_BOUND_MB, (
        f"the SCP's peak RSS grew by {growth_mb:.0f} MB while receiving a {LARGE_MB} MB object "
        f"(bound: {RSS_GROWTH_BOUND_MB} MB; from {before_kb // 1024} to {peak_kb // 1024} MB)"
    )


# ---------------------------------------------------------------- concurrency


def test_sixteen_associations_at_once(scp: Any) -> None:
    events: list[Any] = []
    lock = threading.Lock()

    def on_store(event: Any) -> None:
        with lock:
            events.append(event)

    server = scp(on_store=on_store)
    per_assoc = 3
    active_at_barrier: list[int] = []
    # The action runs once, when all 16 have arrived and before any goes on.
    barrier = threading.Barrier(16, action=lambda: active_at_barrier.append(server.active_associations), timeout=60)
    plans: dict[str, tuple[str, list[pydicom.Dataset]]] = {}
    for i in range(16):
        aet = f"SCU{i:02d}"
        datasets = [
            _synthetic.make_dataset("CT", 128, 128, instance_number=j, seed=i * 100 + j)
            for j in range(per_assoc)
        ]
        plans[aet] = (aet, datasets)

    def one(aet: str) -> list[Any]:
        _, datasets = plans[aet]
        contexts = [(str(datasets[0].SOPClassUID), [ExplicitVRLittleEndian])]
        with securepdu.associate(HOST, server.port, called_ae=SCP_AET, calling_ae=aet, contexts=contexts) as assoc:
            barrier.wait()  # all 16 associations are open at this point
            return [assoc.store(ds) for ds in datasets]

    with ThreadPoolExecutor(16) as pool:
        futures = {aet: pool.submit(one, aet) for aet in plans}
        results = {aet: f.result(timeout=120) for aet, f in futures.items()}

    assert active_at_barrier == [16], "the 16 associations were not served at the same time"
    assert all(r.ok for rs in results.values() for r in rs)
    assert len(events) == 16 * per_assoc
    by_uid = {str(e.sop_instance_uid): e for e in events}
    assert len(by_uid) == 16 * per_assoc, "an object was stored twice"
    for aet, (_, datasets) in plans.items():
        for ds in datasets:
            event = by_uid[str(ds.SOPInstanceUID)]
            assert event.calling_ae == aet, "an object is attributed to the wrong association"
            got = pydicom.dcmread(event.path)
            assert got.PixelData == ds.PixelData, f"{event.path}: pixel data mixed up"
            assert got.SOPInstanceUID == ds.SOPInstanceUID
    assert len(list(Path(server.storage_dir).glob("*.dcm"))) == 16 * per_assoc


# ---------------------------------------------------------------- durability


def test_killed_scp_leaves_no_final_file_and_sent_no_success(listen: Any, large_object: Path) -> None:
    server = listen()
    outcome: dict[str, Any] = {}

    def sender() -> None:
        try:
            with securepdu.associate(
                HOST, server.port, called_ae=SCP_AET, contexts=securepdu.contexts_for([large_object]),
                dimse_timeout=30.0,
            ) as assoc:
                outcome["result"] = assoc.store(large_object)
        except (SecurePDUError, OSError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=sender)
    thread.start()
    # Kill the SCP once a partial object is on its disk (any file past 8 MB).
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and thread.is_alive():
        sizes = [p.stat().st_size for p in server.out_dir.rglob("*") if p.is_file()] if server.out_dir.exists() else []
        if any(s > 8_000_000 for s in sizes):
            os.kill(server.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    thread.join(timeout=60)
    assert killed, f"the transfer ended before the SCP could be killed: {outcome}"
    print(f"SCU outcome after SIGKILL: {outcome}; left on disk: {[p.name for p in server.out_dir.rglob('*')]}")
    assert not thread.is_alive(), "the SCU hangs after its peer died"
    result = outcome.get("result")
    assert result is None or not result.ok, f"the SCU was told Success for an object that was not stored: {result}"
    assert "error" in outcome or result is not None
    finals = list(server.out_dir.rglob("*.dcm"))
    assert finals == [], f"partial objects under a final name: {finals}"


# ---------------------------------------------------------------- rejections


def test_wrong_called_ae_title_is_rejected(scp: Any) -> None:
    server = scp(require_called_ae=True)
    with pytest.raises(AssociationRejected) as info:
        securepdu.associate(HOST, server.port, called_ae="SOMEONE-ELSE")
    exc = info.value
    assert (exc.result, exc.source, exc.reason) == (1, 1, 7)
    assert "called AE title" in str(exc)
    # the right title is accepted
    with securepdu.associate(HOST, server.port, called_ae=SCP_AET) as assoc:
        assert assoc.echo() == 0


def test_called_ae_title_is_not_checked_by_default(scp: Any) -> None:
    server = scp()
    with securepdu.associate(HOST, server.port, called_ae="ANY-SCP") as assoc:
        assert assoc.echo() == 0


def test_unsupported_abstract_syntax(scp: Any) -> None:
    server = scp()
    ds = _synthetic.make_dataset("CT", 32, 32)
    unknown = "1.2.826.0.1.3680043.10.1361.999.1"  # not a storage SOP class
    ds.SOPClassUID = unknown
    ds.file_meta.MediaStorageSOPClassUID = unknown
    with securepdu.associate(
        HOST, server.port, called_ae=SCP_AET, contexts=[(unknown, [ExplicitVRLittleEndian])]
    ) as assoc:
        assert unknown not in {c.abstract_syntax for c in assoc.accepted_contexts}
        assert assoc.echo() == 0  # Verification was accepted: the association stands
        try:
            result = assoc.store(ds)
        except SecurePDUError as exc:
            message = str(exc)
        else:
            assert not result.ok
            message = str(result.error or result.error_comment)
        assert "context" in message.lower(), message
    # Nothing stored: no object, no partial file, no manifest line.
    leftovers = list(Path(server.storage_dir).glob("*"))
    manifest = Path(server.storage_dir) / "securepdu-manifest.jsonl"
    assert leftovers in ([], [manifest]), leftovers
    assert not manifest.exists() or manifest.read_text() == ""


def test_too_many_associations_is_rejected_transient(scp: Any) -> None:
    server = scp(max_associations=1)
    first = securepdu.associate(HOST, server.port, called_ae=SCP_AET)
    try:
        with pytest.raises(AssociationRejected) as info:
            securepdu.associate(HOST, server.port, called_ae=SCP_AET)
        exc = info.value
        # transient, service-provider (presentation), local limit exceeded (PS3.8 Table 9-21)
        assert (exc.result, exc.source, exc.reason) == (2, 3, 2)
        assert first.echo() == 0  # the first one is unharmed
    finally:
        first.release()
    deadline = time.monotonic() + 10
    while True:  # the slot frees once the first association's thread has ended
        try:
            with securepdu.associate(HOST, server.port, called_ae=SCP_AET) as again:
                assert again.echo() == 0
            break
        except AssociationRejected:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize(
    "bad_uid",
    ["1.2/../../etc", "../../../../tmp/securepdu-escape", "..", "1.2.3.4/5", "1.2.3." + "4" * 60],
    ids=["dotdot-slash", "relative-path", "dotdot", "slash", "too-long"],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
@pytest.mark.filterwarnings("ignore:The value length:UserWarning")
def test_bad_sop_instance_uid_is_refused(scp: Any, tmp_path: Path, bad_uid: str) -> None:
    """The SCP refuses a SOP Instance UID that is not a UID, and writes nothing for it.

    pynetdicom sends it (it checks only the length); the over-long one goes through
    securepdu's SCU, which may also refuse it itself.
    """
    from pynetdicom import AE

    storage = tmp_path / "a" / "b" / "store"
    server = scp(storage_dir=storage)
    before = set(tmp_path.rglob("*"))
    ds = _synthetic.make_dataset("CT", 16, 16)
    ds.SOPInstanceUID = bad_uid
    ds.file_meta.MediaStorageSOPInstanceUID = bad_uid
    contexts = [(str(ds.SOPClassUID), [ExplicitVRLittleEndian])]
    if len(bad_uid) > 64:
        with securepdu.associate(HOST, server.port, called_ae=SCP_AET, contexts=contexts) as ours:
            try:
                result = ours.store(ds)
            except (SecurePDUError, ValueError) as exc:
                print(f"refused locally: {exc!r}")
                result = None
        print(f"securepdu SCU result: {result}")
        assert result is None or not result.ok, result
    else:
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(ds.SOPClassUID, [ExplicitVRLittleEndian])
        assoc = ae.associate(HOST, server.port, ae_title=SCP_AET)
        assert assoc.is_established
        try:
            status = assoc.send_c_store(ds)
        finally:
            assoc.release()
        assert status, "no response from the SCP"
        code = int(status.Status)
        print(f"SCP answered 0x{code:04X}: {status.get('ErrorComment')}")
        assert code not in (0x0000, 0x0001) and not 0xB000 <= code <= 0xBFFF, f"status 0x{code:04X}"
    created = sorted(str(p) for p in set(tmp_path.rglob("*")) - before if p.is_file())
    assert created == [], f"files written for a bad UID: {created}"
    assert not Path("/tmp/securepdu-escape").exists()
    assert not (tmp_path / "a" / "etc").exists()
