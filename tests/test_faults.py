"""Fault injection against the storage SCP run as ``python -m securepdu listen``.

Issue 8, "Faults": SIGTERM stops accepting, lets an object in transfer finish
within ``--shutdown-grace`` and aborts the rest; a SIGKILL under load loses no
object that was answered Success (each is on disk, complete, reads back with
pydicom and equals what was sent); temporary files left by a dead server are
removed when the next one starts on the same folder.

Every server here is a subprocess this module started; only those are signalled
(by their Popen object). Traffic goes to 127.0.0.1 only, every wait is bounded.
Run with ``-s`` to see the SIGKILL figures (objects acknowledged / found intact).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import generate_uid

import securepdu
from _raw import (
    STORE_CTX,
    associate_rq,
    c_store_rq,
    open_association,
    p_data,
    pdv_item,
    read_reply,
    send_quietly,
)
from securepdu import pdu
from securepdu._synthetic import make_dataset, make_large, same_dataset

HOST = "127.0.0.1"
PARTIAL_RE = re.compile(r"^\.(?P<uid>[0-9.]+)\.(?P<pid>\d+)\.(?P<n>\d+)\.partial$")
#: Data bytes per P-DATA-TF a raw client sends (the SCP accepts PDUs up to 256 KiB).
CHUNK = 16000


# --------------------------------------------------------------------------- servers


class Server:
    """One ``securepdu listen`` subprocess; its stdout and stderr go to files (a
    pipe nobody reads would fill up and block the server's ``stored`` lines)."""

    def __init__(self, folder: Path, logs: Path, name: str, *extra: str) -> None:
        self.folder = folder
        self.out_path = logs / f"{name}.out"
        self.err_path = logs / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "securepdu", "listen", "0", "--bind", HOST, "-od", str(folder), "-v", *extra],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.port = self._wait_listening(timeout=30.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def _wait_listening(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"^listening on 127\.0\.0\.1:(\d+) ", self.out_path.read_text(errors="replace"), re.M)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop_hard()
        raise AssertionError(f"server did not start (exit {self.proc.returncode}): {self.logs()}")

    def logs(self) -> str:
        return f"\n--- stdout\n{self.out_path.read_text(errors='replace')[-3000:]}\n--- stderr\n{self.stderr()[-3000:]}"

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop_hard(self) -> None:
        """SIGKILL this server (our own child) if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed child always dies
            pass


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    """Starts servers; kills whichever of them still run at the end of the test."""
    started: list[Server] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(folder: Path, name: str, *extra: str) -> Server:
        server = Server(folder, logs, name, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop_hard()


def partials(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".partial"))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def dead_pid() -> int:
    """A process id that no process has now (checked in /proc)."""
    rng = random.Random()
    for _ in range(1000):
        pid = rng.randrange(3_000_000, 4_000_000)
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid found")


# --------------------------------------------------------------------------- raw C-STORE


def implicit_le(ds: pydicom.Dataset) -> bytes:
    """The data set of ``ds`` in implicit VR little endian (what the raw client's
    CT context carries)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def data_pdus(payload: bytes, chunk: int = CHUNK) -> list[bytes]:
    """``payload`` as P-DATA-TFs of one data PDV each, the last flagged last."""
    out = []
    for start in range(0, len(payload), chunk):
        piece = payload[start : start + chunk]
        last = start + chunk >= len(payload)
        out.append(p_data(pdv_item(STORE_CTX, 0x02 if last else 0x00, piece)))
    return out


def begin_raw_store(sock: socket.socket, ds: pydicom.Dataset) -> list[bytes]:
    """Sends the C-STORE-RQ command of ``ds``; returns its data PDUs, unsent."""
    sock.sendall(p_data(pdv_item(STORE_CTX, 0x03, c_store_rq(str(ds.SOPInstanceUID)))))
    return data_pdus(implicit_le(ds))


def command_status(data: bytes) -> int | None:
    """Status (0000,0900) of an implicit VR little endian command set."""
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        value = data[pos + 8 : pos + 8 + length]
        if (group, elem) == (0x0000, 0x0900) and len(value) == 2:
            return int(struct.unpack("<H", value)[0])
        pos += 8 + length
    return None


def statuses(pdus: list[Any]) -> list[int | None]:
    """The DIMSE statuses in the command PDVs among ``pdus``."""
    return [
        command_status(v.data)
        for p in pdus
        if isinstance(p, pdu.PDataTF)
        for v in p.pdvs
        if v.is_command and v.is_last
    ]


def association_refused(address: tuple[str, int], wait: float = 2.0) -> str:
    """Tries a new association; returns how it failed, or raises if it was accepted."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(wait)
    try:
        try:
            sock.connect(address)
        except (ConnectionRefusedError, socket.timeout) as exc:
            return f"connect failed: {exc!r}"
        if not send_quietly(sock, associate_rq()):
            return "closed before the request"
        reply = read_reply(sock, wait, stop_on=(pdu.AssociateAC, pdu.AssociateRJ, pdu.Abort))
        assert not any(isinstance(p, pdu.AssociateAC) for p in reply.pdus), (
            f"an association was accepted after SIGTERM: {reply.summary()}"
        )
        return reply.summary()
    finally:
        sock.close()


# --------------------------------------------------------------------------- 1. SIGTERM


def test_sigterm_lets_the_object_in_transfer_finish_and_aborts_idle(tmp_path: Path, servers: Any) -> None:
    folder = tmp_path / "in"
    grace = 8.0
    server = servers(folder, "graceful", "--shutdown-grace", str(grace))
    ds = make_dataset("CT", seed=1)  # 512x512x16 bit: about 0.5 MB, 33 PDUs
    idle = open_association(server.address)
    busy = open_association(server.address)
    try:
        pending = begin_raw_store(busy, ds)
        half = len(pending) // 2
        for one in pending[:half]:
            busy.sendall(one)
        wait_for(lambda: len(partials(folder)) == 1, 10.0, "the object's temporary file")

        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)

        # The idle association is aborted at once.
        reply = read_reply(idle, 5.0)
        assert reply.pdus and isinstance(reply.pdus[-1], pdu.Abort), reply.summary()
        assert time.monotonic() - t0 < 3.0, f"idle association aborted late: {reply.summary()}"

        # No new association is accepted while the transfer goes on.
        how = association_refused(server.address)
        print(f"\nnew association during the grace: {how}")
        assert server.proc.poll() is None, "the server quit before the object in transfer finished"

        # The object in transfer finishes: Success, then the association ends.
        for one in pending[half:]:
            busy.sendall(one)
        reply = read_reply(busy, 5.0)
        assert statuses(reply.pdus) == [0x0000], f"{reply.summary()} (new association: {how})"
        assert reply.closed or isinstance(reply.pdus[-1], pdu.Abort), reply.summary()
    finally:
        idle.close()
        busy.close()

    server.proc.wait(timeout=grace + 5)
    assert server.proc.returncode == 0, server.logs()
    assert time.monotonic() - t0 < grace + 3, "the server did not stop once nothing was in transfer"
    stored = folder / f"{ds.SOPInstanceUID}.dcm"
    assert stored.is_file()
    sent = tmp_path / "sent.dcm"
    ds.save_as(sent, enforce_file_format=True)
    assert same_dataset(stored, sent)
    assert partials(folder) == []
    report = securepdu.verify(folder)
    assert report.clean and list(report.ok) == [stored.name], report


def test_sigterm_aborts_a_slow_transfer_after_the_grace(tmp_path: Path, servers: Any) -> None:
    folder = tmp_path / "in"
    grace = 0.5
    server = servers(folder, "short-grace", "--shutdown-grace", str(grace))
    ds = make_dataset("CT", seed=2)
    busy = open_association(server.address)
    try:
        pending = begin_raw_store(busy, ds)
        for one in pending[:4]:
            busy.sendall(one)
        wait_for(lambda: len(partials(folder)) == 1, 10.0, "the object's temporary file")
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # A slow sender: 2 KB every 0.1 s, far from done when the grace ends.
        got: list[Any] = []
        aborted = False
        for one in data_pdus(implicit_le(ds)[4 * CHUNK :], 2000)[:-1]:
            if time.monotonic() - t0 > grace + 5:
                break
            if not send_quietly(busy, one):
                break
            reply = read_reply(busy, 0.1)
            got += reply.pdus
            if reply.closed or any(isinstance(p, pdu.Abort) for p in reply.pdus):
                aborted = True
                break
        if not aborted:
            reply = read_reply(busy, 2.0)
            got += reply.pdus
            aborted = reply.closed or any(isinstance(p, pdu.Abort) for p in reply.pdus)
        elapsed = time.monotonic() - t0
        assert aborted, f"slow transfer not aborted {elapsed:.2f}s after SIGTERM"
        assert any(isinstance(p, pdu.Abort) for p in got), f"closed without an A-ABORT: {got}"
        assert statuses(got) == [], f"a C-STORE-RSP for an object never complete: {got}"
        assert elapsed < grace + 2.0, f"aborted {elapsed:.2f}s after SIGTERM (grace {grace}s)"
    finally:
        busy.close()
    server.proc.wait(timeout=grace + 5)
    assert server.proc.returncode == 0, server.logs()
    assert time.monotonic() - t0 < grace + 5
    assert not (folder / f"{ds.SOPInstanceUID}.dcm").exists()
    assert partials(folder) == []
    assert list(folder.glob("*.dcm")) == []
    report = securepdu.verify(folder)
    assert not report.ok and not report.changed and not report.missing and not report.unknown, report


# --------------------------------------------------------------------------- 2. SIGKILL


class Recorder:
    """Objects the server answered Success, as the clients saw it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: dict[str, Path] = {}  # SOP Instance UID -> file sent
        self.failed = 0
        self.errors: list[str] = []
        #: When the server was killed; anything going wrong before it is a bug.
        self.killed_at = float("inf")
        self.early: list[str] = []

    def result(self, result: Any) -> None:
        with self.lock:
            if result.ok and result.sop_instance_uid:
                assert result.path is not None
                self.acked[result.sop_instance_uid] = Path(result.path)
            else:
                self.failed += 1
                if time.monotonic() < self.killed_at:
                    self.early.append(f"{result.path}: status {result.status} {result.error}")

    def error(self, exc: Exception) -> None:
        with self.lock:
            self.errors.append(type(exc).__name__)
            if time.monotonic() < self.killed_at:
                self.early.append(repr(exc))


class Renamer:
    """Copies of a set of Part 10 files under new SOP Instance UIDs, a new set
    for each pass, so that every object a client sends is a new one however fast
    the server takes them. A UID is changed in its last four digits, in place:
    same length, so the files stay valid: round digit, then three digits of pass.
    ``sources`` maps every UID written to its file."""

    def __init__(
        self, files: list[Path], out: Path, round_no: int, sources: dict[str, Path], lock: threading.Lock
    ) -> None:
        self.bases = []
        for path in files:
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            assert len(uid.rsplit(".", 1)[1]) > 4, uid  # its last component keeps its leading digit
            self.bases.append((path, uid))
        self.out, self.round_no, self.sources, self.lock = out, round_no, sources, lock
        self.passes = 0
        self.written: list[str] = []

    def next_pass(self) -> list[Path]:
        self.passes += 1
        folder = self.out / f"pass{self.passes}"
        folder.mkdir(parents=True)
        paths = []
        for path, uid in self.bases:
            assert self.passes < 1000 and self.round_no < 10
            new_uid = f"{uid[:-4]}{self.round_no}{self.passes:03d}"
            data = path.read_bytes()
            assert data.count(uid.encode()) == 2  # the file meta's and the data set's
            copy = folder / path.name
            copy.write_bytes(data.replace(uid.encode(), new_uid.encode()))
            with self.lock:
                assert new_uid not in self.sources
                self.sources[new_uid] = copy
            self.written.append(new_uid)
            paths.append(copy)
        return paths


def small_ct_study(folder: Path, count: int, tag: int) -> list[Path]:
    """A CT-like series of ``count`` small (64x64) slices, about 9 KB each."""
    folder.mkdir(parents=True)
    study = make_dataset("CT", 1, 1, pixel_data=False)  # only its patient and study attributes are used
    series = generate_uid()
    paths = []
    for i in range(1, count + 1):
        ds = make_dataset(
            "CT",
            64,
            64,
            study=study,
            series_uid=series,
            instance_number=i,
            sop_instance_uid=f"2.25.{tag}{i:05d}0000",
            seed=tag * 1000 + i,
        )
        path = folder / f"IM{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# The clients send new objects pass after pass until the server dies under them,
# so the kill always comes in the middle of the load.

#: Passes of a study sent on one association (with 200 objects, more than the
#: server takes in the 2 s before a kill).
STUDY_PASSES = 4


def study_client(address: tuple[str, int], objects: Renamer, rec: Recorder, stop: threading.Event) -> None:
    """securepdu.send: up to 16 C-STOREs in flight, results reported as answered.
    Several passes go in one call, so the load has no gaps between associations."""
    try:
        while not stop.is_set():
            files = [f for _ in range(STUDY_PASSES) for f in objects.next_pass()]
            securepdu.send(*address, files, progress=lambda _d, _t, r: rec.result(r), timeout=5, acse_timeout=5)
    except Exception as exc:  # noqa: BLE001 - the server is killed under it
        rec.error(exc)


def large_client(address: tuple[str, int], objects: Renamer, rec: Recorder, stop: threading.Event) -> None:
    """One C-STORE at a time on one association, each answer awaited."""
    try:
        contexts = securepdu.contexts_for(path for path, _ in objects.bases)
        with securepdu.associate(*address, contexts=contexts, timeout=5, acse_timeout=5) as assoc:
            while not stop.is_set():
                for path in objects.next_pass():
                    rec.result(assoc.store(path))
    except Exception as exc:  # noqa: BLE001
        rec.error(exc)


def test_sigkill_under_load_loses_no_acknowledged_object(tmp_path: Path, servers: Any) -> None:
    started = time.monotonic()
    src = tmp_path / "src"
    folder = tmp_path / "in"
    n_studies, per_study, n_large = 4, 200, 3
    # Kill times spread over 0.5-2 s after the first Success, one per band so the rounds differ.
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    delays = [rng.uniform(lo, hi) for lo, hi in ((0.5, 0.9), (0.9, 1.4), (1.4, 2.0))]
    sources: dict[str, Path] = {}  # every object any client sent: UID -> file
    lock = threading.Lock()
    bases = [small_ct_study(src / "base" / f"s{s}", per_study, tag=s + 1) for s in range(n_studies)]
    large_bases = [make_large(src / "base" / "large" / f"L{i}.dcm", 6, seed=i) for i in range(n_large)]
    print(f"\nSIGKILL test: seed {seed}, data ready in {time.monotonic() - started:.1f}s")

    server = servers(folder, "kill-0")
    acked_all: dict[str, Path] = {}
    figures = []
    for r, delay in enumerate(delays):
        # A raw client stuck in the middle of an object: a temporary file that
        # is certainly there when the server dies, and never acknowledged.
        stuck_ds = make_dataset("CT", seed=100 + r)
        stuck = open_association(server.address)
        stuck_pdus = begin_raw_store(stuck, stuck_ds)
        for one in stuck_pdus[:3]:
            stuck.sendall(one)

        rec, stop = Recorder(), threading.Event()
        work = [(study_client, Renamer(b, src / f"r{r}" / f"s{s}", r, sources, lock)) for s, b in enumerate(bases)]
        work.append((large_client, Renamer(large_bases, src / f"r{r}" / "large", r, sources, lock)))
        threads = [
            threading.Thread(target=fn, args=(server.address, objects, rec, stop), daemon=True) for fn, objects in work
        ]
        for t in threads:
            t.start()
        # The clock starts at the first answer, so that a slow, shared machine
        # still gets its kill under load.
        wait_for(lambda: bool(rec.acked) or bool(rec.early), 20.0, "the first Success")
        time.sleep(delay)
        assert server.proc.poll() is None, server.logs()
        pid = server.pid
        rec.killed_at = time.monotonic()
        server.proc.send_signal(signal.SIGKILL)
        stop.set()
        server.proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a client hung after the server was killed"
        assert not rec.early, f"round {r}: failures before the kill: {rec.early[:5]}"
        stuck.close()

        left = partials(folder)
        owners = [PARTIAL_RE.match(p.name) for p in left]
        assert all(m is not None and m["pid"] == str(pid) for m in owners), left
        assert any(m is not None and m["uid"] == str(stuck_ds.SOPInstanceUID) for m in owners), (
            "the half-received object's temporary file is not there"
        )

        # Every acknowledged object is on disk, complete, and equals what was sent.
        acked_all.update(rec.acked)
        intact = 0
        broken = []
        for uid, sent in rec.acked.items():
            stored = folder / f"{uid}.dcm"
            try:
                pydicom.dcmread(stored)
                ok = same_dataset(stored, sent)
            except Exception as exc:  # noqa: BLE001 - missing or unreadable: counted, then failed
                ok = False
                broken.append(f"{uid}: {exc!r}")
            else:
                if not ok:
                    broken.append(f"{uid}: differs from what was sent")
            intact += ok
        # Objects stored but not yet answered may be there too, but only whole.
        stored_files = sorted(folder.glob("*.dcm"))
        for f in stored_files:
            uid = f.name[: -len(".dcm")]
            assert uid in sources, f"{f.name}: not an object any client sent"
            assert same_dataset(f, sources[uid]), f"{f.name}: stored but not what was sent"
        sent_now = {u for _, objects in work for u in objects.written}
        unacked_whole = sum(1 for u in sent_now - set(rec.acked) if (folder / f"{u}.dcm").exists())
        assert not (folder / f"{stuck_ds.SOPInstanceUID}.dcm").exists()
        figures.append((len(rec.acked), intact))
        print(
            f"round {r}: SIGKILL {delay:.2f}s into the load: {len(rec.acked)} objects acknowledged, {intact} found intact; "
            f"{unacked_whole} more stored whole but unanswered, {len(left)} temporary files left "
            f"(client errors after the kill: {sorted(set(rec.errors))})"
        )
        assert not broken, f"round {r}: acknowledged objects lost or damaged: {broken[:5]}"

        # A new server on the folder removes the dead one's temporary files.
        server = servers(folder, f"kill-{r + 1}")
        assert partials(folder) == [], "temporary files of the killed server not removed at start-up"
        assert f"removed {len(left)} temporary file(s) left by an earlier run" in server.stderr(), server.logs()

        # The manifest lines of every object acknowledged so far verify.
        report = securepdu.verify(folder)
        names = {f"{u}.dcm" for u in acked_all}
        not_ok = sorted(names - set(report.ok))
        assert not not_ok, (
            f"acknowledged but not verified: {not_ok[:5]}; changed {sorted(names & set(report.changed))[:5]}, "
            f"missing {sorted(names & set(report.missing))[:5]}"
        )
        assert f"{stuck_ds.SOPInstanceUID}.dcm" not in set(report.ok) | set(report.unknown)

    # The last server stops cleanly.
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0, server.logs()
    total_acked = sum(a for a, _ in figures)
    total_intact = sum(i for _, i in figures)
    print(f"SIGKILL total: {total_acked} acknowledged, {total_intact} found intact, in {time.monotonic() - started:.1f}s")
    assert total_acked > 0, "no object was acknowledged before any kill: the load never started"
    assert total_intact == total_acked


# --------------------------------------------------------------------------- 3. start-up cleanup


def test_startup_removes_only_dead_servers_temporary_files(tmp_path: Path, servers: Any) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    gone = dead_pid()
    live = os.getpid()  # this test process: alive, and not the server's own pid
    uid = "1.2.826.0.1.3680043.10.1361.999"
    dead_files = [folder / f".{uid}.{i}.{gone}.{i}.partial" for i in range(3)]
    for f in dead_files:
        f.write_bytes(b"\0" * 128 + b"DICM" + b"half an object")
    live_file = folder / f".{uid}.7.{live}.1.partial"
    live_file.write_bytes(b"\0" * 128 + b"DICM")
    # Not temporary files of ours: left alone whatever their names look like.
    others = [folder / f"{uid}.dcm", folder / "notes.partial"]
    for f in others:
        f.write_bytes(b"keep")

    server = servers(folder, "cleanup")
    assert not Path(f"/proc/{gone}").exists(), "the chosen dead pid came alive; rerun"
    for f in dead_files:
        assert not f.exists(), f"{f.name}: left by a dead process, not removed"
    assert live_file.exists(), "a temporary file of a running process was removed"
    for f in others:
        assert f.exists(), f"{f.name}: not a temporary file of ours, yet removed"
    assert f"removed {len(dead_files)} temporary file(s) left by an earlier run" in server.stderr(), server.logs()
    assert re.search(r"ERROR .*removed 3 temporary file", server.stderr()), server.logs()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0, server.logs()
    assert live_file.exists()
